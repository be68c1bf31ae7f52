"""Hole selection (coda_lsp.holes): golden cases per language, with and without a grammar.

The filters have golden cases of their own (test_postprocess.py), the code actions' targets
tests of their own (test_actions.py), the syntax trees theirs (test_trees.py).
"""

import pytest

from coda_lsp.holes import choose_hole


def at(source: str, language: str):
    """choose_hole at the `|` in source: (kind, characters replaced after the cursor, indent)."""
    offset = source.index("|")
    hole = choose_hole(source.replace("|", "", 1), offset, language)
    return hole.kind, hole.replace_end - offset, hole.indent


GOLDEN = [
    # (language, source with cursor |, kind, replaced characters after the cursor, indent)
    ("python", "def f(x):\n    return |\n", "line", 0, "    "),
    ("python", "def f(x):\n    |\n", "block", 0, "    "),
    ("python", "def f(x):\n|\n", "block", 0, "    "),
    ("python", "if x:\n    y = 1\n    |\n", "block", 0, "    "),
    ("python", "x = foo(|)\n", "line", 1, ""),
    ("python", "x = [1, |]\n", "line", 1, ""),
    ("python", "x = foo(|a)\n", "line", 0, ""),
    ("python", "s = \"abc|def\"\n", "none", 0, ""),
    ("python", "x = 1  # note |\n", "none", 0, ""),
    ("python", "s = \"abc\"|\n", "line", 0, ""),
    ("javascript", "function f(a) {\n  |\n}\n", "block", 0, "  "),
    ("javascript", "const s = `tem|plate`;\n", "none", 0, ""),
    ("javascript", "call(|);\n", "line", 2, ""),
    ("typescript", "let x: number = |;\n", "line", 1, ""),
    ("go", "func f() int {\n\treturn |\n}\n", "line", 0, "\t"),
    ("go", "// comment |\n", "none", 0, ""),
    ("rust", "fn main() {\n    let s = \"x|\";\n}\n", "none", 0, "    "),
    ("rust", "fn main() {\n    |\n}\n", "block", 0, "    "),
    # no grammar: heuristics, never an error
    ("lua", "local x = |\n", "line", 0, ""),
    ("lua", "-- note\nlocal s = \"a|b\"\n", "none", 0, ""),
    ("lua", "local x = 1 -- note |\n", "none", 0, ""),  # the language's own comment marker
    ("lua", "local x = a // |\n", "line", 0, ""),  # Lua's floor division, not a comment
    ("shellscript", "echo hi # note |\n", "none", 0, ""),
    ("plaintext", "|", "block", 0, ""),
    # the line found around the cursor: CRLF lines, blank lines above, the text's first and last line
    ("python", "def f(x):\r\n    |\r\n", "block", 0, "    "),
    ("python", "if x:\n\n   \n|", "block", 0, "    "),
    ("python", "|x = 1\n", "line", 0, ""),
    ("python", "x = foo(|)", "line", 1, ""),
    # tree-sitter's column counts UTF-8 bytes: in characters the cursor would be inside the string
    ("python", "s = \"éééé\" + |\n", "line", 0, ""),
]


@pytest.mark.parametrize("language, source, kind, replaced, indent", GOLDEN)
def test_hole_selection(language, source, kind, replaced, indent):
    got_kind, got_replaced, got_indent = at(source, language)
    assert got_kind == kind
    if kind != "none":
        assert got_replaced == replaced
        assert got_indent == indent


def test_out_of_range_offsets_are_no_hole():
    assert choose_hole("x\n", 5, "python").kind == "none"
    assert choose_hole("x\n", -1, "python").kind == "none"
    assert choose_hole("x\n", 2, "python").kind == "block"  # the empty line after the last line break
