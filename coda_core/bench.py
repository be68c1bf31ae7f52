"""`coda bench forward`: what the window KV cache buys on the CoDA-v0 shape.

Random weights on the CPU, bf16 by default (the figures are about cost, not
quality). Where the CPU lacks AMX/AVX512-BF16, bf16 is emulated and slow;
`--dtype float32` shows the cost there in the dtype `load_model` would pick.
Measured side by side in one process, reported as medians:
  full_ms    a full forward over 1,056 tokens, logits for the 32 positions a
             decoder would score (the no-cache baseline, already spared the
             full-width LM head);
  window_ms  a window forward of 32 query tokens reading a 1,024-token cache,
             logits for the window only;
  full_all_logits_ms  the full forward with logits for every position, as
             the published sampler computes them.
"""

from __future__ import annotations

import statistics
import time

import torch

from .model import CoDALanguageModel
from .presets import preset_config


def random_model(preset: str, dtype: torch.dtype, seed: int = 0) -> CoDALanguageModel:
    """A model of `preset` shape with N(0, 0.02) weights, built without fp32 init on the way."""
    config = preset_config(preset)
    with torch.device("meta"):
        model = CoDALanguageModel(config)
    model = model.to_empty(device="cpu").to(dtype)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, config.initializer_range, generator=gen)
    return model.eval()


def median_ms(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_forward(context: int = 1024, window: int = 32, repeats: int = 5, preset: str = "coda-v0",
                  dtype: torch.dtype = torch.bfloat16) -> dict:
    model = random_model(preset, dtype)
    total = context + window
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (1, total), generator=gen)
    # The window is the last `window` slots; feed one more so its first token is predicted.
    slots = torch.arange(context - 1, total)
    rows = torch.arange(total - window - 1, total - 1)
    cache = model.new_cache(1, total)

    with torch.inference_mode():
        model(ids, cache=cache, logits_index=rows[:1])  # prefill, also warms up
        full = median_ms(lambda: model(ids, logits_index=rows), repeats)
        window_ms = median_ms(lambda: model(ids[:, slots], cache=cache, slots=slots,
                                            logits_index=torch.arange(window)), repeats * 4)
        full_all = median_ms(lambda: model(ids), repeats)
    return {
        "preset": preset,
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "context_tokens": context,
        "window_tokens": window,
        "full_ms": round(full, 2),
        "window_ms": round(window_ms, 2),
        "speedup": round(full / window_ms, 2),
        "full_all_logits_ms": round(full_all, 2),
        "repeats": repeats,
    }


def format_forward(r: dict) -> str:
    return "\n".join([
        f"CoDA forward on {r['preset']} ({r['dtype']}, CPU, {r['threads']} threads), medians of {r['repeats']}+ runs",
        f"  full forward, {r['context_tokens'] + r['window_tokens']} tokens, logits for {r['window_tokens']}: "
        f"{r['full_ms']:9.1f} ms",
        f"  full forward, logits for every position (published sampler): {r['full_all_logits_ms']:9.1f} ms",
        f"  window forward, {r['window_tokens']} tokens over a {r['context_tokens']}-token cache: "
        f"{r['window_ms']:9.1f} ms",
        f"  speedup (full / window): {r['speedup']:.1f}x",
    ])
