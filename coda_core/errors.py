"""The errors coda_core raises for bad input.

Every one of them carries a message meant for a person: the CLI prints it as
is, without a traceback. Catch `CodaError` to catch them all.
"""


class CodaError(Exception):
    """Base class: something the user can fix (a path, a file, a setting)."""


class DeviceError(CodaError):
    """The device asked for does not exist here (e.g. CUDA on a machine or torch build without it)."""


class ModelNotFoundError(CodaError):
    """The model directory or hub repository cannot be found (or fetched offline)."""


class ConfigError(CodaError):
    """config.json is missing, unreadable, or lacks fields the model needs."""


class CheckpointError(CodaError):
    """The weights cannot be loaded: corrupt safetensors, missing or mis-shaped tensors."""


class UnsafeCheckpointError(CheckpointError):
    """Only pickle-based weights (.bin/.pt/.pth/.ckpt) were found; they are never loaded."""
