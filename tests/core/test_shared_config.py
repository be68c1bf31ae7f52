"""The real CoDA-v0 config and Qwen3 tokenizer files from the public release."""

import json

import pytest

from coda_core.config import load_config
from coda_core.loading import meta_model
from coda_core.presets import preset_config
from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer, special_ids


def test_config_loads_as_is_keeping_unused_fields(coda_v0_dir, tmp_path):
    config = load_config(coda_v0_dir)
    assert config.model_type == "CoDA"
    assert (config.num_hidden_layers, config.hidden_size, config.head_dim) == (28, 2048, 128)
    assert config.tie_word_embeddings is False
    assert config.rope_parameters["rope_theta"] == 1000000
    assert config.mask_block_sizes == [4, 8, 16, 32]  # a training field this code does not use
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    original = json.loads((coda_v0_dir / "config.json").read_text())
    for key in ("mask_block_sizes", "sampling_eps", "block_masking_probability", "mask_token_id", "auto_map"):
        assert written[key] == original[key]


def test_parameter_count_on_meta_device(coda_v0_dir):
    model = meta_model(load_config(coda_v0_dir))
    assert all(p.is_meta for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) == 2031739904


def test_coda_v0_preset_is_the_released_architecture(coda_v0_dir):
    released = load_config(coda_v0_dir).to_dict()
    preset = preset_config("coda-v0").to_dict()
    for key in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "rms_norm_eps", "rope_parameters", "mask_token_id",
                "pad_token_id", "tie_word_embeddings"):
        assert preset[key] == released[key], key


def test_tokenizer_builds_from_vocab_and_merges(coda_v0_dir):
    assert not (coda_v0_dir / "tokenizer.json").exists()
    tok = load_tokenizer(coda_v0_dir)
    assert tok.is_fast
    assert len(tok) == 151670


@pytest.mark.parametrize("text", [
    "def f(x):\n    return x ** 2  # square\n",
    "fn main() { println!(\"héllo, 世界\"); }\n\t\ttabs\r\n",
    "<|fim_prefix|>a = 1<|fim_suffix|>\n<|fim_middle|>",
])
def test_encode_decode_round_trip(coda_v0_dir, text):
    tok = load_tokenizer(coda_v0_dir)
    assert tok.decode(tok.encode(text)) == text


def test_special_ids(coda_v0_dir):
    tok = load_tokenizer(coda_v0_dir)
    ids = special_ids(load_config(coda_v0_dir), tok)
    assert (ids.mask, ids.pad, ids.eos) == (151669, 151643, 151645)
    assert tok.convert_ids_to_tokens([ids.mask, ids.pad, ids.eos]) == ["<|mask|>", "<|endoftext|>", "<|im_end|>"]
    assert tok.encode("<|mask|><|mask|>") == [151669, 151669]
    fim = tok.convert_tokens_to_ids(["<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"])
    assert fim == [151659, 151660, 151661]


def test_bundled_tokenizer_is_the_release_tokenizer(coda_v0_dir):
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json", "added_tokens.json"):
        assert (BUNDLED_TOKENIZER / name).read_bytes() == (coda_v0_dir / name).read_bytes()
