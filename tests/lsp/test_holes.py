"""Hole selection (golden cases, per language), the parse cache, and the engine's settings.

The filters have golden cases of their own (test_postprocess.py), the code actions' targets
tests of their own (test_actions.py).
"""

import pytest

from coda_lsp.holes import choose_hole
from coda_lsp.trees import parse, parser_for


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
    ("lua", "local x = 1 -- note |\n", "none", 0, ""),  # the language's own comment marker
    ("lua", "local x = a // |\n", "line", 0, ""),  # Lua's floor division, not a comment
    ("shellscript", "echo hi # note |\n", "none", 0, ""),
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


def test_comment_markers_by_language():
    from coda_lsp.trees import COMMENT_OPENERS, LINE_COMMENT_MARKERS, line_comment_markers

    assert line_comment_markers("python") == ("#",) and line_comment_markers("lua") == ("--",)
    assert line_comment_markers("cobol") == ("//",)  # a language the table does not name
    assert set(LINE_COMMENT_MARKERS) < set(COMMENT_OPENERS) and "/*" in COMMENT_OPENERS


def test_out_of_range_positions_are_no_hole():
    assert choose_hole("x\n", 5, 0, "python").kind == "none"
    assert choose_hole("x\n", 0, 9, "python").kind == "none"


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


def test_settings_accept_editor_spellings_and_null_resets():
    from coda_lsp.settings import Settings

    s = Settings(model="models/tiny")
    s.update({"maxNewTokens": 16, "context-before": 100, "languages": ["python"], "unknownKey": 1})
    assert (s.max_new_tokens, s.context_before, s.languages) == (16, 100, ["python"])
    s.update({"languages": None, "maxNewTokens": None, "model": None})
    assert s.languages is None and s.max_new_tokens == 64  # defaults again
    assert s.model == "models/tiny"  # null keeps the model the server was started with


def test_a_cleared_setting_goes_back_to_the_servers_own_value_not_the_editors_last(monkeypatch):
    """A user who tries another model, then clears coda.model, gets the server's model back
    (its --model, else $CODA_MODEL, else coda-mini), not the one tried last."""
    from coda_lsp.settings import Settings

    monkeypatch.delenv("CODA_MODEL", raising=False)
    s = Settings()
    s.start_with({"model": "models/tiny", "device": "cpu", "dtype": None, "quantize": None})
    s.update({"model": "models/other", "device": "cuda", "dtype": "float32"})
    s.update({"model": "", "device": None, "dtype": None})  # the settings UI's empty box is "" for a path
    assert (s.model, s.device, s.dtype) == ("models/tiny", "cpu", "auto")
    plain = Settings()
    plain.start_with({"model": None})
    plain.update({"model": "models/other"})
    plain.update({"model": None})
    assert plain.model == "coda-mini"


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


def test_context_window_tokenizes_only_the_cursor_line_again_while_typing(bundled_tokenizer):
    """Typing on a line leaves the lines before it and the text after the cursor as they were: those
    are not tokenized again, and the ids are the ones a tokenizer seeing them first gives."""
    from coda_lsp.context import context_window

    class Texts(_Recording):
        def __call__(self, text, **kwargs):
            self.texts.append(text)
            return super().__call__(text, **kwargs)

    before = "".join(f"line_{i} = compute({i})\n" for i in range(400))
    after = "\n" + "".join(f"tail_{i} = {i}\n" for i in range(400))
    typed = "    total = sum(values)"
    tok = Texts(bundled_tokenizer)
    tok.texts = []
    context_window(tok, before + typed[:-1], after, 1536, 512, total=496)
    assert any(text.startswith("\ntail_0") for text in tok.texts)  # the suffix, the first time
    tok.texts.clear()
    prefix, suffix = context_window(tok, before + typed, after, 1536, 512, total=496)
    fresh = context_window(_Recording(bundled_tokenizer), before + typed, after, 1536, 512, total=496)
    assert (prefix, suffix) == fresh
    assert bundled_tokenizer.decode(prefix).endswith(typed) and len(prefix) + len(suffix) <= 496
    # tokenized again: the cursor line, and the prefix ending with it (twice: its cut moves once the
    # suffix takes its share); not the lines before the cursor's alone, nor anything after the cursor
    assert len(tok.texts) == 3 and all(text.endswith(typed) for text in tok.texts), tok.texts
