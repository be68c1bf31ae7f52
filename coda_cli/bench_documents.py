"""`coda bench lsp --documents`: what large documents cost coda-lsp (issue 31's table).

coda_cli.lsp_client starts `coda-lsp --stdio`, warms its model up on a
small file (the session's first completion, reported too), then opens each
document shape: a minified bundle of 1 MB and of 5 MB on one line, 100,000
lines, and the same with the cursor inside a block.
On each it asks for an inline completion and a completion (both invoked, so
neither is served from the shown-completions cache), `repeats` times, while
sending a cheap request (a method the server does not serve) every 10 ms,
each once the one before was answered. Reported per shape: the medians of both answers' times, the longest
any cheap request waited, and how much the server's RSS grew over its size
after the warm-up. The messages are raw JSON-RPC (no lsprotocol types to build
on the way), and the server's RSS is read from /proc.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from .lsp_client import LanguageClient, running_server

MINIFIED = "var a=function(b,c){return b+c*2};"
PING_INTERVAL = 0.01  # seconds between cheap requests: an editor's rate, not a flood that would itself load the server


def document_shapes() -> dict:
    """name -> (language id, text, cursor line, cursor column)."""
    one_mb = MINIFIED * (1_000_000 // len(MINIFIED))
    five_mb = MINIFIED * (5 * 1024 * 1024 // len(MINIFIED) + 1)
    flat = "".join(f"x_{i} = compute({i}, 'abc')\n" for i in range(100_000))
    blocks = "".join(f"def f_{i}(a):\n" if i % 10 == 0 else f"    y_{i} = a + {i}\n" for i in range(100_000))
    return {"1 MB, one line": ("javascript", one_mb, 0, len(one_mb) // 2),
            "5 MB, one line": ("javascript", five_mb, 0, len(five_mb) // 2),
            "100,000 lines": ("python", flat, 50_000, 6),
            "100,000 lines, in a block": ("python", blocks, 50_004, len(f"    y_{50_004} = a + {50_004}"))}


def _rss_mb(client: LanguageClient) -> float:
    with open(f"/proc/{client.process.pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


async def _timed(client: LanguageClient, msg_id: str, method: str, uri: str, line: int,
                 col: int) -> tuple[float, float]:
    """(seconds to the answer, the longest wait of a cheap request sent meanwhile)."""
    params = {"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}
    if method == "textDocument/inlineCompletion":
        params["context"] = {"triggerKind": 1}  # invoked
    asked = time.monotonic()
    answer = client.rpc.request(method, params, msg_id)
    longest = 0.0
    for k in range(100_000):
        sent = time.monotonic()
        ping = client.rpc.request("coda/ping", None, f"{msg_id}/ping/{k}")
        ping.add_done_callback(lambda done: done.exception())  # "method not found", as expected
        await asyncio.wait([answer, ping], timeout=300, return_when=asyncio.FIRST_COMPLETED)
        if answer.done():
            return time.monotonic() - asked, longest
        if not ping.done():
            break
        longest = max(longest, time.monotonic() - sent)
        await asyncio.sleep(PING_INTERVAL)
    raise RuntimeError(f"no answer to {method}")


async def _measure(model: str, settings: dict | None, repeats: int) -> dict:
    client = LanguageClient()
    async with running_server(client, {"model": model, **(settings or {})}):
        client.rpc.notify("textDocument/didOpen", {"textDocument": {
            "uri": "file:///bench/small.py", "languageId": "python", "version": 1, "text": "def f(a):\n    return \n"}})
        first, first_wait = await _timed(client, "warm-up", "textDocument/inlineCompletion", "file:///bench/small.py",
                                         1, 11)
        idle = _rss_mb(client)
        rows = []
        for n, (name, (language, text, line, col)) in enumerate(document_shapes().items()):
            uri = f"file:///bench/{n}.{'js' if language == 'javascript' else 'py'}"
            client.rpc.notify("textDocument/didOpen", {"textDocument": {
                "uri": uri, "languageId": language, "version": 1, "text": text}})
            row = {"document": name, "characters": len(text)}
            longest = 0.0
            for method, key in (("textDocument/inlineCompletion", "inline_ms"), ("textDocument/completion",
                                                                                 "completion_ms")):
                times = []
                for r in range(repeats):
                    seconds, waited = await _timed(client, f"{n}/{key}/{r}", method, uri, line, col)
                    times.append(seconds)
                    longest = max(longest, waited)
                row[key] = round(1000 * statistics.median(times), 1)
            row["longest_wait_ms"] = round(1000 * longest, 1)
            row["rss_growth_mb"] = round(_rss_mb(client) - idle)
            client.rpc.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
            rows.append(row)
        return {"model": model, "repeats": repeats, "first_completion_ms": round(1000 * first, 1),
                "first_longest_wait_ms": round(1000 * first_wait, 1), "idle_rss_mb": round(idle), "documents": rows}


def bench_documents(model: str, settings: dict | None = None, repeats: int = 3) -> dict:
    return asyncio.run(_measure(model, settings, repeats))


def format_documents(result: dict, model: str) -> str:
    """The figures of `bench_documents` as a table, a row per document."""
    lines = [f"coda-lsp on large documents ({model}; medians of {result['repeats']}; idle RSS "
             f"{result['idle_rss_mb']} MB after the session's first completion, which took "
             f"{result['first_completion_ms']} ms, other requests waiting up to {result['first_longest_wait_ms']} ms)",
             f"{'document':<28}{'inline ms':>11}{'completion ms':>15}{'longest wait ms':>17}{'RSS growth MB':>15}"]
    for row in result["documents"]:
        lines.append(f"{row['document']:<28}{row['inline_ms']:>11}{row['completion_ms']:>15}"
                     f"{row['longest_wait_ms']:>17}{row['rss_growth_mb']:>15}")
    return "\n".join(lines)
