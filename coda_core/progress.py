"""Progress bars that suit where they are written.

On a terminal `progress` is an ordinary tqdm bar, redrawn in place. Anywhere
else (a log file, a pipe, a CI console) a bar redrawn ten times a second
fills the log with carriage-return frames, so there it writes one plain
line (no carriage return) every `interval` seconds, plus the first and the
last state. Every progress bar of the project comes from here.
"""

from __future__ import annotations

import sys
from typing import IO, Iterable

from tqdm import tqdm

LOG_INTERVAL = 5.0  # seconds between lines when the output is not a terminal


class _Lines:
    """A file for tqdm that turns each redraw ("\\r" + the bar + padding) into one plain line."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.stream.write(line + "\n")

    def flush(self) -> None:
        self.stream.flush()


class _LogBar(tqdm):
    """tqdm that redraws only on its clock: a new postfix or description waits for the next line."""

    def set_postfix(self, ordered_dict=None, refresh=True, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)

    def set_description(self, desc=None, refresh=True):
        super().set_description(desc, refresh=False)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable: Iterable | None = None, *, desc: str | None = None, total: int | None = None,
             unit: str = "it", disable: bool = False, file: IO[str] | None = None,
             interval: float = LOG_INTERVAL, **kwargs) -> tqdm:
    """A tqdm bar on `file` (default stderr): drawn in place on a terminal, else a line every `interval` s.

    Use it as tqdm (iterate it, or `update`, `set_postfix`, `close`, `with`). `disable` hides it.
    """
    stream = file if file is not None else sys.stderr
    if _is_terminal(stream):
        return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, file=stream, **kwargs)
    return _LogBar(iterable, desc=desc, total=total, unit=unit, disable=disable, file=_Lines(stream),
                mininterval=interval, maxinterval=max(interval, 10.0), ascii=True, ncols=80,
                dynamic_ncols=False, **kwargs)
