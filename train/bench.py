"""`coda train bench RECIPE`: training throughput of one recipe under several settings, side by side.

Every variant is a real Trainer on the recipe's data (masking, loss, backward,
AdamW step), built from the same seed. Steps are interleaved (one step of each
variant per round), so a machine that slows down slows every variant alike;
the figures are medians over rounds, after warm-up rounds that also absorb
torch.compile's compilation.

Achieved FLOP/s counts the matmuls of a step: 6 x (body parameters x tokens +
LM head parameters x masked targets) plus attention's 12 x L x heads x
head_dim per token and layer. MFU is that over the peak: a square matmul in
the variant's dtype, measured here on the same device (`--device cuda`: the
GPU, every timing waiting for it).

Each timed step ends with the trainer's one host read (`read_tally`), so the
step's time is the device's. Beside it: `data_ms`, the time the prefetch
worker took to read and mask the step's batch, and `data_wait_ms`, how long
the step waited for it. A variant with `+inline` (e.g. `bf16+inline`) masks
in line on the main thread (`train.prefetch=0`), as the trainer did before
the worker: the step time of the two, side by side, is what the worker buys.
"""

from __future__ import annotations

import statistics
import time

import torch

from .recipe import Recipe, load_recipe

VARIANTS = {
    "fp32": ["train.bf16=false", "train.compile=false"],
    "bf16": ["train.bf16=true", "train.compile=false"],
    "fp32+compile": ["train.bf16=false", "train.compile=true"],
    "bf16+compile": ["train.bf16=true", "train.compile=true"],
}
INLINE = "+inline"  # a variant's suffix: mask in line, no prefetch worker


def variant_overrides(name: str) -> list[str]:
    base = name.removesuffix(INLINE)
    if base not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}, each optionally "
                         f"with {INLINE}")
    return VARIANTS[base] + (["train.prefetch=0"] if name.endswith(INLINE) else [])


def _wait(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak(dtype: torch.dtype, device: torch.device | str = "cpu", repeats: int = 10) -> float:
    """FLOP/s of a square matmul in `dtype` on `device` (median of `repeats`): n = 2,048 on a CPU,
    8,192 on a GPU (big enough to reach its tensor cores' rate)."""
    device = torch.device(device)
    n = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        _wait(device)
        start = time.perf_counter()
        a @ b
        _wait(device)
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times)


def _dtype(trainer) -> torch.dtype:
    """The dtype a trainer's matmuls run in: its peak is that dtype's."""
    return torch.bfloat16 if trainer.bf16 else torch.float32


def step_flops(trainer, targets: int) -> float:
    """Matmul FLOPs of one training step (forward + backward) with `targets` masked tokens."""
    c = trainer.config
    batch, seq = trainer.recipe.train.batch_size * trainer.recipe.train.grad_accum, trainer.train_data.seq_len
    head = c.hidden_size * c.vocab_size
    body = sum(p.numel() for p in trainer.model.parameters()) - 2 * head  # without embeddings and head
    attention = 12 * seq * c.num_attention_heads * c.head_dim * c.num_hidden_layers  # per token, fwd+bwd
    return 6 * body * batch * seq + 6 * head * targets + attention * batch * seq


def bench_train(recipe_path: str, variants: list[str], *, rounds: int = 10, warmup: int = 3,
                overrides: list[str] | None = None, device: str | None = None) -> dict:
    from .trainer import Trainer

    trainers = {}
    where = [f"backend.device={device}"] if device else []
    for name in variants:
        recipe: Recipe = load_recipe(recipe_path, list(overrides or []) + where + variant_overrides(name)).validate()
        trainers[name] = Trainer(recipe, progress=False)
    times: dict[str, list[float]] = {name: [] for name in variants}
    flops: dict[str, list[float]] = {name: [] for name in variants}
    data: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    try:
        for round_ in range(warmup + rounds):
            for name, trainer in trainers.items():
                start = time.perf_counter()
                record = trainer.train_step()
                tally = trainer.read_tally()  # waits for the device: the step's time is the device's
                seconds = time.perf_counter() - start
                if round_ >= warmup:
                    times[name].append(seconds)
                    flops[name].append(step_flops(trainer, tally["targets"]))
                    data[name].append((record["data_ms"], record["data_wait_ms"]))
    finally:
        for trainer in trainers.values():
            trainer.close()
    any_trainer = next(iter(trainers.values()))
    on = any_trainer.backend.device
    tokens = any_trainer.recipe.train.batch_size * any_trainer.recipe.train.grad_accum * any_trainer.train_data.seq_len
    # Only the peaks the variants use: a CPU without native bf16 emulates a 2,048-square bf16 matmul
    # for seconds each, which a run of fp32 variants has no use for.
    peaks = {dtype: matmul_peak(dtype, on) for dtype in {_dtype(t) for t in trainers.values()}}
    rows = []
    for name in variants:
        median = statistics.median(times[name])
        achieved = statistics.median(f / t for f, t in zip(flops[name], times[name]))
        peak = peaks[_dtype(trainers[name])]
        rows.append({"variant": name, "step_ms": round(median * 1000, 1), "tokens_per_s": round(tokens / median),
                     "gflops": round(achieved / 1e9, 1), "peak_gflops": round(peak / 1e9, 1),
                     "mfu": round(achieved / peak, 3), "of_peak": round(achieved / peak, 3),
                     "data_ms": round(statistics.median(d for d, _ in data[name]), 2),
                     "data_wait_ms": round(statistics.median(w for _, w in data[name]), 2)})
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = round(row["tokens_per_s"] / base, 2)
    return {"recipe": recipe_path, "tokens_per_step": tokens, "rounds": rounds, "threads": torch.get_num_threads(),
            "device": str(on),
            "device_name": torch.cuda.get_device_name(on) if on.type == "cuda" else str(on).upper(),
            "parameters": sum(p.numel() for p in any_trainer.model.parameters()), "variants": rows}


def format_bench(result: dict) -> str:
    lines = [f"{result['recipe']}: {result['parameters'] / 1e6:.1f}M parameters, {result['tokens_per_step']} tokens "
             f"per step, on {result['device_name']}, median of {result['rounds']} interleaved rounds, "
             f"{result['threads']} threads",
             f"{'variant':<20} {'step ms':>9} {'tokens/s':>9} {'speedup':>8} {'GFLOP/s':>9} {'peak':>9} {'MFU':>6} "
             f"{'data ms':>8} {'waited ms':>9}"]
    for r in result["variants"]:
        lines.append(f"{r['variant']:<20} {r['step_ms']:>9} {r['tokens_per_s']:>9} {r['speedup']:>7}x "
                     f"{r['gflops']:>9} {r['peak_gflops']:>9} {r['mfu']:>6.1%} {r['data_ms']:>8} {r['data_wait_ms']:>9}")
    lines.append("data ms: the step's batch read and masked (on the prefetch worker; +inline: in the step); "
                 "waited ms: the time the step waited for it")
    return "\n".join(lines)
