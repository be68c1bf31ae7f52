"""`coda train ship RUN [--out DIR]`: make a pipeline's final model the bundled coda-mini, or a model folder.

    RUN/<last stage>/export (fp32)  ->  coda_core/assets/coda-mini/ (or DIR)   bf16 safetensors, config,
                                          tokenizer, training.json (what each stage saw, and for a
                                          continued run what the model it started from had seen)
    RUN/<stage>/loss.png   ->  docs/images/coda-mini-<stage>.png   (the model card's curves; coda-mini only,
                                                                    so a candidate leaves the card alone)

bf16 halves the package (the weights are installed with it) and is what
`dtype=auto` computes in where the CPU has bf16; elsewhere the loader widens
it to fp32. The folder is replaced atomically, so a failed ship leaves the
previous model in place.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from coda_core.atomic import atomic_directory
from coda_core.bundled import BUNDLED_MODELS
from coda_core.errors import CodaError
from coda_core.loading import load_model
from coda_core.tokenizer import load_tokenizer

from .pipeline import FROM_FILE, STAGES_FILE

STAGES = ("pretrain-ar", "pretrain", "midtrain", "sft")  # a run older than RUN/stages.json
DOCS_IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"


def stage_summary(stage_dir: Path) -> dict:
    """Steps, tokens seen, training seconds and first/last validation loss of one stage."""
    records = [json.loads(line) for line in (stage_dir / "metrics.jsonl").read_text().splitlines() if line]
    steps = [r for r in records if "tokens_per_s" in r]
    evals = [r for r in records if "valid_loss" in r]
    trainer = json.loads(sorted((stage_dir / "checkpoints").glob("step-*/trainer.json"))[-1].read_text())
    fingerprint = trainer["fingerprint"]
    tokens_per_step = fingerprint["batch_size"] * fingerprint["seq_len"]
    last_step = steps[-1]["step"] if steps else 0
    if steps and "train_seconds" in steps[-1]:  # the trainer's own clock (evaluations and saves left out)
        seconds = steps[-1]["train_seconds"]
    else:  # an older run: every log_every-th step's rate, scaled to all of them
        seconds = sum(tokens_per_step / r["tokens_per_s"] for r in steps) * last_step / max(len(steps), 1)
    return {"steps": last_step, "tokens": last_step * tokens_per_step, "train_seconds": round(seconds),
            "first_valid_loss": evals[0]["valid_loss"] if evals else None,
            "valid_loss": evals[-1]["valid_loss"] if evals else None,
            "valid_accuracy": evals[-1].get("valid_accuracy") if evals else None}


def ship(run: str | Path, out: str | Path | None = None, images: str | Path | None = DOCS_IMAGES) -> dict:
    run = Path(run)
    stages = json.loads((run / STAGES_FILE).read_text()) if (run / STAGES_FILE).is_file() else list(STAGES)
    export = run / stages[-1] / "export"
    if not (export / "config.json").is_file():
        raise CodaError(f"{run} has no finished pipeline ({export} is missing); run `coda train pipeline` first")
    out = Path(out or BUNDLED_MODELS["coda-mini"])
    model = load_model(export, dtype=torch.float32).to(torch.bfloat16)
    tokenizer = load_tokenizer(export)
    summary = {"stages": {s: stage_summary(run / s) for s in stages if (run / s / "metrics.jsonl").is_file()}}
    corpus = run / "corpus" / "manifest.json"
    if corpus.is_file():
        manifest = json.loads(corpus.read_text())
        summary["corpus"] = {"splits": manifest["splits"], "dropped": manifest["dropped"],
                             "sft_pairs": manifest["sft_pairs"]}
    summary["parameters"] = sum(p.numel() for p in model.parameters())
    if (run / FROM_FILE).is_file():  # a continued run: what the model it started from had seen, too
        start = Path(json.loads((run / FROM_FILE).read_text())["model"])
        summary["continued_from"] = {"model": str(start)}
        if (start / "training.json").is_file():
            summary["continued_from"]["training"] = json.loads((start / "training.json").read_text())
    with atomic_directory(out, replace=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / "training.json").write_text(json.dumps(summary, indent=1) + "\n")
    if images is not None:
        Path(images).mkdir(parents=True, exist_ok=True)
        for stage in stages:
            if (run / stage / "loss.png").is_file():
                shutil.copyfile(run / stage / "loss.png", Path(images) / f"coda-mini-{stage}.png")
    return {"out": str(out), **summary}
