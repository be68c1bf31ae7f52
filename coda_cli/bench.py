"""Benchmarks that print figures (never timed tests).

`coda bench forward`: what the window KV cache buys on the CoDA-v0 shape.

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

`coda bench sample`: the reference and fast samplers side by side, per step
on the CoDA-v0 shape (random weights), or end to end with a trained model on
holes cut from real code.
"""

from __future__ import annotations

import statistics
import time

import torch

import coda_core
from coda_core.denoise import DecodeOptions
from coda_core.model import CoDALanguageModel
from coda_core.presets import preset_config
from coda_core.sampler import Sampler


def random_model(preset: str, dtype: torch.dtype, seed: int = 0, device: str = "cpu") -> CoDALanguageModel:
    """A model of `preset` shape with N(0, 0.02) weights, built without fp32 init on the way."""
    config = preset_config(preset)
    with torch.device("meta"):
        model = CoDALanguageModel(config)
    model = model.to_empty(device=device).to(dtype)
    gen = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            else:
                p.normal_(0.0, config.initializer_range, generator=gen)
    return model.eval()


def _setting(preset: str, dtype: torch.dtype) -> dict:
    """What a shape benchmark ran on, for its report."""
    return {"preset": preset, "dtype": str(dtype).removeprefix("torch."), "threads": torch.get_num_threads()}


def _device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return device.upper() if device == "cpu" else device


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
        model.prefill(ids, cache, logits_index=(torch.zeros_like(rows[:1]), rows[:1]))  # also warms up
        full = median_ms(lambda: model(ids, logits_index=(torch.zeros_like(rows), rows)), repeats)
        window_ms = median_ms(lambda: model.decode_window(ids[:, slots], cache, slots, logits_index=(
            torch.zeros_like(rows), torch.arange(window))), repeats * 4)
        full_all = median_ms(lambda: model(ids), repeats)
    return {
        **_setting(preset, dtype),
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


# -- coda bench sample -------------------------------------------------------

def _one_token_steps(steps: int) -> DecodeOptions:
    """Both samplers commit exactly one token per step (random weights have no real confidence)."""
    return DecodeOptions(threshold=1.0, max_per_step=1, steps=steps, eps=0.0, block_size=steps)


def _timed_steps(sampler: Sampler, strategy: str, prefix, suffix, hole: int, options, steps: int):
    """Run `steps` denoising steps; returns (result, durations of each step in ms)."""
    marks = [time.perf_counter()]
    result = sampler.infill(prefix, suffix, hole, sizes=[hole], strategy=strategy, options=options,
                            reuse_prefix=False, should_stop=lambda: len(marks) > steps,
                            on_progress=lambda step, text, done: marks.append(time.perf_counter()))
    return result, [(b - a) * 1000 for a, b in zip(marks, marks[1:])]


def bench_sample_shape(prefix: int = 1024, suffix: int = 256, hole: int = 32, steps: int = 3,
                       preset: str = "coda-v0", dtype: torch.dtype = torch.bfloat16, device: str = "cpu") -> dict:
    """Per-step cost of the reference and fast samplers on a random model of `preset` shape."""
    from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer

    model = random_model(preset, dtype, device=device)
    sampler = Sampler(model, load_tokenizer(BUNDLED_TOKENIZER))
    gen = torch.Generator().manual_seed(2)
    ids = torch.randint(0, 151_000, (prefix + suffix,), generator=gen).tolist()
    ids = [i for i in ids if i != sampler.ids.mask]
    head, tail = ids[:prefix], ids[prefix:]
    with torch.inference_mode():
        model(torch.tensor([ids[:64]], device=device))  # warm up the kernels so the first timed forward is not a cold start
    options = _one_token_steps(hole)
    fast, fast_steps = _timed_steps(sampler, "fast", head, tail, hole, options, steps + 1)
    ref, ref_steps = _timed_steps(sampler, "reference", head, tail, hole, options, steps)
    # The fast sampler's first step includes the prefill; its steady steps follow.
    fast_step = statistics.median(fast_steps[1:])
    ref_step = statistics.median(ref_steps)
    return {
        **_setting(preset, dtype),
        "prefix_tokens": prefix,
        "suffix_tokens": suffix,
        "hole_tokens": hole,
        "steps_timed": steps,
        "prefill_ms": round(fast.stats.prefill_ms, 2),
        "ref_step_ms": round(ref_step, 2),
        "fast_step_ms": round(fast_step, 2),
        "step_speedup": round(ref_step / fast_step, 2),
        "device": str(device),
        "ref_forwards": ref.stats.forwards,
        "fast_forwards": fast.stats.forwards,
    }


def _source_texts(source: str | None) -> list[tuple[str, str]]:
    """(name, text) of the Python files to cut holes from: this package's own sources by default,
    a folder of .py files, or a JSONL corpus of {"text", "source"} records (`coda train corpus`)."""
    import json
    from pathlib import Path

    if source is None:
        return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(Path(coda_core.__file__).parent.glob("*.py"))]
    path = Path(source)
    if path.is_dir():
        return [(str(p.relative_to(path)), p.read_text(encoding="utf-8")) for p in sorted(path.rglob("*.py"))]
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [(f"{r.get('source', path.name)}#{i}", r["text"]) for i, r in enumerate(records)]


def real_code_holes(count: int, tokenizer, prefix_tokens: int = 1024, suffix_tokens: int = 256,
                    source: str | None = None):
    """Deterministic line holes cut from real code (see _source_texts), spread over the files.

    Each hole is the code of one non-blank, non-comment line (after its
    indentation); the prefix and suffix around it are trimmed to the token
    budgets. Yields (name, prefix_ids, suffix_ids, expected_text, (before, after)).
    """
    texts = _source_texts(source)
    per_file = max(1, -(-count // max(len(texts), 1)))  # enough holes per file to reach `count`
    holes = []
    for name, text in texts:
        lines = text.splitlines(keepends=True)
        candidates = [i for i, line in enumerate(lines) if line.strip() and not line.lstrip().startswith("#")
                      and len(line.strip()) >= 12]
        step = max(1, len(candidates) // per_file)
        for i in candidates[step // 2::step][:per_file]:
            indent = len(lines[i]) - len(lines[i].lstrip())
            before = "".join(lines[:i]) + lines[i][:indent]
            after = "".join(lines[i + 1:])
            expected = lines[i][indent:].rstrip("\n")
            pre = tokenizer.encode(before)[-prefix_tokens:]
            suf = tokenizer.encode("\n" + after)[:suffix_tokens]
            holes.append((f"{name}:{i + 1}", pre, suf, expected, (before, after)))
    return holes[:count]


def _parses(before: str, line: str, after: str) -> bool:
    import ast

    try:
        ast.parse(before + line + "\n" + after)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


def bench_sample_model(model_path: str, holes: int = 20, hole: int = 32, threshold: float = 0.9,
                       device: str = "auto", dtype: str = "auto", source: str | None = None) -> dict:
    """Reference vs fast on line holes cut from real code (`source`, see _source_texts), with a trained
    model: speed, agreement, first-line exact match and whether the file still parses."""
    sampler = Sampler.load(model_path, device=device, dtype=dtype)
    tokenizer = sampler.tokenizer
    fast_opts = DecodeOptions(threshold=threshold, block_size=hole)
    ref_opts = DecodeOptions(steps=hole, eps=1e-3)
    rows = []
    for name, pre, suf, expected, around in real_code_holes(holes, tokenizer, source=source):
        ref = sampler.infill(pre, suf, hole, sizes=[hole], strategy="reference", options=ref_opts)
        fast = sampler.infill(pre, suf, hole, sizes=[hole], options=fast_opts, reuse_prefix=False)
        # prefix reuse: warm the cache with the previous keystroke (one token less), then ask again
        sampler.prefix_cache.clear()
        sampler.infill(pre[:-1], suf, hole, sizes=[hole], options=fast_opts)
        reused = sampler.infill(pre, suf, hole, sizes=[hole], options=fast_opts)
        rows.append(dict(name=name, ref=ref, fast=fast, reused=reused, expected=expected, around=around))
    n = len(rows)
    first_line = lambda text: text.split("\n", 1)[0].strip()
    fast_tokens = sum(r["fast"].stats.tokens for r in rows)
    fast_forwards = sum(r["fast"].stats.forwards for r in rows)
    return {
        "model": str(model_path),
        "holes": n,
        "hole_tokens": hole,
        "threshold": threshold,
        "tokens_per_forward": round(fast_tokens / max(fast_forwards, 1), 3),
        "ref_tokens_per_forward": round(sum(r["ref"].stats.tokens for r in rows)
                                        / max(sum(r["ref"].stats.forwards for r in rows), 1), 3),
        "ref_ms_median": round(statistics.median(r["ref"].ms for r in rows), 2),
        "fast_ms_median": round(statistics.median(r["fast"].ms for r in rows), 2),
        "wall_speedup": round(sum(r["ref"].ms for r in rows) / max(sum(r["fast"].ms for r in rows), 1e-9), 2),
        "agreement": round(sum(r["ref"].text == r["fast"].text for r in rows) / max(n, 1), 3),
        "reuse_agreement": round(sum(r["reused"].text == r["fast"].text for r in rows) / max(n, 1), 3),
        "reused_prefix_tokens_median": statistics.median(r["reused"].stats.reused_prefix for r in rows) if n else 0,
        "ref_line_exact": round(sum(first_line(r["ref"].text) == r["expected"].strip() for r in rows) / max(n, 1), 3),
        "fast_line_exact": round(sum(first_line(r["fast"].text) == r["expected"].strip() for r in rows) / max(n, 1), 3),
        "ref_parses": round(sum(_parses(r["around"][0], first_line(r["ref"].text), r["around"][1]) for r in rows)
                            / max(n, 1), 3),
        "fast_parses": round(sum(_parses(r["around"][0], first_line(r["fast"].text), r["around"][1]) for r in rows)
                             / max(n, 1), 3),
        "source": source or "coda_core/*.py",
    }


def format_sample(r: dict) -> str:
    if "step_speedup" in r:
        return "\n".join([
            f"Samplers on {r['preset']} ({r['dtype']}, {_device_name(r['device'])}, {r['threads']} CPU threads): a {r['hole_tokens']}-token hole, "
            f"{r['prefix_tokens']} prefix + {r['suffix_tokens']} suffix tokens, one token per step, "
            f"medians of {r['steps_timed']} steps",
            f"  fast prefill (first full forward): {r['prefill_ms']:10.1f} ms",
            f"  reference step (full forward):     {r['ref_step_ms']:10.1f} ms",
            f"  fast step (cached window forward): {r['fast_step_ms']:10.1f} ms",
            f"  step speedup: {r['step_speedup']:.1f}x",
        ])
    return "\n".join([
        f"Samplers on {r['model']}: {r['holes']} line holes from real code, canvas {r['hole_tokens']}, "
        f"tau {r['threshold']}",
        f"  tokens per forward: fast {r['tokens_per_forward']}, reference {r['ref_tokens_per_forward']}",
        f"  wall time per hole (median): reference {r['ref_ms_median']:.1f} ms, fast {r['fast_ms_median']:.1f} ms "
        f"(total speedup {r['wall_speedup']:.2f}x)",
        f"  agreement fast vs reference: {r['agreement']:.0%}; prefix reuse vs fresh: {r['reuse_agreement']:.0%}",
        f"  first line exact: reference {r['ref_line_exact']:.1%}, fast {r['fast_line_exact']:.1%}",
        f"  file still parses: reference {r['ref_parses']:.1%}, fast {r['fast_parses']:.1%}",
    ])
