"""`coda train bench RECIPE`: training throughput of one recipe under several settings, side by side.

Every variant is a real Trainer on the recipe's data (masking, loss, backward,
AdamW step), built from the same seed. Steps are interleaved (one step of each
variant per round), so a machine that slows down slows every variant alike;
the figures are medians over rounds, after warm-up rounds that also absorb
torch.compile's compilation.

Achieved FLOP/s counts the matmuls of a step: 6 x (body parameters x tokens +
LM head parameters x masked targets) plus attention's 12 x L x heads x
head_dim per token and layer. The peak is a square matmul measured here.
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


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of an n x n matmul in `dtype` on this CPU (median of `repeats`)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times)


def step_flops(trainer, targets: int) -> float:
    """Matmul FLOPs of one training step (forward + backward) with `targets` masked tokens."""
    c = trainer.config
    batch, seq = trainer.recipe.train.batch_size * trainer.recipe.train.grad_accum, trainer.train_data.seq_len
    head = c.hidden_size * c.vocab_size
    body = sum(p.numel() for p in trainer.model.parameters()) - 2 * head  # without embeddings and head
    attention = 12 * seq * c.num_attention_heads * c.head_dim * c.num_hidden_layers  # per token, fwd+bwd
    return 6 * body * batch * seq + 6 * head * targets + attention * batch * seq


def bench_train(recipe_path: str, variants: list[str], *, rounds: int = 10, warmup: int = 3,
                overrides: list[str] | None = None) -> dict:
    from .trainer import Trainer

    trainers = {}
    for name in variants:
        if name not in VARIANTS:
            raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
        recipe: Recipe = load_recipe(recipe_path, list(overrides or []) + VARIANTS[name]).validate()
        trainers[name] = Trainer(recipe, progress=False)
    times: dict[str, list[float]] = {name: [] for name in variants}
    flops: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(warmup + rounds):
        for name, trainer in trainers.items():
            start = time.perf_counter()
            record = trainer.train_step()
            seconds = time.perf_counter() - start
            if round_ >= warmup:
                times[name].append(seconds)
                flops[name].append(step_flops(trainer, record["targets"]))
    any_trainer = next(iter(trainers.values()))
    tokens = any_trainer.recipe.train.batch_size * any_trainer.recipe.train.grad_accum * any_trainer.train_data.seq_len
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    rows = []
    for name in variants:
        median = statistics.median(times[name])
        achieved = statistics.median(f / t for f, t in zip(flops[name], times[name]))
        peak = peaks["bf16" if name.startswith("bf16") else "fp32"]
        rows.append({"variant": name, "step_ms": round(median * 1000, 1), "tokens_per_s": round(tokens / median),
                     "gflops": round(achieved / 1e9, 1), "peak_gflops": round(peak / 1e9, 1),
                     "of_peak": round(achieved / peak, 3)})
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = round(row["tokens_per_s"] / base, 2)
    return {"recipe": recipe_path, "tokens_per_step": tokens, "rounds": rounds, "threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in any_trainer.model.parameters()), "variants": rows}


def format_bench(result: dict) -> str:
    lines = [f"{result['recipe']}: {result['parameters'] / 1e6:.1f}M parameters, {result['tokens_per_step']} tokens "
             f"per step, median of {result['rounds']} interleaved rounds, {result['threads']} threads",
             f"{'variant':<14} {'step ms':>9} {'tokens/s':>9} {'speedup':>8} {'GFLOP/s':>8} {'peak':>7} {'of peak':>8}"]
    for r in result["variants"]:
        lines.append(f"{r['variant']:<14} {r['step_ms']:>9} {r['tokens_per_s']:>9} {r['speedup']:>7}x "
                     f"{r['gflops']:>8} {r['peak_gflops']:>7} {r['of_peak']:>8.1%}")
    return "\n".join(lines)
