"""coda_core.budget: the canvas sizes of a hole and the context's split, shared by the sampler and coda-lsp."""

import subprocess
import sys

import pytest

from coda_core.budget import DEFAULT_SIZES, canvas_sizes, split_context


@pytest.mark.parametrize("largest, wanted, sizes", [
    (64, DEFAULT_SIZES, [8, 16, 32, 64]),
    (20, DEFAULT_SIZES, [8, 16, 20]),  # capped at the largest, which is one of them
    (256, DEFAULT_SIZES, [8, 16, 32, 64, 256]),
    (8, DEFAULT_SIZES, [8]),
    (5, DEFAULT_SIZES, [5]),
    (12, (8, 16, 32), [8, 12]),
    (16, (16,), [16]),
])
def test_canvas_sizes_are_the_wanted_ones_below_the_largest_and_the_largest(largest, wanted, sizes):
    assert canvas_sizes(largest, wanted) == sizes


@pytest.mark.parametrize("total, prefix, suffix, kept", [
    (100, 30, 50, (30, 50)),  # both fit: nothing cut
    (100, 500, 500, (50, 50)),  # both long: the suffix gets half
    (101, 500, 500, (51, 50)),  # an odd token goes to the prefix
    (100, 10, 500, (10, 90)),  # a short prefix leaves the suffix its room
    (100, 500, 10, (90, 10)),  # a short suffix leaves the prefix its room
    (0, 5, 5, (0, 0)),
])
def test_split_context(total, prefix, suffix, kept):
    assert split_context(total, prefix, suffix) == kept


def test_split_context_keeps_as_much_as_fits_and_no_more():
    for total in range(0, 40):
        for prefix in range(0, 40, 3):
            for suffix in range(0, 40, 3):
                keep_prefix, keep_suffix = split_context(total, prefix, suffix)
                assert 0 <= keep_prefix <= prefix and 0 <= keep_suffix <= suffix
                assert keep_prefix + keep_suffix == min(total, prefix + suffix)
                assert keep_suffix >= min(suffix, total // 2) and keep_prefix >= min(prefix, total - total // 2)


def test_the_language_server_applies_the_rules_without_torch():
    # coda-lsp answers `initialize` before the model (and torch) loads; its context module uses these rules.
    code = "import sys, coda_core.budget, coda_lsp.context; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
