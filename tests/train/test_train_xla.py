"""The xla backend for real: torch_xla SPMD on a 4-device CPU mesh, in the second venv `make test` builds.

torch_xla needs torch==2.9.0 exactly, so it lives in .venv-xla (see the
Makefile); these tests drive a trainer and the backend there with
PJRT_DEVICE=CPU CPU_NUM_DEVICES=4.

torch_xla's CPU runtime is one process per world (two processes started as
two "hosts" each see process_count() == 1 and their own devices), so the
multi-host batch is tested in one process: the backend's check of
backend.hosts against the runtime, and two simulated hosts' shards joined by
the same torch_xla call the backend makes on a pod.
"""

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
XLA_PYTHON = Path(os.environ.get("CODA_XLA_PYTHON", ROOT / ".venv-xla" / "bin" / "python"))

SCRIPT = r"""
import json, sys, torch
from pathlib import Path
from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer
from coda_train.prepare import prepare
from coda_train.recipe import load_recipe
from coda_train.trainer import Trainer

work = sys.argv[1]
prepare([sys.argv[2]], load_tokenizer(BUNDLED_TOKENIZER), work + "/data", seq_len=64, languages={"python"},
        progress=False)
recipe = Path(work) / "recipe.yaml"
recipe.write_text(json.dumps({  # JSON is YAML
    "stage": "pretrain", "model": {"init": "preset", "preset": "tiny"},
    "data": {"train": work + "/data", "valid_sequences": 8},
    "masking": {"start": {"block": 0.5}}, "optimizer": {"name": "adamw", "lr": 3e-3, "weight_decay": 0.0},
    "lr_schedule": {"decay": "constant"}, "train": {"steps": 6, "batch_size": 4, "eval_batches": 1},
    "backend": {"name": "xla", "mesh": {"fsdp": 4, "tensor": 1}, "hosts": 1}, "out": work + "/run"}))
trainer = Trainer(load_recipe(recipe), progress=False)
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


HOSTS_SCRIPT = r"""
import json, torch, torch_xla
from coda_core.errors import CodaError
from coda_train.parallel import XlaBackend, device_blocks, local_shards

report = {}
try:
    XlaBackend(4, 1, hosts=2)  # a pod recipe started as one process
except CodaError as exc:
    report["hosts_error"] = str(exc)
backend = XlaBackend(2, 2, hosts=1)
rows = torch.arange(24).reshape(8, 3)
placed = backend.to_device(rows)
report["one_host"] = {"equal": torch.equal(placed.cpu(), rows), "shape": list(placed.shape),
                      "sharding": torch_xla._XLAC._get_xla_sharding_spec(placed),
                      "bool": torch.equal(backend.to_device(rows > 5).cpu(), rows > 5),
                      "odd": torch.equal(backend.to_device(rows[:3]).cpu(), rows[:3])}

# Two hosts simulated on the 4 CPU devices of a (fsdp 4, tensor 1) mesh: host 0 feeds devices 0 and 2,
# host 1 devices 1 and 3 (runtimes need not number a host's devices contiguously). Each host has 2 rows;
# each builds its devices' shards as XlaBackend.to_device does, and the one torch_xla call joins them.
backend = XlaBackend(4, 1, hosts=1)
mesh = backend.mesh.device_ids.reshape(4, 1)
owner = {0: 0, 2: 0, 1: 1, 3: 1}
host_rows = {0: torch.tensor([[10, 11], [12, 13]]), 1: torch.tensor([[20, 21], [22, 23]])}
shard_of = {}
for host in (0, 1):
    local = [d for d in (0, 1, 2, 3) if owner[d] == host]
    shards, per_block = local_shards(host_rows[host], device_blocks(mesh, local))
    shard_of.update(zip(local, shards))
order = [int(d.rsplit(":", 1)[-1]) for d in torch_xla._XLAC._xla_get_runtime_devices()]
joined = torch_xla._XLAC._global_tensor_from_cpu_shards([shard_of[d] for d in order],
                                                        backend.mesh.get_op_sharding(("fsdp", None)), [4, 2])
report["two_hosts"] = joined.cpu().tolist()
print(json.dumps(report))
"""


def run_xla(script, *args):
    assert XLA_PYTHON.exists(), f"{XLA_PYTHON} is missing: `make test` builds the torch_xla venv"
    env = {**os.environ, "PJRT_DEVICE": "CPU", "CPU_NUM_DEVICES": "4", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([str(XLA_PYTHON), "-c", script, *map(str, args)], capture_output=True, text=True,
                            env=env, timeout=900, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_xla_backend_trains_sharded_over_four_cpu_devices(tmp_path):
    report = run_xla(SCRIPT, tmp_path, ROOT / "coda_core")
    assert report["device"].startswith("xla")
    matrices = {name: spec for name, spec in report["sharding"].items() if not name.endswith("norm.weight")}
    assert matrices and all("devices=[4,1]0,1,2,3" in spec for spec in matrices.values()), matrices
    assert report["after"] < report["before"], report


def test_xla_batches_are_global_and_hosts_are_checked_against_the_runtime():
    report = run_xla(HOSTS_SCRIPT)
    assert "backend.hosts is 2, but this run has 1 process" in report["hosts_error"], report
    one = report["one_host"]
    assert one["equal"] and one["shape"] == [8, 3] and one["bool"] and one["odd"], one
    assert one["sharding"] == "{devices=[2,1,2]0,1,2,3 last_tile_dim_replicate}", one  # fsdp rows, tensor copies
    # devices 0..3 hold blocks 0..3: host 0's rows fill blocks 0 and 2, host 1's blocks 1 and 3
    assert report["two_hosts"] == [[10, 11], [20, 21], [12, 13], [22, 23]], report
