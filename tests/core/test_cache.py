"""The window KV cache: prefill, window forwards, logits only where asked."""

import pytest
import torch

from coda_core.model import KVCache, prediction_rows

from small_models import small_config, small_model

ATOL = 1e-5


def random_ids(batch, length, seed=0):
    return torch.randint(0, 300, (batch, length), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def test_window_with_fresh_cache_equals_full_forward():
    model = small_model(seed=10)
    ids = random_ids(2, 40)
    full = model(ids).logits
    cache = model.new_cache(2, 40)
    prefill = model.prefill(ids, cache)
    assert (prefill - full).abs().max() <= ATOL
    for start, end in [(0, 8), (17, 29), (32, 40)]:
        slots = torch.arange(start, end)
        window = model.decode_window(ids[:, slots], cache, slots)
        assert (window - full[:, start:end]).abs().max() <= ATOL


@torch.no_grad()
def test_window_feeds_one_more_slot_to_predict_its_first_token():
    model = small_model(seed=11)
    ids = random_ids(1, 30, seed=1)
    shifted = model(ids).logits
    shifted = torch.cat([shifted[:, :1], shifted[:, :-1]], dim=1)
    cache = model.new_cache(1, 30)
    model.prefill(ids, cache, logits_index=(torch.tensor([0]), torch.tensor([0])))
    s, e = 12, 20
    slots = torch.arange(s - 1, e)
    rows = prediction_rows(torch.arange(s, e), first_fed=s - 1)
    window = model.decode_window(ids[:, slots], cache, slots, logits_index=(torch.zeros_like(rows), rows))
    assert window.shape == (e - s, 300)
    assert (window - shifted[0, s:e]).abs().max() <= ATOL


@torch.no_grad()
def test_window_reads_other_slots_from_cache_and_its_own_fresh():
    """One layer: K/V of a slot depend only on its token, so a window with new
    tokens over a cache of the old canvas is exactly the full forward of the new canvas."""
    model = small_model(seed=12, num_hidden_layers=1)
    old = random_ids(1, 24, seed=2)
    new = old.clone()
    new[0, 8:16] = random_ids(1, 8, seed=3)
    cache = model.new_cache(1, 24)
    model.prefill(old, cache)
    slots = torch.arange(8, 16)
    window = model.decode_window(new[:, slots], cache, slots)
    assert (window - model(new).logits[:, 8:16]).abs().max() <= ATOL


@torch.no_grad()
def test_window_stores_its_fresh_kv_and_leaves_the_other_slots():
    model = small_model(seed=13)
    old = random_ids(1, 20, seed=4)
    new = old.clone()
    new[0, 5:10] = random_ids(1, 5, seed=5)
    slots = torch.arange(5, 10)

    cache = model.new_cache(1, 20)
    model.prefill(old, cache)
    before = [k.clone() for k in cache.k]
    model.decode_window(new[:, slots], cache, slots)
    # layer 0 K/V at the window now equal a prefill of the new canvas; elsewhere untouched
    fresh = model.new_cache(1, 20)
    model.prefill(new, fresh)
    assert torch.allclose(cache.k[0][:, :, 5:10], fresh.k[0][:, :, 5:10], atol=ATOL)
    assert torch.equal(cache.k[0][:, :, :5], before[0][:, :, :5])
    assert torch.equal(cache.k[0][:, :, 10:], before[0][:, :, 10:])
    assert not torch.equal(cache.k[0][:, :, 5:10], before[0][:, :, 5:10])


@torch.no_grad()
def test_logits_index_scattered_rows():
    model = small_model(seed=16)
    ids = random_ids(2, 16, seed=7)
    full = model(ids).logits
    batch, rows = torch.tensor([0, 1, 1, 0]), torch.tensor([3, 3, 0, 3])  # duplicates allowed
    picked = model(ids, logits_index=(batch, rows)).logits
    assert picked.shape == (4, 300)
    assert torch.allclose(picked, full[batch, rows], atol=1e-6)


def test_cache_shapes_and_size():
    cfg = small_config()
    cache = KVCache.empty(cfg, batch=3, slots=50)
    assert len(cache.k) == cfg.num_hidden_layers
    assert cache.k[0].shape == (3, cfg.num_key_value_heads, 50, cfg.head_dim)
    assert cache.nbytes() == 2 * cfg.num_hidden_layers * 3 * cfg.num_key_value_heads * 50 * cfg.head_dim * 4


@torch.no_grad()
def test_cache_records_the_padding_prefill_saw():
    """set_padding is what prefill does to the cache: a cache given only set_padding plus the
    prefill's K/V steps a window exactly as the prefilled one does (the prefix-cache restore)."""
    model = small_model(seed=17)
    ids = random_ids(2, 12, seed=8)
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, :3] = 0  # left padding: positions count real tokens only
    prefilled = model.new_cache(2, 12)
    model.prefill(ids, prefilled, mask)
    assert prefilled.key_mask.tolist() == mask.bool().tolist()
    assert prefilled.position_ids.tolist() == [[0, 0, 0, *range(9)], list(range(12))]

    restored = KVCache([k.clone() for k in prefilled.k], [v.clone() for v in prefilled.v])
    restored.set_padding(mask)
    assert torch.equal(restored.key_mask, prefilled.key_mask)
    assert torch.equal(restored.position_ids, prefilled.position_ids)
    slots = torch.arange(6, 10)
    assert torch.equal(model.decode_window(ids[:, slots], restored, slots),
                       model.decode_window(ids[:, slots], prefilled, slots))
    # no padding: no mask at all, positions 0..S-1
    model.prefill(ids, prefilled, torch.ones(2, 12))
    assert prefilled.key_mask is None and prefilled.position_ids.tolist() == [list(range(12))] * 2


@torch.no_grad()
def test_window_forward_misuse_is_a_clear_error():
    model = small_model(seed=15)
    ids = random_ids(1, 10)
    cache = model.new_cache(1, 12)
    with pytest.raises(ValueError, match="needs a cache filled by prefill"):
        model.decode_window(ids[:, :3], cache, torch.arange(3))
    with pytest.raises(ValueError, match="prefill of 1x10 tokens into a cache of 1x12"):
        model.prefill(ids, cache)
    model.prefill(torch.cat([ids, ids[:, :2]], 1), cache)
    with pytest.raises(ValueError, match="slots must have shape"):
        model.decode_window(ids[:, :3], cache, torch.arange(4))
    with pytest.raises(ValueError, match="a window of 2 rows over a cache of 1"):
        model.decode_window(ids[:, :3].expand(2, 3), cache, torch.arange(3))
    # a bare tensor would unpack into two scalars and pick a wrong row without complaint
    with pytest.raises(TypeError, match="logits_index must be a"):
        model(ids, logits_index=torch.tensor([3, 5]))


@torch.no_grad()
def test_last_layer_computes_only_the_rows_asked_for():
    """With logits_index, prefill's and decode_window's last layer runs its queries and MLP for the rows
    read (its K/V for every row, into the cache); the logits and the cache are those of the whole
    computation. The full forward (training's) computes every row."""
    model = small_model(seed=18)
    ids = random_ids(2, 24, seed=9)
    mlp_rows = []
    hook = model.model.layers[-1].mlp.register_forward_hook(lambda module, args, out: mlp_rows.append(args[0].shape[1]))
    full = model(ids).logits
    batch, rows = torch.tensor([1, 0, 1, 0]), torch.tensor([20, 5, 5, 23])  # duplicates and both rows
    picked = model(ids, logits_index=(batch, rows)).logits
    cache, whole = model.new_cache(2, 24), model.new_cache(2, 24)
    prefilled = model.prefill(ids, cache, logits_index=(batch, rows))
    model.prefill(ids, whole)
    slots = torch.arange(9, 17)  # a window: rows counted from its first slot
    window = model.decode_window(ids[:, slots], cache, slots, logits_index=(torch.tensor([0, 1]), torch.tensor([7, 2])))
    hook.remove()
    # the full forward and a prefill without logits_index: every row; with it the rows asked for, as
    # asked (20, 5, 5, 23: a duplicate costs a row, where dropping it would cost a GPU a host sync;
    # then 7 and 2 of the window)
    assert mlp_rows == [24, 24, 4, 24, 2]
    assert (picked - full[batch, rows]).abs().max() <= ATOL
    assert (prefilled - full[batch, rows]).abs().max() <= ATOL
    assert (window - full[torch.tensor([0, 1]), torch.tensor([16, 11])]).abs().max() <= ATOL
    model.decode_window(ids[:, slots], whole, slots)
    for mine, theirs in zip(cache.k + cache.v, whole.k + whole.v):
        assert (mine - theirs).abs().max() <= ATOL
