"""tree-sitter grammars, and the syntax nodes masking strategy S4 masks whole (coda_train.masking).

Grammars come from per-language wheels (tree-sitter-python, ...); a language
without one has no parser, never an error. The language server chooses its
holes with the same parsers.

S4 masks the holes an editor asks for: statements, blocks, call arguments
and expressions. `node_ids_for` walks the tree top-down and picks the
largest such nodes of at most `max_tokens` tokens; each token gets the index
of the picked node it lies in, or -1.
"""

from __future__ import annotations

import bisect
import importlib
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
LANGUAGE_BY_SUFFIX = {".py": "python", ".js": "javascript", ".jsx": "javascriptreact", ".mjs": "javascript",
                      ".ts": "typescript", ".tsx": "typescriptreact", ".go": "go", ".rs": "rust"}
# Node types that make good holes (across the grammars above).
HOLE_TYPES = {"block", "statement_block", "compound_statement", "argument_list", "arguments", "call_expression",
              "call", "binary_expression", "binary_operator", "return_statement", "expression_statement",
              "assignment", "if_statement", "for_statement", "while_statement", "let_declaration",
              "lexical_declaration", "short_var_declaration", "function_definition", "function_declaration",
              "function_item", "method_definition"}


@lru_cache(maxsize=None)
def parser_for(language_id: str | None):
    """A tree-sitter parser for the language, or None when no grammar wheel is installed."""
    spec = GRAMMARS.get(language_id or "")
    if spec is None:
        return None
    try:
        from tree_sitter import Language, Parser

        module = importlib.import_module(spec[0])
        return Parser(Language(getattr(module, spec[1])()))
    except (ImportError, AttributeError, ValueError):
        return None


def node_ids_for(text: str, offsets: list[tuple[int, int]], language: str | None, max_tokens: int = 64) -> list[int]:
    """For each token (character `offsets` into text), the index of the hole node it lies in, or -1."""
    out = [-1] * len(offsets)
    parser = parser_for(language)
    if parser is None or not offsets:
        return out
    source = text.encode("utf-8")
    # token boundaries in bytes, for bisecting node byte ranges into token ranges
    char_to_byte = _char_to_byte(text)
    # a token belongs to a node when its text, leading whitespace aside, starts inside it
    starts = [char_to_byte[a + len(text[a:b]) - len(text[a:b].lstrip()) if text[a:b].strip() else a]
              for a, b in offsets]
    ends = [char_to_byte[b] for _, b in offsets]
    picked = 0
    stack = [parser.parse(source).root_node]
    while stack:
        node = stack.pop()
        first = bisect.bisect_left(starts, node.start_byte)  # first token starting inside the node
        last = bisect.bisect_right(ends, node.end_byte)  # one past the last token ending inside it
        if node.type in HOLE_TYPES and 0 < last - first <= max_tokens:
            for i in range(first, last):
                out[i] = picked
            picked += 1
            continue
        stack.extend(reversed(node.children))
    return out


def _char_to_byte(text: str) -> list[int]:
    table, byte = [0] * (len(text) + 1), 0
    for i, ch in enumerate(text):
        table[i] = byte
        byte += len(ch.encode("utf-8"))
    table[len(text)] = byte
    return table
