"""Where to complete: the kind of hole at the cursor, decided with tree-sitter.

    line   the rest of the current line (cursor mid-line or after code)
    block  several lines (an empty line inside a block, after `:` or `{`, an empty body)
    none   nothing (inside a string or a comment, unless configured)

When only closing brackets or quotes follow the cursor (the editor inserted
them), the completion replaces them: `replace_end` is then the end of the
line rather than the cursor.

Languages with a grammar wheel installed get a syntax tree; any other
language falls back to line and indentation heuristics, never an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from .text import byte_point, indentation
from .trees import is_comment, line_comment_markers, node_at, parse

CLOSERS = set(")]}>\"'`;,")
BLOCK_OPENERS = (":", "{", "(", "[", "=>")


@dataclass(frozen=True)
class Hole:
    kind: str  # "line", "block" or "none"
    replace_end: int  # character offset where the replaced range ends (the cursor's unless closers follow)
    indent: str  # the indentation a block completion starts at


def _in_string_or_comment_tree(tree, point: tuple[int, int]) -> bool:
    # Look at the node under the cursor and the one just before it: a line
    # comment ends where the cursor sits at the end of the line.
    before = (point[0], max(point[1] - 1, 0))
    for node in (node_at(tree, point), node_at(tree, before, point)):
        while node is not None:
            if is_comment(node) and node.start_point < point <= node.end_point:
                return True
            if "string" in node.type and node.start_point < point < node.end_point:
                return True
            node = node.parent
    return False


def _in_string_or_comment_heuristic(before: str, language_id: str) -> bool:
    """Whether the line up to the cursor opens a comment or leaves a quote open."""
    markers = line_comment_markers(language_id)
    quote = None
    for i, ch in enumerate(before):
        if quote is None and before.startswith(markers, i):
            return True
        if ch in "\"'`":
            if quote is None:
                quote = ch
            elif quote == ch and (i == 0 or before[i - 1] != "\\"):
                quote = None
    return quote is not None


def _line_around(text: str, offset: int) -> tuple[int, int]:
    """Where the line holding `offset` starts and ends (before its "\n")."""
    end = text.find("\n", offset)
    return text.rfind("\n", 0, offset) + 1, len(text) if end < 0 else end


def _code_line_before(text: str, line_start: int) -> str:
    """The nearest line above the one starting at `line_start` that holds more than whitespace, or ""."""
    end = line_start - 1  # the "\n" that ends the line above
    while end >= 0:
        start = text.rfind("\n", 0, end) + 1
        if text[start:end].strip():
            return text[start:end]
        end = start - 1
    return ""


def choose_hole(text: str, offset: int, language_id: str, *, in_comments: bool = False,
                syntax: bool = True) -> Hole:
    """The hole at character `offset` of `text`. `syntax` False: `text` is a piece of a larger
    document, whose parse cannot be trusted; the line heuristics decide.

    Only the cursor's line and the code line above it are read (a window can hold 256K characters,
    and this runs on every keystroke); rows are counted only for tree-sitter's point."""
    if not 0 <= offset <= len(text):
        return Hole("none", offset, "")
    line_start, line_end = _line_around(text, offset)
    current = text[line_start:line_end]
    before, after = text[line_start:offset], text[offset:line_end]
    indent = indentation(current)

    if not in_comments:
        tree = parse(text, language_id) if syntax else None
        if tree is not None:  # its point: the row counted on "\n", the column in UTF-8 bytes
            point = byte_point(current, text.count("\n", 0, offset), offset - line_start)
            inside = _in_string_or_comment_tree(tree, point)
        else:
            inside = _in_string_or_comment_heuristic(before, language_id)
        if inside:
            return Hole("none", offset, indent)

    tail = after.strip()
    replace_end = line_end if tail and all(c in CLOSERS or c.isspace() for c in tail) else offset
    if before.strip() or (tail and replace_end == offset):
        return Hole("line", replace_end, indent)
    # An empty (or all-indentation) line: a block, indented like the line or one level in from an opener.
    previous = _code_line_before(text, line_start)
    if previous.rstrip().endswith(BLOCK_OPENERS) and len(before) <= len(indentation(previous)):
        unit = "\t" if previous.startswith("\t") else "    "
        indent = indentation(previous) + unit
    else:
        indent = before
    return Hole("block", replace_end, indent)
