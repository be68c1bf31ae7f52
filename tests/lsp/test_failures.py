"""coda-lsp under bad conditions: no model, huge or odd documents, malformed requests."""

import subprocess
import sys
import threading

import pytest
import torch
import pytest_lsp
from lsprotocol import types as T
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from helpers import STATUS, frame, notified, read_frames, record_statuses

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
    assert await notified(broken, T.WINDOW_SHOW_MESSAGE, lambda: broken.messages), "the failed load was not shown"
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
    good, gone = str(tiny_model_dir), str(tmp_path / "gone")
    recorded = record_statuses(broken)  # from now on: the failed first load's may have come already

    def statuses() -> list[tuple[str, str]]:
        return [(status.state, status.model) for status in recorded]

    broken.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, "x = \n")))
    broken.workspace_did_change_configuration(T.DidChangeConfigurationParams(
        settings={"coda": {"model": good}}))
    # the good model loads in the background; "ready" is sent once it is in use
    assert await notified(broken, STATUS, lambda: ("ready", good) in statuses()), statuses()
    assert await inline_items(broken, uri, cursor)
    # swapping to a model that cannot load: the reason is shown, and the model in use stays in use
    broken.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings={"coda": {"model": gone}}))
    # the load's end: the status after its "loading"; its error message was sent before that status
    assert await notified(broken, STATUS, lambda: ("loading", gone) in statuses()[:-1]), statuses()
    message = broken.messages[-1]
    assert message.type == T.MessageType.Error and "gone" in message.message and "still using" in message.message
    # the status notifications an editor's status line follows
    assert statuses()[-4:] == [("loading", good), ("ready", good), ("loading", gone), ("ready", good)]
    assert await inline_items(broken, uri, T.Position(0, 4)), "completions go on with the model that loaded"


def test_a_failed_model_switch_leaves_the_settings_on_the_model_in_use(tiny_model_dir, tmp_path):
    """Clearing the model setting after a failed switch ("keep the model in use"), or changing
    another setting, must not try the model that failed again."""
    from coda_lsp.models import ModelHost
    from coda_lsp.settings import Settings

    settings = Settings(model=str(tiny_model_dir), device="cpu")
    events, two_events = [], threading.Event()

    def on_status(state, model, message):  # called on the loading thread
        events.append((state, model))
        if len(events) >= 2:
            two_events.set()

    host = ModelHost(settings, on_status=on_status)
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
    assert two_events.wait(timeout=120), events
    assert events == [("loading", str(tiny_model_dir)), ("ready", str(tiny_model_dir))]
    assert host.current() is not in_use and host.current().model.dtype == torch.float32
