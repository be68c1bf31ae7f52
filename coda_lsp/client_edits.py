"""The LSP side of the code actions: a planned edit (coda_lsp.edits) carried out for the client.

Planning knows nothing of the client; this is where the plan meets it. An
edit runs under cancellable `window/workDoneProgress` (when the client can
show it) and ends in one versioned `workspace/applyEdit` (when the client can
apply edits; otherwise the edit is the command's result). Every request the
server makes of the client times out, so a command is always answered. The
command runs inside its `workspace/executeCommand` request's task, so
`$/cancelRequest` cancels it like the progress bar's cancel button.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from lsprotocol import types as T

from .edits import Edit, Plan, Unavailable
from .text import reanchor

CLIENT_TIMEOUT_S = 10.0  # how long a command waits for the client to answer a request the server made of it

logger = logging.getLogger(__name__)


class CommandRun:
    """One command's cancellable work-done progress, as the `EditProgress` the edit's decode reports
    to: `report` and `stopped` are called from the model thread."""

    def __init__(self, ls, label: str):
        self.ls, self.label = ls, label
        self.token = f"coda-{uuid.uuid4()}"
        self.cancelled = threading.Event()  # read by the model thread between denoising steps
        self.progress = self.finished = False
        self.loop = asyncio.get_running_loop()

    async def start(self) -> None:
        window = self.ls.client_capabilities.window
        if not (window and window.work_done_progress):
            return  # the client cannot show progress: run without
        try:
            await asyncio.wait_for(self.ls.request(T.WINDOW_WORK_DONE_PROGRESS_CREATE,
                                                   T.WorkDoneProgressCreateParams(token=self.token)), CLIENT_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused, garbage or no answer: run without a progress bar
            logger.warning("window/workDoneProgress/create failed: %r", exc)
            return
        self.progress = True
        self._send(T.WorkDoneProgressBegin(title=f"CoDA: {self.label}", cancellable=True))

    def stopped(self) -> bool:
        return self.cancelled.is_set() or (self.progress and self.ls.progress_cancelled(self.token))

    def report(self, step: int, text: str, done: float) -> None:
        if self.progress and not self.stopped():
            line = text.strip().split("\n", 1)[0][:60] if text.strip() else ""
            self.loop.call_soon_threadsafe(self._send, T.WorkDoneProgressReport(
                message=f"step {step}" + (f": {line}" if line else ""), percentage=min(100, int(100 * done))))

    def _send(self, value) -> None:
        # The model thread may finish a step after the command was cancelled and its progress
        # ended; a report after `end` would reopen a bar the client already closed.
        if not self.finished:
            self.ls.notify(T.PROGRESS, T.ProgressParams(token=self.token, value=value))

    def finish(self) -> None:
        if self.progress and not self.finished:
            self._send(T.WorkDoneProgressEnd(message="cancelled" if self.stopped() else "done"))
            self.ls.progress_ended(self.token)
        self.finished = True


async def carry_out(ls, uri: str, plan: Plan, source: str, base: int) -> bool | dict:
    """Run a planned edit and apply what it returns (one new text per span of the text it was
    planned on; None leaves a span alone) as one undoable edit. False when there is nothing to do
    (an unavailable edit is told, unless it is quiet).
    The plan was made on the window of the document `source` that starts at offset `base`
    (coda_lsp.window).

    The user may edit while the model works. The edit is then moved to where the spans' text went,
    or dropped with a message when that text changed or cannot be found unambiguously: it is never
    applied to lines it was not made for.
    """
    if isinstance(plan, Unavailable):
        if plan.quiet:
            logger.info("nothing to do: %s", plan.reason)
        else:
            ls.show_message(f"CoDA: {plan.reason}")
        return False
    run = CommandRun(ls, plan.label)
    try:
        await run.start()
        new_texts = await plan.run(run)
    except asyncio.CancelledError:
        run.cancelled.set()  # the decode in the model thread stops at its next step
        raise
    except ValueError as exc:  # e.g. the code between holes does not fit the model's context
        ls.show_message(f"CoDA: {exc}")
        new_texts = None
    finally:
        run.finish()
    chosen = [(span, text) for span, text in zip(plan.spans, new_texts or []) if text is not None]
    if not chosen:
        return False
    now = ls.documents.get(uri)
    moved = _moved(plan, [span for span, _ in chosen], source, base, now.source) if now is not None else None
    if moved is None:
        ls.show_message(f"CoDA: {plan.label} was not applied: the document changed while the model worked, and the "
                        "code it started from is no longer there unchanged. Run it again.")
        return False
    snapshot = now.snapshot
    edits = [T.TextEdit(range=snapshot.client_range(a, b), new_text=text) for (a, b), (_, text) in zip(moved, chosen)]
    # Versioned as well: a client that checks refuses it if the user edits between here and there.
    edit = T.WorkspaceEdit(document_changes=[T.TextDocumentEdit(
        text_document=T.OptionalVersionedTextDocumentIdentifier(uri=uri, version=now.version), edits=edits)])
    return await apply_edit(ls, edit, plan.label)


def _moved(plan: Edit, spans: list[tuple[int, int]], source: str, base: int, now: str):
    """The spans (offsets of the plan's window) as offsets of the document as it is `now`, or None
    when their text changed or cannot be told apart. Where the user edited meanwhile, the spans'
    text is looked for near where the window was, not in the whole document."""
    if now is source:
        return [(a + base, b + base) for a, b in spans]
    slack = max(4096, len(plan.source))
    lo = max(0, base - slack)
    moved = reanchor(plan.source, now[lo:base + len(plan.source) + slack], spans)
    return None if moved is None else [(a + lo, b + lo) for a, b in moved]


async def apply_edit(ls, edit: T.WorkspaceEdit, label: str) -> bool | dict:
    """Have the client apply `edit`: True when it says it did. A client without the
    workspace.applyEdit capability gets the edit back as the command's result,
    {"applied": false, "edit": WorkspaceEdit}, to apply itself."""
    workspace = ls.client_capabilities.workspace
    if not (workspace and workspace.apply_edit):
        return {"applied": False, "edit": edit}
    try:
        result = await asyncio.wait_for(ls.request(T.WORKSPACE_APPLY_EDIT, T.ApplyWorkspaceEditParams(
            edit=edit, label=f"CoDA: {label}")), CLIENT_TIMEOUT_S)
    except asyncio.TimeoutError:
        problem = f"the editor did not answer workspace/applyEdit within {CLIENT_TIMEOUT_S:.0f} s"
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # an error response, or one that is not an ApplyWorkspaceEditResult
        problem = f"the editor answered workspace/applyEdit with {exc}"
    else:
        if result.applied:
            return True
        problem = f"the editor did not apply it ({result.failure_reason or 'no reason given'})"
    ls.show_message(f"CoDA: {label} was not applied: {problem}.")
    return False
