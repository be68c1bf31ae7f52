"""`coda-lsp`: the language server. Each handler converts LSP params to one engine call and back.

Served: inline completions (`textDocument/inlineCompletion`) and completion
items (`textDocument/completion`), both from diffusion fill-in-the-middle at
the cursor (coda_lsp.engine); and four code actions (kind refactor.rewrite):
"Regenerate selection", "Rewrite selection with instruction", "Implement
function body" and "Fill all holes" (named in coda_lsp.edits, which plans
them). Each action runs as `workspace/executeCommand`, reports cancellable
`window/workDoneProgress` and applies one versioned `workspace/applyEdit`
(coda_lsp.client_edits). The protocol is coda_lsp.protocol's: position
encoding negotiated (UTF-16 unless the client prefers UTF-8 or UTF-32),
document sync incremental.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import NamedTuple

from lsprotocol import types as T

from coda_core import __version__
from coda_core.bundled import DEFAULT_MODEL_HELP
from coda_core.choices import QUANTIZE

from .client_edits import carry_out
from .documents import cursor, offset, offsets, selection_offsets
from .edits import FILL_HOLES, IMPLEMENT, INSTRUCT, REGENERATE, Edits, Plan
from .engine import Engine
from .jsonrpc import MAX_MESSAGE_BYTES
from .protocol import LanguageServer
from .settings import Settings
from .window import Window

# Notification to the client, {"state": "loading" | "ready" | "error", "model": str, "message"?: str,
# "percentage"?: int}, sent whenever a model load starts and ends, and while a hub model downloads (with
# its percentage); editors show it in their status line.
STATUS = "coda/status"


class CodaServer(LanguageServer):
    """The language server: the protocol (coda_lsp.protocol), the engine and its edits."""

    def __init__(self, settings: Settings | None = None):
        super().__init__("coda-lsp", __version__)
        self.engine = Engine(settings)
        self.edits = Edits(self.engine)
        # The model's loads and the engine's answers (when they keep coming back empty) tell the editor.
        tell = lambda *status: self.from_any_thread(self.notify_status, *status)
        self.engine.models.on_status = self.engine.on_status = tell
        self.engine.models.on_error = lambda error: self.from_any_thread(self.show_message, error,
                                                                         T.MessageType.Error)
        # The other files a completion takes snippets from: the open documents and their edits.
        self.engine.project.open_documents = self.documents.texts
        self.documents.on_edit = self.engine.project.edited

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
        self.rpc.notify(STATUS, {"state": state, "model": model, **({"message": message} if message else {}),
                                 **({"percentage": percentage} if percentage is not None else {})})

    def apply_settings(self, settings: dict) -> None:
        """Take the settings the editor sent; what they get wrong is told in one message, and the
        setting keeps its value (or is clamped into bounds)."""
        problems = self.engine.settings.update(settings)
        if problems:
            message = "CoDA: " + "; ".join(problems)
            logging.warning(message)
            self.show_message(message)


server = CodaServer()


# -- lifecycle and settings ------------------------------------------------------

@server.feature(T.INITIALIZE)
def on_initialize(ls: CodaServer, params: T.InitializeParams) -> None:
    if isinstance(params.initialization_options, dict):
        ls.apply_settings(params.initialization_options)
    # Imported files are read only inside these folders (coda_lsp.project).
    ls.engine.project.set_roots([f.uri for f in params.workspace_folders or []]
                                or [params.root_uri or params.root_path or ""])


@server.feature(T.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
def on_workspace_folders(ls: CodaServer, params: T.DidChangeWorkspaceFoldersParams) -> None:
    ls.engine.project.change_roots([f.uri for f in params.event.added], [f.uri for f in params.event.removed])


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
    """(snapshot, completions) at `position`; `invoked`: the user asked, so alternatives are worth their time.
    The position becomes a character offset here, once; the completions' offsets become ranges in the
    client's units in the handlers, through the snapshot, once."""
    doc = ls.documents.completable(uri)
    at = cursor(doc, position) if doc is not None else None
    if at is None:
        return None, []
    snapshot = doc.snapshot  # the text the completions are for, whatever arrives meanwhile
    completions = await ls.engine.complete(uri, snapshot.source, at, doc.language_id or "", alternatives=invoked)
    return snapshot, completions


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

class _Span(NamedTuple):
    """What an edit works on: the window of the document around a span, and the span in it."""
    language_id: str
    source: str  # the document's text when the edit was planned
    window: Window
    start: int  # the span's offsets in the window's text
    end: int


def _span(ls: CodaServer, uri: str, line: int, offsets_in) -> _Span | None:
    """The span `offsets_in(doc)` (character offsets) of the open document in its window; None where
    no edit can be made (no such document or line, or text that is not valid Unicode)."""
    doc = ls.documents.completable(uri, line)
    if doc is None:
        return None
    start, end = offsets_in(doc)
    window = ls.engine.window(doc.source, start, end)
    if window is None:
        return None
    # A piece of a larger document gets the line heuristics of a language without a grammar (coda_lsp.window).
    language_id = (doc.language_id or "") if window.whole else ""
    return _Span(language_id, doc.source, window, start - window.start, end - window.start)


async def _carry_out(ls: CodaServer, uri: str, span: _Span | None, plan: Plan | None) -> bool | dict:
    return await carry_out(ls, uri, plan, span.source, span.window.start) if span else False


@server.feature(T.TEXT_DOCUMENT_CODE_ACTION,
                T.CodeActionOptions(code_action_kinds=[T.CodeActionKind.RefactorRewrite]))
def code_actions(ls: CodaServer, params: T.CodeActionParams) -> list[T.CodeAction]:
    uri, rng = params.text_document.uri, params.range
    at = _span(ls, uri, rng.start.line, lambda doc: offsets(doc, rng))
    actions = ls.edits.available(at.window.text, at.start, at.end, at.language_id) if at else []
    return [T.CodeAction(title=a.title, kind=T.CodeActionKind.RefactorRewrite,
                         command=T.Command(title=a.title, command=a.command, arguments=a.arguments(uri, rng)))
            for a in actions]


@server.command(REGENERATE.command)
async def regenerate_selection(ls: CodaServer, uri: str, selection: T.Range) -> bool | dict:
    at = _span(ls, uri, selection.start.line, lambda doc: selection_offsets(doc, selection))
    return await _carry_out(ls, uri, at, at and ls.edits.regenerate(uri, at.window.text, at.start, at.end))


@server.command(INSTRUCT.command)
async def rewrite_with_instruction(ls: CodaServer, uri: str, selection: T.Range,
                                   instruction: str | None = None) -> bool | dict:
    """The instruction is optional (clients prompt for it); without it, a comment line above is used."""
    at = _span(ls, uri, selection.start.line, lambda doc: selection_offsets(doc, selection))
    return await _carry_out(ls, uri, at, at and ls.edits.instruct(uri, at.window.text, at.start, at.end, instruction))


@server.command(IMPLEMENT.command)
async def implement_function(ls: CodaServer, uri: str, position: T.Position) -> bool | dict:
    at = _span(ls, uri, position.line, lambda doc: (offset(doc, position),) * 2)
    return await _carry_out(ls, uri, at, at and ls.edits.implement(uri, at.window.text, at.start, at.language_id))


@server.command(FILL_HOLES.command)
async def fill_holes(ls: CodaServer, uri: str, selection: T.Range) -> bool | dict:
    at = _span(ls, uri, selection.start.line, lambda doc: offsets(doc, selection))
    return await _carry_out(ls, uri, at, at and ls.edits.fill_holes(uri, at.window.text, at.start, at.end,
                                                                     at.language_id))


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
    print(f"coda-lsp: model {engine.models.name} loaded ({model.device}, {parameters / 1e6:.1f}M parameters, "
          f"weights {quantization(model)}, {weight_bytes(model) / 2**20:.0f} MiB); {engine.models.computing}")
    return 0


def main(argv: list[str] | None = None) -> int:
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
    parser.add_argument("--quantize", choices=QUANTIZE, help="none (default) or int8: the linear layers' "
                        "weights in int8, several times faster on a CPU")
    parser.add_argument("--log-file", help="write the server log here (stdout carries the protocol)")
    parser.add_argument("--log-level", choices=("debug", "info", "warning"),
                        help="info with --log-file, else warning; debug adds what each completion's model was given")
    parser.add_argument("--max-message-mb", type=float, default=MAX_MESSAGE_BYTES / 2**20,
                        help="refuse (and skip) JSON-RPC messages larger than this (default: %(default).0f)")
    parser.add_argument("--check", action="store_true",
                        help="load the model, say whether that worked, and exit (for editors' health checks)")
    parser.add_argument("--version", action="version", version=f"coda-lsp {__version__}")
    args = parser.parse_args(argv)
    level = (args.log_level or ("info" if args.log_file else "warning")).upper()
    logging.basicConfig(**({"filename": args.log_file} if args.log_file else {"stream": sys.stderr}), level=level)
    problems = server.engine.settings.start_with({"model": args.model, "device": args.device, "dtype": args.dtype,
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
    return server.exit_code or 0  # 1 after an exit without shutdown, as the spec says


if __name__ == "__main__":
    sys.exit(main())
