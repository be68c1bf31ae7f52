"""`coda bench lsp`: inline-completion latency of the real server while typing.

Starts `coda-lsp --stdio` as a subprocess, opens a 2,000-line Python file
(this package's and coda_core's own sources, repeated), and replays typing
lines of code into it: one keystroke (an incremental didChange) and one
inline-completion request every 30 ms, each new request cancelling the
previous one with `$/cancelRequest`. After each typed line it pauses, as
people do, so the last request of the line can finish. Latency is measured
from a request to its answer, over the answered requests (those that came
back with items, and the last request of each line, which nothing
supersedes, even when the model had nothing to suggest); superseded ones are
counted apart, and so are the typed lines that got at least one visible
(non-blank) suggestion. Timing starts once the server reports the model ready.
Three more of the package's sources are open as other tabs, as in an editor, so
the completions get snippets of them (contextFiles); `--compare-context` runs the
typing once without those snippets first, and gives the ratio of the medians.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from pathlib import Path

from lsprotocol import types as T

import coda_core
import coda_lsp
from coda_core.errors import CodaError

from .lsp_client import LanguageClient, open_python, running_server

# The new lines are typed at the end of the first top-level function that ends at or after this line
# of the benchmark file: in code, whatever docstrings the package's sources have there today.
INSERT_LINE = 1000
TYPED_LINES = [
    "    total = sum(values) / len(values)",
    "    for index, item in enumerate(items):",
    "    result = {key: value for key, value in pairs}",
    "    if not path.exists():",
    "    name = os.path.basename(path)",
    "    with open(path, encoding=\"utf-8\") as handle:",
    "    lines = [line.rstrip() for line in handle]",
    "    return sorted(counts.items(), key=lambda kv: kv[1])",
]


OTHER_TABS = ("engine.py", "context.py", "documents.py")  # of coda_lsp, open beside the typed file


def other_tabs() -> list[tuple[str, str, str]]:
    """(uri, language id, text) of the other open tabs."""
    return [(f"file:///bench/{name}", "python", (Path(coda_lsp.__file__).parent / name).read_text("utf-8"))
            for name in OTHER_TABS]


def open_other_tabs(client: LanguageClient) -> None:
    for uri, _, text in other_tabs():
        open_python(client, uri, text)


def bench_file(lines: int = 2000) -> str:
    """`lines` lines of real Python: the language server's and coda_core's own sources, repeated."""
    folders = [Path(package.__file__).parent for package in (coda_lsp, coda_core)]
    sources = [path for folder in folders for path in sorted(folder.glob("*.py"))]
    text = "".join(p.read_text(encoding="utf-8") for p in sources).splitlines()
    out = []
    while len(out) < lines:
        out.extend(text)
    return "\n".join(out[:lines]) + "\n"


def typing_line(lines: list[str]) -> int:
    """Where TYPED_LINES go in the benchmark file's `lines`: just after the end of a top-level
    function's body (before the blank lines and the next top-level `def`), so they extend that body.
    A fixed line number once fell inside a docstring, where the server rightly offers nothing."""
    for row in range(INSERT_LINE, len(lines)):
        if not lines[row].startswith(("def ", "async def ")):
            continue
        end = row
        while not lines[end - 1].strip():
            end -= 1
        top = next((line for line in reversed(lines[:end]) if line[:1] not in ("", " ", "#", ")", "]", "}")), "")
        if lines[end - 1].startswith("    ") and top.startswith(("def ", "async def ")):
            return end
    raise ValueError("the benchmark file has no top-level function after line %d" % INSERT_LINE)


async def _replay(model: str, interval: float, pause: float, settings: dict) -> dict:
    client = LanguageClient()
    # A load error comes with coda/status too, and is reported from there in one line.
    client.on(T.WINDOW_SHOW_MESSAGE, lambda params: None)
    # Timing starts once the server reports the model ready.
    async with running_server(client, {"model": model, **settings}):
        return await _type_lines(client, interval, pause)


async def _type_lines(client: LanguageClient, interval: float, pause: float) -> dict:
    """Type TYPED_LINES into the benchmark file, a request per keystroke, and time the answers."""
    uri = "file:///bench/example.py"
    text = bench_file()
    open_other_tabs(client)
    open_python(client, uri, text)
    insert_line = typing_line(text.split("\n"))
    version = 1

    async def request(line: int, col: int):
        msg_id = str(uuid.uuid4())
        params = T.InlineCompletionParams(
            context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Automatic),
            text_document=T.TextDocumentIdentifier(uri), position=T.Position(line, col))
        sent = time.perf_counter()
        future = client.request(T.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id=msg_id)
        done = {}
        future.add_done_callback(lambda _: done.setdefault("at", time.perf_counter()))
        return msg_id, future, sent, done

    answered, superseded, lines_shown = [], 0, 0
    for typed in TYPED_LINES:
        # a new empty line to type into
        version += 1
        client.notify(T.TEXT_DOCUMENT_DID_CHANGE, T.DidChangeTextDocumentParams(
            T.VersionedTextDocumentIdentifier(version=version, uri=uri),
            [T.TextDocumentContentChangePartial(T.Range(T.Position(insert_line, 0), T.Position(insert_line, 0)),
                                                "\n")]))
        pending = []
        for col, ch in enumerate(typed):
            version += 1
            client.notify(T.TEXT_DOCUMENT_DID_CHANGE, T.DidChangeTextDocumentParams(
                T.VersionedTextDocumentIdentifier(version=version, uri=uri),
                [T.TextDocumentContentChangePartial(T.Range(T.Position(insert_line, col),
                                                            T.Position(insert_line, col)), ch)]))
            if pending:
                client.notify(T.CANCEL_REQUEST, T.CancelParams(id=pending[-1][0]))
            pending.append(await request(insert_line, col + 1))
            await asyncio.sleep(interval)
        await asyncio.sleep(pause)
        shown = False
        for i, (msg_id, future, sent, done) in enumerate(pending):
            try:
                result = await asyncio.wait_for(asyncio.shield(future), timeout=60)
            except Exception:  # a cancelled request is answered with an error
                superseded += 1
                continue
            visible = result is not None and any(str(getattr(item.insert_text, "value", item.insert_text)).strip()
                                                 for item in result.items)
            shown = shown or visible
            if (result is not None and result.items) or i == len(pending) - 1:
                answered.append(done["at"] - sent)
            else:  # answered empty because a newer request replaced it
                superseded += 1
        lines_shown += shown
        insert_line += 1
    return {"answered": len(answered), "superseded": superseded, "latencies": answered, "lines_shown": lines_shown}


async def _stages(model: str, settings: dict) -> list[dict]:
    """The same typing, in process and one answer per keystroke (nothing superseded): the engine's
    own record of where each answer's time went."""
    from coda_lsp.engine import Engine
    from coda_lsp.settings import Settings
    from coda_lsp.text import offset_at_row

    engine = Engine(Settings(model=model))
    problems = engine.settings.update(settings)
    if problems:
        raise CodaError("; ".join(problems))
    error = engine.models.load()
    if error:
        raise CodaError(error)
    tabs = other_tabs()
    engine.project.open_documents = lambda: tabs
    lines = bench_file().split("\n")
    insert_line = typing_line(lines)
    for typed in TYPED_LINES:
        lines.insert(insert_line, "")
        for col in range(1, len(typed) + 1):
            lines[insert_line] = typed[:col]
            text = "\n".join(lines)
            await engine.complete("file:///bench/example.py", text, offset_at_row(text, insert_line, col), "python")
        insert_line += 1
    engine.shutdown()
    return list(engine.timings)


def breakdown(model: str, settings: dict | None = None) -> dict:
    """Medians of each stage of an answer (ms), and how often the shortcuts applied."""
    timings = asyncio.run(_stages(model, settings or {}))
    decoded = [t for t in timings if "decode_ms" in t]
    out = {key: round(statistics.median(t[key] for t in decoded), 2)
           for key in ("hole_ms", "context_ms", "prefill_ms", "steps_ms", "decode_ms", "post_ms", "steps")}
    out["total_ms"] = round(statistics.median(t["total_ms"] for t in timings), 2)
    out["answers"] = len(timings)
    out["typed_ahead"] = sum("typed_ahead" in t for t in timings)
    out["prefix_reused"] = sum(t.get("reused_prefix", 0) > 0 for t in decoded)
    return out


def bench_lsp(model: str, interval: float = 0.03, pause: float = 1.0, settings: dict | None = None,
              compare_context: bool = False) -> dict:
    """Latency while typing, with the server's `settings` (device, dtype, quantize). With a quantize
    setting, the unquantized model's run comes first and is kept beside, with the ratio of the medians;
    with `compare_context`, a run without snippets of the other tabs (contextFiles 0)."""
    settings = {"device": "auto", "dtype": "auto", "quantize": "none", **(settings or {})}
    quantized = settings["quantize"] != "none"
    baseline = None
    if quantized:
        baseline = bench_lsp(model, interval, pause, {**settings, "quantize": "none"})
    elif compare_context:
        baseline = bench_lsp(model, interval, pause, {**settings, "contextFiles": 0})
    result = asyncio.run(_replay(model, interval, pause, settings))
    latencies = sorted(x * 1000 for x in result["latencies"])

    def percentile(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 1)

    out = {"model": model, **settings, "keystrokes": sum(len(t) for t in TYPED_LINES),
           "interval_ms": interval * 1000, "answered": result["answered"], "superseded": result["superseded"],
           "lines": len(TYPED_LINES), "lines_with_suggestion": result["lines_shown"],
           "p50_ms": round(statistics.median(latencies), 1) if latencies else None, "p95_ms": percentile(0.95)}
    if baseline is not None:
        out["unquantized" if quantized else "without_context_files"] = baseline
        if out["p50_ms"] and baseline["p50_ms"]:
            out["p50_speedup"] = round(baseline["p50_ms"] / out["p50_ms"], 2)
    return out


def format_lsp(result: dict) -> str:
    """The figures of `bench_lsp`, a line per run, the baseline run first."""
    baseline = result.get("unquantized") or result.get("without_context_files")
    lines = []
    for run in ([baseline] if baseline else []) + [result]:
        lines.append(f"coda-lsp while typing {run['keystrokes']} keystrokes, {run['interval_ms']:.0f} ms apart "
                     f"({run['model']}, weights {run['quantize']}, contextFiles {run.get('contextFiles', 'default')}): "
                     f"p50 {run['p50_ms']} ms, p95 {run['p95_ms']} ms over {run['answered']} answered requests "
                     f"({run['superseded']} superseded or cancelled); {run['lines_with_suggestion']} of "
                     f"{run['lines']} typed lines got a visible suggestion")
    if "p50_speedup" in result:
        over = (f"{result['quantize']} over unquantized" if "unquantized" in result
                else "with snippets of the other tabs over without")
        lines.append(f"p50 speedup of {over}: {result['p50_speedup']:.2f}x")
    if "stages" in result:
        lines.append("where an answer's time goes (medians, ms): " + ", ".join(
            f"{key} {value}" for key, value in result["stages"].items()))
    return "\n".join(lines)
