"""coda-lsp under a hostile or buggy client: raw JSON-RPC, no LSP library on this side.

A fresh server of each test's own serves most of them in this process, over stdio
streams in memory: bad frames and envelopes among real requests (what the server
makes of them; tests/lsp/test_jsonrpc.py has the reader and writer alone), commands
called wrongly, memory and text over a long editing session. The real process
serves the rest: the lifecycle and its exit codes, its flags, and commands whose
client never or wrongly answers the server's own requests.
"""

import asyncio
import io
import json
import subprocess
import time
import tracemalloc

import pytest

from coda_lsp.server import CodaServer, server as coda_lsp_server
from helpers import EXIT, SERVER, RawClient, frame, read_frames

INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"capabilities": {}, "initializationOptions": {"model": "/nonexistent/model"}}}


def fresh_server() -> CodaServer:
    """A coda-lsp of the test's own: the handlers of coda_lsp.server's, none of its state."""
    return CodaServer().copy_handlers_from(coda_lsp_server)


def completion(msg_id, **extra) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "method": "textDocument/completion",
            "params": {"textDocument": {"uri": "file:///nope.py"}, "position": {"line": 0, "character": 0}, **extra}}


def split(output: bytes) -> tuple[list[dict], list[dict]]:
    """The server's answers, and the messages it showed the user."""
    messages = read_frames(output)
    return ([m for m in messages if "method" not in m],
            [m for m in messages if m.get("method") == "window/showMessage"])


def run_server(stdin: bytes, *flags: str):
    """`stdin` served by a `coda-lsp --stdio` process: (its completed process, answers, pop-ups)."""
    result = subprocess.run(SERVER + list(flags), input=stdin, capture_output=True, timeout=120)
    return (result, *split(result.stdout))


def serve_in_process(stdin: bytes) -> tuple[int, bytes, list[dict], list[dict]]:
    """`stdin` served by a fresh server here, over stdio as the process serves it: (the exit code
    the process would end with, the output, answers, pop-ups)."""
    server, stdout = fresh_server(), io.BytesIO()
    try:
        server.start_io(io.BytesIO(stdin), stdout)
    finally:
        server.engine.shutdown()
    return (server.exit_code or 0, stdout.getvalue(), *split(stdout.getvalue()))


def by_id(replies: list[dict]) -> dict:
    answers: dict = {}
    for reply in replies:
        answers.setdefault(reply.get("id"), []).append(reply)
    return answers


def test_oversized_and_short_frames_neither_kill_nor_derail_the_server():
    short = json.dumps(completion(4)).encode()
    stdin = (frame(INITIALIZE)
             + b"Content-Length: 100000000000000000000\r\n\r\n" + frame(completion(2))  # OverflowError in pygls
             + b"Content-Length: 1099511627776\r\n\r\n" + frame(completion(3))  # MemoryError in pygls
             + f"Content-Length: {len(short) - 1}\r\n\r\n".encode() + short  # one byte short: "}" is left over
             + frame(completion(5)) + frame(completion(6))
             + frame({"jsonrpc": "2.0", "id": 7, "method": "shutdown"}) + frame(EXIT))
    exit_code, _, replies, pop_ups = serve_in_process(stdin)
    answers = by_id(replies)
    for msg_id in (2, 3, 5, 6):
        assert answers[msg_id][0]["result"]["items"] == [], f"request {msg_id} after a bad frame was not answered"
    # the short frame is not JSON: answered with id null (its id, read from broken JSON, cannot be trusted)
    assert 4 not in answers and [r["error"]["code"] for r in answers[None]].count(-32700) == 1
    oversized = [r for r in answers[None] if r["error"]["code"] == -32600]
    assert len(oversized) == 2 and "over the limit" in oversized[0]["error"]["message"]
    assert len(pop_ups) == 1, "the user is told once; the rest goes to the log"
    assert exit_code == 0


def test_every_request_whose_id_can_be_read_is_answered_once():
    nested = completion(11)
    nested["params"]["extra"] = {"jsonrpc": "2.0", "id": 99, "method": "shutdown"}
    stdin = (frame(INITIALIZE)
             + frame(b'{"jsonrpc": "2.0", "id": 1e400, "method": "shutdown"}')
             + frame([completion(12), completion(18)])  # a batch
             + frame({**completion(13), "jsonrpc": "1.0"})
             + frame({k: v for k, v in completion(14).items() if k != "jsonrpc"})
             + frame({"jsonrpc": "2.0", "id": 15, "method": "textDocument/didClose",
                      "params": {"textDocument": {"uri": "file:///a.py"}}})  # a notification sent with an id
             + frame(nested)
             # not JSON, though it seems to start with an id: a client's request in flight may have that id
             + frame(b'{"jsonrpc": "2.0", "id": 11, "method": "textDocument/completion", "params": {')
             + frame(b"\xff\xfe not even text")
             + frame({"jsonrpc": "2.0", "id": 16, "method": "textDocument/completion", "params": {"position": 3}})
             + frame({"jsonrpc": "2.0", "id": 17, "method": "shutdown"}) + frame(EXIT))
    exit_code, output, replies, pop_ups = serve_in_process(stdin)
    assert b"Infinity" not in output and b"NaN" not in output, "the server wrote invalid JSON"
    answers = by_id(replies)
    assert all(len(answers[i]) == 1 for i in (1, 11, 13, 14, 15, 16, 17)), answers
    assert 99 not in answers, "a request object nested in params was answered as a message"
    assert 12 not in answers and 18 not in answers, "a batch is answered once, with id null"
    for msg_id in (13, 14, 15):
        assert answers[msg_id][0]["error"]["code"] == -32600
    assert answers[16][0]["error"]["code"] == -32602  # params of the wrong shape
    assert answers[11][0]["result"]["items"] == []  # the one answer to request 11: its own
    # id 1e400 and the batch (-32600), the garbled body and the bytes (-32700)
    assert sorted(r["error"]["code"] for r in answers[None]) == [-32700, -32700, -32600, -32600]
    assert all("id" in r for r in replies), "an answer without an id member (JSON-RPC wants null when unread)"
    assert len(pop_ups) == 1
    assert exit_code == 0


def test_a_command_called_with_the_wrong_arguments_is_told_what_it_takes():
    selection = {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 3}}
    calls = {  # id: (command, arguments, what the answer must name)
        20: ("coda.regenerateSelection", None, ["uri: string", "selection: Range", "got 0"]),
        21: ("coda.regenerateSelection", ["file:///w/a.py"], ["selection: Range", "got 1"]),
        22: ("coda.regenerateSelection", ["file:///w/a.py", 3], ["argument selection is not a Range"]),
        23: ("coda.rewriteWithInstruction", [], ["selection: Range", "instruction: string (optional)"]),
        24: ("coda.rewriteWithInstruction", ["file:///w/a.py", selection, 7], ["argument instruction"]),
        25: ("coda.implementFunction", [{"uri": "file:///w/a.py"}, {"line": 0, "character": 0}],
             ["argument uri is not a string"]),
        26: ("coda.implementFunction", ["file:///w/a.py", selection, "x"], ["position: Position", "got 3"]),
        27: ("coda.fillHoles", [], ["uri: string", "selection: Range"]),
        28: ("coda.noSuchCommand", [], ["unknown command", "coda.fillHoles"]),
    }
    stdin = frame(INITIALIZE)
    for msg_id, (command, arguments, _) in calls.items():
        params = {"command": command, **({} if arguments is None else {"arguments": arguments})}
        stdin += frame({"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand", "params": params})
    exit_code, _, replies, _ = serve_in_process(
        stdin + frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"}) + frame(EXIT))
    answers = by_id(replies)
    for msg_id, (command, _, named) in calls.items():
        error = answers[msg_id][0]["error"]
        assert error["code"] == -32602, (command, error)
        assert all(part in error["message"] for part in named), (named, error["message"])
        assert "Traceback" not in error["message"] and "positional argument" not in error["message"]
    assert exit_code == 0


def test_the_process_keeps_the_lifecycle_of_the_spec_and_takes_its_size_cap_from_a_flag():
    stdin = (frame(completion(0)) + frame({"jsonrpc": "2.0", "method": "initialized", "params": {}})
             + frame(INITIALIZE) + frame({"jsonrpc": "2.0", "id": 2, "method": "shutdown"})
             + frame(completion(3)) + frame(EXIT))
    result, replies, _ = run_server(stdin)
    answers = by_id(replies)
    assert answers[0][0]["error"]["code"] == -32002  # ServerNotInitialized
    assert answers[2][0]["result"] is None
    assert answers[3][0]["error"]["code"] == -32600  # after shutdown
    assert result.returncode == 0
    # exit without shutdown: 1; and the process takes its cap on a message's size from a flag
    body = json.dumps(completion(8, padding="x" * 2000)).encode()
    result, replies, _ = run_server(frame(INITIALIZE) + frame(body) + frame(completion(9)) + frame(EXIT),
                                    "--max-message-mb", "0.001")
    answers = by_id(replies)
    assert 8 not in answers and "over the limit" in answers[None][0]["error"]["message"] and 9 in answers
    assert result.returncode == 1
    assert run_server(frame(EXIT))[0].returncode == 1  # exit before initialize


def started(capabilities: dict, model_dir) -> RawClient:
    client = RawClient()
    client.send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                 "params": {"capabilities": capabilities, "initializationOptions": {"model": str(model_dir)}}})
    client.wait_for(lambda m: m.get("id") == 1)
    client.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    client.wait_for(lambda m: m.get("method") == "coda/status" and m["params"]["state"] == "ready")
    client.send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
        "uri": "file:///w/a.py", "languageId": "python", "version": 1,
        "text": "def add(a, b):\n    total = a + b\n    return total\n"}}})
    return client


def regenerate(client: RawClient, msg_id) -> None:
    client.send({"jsonrpc": "2.0", "id": msg_id, "method": "workspace/executeCommand", "params": {
        "command": "coda.regenerateSelection",
        "arguments": ["file:///w/a.py", {"start": {"line": 1, "character": 0}, "end": {"line": 2, "character": 0}}]}})


BOTH = {"window": {"workDoneProgress": True}, "workspace": {"applyEdit": True}}


@pytest.mark.parametrize("answer", [None, {}, "garbage", {"error": {"code": -32603, "message": "no"}}])
def test_a_command_is_answered_whatever_the_client_answers_to_its_requests(coda_mini_dir, answer):
    client = started(BOTH, coda_mini_dir)
    try:
        regenerate(client, 50)
        create = client.wait_for(lambda m: m.get("method") == "window/workDoneProgress/create")
        client.send({"jsonrpc": "2.0", "id": create["id"], "error": {"code": -32601, "message": "no progress here"}})
        apply = client.wait_for(lambda m: m.get("method") == "workspace/applyEdit")
        reply = {"jsonrpc": "2.0", "id": apply["id"]}
        reply.update(answer if isinstance(answer, dict) and "error" in answer else {"result": answer})
        client.send(reply)
        started_at = time.monotonic()
        result = client.wait_for(lambda m: m.get("id") == 50)
        assert result["result"] is False and time.monotonic() - started_at < 5
        assert not any(m.get("method") == "$/progress" for m in client.seen + list(client.inbox.queue)), \
            "progress was reported on a token the client refused"
        assert client.close() == 0
    finally:
        client.process.kill()


def test_a_client_without_the_capabilities_gets_no_requests_and_the_edit_in_the_result(coda_mini_dir):
    client = started({}, coda_mini_dir)
    try:
        regenerate(client, 60)
        result = client.wait_for(lambda m: m.get("id") == 60)
        asked = [m for m in client.seen + list(client.inbox.queue) if m.get("method") in (
            "window/workDoneProgress/create", "workspace/applyEdit")]
        assert not asked
        assert result["result"]["applied"] is False
        change = result["result"]["edit"]["documentChanges"][0]
        assert change["textDocument"]["uri"] == "file:///w/a.py" and change["edits"][0]["range"]["start"]["line"] == 1
    finally:
        client.process.kill()


def test_a_client_that_never_answers_holds_up_neither_the_command_nor_shutdown(coda_mini_dir):
    client = started(BOTH, coda_mini_dir)
    try:
        regenerate(client, 70)
        client.wait_for(lambda m: m.get("method") == "window/workDoneProgress/create")  # never answered
        client.wait_for(lambda m: m.get("method") == "workspace/applyEdit", timeout=60)  # after the timeout
        result = client.wait_for(lambda m: m.get("id") == 70, timeout=60)  # applyEdit never answered either
        assert result["result"] is False
        told = [m["params"]["message"] for m in client.seen if m.get("method") == "window/showMessage"]
        assert any("did not answer workspace/applyEdit" in text for text in told), told
        # a command pending on the client when shutdown comes: shutdown is answered, and so is the command
        regenerate(client, 71)
        client.wait_for(lambda m: m.get("method") == "window/workDoneProgress/create")
        client.send({"jsonrpc": "2.0", "id": 72, "method": "shutdown"})
        client.wait_for(lambda m: m.get("id") == 72)
        if not any(m.get("id") == 71 for m in client.seen):  # the two answers come in either order
            client.wait_for(lambda m: m.get("id") == 71)
        answers = {m["id"]: m for m in client.seen if m.get("id") in (71, 72) and "method" not in m}
        assert answers[72]["result"] is None and "error" in answers[71]
        client.send(EXIT)
        assert client.process.wait(timeout=60) == 0
    finally:
        client.process.kill()


class CountingSink:
    """A server's output, dropped; only its frames are counted."""

    def __init__(self):
        self.frames = 0

    def write(self, data: bytes) -> None:
        self.frames += data.startswith(b"Content-Length:")


@pytest.fixture
def in_process():
    """A fresh coda-lsp in this process, its output counted and dropped, and a function that feeds it a message."""
    server, sink = fresh_server(), CountingSink()
    server.rpc.set_writer(sink)
    yield server, sink, lambda message: server.rpc.handle_body(json.dumps(message).encode())
    server.engine.shutdown()


async def answered(server: CodaServer) -> None:
    """Until the requests being answered are: a task's `_finish` runs before whoever awaits it."""
    await asyncio.gather(*server.running.values(), return_exceptions=True)


def test_memory_stays_flat_over_50000_changes(in_process):
    """pygls 2.1 kept the future of every notification handler: 1 KB per didChange, 14.5 MB per 20k.
    coda-lsp's own loop keeps nothing per notification, nor per answered request (docs/PERFORMANCE.md
    has the figures)."""
    server, sink, send = in_process

    def change(version: int) -> dict:
        # insert "x" at the end of line 1, or take it away again: the text stays the same size
        start = {"line": 1, "character": 5}
        end = {"line": 1, "character": 6 if version % 2 else 5}
        return {"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
            "textDocument": {"uri": "file:///w/long.py", "version": version},
            "contentChanges": [{"range": {"start": start, "end": end} if version % 2 else {"start": start, "end": start},
                                "text": "" if version % 2 else "x"}]}}

    async def session() -> tuple[int, int]:
        send(INITIALIZE)
        send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": "file:///w/long.py", "languageId": "python", "version": 0, "text": "a = 1\nb = 2\n" * 50}}})
        tracemalloc.start()
        sizes = []
        for version in range(2, 50_002):
            send(change(version))
            if version % 100 == 0:  # a request now and then: its task is kept only until it is answered
                send(completion(f"c{version}"))
            if version % 1000 == 0:
                await answered(server)
            if version in (10_000, 50_000):
                sizes.append(tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
        return sizes[0], sizes[1]

    first, last = asyncio.run(session())
    assert server.documents.get("file:///w/long.py").source == "a = 1\nb = 2\n" * 50
    assert sink.frames == 1 + 500, "every request is answered (initialize and the completions)"
    assert not server.running, f"{len(server.running)} answered requests are still kept"
    assert last - first < 1_000_000, f"memory grew by {last - first:,} bytes over 40,000 changes"


def _client_position(text: str, offset: int) -> dict:
    """The LSP position (UTF-16 columns) of `offset`, worked out as a client does, character by character."""
    line, start, i = 0, 0, 0
    while i < offset:
        if text[i] == "\r" and text[i + 1:i + 2] == "\n":
            i += 2
        elif text[i] in "\r\n":
            i += 1
        else:
            i += 1
            continue
        line, start = line + 1, i
    return {"line": line, "character": sum(2 if ord(c) > 0xFFFF else 1 for c in text[start:offset])}


def test_random_incremental_edits_keep_the_servers_text_equal_to_the_clients(in_process):
    import random

    server, _, send = in_process
    uri = "file:///w/odd%20name.py"
    text = "def f(x):\r\n    return x\x0c + 1\u2028\n# \x85 é 😀\rlast\n"
    pieces = ["x", " ", "\n", "\r\n", "\r", "\x0c", "\u2028", "\u2029", "\x85", "😀", "é", "ab\ncd", "", "\x1c"]
    rnd = random.Random(11)

    async def session() -> None:
        nonlocal text
        send(INITIALIZE)
        send({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": uri, "languageId": "python", "version": 0, "text": text}}})
        for version in range(1, 3001):
            def boundary(offset):  # LSP has no position between the two characters of a CRLF
                return offset + 1 if text[offset - 1:offset + 1] == "\r\n" else offset
            a = boundary(rnd.randrange(len(text) + 1))
            b = boundary(min(len(text), a + rnd.choice([0, 0, 1, 2, 5])))
            new = rnd.choice(pieces)
            send({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": _client_position(text, a), "end": _client_position(text, b)},
                                    "text": new}]}})
            text = text[:a] + new + text[b:]
            assert server.documents.get(uri).source == text, f"diverged at edit {version}"

    asyncio.run(session())
