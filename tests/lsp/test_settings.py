"""The server's settings (coda_lsp.settings): editor spellings, null resets, the default model."""

from coda_lsp.settings import Settings


def test_settings_accept_editor_spellings_and_null_resets():
    s = Settings(model="models/tiny")
    s.update({"maxNewTokens": 16, "context-before": 100, "languages": ["python"], "unknownKey": 1})
    assert (s.max_new_tokens, s.context_before, s.languages) == (16, 100, ["python"])
    s.update({"languages": None, "maxNewTokens": None, "model": None})
    assert s.languages is None and s.max_new_tokens == 64  # defaults again
    assert s.model == "models/tiny"  # null keeps the model the server was started with


def test_a_cleared_setting_goes_back_to_the_servers_own_value_not_the_editors_last(monkeypatch):
    """A user who tries another model, then clears coda.model, gets the server's model back
    (its --model, else $CODA_MODEL, else coda-mini), not the one tried last."""
    monkeypatch.delenv("CODA_MODEL", raising=False)
    s = Settings()
    s.start_with({"model": "models/tiny", "device": "cpu", "dtype": None, "quantize": None})
    s.update({"model": "models/other", "device": "cuda", "dtype": "float32"})
    s.update({"model": "", "device": None, "dtype": None})  # the settings UI's empty box is "" for a path
    assert (s.model, s.device, s.dtype) == ("models/tiny", "cpu", "auto")
    plain = Settings()
    plain.start_with({"model": None})
    plain.update({"model": "models/other"})
    plain.update({"model": None})
    assert plain.model == "coda-mini"


def test_settings_default_model_is_coda_model_else_coda_mini(monkeypatch):
    monkeypatch.delenv("CODA_MODEL", raising=False)
    assert Settings().model == "coda-mini"  # an editor that names no model gets the bundled one
    monkeypatch.setenv("CODA_MODEL", "models/tiny")
    s = Settings()
    assert s.model == "models/tiny"
    s.update({"model": ""})
    s.update({"model": None})
    assert s.model == "models/tiny"  # empty and null keep it
    s.update({"model": "models/other"})
    assert s.model == "models/other"

