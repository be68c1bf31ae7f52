"""Shared fixtures: the real CoDA-v0 config and tokenizer, the bundled coda-mini (and a blank copy of it),
a tiny random model on disk. Models built in memory are tests/small_models.py's; what tests of several
packages share otherwise is tests/helpers.py's (conftest is no module to import from: pytest loads one
per folder under the same name)."""

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The user's cache ($CODA_CACHE: kernel timings, eval data) is never read or written by the tests: each
# test session, and every process it starts, has its own.
os.environ["CODA_CACHE"] = tempfile.mkdtemp(prefix="coda-test-cache-")
SHARED_CONFIG = Path(os.environ.get("CODA_SHARED", REPO.parent / "shared")) / "reference" / "coda-v0-config"


@pytest.fixture(scope="session")
def coda_v0_dir() -> Path:
    """The public CoDA-v0 config and Qwen3 tokenizer files (no weights)."""
    assert (SHARED_CONFIG / "config.json").is_file(), (
        f"the CoDA-v0 reference files are expected at {SHARED_CONFIG} (shared/ beside the repository; "
        f"set CODA_SHARED to its location)")
    return SHARED_CONFIG


@pytest.fixture(scope="session")
def coda_mini_dir() -> Path:
    """The bundled coda-mini model (coda_core/assets/coda-mini), which the package ships."""
    from coda_core.bundled import BUNDLED_MODELS

    folder = BUNDLED_MODELS["coda-mini"]
    assert (folder / "config.json").is_file() and any(folder.glob("*.safetensors")), (
        f"the bundled coda-mini model is expected at {folder} (build it with `make model`)")
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A `coda init-model --preset tiny` directory, made once per test session."""
    from coda_core.presets import init_model

    return init_model("tiny", tmp_path_factory.mktemp("models") / "tiny", seed=0)


@pytest.fixture(scope="session")
def bundled_tokenizer():
    from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer

    return load_tokenizer(BUNDLED_TOKENIZER)


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
