"""The code actions' edits: which apply at a place, and planning each one.

Four actions, each named once here (`Action`: its title in the editor's menu,
its command, and what its progress and messages call it):

    REGENERATE   re-mask the selection and denoise it with both sides as context
    INSTRUCT     rewrite the selection as an instruction says (instruction models)
    IMPLEMENT    fill the placeholder body of the function at the cursor
    FILL_HOLES   fill every placeholder in the selection (or the function or class around the cursor)

A plan is an `Edit`, or `Unavailable` and why. Planning finds the targets
(coda_lsp.actions) and costs no model time; the edit's `run` decodes on the
model thread. Positions are character offsets of the text the plan was made
for. This is the planning; carrying a plan out for the client (progress,
cancellation, workspace/applyEdit) is coda_lsp.client_edits'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, Protocol

from coda_core.chat import fenced_code

from .actions import Placeholder, empty_function_at, instruction_above, placeholders_in, scope_at
from .context import context_room, context_window
from .postprocess import clean
from .text import position_of, row_col, split_lines


@dataclass(frozen=True)
class Action:
    """A code action: `title` in the editor's menu, the `command` (workspace/executeCommand) it runs,
    and the `label` its progress and messages give a run of it ("CoDA: rewrite was not applied: ...");
    `{n}` in a label stands for the number of spans the edit changes."""
    title: str
    command: str
    label: str
    at_cursor: bool = False  # the command takes the start of the code action's range, not the range

    def arguments(self, uri: str, rng) -> list:
        """The command's arguments for the code action offered on the LSP range `rng`."""
        return [uri, rng.start if self.at_cursor else rng]


# The editors (editors/vscode, editors/neovim) run the commands and show the titles, and users read
# the labels: keep all three as they are.
REGENERATE = Action("Regenerate selection", "coda.regenerateSelection", "regenerate")
INSTRUCT = Action("Rewrite selection with instruction", "coda.rewriteWithInstruction", "rewrite")
IMPLEMENT = Action("Implement function body", "coda.implementFunction", "implement function", at_cursor=True)
FILL_HOLES = Action("Fill all holes", "coda.fillHoles", "fill {n} holes")
ACTIONS = (REGENERATE, INSTRUCT, IMPLEMENT, FILL_HOLES)


class EditProgress(Protocol):
    """What an edit's decode reports its steps to and asks whether to stop, from the model thread
    (coda_lsp.client_edits.CommandRun)."""

    def report(self, step: int, text: str, done: float) -> None: ...

    def stopped(self) -> bool: ...


@dataclass(frozen=True)
class Edit:
    """A planned edit: `run(progress)` gives one new text per span of `source` (None: leave it),
    or None when stopped or the model had nothing."""
    action: Action
    source: str
    spans: list[tuple[int, int]]
    run: Callable[[EditProgress], Awaitable[list[str | None] | None]]

    @property
    def label(self) -> str:
        return self.action.label.format(n=len(self.spans))


@dataclass(frozen=True)
class Unavailable:
    """An edit the user asked for that cannot be made here, and why. A `quiet` one is only logged:
    the editors explain it themselves (VS Code's Implement Function when the command answers False;
    Neovim's :CodaImplement and :CodaFill when the code action is not offered, before running it)."""
    reason: str
    quiet: bool = False


Plan = Edit | Unavailable


def _finished(result) -> bool:
    """A decode that ran to its end: not stopped, every masked token committed."""
    return result is not None and not result.stats.stopped and result.stats.complete


class Edits:
    """The edits, run on the engine's model (an edit outranks pending completions in its document)."""

    def __init__(self, engine):
        self.engine = engine

    def available(self, text: str, start: int, end: int, language_id: str) -> list[Action]:
        """The actions that apply to the selection text[start:end] (empty: the cursor)."""
        if self.engine.models.current() is None:
            return []
        actions = [REGENERATE, INSTRUCT]
        if empty_function_at(text, *row_col(text, start), language_id) is not None:
            actions.append(IMPLEMENT)
        if self._holes(text, start, end, language_id):
            actions.append(FILL_HOLES)
        return actions

    # -- plans ------------------------------------------------------------------

    def regenerate(self, uri: str, text: str, start: int, end: int) -> Plan:
        def work(sampler, progress):
            span = sampler.tokenizer.encode(text[start:end], add_special_tokens=False)
            prefix, suffix = self._context(sampler, text, start, end, 2 * len(span) + 8)
            return sampler.rewrite(prefix, span, suffix, options=self.engine.options(),
                                   should_stop=progress.stopped, on_progress=progress.report)

        async def run(progress):
            result = await self._run(uri, work, progress)
            return [result.text] if _finished(result) else None

        return Edit(REGENERATE, text, [(start, end)], run)

    def instruct(self, uri: str, text: str, start: int, end: int, instruction: str | None) -> Plan:
        """The instruction is given (clients prompt for it), or a comment line above the selection."""
        instruction = instruction or instruction_above(split_lines(text), position_of(text, start).line)
        if not instruction:
            return Unavailable("no instruction given (pass one, or write it in a comment line above the selection)")
        span = text[start:end]
        context = text[max(0, start - 4000):start][-2000:]

        def work(sampler, progress):
            prompt = sampler.chat_prompt([{"role": "user", "content": (
                f"{instruction.strip()}\n\nRewrite this code accordingly. It follows:\n```\n{context}\n```\n"
                f"The code to rewrite:\n```\n{span}\n```\nAnswer with only the rewritten code in one fenced block.")}])
            budget = 2 * len(sampler.tokenizer.encode(span)) + 32
            return sampler.generate(prompt, budget, should_stop=progress.stopped, on_progress=progress.report,
                                    options=self.engine.options())

        async def run(progress):
            result = await self._run(uri, work, progress)
            if result is None or result.stats.stopped:
                return None
            code = fenced_code(result.text)
            code = result.text if code is None else code
            return [code.rstrip("\n") + ("\n" if span.endswith("\n") else "") if code.strip() else None]

        return Edit(INSTRUCT, text, [(start, end)], run)

    def implement(self, uri: str, text: str, at: int, language_id: str) -> Plan:
        """Fill the placeholder body of the function around offset `at` from everything around it."""
        found = empty_function_at(text, *row_col(text, at), language_id)
        if found is None:
            return Unavailable("no function with a placeholder body at the cursor", quiet=True)
        start, end, indent = found
        budget = 2 * self.engine.settings.max_new_tokens

        def work(sampler, progress):
            prefix, suffix = self._context(sampler, text, start, end, budget)
            return sampler.infill(prefix, suffix, budget, options=self.engine.options(),
                                  should_stop=progress.stopped, on_progress=progress.report)

        async def run(progress):
            result = await self._run(uri, work, progress)
            return [clean(result.text, "block", indent.lstrip("\n"), "", True) or None] if _finished(result) else None

        return Edit(IMPLEMENT, text, [(start, end)], run)

    def fill_holes(self, uri: str, text: str, start: int, end: int, language_id: str) -> Plan:
        """Fill every placeholder in text[start:end] (or around the cursor) in one decode, all masked at once.

        Its run raises ValueError when the code between the holes does not fit the model's context.
        """
        holes = self._holes(text, start, end, language_id)
        if not holes:
            return Unavailable("no placeholders in the selection or the function at the cursor", quiet=True)
        s = self.engine.settings
        bounds = [0] + [offset for hole in holes for offset in (hole.start, hole.end)] + [len(text)]
        pieces = [text[a:b] for a, b in zip(bounds[::2], bounds[1::2])]
        sizes = [max(self.engine.canvas_sizes(hole.kind)) for hole in holes]

        def work(sampler, progress):
            tok = sampler.tokenizer
            middle = [tok.encode(piece, add_special_tokens=False) for piece in pieces[1:-1]]
            canvas = sum(sizes) + sum(map(len, middle))  # the holes and the code between them
            head, tail = context_window(tok, pieces[0], pieces[-1], s.context_before, s.context_after,
                                        total=context_room(sampler.max_context, canvas))
            return sampler.fill_holes([head, *middle, tail], sizes, should_stop=progress.stopped,
                                      on_progress=progress.report, options=self.engine.options())

        async def run(progress):
            result = await self._run(uri, work, progress)
            if result is None or result.stats.stopped or not result.candidates:
                return None
            return [_fitted(hole, fill, after, text) for hole, fill, after
                    in zip(holes, result.candidates[0].fills, pieces[1:])]

        return Edit(FILL_HOLES, text, [(hole.start, hole.end) for hole in holes], run)

    # -- shared -----------------------------------------------------------------

    @staticmethod
    def _holes(text: str, start: int, end: int, language_id: str) -> list[Placeholder]:
        """Placeholders in the selection; with an empty one, in the function or class at the cursor."""
        if start == end:
            start, end = scope_at(text, *row_col(text, start), language_id)
        return placeholders_in(text, start, end, language_id)

    def _context(self, sampler, text: str, start: int, end: int, canvas: int):
        """Prefix and suffix token ids around text[start:end], decoded on a canvas of `canvas` tokens."""
        s = self.engine.settings
        return context_window(sampler.tokenizer, text[:start], text[end:], s.context_before, s.context_after,
                              total=context_room(sampler.max_context, canvas))

    async def _run(self, uri: str, work, progress: EditProgress):
        """`work(sampler, progress)` on the model thread; None without a model. Pending completions
        in the same document stop: the edit outranks them."""
        self.engine.supersede(uri)
        sampler = self.engine.models.current()
        if sampler is None:
            return None
        return await self.engine.models.run(work, sampler, progress)


def _fitted(hole: Placeholder, fill: str, after: str, text: str) -> str | None:
    """A hole's fill cleaned for its place; an insertion becomes a line of its own."""
    fill = clean(fill, hole.kind, hole.indent, after.split("\n", 1)[0], True) or None
    if fill is not None and hole.start == hole.end:
        fill = fill + "\n" if hole.start < len(text) or text.endswith("\n") else "\n" + fill
    return fill
