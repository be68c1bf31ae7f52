"""The sampler API: fill-in-the-middle, span rewrite and generation.

    sampler = Sampler(model, tokenizer)
    result = sampler.infill(prefix_ids, suffix_ids, max_new_tokens=64)
    result.text, result.candidates, result.stats

Plain Python, no editor concepts. Every call takes token ids and returns
decoded text plus ids, a score, and the stats of the decode.

Unknown hole length (infill): one call denoises several canvas sizes at once
(rows of one batch; by default 8/16/32/64 tokens, capped at and including
`max_new_tokens`: coda_core.budget.canvas_sizes). End handling pads a row
after its first end token, so a canvas larger than the content ends early.
Candidates are ranked by:
  1. rows that committed an end token (the content fit its canvas) first;
  2. then by mean log-probability of the committed tokens (Canvas.score);
  3. a row that never ended ranks by the same score after all that did.
Identical texts are returned once; trailing pad is trimmed.

Context: the canvas must fit `max_context` tokens (default: the model's
max_position_embeddings). A longer prefix is cut from the left and a longer
suffix from the right, each side keeping at least half of what is left after
the hole if it needs it (coda_core.budget.split_context, the rule the language
server's context follows too). A hole larger than the context is a ValueError.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from .budget import canvas_sizes, split_context
from .canvas import Canvas, build_canvas, build_holes_canvas
from .denoise import Control, DecodeOptions, DecodeStats, denoise_fast, denoise_reference
from .model import CoDALanguageModel
from .prefix_cache import PrefixCache
from .tokenizer import special_ids

STRATEGIES = ("fast", "reference")


@dataclass
class Candidate:
    fill_ids: list[list[int]]  # the tokens of each hole, in order (one hole except for fill_holes)
    fills: list[str]  # the same, decoded
    score: float  # mean log-probability of the committed tokens
    ended: bool  # an end token was committed in every hole: the content fit its canvas
    canvas_size: int  # hole tokens of the row (all holes together)

    @property
    def text(self) -> str:
        """The hole's text (the first hole's, for fill_holes)."""
        return self.fills[0]

    @property
    def ids(self) -> list[int]:
        return self.fill_ids[0]


@dataclass
class SampleResult:
    candidates: list[Candidate]  # best first, distinct texts
    stats: DecodeStats
    ms: float  # wall time of the whole call

    @property
    def text(self) -> str:
        return self.candidates[0].text if self.candidates else ""

    def without_leading(self, text: str) -> "SampleResult":
        """The same result with `text` taken off the start of each first fill that begins with it."""
        if text:
            for c in self.candidates:
                if c.fills and c.fills[0].startswith(text):
                    c.fills[0] = c.fills[0][len(text):]
        return self

    def as_dict(self) -> dict:
        return {
            "text": self.text,
            "forwards": self.stats.forwards,
            "tokens": self.stats.tokens,
            "ms": round(self.ms, 2),
            "steps": self.stats.steps,
            "complete": self.stats.complete,
            "candidates": [{"text": c.text, **({"fills": c.fills} if len(c.fills) > 1 else {}), "score": round(c.score, 4), "ended": c.ended,
                            "canvas_size": c.canvas_size} for c in self.candidates],
            "stats": self.stats.as_dict(),
        }


DecodeProgress = Callable[[int, str, float], None]  # (step, partial text of the leading row, fraction of it committed)


class Sampler:
    def __init__(self, model: CoDALanguageModel, tokenizer, *, strategy: str = "fast",
                 options: DecodeOptions | None = None, prefix_cache: PrefixCache | None = None,
                 max_context: int | None = None):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        self.model = model
        self.tokenizer = tokenizer
        self.strategy = strategy
        self.options = options or DecodeOptions()
        self.prefix_cache = prefix_cache if prefix_cache is not None else PrefixCache()
        self.max_context = max_context or model.config.max_position_embeddings
        self.ids = special_ids(model.config, tokenizer)

    @classmethod
    def load(cls, name_or_path: str, device: str = "auto", dtype: str = "auto", quantize: str | None = None,
             on_progress=None, plan=None, **kwargs) -> "Sampler":
        """A sampler for the model and tokenizer at `name_or_path` (see coda_core.loading.load_model)."""
        from .loading import load_model, resolve_model_dir
        from .tokenizer import load_tokenizer

        model = load_model(name_or_path, device=device, dtype=dtype, quantize=quantize, on_progress=on_progress,
                           plan=plan)
        return cls(model, load_tokenizer(resolve_model_dir(name_or_path, weights=False)), **kwargs)

    # -- public API -------------------------------------------------------

    def infill(self, prefix_ids: Sequence[int], suffix_ids: Sequence[int], max_new_tokens: int = 64, *,
               sizes: Sequence[int] | None = None, first_line: bool = False, **kwargs) -> SampleResult:
        """Fill a hole of unknown length between prefix and suffix.

        first_line: only the fill's first line is wanted (a line hole): the decode ends as soon as
        every row has committed its text up to a line break or an end token, and each candidate
        holds that much (possibly more).
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if sizes is None:
            sizes = canvas_sizes(max_new_tokens)
        if first_line:
            kwargs["settled"] = lambda canvas: bool(canvas.first_line_settled(self.newline_ids).all())
        prefix_ids, carried = self._heal(list(prefix_ids))
        return self._run(prefix_ids, suffix_ids, list(sizes), **kwargs).without_leading(carried)

    @functools.cached_property
    def newline_ids(self) -> torch.Tensor:
        """Ids of the tokens whose text holds a line break (computed once: one decode per vocabulary entry).

        Through the Rust tokenizer where there is one: transformers' `batch_decode` took 1.1 s for
        Qwen3's 151,940 entries, in Python loops that held the GIL (and so the language server's
        message loop) for 200 ms at a time; the Rust `decode_batch` gives the same texts in about
        50 ms."""
        ids = [[i] for i in range(self.model.config.vocab_size)]
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        texts = backend.decode_batch(ids, skip_special_tokens=False) if backend is not None \
            else self.tokenizer.batch_decode(ids)
        return torch.tensor([i for i, text in enumerate(texts) if "\n" in text or "\r" in text],
                            dtype=torch.long, device=self.model.device)

    def _heal(self, prefix_ids: list[int]) -> tuple[list[int], str]:
        """Token healing for a cursor after spaces: BPEs like Qwen's glue a space to the word after it
        (" return"), so a prefix ending in a bare space token is a split the model never saw in
        training. The trailing spaces go back into the hole, and are taken off the fill afterwards."""
        if not prefix_ids:
            return prefix_ids, ""
        last = self.tokenizer.decode(prefix_ids[-1:])
        if last and not last.strip(" \t"):
            return prefix_ids[:-1], last
        return prefix_ids, ""

    def rewrite(self, prefix_ids: Sequence[int], span_ids: Sequence[int], suffix_ids: Sequence[int], *,
                sizes: Sequence[int] | None = None, **kwargs) -> SampleResult:
        """Re-mask `span_ids` and regenerate them; the new span may be shorter or longer."""
        n = len(span_ids)
        if sizes is None:
            sizes = sorted({max(n, 1), max(n + 4, math.ceil(1.5 * n))})
        return self._run(prefix_ids, suffix_ids, list(sizes), **kwargs)

    def generate(self, prompt_ids: Sequence[int], max_new_tokens: int = 256, **kwargs) -> SampleResult:
        """Continue a prompt (use `chat_prompt` for instruction models); stops at eos."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        return self._run(prompt_ids, [], [max_new_tokens], **kwargs)

    def fill_holes(self, pieces: Sequence[Sequence[int]], hole_sizes: Sequence[int], **kwargs) -> SampleResult:
        """Fill several holes at once: pieces[0] hole 0 pieces[1] ... hole H-1 pieces[H].

        All holes are masked together, so each is denoised seeing the others
        take shape. Each hole has the given size (its upper bound: end
        handling pads what a hole does not need). pieces[0] is cut from the
        left and pieces[-1] from the right to fit the context; the pieces
        between holes are kept whole.
        """
        if len(pieces) != len(hole_sizes) + 1 or not hole_sizes:
            raise ValueError(f"{len(hole_sizes)} holes need {len(hole_sizes) + 1} context pieces, got {len(pieces)}")
        if any(int(size) < 1 for size in hole_sizes):
            raise ValueError(f"hole sizes must be positive token counts, got {list(hole_sizes)}")
        pieces = [self._checked(piece, f"context piece {i}") for i, piece in enumerate(pieces)]
        middle = sum(len(piece) for piece in pieces[1:-1])
        head, tail = self._fit_context(pieces[0], pieces[-1], sum(hole_sizes) + middle)
        pieces = [head, *pieces[1:-1], tail]
        return self._decode(lambda copies: build_holes_canvas(pieces, list(hole_sizes), copies=copies,
                                                              **self._canvas_tokens()), **kwargs)

    def chat_prompt(self, messages: list[dict]) -> list[int]:
        """Token ids of `messages` through the tokenizer's chat template, ready for the answer."""
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("this tokenizer has no chat template; pass prompt ids to generate() directly")
        return list(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                       return_dict=False))

    # -- the one code path ------------------------------------------------

    def _run(self, head: Sequence[int], tail: Sequence[int], sizes: list[int], **kwargs) -> SampleResult:
        """One hole between head and tail, one row per canvas size (and per candidate when sampling)."""
        if not sizes or any(int(size) < 1 for size in sizes):
            raise ValueError(f"canvas sizes must be positive token counts, got {sizes}")
        head, tail = self._fit_context(self._checked(head, "prefix"), self._checked(tail, "suffix"), max(sizes))
        return self._decode(lambda copies: build_canvas(head, sizes, tail, copies=copies, **self._canvas_tokens()),
                            **kwargs)

    def _canvas_tokens(self) -> dict:
        return dict(mask_id=self.ids.mask, pad_id=self.ids.pad, end_ids=(self.ids.eos, self.ids.pad),
                    device=self.model.device)

    def _decode(self, make_canvas: Callable[[int], Canvas], *, n: int = 1, seed: int = 0,
                strategy: str | None = None, options: DecodeOptions | None = None,
                should_stop: Callable[[], bool] | None = None, deadline: float | None = None,
                on_progress: DecodeProgress | None = None, reuse_prefix: bool = True,
                settled: Callable[[Canvas], bool] | None = None, between_layers: bool = False) -> SampleResult:
        """Denoise the canvas `make_canvas(copies)` builds and rank its rows.

        between_layers: poll should_stop between the model's layers too, not only between steps
        (a caller whose requests supersede each other, like the language server's)."""
        start = time.perf_counter()
        strategy = strategy or self.strategy
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
        options = options or self.options
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        # Greedy rows of the same size are identical; sampled ones differ.
        canvas = make_canvas(n if options.sampling.temperature > 0 else 1)
        control = Control(should_stop=should_stop, deadline=deadline,
                          generator=torch.Generator(device=self.model.device).manual_seed(seed),
                          on_step=self._progress_hook(on_progress) if on_progress else None, settled=settled,
                          between_layers=between_layers)
        if strategy == "reference":
            stats = denoise_reference(self.model, canvas, options, control)
        else:
            cache = self.prefix_cache if reuse_prefix and self.prefix_cache.enabled else None
            stats = denoise_fast(self.model, canvas, options, control, prefix_cache=cache)
        candidates = self._rank(canvas)[:n]
        return SampleResult(candidates, stats, (time.perf_counter() - start) * 1000)

    def _checked(self, ids: Sequence[int], what: str) -> list[int]:
        ids = [int(i) for i in ids]
        vocab = self.model.config.vocab_size
        bad = [i for i in ids if not 0 <= i < vocab]
        if bad:
            raise ValueError(f"{what} holds token ids outside the vocabulary [0, {vocab}): {bad[:5]}")
        if self.ids.mask in ids:
            raise ValueError(f"{what} holds the mask token {self.ids.mask}; only the hole may be masked")
        return ids

    def _fit_context(self, head: list[int], tail: list[int], hole: int) -> tuple[list[int], list[int]]:
        budget = self.max_context - hole
        if budget < 0:
            raise ValueError(f"a hole of {hole} tokens does not fit the model's context of {self.max_context}")
        keep_head, keep_tail = split_context(budget, len(head), len(tail))
        return head[len(head) - keep_head:], tail[:keep_tail]

    def _rank(self, canvas: Canvas) -> list[Candidate]:
        scores, ended = canvas.score().tolist(), canvas.ended().tolist()
        order = sorted(range(canvas.batch), key=lambda r: (not ended[r], -scores[r], r))
        seen, out = set(), []
        for row in order:
            fill_ids = canvas.contents(row)
            fills = [self.tokenizer.decode(ids) for ids in fill_ids]
            if tuple(fills) in seen:
                continue
            seen.add(tuple(fills))
            out.append(Candidate(fill_ids, fills, scores[row], ended[row], int(canvas.hole_len[row])))
        return out

    def _progress_hook(self, on_progress: DecodeProgress):
        def hook(canvas: Canvas, stats: DecodeStats) -> None:
            row = int(canvas.score().argmax())
            length = int(canvas.hole_len[row])
            hole = canvas.hole_ids()[row, :length].tolist()  # every hole, in order
            done = 1.0 - int(canvas.masked()[row, :length].sum()) / max(length, 1)
            on_progress(stats.steps, self.tokenizer.decode(hole, skip_special_tokens=True), done)
        return hook
