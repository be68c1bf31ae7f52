"""`coda train`: data preparation, recipes, checkpoints and resume, export, the tiny CPU pipeline, dry runs."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "train" / "recipes"
CODA = [sys.executable, "-m", "coda_cli"]


def coda(*args, cwd=None, check=True, timeout=900):
    result = subprocess.run([*CODA, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def code_data(tmp_path_factory):
    """This package's own Python sources, prepared in short rows."""
    from coda_train.prepare import prepare

    out = tmp_path_factory.mktemp("data") / "code"
    prepare([str(ROOT / "coda_core")], load_tokenizer(BUNDLED_TOKENIZER), out, seq_len=64, languages={"python"},
            progress=False)
    return out


def write_recipe(path: Path, data: Path, out: Path, **train) -> Path:
    settings = {"steps": 8, "batch_size": 2, "seed": 0, "eval_batches": 1, "checkpoint_every": 1,
                "keep_checkpoints": 3, **train}
    path.write_text(json.dumps({  # JSON is YAML
        "stage": "pretrain", "model": {"init": "preset", "preset": "tiny"},
        "data": {"train": str(data), "valid_sequences": 4},
        "masking": {"schedule": "linear", "start": {"block": 0.5, "syntax": 0.3}, "end": {"prefix": 0.2, "suffix": 0.2}},
        "optimizer": {"name": "adamw", "lr": 3e-3}, "train": settings,
        "backend": {"name": "torch", "device": "cpu"}, "out": str(out)}))
    return path


# -- data ------------------------------------------------------------------------


def test_prepare_dedups_packs_and_records_checksums(tmp_path, code_data):
    from coda_train.data import Dataset
    from coda_train.prepare import prepare

    manifest = json.loads((code_data / "manifest.json").read_text())
    assert manifest["kind"] == "text" and manifest["seq_len"] == 64 and manifest["rows"] > 50
    shard = manifest["shards"][0]
    assert {"tokens", "nodes"} <= shard.keys() and len(shard["tokens"]["sha256"]) == 64
    data = Dataset(code_data)
    assert data.tokens.shape == (manifest["rows"], 64) and (data.nodes >= -1).all()
    assert (data.nodes >= 0).any(), "python code gets syntax-node ids for S4"
    # exact duplicates are dropped
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.py", "b.py"):
        (src / name).write_text("def f(x):\n    return x + 1\n" * 20)
    stats = prepare([str(src)], load_tokenizer(BUNDLED_TOKENIZER), tmp_path / "out", seq_len=32,
                    progress=False)["stats"]
    assert stats["documents"] == 1 and stats["duplicates"] == 1


def test_prepare_in_worker_processes_writes_the_same_shards(tmp_path, code_data):
    """`--workers 2` tokenizes and parses in two processes; the shards are the same bytes as in one."""
    coda("train", "prepare", "--src", ROOT / "coda_core", "--tokenizer", BUNDLED_TOKENIZER, "--out", tmp_path / "d",
         "--seq-len", "64", "--languages", "python", "--workers", "2")
    one, two = (json.loads((path / "manifest.json").read_text()) for path in (code_data, tmp_path / "d"))
    assert two["shards"] == one["shards"] and two["stats"] == one["stats"]
    result = coda("train", "prepare", "--src", ROOT / "coda_core", "--tokenizer", BUNDLED_TOKENIZER,
                  "--out", tmp_path / "e", "--workers", "0", check=False)
    assert result.returncode == 2 and "workers must be at least 1" in result.stderr


def test_reader_shards_by_host_and_resumes_exactly(code_data):
    from coda_train.data import Dataset, ShardReader

    data = Dataset(code_data)
    hosts = next(h for h in (3, 4, 5, 7) if len(data) % h)  # rows left over: they are dropped
    readers = [ShardReader(data, 2, host=h, hosts=hosts) for h in range(hosts)]
    seen = [set(r.mine.tolist()) for r in readers]
    usable = len(data) - len(data) % hosts  # every host gets as many rows, so their epochs stay in step
    assert set().union(*seen) == set(range(usable)) and sum(map(len, seen)) == usable
    assert {len(s) for s in seen} == {usable // hosts}
    reader = ShardReader(data, 4, seed=3)
    for _ in range(5):
        reader.next()
    state = reader.state()
    expected = [reader.next().ids for _ in range(30)]  # crosses an epoch boundary
    reader.load_state(state)
    assert all(torch.equal(a, reader.next().ids) for a in expected)


def test_sft_records_keep_prompt_lengths_and_drop_long_examples(tmp_path):
    from coda_train.data import Dataset
    from coda_train.prepare import prepare

    records = tmp_path / "chat.jsonl"
    records.write_text("\n".join(json.dumps({"prompt": f"Say {i}", "response": f"{i}" * (1 if i else 300)})
                                 for i in range(6)))
    manifest = prepare([str(records)], load_tokenizer(BUNDLED_TOKENIZER), tmp_path / "sft", seq_len=48,
                       progress=False)
    assert manifest["kind"] == "sft" and manifest["stats"]["dropped_long"] == 1 and manifest["rows"] == 5
    data = Dataset(tmp_path / "sft")
    assert (data.prompt_len > 5).all() and (data.prompt_len < 48).all()


# -- bad input ----------------------------------------------------------------------


def test_bad_data_and_recipes_get_clear_errors(tmp_path, code_data):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = coda("train", "prepare", "--src", empty, "--tokenizer", BUNDLED_TOKENIZER, "--out", tmp_path / "d",
                  check=False)
    assert result.returncode == 2 and "no training rows" in result.stderr and "Traceback" not in result.stderr
    result = coda("train", "prepare", "--src", tmp_path / "missing", "--tokenizer", BUNDLED_TOKENIZER,
                  "--out", tmp_path / "d", check=False)
    assert result.returncode == 2 and "does not exist" in result.stderr

    recipe = write_recipe(tmp_path / "r.yaml", code_data, tmp_path / "run")
    values = json.loads(recipe.read_text())
    values["train"]["stpes"] = 3
    recipe.write_text(json.dumps(values))
    result = coda("train", "run", recipe, check=False)
    assert result.returncode == 2 and "'train.stpes'" in result.stderr and str(recipe) in result.stderr

    result = coda("train", "run", write_recipe(tmp_path / "m.yaml", tmp_path / "nodata", tmp_path / "run"),
                  check=False)
    assert result.returncode == 2 and "not prepared data" in result.stderr


def test_a_corrupted_shard_is_named(tmp_path, code_data):
    import shutil

    from coda_train.data import DataError, Dataset

    copy = tmp_path / "copy"
    shutil.copytree(code_data, copy)
    shard = sorted(copy.glob("tokens-*.bin"))[0]
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=f"{shard.name} is corrupt"):
        Dataset(copy)


# -- checkpoints: kill, resume, export -------------------------------------------------


def test_killed_run_resumes_to_the_same_parameters(tmp_path, code_data):
    straight = write_recipe(tmp_path / "straight.yaml", code_data, tmp_path / "straight")
    coda("train", "run", straight)
    interrupted = write_recipe(tmp_path / "interrupted.yaml", code_data, tmp_path / "interrupted")
    stop_after = random.Random(0).randint(2, 6)  # killed once this step is saved, before the last (8)
    process = subprocess.Popen([*CODA, "train", "run", str(interrupted)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "interrupted" / "checkpoints"
    deadline = time.monotonic() + 300
    while not (checkpoints / f"step-{stop_after:09d}").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "interrupted" / "export").exists()
    coda("train", "run", interrupted, "--resume")

    final = "checkpoints/step-000000008/model.safetensors"
    a, b = load_file(tmp_path / "straight" / final), load_file(tmp_path / "interrupted" / final)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # only the newest keep_checkpoints are kept, and no temporary folder is left behind
    assert [p.name for p in sorted(checkpoints.iterdir())] == [f"step-{s:09d}" for s in (6, 7, 8)]

    # resuming with a recipe the checkpoint does not fit is refused, naming what differs
    values = json.loads(interrupted.read_text())
    values["train"]["batch_size"] = 4
    interrupted.write_text(json.dumps(values))
    result = coda("train", "run", interrupted, "--resume", check=False)
    assert result.returncode == 2 and "batch_size" in result.stderr and "cannot resume" in result.stderr


def test_export_opens_with_load_model(tmp_path, code_data):
    from coda_core.loading import default_dtype, load_model

    coda("train", "run", write_recipe(tmp_path / "r.yaml", code_data, tmp_path / "run", steps=2))
    out = tmp_path / "exported"
    coda("train", "export", tmp_path / "run" / "checkpoints" / "step-000000002", "--out", out)
    state = load_file(tmp_path / "run" / "checkpoints" / "step-000000002" / "model.safetensors")
    exact = load_model(out, dtype="float32")  # the export keeps the checkpoint's fp32 weights bit for bit
    assert torch.equal(exact.state_dict()["lm_head.weight"], state["lm_head.weight"])
    # dtype=auto is bf16 where this CPU computes it faster than fp32 (measured), fp32 elsewhere:
    # the weights are then the checkpoint's, rounded once to that dtype.
    auto = load_model(out)
    assert auto.lm_head.weight.dtype == auto.kernel_plan.dtype == default_dtype(torch.device("cpu"), auto.config)
    assert torch.equal(auto.state_dict()["lm_head.weight"], state["lm_head.weight"].to(auto.lm_head.weight.dtype))
    result = coda("train", "export", tmp_path, "--out", tmp_path / "x", check=False)
    assert result.returncode == 2 and "not a training checkpoint" in result.stderr


# -- the pipeline ---------------------------------------------------------------------


def test_tiny_cpu_pipeline_end_to_end(tmp_path):
    from coda_core.sampler import Sampler

    result = coda("train", "pipeline", RECIPES / "tiny-cpu.yaml", cwd=tmp_path, timeout=1200)
    summaries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [s["stage"] for s in summaries] == ["pretrain", "midtrain", "sft"]
    for s in summaries:
        assert s["valid_loss"] < s["first_valid_loss"], f"validation loss did not fall in {s['stage']}"
        stage = tmp_path / "runs" / "tiny-cpu" / s["stage"]
        assert (stage / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        records = [json.loads(line) for line in (stage / "metrics.jsonl").read_text().splitlines()]
        assert {"loss", "masked_accuracy", "tokens_per_s", "lr", "grad_norm"} <= records[1].keys()
    sampler = Sampler.load(str(tmp_path / "runs" / "tiny-cpu" / "sft" / "export"))
    tok = sampler.tokenizer
    assert sampler.infill(tok.encode("def add(a, b):\n    return"), tok.encode("\n"), 8).stats.complete
    # a rerun finds every stage exported and skips it
    again = coda("train", "pipeline", RECIPES / "tiny-cpu.yaml", cwd=tmp_path)
    assert all(json.loads(line).get("skipped") for line in again.stdout.splitlines())
    # `coda train ship` reports the stages in the order they ran and ships the last one's export
    from coda_train.ship import ship

    run = tmp_path / "runs" / "tiny-cpu"
    shipped = ship(run, out=tmp_path / "shipped", images=tmp_path / "images")
    assert list(shipped["stages"]) == ["pretrain", "midtrain", "sft"]
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == [
        "coda-mini-midtrain.png", "coda-mini-pretrain.png", "coda-mini-sft.png"]
    final = load_file(run / "sft" / "export" / "model.safetensors")["lm_head.weight"]
    assert torch.equal(load_file(tmp_path / "shipped" / "model.safetensors")["lm_head.weight"], final.bfloat16())


# -- dry runs of the shipped TPU recipes ---------------------------------------------------


# Memory per device of the shipped recipes, GiB: the figures docs/TRAINING.md publishes (to 0.01).
SHIPPED_TOTAL_GIB = {"coda-1.7b-v4-1024-pretrain.yaml": 18.03, "coda-1.7b-v4-1024-midtrain.yaml": 18.03,
                     "coda-1.7b-v4-1024-sft.yaml": 5.53, "coda-1.7b-v5p-64-pretrain.yaml": 36.47,
                     "coda-1.7b-v5p-64-midtrain.yaml": 36.47, "coda-1.7b-v5p-64-sft.yaml": 11.47}
CODA_V0_PARAMETERS = 2_031_739_904  # untied lm_head, vocabulary 151,936 (shared/reference/README.md)


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("coda-1.7b-*.yaml")))
def test_shipped_tpu_recipes_pass_the_dry_run(recipe):
    import yaml

    report = json.loads(coda("train", "run", RECIPES / recipe, "--dry-run", "--json").stdout)
    values = yaml.safe_load((RECIPES / recipe).read_text())  # the recipe itself, not the estimator's reading
    t, mesh, hosts = values["train"], values["backend"]["mesh"], values["backend"]["hosts"]
    devices = mesh["fsdp"] * mesh.get("tensor", 1)
    assert report["backend"] == "xla" and report["mesh"]["devices"] == devices == {"v4": 512, "v5p": 32}[
        values["backend"]["chip"]]
    assert report["parameters"] == CODA_V0_PARAMETERS
    specs = {p["name"]: p["spec"] for p in report["sharding"]}
    assert specs["model.layers.0.self_attn.q_proj.weight"] == ["fsdp", None]
    # each host reads its share of the global batch, each device holds batch / fsdp rows
    per_device = t["batch_size"] // mesh["fsdp"]
    assert report["batch"] == {"global": t["batch_size"], "per_host": t["batch_size"] // hosts,
                               "per_device": per_device, "seq_len": t["seq_len"], "grad_accum": t["grad_accum"]}
    memory = report["memory_gib"]
    # by hand: fp32 weights and gradients of every parameter, split over the devices (norms replicated: < 5%)
    assert 1.0 <= memory["weights_and_grads"] / (8 * CODA_V0_PARAMETERS / devices / 2**30) < 1.05
    # the logits of every row position: bf16, plus fp32 for the loss and its gradient (10 bytes a value)
    assert memory["logits"] == pytest.approx(per_device * t["seq_len"] * 151_936 * 10 / 2**30)
    assert memory["total"] == pytest.approx(SHIPPED_TOTAL_GIB[recipe], abs=0.01)
    hbm = {"v4": 32, "v5p": 95}[values["backend"]["chip"]]
    assert report["hbm_gib"] == hbm and report["fits"] and memory["total"] <= 0.9 * hbm


def test_dry_run_reports_a_recipe_that_does_not_fit(tmp_path):
    recipe = RECIPES / "coda-1.7b-v4-1024-pretrain.yaml"
    result = coda("train", "run", recipe, "--dry-run", "--set", "train.activation_checkpointing=false",
                  "--set", "train.batch_size=2048", check=False)
    assert result.returncode == 2 and "does not fit" in result.stderr


def test_fsdp2_under_torchrun_trains_checkpoints_and_resumes(tmp_path, code_data):
    """Two CPU processes (gloo) with every decoder layer and the root wrapped by fully_shard."""
    recipe = write_recipe(tmp_path / "r.yaml", code_data, tmp_path / "run", steps=2, checkpoint_every=1)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "coda_cli"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for extra in ([], ["--resume", "--set", "train.steps=3"]):
        result = subprocess.run([*torchrun, "train", "run", str(recipe), *extra], capture_output=True, text=True,
                                env=env, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
    assert len([line for line in result.stdout.splitlines() if line.startswith("{")]) == 1  # rank 0 reports
    state = load_file(tmp_path / "run" / "checkpoints" / "step-000000003" / "model.safetensors")
    assert state["lm_head.weight"].shape[0] == 151936  # whole tensors, gathered from both ranks


# -- parallelism: what the backend owns ------------------------------------------------------


def simulate_pod(batch_size, fsdp, tensor, hosts, interleaved, seq=3):
    """Every host's reader rows (distinct values) through host_batch / device_blocks / local_shards, and the
    global batch they make: block b of the global array is what the devices holding block b receive."""
    from coda_train.parallel import check_host_layout, device_blocks, host_batch, local_shards

    mesh = torch.arange(fsdp * tensor).reshape(fsdp, tensor).numpy()
    per_host = host_batch(batch_size, hosts, fsdp)
    blocks_by_device, sent = {}, []
    for host in range(hosts):
        # whole mesh rows per host: contiguous ones, or every hosts-th one (a TPU runtime need not number a
        # host's devices contiguously); the runtime's local order is shuffled as well
        rows_of_host = [r for r in range(fsdp) if (r % hosts if interleaved else r // (fsdp // hosts)) == host]
        local = [int(d) for r in rows_of_host for d in mesh[r]]
        random.Random(host).shuffle(local)
        blocks = device_blocks(mesh, local)
        check_host_layout(blocks, fsdp, hosts)
        rows = (1000 * host + torch.arange(per_host))[:, None].expand(per_host, seq)
        sent.append(rows)
        shards, per_block = local_shards(rows, blocks)
        assert per_block == batch_size // fsdp
        for device, block, shard in zip(local, blocks, shards):
            blocks_by_device[device] = (block, shard)
    assert sorted(blocks_by_device) == list(range(fsdp * tensor))  # every device is fed once
    global_batch = {}
    for block, shard in blocks_by_device.values():  # the tensor-parallel replicas of a block agree
        assert torch.equal(global_batch.setdefault(block, shard), shard)
    return torch.cat([global_batch[b] for b in range(fsdp)]), sent


@pytest.mark.parametrize("fsdp,tensor,hosts,interleaved", [(8, 1, 2, False), (8, 1, 2, True), (4, 2, 2, True),
                                                            (512, 1, 128, False), (32, 1, 8, True)])
def test_each_host_reads_its_share_and_the_shards_make_the_recipes_global_batch(fsdp, tensor, hosts,
                                                                                interleaved):
    batch_size = 512 if fsdp == 512 else 64  # the v4-1024 and v5p-64 recipes' batches
    global_batch, sent = simulate_pod(batch_size, fsdp, tensor, hosts, interleaved)
    assert [len(rows) for rows in sent] == [batch_size // hosts] * hosts
    assert global_batch.shape == (batch_size, 3)  # the recipe's batch, not batch_size x hosts
    assert sorted(global_batch[:, 0].tolist()) == sorted(torch.cat(sent)[:, 0].tolist())  # each row once


def test_batches_and_meshes_that_do_not_split_over_the_hosts_are_refused():
    from coda_core.errors import CodaError
    from coda_train.parallel import check_host_layout, device_blocks, host_batch

    with pytest.raises(CodaError, match="does not split over backend.hosts 128"):
        host_batch(500, 128, 512)
    with pytest.raises(CodaError, match="does not split over mesh.fsdp 512"):
        host_batch(256, 128, 512)
    assert host_batch(6, 1, 4) == 6  # one host may replicate a batch that fsdp does not divide
    # a tensor-parallel group of 4 spread over 2 hosts: host 0 feeds half of two groups
    mesh = torch.arange(8).reshape(2, 4).numpy()
    with pytest.raises(CodaError, match="tensor-parallel group spans hosts"):
        check_host_layout(device_blocks(mesh, [0, 1, 4, 5]), fsdp=2, hosts=2)


def test_the_backend_names_parameters_as_the_model_format_does_both_ways():
    from coda_train.parallel import TorchBackend
    from small_models import small_model

    model, plain = small_model(seed=1), small_model(seed=1).state_dict()
    backend = TorchBackend("cpu")
    model = backend.prepare(model, activation_checkpointing=True)
    assert any(".layer." in name for name in model.state_dict())  # the wrappers rename the layers
    state = backend.state_dict(model)
    assert state.keys() == plain.keys() and all(torch.equal(state[k], plain[k]) for k in plain)
    other = small_model(seed=2).state_dict()
    assert backend.load_model_state(model, other) == ([], [])
    assert all(torch.equal(backend.state_dict(model)[k], other[k]) for k in other)
    # names that do not fit come back in the model format's names, and nothing is loaded
    wrong = {("model.extra.weight" if k == "lm_head.weight" else k): v for k, v in plain.items()}
    assert backend.load_model_state(model, wrong) == (["lm_head.weight"], ["model.extra.weight"])
    assert torch.equal(backend.state_dict(model)["model.norm.weight"], other["model.norm.weight"])


def test_the_torch_backend_runs_the_lm_head_only_at_the_targets():
    from coda_train.masking import MaskingConfig, diffusion_loss, mask_batch
    from coda_train.parallel import TorchBackend
    from small_models import small_model

    model = small_model(seed=3)
    ids = torch.randint(2, 290, (3, 16), generator=torch.Generator().manual_seed(0))
    batch = mask_batch(ids, MaskingConfig(), mask_id=299, pad_id=0, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = TorchBackend("cpu").loss_logits(model, batch)
        full = model(batch.input_ids).logits
    b, j = batch.targets.nonzero(as_tuple=True)
    assert logits.shape == (len(b), 300) and torch.allclose(logits, full[b, j - 1], atol=1e-5)
    assert torch.allclose(diffusion_loss(logits, batch)[0], diffusion_loss(full, batch)[0], atol=1e-5)


def test_masking_draws_repeat_per_step_and_differ_between_readers():
    from coda_train.trainer import masking_generator

    def draw(seed, reader, step):
        return torch.rand(16, generator=masking_generator(seed, reader, step))

    assert torch.equal(draw(0, 1, 5), draw(0, 1, 5))  # what a resumed run draws
    assert not torch.equal(draw(0, 0, 5), draw(0, 1, 5))  # two hosts do not mask their rows alike
    assert not torch.equal(draw(0, 0, 5), draw(0, 0, 6)) and not torch.equal(draw(0, 0, 5), draw(1, 0, 5))


def test_pipeline_stages_of_one_kind_need_their_own_folder(tmp_path):
    from coda_train.pipeline import load_pipeline
    from coda_train.recipe import RecipeError

    stages = "  - {recipe: %s, data: code}\n  - {recipe: %s, data: code%s}\n"
    pretrain = RECIPES / "tiny-pretrain.yaml"
    base = "out: runs/x\ndata:\n  code: {src: [a]}\nstages:\n"
    (tmp_path / "same.yaml").write_text(base + stages % (pretrain, pretrain, ""))
    with pytest.raises(RecipeError, match="share one folder"):
        load_pipeline(tmp_path / "same.yaml")
    (tmp_path / "named.yaml").write_text(base + stages % (pretrain, pretrain, ", name: pretrain-ar"))
    assert [s.get("name") for s in load_pipeline(tmp_path / "named.yaml")["stages"]] == [None, "pretrain-ar"]
    assert [s.get("name") for s in load_pipeline(RECIPES / "mini-cpu.yaml")["stages"]][0] == "pretrain-ar"
