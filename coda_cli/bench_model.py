"""`coda bench sample --model M`: a trained model on line holes cut from real code.

The reference and fast samplers decode each hole; the report gives their
speed, how often they agree, how often prefix reuse changes the answer, how
often the first line is exactly the original, how much of it each gets
right as a prefix (`*_prefix_match`: what a user typing along would accept),
how often a fill ends before its canvas runs out (`ends_hole`: it knows where
the hole ends), and how often the file still parses with it. With `--quantize`, the same figures for the model as stored
and for it quantized, side by side, and `top1_agreement`: the fraction of a
fully masked hole's positions whose top-1 token the quantized model picks as
the unquantized one does. The quantized model is what the loader builds here
(int8 only on the layer shapes where it is measured faster: `kernels` says
which); `every_layer` gives the same agreement figures with every linear
layer in int8, the kernel's own fidelity on any machine.
"""

from __future__ import annotations

import statistics

import torch

import coda_core
from coda_core import kernels
from coda_core.denoise import DecodeOptions
from coda_core.errors import CodaError
from coda_core.model import prediction_rows
from coda_core.sampler import Sampler
from coda_eval.metrics import first_line, prefix_match


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


def _ended(result) -> bool:
    """The best fill committed an end token: its content fit the canvas."""
    return bool(result.candidates) and result.candidates[0].ended


def _figures(sampler: Sampler, holes: list, hole: int, threshold: float) -> dict:
    """The speed and quality figures of one model over `holes` (see the module docstring)."""
    fast_opts = DecodeOptions(threshold=threshold, block_size=hole)
    ref_opts = DecodeOptions(steps=hole, eps=1e-3)
    rows = []
    for name, pre, suf, expected, around in holes:
        ref = sampler.infill(pre, suf, hole, sizes=[hole], strategy="reference", options=ref_opts)
        fast = sampler.infill(pre, suf, hole, sizes=[hole], options=fast_opts, reuse_prefix=False)
        # prefix reuse: warm the cache with the previous keystroke (one token less), then ask again
        sampler.prefix_cache.clear()
        sampler.infill(pre[:-1], suf, hole, sizes=[hole], options=fast_opts)
        reused = sampler.infill(pre, suf, hole, sizes=[hole], options=fast_opts)
        rows.append(dict(name=name, ref=ref, fast=fast, reused=reused, expected=expected, around=around))
    n = max(len(rows), 1)
    share = lambda test: round(sum(map(test, rows)) / n, 3)
    per_forward = lambda kind: round(sum(r[kind].stats.tokens for r in rows)
                                     / max(sum(r[kind].stats.forwards for r in rows), 1), 3)
    return {
        "tokens_per_forward": per_forward("fast"),
        "ref_tokens_per_forward": per_forward("ref"),
        "ref_ms_median": round(statistics.median(r["ref"].ms for r in rows), 2),
        "fast_ms_median": round(statistics.median(r["fast"].ms for r in rows), 2),
        "wall_speedup": round(sum(r["ref"].ms for r in rows) / max(sum(r["fast"].ms for r in rows), 1e-9), 2),
        "agreement": share(lambda r: r["ref"].text == r["fast"].text),
        "reuse_agreement": share(lambda r: r["reused"].text == r["fast"].text),
        "reused_prefix_tokens_median": statistics.median(r["reused"].stats.reused_prefix for r in rows) if rows else 0,
        "ref_line_exact": share(lambda r: first_line(r["ref"].text) == r["expected"].strip()),
        "fast_line_exact": share(lambda r: first_line(r["fast"].text) == r["expected"].strip()),
        # what a user would accept: the right prefix of the line, and a fill that knows where it ends
        "ref_prefix_match": share(lambda r: prefix_match(r["ref"].text, r["expected"])),
        "fast_prefix_match": share(lambda r: prefix_match(r["fast"].text, r["expected"])),
        "ends_hole": share(lambda r: _ended(r["fast"])),
        "ref_ends_hole": share(lambda r: _ended(r["ref"])),
        "ref_parses": share(lambda r: _parses(r["around"][0], first_line(r["ref"].text), r["around"][1])),
        "fast_parses": share(lambda r: _parses(r["around"][0], first_line(r["fast"].text), r["around"][1])),
    }


DECIDED = 0.01  # a position is decided when its top-1 probability leads the second by this much


@torch.inference_mode()
def top1_agreement(a: Sampler, b: Sampler, holes: list, hole: int) -> dict:
    """How often `b` picks `a`'s top-1 token at the masked positions of every hole, fully masked.

    top1_agreement: over all positions. A weak model is unsure at many positions, where its first
    and second choices differ by a fraction of a percent; top1_agreement_decided counts only the
    positions where `a`'s top-1 leads by at least DECIDED, and decided_positions says how many.
    """
    same, lead = [], []
    device = a.model.device
    for _, pre, suf, _, _ in holes:
        ids = torch.tensor([pre + [a.ids.mask] * hole + suf], device=device)
        rows = prediction_rows(torch.arange(len(pre), len(pre) + hole, device=device))
        index = (torch.zeros_like(rows), rows)
        probs = a.model(ids, logits_index=index).logits.float().softmax(-1)
        top2 = probs.topk(2, dim=-1).values
        same += (probs.argmax(-1) == b.model(ids, logits_index=index).logits.argmax(-1)).tolist()
        lead += (top2[:, 0] - top2[:, 1]).tolist()
    decided = [agrees for agrees, margin in zip(same, lead) if margin >= DECIDED]
    return {"top1_agreement": round(sum(same) / max(len(same), 1), 4),
            "top1_agreement_decided": round(sum(decided) / max(len(decided), 1), 4),
            "decided_positions": f"{len(decided)} of {len(same)}"}


def bench_sample_model(model_path: str, holes: int = 20, hole: int = 32, threshold: float = 0.9,
                       device: str = "auto", dtype: str = "auto", source: str | None = None,
                       quantize: str = "none") -> dict:
    """Reference vs fast on line holes cut from real code (`source`, see _source_texts), with a trained
    model: speed, agreement, first-line exact match and whether the file still parses; with
    `quantize`, for the quantized model, beside the unquantized one's figures and top-1 agreement."""
    sampler = Sampler.load(model_path, device=device, dtype=dtype, quantize=quantize)
    cut = real_code_holes(holes, sampler.tokenizer, source=source)
    if not cut:
        raise CodaError(f"no line holes to cut from {source or 'coda_core/*.py'}: it holds no Python line of "
                        f"code of 12 characters or more")
    result = {"model": str(model_path), "holes": len(cut), "hole_tokens": hole, "threshold": threshold,
              "device": str(sampler.model.device), "dtype": str(sampler.model.dtype).removeprefix("torch."),
              "quantize": quantize, **_figures(sampler, cut, hole, threshold), "source": source or "coda_core/*.py"}
    if quantize != "none":
        baseline = Sampler.load(model_path, device=device, dtype=dtype)
        result["unquantized"] = _figures(baseline, cut, hole, threshold)
        result["kernels"] = sampler.model.kernel_plan.describe()
        result.update(top1_agreement(baseline, sampler, cut, hole))
        # The int8 kernel's own fidelity, whatever this machine chose: every layer in int8.
        every = Sampler.load(model_path, device=device, dtype=dtype, quantize=quantize,
                             plan=kernels.every_layer(baseline.model.config, baseline.model.device,
                                                      baseline.model.dtype, quantize))
        result["every_layer"] = top1_agreement(baseline, every, cut, hole)
    return result


def format_sample_model(r: dict) -> str:
    def block(f: dict) -> list[str]:
        return [
            f"  tokens per forward: fast {f['tokens_per_forward']}, reference {f['ref_tokens_per_forward']}",
            f"  wall time per hole (median): reference {f['ref_ms_median']:.1f} ms, fast {f['fast_ms_median']:.1f} ms "
            f"(total speedup {f['wall_speedup']:.2f}x)",
            f"  agreement fast vs reference: {f['agreement']:.0%}; prefix reuse vs fresh: {f['reuse_agreement']:.0%}",
            f"  first line exact: reference {f['ref_line_exact']:.1%}, fast {f['fast_line_exact']:.1%}",
            f"  first line right as a prefix (mean share of its characters): reference {f['ref_prefix_match']:.1%}, "
            f"fast {f['fast_prefix_match']:.1%}",
            f"  fill ends before its canvas runs out: reference {f['ref_ends_hole']:.1%}, fast {f['ends_hole']:.1%}",
            f"  file still parses: reference {f['ref_parses']:.1%}, fast {f['fast_parses']:.1%}",
        ]
    head = (f"Samplers on {r['model']} ({r['dtype']}, {r['device']}): {r['holes']} line holes from real code, "
            f"canvas {r['hole_tokens']}, tau {r['threshold']}")
    if r["quantize"] == "none":
        return "\n".join([head, *block(r)])
    return "\n".join([head, "weights unquantized:", *block(r["unquantized"]), f"weights {r['quantize']}:", *block(r),
                      f"  top-1 agreement with the unquantized model (fully masked holes): {r['top1_agreement']:.1%}; "
                      f"where its top-1 leads by {DECIDED:.0%} or more ({r['decided_positions']} positions): "
                      f"{r['top1_agreement_decided']:.1%}",
                      f"  kernels chosen here: {r['kernels']}; with every layer int8: top-1 agreement "
                      f"{r['every_layer']['top1_agreement']:.1%} (decided {r['every_layer']['top1_agreement_decided']:.1%})"])
