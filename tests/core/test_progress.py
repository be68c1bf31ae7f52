"""coda_core.progress: a bar on a terminal, a few plain lines in a log."""

import io
import time

from coda_core.progress import progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_bar(stream, steps=20_000, seconds=0.6, interval=0.1):
    """`steps` updates spread over about `seconds`, setting a postfix at every step (as the trainer does)."""
    bar = progress(total=steps, desc="train", unit="step", file=stream, interval=interval)
    pause = seconds / 20
    for i in range(steps):
        bar.update(1)
        bar.set_postfix(loss=f"{1 / (i + 1):.3f}")
        if i % (steps // 20) == 0:
            time.sleep(pause)
    bar.close()
    return stream.getvalue()


def test_a_log_gets_a_few_plain_lines_not_thousands_of_frames():
    out = run_bar(io.StringIO())
    assert "\r" not in out
    lines = out.splitlines()
    # about one line per 0.1 s interval over 0.6 s, plus the first and the last
    assert 2 <= len(lines) <= 15, lines
    assert lines[0].startswith("train:") and "20000/20000" in lines[-1]
    # an iterable without a length (coda train prepare's documents) too
    log = io.StringIO()
    assert sum(1 for _ in progress(iter(range(100_000)), desc="prepare", unit="doc", file=log)) == 100_000
    assert "\r" not in log.getvalue() and len(log.getvalue().splitlines()) <= 3
    assert "100000doc" in log.getvalue().splitlines()[-1]


def test_a_terminal_gets_a_bar_redrawn_in_place():
    out = run_bar(Terminal(), steps=200, seconds=0.2)
    assert "\r" in out and "200/200" in out


def test_disable_hides_it():
    log = io.StringIO()
    bar = progress(total=10, file=log, disable=True)
    bar.update(10)
    bar.close()
    assert log.getvalue() == ""
