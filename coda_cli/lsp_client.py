"""An LSP client of the real `coda-lsp`, for the scripts that drive it as an editor would.

`coda bench lsp` (coda_cli.bench_lsp) and the `make demo` editor session
(coda_cli.demo) both start the server as its own process over stdio, wait
until it has loaded its model, open a Python file and shut it down at the end;
`running_server` does that part for both. The client speaks through the
server's own JSON-RPC layer (coda_lsp.jsonrpc) over the process's pipes, with
lsprotocol's types, so the scripts need no LSP library of their own.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

from lsprotocol import types as T
from lsprotocol.converters import get_converter

from coda_core.errors import CodaError
from coda_lsp.arguments import method_params, method_result
from coda_lsp.jsonrpc import Endpoint, StreamReader, read_messages
from coda_lsp.messages import METHOD_NOT_FOUND, Notification, Request, RpcError

STATUS = "coda/status"  # the server's notification of its model's state (coda_lsp.server.STATUS)
LOAD_TIMEOUT = 300.0  # seconds: enough for a hub model's download on a slow line, not for a hang


class LanguageClient:
    """A client of `coda-lsp --stdio`: requests and notifications with lsprotocol's types, and
    handlers for what the server sends (`on`). The server's requests nobody handles are answered
    "method not found", as an editor without the feature answers them."""

    def __init__(self):
        self.converter = get_converter()
        self.rpc = Endpoint(self._dispatch)
        self.handlers: dict[str, Callable] = {}
        self.process: asyncio.subprocess.Process | None = None
        self._reading: asyncio.Task | None = None

    def on(self, method: str, handler: Callable) -> None:
        """`handler(params)` hears `method` from the server (params in its lsprotocol type, or as
        sent for a method of coda-lsp's own); for a request, it returns the answer's result."""
        self.handlers[method] = handler

    async def start(self, *server_args: str) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coda_lsp.server", "--stdio", *server_args, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        self.rpc.set_writer(self.process.stdin)
        self._reading = asyncio.ensure_future(read_messages(StreamReader(self.process.stdout), self.rpc,
                                                            lambda: False))
        self._reading.add_done_callback(self._output_ended)

    def _output_ended(self, reading: asyncio.Task) -> None:
        # The server exited (or crashed, or never started): what it was asked will not be answered.
        self.rpc.fail_waiting("coda-lsp stopped before it answered; `coda-lsp --check` shows why it cannot start")

    @property
    def stopped(self) -> bool:
        """The server's process has ended, or its output has."""
        return self.process is None or self.process.returncode is not None or self._reading.done()

    async def stop(self) -> None:
        """Wait for the server's process to end (after `exit`), and stop reading its output."""
        if self.process is not None:
            await self.process.wait()
        if self._reading is not None:
            self._reading.cancel()

    def notify(self, method: str, params=None) -> None:
        self.rpc.notify(method, None if params is None else self.converter.unstructure(params))

    def request(self, method: str, params=None, msg_id: str | None = None) -> asyncio.Future:
        """Send a request (with `msg_id`, or an id of the endpoint's); the future gets its result in
        the method's lsprotocol type, or fails with RpcError."""
        raw = self.rpc.request(method, None if params is None else self.converter.unstructure(params), msg_id)
        return asyncio.ensure_future(self._result(method, raw))

    async def _result(self, method: str, raw: asyncio.Future):
        return method_result(self.converter, method, await raw)

    def _dispatch(self, message: Request | Notification) -> None:
        handler = self.handlers.get(message.method)
        if handler is None:
            if isinstance(message, Request):
                self.rpc.respond_error(message.id, METHOD_NOT_FOUND, f"no handler of {message.method}")
            return
        result = handler(method_params(self.converter, message.method, message.params))
        if isinstance(message, Request):
            self.rpc.respond(message.id, self.converter.unstructure(result))


@asynccontextmanager
async def running_server(client: LanguageClient, settings: dict | None = None,
                         capabilities: T.ClientCapabilities | None = None, workspace_folders: list[str] = (),
                         server_args: list[str] = ()) -> AsyncIterator[dict]:
    """Start `coda-lsp --stdio` for `client`, initialize it with `settings` (its initializationOptions:
    model, device, dtype, ...) and wait until the model is loaded; yields the server's ready status
    (its coda/status params: "state", "model", ...).

    A model that fails to load, or does not load within LOAD_TIMEOUT, is a CodaError (its message is
    the server's own). Register the client's other handlers before entering: they must be known when
    the server starts talking. `workspace_folders` (file URIs) are the folders the client has open;
    `server_args` go to `coda-lsp` after `--stdio`.
    """
    loaded = asyncio.get_running_loop().create_future()

    def on_status(status: dict) -> None:  # "loading" comes first, and while a hub model downloads
        if status["state"] in ("ready", "error") and not loaded.done():
            loaded.set_result(status)

    client.on(STATUS, on_status)
    await client.start(*server_args)
    try:
        folders = [T.WorkspaceFolder(uri, uri.rsplit("/", 1)[-1]) for uri in workspace_folders]
        try:
            await client.request(T.INITIALIZE, T.InitializeParams(
                capabilities=capabilities or T.ClientCapabilities(), initialization_options=settings or {},
                workspace_folders=folders or None))
        except RpcError as exc:
            raise CodaError(f"coda-lsp could not be initialized: {exc.message}") from None
        client.notify(T.INITIALIZED, T.InitializedParams())
        try:
            status = await asyncio.wait_for(loaded, timeout=LOAD_TIMEOUT)
        except asyncio.TimeoutError:
            model = (settings or {}).get("model", "its model")
            raise CodaError(f"coda-lsp did not load {model} within {LOAD_TIMEOUT:.0f} s") from None
        if status["state"] == "error":
            raise CodaError(status.get("message"))
        yield status
    finally:
        # Also after an error: `stop` waits for the server's process to end.
        if not client.stopped:  # stopped: the process has exited already
            await asyncio.wait_for(client.request(T.SHUTDOWN), timeout=30)
            client.notify(T.EXIT)
        await client.stop()


def open_python(client: LanguageClient, uri: str, text: str) -> None:
    """Open `text` as the Python document `uri` (version 1)."""
    client.notify(T.TEXT_DOCUMENT_DID_OPEN, T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, text)))
