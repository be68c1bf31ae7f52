"""The Qwen3 tokenizer and the special ids CoDA decodes with.

CoDA releases ship `vocab.json` + `merges.txt` + added tokens but no
`tokenizer.json`; transformers builds the fast (Rust) tokenizer from those.
A copy of the Qwen3 tokenizer files is bundled (`BUNDLED_TOKENIZER`) so
`coda init-model` works offline with nothing to configure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from . import config as _config  # noqa: F401  (registers the CoDA model type for AutoTokenizer)
from .config import CoDAConfig
from .errors import ConfigError, ModelNotFoundError

BUNDLED_TOKENIZER = Path(__file__).parent / "assets" / "qwen3-tokenizer"
TOKENIZER_FILES = ("tokenizer.json", "vocab.json", "tokenizer_config.json")


def has_tokenizer(path: str | os.PathLike) -> bool:
    return any((Path(path) / name).is_file() for name in TOKENIZER_FILES)


def load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """A fast tokenizer from a model directory (tokenizer.json, or vocab + merges)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelNotFoundError(f"tokenizer directory {path} does not exist")
    if not has_tokenizer(path):
        raise ConfigError(f"{path} has no tokenizer files (expected tokenizer.json or vocab.json + merges.txt)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot build a tokenizer from {path}: {exc}") from None
    if not tokenizer.is_fast:
        raise ConfigError(f"{path} yields a slow tokenizer; coda needs a fast (tokenizers) one")
    return tokenizer


@dataclass(frozen=True)
class SpecialIds:
    mask: int
    pad: int
    eos: int


def find_special_ids(config: CoDAConfig | None, tokenizer: PreTrainedTokenizerBase | None) -> dict[str, int | None]:
    """Mask, pad and eos ids: the config's where it names them, else the tokenizer's (None if neither)."""

    def pick(from_config, from_tokenizer) -> int | None:
        if isinstance(from_config, list):  # eos_token_id may be a list in HF configs
            from_config = from_config[0] if from_config else None
        value = from_config if from_config is not None else from_tokenizer
        return None if value is None else int(value)

    return {name: pick(getattr(config, f"{name}_token_id", None), getattr(tokenizer, f"{name}_token_id", None))
            for name in ("mask", "pad", "eos")}


def special_ids(config: CoDAConfig | None, tokenizer: PreTrainedTokenizerBase | None) -> SpecialIds:
    """The ids decoding needs; a ConfigError names any that neither source defines."""
    ids = find_special_ids(config, tokenizer)
    for name, value in ids.items():
        if value is None:
            raise ConfigError(f"no {name} token id: set {name}_token_id in config.json or add the token to the tokenizer")
    return SpecialIds(**ids)
