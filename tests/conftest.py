"""Shared fixtures: the real CoDA-v0 config/tokenizer, a tiny random model, small configs."""

import os
import tempfile
from pathlib import Path

import pytest
import torch

from coda_core.config import CoDAConfig

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


def small_config(**overrides) -> CoDAConfig:
    """A CoDA config small enough for exact fp32 comparisons (GQA 4:2, 2 layers)."""
    fields = dict(vocab_size=300, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, rope_theta=10000.0,
                  max_position_embeddings=512, mask_token_id=299, pad_token_id=0, eos_token_id=1)
    fields.update(overrides)
    return CoDAConfig(**fields)


def small_model(seed: int = 0, **overrides):
    from coda_core.model import CoDALanguageModel

    torch.manual_seed(seed)
    return CoDALanguageModel(small_config(**overrides)).eval()


@pytest.fixture(scope="session")
def bundled_tokenizer():
    from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer

    return load_tokenizer(BUNDLED_TOKENIZER)


def tiny_model(seed: int = 0):
    """A random model of the `tiny` preset (real vocabulary), in memory."""
    from coda_core.model import CoDALanguageModel
    from coda_core.presets import preset_config

    torch.manual_seed(seed)
    return CoDALanguageModel(preset_config("tiny")).eval()
