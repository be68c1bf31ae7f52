"""The code actions named once and planned (coda_lsp.edits), with the context their decodes get
(coda_lsp.context.context_room), and an unavailable plan carried out (coda_lsp.client_edits).
Their decodes and edits end to end are test_server.py's and test_protocol.py's."""

import asyncio
import io

import pytest
from lsprotocol import types as T

from coda_lsp.context import context_room
from coda_lsp.edits import ACTIONS, FILL_HOLES, IMPLEMENT, INSTRUCT, REGENERATE, Edit, Edits, Unavailable
from coda_lsp.engine import Engine
from coda_lsp.settings import Settings
from helpers import read_frames

URI = "file:///w/shapes.py"
# Two placeholder bodies (f's `pass`, g's `...`) and a function with a body.
SOURCE = "def f(x):\n    pass\n\n\ndef g():\n    ...\n\n\ndef h():\n    return 1\n"
PASS = SOURCE.index("    pass")
RETURN = SOURCE.index("    return 1")

# What the editors (editors/vscode, editors/neovim and their tests) run and show: never to change.
EDITORS_ACTIONS = {"coda.regenerateSelection": "Regenerate selection",
                   "coda.rewriteWithInstruction": "Rewrite selection with instruction",
                   "coda.implementFunction": "Implement function body",
                   "coda.fillHoles": "Fill all holes"}


@pytest.fixture
def engine():
    engine = Engine(Settings())
    yield engine
    engine.shutdown()


def test_each_action_has_its_own_title_command_and_label_as_the_editors_know_them():
    assert {action.command: action.title for action in ACTIONS} == EDITORS_ACTIONS
    assert len(ACTIONS) == len(EDITORS_ACTIONS) == len({action.label for action in ACTIONS})


def test_the_server_runs_each_action_with_the_arguments_its_code_action_carries():
    """A code action's command, as the client sends it back in JSON, is one the server has and
    takes the arguments it carries (implement: the cursor, the others: the selection)."""
    from coda_lsp.arguments import command_arguments
    from coda_lsp.server import server

    assert set(server.commands) == {action.command for action in ACTIONS}
    selection = T.Range(T.Position(1, 4), T.Position(2, 0))
    for action in ACTIONS:
        sent = server.converter.unstructure(action.arguments(URI, selection))
        received = command_arguments(server.converter, action.command, server.commands[action.command], sent)
        assert received == [URI, selection.start if action is IMPLEMENT else selection], action.title


def test_the_actions_offered_are_the_tables_and_only_where_they_apply(tiny_model_dir):
    engine = Engine(Settings(model=str(tiny_model_dir)))
    try:
        edits = Edits(engine)
        assert edits.available(SOURCE, PASS, PASS, "python") == []  # no model yet: nothing to run them
        assert engine.models.load() is None
        assert edits.available(SOURCE, PASS, PASS, "python") == [REGENERATE, INSTRUCT, IMPLEMENT, FILL_HOLES]
        assert edits.available(SOURCE, RETURN, len(SOURCE), "python") == [REGENERATE, INSTRUCT]
    finally:
        engine.shutdown()


def test_each_plan_is_an_edit_named_by_its_action(engine):
    edits = Edits(engine)
    plans = [edits.regenerate(URI, SOURCE, PASS, RETURN),
             edits.instruct(URI, SOURCE, PASS, RETURN, "use a loop"),
             edits.implement(URI, SOURCE, PASS, "python"),
             edits.fill_holes(URI, SOURCE, 0, len(SOURCE), "python")]
    assert all(isinstance(plan, Edit) for plan in plans)
    assert [plan.action for plan in plans] == list(ACTIONS)
    # what the progress and the messages call them ("CoDA: fill 2 holes was not applied: ...")
    assert [plan.label for plan in plans] == ["regenerate", "rewrite", "implement function", "fill 2 holes"]


def test_a_plan_that_cannot_be_made_says_why_and_whether_the_editors_tell_it(engine):
    edits = Edits(engine)
    no_instruction = edits.instruct(URI, SOURCE, RETURN, len(SOURCE), None)
    assert isinstance(no_instruction, Unavailable) and not no_instruction.quiet
    assert "no instruction" in no_instruction.reason
    # The editors tell these themselves (VS Code's Implement Function when the command answers False,
    # Neovim's :CodaImplement and :CodaFill when the action is not offered): the server says nothing more.
    for plan in (edits.implement(URI, SOURCE, RETURN, "python"),
                 edits.fill_holes(URI, SOURCE, RETURN, len(SOURCE), "python")):
        assert isinstance(plan, Unavailable) and plan.quiet and plan.reason


def test_an_unavailable_plan_is_answered_false_and_told_unless_quiet():
    from coda_lsp.client_edits import carry_out
    from coda_lsp.server import CodaServer

    server = CodaServer()
    written = io.BytesIO()
    server.rpc.set_writer(written)
    try:
        told = asyncio.run(carry_out(server, URI, Unavailable("no instruction given"), SOURCE, 0))
        quiet = asyncio.run(carry_out(server, URI, Unavailable("no placeholders", quiet=True), SOURCE, 0))
    finally:
        server.engine.shutdown()
    assert told is False and quiet is False
    messages = [m["params"]["message"] for m in read_frames(written.getvalue()) if m["method"] == "window/showMessage"]
    assert messages == ["CoDA: no instruction given"]


def test_the_context_beside_a_canvas_is_what_the_model_has_left_and_never_negative():
    assert context_room(2048, 64) == 1984
    assert context_room(64, 64) == 0 and context_room(64, 100) == 0  # a canvas as large as the model
