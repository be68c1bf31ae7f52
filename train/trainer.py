"""One training stage: `coda train run RECIPE.yaml [--resume]`.

    build_model -> backend.prepare (parallelism from outside) -> optimizer
    loop: this process's rows -> masking (CPU) -> backend.to_device ->
          backend.loss_logits -> 1/t-weighted loss -> backward (x grad_accum)
          -> clip -> step -> metrics
    every eval_every: validation loss on fixed masked batches
    every checkpoint_every and at the end: an atomic checkpoint
    at the end: `<out>/export` (the model format) and `<out>/loss.png`

The trainer knows no parallelism: the backend (`coda_train.parallel`) says
which rows this process reads, places the model and the batches, computes
the logits the loss needs, and names the parameters as the model format does.

The masking draws of a step come from (seed, reader, step) alone, so no two
hosts or ranks mask alike and a resumed run draws what an uninterrupted one
would. Everything else a resumed run needs is in the checkpoint: parameters,
optimizer state, step, the data position and the torch RNG state. A resumed
run therefore ends with the same parameters as one that was never
interrupted (on the same machine; a test kills one with SIGKILL to check).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from coda_core.config import CoDAConfig
from coda_core.errors import CheckpointError, CodaError
from coda_core.masking import diffusion_loss, mask_batch, mask_sft
from coda_core.model import CoDALanguageModel
from coda_core.progress import progress as progress_bar
from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer, special_ids

from . import checkpoint
from .data import Dataset, DataError, ShardReader
from .parallel import make_backend
from .recipe import Recipe

VALID_SEED = 12345  # validation masks: the same every evaluation


def lr_at(step: int, recipe: Recipe) -> float:
    """Warmup from 0, then cosine or linear decay to min_ratio x lr at the last step."""
    spec, peak, total = recipe.lr_schedule, recipe.optimizer.lr, recipe.train.steps
    if step < spec.warmup_steps:
        return peak * (step + 1) / spec.warmup_steps
    if spec.decay == "constant":
        return peak
    progress = (step - spec.warmup_steps) / max(total - 1 - spec.warmup_steps, 1)
    progress = min(max(progress, 0.0), 1.0)
    shape = 0.5 * (1 + math.cos(math.pi * progress)) if spec.decay == "cosine" else 1 - progress
    return peak * (spec.min_ratio + (1 - spec.min_ratio) * shape)


def build_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    spec = recipe.optimizer
    if spec.name == "adafactor":  # as published for CoDA
        return torch.optim.Adafactor(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay,
                             betas=tuple(spec.betas))


def masking_generator(seed: int, reader: int, step: int) -> torch.Generator:
    """The generator of one step's masking draws on one reader (host or rank): a function of the three
    alone, so no two readers draw alike and a resumed run draws exactly what an uninterrupted one would."""
    high, low = np.random.SeedSequence([seed, reader, step]).generate_state(2)
    return torch.Generator().manual_seed(int(high) << 32 | int(low))


def build_model(recipe: Recipe) -> tuple[CoDALanguageModel, object, str]:
    """The stage's starting model (fp32, in train mode), its tokenizer and the tokenizer's folder."""
    from coda_core.loading import load_model, resolve_model_dir
    from coda_core.presets import preset_config

    spec = recipe.model
    if spec.init == "preset":
        tokenizer_dir = recipe.resolve(spec.tokenizer) or str(BUNDLED_TOKENIZER)
        tokenizer = load_tokenizer(tokenizer_dir)
        torch.manual_seed(recipe.train.seed)
        return CoDALanguageModel(preset_config(spec.preset, tokenizer)).float().train(), tokenizer, tokenizer_dir
    path = recipe.resolve(spec.path)
    model = load_model(path, device="cpu", dtype=torch.float32)
    tokenizer_dir = recipe.resolve(spec.tokenizer) or str(resolve_model_dir(path, weights=False))
    return model.float().train(), load_tokenizer(tokenizer_dir), tokenizer_dir


def fingerprint(recipe: Recipe, config: CoDAConfig, seq_len: int) -> dict:
    """What a checkpoint must share with the run that resumes it."""
    shape = {k: getattr(config, k) for k in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                                             "num_key_value_heads", "intermediate_size", "vocab_size")}
    return {"stage": recipe.stage, "model": shape, "optimizer": recipe.optimizer.name,
            "batch_size": recipe.train.batch_size, "seq_len": seq_len}


class Trainer:
    def __init__(self, recipe: Recipe, progress: bool = True):
        self.recipe = recipe
        self.out = Path(recipe.out)  # outputs are relative to the working directory
        self.progress = progress
        self.backend = make_backend(recipe.backend)
        model, self.tokenizer, self.tokenizer_dir = build_model(recipe)
        self.config = model.config
        self.ids = special_ids(model.config, self.tokenizer)
        self.schedule, self.masking = recipe.masking.build()

        self.train_data = Dataset(recipe.resolve(recipe.data.train))
        expected = "sft" if recipe.stage == "sft" else "text"
        if self.train_data.kind != expected:
            raise DataError(f"{recipe.data.train} holds {self.train_data.kind} data, but stage {recipe.stage} "
                            f"needs {expected} data ({'prompt/response records' if expected == 'sft' else 'code'})")
        if self.train_data.manifest["vocab_size"] > self.config.vocab_size:
            raise DataError(f"{recipe.data.train} was tokenized with {self.train_data.manifest['vocab_size']} "
                            f"tokens, more than the model's vocabulary of {self.config.vocab_size}")
        if recipe.train.seq_len and recipe.train.seq_len != self.train_data.seq_len:
            raise DataError(f"{recipe.data.train} holds rows of {self.train_data.seq_len} tokens, but the recipe's "
                            f"train.seq_len is {recipe.train.seq_len}")
        train_rows, valid_rows, self.valid_data = self._split()
        t = recipe.train
        shard = self.backend.shard(t.batch_size, "train.batch_size")
        self.reader = ShardReader(self.train_data, shard.rows, seed=t.seed, host=shard.index, hosts=shard.count,
                                  rows=train_rows)
        valid = self.backend.shard(min(t.batch_size, len(valid_rows)),
                                   "the validation batch (train.batch_size, or fewer validation rows)",
                                   validation=True)
        self.valid = ShardReader(self.valid_data, valid.rows, seed=t.seed + 1, host=valid.index,
                                 hosts=valid.count, rows=valid_rows)
        self.valid_seed = VALID_SEED + valid.index

        self.model = self.backend.prepare(model, activation_checkpointing=t.activation_checkpointing,
                                          compile=t.compile)
        self.optimizer = build_optimizer(self.model, recipe)
        self.step = 0
        self.metrics_file = self.out / "metrics.jsonl"

    def _split(self):
        spec = self.recipe.data
        if spec.valid:
            valid = Dataset(self.recipe.resolve(spec.valid))
            return range(len(self.train_data)), range(len(valid)), valid
        n = len(self.train_data)
        held = min(spec.valid_sequences, n // 5)
        if held < 1:
            raise DataError(f"{spec.train}: {n} rows are too few to hold some out for validation; "
                            "add data or set data.valid")
        return range(n - held), range(n - held, n), self.train_data

    # -- one batch ---------------------------------------------------------------

    def _masked(self, rows, generator: torch.Generator, step: int):
        if self.recipe.stage == "sft":
            return mask_sft(rows.ids, rows.prompt_len, mask_id=self.ids.mask, eps=self.masking.eps,
                            generator=generator)
        config = replace(self.masking, rates=self.schedule.rates(step, self.recipe.train.steps))
        return mask_batch(rows.ids, config, mask_id=self.ids.mask, pad_id=self.ids.pad, node_ids=rows.nodes,
                          generator=generator)

    def _loss(self, batch):
        """The diffusion loss of a masked batch of this process's rows (the backend makes it the step's batch)."""
        device = self.backend.to_device
        for name in ("input_ids", "labels", "targets", "t"):
            setattr(batch, name, device(getattr(batch, name)))
        with torch.autocast(self.backend.device.type, dtype=torch.bfloat16, enabled=self.recipe.train.bf16):
            logits = self.backend.loss_logits(self.model, batch)
        loss, metrics = diffusion_loss(logits, batch, self.recipe.masking.loss_normalization)
        return loss, {**metrics, "tokens": batch.input_ids.numel()}

    def _causal_loss(self, rows):
        """Next-token cross-entropy with causal attention: the AR phase's objective."""
        ids = self.backend.to_device(rows.ids)
        with torch.autocast(self.backend.device.type, dtype=torch.bfloat16, enabled=self.recipe.train.bf16):
            logits = self.model(ids, causal=True).logits[:, :-1]
        labels = ids[:, 1:]
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == labels).float().mean()
        return loss, {"masked_accuracy": accuracy, "targets": torch.tensor(labels.numel()), "tokens": ids.numel()}

    def train_step(self) -> dict:
        t = self.recipe.train
        lr = lr_at(self.step, self.recipe)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        start = time.perf_counter()
        generator = masking_generator(t.seed, self.reader.host, self.step)
        losses, accuracies, targets, tokens = [], [], [], 0
        for _ in range(t.grad_accum):
            rows = self.reader.next()
            if t.objective == "causal":
                loss, metrics = self._causal_loss(rows)
            else:
                loss, metrics = self._loss(self._masked(rows, generator, self.step))
            (loss / t.grad_accum).backward()
            losses.append(loss.detach())
            accuracies.append(metrics["masked_accuracy"])
            targets.append(metrics["targets"])
            tokens += metrics["tokens"]  # the step's whole batch (every host's rows on a pod)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip if t.grad_clip else float("inf"))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.backend.step_done()  # XLA: the whole step runs here, as one compiled graph
        self.step += 1
        # Reading values after step_done keeps XLA from cutting the step's graph early.
        loss, accuracy = float(torch.stack(losses).mean()), float(torch.stack(accuracies).mean())
        seconds = time.perf_counter() - start
        return {"step": self.step, "loss": loss, "masked_accuracy": accuracy, "lr": lr,
                "targets": int(torch.stack(targets).sum()),
                "grad_norm": float(norm), "tokens_per_s": tokens / seconds, "epoch": self.reader.epoch_progress}

    @torch.no_grad()
    def evaluate(self) -> dict:
        """Validation loss on the same masked batches every time (a fixed generator), in eval mode."""
        self.model.eval()
        generator = torch.Generator().manual_seed(self.valid_seed)
        state = self.valid.state()
        self.valid.load_state({"epoch": 0, "cursor": 0})
        losses, accuracies = [], []
        for _ in range(self.recipe.train.eval_batches):
            loss, metrics = self._loss(self._masked(self.valid.next(), generator, self.step))
            losses.append(float(loss))
            accuracies.append(float(metrics["masked_accuracy"]))
        self.valid.load_state(state)
        self.model.train()
        return {"step": self.step, "valid_loss": sum(losses) / len(losses),
                "valid_accuracy": sum(accuracies) / len(accuracies)}

    # -- checkpoints ---------------------------------------------------------------

    def save(self) -> Path:
        """Write a checkpoint (every rank gathers, the main one writes)."""
        state = self.backend.state_dict(self.model)
        optimizer_state = self.backend.optimizer_state(self.model, self.optimizer)
        path = self.out / "checkpoints"
        if self.backend.is_main:
            rng = {"torch_cpu": torch.get_rng_state()}
            trainer = {"data": self.reader.state(), "tokenizer_dir": self.tokenizer_dir,
                       "fingerprint": fingerprint(self.recipe, self.config, self.train_data.seq_len),
                       "config": self.config.to_dict()}
            path = checkpoint.save(path, self.step, state, optimizer_state, rng, trainer,
                                   keep=self.recipe.train.keep_checkpoints)
        self.backend.barrier()
        return path

    def resume(self) -> bool:
        """Restore the newest checkpoint under <out>/checkpoints; False when there is none."""
        path = checkpoint.latest(self.out / "checkpoints")
        if path is None:
            return False
        model_state, optimizer_state, rng, trainer = checkpoint.load(path)
        mine = fingerprint(self.recipe, self.config, self.train_data.seq_len)
        theirs = trainer.get("fingerprint", {})
        for key in mine:
            if theirs.get(key) != mine[key]:
                raise CheckpointError(f"cannot resume from {path}: its {key} is {theirs.get(key)!r}, this recipe's "
                                      f"is {mine[key]!r}; use another `out`, or the recipe it was written with")
        missing, unexpected = self.backend.load_model_state(self.model, model_state)
        if missing or unexpected:
            raise CheckpointError(f"cannot resume from {path}: parameters missing {missing[:3]}, "
                                  f"unexpected {unexpected[:3]}")
        try:
            self.backend.load_optimizer_state(self.model, self.optimizer, optimizer_state)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"cannot resume from {path}: optimizer state does not fit: {exc}") from None
        torch.set_rng_state(rng["torch_cpu"])
        self.reader.load_state(trainer["data"])
        self.step = int(trainer["step"])
        return True

    # -- the stage -----------------------------------------------------------------

    def log(self, record: dict) -> None:
        if self.backend.is_main:
            with open(self.metrics_file, "a") as f:
                f.write(json.dumps(record) + "\n")

    def run(self, resume: bool = False) -> dict:
        t = self.recipe.train
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume() if resume else False
        if not resumed:
            self.metrics_file.unlink(missing_ok=True)
            first_eval = self.evaluate()
            self.log(first_eval)
        bar = progress_bar(total=t.steps, initial=self.step, desc=self.recipe.stage, unit="step",
                           disable=not (self.progress and self.backend.is_main))
        while self.step < t.steps:
            record = self.train_step()
            bar.update(1)
            bar.set_postfix(loss=f"{record['loss']:.3f}")
            if self.step % t.log_every == 0:
                self.log(record)
            if t.eval_every and self.step % t.eval_every == 0 and self.step < t.steps:
                self.log(self.evaluate())
            if t.checkpoint_every and self.step % t.checkpoint_every == 0 and self.step < t.steps:
                self.save()
        bar.close()
        final_eval = self.evaluate()
        self.log(final_eval)
        self.save()
        summary = {"stage": self.recipe.stage, "steps": self.step, "out": str(self.out), **final_eval}
        if self.backend.is_main:
            from .export import export_checkpoint
            from .plots import loss_curve

            export = self.out / "export"
            if export.exists():  # a rerun of the stage replaces its export
                shutil.rmtree(export)
            export_checkpoint(checkpoint.latest(self.out / "checkpoints"), export)
            loss_curve(self.metrics_file, self.out / "loss.png", title=f"{self.recipe.stage}: {self.out}")
            summary["export"] = str(export)
            records = [json.loads(line) for line in self.metrics_file.read_text().splitlines()]
            evals = [r for r in records if "valid_loss" in r]
            steps = [r for r in records if "tokens_per_s" in r]
            summary["first_valid_loss"] = evals[0]["valid_loss"]
            summary["tokens_per_s_median"] = sorted(r["tokens_per_s"] for r in steps)[len(steps) // 2] if steps else None
        return summary


def run_recipe(recipe: Recipe, resume: bool = False, progress: bool = True) -> dict:
    try:
        return Trainer(recipe, progress=progress).run(resume=resume)
    except (OSError, ValueError) as exc:
        if isinstance(exc, CodaError):
            raise
        raise CodaError(f"{recipe.source or 'recipe'}: {exc}") from exc
