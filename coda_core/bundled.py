"""The models that ship inside the package, and the model used when none is named.

Kept apart from `loading` (and free of torch) so that the language server and
the CLI can name their default model without importing the runtime.
`coda_core.loading` re-exports every name here.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelNotFoundError

ASSETS = Path(__file__).parent / "assets"
# Model names that mean a folder inside the package (pyproject.toml ships each as package data).
BUNDLED_MODELS: dict[str, Path] = {"coda-mini": ASSETS / "coda-mini"}
DEFAULT_MODEL = "coda-mini"
# How every --model help states the default, which is resolved when a command runs (default_model).
DEFAULT_MODEL_HELP = "default: $CODA_MODEL, else the bundled coda-mini"


def default_model() -> str:
    """The model used when none is given: $CODA_MODEL, else the bundled coda-mini."""
    return os.environ.get("CODA_MODEL") or DEFAULT_MODEL


def is_bundled(name_or_path: str | os.PathLike) -> bool:
    """Whether this names a bundled model: a plain string, exactly one of BUNDLED_MODELS' names.

    A Path is always a path (Path("./coda-mini") prints as "coda-mini", so it
    cannot say which was meant); a string with a separator, ./coda-mini, is a
    local directory.
    """
    return isinstance(name_or_path, str) and name_or_path in BUNDLED_MODELS


def bundled_model_dir(name: str) -> Path:
    """The folder of a bundled model; a broken install (folder or weights gone) is a ModelNotFoundError."""
    folder = BUNDLED_MODELS[name]
    has_weights = folder.is_dir() and any(folder.glob("*.safetensors"))
    if not has_weights or not (folder / "config.json").is_file():
        raise ModelNotFoundError(
            f"the bundled model {name} is missing or incomplete at {folder}: the install is broken; reinstall "
            f"the package (in a source checkout, rebuild the model with `make model`)")
    return folder
