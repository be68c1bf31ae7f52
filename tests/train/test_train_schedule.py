"""The trainer's clock and batches: LR schedules, a time budget that ends a stage annealed, batches masked
ahead on a worker thread, bf16 by what the CPU has, and `coda train bench`'s MFU and data figures."""

import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coda_train.prefetch import Prefetcher, Prepared
from coda_train.recipe import LrScheduleSpec, OptimizerSpec, Recipe, RecipeError, TrainSpec, load_recipe
from coda_train.schedule import lr_at
from coda_train.trainer import uses_bf16

from test_train import code_data, coda, write_recipe  # noqa: F401  (code_data is a fixture)


def with_values(path: Path, **sections) -> Path:
    """The recipe at `path` with some sections' keys set."""
    values = json.loads(path.read_text())
    for section, keys in sections.items():
        values.setdefault(section, {}).update(keys)
    path.write_text(json.dumps(values))
    return path


def test_wsd_holds_the_peak_then_decays_to_the_minimum_at_the_last_step():
    recipe = Recipe(optimizer=OptimizerSpec(lr=1.0), train=TrainSpec(steps=10),
                    lr_schedule=LrScheduleSpec(warmup_steps=2, decay="wsd", decay_fraction=0.25, min_ratio=0.1))
    lrs = [lr_at(step, recipe) for step in range(10)]
    assert lrs[:2] == [0.5, 1.0]  # warmup
    assert lrs[2:8] == [1.0] * 6  # stable: progress (step - 2) / 7 up to 0.75
    assert lrs[8] == pytest.approx(0.1 + 0.9 * (1 - 6 / 7) / 0.25)
    assert lrs[9] == pytest.approx(0.1)  # annealed at the last step
    # with a progress given (a time budget's), the same shape by that progress
    assert lr_at(5, recipe, progress=0.75) == 1.0 and lr_at(5, recipe, progress=1.0) == pytest.approx(0.1)


def test_a_stage_cut_by_time_ends_annealed(tmp_path, code_data):
    recipe = with_values(write_recipe(tmp_path / "r.yaml", code_data, tmp_path / "run", steps=1_000_000,
                                      max_seconds=6, checkpoint_every=0, log_every=1),
                         lr_schedule={"warmup_steps": 2, "decay": "wsd", "decay_fraction": 0.3, "min_ratio": 0.05})
    summary = json.loads(coda("train", "run", recipe).stdout)
    assert summary["stopped_by"] == "time" and 2 < summary["steps"] < 1_000_000
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in records if "lr" in r]
    assert len(lrs) == summary["steps"]
    assert max(lrs) == pytest.approx(3e-3)  # the stable phase ran at the peak
    assert lrs[-1] == pytest.approx(0.05 * 3e-3)  # and the stage ended at the minimum, annealed
    peak = lrs.index(max(lrs))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1:]))  # falling from the peak to the end
    assert records[-1]["valid_loss"] == summary["valid_loss"]  # the final evaluation ran
    assert (tmp_path / "run" / "export" / "config.json").is_file()


def test_batches_masked_ahead_train_as_batches_masked_in_line(tmp_path, code_data):
    finals = []
    for depth in (0, 2):
        out = tmp_path / f"depth{depth}"
        coda("train", "run", write_recipe(tmp_path / f"{depth}.yaml", code_data, out, steps=6, grad_accum=2,
                                          prefetch=depth, checkpoint_every=0))
        finals.append(load_file(out / "checkpoints" / "step-000000006" / "model.safetensors"))
        records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        steps = [r for r in records if "lr" in r]
        assert len(steps) == 6 and all(r["data_ms"] > 0 and r["data_wait_ms"] >= 0 for r in steps)
    a, b = finals
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_failing_batch_worker_raises_in_the_step():
    made = []

    def make(step):
        made.append(step)
        if step == 2:
            raise ValueError("row 7 is corrupt")
        return Prepared(step, micro=[], reader_state={}, epoch=0.0, seconds=0.0)

    prefetcher = Prefetcher(make, first=0, depth=2)
    assert prefetcher.get(0).step == 0 and prefetcher.get(1).step == 1
    with pytest.raises(ValueError, match="row 7 is corrupt"):
        prefetcher.get(2)
    prefetcher.close()
    assert made == [0, 1, 2] and not any(t.name == "coda-train-batches" for t in threading.enumerate())


@pytest.mark.parametrize("bf16_ms", [0.5, 2.0])
def test_bf16_auto_follows_what_this_cpu_measured(tmp_path, monkeypatch, bf16_ms):
    # auto is bf16 only where a bf16 matmul is measured faster than fp32 (coda_core.kernels); these
    # timings stand in for this machine's, through its cache
    from coda_core import kernels

    monkeypatch.setenv("CODA_CACHE", str(tmp_path / "cache"))
    kernels.measured(["float32", "bfloat16"], kernels.SQUARE, lambda candidate, shape: {"float32": 1.0,
                                                                                      "bfloat16": bf16_ms}[candidate])
    assert uses_bf16("auto", torch.device("cpu")) == (bf16_ms < 1.0)
    assert uses_bf16(True, torch.device("cpu")) and not uses_bf16(False, torch.device("cpu"))
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"model": {"preset": "tiny"}, "data": {"train": "x"}, "train": {"bf16": "sometimes"}}))
    with pytest.raises(RecipeError, match="train.bf16 must be true, false or auto"):
        load_recipe(recipe)
    recipe.write_text(json.dumps({"model": {"preset": "tiny"}, "data": {"train": "x"}, "train": {"max_seconds": 0}}))
    with pytest.raises(RecipeError, match="train.max_seconds must be a number of seconds > 0"):
        load_recipe(recipe)
    for name in ("mini-pretrain", "mini-midtrain", "mini-sft", "mini-infill"):
        assert load_recipe(Path(__file__).parents[2] / "train" / "recipes" / f"{name}.yaml").train.bf16 == "auto"


def test_train_bench_reports_mfu_and_what_masking_costs_the_step(tmp_path, code_data):
    recipe = write_recipe(tmp_path / "r.yaml", code_data, tmp_path / "run", batch_size=4)
    result = coda("train", "bench", recipe, "--variants", "fp32,fp32+inline", "--rounds", "3", "--warmup", "1",
                  "--device", "cpu", "--json")
    report = json.loads(result.stdout)
    assert report["device"] == "cpu" and [r["variant"] for r in report["variants"]] == ["fp32", "fp32+inline"]
    for row in report["variants"]:
        assert 0 < row["mfu"] == row["of_peak"] and row["data_ms"] > 0
    inline = report["variants"][1]
    assert inline["data_wait_ms"] >= inline["data_ms"]  # in line, the step waits for all of its masking
    bad = coda("train", "bench", recipe, "--variants", "fp16", check=False)
    assert bad.returncode == 2 and "unknown variant 'fp16'" in bad.stderr
