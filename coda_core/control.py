"""How a caller steers a running decode: stop it, bound it in time, hear each step, end it early.

Between steps a decoder asks `Control.stop_reason()` (a cancelled call returns
within a step) and `Control.settled` (a caller that needs only part of the
hole, a line hole's first line, does not pay for the rest).

With `between_layers` the stop is also polled between the model's layers
(`stoppable`), so a cancelled call returns within a layer. The language server
asks for that: a keystroke supersedes the decode of the one before, and the
new decode runs on the same thread only once the old one has returned, so it
would otherwise wait for the rest of the old one's forward (a prefill over
hundreds of tokens). One forward is exempt (`Control.finishing`): a prefill
the prefix cache keeps, which the next keystroke's decode reuses instead of
encoding the whole canvas again.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from .canvas import Canvas
    from .denoise import DecodeStats


@dataclass
class Control:
    """How a caller steers a running decode."""

    should_stop: Callable[[], bool] | None = None
    deadline: float | None = None  # time.monotonic() value
    on_step: Callable[[Canvas, DecodeStats], None] | None = None
    generator: torch.Generator | None = None
    # True once the caller has what it needs (e.g. a line hole's first line) though masks remain
    settled: Callable[[Canvas], bool] | None = None
    between_layers: bool = False  # also poll should_stop and the deadline between the model's layers
    finishing: bool = field(default=False, init=False, repr=False)  # the forward under way is not interrupted

    def stop_reason(self) -> str | None:
        if self.should_stop is not None and self.should_stop():
            return "cancelled"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "deadline"
        return None

    @contextmanager
    def finish(self):
        """The forward run inside is not interrupted between layers, whatever stops meanwhile."""
        self.finishing = True
        try:
            yield
        finally:
            self.finishing = False


class Interrupted(Exception):
    """A stop seen between two layers of a forward (Control.between_layers)."""


@contextmanager
def stoppable(model, control: Control):
    """While inside, each decoder layer of `model` first checks the control's stop, if it asks for that.

    A forward pre-hook on each layer raises Interrupted, and the decoder ends there. Nothing the
    interrupted forward wrote is read afterwards: its KV cache is the decode's own, dropped with it.
    """
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not control.between_layers or layers is None or (control.should_stop is None and control.deadline is None):
        yield
        return

    def check(module, args):
        if not control.finishing and control.stop_reason() is not None:
            raise Interrupted

    handles = [layer.register_forward_pre_hook(check) for layer in layers]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
