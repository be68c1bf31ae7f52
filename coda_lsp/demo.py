"""`python -m coda_lsp.demo [FILE]`: a short scripted editor session against the real `coda-lsp`.

Starts `coda-lsp --stdio` (the bundled coda-mini unless --model says
otherwise), opens a Python file with every cursor mark `█` taken out, and at
each mark asks for an inline completion, as an editor does while you type;
then runs "Implement function body" on every function whose body is `...`
and prints the edit the editor would apply.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from lsprotocol import types as T
from pygls.lsp.client import LanguageClient

CURSOR = "█"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "editor_session.py"


def take_cursors(marked: str) -> tuple[str, list[T.Position]]:
    """The text without its cursor marks, and where each mark was."""
    lines, cursors = [], []
    for number, line in enumerate(marked.split("\n")):
        while CURSOR in line:
            cursors.append(T.Position(number, line.index(CURSOR)))
            line = line.replace(CURSOR, "", 1)
        lines.append(line)
    return "\n".join(lines), cursors


def stubs(text: str) -> list[T.Position]:
    """The `def` lines of functions whose body is a lone `...` after an optional docstring (what
    "Implement function body" is offered on)."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if line.strip() != "...":
            continue
        defs = [j for j in range(max(0, i - 6), i) if lines[j].lstrip().startswith("def ")]
        if defs:
            out.append(T.Position(defs[-1], lines[defs[-1]].index("def")))
    return out


async def session(path: Path, model: str | None) -> None:
    client = LanguageClient("coda-demo", "1")
    ready = asyncio.get_running_loop().create_future()
    edits: list[T.TextEdit] = []

    @client.feature("coda/status")
    def on_status(status) -> None:
        if status.state in ("ready", "error") and not ready.done():
            ready.set_result(status)

    @client.feature(T.WORKSPACE_APPLY_EDIT)
    def on_apply(params: T.ApplyWorkspaceEditParams) -> T.ApplyWorkspaceEditResult:
        for change in params.edit.document_changes or []:
            edits.extend(change.edits)
        return T.ApplyWorkspaceEditResult(applied=True)

    @client.feature(T.WINDOW_SHOW_MESSAGE)
    def on_message(params: T.ShowMessageParams) -> None:
        print(f"  [server] {params.message}")

    await client.start_io(sys.executable, "-m", "coda_lsp.server", "--stdio", *(["--model", model] if model else []))
    await client.initialize_async(T.InitializeParams(capabilities=T.ClientCapabilities(
        workspace=T.WorkspaceClientCapabilities(apply_edit=True))))
    client.initialized(T.InitializedParams())
    status = await asyncio.wait_for(ready, timeout=300)
    message = getattr(status, "message", None)  # only an error carries one
    print(f"coda-lsp: model {status.model} {status.state}" + (f": {message}" if message else ""))
    if status.state != "ready":
        raise SystemExit(1)

    text, cursors = take_cursors(path.read_text(encoding="utf-8"))
    uri = path.resolve().as_uri()
    lines = text.splitlines()
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, text)))
    for position in cursors:
        start = time.perf_counter()
        result = await client.text_document_inline_completion_async(T.InlineCompletionParams(
            context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
            text_document=T.TextDocumentIdentifier(uri), position=position))
        ms = (time.perf_counter() - start) * 1000
        typed = lines[position.line][:position.character]
        ghost = result.items[0].insert_text if result and result.items else ""
        ghost = ghost if isinstance(ghost, str) else ghost.value
        print(f"\nline {position.line + 1} ({ms:.0f} ms), ghost text after the cursor:")
        print(f"  {typed}\x1b[2m{ghost}\x1b[0m" if sys.stdout.isatty() else f"  {typed}|{ghost}")
    for position in stubs(text):
        edits.clear()
        start = time.perf_counter()
        await client.workspace_execute_command_async(T.ExecuteCommandParams(
            command="coda.implementFunction", arguments=[uri, position]))
        ms = (time.perf_counter() - start) * 1000
        print(f"\nImplement function body on line {position.line + 1} ({ms:.0f} ms):")
        print("\n".join(lines[position.line - 1:position.line + 1]) if position.line else lines[position.line])
        for edit in edits:
            print(edit.new_text.rstrip("\n"))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coda_lsp.demo", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(EXAMPLE), help=f"a Python file, {CURSOR} where to complete")
    parser.add_argument("--model", help="default: the server's ($CODA_MODEL, else the bundled coda-mini)")
    args = parser.parse_args(argv)
    asyncio.run(session(Path(args.file), args.model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
