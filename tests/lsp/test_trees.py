"""Syntax trees (coda_lsp.trees): the grammars found, the comment markers, incremental parses."""

import random

from coda_lsp.trees import COMMENT_OPENERS, LINE_COMMENT_MARKERS, line_comment_markers, parse, parser_for


def test_grammars_are_installed_for_the_main_languages():
    for language in ("python", "javascript", "typescript", "typescriptreact", "go", "rust"):
        assert parser_for(language) is not None, language
    assert parser_for("cobol") is None


def test_comment_markers_by_language():
    assert line_comment_markers("python") == ("#",) and line_comment_markers("lua") == ("--",)
    assert line_comment_markers("cobol") == ("//",)  # a language the table does not name
    assert set(LINE_COMMENT_MARKERS) < set(COMMENT_OPENERS) and "/*" in COMMENT_OPENERS


def test_incremental_parses_equal_fresh_parses():
    parser = parser_for("python")
    rnd = random.Random(7)
    text = "".join(f"def f{i}(x):\n    '''doc {i}'''\n    return x + {i}\n\n" for i in range(60))
    pieces = ["x", " ", "\n", "(", ")", ":", "'''", "#", "é", "𝔘", "    return 1\n", "def g(", ""]
    for _ in range(300):
        a = rnd.randrange(len(text) + 1)
        b = min(len(text), a + rnd.choice([0, 0, 1, 3, 20]))
        text = text[:a] + rnd.choice(pieces) + text[b:]
        assert str(parse(text, "python").root_node) == str(parser.parse(text.encode("utf-8")).root_node)

