"""Hole selection and post-processing (golden cases, per language)."""

import pytest

from coda_lsp.holes import choose_hole, parser_for, placeholders_in, scope_at
from coda_lsp.postprocess import clean, drop_repeated_suffix, first_line, within_block


def at(source: str, language: str):
    """choose_hole at the `|` in source."""
    lines = source.split("\n")
    line = next(i for i, l in enumerate(lines) if "|" in l)
    col = lines[line].index("|")
    text = source.replace("|", "", 1)
    hole = choose_hole(text, line, col, language)
    return hole.kind, hole.replace_end - col, hole.indent


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
    ("plaintext", "|", "block", 0, ""),
]


@pytest.mark.parametrize("language, source, kind, replaced, indent", GOLDEN)
def test_hole_selection(language, source, kind, replaced, indent):
    got_kind, got_replaced, got_indent = at(source, language)
    assert got_kind == kind
    if kind != "none":
        assert got_replaced == replaced
        assert got_indent == indent


def test_grammars_are_installed_for_the_main_languages():
    for language in ("python", "javascript", "typescript", "typescriptreact", "go", "rust"):
        assert parser_for(language) is not None, language
    assert parser_for("cobol") is None


def test_out_of_range_positions_are_no_hole():
    assert choose_hole("x\n", 5, 0, "python").kind == "none"
    assert choose_hole("x\n", 0, 9, "python").kind == "none"


def test_filters():
    assert first_line("a + b\nmore") == "a + b"
    assert within_block("x = 1\n    y = 2\nz = 3\n", "    ") == "x = 1\n    y = 2"
    assert within_block("x = 1\n\n    y = 2\n", "    ") == "x = 1\n\n    y = 2\n"
    assert drop_repeated_suffix("a, b)", ")") == "a, b"
    assert clean("a + b   \nmore", "line", "", "", False) == "a + b"
    assert clean("   \n", "line", "", "", False) == ""
    assert clean("x)", "line", "", ")", True) == "x)"
    assert clean("x)", "line", "", ")", False) == "x"


def test_context_window_cuts_on_line_boundaries(bundled_tokenizer):
    from coda_lsp.context import context_window

    before = "".join(f"line_{i} = {i}\n" for i in range(400)) + "x = "
    after = "\n" + "".join(f"tail_{i} = {i}\n" for i in range(400))
    prefix, suffix = context_window(bundled_tokenizer, before, after, 100, 50)
    assert len(prefix) <= 100 and len(suffix) <= 50
    head = bundled_tokenizer.decode(prefix)
    tail = bundled_tokenizer.decode(suffix)
    assert head.endswith("x = ") and head.startswith("line_") and before.endswith(head)
    assert after.startswith(tail) and tail.endswith("\n")
    small = context_window(bundled_tokenizer, "a = 1\nb = ", "\nc = 3\n", 100, 100)
    assert bundled_tokenizer.decode(small[0]) == "a = 1\nb = "


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
    from coda_lsp.holes import empty_function_at

    found = empty_function_at(source, line, col, language)
    if replaced is None:
        assert found is None
    else:
        start, end, _ = found
        assert source[start:end] == replaced


def test_one_line_function_keeps_its_signature():
    from coda_lsp.holes import empty_function_at

    source = "class A:\n    def f(self): pass\n"
    start, end, indent = empty_function_at(source, 1, 9, "python")
    assert source[start:end] == "pass" and indent == "\n        "


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


def test_settings_accept_editor_spellings_and_null_resets():
    from coda_lsp.settings import Settings

    s = Settings(model="models/tiny")
    s.update({"maxNewTokens": 16, "context-before": 100, "languages": ["python"], "unknownKey": 1})
    assert (s.max_new_tokens, s.context_before, s.languages) == (16, 100, ["python"])
    s.update({"languages": None, "maxNewTokens": None, "model": None})
    assert s.languages is None and s.max_new_tokens == 64  # defaults again
    assert s.model == "models/tiny"  # null keeps the model the server was started with


def test_settings_default_model_is_coda_model_else_coda_mini(monkeypatch):
    from coda_lsp.settings import Settings

    monkeypatch.delenv("CODA_MODEL", raising=False)
    assert Settings().model == "coda-mini"  # an editor that names no model gets the bundled one
    monkeypatch.setenv("CODA_MODEL", "models/tiny")
    s = Settings()
    assert s.model == "models/tiny"
    s.update({"model": ""})
    s.update({"model": None})
    assert s.model == "models/tiny"  # empty and null keep it
    s.update({"model": "models/other"})
    assert s.model == "models/other"


class _Recording:
    """The real tokenizer, noting the length of every text it is given."""

    def __init__(self, tokenizer):
        self.tokenizer, self.lengths = tokenizer, []

    def __call__(self, text, **kwargs):
        self.lengths.append(len(text))
        return self.tokenizer(text, **kwargs)

    def encode(self, text, **kwargs):
        self.lengths.append(len(text))
        return self.tokenizer.encode(text, **kwargs)


def test_context_window_tokenizes_only_near_the_cursor(bundled_tokenizer):
    from coda_lsp.context import LINE_STEP, context_window

    lines = [f"value_{i} = compute({i}, scale={i % 7})" for i in range(30000)]  # about 1 MB each side
    before, after = "\n".join(lines) + "\nresult = ", "\n" + "\n".join(lines)
    tok = _Recording(bundled_tokenizer)
    prefix, suffix = context_window(tok, before, after, 300, 200)
    assert max(tok.lengths) < 20_000, "the whole file was tokenized"
    head, tail = bundled_tokenizer.decode(prefix), bundled_tokenizer.decode(suffix)
    assert before.endswith(head) and head.startswith("value_") and len(prefix) <= 300
    assert after.startswith(tail) and tail.endswith("\n") and len(suffix) <= 200
    # as long as the budget allows: one more line before would not fit next to the cursor line's room
    start = len(before) - len(head)
    previous = before.rfind("\n", 0, start - 1) + 1
    assert len(bundled_tokenizer.encode(before[previous:before.rfind("\n") + 1])) > 300 - 2 * LINE_STEP


def test_context_window_keeps_the_prefix_start_while_typing_a_line(bundled_tokenizer):
    """The prefix cache reuses K/V only for a prefix that starts with the same tokens as before."""
    from coda_lsp.context import context_window

    before = "".join(f"line_{i} = {i}\n" for i in range(400))
    typed = "    total = sum(values) / len(values)"
    windows = [context_window(bundled_tokenizer, before + typed[:n], "\n", 120, 50)[0] for n in range(len(typed))]
    kept = len(bundled_tokenizer.encode(before[len(before) - len(bundled_tokenizer.decode(windows[0])):]))
    assert kept > 80
    starts = {tuple(w[:kept]) for w in windows}
    assert len(starts) <= 2, "the prefix's start moved more than once while one short line was typed"


def test_context_window_shares_the_total_budget(bundled_tokenizer):
    from coda_lsp.context import context_window

    before = "".join(f"a_{i} = {i}\n" for i in range(300))
    after = "".join(f"b_{i} = {i}\n" for i in range(300))
    prefix, suffix = context_window(bundled_tokenizer, before, after, 1000, 1000, total=200)
    assert len(prefix) + len(suffix) <= 200 and len(suffix) >= 90 and len(prefix) >= 70
    short_prefix, long_suffix = context_window(bundled_tokenizer, "x = ", after, 1000, 1000, total=200)
    assert len(long_suffix) > 150  # a short prefix leaves its share to the suffix


def test_incremental_parses_equal_fresh_parses():
    import random

    from coda_lsp.holes import parse

    parser = parser_for("python")
    rnd = random.Random(7)
    text = "".join(f"def f{i}(x):\n    '''doc {i}'''\n    return x + {i}\n\n" for i in range(60))
    pieces = ["x", " ", "\n", "(", ")", ":", "'''", "#", "é", "𝔘", "    return 1\n", "def g(", ""]
    for _ in range(300):
        a = rnd.randrange(len(text) + 1)
        b = min(len(text), a + rnd.choice([0, 0, 1, 3, 20]))
        text = text[:a] + rnd.choice(pieces) + text[b:]
        assert str(parse(text, "python").root_node) == str(parser.parse(text.encode("utf-8")).root_node)


def test_decode_settings_apply_without_a_model_reload():
    """threshold and blockSize do not reload the model, so each request reads them afresh."""
    from coda_lsp.engine import LINE_SUB_BLOCK, Engine
    from coda_lsp.models import ModelHost
    from coda_lsp.settings import Settings

    engine = Engine(Settings())
    key = ModelHost.key(engine.settings)
    assert engine.settings.update({"threshold": 0.5, "blockSize": 8}) == []
    assert ModelHost.key(engine.settings) == key
    line, block = engine.options("line"), engine.options("block")
    assert (line.threshold, line.block_size, line.sub_block_size) == (0.5, 8, LINE_SUB_BLOCK)
    assert (block.threshold, block.block_size, block.sub_block_size) == (0.5, 8, None)


def test_canvas_sizes_per_hole_kind():
    from coda_lsp.engine import Engine
    from coda_lsp.settings import Settings

    engine = Engine(Settings())
    assert engine.canvas_sizes("line") == [16]  # while typing: one canvas, the fastest answer
    assert engine.canvas_sizes("line", alternatives=True) == [8, 16, 32]
    assert engine.canvas_sizes("block") == [8, 16, 32, 64]
    engine.settings.update({"maxNewTokens": 256, "candidates": 1})
    assert engine.canvas_sizes("block") == [8, 16, 32, 64, 256]
    assert engine.canvas_sizes("line", alternatives=True) == [16]  # one candidate wanted: no alternatives
    engine.settings.update({"maxNewTokens": 8})
    assert engine.canvas_sizes("line") == [8] and engine.canvas_sizes("block") == [8]
