"""coda_lsp.text: positions, offsets, and moving an edit to where its text went."""

from lsprotocol import types as T

from coda_lsp.text import offset_of, position_of, reanchor

OLD = "def f():\n    pass\n\n\ndef g():\n    pass\n"
SECOND_PASS = (OLD.rindex("    pass"), OLD.rindex("    pass") + len("    pass"))


def test_positions_and_offsets_agree_with_the_documents_lines():
    from coda_lsp.text import split_lines

    for text in ["ab\ncd", "ab\r\ncd\n", "a\x0cb\nc", "\n\n", "é😀\nx", "a\rb\u2028c\r\n"]:
        lines = split_lines(text)
        for offset in range(len(text) + 1):
            if text[offset - 1:offset + 1] == "\r\n":
                continue  # between the two characters of one line break: no position
            assert offset_of(lines, position_of(text, offset)) == offset, (text, offset)
    assert position_of("ab\ncd", 4) == T.Position(1, 1)
    assert offset_of(["ab\n", "cd"], T.Position(0, 9)) == 2  # past the line's end: its end, not the next line


def test_an_unchanged_text_keeps_its_spans():
    assert reanchor(OLD, OLD, [SECOND_PASS]) == [SECOND_PASS]


def test_spans_follow_their_text_when_lines_are_inserted_above():
    new = "import os\n" + OLD
    (start, end), = reanchor(OLD, new, [SECOND_PASS])
    assert new[start:end] == "    pass" and new[:start].endswith("def g():\n")  # the second one, not the first


def test_several_spans_move_together():
    first = (OLD.index("    pass"), OLD.index("    pass") + 8)
    new = "# header\n\n" + OLD
    assert reanchor(OLD, new, [first, SECOND_PASS]) == [(a + 10, b + 10) for a, b in (first, SECOND_PASS)]


def test_spans_whose_text_changed_or_is_ambiguous_are_not_moved():
    assert reanchor(OLD, OLD.replace("def g", "def h"), [SECOND_PASS]) is None  # its context changed
    assert reanchor(OLD, OLD.replace("    pass\n", "    return 1\n"), [SECOND_PASS]) is None  # it changed
    twice = "x = 1\n" * 9
    assert reanchor(twice, "y = 0\n" + twice, [(12, 17)]) is None  # nine identical lines: which one?
    assert reanchor("a\n\n\nb\n", "z\na\n\n\nb\n", [(2, 3)]) is None  # blank: nothing to find


def test_lines_split_as_lsp_counts_them():
    from coda_lsp.text import split_lines

    text = "a\r\nb\rc\nd\x0ce\x85f\u2028g\u2029h\x1ci\n\nj"
    assert split_lines(text) == ["a\r\n", "b\r", "c\n", "d\x0ce\x85f\u2028g\u2029h\x1ci\n", "\n", "j"]
    assert split_lines("") == [] and split_lines("x\n") == ["x\n"]
    assert position_of(text, text.index("j")) == T.Position(5, 0)
    assert position_of(text, text.index("g")) == T.Position(3, 6)
    assert offset_of(split_lines(text), T.Position(3, 99)) == text.index("i") + 1  # past the end: the line's end


def test_rows_on_newlines_only_round_trip():
    from coda_lsp.text import offset_at_row, row_col

    text = "a\rb\r\nc\u2028d\ne"
    for offset in range(len(text) + 1):
        assert offset_at_row(text, *row_col(text, offset)) == offset
    assert row_col(text, text.index("e")) == (2, 0) and row_col(text, text.index("d")) == (1, 2)


def test_client_columns_convert_as_counted_character_by_character():
    """Columns convert through encoded slices (a 5 MB line is not walked character by character);
    they must agree with counting each character's code units, a lone surrogate and a position
    inside a character included (it means the character's end)."""
    import random

    from coda_lsp.documents import chars_in, units_of

    def width(char, encoding):
        if encoding == "utf-16":
            return 2 if ord(char) > 0xFFFF else 1
        return len(char.encode("utf-8", "surrogatepass")) if encoding == "utf-8" else 1

    def counted(line, units, encoding):
        seen = 0
        for i, char in enumerate(line):
            if seen >= units:
                return i
            seen += width(char, encoding)
        return len(line)

    rng = random.Random(0)
    for _ in range(500):
        line = "".join(rng.choice(["a", "é", "😀", "\ud800", "中"]) for _ in range(rng.randint(0, 8)))
        for encoding in ("utf-16", "utf-8", "utf-32"):
            for units in range(4 * len(line) + 2):
                assert chars_in(line, units, encoding) == counted(line, units, encoding), (line, units, encoding)
            for i in range(len(line) + 1):
                assert units_of(line[:i], encoding) == sum(width(c, encoding) for c in line[:i])
