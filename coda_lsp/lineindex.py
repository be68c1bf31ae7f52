"""Where each line of a document starts, kept in step with edits without splitting the text again.

LSP counts lines on "\\n", "\\r\\n" and "\\r" (coda_lsp.text). A document of
100,000 lines split into a list of strings costs about 60 bytes a line and,
re-split on every keystroke, some 50 ms; a 5 MB line costs a copy per look.
Here a document's lines are one NumPy array of their start offsets (8 bytes a
line). A position's offset is one lookup, an offset's line one binary search,
and an edit re-reads only the characters around it: the starts after it move
by the edit's length in one vector add.
"""

from __future__ import annotations

import numpy as np

from .text import LINE_BREAK
MARGIN = 2  # characters around an edit whose line breaks may change with it ("\r" + "\n" join or part)


def _starts_after_breaks(text: str, start: int, end: int) -> np.ndarray:
    """The offsets just after each line break that ends within text[start:end] (one more character is read:
    a "\\r" at `end` - 1 followed by "\\n" ends its break after `end`, not at it)."""
    ends = [m.end() for m in LINE_BREAK.finditer(text, start, min(end + 1, len(text)))]
    return np.array([e for e in ends if e <= end], dtype=np.int64)


class LineIndex:
    """The start offset of every line of a text, as LSP counts lines. Never changed: an edit makes
    a new one, so a snapshot of a document keeps the index of its own text."""

    def __init__(self, text: str, starts: np.ndarray | None = None):
        self.length = len(text)
        self.starts = (np.concatenate(([0], _starts_after_breaks(text, 0, len(text)))).astype(np.int64)
                       if starts is None else starts)

    def __len__(self) -> int:
        """The number of lines, as `split_lines` counts them: no line after a final line break."""
        return len(self.starts) - (self.length == self.starts[-1])

    def start(self, line: int) -> int:
        """The offset where `line` starts; past the last line, the text's end."""
        return int(self.starts[line]) if 0 <= line < len(self.starts) else self.length

    def end(self, line: int) -> int:
        """The offset after `line`'s line break (the next line's start), or the text's end."""
        return self.start(line + 1)

    def line_of(self, offset: int) -> int:
        """The line holding `offset` (an offset right after a line break starts the next line)."""
        return int(np.searchsorted(self.starts, offset, side="right")) - 1

    def replace(self, old_text: str, start: int, end: int, new_text: str, inserted: int) -> "LineIndex":
        """The index of `new_text`, which is `old_text` with [start, end) replaced by `inserted` characters."""
        delta = inserted - (end - start)
        lo, hi = max(0, start - MARGIN), min(len(old_text), end + MARGIN)
        first = int(np.searchsorted(self.starts, lo, side="right"))  # starts in (lo, hi] are read again
        last = int(np.searchsorted(self.starts, hi, side="right"))
        fresh = _starts_after_breaks(new_text, lo, hi + delta)
        return LineIndex(new_text, np.concatenate((self.starts[:first], fresh, self.starts[last:] + delta)))
