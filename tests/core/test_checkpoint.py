"""Checkpoints: save/load round trips, shards with an index, Qwen3 AR weights, the tiny preset."""

import json

import pytest
import torch
from transformers import AutoModel, Qwen3Config, Qwen3ForCausalLM

from coda_core.loading import load_model
from coda_core.model import CoDALanguageModel

from small_models import small_model

IDS = torch.randint(0, 300, (1, 12), generator=torch.Generator().manual_seed(0))


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_save_and_load_round_trip(tmp_path):
    model = small_model(seed=30)
    model.save_pretrained(tmp_path)
    loaded = load_model(tmp_path, dtype="float32")
    assert same_weights(model, loaded)
    assert torch.equal(model(IDS).logits, loaded(IDS).logits)
    # transformers' own loading path agrees, and AutoModel knows the "CoDA" type
    assert same_weights(model, CoDALanguageModel.from_pretrained(tmp_path))
    auto = AutoModel.from_pretrained(tmp_path)
    assert isinstance(auto, CoDALanguageModel) and same_weights(model, auto)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "CoDA" and config["tie_word_embeddings"] is False


def test_load_model_converts_dtype(tmp_path):
    small_model(seed=31).save_pretrained(tmp_path)
    model = load_model(tmp_path, dtype="bfloat16")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert not model.training


def test_sharded_checkpoint_with_index(tmp_path):
    model = small_model(seed=32)
    model.save_pretrained(tmp_path, max_shard_size="100KB")
    index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
    shards = set(index["weight_map"].values())
    assert len(shards) > 1 and len(list(tmp_path.glob("*.safetensors"))) == len(shards)
    assert set(index["weight_map"]) == set(model.state_dict())
    assert same_weights(model, load_model(tmp_path, dtype="float32"))


def qwen3(tied: bool):
    torch.manual_seed(33)
    cfg = Qwen3Config(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16, rope_theta=10000.0,
                      tie_word_embeddings=tied)
    return Qwen3ForCausalLM(cfg).eval()


@pytest.mark.parametrize("tied", [False, True])
def test_qwen3_checkpoint_loads(tmp_path, tied):
    ar = qwen3(tied)
    ar.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen3"
    model = load_model(tmp_path, dtype="float32")
    assert model.config.model_type == "CoDA" and model.config.tie_word_embeddings is False
    # the same network: causal CoDA reproduces the AR model
    with torch.no_grad():
        assert (model(IDS, causal=True).logits - ar(IDS).logits).abs().max() <= 1e-5
    # the head is CoDA's own tensor even when Qwen3 tied it
    assert model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr()
    assert torch.equal(model.lm_head.weight, ar.lm_head.weight)


def test_tiny_preset_loads_and_runs(tiny_model_dir):
    from coda_core.tokenizer import load_tokenizer

    model = load_model(tiny_model_dir, dtype="float32")
    tok = load_tokenizer(tiny_model_dir)
    assert (tiny_model_dir / "tokenizer.json").is_file()
    ids = torch.tensor([tok.encode("def add(a, b):\n    return a + b\n")])
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], 151936)
    assert torch.isfinite(logits).all()
