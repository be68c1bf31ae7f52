"""Offsets, positions, byte points and indentation in a document's text; moving a span to where its text went.

The conversions the engine, hole selection, the code actions and the `coda`
command line make on a text they hold whole (a window of a document). An open
document's own positions go through its line index instead
(coda_lsp.documents, coda_lsp.lineindex), which counts lines the same way.

Positions here are server units: (line, character) with characters counted
as Python string characters and lines split as LSP counts them: on "\n",
"\r\n" and "\r" only. `str.splitlines` also breaks on form feeds, U+0085,
U+2028 and others, so a document holding one would put every later edit on
the wrong line; `split_lines` and coda_lsp.lineindex break only where LSP does.

Tree-sitter, the code actions' targets (coda_lsp.actions) and the `coda`
command line count rows on "\n" alone; `row_col` and `offset_at_row` convert
at that boundary (they differ only where a lone "\r" ends a line). The
completion engine counts neither: it works in character offsets.
"""

from __future__ import annotations

import re

from lsprotocol import types as T

LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what LSP counts as a line break, and nothing else
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def split_lines(text: str) -> list[str]:
    """The lines of `text` with their line breaks, as LSP counts lines (like splitlines(True) otherwise)."""
    return _LINE.findall(text)


def offset_of(lines: list[str], position: T.Position) -> int:
    """The character offset of `position` in the text whose lines (ends kept) are `lines`.

    A character past the end of its line means the line's end, before its line break (as
    LSP says), not a place in the next line.
    """
    line = lines[position.line] if position.line < len(lines) else ""
    width = len(line.rstrip("\r\n"))
    return sum(len(before) for before in lines[: position.line]) + min(position.character, width)


def position_of(text: str, offset: int) -> T.Position:
    """The position of a character offset in `text`: its line breaks before `offset` counted, not
    split out. A "\r" just before `offset` is a break, whatever follows it (the position starts
    the next line)."""
    offset = min(offset, len(text))
    breaks = text.count("\n", 0, offset) + text.count("\r", 0, offset) - text.count("\r\n", 0, offset)
    line_start = max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1
    return T.Position(breaks, offset - line_start)


def rows(text: str) -> list[str]:
    """The rows of `text` with their "\n" kept, counted on "\n" alone (the engine's and tree-sitter's);
    the last row is "" when the text ends with one."""
    pieces = text.split("\n")
    return [piece + "\n" for piece in pieces[:-1]] + [pieces[-1]]


def row_col(text: str, offset: int) -> tuple[int, int]:
    """(row, column) of a character offset, rows counted on "\n" (the engine's and tree-sitter's)."""
    return text.count("\n", 0, offset), offset - (text.rfind("\n", 0, offset) + 1)


def offset_at_row(text: str, row: int, col: int) -> int:
    """The character offset of (row, column), rows counted on "\n"; the inverse of row_col."""
    start = 0
    for _ in range(row):
        start = text.index("\n", start) + 1
    return start + col


def indentation(line: str) -> str:
    """The whitespace a line starts with."""
    return line[: len(line) - len(line.lstrip())]


def byte_point(line: str, row: int, col: int) -> tuple[int, int]:
    """tree-sitter's point of character column `col` on `line` (row `row`): columns count UTF-8 bytes."""
    return row, len(line[:col].encode("utf-8"))


def char_offset(source: bytes, byte: int) -> int:
    """The character offset of UTF-8 byte offset `byte` in `source`."""
    return len(source[:byte].decode("utf-8", "replace"))


def byte_offset(text: str, offset: int) -> int:
    """The UTF-8 byte offset of character offset `offset` in `text`."""
    return len(text[:offset].encode("utf-8"))


def reanchor(old: str, new: str, spans: list[tuple[int, int]], context_lines: int = 3) -> list[tuple[int, int]] | None:
    """`spans` (sorted character ranges of `old`) moved to where their text is in `new`.

    The document changed while a command worked on `old`. Its result may
    still be applied where the text the spans cover (from the first span's
    start to the last one's end) is in `new` unchanged and can be told apart:
    found exactly once, alone or with up to `context_lines` whole lines
    around it (a `pass` body is rarely unique, its `def` line is). The edits
    then shift with it. Otherwise (changed, gone, blank, or ambiguous) this
    returns None and nothing may be applied.
    """
    if old == new:
        return spans
    start, end = spans[0][0], spans[-1][1]
    if not old[start:end].strip():
        return None
    a, b = start, end
    for grown in range(context_lines + 1):
        if grown:  # one more whole line on each side
            a = old.rfind("\n", 0, max(a - 1, 0)) + 1 if a > 0 else 0
            b = old.find("\n", b + 1) if b < len(old) else b
            b = len(old) if b < 0 else b
        anchor = old[a:b]
        found = new.find(anchor)
        if found < 0:
            return None  # the text changed: a larger anchor holds it too
        if new.find(anchor, found + 1) < 0:
            shift = found - a
            return [(x + shift, y + shift) for x, y in spans]
    return None
