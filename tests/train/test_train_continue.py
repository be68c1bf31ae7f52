"""Short runs that add up: a pipeline continued `--from` a shipped model, rows longer than a shape's
context, and the GPU pipeline recipe (train/recipes/mini-gpu.yaml), checked without a GPU."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from coda_core.config import CoDAConfig
from coda_train.pipeline import load_pipeline
from coda_train.recipe import load_recipe

from test_train import RECIPES, ROOT, coda

MINI_TOKENIZER = ROOT / "coda_core" / "assets" / "coda-mini"


def write_pipeline(folder: Path, seq_len: int, lr: float) -> Path:
    """One mini-s pre-training stage of 3 steps on this package's sources, in rows of `seq_len` tokens."""
    stage = {"stage": "pretrain", "model": {"init": "preset", "preset": "mini-s", "tokenizer": str(MINI_TOKENIZER)},
             "data": {"train": "unused", "valid_sequences": 2},
             "masking": {"schedule": "constant", "start": {"block": 0.3, "infill": 0.3}},
             "optimizer": {"name": "adamw", "lr": lr, "weight_decay": 0.0},
             "train": {"steps": 3, "batch_size": 2, "eval_batches": 1, "checkpoint_every": 0, "log_every": 1,
                       "bf16": False, "compile": False},
             "backend": {"name": "torch", "device": "cpu"}}
    (folder / "stage.yaml").write_text(json.dumps(stage))  # JSON is YAML
    pipeline = {"out": "unused", "tokenizer": str(MINI_TOKENIZER),
                "data": {"code": {"src": [str(ROOT / "coda_core")], "languages": ["python"], "seq_len": seq_len}},
                "stages": [{"recipe": "stage.yaml", "data": "code"}]}
    (folder / "pipeline.yaml").write_text(json.dumps(pipeline))
    return folder / "pipeline.yaml"


def test_a_run_continues_from_a_shipped_model_and_its_summary_adds_up(tmp_path):
    first = write_pipeline(tmp_path, seq_len=1024, lr=3e-3)
    coda("train", "pipeline", first, "--out", tmp_path / "run1")
    coda("train", "ship", tmp_path / "run1", "--out", tmp_path / "model1")
    # rows of 1,024 tokens taught mini-s (a 512-position shape) 1,024 positions, and the config says so
    config = json.loads((tmp_path / "model1" / "config.json").read_text())
    assert config["max_position_embeddings"] == 1024 and CoDAConfig(**config).max_position_embeddings == 1024

    # with the LR at 0 the continued stage's weights are exactly the ones it started from
    again = tmp_path / "again"
    again.mkdir()
    second = write_pipeline(again, seq_len=1024, lr=0.0)
    coda("train", "pipeline", second, "--out", tmp_path / "run2", "--from", tmp_path / "model1")
    shipped = load_file(tmp_path / "model1" / "model.safetensors")
    continued = load_file(tmp_path / "run2" / "pretrain" / "export" / "model.safetensors")
    assert shipped.keys() == continued.keys()
    assert all(torch.equal(continued[k], shipped[k].float()) for k in shipped)
    assert json.loads((tmp_path / "run2" / "from.json").read_text())["model"] == str((tmp_path / "model1").resolve())

    summary = json.loads(coda("train", "ship", tmp_path / "run2", "--out", tmp_path / "model2").stdout)
    assert summary["stages"]["pretrain"]["steps"] == 3
    earlier = summary["continued_from"]["training"]["stages"]["pretrain"]
    assert earlier["steps"] == 3 and earlier["valid_loss"] < earlier["first_valid_loss"]
    assert (ROOT / "docs" / "images").is_dir() and not (tmp_path / "docs").exists()  # the card's curves untouched


def test_the_gpu_pipeline_recipe_loads_and_its_stages_validate():
    path = RECIPES / "mini-gpu.yaml"
    spec = load_pipeline(path)
    assert [s.get("name") for s in spec["stages"]] == ["stable", "decay", None]
    assert {d["seq_len"] for d in (spec["data"]["code"], spec["data"]["valid"])} == {1024}
    assert all(d["workers"] == "auto" for d in spec["data"].values())
    recipes = [load_recipe(path.parent / s["recipe"]).validate() for s in spec["stages"]]
    assert [r.stage for r in recipes] == ["pretrain", "midtrain", "sft"]
    assert all(r.backend.device == "cuda" and r.train.max_seconds and r.train.bf16 == "auto" for r in recipes)
    assert recipes[0].model.preset == "mini-l" and recipes[0].lr_schedule.decay == "constant"
    assert recipes[1].lr_schedule.decay == "linear" and recipes[1].lr_schedule.min_ratio < 0.1
    # about 8 minutes on one GPU: the three budgets leave room for compiling, evaluating and exporting
    assert sum(r.train.max_seconds for r in recipes) <= 6 * 60
