"""Random models built in memory: small enough for exact fp32 comparisons, or of the `tiny`
preset with the real vocabulary. Seeded, so every test that builds one gets the same weights."""

import torch

from coda_core.config import CoDAConfig


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


def tiny_model(seed: int = 0):
    """A random model of the `tiny` preset (real vocabulary), in memory."""
    from coda_core.model import CoDALanguageModel
    from coda_core.presets import preset_config

    torch.manual_seed(seed)
    return CoDALanguageModel(preset_config("tiny")).eval()
