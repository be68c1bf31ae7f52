"""The completion engine (coda_lsp.engine): character offsets of the document in and out, the status
it reports while the model's answers keep coming back empty, its decode settings and canvas sizes."""

import asyncio

from coda_lsp.engine import EMPTY_WARNING, LINE_SUB_BLOCK, Engine
from coda_lsp.models import ModelHost
from coda_lsp.settings import Settings
from coda_lsp.window import WHOLE_CHARS

EMPTY = f"the last {EMPTY_WARNING} completions were empty: the model suggested only whitespace or nothing"
BEFORE, AFTER = "def mean(values):\n    total = sum(", ")\n    return total / len(values)\n"


def loaded(model_dir) -> Engine:
    engine = Engine(Settings(model=str(model_dir), device="cpu"))
    assert engine.models.load() is None
    return engine


def switch(engine: Engine, model_dir) -> None:
    engine.settings.update({"model": str(model_dir)})
    assert engine.models.load() is None


def complete(engine: Engine, source: str, offset: int, uri: str = "file:///a.py"):
    return asyncio.run(engine.complete(uri, source, offset, "python"))


def test_a_completion_replaces_a_range_of_document_offsets(coda_mini_dir):
    """The cursor goes in as a character offset of the document, and each completion comes out with
    the document offsets it replaces: from the cursor over the closer the editor inserted. In a large
    document too, whose window (what the hole is chosen in) starts far into it."""
    engine = loaded(coda_mini_dir)
    try:
        for head in ("", "".join(f"value_{i} = compute({i})  # é\n" for i in range(12000))):
            source, offset = head + BEFORE + AFTER, len(head + BEFORE)
            assert (len(source) > WHOLE_CHARS) == bool(head)
            completions = complete(engine, source, offset)
            assert completions and {(c.start, c.end) for c in completions} == {(offset, offset + 1)}, completions
    finally:
        engine.shutdown()


def test_empty_answers_are_reported_at_the_fifth_and_their_end_once(blank_model_dir, coda_mini_dir):
    engine = loaded(blank_model_dir)
    statuses = []
    engine.on_status = lambda *status: statuses.append(status)
    try:
        for answered in range(1, EMPTY_WARNING + 3):
            assert complete(engine, BEFORE + AFTER, len(BEFORE)) == []
            assert len(statuses) == (answered >= EMPTY_WARNING), (answered, statuses)
        assert statuses == [("ready", str(blank_model_dir), EMPTY)]
        switch(engine, coda_mini_dir)  # a model that answers
        for cursor in (len(BEFORE), len(BEFORE) - 1):
            assert complete(engine, BEFORE + AFTER, cursor)
        assert statuses[1:] == [("ready", str(coda_mini_dir), engine.models.computing)]
    finally:
        engine.shutdown()


def test_a_streak_ended_in_another_document_meanwhile_is_reported(blank_model_dir, coda_mini_dir):
    """The fifth empty answer (in a.py) and the first one with text (in b.py, asked while a.py's
    waited for the model) both reach the status, in the order the answers came."""
    engine = loaded(blank_model_dir)
    statuses = []
    engine.on_status = lambda *status: statuses.append(status)
    source, offset = BEFORE + AFTER, len(BEFORE)

    async def both():
        fifth = asyncio.create_task(engine.complete("file:///a.py", source, offset, "python"))
        await asyncio.sleep(0)  # one turn of the loop: the task takes the blank model and waits for its decode
        switch(engine, coda_mini_dir)
        answered = await engine.complete("file:///b.py", source, offset, "python")
        return await fifth, answered

    try:
        for _ in range(EMPTY_WARNING - 1):
            assert complete(engine, source, offset) == []
        fifth, answered = asyncio.run(both())
        assert fifth == [] and answered
        in_use = str(coda_mini_dir)  # a status names the model in use when it is sent
        assert statuses == [("ready", in_use, EMPTY), ("ready", in_use, engine.models.computing)]
    finally:
        engine.shutdown()


def test_decode_settings_apply_without_a_model_reload():
    """threshold and blockSize do not reload the model, so each request reads them afresh."""
    engine = Engine(Settings())
    key = ModelHost.key(engine.settings)
    assert engine.settings.update({"threshold": 0.5, "blockSize": 8}) == []
    assert ModelHost.key(engine.settings) == key
    line, block = engine.options("line"), engine.options("block")
    assert (line.threshold, line.block_size, line.sub_block_size) == (0.5, 8, LINE_SUB_BLOCK)
    assert (block.threshold, block.block_size, block.sub_block_size) == (0.5, 8, None)


def test_canvas_sizes_per_hole_kind():
    engine = Engine(Settings())
    assert engine.canvas_sizes("line") == [16]  # while typing: one canvas, the fastest answer
    assert engine.canvas_sizes("line", alternatives=True) == [8, 16, 32]
    assert engine.canvas_sizes("block") == [8, 16, 32, 64]
    engine.settings.update({"maxNewTokens": 256, "candidates": 1})
    assert engine.canvas_sizes("block") == [8, 16, 32, 64, 256]
    assert engine.canvas_sizes("line", alternatives=True) == [16]  # one candidate wanted: no alternatives
    engine.settings.update({"maxNewTokens": 8})
    assert engine.canvas_sizes("line") == [8] and engine.canvas_sizes("block") == [8]
