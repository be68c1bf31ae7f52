"""How a decode spends its tokens: the canvas sizes of a hole, and the context around it.

Both rules are shared by the sampler (token ids) and the language server
(text it tokenizes near the cursor), so each is written here once. This
module imports nothing, torch included: the server applies the rules before
(and without) loading the runtime.
"""

from __future__ import annotations

from typing import Sequence

# Hole tokens of the rows an infill of unknown length denoises side by side (the sampler's default).
DEFAULT_SIZES = (8, 16, 32, 64)


def canvas_sizes(largest: int, wanted: Sequence[int] = DEFAULT_SIZES) -> list[int]:
    """The sizes of `wanted` below `largest`, and `largest` itself, ascending: no canvas is larger
    than the hole may grow, and the largest it may grow to is always one of them."""
    return sorted({size for size in wanted if size < largest} | {largest})


def split_context(total: int, prefix: int, suffix: int) -> tuple[int, int]:
    """How many of `prefix` and `suffix` tokens to keep so that together they fit `total`.

    The suffix keeps up to half of `total`, and more when the prefix leaves it room; the prefix
    gets the rest. Code before the cursor usually says more about what comes next, but the code
    right after the hole says where the fill must end, so neither side may crowd out the other.
    A prefix is cut from its start and a suffix from its end (the caller's part).
    """
    keep_suffix = min(suffix, max(total // 2, total - prefix))
    return min(prefix, total - keep_suffix), keep_suffix
