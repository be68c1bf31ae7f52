"""Training checkpoints: written atomically, the last N kept, restored exactly, never unpickled.

A checkpoint is a folder `step-000123/` holding

    model.safetensors      the parameters, named as the model format names them
    optimizer.safetensors  every tensor of the optimizer state ("state/<param>/<name>"; <param> is an
                           index, or a parameter name when the state came from FSDP2)
    rng.safetensors        the torch CPU RNG state (masking draws follow from seed, reader and step)
    trainer.json           step, data position, the optimizer's non-tensor state, the recipe's fingerprint

It is written to a temporary sibling and renamed into place, so a run killed
at any moment leaves either the whole checkpoint or none of it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from coda_core.atomic import atomic_directory
from coda_core.errors import CheckpointError

PREFIX = "step-"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {"param_groups": state["param_groups"], "state": {}}
    for param, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state/{param}/{name}"] = value.detach().contiguous().cpu()
            else:
                scalars["state"].setdefault(str(param), {})[name] = value
    return tensors, scalars


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], scalars: dict) -> dict:
    def key(param: str):
        return int(param) if param.isdigit() else param

    state: dict = {}
    for name_path, value in tensors.items():
        _, param, name = name_path.split("/", 2)
        state.setdefault(key(param), {})[name] = value
    for param, values in scalars["state"].items():
        state.setdefault(key(param), {}).update(values)
    return {"state": state, "param_groups": scalars["param_groups"]}


def save(folder: Path, step: int, model_state: dict[str, torch.Tensor], optimizer_state: dict,
         rng: dict[str, torch.Tensor], trainer: dict, keep: int) -> Path:
    """Write checkpoint `step` under `folder`, then drop all but the newest `keep`."""
    final = folder / f"{PREFIX}{step:09d}"
    with atomic_directory(final, replace=True) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model_state.items()}, tmp / "model.safetensors")
        tensors, scalars = _flatten_optimizer(optimizer_state)
        save_file(tensors, tmp / "optimizer.safetensors")
        save_file(rng, tmp / "rng.safetensors")
        (tmp / "trainer.json").write_text(json.dumps({**trainer, "step": step, "optimizer": scalars}, indent=1))
        for file in tmp.iterdir():  # on disk before the rename makes the checkpoint visible
            with open(file, "rb") as f:
                os.fsync(f.fileno())
    for old in checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints under `folder`, oldest first (temporary folders are not listed)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith(PREFIX))


def latest(folder: Path) -> Path | None:
    found = checkpoints(folder)
    return found[-1] if found else None


def load(path: Path) -> tuple[dict[str, torch.Tensor], dict, dict[str, torch.Tensor], dict]:
    """(model state, optimizer state, rng states, trainer.json) of a checkpoint folder."""
    try:
        trainer = json.loads((path / "trainer.json").read_text())
        model = load_file(path / "model.safetensors")
        optimizer = _unflatten_optimizer(load_file(path / "optimizer.safetensors"), trainer.pop("optimizer"))
        rng = load_file(path / "rng.safetensors")
    except (OSError, json.JSONDecodeError, KeyError, SafetensorError) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable: {exc}") from None
    return model, optimizer, rng, trainer
