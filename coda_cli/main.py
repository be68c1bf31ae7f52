"""The `coda` command line.

Each subcommand parses its arguments, calls one library function, and prints
text or (with --json) one JSON object. `coda eval` and `coda train` parse
their own arguments (coda_eval.cli, coda_train.cli). Every subcommand keeps
one error contract, kept here in `main`: an error a user can fix (`CodaError`,
or a value the library rejects with ValueError) prints one `coda: error: ...`
line on stderr and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path

from coda_core.bundled import DEFAULT_MODEL_HELP, default_model
from coda_core.errors import CodaError


def cmd_info(args) -> None:
    from coda_core.info import format_info, model_info

    info = model_info(args.model or default_model())
    print(json.dumps(info) if args.json else format_info(info))


def cmd_init_model(args) -> None:
    from coda_core.presets import init_model

    out = init_model(args.preset, args.out, tokenizer=args.tokenizer, seed=args.seed)
    print(f"wrote a random {args.preset} model to {out}")


QUANTIZE_HELP = ("int8: the linear layers' weights in int8; for a large model (CoDA-1.7B) on a CPU about 3x faster "
                 "per step than float32, in about a third of its memory (on a GPU: less memory, slower than bf16); "
                 "default none")


def read_source(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CodaError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise CodaError(f"{path} is not UTF-8 text") from None
    except OSError as exc:
        raise CodaError(f"cannot read {path}: {exc.strerror}") from None


def split_at(text: str, line: int, col: int) -> tuple[str, str]:
    """(before, after) the 1-based line and column (in characters) of `text`, rows counted on "\n"."""
    from coda_lsp.text import offset_at_row, rows

    lines = rows(text)
    if not 1 <= line <= len(lines):
        raise CodaError(f"line {line} is outside the file (1..{len(lines)})")
    width = len(lines[line - 1].rstrip("\r\n"))
    if not 1 <= col <= width + 1:
        raise CodaError(f"column {col} is outside line {line} (1..{width + 1})")
    offset = offset_at_row(text, line - 1, col - 1)
    return text[:offset], text[offset:]


def parse_target(target: str, pattern: str, usage: str) -> tuple[str, ...]:
    match = re.fullmatch(pattern, target)
    if not match:
        raise CodaError(f"expected {usage}, got {target!r}")
    return match.groups()


def make_sampler(args):
    from coda_core.denoise import DecodeOptions
    from coda_core.sampler import Sampler
    from coda_core.token_choice import SamplingParams

    options = DecodeOptions(alg=args.alg, threshold=args.threshold, block_size=args.block_size, steps=args.steps,
                            sampling=SamplingParams(args.temperature, args.top_p, args.top_k))
    return Sampler.load(args.model or default_model(), device=args.device, dtype=args.dtype, quantize=args.quantize,
                        strategy=args.strategy, options=options)


def print_result(result, as_json: bool) -> None:
    print(json.dumps(result.as_dict()) if as_json else result.text)


def cmd_infill(args) -> None:
    from .infill import infill

    path, line, col = parse_target(args.target, r"(.+):(\d+):(\d+)", "FILE:LINE:COL")
    source = read_source(path)
    before, after = split_at(source, int(line), int(col))
    infill(args, make_sampler, path, source, before, after)


def cmd_rewrite(args) -> None:
    path, start, end = parse_target(args.target, r"(.+):(\d+)-(\d+)", "FILE:START-END")
    from coda_lsp.text import rows

    start, end = int(start), int(end)
    lines = [line for line in rows(read_source(path)) if line]
    if not 1 <= start <= end <= len(lines):
        raise CodaError(f"lines {start}-{end} are not a range inside the file (1..{len(lines)})")
    sampler = make_sampler(args)
    tok = sampler.tokenizer
    prefix, span, suffix = ("".join(part) for part in (lines[: start - 1], lines[start - 1:end], lines[end:]))
    print_result(sampler.rewrite(tok.encode(prefix), tok.encode(span), tok.encode(suffix), n=args.n,
                                 seed=args.seed), args.json)


def cmd_bench_sample(args) -> None:
    from coda_core.loading import resolve_device, resolve_dtype
    from coda_core.presets import preset_config

    if args.model:
        from .bench_model import bench_sample_model, format_sample_model

        result = bench_sample_model(args.model, holes=args.holes, threshold=args.threshold, source=args.source,
                                    device=args.device or "auto", dtype=args.dtype or "auto", quantize=args.quantize)
        print(json.dumps(result) if args.json else format_sample_model(result))
        return
    from .bench import bench_sample_shape, format_sample_shape

    device = resolve_device(args.device or "cpu")
    dtype = resolve_dtype(args.dtype or "auto", device, preset_config(args.preset))
    result = bench_sample_shape(steps=args.steps, preset=args.preset, dtype=dtype, prefix=args.prefix_tokens,
                                suffix=args.suffix_tokens, hole=args.hole_tokens, device=str(device),
                                end_to_end=args.end_to_end, quantize=args.quantize)
    print(json.dumps(result) if args.json else format_sample_shape(result))


def run_eval(argv: list[str]) -> int | None:
    from coda_eval.cli import main as eval_main

    return eval_main(argv)


def run_train(argv: list[str]) -> int | None:
    from coda_train.cli import main as train_main

    return train_main(argv)


# The commands that parse their own arguments: everything after the command's name goes to them
# untouched. argparse cannot hand it on: a REMAINDER argument does not take an option that comes
# first, so `coda train --help` would reach the top-level parser, which rejects it.
OWN_PARSERS = {"eval": run_eval, "train": run_train}


def cmd_bench_lsp(args) -> None:
    from .bench_documents import bench_documents, format_documents
    from .bench_lsp import bench_lsp, breakdown, format_lsp

    model = args.model or default_model()
    settings = {"device": args.device, "dtype": args.dtype, "quantize": args.quantize}
    if args.documents:
        result = bench_documents(model, settings)
        print(json.dumps(result) if args.json else format_documents(result, model))
        return
    result = bench_lsp(model, interval=args.interval_ms / 1000, settings=settings,
                       compare_context=args.compare_context)
    if args.breakdown:  # after the server run, so the two never share the CPU
        result["stages"] = breakdown(model, settings)
    print(json.dumps(result) if args.json else format_lsp(result))


def cmd_bench_crossfile(args) -> None:
    from .bench_crossfile import bench_crossfile, format_crossfile

    result = bench_crossfile(args.model or [default_model()], holes=args.holes, seed=args.seed)
    print(json.dumps(result) if args.json else format_crossfile(result))


def cmd_bench_forward(args) -> None:
    from .bench import bench_forward, format_forward

    from coda_core.loading import resolve_device, resolve_dtype
    from coda_core.presets import preset_config

    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device, preset_config(args.preset))
    result = bench_forward(repeats=args.repeats, preset=args.preset, dtype=dtype,
                           device=str(device), quantize=args.quantize)
    print(json.dumps(result) if args.json else format_forward(result))


def tokens_per_step(text: str) -> tuple[int, ...]:
    """--end-to-end's "1,3": positive whole numbers; "" or "none": no end-to-end runs."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected tokens per step like 1,3, got {text!r}") from None
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"tokens per step must be >= 1, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    from coda_core.presets import SHAPES  # the model's import, which every command makes anyway
    from coda_core.choices import DTYPES, QUANTIZE
    from coda_core.sampler import STRATEGIES

    def quantize_option(p):
        p.add_argument("--quantize", choices=QUANTIZE, default="none",
                       help=QUANTIZE_HELP)

    parser = argparse.ArgumentParser(prog="coda", description="CoDA diffusion language model tools")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="describe a model directory (no weights needed)")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help=f"coda-mini, a model directory or hub repo id ({DEFAULT_MODEL_HELP})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("init-model", help="write a randomly initialised model directory")
    p.add_argument("--preset", choices=list(SHAPES), required=True)
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--tokenizer", metavar="PATH", help="tokenizer directory (default: the bundled Qwen3 tokenizer)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_init_model)

    def sampler_options(p):
        p.add_argument("--model", help=f"coda-mini, a model directory or hub id ({DEFAULT_MODEL_HELP})")
        p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
        p.add_argument("--dtype", default="auto", help="auto (default), bfloat16, float16 or float32")
        quantize_option(p)
        p.add_argument("--strategy", choices=STRATEGIES, default=STRATEGIES[0])
        p.add_argument("--threshold", type=float, default=0.9, help="fast: commit tokens at least this sure")
        p.add_argument("--block-size", type=int, default=32)
        p.add_argument("--steps", type=int, help="reference: denoising steps (default: one per token)")
        p.add_argument("--alg", default="maskgit_plus", help="origin, maskgit_plus, topk_margin or entropy")
        p.add_argument("--temperature", type=float, default=0.0)
        p.add_argument("--top-p", type=float)
        p.add_argument("--top-k", type=int)
        p.add_argument("-n", type=int, default=1, help="candidates")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--json", action="store_true", help="print one JSON object")

    p = sub.add_parser("infill", help="complete the code at FILE:LINE:COL (1-based)")
    p.add_argument("target", metavar="FILE:LINE:COL")
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--related", nargs="+", metavar="PATH",
                   help="other files to take snippets from, as if open beside FILE (the files FILE imports "
                        "are read too, inside the current folder)")
    p.add_argument("--context-files", type=int, metavar="TOKENS",
                   help="tokens of snippets from other files (the server's contextFiles; 0: none)")
    p.add_argument("--show-context", action="store_true",
                   help="print what the model was given: snippets (file, lines, tokens), prefix and suffix tokens")
    sampler_options(p)
    p.set_defaults(func=cmd_infill)

    p = sub.add_parser("rewrite", help="regenerate lines START-END (1-based, inclusive) of FILE")
    p.add_argument("target", metavar="FILE:START-END")
    sampler_options(p)
    p.set_defaults(func=cmd_rewrite)

    # Listed here for `coda --help`; `main` hands their arguments to their own parsers (OWN_PARSERS).
    sub.add_parser("eval", help="evaluate: `coda eval TASK --model M --out DIR`, "
                   "`coda eval check TASK --solutions F --out DIR`, `coda eval compare A B`")
    sub.add_parser("train", help="train: `coda train prepare|run|export|pipeline ...`")

    bench = sub.add_parser("bench", help="benchmarks that print figures").add_subparsers(
        dest="bench", required=True, metavar="BENCH")
    p = bench.add_parser("forward", help="full vs window forward on the CoDA-v0 shape (random weights)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--repeats", type=int, default=3, help="timed full forwards (window forwards: 4x as many)")
    p.add_argument("--dtype", default="auto", help="auto (default: bfloat16 where it is measured faster than "
                   "float32 here, as the loader picks), bfloat16, float16 or float32")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    p.add_argument("--quantize", choices=QUANTIZE, default="none",
                   help=QUANTIZE_HELP + "; measured beside the unquantized model")
    p.add_argument("--preset", choices=list(SHAPES), default="coda-v0", help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_bench_forward)

    p = bench.add_parser("sample", help="reference vs fast sampler, side by side")
    p.add_argument("--model", help="a trained model (coda-mini, a directory or hub id): end-to-end figures on "
                   "holes cut from real code (without it: per-step cost on the CoDA-v0 shape, random weights)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--holes", type=int, default=20, help="with --model: holes to decode")
    p.add_argument("--threshold", type=float, default=0.9, help="with --model: the fast sampler's tau")
    p.add_argument("--source", help="with --model: cut the holes from this folder of .py files or JSONL corpus "
                   "(e.g. runs/coda-mini/corpus/bench.jsonl, the held-out packages; default: coda_core's sources)")
    p.add_argument("--steps", type=int, default=3, help="without --model: steps timed per sampler")
    p.add_argument("--dtype", help="auto (default: the dtype load_model picks, bfloat16 only where it is "
                   "measured faster than float32 here), bfloat16, float16 or float32")
    p.add_argument("--quantize", choices=QUANTIZE, default="none",
                   help=QUANTIZE_HELP + "; with --model, beside the unquantized model's figures and their top-1 "
                        "agreement")
    p.add_argument("--end-to-end", type=tokens_per_step, default=(), metavar="K[,K...]",
                   help="without --model: also decode the whole hole at K tokens per step with each sampler "
                        "(e.g. 1,3)")
    p.add_argument("--preset", choices=list(SHAPES), default="coda-v0", help=argparse.SUPPRESS)
    p.add_argument("--prefix-tokens", type=int, default=1024, help="without --model: prefix length")
    p.add_argument("--suffix-tokens", type=int, default=256, help="without --model: suffix length")
    p.add_argument("--hole-tokens", type=int, default=32, help="without --model: hole length")
    p.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: with --model auto, without it cpu)")
    p.set_defaults(func=cmd_bench_sample)

    p = bench.add_parser("lsp", help="inline-completion latency of coda-lsp while typing into a 2,000-line file")
    p.add_argument("--model", help=f"coda-mini, a model directory or hub id ({DEFAULT_MODEL_HELP})")
    p.add_argument("--interval-ms", type=float, default=30.0, help="time between keystrokes")
    p.add_argument("--quantize", choices=QUANTIZE, default="none",
                   help=QUANTIZE_HELP + "; the unquantized run comes first, side by side")
    p.add_argument("--device", default="auto", help="the server's device setting: cpu, cuda, cuda:N or auto (default)")
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="the server's dtype setting (default auto)")
    p.add_argument("--breakdown", action="store_true",
                   help="also replay the typing in process, one answer per keystroke, and report where "
                        "an answer's time goes (medians per stage)")
    p.add_argument("--compare-context", action="store_true",
                   help="first type without snippets of the other open tabs (contextFiles 0), side by side")
    p.add_argument("--documents", action="store_true",
                   help="instead of typing: completions on large documents (1 and 5 MB minified on one line, "
                        "100,000 lines), the longest wait of other requests meanwhile, and the server's RSS growth")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench_lsp)

    p = bench.add_parser("crossfile", help="cross-file context off vs on, on lines of held-out packages that use "
                         "a name defined in another file of the package")
    p.add_argument("--model", action="append", help=f"a model to complete with, repeatable ({DEFAULT_MODEL_HELP})")
    p.add_argument("--holes", type=int, default=100, help="holes to cut (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="which holes (default %(default)s)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_bench_crossfile)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in OWN_PARSERS:
        command = functools.partial(OWN_PARSERS[argv[0]], argv[1:])
    else:
        args = build_parser().parse_args(argv)
        command = functools.partial(args.func, args)
    try:
        return command() or 0
    except (CodaError, ValueError) as exc:
        # ValueError: arguments the sampler rejects (token ids, sizes, options), each with its reason.
        print(f"coda: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
