"""JSON-RPC 2.0 over Content-Length frames: coda-lsp's connection to its client, hardened.

A raw client found that one header could kill a server, that a frame one byte
short left the reader out of step, and that malformed requests went unanswered.
So here:

- `read_messages` reads frames with a size cap and resynchronises on the next
  `Content-Length:` header after stray bytes.
- `Endpoint.handle_body` parses each body once (coda_lsp.messages) and hands
  requests and notifications on typed, or answers what is not a valid message.
- `Endpoint.request` sends the server's own requests and matches the client's
  answers to them; an answer that is not JSON-RPC fails the waiting request
  instead of leaving it waiting forever.

Nothing here knows LSP: coda_lsp.protocol builds the language server on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import re
import threading
from typing import Callable

from .messages import (INTERNAL_ERROR, INVALID_REQUEST, BadMessage, Notification, Request, Response, RpcError,
                       parse_message)

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINE = 64 * 1024  # header lines are short; anything longer is skipped in pieces this size

_CONTENT_LENGTH = re.compile(rb"Content-Length:[ \t]*(\d+)", re.IGNORECASE)


class Endpoint:
    """One JSON-RPC connection: messages out through a writer, checked messages in to `on_message`.

    `on_message(message)` gets every request and notification, parsed (`Request`, `Notification`);
    answers to our own requests are matched here. `on_bad_message(text)` hears of each message
    that was rejected (the log has it too). Everything runs on one event loop; other threads go
    through `loop.call_soon_threadsafe`.
    """

    def __init__(self, on_message: Callable[[Request | Notification], None],
                 on_bad_message: Callable[[str], None] = lambda text: None):
        self.on_message, self.on_bad_message = on_message, on_bad_message
        self.writer = None  # .write(bytes), and .flush() where it buffers (stdout)
        self.closed = False  # the writer failed: the client is gone
        self._next_id = 0
        self._waiting: dict[str, asyncio.Future] = {}  # our requests' ids -> their answers

    def set_writer(self, writer) -> None:
        self.writer, self.closed = writer, False

    # -- out ------------------------------------------------------------------

    def send(self, message: dict) -> None:
        if self.writer is None or self.closed:
            return
        # allow_nan=False: NaN and Infinity are not JSON, and a client's parser would fail on them
        body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
        try:
            self.writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            if hasattr(self.writer, "flush"):
                self.writer.flush()
        except (OSError, ValueError) as exc:  # a closed pipe or file
            self.closed = True
            logger.error("the connection to the client is lost: %s", exc)

    def notify(self, method: str, params=None) -> None:
        self.send({"jsonrpc": "2.0", "method": method, **({} if params is None else {"params": params})})

    def respond(self, msg_id, result) -> None:
        self.send({"jsonrpc": "2.0", "id": msg_id, "result": result})

    def respond_error(self, msg_id, code: int, message: str) -> None:
        """An error answer; `msg_id` None is written as `"id": null` (the id could not be read)."""
        self.send({"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": message}})

    def request(self, method: str, params=None, msg_id: int | str | None = None) -> asyncio.Future:
        """Send a request (with `msg_id`, by default one of ours); the future gets the answer's
        result, or fails with RpcError."""
        if msg_id is None:
            self._next_id += 1
            msg_id = f"coda-{self._next_id}"
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        future.add_done_callback(lambda _: self._waiting.pop(msg_id, None))  # answered, or given up on
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, **({} if params is None else {"params": params})})
        return future

    def fail_waiting(self, reason: str) -> None:
        """Fail every request of ours still waiting for an answer: the other side is gone (its
        output ended), so none will come."""
        for future in list(self._waiting.values()):
            if not future.done():
                future.set_exception(RpcError(INTERNAL_ERROR, reason))

    # -- in -------------------------------------------------------------------

    def reject(self, msg_id, code: int, text: str) -> None:
        """Answer a message that cannot be acted on, and log it."""
        logger.warning("bad message%s: %s", "" if msg_id is None else f" {msg_id!r}", text)
        self.respond_error(msg_id, code, text)
        self.on_bad_message(text)

    def handle_body(self, body: bytes) -> None:
        """One message body: parse it, then hand it on or take it as an answer. Never raises."""
        try:
            message = parse_message(body)
        except BadMessage as bad:
            self.reject(bad.answer_id, bad.code, bad.message)
            return
        if isinstance(message, Response):
            self._take_answer(message)
            return
        try:
            self.on_message(message)
        except Exception:  # a bug of ours: the log has it, the connection goes on
            logger.exception("could not handle %s", message.method)
            if isinstance(message, Request):
                self.respond_error(message.id, INTERNAL_ERROR, f"coda-lsp could not handle {message.method}")

    def _take_answer(self, response: Response) -> None:
        future = self._waiting.get(response.id)
        if future is None or future.done():
            logger.warning("an answer to no request of ours: %.200r", response)
        elif response.error is not None:
            future.set_exception(response.error)
        else:
            future.set_result(response.result)


async def read_messages(reader, endpoint: Endpoint, stopped: Callable[[], bool],
                        max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """Read Content-Length framed messages from `reader` into `endpoint` until EOF or `stopped()`.

    `reader.readline(limit)` and `reader.readexactly(n)` are awaitables. A frame over `max_bytes`
    is not read: it is answered with an error and the reader looks for the next header, as it
    does after any bytes that are not a header (a frame whose Content-Length was short, say).
    """
    length, skipping = None, False
    while not stopped():
        line = await reader.readline(MAX_HEADER_LINE)
        if not line:
            return
        if length is None:
            match = _CONTENT_LENGTH.search(line)  # search, not match: resynchronise after stray bytes
            if match:
                length, skipping = int(match.group(1)), False
            elif line.strip() and not skipping:
                skipping = True  # logged once per run of stray bytes
                logger.warning("skipping bytes outside a message, up to the next Content-Length header: %r",
                               line[:80])
            continue
        if line.strip():
            continue  # another header field (Content-Type)
        if length > max_bytes:
            endpoint.reject(None, INVALID_REQUEST, f"a message of {length:,} bytes is over the limit of "
                                                   f"{max_bytes:,}; it was skipped")
            length, skipping = None, True
            continue
        expected, length = length, None
        body = await reader.readexactly(expected)
        if len(body) < expected:  # the stream ended inside the body
            return
        endpoint.handle_body(body)


async def serve(reader, endpoint: Endpoint, exited: asyncio.Event, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """Read messages into `endpoint` until the stream ends or `exited` is set (the client's `exit`:
    a stdin read blocked in its thread is then left behind, not waited for)."""
    reading = asyncio.ensure_future(read_messages(reader, endpoint, exited.is_set, max_bytes))
    waiting = asyncio.ensure_future(exited.wait())
    await asyncio.wait([reading, waiting], return_when=asyncio.FIRST_COMPLETED)
    reading.cancel()
    waiting.cancel()


async def accept_one(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The streams of the first client to connect to host:port (a language server serves one)."""
    connected = asyncio.get_running_loop().create_future()
    listener = await asyncio.start_server(lambda r, w: connected.done() or connected.set_result((r, w)), host, port)
    try:
        return await connected
    finally:
        listener.close()  # not waited for: from Python 3.12 that waits for the connection to end


class StdinReader:
    """A blocking binary stream (stdin) for `read_messages`, read on a daemon thread of its own.

    Daemon, so a client that sends `exit` and keeps the pipe open cannot hold the process up
    at exit (a thread pool's worker would be joined, blocked in read, forever)."""

    def __init__(self, stream):
        self.stream = stream
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="coda-lsp stdin", daemon=True).start()

    def _serve(self) -> None:
        while True:
            read, size, loop, future = self._calls.get()
            try:
                data = read(size)
            except (OSError, ValueError):  # closed under us
                data = b""
            loop.call_soon_threadsafe(lambda f=future, d=data: f.done() or f.set_result(d))

    async def _read(self, read, size: int) -> bytes:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._calls.put((read, size, loop, future))
        return await future

    async def readline(self, limit: int) -> bytes:
        return await self._read(self.stream.readline, limit)

    async def readexactly(self, n: int) -> bytes:
        return await self._read(self.stream.read, n)


class StreamReader:
    """An asyncio stream (TCP) for `read_messages`."""

    def __init__(self, stream: asyncio.StreamReader):
        self.stream = stream

    async def readline(self, limit: int) -> bytes:
        try:
            return await self.stream.readline()
        except ValueError:  # a line over the stream's limit: asyncio dropped it; it was not a header
            return b"<an over-long line>\n"

    async def readexactly(self, n: int) -> bytes:
        try:
            return await self.stream.readexactly(n)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
