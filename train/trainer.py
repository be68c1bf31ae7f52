"""One training stage: `coda train run RECIPE.yaml [--resume]`.

    build_model -> backend.prepare (parallelism from outside) -> optimizer
    worker thread (coda_train.prefetch): this process's rows -> masking (CPU),
                  one or two steps ahead of the device
    loop: batch -> backend.to_device -> backend.loss_logits -> 1/t-weighted loss
          -> backward (x grad_accum) -> clip -> step; values stay on the device
    every log_every: the one host read of a step's values -> metrics
    every eval_every: validation loss on fixed masked batches
    every checkpoint_every and at the end: an atomic checkpoint
    at the end: `<out>/export` (the model format) and `<out>/loss.png`

A stage ends after train.steps steps or when train.max_seconds of training
time is spent; its LR schedule follows whichever comes first and ends
annealed (coda_train.schedule).

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
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from coda_core.config import CoDAConfig
from coda_core.errors import CheckpointError, CodaError
from coda_core.model import CoDALanguageModel
from coda_core.progress import progress as progress_bar
from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer, special_ids

from . import checkpoint
from .data import Dataset, DataError, ShardReader
from .masking import diffusion_loss, mask_batch, mask_sft
from .parallel import make_backend
from .prefetch import Prefetcher, Prepared
from .recipe import Recipe
from .schedule import Clock, lr_at

VALID_SEED = 12345  # validation masks: the same every evaluation


def uses_bf16(setting: bool | str, device: torch.device) -> bool:
    """train.bf16: true, false, or auto: bf16 autocast where the device computes bf16 faster (a GPU with
    bf16, a TPU, a CPU where a bf16 matmul is measured faster than fp32: load_model's dtype=auto rule,
    coda_core.kernels). A CPU without AMX or AVX512-BF16 emulates bf16: a mini-s step takes about 17 s
    there instead of about 1 s in fp32."""
    if setting != "auto":
        return bool(setting)
    if device.type == "xla":
        return True
    from coda_core.loading import default_dtype

    return default_dtype(device) == torch.bfloat16


def build_optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    spec = recipe.optimizer
    if spec.name == "adafactor":  # as published for CoDA
        return torch.optim.Adafactor(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    # The fused kernel updates every parameter in one launch (CUDA) or one vectorized pass (CPU),
    # instead of a loop of small ops per parameter; XLA compiles the step whole anyway.
    devices = {p.device.type for p in model.parameters()}
    return torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay,
                             betas=tuple(spec.betas), fused=devices <= {"cuda", "cpu"})


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


def _pinned(batch):
    """The batch with its tensors in page-locked memory, so their copies to a GPU run asynchronously."""
    for name, value in vars(batch).items():
        if isinstance(value, torch.Tensor):
            setattr(batch, name, value.pin_memory())
    return batch


class Tally:
    """Sums of the steps' values on the device, read on the host once per log line."""

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.restart()

    def restart(self) -> None:
        """Start a new interval: sums cleared, and its time counted from now (after an evaluation, too)."""
        self.sums.clear()
        self.steps, self.tokens, self.since = 0, 0, time.perf_counter()

    def add(self, **values: torch.Tensor) -> None:
        for key, value in values.items():
            value = value.detach().float()
            self.sums[key] = self.sums[key] + value if key in self.sums else value

    def read(self) -> dict:
        """Means per step over the interval (targets: its sum), and its tokens per second."""
        values = {key: float(value) for key, value in self.sums.items()}  # the one wait for the device
        steps = max(self.steps, 1)
        seconds = max(time.perf_counter() - self.since, 1e-9)
        record = {"loss": values.get("loss", 0.0) / steps, "masked_accuracy": values.get("masked_accuracy", 0.0) / steps,
                  "grad_norm": values.get("grad_norm", 0.0) / steps, "targets": int(values.get("targets", 0)),
                  "tokens_per_s": self.tokens / seconds}
        self.restart()
        return record


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
        if self.train_data.seq_len > self.config.max_position_embeddings:
            # Rows longer than the shape's context teach the model those positions (RoPE has no table),
            # and the exported config says so: the sampler fits its canvas to max_position_embeddings.
            self.config.max_position_embeddings = self.train_data.seq_len
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
        self.bf16 = uses_bf16(t.bf16, self.backend.device)
        self.step = 0
        self.clock = Clock(t.steps, t.max_seconds, recipe.lr_schedule.warmup_steps)
        self.batches: Prefetcher | None = None  # started by the first step, after a resume placed the reader
        self.consumed = self.reader.state()  # the reader's position after the last step trained
        self.tally = Tally()
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

    def _prepare(self, step: int) -> Prepared:
        """Step `step`'s batches, read and masked (on the prefetch worker; pinned for an async copy to a GPU)."""
        start = time.perf_counter()
        t = self.recipe.train
        generator = masking_generator(t.seed, self.reader.host, step)
        curriculum = self.clock.curriculum_step(step)
        micro = []
        for _ in range(t.grad_accum):
            rows = self.reader.next()
            batch = rows if t.objective == "causal" else self._masked(rows, generator, curriculum)
            micro.append(_pinned(batch) if self.backend.device.type == "cuda" else batch)
        return Prepared(step, micro, self.reader.state(), self.reader.epoch_progress, time.perf_counter() - start)

    def _loss(self, batch):
        """The diffusion loss of a masked batch of this process's rows (the backend makes it the step's batch)."""
        device = self.backend.to_device
        for name in ("input_ids", "labels", "targets", "t"):
            setattr(batch, name, device(getattr(batch, name)))
        with torch.autocast(self.backend.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.backend.loss_logits(self.model, batch)
        loss, metrics = diffusion_loss(logits, batch, self.recipe.masking.loss_normalization)
        return loss, {**metrics, "tokens": batch.input_ids.numel()}

    def _causal_loss(self, rows):
        """Next-token cross-entropy with causal attention: the AR phase's objective."""
        ids = self.backend.to_device(rows.ids)
        with torch.autocast(self.backend.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            logits = self.model(ids, causal=True).logits[:, :-1]
        labels = ids[:, 1:]
        loss = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten())
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == labels).float().mean()
        return loss, {"masked_accuracy": accuracy, "targets": torch.tensor(labels.numel()), "tokens": ids.numel()}

    def train_step(self, last: bool = False) -> dict:
        """One optimizer step. Its loss and the like stay on the device, summed into `self.tally`: reading
        them on the host would wait for the step to finish, so only `read_tally` does, at log steps.
        `last`: the stage ends with this step (its LR is the schedule's end)."""
        t = self.recipe.train
        lr = lr_at(self.step, self.recipe, self.clock.lr_progress(self.step, last))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        if self.batches is None:
            self.batches = Prefetcher(self._prepare, self.step, depth=t.prefetch)
        prepared = self.batches.get(self.step)
        tokens = 0
        for batch in prepared.micro:
            loss, metrics = self._causal_loss(batch) if t.objective == "causal" else self._loss(batch)
            (loss / t.grad_accum).backward()
            self.tally.add(loss=loss.detach() / t.grad_accum, masked_accuracy=metrics["masked_accuracy"] / t.grad_accum,
                           targets=metrics["targets"])
            tokens += metrics["tokens"]  # the step's whole batch (every host's rows on a pod)
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), t.grad_clip if t.grad_clip else float("inf"))
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.backend.step_done()  # XLA: the whole step runs here, as one compiled graph
        self.tally.add(grad_norm=norm.detach())
        self.tally.steps += 1
        self.tally.tokens += tokens
        self.step += 1
        self.clock.step_done()
        self.consumed = prepared.reader_state
        return {"step": self.step, "lr": lr, "epoch": prepared.epoch, "tokens": tokens,
                "data_wait_ms": self.batches.wait_seconds * 1000, "data_ms": prepared.seconds * 1000}

    def read_tally(self) -> dict:
        """The means of the steps since the last read, read on the host (this waits for the device)."""
        # Reading values after step_done keeps XLA from cutting the step's graph early.
        return self.tally.read()

    def close(self) -> None:
        if self.batches is not None:
            self.batches.close()
            self.batches = None

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
            # the position after the rows trained on: the worker's read-ahead is made again after a resume
            trainer = {"data": self.consumed, "tokenizer_dir": self.tokenizer_dir,
                       "train_seconds": round(self.clock.elapsed(), 3),
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
        self.close()  # a worker reading ahead from the old position
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
        self.consumed = self.reader.state()
        self.step = int(trainer["step"])
        self.clock.used = float(trainer.get("train_seconds", 0.0))
        return True

    # -- the stage -----------------------------------------------------------------

    def log(self, record: dict) -> None:
        if self.backend.is_main:
            with open(self.metrics_file, "a") as f:
                f.write(json.dumps(record) + "\n")

    def run(self, resume: bool = False) -> dict:
        try:
            return self._run(resume)
        finally:
            self.close()

    def _run(self, resume: bool) -> dict:
        t = self.recipe.train
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume() if resume else False
        if not resumed:
            self.metrics_file.unlink(missing_ok=True)
            first_eval = self.evaluate()
            self.log(first_eval)
        bar = progress_bar(total=t.steps, initial=self.step, desc=self.recipe.stage, unit="step",
                           disable=not (self.progress and self.backend.is_main))
        self.clock.start()
        self.tally.restart()
        last = self.step >= t.steps
        while not last:
            last = self.clock.is_last(self.step)
            record = self.train_step(last=last)
            bar.update(1)
            evaluate = t.eval_every and self.step % t.eval_every == 0 and not last
            save = t.checkpoint_every and self.step % t.checkpoint_every == 0 and not last
            if self.step % t.log_every == 0 or evaluate or save or last:
                record.update(self.read_tally(), train_seconds=round(self.clock.elapsed(), 2))
                del record["tokens"]
                self.log(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
            if evaluate:
                self.log(self.evaluate())
            if save:
                self.save()
            if evaluate or save:
                self.tally.restart()  # tokens/s counts training time only
        bar.close()
        final_eval = self.evaluate()
        self.log(final_eval)
        self.save()
        summary = {"stage": self.recipe.stage, "steps": self.step, "out": str(self.out), **final_eval,
                   "train_seconds": round(self.clock.elapsed(), 2),
                   "stopped_by": "steps" if self.step >= t.steps else "time"}
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
