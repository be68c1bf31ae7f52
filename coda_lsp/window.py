"""The part of a document a request works on: a window of text around the cursor, never the whole.

A minified bundle is one line of megabytes; a generated file has 100,000
lines. What a completion needs of either is the model's context around the
cursor (a few thousand tokens) and a syntax tree of the code near it. So the
hole choice, the tree-sitter parse, the tokenization and the ranking all get a
`Window`: whole lines around the cursor, about `before` characters before it
and `after` after it, from a document of any size.

A document of up to WHOLE_CHARS characters is its own window, parsed whole
(tree-sitter takes about 110 ms and 25 MB a megabyte of Python; re-parsing it
after a keystroke costs a few ms, coda_lsp.trees). A larger one is cut, and
its window goes without a syntax tree: a fragment's parse can be wrong at the
cursor (cut inside a docstring, everything after it parses as code inside
out), so there the hole choice and the code actions use the line heuristics
that languages without a grammar get, and candidates are not ranked by syntax.

The window's edges sit on a grid of GRID characters, then move to the next line
start, so typing does not move them: the context's tokens of a keystroke ago
(coda_lsp.context) and the model's prefix cache stay usable. A line longer
than half the window is cut by characters on the grid instead (the model then
sees half a line at the edge, as it does for any line longer than its context).
"""

from __future__ import annotations

from dataclasses import dataclass

WHOLE_CHARS = 256 * 1024  # a document up to this size is its own window, with its syntax tree
GRID = 4096  # characters: the edges move once per this many characters typed
CHARS_PER_TOKEN = 16  # generous: the context (coda_lsp.context) rarely needs more than 4 a token


def chars_for(tokens: int) -> int:
    """A window side wide enough for `tokens` tokens of context, and a parse that sees the code around them."""
    return CHARS_PER_TOKEN * tokens + 2 * GRID


def _cut_before(source: str, offset: int, before: int) -> int:
    """The window's start: the first line start at or after the grid point `before` characters back."""
    point = max(0, (offset - before) // GRID * GRID)
    if point == 0:
        return 0
    newline = source.find("\n", point - 1, offset)
    if newline < 0 or newline + 1 - point > before // 2:
        return point  # within a line longer than half the window: cut it by characters
    return newline + 1


def _cut_after(source: str, offset: int, after: int) -> int:
    """The window's end: just after the first line break at or after the grid point `after` characters on."""
    point = -(-(offset + after) // GRID) * GRID
    if point >= len(source):
        return len(source)
    newline = source.find("\n", point, point + after // 2)
    return point if newline < 0 else newline + 1


@dataclass(frozen=True)
class Window:
    text: str
    start: int  # the document offset where `text` starts
    cursor: int  # the cursor's offset in `text`
    whole: bool  # the whole document: its syntax tree can be trusted

    @classmethod
    def around(cls, source: str, offset: int, before: int, after: int) -> "Window":
        """The window of `source` around character `offset`, about `before` and `after` characters each side."""
        if len(source) <= WHOLE_CHARS:
            return cls(source, 0, offset, whole=True)
        start, end = _cut_before(source, offset, before), _cut_after(source, offset, after)
        return cls(source[start:end], start, offset - start, whole=(start, end) == (0, len(source)))
