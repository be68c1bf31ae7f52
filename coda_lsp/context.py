"""The model's view of a document: prefix and suffix token ids around a hole, within budgets.

Three things make this cheap enough to run on every keystroke:

- Only text near the hole is tokenized. A window of characters is taken on
  each side (wide enough for the budget at a few characters per token) and
  widened only when it does not hold enough tokens, so a 5 MB file costs
  what a 5 kB one does.
- The prefix is cut on a line boundary chosen from the lines *before* the
  cursor's line, with room left for that line rounded up to a step of
  tokens. Typing on a line therefore keeps the cut where it is (it moves
  once every LINE_STEP tokens typed, and on a new line), the prefix keeps its first tokens, and the
  sampler's prefix cache can reuse their K/V from the previous keystroke
  instead of encoding them again.
- Texts tokenized a keystroke ago are not tokenized again (`_Memo`): typing on
  a line changes neither the lines before it nor the text after the cursor.

Cuts fall on line boundaries, so the model never sees half a line at an
edge; only a single line longer than the whole budget is cut mid-line.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from coda_core.budget import split_context

from .related import pack, rank

CHARS_PER_TOKEN = 8  # first guess at a window wide enough; code averages 3-4 characters per token
LINE_STEP = 16  # the prefix keeps room for the cursor's line in steps of this many tokens
MEMO_TEXTS = 16  # texts remembered per tokenizer: a keystroke's context tokenizes about 7, its snippets up to 8


class _Memo:
    """Token ids and offsets of the texts tokenized last, per tokenizer, keyed by the text itself.

    A keystroke's context tokenizes four to seven texts of up to a few kB. While the user types on
    a line, the ones that end before that line (the prefix's search for its start) and the ones
    after the cursor (the suffix) are the texts of the keystroke before, so a hit is exactly what
    the tokenizer would return. With coda-mini's tokenizer on `coda bench lsp`'s typing this took
    the context from about 5 ms a keystroke to 2 (the cursor line and the prefix ending with it are
    all that is tokenized again).
    """

    def __init__(self):
        self._lock = threading.Lock()  # the model thread and the code actions may tokenize at once
        self._texts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def encode(self, tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        with self._lock:
            texts = self._texts.setdefault(tokenizer, OrderedDict())
            hit = texts.get(text)
            if hit is not None:
                texts.move_to_end(text)
        if hit is None:
            encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            hit = encoded["input_ids"], encoded["offset_mapping"]
            with self._lock:
                texts[text] = hit
                while len(texts) > MEMO_TEXTS:
                    texts.popitem(last=False)
        return list(hit[0]), hit[1]  # callers may change their ids; the offsets are only read


_memo = _Memo()


def _encode(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    return _memo.encode(tokenizer, text)


def _start_within(tokenizer, text: str, budget: int) -> int:
    """The earliest offset of `text` at a line start from which the rest is at most `budget` tokens."""
    if budget <= 0:
        return len(text)
    width = CHARS_PER_TOKEN * budget + 256
    while True:
        lo = max(0, len(text) - width)
        if lo > 0:  # start the window at a line boundary, so its tokens are the text's own
            newline = text.find("\n", lo - 1)
            lo = newline + 1 if newline >= 0 else lo
        ids, offsets = _encode(tokenizer, text[lo:])
        if len(ids) > budget:
            first = lo + offsets[len(ids) - budget][0]  # the first character that fits
            newline = text.find("\n", max(first - 1, 0))
            return newline + 1 if newline >= 0 else first
        if lo == 0:
            return 0
        width *= 2


def _end_within(tokenizer, text: str, budget: int) -> int:
    """The latest offset of `text` just after a line break up to which it is at most `budget` tokens."""
    if budget <= 0:
        return 0
    width = CHARS_PER_TOKEN * budget + 256
    while True:
        hi = min(len(text), width)
        if hi < len(text):
            newline = text.rfind("\n", 0, hi)
            hi = newline + 1 if newline > 0 else hi
        ids, offsets = _encode(tokenizer, text[:hi])
        if len(ids) > budget:
            last = offsets[budget - 1][1]  # the end of the last token that fits
            newline = text.rfind("\n", 0, last)
            return newline + 1 if newline > 0 else last
        if hi == len(text):
            return len(text)
        width *= 2


def prefix_ids(tokenizer, before: str, budget: int) -> list[int]:
    """Token ids of the end of `before`, at most `budget` of them, starting at a line boundary."""
    line_start = before.rfind("\n") + 1
    line = before[max(line_start, len(before) - CHARS_PER_TOKEN * budget):]
    # Room for the cursor's line, rounded up to a step: the cut moves once per LINE_STEP tokens typed.
    reserve = (len(_encode(tokenizer, line)[0]) // LINE_STEP + 1) * LINE_STEP
    start = _start_within(tokenizer, before[:line_start], budget - reserve)
    ids = _encode(tokenizer, before[start:])[0]
    return ids[len(ids) - budget:] if len(ids) > budget else ids  # a cursor line longer than its reserve


def suffix_ids(tokenizer, after: str, budget: int) -> list[int]:
    """Token ids of the start of `after`, at most `budget` of them, ending at a line boundary."""
    ids = _encode(tokenizer, after[:_end_within(tokenizer, after, budget)])[0]
    return ids[:budget]


def context_room(max_context: int, canvas: int) -> int:
    """How many tokens of context fit beside a canvas of `canvas` tokens (what the model decodes,
    and any fixed tokens between its holes) in a model that reads `max_context` tokens at once:
    the `total` of context_window and model_input."""
    return max(max_context - canvas, 0)


def context_window(tokenizer, before: str, after: str, budget_before: int, budget_after: int,
                   total: int | None = None) -> tuple[list[int], list[int]]:
    """Prefix and suffix token ids around a hole: at most `budget_before` and `budget_after`
    tokens, and at most `total` together (the model's context less the hole), shared as the
    sampler shares it (coda_core.budget.split_context)."""
    if total is None:
        return prefix_ids(tokenizer, before, budget_before), suffix_ids(tokenizer, after, budget_after)
    # A side's length in tokens is known only once it is tokenized, so the split is taken twice:
    # the suffix's share with its budget standing for its length, then the prefix's with the
    # length the suffix took.
    prefix = prefix_ids(tokenizer, before, min(budget_before, total))
    _, suffix_budget = split_context(total, len(prefix), budget_after)
    suffix = suffix_ids(tokenizer, after, suffix_budget)
    prefix_budget, _ = split_context(total, len(prefix), len(suffix))
    if prefix_budget < len(prefix):  # cut again on a line boundary, not mid-line
        prefix = prefix_ids(tokenizer, before, prefix_budget)
    return prefix, suffix


@dataclass(frozen=True)
class ModelInput:
    """What the model is given for a hole: token ids before and after it, and what they hold."""
    prefix: list[int]  # the related snippets' tokens, then the document's prefix
    suffix: list[int]
    snippets: tuple  # coda_lsp.related.Snippet, as laid out (best last), with their token counts
    document_prefix: int  # tokens of the document before the hole
    related_budget: int

    def describe(self) -> list[str]:
        """One line per part, as `coda infill --show-context` prints it and the server logs it."""
        lines = [f"related  {s.path}:{s.first_line}-{s.last_line}  {s.tokens} tokens ({s.reason})"
                 for s in self.snippets]
        related = len(self.prefix) - self.document_prefix
        lines.append(f"related  {related} of {self.related_budget} tokens")
        lines.append(f"prefix   {self.document_prefix} tokens of the document before the cursor")
        lines.append(f"suffix   {len(self.suffix)} tokens of the document after it")
        return lines


def model_input(tokenizer, before: str, after: str, language_id: str, budget_before: int, budget_after: int,
                total: int, related=(), related_budget: int = 0) -> ModelInput:
    """The context builder, for the server and `coda infill`: snippets of `related` files
    (coda_lsp.project.RelatedFile) within their own budget, then the document around the hole.

    The snippets' tokens come out of the prefix's budget (`budget_before`), so the model's input
    is no longer than without them and a keystroke costs what it did: on a model with 2,048
    tokens of context, 512 more tokens made typing 36% slower (docs/PERFORMANCE.md). Code of other
    files that the cursor's code names is worth more than the farthest lines of this one
    (RepoCoder, CrossCodeEval). The document keeps at least half of `budget_before`, and at most
    a quarter of `total` goes to snippets, so that a model with a short context keeps most of it."""
    snippets, ids = [], []
    budget = min(related_budget, budget_before // 2, total // 4)
    if related and budget > 0:
        ids, snippets = pack(lambda text: _encode(tokenizer, text)[0], rank(list(related), before, after), budget,
                             language_id)
    prefix, suffix = context_window(tokenizer, before, after, budget_before - len(ids), budget_after,
                                    total=total - len(ids))
    return ModelInput(ids + prefix, suffix, tuple(snippets), len(prefix), budget)
