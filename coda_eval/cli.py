"""`coda eval`: evaluate a model, check given solutions, compare two runs.

    coda eval TASK [--model M] [sampler options] [--n-samples K] [--limit N] --out DIR
    coda eval check TASK --solutions FILE.jsonl --out DIR
    coda eval compare A.jsonl B.jsonl [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections import defaultdict

from coda_core.bundled import DEFAULT_MODEL_HELP, default_model
from coda_core.errors import CodaError

from .metrics import bootstrap_ci
from .sandbox import Limits
from .tasks import TASKS, load_task, read_jsonl


def _limits(args) -> Limits:
    return Limits(cpu_s=args.cpu_seconds, wall_s=args.timeout, memory_mb=args.memory_mb)


def _sandbox_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="task data file (JSON lines) for mbpp, humaneval-plus, mbpp-plus")
    p.add_argument("--limit", type=int, help="only the first N problems")
    p.add_argument("--workers", type=int, help="programs run in parallel (default: the CPU count, at most 8)")
    p.add_argument("--timeout", type=float, default=20.0, help="wall seconds per program")
    p.add_argument("--cpu-seconds", type=int, default=10, help="CPU seconds per program")
    p.add_argument("--memory-mb", type=int, default=2048, help="address space per program")
    p.add_argument("--out", required=True, metavar="DIR")


def cmd_run(args) -> None:
    from coda_core.sampler import Sampler

    from .run import DECODE_PRESETS, generate
    from .scoring import execute, summarize, write_run

    problems = load_task(args.task, args.data)[: args.limit]
    preset = DECODE_PRESETS[args.preset]
    options = preset.options
    if args.threshold is not None or args.steps is not None or args.temperature is not None:
        from dataclasses import replace

        from coda_core.token_choice import SamplingParams

        options = replace(options,
                          threshold=args.threshold if args.threshold is not None else options.threshold,
                          steps=args.steps if args.steps is not None else options.steps,
                          sampling=SamplingParams(args.temperature, options.sampling.top_p, options.sampling.top_k)
                          if args.temperature is not None else options.sampling)
    model = args.model or default_model()
    sampler = Sampler.load(model, device=args.device, dtype=args.dtype, quantize=args.quantize,
                           strategy=args.strategy or preset.strategy, options=options)
    rows = generate(problems, sampler, max_new_tokens=args.max_new_tokens or preset.max_new_tokens,
                    samples=args.n_samples, chat=args.chat, seed=args.seed)
    execute(problems, rows, _limits(args), args.workers)
    summary = summarize(args.task, rows)
    out = write_run(args.out, rows, summary, {"model": str(model), "preset": args.preset})
    print(json.dumps(summary) if args.json else (out / "summary.md").read_text())


def cmd_check(args) -> None:
    from .scoring import execute, summarize, write_run

    every = load_task(args.task, args.data)
    problems = {p.task_id: p for p in every[: args.limit]}
    known = {p.task_id for p in every}
    rows = []
    for n, row in enumerate(read_jsonl(args.solutions)):
        if not isinstance(row, dict) or "task_id" not in row or "completion" not in row:
            raise CodaError(f"{args.solutions} line {n + 1}: expected {{\"task_id\": ..., \"completion\": ...}}")
        if row["task_id"] not in known:
            raise CodaError(f"{args.solutions} line {n + 1}: unknown task_id {row['task_id']!r} for {args.task}")
        if row["task_id"] in problems:  # --limit: the first N problems only
            rows.append({"task_id": row["task_id"], "sample": row.get("sample", 0), "completion": row["completion"]})
    execute(list(problems.values()), rows, _limits(args), args.workers)
    # A problem without a solution counts as failed, so pass@1 is over the whole task.
    missing = sorted(set(problems) - {r["task_id"] for r in rows})
    rows += [{"task_id": t, "sample": 0, "completion": None, "passed": False, "reason": "missing"} for t in missing]
    summary = summarize(args.task, rows)
    summary["missing"] = len(missing)
    out = write_run(args.out, rows, summary, {"solutions": str(args.solutions)})
    print(json.dumps(summary) if args.json else (out / "summary.md").read_text())


def compare(a_rows: list[dict], b_rows: list[dict]) -> dict:
    """pass@1, latency and tokens per forward of two runs, with bootstrap intervals over shared problems."""
    def per_task(rows):
        out = defaultdict(list)
        for r in rows:
            out[r["task_id"]].append(1.0 if r.get("passed") else 0.0)
        return {k: sum(v) / len(v) for k, v in out.items()}

    a, b = per_task(a_rows), per_task(b_rows)
    shared = sorted(set(a) & set(b))
    if not shared:
        raise CodaError("the two runs have no task_id in common")

    def side(rows, rates):
        values = [rates[t] for t in shared]
        ms = [r["ms"] for r in rows if "ms" in r and r["task_id"] in set(shared)]
        forwards = sum(r.get("forwards", 0) for r in rows if r["task_id"] in set(shared))
        return {"pass@1": round(sum(values) / len(values), 4), "pass@1_ci95": [round(x, 4) for x in bootstrap_ci(values)],
                "ms_median": statistics.median(ms) if ms else None,
                "tokens_per_forward": round(sum(r.get("tokens", 0) for r in rows if r["task_id"] in set(shared))
                                            / forwards, 3) if forwards else None}

    diff = [b[t] - a[t] for t in shared]
    return {"problems": len(shared), "a": side(a_rows, a), "b": side(b_rows, b),
            "delta_pass@1": round(sum(diff) / len(diff), 4),
            "delta_pass@1_ci95": [round(x, 4) for x in bootstrap_ci(diff)]}


def cmd_compare(args) -> None:
    result = compare(read_jsonl(args.a), read_jsonl(args.b))
    if args.json:
        print(json.dumps(result))
        return
    print(f"{result['problems']} shared problems")
    print(f"{'':10}{'pass@1':>10}{'95% CI':>22}{'ms (median)':>14}{'tokens/fwd':>12}")
    for name, path in (("a", args.a), ("b", args.b)):
        s = result[name]
        ci = f"[{s['pass@1_ci95'][0]:.3f}, {s['pass@1_ci95'][1]:.3f}]"
        ms = "-" if s["ms_median"] is None else f"{s['ms_median']:.1f}"
        tpf = "-" if s["tokens_per_forward"] is None else f"{s['tokens_per_forward']:.2f}"
        print(f"{name} {os.path.basename(path)[:7]:7}{s['pass@1']:>10.3f}{ci:>22}{ms:>14}{tpf:>12}")
    lo, hi = result["delta_pass@1_ci95"]
    print(f"b - a: {result['delta_pass@1']:+.3f} pass@1, 95% CI [{lo:+.3f}, {hi:+.3f}] (paired bootstrap)")


# `coda eval --help` ends with this list: the same command checks and compares too.
COMMANDS = """commands:
  coda eval TASK --out DIR                         evaluate a model on TASK (the options above)
  coda eval check TASK --solutions F --out DIR     execute given solutions, no model
  coda eval compare A.jsonl B.jsonl                compare two runs' samples.jsonl
each has its own --help"""


def build_parser(kind: str) -> argparse.ArgumentParser:
    if kind == "check":
        p = argparse.ArgumentParser(prog="coda eval check", description="execute given solutions, no model")
        p.add_argument("task", choices=TASKS)
        p.add_argument("--solutions", required=True, metavar="FILE.jsonl")
        p.add_argument("--json", action="store_true")
        _sandbox_options(p)
        p.set_defaults(func=cmd_check)
        return p
    if kind == "compare":
        p = argparse.ArgumentParser(prog="coda eval compare", description="compare two runs' samples.jsonl")
        p.add_argument("a", metavar="A.jsonl")
        p.add_argument("b", metavar="B.jsonl")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_compare)
        return p
    from coda_core.choices import QUANTIZE

    from .run import DECODE_PRESETS

    p = argparse.ArgumentParser(prog="coda eval", description="evaluate a model: generate, execute, score",
                                epilog=COMMANDS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("task", choices=TASKS)
    p.add_argument("--model", help=f"coda-mini, a model directory or hub id ({DEFAULT_MODEL_HELP})")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--dtype", default="auto", help="auto (default), bfloat16, float16 or float32")
    p.add_argument("--quantize", choices=QUANTIZE, default="none",
                   help="int8: the linear layers' weights in int8; for a large model on a CPU about 3x faster "
                        "per step than float32 (on a GPU: less memory, slower than bf16)")
    p.add_argument("--preset", choices=list(DECODE_PRESETS), default="fast")
    p.add_argument("--strategy", choices=["fast", "reference"], help="override the preset's sampler")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--threshold", type=float)
    p.add_argument("--steps", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--n-samples", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chat", action="store_true", help="instruction model: chat template, fenced code extracted")
    p.add_argument("--json", action="store_true")
    _sandbox_options(p)
    p.set_defaults(func=cmd_run)
    return p


def main(argv: list[str]) -> None:
    kind = argv[0] if argv and argv[0] in ("check", "compare") else "run"
    args = build_parser(kind).parse_args(argv[1:] if kind != "run" else argv)
    args.func(args)
