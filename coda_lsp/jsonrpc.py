"""JSON-RPC 2.0 over Content-Length frames: coda-lsp's connection to its client, hardened.

A raw client found that one header could kill a server, that a frame one byte
short left the reader out of step, and that malformed requests went unanswered.
So here:

- `read_messages` reads frames with a size cap and resynchronises on the next
  `Content-Length:` header after stray bytes.
- `Endpoint.handle_body` checks each message's envelope before anyone acts on
  it. Every request whose id can be read gets an answer: -32600 (not a valid
  request). A body that is not JSON gets -32700 with `"id": null`, as JSON-RPC
  2.0 says, even where it seems to begin with an id: that id may be a request
  of the client's still in flight, which would then get two answers. A batch
  (LSP has none) gets one -32600 with `"id": null`.
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

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINE = 64 * 1024  # header lines are short; anything longer is skipped in pieces this size

# Error codes: JSON-RPC 2.0's, and LSP's own (the range JSON-RPC reserves for implementations).
PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32601, -32602, -32603
SERVER_NOT_INITIALIZED, REQUEST_CANCELLED = -32002, -32800

_CONTENT_LENGTH = re.compile(rb"Content-Length:[ \t]*(\d+)", re.IGNORECASE)


class RpcError(Exception):
    """An error answer: raised by a handler to answer with it, or by `Endpoint.request` when the
    other side answered with one (or with something that is not an answer)."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def valid_id(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class Endpoint:
    """One JSON-RPC connection: messages out through a writer, checked messages in to `on_message`.

    `on_message(message)` gets every request and notification as a dict with a valid envelope
    ("jsonrpc" 2.0, a string method, a valid id if any); answers to our own requests are matched
    here. `on_bad_message(text)` hears of each message that was rejected (the log has it too).
    Everything runs on one event loop; other threads go through `loop.call_soon_threadsafe`.
    """

    def __init__(self, on_message: Callable[[dict], None], on_bad_message: Callable[[str], None] = lambda text: None):
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

    def request(self, method: str, params=None) -> asyncio.Future:
        """Send a request; the future gets the answer's result, or fails with RpcError."""
        self._next_id += 1
        msg_id = f"coda-{self._next_id}"
        future = asyncio.get_running_loop().create_future()
        self._waiting[msg_id] = future
        future.add_done_callback(lambda _: self._waiting.pop(msg_id, None))  # answered, or given up on
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, **({} if params is None else {"params": params})})
        return future

    # -- in -------------------------------------------------------------------

    def reject(self, msg_id, code: int, text: str) -> None:
        """Answer a message that cannot be acted on, and log it."""
        logger.warning("bad message%s: %s", "" if msg_id is None else f" {msg_id!r}", text)
        self.respond_error(msg_id, code, text)
        self.on_bad_message(text)

    def handle_body(self, body: bytes) -> None:
        """One message body: check its envelope, then hand it on or take it as an answer. Never raises."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
            self.reject(None, PARSE_ERROR, f"the message is not valid JSON ({type(exc).__name__}: {exc})")
            return
        if isinstance(data, list):  # a batch: LSP has none; one answer, as JSON-RPC 2.0 answers an invalid batch
            self.reject(None, INVALID_REQUEST, "batches of messages are not supported by LSP")
            return
        if not isinstance(data, dict):
            self.reject(None, INVALID_REQUEST, f"a message must be a JSON object, got {type(data).__name__}")
            return
        msg_id, method = data.get("id"), data.get("method")
        if "id" in data and not valid_id(msg_id):
            # answered with id null: an id like 1e400 cannot even be written back as JSON
            self.reject(None, INVALID_REQUEST, f"a message id must be an integer or a string, got {msg_id!r:.80}")
            return
        answerable = msg_id if "method" in data else None
        if data.get("jsonrpc") != "2.0":
            self.reject(answerable, INVALID_REQUEST, f'"jsonrpc" must be "2.0", got {data.get("jsonrpc")!r:.80}')
            return
        if "method" not in data:
            self._take_answer(data)
            return
        if not isinstance(method, str):
            self.reject(answerable, INVALID_REQUEST, f'"method" must be a string, got {method!r:.80}')
            return
        try:
            self.on_message(data)
        except Exception:  # a bug of ours: the log has it, the connection goes on
            logger.exception("could not handle %s", method)
            if "id" in data:
                self.respond_error(msg_id, INTERNAL_ERROR, f"coda-lsp could not handle {method}")

    def _take_answer(self, data: dict) -> None:
        future = self._waiting.get(data.get("id")) if valid_id(data.get("id")) else None
        if future is None or future.done():
            logger.warning("an answer to no request of ours: %.200r", data)
        elif isinstance(data.get("error"), dict):
            error = data["error"]
            future.set_exception(RpcError(error.get("code") if isinstance(error.get("code"), int) else INTERNAL_ERROR,
                                          str(error.get("message", ""))))
        elif "result" in data:
            future.set_result(data["result"])
        else:
            future.set_exception(RpcError(INVALID_REQUEST, f"an answer with neither result nor error: {data!r:.200}"))


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
