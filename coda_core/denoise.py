"""The denoising loops: the published reference sampler and our fast one.

Both fill the masked hole of a `Canvas` step by step and share everything
except two things:

  schedule  reference: a fixed number of steps; step i commits the count the
            published linear schedule gives (n * (1 - s/t) for t, s on
            linspace(1, eps, steps + 1)), all the rest at the last step.
            fast: every masked position in the window whose chosen token's
            probability reaches `threshold` (the top-1 probability when
            greedy; when sampling, the drawn token's, so an unlikely draw is
            never committed on the strength of another token), always at
            least the `min_per_step` most confident ones (one by default);
            optionally the Fast-dLLM factor rule.
  cache     reference: a full forward over the canvas every step.
            fast: block-wise. At each block boundary (and as `refresh` says)
            a prefill refreshes the K/V of every slot ("DualCache": prefix
            and suffix both cached); in between only the current window (a
            block, or a sub-block) is recomputed by `decode_window`, fed as
            [s-1, e) because token j is predicted from hidden j-1.

Token sampling, confidences, commits and end handling are one code path
(`_choose` and `Canvas.commit`). Between steps the loop checks
`should_stop()` and the deadline, so a cancelled call returns within a step,
and `Control.settled`, so a caller that needs only part of the hole (a line
hole's first line) does not pay for the rest. With `Control.between_layers`
it returns within a layer (coda_core.control).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from .canvas import Canvas
from .control import Control, Interrupted, stoppable
from .model import CoDALanguageModel, KVCache, prediction_rows
from .prefix_cache import PrefixCache
from .token_choice import ALGORITHMS, SamplingParams, confidence, sample_tokens


@dataclass(frozen=True)
class DecodeOptions:
    alg: str = "maskgit_plus"
    sampling: SamplingParams = SamplingParams()
    alg_temp: float | None = None  # reference: sample positions from softmax(confidence / alg_temp)
    # reference schedule
    steps: int | None = None  # default: the hole's width
    eps: float = 1e-3
    # fast schedule and cache
    threshold: float = 0.9
    factor: float | None = None
    min_per_step: int = 1  # commit at least this many a step (the most confident), however unsure
    max_per_step: int | None = None
    block_size: int = 32
    sub_block_size: int | None = None  # None: the window is the whole block
    refresh: str | int = "block"  # "block", "step", or N: also every N steps inside a block

    def __post_init__(self):
        if self.alg not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {self.alg!r}; choose one of {', '.join(ALGORITHMS)}")
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {self.threshold}")
        if self.block_size < 1 or (self.sub_block_size is not None and self.sub_block_size < 1):
            raise ValueError("block_size and sub_block_size must be >= 1")
        if self.max_per_step is not None and self.max_per_step < 1:
            raise ValueError(f"max_per_step must be >= 1, got {self.max_per_step}")
        if self.min_per_step < 1 or self.min_per_step > (self.max_per_step or self.min_per_step):
            raise ValueError(f"min_per_step must be >= 1 and <= max_per_step, got {self.min_per_step}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if not 0 <= self.eps < 1:
            raise ValueError(f"eps must be in [0, 1), got {self.eps}")
        if self.alg_temp is not None and self.alg_temp < 0:
            raise ValueError(f"alg_temp must be >= 0, got {self.alg_temp}")
        if self.factor is not None and self.factor <= 0:
            raise ValueError(f"factor must be > 0, got {self.factor}")
        if self.refresh not in ("block", "step") and not (isinstance(self.refresh, int) and self.refresh >= 1):
            raise ValueError(f"refresh must be 'block', 'step' or a positive step count, got {self.refresh!r}")


@dataclass
class DecodeStats:
    forwards: int = 0
    full_forwards: int = 0
    window_forwards: int = 0
    steps: int = 0
    tokens: int = 0  # hole tokens committed by the model (end-handling pads not counted)
    prefill_ms: float = 0.0  # full forwards (the refreshes)
    steps_ms: float = 0.0  # window forwards and token selection
    complete: bool = False
    stopped: str | None = None  # "cancelled" or "deadline" when the loop ended early
    settled: bool = False  # the loop ended early because Control.settled said the caller had enough
    reused_prefix: int = 0  # head slots whose K/V came from the prefix cache

    def as_dict(self) -> dict:
        return asdict(self)


def _run(loop, model, canvas: Canvas, opts: DecodeOptions, control: Control | None, **kwargs) -> DecodeStats:
    """The stats of `loop(model, canvas, opts, control, stats, **kwargs)`, a decoder's loop, which
    ends as stopped when a forward is interrupted between layers."""
    control = control or Control()
    stats = DecodeStats()
    try:
        with stoppable(model, control):
            loop(model, canvas, opts, control, stats, **kwargs)
    except Interrupted:
        stats.stopped = control.stop_reason() or "cancelled"
        stats.complete = False
    return stats


@dataclass
class _Choice:
    """The model's pick for every slot of a window: tokens, their log-probs, confidences."""

    tokens: torch.Tensor  # [B, W]
    logp: torch.Tensor  # [B, W]
    prob: torch.Tensor  # [B, W] probability of the chosen token (the top-1 when greedy), 0 where not masked
    rank: torch.Tensor  # [B, W] confidence under opts.alg, -inf where not masked


def _choose(logits: torch.Tensor, masked: torch.Tensor, opts: DecodeOptions, generator) -> _Choice:
    """Sample a token for each masked slot. logits [N, V] hold one row per True entry of masked [B, W]."""
    B, W = masked.shape
    tokens, probs = sample_tokens(logits, opts.sampling, generator)
    conf = confidence(probs, tokens, opts.alg)
    picked = probs.gather(-1, tokens[:, None]).squeeze(-1)

    def scatter(values, fill):
        out = torch.full((B, W), fill, dtype=values.dtype, device=masked.device)
        out[masked] = values
        return out

    return _Choice(
        tokens=scatter(tokens, 0),
        logp=scatter(picked.clamp_min(1e-30).log(), float("nan")),
        prob=scatter(picked, 0.0),
        rank=scatter(conf.float(), float("-inf")),
    )


def _masked_rows(masked: torch.Tensor, positions: torch.Tensor, first_fed: int = 0):
    """logits_index for the masked slots only: (batch [N], hidden row [N]) in `masked` [B, W] order.

    positions [W] are the canvas slots of masked's columns; the LM head then
    runs for the N still-masked slots, not the whole window.
    """
    batch, column = masked.nonzero(as_tuple=True)
    return batch, prediction_rows(positions, first_fed)[column]


def _select_count(choice: _Choice, masked: torch.Tensor, counts: torch.Tensor, opts: DecodeOptions,
                  p_transfer: float, generator) -> torch.Tensor:
    """Reference: which slots to commit this step, by the published rules."""
    if opts.alg == "origin":
        # every masked slot independently with probability 1 - s/t
        draw = torch.rand(masked.shape, generator=generator, device=masked.device)
        return masked & (draw < p_transfer)
    select = torch.zeros_like(masked)
    for row in range(masked.shape[0]):
        k = int(min(counts[row], masked[row].sum()))
        if k == 0:
            continue
        if opts.alg_temp:
            weights = torch.softmax(choice.rank[row] / opts.alg_temp, dim=-1)
            picks = torch.multinomial(weights, k, generator=generator)
        else:
            picks = choice.rank[row].topk(k).indices
        select[row, picks] = True
    return select


def _order(values: torch.Tensor) -> torch.Tensor:
    """[B, W]: each slot's place when its row is sorted by `values`, highest first (ties: leftmost first)."""
    return values.argsort(dim=1, descending=True, stable=True).argsort(dim=1)


def _select_threshold(choice: _Choice, masked: torch.Tensor, opts: DecodeOptions) -> torch.Tensor:
    """Fast: commit every confident slot, and always each row's `min_per_step` most confident ones."""
    if opts.factor is not None:
        # Fast-dLLM factor rule: the largest n with (n + 1) * (1 - p_n) < factor, p sorted descending
        top = choice.prob.sort(dim=1, descending=True).values
        n = torch.arange(1, top.shape[1] + 1, device=top.device)
        ok = ((n + 1) * (1 - top) < opts.factor) & (top > 0)
        count = torch.where(ok, n, 0).max(1).values
        order = choice.prob.argsort(dim=1, descending=True).argsort(dim=1)
        select = masked & (order < count[:, None])
    else:
        select = masked & (choice.prob >= opts.threshold)
    # Each row commits at least its `min_per_step` most confident masked slots (no host sync).
    select |= masked & (_order(torch.where(masked, choice.rank, float("-inf"))) < opts.min_per_step)
    if opts.max_per_step is not None:
        select &= _order(torch.where(select, choice.rank, float("-inf"))) < opts.max_per_step
    return select


def _timed_forward(stats: DecodeStats, kind: str, forward: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Run `forward` (a model call returning logits [N, V]), counted in stats. kind: "prefill"
    (a decode's first context encoding), "full" (any other full forward) or "window"."""
    start = time.perf_counter()
    logits = forward()
    ms = (time.perf_counter() - start) * 1000
    stats.forwards += 1
    stats.full_forwards += kind != "window"
    stats.window_forwards += kind == "window"
    if kind == "prefill":
        stats.prefill_ms += ms
    else:
        stats.steps_ms += ms
    return logits


def _step(canvas: Canvas, stats: DecodeStats, control: Control) -> bool:
    """Count a finished step and report it; True when the decode may end here (settled)."""
    stats.steps += 1
    if control.on_step is not None:
        control.on_step(canvas, stats)
    stats.settled = control.settled is not None and bool(canvas.masked().any()) and control.settled(canvas)
    return stats.settled


def denoise_reference(model: CoDALanguageModel, canvas: Canvas, opts: DecodeOptions,
                      control: Control | None = None) -> DecodeStats:
    """The published sampler: a full forward every step, a fixed linear schedule."""
    return _run(_reference_loop, model, canvas, opts, control)


@torch.inference_mode()
def _reference_loop(model: CoDALanguageModel, canvas: Canvas, opts: DecodeOptions, control: Control,
                    stats: DecodeStats) -> None:
    steps = opts.steps or canvas.hole_width
    times = torch.linspace(1, opts.eps, steps + 1, dtype=torch.float64, device="cpu").tolist()  # host values
    slots = canvas.hole_slots
    for i in range(steps):
        masked = canvas.masked()
        if not masked.any():
            break
        stats.stopped = control.stop_reason()
        if stats.stopped is not None:
            break
        # No prefill here: every step re-encodes the whole canvas, so all of it is step time.
        rows = _masked_rows(masked, slots)
        logits = _timed_forward(stats, "full", lambda: model(canvas.ids, canvas.attention_mask,
                                                             logits_index=rows).logits)
        choice = _choose(logits, masked, opts, control.generator)
        t, s = times[i], times[i + 1]
        last = i == steps - 1
        # floor with a little slack, so a count that is 1 in exact arithmetic is not lost to rounding
        counts = masked.sum(1) if last else torch.floor(masked.sum(1) * (1 - s / t) + 1e-6).long()
        select = _select_count(choice, masked, counts, opts, 1.0 if last else 1 - s / t, control.generator)
        stats.tokens += canvas.commit(select, choice.tokens, choice.logp)
        if _step(canvas, stats, control):
            break
    stats.complete = not canvas.masked().any()


def _windows(start: int, end: int, size: int):
    return [(s, min(s + size, end)) for s in range(start, end, size)]


@dataclass
class _DualCache:
    """A fast decode's forwards over `cache` (every slot's K/V), counted in `stats`: a window's masked slots' logits."""
    model: CoDALanguageModel
    canvas: Canvas
    cache: KVCache
    stats: DecodeStats

    def prefill(self, masked, positions, prefix_cache: PrefixCache | None, control: Control) -> torch.Tensor:
        """The decode's first forward: over a shared head the prefix cache restores, else a refresh it keeps."""
        if prefix_cache is None:
            return self.refresh(masked, positions, kind="prefill")
        if reused := prefix_cache.restore(self.canvas, self.cache):
            self.stats.reused_prefix = reused
            return self.feed(reused, self.canvas.ids.shape[1], masked, positions, kind="prefill")
        with control.finish():  # kept for reuse, even by the decode that stops this one: it runs to its end
            logits = self.refresh(masked, positions, kind="prefill")
        prefix_cache.store(self.canvas, self.cache)  # only fresh K/V are kept for later calls
        return logits

    def refresh(self, masked, positions, kind: str = "full") -> torch.Tensor:
        """A full forward that rewrites every slot's K/V."""
        ids, attn, rows = self.canvas.ids, self.canvas.attention_mask, _masked_rows(masked, positions)
        return _timed_forward(self.stats, kind, lambda: self.model.prefill(ids, self.cache, attn, logits_index=rows))

    def window(self, masked, positions) -> torch.Tensor:
        """A step inside a block: the window alone is fed, as [s-1, e) since token j is predicted from hidden j-1."""
        return self.feed(max(int(positions[0]) - 1, 0), int(positions[-1]) + 1, masked, positions)

    def feed(self, start: int, end: int, masked, positions, kind: str = "window") -> torch.Tensor:
        """A forward of slots [start, end) alone, over the cached K/V of the others."""
        fed = torch.arange(start, end, device=self.canvas.ids.device)
        ids, rows, cache = self.canvas.ids[:, fed], _masked_rows(masked, positions, first_fed=start), self.cache
        return _timed_forward(self.stats, kind, lambda: self.model.decode_window(ids, cache, fed, logits_index=rows))


def denoise_fast(model: CoDALanguageModel, canvas: Canvas, opts: DecodeOptions, control: Control | None = None,
                 prefix_cache: PrefixCache | None = None) -> DecodeStats:
    """Block-wise threshold decoding over a DualCache, its head's K/V shared through `prefix_cache`; see above."""
    return _run(_fast_loop, model, canvas, opts, control, prefix_cache=prefix_cache)


@torch.inference_mode()
def _fast_loop(model: CoDALanguageModel, canvas: Canvas, opts: DecodeOptions, control: Control,
               stats: DecodeStats, prefix_cache: PrefixCache | None) -> None:
    forwards = _DualCache(model, canvas, model.new_cache(canvas.batch, canvas.ids.shape[1]), stats)
    for block_start, block_end in _windows(0, canvas.hole_width, opts.block_size):
        steps_in_block = 0
        while True:
            masked = canvas.masked()
            if not masked[:, block_start:block_end].any():
                break
            stats.stopped = control.stop_reason()
            if stats.stopped is not None:
                return
            # The window: the first sub-block of this block that still has a mask (hole columns [a, b)).
            a, b = next((s, e) for s, e in _windows(block_start, block_end, opts.sub_block_size or opts.block_size)
                        if masked[:, s:e].any())
            window_masked, positions = masked[:, a:b], canvas.hole_slots[a:b]
            if stats.forwards == 0:  # the decode's first step
                logits = forwards.prefill(window_masked, positions, prefix_cache, control)
            elif steps_in_block == 0 or opts.refresh == "step" or (
                    isinstance(opts.refresh, int) and steps_in_block % opts.refresh == 0):
                logits = forwards.refresh(window_masked, positions)
            else:
                logits = forwards.window(window_masked, positions)
            start = time.perf_counter()
            choice = _choose(logits, window_masked, opts, control.generator)
            select = _select_threshold(choice, window_masked, opts)
            stats.tokens += canvas.commit(select, choice.tokens, choice.logp, start=a)
            stats.steps_ms += (time.perf_counter() - start) * 1000
            steps_in_block += 1
            if _step(canvas, stats, control):
                return
    stats.complete = not canvas.masked().any()
