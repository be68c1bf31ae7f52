"""The canvas: the token rows a diffusion decoder denoises.

Every row is laid out as

    [ head | hole (masked) | tail | right padding ]

head is the prefix (or the prompt), tail the suffix (empty for generation).
All rows share the head, so the hole starts at the same slot everywhere; the
hole's length may differ per row (one row per candidate canvas size), which
shifts the tail and leaves right padding that attention masks out.

End handling: once a row commits an end token (eos or pad) in its hole, every
later hole slot becomes pad, so the loop ends as soon as no mask remains
before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Canvas:
    ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor | None  # [B, L] bool, None when no row is padded
    hole_start: int
    hole_len: torch.Tensor  # [B]
    mask_id: int
    pad_id: int
    end_ids: tuple[int, ...]
    # log-probability each hole token had when it was committed: [B, W], NaN until then
    logp: torch.Tensor = field(init=False)

    def __post_init__(self):
        self.logp = torch.full((self.batch, self.hole_width), float("nan"), device=self.ids.device)

    @property
    def batch(self) -> int:
        return self.ids.shape[0]

    @property
    def hole_width(self) -> int:
        return int(self.hole_len.max()) if self.hole_len.numel() else 0

    @property
    def hole_slots(self) -> torch.Tensor:
        """Canvas slots [W] of the widest hole."""
        return torch.arange(self.hole_start, self.hole_start + self.hole_width, device=self.ids.device)

    def in_hole(self) -> torch.Tensor:
        """[B, W]: which hole slots belong to each row's hole."""
        return torch.arange(self.hole_width, device=self.ids.device) < self.hole_len[:, None]

    def hole_ids(self) -> torch.Tensor:
        return self.ids[:, self.hole_start:self.hole_start + self.hole_width]

    def masked(self) -> torch.Tensor:
        """[B, W]: hole slots still masked."""
        return (self.hole_ids() == self.mask_id) & self.in_hole()

    def commit(self, select: torch.Tensor, tokens: torch.Tensor, logp: torch.Tensor, start: int = 0) -> int:
        """Write tokens where select, then apply end handling. Returns how many were committed.

        select, tokens, logp: [B, w] for hole columns [start, start + w).
        """
        a, b = self.hole_start + start, self.hole_start + start + select.shape[1]
        self.ids[:, a:b] = torch.where(select, tokens, self.ids[:, a:b])
        self.logp[:, start:start + select.shape[1]] = torch.where(
            select, logp, self.logp[:, start:start + select.shape[1]])
        self.pad_after_end()
        return int(select.sum())

    def _end_slots(self) -> torch.Tensor:
        """[B, W]: hole slots holding an end token."""
        hole = self.hole_ids()
        return torch.isin(hole, torch.tensor(self.end_ids, device=hole.device)) & self.in_hole()

    def pad_after_end(self) -> None:
        hole = self.hole_ids()
        ends = self._end_slots()
        if not ends.any():
            return
        width = self.hole_width
        first_end = torch.where(ends.any(1), ends.int().argmax(1), width)
        after = (torch.arange(width, device=hole.device) > first_end[:, None]) & self.in_hole()
        self.ids[:, self.hole_start:self.hole_start + width] = hole.masked_fill(after, self.pad_id)
        self.logp = self.logp.masked_fill(after, float("nan"))

    def content(self, row: int) -> list[int]:
        """The hole's tokens in `row`, up to its first end token or remaining mask."""
        out = []
        for token in self.hole_ids()[row, : int(self.hole_len[row])].tolist():
            if token in self.end_ids or token == self.mask_id:
                break
            out.append(token)
        return out

    def ended(self) -> torch.Tensor:
        """[B]: rows whose hole holds an end token (the content fit the canvas)."""
        return self._end_slots().any(1)

    def score(self) -> torch.Tensor:
        """[B]: mean log-probability of each row's committed content tokens and end token.

        Slots turned to pad by end handling are not counted; a row with nothing
        committed scores -inf.
        """
        counted = ~torch.isnan(self.logp)
        total = torch.where(counted, self.logp, torch.zeros_like(self.logp)).sum(1)
        n = counted.sum(1)
        return torch.where(n > 0, total / n.clamp_min(1), torch.full_like(total, float("-inf")))


def build_canvas(head: list[int], hole_sizes: list[int], tail: list[int], *, copies: int, mask_id: int,
                 pad_id: int, end_ids: tuple[int, ...], device=None) -> Canvas:
    """Rows for `copies` candidates x `hole_sizes`: row = candidate * len(hole_sizes) + size index."""
    sizes = [size for _ in range(copies) for size in hole_sizes]
    length = len(head) + max(sizes) + len(tail)
    ids = torch.full((len(sizes), length), pad_id, dtype=torch.long)
    attention = torch.zeros(len(sizes), length, dtype=torch.bool)
    for row, size in enumerate(sizes):
        tokens = head + [mask_id] * size + tail
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        attention[row, : len(tokens)] = True
    return Canvas(
        ids=ids.to(device),
        attention_mask=None if bool(attention.all()) else attention.to(device),
        hole_start=len(head),
        hole_len=torch.tensor(sizes, device=device),
        mask_id=mask_id,
        pad_id=pad_id,
        end_ids=end_ids,
    )
