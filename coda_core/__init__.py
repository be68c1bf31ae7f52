"""CoDA: the model runtime, the masking curriculum and the sampler (plain PyTorch)."""

__version__ = "0.1.0"
