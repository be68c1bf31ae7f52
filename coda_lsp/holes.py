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
    replace_end: int  # character column where the replaced range ends (== cursor column unless closers follow)
    indent: str  # the indentation a block completion starts at


def _in_string_or_comment_tree(tree, line: int, col: int, lines: list[str]) -> bool:
    point = byte_point(lines[line], line, col)
    # Look at the node under the cursor and the one just before it: a line
    # comment ends where the cursor sits at the end of the line.
    before = (line, max(point[1] - 1, 0))
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


def choose_hole(text: str, line: int, col: int, language_id: str, *, in_comments: bool = False,
                syntax: bool = True) -> Hole:
    """The hole at (line, col), both 0-based, col in characters of that line. `syntax` False: `text`
    is a piece of a larger document, whose parse cannot be trusted; the line heuristics decide."""
    lines = text.split("\n")
    if not 0 <= line < len(lines) or not 0 <= col <= len(lines[line]):
        return Hole("none", col, "")
    current = lines[line]
    before, after = current[:col], current[col:]
    indent = indentation(current)

    if not in_comments:
        tree = parse(text, language_id) if syntax else None
        inside = (_in_string_or_comment_tree(tree, line, col, lines) if tree is not None
                  else _in_string_or_comment_heuristic(before, language_id))
        if inside:
            return Hole("none", col, indent)

    tail = after.strip()
    replace_end = len(current) if tail and all(c in CLOSERS or c.isspace() for c in tail) else col
    if before.strip() or (tail and replace_end == col):
        return Hole("line", replace_end, indent)
    # An empty (or all-indentation) line: a block, indented like the line or one level in from an opener.
    previous = next((lines[i] for i in range(line - 1, -1, -1) if lines[i].strip()), "")
    if previous.rstrip().endswith(BLOCK_OPENERS) and len(before) <= len(indentation(previous)):
        unit = "\t" if previous.startswith("\t") else "    "
        indent = indentation(previous) + unit
    else:
        indent = before
    return Hole("block", replace_end, indent)
