"""The completion engine behind the server: one model worker, latest request wins.

Editor concepts stop here; below is `coda_core.sampler`. Per document only the
newest request matters: starting one tells the older one to stop (its
denoising loop checks between steps) and the older one is answered with an
empty result. A `$/cancelRequest` stops a request the same way.

A small cache keyed by the text around the cursor serves repeats, and
typed-ahead: when the user types the first characters of a completion just
shown, the rest is served without a model call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from coda_core.chat import fenced_code

from .context import context_window
from .holes import Placeholder, choose_hole, parse, parser_for
from .postprocess import clean
from .settings import Settings
from .text import offset_at_row


# Canvas sizes per hole kind. A line hole wants the rest of one line, and its decode ends once
# every row has committed its first line: one canvas while typing (a greedy decode gives one text
# per canvas size), three when the user asks for alternatives. A block hole gets the sampler's
# spread of sizes. Measured in docs/PERFORMANCE.md (`coda bench lsp`).
LINE_SIZES = (16,)
LINE_ALTERNATIVE_SIZES = (8, 16, 32)
LINE_SUB_BLOCK = 4
BLOCK_SIZES = (8, 16, 32, 64)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


@dataclass(frozen=True)
class Completion:
    text: str
    line: int
    start: int  # character columns on `line`
    end: int


class Engine:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        # The model in use, swapped whole by `load`. A request reads `sampler` once and keeps that
        # object to its end, so a load finishing meanwhile never changes the model under it.
        self.sampler = None
        self.error: str | None = None
        self.model_name: str | None = None  # the model in use, or being loaded when none is
        self.wanted: tuple | None = None  # (model, device, dtype) of the load asked for last
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="coda-model")
        self._latest: dict[str, int] = {}
        self._counter = 0
        self._lock = threading.Lock()
        self.loading = threading.Lock()  # held by the one thread that loads models
        self.load_wanted = threading.Event()  # settings asked for a (re)load
        self._shown: OrderedDict[tuple, list[str]] = OrderedDict()  # context -> completions shown
        self.empty_streak = 0  # model answers in a row that had nothing left after cleaning
        self.timings: deque[dict] = deque(maxlen=1024)  # where each recent answer's time went (ms)

    # -- model -------------------------------------------------------------

    @staticmethod
    def model_key(settings: Settings) -> tuple:
        """What a load depends on: a settings change that keeps it keeps the loaded model."""
        return settings.model, settings.device, settings.dtype

    def load(self) -> str | None:
        """Load the configured model and put it in use; returns an error message instead of raising.

        A failed load keeps the model in use, if there is one: the user loses nothing.
        """
        from coda_core.errors import CodaError
        from coda_core.sampler import Sampler

        s = self.settings
        model = s.model
        if self.sampler is None:
            self.model_name = model
        try:
            sampler = Sampler.load(model, device=s.device, dtype=s.dtype)
        except (CodaError, ValueError, OSError, RuntimeError, TypeError) as exc:
            self.error = f"coda-lsp could not load the model {model}: {exc}"
            if self.sampler is not None:
                self.error += f" (still using {self.model_name})"
            return self.error
        self.sampler, self.model_name, self.error = sampler, model, None  # one swap, between requests' reads
        return None

    # -- requests ----------------------------------------------------------

    def _supersede(self, uri: str) -> int:
        with self._lock:
            self._counter += 1
            self._latest[uri] = self._counter
            return self._counter

    def is_current(self, uri: str, token: int) -> bool:
        return self._latest.get(uri) == token

    def enabled_for(self, language_id: str) -> bool:
        return self.settings.languages is None or language_id in self.settings.languages

    async def complete(self, uri: str, text: str, line: int, col: int, language_id: str, *,
                       alternatives: bool = False) -> list[Completion]:
        """Completions for the cursor at (line, col) (0-based, characters). Empty when superseded.

        While the user types, a line hole is decoded as one canvas, the fastest answer; with
        `alternatives` (the user asked), at several canvas sizes, for up to `candidates` texts.
        """
        token = self._supersede(uri)
        sampler = self.sampler
        if sampler is None or not self.enabled_for(language_id):
            return []
        started = time.perf_counter()
        hole = choose_hole(text, line, col, language_id, in_comments=self.settings.complete_in_comments)
        if hole.kind == "none":
            return []
        offset = offset_at_row(text, line, col)
        before, after = text[:offset], text[offset:]
        current_after = after.split("\n", 1)[0]
        replacing = hole.replace_end > col

        timing = {"hole_ms": _ms_since(started)}
        typed = None if alternatives else self._typed_ahead(before, after, hole.kind)
        if typed is not None:
            texts = typed
            timing["typed_ahead"] = True
        else:
            cancelled = threading.Event()
            stop = lambda: cancelled.is_set() or not self.is_current(uri, token)
            loop = asyncio.get_running_loop()
            try:
                result = await loop.run_in_executor(self._worker, self._fill, sampler, before, after, hole.kind,
                                                    alternatives, stop)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            if result is None or not self.is_current(uri, token):
                return []
            result, context_ms = result
            timing.update(context_ms=context_ms, decode_ms=result.ms, prefill_ms=result.stats.prefill_ms,
                          steps_ms=result.stats.steps_ms, steps=result.stats.steps,
                          reused_prefix=result.stats.reused_prefix)
            post = time.perf_counter()
            texts = [clean(c.text, hole.kind, hole.indent, current_after, replacing) for c in result.candidates]
            texts = [t for t in dict.fromkeys(texts) if t]
            self.empty_streak = 0 if texts else self.empty_streak + 1
            texts = self._rank_by_syntax(texts, before, after[hole.replace_end - col:], language_id)
            self._remember(before, after, hole.kind, texts)
            timing["post_ms"] = _ms_since(post)
        timing["total_ms"] = _ms_since(started)
        self.timings.append(timing)
        end = hole.replace_end
        return [Completion(t, line, col, end) for t in texts[: self.settings.candidates]]

    def _fill(self, sampler, before: str, after: str, kind: str, alternatives: bool, stop):
        s = self.settings
        if stop():
            return None
        sizes = self.canvas_sizes(kind, alternatives)
        started = time.perf_counter()
        prefix, suffix = context_window(sampler.tokenizer, before, after, s.context_before, s.context_after,
                                        total=sampler.max_context - max(sizes))
        context_ms = _ms_since(started)
        result = sampler.infill(prefix, suffix, max(sizes), sizes=sizes, n=s.candidates, should_stop=stop,
                                options=self.options(kind), first_line=kind == "line")
        return None if result.stats.stopped else (result, context_ms)

    def options(self, kind: str = "block"):
        """Decode options from the settings as they are now (they change without a model reload)."""
        from coda_core.decode import DecodeOptions

        s = self.settings
        # A line hole's window moves left to right a few slots at a time, so its first line is
        # committed first and the decode can end there (see LINE_SIZES).
        sub_block = LINE_SUB_BLOCK if kind == "line" else None
        return DecodeOptions(threshold=s.threshold, block_size=s.block_size, sub_block_size=sub_block)

    def canvas_sizes(self, kind: str, alternatives: bool = False) -> list[int]:
        """The canvas sizes (hole tokens) a completion of `kind` is denoised at, one row each."""
        limit = self.settings.max_new_tokens
        if kind == "line":
            wanted = LINE_ALTERNATIVE_SIZES if alternatives and self.settings.candidates > 1 else LINE_SIZES
        else:
            wanted = BLOCK_SIZES
        largest = limit if kind == "block" else min(limit, max(wanted))  # maxNewTokens bounds a block
        return sorted({size for size in wanted if size < largest} | {largest})

    async def regenerate(self, uri: str, text: str, start: int, end: int, on_progress, should_stop) -> str | None:
        """Re-mask text[start:end] and denoise it with both sides as context; None if stopped."""
        return await self._edit(uri, text, start, end, None, on_progress, should_stop)

    async def implement(self, uri: str, text: str, start: int, end: int, indent: str, on_progress,
                        should_stop) -> str | None:
        """Fill the placeholder text[start:end] of a function body from everything around it."""
        return await self._edit(uri, text, start, end, indent, on_progress, should_stop)

    async def instruct(self, uri: str, text: str, start: int, end: int, instruction: str, on_progress,
                       should_stop) -> str | None:
        """Rewrite text[start:end] as `instruction` says, through the chat template (instruction models)."""
        self._supersede(uri)
        sampler = self.sampler
        if sampler is None:
            return None
        span = text[start:end]
        context = text[max(0, start - 4000):start][-2000:]
        prompt = sampler.chat_prompt([{"role": "user", "content": (
            f"{instruction.strip()}\n\nRewrite this code accordingly. It follows:\n```\n{context}\n```\n"
            f"The code to rewrite:\n```\n{span}\n```\nAnswer with only the rewritten code in one fenced block.")}])
        budget = 2 * len(sampler.tokenizer.encode(span)) + 32
        work = lambda: sampler.generate(prompt, budget, should_stop=should_stop, on_progress=on_progress,
                                        options=self.options())
        result = await asyncio.get_running_loop().run_in_executor(self._worker, work)
        if result.stats.stopped:
            return None
        code = fenced_code(result.text)
        code = result.text if code is None else code
        return code.rstrip("\n") + ("\n" if span.endswith("\n") else "") if code.strip() else None

    async def fill_holes(self, uri: str, text: str, holes: list[Placeholder], on_progress,
                         should_stop) -> list[str | None] | None:
        """Fill every placeholder in one decode (all holes masked at once).

        Returns one text per hole (None where the model had nothing usable:
        that placeholder stays), or None when stopped. Raises ValueError when
        the code between the holes does not fit the model's context.
        """
        self._supersede(uri)
        sampler = self.sampler
        if sampler is None:
            return None
        s = self.settings
        tok = sampler.tokenizer
        bounds = [0] + [offset for hole in holes for offset in (hole.start, hole.end)] + [len(text)]
        pieces = [text[a:b] for a, b in zip(bounds[::2], bounds[1::2])]
        middle = [tok.encode(piece, add_special_tokens=False) for piece in pieces[1:-1]]
        sizes = [max(self.canvas_sizes(hole.kind)) for hole in holes]
        total = sampler.max_context - sum(sizes) - sum(map(len, middle))
        head, tail = context_window(tok, pieces[0], pieces[-1], s.context_before, s.context_after,
                                    total=max(total, 0))
        ids = [head, *middle, tail]
        work = lambda: sampler.fill_holes(ids, sizes, should_stop=should_stop, on_progress=on_progress,
                                          options=self.options())
        result = await asyncio.get_running_loop().run_in_executor(self._worker, work)
        if result.stats.stopped or not result.candidates:
            return None
        fills = []
        for hole, fill, after in zip(holes, result.candidates[0].fills, pieces[1:]):
            fill = clean(fill, hole.kind, hole.indent, after.split("\n", 1)[0], True) or None
            if fill is not None and hole.start == hole.end:  # an insertion: a line of its own
                fill = fill + "\n" if hole.start < len(text) or text.endswith("\n") else "\n" + fill
            fills.append(fill)
        return fills

    async def _edit(self, uri, text, start, end, block_indent, on_progress, should_stop) -> str | None:
        self._supersede(uri)  # an edit outranks pending completions in the same document
        sampler = self.sampler
        if sampler is None:
            return None
        s = self.settings
        tok = sampler.tokenizer
        span = tok.encode(text[start:end], add_special_tokens=False)
        room = sampler.max_context - (2 * len(span) + 8 if block_indent is None else 2 * s.max_new_tokens)
        prefix, suffix = context_window(tok, text[:start], text[end:], s.context_before, s.context_after,
                                        total=max(room, 0))
        if block_indent is None:
            work = lambda: sampler.rewrite(prefix, span, suffix, options=self.options(),
                                           should_stop=should_stop, on_progress=on_progress)
        else:
            work = lambda: sampler.infill(prefix, suffix, 2 * s.max_new_tokens, options=self.options(),
                                          should_stop=should_stop, on_progress=on_progress)
        result = await asyncio.get_running_loop().run_in_executor(self._worker, work)
        if result.stats.stopped or not result.stats.complete:
            return None
        if block_indent is None:
            return result.text
        return clean(result.text, "block", block_indent.lstrip("\n"), "", True) or None

    # -- caches --------------------------------------------------------------

    def _remember(self, before: str, after: str, kind: str, texts: list[str]) -> None:
        key = (before[-2000:], after[:500], kind)
        self._shown[key] = texts
        self._shown.move_to_end(key)
        while len(self._shown) > 64:  # bounded: memory stays flat however long the session runs
            self._shown.popitem(last=False)

    def _typed_ahead(self, before: str, after: str, kind: str) -> list[str] | None:
        """The rest of completions shown at an earlier cursor, if the user typed their start since."""
        for (tail, old_after, old_kind), texts in reversed(self._shown.items()):
            if old_after != after[:500] or old_kind != kind:
                continue
            for k in range(min(200, len(before)) + 1):
                if before.endswith(tail, 0, len(before) - k):  # no copy of `before` per k
                    typed = before[len(before) - k:]
                    rest = [t[k:] for t in texts if t.startswith(typed) and len(t) > k]
                    if rest:
                        return rest
                    break
        return None

    @staticmethod
    def _rank_by_syntax(texts: list[str], before: str, rest: str, language_id: str) -> list[str]:
        """Candidates that would add tree-sitter ERROR nodes go below those that parse."""
        parser = parser_for(language_id)
        if parser is None or len(texts) < 2:
            return texts
        if parse(before + rest, language_id).root_node.has_error:
            return texts  # the file has errors already: nothing to tell candidates apart by

        def adds_errors(text: str) -> bool:
            return parse(before + text + rest, language_id).root_node.has_error

        return sorted(texts, key=adds_errors)

    def shutdown(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)
