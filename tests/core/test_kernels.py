"""Kernels chosen by measurement: the choice from given timings, the per-machine cache, and what the
loader builds from a plan. No test here times anything it asserts on: timings are injected."""

import json

import pytest
import torch

from coda_core import kernels
from coda_core.kernels import Shape, choose
from coda_core.loading import load_model
from coda_core.quantize import Int8Linear, quantization

CPU = torch.device("cpu")
SHAPES = [Shape(64, 64, count=8), Shape(64, 192, count=4), Shape(64, 300, head=True)]


def ms(**per_candidate):
    """{candidate: {shape key: ms}} from one list of times per candidate, in SHAPES' order."""
    return {name.replace("_", ""): dict(zip((s.key for s in SHAPES), times)) for name, times in per_candidate.items()}


def test_int8_is_chosen_per_shape_where_it_is_faster():
    plan = choose(SHAPES, ms(float32=[2, 4, 10], int8=[1, 5, 2]), torch.float32, "int8")
    assert plan.int8 == {"64x64", "64x300"} and plan.dtype == torch.float32
    # fp32: 8*2 + 4*4 + 10 = 42; chosen: 8*1 + 4*4 + 2 = 26
    assert plan.speedup() == round(42 / 26, 2)
    assert plan.describe() == "int8 (fbgemm) on 2 of 3 layer shapes (float32 on the rest) 1.62x fp32"
    every = choose(SHAPES, ms(float32=[2, 4, 10], int8=[1, 1, 1]), torch.float32, "int8")
    assert every.describe() == "int8 (fbgemm) 3.23x fp32"


def test_int8_that_is_slower_everywhere_is_not_used_and_says_so():
    plan = choose(SHAPES, ms(float32=[1, 1, 1], int8=[2, 2, 2]), torch.float32, "int8")
    assert plan.int8 == frozenset()
    assert plan.describe() == "float32: int8 (fbgemm) unused, measured 0.50x float32 here"


def test_int8_without_fbgemm_in_this_torch_build_says_so():
    plan = choose(SHAPES, ms(float32=[1, 1, 1]), torch.float32, "int8")  # int8 could not be a candidate
    assert plan.int8 == frozenset()
    assert plan.describe().startswith("float32: int8 unavailable, this torch build has no fbgemm")


def test_auto_picks_bfloat16_only_where_it_is_measured_faster():
    emulated = choose(SHAPES, ms(float32=[1, 1, 1], bfloat16=[5, 5, 5]), None, "none")
    assert emulated.dtype == torch.float32 and emulated.describe() == "float32 (bf16 measured 0.20x fp32)"
    native = choose(SHAPES, ms(float32=[2, 2, 2], bfloat16=[1, 1, 1]), None, "none")
    assert native.dtype == torch.bfloat16 and native.describe() == "bfloat16 2.0x fp32"
    untimed = choose(SHAPES, ms(float32=[1, 1, 1]), None, "none")  # bf16 not a candidate: fp32
    assert untimed.dtype == torch.float32
    # int8 beside the chosen float dtype, not beside fp32
    mixed = choose(SHAPES, ms(float32=[4, 4, 4], bfloat16=[2, 2, 2], int8=[1, 3, 3]), None, "int8")
    assert mixed.dtype == torch.bfloat16 and mixed.int8 == {"64x64"}


def test_plan_times_only_what_there_is_to_choose():
    asked = []

    def timings(candidates, shapes):
        asked.append(candidates)
        return {c: {s.key: 1.0 for s in shapes} for c in candidates}

    assert kernels.plan(SHAPES, CPU, torch.float32, "none", timings).dtype == torch.float32
    assert asked == []  # nothing to choose: nothing timed
    kernels.plan(SHAPES, CPU, None, "none", timings)
    kernels.plan(SHAPES, CPU, torch.float32, "int8", timings)
    assert asked == [["float32", "bfloat16"], ["float32", "int8"]]
    gpu = kernels.plan(SHAPES, torch.device("meta"), torch.float16, "int8", timings)
    assert len(asked) == 2 and gpu.int8 == {s.key for s in SHAPES} and gpu.describe().startswith("int8 (weight-only)")


def test_model_shapes_count_every_linear_layer(coda_v0_dir):
    from coda_core.config import load_config
    from coda_core.loading import meta_model

    config = load_config(coda_v0_dir)
    shapes = kernels.model_shapes(config)
    linears = [m for m in meta_model(config).modules() if isinstance(m, torch.nn.Linear)]
    assert sum(s.count for s in shapes) == len(linears)
    assert sum(s.count * s.in_features * s.out_features for s in shapes) == sum(m.weight.numel() for m in linears)
    assert [s.head for s in shapes].count(True) == 1 and shapes[-1].rows == kernels.ROWS[:1]


# -- the cache --------------------------------------------------------------------------

def test_timings_are_measured_once_per_machine_and_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("CODA_CACHE", str(tmp_path))
    calls = []

    def timer(candidate, shape):
        calls.append((candidate, shape.key))
        return {"float32": 2.0, "int8": 1.0}[candidate]

    first = kernels.measured(["float32", "int8"], SHAPES, timer)
    assert len(calls) == 6 and first["int8"]["64x64"] == 1.0
    again = kernels.measured(["float32", "int8"], SHAPES, lambda c, s: pytest.fail("timed again"))
    assert again == first
    stored = json.loads((tmp_path / "kernels.json").read_text())
    assert list(stored) == [kernels.machine_key()]

    monkeypatch.setattr(kernels, "machine_key", lambda: "another CPU")  # another machine times anew
    kernels.measured(["float32"], SHAPES[:1], timer)
    assert len(calls) == 7 and len(json.loads((tmp_path / "kernels.json").read_text())) == 2


def test_a_damaged_cache_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv("CODA_CACHE", str(tmp_path))
    (tmp_path / "kernels.json").write_text("{not json")
    got = kernels.measured(["float32"], SHAPES[:1], lambda c, s: 3.0)
    assert got == {"float32": {"64x64": 3.0}}
    assert json.loads((tmp_path / "kernels.json").read_text())  # rewritten whole


def test_a_real_timing_is_a_positive_number_for_every_candidate():
    for candidate in ("float32", "bfloat16", "int8"):
        assert kernels.time_candidate(candidate, Shape(32, 48), repeats=1) > 0


# -- what the loader builds -------------------------------------------------------------

def forced(dtype, int8):
    """A plan from timings where int8 wins (or loses) everywhere."""
    return lambda candidates, shapes: {c: {s.key: (1.0 if (c == "int8") == int8 else 2.0) for s in shapes}
                                       for c in candidates}


def test_the_loader_builds_what_the_plan_says(tiny_model_dir):
    from coda_core.config import load_config

    config = load_config(tiny_model_dir)
    every = kernels.plan(config, CPU, torch.float32, "int8", forced(torch.float32, True))
    assert every.int8 == kernels.every_layer(config, CPU, torch.float32, "int8").int8
    model = load_model(tiny_model_dir, dtype="float32", quantize="int8", plan=every)
    layers = [m for m in model.modules() if isinstance(m, Int8Linear)]
    assert len(layers) == sum(s.count for s in every.shapes) and all(m.kernel == "fbgemm" for m in layers)
    assert model.kernel_plan is every

    only_mlp = choose(every.shapes, {"float32": {s.key: 2.0 for s in every.shapes},
                                     "int8": {s.key: (1.0 if s.in_features == config.intermediate_size else 3.0)
                                              for s in every.shapes}}, torch.float32, "int8")
    model = load_model(tiny_model_dir, dtype="float32", quantize="int8", plan=only_mlp)
    int8 = {name for name, m in model.named_modules() if isinstance(m, Int8Linear)}
    assert int8 and all(name.endswith("down_proj") for name in int8)

    none = kernels.plan(config, CPU, torch.float32, "int8", forced(torch.float32, False))
    model = load_model(tiny_model_dir, dtype="float32", quantize="int8", plan=none)
    assert quantization(model) == "none" and "int8 (fbgemm) unused" in model.kernel_plan.describe()
