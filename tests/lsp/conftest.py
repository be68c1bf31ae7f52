"""Fixtures of the language server's tests."""

import pytest


@pytest.fixture(scope="session")
def blank_model_dir(coda_mini_dir, tmp_path_factory):
    """coda-mini with its LM head zeroed: every logit ties, so every token it writes is id 0, its pad,
    and every completion ends before it starts: a model that suggests nothing."""
    import shutil

    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("models") / "blank"
    shutil.copytree(coda_mini_dir, out)
    weights = load_file(out / "model.safetensors")
    weights["lm_head.weight"].zero_()
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return out
