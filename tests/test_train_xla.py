"""The xla backend for real: torch_xla SPMD on a 4-device CPU mesh, in the second venv `make test` builds.

torch_xla needs torch==2.9.0 exactly, so it lives in .venv-xla (see the
Makefile); this test drives a trainer there with PJRT_DEVICE=CPU
CPU_NUM_DEVICES=4.
"""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
XLA_PYTHON = Path(os.environ.get("CODA_XLA_PYTHON", ROOT / ".venv-xla" / "bin" / "python"))

SCRIPT = r"""
import json, sys, torch
from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer
from coda_train.data import prepare
from coda_train.recipe import recipe_from_dict
from coda_train.trainer import Trainer

work = sys.argv[1]
prepare([sys.argv[2]], load_tokenizer(BUNDLED_TOKENIZER), work + "/data", seq_len=64, languages={"python"},
        progress=False)
recipe = recipe_from_dict({
    "stage": "pretrain", "model": {"init": "preset", "preset": "tiny"},
    "data": {"train": work + "/data", "valid_sequences": 8},
    "masking": {"start": {"block": 0.5}}, "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 0.0},
    "lr_schedule": {"decay": "constant"}, "train": {"steps": 6, "batch_size": 4, "eval_batches": 1},
    "backend": {"name": "xla", "mesh": {"fsdp": 4, "tensor": 1}}, "out": work + "/run"})
trainer = Trainer(recipe, progress=False)
rows = trainer.reader.dataset.rows(list(range(4)))  # one fixed batch, masked the same way each time

def fixed_loss():
    with torch.no_grad():
        loss, _ = trainer._loss(trainer._masked(rows, torch.Generator().manual_seed(7), 0))
        return float(loss)

before = fixed_loss()
for _ in range(6):
    trainer.train_step()
print(json.dumps({"devices": str(trainer.backend.mesh.get_logical_mesh().shape),
                  "sharding": trainer.backend.sharding(trainer.model),
                  "device": str(trainer.backend.device), "before": before, "after": fixed_loss()}))
"""


def test_xla_backend_trains_sharded_over_four_cpu_devices(tmp_path):
    assert XLA_PYTHON.exists(), f"{XLA_PYTHON} is missing: `make test` builds the torch_xla venv"
    env = {**os.environ, "PJRT_DEVICE": "CPU", "CPU_NUM_DEVICES": "4", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([str(XLA_PYTHON), "-c", SCRIPT, str(tmp_path), str(ROOT / "coda_core")],
                            capture_output=True, text=True, env=env, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["device"].startswith("xla")
    matrices = {name: spec for name, spec in report["sharding"].items() if not name.endswith("norm.weight")}
    assert matrices and all("devices=[4,1]0,1,2,3" in spec for spec in matrices.values()), matrices
    assert report["after"] < report["before"], report
