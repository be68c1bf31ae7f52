"""Real padding masks: a padded batch gives every row the logits it gets alone."""

import pytest
import torch

from small_models import small_model

ATOL = 1e-5


def pad_batch(rows, side, pad_id=0):
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        where = slice(0, len(r)) if side == "right" else slice(width - len(r), width)
        ids[i, where] = torch.tensor(r)
        mask[i, where] = 1
    return ids, mask


ROWS = [list(range(5, 17)), list(range(40, 47)), list(range(100, 109))]


@torch.no_grad()
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("causal", [False, True])
def test_padded_batch_matches_rows_alone(side, causal):
    model = small_model(seed=20)
    ids, mask = pad_batch(ROWS, side)
    batched = model(ids, attention_mask=mask, causal=causal).logits
    for i, row in enumerate(ROWS):
        alone = model(torch.tensor([row]), causal=causal).logits[0]
        real = mask[i].bool()
        assert not torch.isnan(batched[i]).any()
        assert (batched[i][real] - alone).abs().max() <= ATOL


@torch.no_grad()
@pytest.mark.parametrize("side", ["right", "left"])
def test_window_over_padded_cache_matches_rows_alone(side):
    model = small_model(seed=21)
    ids, mask = pad_batch(ROWS, side)
    cache = model.new_cache(ids.shape[0], ids.shape[1])
    model.prefill(ids, cache, mask)
    width = ids.shape[1]
    slots = torch.arange(width - 6, width - 2)
    window = model.decode_window(ids[:, slots], cache, slots)
    full = model(ids, attention_mask=mask).logits
    for i in range(len(ROWS)):
        real = mask[i, slots].bool()
        assert (window[i][real] - full[i, slots][real]).abs().max() <= ATOL


@torch.no_grad()
def test_explicit_position_ids_are_used():
    model = small_model(seed=22)
    ids = torch.tensor([ROWS[0]])
    default = model(ids).logits
    same = model(ids, position_ids=torch.arange(len(ROWS[0]))[None]).logits
    moved = model(ids, position_ids=torch.arange(len(ROWS[0]))[None] + 7).logits
    assert torch.allclose(default, same, atol=1e-6)
    # bidirectional attention with RoPE is translation invariant: shifted positions, same logits
    assert torch.allclose(default, moved, atol=1e-4)
    scaled = model(ids, position_ids=torch.arange(len(ROWS[0]))[None] * 3).logits
    assert not torch.allclose(default, scaled, atol=1e-3)
