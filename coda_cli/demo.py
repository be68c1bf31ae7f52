"""`python -m coda_cli.demo [FILE]`: a short scripted editor session against the real `coda-lsp`.

Starts `coda-lsp --stdio` (the bundled coda-mini unless --model says
otherwise), opens a Python file with every cursor mark `█` taken out, and at
each mark asks for an inline completion, as an editor does while you type;
then runs "Implement function body" on every function whose body is `...`
and prints the edit the editor would apply. `make demo` runs it on
examples/editor_session.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from lsprotocol import types as T

from coda_core.errors import CodaError
from coda_lsp.text import split_lines

from .lsp_client import LanguageClient, open_python, running_server

CURSOR = "█"
EXAMPLE = "examples/editor_session.py"  # in the working directory: the repository's root


def lines_of(text: str) -> list[str]:
    """The lines of `text` without their breaks, counted as LSP counts them (positions index these)."""
    return [line.rstrip("\r\n") for line in split_lines(text)]


def take_cursors(marked: str) -> tuple[str, list[T.Position]]:
    """The text without its cursor marks, and where each mark was."""
    lines, cursors = [], []
    for number, line in enumerate(split_lines(marked)):
        while CURSOR in line:
            cursors.append(T.Position(number, line.index(CURSOR)))
            line = line.replace(CURSOR, "", 1)
        lines.append(line)
    return "".join(lines), cursors


def stubs(text: str) -> list[T.Position]:
    """The `def` lines of functions whose body is a lone `...` after an optional docstring (what
    "Implement function body" is offered on)."""
    lines = lines_of(text)
    out = []
    for i, line in enumerate(lines):
        if line.strip() != "...":
            continue
        defs = [j for j in range(max(0, i - 6), i) if lines[j].lstrip().startswith("def ")]
        if defs:
            out.append(T.Position(defs[-1], lines[defs[-1]].index("def")))
    return out


async def session(path: Path, model: str | None) -> None:
    client = LanguageClient()
    edits: list[T.TextEdit] = []

    def on_apply(params: T.ApplyWorkspaceEditParams) -> T.ApplyWorkspaceEditResult:
        for change in params.edit.document_changes or []:
            edits.extend(change.edits)
        return T.ApplyWorkspaceEditResult(applied=True)

    def on_message(params: T.ShowMessageParams) -> None:
        print(f"  [server] {params.message}")

    client.on(T.WORKSPACE_APPLY_EDIT, on_apply)
    client.on(T.WINDOW_SHOW_MESSAGE, on_message)

    text, cursors = take_cursors(path.read_text(encoding="utf-8"))
    capabilities = T.ClientCapabilities(workspace=T.WorkspaceClientCapabilities(apply_edit=True))
    async with running_server(client, {"model": model} if model else {}, capabilities) as status:
        print(f"coda-lsp: model {status['model']} {status['state']}")
        uri = path.resolve().as_uri()
        lines = lines_of(text)
        open_python(client, uri, text)
        for position in cursors:
            start = time.perf_counter()
            result = await client.request(T.TEXT_DOCUMENT_INLINE_COMPLETION, T.InlineCompletionParams(
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
            await client.request(T.WORKSPACE_EXECUTE_COMMAND, T.ExecuteCommandParams(
                command="coda.implementFunction", arguments=[uri, position]))
            ms = (time.perf_counter() - start) * 1000
            print(f"\nImplement function body on line {position.line + 1} ({ms:.0f} ms):")
            print("\n".join(lines[position.line - 1:position.line + 1]) if position.line else lines[position.line])
            for edit in edits:
                print(edit.new_text.rstrip("\n"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coda_cli.demo", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=EXAMPLE,
                        help=f"a Python file, {CURSOR} where to complete (default: {EXAMPLE})")
    parser.add_argument("--model", help="default: the server's ($CODA_MODEL, else the bundled coda-mini)")
    args = parser.parse_args(argv)
    path = Path(args.file)
    if not path.is_file():
        parser.error(f"{path}: no such file (run from the repository's root, or name the file)")
    try:
        asyncio.run(session(path, args.model))
    except CodaError as exc:  # the model did not load: the server's reason, in one line
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
