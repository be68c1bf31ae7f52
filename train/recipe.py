"""Recipes: one YAML file drives one training stage.

    stage: pretrain            # pretrain | midtrain | sft
    model:
      init: preset             # preset | checkpoint (an HF-layout directory: a Qwen3 AR model, or an export)
      preset: tiny             # with init: preset
      path: runs/x/export      # with init: checkpoint
      tokenizer: null          # default: the checkpoint's, or the bundled Qwen3 tokenizer
    data:
      train: data/tiny         # a directory written by `coda train prepare`
      valid: null              # default: the last `valid_sequences` sequences of train
      valid_sequences: 16
    masking: {schedule: constant, start: {prefix: 0.1, suffix: 0.1, block: 0.5, syntax: 0.2}, end: null,
              epochs: 1, eps: 0.001, block_sizes: [4, 8, 16, 32], loss_normalization: batch_length}
    optimizer: {name: adamw, lr: 3.0e-4, weight_decay: 0.01, betas: [0.9, 0.95]}
    lr_schedule: {warmup_steps: 10, decay: cosine, min_ratio: 0.1}   # decay: cosine | linear | constant
                               # | wsd (with decay_fraction: 0.2); coda_train.schedule
    train: {steps: 100, max_seconds: null, batch_size: 8, grad_accum: 1, bf16: auto, grad_clip: 1.0, seed: 0,
            eval_every: 25, eval_batches: 2, checkpoint_every: 25, keep_checkpoints: 2, log_every: 1}
                               # max_seconds: end the stage, annealed, when its training time is spent
                               # bf16: true | false | auto (where the device computes bf16 natively)
    backend: {name: torch, device: auto, mesh: {fsdp: 1, tensor: 1}, hosts: 1}
    out: runs/tiny/pretrain

Every key is checked: an unknown one is an error that names the key and the
file. Input paths (data, model, tokenizer) are relative to the recipe file;
`out` is relative to the working directory. Values given on the
command line (`--set train.steps=10`) override the file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from coda_core.errors import CodaError

from .masking import NORMALIZATIONS, MaskingConfig, MaskingRates, MaskingSchedule
from .schedule import DECAYS

STAGES = ("pretrain", "midtrain", "sft")


class RecipeError(CodaError):
    pass


@dataclass
class ModelSpec:
    init: str = "preset"
    preset: str | None = None
    path: str | None = None
    tokenizer: str | None = None


@dataclass
class DataSpec:
    train: str = ""
    valid: str | None = None
    valid_sequences: int = 16


@dataclass
class MaskingSpec:
    schedule: str = "constant"
    start: dict = field(default_factory=dict)
    end: dict | None = None
    epochs: int = 1
    eps: float = 1e-3
    block_sizes: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    loss_normalization: str = "batch_length"  # batch_length (as published) | masked

    def build(self) -> tuple[MaskingSchedule, MaskingConfig]:
        start = MaskingRates(**self.start)
        end = MaskingRates(**self.end) if self.end is not None else None
        schedule = MaskingSchedule(self.schedule, start, end, self.epochs)
        return schedule, MaskingConfig(rates=start, eps=self.eps, block_sizes=tuple(self.block_sizes))


@dataclass
class OptimizerSpec:
    name: str = "adamw"  # adamw | adafactor
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])


@dataclass
class LrScheduleSpec:
    warmup_steps: int = 0
    decay: str = "cosine"  # cosine | linear | constant | wsd
    min_ratio: float = 0.1
    decay_fraction: float = 0.2  # wsd: the last share of the stage (by steps or time) that decays


@dataclass
class TrainSpec:
    """batch_size: rows per optimizer micro-step. On the xla backend the global batch of the whole mesh
    (one SPMD program; each of backend.hosts hosts reads batch_size / hosts rows); under torchrun per
    process (each rank reads its own rows)."""

    steps: int = 100
    max_seconds: float | None = None  # a time budget: the stage ends when it is spent, its LR schedule annealed
    seq_len: int | None = None  # None: the data's; when set, the data must match (dry runs need it)
    batch_size: int = 8
    grad_accum: int = 1
    bf16: bool | str = False  # true | false | auto: where the device computes bf16 natively
    grad_clip: float | None = 1.0
    seed: int = 0
    eval_every: int = 0  # 0: only at the end
    eval_batches: int = 2
    checkpoint_every: int = 0  # 0: only at the end
    keep_checkpoints: int = 2
    log_every: int = 1
    activation_checkpointing: bool = False  # recompute each decoder layer in the backward pass
    # diffusion: the masked objective. causal: next-token prediction with causal attention, an AR
    # phase before diffusion adaptation (validation is always the masked loss, to compare the two).
    objective: str = "diffusion"
    compile: bool = False  # torch.compile each decoder layer (fused norms, RoPE and SiLU)
    prefetch: int = 2  # steps whose batches a worker thread masks ahead of the device (0: in the step)


@dataclass
class MeshSpec:
    fsdp: int = 1
    tensor: int = 1


@dataclass
class BackendSpec:
    name: str = "torch"  # torch | xla
    device: str = "auto"  # torch backend: cpu, cuda, auto
    mesh: MeshSpec = field(default_factory=MeshSpec)
    hosts: int = 1  # xla: the processes of the run, one per host (checked against the runtime)
    chip: str | None = None  # xla: v4, v5p, ... (its HBM bounds --dry-run's memory check)


@dataclass
class Recipe:
    stage: str = "pretrain"
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    masking: MaskingSpec = field(default_factory=MaskingSpec)
    optimizer: OptimizerSpec = field(default_factory=OptimizerSpec)
    lr_schedule: LrScheduleSpec = field(default_factory=LrScheduleSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    backend: BackendSpec = field(default_factory=BackendSpec)
    out: str = "runs/stage"
    source: str = ""  # the file it came from (not a recipe key)

    def validate(self) -> "Recipe":
        where = self.source or "recipe"
        if self.stage not in STAGES:
            raise RecipeError(f"{where}: stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.model.init not in ("preset", "checkpoint"):
            raise RecipeError(f"{where}: model.init must be preset or checkpoint, got {self.model.init!r}")
        if self.model.init == "preset" and not self.model.preset:
            raise RecipeError(f"{where}: model.init is preset but model.preset is not set")
        if self.model.init == "checkpoint" and not self.model.path:
            raise RecipeError(f"{where}: model.init is checkpoint but model.path is not set")
        if not self.data.train:
            raise RecipeError(f"{where}: data.train is not set")
        if self.optimizer.name not in ("adamw", "adafactor"):
            raise RecipeError(f"{where}: optimizer.name must be adamw or adafactor, got {self.optimizer.name!r}")
        if self.lr_schedule.decay not in DECAYS:
            raise RecipeError(f"{where}: lr_schedule.decay must be one of {', '.join(DECAYS)}, "
                              f"got {self.lr_schedule.decay!r}")
        if not 0 < self.lr_schedule.decay_fraction <= 1:
            raise RecipeError(f"{where}: lr_schedule.decay_fraction must be in (0, 1]")
        if self.backend.name not in ("torch", "xla"):
            raise RecipeError(f"{where}: backend.name must be torch or xla, got {self.backend.name!r}")
        b = self.backend
        if min(b.hosts, b.mesh.fsdp, b.mesh.tensor) < 1:
            raise RecipeError(f"{where}: backend.hosts, backend.mesh.fsdp and backend.mesh.tensor must be >= 1")
        t = self.train
        if t.prefetch < 0:
            raise RecipeError(f"{where}: train.prefetch must be >= 0 (0: mask in the step)")
        if min(t.steps, t.batch_size, t.grad_accum, t.keep_checkpoints, t.log_every) < 1:
            raise RecipeError(f"{where}: train.steps, batch_size, grad_accum, keep_checkpoints and log_every "
                              "must be >= 1")
        if t.bf16 not in (True, False, "auto"):
            raise RecipeError(f"{where}: train.bf16 must be true, false or auto, got {t.bf16!r}")
        if t.max_seconds is not None and (isinstance(t.max_seconds, bool)
                                          or not isinstance(t.max_seconds, (int, float)) or t.max_seconds <= 0):
            raise RecipeError(f"{where}: train.max_seconds must be a number of seconds > 0 (or null), "
                              f"got {t.max_seconds!r}")
        if t.objective not in ("diffusion", "causal"):
            raise RecipeError(f"{where}: train.objective must be diffusion or causal, got {t.objective!r}")
        if t.objective == "causal" and self.stage != "pretrain":
            raise RecipeError(f"{where}: train.objective causal is for a pretrain stage (the AR phase)")
        if self.masking.loss_normalization not in NORMALIZATIONS:
            raise RecipeError(f"{where}: masking.loss_normalization must be one of {', '.join(NORMALIZATIONS)}")
        try:
            self.masking.build()
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"{where}: masking: {exc}") from None
        return self

    def resolve(self, path: str | None) -> str | None:
        """A path from the recipe, relative to the recipe's folder; a bundled model's name stays a name."""
        from coda_core.bundled import is_bundled

        if path is None or not self.source or is_bundled(path):
            return path
        p = Path(path).expanduser()
        return str(p if p.is_absolute() else Path(self.source).parent / p)


def _build(cls, values: Any, where: str, prefix: str):
    if not isinstance(values, dict):
        raise RecipeError(f"{where}: {prefix or 'the recipe'} must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    kwargs = {}
    for key, value in values.items():
        if key not in known:
            raise RecipeError(f"{where}: unknown key {prefix + key!r}; known: {', '.join(sorted(known))}")
        kind = known[key].type
        nested = {"ModelSpec": ModelSpec, "DataSpec": DataSpec, "MaskingSpec": MaskingSpec,
                  "OptimizerSpec": OptimizerSpec, "LrScheduleSpec": LrScheduleSpec, "TrainSpec": TrainSpec,
                  "BackendSpec": BackendSpec, "MeshSpec": MeshSpec}.get(kind if isinstance(kind, str) else "")
        kwargs[key] = _build(nested, value, where, f"{prefix}{key}.") if nested else value
    if cls is MaskingSpec:
        for rates in ("start", "end"):
            if isinstance(kwargs.get(rates), dict):
                unknown = set(kwargs[rates]) - {f.name for f in dataclasses.fields(MaskingRates)}
                if unknown:
                    raise RecipeError(f"{where}: unknown key {prefix + rates + '.' + sorted(unknown)[0]!r}; "
                                      "known: block, prefix, suffix, syntax")
    return cls(**kwargs)


def _override(values: dict, assignment: str, where: str) -> None:
    key, sep, raw = assignment.partition("=")
    if not sep:
        raise RecipeError(f"--set {assignment!r}: expected KEY=VALUE, e.g. train.steps=10")
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise RecipeError(f"--set {assignment!r}: {part} is not a section of {where}")
    node[parts[-1]] = yaml.safe_load(raw)


def read_yaml(path: Path, what: str) -> dict:
    """A YAML file's mapping, or a RecipeError that names the file."""
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise RecipeError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise RecipeError(f"{path}: a {what} is a mapping of keys, not a {type(values).__name__}")
    return values


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    path = Path(path)
    values = read_yaml(path, "recipe")
    for assignment in overrides:
        _override(values, assignment, str(path))
    recipe = _build(Recipe, values, str(path), "")
    recipe.source = str(path)
    return recipe.validate()
