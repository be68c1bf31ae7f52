"""`coda train prepare`: source files or JSONL records -> token shards that `data.Dataset` reads.

sources (folders, filtered by language, or .jsonl records) -> exact dedup by
content hash -> licence filter hook -> tokenized -> packed into fixed-length
rows (documents joined by eos) -> shuffled -> uint32 shards, with a manifest
that records each shard's sha256. Records with `prompt` and `response` make
SFT data instead: one padded row per example through the chat template, its
prompt length kept beside it, examples longer than the row dropped (as the
report does).

For code in a language with a tree-sitter grammar, every token also gets the
id of the syntax node it belongs to (-1 outside): the holes of masking
strategy S4 (see coda_core/syntax.py).

Tokenizing and parsing are the cost (a CPU-minute per ~10 M tokens), and
they are per document, so `workers` > 1 spreads them over processes. The
documents are read, deduplicated and filtered in this process, in order, and
the workers' results come back in that order: the shards are the same bytes
whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from coda_core.atomic import atomic_directory
from coda_core.progress import progress as progress_bar
from coda_core.syntax import LANGUAGE_BY_SUFFIX, node_ids_for

from .data import MANIFEST, DataError, sha256_file

SHARD_ROWS = 4096


def allow_all(path: str, text: str) -> bool:
    """The licence filter hook: return False to drop a document (e.g. by its licence header)."""
    return True


def resolve_workers(workers: int | str | None) -> int:
    """`auto` (or None) is one process per CPU core; a number is itself, at least 1."""
    if workers in (None, "auto"):
        return os.cpu_count() or 1
    try:
        count = int(workers)
    except (TypeError, ValueError):
        raise DataError(f"workers must be a number or 'auto', not {workers!r}") from None
    if count < 1:
        raise DataError(f"workers must be at least 1, not {count}")
    return count


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


@dataclass
class Encoded:
    """One document's tokens (eos-terminated for code) and, for code, their syntax node ids (-1 outside,
    numbered from 0 within the document); for SFT the prompt's length instead."""

    tokens: list[int]
    nodes: list[int] | None = None
    prompt_len: int = 0


class Encoder:
    """Document -> Encoded. Picklable (it holds only the tokenizer), so worker processes run it too."""

    def __init__(self, tokenizer):
        from coda_core.tokenizer import special_ids

        self.tokenizer = tokenizer
        self.eos = special_ids(None, tokenizer).eos

    def __call__(self, doc: Document) -> Encoded:
        if doc.prompt is not None:
            prompt = list(self.tokenizer.apply_chat_template([{"role": "user", "content": doc.prompt}],
                                                             add_generation_prompt=True, tokenize=True,
                                                             return_dict=False))
            return Encoded(prompt + self.tokenizer.encode(doc.text, add_special_tokens=False) + [self.eos],
                           prompt_len=len(prompt))
        encoded = self.tokenizer(doc.text, add_special_tokens=False, return_offsets_mapping=True)
        return Encoded(encoded["input_ids"] + [self.eos],
                       node_ids_for(doc.text, encoded["offset_mapping"], doc.language) + [-1])


_worker_encoder: Encoder | None = None  # set in each worker process by _start_worker


def _start_worker(encoder: Encoder) -> None:
    global _worker_encoder
    _worker_encoder = encoder


def _encode_in_worker(doc: Document) -> Encoded:
    return _worker_encoder(doc)


def _encoded(docs: Iterable[Document], encoder: Encoder, workers: int) -> Iterator[tuple[Document, Encoded]]:
    """(document, its encoding) in the documents' order, encoded here or by `workers` processes."""
    if workers == 1:
        for doc in docs:
            yield doc, encoder(doc)
        return
    # spawn, not fork: the parent may hold torch's and the tokenizer's threads, which fork would copy
    # mid-flight. An executor (not multiprocessing.Pool) raises when a worker dies instead of waiting for
    # it forever. A window of pending documents keeps them paired with their results, in order.
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(encoder,)) as pool:
            pending: deque = deque()
            for doc in docs:
                pending.append((doc, pool.submit(_encode_in_worker, doc)))
                if len(pending) >= 64 * workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            for doc, future in pending:
                yield doc, future.result()
    except BrokenProcessPool as exc:
        raise DataError(f"a prepare worker process died ({exc}); out of memory? try fewer --workers") from None


def _kept(docs: Iterable[Document], licence_filter: Callable[[str, str], bool], stats: dict) -> Iterator[Document]:
    """The documents that are not exact duplicates and pass the licence filter, counted in `stats`."""
    seen: set[str] = set()
    sft = None
    for doc in docs:
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
        yield doc


def prepare(sources: list[str], tokenizer, out: str | Path, *, seq_len: int = 1024, seed: int = 0,
            languages: set[str] | None = None, licence_filter: Callable[[str, str], bool] = allow_all,
            workers: int | str = 1, progress: bool = True) -> dict:
    """Write the shards and manifest for `sources` to `out` (atomically); returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out} already exists and is not empty; choose another --out")
    from coda_core.tokenizer import special_ids

    pad = special_ids(None, tokenizer).pad
    stats = {"documents": 0, "duplicates": 0, "filtered": 0, "dropped_long": 0, "tokens": 0}
    by_source: dict[str, dict[str, int]] = {}
    sft_rows, prompt_lens = [], []  # SFT: one row per example
    stream, node_stream, next_node = [], [], 0  # code: every document's tokens, end to end
    docs = _kept(_documents(sources, languages), licence_filter, stats)
    for doc, enc in progress_bar(_encoded(docs, Encoder(tokenizer), resolve_workers(workers)),
                                 desc="prepare", unit="doc", disable=not progress):
        if doc.prompt is not None:
            if len(enc.tokens) > seq_len:
                stats["dropped_long"] += 1
                continue
            stats["tokens"] += len(enc.tokens)
            sft_rows.append(enc.tokens + [pad] * (seq_len - len(enc.tokens)))
            prompt_lens.append(enc.prompt_len)
            continue
        stats["tokens"] += len(enc.tokens)
        if doc.group is not None:
            counts = by_source.setdefault(doc.group, {"documents": 0, "tokens": 0})
            counts["documents"] += 1
            counts["tokens"] += len(enc.tokens)
        stream.append(np.asarray(enc.tokens, dtype=np.uint32))
        nodes = np.asarray(enc.nodes, dtype=np.int64)
        node_stream.append(np.where(nodes >= 0, nodes + next_node, -1))  # ids unique across documents
        next_node += int(nodes.max()) + 1 if len(nodes) and nodes.max() >= 0 else 0
    sft = bool(sft_rows)
    if sft:
        rows, nodes = np.asarray(sft_rows, dtype=np.uint32), None
    else:  # consecutive seq_len slices of the stream; the ragged tail is left out
        tokens = np.concatenate(stream) if stream else np.zeros(0, np.uint32)
        count = len(tokens) // seq_len
        rows = tokens[:count * seq_len].reshape(count, seq_len)
        nodes = np.concatenate(node_stream)[:count * seq_len].reshape(count, seq_len) if count else None
    if not len(rows):
        raise DataError(f"no training rows from {', '.join(sources)}: {stats['documents']} documents, "
                        f"{stats['tokens']} tokens (a row holds {seq_len}); add data or lower --seq-len")
    order = np.random.default_rng(seed).permutation(len(rows))
    with atomic_directory(out) as tmp:
        shards = _write_shards(tmp, rows[order], np.asarray(prompt_lens, dtype=np.uint32)[order] if sft else None,
                               _renumber(nodes[order]) if not sft else None)
        manifest = {"kind": "sft" if sft else "text", "seq_len": seq_len, "rows": len(rows), "seed": seed,
                    "tokenizer": getattr(tokenizer, "name_or_path", ""), "vocab_size": len(tokenizer),
                    "shards": shards, "stats": stats}
        if by_source:
            manifest["by_source"] = by_source
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest


def _renumber(nodes: np.ndarray) -> np.ndarray:
    """Node ids per row from 0 (the masking draws one number per id in a row)."""
    out = np.full(nodes.shape, -1, dtype=np.int32)
    for r, row in enumerate(nodes):
        inside = row >= 0
        if inside.any():
            _, out[r, inside] = np.unique(row[inside], return_inverse=True)
    return out


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
            entry[name] = {"file": file, "sha256": sha256_file(folder / file)}
        shards.append(entry)
    return shards
