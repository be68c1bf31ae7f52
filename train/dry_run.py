"""`coda train run RECIPE --dry-run`: check a recipe on any machine, without weights or devices.

The model is built on the meta device (no memory), the mesh is laid out from
the recipe, every parameter gets the partition spec the xla backend would
give it (`parallel.param_spec`), and the memory per device is estimated:

    weights + gradients    fp32, sharded as the spec says
    optimizer state        AdamW: two fp32 moments; Adafactor: factored row and column statistics
    activations            per decoder layer b*s*h*(34 + 5*a*s/h) bytes in 16-bit (Korthikanti et al.,
                           "Reducing Activation Recomputation in Large Transformer Models"), split by
                           tensor parallelism; with activation checkpointing only each layer's input is
                           kept, plus one layer's working set
    logits                 b*s*V, in bf16 plus fp32 for the loss and its gradient

with b the sequences per device (batch / fsdp) and s the sequence length.
The estimate ignores XLA's own buffers and fragmentation: a recipe passes
when it needs at most 90% of the chip's HBM.
"""

from __future__ import annotations

import math

import torch

from coda_core.errors import CodaError
from coda_core.model import CoDALanguageModel

from .parallel import host_batch, param_spec, shard_shape
from .recipe import Recipe

GiB = 1 << 30
HBM_GIB = {"v4": 32, "v5e": 16, "v5p": 95, "v6e": 32, "h100": 80, "h200": 141}
HEADROOM = 0.9


def _architecture(recipe: Recipe):
    from coda_core.presets import preset_config

    spec = recipe.model
    if spec.init == "checkpoint":
        from coda_core.config import load_config
        from coda_core.loading import resolve_model_dir

        try:
            return load_config(resolve_model_dir(recipe.resolve(spec.path), weights=False))
        except CodaError:
            if not spec.preset:
                raise CodaError(f"{recipe.source}: the checkpoint {spec.path} is not on this machine; name its "
                                "architecture with model.preset (e.g. coda-v0) for a dry run") from None
    return preset_config(spec.preset)


def dry_run(recipe: Recipe) -> dict:
    config = _architecture(recipe)
    with torch.device("meta"):
        model = CoDALanguageModel(config)
    mesh = recipe.backend.mesh
    fsdp, tensor = mesh.fsdp, mesh.tensor
    t = recipe.train
    seq_len = t.seq_len
    if not seq_len:
        raise CodaError(f"{recipe.source}: a dry run needs train.seq_len (at run time it must match the data)")
    if t.batch_size % fsdp:
        raise CodaError(f"{recipe.source}: train.batch_size {t.batch_size} does not split over fsdp {fsdp}")
    per_device_batch = t.batch_size // fsdp
    hosts = recipe.backend.hosts
    if (fsdp * tensor) % hosts:
        raise CodaError(f"{recipe.source}: {fsdp * tensor} devices do not split over backend.hosts {hosts}")
    try:
        per_host_batch = host_batch(t.batch_size, hosts, fsdp)
    except CodaError as exc:
        raise CodaError(f"{recipe.source}: {exc}") from None

    params, weight_bytes, optimizer_bytes = [], 0, 0
    for name, param in model.named_parameters():
        shape = tuple(param.shape)
        spec = param_spec(name, shape, fsdp, tensor)
        local = shard_shape(shape, spec, fsdp, tensor)
        numel = math.prod(local)
        weight_bytes += 2 * 4 * numel  # fp32 weights and gradients
        if recipe.optimizer.name == "adamw" or len(local) < 2:
            optimizer_bytes += 2 * 4 * numel
        else:  # Adafactor keeps a row and a column second-moment vector
            optimizer_bytes += 4 * (local[0] + local[1])
        params.append({"name": name, "shape": list(shape), "spec": list(spec), "local": list(local)})

    h, a, s, b = config.hidden_size, config.num_attention_heads, seq_len, per_device_batch
    act = 2 if t.bf16 else 4
    layer_working = b * s * h * (10 + 24 / tensor + 5 * a * s / (h * tensor)) * act / 2
    if t.activation_checkpointing:
        activation_bytes = config.num_hidden_layers * b * s * h * act + layer_working
    else:
        activation_bytes = config.num_hidden_layers * layer_working
    logits_bytes = b * s * config.vocab_size * (2 + 4 + 4)
    total = weight_bytes + optimizer_bytes + activation_bytes + logits_bytes
    chip = (recipe.backend.chip or "").lower()
    hbm = HBM_GIB.get(chip)
    return {
        "recipe": recipe.source, "stage": recipe.stage, "backend": recipe.backend.name,
        "mesh": {"fsdp": fsdp, "tensor": tensor, "devices": fsdp * tensor, "hosts": hosts},
        "parameters": sum(math.prod(p["shape"]) for p in params),
        "batch": {"global": t.batch_size, "per_host": per_host_batch, "per_device": b, "seq_len": s,
                  "grad_accum": t.grad_accum},
        "memory_gib": {"weights_and_grads": weight_bytes / GiB, "optimizer": optimizer_bytes / GiB,
                       "activations": activation_bytes / GiB, "logits": logits_bytes / GiB, "total": total / GiB},
        "chip": chip or None, "hbm_gib": hbm,
        "fits": hbm is None or total <= HEADROOM * hbm * GiB,
        "sharding": params,
    }


def format_dry_run(report: dict) -> str:
    m, mem = report["mesh"], report["memory_gib"]
    lines = [f"recipe      {report['recipe']} ({report['stage']}, backend {report['backend']})",
             f"mesh        fsdp {m['fsdp']} x tensor {m['tensor']} = {m['devices']} devices on {m['hosts']} host(s)",
             f"parameters  {report['parameters'] / 1e9:.3f} B",
             f"batch       {report['batch']['global']} x {report['batch']['seq_len']} tokens, "
             f"{report['batch']['per_host']} read per host, {report['batch']['per_device']} sequence(s) per device, "
             f"grad_accum {report['batch']['grad_accum']}",
             "sharding (parameter: shape -> partition spec -> per-device shape)"]
    for p in report["sharding"]:
        spec = ", ".join(axis or "-" for axis in p["spec"])
        lines.append(f"  {p['name']}: {p['shape']} -> ({spec}) -> {p['local']}")
    lines.append("memory per device (GiB): " + ", ".join(f"{k} {v:.2f}" for k, v in mem.items()))
    if report["hbm_gib"]:
        verdict = "fits" if report["fits"] else "DOES NOT FIT"
        lines.append(f"chip        {report['chip']}: {report['hbm_gib']} GiB HBM; {mem['total']:.2f} GiB needed, "
                     f"{verdict} (limit {HEADROOM:.0%})")
    return "\n".join(lines)
