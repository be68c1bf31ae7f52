"""A stage's clock and its learning-rate schedule.

A stage ends after `train.steps` steps or, with `train.max_seconds`, when
its training time runs out, whichever comes first. Its progress is the
larger of the two fractions, so the LR schedule and the masking curriculum
fit themselves to the time a stage is given. The step that the clock
predicts to be the last one (the next would not fit) runs at progress 1: a
cosine, linear or warmup-stable-decay stage cut by time still ends at its
minimum LR, annealed, instead of being cut off at its peak.

Training time is the wall time of the training loop: its steps and the
evaluations and checkpoints between them; not building the model, the first
and final evaluations or the export. A resumed stage carries on with the
time its checkpoint had used.

Schedules (lr_schedule.decay), after `warmup_steps` of linear warmup:
    cosine    peak -> min_ratio x peak along a half cosine
    linear    peak -> min_ratio x peak along a line
    constant  peak to the end (the stable phase of a WSD run split over stages)
    wsd       peak until the last `decay_fraction` of the stage, then a line down to
              min_ratio x peak (warmup-stable-decay, Hägele et al. 2024, "Scaling
              Laws and Compute-Optimal Training Beyond Fixed Training Durations":
              as good as cosine at any length, and the length need not be known)
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque

DECAYS = ("cosine", "linear", "constant", "wsd")


def lr_at(step: int, recipe, progress: float | None = None) -> float:
    """The LR of `step`. `progress` is the stage's fraction done after warmup, 0..1 (default: by steps,
    reaching 1 at the last of train.steps)."""
    spec, peak, total = recipe.lr_schedule, recipe.optimizer.lr, recipe.train.steps
    if step < spec.warmup_steps:
        return peak * (step + 1) / spec.warmup_steps
    if spec.decay == "constant":
        return peak
    if progress is None:
        progress = (step - spec.warmup_steps) / max(total - 1 - spec.warmup_steps, 1)
    progress = min(max(progress, 0.0), 1.0)
    if spec.decay == "cosine":
        shape = 0.5 * (1 + math.cos(math.pi * progress))
    elif spec.decay == "wsd":
        shape = min(1.0, (1 - progress) / spec.decay_fraction)
    else:
        shape = 1 - progress
    return peak * (spec.min_ratio + (1 - spec.min_ratio) * shape)


class Clock:
    """Where a stage stands against its step count and its time budget (host time only: no device sync)."""

    RECENT = 20  # steps whose median duration predicts the next one's

    def __init__(self, steps: int, max_seconds: float | None, warmup_steps: int = 0):
        self.steps, self.max_seconds, self.warmup_steps = steps, max_seconds, warmup_steps
        self.used = 0.0  # training seconds of earlier runs of this stage (a resumed one)
        self._since: float | None = None
        self._last_mark: float | None = None
        self._durations: deque[float] = deque(maxlen=self.RECENT)

    def start(self) -> None:
        self._since = self._last_mark = time.monotonic()

    def elapsed(self) -> float:
        return self.used + (time.monotonic() - self._since if self._since is not None else 0.0)

    def step_done(self) -> None:
        now = time.monotonic()
        if self._last_mark is not None:
            self._durations.append(now - self._last_mark)
        self._last_mark = now

    def step_seconds(self) -> float:
        """A step's duration as the recent steps had it (0 before any step)."""
        return statistics.median(self._durations) if self._durations else 0.0

    def time_fraction(self) -> float:
        return min(self.elapsed() / self.max_seconds, 1.0) if self.max_seconds else 0.0

    def is_last(self, step: int) -> bool:
        """Step `step` (0-based) is the stage's last: the steps end with it, or the one after would not fit."""
        if step + 1 >= self.steps:
            return True
        if not self.max_seconds:
            return False
        return self.elapsed() + 2 * self.step_seconds() > self.max_seconds

    def lr_progress(self, step: int, last: bool) -> float | None:
        """The progress that step `step`'s LR follows (`last`: is_last said so); None (by steps alone)
        without a time budget."""
        if not self.max_seconds:
            return None
        if last:
            return 1.0
        by_steps = (step - self.warmup_steps) / max(self.steps - 1 - self.warmup_steps, 1)
        return max(by_steps, (self.elapsed() + self.step_seconds()) / self.max_seconds)

    def curriculum_step(self, step: int) -> int:
        """The step the masking curriculum reads its rates at: `step`, or further when time runs ahead."""
        return max(step, round(self.time_fraction() * (self.steps - 1)))
