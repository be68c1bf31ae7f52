"""The language server protocol on coda_lsp.jsonrpc: lifecycle, dispatch, documents, requests to the client.

coda-lsp owns its message loop outright and uses lsprotocol's types and
converters for every message (pygls, which it built on until 2.1, had to be
patched in its privates against a hostile client). What it keeps:

- The spec's lifecycle: requests get -32002 before `initialize`, -32600 after
  `shutdown`; `exit` ends the process with 0 after `shutdown`, else with 1.
- Handlers are registered with `@server.feature(method, options)`; the server's
  capabilities are built from them. A request's handler runs in a task of its
  own, and `$/cancelRequest` cancels that task; notification handlers run at
  once, in the order their messages came (a `didChange` is applied before the
  completion request after it), and leave nothing behind.
- Params are checked against their lsprotocol types and a command's arguments
  against its signature (coda_lsp.arguments): -32602 says what was expected.
- The user hears of protocol problems and internal errors once; the log has the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import sys
import typing

from lsprotocol import types as T
from lsprotocol.converters import get_converter

from .arguments import command_call, method_params, method_result
from .documents import Documents, choose_encoding
from .jsonrpc import MAX_MESSAGE_BYTES, Endpoint, StdinReader, StreamReader, accept_one, serve
from .messages import (INTERNAL_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, REQUEST_CANCELLED, SERVER_NOT_INITIALIZED,
                       Notification, Request, RpcError)

logger = logging.getLogger(__name__)

# Which server capability announces each feature a handler can serve.
CAPABILITIES = {T.TEXT_DOCUMENT_COMPLETION: "completion_provider",
                T.TEXT_DOCUMENT_INLINE_COMPLETION: "inline_completion_provider",
                T.TEXT_DOCUMENT_CODE_ACTION: "code_action_provider"}


def _is_notification(method: str) -> bool:
    message_type = T.METHOD_TO_TYPES.get(method, (None,))[0]
    return message_type is not None and message_type.__name__.endswith("Notification")


class LanguageServer:
    """An LSP server on one connection. Subclasses register handlers and call `start_io`/`start_tcp`."""

    def __init__(self, name: str, version: str):
        self.name, self.version = name, version
        self.rpc = Endpoint(self._dispatch, self.tell_user_once)
        self.converter = get_converter()
        self.documents = Documents()
        self.features: dict[str, typing.Callable] = {}
        self.feature_options: dict[str, object] = {}
        self.commands: dict[str, typing.Callable] = {}
        self.client_capabilities = T.ClientCapabilities()
        self.initialized = self.shut_down = False
        self.exit_code: int | None = None  # set by `exit`: 0 after `shutdown`, else 1
        self.max_message_bytes = MAX_MESSAGE_BYTES  # `coda-lsp --max-message-mb`
        self.loop: asyncio.AbstractEventLoop | None = None  # the message loop's, once it runs
        self.running: dict[object, asyncio.Task] = {}  # the client's requests being answered, by id
        self._cancelled_progress: set[str] = set()  # work-done tokens the user cancelled
        self._exited: asyncio.Event | None = None  # set by `exit`: the session ends
        self._told_user = False
        self._builtins = {T.INITIALIZE: self._initialize, T.SHUTDOWN: self._shutdown, T.EXIT: self._exit,
                          T.TEXT_DOCUMENT_DID_OPEN: lambda p: self.documents.open(p.text_document),
                          T.TEXT_DOCUMENT_DID_CHANGE: self.documents.change,
                          T.TEXT_DOCUMENT_DID_CLOSE: lambda p: self.documents.close(p.text_document.uri),
                          T.CANCEL_REQUEST: self._cancel_request, T.WORKSPACE_EXECUTE_COMMAND: self._execute_command,
                          T.WINDOW_WORK_DONE_PROGRESS_CANCEL: lambda p: self._cancelled_progress.add(str(p.token)),
                          T.SET_TRACE: lambda p: None}

    # -- registration ---------------------------------------------------------

    def feature(self, method: str, options=None):
        """Decorator: `handler(server, params)` serves `method`. A request's handler may be a coroutine
        function (it then runs in a task of its own); a notification's runs at once, in order."""
        def register(handler):
            if options is not None and method not in CAPABILITIES:
                raise ValueError(f"no server capability announces {method}")
            if _is_notification(method) and inspect.iscoroutinefunction(handler):
                raise ValueError(f"{method} is a notification: its handler runs at once, in order, so it "
                                 "must be a plain function")
            self.features[method] = handler
            self.feature_options[method] = options
            return handler
        return register

    def command(self, name: str):
        """Decorator: `handler(server, *arguments)` runs `workspace/executeCommand` of `name`; its
        annotated parameters are the command's arguments, checked and converted before it runs."""
        def register(handler):
            self.commands[name] = handler
            return handler
        return register

    def copy_handlers_from(self, other: LanguageServer) -> LanguageServer:
        """Serve what `other` serves (its features with their options, its commands); returns self.
        Handlers take the server as an argument, so they serve this one alike, with its own state."""
        self.features.update(other.features)
        self.feature_options.update(other.feature_options)
        self.commands.update(other.commands)
        return self

    # -- out ------------------------------------------------------------------

    def notify(self, method: str, params=None) -> None:
        self.rpc.notify(method, None if params is None else self.converter.unstructure(params))

    async def request(self, method: str, params):
        """Send a request to the client and return its answer as the method's lsprotocol result
        type; RpcError when it answers with an error or garbage."""
        raw = await self.rpc.request(method, self.converter.unstructure(params))
        return method_result(self.converter, method, raw)

    def show_message(self, message: str, kind: T.MessageType = T.MessageType.Warning) -> None:
        self.notify(T.WINDOW_SHOW_MESSAGE, T.ShowMessageParams(type=kind, message=message))

    def tell_user_once(self, text: str) -> None:
        if not self._told_user:
            self._told_user = True
            self.show_message(f"coda-lsp: the editor sent a message it could not use ({text}). "
                              "Further problems of this kind go to the server log only.")

    def progress_cancelled(self, token: str) -> bool:
        return token in self._cancelled_progress

    def progress_ended(self, token: str) -> None:
        """Forget a work-done token once its progress has ended (a long session cancels many)."""
        self._cancelled_progress.discard(token)

    # -- in -------------------------------------------------------------------

    def _dispatch(self, message: Request | Notification) -> None:
        if isinstance(message, Request):
            self._on_request(message)
        else:
            self._on_notification(message)

    def _on_request(self, request: Request) -> None:
        method = request.method
        if _is_notification(method):
            self.rpc.reject(request.id, INVALID_REQUEST, f"{method} is a notification: send it without an id")
            return
        handler = self._handler(method)
        try:
            if (refusal := self._lifecycle_refusal(method)) is not None:
                raise refusal
            if handler is None:
                raise RpcError(METHOD_NOT_FOUND, f"coda-lsp does not serve {method}")
            params = method_params(self.converter, method, request.params)
        except RpcError as error:
            self.rpc.respond_error(request.id, error.code, error.message)
            return
        self._answer(request.id, method, handler, params)

    def _on_notification(self, notification: Notification) -> None:
        method = notification.method
        if self._lifecycle_refusal(method) is not None:  # dropped, as the spec says
            return
        if (handler := self._handler(method)) is None:
            if not method.startswith("$/"):
                logger.info("ignored notification %s", method)
            return
        try:
            params = method_params(self.converter, method, notification.params)
        except RpcError as error:
            logger.warning("%s: %s", method, error.message)
            return
        try:
            handler(params)
        except Exception as exc:
            logger.error("%s failed", method, exc_info=exc)
            self.tell_user_once(f"internal error in {method}: {exc}")

    def _lifecycle_refusal(self, method: str) -> RpcError | None:
        if method not in (T.INITIALIZE, T.EXIT) and not self.initialized:
            return RpcError(SERVER_NOT_INITIALIZED, "the server is not initialized: send initialize first")
        if self.shut_down and method != T.EXIT:
            return RpcError(INVALID_REQUEST, "the server is shutting down: only exit is accepted")
        return None

    def _handler(self, method: str) -> typing.Callable | None:
        """What serves `method` (given its params), if anything does: a built-in, or a feature."""
        if method in self._builtins:
            return self._builtins[method]
        if method in self.features:
            return functools.partial(self.features[method], self)
        return None

    def _answer(self, msg_id, method: str, handler, params) -> None:
        if msg_id in self.running:
            self.rpc.reject(msg_id, INVALID_REQUEST, f"request id {msg_id!r} is in use by a request not yet answered")
            return
        try:
            result = handler(params)
        except Exception as exc:
            self._respond_failure(msg_id, method, exc)
            return
        if not inspect.isawaitable(result):
            self.rpc.respond(msg_id, self.converter.unstructure(result))
            return
        task = asyncio.ensure_future(result)
        self.running[msg_id] = task
        task.add_done_callback(lambda done: self._finish(msg_id, method, done))

    def _finish(self, msg_id, method: str, task: asyncio.Task) -> None:
        if self.running.get(msg_id) is task:
            del self.running[msg_id]
        if task.cancelled():
            self.rpc.respond_error(msg_id, REQUEST_CANCELLED, f"{method} was cancelled")
        elif task.exception() is not None:
            self._respond_failure(msg_id, method, task.exception())
        else:
            self.rpc.respond(msg_id, self.converter.unstructure(task.result()))

    def _respond_failure(self, msg_id, method: str, exc: BaseException) -> None:
        if isinstance(exc, RpcError):
            self.rpc.respond_error(msg_id, exc.code, exc.message)
            return
        logger.error("%s failed", method, exc_info=exc)
        self.rpc.respond_error(msg_id, INTERNAL_ERROR, f"{method} failed: {type(exc).__name__}: {exc}")

    # -- the lifecycle and the built-in methods --------------------------------

    def _initialize(self, params: T.InitializeParams) -> T.InitializeResult:
        if self.initialized:
            raise RpcError(INVALID_REQUEST, "initialize was sent twice")
        self.loop = asyncio.get_running_loop()
        self.client_capabilities = params.capabilities
        self.documents.encoding = choose_encoding(params.capabilities)
        self.initialized = True
        if T.INITIALIZE in self.features:
            self.features[T.INITIALIZE](self, params)
        capabilities = T.ServerCapabilities(
            position_encoding=self.documents.encoding,
            text_document_sync=T.TextDocumentSyncOptions(open_close=True, change=T.TextDocumentSyncKind.Incremental),
            execute_command_provider=T.ExecuteCommandOptions(commands=list(self.commands)) if self.commands else None,
            workspace=T.WorkspaceOptions(workspace_folders=T.WorkspaceFoldersServerCapabilities(
                supported=True, change_notifications=True)) if T.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS in self.features
            else None,
            **{CAPABILITIES[m]: options for m, options in self.feature_options.items() if m in CAPABILITIES})
        return T.InitializeResult(capabilities=capabilities, server_info=T.ServerInfo(self.name, self.version))

    def _shutdown(self, params) -> None:
        if T.SHUTDOWN in self.features:
            self.features[T.SHUTDOWN](self, params)
        for task in list(self.running.values()):  # answered "cancelled" as they end
            task.cancel()
        self.shut_down = True

    def _exit(self, params) -> None:
        self.exit_code = 0 if self.shut_down else 1
        if self._exited is not None:
            self._exited.set()

    def _cancel_request(self, params: T.CancelParams) -> None:
        if (task := self.running.get(params.id)) is not None:
            task.cancel()

    async def _execute_command(self, params: T.ExecuteCommandParams):
        handler, arguments = command_call(self.converter, self.commands, params.command, params.arguments or [])
        return await handler(self, *arguments)

    # -- transports -----------------------------------------------------------

    async def _session(self, reader) -> None:
        """Serve one client until EOF or `exit`."""
        self.loop, self._exited = asyncio.get_running_loop(), asyncio.Event()
        await serve(reader, self.rpc, self._exited, self.max_message_bytes)
        for task in self.running.values():
            task.cancel()

    def start_io(self, stdin=None, stdout=None) -> None:
        self.rpc.set_writer(stdout or sys.stdout.buffer)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(self._session(StdinReader(stdin or sys.stdin.buffer)))

    def start_tcp(self, host: str, port: int) -> None:
        """Serve the first client that connects to host:port, until it disconnects or sends `exit`."""
        async def main() -> None:
            reader, writer = await accept_one(host, port)
            self.rpc.set_writer(writer)
            await self._session(StreamReader(reader))
            writer.close()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(main())
