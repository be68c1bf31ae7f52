"""`coda train ...`: build a corpus and tokenizer, prepare data, run a stage or a pipeline, export, ship."""

from __future__ import annotations

import argparse
import json
import os

from coda_core.errors import CodaError


def cmd_prepare(args) -> None:
    from coda_core.tokenizer import load_tokenizer

    from .prepare import prepare

    manifest = prepare(args.src, load_tokenizer(args.tokenizer), args.out, seq_len=args.seq_len, seed=args.seed,
                       languages=set(args.languages.split(",")) if args.languages else None,
                       workers=args.workers)
    print(json.dumps({"out": args.out, "rows": manifest["rows"], "kind": manifest["kind"], **manifest["stats"]}))


def cmd_corpus(args) -> None:
    from .corpus import build_corpus, format_manifest

    manifest = build_corpus(args.out, max_chars_per_package=args.max_chars_per_package,
                            decontaminate=not args.no_decontaminate)
    print(json.dumps({"out": args.out, **manifest["splits"], "sft_pairs": manifest["sft_pairs"],
                      "dropped": manifest["dropped"]}) if args.json else format_manifest(manifest))


def cmd_tokenizer(args) -> None:
    from .tokenizer import build_tokenizer, measure_vocab_sizes

    if args.measure:
        for row in measure_vocab_sizes(args.corpus, [int(v) for v in args.measure.split(",")],
                                       max_chars=args.max_chars):
            print(json.dumps(row))
        return
    if not args.out:
        raise CodaError("coda train tokenizer needs --out (or --measure SIZES)")
    print(json.dumps(build_tokenizer(args.corpus, args.out, args.vocab_size, max_chars=args.max_chars)))


def cmd_bench(args) -> None:
    from .bench import bench_train, format_bench

    result = bench_train(args.recipe, args.variants.split(","), rounds=args.rounds, warmup=args.warmup,
                         overrides=args.set, device=args.device)
    print(json.dumps(result) if args.json else format_bench(result))


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


def cmd_ship(args) -> None:
    from .ship import DOCS_IMAGES, ship

    # a candidate shipped to a folder of its own leaves coda-mini's model card (its curves) alone
    print(json.dumps(ship(args.run, out=args.out, images=None if args.out else DOCS_IMAGES)))


def cmd_pipeline(args) -> None:
    from .pipeline import run_pipeline

    for summary in run_pipeline(args.pipeline, out=args.out, start=args.start):
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
    p.add_argument("--workers", default="1",
                   help="processes that tokenize and parse (`auto`: one per CPU core); the shards are the same "
                        "bytes for any number")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("corpus", help="build a licensed, deduplicated, decontaminated Python corpus from the "
                                      "standard library and this environment's installed packages")
    p.add_argument("--out", required=True, help="the corpus folder to write (must not exist)")
    p.add_argument("--max-chars-per-package", type=int, default=6_000_000,
                   help="keep at most this many characters of one package (spreads the corpus over packages)")
    p.add_argument("--no-decontaminate", action="store_true", help="keep files that share 13-grams with HumanEval")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.set_defaults(func=cmd_corpus)

    p = sub.add_parser("tokenizer", help="train a byte-level BPE with CoDA's special tokens on a corpus")
    p.add_argument("--corpus", required=True, help="a folder written by `coda train corpus`")
    p.add_argument("--out", help="the tokenizer folder to write (must not exist)")
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--max-chars", type=int, default=40_000_000, help="train on about this many characters")
    p.add_argument("--measure", metavar="SIZES", help="instead: held-out characters per token for each size, "
                                                      "e.g. 4096,8192,16384")
    p.set_defaults(func=cmd_tokenizer)

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

    p = sub.add_parser("bench", help="training tokens/s of a recipe in fp32/bf16, eager/compiled, side by side")
    p.add_argument("recipe")
    p.add_argument("--variants", default="fp32,bf16,fp32+compile,bf16+compile",
                   help="comma-separated: fp32, bf16, fp32+compile, bf16+compile, each optionally with +inline "
                        "(masking in the step, no prefetch worker); the first is the baseline")
    p.add_argument("--device", help="train on this device (cpu, cuda, cuda:N; default: the recipe's backend.device); "
                   "MFU is against a matmul peak measured there")
    p.add_argument("--rounds", type=int, default=10, help="timed rounds (one step of each variant per round)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first (compilation happens here)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a recipe value")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("export", help="write a checkpoint as a model directory load_model opens")
    p.add_argument("checkpoint", help="<out>/checkpoints/step-NNNNNNNNN")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("pipeline", help="prepare, then pretrain -> midtrain -> sft")
    p.add_argument("pipeline")
    p.add_argument("--out", help="override the pipeline's out folder")
    p.add_argument("--from", dest="start", metavar="MODEL",
                   help="continue this model (a folder, e.g. an earlier run's shipped one, or a name): the first "
                        "stage starts from its weights, and the data is prepared with its tokenizer")
    p.set_defaults(func=cmd_pipeline)
    p = sub.add_parser("ship", help="make a finished pipeline's model the bundled coda-mini, or a model folder "
                                    "(--out) (bf16, with its training summary; loss curves into the docs only "
                                    "for coda-mini)")
    p.add_argument("run", nargs="?", default="runs/coda-mini", help="the pipeline's out folder")
    p.add_argument("--out", help="default: the package's coda_core/assets/coda-mini")
    p.set_defaults(func=cmd_ship)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Run one `coda train` command; errors are raised for `coda`'s one error contract (coda_cli.main)."""
    args = build_parser().parse_args(argv)
    args.func(args)
