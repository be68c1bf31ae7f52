"""Benchmarks on the CoDA-v0 shape with random weights: what the runtime costs, on any device.

The figures are about cost, not quality, so the weights are random, in the
dtype `load_model` would pick here by default (`--dtype auto`: bf16 only where
a bf16 matmul is measured faster than fp32, coda_core.kernels; a CPU without
AMX or AVX512-BF16 emulates bf16 several times slower).
Everything is measured side by side in one process and reported as medians;
on a GPU every timing waits for the device.

`coda bench forward`: what the window KV cache buys.
  full_ms    a full forward over 1,056 tokens, logits for the 32 positions a
             decoder would score (the no-cache baseline, already spared the
             full-width LM head);
  window_ms  a window forward of 32 query tokens reading a 1,024-token cache,
             logits for the window only;
  full_all_logits_ms  the full forward with logits for every position, as
             the published sampler computes them.
With `--quantize`, the same figures for the unquantized model first, then the
model is quantized in place, where the loader would (the layer shapes where
int8 is measured faster here), and measured again; `kernels` says what ran.

`coda bench sample` (without --model): the reference and fast samplers per
step, and end to end over a whole hole at 1, 3, ... tokens per step
(`--end-to-end`), against the floor that memory bandwidth sets: a window step
must read every weight and the whole K/V cache once.

`coda bench sample --model M` (coda_cli.bench_model): a trained model on holes
cut from real code.
"""

from __future__ import annotations

import math
import statistics
import time

import torch

from coda_core.denoise import DecodeOptions
from coda_core.model import CoDALanguageModel
from coda_core.presets import preset_config
from coda_core import kernels
from coda_core.quantize import quantize_model, quantization, weight_bytes
from coda_core.sampler import Sampler


def random_model(preset: str, dtype: torch.dtype, seed: int = 0, device: str = "cpu") -> CoDALanguageModel:
    """A model of `preset` shape with N(0, 0.02) weights, built without fp32 init on the way.

    The LM head's rows for the end tokens (eos, pad) are zero: among 151,936 random logits a zero
    one is never the largest, so no decode ends early and every run decodes its whole hole.
    """
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
        model.lm_head.weight[[config.eos_token_id, config.pad_token_id]] = 0
    return model.eval()


def quantize_as_loaded(model: CoDALanguageModel, quantize: str) -> kernels.Plan:
    """Quantize `model` in place as load_model would here: the layer shapes where int8 is measured faster
    than the model's dtype. Returns the plan (its describe() says what was chosen)."""
    plan = kernels.plan(model.config, model.device, model.dtype, quantize)
    quantize_model(model, quantize, set(plan.int8))
    return plan


def _setting(preset: str, dtype: torch.dtype, device: str) -> dict:
    """What a shape benchmark ran on, for its report."""
    return {"preset": preset, "dtype": str(dtype).removeprefix("torch."), "device": str(device),
            "device_name": device_name(device), "threads": torch.get_num_threads()}


def device_name(device: str) -> str:
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return device.upper() if device == "cpu" else device


def _wait(device) -> None:
    """Wait for the work queued on `device` (a GPU runs ahead of the host)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(fn, repeats: int, warmup: int = 1, device="cpu") -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _wait(device)
        start = time.perf_counter()
        fn()
        _wait(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def memory_bandwidth(device: str, repeats: int = 5) -> float:
    """Bytes per second a device-to-device copy moves (each byte read once and written once)."""
    size = (1 << 30) if torch.device(device).type == "cuda" else (256 << 20)
    src = torch.ones(size, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    ms = median_ms(lambda: dst.copy_(src), repeats, device=device)
    return 2 * size / (ms / 1000)


def bytes_per_window_step(model: CoDALanguageModel, batch: int, slots: int) -> int:
    """What a window step must read: every weight but the embeddings (it looks up a few rows) and
    the K/V cache of every slot."""
    config = model.config
    embeddings = model.model.embed_tokens.weight
    kv = 2 * config.num_hidden_layers * batch * config.num_key_value_heads * slots * config.head_dim
    return weight_bytes(model) - embeddings.numel() * embeddings.element_size() + kv * embeddings.element_size()


# -- coda bench forward ------------------------------------------------------

def _forward_figures(model: CoDALanguageModel, context: int, window: int, repeats: int, device: str) -> dict:
    total = context + window
    gen = torch.Generator(device=device).manual_seed(1)
    ids = torch.randint(0, model.config.vocab_size, (1, total), generator=gen, device=device)
    # The window is the last `window` slots; feed one more so its first token is predicted.
    slots = torch.arange(context - 1, total, device=device)
    rows = torch.arange(total - window - 1, total - 1, device=device)
    batch = torch.zeros_like(rows)
    cache = model.new_cache(1, total)
    with torch.inference_mode():
        model.prefill(ids, cache, logits_index=(batch[:1], rows[:1]))  # also warms up
        full = median_ms(lambda: model(ids, logits_index=(batch, rows)), repeats, device=device)
        window_rows = torch.arange(window, device=device)
        window_ms = median_ms(lambda: model.decode_window(ids[:, slots], cache, slots, logits_index=(
            batch, window_rows)), repeats * 4, device=device)
        full_all = median_ms(lambda: model(ids), repeats, device=device)
    return {"full_ms": round(full, 2), "window_ms": round(window_ms, 2), "speedup": round(full / window_ms, 2),
            "full_all_logits_ms": round(full_all, 2), "weights_bytes": weight_bytes(model)}


def bench_forward(context: int = 1024, window: int = 32, repeats: int = 5, preset: str = "coda-v0",
                  dtype: torch.dtype = torch.bfloat16, device: str = "cpu", quantize: str = "none") -> dict:
    model = random_model(preset, dtype, device=device)
    figures = _forward_figures(model, context, window, repeats, device)
    result = {**_setting(preset, dtype, device), "context_tokens": context, "window_tokens": window,
              "repeats": repeats, "quantize": quantize, **figures}
    if quantize != "none":
        plan = quantize_as_loaded(model, quantize)
        result.update(_forward_figures(model, context, window, repeats, device), unquantized=figures,
                      kernels=plan.describe())
        result["quantized_window_speedup"] = round(figures["window_ms"] / result["window_ms"], 2)
    return result


def format_forward(r: dict) -> str:
    def block(f: dict, what: str) -> list[str]:
        return [
            f"  {what}: weights {f['weights_bytes'] / 2**30:.2f} GiB",
            f"    full forward, {r['context_tokens'] + r['window_tokens']} tokens, logits for "
            f"{r['window_tokens']}: {f['full_ms']:9.1f} ms",
            f"    full forward, logits for every position (published sampler): {f['full_all_logits_ms']:9.1f} ms",
            f"    window forward, {r['window_tokens']} tokens over a {r['context_tokens']}-token cache: "
            f"{f['window_ms']:9.1f} ms",
            f"    speedup (full / window): {f['speedup']:.1f}x",
        ]
    lines = [f"CoDA forward on {r['preset']} ({r['dtype']}, {r['device_name']}, {r['threads']} threads), "
             f"medians of {r['repeats']}+ runs"]
    if r["quantize"] == "none":
        return "\n".join(lines + block(r, "weights unquantized"))
    return "\n".join(lines + block(r["unquantized"], "weights unquantized") + block(r, f"weights {r['quantize']}")
                     + [f"  window forward, {r['quantize']} vs unquantized: {r['quantized_window_speedup']:.2f}x faster",
                        f"  kernels (measured here, as the loader chooses): {r['kernels']}"])


# -- coda bench sample (the shape) -------------------------------------------

def _step_options(tokens_per_step: int, block: int) -> DecodeOptions:
    """The fast sampler committing exactly `tokens_per_step` a step (random weights are never sure)."""
    return DecodeOptions(threshold=1.0, min_per_step=tokens_per_step, max_per_step=tokens_per_step,
                         block_size=block)


def _timed_steps(sampler: Sampler, strategy: str, prefix, suffix, hole: int, options, steps: int):
    """Run `steps` denoising steps; returns (result, durations of each step in ms)."""
    marks = [time.perf_counter()]
    result = sampler.infill(prefix, suffix, hole, sizes=[hole], strategy=strategy, options=options,
                            reuse_prefix=False, should_stop=lambda: len(marks) > steps,
                            on_progress=lambda step, text, done: marks.append(time.perf_counter()))
    return result, [(b - a) * 1000 for a, b in zip(marks, marks[1:])]


def _end_to_end(sampler: Sampler, head, tail, hole: int, tokens_per_step: int, block: int) -> dict:
    """A whole hole decoded at `tokens_per_step`, by each sampler: wall ms and steps."""
    out = {"tokens_per_step": tokens_per_step}
    runs = {"fast": ("fast", _step_options(tokens_per_step, block)),
            "ref": ("reference", DecodeOptions(steps=math.ceil(hole / tokens_per_step), eps=0.0))}
    for name, (strategy, options) in runs.items():
        result = sampler.infill(head, tail, hole, sizes=[hole], strategy=strategy, options=options,
                                reuse_prefix=False)
        out[f"{name}_ms"], out[f"{name}_steps"] = round(result.ms, 2), result.stats.steps
    out["speedup"] = round(out["ref_ms"] / out["fast_ms"], 2)
    return out


def bench_sample_shape(prefix: int = 1024, suffix: int = 256, hole: int = 32, steps: int = 3,
                       preset: str = "coda-v0", dtype: torch.dtype = torch.bfloat16, device: str = "cpu",
                       end_to_end: tuple[int, ...] = (), quantize: str = "none", block: int = 32) -> dict:
    """Per-step and end-to-end cost of the reference and fast samplers on a random model of `preset` shape."""
    from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer

    model = random_model(preset, dtype, device=device)
    plan = quantize_as_loaded(model, quantize)
    sampler = Sampler(model, load_tokenizer(BUNDLED_TOKENIZER))
    gen = torch.Generator(device="cpu").manual_seed(2)
    ids = torch.randint(0, 151_000, (prefix + suffix,), generator=gen, device="cpu").tolist()  # host values
    ids = [i for i in ids if i != sampler.ids.mask]
    head, tail = ids[:prefix], ids[prefix:]
    with torch.inference_mode():
        # warm up the kernels so the first timed forward is not a cold start
        model(torch.tensor([ids[:64]], device=model.device))
    one = _step_options(1, block)
    fast, fast_steps = _timed_steps(sampler, "fast", head, tail, hole, one, steps + 1)
    ref, ref_steps = _timed_steps(sampler, "reference", head, tail, hole, DecodeOptions(steps=hole, eps=0.0), steps)
    # The fast sampler's first step includes the prefill; its steady steps follow.
    fast_step, ref_step = statistics.median(fast_steps[1:]), statistics.median(ref_steps)
    bandwidth = memory_bandwidth(device)
    step_bytes = bytes_per_window_step(model, 1, len(head) + hole + len(tail))
    return {
        **_setting(preset, dtype, device),
        "quantize": quantization(model),
        "kernels": plan.describe(),
        "prefix_tokens": prefix,
        "suffix_tokens": suffix,
        "hole_tokens": hole,
        "steps_timed": steps,
        "prefill_ms": round(fast.stats.prefill_ms, 2),
        "ref_step_ms": round(ref_step, 2),
        "fast_step_ms": round(fast_step, 2),
        "step_speedup": round(ref_step / fast_step, 2),
        "ref_forwards": ref.stats.forwards,
        "fast_forwards": fast.stats.forwards,
        "end_to_end": [_end_to_end(sampler, head, tail, hole, k, block) for k in end_to_end],
        "bandwidth_gb_s": round(bandwidth / 1e9, 1),
        "bytes_per_window_step": step_bytes,
        "window_step_floor_ms": round(step_bytes / bandwidth * 1000, 3),
    }


def format_sample_shape(r: dict) -> str:
    lines = [
        f"Samplers on {r['preset']} ({r['dtype']}, weights {r['quantize']}, {r['device_name']}, {r['threads']} CPU "
        f"threads): a {r['hole_tokens']}-token hole, {r['prefix_tokens']} prefix + {r['suffix_tokens']} suffix "
        f"tokens, medians of {r['steps_timed']} one-token steps",
        f"  kernels (measured here, as the loader chooses): {r['kernels']}",
        f"  fast prefill (first full forward): {r['prefill_ms']:10.1f} ms",
        f"  reference step (full forward):     {r['ref_step_ms']:10.1f} ms",
        f"  fast step (cached window forward): {r['fast_step_ms']:10.1f} ms  (step speedup {r['step_speedup']:.1f}x)",
        f"  window step floor: {r['bytes_per_window_step'] / 2**30:.2f} GiB of weights and K/V at "
        f"{r['bandwidth_gb_s']:.0f} GB/s (measured copy bandwidth) = {r['window_step_floor_ms']:.2f} ms",
    ]
    for e in r["end_to_end"]:
        lines.append(f"  whole hole at {e['tokens_per_step']} token(s) per step: fast {e['fast_ms']:.1f} ms "
                     f"({e['fast_steps']} steps), reference {e['ref_ms']:.1f} ms ({e['ref_steps']} steps), "
                     f"{e['speedup']:.1f}x")
    return "\n".join(lines)
