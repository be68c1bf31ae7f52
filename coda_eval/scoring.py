"""Execute completions in the sandbox and score them; write a run's files.

Outputs in the run's directory:
    samples.jsonl  one line per sample: task_id, sample, completion, passed,
                   reason, forwards, tokens, ms (and for infill exact_match,
                   prefix_match and ended)
    summary.json   task, n (problems), samples, pass@1 (pass@k for each k <=
                   samples in 1/10/100 when sampled), for infill exact_match,
                   prefix_match (the mean share of the hole's first line the
                   fill's first line gets right as a prefix) and ends_hole (the
                   share of fills that ended before their canvas ran out),
                   failure reasons, median ms, tokens per forward
    summary.md     the same for people

No torch here: `coda eval check` scores solutions without loading a model.
"""

from __future__ import annotations

import json
import os
import statistics
from collections import Counter, defaultdict
from pathlib import Path

from coda_core.progress import progress

from .metrics import mean_pass_at_k, prefix_match
from .sandbox import Limits, isolation_level, run_many
from .tasks import Problem


def normalized(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def program_for(problem: Problem, row: dict) -> str:
    if row.get("full_program"):
        return f"{row['completion']}\n\n{problem.tests}\n"
    return problem.program(row["completion"])


def execute(problems: list[Problem], rows: list[dict], limits: Limits = Limits(), workers: int | None = None) -> None:
    """Run every row's program in the sandbox; adds passed, reason (and exact_match for infill)."""
    by_id = {p.task_id: p for p in problems}
    programs = [program_for(by_id[r["task_id"]], r) for r in rows]
    # Identical programs (the same fill of the same problem, or infill holes whose fills rebuild
    # the same file) run once and share the outcome.
    unique = list(dict.fromkeys(programs))
    with progress(total=len(unique), desc="executing", unit="program") as bar:
        outcome_of = dict(zip(unique, run_many(unique, limits, workers, bar.update)))
    for row, program in zip(rows, programs):
        outcome = outcome_of[program]
        problem = by_id[row["task_id"]]
        row["passed"], row["reason"] = outcome.passed, outcome.reason
        if problem.infill:
            row["exact_match"] = normalized(row["completion"]) == normalized(problem.reference)
            row["prefix_match"] = round(prefix_match(row["completion"], problem.reference), 4)


def summarize(task: str, rows: list[dict]) -> dict:
    per_task: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        per_task[row["task_id"]].append(bool(row["passed"]))
    counts = [(len(v), sum(v)) for v in per_task.values()]
    samples = min((n for n, _ in counts), default=0)
    summary = {"task": task, "n": len(per_task), "samples": len(rows),
               "pass@1": round(mean_pass_at_k(counts, 1), 4) if counts else 0.0}
    if samples > 1:
        summary["pass@k"] = {str(k): round(mean_pass_at_k(counts, k), 4) for k in (1, 10, 100) if k <= samples}
    if rows and "exact_match" in rows[0]:
        summary["exact_match"] = round(sum(r.get("exact_match", False) for r in rows) / len(rows), 4)
        summary["prefix_match"] = round(sum(r.get("prefix_match", 0.0) for r in rows) / len(rows), 4)
    ended = [r["ended"] for r in rows if "ended" in r]
    if ended:
        summary["ends_hole"] = round(sum(ended) / len(ended), 4)
    summary["reasons"] = dict(Counter(r["reason"] for r in rows).most_common())
    timed = [r for r in rows if "ms" in r]
    if timed:
        summary["ms_median"] = statistics.median(r["ms"] for r in timed)
        summary["tokens_per_forward"] = round(sum(r["tokens"] for r in timed)
                                              / max(sum(r["forwards"] for r in timed), 1), 3)
    summary["sandbox"] = isolation_level()
    return summary


def write_run(out: str | os.PathLike, rows: list[dict], summary: dict, extra: dict | None = None) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "samples.jsonl", "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    summary = {**summary, **(extra or {})}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    return out


def summary_markdown(summary: dict) -> str:
    lines = [f"# {summary['task']}", "", "| metric | value |", "|---|---|"]
    for key in ("n", "samples", "pass@1", "exact_match", "prefix_match", "ends_hole", "ms_median", "tokens_per_forward", "sandbox", "model",
                "preset"):
        if key in summary:
            lines.append(f"| {key} | {summary[key]} |")
    for k, v in summary.get("pass@k", {}).items():
        lines.append(f"| pass@{k} | {v} |")
    lines += ["", "Outcomes:", ""] + [f"- {reason}: {count}" for reason, count in summary["reasons"].items()]
    return "\n".join(lines) + "\n"
