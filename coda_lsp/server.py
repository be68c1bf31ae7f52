"""`coda-lsp`: the language server. Each handler converts LSP params to an engine call and back.

Served: inline completions (`textDocument/inlineCompletion`) and completion
items (`textDocument/completion`), both from diffusion fill-in-the-middle at
the cursor; and four code actions (kind refactor.rewrite): "Regenerate
selection", "Rewrite selection with instruction", "Implement function body"
and "Fill all holes". Each action runs as `workspace/executeCommand`, reports
cancellable `window/workDoneProgress` and applies one versioned
`workspace/applyEdit`. Position encoding is negotiated by pygls (utf-16
unless the client prefers another it supports); document sync is incremental.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import threading
import uuid

from types import SimpleNamespace

from lsprotocol import types as T
from pygls.exceptions import JsonRpcException
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol

from coda_core import __version__
from coda_core.bundled import DEFAULT_MODEL_HELP

from .engine import Engine, Settings
from .holes import Placeholder, empty_function_at, placeholders_in, scope_at

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
# Notification to the client, {"state": "loading" | "ready" | "error", "model": str, "message"?: str},
# sent whenever a model load starts and ends; editors show it in their status line.
STATUS = "coda/status"


class CodaProtocol(LanguageServerProtocol):
    """Two fixes to pygls 2.1's request handling.

    A request whose params do not deserialize is dropped by pygls, leaving the
    client waiting forever; here it is answered with the JSON-RPC error.

    `workspace/executeCommand` runs the command in a task of its own, so a
    `$/cancelRequest` cancels only the request's outer future and the command
    runs on; commands register their task here, and a cancel cancels it too.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.command_tasks: dict = {}  # request id -> the task running its command

    def _handle_cancel_notification(self, msg_id):
        task = self.command_tasks.pop(msg_id, None)
        if task is not None:
            task.cancel()
        super()._handle_cancel_notification(msg_id)

    def structure_message(self, data):
        try:
            return super().structure_message(data)
        except JsonRpcException as exc:
            if "id" in data and "method" in data:
                self._send_response(data["id"], error=exc.to_response_error())
            return SimpleNamespace(jsonrpc="unreadable")  # handle_message ignores it


class CodaServer(LanguageServer):
    def __init__(self, settings: Settings | None = None):
        super().__init__("coda-lsp", __version__, protocol_cls=CodaProtocol)
        self.engine = Engine(settings)


server = CodaServer()


def _document(ls: CodaServer, uri: str):
    """The open document, or None for unknown URIs, documents too large to complete in, and text
    that is not valid Unicode (JSON allows lone surrogates, which neither UTF-8 nor the tokenizer take)."""
    doc = ls.workspace.text_documents.get(uri)
    if doc is None or len(doc.source) >= MAX_DOCUMENT_BYTES:
        return None
    try:
        doc.source.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return doc


def _document_at(ls: CodaServer, uri: str, line: int):
    """The open document (see `_document`) when `line` is one of its lines, else None."""
    doc = _document(ls, uri)
    return doc if doc is not None and 0 <= line < len(doc.lines) else None


async def _complete(ls: CodaServer, uri: str, position: T.Position):
    doc = _document(ls, uri)
    if doc is None:
        return None, []
    lines = doc.lines
    if position.line > len(lines) or position.line < 0 or position.character < 0:
        return doc, []
    # The empty line after a final newline has no entry in doc.lines; pygls would clamp it away.
    pos = position if position.line == len(lines) else doc.position_from_client_units(position)
    return doc, await ls.engine.complete(uri, doc.source, pos.line, pos.character, doc.language_id or "")


def _client_range(doc, completion) -> T.Range:
    return doc.range_to_client_units(T.Range(T.Position(completion.line, completion.start),
                                             T.Position(completion.line, completion.end)))


@server.feature(T.INITIALIZE)
def on_initialize(ls: CodaServer, params: T.InitializeParams) -> None:
    if isinstance(params.initialization_options, dict):
        ls.engine.settings.update(params.initialization_options)


@server.feature(T.INITIALIZED)
def on_initialized(ls: CodaServer, params: T.InitializedParams) -> None:
    _request_load(ls)


def _request_load(ls: CodaServer) -> None:
    """(Re)load the configured model in the background, one load at a time.

    Settings may change while a load runs; the loader then loads again, so the
    model in use is always the last one asked for.
    """
    engine = ls.engine
    engine.load_wanted.set()
    if engine.loading.acquire(blocking=False):
        threading.Thread(target=_loader, args=(ls,), name="coda-load", daemon=True).start()


def _loader(ls: CodaServer) -> None:
    engine = ls.engine
    while True:
        try:
            while engine.load_wanted.is_set():
                engine.load_wanted.clear()
                _load_and_report(ls)
        finally:
            engine.loading.release()
        # A request that came after the check above, while the lock was still held, left it to us.
        if not engine.load_wanted.is_set() or not engine.loading.acquire(blocking=False):
            return


def _load_and_report(ls: CodaServer) -> None:
    ls.protocol.notify(STATUS, {"state": "loading", "model": ls.engine.settings.model})
    error = ls.engine.load()
    model = ls.engine.model_name
    if error:
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Error, error))
        ls.protocol.notify(STATUS, {"state": "error", "model": model, "message": error})
    else:
        ls.protocol.notify(STATUS, {"state": "ready", "model": model})


@server.feature(T.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_configuration(ls: CodaServer, params: T.DidChangeConfigurationParams) -> None:
    settings = params.settings.get("coda", params.settings) if isinstance(params.settings, dict) else None
    if not isinstance(settings, dict):
        return
    old_model = (ls.engine.settings.model, ls.engine.settings.device, ls.engine.settings.dtype)
    ls.engine.settings.update(settings)
    new_model = (ls.engine.settings.model, ls.engine.settings.device, ls.engine.settings.dtype)
    if new_model != old_model or ls.engine.sampler is None:
        _request_load(ls)


@server.feature(T.TEXT_DOCUMENT_INLINE_COMPLETION, T.InlineCompletionOptions())
async def inline_completion(ls: CodaServer, params: T.InlineCompletionParams) -> T.InlineCompletionList | None:
    doc, completions = await _complete(ls, params.text_document.uri, params.position)
    return T.InlineCompletionList(items=[T.InlineCompletionItem(insert_text=c.text, range=_client_range(doc, c))
                                         for c in completions])


@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[".", "(", " ", "\n"]))
async def completion(ls: CodaServer, params: T.CompletionParams) -> T.CompletionList:
    doc, completions = await _complete(ls, params.text_document.uri, params.position)
    items = []
    for rank, c in enumerate(completions):
        label = c.text.strip().split("\n", 1)[0][:80] or c.text
        items.append(T.CompletionItem(label=label, kind=T.CompletionItemKind.Text, detail="CoDA",
                                      sort_text=f"{rank:03d}", filter_text=label,
                                      text_edit=T.TextEdit(range=_client_range(doc, c), new_text=c.text)))
    return T.CompletionList(is_incomplete=True, items=items)


REGENERATE = "coda.regenerateSelection"


def _lines_range(doc, rng: T.Range) -> T.Range:
    """The selection, or with an empty selection the whole cursor line, in server units."""
    rng = doc.range_from_client_units(rng)
    if rng.start == rng.end:
        line = rng.start.line
        return T.Range(T.Position(line, 0), T.Position(line, len(doc.lines[line].rstrip("\r\n"))))
    return rng


IMPLEMENT = "coda.implementFunction"
INSTRUCT = "coda.rewriteWithInstruction"
FILL_HOLES = "coda.fillHoles"
INSTRUCTION_COMMENT = ("#", "//", "--", ";")


def _instruction_above(doc, line: int) -> str | None:
    """The text of a comment line right above `line`, used as the instruction when none is given."""
    if line == 0:
        return None
    above = doc.lines[line - 1].strip()
    for marker in INSTRUCTION_COMMENT:
        if above.startswith(marker):
            return above[len(marker):].strip() or None
    return None


@server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.RefactorRewrite]))
def code_actions(ls: CodaServer, params: T.CodeActionParams) -> list[T.CodeAction]:
    doc = _document_at(ls, params.text_document.uri, params.range.start.line)
    if doc is None or ls.engine.sampler is None:
        return []
    uri = params.text_document.uri
    actions = [("Regenerate selection", REGENERATE, [uri, params.range]),
               ("Rewrite selection with instruction", INSTRUCT, [uri, params.range])]
    cursor = doc.position_from_client_units(params.range.start)
    if empty_function_at(doc.source, cursor.line, cursor.character, doc.language_id or "") is not None:
        actions.append(("Implement function body", IMPLEMENT, [uri, params.range.start]))
    if _holes_in(doc, params.range):
        actions.append(("Fill all holes", FILL_HOLES, [uri, params.range]))
    return [T.CodeAction(title=title, kind=T.CodeActionKind.RefactorRewrite,
                         command=T.Command(title=title, command=name, arguments=arguments))
            for title, name, arguments in actions]


def _offset(doc, position: T.Position) -> int:
    """Character offset in doc.source of a server-unit position."""
    return sum(len(line) for line in doc.lines[: position.line]) + position.character


def _position(text: str, offset: int) -> T.Position:
    """The server-unit position of a character offset."""
    before = text[:offset]
    return T.Position(before.count("\n"), offset - (before.rfind("\n") + 1))


def _holes_in(doc, selection: T.Range) -> list[Placeholder]:
    """Placeholders in the selection; with an empty one, in the function or class at the cursor."""
    rng = doc.range_from_client_units(selection)
    if rng.start == rng.end:
        start, end = scope_at(doc.source, rng.start.line, rng.start.character, doc.language_id or "")
    else:
        start, end = _offset(doc, rng.start), _offset(doc, rng.end)
    return placeholders_in(doc.source, start, end, doc.language_id or "")


class _CommandRun:
    """One command's cancellable work-done progress, and its cancellation by either route:
    the progress bar's cancel button, or `$/cancelRequest` for the executeCommand request."""

    def __init__(self, ls: CodaServer, title: str):
        self.ls, self.title = ls, title
        self.token = f"coda-{uuid.uuid4()}"
        self.cancelled = threading.Event()  # read by the model thread between denoising steps
        self.request = ls.protocol.msg_id
        self.progress = False
        self.loop = asyncio.get_running_loop()

    async def start(self) -> None:
        self.ls.protocol.command_tasks[self.request] = asyncio.current_task()
        try:
            await self.ls.work_done_progress.create_async(self.token)
            self.progress = True
        except Exception:  # a client without window.workDoneProgress: run without a progress bar
            return
        self.ls.work_done_progress.begin(self.token, T.WorkDoneProgressBegin(title=f"CoDA: {self.title}",
                                                                             cancellable=True))

    def stopped(self) -> bool:
        return self.cancelled.is_set() or (self.progress and self.ls.work_done_progress.tokens[self.token].cancelled())

    def report(self, step: int, text: str) -> None:  # called from the model thread
        if self.progress:
            self.loop.call_soon_threadsafe(self.ls.work_done_progress.report, self.token,
                                           T.WorkDoneProgressReport(message=f"step {step}: {text[:60]}"))

    def finish(self) -> None:
        self.ls.protocol.command_tasks.pop(self.request, None)
        if self.progress:
            message = "cancelled" if self.stopped() else "done"
            self.ls.work_done_progress.end(self.token, T.WorkDoneProgressEnd(message=message))


async def _edit_with_progress(ls: CodaServer, uri: str, doc, ranges: list[T.Range], title: str, work) -> bool:
    """Run `work(on_progress, should_stop)` under cancellable work-done progress and apply what it
    returns, one new text per range (None leaves that range alone), as one undoable edit."""
    version = doc.version
    client_ranges = [doc.range_to_client_units(rng) for rng in ranges]
    run = _CommandRun(ls, title)
    try:
        await run.start()
        new_texts = await work(run.report, run.stopped)
    except asyncio.CancelledError:
        run.cancelled.set()  # the decode in the model thread stops at its next step
        raise
    except ValueError as exc:  # e.g. the code between holes does not fit the model's context
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Warning, f"CoDA: {exc}"))
        new_texts = None
    finally:
        run.finish()
    if isinstance(new_texts, str):
        new_texts = [new_texts]
    edits = [T.TextEdit(range=rng, new_text=text) for rng, text in zip(client_ranges, new_texts or [])
             if text is not None]
    if not edits:
        return False
    # Versioned: if the user edited the document meanwhile, the client refuses the stale edit.
    edit = T.WorkspaceEdit(document_changes=[T.TextDocumentEdit(
        text_document=T.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version), edits=edits)])
    result = await ls.workspace_apply_edit_async(T.ApplyWorkspaceEditParams(edit=edit, label=f"CoDA: {title}"))
    return bool(result.applied)


@server.command(REGENERATE)
async def regenerate_selection(ls: CodaServer, uri: str, selection: T.Range) -> bool:
    doc = _document_at(ls, uri, selection.start.line)
    if doc is None:
        return False
    rng = _lines_range(doc, selection)
    start, end = _offset(doc, rng.start), _offset(doc, rng.end)
    return await _edit_with_progress(ls, uri, doc, [rng], "regenerate", lambda report, stopped: ls.engine.regenerate(
        uri, doc.source, start, end, report, stopped))


@server.command(INSTRUCT)
async def rewrite_with_instruction(ls: CodaServer, uri: str, selection: T.Range, *given) -> bool:
    """The instruction is an optional third argument (clients prompt for it), else a comment line above."""
    instruction = given[0] if given and isinstance(given[0], str) else ""
    doc = _document_at(ls, uri, selection.start.line)
    if doc is None:
        return False
    rng = _lines_range(doc, selection)
    instruction = instruction or _instruction_above(doc, rng.start.line)
    if not instruction:
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Warning, "CoDA: no instruction given (pass one, "
                                                   "or write it in a comment line above the selection)"))
        return False
    start, end = _offset(doc, rng.start), _offset(doc, rng.end)
    return await _edit_with_progress(ls, uri, doc, [rng], "rewrite", lambda report, stopped: ls.engine.instruct(
        uri, doc.source, start, end, instruction, report, stopped))


@server.command(IMPLEMENT)
async def implement_function(ls: CodaServer, uri: str, position: T.Position) -> bool:
    doc = _document_at(ls, uri, position.line)
    if doc is None:
        return False
    cursor = doc.position_from_client_units(position)
    found = empty_function_at(doc.source, cursor.line, cursor.character, doc.language_id or "")
    if found is None:
        return False
    start, end, indent = found
    rng = T.Range(_position(doc.source, start), _position(doc.source, end))
    return await _edit_with_progress(ls, uri, doc, [rng], "implement function", lambda report, stopped:
                                     ls.engine.implement(uri, doc.source, start, end, indent, report, stopped))


@server.command(FILL_HOLES)
async def fill_holes(ls: CodaServer, uri: str, selection: T.Range) -> bool:
    doc = _document_at(ls, uri, selection.start.line)
    if doc is None:
        return False
    holes = _holes_in(doc, selection)
    if not holes:
        return False
    ranges = [T.Range(_position(doc.source, hole.start), _position(doc.source, hole.end)) for hole in holes]
    return await _edit_with_progress(ls, uri, doc, ranges, f"fill {len(holes)} holes", lambda report, stopped:
                                     ls.engine.fill_holes(uri, doc.source, holes, report, stopped))


def _check(engine: Engine) -> int:
    error = engine.load()
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    model = engine.sampler.model
    print(f"coda-lsp: model {engine.model_name} loaded ({model.device}, {model.dtype}, "
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters)")
    return 0


def main(argv: list[str] | None = None) -> int:
    # vscode-languageclient passes --stdio, which pygls' own helpers reject: parse arguments here.
    parser = argparse.ArgumentParser(prog="coda-lsp", description="CoDA language server")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--stdio", action="store_true", help="talk LSP over stdin/stdout (default)")
    mode.add_argument("--tcp", action="store_true", help="listen on --host:--port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2087)
    parser.add_argument("--model", help="coda-mini, a model directory or hub id (also initializationOptions.model; "
                        f"{DEFAULT_MODEL_HELP})")
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("--dtype", help="auto, bfloat16, float16 or float32")
    parser.add_argument("--log-file", help="write the server log here (stdout carries the protocol)")
    parser.add_argument("--check", action="store_true",
                        help="load the model, say whether that worked, and exit (for editors' health checks)")
    parser.add_argument("--version", action="version", version=f"coda-lsp {__version__}")
    args = parser.parse_args(argv)
    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.INFO)
    else:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    server.engine.settings.update({"model": args.model, "device": args.device, "dtype": args.dtype})
    if args.check:
        return _check(server.engine)
    if args.tcp:
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    server.engine.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
