"""Directories that appear whole or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import CodaError


def require_empty(out: Path) -> None:
    """Refuse to write into `out` when it holds anything: a user's files are never overwritten."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CodaError(f"{out} already exists and is not empty; choose another --out")


@contextmanager
def atomic_directory(out: str | os.PathLike, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of `out` to fill; when the block ends without an error it is renamed
    to `out`, otherwise removed. `out` must not hold files, unless `replace` allows replacing it."""
    out = Path(out)
    if not replace:
        require_empty(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out) if replace else out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
