"""The documents the client has open, and positions between the client's units and the engine's.

The client counts positions on LSP lines (split on "\\n", "\\r\\n" and "\\r" only,
see coda_lsp.text) in the position encoding negotiated at `initialize`: UTF-16
code units unless the client offers UTF-8 or UTF-32 first. The server works in
character offsets of the document; `Snapshot` converts between the two, with
the document's line index (coda_lsp.lineindex), in time that grows with the
column, not with the document's size. The handlers convert a request's
positions once on the way in and its results' offsets once on the way out;
below them everything is in character offsets (a request's window,
coda_lsp.window, in offsets of its text), and only tree-sitter's points
count rows (split at "\\n").
"""

from __future__ import annotations

import logging
from typing import NamedTuple
from urllib.parse import unquote

from lsprotocol import types as T

from .lineindex import LineIndex

MAX_DOCUMENT_CHARS = 32 * 1024 * 1024  # completions work on a window, so this bounds only memory
ENCODINGS = ("utf-16", "utf-8", "utf-32")  # the position encodings LSP defines; all are served
logger = logging.getLogger(__name__)


def choose_encoding(capabilities: T.ClientCapabilities) -> str:
    """The first of the client's position encodings that we speak; UTF-16, the spec's default, otherwise."""
    offered = capabilities.general.position_encodings if capabilities.general else None
    offered = [getattr(e, "value", e) for e in offered or []]  # PositionEncodingKind, or a string
    return next((e for e in offered if e in ENCODINGS), "utf-16")


_CODECS = {"utf-16": ("utf-16-le", 2), "utf-8": ("utf-8", 1)}  # codec, bytes a code unit


def units_of(text: str, encoding: str) -> int:
    """How many of the encoding's code units `text` takes (UTF-16 units, UTF-8 bytes, or characters)."""
    if encoding == "utf-32" or text.isascii():
        return len(text)
    codec, width = _CODECS[encoding]
    return len(text.encode(codec, "surrogatepass")) // width


def chars_in(text: str, units: int, encoding: str) -> int:
    """How many characters of `text` its first `units` code units hold; a unit inside a character
    counts the whole character (the position is taken to be after it)."""
    if encoding == "utf-32" or text.isascii():
        return min(units, len(text))
    codec, width = _CODECS[encoding]
    data = text.encode(codec, "surrogatepass")
    cut = min(units * width, len(data))
    if encoding == "utf-8":
        while cut < len(data) and data[cut] & 0xC0 == 0x80:  # inside a character: to its end
            cut += 1
    elif cut < len(data) and 0xDC00 <= int.from_bytes(data[cut:cut + 2], "little") <= 0xDFFF \
            and 0xD800 <= int.from_bytes(data[cut - 2:cut], "little") <= 0xDBFF:  # between a pair's halves
        cut += 2
    return len(data[:cut].decode(codec, "surrogatepass"))


class Snapshot(NamedTuple):
    """A document's text as one version has it, its line index, and how the client counts columns.

    Every conversion between client positions and character offsets is here. A line's text is
    read from the source only as far as the position asks, so a 5 MB line costs what a short one does.
    """
    source: str
    index: LineIndex
    encoding: str

    def content_end(self, line: int) -> int:
        """The offset where `line`'s text ends, before its line break."""
        start, end = self.index.start(line), self.index.end(line)
        if end > start and self.source[end - 1] == "\n":
            end -= 1
        if end > start and self.source[end - 1] == "\r":
            end -= 1
        return end

    def offset(self, position: T.Position) -> int:
        """The character offset of a client-units position; a column past the line's end is its end
        (not a place in the next line, as LSP says), a line past the last is the text's end."""
        start, end = self.index.start(position.line), self.content_end(position.line)
        # no character takes less than one unit: the first `character` characters hold the position
        head = self.source[start:min(end, start + position.character)]
        return start + chars_in(head, position.character, self.encoding)

    def position(self, offset: int) -> T.Position:
        """The client-units position of a character offset."""
        line = self.index.line_of(offset)
        start = self.index.start(line)
        return T.Position(line, units_of(self.source[start:offset], self.encoding))

    def client_range(self, start: int, end: int) -> T.Range:
        """Character offsets as a range in the client's units."""
        return T.Range(self.position(start), self.position(end))

    def completion_range(self, completion) -> T.Range:
        """The range a completion (document offsets) replaces, in the client's units."""
        return self.client_range(completion.start, completion.end)


class Document:
    """An open document: its text as the client has it, and where its lines start as LSP counts them."""

    def __init__(self, uri: str, source: str, version: int | None, language_id: str, encoding: str):
        self.uri, self.version, self.language_id, self.encoding = uri, version, language_id, encoding
        self.source = source
        self.index = LineIndex(source)

    @property
    def snapshot(self) -> Snapshot:
        """The text as it is now, with what converts positions in it; it stays valid after edits."""
        return Snapshot(self.source, self.index, self.encoding)

    def apply(self, change) -> None:
        """One content change: the whole text, or a client-units range of it replaced."""
        rng = getattr(change, "range", None)
        if rng is None:
            self.source, self.index = change.text, LineIndex(change.text)
            return
        snapshot = self.snapshot
        start, end = sorted(snapshot.offset(p) for p in (rng.start, rng.end))
        old = self.source
        self.source = old[:start] + change.text + old[end:]
        self.index = self.index.replace(old, start, end, self.source, len(change.text))


class Documents:
    """The open documents by URI, kept in step with didOpen, didChange and didClose."""

    def __init__(self):
        self.encoding = "utf-16"  # set by `initialize`
        self._open: dict[str, Document] = {}
        self.on_edit = lambda uri, line: None  # told the first line of each edit (coda_lsp.project's recent edits)

    def texts(self) -> list[tuple[str, str, str]]:
        """(uri, language id, text) of every open document."""
        return [(doc.uri, doc.language_id or "", doc.source) for doc in self._open.values()]

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
            rng = getattr(change, "range", None)
            if rng is not None:
                self.on_edit(doc.uri, rng.start.line)
        doc.version = params.text_document.version

    def close(self, uri: str) -> None:
        self._open.pop(self.key(uri), None)

    def completable(self, uri: str, line: int | None = None) -> Document | None:
        """The open document, or None for unknown URIs, documents too large to complete in, and,
        when `line` is given, a line the document does not have. (Text that is not valid Unicode is
        turned away by the window a request works on: coda_lsp.window.)"""
        doc = self.get(uri)
        if doc is None or len(doc.source) >= MAX_DOCUMENT_CHARS:
            return None
        if line is not None and not 0 <= line < len(doc.index):
            return None
        return doc


def offset(doc: Document, position: T.Position) -> int:
    """The character offset of a client-units position."""
    return doc.snapshot.offset(position)


def cursor(doc: Document, position: T.Position) -> int | None:
    """The character offset of a client-units cursor, or None when it is outside the document
    (the empty line after a final line break is inside)."""
    if not 0 <= position.line <= len(doc.index) or position.character < 0:
        return None
    return offset(doc, position)


def offsets(doc: Document, rng: T.Range) -> tuple[int, int]:
    """Character offsets of a client-units range."""
    return offset(doc, rng.start), offset(doc, rng.end)


def selection_offsets(doc: Document, selection: T.Range) -> tuple[int, int]:
    """Character offsets of a client-units selection; an empty one stands for its whole line."""
    snapshot = doc.snapshot
    start, end = snapshot.offset(selection.start), snapshot.offset(selection.end)
    if start == end:
        line = selection.start.line
        return snapshot.index.start(line), snapshot.content_end(line)
    return start, end
