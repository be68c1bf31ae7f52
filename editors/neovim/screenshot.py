"""The README's picture of coda.nvim: a rewrite in a real Neovim, in a real terminal.

    .venv/bin/python editors/neovim/screenshot.py docs/images/neovim-rewrite.png

(`make screenshots` runs it.) Neovim runs in tmux, the way a user runs it in a
terminal; keys go in with `tmux send-keys`. pynvim, on Neovim's --listen
socket, only waits: for the model to be ready and for the rewrite's answer
(the status line's state, and the LspRequest autocommand, as in
tests/editors/test_neovim.py). The screen
comes out of `tmux capture-pane -e` with its colours as ANSI escapes, goes
into HTML, and Debian's Chromium (which the VS Code suite installs) renders
it: the screen before the rewrite runs, and after.
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pynvim

PLUGIN = Path(__file__).resolve().parent
NVIM = Path(sys.executable).with_name("nvim")
COLUMNS, ROWS = 78, 16
SOURCE = '''import math


def circle_area(radius):
    """The area of a circle of the given radius."""
    return 3.14 * radius * radius


print(circle_area(2))
'''
WAIT_S = 180  # deadlines, not pauses
RECORDER = """
_G.coda_shot = { answered = 0 }
vim.api.nvim_create_autocmd("LspRequest", { callback = function(ev)
  local request = ev.data.request
  if request.type == "complete" and request.method == "workspace/executeCommand" then
    _G.coda_shot.answered = _G.coda_shot.answered + 1
  end
end })
"""


def wait_until(condition, what: str) -> None:
    """Poll `condition` (a look at the screen or a quick API call): Neovim must stay free to read
    the keys tmux types, which a vim.wait inside an API call would hold up."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"screenshot.py: timed out waiting for {what}")
        time.sleep(0.05)


def attach(socket: Path):
    """pynvim on Neovim's socket, once Neovim has opened it (it starts in tmux, beside us)."""
    deadline = time.monotonic() + 60
    while not socket.exists():
        if time.monotonic() > deadline:
            raise SystemExit("screenshot.py: Neovim did not start in tmux")
        time.sleep(0.05)
    return pynvim.attach("socket", path=str(socket))


def capture(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-e", "-t", session], check=True, capture_output=True,
                          text=True).stdout


def main(out: Path) -> None:
    for tool in ("tmux", "chromium"):
        if shutil.which(tool) is None:
            raise SystemExit(f"screenshot.py: needs {tool} (Debian package {tool})")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "circle.py").write_text(SOURCE)
        socket = work / "nvim.sock"
        session = f"coda-shot-{work.name}"
        subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", str(COLUMNS), "-y", str(ROWS), "-c", tmp,
                        f"{NVIM} --clean -n --listen {socket} circle.py"], check=True,
                       env={"PATH": "/usr/bin:/bin", "HOME": tmp, "TERM": "xterm-256color"})
        try:
            editor = attach(socket)
            editor.command("set termguicolors number laststatus=2 noshowmode")
            editor.command("syntax on")
            editor.command(f"set rtp^={PLUGIN}")
            editor.command("runtime plugin/coda.lua")
            editor.exec_lua(RECORDER)
            editor.exec_lua("require('coda').setup(...)", {"cmd": [sys.executable, "-m", "coda_lsp.server", "--stdio"]})
            editor.command("edit")  # attach the client to the file already open
            editor.command("set statusline=%f%=%{v:lua.require'coda.status'.statusline(0)}")
            wait_until(lambda: "ready" in editor.exec_lua("return require('coda.status').statusline(0)"),
                       "the model to load")
            # As typed: the function's return line selected, then the command.
            subprocess.run(["tmux", "send-keys", "-t", session, "6GV", ":CodaRewrite"], check=True)
            wait_until(lambda: ":'<,'>CodaRewrite" in capture(session), "the command line")
            before = capture(session)
            subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
            wait_until(lambda: editor.exec_lua("return _G.coda_shot.answered") > 0, "the rewrite's answer")
            editor.command("redraw")
            after = capture(session)
            normal = editor.api.get_hl(0, {"name": "Normal"})
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], check=False)
        page = work / "screen.html"
        page.write_text(screens_html([("before: :CodaRewrite regenerates the selection from the code around it", before), ("after", after)],
                                     f"#{normal.get('fg', 0xe0e2ea):06x}", f"#{normal.get('bg', 0x14161b):06x}"))
        out.parent.mkdir(parents=True, exist_ok=True)
        width, height = int(COLUMNS * CELL_W + 2 * PAD), int(2 * (ROWS * CELL_H + TITLE_H) + 3 * PAD)
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--disable-background-networking", "--disable-component-update", "--no-first-run",
                        f"--user-data-dir={work / 'chromium'}", f"--window-size={width},{height}",
                        f"--screenshot={out.resolve()}", page.as_uri()], check=True, capture_output=True)
    print(f"wrote {out}")


# -- ANSI (as tmux captures it) to HTML ----------------------------------------------

CELL_W, CELL_H, TITLE_H, PAD = 8.43, 18, 22, 12  # 14 px DejaVu Sans Mono
BASIC = ["#000000", "#cd0000", "#00cd00", "#cdcd00", "#0000ee", "#cd00cd", "#00cdcd", "#e5e5e5",
         "#7f7f7f", "#ff0000", "#00ff00", "#ffff00", "#5c5cff", "#ff00ff", "#00ffff", "#ffffff"]


def xterm_256(n: int) -> str:
    if n < 16:
        return BASIC[n]
    if n < 232:
        r, g, b = ((n - 16) // 36, (n - 16) // 6 % 6, (n - 16) % 6)
        return "#" + "".join(f"{0 if c == 0 else 55 + 40 * c:02x}" for c in (r, g, b))
    return f"#{8 + 10 * (n - 232):02x}" * 1 + f"{8 + 10 * (n - 232):02x}" * 2


def ansi_to_html(text: str) -> str:
    """The SGR escapes tmux writes (colours: 16, 256 and 24-bit; bold, italic, underline, reverse)."""
    out, style = [], {}
    parts = text.split("\x1b[")
    out.append(html.escape(parts[0]))
    for part in parts[1:]:
        params, _, rest = part.partition("m")
        codes = [int(c) if c else 0 for c in params.split(";")]
        i = 0
        while i < len(codes):
            c = codes[i]
            if c == 0:
                style = {}
            elif c in (1, 3, 4, 7):
                style[c] = True
            elif c in (22, 23, 24, 27):
                style.pop({22: 1, 23: 3, 24: 4, 27: 7}[c], None)
            elif 30 <= c <= 37 or 90 <= c <= 97:
                style["fg"] = BASIC[c - 30 if c < 90 else c - 82]
            elif 40 <= c <= 47 or 100 <= c <= 107:
                style["bg"] = BASIC[c - 40 if c < 100 else c - 92]
            elif c in (38, 48) and i + 1 < len(codes):
                key = "fg" if c == 38 else "bg"
                if codes[i + 1] == 5:
                    style[key], i = xterm_256(codes[i + 2]), i + 2
                elif codes[i + 1] == 2:
                    style[key], i = "#%02x%02x%02x" % tuple(codes[i + 2:i + 5]), i + 4
            elif c in (39, 49):
                style.pop("fg" if c == 39 else "bg", None)
            i += 1
        fg, bg = style.get("fg"), style.get("bg")
        if style.get(7):
            fg, bg = bg or "var(--bg)", fg or "var(--fg)"
        css = ";".join(filter(None, [fg and f"color:{fg}", bg and f"background:{bg}",
                                     style.get(1) and "font-weight:bold", style.get(3) and "font-style:italic",
                                     style.get(4) and "text-decoration:underline"]))
        out.append(f'</span><span style="{css}">' + html.escape(rest))
    return "<span>" + "".join(out) + "</span>"


def screens_html(screens: list[tuple[str, str]], fg: str, bg: str) -> str:
    blocks = "".join(f'<div class="title">{html.escape(title)}</div><pre>{ansi_to_html(screen.rstrip(chr(10)))}</pre>'
                     for title, screen in screens)
    return f"""<!doctype html><meta charset="utf-8"><style>
:root {{ --fg: {fg}; --bg: {bg}; }}
body {{ margin: 0; padding: {PAD}px; background: #2b2d33; font: 13px sans-serif; color: #c8ccd4; }}
.title {{ height: {TITLE_H}px; }}
pre {{ margin: 0 0 {PAD}px; font: 14px/{CELL_H}px 'DejaVu Sans Mono', monospace; color: var(--fg);
      background: var(--bg); width: {COLUMNS}ch; height: {ROWS * CELL_H}px; overflow: hidden; }}
</style>{blocks}"""


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/neovim-rewrite.png"))
