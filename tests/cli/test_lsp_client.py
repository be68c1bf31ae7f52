"""coda_cli's own LSP client (coda bench lsp, make demo) against the real coda-lsp."""

import asyncio

import pytest

from coda_cli.lsp_client import LanguageClient, running_server
from coda_core.errors import CodaError


def test_a_server_that_exits_before_it_answers_is_an_error_not_a_hang():
    async def start() -> None:
        # --max-message-mb 0 is refused on the command line: the server exits before it reads a message
        async with running_server(LanguageClient(), server_args=["--max-message-mb", "0"]):
            pass

    with pytest.raises(CodaError, match="stopped before it answered"):
        asyncio.run(asyncio.wait_for(start(), timeout=60))
