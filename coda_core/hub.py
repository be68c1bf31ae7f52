"""Models named by a Hugging Face hub id (`org/name`): the local cache first, a download only when
the user named a model that is not there, and what its weights weigh.

A download goes into the standard Hugging Face cache, so it happens once and
`hf download` and every other tool share it. Whoever asked for the model can
follow the download: `on_progress(done_bytes, total_bytes)` hears the byte
count as it grows (the language server turns it into `coda/status`
percentages); without it huggingface_hub draws its own bars on a terminal.
Offline, or when the hub cannot be reached, the error says what to run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

from .errors import ModelNotFoundError

REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
CONFIG_PATTERNS = ["*.json", "*.txt", "*.jinja"]  # config, tokenizer, chat template: a few kB
WEIGHT_PATTERNS = ["*.safetensors"]  # never pickle (coda_core.loading)
DownloadProgress = Callable[[int, int], None]  # (bytes done, bytes in all)


def is_repo_id(name: str) -> bool:
    return bool(REPO_ID.match(name)) and not name.startswith(".")


def offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def how_to_get(name: str) -> str:
    return (f"Download it where the hub is reachable with `hf download {name}` and copy the Hugging Face cache "
            f"(~/.cache/huggingface) here, or pass a local model directory (`coda init-model` makes a small one).")


def snapshot(name: str, *, weights: bool = True, on_progress: DownloadProgress | None = None) -> Path:
    """The local folder of hub model `name`: from the cache, else downloaded (all of it, or with
    `weights=False` only its config and tokenizer files)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    patterns = CONFIG_PATTERNS + (WEIGHT_PATTERNS if weights else [])
    try:
        return Path(snapshot_download(name, allow_patterns=patterns, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        pass
    if offline():
        raise ModelNotFoundError(f"{name} is neither a local directory nor in the Hugging Face cache, "
                                 f"and the hub is offline (HF_HUB_OFFLINE). {how_to_get(name)}")
    try:
        bars = {"tqdm_class": _reporting_bar(on_progress, _size(name, patterns))} if on_progress else {}
        return Path(snapshot_download(name, allow_patterns=patterns, **bars))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelNotFoundError(f"could not fetch {name} from the hub ({reason}). {how_to_get(name)}") from None


def weights_on_disk(model_dir: Path) -> int:
    """Bytes of the safetensors files in `model_dir` (0: its weights are not there)."""
    return sum(f.stat().st_size for f in model_dir.glob("*.safetensors") if f.is_file())


def download_size(name: str) -> int | None:
    """Bytes of hub model `name`'s weights, asked of the hub; None offline or when it cannot say."""
    return _size(name, WEIGHT_PATTERNS)


def _size(name: str, patterns: list[str]) -> int | None:
    """Bytes of the files of hub model `name` that `patterns` select, asked of the hub; None offline
    or when it cannot say."""
    if offline():
        return None
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError
    from huggingface_hub.utils import filter_repo_objects

    try:
        siblings = HfApi().model_info(name, files_metadata=True).siblings or []
    except (HfHubHTTPError, OSError, ValueError):
        return None
    sizes = [s.size for s in filter_repo_objects(siblings, allow_patterns=patterns, key=lambda s: s.rfilename)]
    return sum(sizes) if sizes and None not in sizes else None


class _Discard:
    """Where the reporting bars draw: nowhere (the callback is their output)."""

    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def _reporting_bar(report: DownloadProgress, total: int | None):
    """A tqdm class for snapshot_download that passes its byte count to `report`.

    snapshot_download makes one bar counting files and two counting bytes: the
    bytes written (every download) and, for Xet storage, the bytes transferred.
    The bytes written are reported, out of `total` (the snapshot's size, asked of
    the hub beforehand): the bar's own total grows only as each file starts.
    """
    from tqdm import tqdm

    class ReportingBar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs.pop("name", None)
            super().__init__(*args, file=_Discard(), **kwargs)
            self.reports = self.unit == "B" and not str(self.desc).startswith("Downloading bytes")

        def update(self, n=1):
            shown = super().update(n)
            if self.reports:
                report(int(self.n), max(total or 0, int(self.total or 0)))
            return shown

    return ReportingBar
