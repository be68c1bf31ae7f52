"""`coda train ...`: prepare data, run a stage, export a checkpoint, run a pipeline."""

from __future__ import annotations

import argparse
import json
import os
import sys

from coda_core.errors import CodaError


def cmd_prepare(args) -> None:
    from coda_core.tokenizer import load_tokenizer

    from .data import prepare

    manifest = prepare(args.src, load_tokenizer(args.tokenizer), args.out, seq_len=args.seq_len, seed=args.seed,
                       languages=set(args.languages.split(",")) if args.languages else None)
    print(json.dumps({"out": args.out, "rows": manifest["rows"], "kind": manifest["kind"], **manifest["stats"]}))


def cmd_run(args) -> None:
    from .recipe import load_recipe

    overrides = list(args.set) + ([f"backend.name={args.backend}"] if args.backend else [])
    recipe = load_recipe(args.recipe, overrides)
    if args.dry_run:
        from .dry_run import dry_run, format_dry_run

        report = dry_run(recipe)
        print(json.dumps(report) if args.json else format_dry_run(report))
        if not report["fits"]:
            raise CodaError(f"{args.recipe}: the estimated memory per device does not fit the chip")
        return
    from .trainer import run_recipe

    summary = run_recipe(recipe, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun, one summary
        print(json.dumps(summary))


def cmd_export(args) -> None:
    from .export import export_checkpoint

    print(json.dumps({"out": str(export_checkpoint(args.checkpoint, args.out))}))


def cmd_pipeline(args) -> None:
    from .pipeline import run_pipeline

    for summary in run_pipeline(args.pipeline, out=args.out):
        print(json.dumps(summary))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coda train", description="train CoDA models")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="tokenize, dedup, pack and shard code (or SFT records) for training")
    p.add_argument("--src", nargs="+", required=True, help="folders of code files, or .jsonl records")
    p.add_argument("--tokenizer", required=True, help="a tokenizer (or model) directory")
    p.add_argument("--out", required=True, help="the data directory to write (must not exist)")
    p.add_argument("--seq-len", type=int, default=1024, help="tokens per row")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed")
    p.add_argument("--languages", help="keep only these, e.g. python,rust (by file suffix)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("run", help="run one stage from a recipe")
    p.add_argument("recipe")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the recipe's out")
    p.add_argument("--dry-run", action="store_true",
                   help="check the recipe without weights: mesh, sharding of every parameter, memory per device")
    p.add_argument("--backend", choices=["torch", "xla"], help="override the recipe's backend")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.steps=10")
    p.add_argument("--json", action="store_true", help="with --dry-run: one JSON object")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("export", help="write a checkpoint as a model directory load_model opens")
    p.add_argument("checkpoint", help="<out>/checkpoints/step-NNNNNNNNN")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("pipeline", help="prepare, then pretrain -> midtrain -> sft")
    p.add_argument("pipeline")
    p.add_argument("--out", help="override the pipeline's out folder")
    p.set_defaults(func=cmd_pipeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CodaError as exc:
        print(f"coda train: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
