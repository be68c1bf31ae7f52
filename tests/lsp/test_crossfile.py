"""Context from the rest of the project: the sources (coda_lsp.project), the ranking and budget
(coda_lsp.related, coda_lsp.context.model_input), and that the snippets reach the model through
the engine, the server and `coda infill --related`."""

import asyncio
import json
import logging
import os
import subprocess
import sys

import pytest

from coda_lsp.context import model_input
from coda_lsp.imports import MAX_FILE_BYTES, imported_paths
from coda_lsp.project import Project, RelatedFile
from coda_lsp.related import DEFINITION, EDIT, IMPORTED, SIMILAR, Snippet, pack, rank, render

GEOMETRY = '''"""Shapes and their areas."""


class Rectangle:
    def __init__(self, width, height):
        self.width = width
        self.height = height

    def area(self):
        return self.width * self.height


def scale_rectangle(rect, factor):
    return Rectangle(rect.width * factor, rect.height * factor)
'''
UNRELATED = "def parse_config(path):\n    with open(path) as handle:\n        return handle.read().split()\n"
MAIN = '''from .geometry import Rectangle, scale_rectangle


def report(width, height):
    rect = Rectangle(width, height)
    bigger = scale_rectangle(rect, 2)
    return bigger.area()
'''


@pytest.fixture
def workspace(tmp_path):
    """A project folder: pkg/geometry.py defines what pkg/main.py uses; pkg/config.py is unrelated."""
    pkg = tmp_path / "project" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "geometry.py").write_text(GEOMETRY)
    (pkg / "config.py").write_text(UNRELATED)
    (pkg / "main.py").write_text(MAIN)
    return tmp_path / "project"


def files(**texts) -> list[RelatedFile]:
    return [RelatedFile(f"{name}.py", text, "open") for name, text in texts.items()]


# -- ranking ----------------------------------------------------------------------------------

def test_a_definition_named_at_the_cursor_ranks_first_and_unrelated_code_not_at_all():
    before = MAIN[:MAIN.index("bigger.area()")]
    snippets = rank(files(config=UNRELATED, geometry=GEOMETRY), before, MAIN[len(before):])
    assert [s.reason for s in snippets[:2]] == [DEFINITION, DEFINITION]
    assert {(s.first_line, s.last_line) for s in snippets[:2]} == {(4, 10), (13, 14)}  # the class, the function
    assert all(s.path == "geometry.py" for s in snippets)  # config.py shares no names with the cursor's code


def test_a_definition_the_file_imports_ranks_above_similar_code_when_not_named_nearby():
    before = "from .geometry import (\n    Rectangle,\n)\n" + "\n" * 40 + "def parse(path):\n    "
    snippets = rank(files(config=UNRELATED, geometry=GEOMETRY), before, "\n")
    assert [(s.reason, s.path, s.first_line) for s in snippets[:1]] == [(IMPORTED, "geometry.py", 4)]
    assert not any(s.reason == IMPORTED and s.first_line == 13 for s in snippets)  # not imported


def test_similar_windows_rank_by_shared_identifiers():
    near = "def total_price(items, discount):\n    return sum(item.price for item in items) * discount\n"
    far = "def total_weight(boxes):\n    return sum(box.weight for box in boxes)\n"
    before = "def checkout(cart, discount):\n    items = cart.items\n    price = "
    snippets = rank(files(far=far, near=near), before, "\n")
    assert [s.path for s in snippets if s.reason == SIMILAR][:1] == ["near.py"]


def test_typing_on_the_cursor_line_keeps_the_snippets():
    """The query is the lines around the cursor's, so the snippets (and the prefix cache) stay."""
    related = files(config=UNRELATED, geometry=GEOMETRY)
    head = MAIN[:MAIN.index("    bigger")]
    seen = {tuple(rank(related, head + "    bigger = sc"[:n], "\n    return bigger.area()\n"))
            for n in range(5, 16)}
    assert len(seen) == 1


def test_a_recent_edit_ranks_above_similar_code():
    edited = RelatedFile("notes.py", "a = 1\nb = 2\nvalue = compute(a, b)\n", "edit", (0, 3))
    snippets = rank([edited, *files(geometry=GEOMETRY)], "rect = Rectangle(1, 2)\nwidth = rect.width\n", "")
    assert snippets[0].reason == DEFINITION and snippets[1].reason == EDIT
    shrunk = RelatedFile("notes.py", "a = 1\n", "edit", (95, 108))  # edited at line 100, then cut to one line
    assert rank([shrunk], "a = 2\n", "") == []


def test_the_budget_holds_and_definitions_sit_nearest_the_code_in_a_stable_order(bundled_tokenizer):
    before = MAIN[:MAIN.index("bigger.area()")]
    related = files(config=UNRELATED, geometry=GEOMETRY) + [RelatedFile("notes.py", "n = 1\nm = 2\nk = 3\n", "edit",
                                                                        (0, 3))]
    given = model_input(bundled_tokenizer, before, MAIN[len(before):], "python", 1536, 512, 4096, related, 512)
    # by reason (edits, then definitions nearest the code), then by file and line: not by score, which
    # shifts as the cursor moves while the set stays (and the same set keeps the prefix cache's K/V)
    assert [(s.reason, s.first_line) for s in given.snippets] == [(EDIT, 1), (DEFINITION, 4), (DEFINITION, 13)]
    assert [s.first_line for s in rank(related, before, MAIN[len(before):])] != [1, 4, 13]
    head = bundled_tokenizer.decode(given.prefix[:len(given.prefix) - given.document_prefix])
    assert head.startswith("# notes.py\n") and "class Rectangle" in head and "def scale_rectangle" in head
    assert sum(s.tokens for s in given.snippets) == len(given.prefix) - given.document_prefix

    small = model_input(bundled_tokenizer, before, MAIN[len(before):], "python", 1536, 512, 4096, related, 40)
    assert 0 < len(small.prefix) - small.document_prefix <= 40 and len(small.snippets) == 1
    # a model with a short context gives snippets at most a quarter of it, and the document the rest
    short = model_input(bundled_tokenizer, before, MAIN[len(before):], "python", 1536, 512, 120, related, 512)
    assert len(short.prefix) - short.document_prefix <= 30 and len(short.prefix) + len(short.suffix) <= 120
    # the snippets come out of the prefix's budget: the model's input is no longer than without them
    long_before = "x = 1\n" * 2000 + before
    tight = model_input(bundled_tokenizer, long_before, "\n", "python", 300, 512, 4096, related, 512)
    alone = model_input(bundled_tokenizer, long_before, "\n", "python", 300, 512, 4096, related, 0)
    assert len(tight.prefix) <= 300 and tight.document_prefix >= 150 and len(tight.snippets) >= 1
    assert tight.document_prefix < alone.document_prefix <= 300
    off = model_input(bundled_tokenizer, before, MAIN[len(before):], "python", 1536, 512, 4096, related, 0)
    assert off.snippets == () and len(off.prefix) == off.document_prefix


def test_snippets_are_laid_out_by_reason_file_and_line_not_by_score(bundled_tokenizer):
    encode = lambda text: bundled_tokenizer.encode(text, add_special_tokens=False)
    ranked = [Snippet("b.py", 4, 5, "def b():\n    pass", DEFINITION, 2.9),
              Snippet("a.py", 13, 14, "def a():\n    pass", DEFINITION, 2.5),
              Snippet("c.py", 1, 2, "x = 1\ny = 2", SIMILAR, 0.4),
              Snippet("e.py", 7, 8, "z = 1\nw = 2", EDIT, 1.2)]
    ids, laid_out = pack(encode, ranked, 512, "python")
    assert [s.path for s in laid_out] == ["c.py", "e.py", "a.py", "b.py"]
    assert ids == [i for s in laid_out for i in encode(render(s, "python"))]
    _, first_two = pack(encode, ranked, sum(len(encode(render(s, "python"))) for s in ranked[:2]), "python")
    assert [s.path for s in first_two] == ["a.py", "b.py"]  # taken best first: the budget holds the two best


# -- sources and their safety ------------------------------------------------------------------

def test_imports_resolve_inside_the_workspace(workspace):
    main = workspace / "pkg" / "main.py"
    found = list(imported_paths(main, "python", "import os\nfrom pkg import config\nfrom .geometry import Rectangle\n"
                                "# from pkg import nothing\n", [workspace]))
    assert workspace / "pkg" / "config.py" in found and workspace / "pkg" / "geometry.py" in found
    assert not any("nothing" in str(p) for p in found)  # a comment is not an import
    js = list(imported_paths(workspace / "web" / "app.ts", "typescript",
                             "import { a } from './util';\nimport React from 'react';\n", [workspace]))
    assert workspace / "web" / "util.ts" in js and not any("react" in str(p) for p in js)


def test_imports_after_many_others_and_inside_try_are_read(workspace):
    """Each import has several places its module may be: the ones that do not exist must not use up
    the files read (a file importing the standard library first got none of its own package's)."""
    stdlib = "".join(f"import {name}\n" for name in ("os", "re", "sys", "json", "math", "copy", "time", "random",
                                                     "string", "typing", "pathlib", "logging", "functools"))
    source = stdlib + "from pkg.config import parse_config\ntry:\n    from .geometry import Rectangle\n" \
                      "except ImportError:\n    Rectangle = None\n\n\ndef f():\n    from pkg import hidden\n"
    (workspace / "pkg" / "hidden.py").write_text("SECRET = 1\n")
    project = Project()
    project.set_roots([str(workspace)])
    got = project.files((workspace / "pkg" / "main.py").as_uri(), "python", source)
    assert [f.path for f in got] == ["pkg/config.py", "pkg/geometry.py"]  # not imports inside a function


def test_files_are_read_only_inside_the_folders_and_under_the_cap(workspace, tmp_path, caplog):
    outside = tmp_path / "secret.py"
    outside.write_text("TOKEN = 'do not send'\n")
    (workspace / "pkg" / "leak.py").symlink_to(outside)
    (workspace / "pkg" / "huge.py").write_text("x = 1\n" * (MAX_FILE_BYTES // 6 + 1))
    project = Project()
    project.set_roots([workspace.as_uri()])
    assert project.read(workspace / "pkg" / "geometry.py") == GEOMETRY
    caplog.set_level(logging.DEBUG, logger="coda_lsp.project")
    for _ in range(3):  # every keystroke asks again: each is logged once
        assert project.read(workspace / "pkg" / "leak.py") is None
        assert project.read(outside) is None
        assert project.read(workspace / "pkg" / "huge.py") is None
        assert project.read(workspace / "pkg" / "gone.py") is None
    assert len(caplog.records) == 4
    source = "from . import leak, huge, gone, geometry\n"
    got = project.files((workspace / "pkg" / "main.py").as_uri(), "python", source)
    assert [(f.path, f.source) for f in got] == [("pkg/geometry.py", "import")]


def test_imports_never_touch_paths_outside_the_folders_nor_block(workspace, tmp_path, caplog):
    (tmp_path / "outside.ts").write_text("export const secret = 1;\n")
    os.mkfifo(workspace / "pkg" / "pipe.py")  # opening it to read would wait for a writer
    project = Project()
    project.set_roots([str(workspace)])
    caplog.set_level(logging.DEBUG, logger="coda_lsp.project")
    web = (workspace / "web" / "app.ts").as_uri()
    assert project.files(web, "typescript", "import { secret } from '../../outside';\n") == []
    assert project.files((workspace / "pkg" / "main.py").as_uri(), "python",
                         "import /etc/hosts\nimport //server/share/x\nfrom . import pipe\n") == []
    assert project.read(workspace / "pkg" / "pipe.py") is None
    assert not any("outside" in r.getMessage() or "hosts" in r.getMessage() for r in caplog.records)


def test_workspace_folders_follow_the_client(workspace, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    project = Project()
    project.set_roots([workspace.as_uri(), str(tmp_path / "missing")])  # a folder that is not there is no root
    assert project.roots == [workspace.resolve()]
    project.change_roots(added=[other.as_uri()], removed=[workspace.as_uri()])  # didChangeWorkspaceFolders
    assert project.roots == [other.resolve()]
    assert project.read(workspace / "pkg" / "geometry.py") is None


def test_each_source_has_its_switch(workspace):
    main_uri = (workspace / "pkg" / "main.py").as_uri()
    config_uri = (workspace / "pkg" / "config.py").as_uri()
    minified = ("file:///w/bundle.min.js", "javascript", "x" * (MAX_FILE_BYTES + 1))  # too large to offer
    broken = ("file:///w/broken.py", "python", "x = '\ud800'\n")  # JSON allows a lone surrogate; tokenizers do not
    project = Project(open_documents=lambda: [(main_uri, "python", MAIN), (config_uri, "python", UNRELATED),
                                              minified, broken])
    project.set_roots([str(workspace)])
    project.edited(config_uri, 1)
    sources = lambda **on: [f.source for f in project.files(main_uri, "python", MAIN, **on)]
    assert sources() == ["edit", "open", "import"]  # geometry.py is imported; main.py itself is never offered
    assert sources(recent_edits=False) == ["open", "import"]
    assert sources(open_files=False) == ["edit", "import"]
    assert sources(imports=False, open_files=False) == ["edit"]
    # a document larger than a window is never parsed whole, so its imports are not read either
    large = "from .geometry import Rectangle\n" + "x = 1\n" * (MAX_FILE_BYTES // 6)
    assert [f.source for f in project.files(main_uri, "python", large)] == ["edit", "open"]


# -- through the engine, the server and the CLI -------------------------------------------------

def test_the_engine_gives_the_model_snippets_and_reuses_their_keys_and_values(workspace, tiny_model_dir):
    from coda_lsp.engine import Engine
    from coda_lsp.settings import Settings

    engine = Engine(Settings(model=str(tiny_model_dir), max_new_tokens=8, candidates=1))
    assert engine.models.load() is None
    engine.project.set_roots([str(workspace)])
    uri = (workspace / "pkg" / "main.py").as_uri()
    cursor = MAIN.index("bigger.area()")

    async def typing():
        reused = []
        for n in range(4):  # one keystroke after another on the cursor's line
            text = MAIN[:cursor] + "bigger"[:n] + MAIN[cursor:]
            engine.shown.clear()
            await engine.complete(uri, text, cursor + n, "python")
            reused.append(engine.timings[-1]["reused_prefix"])
            assert [s.path for s in engine.last_context.snippets] == ["pkg/geometry.py"] * 2
        return reused

    reused = asyncio.run(typing())
    assert reused[0] == 0 and all(r > 0 for r in reused[1:]), reused
    engine.settings.update({"contextFiles": 0})
    asyncio.run(engine.complete(uri, MAIN, cursor, "python"))
    assert engine.last_context.snippets == ()
    engine.shutdown()


def test_the_server_gives_the_model_the_open_and_imported_files(workspace, tiny_model_dir, tmp_path):
    """Over stdio with the workspace folder named: the debug log says what the model was given."""
    from lsprotocol import types as T

    from coda_cli.lsp_client import LanguageClient, open_python, running_server

    log = tmp_path / "server.log"
    notes = "def shout(message):\n    return message.upper() + '!'\n"

    async def session():
        client = LanguageClient()
        client_args = {"model": str(tiny_model_dir), "maxNewTokens": 8, "candidates": 1}
        async with running_server(client, client_args, workspace_folders=[workspace.as_uri()],
                                  server_args=["--log-file", str(log), "--log-level", "debug"]):
            open_python(client, (workspace / "notes.py").as_uri(), notes)
            source = MAIN + "    print(shout(\n"
            uri = (workspace / "pkg" / "main.py").as_uri()
            open_python(client, uri, source)
            await client.request(T.TEXT_DOCUMENT_INLINE_COMPLETION, T.InlineCompletionParams(
                context=T.InlineCompletionContext(trigger_kind=T.InlineCompletionTriggerKind.Invoked),
                text_document=T.TextDocumentIdentifier(uri), position=T.Position(7, 16)))

    asyncio.run(session())
    text = log.read_text()
    assert "related  notes.py:1-2" in text and "(definition)" in text  # the open file defines shout
    assert "related  pkg/geometry.py:" in text  # the imported one


def test_coda_infill_shows_the_context_it_gives(workspace, tiny_model_dir):
    def coda(*args):
        return subprocess.run([sys.executable, "-m", "coda_cli", "infill", "pkg/main.py:7:12", "--model",
                               str(tiny_model_dir), "--max-new-tokens", "4", *args], cwd=workspace,
                              capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})

    shown = coda("--related", "pkg/config.py", "--show-context")
    assert shown.returncode == 0, shown.stderr
    assert "related  pkg/geometry.py:13-14" in shown.stdout and "prefix   " in shown.stdout
    as_json = json.loads(coda("--show-context", "--json").stdout)
    assert {s["path"] for s in as_json["context"]["snippets"]} == {"pkg/geometry.py"}
    assert as_json["context"]["related_tokens"] == sum(s["tokens"] for s in as_json["context"]["snippets"]) > 0
    off = json.loads(coda("--show-context", "--json", "--context-files", "0").stdout)
    assert off["context"]["snippets"] == [] and off["context"]["related_tokens"] == 0
    missing = coda("--related", "pkg/gone.py")
    assert missing.returncode == 2 and "pkg/gone.py: no such file" in missing.stderr
