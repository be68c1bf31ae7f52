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

from lsprotocol import types as T

from coda_core import __version__
from coda_core.bundled import DEFAULT_MODEL_HELP
from coda_core.choices import QUANTIZE

from .commands import FILL_HOLES, IMPLEMENT, INSTRUCT, REGENERATE, edit_with_progress, instruction_above
from .documents import Snapshot, completable, cursor, engine_point, selection_offsets
from .engine import Engine
from .holes import Placeholder, empty_function_at, placeholders_in, scope_at
from .protocol import MAX_MESSAGE_BYTES, CodaProtocol, MessageLoopServer
from .settings import Settings
from .text import offset_of

EMPTY_WARNING = 5  # model answers in a row with nothing in them before the user is told
# Notification to the client, {"state": "loading" | "ready" | "error", "model": str, "message"?: str,
# "percentage"?: int}, sent whenever a model load starts and ends, and while a hub model downloads (with
# its percentage); editors show it in their status line.
STATUS = "coda/status"


class CodaServer(MessageLoopServer):
    """The language server: our message loop (coda_lsp.protocol), the engine, and what handlers share."""

    def __init__(self, settings: Settings | None = None):
        super().__init__("coda-lsp", __version__, protocol_cls=CodaProtocol)
        self.engine = Engine(settings)
        self.engine.models.on_status = lambda *status: self.from_any_thread(self.notify_status, *status)
        self.engine.models.on_error = lambda error: self.from_any_thread(self.show, error, T.MessageType.Error)
        self.loop: asyncio.AbstractEventLoop | None = None  # the message loop's, from `initialize` on

    def from_any_thread(self, send, *args) -> None:
        """Call `send(*args)` on the message loop: the model's loading and download threads report
        through here, so their messages go out in order and never write beside the loop's (a TCP
        writer is not thread-safe). Before a client connects (`coda-lsp --check`) nobody hears them."""
        if self.loop is None or self.loop.is_closed():
            return
        try:
            on_loop = asyncio.get_running_loop() is self.loop
        except RuntimeError:  # no loop in this thread
            on_loop = False
        if on_loop:
            send(*args)
        else:
            self.loop.call_soon_threadsafe(send, *args)

    def notify_status(self, state: str, model: str | None, message: str | None = None,
                      percentage: int | None = None) -> None:
        self.protocol.notify(STATUS, {"state": state, "model": model, **({"message": message} if message else {}),
                                      **({"percentage": percentage} if percentage is not None else {})})

    def show(self, message: str, kind: T.MessageType = T.MessageType.Warning) -> None:
        self.window_show_message(T.ShowMessageParams(kind, message))

    def apply_settings(self, settings: dict) -> None:
        """Take the settings the editor sent; what they get wrong is told in one message, and the
        setting keeps its value (or is clamped into bounds)."""
        problems = self.engine.settings.update(settings)
        if problems:
            message = "CoDA: " + "; ".join(problems)
            logging.warning(message)
            self.show(message)

server = CodaServer()


# -- lifecycle and settings ------------------------------------------------------

@server.feature(T.INITIALIZE)
def on_initialize(ls: CodaServer, params: T.InitializeParams) -> None:
    ls.loop = asyncio.get_running_loop()
    if isinstance(params.initialization_options, dict):
        ls.apply_settings(params.initialization_options)


@server.feature(T.INITIALIZED)
def on_initialized(ls: CodaServer, params: T.InitializedParams) -> None:
    ls.engine.models.request()


@server.feature(T.WORKSPACE_DID_CHANGE_CONFIGURATION)
def on_configuration(ls: CodaServer, params: T.DidChangeConfigurationParams) -> None:
    settings = params.settings.get("coda", params.settings) if isinstance(params.settings, dict) else None
    if isinstance(settings, dict):
        ls.apply_settings(settings)
        ls.engine.models.request()


# -- completions -------------------------------------------------------------------

async def _complete(ls: CodaServer, uri: str, position: T.Position, invoked: bool):
    """(snapshot, completions) at `position`; `invoked`: the user asked, so alternatives are worth their time."""
    doc = completable(ls.workspace, uri)
    point = cursor(doc, position) if doc is not None else None
    if point is None:
        return None, []
    source = doc.source  # the text the completions are for, whatever arrives meanwhile
    streak = ls.engine.empty_streak
    completions = await ls.engine.complete(uri, source, *point, doc.language_id or "", alternatives=invoked)
    _report_empty_streak(ls, streak)
    return (Snapshot.of(doc, source) if completions else None), completions


def _report_empty_streak(ls: CodaServer, before: int) -> None:
    """Tell the editor (in its status) when the model's answers keep coming back empty, and when
    that ends: a model that suggests only whitespace would otherwise look like no model at all."""
    now, model = ls.engine.empty_streak, ls.engine.models.name
    if now == EMPTY_WARNING:
        message = f"the last {now} completions were empty: the model suggested only whitespace or nothing"
        logging.warning("coda-lsp: %s (model %s)", message, model)
        ls.notify_status("ready", model, message)
    elif now == 0 and before >= EMPTY_WARNING:
        ls.notify_status("ready", model)


@server.feature(T.TEXT_DOCUMENT_INLINE_COMPLETION, T.InlineCompletionOptions())
async def inline_completion(ls: CodaServer, params: T.InlineCompletionParams) -> T.InlineCompletionList | None:
    invoked = params.context is not None and params.context.trigger_kind == T.InlineCompletionTriggerKind.Invoked
    snapshot, completions = await _complete(ls, params.text_document.uri, params.position, invoked)
    return T.InlineCompletionList(items=[
        T.InlineCompletionItem(insert_text=c.text, range=snapshot.completion_range(c)) for c in completions])


@server.feature(T.TEXT_DOCUMENT_COMPLETION, T.CompletionOptions(trigger_characters=[".", "(", " ", "\n"]))
async def completion(ls: CodaServer, params: T.CompletionParams) -> T.CompletionList:
    invoked = params.context is None or params.context.trigger_kind == T.CompletionTriggerKind.Invoked
    snapshot, completions = await _complete(ls, params.text_document.uri, params.position, invoked)
    items = []
    for rank, c in enumerate(completions):
        label = c.text.strip().split("\n", 1)[0][:80] or c.text
        items.append(T.CompletionItem(label=label, kind=T.CompletionItemKind.Text, detail="CoDA",
                                      sort_text=f"{rank:03d}", filter_text=label,
                                      text_edit=T.TextEdit(range=snapshot.completion_range(c), new_text=c.text)))
    return T.CompletionList(is_incomplete=True, items=items)


# -- code actions and their commands ---------------------------------------------

@server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.RefactorRewrite]))
def code_actions(ls: CodaServer, params: T.CodeActionParams) -> list[T.CodeAction]:
    uri = params.text_document.uri
    doc = completable(ls.workspace, uri, params.range.start.line)
    if doc is None or ls.engine.models.current() is None:
        return []
    actions = [("Regenerate selection", REGENERATE, [uri, params.range]),
               ("Rewrite selection with instruction", INSTRUCT, [uri, params.range])]
    row, col = engine_point(doc, doc.position_from_client_units(params.range.start))
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
        start, end = scope_at(doc.source, *engine_point(doc, rng.start), doc.language_id or "")
    else:
        start, end = offset_of(doc.lines, rng.start), offset_of(doc.lines, rng.end)
    return placeholders_in(doc.source, start, end, doc.language_id or "")


@server.command(REGENERATE)
async def regenerate_selection(ls: CodaServer, uri: str, selection: T.Range) -> bool | dict:
    doc = completable(ls.workspace, uri, selection.start.line)
    if doc is None:
        return False
    start, end = selection_offsets(doc, selection)
    return await edit_with_progress(ls, uri, doc, [(start, end)], "regenerate", lambda source, report, stopped:
                                    ls.engine.regenerate(uri, source, start, end, report, stopped))


@server.command(INSTRUCT)
async def rewrite_with_instruction(ls: CodaServer, uri: str, selection: T.Range, *given) -> bool | dict:
    """The instruction is an optional third argument (clients prompt for it), else a comment line above."""
    doc = completable(ls.workspace, uri, selection.start.line)
    if doc is None:
        return False
    instruction = (given[0] if given and isinstance(given[0], str) else "") or \
        instruction_above(doc, selection.start.line)
    if not instruction:
        ls.show("CoDA: no instruction given (pass one, or write it in a comment line above the selection)")
        return False
    start, end = selection_offsets(doc, selection)
    return await edit_with_progress(ls, uri, doc, [(start, end)], "rewrite", lambda source, report, stopped:
                                    ls.engine.instruct(uri, source, start, end, instruction, report, stopped))


@server.command(IMPLEMENT)
async def implement_function(ls: CodaServer, uri: str, position: T.Position) -> bool | dict:
    doc = completable(ls.workspace, uri, position.line)
    if doc is None:
        return False
    found = empty_function_at(doc.source, *engine_point(doc, doc.position_from_client_units(position)),
                              doc.language_id or "")
    if found is None:
        return False
    start, end, indent = found
    return await edit_with_progress(ls, uri, doc, [(start, end)], "implement function", lambda source, report,
                                    stopped: ls.engine.implement(uri, source, start, end, indent, report, stopped))


@server.command(FILL_HOLES)
async def fill_holes(ls: CodaServer, uri: str, selection: T.Range) -> bool | dict:
    doc = completable(ls.workspace, uri, selection.start.line)
    holes = _holes_in(doc, selection) if doc is not None else []
    if not holes:
        return False
    return await edit_with_progress(ls, uri, doc, [(hole.start, hole.end) for hole in holes],
                                    f"fill {len(holes)} holes", lambda source, report, stopped:
                                    ls.engine.fill_holes(uri, source, holes, report, stopped))


# -- the command line ------------------------------------------------------------------

def _check(engine: Engine) -> int:
    error = engine.models.load()
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    from coda_core.loading import meta_model
    from coda_core.quantize import quantization, weight_bytes

    model = engine.models.current().model
    parameters = sum(p.numel() for p in meta_model(model.config).parameters())
    print(f"coda-lsp: model {engine.models.name} loaded ({model.device}, {model.dtype}, "
          f"{parameters / 1e6:.1f}M parameters, weights {quantization(model)}, {weight_bytes(model) / 2**20:.0f} MiB)")
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
    parser.add_argument("--quantize", choices=QUANTIZE,
                        help="none (default) or int8: the linear layers' weights in int8, several times faster "
                             "on a CPU")
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
    problems = server.engine.settings.update({"model": args.model, "device": args.device, "dtype": args.dtype,
                                              "quantize": args.quantize})
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
