"""The completion engine behind the server: latest request wins.

Editor concepts stop here; below is `coda_core.sampler`, run by the model's
one owner (coda_lsp.models). Per document only the newest request matters:
starting one tells the older one to stop (its denoising loop checks between
steps) and the older one is answered with an empty result. A
`$/cancelRequest` stops a request the same way.

A completion is a short pipeline, each stage in the module named after it:
take the part of the document around the cursor (window: the stages after it
never see more of a large document), locate the hole (holes), try the
completions shown a keystroke ago (cache), take the context (context), decode
on the model thread (models, then coda_core.sampler), filter and rank
(postprocess). The context holds snippets of the project's other files
(project gathers them, related ranks them). The code actions' edits run
beside it, on the same model, in coda_lsp.edits.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass

from coda_core.budget import canvas_sizes

from .cache import ShownCompletions
from .context import ModelInput, context_room, model_input
from .holes import Hole, choose_hole
from .models import ModelHost, StatusCallback
from .postprocess import clean, rank_by_syntax
from .project import Project, RelatedFile
from .settings import Settings
from .window import Window, chars_for


# Canvas sizes per hole kind. A line hole wants the rest of one line, and its decode ends once
# every row has committed its first line: one canvas while typing (a greedy decode gives one text
# per canvas size), three when the user asks for alternatives. A block hole gets the sampler's
# spread of sizes (coda_core.budget). Measured in docs/PERFORMANCE.md (`coda bench lsp`).
LINE_SIZES = (16,)
LINE_ALTERNATIVE_SIZES = (8, 16, 32)
LINE_SUB_BLOCK = 4
EMPTY_WARNING = 5  # model answers in a row with nothing in them before the user is told
logger = logging.getLogger(__name__)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


@dataclass(frozen=True)
class _Cursor:
    """The text around the cursor, split once, as the stages of a completion read it."""
    before: str
    after: str
    current_after: str  # the rest of the cursor's line
    rest: str  # what stays after the completion: the text after the range it replaces
    replacing: bool  # the completion replaces text after the cursor (closers the editor inserted)
    hole: Hole
    language_id: str

    @classmethod
    def at(cls, window: Window, hole: Hole, language_id: str) -> "_Cursor":
        text, offset = window.text, window.cursor
        after = text[offset:]
        end = after.find("\n")
        return cls(text[:offset], after, after if end < 0 else after[:end], text[hole.replace_end:],
                   hole.replace_end > offset, hole, language_id)


@dataclass(frozen=True)
class Completion:
    text: str
    start: int  # the document's character offsets it replaces (start is the cursor)
    end: int


class Engine:
    """Completions for the server: editor text and a cursor in, texts for the cursor out. Both ends are
    character offsets of the document; the server converts them from and to LSP positions."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings()
        self.models = ModelHost(self.settings)
        self._latest: dict[str, int] = {}
        self._counter = 0
        self._lock = threading.Lock()
        self.shown = ShownCompletions()
        # on_status(state, model, message): told when the model's answers start and stop coming back
        # empty, as `models.on_status` is told of loads (the server sends both as coda/status)
        self.on_status: StatusCallback = lambda state, model, message=None: None
        self._empty_streak = 0  # model answers in a row that had nothing left after cleaning
        self.timings: deque[dict] = deque(maxlen=1024)  # where each recent answer's time went (ms)
        self.project = Project()  # the other files a completion may take snippets from (the server fills it)
        self.last_context: ModelInput | None = None  # what the model was given for the last decode

    # -- requests ----------------------------------------------------------

    def supersede(self, uri: str) -> int:
        """A new request in `uri`: the ones before it there stop."""
        with self._lock:
            self._counter += 1
            self._latest[uri] = self._counter
            return self._counter

    def is_current(self, uri: str, token: int) -> bool:
        return self._latest.get(uri) == token

    def enabled_for(self, language_id: str) -> bool:
        return self.settings.languages is None or language_id in self.settings.languages

    def window(self, source: str, start: int, end: int | None = None) -> Window | None:
        """The part of the document a completion at `start` (or an edit of [start, end)) works on
        (coda_lsp.window); None when it is not valid Unicode (JSON allows lone surrogates, which
        neither UTF-8 nor the tokenizer take)."""
        s = self.settings
        span = 0 if end is None else max(0, end - start)
        window = Window.around(source, start, chars_for(s.context_before), chars_for(s.context_after) + span)
        try:
            window.text.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return window

    async def complete(self, uri: str, source: str, offset: int, language_id: str, *,
                       alternatives: bool = False) -> list[Completion]:
        """Completions for the cursor at character `offset` of the document `source`. Empty when superseded.

        Take the window around the cursor, locate the hole in it, try the texts shown a few
        keystrokes ago, else take the context and decode; then filter and rank. While the user
        types, a line hole is decoded as one canvas, the fastest answer; with `alternatives` (the
        user asked), at several canvas sizes, for up to `candidates` texts.
        """
        token = self.supersede(uri)
        sampler = self.models.current()
        if sampler is None or not self.enabled_for(language_id):
            return []
        started = time.perf_counter()
        window = self.window(source, offset)
        if window is None:
            return []
        hole = choose_hole(window.text, window.cursor, language_id, in_comments=self.settings.complete_in_comments,
                           syntax=window.whole)
        if hole.kind == "none":
            return []
        at = _Cursor.at(window, hole, language_id)
        timing = {"hole_ms": _ms_since(started)}
        texts = None if alternatives else self.shown.typed_ahead(at.before, at.after, hole.kind)
        if texts is not None:
            timing["typed_ahead"] = True
        else:
            related = self.related_files(uri, language_id, source)
            result = await self._decode(uri, token, sampler, at, related, alternatives)
            if result is None:
                return []
            result, context_ms = result
            timing.update(context_ms=context_ms, decode_ms=result.ms, prefill_ms=result.stats.prefill_ms,
                          steps_ms=result.stats.steps_ms, steps=result.stats.steps,
                          reused_prefix=result.stats.reused_prefix)
            post = time.perf_counter()
            texts = self._filter(result, at)
            self._count_empty(texts)
            if window.whole:  # a piece of a document parses with errors of its own
                texts = rank_by_syntax(texts, at.before, at.rest, language_id)
            self.shown.remember(at.before, at.after, hole.kind, texts)
            timing["post_ms"] = _ms_since(post)
        timing["total_ms"] = _ms_since(started)
        self.timings.append(timing)
        logger.debug("completion in %s: %s", uri, timing)
        end = window.start + hole.replace_end
        return [Completion(t, offset, end) for t in texts[: self.settings.candidates]]

    def related_files(self, uri: str, language_id: str, source: str) -> list[RelatedFile]:
        """The other files' texts a completion in `uri` may take snippets from, as the settings allow.
        Gathered on the message loop, where the open documents change; ranked on the model thread."""
        s = self.settings
        if s.context_files <= 0:
            return []
        return self.project.files(uri, language_id, source, open_files=s.context_open_files,
                                  imports=s.context_imports, recent_edits=s.context_recent_edits)

    async def _decode(self, uri: str, token: int, sampler, at: "_Cursor", related: list[RelatedFile],
                      alternatives: bool):
        """(result, context ms) of the model's fill at the cursor, or None when superseded or cancelled."""
        cancelled = threading.Event()
        stop = lambda: cancelled.is_set() or not self.is_current(uri, token)
        try:
            result = await self.models.run(self._fill, sampler, at, related, alternatives, stop)
        except asyncio.CancelledError:
            cancelled.set()  # the decode on the model thread stops at its next step
            raise
        return result if result is not None and self.is_current(uri, token) else None

    def _fill(self, sampler, at: "_Cursor", related: list[RelatedFile], alternatives: bool, stop):
        s = self.settings
        if stop():
            return None
        kind = at.hole.kind
        sizes = self.canvas_sizes(kind, alternatives)
        started = time.perf_counter()
        given = model_input(sampler.tokenizer, at.before, at.after, at.language_id, s.context_before,
                            s.context_after, context_room(sampler.max_context, max(sizes)), related, s.context_files)
        context_ms = _ms_since(started)
        self.last_context = given
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("context of a completion:\n  %s", "\n  ".join(given.describe()))
        # A newer keystroke stops this decode within a layer, so its own decode starts sooner.
        result = sampler.infill(given.prefix, given.suffix, max(sizes), sizes=sizes, n=s.candidates, should_stop=stop,
                                options=self.options(kind), first_line=kind == "line", between_layers=True)
        return None if result.stats.stopped else (result, context_ms)

    def _filter(self, result, at: "_Cursor") -> list[str]:
        """The candidates' texts cleaned for the hole, without repeats and empties."""
        hole = at.hole
        texts = [clean(c.text, hole.kind, hole.indent, at.current_after, at.replacing) for c in result.candidates]
        return [t for t in dict.fromkeys(texts) if t]

    def _count_empty(self, texts: list[str]) -> None:
        """Tell `on_status` when the model's answers keep coming back empty, and when that ends: a model
        that suggests only whitespace would otherwise look like no model at all. Counted as each answer
        is filtered, so requests in several documents at once neither miss a change nor repeat one."""
        before = self._empty_streak
        self._empty_streak = 0 if texts else before + 1
        model = self.models.name
        if self._empty_streak == EMPTY_WARNING:
            message = f"the last {EMPTY_WARNING} completions were empty: the model suggested only whitespace or nothing"
            logger.warning("coda-lsp: %s (model %s)", message, model)
            self.on_status("ready", model, message)
        elif self._empty_streak == 0 and before >= EMPTY_WARNING:
            self.on_status("ready", model, self.models.computing)

    def options(self, kind: str = "block"):
        """Decode options from the settings as they are now (they change without a model reload)."""
        from coda_core.denoise import DecodeOptions

        s = self.settings
        # A line hole's window moves left to right a few slots at a time, so its first line is
        # committed first and the decode can end there (see LINE_SIZES).
        sub_block = LINE_SUB_BLOCK if kind == "line" else None
        return DecodeOptions(threshold=s.threshold, block_size=s.block_size, sub_block_size=sub_block)

    def canvas_sizes(self, kind: str, alternatives: bool = False) -> list[int]:
        """The canvas sizes (hole tokens) a completion of `kind` is denoised at, one row each."""
        limit = self.settings.max_new_tokens
        if kind != "line":  # maxNewTokens is a block's largest canvas
            return canvas_sizes(limit)
        wanted = LINE_ALTERNATIVE_SIZES if alternatives and self.settings.candidates > 1 else LINE_SIZES
        return canvas_sizes(min(limit, max(wanted)), wanted)

    def shutdown(self) -> None:
        self.models.shutdown()
