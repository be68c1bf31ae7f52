"""The code actions' targets (coda_lsp.actions): empty function bodies, placeholders, scopes, instructions."""

import pytest

from coda_lsp.actions import (PLACEHOLDER_STATEMENTS, empty_function_at, instruction_above, is_empty_comment,
                              is_placeholder_statement, is_todo_comment, placeholders_in, scope_at)
from coda_lsp.text import split_lines
from coda_lsp.trees import COMMENT_OPENERS, LINE_COMMENT_MARKERS


@pytest.mark.parametrize("language, source, line, col, replaced", [
    ("python", 'def f(x):\n    """Doc."""\n    pass\n', 0, 4, "    pass"),
    ("python", "def f(x):\n    ...\n", 1, 5, "    ..."),
    ("python", "def f(x):\n    return x\n", 0, 2, None),
    ("javascript", "function f(a) {\n  // TODO\n}\n", 0, 3, "  // TODO"),
    ("rust", "fn f() -> i32 {\n    todo!()\n}\n", 1, 4, "    todo!()"),
    ("go", "func f() int {\n}\n", 0, 3, ""),
    ("python", "x = 1\n", 0, 0, None),
])
def test_empty_function_bodies(language, source, line, col, replaced):
    found = empty_function_at(source, line, col, language)
    if replaced is None:
        assert found is None
    else:
        start, end, _ = found
        assert source[start:end] == replaced


def test_one_line_function_keeps_its_signature():
    source = "class A:\n    def f(self): pass\n"
    start, end, indent = empty_function_at(source, 1, 9, "python")
    assert source[start:end] == "pass" and indent == "\n        "


def test_implement_is_found_from_column_zero_of_an_indented_def():
    source = "class Shape:\n    def area(self):\n        pass\n"
    found = empty_function_at(source, 1, 0, "python")
    assert found is not None and source[found[0]:found[1]] == "        pass"


def holes(source: str, language: str) -> str:
    """The source with each placeholder_in hole written as <kind>."""
    found = placeholders_in(source, 0, len(source), language)
    for hole in reversed(found):
        source = source[:hole.start] + f"<{hole.kind}>" + source[hole.end:]
    return source


PLACEHOLDERS = [
    ("python", "def f(x):\n    # TODO: double it\n    pass\n\n\ndef g(y):\n    ...\n",
     "def f(x):\n    # TODO: double it\n<block>\n\n\ndef g(y):\n<block>\n"),
    ("python", "class A:\n    def m(self): pass\n    def n(self):\n        # TODO sort\n",
     "class A:\n    def m(self): <line>\n    def n(self):\n        # TODO sort\n<block>"),
    # a TODO note above real code is not a hole; neither is `pass` inside a string
    ("python", "def f():\n    # TODO: faster\n    return 1\n\ns = 'pass'\n",
     "def f():\n    # TODO: faster\n    return 1\n\ns = 'pass'\n"),
    ("javascript", "function f(a) {\n  // TODO: add\n}\nconst x = 1; // TODO later\n",
     "function f(a) {\n  // TODO: add\n<block>}\nconst x = 1; // TODO later\n"),
    ("rust", "fn main() {\n    todo!()\n}\nfn g() -> i32 { unimplemented!() }\n",
     "fn main() {\n<block>\n}\nfn g() -> i32 { <line> }\n"),
    ("go", "func f() int {\n\t// TODO\n}\n", "func f() int {\n\t// TODO\n<block>}\n"),
    # no grammar: the same rules, line by line
    ("lua", "local function f()\n  -- TODO: body\nend\n", "local function f()\n  -- TODO: body\n<block>end\n"),
]


@pytest.mark.parametrize("language, source, expected", PLACEHOLDERS)
def test_placeholders(language, source, expected):
    assert holes(source, language) == expected


def test_placeholders_only_inside_the_range_and_scope():
    source = "def f():\n    pass\n\n\ndef g():\n    pass\n"
    second = source.index("def g")
    assert [h.start for h in placeholders_in(source, second, len(source), "python")] == [source.rindex("    pass")]
    assert scope_at(source, 4, 5, "python") == (second, len(source) - 1)
    assert scope_at("x = 1\n", 0, 0, "python") == (0, 6)  # no function: the whole text


# -- Each placeholder kind, recognised alike by both actions -----------------------------

@pytest.mark.parametrize("code", sorted(PLACEHOLDER_STATEMENTS))
def test_placeholder_statements_with_or_without_their_semicolon(code):
    for written in (code, f"  {code};  ", f"{code}\r"):
        assert is_placeholder_statement(written), written
    for other in (f"x = {code}", f"{code}ed", f"{code}()", ""):
        assert not is_placeholder_statement(other), other


def test_todo_and_empty_comments():
    for todo in ("# TODO: sort", "// FIXME", "-- todo", "; fixme later", "# TODOs", "/* TODO */"):
        assert is_todo_comment(todo), todo
    for note in ("# see mastodon", "// autodoc", "# to do", "# done"):
        assert not is_todo_comment(note), note
    for empty in ("#", "//", "// ", "/* */", "/**/", "--", ";", "#\r"):
        assert is_empty_comment(empty), empty
    assert not is_empty_comment("# x") and not is_empty_comment("// TODO")


# (kind, language, a function whose body is only that placeholder, the fill-all-holes holes in it)
KINDS = [
    ("pass", "python", "def f():\n    pass\n", "def f():\n<block>\n"),
    ("...", "python", "def f():\n    ...\n", "def f():\n<block>\n"),
    ("todo!()", "rust", "fn f() {\n    todo!()\n}\n", "fn f() {\n<block>\n}\n"),
    ("unimplemented!();", "rust", "fn f() {\n    unimplemented!();\n}\n", "fn f() {\n<block>\n}\n"),
    ("TODO comment", "go", "func f() {\n\t// TODO: add\n}\n", "func f() {\n\t// TODO: add\n<block>}\n"),
    ("FIXME comment", "javascript", "function f() {\n  // FIXME\n}\n", "function f() {\n  // FIXME\n<block>}\n"),
    # these leave a body empty, but say nothing of what goes where: no hole to fill
    ("empty statement", "javascript", "function f() {\n  ;\n}\n", "function f() {\n  ;\n}\n"),
    ("empty comment", "rust", "fn f() {\n    //\n}\n", "fn f() {\n    //\n}\n"),
]


@pytest.mark.parametrize("kind, language, source, filled", KINDS, ids=[kind for kind, *_ in KINDS])
def test_each_placeholder_kind_is_an_empty_body_and_a_hole(kind, language, source, filled):
    found = empty_function_at(source, 0, 3, language)
    assert found is not None, f"{kind} leaves the body empty"
    start, end, _ = found
    assert source[start:end].strip() == source.split("\n")[1].strip()
    assert holes(source, language) == filled


@pytest.mark.parametrize("code", sorted(PLACEHOLDER_STATEMENTS))
def test_without_a_grammar_placeholder_statements_are_holes_line_by_line(code):
    assert holes(f"function f()\n  {code}\nend\n", "lua") == "function f()\n<block>\nend\n"


@pytest.mark.parametrize("marker", COMMENT_OPENERS)
def test_without_a_grammar_a_todo_comment_in_any_language_is_a_hole_after_it(marker):
    source = f"f() {{\n  {marker} TODO: body\n}}\n"
    assert holes(source, "plaintext") == source.replace("body\n", "body\n<block>")


# -- Rewrite with instruction: the comment above the selection ----------------------

@pytest.mark.parametrize("marker", LINE_COMMENT_MARKERS)
def test_instruction_above_with_each_line_comment_marker(marker):
    lines = split_lines(f"{marker} use a set\r\n    seen = []\r\n")
    assert instruction_above(lines, 1) == "use a set"
    assert instruction_above(split_lines(f"    {marker}use a set\n"), 1) == "use a set"  # indented, no space
    assert instruction_above(split_lines(f"{marker}\nx = 1\n"), 1) is None  # an empty comment says nothing


def test_instruction_above_only_from_a_comment_line_right_above():
    assert {"#", "//", "--", ";"} <= set(LINE_COMMENT_MARKERS)
    lines = split_lines("# use a set\nx = 1\ny = 2\n")
    assert instruction_above(lines, 0) is None  # nothing above the first line
    assert instruction_above(lines, 2) is None  # code above
    assert instruction_above(lines, 9) is None  # past the end
    assert instruction_above(split_lines("/* use a set */\nx = 1\n"), 1) is None  # block comments are not read
