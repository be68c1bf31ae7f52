"""The documents the client has open, and positions between the client's units and the engine's.

The client counts positions on LSP lines (split on "\\n", "\\r\\n" and "\\r" only,
see coda_lsp.text) in the position encoding negotiated at `initialize`: UTF-16
code units unless the client offers UTF-8 or UTF-32 first. The server counts
Python characters on the same lines ("server units"), and the engine and
tree-sitter count characters on rows split at "\\n". Every conversion between
the three is here or in coda_lsp.text.
"""

from __future__ import annotations

import logging
from typing import NamedTuple
from urllib.parse import unquote

from lsprotocol import types as T

from .text import offset_at_row, offset_of, position_of, row_col, split_lines

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024
ENCODINGS = ("utf-16", "utf-8", "utf-32")  # the position encodings LSP defines; all are served
logger = logging.getLogger(__name__)


def choose_encoding(capabilities: T.ClientCapabilities) -> str:
    """The first of the client's position encodings that we speak; UTF-16, the spec's default, otherwise."""
    offered = capabilities.general.position_encodings if capabilities.general else None
    offered = [getattr(e, "value", e) for e in offered or []]  # PositionEncodingKind, or a string
    return next((e for e in offered if e in ENCODINGS), "utf-16")


def _width(char: str, encoding: str) -> int:
    if encoding == "utf-16":
        return 2 if ord(char) > 0xFFFF else 1
    return len(char.encode("utf-8", "surrogatepass")) if encoding == "utf-8" else 1


def _content(lines, line: int) -> str:
    """Line `line` without its line break; "" past the end (the line after a final line break)."""
    return lines[line].rstrip("\r\n") if 0 <= line < len(lines) else ""


def to_server(lines, position: T.Position, encoding: str) -> T.Position:
    """A client-units position as Python characters; a column past the line's end is its end."""
    line = _content(lines, position.line)
    if encoding == "utf-32" or line.isascii():
        return T.Position(position.line, min(position.character, len(line)))
    units = 0
    for i, char in enumerate(line):
        if units >= position.character:
            return T.Position(position.line, i)
        units += _width(char, encoding)
    return T.Position(position.line, len(line))


def to_client(lines, position: T.Position, encoding: str) -> T.Position:
    line = _content(lines, position.line)[: position.character]
    units = len(line) if encoding == "utf-32" or line.isascii() else sum(_width(c, encoding) for c in line)
    return T.Position(position.line, units)


class Document:
    """An open document: its text as the client has it, and its lines as LSP counts them."""

    def __init__(self, uri: str, source: str, version: int | None, language_id: str, encoding: str):
        self.uri, self.version, self.language_id, self.encoding = uri, version, language_id, encoding
        self.source = source
        self._lines: tuple[str, list[str]] | None = None  # (the source they split, the lines)

    @property
    def lines(self) -> list[str]:
        """The lines, line breaks kept; split once per text (handlers ask several times a keystroke)."""
        if self._lines is None or self._lines[0] is not self.source:
            self._lines = (self.source, split_lines(self.source))
        return self._lines[1]

    def server_position(self, position: T.Position) -> T.Position:
        return to_server(self.lines, position, self.encoding)

    def server_range(self, rng: T.Range) -> T.Range:
        return T.Range(self.server_position(rng.start), self.server_position(rng.end))

    def apply(self, change) -> None:
        """One content change: the whole text, or a client-units range of it replaced."""
        rng = getattr(change, "range", None)
        if rng is None:
            self.source = change.text
            return
        start, end = (offset_of(self.lines, self.server_position(p)) for p in (rng.start, rng.end))
        start, end = min(start, end), max(start, end)
        self.source = self.source[:start] + change.text + self.source[end:]


class Documents:
    """The open documents by URI, kept in step with didOpen, didChange and didClose."""

    def __init__(self):
        self.encoding = "utf-16"  # set by `initialize`
        self._open: dict[str, Document] = {}

    @staticmethod
    def key(uri: str) -> str:
        # percent-decoded: VS Code sends `file:///a%20b.py` for `a b.py`, and other clients differ
        return unquote(uri)

    def get(self, uri: str) -> Document | None:
        return self._open.get(self.key(uri))

    def open(self, item: T.TextDocumentItem) -> None:
        self._open[self.key(item.uri)] = Document(item.uri, item.text, item.version, item.language_id, self.encoding)

    def change(self, params: T.DidChangeTextDocumentParams) -> None:
        doc = self.get(params.text_document.uri)
        if doc is None:
            logger.warning("didChange for a document that is not open: %s", params.text_document.uri)
            return
        for change in params.content_changes:
            doc.apply(change)
        doc.version = params.text_document.version

    def close(self, uri: str) -> None:
        self._open.pop(self.key(uri), None)

    def completable(self, uri: str, line: int | None = None) -> Document | None:
        """The open document, or None for unknown URIs, documents too large to complete in, text
        that is not valid Unicode (JSON allows lone surrogates, which neither UTF-8 nor the
        tokenizer take), and, when `line` is given, a line the document does not have."""
        doc = self.get(uri)
        if doc is None or len(doc.source) >= MAX_DOCUMENT_BYTES:
            return None
        try:
            doc.source.encode("utf-8")
        except UnicodeEncodeError:
            return None
        if line is not None and not 0 <= line < len(doc.lines):
            return None
        return doc


def engine_point(doc: Document, position: T.Position) -> tuple[int, int]:
    """A client-units position as the engine and tree-sitter count it (rows on "\\n")."""
    return row_col(doc.source, offset(doc, position))


def cursor(doc: Document, position: T.Position) -> tuple[int, int] | None:
    """The engine's (row, column) of a client-units cursor, or None when it is outside the document
    (the empty line after a final line break is inside: it has no entry in `lines`)."""
    if not 0 <= position.line <= len(doc.lines) or position.character < 0:
        return None
    return engine_point(doc, position)


def offset(doc: Document, position: T.Position) -> int:
    """The character offset of a client-units position."""
    return offset_of(doc.lines, doc.server_position(position))


def offsets(doc: Document, rng: T.Range) -> tuple[int, int]:
    """Character offsets of a client-units range."""
    return offset(doc, rng.start), offset(doc, rng.end)


def selection_offsets(doc: Document, selection: T.Range) -> tuple[int, int]:
    """Character offsets of a client-units selection; an empty one stands for its whole line."""
    rng = doc.server_range(selection)
    if rng.start == rng.end:
        line = rng.start.line
        rng = T.Range(T.Position(line, 0), T.Position(line, len(_content(doc.lines, line))))
    return offset_of(doc.lines, rng.start), offset_of(doc.lines, rng.end)


class Snapshot(NamedTuple):
    """A document's text as a request saw it, with what maps its offsets to client positions."""
    source: str
    lines: list[str]
    encoding: str

    @classmethod
    def of(cls, doc: Document, source: str | None = None) -> "Snapshot":
        source = doc.source if source is None else source
        # the document's lines are split already unless it changed since `source` was read
        return cls(source, doc.lines if source is doc.source else split_lines(source), doc.encoding)

    def client_range(self, start: int, end: int) -> T.Range:
        """Character offsets of `source` as a range in the client's units."""
        return T.Range(*(to_client(self.lines, position_of(self.source, offset), self.encoding)
                         for offset in (start, end)))

    def completion_range(self, completion) -> T.Range:
        """The range a completion (engine rows and columns) replaces, in the client's units."""
        start, end = (offset_at_row(self.source, completion.line, column)
                      for column in (completion.start, completion.end))
        return self.client_range(start, end)
