"""The completion engine (coda_lsp.engine): its decode settings and canvas sizes."""

from coda_lsp.engine import LINE_SUB_BLOCK, Engine
from coda_lsp.models import ModelHost
from coda_lsp.settings import Settings


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
