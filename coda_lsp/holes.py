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

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

from coda_core.syntax import parser_for

from .text import byte_offset, byte_point, char_offset, indentation

CLOSERS = set(")]}>\"'`;,")
BLOCK_OPENERS = (":", "{", "(", "[", "=>")


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


@dataclass(frozen=True)
class Hole:
    kind: str  # "line", "block" or "none"
    replace_end: int  # character column where the replaced range ends (== cursor column unless closers follow)
    indent: str  # the indentation a block completion starts at


def _in_string_or_comment_tree(text: str, line: int, col: int, lines: list[str], language_id: str) -> bool:
    tree = parse(text, language_id)
    point = byte_point(lines[line], line, col)
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
    indent = indentation(current)

    if not in_comments:
        parser = parser_for(language_id)
        inside = (_in_string_or_comment_tree(text, line, col, lines, language_id) if parser is not None
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


# Function nodes and their body field, per grammar.
FUNCTION_TYPES = {"function_definition", "function_declaration", "method_definition", "method_declaration",
                  "function_item", "arrow_function", "function_expression", "generator_function_declaration"}
PLACEHOLDER_TYPES = {"pass_statement", "comment", "line_comment", "block_comment", "empty_statement"}


def _node_text(node, source: bytes) -> str:
    return source[node.start_byte:node.end_byte].decode("utf-8", "replace")


def _is_placeholder(node, source: bytes) -> bool:
    text = _node_text(node, source)
    if node.type in ("comment", "line_comment", "block_comment"):
        return "todo" in text.lower() or "fixme" in text.lower() or not text.strip("/#* \n")
    if node.type in PLACEHOLDER_TYPES:
        return True
    # `...` (Python's ellipsis) or a `todo!()`/`unimplemented!()` macro
    return text.strip().rstrip(";") in ("...", "todo!()", "unimplemented!()")


def empty_function_at(text: str, line: int, col: int, language_id: str) -> tuple[int, int, str] | None:
    """The placeholder body of the function around the cursor, as (start, end, indent).

    A body is a placeholder when, after an optional docstring, it holds only
    `pass`, `...`, TODO comments or nothing. start/end are character offsets
    of what to replace; indent is the body's indentation.
    """
    parser = parser_for(language_id)
    lines = text.split("\n")
    if parser is None or not 0 <= line < len(lines):
        return None
    source = text.encode("utf-8")
    tree = parse(source, language_id)
    if not lines[line][:col].strip():  # in the indentation (column 0 of a `V` selection): the line's code
        col = len(indentation(lines[line]))
    point = byte_point(lines[line], line, col)
    node = tree.root_node.descendant_for_point_range(point, point)
    while node is not None and node.type not in FUNCTION_TYPES:
        node = node.parent
    body = node.child_by_field_name("body") if node is not None else None
    if body is None:
        return None
    children = [c for c in body.named_children]
    if children and children[0].type == "expression_statement" and children[0].named_children \
            and children[0].named_children[0].type == "string":
        docstring, children = children[0], children[1:]
    else:
        docstring = None
    if not all(_is_placeholder(c, source) for c in children):
        return None

    if children:
        start, end = char_offset(source, children[0].start_byte), char_offset(source, children[-1].end_byte)
        row = children[0].start_point[0]
        indent = indentation(lines[row])
        if lines[row][: children[0].start_point[1]].strip():
            # `def f(): pass` on one line: replace only the placeholder, the body starts on a new line
            indent = "\n" + indent + "    "
        else:
            start -= len(indent)  # replace whole lines, indentation included
    elif docstring is not None:
        start = end = char_offset(source, docstring.end_byte)
        row = docstring.start_point[0]
        indent = "\n" + indentation(lines[row])
    else:  # `{}`: an empty block
        start = end = char_offset(source, body.start_byte) + 1
        row = node.start_point[0]
        indent = indentation(lines[row]) + "    "
    return start, end, indent


# -- "Fill all holes": every placeholder in a range ----------------------------

PLACEHOLDER_STATEMENTS = {"...", "pass", "todo!()", "unimplemented!()"}
SCOPE_TYPES = FUNCTION_TYPES | {"class_definition", "class_declaration", "impl_item", "struct_item"}
_PLACEHOLDER_LINE = re.compile(r"^(\s*)(pass|\.\.\.|todo!\(\);?|unimplemented!\(\);?)\s*$")
_TODO = re.compile(r"\b(TODO|FIXME)\b")


@dataclass(frozen=True)
class Placeholder:
    start: int  # character offsets in the text of what the fill replaces (start == end: an insertion)
    end: int
    kind: str  # "block": whole lines, the fill starts at column 0; "line": inside a line
    indent: str  # the block's indentation


def scope_at(text: str, line: int, col: int, language_id: str) -> tuple[int, int]:
    """Character range of the innermost function or class around the cursor; the whole text if none."""
    parser = parser_for(language_id)
    lines = text.split("\n")
    if parser is None or not 0 <= line < len(lines):
        return 0, len(text)
    source = text.encode("utf-8")
    point = byte_point(lines[line], line, col)
    node = parse(source, language_id).root_node.descendant_for_point_range(point, point)
    while node is not None and node.type not in SCOPE_TYPES:
        node = node.parent
    if node is None:
        return 0, len(text)
    return char_offset(source, node.start_byte), char_offset(source, node.end_byte)



def placeholders_in(text: str, start: int, end: int, language_id: str) -> list[Placeholder]:
    """The holes to fill in text[start:end], in document order.

    A placeholder statement (`pass`, `...`, `todo!()`, `unimplemented!()`) is
    replaced: its whole line when it stands alone there, else just itself. A
    TODO/FIXME comment stays (it says what to write): when nothing but
    comments follows it in its block, the hole is a new line after it.
    Languages without a grammar use the same rules line by line.
    """
    parser = parser_for(language_id)
    found = (_placeholders_tree(text, start, end, language_id) if parser is not None
             else _placeholders_lines(text, start, end))
    merged: list[Placeholder] = []
    for hole in found:  # a TODO line right above a `pass` line is one hole, not two
        if merged and merged[-1].kind == hole.kind == "block" and merged[-1].end >= hole.start:
            hole = Placeholder(merged.pop().start, hole.end, "block", hole.indent)
        merged.append(hole)
    return merged


def _line_bounds(text: str, offset: int) -> tuple[int, int]:
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    return line_start, len(text) if line_end < 0 else line_end


def _whole_line_hole(text: str, start: int, end: int) -> Placeholder:
    """text[start:end] replaced: its whole line when it stands alone there."""
    line_start, line_end = _line_bounds(text, start)
    indent = text[line_start:start]
    if not indent.strip() and not text[end:line_end].strip():
        return Placeholder(line_start, line_end, "block", indent)
    return Placeholder(start, end, "line", "")


def _after_line(text: str, offset: int, indent: str) -> Placeholder:
    """An insertion on a new line after the line holding `offset`."""
    _, line_end = _line_bounds(text, offset)
    at = min(line_end + 1, len(text))
    return Placeholder(at, at, "block", indent)


def _placeholders_tree(text: str, start: int, end: int, language_id: str) -> list[Placeholder]:
    source = text.encode("utf-8")
    lo, hi = byte_offset(text, start), byte_offset(text, end)
    out = []

    def body_of(node) -> str:
        return _node_text(node, source).strip().rstrip(";")

    def visit(node) -> None:
        if node.end_byte <= lo or node.start_byte >= hi:
            return
        body = body_of(node)
        inside = lo <= node.start_byte and node.end_byte <= hi
        if inside and node.type in ("pass_statement", "expression_statement", "macro_invocation") \
                and body in PLACEHOLDER_STATEMENTS:
            out.append(_whole_line_hole(text, char_offset(source, node.start_byte), char_offset(source, node.end_byte)))
            return
        if inside and "comment" in node.type and _TODO.search(body):
            later = node.next_named_sibling
            while later is not None and "comment" in later.type:
                later = later.next_named_sibling
            if later is None or body_of(later) in PLACEHOLDER_STATEMENTS:
                line_start = text.rfind("\n", 0, char_offset(source, node.start_byte)) + 1
                indent = text[line_start:char_offset(source, node.start_byte)]
                if not indent.strip():
                    out.append(_after_line(text, char_offset(source, node.end_byte), indent))
            return
        for child in node.children:
            visit(child)

    visit(parse(source, language_id).root_node)
    return out


def _placeholders_lines(text: str, start: int, end: int) -> list[Placeholder]:
    out, offset = [], 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        line_start, offset = offset, offset + len(line) + 1
        if line_start < start or line_start + len(line) > end:
            continue
        if match := _PLACEHOLDER_LINE.match(line):
            out.append(Placeholder(line_start, line_start + len(line), "block", match.group(1)))
        elif _TODO.search(line) and line.lstrip().startswith(("#", "//", "--", ";", "/*")):
            following = next((l for l in lines[i + 1:] if l.strip()), "")
            indent = indentation(line)
            if len(indentation(following)) < len(indent) or not following:
                out.append(_after_line(text, line_start, indent))
    return out
