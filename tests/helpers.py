"""What tests of several packages share: the `coda` command, raw JSON-RPC frames and clients,
and a coda-lsp started with pytest-lsp that records its coda/status notifications."""

import asyncio
import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, client_capabilities

CODA = Path(sys.executable).with_name("coda")
SERVER = [sys.executable, "-m", "coda_lsp.server", "--stdio"]
EXIT = {"jsonrpc": "2.0", "method": "exit"}


def coda(*args, env=None, default_model=False):
    """Run `coda`; default_model=True runs it with $CODA_MODEL unset, so the bundled coda-mini is the default."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    if default_model:
        full_env.pop("CODA_MODEL", None)
    return subprocess.run([str(CODA), *map(str, args)], capture_output=True, text=True, env=full_env,
                          stdin=subprocess.DEVNULL, timeout=600)


def frame(message) -> bytes:
    """One JSON-RPC message (a dict, or raw body bytes) with its Content-Length header."""
    body = message if isinstance(message, bytes) else json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def read_frames(data: bytes) -> list[dict]:
    """The JSON-RPC messages in a server's whole output."""
    out = []
    while data:
        header, _, rest = data.partition(b"\r\n\r\n")
        fields = dict(line.split(b":", 1) for line in header.split(b"\r\n"))
        length = int(fields[b"Content-Length"])
        out.append(json.loads(rest[:length]))
        data = rest[length:]
    return out


class RawClient:
    """An interactive raw client: frames out on stdin, frames in from stdout on a thread."""

    def __init__(self):
        self.process = subprocess.Popen(SERVER, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.inbox: queue.Queue = queue.Queue()
        self.seen: list[dict] = []  # every message wait_for took from the inbox
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        out = self.process.stdout
        while True:
            header = b""
            while not header.endswith(b"\r\n\r\n"):
                byte = out.read(1)
                if not byte:
                    return
                header += byte
            length = int(header.split(b"Content-Length:")[1].split(b"\r\n")[0])
            self.inbox.put(json.loads(out.read(length)))

    def send(self, message) -> None:
        self.process.stdin.write(frame(message))
        self.process.stdin.flush()

    def wait_for(self, test, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            message = self.inbox.get(timeout=max(0.01, deadline - time.monotonic()))
            self.seen.append(message)
            if test(message):
                return message

    def close(self) -> int:
        try:
            self.send({"jsonrpc": "2.0", "id": "bye", "method": "shutdown"})
            self.send(EXIT)
            return self.process.wait(timeout=60)
        finally:
            self.process.kill()


def environment(**extra) -> dict:
    """This environment with $CODA_MODEL unset (the hub offline), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "CODA_MODEL"}
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


STATUS = "coda/status"  # the notification of a model load's start and end (coda_lsp.server.STATUS)


async def notified(client, method: str, condition, timeout: float = 120.0) -> bool:
    """Whether `condition()` holds within `timeout` seconds, checked now and again as each `method`
    notification comes in: a wait on the notification itself, never a poll.

    pytest-lsp resolves its wait before the client's own handler for the notification runs, and the
    wait resumes after that handler (a plain function) has run: what it records is in when
    `condition` is checked. The wait is not cancelled on a timeout (pytest-lsp would later set the
    result of a cancelled future); the next wait for `method` replaces it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        left = deadline - loop.time()
        if left <= 0:
            return False
        await asyncio.wait([client.protocol.wait_for_notification_async(method)], timeout=left)
    return True


def record_statuses(client) -> list:
    """The coda/status notifications the client hears from now on (their params, in order)."""
    statuses = []
    client.feature(STATUS)(lambda params: statuses.append(params))
    return statuses


@contextlib.asynccontextmanager
async def server_with_statuses(options: dict, env: dict | None = None, capabilities: str = "neovim"):
    """A coda-lsp initialized with `options`, and the coda/status notifications it sends (a list)."""
    client = await ClientServerConfig(server_command=SERVER, server_env=env or environment()).start()
    statuses = record_statuses(client)
    try:
        await client.initialize_session(T.InitializeParams(capabilities=client_capabilities(capabilities),
                                                           initialization_options=options))
        yield client, statuses
    finally:
        # shut down cleanly after a failed assertion too: a server never told to exit keeps stop() waiting
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.shutdown_session(), timeout=30)
        await client.stop()


async def until_loaded(client, statuses: list, timeout: float = 120.0) -> None:
    """Until the first model load ends, one way or the other: its last status is not "loading"."""
    assert await notified(client, STATUS, lambda: statuses and statuses[-1].state != "loading", timeout), \
        f"no model load ended within {timeout:.0f} s: {statuses}"
