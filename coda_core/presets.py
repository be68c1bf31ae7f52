"""Model shapes by name, and `init_model`, which writes a randomly initialised model.

`coda-v0` is the released CoDA-v0 architecture; `tiny` and `small` keep its
tokenizer (and so its vocabulary and special ids) with a much smaller body,
for tests, demos and quick training runs on a CPU.

The `mini-*` shapes are coda-mini's family: a body sized for CPU training,
and the vocabulary and special ids of the tokenizer they are trained with
(`coda train tokenizer`), since Qwen3's 151,936 rows would be most of the
model and most of its cost.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .atomic import require_empty
from .config import CoDAConfig
from .errors import CodaError
from .loading import save_model_dir
from .model import CoDALanguageModel
from .tokenizer import BUNDLED_TOKENIZER, load_tokenizer, special_ids

# Fields every preset shares with CoDA-v0: vocabulary, special ids, RoPE, norms.
_CODA_V0_COMMON = dict(
    vocab_size=151936,
    mask_token_id=151669,
    pad_token_id=151643,
    eos_token_id=151645,
    rope_theta=1000000.0,
    rms_norm_eps=1e-6,
    max_position_embeddings=40960,
    tie_word_embeddings=False,
)

SHAPES: dict[str, dict] = {
    # ~20M parameters, almost all of them the two vocabulary matrices.
    "tiny": dict(hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, head_dim=16),
    # ~82M parameters: big enough to learn from a small corpus on a CPU.
    "small": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                  num_attention_heads=8, num_key_value_heads=4, head_dim=32),
    # The released shape: 2,031,739,904 parameters.
    "coda-v0": dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28,
                    num_attention_heads=16, num_key_value_heads=8, head_dim=128),
}


# coda-mini's family. 6 query / 2 KV heads of 64 like the small Qwen3 models; RoPE theta and
# positions for the 512-token rows they train on (the sampler fits its canvas to
# max_position_embeddings).
_MINI_COMMON = dict(rope_theta=10000.0, rms_norm_eps=1e-6, max_position_embeddings=512,
                    tie_word_embeddings=False, head_dim=64)
MINI_SHAPES: dict[str, dict] = {
    "mini-s": dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4,
                   num_attention_heads=4, num_key_value_heads=2),
    "mini": dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=6,
                 num_attention_heads=6, num_key_value_heads=2),
    "mini-l": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                   num_attention_heads=8, num_key_value_heads=2),
}
SHAPES.update(MINI_SHAPES)


def preset_config(name: str, tokenizer=None) -> CoDAConfig:
    """The config of preset `name`; a mini-* preset takes vocabulary and special ids from `tokenizer`."""
    if name not in SHAPES:
        raise CodaError(f"unknown preset {name!r}; choose one of {', '.join(SHAPES)}")
    if name not in MINI_SHAPES:
        return CoDAConfig(**_CODA_V0_COMMON, **SHAPES[name], architectures=["CoDALanguageModel"])
    if tokenizer is None:
        raise CodaError(f"preset {name} takes its vocabulary from a tokenizer; give one (model.tokenizer in a recipe)")
    ids = special_ids(None, tokenizer)
    vocab = -(-len(tokenizer) // 64) * 64  # rows in multiples of 64 keep the LM head's matmul aligned
    return CoDAConfig(vocab_size=vocab, mask_token_id=ids.mask, pad_token_id=ids.pad, eos_token_id=ids.eos,
                      **_MINI_COMMON, **SHAPES[name], architectures=["CoDALanguageModel"])


def init_model(preset: str, out: str | os.PathLike, tokenizer: str | os.PathLike | None = None,
               seed: int = 0, max_shard_size: str = "2GB") -> Path:
    """Write config, safetensors and tokenizer for a random `preset` model to `out`.

    The directory appears whole or not at all: everything is written to a
    temporary sibling and renamed into place.
    """
    out = Path(out)
    require_empty(out)
    tok = load_tokenizer(tokenizer or BUNDLED_TOKENIZER)
    config = preset_config(preset, tok)
    if len(tok) > config.vocab_size:
        raise CodaError(f"tokenizer has {len(tok)} tokens but the model vocabulary is {config.vocab_size}")

    torch.manual_seed(seed)
    save_model_dir(CoDALanguageModel(config), tok, out, max_shard_size=max_shard_size)
    return out
