"""coda-lsp end to end over stdio, with the client capabilities of VS Code and Neovim."""

import asyncio
import subprocess
import sys

import pytest
import pytest_lsp
import torch
from lsprotocol import types as T
from pygls.exceptions import JsonRpcRequestCancelled
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

URI = "file:///project/example.py"
SOURCE = "import math\n\n\ndef area(radius):\n    return \n\n\nprint(area(2))\n"
CURSOR = T.Position(line=4, character=11)
from helpers import SERVER, STATUS, environment, notified, record_statuses, server_with_statuses, until_loaded


@pytest_lsp.fixture(
    config=ClientServerConfig(server_command=SERVER),
    params=["visual-studio-code", "neovim"],
)
async def client(lsp_client: LanguageClient, request, tiny_model_dir):
    statuses = record_statuses(lsp_client)
    await lsp_client.initialize_session(T.InitializeParams(
        capabilities=client_capabilities(request.param),
        initialization_options={"model": str(tiny_model_dir), "maxNewTokens": 16, "candidates": 2},
    ))
    lsp_client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(uri=URI, language_id="python", version=1, text=SOURCE)))
    await until_model_ready(lsp_client, statuses)
    yield
    await lsp_client.shutdown_session()


async def inline(client, uri=URI, position=CURSOR, invoked=False):
    kind = T.InlineCompletionTriggerKind.Invoked if invoked else T.InlineCompletionTriggerKind.Automatic
    return await client.text_document_inline_completion_async(T.InlineCompletionParams(
        context=T.InlineCompletionContext(trigger_kind=kind),
        text_document=T.TextDocumentIdentifier(uri=uri), position=position))


def open_document(client, uri: str, source: str) -> None:
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(uri, "python", 1, source)))


def record_edits(client) -> list:
    """Accept every workspace/applyEdit the server sends, keeping its params."""
    edits = []

    @client.feature(T.WORKSPACE_APPLY_EDIT)
    def on_apply(params: T.ApplyWorkspaceEditParams):
        edits.append(params)
        return T.ApplyWorkspaceEditResult(applied=True)

    return edits


async def until_model_ready(client, statuses: list) -> None:
    """The model loads in the background after `initialized`; the fixtures wait for its "ready"
    status, sent once the model is in use (coda_lsp.models), so every request after it is served by it."""
    await until_loaded(client, statuses)
    assert statuses[-1].state == "ready", statuses


async def ready(client) -> T.InlineCompletionList:
    """The first answer of the loaded model (the fixture waited for it): it has items."""
    result = await inline(client)
    assert result is not None and result.items, "no inline completion from the loaded model"
    return result


def progress_reported(client) -> bool:
    """Whether a command's decode is under way: it reports its steps as work done progress."""
    return any(isinstance(v, T.WorkDoneProgressReport) for reports in client.progress_reports.values()
               for v in reports)


@pytest.mark.asyncio
async def test_inline_completion_is_on_the_cursor_line(client: LanguageClient):
    result = await ready(client)
    assert 1 <= len(result.items) <= 2
    for item in result.items:
        assert item.range.start == CURSOR and item.range.end.line == CURSOR.line
        assert "\n" not in item.insert_text  # a line hole


@pytest.mark.asyncio
async def test_completion_items_carry_a_text_edit(client: LanguageClient):
    await ready(client)
    result = await client.text_document_completion_async(T.CompletionParams(
        text_document=T.TextDocumentIdentifier(uri=URI), position=CURSOR))
    assert result.items
    for item in result.items:
        assert item.text_edit.range.start == CURSOR and item.text_edit.new_text


@pytest.mark.asyncio
async def test_cancel_storm_answers_every_request(client: LanguageClient):
    await ready(client)
    requests = [inline(client) for _ in range(200)]
    results = await asyncio.gather(*requests)
    assert len(results) == 200 and all(r is not None for r in results)
    assert results[-1].items, "the newest request completes with a result"


@pytest.mark.asyncio
async def test_bad_requests_are_answered_and_the_server_stays_up(client: LanguageClient):
    await ready(client)
    unknown = await inline(client, uri="file:///nowhere.py")
    assert unknown is not None and not unknown.items
    beyond = await inline(client, position=T.Position(line=999, character=0))
    assert not beyond.items
    strings = "file:///project/strings.py"
    open_document(client, strings, 'greeting = "hello world"\n')
    in_string = await inline(client, uri=strings, position=T.Position(line=0, character=17))
    assert in_string is not None and not in_string.items  # nothing is completed inside a string
    assert (await inline(client)).items  # still serving


@pytest.mark.asyncio
async def test_regenerate_selection_applies_one_edit_with_progress(client: LanguageClient):
    await ready(client)
    edits = record_edits(client)

    selection = T.Range(T.Position(3, 0), T.Position(4, 11))
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        text_document=T.TextDocumentIdentifier(uri=URI), range=selection,
        context=T.CodeActionContext(diagnostics=[])))
    assert [a.title for a in actions] == ["Regenerate selection", "Rewrite selection with instruction"]
    # lsprotocol decodes a CodeAction that carries a command as a plain Command in pygls
    # clients, mangling its fields; so run the command the action names directly.
    applied = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.regenerateSelection", arguments=[URI, selection]))
    assert applied is True
    assert len(edits) == 1
    changes = edits[0].edit.document_changes[0].edits
    assert len(changes) == 1 and changes[0].range == selection
    assert client.progress_reports, "work done progress was reported"
    kinds = [type(v).__name__ for v in next(iter(client.progress_reports.values()))]
    assert kinds[0] == "WorkDoneProgressBegin" and kinds[-1] == "WorkDoneProgressEnd"


@pytest.mark.asyncio
async def test_implement_function_body(client: LanguageClient):
    await ready(client)
    edits = record_edits(client)

    uri = "file:///project/todo.py"
    source = 'import math\n\n\ndef area(radius):\n    """Area of a circle."""\n    pass\n\n\nprint(area(2))\n'
    open_document(client, uri, source)
    on_signature = T.Position(3, 5)
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), T.Range(on_signature, on_signature), T.CodeActionContext([])))
    assert [a.title for a in actions] == ["Regenerate selection", "Rewrite selection with instruction",
                                          "Implement function body", "Fill all holes"]
    applied = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.implementFunction", arguments=[uri, on_signature]))
    assert applied is True
    changes = edits[0].edit.document_changes[0].edits
    assert changes[0].range == T.Range(T.Position(5, 0), T.Position(5, 8))  # exactly `    pass`
    assert changes[0].new_text.strip()
    # not offered on a function that has a body
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(URI), T.Range(T.Position(3, 5), T.Position(3, 5)), T.CodeActionContext([])))
    assert "Implement function body" not in [a.title for a in actions]


@pytest.mark.asyncio
async def test_rewrite_with_instruction(client: LanguageClient):
    await ready(client)
    edits = record_edits(client)

    uri = "file:///project/instruct.py"
    source = "# use a list comprehension\nsquares = []\nfor i in range(10):\n    squares.append(i * i)\n"
    open_document(client, uri, source)
    selection = T.Range(T.Position(1, 0), T.Position(3, 26))
    # the instruction from the comment line above the selection
    applied = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.rewriteWithInstruction", arguments=[uri, selection]))
    assert applied is True
    changes = edits[-1].edit.document_changes[0].edits
    # the selection ends past its line's 25 characters, which LSP reads as the line's end
    assert changes[0].range == T.Range(selection.start, T.Position(3, 25)) and changes[0].new_text.strip()
    # no instruction anywhere: a warning, no edit
    plain = "file:///project/plain.py"
    client.text_document_did_open(T.DidOpenTextDocumentParams(T.TextDocumentItem(plain, "python", 1, "x = 1\n")))
    count = len(edits)
    applied = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.rewriteWithInstruction", arguments=[plain, T.Range(T.Position(0, 0), T.Position(0, 5))]))
    assert applied is False and len(edits) == count
    assert any("no instruction" in m.message for m in client.messages)


@pytest_lsp.fixture(config=ClientServerConfig(server_command=SERVER))
async def utf8_client(lsp_client: LanguageClient, tiny_model_dir):
    capabilities = client_capabilities("neovim")
    capabilities.general = T.GeneralClientCapabilities(position_encodings=[T.PositionEncodingKind.Utf8])
    statuses = record_statuses(lsp_client)
    result = await lsp_client.initialize_session(T.InitializeParams(
        capabilities=capabilities, initialization_options={"model": str(tiny_model_dir), "candidates": 3}))
    assert result.capabilities.position_encoding == T.PositionEncodingKind.Utf8
    await until_model_ready(lsp_client, statuses)
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_utf8_positions_and_configuration_changes(utf8_client: LanguageClient):
    uri = "file:///project/unicode.py"
    source = 'def greet():\n    s = "héllo wörld"; x = \n'
    open_document(utf8_client, uri, source)
    line = source.split("\n")[1]
    cursor = T.Position(1, len(line.encode("utf-8")))  # utf-8 code units: é and ö count twice
    result = await inline(utf8_client, uri=uri, position=cursor)
    assert result.items and all(item.range.start == cursor for item in result.items)
    assert len(result.items) == 1, "while typing, a line hole is one canvas: one text, the fastest answer"
    result = await inline(utf8_client, uri=uri, position=cursor, invoked=True)
    assert len(result.items) > 1, "asked for explicitly, it comes with alternatives"
    # settings pushed later apply to the next request (notifications are handled in order, before it)
    utf8_client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings={"coda": {"candidates": 1}}))
    edited = source.replace("x = ", "y = ")
    utf8_client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(version=2, uri=uri), [T.TextDocumentContentChangeWholeDocument(edited)]))
    result = await inline(utf8_client, uri=uri, position=cursor, invoked=True)
    assert len(result.items) == 1, "candidates: 1 holds for a completion asked for, which had alternatives before"


@pytest.mark.asyncio
async def test_completion_on_the_empty_last_line(client: LanguageClient):
    await ready(client)
    uri = "file:///project/end.py"
    client.text_document_did_open(T.DidOpenTextDocumentParams(
        T.TextDocumentItem(uri, "python", 1, "def total(values):\n")))
    end = T.Position(1, 0)  # the line after the final newline
    result = await inline(client, uri=uri, position=end)
    assert result.items and all(item.range.start == end for item in result.items)


@pytest.mark.asyncio
async def test_text_that_is_not_valid_unicode_gets_empty_results(client: LanguageClient):
    await ready(client)
    uri = "file:///project/surrogate.py"
    open_document(client, uri, "s = '\ud800'\nx = \n")  # a lone surrogate: legal in JSON, not in UTF-8
    result = await inline(client, uri=uri, position=T.Position(1, 4))
    assert result is not None and not result.items
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), T.Range(T.Position(1, 0), T.Position(1, 4)), T.CodeActionContext([])))
    assert not actions
    assert (await inline(client)).items  # the server goes on


@pytest.mark.asyncio
async def test_cancel_request_answers_the_request_cancelled(client: LanguageClient):
    await ready(client)
    uri = "file:///project/cancel.py"
    # a block hole of up to 256 tokens: the random model fills one token per step, so the decode
    # is still running when the cancel arrives
    client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings={"maxNewTokens": 256}))
    open_document(client, uri, "def g(y):\n    \n")
    params = T.InlineCompletionParams(
        context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Automatic),
        text_document=T.TextDocumentIdentifier(uri=uri), position=T.Position(1, 4))
    # pygls writes the request before the cancel below; the server reads one message at a time and
    # starts a request's handler (its decode handed to the model thread) before it reads the next
    pending = asyncio.wrap_future(
        client.protocol.send_request(T.TEXT_DOCUMENT_INLINE_COMPLETION, params, msg_id="cancel-me"))
    client.protocol.notify(T.CANCEL_REQUEST, T.CancelParams(id="cancel-me"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, timeout=10)
    assert (await inline(client)).items  # the worker is free again


@pytest.mark.asyncio
async def test_fill_all_holes_in_one_edit(client: LanguageClient):
    await ready(client)
    edits = record_edits(client)
    uri = "file:///project/holes.py"
    source = ("import math\n\n\ndef area(radius):\n    # TODO: the area of a circle\n    pass\n\n\n"
              "def circumference(radius):\n    ...\n\n\nprint(area(2))\n")
    open_document(client, uri, source)
    everything = T.Range(T.Position(0, 0), T.Position(12, 0))
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), everything, T.CodeActionContext([])))
    assert "Fill all holes" in [a.title for a in actions]
    applied = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.fillHoles", arguments=[uri, everything]))
    assert applied is True and len(edits) == 1
    changes = edits[0].edit.document_changes[0].edits
    # the TODO comment stays; `    pass` and `    ...` are the holes, filled in one edit
    assert [c.range for c in changes] == [T.Range(T.Position(5, 0), T.Position(5, 8)),
                                          T.Range(T.Position(9, 0), T.Position(9, 7))]
    assert all(c.new_text.strip() for c in changes)
    # an empty selection: the holes of the function at the cursor only
    cursor = T.Range(T.Position(8, 6), T.Position(8, 6))
    applied = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.fillHoles", arguments=[uri, cursor]))
    assert applied is True
    assert [c.range for c in edits[1].edit.document_changes[0].edits] == [
        T.Range(T.Position(9, 0), T.Position(9, 7))]


# A selection a decode takes long enough over to edit the document meanwhile: 12 lines, ~150 tokens.
# The tiny random model commits one token a step, so regenerating them takes ~225 steps, seconds on
# any CPU (40 lines took ~750 steps: 13 s with native bf16, over a minute on a slower CPU).
LONG_LINES = 12
LONG_BODY = "".join(f"    total += values[{i}] * {i}\n" for i in range(LONG_LINES))
LONG_SOURCE = "def weighted(values):\n    total = 0\n" + LONG_BODY + "    return total\n"
LONG_SELECTION = T.Range(T.Position(2, 0), T.Position(2 + LONG_LINES, 0))


@pytest.mark.asyncio
async def test_cancelling_a_command_stops_its_decode(client: LanguageClient):
    await ready(client)
    edits = record_edits(client)
    uri = "file:///project/long.py"
    open_document(client, uri, LONG_SOURCE)
    pending = asyncio.ensure_future(client.protocol.send_request_async(
        T.WORKSPACE_EXECUTE_COMMAND, T.ExecuteCommandParams(command="coda.regenerateSelection",
                                                            arguments=[uri, LONG_SELECTION]), msg_id="stop-me"))
    assert await notified(client, T.PROGRESS, lambda: progress_reported(client)), "the decode never got under way"
    client.protocol.notify(T.CANCEL_REQUEST, T.CancelParams(id="stop-me"))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(pending, timeout=30)
    # The model thread runs one call at a time, in order: this completion's decode (asked for, so never
    # taken from the texts shown before) starts once the cancelled one has returned, and every report
    # that one made was queued on the message loop before this answer.
    await inline(client, invoked=True)
    reports = next(iter(client.progress_reports.values()))
    end = next(i for i, v in enumerate(reports) if isinstance(v, T.WorkDoneProgressEnd))
    assert len(reports) - end - 1 <= 1, "the decode went on reporting steps after the cancel"
    assert not edits


# -- edits made for text that changed while the model worked --------------------------------------

async def regenerate_while(client, uri: str, change) -> tuple[bool, list]:
    """Run "Regenerate selection" on a long span of `uri` (LONG_SOURCE, at version 1) and apply
    `change` (a content change, as version 2) once its decode is under way, as a user typing meanwhile."""
    edits = record_edits(client)
    open_document(client, uri, LONG_SOURCE)
    pending = asyncio.ensure_future(client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.regenerateSelection", arguments=[uri, LONG_SELECTION])))
    assert await notified(client, T.PROGRESS, lambda: progress_reported(client)), "the decode never got under way"
    assert not pending.done(), "the decode ended before the document could change under it"
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(version=2, uri=uri), [change]))
    return await asyncio.wait_for(pending, timeout=120), edits


@pytest.mark.asyncio
async def test_an_edit_follows_its_text_when_lines_are_inserted_above(client: LanguageClient):
    await ready(client)
    top = T.Range(T.Position(0, 0), T.Position(0, 0))
    applied, edits = await regenerate_while(client, "file:///project/moved.py",
                                            T.TextDocumentContentChangePartial(range=top, text="import os\n"))
    assert applied is True and len(edits) == 1
    document_edit = edits[0].edit.document_changes[0]
    assert document_edit.text_document.version == 2, "the edit is for the text it is applied to"
    (change,) = document_edit.edits
    assert change.range == T.Range(T.Position(3, 0), T.Position(3 + LONG_LINES, 0)), "one line down, with its text"


@pytest.mark.asyncio
async def test_an_edit_whose_text_changed_is_dropped_with_a_message(client: LanguageClient):
    await ready(client)
    inside = T.Range(T.Position(10, 4), T.Position(10, 9))  # `total` in a selected line
    applied, edits = await regenerate_while(client, "file:///project/changed.py",
                                            T.TextDocumentContentChangePartial(range=inside, text="grand"))
    assert applied is False and not edits
    assert any("was not applied" in m.message for m in client.messages)


@pytest.mark.asyncio
async def test_implement_is_offered_from_the_start_of_an_indented_def_line(client: LanguageClient):
    await ready(client)
    uri = "file:///project/method.py"
    open_document(client, uri, "class Shape:\n    def area(self):\n        pass\n")
    for selection in (T.Range(T.Position(1, 0), T.Position(1, 0)),   # the cursor at column 0
                      T.Range(T.Position(1, 0), T.Position(3, 0))):  # a linewise `V` selection
        actions = await client.text_document_code_action_async(T.CodeActionParams(
            T.TextDocumentIdentifier(uri), selection, T.CodeActionContext([])))
        assert "Implement function body" in [a.title for a in actions], selection


@pytest.mark.asyncio
async def test_settings_that_keep_the_model_do_not_load_it_again(tiny_model_dir):
    """Neovim's setup() sends the initializationOptions again as settings during the first load."""
    settings = {"model": str(tiny_model_dir), "maxNewTokens": 8}
    async with server_with_statuses(settings) as (client, statuses):
        client.workspace_did_change_configuration(T.DidChangeConfigurationParams(settings={"coda": settings}))
        client.workspace_did_change_configuration(T.DidChangeConfigurationParams(
            settings={"coda": {**settings, "candidates": 1}}))  # not a model setting either
        await until_loaded(client, statuses)
        # No message orders the loading thread against the client's: a second load would start right
        # after the first one's "ready" and say "loading"; so wait for that status itself, a while.
        assert not await notified(client, STATUS, lambda: len(statuses) > 2, timeout=1.0), statuses
        assert [status.state for status in statuses] == ["loading", "ready"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: nothing to refuse")
@pytest.mark.asyncio
async def test_the_device_setting_is_named_when_cuda_is_missing(tiny_model_dir):
    async with server_with_statuses({"model": str(tiny_model_dir), "device": "cuda"}) as (client, statuses):
        await until_loaded(client, statuses)
    assert [status.state for status in statuses] == ["loading", "error"]
    message = statuses[-1].message
    assert "the device setting is 'cuda'" in message and "use cpu or auto" in message, message
    # the editors' health check: one line, exit status 1
    check = subprocess.run([*SERVER[:-1], "--check", "--device", "cuda", "--model", str(tiny_model_dir)],
                           env=environment(), capture_output=True, text=True, timeout=300)
    assert check.returncode == 1 and "use cpu or auto" in check.stderr and "Traceback" not in check.stderr, \
        check.stderr


@pytest.mark.asyncio
async def test_completions_that_keep_coming_back_empty_are_reported(blank_model_dir):
    async with server_with_statuses({"model": str(blank_model_dir)}) as (client, statuses):
        open_document(client, URI, SOURCE)
        await until_loaded(client, statuses)
        assert statuses[-1].state == "ready"
        for _ in range(5):
            assert not (await inline(client)).items
        # the handler sends the status on the message loop before the answer it returns: it is in
        assert statuses[-1].state == "ready" and "last 5 completions were empty" in statuses[-1].message


# -- the default model: $CODA_MODEL, else the bundled coda-mini -----------------------------------

async def statuses_without_a_model(env: dict) -> list[tuple[str, str]]:
    """The coda/status notifications of a coda-lsp started with no --model, until its load ends.

    It is initialized as VS Code does with `coda.model` empty: a null model.
    """
    async with server_with_statuses({"model": None, "maxNewTokens": 8}, env, "visual-studio-code") as (client, statuses):
        await until_loaded(client, statuses)
    return [(status.state, status.model) for status in statuses]


@pytest.mark.asyncio
async def test_a_server_without_a_model_loads_coda_mini(coda_mini_dir):
    assert await statuses_without_a_model(environment()) == [("loading", "coda-mini"), ("ready", "coda-mini")]


@pytest.mark.asyncio
async def test_a_server_without_a_model_loads_coda_model(tiny_model_dir):
    tiny = str(tiny_model_dir)
    assert await statuses_without_a_model(environment(CODA_MODEL=tiny)) == [("loading", tiny), ("ready", tiny)]


def test_check_without_a_model_loads_the_default(tiny_model_dir):
    check = [sys.executable, "-m", "coda_lsp.server", "--check"]
    result = subprocess.run(check, env=environment(CODA_MODEL=str(tiny_model_dir)), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"model {tiny_model_dir} loaded" in result.stdout


@pytest.mark.asyncio
async def test_percent_encoded_uris_and_unusual_line_breaks(client: LanguageClient):
    """VS Code percent-encodes URIs (a space is %20); and a form feed, U+0085 or U+2028 inside a
    line is not a line break in LSP: positions after one must land where the client means."""
    await ready(client)
    edits = record_edits(client)
    uri = "file:///project/a%20b%C3%A9.py"
    source = ('RULE = "a\u2028b"  # \x0c \x85 \u2029 odd characters\n\n\n'
              'def area(radius):\n    """Area of a circle."""\n    pass\n')
    open_document(client, uri, source)
    # an incremental change below the odd characters, where a splitlines() count would put it elsewhere
    client.text_document_did_change(T.DidChangeTextDocumentParams(
        T.VersionedTextDocumentIdentifier(version=2, uri=uri),
        [T.TextDocumentContentChangePartial(T.Range(T.Position(3, 4), T.Position(3, 8)), "disc")]))
    on_signature = T.Position(3, 5)
    actions = await client.text_document_code_action_async(T.CodeActionParams(
        T.TextDocumentIdentifier(uri), T.Range(on_signature, on_signature), T.CodeActionContext([])))
    assert "Implement function body" in [a.title for a in actions]
    applied = await client.workspace_execute_command_async(T.ExecuteCommandParams(
        command="coda.implementFunction", arguments=[uri, on_signature]))
    assert applied is True
    change = edits[0].edit.document_changes[0]
    assert change.text_document.uri == uri  # answered under the client's own spelling of the URI
    assert change.edits[0].range == T.Range(T.Position(5, 0), T.Position(5, 8))  # exactly `    pass`
    result = await inline(client, uri=uri, position=T.Position(3, 9))  # after "def disc"
    assert result.items and result.items[0].range.start == T.Position(3, 9)
