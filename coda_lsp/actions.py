"""What the code actions work on, found in the document's text.

    empty_function_at   the body "Implement function body" writes
    placeholders_in     the holes "Fill all holes" fills, scope_at the range it looks in
    instruction_above   the comment a "Rewrite selection with instruction" reads when given none

A placeholder is code that stands where code should be. Its kinds are defined once,
below, and both actions use them, on a syntax tree or (a language without a grammar)
line by line:

    `pass`, `...`, `todo!()`, `unimplemented!()`   a placeholder statement: the fill replaces it
    TODO or FIXME comment                          says what to write: it stays, the fill goes after it
    `;` (an empty statement), an empty comment      leave a function body empty as well
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from .text import byte_offset, byte_point, char_offset, indentation
from .trees import COMMENT_OPENERS, LINE_COMMENT_MARKERS, enclosing, is_comment, node_at, node_text, parse

# Function nodes, across the grammars; each has its body in the field "body".
FUNCTION_TYPES = {"function_definition", "function_declaration", "method_definition", "method_declaration",
                  "function_item", "arrow_function", "function_expression", "generator_function_declaration"}
SCOPE_TYPES = FUNCTION_TYPES | {"class_definition", "class_declaration", "impl_item", "struct_item"}


# -- The placeholder kinds ----------------------------------------------------------

PLACEHOLDER_STATEMENTS = {"pass", "...", "todo!()", "unimplemented!()"}
# What a placeholder statement parses as: `...` is an expression statement, and a macro that
# ends a Rust block without its `;` is a bare macro invocation.
_STATEMENT_NODES = {"pass_statement", "expression_statement", "macro_invocation"}
_EMPTY_STATEMENT = "empty_statement"
# A word that starts with todo or fixme, in any case: `# TODO: sort`, `// fixme`, `# TODOs`.
_TODO = re.compile(r"\b(?:todo|fixme)", re.IGNORECASE)
# A comment made of nothing but these says nothing: `#`, `//`, `/* */`.
_COMMENT_MARKS = "".join(sorted(set("".join(COMMENT_OPENERS)))) + string.whitespace


def is_placeholder_statement(code: str) -> bool:
    """`pass`, `...`, `todo!()` or `unimplemented!()`, with or without its `;`."""
    return code.strip().rstrip(";") in PLACEHOLDER_STATEMENTS


def is_todo_comment(comment: str) -> bool:
    return _TODO.search(comment) is not None


def is_empty_comment(comment: str) -> bool:
    return not comment.strip(_COMMENT_MARKS)


def _placeholder_statement_node(node, source: bytes) -> bool:
    return node.type in _STATEMENT_NODES and is_placeholder_statement(node_text(node, source))


def _todo_comment_node(node, source: bytes) -> bool:
    return is_comment(node) and is_todo_comment(node_text(node, source))


def _leaves_body_empty(node, source: bytes) -> bool:
    """Whether `node`, a statement of a function body, is one of the placeholder kinds."""
    if is_comment(node):
        comment = node_text(node, source)
        return is_todo_comment(comment) or is_empty_comment(comment)
    return node.type == _EMPTY_STATEMENT or _placeholder_statement_node(node, source)


# -- Implement function body -------------------------------------------------------

def _is_docstring(node) -> bool:
    return node.type == "expression_statement" and bool(node.named_children) \
        and node.named_children[0].type == "string"


def empty_function_at(text: str, line: int, col: int, language_id: str) -> tuple[int, int, str] | None:
    """The placeholder body of the function around the cursor, as (start, end, indent).

    A body is a placeholder when, after an optional docstring, it holds only
    placeholders (see the module's docstring) or nothing. start/end are
    character offsets of what to replace; indent is the body's indentation.
    """
    lines = text.split("\n")
    if not 0 <= line < len(lines):
        return None
    source = text.encode("utf-8")
    tree = parse(source, language_id)
    if tree is None:
        return None
    if not lines[line][:col].strip():  # in the indentation (column 0 of a `V` selection): the line's code
        col = len(indentation(lines[line]))
    function = enclosing(node_at(tree, byte_point(lines[line], line, col)), FUNCTION_TYPES)
    body = function.child_by_field_name("body") if function is not None else None
    if body is None:
        return None
    children = body.named_children
    docstring = children[0] if children and _is_docstring(children[0]) else None
    if docstring is not None:
        children = children[1:]
    if not all(_leaves_body_empty(child, source) for child in children):
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
        indent = "\n" + indentation(lines[docstring.start_point[0]])
    else:  # `{}`: an empty block
        start = end = char_offset(source, body.start_byte) + 1
        indent = indentation(lines[function.start_point[0]]) + "    "
    return start, end, indent


# -- Fill all holes ----------------------------------------------------------------

@dataclass(frozen=True)
class Placeholder:
    start: int  # character offsets in the text of what the fill replaces (start == end: an insertion)
    end: int
    kind: str  # "block": whole lines, the fill starts at column 0; "line": inside a line
    indent: str  # the block's indentation


def scope_at(text: str, line: int, col: int, language_id: str) -> tuple[int, int]:
    """Character range of the innermost function or class around the cursor; the whole text if none."""
    lines = text.split("\n")
    source = text.encode("utf-8")
    tree = parse(source, language_id) if 0 <= line < len(lines) else None
    if tree is None:
        return 0, len(text)
    node = enclosing(node_at(tree, byte_point(lines[line], line, col)), SCOPE_TYPES)
    if node is None:
        return 0, len(text)
    return char_offset(source, node.start_byte), char_offset(source, node.end_byte)


def placeholders_in(text: str, start: int, end: int, language_id: str) -> list[Placeholder]:
    """The holes to fill in text[start:end], in document order.

    A placeholder statement is replaced: its whole line when it stands alone
    there, else just itself. A TODO/FIXME comment stays (it says what to
    write): when nothing but comments or a placeholder statement follows it in
    its block, the hole is a new line after it. Languages without a grammar
    use the same rules line by line.
    """
    tree = parse(text, language_id)
    found = _placeholders_tree(text, tree, start, end) if tree is not None else _placeholders_lines(text, start, end)
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


def _placeholders_tree(text: str, tree, start: int, end: int) -> list[Placeholder]:
    source = text.encode("utf-8")
    lo, hi = byte_offset(text, start), byte_offset(text, end)
    out = []

    def visit(node) -> None:
        if node.end_byte <= lo or node.start_byte >= hi:
            return
        inside = lo <= node.start_byte and node.end_byte <= hi
        if inside and _placeholder_statement_node(node, source):
            out.append(_whole_line_hole(text, char_offset(source, node.start_byte), char_offset(source, node.end_byte)))
            return
        if inside and _todo_comment_node(node, source):
            later = node.next_named_sibling
            while later is not None and is_comment(later):
                later = later.next_named_sibling
            # By its text, not its type: tree-sitter-python puts a comment above a body's first statement
            # beside the body, so what follows the comment is the whole `block` holding `pass`.
            if later is None or is_placeholder_statement(node_text(later, source)):
                comment_start = char_offset(source, node.start_byte)
                indent = text[_line_bounds(text, comment_start)[0]:comment_start]
                if not indent.strip():  # a comment on a line of its own
                    out.append(_after_line(text, char_offset(source, node.end_byte), indent))
            return
        for child in node.children:
            visit(child)

    visit(tree.root_node)
    return out


def _placeholders_lines(text: str, start: int, end: int) -> list[Placeholder]:
    """The tree's rules without a tree: a TODO comment's block ends where the indentation does, and a
    comment is a line that starts with any language's marker (the language may be one trees.py does not know)."""
    out, offset = [], 0
    lines = text.split("\n")
    for i, line in enumerate(lines):
        line_start, offset = offset, offset + len(line) + 1
        if line_start < start or line_start + len(line) > end:
            continue
        if is_placeholder_statement(line):
            out.append(Placeholder(line_start, line_start + len(line), "block", indentation(line)))
        elif line.lstrip().startswith(COMMENT_OPENERS) and is_todo_comment(line):
            following = next((later for later in lines[i + 1:] if later.strip()), "")
            indent = indentation(line)
            if len(indentation(following)) < len(indent) or not following:
                out.append(_after_line(text, line_start, indent))
    return out


# -- Rewrite selection with instruction ------------------------------------------------

def instruction_above(lines: list[str], line: int) -> str | None:
    """What the comment line right above `line` (0-based) says, or None when that line is no comment.

    `lines` are the document's lines, each with its line break (coda_lsp.text.split_lines).
    """
    if not 0 < line <= len(lines):
        return None
    above = lines[line - 1].strip()
    marker = next((marker for marker in LINE_COMMENT_MARKERS if above.startswith(marker)), None)
    if marker is None:
        return None
    return above[len(marker):].strip() or None
