"""CoDAConfig: the Qwen3 configuration with CoDA's diffusion fields.

CoDA is Qwen3 with bidirectional attention, so the architecture fields are
exactly Qwen3's. What CoDA adds is the mask token and an untied LM head.
Fields this code does not use (the release's training knobs such as
`mask_block_sizes`, `sampling_eps`, `auto_map`) are kept as attributes and
written back on save, so a config round-trips unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub.dataclasses import strict
from huggingface_hub.errors import StrictDataclassError
from transformers import AutoConfig, Qwen3Config

from .errors import ConfigError

# What a config.json must name for us to build the network. Everything else
# has a Qwen3 default.
REQUIRED_FIELDS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
)


@strict
class CoDAConfig(Qwen3Config):
    model_type = "CoDA"

    mask_token_id: int | None = None
    # CoDA stores lm_head separately from the embeddings (Qwen3 small models tie them).
    tie_word_embeddings: bool = False


AutoConfig.register("CoDA", CoDAConfig)


def read_config_dict(model_dir: Path) -> dict:
    """config.json as a dict, with a clear error for a missing or broken file."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{model_dir} has no config.json; a CoDA model directory needs one")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object, found {type(data).__name__}")
    return data


def config_from_dict(data: dict, source: str = "config.json") -> CoDAConfig:
    """Build a CoDAConfig from a CoDA or Qwen3 config dict.

    A Qwen3 autoregressive config (model_type "qwen3") becomes a CoDA config
    with the same architecture: that is how diffusion adaptation starts.
    """
    missing = [name for name in REQUIRED_FIELDS if name not in data]
    if missing:
        raise ConfigError(f"{source} is missing required field(s): {', '.join(missing)}")
    model_type = data.get("model_type", "CoDA")
    if model_type not in ("CoDA", "qwen3"):
        raise ConfigError(f"{source} has model_type {model_type!r}; expected 'CoDA' or 'qwen3'")
    fields = {k: v for k, v in data.items() if k != "model_type"}
    if model_type == "qwen3":
        fields.pop("architectures", None)
        # CoDA's head is untied; a tied Qwen3 checkpoint gets lm_head copied
        # from the embeddings at load (see loading.py).
        fields["tie_word_embeddings"] = False
    try:
        config = CoDAConfig(**fields)
        config.validate()
    except (TypeError, ValueError, StrictDataclassError) as exc:
        raise ConfigError(f"{source} is not a valid CoDA/Qwen3 config: {exc}") from None
    unsupported = []
    if config.rope_parameters.get("rope_type", "default") != "default":
        unsupported.append(f"rope_type {config.rope_parameters['rope_type']!r} (only plain RoPE)")
    if config.use_sliding_window or any(t != "full_attention" for t in config.layer_types):
        unsupported.append("sliding-window attention")
    if config.hidden_act != "silu":
        unsupported.append(f"hidden_act {config.hidden_act!r} (only silu)")
    if unsupported:
        raise ConfigError(f"{source} asks for what this runtime does not implement: {'; '.join(unsupported)}")
    if config.num_attention_heads % config.num_key_value_heads:
        raise ConfigError(f"{source}: num_attention_heads must be a multiple of num_key_value_heads")
    return config


def load_config(model_dir: str | Path) -> CoDAConfig:
    model_dir = Path(model_dir)
    return config_from_dict(read_config_dict(model_dir), source=str(model_dir / "config.json"))
