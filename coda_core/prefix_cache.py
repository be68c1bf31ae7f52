"""Prefix reuse: K/V of a recent call's head, for a call whose prefix shares it.

An editor asks again after every keystroke with nearly the same prefix. The
most expensive part of a fast decode is its first full forward; when the new
canvas's head (its prefix) starts with a long run of the same tokens as a
recent call's, that run's K/V are taken from the recent call and only the
rest of the canvas is encoded, as one window forward over the cache.

This is an approximation: with bidirectional attention a head slot's K/V
depend on the whole canvas, which has changed. When the whole canvas is the
same the reused K/V are the ones a fresh forward computes. `coda bench sample`
measures how often outputs change (agreement with fresh computation).

Entries are kept per canvas layout (batch size and hole sizes, so that rows
line up), least recently used first out, within a byte budget.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch

from .canvas import Canvas
from .model import KVCache


@dataclass
class _Entry:
    head: torch.Tensor  # [P] token ids
    k: list[torch.Tensor]  # per layer [B, G, P, D]
    v: list[torch.Tensor]
    uses: int = 0

    @property
    def nbytes(self) -> int:
        return KVCache(self.k, self.v).nbytes()


class PrefixCache:
    def __init__(self, max_bytes: int = 1 << 30, min_tokens: int = 32, enabled: bool = True, max_entries: int = 16,
                 max_uses: int = 8):
        self.max_bytes = max_bytes
        # Only a fresh prefill is stored, and an entry serves at most `max_uses`
        # calls, so staleness cannot pile up while the user keeps typing.
        self.max_uses = max_uses
        self.min_tokens = min_tokens
        self.enabled = enabled
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()

    @staticmethod
    def _layout(canvas: Canvas) -> tuple:
        return canvas.batch, tuple(canvas.hole_len.tolist())

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, canvas: Canvas) -> tuple[_Entry | None, int]:
        """The entry sharing the longest head with `canvas`, and that length."""
        if not self.enabled:
            return None, 0
        head = canvas.ids[0, : canvas.hole_start]
        best, best_len = None, 0
        for key, entry in self._entries.items():
            if key[0] != self._layout(canvas) or entry.uses >= self.max_uses:
                continue
            n = min(len(entry.head), len(head))
            same = (entry.head[:n] == head[:n]).int()
            common = n if bool(same.all()) else int(same.argmin())
            if common > best_len:
                best, best_len = key, common
        if best is None:
            return None, 0
        self._entries.move_to_end(best)
        return self._entries[best], best_len

    def restore(self, canvas: Canvas, cache: KVCache) -> int:
        """Fill `cache` with the longest usable shared head; returns its length (0: nothing reused).

        The slot before the hole is never restored: it is fed again, since it
        predicts the hole's first token. The cache also records the canvas's
        padding, as prefill does, so the window step that encodes the rest of
        the canvas sees what a prefill would have seen.
        """
        entry, common = self.lookup(canvas)
        reuse = min(common, canvas.hole_start - 1)
        if entry is None or reuse < self.min_tokens:
            return 0
        entry.uses += 1
        for layer in range(len(cache.k)):
            cache.k[layer][:, :, :reuse] = entry.k[layer][:, :, :reuse]
            cache.v[layer][:, :, :reuse] = entry.v[layer][:, :, :reuse]
        cache.set_padding(canvas.attention_mask)
        return reuse

    def store(self, canvas: Canvas, cache: KVCache) -> None:
        """Keep the head K/V of `cache`, which a full prefill of `canvas` has just filled."""
        if not self.enabled or canvas.hole_start < self.min_tokens:
            return
        p = canvas.hole_start
        head = canvas.ids[0, :p].clone()
        entry = _Entry(head, [k[:, :, :p].clone() for k in cache.k], [v[:, :, :p].clone() for v in cache.v])
        if entry.nbytes > self.max_bytes:
            return
        key = (self._layout(canvas), tuple(head.tolist()))
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while self.nbytes > self.max_bytes or len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
