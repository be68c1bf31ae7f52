"""Completions shown a moment ago, served again without a model call.

Keyed by the text around the cursor: a repeated request gets the same texts,
and when the user types the first characters of a completion just shown
(typed-ahead), the rest of it is served.
"""

from __future__ import annotations

from collections import OrderedDict

MAX_ENTRIES = 64  # bounded: memory stays flat however long the session runs
BEFORE_KEPT = 2000  # characters before the cursor that key an entry


class ShownCompletions:
    def __init__(self):
        self._shown: OrderedDict[tuple, list[str]] = OrderedDict()  # (before tail, after head, kind) -> texts

    def clear(self) -> None:
        """Forget every text shown (a benchmark's holes are each decoded, never typed ahead)."""
        self._shown.clear()

    def remember(self, before: str, after: str, kind: str, texts: list[str]) -> None:
        key = (before[-BEFORE_KEPT:], after[:500], kind)
        self._shown[key] = texts
        self._shown.move_to_end(key)
        while len(self._shown) > MAX_ENTRIES:
            self._shown.popitem(last=False)

    def typed_ahead(self, before: str, after: str, kind: str) -> list[str] | None:
        """The rest of completions shown at an earlier cursor, if the user typed their start since."""
        for (tail, old_after, old_kind), texts in reversed(self._shown.items()):
            if old_after != after[:500] or old_kind != kind:
                continue
            for k in range(min(200, len(before)) + 1):
                end = len(before) - k
                # A tail shorter than BEFORE_KEPT was all the text before the old cursor,
                # so it must be all of it now too, not merely end where the cursor was.
                whole = len(tail) < BEFORE_KEPT
                if (end == len(tail) or not whole) and before.endswith(tail, 0, end):  # no copy per k
                    typed = before[len(before) - k:]
                    rest = [t[k:] for t in texts if t.startswith(typed) and len(t) > k]
                    if rest:
                        return rest
                    break
        return None
