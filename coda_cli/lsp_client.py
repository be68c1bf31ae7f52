"""An LSP client of the real `coda-lsp`, for the scripts that drive it as an editor would.

`coda bench lsp` (coda_cli.bench_lsp) and the `make demo` editor session
(coda_cli.demo) both start the server as its own process over stdio, wait
until it has loaded its model, open a Python file and shut it down at the end;
`running_server` does that part for both.
"""

from __future__ import annotations

import asyncio
import sys
from contextlib import asynccontextmanager
from typing import AsyncIterator

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

from coda_core.errors import CodaError

STATUS = "coda/status"  # the server's notification of its model's state (coda_lsp.server.STATUS)
LOAD_TIMEOUT = 300.0  # seconds: enough for a hub model's download on a slow line, not for a hang


@asynccontextmanager
async def running_server(client: LanguageClient, settings: dict | None = None,
                         capabilities: T.ClientCapabilities | None = None, workspace_folders: list[str] = (),
                         server_args: list[str] = ()) -> AsyncIterator:
    """Start `coda-lsp --stdio` for `client`, initialize it with `settings` (its initializationOptions:
    model, device, dtype, ...) and wait until the model is loaded; yields the server's ready status.

    A model that fails to load, or does not load within LOAD_TIMEOUT, is a CodaError (its message is
    the server's own). Register the client's other features before entering: they must be known when
    the server starts talking. `workspace_folders` (file URIs) are the folders the client has open;
    `server_args` go to `coda-lsp` after `--stdio`.
    """
    loaded = asyncio.get_running_loop().create_future()

    @client.feature(STATUS)
    def on_status(status) -> None:  # "loading" comes first, and while a hub model downloads
        if status.state in ("ready", "error") and not loaded.done():
            loaded.set_result(status)

    await client.start_io(sys.executable, "-m", "coda_lsp.server", "--stdio", *server_args)
    try:
        folders = [T.WorkspaceFolder(uri, uri.rsplit("/", 1)[-1]) for uri in workspace_folders]
        await client.initialize_async(T.InitializeParams(capabilities=capabilities or T.ClientCapabilities(),
                                                         initialization_options=settings or {},
                                                         workspace_folders=folders or None))
        client.initialized(T.InitializedParams())
        try:
            status = await asyncio.wait_for(loaded, timeout=LOAD_TIMEOUT)
        except asyncio.TimeoutError:
            model = (settings or {}).get("model", "its model")
            raise CodaError(f"coda-lsp did not load {model} within {LOAD_TIMEOUT:.0f} s") from None
        if status.state == "error":
            raise CodaError(status.message)
        yield status
    finally:
        # Also after an error: `stop` waits for the server's process to end.
        if not client.stopped:  # stopped: the process has exited already
            await asyncio.wait_for(client.shutdown_async(None), timeout=30)
            client.exit(None)
        await client.stop()


def open_python(client: LanguageClient, uri: str, text: str) -> None:
    """Open `text` as the Python document `uri` (version 1)."""
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, text)))
