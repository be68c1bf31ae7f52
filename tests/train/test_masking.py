"""Properties of the masking objective, over many random draws."""

import pytest
import torch

from coda_train.masking import (REPORT_CURRICULUM, MaskingConfig, MaskingRates, MaskingSchedule,
                                diffusion_loss, mask_batch, mask_sft, target_rows)

MASK, PAD = 99, 0


def rows(B=64, L=512, seed=0):
    return torch.randint(1, 90, (B, L), generator=torch.Generator().manual_seed(seed))


def draw(rates=MaskingRates(), B=64, L=512, seed=0, node_ids=None, **config):
    g = torch.Generator().manual_seed(seed)
    return mask_batch(rows(B, L, seed), MaskingConfig(rates=rates, **config), mask_id=MASK, pad_id=PAD,
                      node_ids=node_ids, generator=g)


def maskable_fraction(batch):
    L = batch.labels.shape[1]
    pos = torch.arange(L)
    maskable = (pos > 0) & (pos >= batch.prefix_len[:, None]) & (pos < batch.length[:, None])
    return batch.targets.sum(1) / maskable.sum(1).clamp_min(1), maskable.sum(1)


@pytest.mark.parametrize("rates", [MaskingRates(), MaskingRates(prefix=0.5, suffix=0.5),
                                   MaskingRates(block=1.0), MaskingRates(prefix=0.3, block=1.0)])
def test_masked_fraction_matches_t(rates):
    errors = []
    for seed in range(8):
        batch = draw(rates, L=2048, seed=seed, block_sizes=(4, 8))
        fraction, n = maskable_fraction(batch)
        keep = n >= 512  # rows with enough maskable tokens for a tight estimate
        errors.append((fraction - batch.t)[keep])
    errors = torch.cat(errors)
    assert errors.abs().mean() < 0.03 and abs(errors.mean()) < 0.01  # unbiased, and close row by row


def test_t_is_uniform_above_eps():
    t = torch.cat([draw(seed=s).t for s in range(20)])
    assert t.min() >= 1e-3 and t.max() <= 1.0 and abs(t.mean() - 0.5) < 0.05


def test_s1_prefixes_are_never_masked():
    batch = draw(MaskingRates(prefix=1.0), L=256)
    assert batch.strategy["prefix"].all() and (batch.prefix_len >= 1).all()
    pos = torch.arange(256)
    assert not (batch.targets & (pos < batch.prefix_len[:, None])).any()
    assert not batch.targets[:, 0].any()  # token 0 has no hidden state before it to be predicted from
    assert (batch.input_ids[:, 0] != MASK).all()


def test_s2_pads_are_never_in_the_loss():
    batch = draw(MaskingRates(suffix=1.0), L=128)
    pos = torch.arange(128)
    tail = pos >= batch.length[:, None]
    assert batch.strategy["suffix"].all() and tail.any()
    assert (batch.labels[tail] == PAD).all() and (batch.input_ids[tail] == PAD).all()
    assert not batch.targets[tail].any()
    # the logits at (and predicting) pad positions do not change the loss
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 128, 100, generator=g)
    loss, _ = diffusion_loss(logits, batch)
    shifted_tail = torch.cat([tail[:, 1:], torch.zeros(64, 1, dtype=torch.bool)], 1)
    noisy = logits.clone()
    noisy[shifted_tail] += 100 * torch.randn(noisy[shifted_tail].shape, generator=g)
    assert torch.allclose(diffusion_loss(noisy, batch)[0], loss)


def test_s1_and_s2_are_drawn_per_batch_and_never_together():
    for seed in range(40):
        batch = draw(MaskingRates(prefix=0.5, suffix=1.0), B=4, L=32, seed=seed)
        for name in ("prefix", "suffix", "block"):
            assert batch.strategy[name].all() or not batch.strategy[name].any()  # one draw per batch
        assert not (batch.strategy["prefix"] & batch.strategy["suffix"]).any()
        assert batch.strategy["prefix"].any() or batch.strategy["suffix"].any()  # no S1: S2 (rate 1)


def runs(row: torch.Tensor) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    out, start = [], None
    for i, v in enumerate(row.tolist() + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i))
            start = None
    return out


def test_s3_spans_have_the_configured_sizes():
    L = 256
    batch = draw(MaskingRates(block=1.0), L=L, block_sizes=(8,))
    assert batch.strategy["block"].all()
    for row in batch.targets:
        for start, end in runs(row):
            if start > 8 and end < L:  # runs clear of the (offset) first block and the end
                assert (end - start) % 8 == 0


def test_s3_is_a_real_per_batch_probability():
    used = [bool(draw(MaskingRates(block=0.3), B=2, L=16, seed=s).strategy["block"].any()) for s in range(200)]
    assert 0.2 < sum(used) / len(used) < 0.4


def test_s4_masks_whole_nodes():
    B, L = 32, 120
    node_ids = torch.full((B, L), -1)
    for i, (a, b) in enumerate([(2, 10), (10, 30), (40, 41), (50, 90)]):
        node_ids[:, a:b] = i  # contiguous nodes; tokens outside them (-1) mask token by token
    batch = draw(MaskingRates(syntax=1.0), B=B, L=L, node_ids=node_ids)
    assert batch.strategy["syntax"].all()
    for b in range(B):
        for a, e in [(2, 10), (10, 30), (40, 41), (50, 90)]:
            node = batch.targets[b, a:e]
            assert node.all() or not node.any()


def test_sft_keeps_the_prompt_and_masks_the_response_and_pad_tail():
    ids = rows(16, 64)
    ids[:, 48:] = PAD
    prompt = torch.randint(5, 30, (16,), generator=torch.Generator().manual_seed(1))
    batch = mask_sft(ids, prompt, mask_id=MASK, generator=torch.Generator().manual_seed(0))
    pos = torch.arange(64)
    assert not (batch.targets & (pos < prompt[:, None])).any()
    assert batch.targets[:, 48:].any()  # pad tail is a target: the model learns where answers end


def test_loss_is_weighted_by_one_over_t_and_normalised_by_batch_times_length():
    ids = rows(2, 8)
    batch = draw(B=2, L=8)
    batch.labels, batch.targets = ids, torch.zeros(2, 8, dtype=torch.bool)
    batch.targets[0, 3] = True
    batch.t = torch.tensor([0.25, 0.5])
    logits = torch.zeros(2, 8, 100)  # uniform: CE = log(100) at each target
    loss, metrics = diffusion_loss(logits, batch)
    assert torch.isclose(loss, torch.log(torch.tensor(100.0)) / 0.25 / 16)
    assert metrics["targets"] == 1
    per_target, _ = diffusion_loss(logits, batch, normalize="masked")
    assert torch.isclose(per_target, torch.log(torch.tensor(100.0)) / 0.25)


def test_schedules():
    start, end = REPORT_CURRICULUM
    assert MaskingSchedule("constant", start).rates(500, 1000) == start
    linear = MaskingSchedule("linear", start, end)
    assert linear.rates(0, 11) == start and linear.rates(10, 11) == end
    assert abs(linear.rates(5, 11).block - 0.15) < 1e-9
    curriculum = MaskingSchedule("curriculum", start, end, epochs=4)
    steps = [curriculum.rates(s, 100).prefix for s in range(100)]
    assert len(set(round(x, 9) for x in steps)) == 4 and steps[0] == 0.01 and abs(steps[-1] - 0.2) < 1e-9
    with pytest.raises(ValueError, match="needs `end`"):
        MaskingSchedule("linear", start)
    with pytest.raises(ValueError, match="must be in"):
        MaskingRates(prefix=1.5)


def test_loss_at_target_rows_equals_the_full_loss():
    batch = draw(MaskingRates(suffix=0.5), B=4, L=32)
    logits = torch.randn(4, 32, 100, generator=torch.Generator().manual_seed(0))
    full, full_metrics = diffusion_loss(logits, batch)
    b, rows = target_rows(batch)
    gathered, metrics = diffusion_loss(logits[b, rows], batch)
    assert torch.allclose(full, gathered) and metrics["targets"] == full_metrics["targets"]
    assert torch.isclose(metrics["masked_accuracy"], full_metrics["masked_accuracy"])




def test_infill_rows_are_spans_then_pad_in_sampler_canvases():
    """S5: holes built as the sampler builds one: the span, pad up to a canvas size, the rest of the
    row shifted right; several holes per row; the context between holes stays clean."""
    L, sizes = 256, (8, 16, 32, 64)
    nodes = torch.full((64, L), -1)
    nodes[:, 40:52] = 0  # one syntax node of 12 tokens in every row
    after_node = several = 0
    for seed in range(4):
        batch = draw(MaskingRates(infill=1.0, block=1.0), L=L, seed=seed, node_ids=nodes)
        ids = rows(64, L, seed)  # no pad in the data: every pad below is a hole's
        assert batch.strategy["infill"].all() and not batch.strategy["block"].any()
        assert (batch.prefix_len == 0).all() and (batch.length == L).all()
        for b in range(64):
            row, targets = batch.labels[b], batch.targets[b]
            kept = row[row != PAD]
            assert torch.equal(kept, ids[b][:len(kept)])  # without the pad: the row, in order, cut at L
            is_pad = torch.cat([torch.tensor([False]), row == PAD, torch.tensor([False])]).int()
            starts, ends = (is_pad.diff() == 1).nonzero().flatten(), (is_pad.diff() == -1).nonzero().flatten()
            assert ((ends - starts) < max(sizes)).all()  # pad only fills up a canvas
            several += len(starts) >= 2
            after_node += bool((starts == 52).any())
            masked = targets.nonzero().flatten()
            if len(ends):  # nothing is masked past the last hole
                assert len(masked) == 0 or int(masked[-1]) < max(int(ends[-1]) + max(sizes), L)
        assert batch.targets[:, 0].sum() == 0
    assert several > 100 and after_node > 0  # several holes per row; syntax nodes are spans too
