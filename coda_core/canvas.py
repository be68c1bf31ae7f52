"""The canvas: the token rows a diffusion decoder denoises.

One hole (infill, rewrite, generation): every row is laid out as

    [ head | hole (masked) | tail | right padding ]

head is the prefix (or the prompt), tail the suffix (empty for generation).
All rows share the head, so the hole starts at the same slot everywhere; the
hole's length may differ per row (one row per candidate canvas size), which
shifts the tail and leaves right padding that attention masks out.

Several holes ("fill all holes"): context pieces and holes alternate,

    [ piece 0 | hole 0 | piece 1 | hole 1 | ... | piece H ]

each hole with a fixed size, the same in every row, so all holes are masked
and denoised together. The decoders see only "hole columns": `hole_slots`
maps column j to its canvas slot and `hole_of` to its hole.

End handling: once a row commits an end token (eos or pad) in a hole, every
later slot of that hole becomes pad, so the loop ends as soon as no mask
remains before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Canvas:
    ids: torch.Tensor  # [B, L]
    attention_mask: torch.Tensor | None  # [B, L] bool, None when no row is padded
    hole_slots: torch.Tensor  # [W] canvas slot of each hole column, ascending
    hole_of: torch.Tensor  # [W] which hole each column belongs to (0 .. n_holes - 1)
    hole_len: torch.Tensor  # [B] columns of each row's holes in use (shorter rows end at their own length)
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
        return self.hole_slots.numel()

    @property
    def hole_start(self) -> int:
        """The first hole slot: everything before it is the shared head."""
        return int(self.hole_slots[0])

    @property
    def n_holes(self) -> int:
        return int(self.hole_of[-1]) + 1 if self.hole_width else 0

    def in_hole(self) -> torch.Tensor:
        """[B, W]: which hole columns belong to each row's holes."""
        return torch.arange(self.hole_width, device=self.ids.device) < self.hole_len[:, None]

    def hole_ids(self) -> torch.Tensor:
        """[B, W]: the tokens at the hole columns (a copy)."""
        return self.ids[:, self.hole_slots]

    def masked(self) -> torch.Tensor:
        """[B, W]: hole slots still masked."""
        return (self.hole_ids() == self.mask_id) & self.in_hole()

    def commit(self, select: torch.Tensor, tokens: torch.Tensor, logp: torch.Tensor, start: int = 0) -> int:
        """Write tokens where select, then apply end handling. Returns how many were committed.

        select, tokens, logp: [B, w] for hole columns [start, start + w).
        """
        columns = slice(start, start + select.shape[1])
        slots = self.hole_slots[columns]
        self.ids[:, slots] = torch.where(select, tokens, self.ids[:, slots])
        self.logp[:, columns] = torch.where(select, logp, self.logp[:, columns])
        self.pad_after_end()
        return int(select.sum())

    def _end_slots(self) -> torch.Tensor:
        """[B, W]: hole slots holding an end token."""
        hole = self.hole_ids()
        return torch.isin(hole, torch.tensor(self.end_ids, device=hole.device)) & self.in_hole()

    def pad_after_end(self) -> None:
        ends = self._end_slots()
        if not ends.any():
            return
        # ends seen so far within the same hole, excluding the column itself
        seen = ends.int().cumsum(1)
        first_column = torch.searchsorted(self.hole_of, self.hole_of)  # [W] first column of each hole
        before_hole = torch.where(first_column > 0, seen[:, (first_column - 1).clamp_min(0)], 0)
        after = (seen - before_hole - ends.int() > 0) & self.in_hole()
        self.ids[:, self.hole_slots] = self.hole_ids().masked_fill(after, self.pad_id)
        self.logp = self.logp.masked_fill(after, float("nan"))

    def first_line_settled(self, newline_ids: torch.Tensor) -> torch.Tensor:
        """[B]: rows whose first hole is committed from its start through a token in `newline_ids`
        (tokens holding a line break) or an end token: its first line can no longer change."""
        hole = self.hole_ids()
        in_first = self.in_hole() & (self.hole_of == 0)
        breaks = (torch.isin(hole, newline_ids) | torch.isin(hole, torch.tensor(self.end_ids, device=hole.device)))
        breaks &= in_first
        masked = (hole == self.mask_id) & in_first
        width = torch.full((self.batch,), self.hole_width, device=hole.device)
        first_break = torch.where(breaks.any(1), breaks.int().argmax(1), width)
        first_mask = torch.where(masked.any(1), masked.int().argmax(1), width)
        return first_break < first_mask

    def contents(self, row: int) -> list[list[int]]:
        """Each hole's tokens in `row`, up to its first end token or remaining mask."""
        out = [[] for _ in range(self.n_holes)]
        stopped = [False] * self.n_holes
        width = int(self.hole_len[row])
        for token, hole in zip(self.hole_ids()[row, :width].tolist(), self.hole_of[:width].tolist()):
            if stopped[hole] or token in self.end_ids or token == self.mask_id:
                stopped[hole] = True
                continue
            out[hole].append(token)
        return out

    def ended(self) -> torch.Tensor:
        """[B]: rows where every hole holds an end token (the content fit the canvas)."""
        per_hole = torch.zeros(self.batch, self.n_holes, dtype=torch.int, device=self.ids.device)
        per_hole.index_add_(1, self.hole_of, self._end_slots().int())
        return (per_hole > 0).all(1)

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
    """One hole: rows for `copies` candidates x `hole_sizes`, row = candidate * len(hole_sizes) + size index."""
    sizes = [size for _ in range(copies) for size in hole_sizes]
    rows = [head + [mask_id] * size + tail for size in sizes]
    width = max(sizes)
    return _canvas(rows, list(range(len(head), len(head) + width)), [0] * width, sizes, mask_id=mask_id,
                   pad_id=pad_id, end_ids=end_ids, device=device)


def build_holes_canvas(pieces: list[list[int]], hole_sizes: list[int], *, copies: int, mask_id: int, pad_id: int,
                       end_ids: tuple[int, ...], device=None) -> Canvas:
    """Several holes: pieces[0] hole 0 pieces[1] ... pieces[H], hole i of hole_sizes[i] masks; `copies` rows."""
    if len(pieces) != len(hole_sizes) + 1:
        raise ValueError(f"{len(hole_sizes)} holes need {len(hole_sizes) + 1} context pieces, got {len(pieces)}")
    tokens, slots, hole_of = list(pieces[0]), [], []
    for hole, (size, piece) in enumerate(zip(hole_sizes, pieces[1:])):
        slots += range(len(tokens), len(tokens) + size)
        hole_of += [hole] * size
        tokens += [mask_id] * size + list(piece)
    return _canvas([tokens] * copies, slots, hole_of, [len(slots)] * copies, mask_id=mask_id, pad_id=pad_id,
                   end_ids=end_ids, device=device)


def _canvas(rows: list[list[int]], slots: list[int], hole_of: list[int], hole_len: list[int], *, mask_id: int,
            pad_id: int, end_ids: tuple[int, ...], device) -> Canvas:
    """Right-pad `rows` to one length and wrap them with their hole layout.

    The rows are written on the host, element by element, and moved to `device` in one copy each.
    """
    length = max(len(row) for row in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long, device="cpu")
    attention = torch.zeros(len(rows), length, dtype=torch.bool, device="cpu")
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long, device="cpu")
        attention[i, : len(row)] = True
    return Canvas(
        ids=ids.to(device),
        attention_mask=None if bool(attention.all()) else attention.to(device),
        hole_slots=torch.tensor(slots, dtype=torch.long, device=device),
        hole_of=torch.tensor(hole_of, dtype=torch.long, device=device),
        hole_len=torch.tensor(hole_len, device=device),
        mask_id=mask_id,
        pad_id=pad_id,
        end_ids=end_ids,
    )
