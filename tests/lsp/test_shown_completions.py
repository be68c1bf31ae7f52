"""The completions shown a keystroke ago (coda_lsp.cache.ShownCompletions): served again, or the rest
of them once the user has typed their start, without a model call."""


from coda_lsp.cache import MAX_ENTRIES, ShownCompletions

BEFORE = "def mean(values):\n    return "
AFTER = "\n\n\nprint(mean([1, 2]))\n"


def shown(*texts: str, before: str = BEFORE, after: str = AFTER, kind: str = "line") -> ShownCompletions:
    cache = ShownCompletions()
    cache.remember(before, after, kind, list(texts))
    return cache


def test_the_same_cursor_gets_the_same_texts():
    assert shown("sum(values) / len(values)", "0").typed_ahead(BEFORE, AFTER, "line") == \
        ["sum(values) / len(values)", "0"]


def test_typed_ahead_serves_the_rest_of_the_texts_that_start_with_what_was_typed():
    cache = shown("sum(values) / len(values)", "statistics.mean(values)", "0")
    assert cache.typed_ahead(BEFORE + "s", AFTER, "line") == ["um(values) / len(values)", "tatistics.mean(values)"]
    assert cache.typed_ahead(BEFORE + "sum(", AFTER, "line") == ["values) / len(values)"]


def test_typing_something_else_is_a_miss():
    assert shown("sum(values)").typed_ahead(BEFORE + "len", AFTER, "line") is None


def test_a_completion_typed_to_its_end_has_nothing_left_to_serve():
    assert shown("0").typed_ahead(BEFORE + "0", AFTER, "line") is None


def test_nothing_shown_is_a_miss():
    assert shown().typed_ahead(BEFORE, AFTER, "line") is None
    assert ShownCompletions().typed_ahead(BEFORE, AFTER, "line") is None


def test_the_hole_kind_keeps_line_and_block_completions_apart():
    cache = shown("sum(values)", kind="line")
    assert cache.typed_ahead(BEFORE, AFTER, "block") is None
    cache.remember(BEFORE, AFTER, "block", ["sum(values)\n\n\ndef median(values):\n    ..."])
    assert cache.typed_ahead(BEFORE + "s", AFTER, "line") == ["um(values)"]
    assert cache.typed_ahead(BEFORE + "s", AFTER, "block") == ["um(values)\n\n\ndef median(values):\n    ..."]


def test_the_text_after_the_cursor_must_be_unchanged_in_its_first_500_characters():
    far = "\n" + "x = 1\n" * 100  # 601 characters
    cache = shown("0", after=far)
    assert cache.typed_ahead(BEFORE, "\n" + far, "line") is None  # changed near the cursor
    assert cache.typed_ahead(BEFORE, far + "y = 2\n", "line") == ["0"]  # changed past the 500th


def test_typed_ahead_looks_back_at_most_200_characters():
    text = "x" * 300
    cache = shown(text)
    assert cache.typed_ahead(BEFORE + text[:200], AFTER, "line") == [text[200:]]
    assert cache.typed_ahead(BEFORE + text[:201], AFTER, "line") is None


def test_only_the_last_2000_characters_before_the_cursor_are_kept():
    long_before = "# filler\n" * 500 + BEFORE  # 4,500 characters and more
    cache = shown("sum(values)", before=long_before)
    assert cache.typed_ahead(long_before + "su", AFTER, "line") == ["m(values)"]
    # what lies further back than 2,000 characters is not compared; what lies nearer is
    assert cache.typed_ahead("##" + long_before[2:], AFTER, "line") == ["sum(values)"]  # edited 4,500 back
    edited = long_before[:-1900] + "#" + long_before[-1899:]  # "# filler" -> "##filler", 1,900 back
    assert cache.typed_ahead(edited, AFTER, "line") is None


def test_the_newest_completions_shown_win():
    cache = shown("first")
    cache.remember(BEFORE, AFTER, "line", ["fab"])  # the same cursor: replaced
    assert cache.typed_ahead(BEFORE, AFTER, "line") == ["fab"]
    cache.remember(BEFORE + "f", AFTER, "line", ["fox"])  # a later cursor: "ab" would be served typed-ahead
    assert cache.typed_ahead(BEFORE + "f", AFTER, "line") == ["fox"]


def test_an_older_entry_serves_when_the_newest_one_does_not_continue():
    cache = shown("foo")
    cache.remember(BEFORE + "f", AFTER, "line", ["fab"])
    assert cache.typed_ahead(BEFORE + "fo", AFTER, "line") == ["o"]


def test_at_most_max_entries_are_kept_the_least_recently_shown_go_first():
    cache = ShownCompletions()
    cursors = [f"{BEFORE}{n} + " for n in range(MAX_ENTRIES + 1)]
    for before in cursors[:MAX_ENTRIES]:
        cache.remember(before, AFTER, "line", ["1"])
    cache.remember(cursors[0], AFTER, "line", ["1"])  # shown again: now the most recent
    cache.remember(cursors[MAX_ENTRIES], AFTER, "line", ["1"])  # one too many: the oldest goes
    assert cache.typed_ahead(cursors[0], AFTER, "line") == ["1"]
    assert cache.typed_ahead(cursors[1], AFTER, "line") is None
    assert all(cache.typed_ahead(before, AFTER, "line") == ["1"] for before in cursors[2:])


def test_a_completion_shown_at_the_start_of_a_document_is_not_served_after_other_typing():
    cache = shown("import os", before="", after="")
    assert cache.typed_ahead("x = 1\n", "", "line") is None
