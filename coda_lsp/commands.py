"""Commands that edit a document: their progress, their cancellation, and applying their edit.

A command runs under cancellable `window/workDoneProgress` (when the client can
show it) and ends in one versioned `workspace/applyEdit` (when the client can
apply edits; otherwise the edit is the command's result). Every request the
server makes of the client times out, so a command is always answered.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from lsprotocol import types as T

from .documents import Snapshot, open_document
from .text import reanchor

CLIENT_TIMEOUT_S = 10.0  # how long a command waits for the client to answer a request the server made of it

REGENERATE = "coda.regenerateSelection"
INSTRUCT = "coda.rewriteWithInstruction"
IMPLEMENT = "coda.implementFunction"
FILL_HOLES = "coda.fillHoles"
INSTRUCTION_COMMENT = ("#", "//", "--", ";")


def instruction_above(doc, line: int) -> str | None:
    """The text of a comment line right above `line`, used as the instruction when none is given."""
    if line == 0:
        return None
    above = doc.lines[line - 1].strip()
    for marker in INSTRUCTION_COMMENT:
        if above.startswith(marker):
            return above[len(marker):].strip() or None
    return None


class CommandRun:
    """One command's cancellable work-done progress, and its cancellation by either route:
    the progress bar's cancel button, or `$/cancelRequest` for the executeCommand request."""

    def __init__(self, ls, title: str):
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


async def edit_with_progress(ls, uri: str, doc, spans: list[tuple[int, int]], title: str,
                              work) -> bool | dict:
    """Run `work(source, on_progress, should_stop)` under cancellable work-done progress on the
    document's text as it is now, and apply what it returns, one new text per span of that text
    (character offsets; None leaves a span alone), as one undoable edit.

    The user may edit while the model works. The edit is then moved to where the spans' text went,
    or dropped with a message when that text changed or cannot be found unambiguously: it is never
    applied to lines it was not made for.
    """
    source = doc.source  # before the first await: the text `spans` index
    run = CommandRun(ls, title)
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
    now = open_document(ls.workspace, uri)
    moved = reanchor(source, now.source, [span for span, _ in chosen]) if now is not None else None
    if moved is None:
        ls.window_show_message(T.ShowMessageParams(T.MessageType.Warning, (
            f"CoDA: {title} was not applied: the document changed while the model worked, and the code it "
            "started from is no longer there unchanged. Run it again.")))
        return False
    snapshot = Snapshot.of(now, now.source)
    edits = [T.TextEdit(range=snapshot.client_range(a, b), new_text=text) for (a, b), (_, text) in zip(moved, chosen)]
    # Versioned as well: a client that checks refuses it if the user edits between here and there.
    edit = T.WorkspaceEdit(document_changes=[T.TextDocumentEdit(
        text_document=T.OptionalVersionedTextDocumentIdentifier(uri=uri, version=now.version), edits=edits)])
    return await apply_edit(ls, edit, title)


async def apply_edit(ls, edit: T.WorkspaceEdit, title: str) -> bool | dict:
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
