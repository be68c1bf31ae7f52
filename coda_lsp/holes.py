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

import importlib
from dataclasses import dataclass
from functools import lru_cache

# LSP language id -> (grammar module, function returning the language pointer)
GRAMMARS = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "javascriptreact": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "typescriptreact": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
}
CLOSERS = set(")]}>\"'`;,")
BLOCK_OPENERS = (":", "{", "(", "[", "=>")


@dataclass(frozen=True)
class Hole:
    kind: str  # "line", "block" or "none"
    replace_end: int  # character column where the replaced range ends (== cursor column unless closers follow)
    indent: str  # the indentation a block completion starts at


@lru_cache(maxsize=None)
def parser_for(language_id: str):
    """A tree-sitter parser for the language, or None when no grammar wheel is installed."""
    spec = GRAMMARS.get(language_id)
    if spec is None:
        return None
    try:
        from tree_sitter import Language, Parser

        module = importlib.import_module(spec[0])
        return Parser(Language(getattr(module, spec[1])()))
    except (ImportError, AttributeError, ValueError):
        return None


def _in_string_or_comment_tree(parser, text: str, line: int, col: int, lines: list[str]) -> bool:
    tree = parser.parse(text.encode("utf-8"))
    point = (line, len(lines[line][:col].encode("utf-8")))
    # Look at the node under the cursor and the one just before it: a line
    # comment ends where the cursor sits at the end of the line.
    before = (line, max(point[1] - 1, 0))
    for start in (tree.root_node.descendant_for_point_range(point, point),
                  tree.root_node.descendant_for_point_range(before, point)):
        node = start
        while node is not None:
            if "comment" in node.type and node.start_point < point <= node.end_point:
                return True
            if "string" in node.type and node.start_point < point < node.end_point:
                return True
            node = node.parent
    return False


def _in_string_or_comment_heuristic(before: str, language_id: str) -> bool:
    marker = "#" if language_id in ("python", "shellscript", "ruby", "yaml", "toml", "perl", "r") else "//"
    quote = None
    for i, ch in enumerate(before):
        if quote is None and before.startswith(marker, i):
            return True
        if ch in "\"'`":
            if quote is None:
                quote = ch
            elif quote == ch and (i == 0 or before[i - 1] != "\\"):
                quote = None
    return quote is not None


def choose_hole(text: str, line: int, col: int, language_id: str, *, in_comments: bool = False) -> Hole:
    """The hole at (line, col), both 0-based, col in characters of that line."""
    lines = text.split("\n")
    if not 0 <= line < len(lines) or not 0 <= col <= len(lines[line]):
        return Hole("none", col, "")
    current = lines[line]
    before, after = current[:col], current[col:]
    indent = current[: len(current) - len(current.lstrip())]

    if not in_comments:
        parser = parser_for(language_id)
        inside = (_in_string_or_comment_tree(parser, text, line, col, lines) if parser is not None
                  else _in_string_or_comment_heuristic(before, language_id))
        if inside:
            return Hole("none", col, indent)

    tail = after.strip()
    replace_end = len(current) if tail and all(c in CLOSERS or c.isspace() for c in tail) else col
    if before.strip() or (tail and replace_end == col):
        return Hole("line", replace_end, indent)
    # An empty (or all-indentation) line: a block, indented like the line or one level in from an opener.
    previous = next((lines[i] for i in range(line - 1, -1, -1) if lines[i].strip()), "")
    if previous.rstrip().endswith(BLOCK_OPENERS) and len(before) <= len(previous) - len(previous.lstrip()):
        unit = "\t" if previous.startswith("\t") else "    "
        indent = previous[: len(previous) - len(previous.lstrip())] + unit
    else:
        indent = before
    return Hole("block", replace_end, indent)
