"""coda-lsp's JSON-RPC layer: pygls 2.1's protocol, hardened against hostile or buggy clients.

A raw client found that one header could kill the server, that a frame one
byte short left the reader out of step, that malformed requests went
unanswered (and each popped an error at the user), and that the lifecycle
rules of the spec (no requests before `initialize` or after `shutdown`, exit
code 1 without `shutdown`) were not kept. Here:

- `read_messages` is the message loop: Content-Length framing with a size
  cap, resynchronisation on the next `Content-Length:` header after stray
  bytes, and a check of each message's envelope before pygls sees it. Every
  request whose id can be read gets an answer: -32700 (not JSON), -32600 (not
  a valid request), -32002 (before `initialize`), -32600 (after `shutdown`).
- The user hears of protocol problems at most once per session; the details
  go to the log.
- Futures of finished notification handlers are dropped (pygls kept one per
  `didChange`, so memory grew about 1 KB per keystroke).
- Documents split their lines as LSP does (`LspTextDocument`).
- `workspace/executeCommand` runs the command in a task of its own, so a
  `$/cancelRequest` cancels only the request's outer future; commands register
  their task in `command_tasks`, and a cancel cancels it too.
- `MessageLoopServer` is pygls' LanguageServer running that loop on stdio and
  TCP; coda_lsp.server's CodaServer builds on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import threading
from types import SimpleNamespace

from lsprotocol import types as T
from pygls.exceptions import FeatureRequestError, JsonRpcException
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method
from pygls.workspace import TextDocument, Workspace

from .text import split_lines

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_LINE = 64 * 1024  # header lines are short; anything longer is skipped in pieces this size
PARSE_ERROR, INVALID_REQUEST, SERVER_NOT_INITIALIZED = -32700, -32600, -32002

_CONTENT_LENGTH = re.compile(rb"Content-Length:[ \t]*(\d+)", re.IGNORECASE)
# The id of a body that is not JSON, when it comes first (or right after "jsonrpc"), as clients write it.
_LEADING_ID = re.compile(rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"[^"]*"\s*,\s*)?"id"\s*:\s*(-?\d{1,18}|"(?:[^"\\]|\\.)*")\s*[,}]')


def _valid_id(value) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _is_notification(method: str) -> bool:
    request_type = T.METHOD_TO_TYPES.get(method, (None,))[0]
    return request_type is not None and request_type.__name__.endswith("Notification")


class LspTextDocument(TextDocument):
    """pygls' document with its lines split as LSP counts them (see coda_lsp.text): pygls applies
    incremental changes and converts positions line by line, with str.splitlines.

    The split is kept until the text changes: pygls and the server ask for `lines` several
    times per keystroke, and splitting a 2,000-line file costs about half a millisecond."""

    _split: tuple[str, tuple[str, ...]] | None = None  # (source, its lines)

    @property
    def lines(self):
        source = self.source
        if self._split is None or self._split[0] is not source:
            self._split = (source, tuple(split_lines(source)))
        return self._split[1]


class LspWorkspace(Workspace):
    def _create_text_document(self, doc_uri, source=None, version=None, language_id=None) -> TextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self._position_codec)


class CodaProtocol(LanguageServerProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.command_tasks: dict = {}  # request id -> the task running its command
        self.initialize_seen = False
        self.exit_code: int | None = None  # set by `exit`: 0 after `shutdown`, else 1
        self._told_user = False

    # -- the envelope ---------------------------------------------------------

    def handle_body(self, body: bytes) -> None:
        """Parse one message body, check its envelope, and hand it to pygls; never raises."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, or nested too deep
            match = _LEADING_ID.match(body)
            msg_id = json.loads(match.group(1)) if match else None
            self.reject(msg_id, PARSE_ERROR, f"the message is not valid JSON ({type(exc).__name__}: {exc})")
            return
        if isinstance(data, list):  # a batch: LSP has none
            ids = [m.get("id") for m in data if isinstance(m, dict) and "method" in m and _valid_id(m.get("id"))]
            for msg_id in ids or [None]:
                self.reject(msg_id, INVALID_REQUEST, "batches of messages are not supported by LSP")
            return
        if not isinstance(data, dict):
            self.reject(None, INVALID_REQUEST, f"a message must be a JSON object, got {type(data).__name__}")
            return
        msg_id, method = data.get("id"), data.get("method")
        if "id" in data and not _valid_id(msg_id):
            # answered with id null: an id like 1e400 cannot even be written back as JSON
            self.reject(None, INVALID_REQUEST, f"a message id must be an integer or a string, got {msg_id!r}")
            return
        answerable = msg_id if "method" in data else None
        if data.get("jsonrpc") != "2.0":
            self.reject(answerable, INVALID_REQUEST, f'"jsonrpc" must be "2.0", got {data.get("jsonrpc")!r}')
            return
        if "method" in data and not isinstance(method, str):
            self.reject(answerable, INVALID_REQUEST, f'"method" must be a string, got {method!r}')
            return
        if answerable is not None and _is_notification(method):
            self.reject(msg_id, INVALID_REQUEST, f"{method} is a notification: send it without an id")
            return
        try:
            self.handle_message(self.structure_message(data))
        except Exception:
            logger.exception("could not handle a message")

    def reject(self, msg_id, code: int, text: str) -> None:
        """Answer a bad message (with id null when its id cannot be read, as JSON-RPC says), log it,
        and tell the user once."""
        logger.warning("bad message%s: %s", "" if msg_id is None else f" {msg_id!r}", text)
        self._send_response(msg_id, error=T.ResponseError(code=code, message=text))
        self.tell_user_once(text)

    def tell_user_once(self, text: str) -> None:
        if self._told_user:
            return
        self._told_user = True
        self._server.window_show_message(T.ShowMessageParams(
            T.MessageType.Warning, f"coda-lsp: the editor sent a message it could not use ({text}). "
            "Further problems of this kind go to the server log only."))

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:  # params that do not deserialize: pygls would drop the message
            if "id" in data and "method" in data:
                self._send_response(data["id"], error=exc.to_response_error())
            elif (future := self._request_futures.pop(data.get("id"), None)) is not None:
                # an answer to one of our requests that is not what the spec says (null, {}, garbage):
                # whoever awaits it hears so now, instead of waiting forever
                future.set_exception(JsonRpcException(f"a response that is not a valid result: {data!r:.200}"))
            return SimpleNamespace(jsonrpc="unreadable")  # handle_message ignores it

    # -- the lifecycle --------------------------------------------------------

    def handle_message(self, message) -> None:
        method, msg_id = getattr(message, "method", None), getattr(message, "id", None)
        request = method is not None and msg_id is not None
        if method == T.EXIT:
            self.exit_code = 0 if self._shutdown else 1
        elif method == T.INITIALIZE:
            self.initialize_seen = True
        elif not self.initialize_seen and method is not None:
            if request:  # notifications before initialize are dropped, as the spec says
                self._send_response(msg_id, error=T.ResponseError(
                    code=SERVER_NOT_INITIALIZED, message="the server is not initialized: send initialize first"))
            return
        elif self._shutdown and request:
            self._send_response(msg_id, error=T.ResponseError(
                code=INVALID_REQUEST, message="the server is shutting down: only exit is accepted"))
            return
        super().handle_message(message)

    @lsp_method(T.INITIALIZE)
    def lsp_initialize(self, params: T.InitializeParams):
        """pygls' initialize, after which its workspace keeps LspTextDocuments (documents are
        opened only after initialize)."""
        result = yield from super().lsp_initialize(params)
        self._workspace.__class__ = LspWorkspace
        return result

    @lsp_method(T.SHUTDOWN)
    def lsp_shutdown(self, *args):
        """pygls' shutdown, iterating over a copy: cancelling a thread's future runs its callbacks
        at once, and they remove entries ("dictionary changed size during iteration")."""
        if (user_handler := self.fm.features.get(T.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current and not future.done():
                future.cancel()
        for task in list(self.command_tasks.values()):
            task.cancel()
        self._shutdown = True
        return None

    # -- bookkeeping ----------------------------------------------------------

    def _execute_handler(self, msg_id, handler, callback, args=None, kwargs=None):
        def done(future):
            # pygls forgets a request's future when it answers, never a notification's
            if self._request_futures.get(msg_id) is future:
                del self._request_futures[msg_id]
            callback(future)

        super()._execute_handler(msg_id, handler, done, args, kwargs)

    def _handle_cancel_notification(self, msg_id):
        task = self.command_tasks.pop(msg_id, None)
        if task is not None:
            task.cancel()
        super()._handle_cancel_notification(msg_id)


async def read_messages(reader, protocol: CodaProtocol, stop_event, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
    """Read Content-Length framed messages from `reader` until EOF or `stop_event`.

    `reader.readline(limit)` and `reader.readexactly(n)` are awaitables. A frame over `max_bytes`
    is not read: its header is logged and the reader looks for the next header, as it does after
    any bytes that are not a header (a frame whose Content-Length was short, say).
    """
    length, skipping = None, False
    while not stop_event.is_set():
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
            protocol.reject(None, INVALID_REQUEST, f"a message of {length:,} bytes is over the limit of "
                                                   f"{max_bytes:,}; it was skipped")
            length, skipping = None, True
            continue
        expected, length = length, None
        body = await reader.readexactly(expected)
        if len(body) < expected:  # the stream ended inside the body
            return
        protocol.handle_body(body)


class StdinReader:
    """stdin for `read_messages`, read in a thread so the event loop never blocks."""

    def __init__(self, stdin, executor=None):
        self.stdin, self.executor = stdin, executor

    async def readline(self, limit: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.stdin.readline, limit)

    async def readexactly(self, n: int) -> bytes:
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.stdin.read, n)


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


class MessageLoopServer(LanguageServer):
    """pygls' server running our message loop (`read_messages`) on stdio and TCP, with internal
    errors logged and told to the user once instead of popped up each time."""

    max_message_bytes = MAX_MESSAGE_BYTES  # `coda-lsp --max-message-mb`

    def report_server_error(self, error: Exception, source) -> None:
        # pygls pops up every internal error; the log has them, the user hears once
        logging.getLogger(__name__).error("%s: %s", getattr(source, "__name__", source), error)
        if source is not FeatureRequestError:  # a failed request is answered with its error already
            self.protocol.tell_user_once(f"internal error: {error}")

    def start_io(self, stdin=None, stdout=None) -> None:
        self._stop_event = threading.Event()
        self.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
        try:
            asyncio.run(read_messages(StdinReader(stdin or sys.stdin.buffer, self.thread_pool), self.protocol,
                                      self._stop_event, self.max_message_bytes))
        except BrokenPipeError:
            logging.getLogger(__name__).error("the connection to the client is lost")
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            self.shutdown()

    def start_tcp(self, host: str, port: int) -> None:
        self._stop_event = threading.Event()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.protocol.set_writer(writer)
            await read_messages(StreamReader(reader), self.protocol, self._stop_event, self.max_message_bytes)
            self.shutdown()

        async def serve() -> None:
            self._server = await asyncio.start_server(connection, host, port)
            async with self._server:
                await self._server.serve_forever()

        try:
            asyncio.run(serve())
        except (asyncio.CancelledError, KeyboardInterrupt, SystemExit):
            pass
