"""The `coda` command line.

Each subcommand parses its arguments, calls one library function, and prints
text or (with --json) one JSON object. Errors a user can fix (`CodaError`)
print one line on stderr and exit with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import CodaError


def cmd_info(args) -> None:
    from .info import format_info, model_info

    info = model_info(args.model)
    print(json.dumps(info) if args.json else format_info(info))


def cmd_init_model(args) -> None:
    from .presets import init_model

    out = init_model(args.preset, args.out, tokenizer=args.tokenizer, seed=args.seed)
    print(f"wrote a random {args.preset} model to {out}")


def cmd_bench_forward(args) -> None:
    from .bench import bench_forward, format_forward

    from .loading import resolve_dtype

    result = bench_forward(repeats=args.repeats, preset=args.preset,
                           dtype=resolve_dtype(args.dtype, "cpu"))
    print(json.dumps(result) if args.json else format_forward(result))


def build_parser() -> argparse.ArgumentParser:
    from .presets import PRESETS

    parser = argparse.ArgumentParser(prog="coda", description="CoDA diffusion language model tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="describe a model directory (no weights needed)")
    p.add_argument("model", metavar="MODEL", help="model directory or hub repo id")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("init-model", help="write a randomly initialised model directory")
    p.add_argument("--preset", choices=list(PRESETS), required=True)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--tokenizer", metavar="PATH", help="tokenizer directory (default: the bundled Qwen3 tokenizer)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_init_model)

    bench = sub.add_parser("bench", help="benchmarks that print figures").add_subparsers(
        dest="bench", required=True, metavar="BENCH")
    p = bench.add_parser("forward", help="full vs window forward on the CoDA-v0 shape (random bf16 weights, CPU)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--repeats", type=int, default=3, help="timed full forwards (window forwards: 4x as many)")
    p.add_argument("--dtype", default="bfloat16", help="bfloat16 (default), float32, or auto")
    p.add_argument("--preset", choices=list(PRESETS), default="coda-v0", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench_forward)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CodaError as exc:
        print(f"coda: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
