"""Quantized weights: the layers compute what the float ones do, loading quantizes as it reads,
and every place a model loads takes the option."""

import json

import pytest
import torch
from torch import nn

from coda_core.loading import load_model
from coda_core.quantize import Int8Linear, check_quantize, quantization, quantize_model, weight_bytes
from coda_core.sampler import Sampler

from conftest import small_model
from test_cli import coda


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_an_int8_layer_computes_what_the_float_layer_does(dtype):
    torch.manual_seed(0)
    linear = nn.Linear(96, 48, bias=False).to(dtype)
    x = torch.randn(2, 5, 96, dtype=dtype)
    x[0, 0] *= 50  # one loud token: rows are quantized apart, so the others keep their precision
    expected = linear(x).float()
    model = nn.Sequential(linear)
    quantize_model(model, "int8")
    assert isinstance(model[0], Int8Linear) and quantization(model) == "int8"
    got = model(x)
    assert got.shape == expected.shape and got.dtype == dtype
    for row in range(5):
        error = (got[1, row].float() - expected[1, row]).norm() / expected[1, row].norm()
        assert error < 0.02, f"{dtype}, row {row}: relative error {error:.4f}"


def test_a_quantized_model_keeps_its_decisions(bundled_tokenizer):
    model = small_model(vocab_size=512, mask_token_id=511)
    ids = torch.randint(0, 500, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        before = model(ids).logits
        quantize_model(model, "int8")
        after = model(ids).logits
    assert (before.argmax(-1) == after.argmax(-1)).float().mean() > 0.95
    assert torch.allclose(before, after, atol=0.05 * before.abs().max().item())


def test_loading_quantized_is_quantizing_the_loaded_model(tiny_model_dir):
    # One mechanism: each weight quantized as it is read equals the loaded model quantized in place.
    read = load_model(tiny_model_dir, dtype="float32", quantize="int8")
    after = quantize_model(load_model(tiny_model_dir, dtype="float32"), "int8")
    assert quantization(read) == quantization(after) == "int8"
    state, expected = read.state_dict(), after.state_dict()
    assert state.keys() == expected.keys()
    for key in state:
        assert torch.equal(state[key], expected[key]), key


def test_int8_weights_take_about_a_quarter_of_the_memory(coda_mini_dir):
    fp32 = load_model(coda_mini_dir, dtype="float32")
    int8 = load_model(coda_mini_dir, dtype="float32", quantize="int8")
    linear = sum(m.weight.numel() for m in fp32.modules() if isinstance(m, nn.Linear))
    saved = weight_bytes(fp32) - weight_bytes(int8)
    assert saved > 0.74 * 4 * linear  # 3 of every 4 bytes, less the scales (one per output channel)
    assert all(p.dtype == torch.float32 for p in int8.parameters())  # embeddings and norms keep their dtype


def test_a_quantized_sampler_completes_code(coda_mini_dir):
    sampler = Sampler.load(str(coda_mini_dir), device="cpu", quantize="int8")
    tok = sampler.tokenizer
    result = sampler.infill(tok.encode("import math\n\n\ndef area(radius):\n    return"),
                            tok.encode("\n\n\nprint(area(2))\n"), 16)
    assert result.text.strip() and result.stats.complete


def test_bad_quantize_values_are_refused():
    with pytest.raises(ValueError, match="unknown quantization 'int3'; choose one of none, int8"):
        check_quantize("int3")
    assert check_quantize(None) == "none"
    with pytest.raises(ValueError, match="unknown quantization"):
        load_model("coda-mini", quantize="int4")


def test_the_cli_takes_quantize_and_info_tells_its_cost(tiny_model_dir, tmp_path):
    src = tmp_path / "ex.py"
    src.write_text("import math\n\n\ndef area(r):\n    return \n")
    for args in (["infill", f"{src}:5:12", "--max-new-tokens", "4"], ["rewrite", f"{src}:4-5"]):
        result = coda(*args, "--model", tiny_model_dir, "--quantize", "int8", "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["forwards"] >= 1
    wrong = coda("infill", f"{src}:5:12", "--model", tiny_model_dir, "--quantize", "int3")
    assert wrong.returncode == 2 and "invalid choice: 'int3'" in wrong.stderr
    info = json.loads(coda("info", tiny_model_dir, "--json").stdout)
    memory = info["memory"]
    assert 0 < memory["weights_bytes_int8"] < memory["weights_bytes_bf16"]


def test_bench_forward_sets_the_quantized_figures_beside_the_unquantized(tmp_path):
    result = coda("bench", "forward", "--json", "--preset", "tiny", "--repeats", "1", "--dtype", "float32",
                  "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["quantize"] == "int8" and {"window_ms", "full_ms"} <= figures["unquantized"].keys()
    assert figures["quantized_window_speedup"] == pytest.approx(
        figures["unquantized"]["window_ms"] / figures["window_ms"], abs=0.02)  # both sides rounded to 0.01
    assert figures["weights_bytes"] < figures["unquantized"]["weights_bytes"]
