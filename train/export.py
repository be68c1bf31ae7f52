"""`coda train export CKPT --out DIR`: a training checkpoint as a model directory.

The result is the model format `coda_core.loading.load_model` opens:
config.json, sharded safetensors and the tokenizer, written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from coda_core.config import config_from_dict
from coda_core.errors import CheckpointError
from coda_core.loading import save_model_dir
from coda_core.model import CoDALanguageModel
from coda_core.tokenizer import load_tokenizer


def export_checkpoint(ckpt: str | Path, out: str | Path, max_shard_size: str = "2GB") -> Path:
    ckpt = Path(ckpt)
    trainer_file = ckpt / "trainer.json"
    if not trainer_file.exists():
        raise CheckpointError(f"{ckpt} is not a training checkpoint (no trainer.json); "
                              "pass a folder like <out>/checkpoints/step-000000100")
    trainer = json.loads(trainer_file.read_text())
    model = CoDALanguageModel(config_from_dict(trainer["config"]))
    state = load_file(ckpt / "model.safetensors")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{ckpt}: parameters missing {missing[:3]}, unexpected {unexpected[:3]}")
    return save_model_dir(model, load_tokenizer(trainer["tokenizer_dir"]), out, max_shard_size=max_shard_size)
