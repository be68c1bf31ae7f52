"""The documents the server completes in, and positions between the client's units and the engine's.

The client counts positions in its negotiated encoding (UTF-16 by default)
on LSP lines; the engine and tree-sitter count characters on rows split at
"\n". Conversions go through pygls' position codec and coda_lsp.text.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import unquote

from lsprotocol import types as T

from .text import offset_at_row, offset_of, position_of, row_col, split_lines

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024


def open_document(workspace, uri: str):
    """The document open at `uri`, under pygls' key for it (percent-decoded: VS Code sends
    `file:///a%20b.py` for the file `a b.py`), or None."""
    return workspace.text_documents.get(unquote(uri))


def completable(workspace, uri: str, line: int | None = None):
    """The open document, or None for unknown URIs, documents too large to complete in, text that
    is not valid Unicode (JSON allows lone surrogates, which neither UTF-8 nor the tokenizer take),
    and, when `line` is given, a line the document does not have."""
    doc = open_document(workspace, uri)
    if doc is None or len(doc.source) >= MAX_DOCUMENT_BYTES:
        return None
    try:
        doc.source.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if line is not None and not 0 <= line < len(doc.lines):
        return None
    return doc


def engine_point(doc, position: T.Position) -> tuple[int, int]:
    """A server-units position as the engine and tree-sitter count it (rows on "\n")."""
    return row_col(doc.source, offset_of(doc.lines, position))


def cursor(doc, position: T.Position) -> tuple[int, int] | None:
    """The engine's (row, column) of a client-units cursor, or None when it is outside the document."""
    lines = doc.lines
    if position.line > len(lines) or position.line < 0 or position.character < 0:
        return None
    # The empty line after a final newline has no entry in doc.lines; pygls would clamp it away.
    pos = position if position.line == len(lines) else doc.position_from_client_units(position)
    return engine_point(doc, pos)


def selection_offsets(doc, selection: T.Range) -> tuple[int, int]:
    """Character offsets of a client-units selection; an empty one stands for its whole line."""
    rng = doc.range_from_client_units(selection)
    if rng.start == rng.end:
        line = rng.start.line
        rng = T.Range(T.Position(line, 0), T.Position(line, len(doc.lines[line].rstrip("\r\n"))))
    return offset_of(doc.lines, rng.start), offset_of(doc.lines, rng.end)


class Snapshot(NamedTuple):
    """A document's text as a request saw it, with what maps its offsets to client positions."""
    codec: object
    source: str
    lines: list[str]

    @classmethod
    def of(cls, doc, source: str) -> "Snapshot":
        return cls(doc.position_codec, source, split_lines(source))

    def client_range(self, start: int, end: int) -> T.Range:
        """Character offsets of `source` as a range in the client's units."""
        return self.codec.range_to_client_units(self.lines, T.Range(position_of(self.source, start),
                                                                    position_of(self.source, end)))

    def completion_range(self, completion) -> T.Range:
        """The range a completion (engine rows and columns) replaces, in the client's units."""
        start, end = (offset_at_row(self.source, completion.line, column)
                      for column in (completion.start, completion.end))
        return self.client_range(start, end)
