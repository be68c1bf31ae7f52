"""Quantized weights: the layers compute what the float ones do, loading quantizes as it reads,
and every place a model loads takes the option."""

import json

import pytest
import torch
from torch import nn

from coda_core import kernels
from coda_core.config import load_config
from coda_core.loading import load_model
from coda_core.quantize import (DIGIT, ZERO_POINT, Int8Linear, activation_digits, check_quantize, int8_weight,
                                quantization, quantize_model, weight_bytes)
from coda_core.sampler import Sampler

from small_models import small_model
from helpers import coda


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


def test_activations_keep_about_14_bits_in_two_digits():
    # Against the int8 weight dequantized, the only error left is the activations': two 7-bit digits
    # per value keep it near 1e-4 (one 8-bit digit per token: about 5e-3), a loud token included.
    torch.manual_seed(0)
    weight = torch.randn(64, 256)
    x = torch.randn(9, 256)
    x[0] *= 1000
    x[1, 7] = 300  # an outlier channel
    x[2] = 0  # a silent row stays exactly zero
    q, scales = int8_weight(weight)
    expected = x @ (q.float() * scales[:, None]).t()
    got = Int8Linear.from_float(weight)(x)
    assert torch.equal(got[2], torch.zeros(64))
    error = (got - expected).norm(dim=1) / expected.norm(dim=1).clamp_min(1e-9)
    assert error.max() < 1e-3, error


def test_each_digit_is_7_bits_so_avx2s_int16_pair_sums_cannot_saturate():
    # fbgemm on AVX2 without VNNI adds pairs of uint8 x int8 products in int16: uint8 values up to 127
    # keep 2 x 127 x 127 < 32,768. fbgemm stores each digit d as round(d) + ZERO_POINT.
    g = torch.Generator().manual_seed(0)
    loud = torch.randn(50, 32, generator=g) * 10 ** torch.randn(50, 1, generator=g)  # values over many scales
    x = torch.cat([loud, torch.full((1, 32), -3.0), torch.zeros(1, 32)])
    digits, scale = activation_digits(x)
    raw = torch.round(digits) + ZERO_POINT
    assert raw.min() >= 0 and raw.max() <= 127 and 2 * 127 * 127 < 2 ** 15
    first, second = torch.round(digits).chunk(2)
    # what is left is the second digit's rounding: half a unit of it, 1/252 of a first-digit step
    assert ((first + second / (2 * DIGIT)) * scale - x).abs().le(scale / (4 * DIGIT) * 1.001).all()


def test_a_packed_layer_keeps_its_int8_weight_in_the_state_dict():
    weight = torch.randn(24, 40, generator=torch.Generator().manual_seed(0))
    layer = Int8Linear.from_float(weight)
    q, scales = int8_weight(weight)
    state = layer.state_dict()
    assert layer.kernel == "fbgemm" and layer.weight.numel() == 0  # the int8 copy lives in fbgemm's pack only
    assert torch.equal(state["weight"], q) and torch.allclose(state["scales"], scales)
    assert weight_bytes(layer) == 24 * 40 + 4 * 24


def every_layer_int8(model_dir, dtype=torch.float32):
    """A plan with every layer in int8, whatever this machine would measure."""
    return kernels.every_layer(load_config(model_dir), torch.device("cpu"), dtype, "int8")


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
    read = load_model(tiny_model_dir, dtype="float32", quantize="int8", plan=every_layer_int8(tiny_model_dir))
    after = quantize_model(load_model(tiny_model_dir, dtype="float32"), "int8")
    assert quantization(read) == quantization(after) == "int8"
    state, expected = read.state_dict(), after.state_dict()
    assert state.keys() == expected.keys()
    for key in state:
        assert torch.equal(state[key], expected[key]), key


def test_int8_weights_take_about_a_quarter_of_the_memory(coda_mini_dir):
    fp32 = load_model(coda_mini_dir, dtype="float32")
    int8 = load_model(coda_mini_dir, dtype="float32", quantize="int8", plan=every_layer_int8(coda_mini_dir))
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
    # what the loader would choose on this CPU, in the words the status uses
    assert info["kernels"]["cpu"].startswith(("float32", "bfloat16"))
    assert info["kernels"]["cpu_int8"].startswith(("int8 (fbgemm)", "float32", "bfloat16"))


def test_bench_forward_sets_the_quantized_figures_beside_the_unquantized(tmp_path):
    result = coda("bench", "forward", "--json", "--preset", "tiny", "--repeats", "1", "--dtype", "float32",
                  "--quantize", "int8")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["quantize"] == "int8" and {"window_ms", "full_ms"} <= figures["unquantized"].keys()
    assert figures["quantized_window_speedup"] == pytest.approx(
        figures["unquantized"]["window_ms"] / figures["window_ms"], abs=0.02)  # both sides rounded to 0.01
    # int8 where it is measured faster here, as the loader would choose, and the report says which
    if "unused" in figures["kernels"]:
        assert figures["kernels"].startswith("float32") and figures["weights_bytes"] == figures["unquantized"]["weights_bytes"]
    else:
        assert figures["kernels"].startswith("int8 (fbgemm)")
        assert figures["weights_bytes"] < figures["unquantized"]["weights_bytes"]
