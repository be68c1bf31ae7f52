"""The training objective: where the masks fall, and the loss over them.

Per sequence a noise level t ~ U(eps, 1). Every maskable token becomes
<|mask|> with probability t, so t is also the expected masked fraction. The
loss is the cross-entropy at the masked targets weighted by 1/t, summed and
divided by batch x length (the report's normalisation) or, selectable, by the
number of masked targets.

Strategies shape *where* the masks fall without changing the rate t:

  S1 unmaskable prefix  with probability `prefix`, drawn once per batch, every
                        row keeps a random-length prefix clean (the model
                        learns to continue a prompt).
  S2 truncated suffix   with probability `suffix`, drawn once per batch (a
                        batch without S1), every row's random-length tail
                        becomes pad; pad is never masked and never in the loss.
  S3 block masking      with probability `block`, drawn once per batch, rows
                        mask whole blocks of a size from `block_sizes`: the
                        row is cut into blocks of k tokens (random offset) and
                        each block is masked with probability t.
  S4 syntax masking     ours: with probability `syntax`, per row, whole
                        tree-sitter nodes (a statement, a block, call
                        arguments, an expression) are masked with
                        probability t each; the data gives every token its
                        node id (-1 outside any chosen node).

  S5 infill holes       ours: with probability `infill`, per row, up to 8
                        spans (syntax nodes, or 1..24 tokens) become holes the
                        way the sampler builds one: the span, then pad up to a canvas
                        size from `hole_sizes` (the smallest that fits, or a
                        larger one), the rest of the row shifted right. Only
                        the hole is masked (rate t), the context stays clean, so
                        the model learns to end a hole whose canvas is larger
                        than its content with pad, as the sampler's end
                        handling expects.

S3 and S4 are one operation: mask whole segments given a segment id per
token. SFT masking: the prompt stays clean, the response and its pad tail
are maskable.

The model predicts token j from hidden state j-1 (see model.prediction_rows),
so position 0 is never masked.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from coda_core.budget import DEFAULT_SIZES


@dataclass(frozen=True)
class MaskingRates:
    """Probabilities of the strategies S1..S4."""

    prefix: float = 0.0  # S1, per batch
    suffix: float = 0.0  # S2, per batch (batches without S1)
    block: float = 0.0  # S3, per batch
    syntax: float = 0.0  # S4, per row
    infill: float = 0.0  # S5, per row

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"masking rate {f.name} must be in [0, 1], got {value}")


@dataclass(frozen=True)
class MaskingConfig:
    rates: MaskingRates = MaskingRates()
    eps: float = 1e-3
    block_sizes: tuple[int, ...] = (4, 8, 16, 32)
    hole_sizes: tuple[int, ...] = DEFAULT_SIZES  # S5 canvases: the sampler's

    def __post_init__(self):
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {self.eps}")
        if not self.block_sizes or any(k < 1 for k in self.block_sizes):
            raise ValueError(f"block_sizes must be positive, got {self.block_sizes}")


@dataclass
class MaskedBatch:
    input_ids: torch.Tensor  # [B, L] what the model sees: masks, and pad after an S2 cut
    labels: torch.Tensor  # [B, L] the clean tokens (pad after an S2 cut)
    targets: torch.Tensor  # [B, L] bool: masked positions, the ones in the loss
    t: torch.Tensor  # [B] noise level of each row
    prefix_len: torch.Tensor  # [B] tokens kept clean at the start (S1; 0 without)
    length: torch.Tensor  # [B] tokens before the S2 cut (L without)
    strategy: dict[str, torch.Tensor]  # name -> [B] bool, which rows used S1/S2/S3/S4 (for tests and logs)


def _uniform(shape, generator, device) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=device)


def _segment_mask(segments: torch.Tensor, t: torch.Tensor, generator) -> torch.Tensor:
    """[B, L] bool: each segment (same id in a row) masked as a whole with probability t of its row.

    segments: [B, L] long ids in [0, S); ids < 0 mean "no segment" and get False.
    """
    B = segments.shape[0]
    S = int(segments.max()) + 1 if segments.numel() else 0
    draws = _uniform((B, max(S, 1)), generator, segments.device)
    chosen = draws < t[:, None]
    return torch.where(segments >= 0, chosen.gather(1, segments.clamp_min(0)), False)


def _block_segments(B: int, L: int, block_sizes: tuple[int, ...], generator, device) -> torch.Tensor:
    """[B, L] block ids: each row cut into blocks of its own size k (from block_sizes) at a random offset."""
    sizes = torch.tensor(block_sizes, device=device)
    k = sizes[torch.randint(len(block_sizes), (B,), generator=generator, device=device)]
    offset = (_uniform((B,), generator, device) * k).long()
    return (torch.arange(L, device=device) + offset[:, None]) // k[:, None]


def _infill_row(ids: torch.Tensor, nodes: torch.Tensor | None, sizes: tuple[int, ...], pad_id: int,
                generator, holes: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """One S5 row with up to `holes` holes: (the row where each chosen span is followed by pad up to a
    canvas size and the context between them is shifted right, [L] bool: the holes' slots).

    Several holes per row, so the rows carry as many targets as other rows do (a single hole is a
    few dozen tokens); each is a span of 1..24 tokens or a syntax node."""
    L = ids.shape[0]
    device = ids.device

    def randint(low: int, high: int) -> int:  # in [low, high)
        return int(torch.randint(low, max(high, low + 1), (), generator=generator, device=device))

    node_ids = torch.unique(nodes[1:][nodes[1:] >= 0]) if nodes is not None else torch.empty(0)
    spans = []
    for _ in range(holes):
        if len(node_ids) and _uniform((), generator, device) < 0.5:
            where = (nodes == node_ids[randint(0, len(node_ids))]).nonzero().flatten()
            begin, length = max(int(where[0]), 1), int(where[-1]) + 1 - max(int(where[0]), 1)
        else:
            length = randint(1, 25)
            begin = randint(1, L - length)
        if length >= 1 and all(begin >= b + n or begin + length <= b for b, n in spans):
            spans.append((begin, min(length, L - begin)))
    pieces, hole, cursor, out_len = [], [], 0, 0
    for begin, length in sorted(spans):
        fitting = [k for k in sizes if k >= length] or [length]
        size = fitting[randint(0, len(fitting))] if _uniform((), generator, device) < 0.3 else fitting[0]
        pieces += [ids[cursor:begin + length], torch.full((size - length,), pad_id, dtype=ids.dtype, device=device)]
        out_len += begin - cursor
        hole.append((out_len, out_len + size))
        out_len += size
        cursor = begin + length
    row = torch.cat(pieces + [ids[cursor:]])[:L]
    mask = torch.zeros(L, dtype=torch.bool, device=device)
    for a, b in hole:
        mask[a:b] = True
    return row, mask


def mask_batch(ids: torch.Tensor, config: MaskingConfig, *, mask_id: int, pad_id: int,
               node_ids: torch.Tensor | None = None, generator: torch.Generator | None = None) -> MaskedBatch:
    """Pre-/mid-training masking of token rows ids [B, L]; node_ids [B, L] feed S4 (None: no S4)."""
    B, L = ids.shape
    device = ids.device
    rates = config.rates
    pos = torch.arange(L, device=device)
    t = config.eps + (1 - config.eps) * _uniform((B,), generator, device)

    def per_batch(rate: float) -> torch.Tensor:  # [B] bool, the same for every row
        return torch.full((B,), bool(_uniform((), generator, device) < rate), device=device)

    # S1: a clean prefix of 1..L-1 tokens
    prefix = per_batch(rates.prefix)
    prefix_len = torch.randint(1, max(L, 2), (B,), generator=generator, device=device)
    clean = prefix[:, None] & (pos < prefix_len[:, None])
    # S2: in a batch without S1, rows keep 1..L-1 tokens and the rest becomes pad
    suffix = per_batch(rates.suffix) & ~prefix
    keep_len = torch.randint(1, max(L, 2), (B,), generator=generator, device=device)
    cut = suffix[:, None] & (pos >= keep_len[:, None])
    labels = ids.masked_fill(cut, pad_id)
    maskable = ~clean & ~cut & (pos > 0)

    # Where the masks fall: tokens, blocks (S3, per batch) or syntax nodes (S4, per row).
    masked = _uniform((B, L), generator, device) < t[:, None]
    block = per_batch(rates.block)
    if block.any():
        blocks = _segment_mask(_block_segments(B, L, config.block_sizes, generator, device), t, generator)
        masked = torch.where(block[:, None], blocks, masked)
    syntax = torch.zeros(B, dtype=torch.bool, device=device)
    if node_ids is not None:
        syntax = _uniform((B,), generator, device) < rates.syntax
        # tokens outside any node keep their token-level draw
        nodes = torch.where(node_ids >= 0, _segment_mask(node_ids, t, generator), masked)
        masked = torch.where(syntax[:, None], nodes, masked)
        block &= ~syntax

    targets = masked & maskable

    # S5: rows that become one infill hole (their S1..S4 draws are replaced, not mixed in)
    infill = _uniform((B,), generator, device) < rates.infill
    for b in infill.nonzero().flatten().tolist():
        row, hole = _infill_row(ids[b], node_ids[b] if node_ids is not None else None, config.hole_sizes,
                                pad_id, generator)
        labels[b] = row
        targets[b] = hole & (_uniform((L,), generator, device) < t[b])
    prefix_len = torch.where(prefix & ~infill, prefix_len, 0)
    length = torch.where(suffix & ~infill, keep_len, L)
    return MaskedBatch(input_ids=labels.masked_fill(targets, mask_id), labels=labels, targets=targets, t=t,
                       prefix_len=prefix_len, length=length,
                       strategy={"prefix": prefix & ~infill, "suffix": suffix & ~infill, "block": block & ~infill,
                                 "syntax": syntax & ~infill, "infill": infill})


def mask_sft(ids: torch.Tensor, prompt_len: torch.Tensor, *, mask_id: int, eps: float = 1e-3,
             generator: torch.Generator | None = None) -> MaskedBatch:
    """SFT masking: the prompt (first prompt_len[b] tokens) stays clean; the response and its pad tail
    are masked at rate t, so the model learns where the answer ends."""
    B, L = ids.shape
    device = ids.device
    t = eps + (1 - eps) * _uniform((B,), generator, device)
    maskable = torch.arange(L, device=device) >= prompt_len.clamp_min(1)[:, None]
    targets = (_uniform((B, L), generator, device) < t[:, None]) & maskable
    none = torch.zeros(B, dtype=torch.bool, device=device)
    return MaskedBatch(input_ids=ids.masked_fill(targets, mask_id), labels=ids, targets=targets, t=t,
                       prefix_len=prompt_len, length=torch.full((B,), L, device=device),
                       strategy={"prefix": none, "suffix": none, "block": none, "syntax": none, "infill": none})


def target_rows(batch: MaskedBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch index [N], hidden row [N]) whose logits predict the N targets, for the model's
    `logits_index`: the LM head then runs only where the loss needs it."""
    b, j = batch.targets.nonzero(as_tuple=True)
    return b, j - 1


NORMALIZATIONS = ("batch_length", "masked")


def diffusion_loss(logits: torch.Tensor, batch: MaskedBatch,
                   normalize: str = "batch_length") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The 1/t-weighted cross-entropy over masked targets, divided by batch x length (as published;
    normalize="batch_length") or by the number of masked targets (normalize="masked").

    logits: either [B, L, V], every position (static shapes, as XLA wants),
    where row j-1 predicts token j; or [N, V] at `target_rows(batch)`.
    Returns the loss and detached metrics: masked-token accuracy and the number of targets.
    """
    B, L = batch.labels.shape
    weight = batch.targets / batch.t[:, None]  # [B, L]: 1/t at targets, 0 elsewhere
    if logits.dim() == 3:
        logits, labels, weight = logits[:, :-1].flatten(0, 1), batch.labels[:, 1:].flatten(), weight[:, 1:].flatten()
    else:
        labels, weight = batch.labels[batch.targets], weight[batch.targets]
    ce = F.cross_entropy(logits.float(), labels, reduction="none")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"unknown loss normalization {normalize!r}; choose {' or '.join(NORMALIZATIONS)}")
    denominator = B * L if normalize == "batch_length" else batch.targets.sum().clamp_min(1)
    loss = (ce * weight).sum() / denominator
    with torch.no_grad():
        counted = weight > 0
        n = counted.sum()
        accuracy = ((logits.argmax(-1) == labels) & counted).sum().float() / n.clamp_min(1)
    return loss, {"masked_accuracy": accuracy, "targets": n}


# -- schedules: the strategy rates over a stage --------------------------------

REPORT_CURRICULUM = (MaskingRates(prefix=0.01, suffix=0.01, block=0.05),
                     MaskingRates(prefix=0.20, suffix=0.20, block=0.25))


def _lerp(a: MaskingRates, b: MaskingRates, x: float) -> MaskingRates:
    return MaskingRates(**{f.name: getattr(a, f.name) + (getattr(b, f.name) - getattr(a, f.name)) * x
                           for f in fields(MaskingRates)})


@dataclass(frozen=True)
class MaskingSchedule:
    """How the rates move through a stage.

    constant    `start` throughout
    linear      from `start` to `end` over the stage's steps
    curriculum  the report's per-epoch steps: epoch e of `epochs` uses
                start + (end - start) * e / (epochs - 1)
    """

    kind: str = "constant"
    start: MaskingRates = MaskingRates()
    end: MaskingRates | None = None
    epochs: int = 1

    def __post_init__(self):
        if self.kind not in ("constant", "linear", "curriculum"):
            raise ValueError(f"unknown masking schedule {self.kind!r}; choose constant, linear or curriculum")
        if self.kind != "constant" and self.end is None:
            raise ValueError(f"a {self.kind} masking schedule needs `end` rates")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")

    def rates(self, step: int, total_steps: int) -> MaskingRates:
        progress = min(max(step / max(total_steps - 1, 1), 0.0), 1.0)
        if self.kind == "constant":
            return self.start
        if self.kind == "linear":
            return _lerp(self.start, self.end, progress)
        epoch = min(int(progress * self.epochs), self.epochs - 1)
        return _lerp(self.start, self.end, epoch / max(self.epochs - 1, 1))
