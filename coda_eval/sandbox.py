"""Run untrusted programs, each in its own sandboxed process, and say how each ended.

Every program gets: a fresh working directory that is also its HOME, a
scrubbed environment, limits on CPU seconds, address space, file size, open
files and processes, a wall-clock timeout, and no network. How that is
enforced is in `_launch.py`: as root, kernel namespaces (network, mount, PID)
and an unprivileged user; otherwise rlimits plus blocked socket creation,
which `Outcome.isolation` reports as "rlimits".

A program passes only if it ran to its end and returned, so that the tests
at its end all ran: the launcher's runner then writes a random per-run token
to a report file only the harness reads (see `_launch.RUNNER`). An exit
status of 0 alone is not a pass, since `sys.exit(0)` or `os._exit(0)` before
the tests also gives one.

Whatever a program does, `run_program` returns an `Outcome` with a reason:
passed, assertion, exception: NAME, syntax error, exited before the tests
finished, timeout, memory, crash: signal N, exit status N, or sandbox error
(the program could not be started).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from coda_eval._launch import CPU_EXHAUSTED, EXITED, NOT_STARTED

LAUNCHER = Path(__file__).with_name("_launch.py")


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 10
    wall_s: float = 20.0
    memory_mb: int = 2048
    file_mb: int = 16
    nproc: int = 32
    namespaces: bool = True  # False: rlimits and blocked sockets only, as for a non-root user


@dataclass
class Outcome:
    passed: bool
    reason: str
    seconds: float
    isolation: str  # "namespaces" or "rlimits"
    stderr_tail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def isolation_level(limits: Limits = Limits()) -> str:
    return "namespaces" if limits.namespaces and os.geteuid() == 0 else "rlimits"


EARLY_EXIT = "exited before the tests finished"


def _reason(returncode: int, stderr: str, timed_out: bool) -> str:
    """Why a program that did not pass failed, from how its process ended."""
    if timed_out:
        return "timeout"
    if returncode in (CPU_EXHAUSTED, 128 + signal.SIGXCPU):
        return "timeout"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    if returncode == 127 and last.startswith(NOT_STARTED):
        return "sandbox error"
    # SystemExit (sys.exit, exit(), raise SystemExit) is reported by the runner; os._exit(0) says nothing.
    if returncode == 0 or last.startswith(EXITED):
        return EARLY_EXIT
    name = last.split(":", 1)[0].strip()
    if name == "MemoryError":
        return "memory"
    if name == "AssertionError":
        return "assertion"
    if name in ("SyntaxError", "IndentationError", "TabError"):
        return "syntax error"
    if returncode > 128:
        return f"crash: signal {returncode - 128}"
    if name.isidentifier():
        return f"exception: {name}"
    return f"exit status {returncode}"


def run_program(code: str, limits: Limits = Limits()) -> Outcome:
    """Run `code` as a Python program in the sandbox; never raises for anything the program does."""
    start = time.monotonic()
    token = secrets.token_hex(16).encode()  # written to the report file only once the program has returned
    with tempfile.TemporaryDirectory(prefix="coda-sandbox-") as workdir:
        # stderr and the report go to files, not pipes: a child the program leaves behind cannot keep us reading.
        with open(os.path.join(workdir, "stderr"), "w+b") as err_file, \
                open(os.path.join(workdir, "report"), "w+b") as report_file:
            config = dict(asdict(limits), workdir=workdir, report_fd=report_file.fileno(), python_home=sys.base_prefix,
                          python_rel=os.path.relpath(os.path.realpath(sys.executable), sys.base_prefix))
            process = subprocess.Popen(
                [sys.executable, "-I", "-S", str(LAUNCHER), json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err_file, pass_fds=(report_file.fileno(),),
                cwd=workdir, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
                start_new_session=True)
            timed_out = False
            try:
                # The token goes in on stdin, not in the arguments: /proc shows those to everyone.
                process.communicate(token + b"\n" + code.encode("utf-8"), timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(process)  # with namespaces nothing outlives the run; without, a setsid() child can
                process.wait()
            err = _tail(err_file, 2000)
            # The runner writes the token last and exits at once; whatever the program wrote there comes before it.
            passed = token in _tail(report_file, 4096)
    stderr = err.decode("utf-8", "replace")
    reason = "passed" if passed else _reason(process.returncode, stderr, timed_out)
    return Outcome(passed, reason, round(time.monotonic() - start, 3), isolation_level(limits), stderr[-500:])


def _tail(file, size: int) -> bytes:
    file.seek(max(0, os.fstat(file.fileno()).st_size - size))
    return file.read()


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_many(programs: list[str], limits: Limits = Limits(), workers: int | None = None, progress=None) -> list[Outcome]:
    """Run programs in parallel (each in its own sandbox); results in input order."""
    workers = workers or max(1, min(8, (os.cpu_count() or 2)))
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(run_program, code, limits) for code in programs]
        results = []
        for future in futures:
            results.append(future.result())
            if progress is not None:
                progress()
    return results
