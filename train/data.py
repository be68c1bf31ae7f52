"""Data: `coda train prepare` writes token shards; `ShardReader` streams them back.

prepare: source files (folders, filtered by language) or JSONL records ->
exact dedup by content hash -> licence filter hook -> tokenized -> packed
into fixed-length rows (documents joined by eos) -> shuffled -> uint32 shards,
with a manifest that records each shard's sha256. Records with `prompt` and
`response` make SFT data instead: one padded row per example through the
chat template, its prompt length kept beside it, examples longer than the
row dropped (as the report does).

For code in a language with a tree-sitter grammar, every token also gets the
id of the syntax node it belongs to (-1 outside): the holes of masking
strategy S4 (see coda_core/syntax.py).

The reader serves the rows of one host (or rank): row i goes to reader
i mod hosts, in an order shuffled per epoch, and its position (epoch,
cursor) can be saved and restored exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from coda_core.atomic import atomic_directory
from coda_core.errors import CodaError
from coda_core.progress import progress as progress_bar
from coda_core.syntax import LANGUAGE_BY_SUFFIX, node_ids_for

MANIFEST = "manifest.json"
SHARD_ROWS = 4096


class DataError(CodaError):
    pass


def allow_all(path: str, text: str) -> bool:
    """The licence filter hook: return False to drop a document (e.g. by its licence header)."""
    return True


@dataclass
class Document:
    source: str  # path or "file.jsonl:line"
    text: str
    language: str | None  # tree-sitter language id, when known
    prompt: str | None = None  # SFT records only
    group: str | None = None  # a record's `source` (its package), for per-source counts


def _documents(sources: list[str], languages: set[str] | None) -> Iterator[Document]:
    for source in sources:
        path = Path(source)
        if not path.exists():
            raise DataError(f"data source {source} does not exist")
        if path.is_file() and path.suffix == ".jsonl":
            yield from _records(path)
            continue
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            language = LANGUAGE_BY_SUFFIX.get(file.suffix)
            if languages is not None and language not in languages:
                continue
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary or unreadable: not code we train on
            yield Document(str(file), text, language)


def _records(path: Path) -> Iterator[Document]:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{number}: not JSON: {exc}") from None
        where = f"{path}:{number}"
        if "prompt" in record and "response" in record:
            yield Document(where, str(record["response"]), None, prompt=str(record["prompt"]))
        elif "text" in record or "content" in record:
            yield Document(where, str(record.get("text", record.get("content"))), record.get("language"),
                           group=record.get("source"))
        else:
            raise DataError(f"{where}: a record needs `text` (or `content`), or `prompt` and `response`")


def prepare(sources: list[str], tokenizer, out: str | Path, *, seq_len: int = 1024, seed: int = 0,
            languages: set[str] | None = None, licence_filter: Callable[[str, str], bool] = allow_all,
            progress: bool = True) -> dict:
    """Write the shards and manifest for `sources` to `out` (atomically); returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} already exists and is not empty; choose another --out")
    from coda_core.tokenizer import special_ids

    ids = special_ids(None, tokenizer)
    seen: set[str] = set()
    stats = {"documents": 0, "duplicates": 0, "filtered": 0, "dropped_long": 0, "tokens": 0}
    by_source: dict[str, dict[str, int]] = {}
    rows, prompt_lens, nodes = [], [], []
    buffer, node_buffer, next_node = [], [], 0
    sft = None
    for doc in progress_bar(_documents(sources, languages), desc="prepare", unit="doc", disable=not progress):
        digest = hashlib.sha256(((doc.prompt or "") + "\0" + doc.text).encode()).hexdigest()
        if digest in seen:
            stats["duplicates"] += 1
            continue
        seen.add(digest)
        if not licence_filter(doc.source, doc.text):
            stats["filtered"] += 1
            continue
        if sft is None:
            sft = doc.prompt is not None
        if sft != (doc.prompt is not None):
            raise DataError(f"{doc.source}: SFT records (prompt/response) and plain text cannot be mixed")
        stats["documents"] += 1
        if sft:
            prompt = list(tokenizer.apply_chat_template([{"role": "user", "content": doc.prompt}],
                                                        add_generation_prompt=True, tokenize=True, return_dict=False))
            row = prompt + tokenizer.encode(doc.text, add_special_tokens=False) + [ids.eos]
            if len(row) > seq_len:
                stats["dropped_long"] += 1
                continue
            stats["tokens"] += len(row)
            rows.append(row + [ids.pad] * (seq_len - len(row)))
            prompt_lens.append(len(prompt))
            continue
        encoded = tokenizer(doc.text, add_special_tokens=False, return_offsets_mapping=True)
        tokens = encoded["input_ids"] + [ids.eos]
        node_of = node_ids_for(doc.text, encoded["offset_mapping"], doc.language) + [-1]
        node_of = [n + next_node if n >= 0 else -1 for n in node_of]
        next_node = max([next_node - 1, *node_of]) + 1
        stats["tokens"] += len(tokens)
        if doc.group is not None:
            counts = by_source.setdefault(doc.group, {"documents": 0, "tokens": 0})
            counts["documents"] += 1
            counts["tokens"] += len(tokens)
        buffer += tokens
        node_buffer += node_of
        while len(buffer) >= seq_len:
            rows.append(buffer[:seq_len])
            nodes.append(node_buffer[:seq_len])
            buffer, node_buffer = buffer[seq_len:], node_buffer[seq_len:]
    if not rows:
        raise DataError(f"no training rows from {', '.join(sources)}: {stats['documents']} documents, "
                        f"{stats['tokens']} tokens (a row holds {seq_len}); add data or lower --seq-len")
    order = np.random.default_rng(seed).permutation(len(rows))
    with atomic_directory(out) as tmp:
        shards = _write_shards(tmp, np.asarray(rows, dtype=np.uint32)[order],
                               np.asarray(prompt_lens, dtype=np.uint32)[order] if sft else None,
                               _renumber(np.asarray(nodes, dtype=np.int32)[order]) if not sft else None)
        manifest = {"kind": "sft" if sft else "text", "seq_len": seq_len, "rows": len(rows), "seed": seed,
                    "tokenizer": getattr(tokenizer, "name_or_path", ""), "vocab_size": len(tokenizer),
                    "shards": shards, "stats": stats}
        if by_source:
            manifest["by_source"] = by_source
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _renumber(nodes: np.ndarray) -> np.ndarray:
    """Node ids per row from 0 (the masking draws one number per id in a row)."""
    out = np.full_like(nodes, -1)
    for r, row in enumerate(nodes):
        inside = row >= 0
        if inside.any():
            _, out[r, inside] = np.unique(row[inside], return_inverse=True)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_shards(folder: Path, rows: np.ndarray, prompt_lens: np.ndarray | None,
                  nodes: np.ndarray | None) -> list[dict]:
    shards = []
    for i, start in enumerate(range(0, len(rows), SHARD_ROWS)):
        entry = {"rows": int(min(SHARD_ROWS, len(rows) - start))}
        for name, array in (("tokens", rows), ("prompt_len", prompt_lens), ("nodes", nodes)):
            if array is None:
                continue
            file = f"{name}-{i:05d}.bin"
            array[start:start + SHARD_ROWS].tofile(folder / file)
            entry[name] = {"file": file, "sha256": _sha256(folder / file)}
        shards.append(entry)
    return shards


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
                if _sha256(file) != shard[name]["sha256"]:
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
