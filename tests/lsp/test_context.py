"""The model's context around the cursor (coda_lsp.context.context_window): cut on line boundaries,
tokenized only near the cursor, stable while a line is typed, one budget for both sides."""

from coda_lsp.context import LINE_STEP, context_window


def test_context_window_cuts_on_line_boundaries(bundled_tokenizer):
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

    before = "".join(f"line_{i} = {i}\n" for i in range(400))
    typed = "    total = sum(values) / len(values)"
    windows = [context_window(bundled_tokenizer, before + typed[:n], "\n", 120, 50)[0] for n in range(len(typed))]
    kept = len(bundled_tokenizer.encode(before[len(before) - len(bundled_tokenizer.decode(windows[0])):]))
    assert kept > 80
    starts = {tuple(w[:kept]) for w in windows}
    assert len(starts) <= 2, "the prefix's start moved more than once while one short line was typed"


def test_context_window_shares_the_total_budget(bundled_tokenizer):
    before = "".join(f"a_{i} = {i}\n" for i in range(300))
    after = "".join(f"b_{i} = {i}\n" for i in range(300))
    prefix, suffix = context_window(bundled_tokenizer, before, after, 1000, 1000, total=200)
    assert len(prefix) + len(suffix) <= 200 and len(suffix) >= 90 and len(prefix) >= 70
    short_prefix, long_suffix = context_window(bundled_tokenizer, "x = ", after, 1000, 1000, total=200)
    assert len(long_suffix) > 150  # a short prefix leaves its share to the suffix


def test_context_window_tokenizes_only_the_cursor_line_again_while_typing(bundled_tokenizer):
    """Typing on a line leaves the lines before it and the text after the cursor as they were: those
    are not tokenized again, and the ids are the ones a tokenizer seeing them first gives."""
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
