"""Data: the token shards that `coda train prepare` (prepare.py) writes, read back.

`Dataset` holds a prepared folder in memory maps, each shard checked against
the manifest's sha256. The reader serves the rows of one host (or rank): row
i goes to reader i mod hosts, in an order shuffled per epoch, and its
position (epoch, cursor) can be saved and restored exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from coda_core.errors import CodaError

MANIFEST = "manifest.json"


class DataError(CodaError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class Rows:
    """A batch of rows: token ids [B, L], SFT prompt lengths [B] or None, node ids [B, L] or None."""

    ids: torch.Tensor
    prompt_len: torch.Tensor | None
    nodes: torch.Tensor | None


class Dataset:
    """A prepared data directory, checked against its manifest's checksums, held in memory maps."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            raise DataError(f"{self.path} is not prepared data (no {MANIFEST}); run `coda train prepare`")
        try:
            self.manifest = json.loads(manifest.read_text())
        except json.JSONDecodeError as exc:
            raise DataError(f"{manifest}: not JSON: {exc}") from None
        self.seq_len = self.manifest["seq_len"]
        self.kind = self.manifest["kind"]
        arrays = {"tokens": [], "prompt_len": [], "nodes": []}
        for shard in self.manifest["shards"]:
            for name, dtype in (("tokens", np.uint32), ("prompt_len", np.uint32), ("nodes", np.int32)):
                if name not in shard:
                    continue
                file = self.path / shard[name]["file"]
                if not file.exists():
                    raise DataError(f"shard {file} is missing")
                if sha256_file(file) != shard[name]["sha256"]:
                    raise DataError(f"shard {file} is corrupt: its checksum does not match the manifest")
                data = np.memmap(file, dtype=dtype, mode="r")
                arrays[name].append(data.reshape(shard["rows"], -1) if name != "prompt_len" else data)
        self.tokens = np.concatenate(arrays["tokens"]) if arrays["tokens"] else np.zeros((0, self.seq_len))
        self.prompt_len = np.concatenate(arrays["prompt_len"]) if arrays["prompt_len"] else None
        self.nodes = np.concatenate(arrays["nodes"]) if arrays["nodes"] else None
        if len(self.tokens) == 0:
            raise DataError(f"{self.path} holds no rows")

    def __len__(self) -> int:
        return len(self.tokens)

    def rows(self, index: np.ndarray) -> Rows:
        return Rows(ids=torch.from_numpy(self.tokens[index].astype(np.int64)),
                    prompt_len=None if self.prompt_len is None else torch.from_numpy(
                        self.prompt_len[index].astype(np.int64)),
                    nodes=None if self.nodes is None else torch.from_numpy(self.nodes[index].astype(np.int64)))


class ShardReader:
    """Batches of `batch_size` rows for reader `host` of `hosts` (a host or a rank), epoch after epoch.

    Reader h gets the rows i of `rows` with i mod hosts == h, all readers the same number of them (up to
    hosts - 1 rows at the end are left out), so they start their epochs together. Each epoch visits this
    reader's rows in an order drawn from (seed, epoch). `state()` / `load_state()` save and restore the
    position exactly.
    """

    def __init__(self, dataset: Dataset, batch_size: int, *, seed: int = 0, host: int = 0, hosts: int = 1,
                 rows: range | None = None):
        if not 0 <= host < hosts:
            raise DataError(f"reader {host} of {hosts} does not exist")
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = seed
        self.host, self.hosts = host, hosts
        rows = rows if rows is not None else range(len(dataset))
        rows = rows[:len(rows) - len(rows) % hosts]
        self.mine = np.asarray([i for i in rows if i % hosts == host], dtype=np.int64)
        if len(self.mine) < batch_size:
            raise DataError(f"{dataset.path}: this reader gets {len(self.mine)} rows, fewer than a batch of "
                            f"{batch_size}; add data or lower train.batch_size")
        self.epoch, self.cursor = 0, 0

    def _order(self, epoch: int) -> np.ndarray:
        return self.mine[np.random.default_rng([self.seed, epoch]).permutation(len(self.mine))]

    def next(self) -> Rows:
        if self.cursor + self.batch_size > len(self.mine):  # drop the ragged end: fixed shapes
            self.epoch, self.cursor = self.epoch + 1, 0
        index = self._order(self.epoch)[self.cursor:self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return self.dataset.rows(index)

    @property
    def epoch_progress(self) -> float:
        return self.epoch + self.cursor / len(self.mine)

    def state(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor}

    def load_state(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
