"""Canvas layout, end handling and scoring (golden cases)."""

import math

import torch

import pytest

from coda_core.canvas import build_canvas, build_holes_canvas
from coda_core.denoise import DecodeOptions, _Choice, _select_threshold
from coda_core.token_choice import SamplingParams, confidence, filtered_probs

M, P, E = 99, 0, 1  # mask, pad, eos


def canvas(sizes=(3, 5), copies=1):
    return build_canvas([10, 11], list(sizes), [20, 21], copies=copies, mask_id=M, pad_id=P, end_ids=(E, P))


def test_layout_rows_share_the_head_and_pad_on_the_right():
    c = canvas()
    assert c.ids.tolist() == [[10, 11, M, M, M, 20, 21, P, P], [10, 11, M, M, M, M, M, 20, 21]]
    assert c.attention_mask.tolist()[0] == [True] * 7 + [False] * 2
    assert c.hole_start == 2 and c.hole_width == 5
    assert c.masked().tolist() == [[True] * 3 + [False] * 2, [True] * 5]


def test_end_token_pads_everything_after_it():
    c = canvas()
    select = torch.zeros(2, 5, dtype=torch.bool)
    select[1, 1] = True  # row 1 commits eos at its second hole slot
    tokens = torch.full((2, 5), E)
    logp = torch.full((2, 5), -0.5)
    assert c.commit(select, tokens, logp) == 1
    assert c.ids[1].tolist() == [10, 11, M, E, P, P, P, 20, 21]
    assert c.masked()[1].tolist() == [True, False, False, False, False]  # only the slot before the end
    assert c.ended().tolist() == [False, True]
    assert c.contents(1) == [[]]  # stops at the first mask / end
    c.commit(torch.tensor([[False] * 5, [True] + [False] * 4]), torch.full((2, 5), 7), logp)
    assert c.contents(1) == [[7]]
    assert math.isclose(c.score()[1].item(), -0.5)
    assert c.score()[0].item() == float("-inf")


def test_copies_repeat_the_sizes():
    c = canvas(sizes=(2, 4), copies=2)
    assert c.hole_len.tolist() == [2, 4, 2, 4]


def choice(top1, rank=None):
    top1 = torch.tensor(top1)
    return _Choice(tokens=torch.zeros_like(top1, dtype=torch.long), logp=top1.log(), prob=top1,
                   rank=top1.clone() if rank is None else torch.tensor(rank))


def test_threshold_commits_confident_and_at_least_one():
    masked = torch.tensor([[True, True, True, False], [True, True, False, False]])
    sel = _select_threshold(choice([[0.95, 0.3, 0.92, 0.99], [0.2, 0.4, 0.0, 0.0]]), masked,
                            DecodeOptions(threshold=0.9))
    assert sel.tolist() == [[True, False, True, False], [False, True, False, False]]
    capped = _select_threshold(choice([[0.95, 0.3, 0.92, 0.99], [0.2, 0.4, 0.0, 0.0]]), masked,
                               DecodeOptions(threshold=0.9, max_per_step=1))
    assert capped.tolist() == [[True, False, False, False], [False, True, False, False]]


def test_factor_rule():
    # sorted p: 0.9, 0.8, 0.5 -> (n+1)(1-p_n): 0.2, 0.6, 2.0; factor 1.0 keeps n = 2
    masked = torch.tensor([[True, True, True]])
    sel = _select_threshold(choice([[0.5, 0.9, 0.8]]), masked, DecodeOptions(factor=1.0))
    assert sel.tolist() == [[False, True, True]]


def test_top_p_top_k_and_confidences():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.allclose(filtered_probs(logits, SamplingParams(top_p=0.7)), torch.tensor([[0.625, 0.375, 0, 0]]))
    assert torch.allclose(filtered_probs(logits, SamplingParams(top_k=1)), torch.tensor([[1.0, 0, 0, 0]]))
    probs = filtered_probs(logits, SamplingParams())
    tokens = torch.tensor([1])
    assert torch.allclose(confidence(probs, tokens, "maskgit_plus"), torch.tensor([0.3]))
    assert torch.allclose(confidence(probs, tokens, "topk_margin"), torch.tensor([0.2]))
    entropy = -sum(p * math.log(p) for p in (0.5, 0.3, 0.15, 0.05))
    assert torch.allclose(confidence(probs, tokens, "entropy"), torch.tensor([-entropy]), atol=1e-6)


def test_several_holes_share_one_canvas_and_end_separately():
    c = build_holes_canvas([[10], [20, 21], [30]], [3, 2], copies=2, mask_id=M, pad_id=P, end_ids=(E, P))
    assert c.ids[0].tolist() == [10, M, M, M, 20, 21, M, M, 30]
    assert c.attention_mask is None and c.n_holes == 2
    assert c.hole_slots.tolist() == [1, 2, 3, 6, 7] and c.hole_of.tolist() == [0, 0, 0, 1, 1]
    # row 0: eos at hole 0's first column pads the rest of hole 0 only; hole 1 stays masked
    select = torch.tensor([[True, False, False, False, False], [False] * 5])
    c.commit(select, torch.full((2, 5), E), torch.full((2, 5), -1.0))
    assert c.ids[0].tolist() == [10, E, P, P, 20, 21, M, M, 30]
    assert c.masked()[0].tolist() == [False, False, False, True, True]
    assert c.ended().tolist() == [False, False]  # hole 1 has no end yet
    c.commit(torch.tensor([[False, False, False, True, True]] * 2), torch.tensor([[0, 0, 0, 7, E]] * 2),
             torch.full((2, 5), -1.0))
    assert c.contents(0) == [[], [7]] and c.contents(1) == [[], [7]]  # row 1's hole 0 is still masked
    assert c.ended().tolist() == [True, False]
    with pytest.raises(ValueError, match="2 holes need 3 context pieces"):
        build_holes_canvas([[1]], [3, 2], copies=1, mask_id=M, pad_id=P, end_ids=(E, P))
