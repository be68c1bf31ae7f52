"""Syntax trees and comment markers: what hole selection, the completion filters and the code actions share.

    parse        the tree of a text, parsed incrementally from the most similar recent one
    parser_for   the language's tree-sitter parser, or None (coda_core.syntax, the one place grammars are found)
    node_text, node_at, enclosing, is_comment   small helpers over tree-sitter nodes
    line_comment_markers, LINE_COMMENT_MARKERS, COMMENT_OPENERS   the comment markers, written once

Languages with a grammar wheel installed get a tree; any other language gets None, and
its callers fall back to line heuristics built on the comment markers below.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from coda_core.syntax import parser_for

__all__ = ["COMMENT_OPENERS", "LINE_COMMENT_MARKERS", "enclosing", "is_comment", "line_comment_markers",
           "node_at", "node_text", "parse", "parser_for"]


# -- Incremental parsing ------------------------------------------------------------

class _Trees:
    """Incremental parsing: a new text is parsed as an edit of the most similar recent tree.

    Every keystroke asks for a tree of a text that differs from the last one in a few bytes;
    tree-sitter then re-parses only around the edit (about 1.5 ms instead of 10 ms for a
    2,000-line Python file) and gives the tree a fresh parse would.
    """

    def __init__(self, size: int = 4):
        self.size = size
        self._recent: OrderedDict[tuple[str, bytes], object] = OrderedDict()
        self._lock = threading.Lock()

    def parse(self, parser, language_id: str, source: bytes):
        with self._lock:
            hit = self._recent.get((language_id, source))
            if hit is not None:  # the same text asked again (the hole, then the imports): its tree, read-only
                self._recent.move_to_end((language_id, source))
                return hit
            best, kept = None, -1
            for (language, old), tree in self._recent.items():
                if language == language_id:
                    same = _common_prefix(old, source) + _common_suffix(old, source)
                    if same > kept:
                        best, kept = (old, tree), same
            if best is None:
                tree = parser.parse(source)
            else:
                old, tree = best
                tree = tree.copy()
                _edit(tree, old, source)
                tree = parser.parse(source, tree)
            self._recent[(language_id, source)] = tree
            self._recent.move_to_end((language_id, source))
            while len(self._recent) > self.size:
                self._recent.popitem(last=False)
            return tree


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, by bisection over slice comparisons (memcmp speed)."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _common_suffix(a: bytes, b: bytes) -> int:
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _point(source: bytes, offset: int) -> tuple[int, int]:
    return source.count(b"\n", 0, offset), offset - (source.rfind(b"\n", 0, offset) + 1)


def _edit(tree, old: bytes, new: bytes) -> None:
    """Tell `tree` (of `old`) that one span changed to give `new`."""
    start = _common_prefix(old, new)
    tail = min(_common_suffix(old, new), len(old) - start, len(new) - start)
    old_end, new_end = len(old) - tail, len(new) - tail
    tree.edit(start_byte=start, old_end_byte=old_end, new_end_byte=new_end, start_point=_point(old, start),
              old_end_point=_point(old, old_end), new_end_point=_point(new, new_end))


_TREES = _Trees()


def parse(text: str | bytes, language_id: str):
    """The syntax tree of `text`, or None when the language has no grammar."""
    parser = parser_for(language_id)
    if parser is None:
        return None
    return _TREES.parse(parser, language_id, text.encode("utf-8") if isinstance(text, str) else text)


# -- Nodes ----------------------------------------------------------------------------

def node_text(node, source: bytes) -> str:
    """The text of `node` in `source`, the UTF-8 bytes its tree was parsed from."""
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")


def node_at(tree, start: tuple[int, int], end: tuple[int, int] | None = None):
    """The smallest node spanning tree-sitter points `start` to `end` (default: `start`)."""
    return tree.root_node.descendant_for_point_range(start, start if end is None else end)


def enclosing(node, types: set[str]):
    """`node` or its nearest ancestor whose type is one of `types`; None when there is none."""
    while node is not None and node.type not in types:
        node = node.parent
    return node


def is_comment(node) -> bool:
    """Every grammar names its comment nodes with "comment": comment, line_comment, block_comment."""
    return "comment" in node.type


# -- Comment markers ------------------------------------------------------------------
# The languages whose line comments do not start with `//`, by LSP language id. `//` is the
# default because most languages an editor sends have it (C, C++, C#, Java, JavaScript,
# TypeScript, Go, Rust, Swift, Kotlin, PHP, ...).
_LINE_COMMENTS = {
    **dict.fromkeys(("python", "shellscript", "ruby", "yaml", "toml", "perl", "r"), ("#",)),
    **dict.fromkeys(("lua", "sql", "haskell"), ("--",)),
    **dict.fromkeys(("clojure", "lisp", "scheme"), (";",)),
}
_DEFAULT_LINE_COMMENT = ("//",)
_BLOCK_COMMENT_OPENERS = ("/*",)


def line_comment_markers(language_id: str) -> tuple[str, ...]:
    """What a line comment starts with in the language."""
    return _LINE_COMMENTS.get(language_id, _DEFAULT_LINE_COMMENT)


# Every language's line comment markers, for text read without trusting the language id
# (a language the table above does not know may still use `#` or `--`). Longest first,
# so that a marker never hides a longer one it begins.
LINE_COMMENT_MARKERS = tuple(sorted({marker for markers in (*_LINE_COMMENTS.values(), _DEFAULT_LINE_COMMENT)
                                     for marker in markers}, key=lambda marker: (-len(marker), marker)))
# What a comment line of any language starts with.
COMMENT_OPENERS = LINE_COMMENT_MARKERS + _BLOCK_COMMENT_OPENERS
