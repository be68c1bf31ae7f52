"""coda-lsp under bad conditions: no model, huge or odd documents, malformed requests."""

import asyncio
import subprocess
import sys

import pytest
import torch
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from helpers import frame, read_frames

SERVER = [sys.executable, "-m", "coda_lsp.server", "--stdio"]


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def broken(lsp_client: LanguageClient, tmp_path_factory):
    missing = tmp_path_factory.mktemp("models") / "does-not-exist"
    await lsp_client.initialize_session(T.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), initialization_options={"model": str(missing)}))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_model_load_failure_is_shown_and_requests_get_empty_results(broken: LanguageClient):
    for _ in range(100):
        if broken.messages:
            break
        await asyncio.sleep(0.1)
    assert any(m.type == T.MessageType.Error and "does-not-exist" in m.message for m in broken.messages)
    uri = "file:///x.py"
    broken.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, "x = \n")))
    result = await broken.text_document_inline_completion_async(T.InlineCompletionParams(
        context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
        text_document=T.TextDocumentIdentifier(uri), position=T.Position(0, 4)))
    assert not result.items
    actions = await broken.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), T.Range(T.Position(0, 0), T.Position(0, 4)), T.CodeActionContext([])))
    assert not actions


@pytest.mark.asyncio
async def test_huge_documents_are_not_completed_in(broken: LanguageClient):
    uri = "file:///big.py"
    big = "x = 1\n" * (32 * 1024 * 1024 // 6 + 1)  # over coda_lsp.documents.MAX_DOCUMENT_CHARS
    broken.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, big)))
    result = await broken.text_document_inline_completion_async(T.InlineCompletionParams(
        context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
        text_document=T.TextDocumentIdentifier(uri), position=T.Position(3, 2)))
    assert not result.items




def test_malformed_requests_and_requests_before_initialize_get_error_responses():
    messages = [
        {"jsonrpc": "2.0", "id": 0, "method": "textDocument/inlineCompletion",
         "params": {"textDocument": {"uri": "file:///a.py"}, "position": {"line": 0, "character": 0},
                    "context": {"triggerKind": 1}}},
        {"jsonrpc": "2.0", "id": 1, "method": "textDocument/inlineCompletion", "params": {"nonsense": True}},
        {"jsonrpc": "2.0", "id": 2, "method": "initialize", "params": {"capabilities": {}, "processId": None}},
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 3, "method": "textDocument/inlineCompletion", "params": {"position": "here"}},
        {"jsonrpc": "2.0", "id": 4, "method": "textDocument/completion",
         "params": {"textDocument": {"uri": "file:///nope.py"}, "position": {"line": 0, "character": 0}}},
        {"jsonrpc": "2.0", "id": 5, "method": "shutdown"},
        {"jsonrpc": "2.0", "method": "exit"},
    ]
    stdin = b"".join(frame(m) for m in messages)
    result = subprocess.run(SERVER, input=stdin, capture_output=True, timeout=120)
    replies = {m["id"]: m for m in read_frames(result.stdout) if "id" in m and "method" not in m}
    assert set(replies) >= {0, 1, 2, 3, 4, 5}
    assert "error" in replies[0] or not replies[0]["result"]["items"]  # before initialize
    assert "error" in replies[1] and "error" in replies[3]
    assert "result" in replies[2] and "inlineCompletionProvider" in replies[2]["result"]["capabilities"]
    assert replies[4]["result"]["items"] == []
    assert "result" in replies[5]


def test_a_message_that_is_not_utf8_is_skipped_and_the_next_one_answered():
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
    garbage = b'{"jsonrpc": "2.0", "id": 2, "method": "shutdown", "params": "\xff\xfe"}'
    stdin = (frame(initialize) + f"Content-Length: {len(garbage)}\r\n\r\n".encode() + garbage
             + frame({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}) + frame({"jsonrpc": "2.0", "method": "exit"}))
    result = subprocess.run(SERVER, input=stdin, capture_output=True, timeout=120)
    replies = {m["id"]: m for m in read_frames(result.stdout) if "id" in m and "method" not in m}
    assert "result" in replies[1] and "result" in replies[3]
    # not UTF-8, so not JSON: answered with id null, as JSON-RPC 2.0 says (an id read from it cannot be trusted)
    assert 2 not in replies and replies[None]["error"]["code"] == -32700
    assert result.returncode == 0


async def inline_items(client: LanguageClient, uri: str, position: T.Position) -> list:
    result = await client.text_document_inline_completion_async(T.InlineCompletionParams(
        context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
        text_document=T.TextDocumentIdentifier(uri), position=position))
    return list(result.items)


@pytest.mark.asyncio
async def test_configuration_swaps_the_model(broken: LanguageClient, tiny_model_dir, tmp_path):
    uri, cursor = "file:///swap.py", T.Position(0, 4)
    statuses = []

    @broken.feature("coda/status")
    def on_status(params):
        statuses.append((params.state, params.model))
    broken.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, "x = \n")))
    broken.workspace_did_change_configuration(T.DidChangeConfigurationParams(
        settings={"coda": {"model": str(tiny_model_dir)}}))
    for _ in range(300):  # the good model loads in the background
        if await inline_items(broken, uri, cursor):
            break
        await asyncio.sleep(0.1)
    assert await inline_items(broken, uri, cursor)
    # swapping to a model that cannot load: the reason is shown, and the model in use stays in use
    count = len(broken.messages)
    broken.workspace_did_change_configuration(T.DidChangeConfigurationParams(
        settings={"coda": {"model": str(tmp_path / "gone")}}))
    for _ in range(300):
        if len(broken.messages) > count and statuses[-1][0] != "loading":
            break
        await asyncio.sleep(0.1)
    message = broken.messages[-1]
    assert message.type == T.MessageType.Error and "gone" in message.message and "still using" in message.message
    # the status notifications an editor's status line follows
    good, gone = str(tiny_model_dir), str(tmp_path / "gone")
    assert statuses[-4:] == [("loading", good), ("ready", good), ("loading", gone), ("ready", good)]
    assert await inline_items(broken, uri, T.Position(0, 4)), "completions go on with the model that loaded"


def test_a_failed_model_switch_leaves_the_settings_on_the_model_in_use(tiny_model_dir, tmp_path):
    """Clearing the model setting after a failed switch ("keep the model in use"), or changing
    another setting, must not try the model that failed again."""
    import time

    from coda_lsp.models import ModelHost
    from coda_lsp.settings import Settings

    settings = Settings(model=str(tiny_model_dir), device="cpu")
    events = []
    host = ModelHost(settings, on_status=lambda state, model, message: events.append((state, model)))
    assert host.load() is None
    in_use = host.current()
    settings.update({"model": str(tmp_path / "no-such-model")})
    error = host.load()
    assert "no-such-model" in error and "still using" in error
    assert host.current() is in_use and settings.model == str(tiny_model_dir)
    settings.update({"model": None})
    host.request()  # the model in use is the one asked for: nothing to load
    settings.update({"dtype": "float32"})
    host.request()  # the model in use, in another dtype
    deadline = time.monotonic() + 60
    while len(events) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert events == [("loading", str(tiny_model_dir)), ("ready", str(tiny_model_dir))]
    assert host.current() is not in_use and host.current().model.dtype == torch.float32
