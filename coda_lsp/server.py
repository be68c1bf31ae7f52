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
from urllib.parse import unquote


from lsprotocol import types as T
from pygls.exceptions import FeatureRequestError
from pygls.io_ import StdoutWriter
from pygls.lsp.server import LanguageServer

from coda_core import __version__
from coda_core.bundled import DEFAULT_MODEL_HELP

from .engine import Engine
from .holes import Placeholder, empty_function_at, placeholders_in, scope_at
from .protocol import MAX_MESSAGE_BYTES, CodaProtocol, StdinReader, StreamReader, read_messages
from .settings import Settings
from .text import offset_at_row, offset_of, position_of, reanchor, row_col, split_lines

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
CLIENT_TIMEOUT_S = 10.0  # how long a command waits for the client to answer a request the server made of it
# Notification to the client, {"state": "loading" | "ready" | "error", "model": str, "message"?: str},
# sent whenever a model load starts and ends; editors show it in their status line.
STATUS = "coda/status"


class CodaServer(LanguageServer):
    """pygls' server with coda-lsp's message loop (coda_lsp.protocol) on stdio and TCP."""

    def __init__(self, settings: Settings | None = None):
        super().__init__("coda-lsp", __version__, protocol_cls=CodaProtocol)
        self.engine = Engine(settings)
        self.max_message_bytes = MAX_MESSAGE_BYTES

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


server = CodaServer()


def _open_document(ls: CodaServer, uri: str):
    """The document open at `uri`, under pygls' key for it (percent-decoded: VS Code sends
    `file:///a%20b.py` for the file `a b.py`), or None."""
    return ls.workspace.text_documents.get(unquote(uri))


def _engine_point(doc, position: T.Position) -> tuple[int, int]:
    """A server-units position as the engine and tree-sitter count it (rows on "\n")."""
    return row_col(doc.source, offset_of(doc.lines, position))


def _document(ls: CodaServer, uri: str):
    """The open document, or None for unknown URIs, documents too large to complete in, and text
    that is not valid Unicode (JSON allows lone surrogates, which neither UTF-8 nor the tokenizer take)."""
    doc = _open_document(ls, uri)
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


EMPTY_WARNING = 5  # model answers in a row with nothing in them before the user is told


async def _complete(ls: CodaServer, uri: str, position: T.Position, invoked: bool):
    """Completions at `position`; `invoked`: the user asked explicitly, so alternatives are worth their time."""
    doc = _document(ls, uri)
    if doc is None:
        return None, []
    lines = doc.lines
    if position.line > len(lines) or position.line < 0 or position.character < 0:
        return None, []
    # The empty line after a final newline has no entry in doc.lines; pygls would clamp it away.
    pos = position if position.line == len(lines) else doc.position_from_client_units(position)
    source = doc.source  # the text the completions are for, whatever arrives meanwhile
    row, col = _engine_point(doc, pos)
    streak = ls.engine.empty_streak
    completions = await ls.engine.complete(uri, source, row, col, doc.language_id or "", alternatives=invoked)
    _report_empty_streak(ls, streak)
    snapshot = (doc.position_codec, source, split_lines(source)) if completions else None
    return snapshot, completions


def _report_empty_streak(ls: CodaServer, before: int) -> None:
    """Tell the editor (in its status) when the model's answers keep coming back empty, and when
    that ends: a model that suggests only whitespace would otherwise look like no model at all."""
    now = ls.engine.empty_streak
    if now == EMPTY_WARNING:
        message = f"the last {now} completions were empty: the model suggested only whitespace or nothing"
        logging.warning("coda-lsp: %s (model %s)", message, ls.engine.model_name)
        _notify_status(ls, "ready", ls.engine.model_name, message)
    elif now == 0 and before >= EMPTY_WARNING:
        _notify_status(ls, "ready", ls.engine.model_name)


def _notify_status(ls: CodaServer, state: str, model: str | None, message: str | None = None) -> None:
    ls.protocol.notify(STATUS, {"state": state, "model": model, **({"message": message} if message else {})})


def _client_range(snapshot, completion) -> T.Range:
    """The range a completion replaces, in the client's units, in the text it was made for
    (`snapshot` from _complete: the document's position codec, that text and its lines)."""
    codec, source, lines = snapshot
    start, end = (offset_at_row(source, completion.line, column) for column in (completion.start, completion.end))
    return codec.range_to_client_units(lines, T.Range(position_of(source, start), position_of(source, end)))


@server.feature(T.INITIALIZE)
def on_initialize(ls: CodaServer, params: T.InitializeParams) -> None:
    if isinstance(params.initialization_options, dict):
        _apply_settings(ls, params.initialization_options)


def _apply_settings(ls: CodaServer, settings: dict) -> None:
    """Take the settings the editor sent; what they get wrong is told in one message, and the
    setting keeps its value (or is clamped into bounds)."""
    problems = ls.engine.settings.update(settings)
    if problems:
        message = "CoDA: " + "; ".join(problems)
        logging.warning(message)
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Warning, message))


@server.feature(T.INITIALIZED)
def on_initialized(ls: CodaServer, params: T.InitializedParams) -> None:
    _load_if_changed(ls)


def _load_if_changed(ls: CodaServer) -> None:
    """(Re)load the configured model in the background, one load at a time, unless the settings
    ask for the model already loaded or loading.

    Editors send the same settings as in initializationOptions right after start (Neovim's
    setup() does), while the first load runs: those must not start a second one. Settings
    may change while a load runs; the loader then loads again, so the model in use is always
    the last one asked for.
    """
    engine = ls.engine
    wanted = engine.model_key(engine.settings)
    if wanted == engine.wanted:
        return
    engine.wanted = wanted
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
    engine = ls.engine
    _notify_status(ls, "loading", engine.settings.model)
    try:
        error = engine.load()
    except Exception as exc:  # a loader thread that dies would leave "loading" on screen for good
        logging.exception("model load failed")
        error = engine.error = f"coda-lsp could not load the model {engine.settings.model}: {exc}"
    if error:
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Error, error))
    if engine.sampler is None:
        _notify_status(ls, "error", engine.settings.model, error)
    else:  # loaded, or the new model failed and the one in use stays
        _notify_status(ls, "ready", engine.model_name, error)


@server.feature(T.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_configuration(ls: CodaServer, params: T.DidChangeConfigurationParams) -> None:
    settings = params.settings.get("coda", params.settings) if isinstance(params.settings, dict) else None
    if not isinstance(settings, dict):
        return
    _apply_settings(ls, settings)
    _load_if_changed(ls)


@server.feature(T.TEXT_DOCUMENT_INLINE_COMPLETION, T.InlineCompletionOptions())
async def inline_completion(ls: CodaServer, params: T.InlineCompletionParams) -> T.InlineCompletionList | None:
    invoked = params.context is not None and params.context.trigger_kind == T.InlineCompletionTriggerKind.Invoked
    snapshot, completions = await _complete(ls, params.text_document.uri, params.position, invoked)
    return T.InlineCompletionList(items=[
        T.InlineCompletionItem(insert_text=c.text, range=_client_range(snapshot, c)) for c in completions])


@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[".", "(", " ", "\n"]))
async def completion(ls: CodaServer, params: T.CompletionParams) -> T.CompletionList:
    invoked = params.context is None or params.context.trigger_kind == T.CompletionTriggerKind.Invoked
    snapshot, completions = await _complete(ls, params.text_document.uri, params.position, invoked)
    items = []
    for rank, c in enumerate(completions):
        label = c.text.strip().split("\n", 1)[0][:80] or c.text
        items.append(T.CompletionItem(label=label, kind=T.CompletionItemKind.Text, detail="CoDA",
                                      sort_text=f"{rank:03d}", filter_text=label,
                                      text_edit=T.TextEdit(range=_client_range(snapshot, c), new_text=c.text)))
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
    row, col = _engine_point(doc, doc.position_from_client_units(params.range.start))
    if empty_function_at(doc.source, row, col, doc.language_id or "") is not None:
        actions.append(("Implement function body", IMPLEMENT, [uri, params.range.start]))
    if _holes_in(doc, params.range):
        actions.append(("Fill all holes", FILL_HOLES, [uri, params.range]))
    return [T.CodeAction(title=title, kind=T.CodeActionKind.RefactorRewrite,
                         command=T.Command(title=title, command=name, arguments=arguments))
            for title, name, arguments in actions]


def _holes_in(doc, selection: T.Range) -> list[Placeholder]:
    """Placeholders in the selection; with an empty one, in the function or class at the cursor."""
    rng = doc.range_from_client_units(selection)
    if rng.start == rng.end:
        start, end = scope_at(doc.source, *_engine_point(doc, rng.start), doc.language_id or "")
    else:
        start, end = offset_of(doc.lines, rng.start), offset_of(doc.lines, rng.end)
    return placeholders_in(doc.source, start, end, doc.language_id or "")


class _CommandRun:
    """One command's cancellable work-done progress, and its cancellation by either route:
    the progress bar's cancel button, or `$/cancelRequest` for the executeCommand request."""

    def __init__(self, ls: CodaServer, title: str):
        self.ls, self.title = ls, title
        self.token = f"coda-{uuid.uuid4()}"
        self.cancelled = threading.Event()  # read by the model thread between denoising steps
        self.request = ls.protocol.msg_id
        self.progress = self.finished = False
        self.loop = asyncio.get_running_loop()

    async def start(self) -> None:
        self.ls.protocol.command_tasks[self.request] = asyncio.current_task()
        window = self.ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return  # the client cannot show progress: run without
        try:
            await asyncio.wait_for(self.ls.work_done_progress.create_async(self.token), CLIENT_TIMEOUT_S)
            self.progress = True
        except Exception as exc:  # refused, garbage or no answer: run without a progress bar
            logging.getLogger(__name__).warning("window/workDoneProgress/create failed: %r", exc)
            return
        self.ls.work_done_progress.begin(self.token, T.WorkDoneProgressBegin(title=f"CoDA: {self.title}",
                                                                             cancellable=True))

    def stopped(self) -> bool:
        return self.cancelled.is_set() or (self.progress and self.ls.work_done_progress.tokens[self.token].cancelled())

    def report(self, step: int, text: str, done: float) -> None:  # called from the model thread
        if self.progress and not self.stopped():
            line = text.strip().split("\n", 1)[0][:60] if text.strip() else ""
            self.loop.call_soon_threadsafe(self._send, T.WorkDoneProgressReport(
                message=f"step {step}" + (f": {line}" if line else ""), percentage=min(100, int(100 * done))))

    def _send(self, report: T.WorkDoneProgressReport) -> None:
        # The model thread may finish a step after the command was cancelled and its progress
        # ended; a report after `end` would reopen a bar the client already closed.
        if not self.finished:
            self.ls.work_done_progress.report(self.token, report)

    def finish(self) -> None:
        self.finished = True
        self.ls.protocol.command_tasks.pop(self.request, None)
        if self.progress:
            message = "cancelled" if self.stopped() else "done"
            self.ls.work_done_progress.end(self.token, T.WorkDoneProgressEnd(message=message))


async def _edit_with_progress(ls: CodaServer, uri: str, doc, spans: list[tuple[int, int]], title: str,
                              work) -> bool | dict:
    """Run `work(source, on_progress, should_stop)` under cancellable work-done progress on the
    document's text as it is now, and apply what it returns, one new text per span of that text
    (character offsets; None leaves a span alone), as one undoable edit.

    The user may edit while the model works. The edit is then moved to where the spans' text went,
    or dropped with a message when that text changed or cannot be found unambiguously: it is never
    applied to lines it was not made for.
    """
    source = doc.source  # before the first await: the text `spans` index
    run = _CommandRun(ls, title)
    try:
        await run.start()
        new_texts = await work(source, run.report, run.stopped)
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
    chosen = [(span, text) for span, text in zip(spans, new_texts or []) if text is not None]
    if not chosen:
        return False
    now = _open_document(ls, uri)
    moved = reanchor(source, now.source, [span for span, _ in chosen]) if now is not None else None
    if moved is None:
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Warning, (
            f"CoDA: {title} was not applied: the document changed while the model worked, and the code it "
            "started from is no longer there unchanged. Run it again.")))
        return False
    edits = [T.TextEdit(range=now.range_to_client_units(T.Range(position_of(now.source, a), position_of(now.source, b))),
                        new_text=text) for (a, b), (_, text) in zip(moved, chosen)]
    # Versioned as well: a client that checks refuses it if the user edits between here and there.
    edit = T.WorkspaceEdit(document_changes=[T.TextDocumentEdit(
        text_document=T.OptionalVersionedTextDocumentIdentifier(uri=uri, version=now.version), edits=edits)])
    return await _apply(ls, edit, title)


async def _apply(ls: CodaServer, edit: T.WorkspaceEdit, title: str) -> bool | dict:
    """Have the client apply `edit`: True when it says it did. A client without the
    workspace.applyEdit capability gets the edit back as the command's result,
    {"applied": false, "edit": WorkspaceEdit}, to apply itself."""
    workspace = ls.client_capabilities.workspace
    if not (workspace and workspace.apply_edit):
        return {"applied": False, "edit": edit}
    try:
        result = await asyncio.wait_for(ls.workspace_apply_edit_async(
            T.ApplyWorkspaceEditParams(edit=edit, label=f"CoDA: {title}")), CLIENT_TIMEOUT_S)
    except asyncio.TimeoutError:
        problem = f"the editor did not answer workspace/applyEdit within {CLIENT_TIMEOUT_S:.0f} s"
    except Exception as exc:  # an error response, or one that is not an ApplyWorkspaceEditResult
        problem = f"the editor answered workspace/applyEdit with {exc}"
    else:
        if getattr(result, "applied", None) is True:
            return True
        problem = f"the editor did not apply it ({getattr(result, 'failure_reason', None) or 'no reason given'})"
    ls.window_show_message(T.ShowMessageParams(T.MessageType.Warning, f"CoDA: {title} was not applied: {problem}."))
    return False


@server.command(REGENERATE)
async def regenerate_selection(ls: CodaServer, uri: str, selection: T.Range) -> bool | dict:
    doc = _document_at(ls, uri, selection.start.line)
    if doc is None:
        return False
    rng = _lines_range(doc, selection)
    start, end = offset_of(doc.lines, rng.start), offset_of(doc.lines, rng.end)
    return await _edit_with_progress(ls, uri, doc, [(start, end)], "regenerate", lambda source, report, stopped:
                                     ls.engine.regenerate(uri, source, start, end, report, stopped))


@server.command(INSTRUCT)
async def rewrite_with_instruction(ls: CodaServer, uri: str, selection: T.Range, *given) -> bool | dict:
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
    start, end = offset_of(doc.lines, rng.start), offset_of(doc.lines, rng.end)
    return await _edit_with_progress(ls, uri, doc, [(start, end)], "rewrite", lambda source, report, stopped:
                                     ls.engine.instruct(uri, source, start, end, instruction, report, stopped))


@server.command(IMPLEMENT)
async def implement_function(ls: CodaServer, uri: str, position: T.Position) -> bool | dict:
    doc = _document_at(ls, uri, position.line)
    if doc is None:
        return False
    found = empty_function_at(doc.source, *_engine_point(doc, doc.position_from_client_units(position)),
                              doc.language_id or "")
    if found is None:
        return False
    start, end, indent = found
    return await _edit_with_progress(ls, uri, doc, [(start, end)], "implement function", lambda source, report,
                                     stopped: ls.engine.implement(uri, source, start, end, indent, report, stopped))


@server.command(FILL_HOLES)
async def fill_holes(ls: CodaServer, uri: str, selection: T.Range) -> bool | dict:
    doc = _document_at(ls, uri, selection.start.line)
    if doc is None:
        return False
    holes = _holes_in(doc, selection)
    if not holes:
        return False
    return await _edit_with_progress(ls, uri, doc, [(hole.start, hole.end) for hole in holes],
                                     f"fill {len(holes)} holes", lambda source, report, stopped:
                                     ls.engine.fill_holes(uri, source, holes, report, stopped))


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
    parser.add_argument("--max-message-mb", type=float, default=MAX_MESSAGE_BYTES / 2**20,
                        help="refuse (and skip) JSON-RPC messages larger than this (default: %(default).0f)")
    parser.add_argument("--check", action="store_true",
                        help="load the model, say whether that worked, and exit (for editors' health checks)")
    parser.add_argument("--version", action="version", version=f"coda-lsp {__version__}")
    args = parser.parse_args(argv)
    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.INFO)
    else:
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    problems = server.engine.settings.update({"model": args.model, "device": args.device, "dtype": args.dtype})
    if problems:
        parser.error("; ".join(problems))
    if args.max_message_mb <= 0:
        parser.error("--max-message-mb must be positive")
    server.max_message_bytes = int(args.max_message_mb * 2**20)
    if args.check:
        return _check(server.engine)
    if args.tcp:
        server.start_tcp(args.host, args.port)
    else:
        server.start_io()
    server.engine.shutdown()
    return server.protocol.exit_code or 0  # 1 after an exit without shutdown, as the spec says


if __name__ == "__main__":
    sys.exit(main())
