"""The CoDA network is Qwen3: same logits as transformers' own implementation."""

import torch
from transformers import Qwen3Config, Qwen3ForCausalLM

from coda_core.model import prediction_rows

from small_models import small_config, small_model


def qwen3_twin(model):
    """transformers' Qwen3ForCausalLM with `model`'s weights copied over."""
    cfg = small_config().to_dict()
    arch = {k: cfg[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps",
                                "max_position_embeddings")}
    twin = Qwen3ForCausalLM(Qwen3Config(**arch, rope_theta=cfg["rope_parameters"]["rope_theta"],
                                        tie_word_embeddings=False, attn_implementation="eager")).eval()
    twin.load_state_dict(model.state_dict(), strict=True)
    return twin


@torch.no_grad()
def test_causal_mode_matches_qwen3():
    model = small_model(seed=1)
    twin = qwen3_twin(model)
    ids = torch.randint(0, 300, (3, 17), generator=torch.Generator().manual_seed(0))
    ours = model(ids, causal=True).logits
    theirs = twin(ids).logits
    assert (ours - theirs).abs().max().item() <= 1e-5


@torch.no_grad()
def test_bidirectional_mode_matches_qwen3_with_full_mask():
    model = small_model(seed=2)
    twin = qwen3_twin(model)
    ids = torch.randint(0, 300, (2, 13), generator=torch.Generator().manual_seed(1))
    full = torch.ones(2, 1, 13, 13, dtype=torch.bool)
    theirs = twin(ids, attention_mask={"full_attention": full}).logits
    ours = model(ids).logits
    assert (ours - theirs).abs().max().item() <= 1e-5
    # and it really is different from the causal model
    assert (ours - twin(ids).logits).abs().max().item() > 1e-3


@torch.no_grad()
def test_caller_position_ids_match_qwen3():
    model = small_model(seed=3)
    twin = qwen3_twin(model)
    ids = torch.randint(0, 300, (1, 9), generator=torch.Generator().manual_seed(2))
    pos = torch.arange(100, 109)[None]
    assert (model(ids, position_ids=pos, causal=True).logits - twin(ids, position_ids=pos).logits).abs().max() <= 1e-5


def test_prediction_rows_shift_convention():
    # token j is predicted from hidden j-1; token 0 from hidden 0
    assert prediction_rows(torch.tensor([0, 1, 2, 7])).tolist() == [0, 0, 1, 6]
    # a window [s, e) is fed as slots [s-1, e): its tokens are predicted by rows 0..e-s-1
    assert prediction_rows(torch.arange(5, 9), first_fed=4).tolist() == [0, 1, 2, 3]


@torch.no_grad()
def test_logits_index_gives_shifted_predictions():
    """Selecting rows with prediction_rows equals the published cat(logits[:, :1], logits[:, :-1])."""
    model = small_model(seed=4)
    ids = torch.randint(0, 300, (2, 11), generator=torch.Generator().manual_seed(3))
    full = model(ids).logits
    shifted = torch.cat([full[:, :1], full[:, :-1]], dim=1)
    batch = torch.tensor([0, 0, 0, 1, 1, 1])
    positions = torch.tensor([0, 3, 10, 0, 3, 10])
    picked = model(ids, logits_index=(batch, prediction_rows(positions))).logits
    assert torch.allclose(picked, shifted[batch, positions], atol=1e-6)


@torch.no_grad()
def test_shift_is_the_autoregressive_one():
    """In causal mode the row that predicts token j must not see token j: that is the shift."""
    model = small_model(seed=5)
    ids = torch.randint(0, 300, (1, 8), generator=torch.Generator().manual_seed(4))
    changed = ids.clone()
    changed[0, 5] = (changed[0, 5] + 1) % 300
    row = (torch.tensor([0]), prediction_rows(torch.tensor([5])))
    a = model(ids, causal=True, logits_index=row).logits
    b = model(changed, causal=True, logits_index=row).logits
    assert torch.equal(a, b)
    # but the row for token 6 does see token 5
    row6 = (torch.tensor([0]), prediction_rows(torch.tensor([6])))
    assert not torch.equal(model(ids, causal=True, logits_index=row6).logits,
                           model(changed, causal=True, logits_index=row6).logits)
