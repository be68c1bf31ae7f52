"""`coda bench crossfile --model M`: does context from other files help a completion?

The holes (coda_cli.crossfile_holes) are lines of held-out packages that use a name defined in
another file of the package. Two measurements on them:

- **Retrieval** (no model): does the context builder put the name's definition in front of the
  model? Per hole, the related files are either the ones its file imports (resolved inside the
  package's root, as the server does) or ten "open tabs": the defining file and nine other files
  of the package, drawn with the seed. Each is ranked by Jaccard and by BM25, with and without
  definitions named near the cursor ranked first, and packed into the default `contextFiles`
  budget with the Qwen3 tokenizer (the real CoDA's). A hit: a snippet holds the definition's line.
- **Completion**, per model: each hole completed by the engine (coda_lsp.engine, as the server
  runs it) with cross-file context off (`context_files=0`) and on (the default budget, imports
  only). `exact` (first line equal to the original), `prefix_match` (the share of the line right
  as a prefix), `identifier` (the other file's name in the completion's first line), `answered`,
  `context_tokens_median`, `with_snippet_of_defining_file`, and `ms_median` per hole.

The document given is the hole's file with the line emptied after its indentation, the cursor
there: what a user about to type the line has, and nothing of the answer.
"""

from __future__ import annotations

import ast
import asyncio
import functools
import os
import random
import statistics
import time
from pathlib import Path

from coda_core.errors import CodaError
from coda_eval.metrics import first_line, prefix_match

from .crossfile_holes import Hole, crossfile_holes, held_out

TABS = 10  # open tabs in the retrieval study: the defining file and nine others of its package
MAX_NEW_TOKENS = 32  # a hole is one line; the engine's default 64 doubles the time and not the answer


def _source(hole: Hole) -> str:
    return hole.prefix + "\n" + hole.suffix


def _same_file(hole: Hole, shown: str) -> bool:
    """A snippet's path (as the model is shown it: relative to the root it was read from) is the hole's
    defining file."""
    return os.path.realpath(Path(os.path.realpath(hole.root)) / shown) == os.path.realpath(hole.defined_in)


# -- retrieval ------------------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def definition_line(path: str, name: str) -> int:
    """The 1-based line where `path` defines `name` at its top level (0: not found)."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in tree.body:
        targets = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else \
            [t.id for t in getattr(node, "targets", [getattr(node, "target", None)]) if isinstance(t, ast.Name)]
        if name in targets:
            return node.lineno
    return 0


def _tabs(hole: Hole, package_files: list[str], rng: random.Random):
    from coda_lsp.project import RelatedFile

    others = sorted(f for f in package_files if f not in (hole.file, hole.defined_in))
    chosen = [hole.defined_in] + rng.sample(others, min(TABS - 1, len(others)))
    root = os.path.realpath(hole.root)
    return [RelatedFile(os.path.relpath(os.path.realpath(f), root), Path(f).read_text(encoding="utf-8"), "open")
            for f in chosen]


def retrieval(holes: list[Hole], packages, seed: int = 0) -> dict:
    """Hit rate of the definition (see the module docstring) per source, measure and rule."""
    from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer
    from coda_lsp.project import Project
    from coda_lsp.related import pack, rank
    from coda_lsp.settings import Settings

    tokenizer, budget, rng = load_tokenizer(BUNDLED_TOKENIZER), Settings(model="").context_files, random.Random(seed)
    encode = functools.lru_cache(maxsize=65536)(lambda text: tuple(tokenizer.encode(text, add_special_tokens=False)))
    files_of = {p.name: [str(f) for f in p.files] for p in packages}
    hits: dict[str, list[bool]] = {}
    for hole in holes:
        project = Project()
        project.set_roots([hole.root])
        sources = {"imports": project.files(Path(hole.file).as_uri(), "python", _source(hole), open_files=False,
                                            recent_edits=False),
                   "tabs": _tabs(hole, files_of[hole.package], rng)}
        line = definition_line(hole.defined_in, hole.identifier)
        for source, files in sources.items():
            for measure in ("jaccard", "bm25"):
                for definitions in (True, False):
                    _, taken = pack(encode, rank(files, hole.prefix, "\n" + hole.suffix, measure, definitions),
                                    budget, "python")
                    hit = any(_same_file(hole, s.path) and s.first_line <= line <= s.last_line for s in taken)
                    key = f"{source} {measure}{' definitions first' if definitions else ''}"
                    hits.setdefault(key, []).append(hit)
    return {"budget": budget, "tabs": TABS, **{key: round(sum(v) / len(v), 3) for key, v in hits.items()}}


# -- completion -------------------------------------------------------------------------

async def _run(engine, holes: list[Hole]) -> list[dict]:
    rows = []
    for hole in holes:
        engine.shown.clear()  # no answer from the typed-ahead cache: every hole is decoded
        engine.last_context = None
        engine.project.set_roots([hole.root])
        start = time.perf_counter()
        got = await engine.complete(Path(hole.file).as_uri(), _source(hole), len(hole.prefix), "python")
        ms = (time.perf_counter() - start) * 1000
        snippets = getattr(engine.last_context, "snippets", None) or []
        rows.append({"text": got[0].text if got else "", "ms": ms, "tokens": sum(s.tokens for s in snippets),
                     "defining": any(_same_file(hole, s.path) for s in snippets)})
    return rows


def _figures(holes: list[Hole], rows: list[dict]) -> dict:
    n = max(len(rows), 1)
    share = lambda test: round(sum(test(h, r) for h, r in zip(holes, rows)) / n, 3)
    return {
        "exact": share(lambda h, r: first_line(r["text"]) == h.target.strip()),
        "prefix_match": share(lambda h, r: prefix_match(r["text"], h.target)),
        "identifier": share(lambda h, r: h.identifier in first_line(r["text"])),
        "answered": share(lambda h, r: bool(r["text"].strip())),
        "context_tokens_median": statistics.median(r["tokens"] for r in rows) if rows else 0,
        "with_snippet_of_defining_file": share(lambda h, r: r["defining"]),
        "ms_median": round(statistics.median(r["ms"] for r in rows), 1) if rows else 0.0,
    }


def _measure(model: str, holes: list[Hole], context_files: int) -> dict:
    from coda_lsp.engine import Engine
    from coda_lsp.settings import Settings

    # A fresh engine per configuration: nothing one run decoded or cached reaches the other.
    engine = Engine(Settings(model=model, candidates=1, max_new_tokens=MAX_NEW_TOKENS, context_files=context_files))
    try:
        error = engine.models.load()
        if error:
            raise CodaError(f"{model}: {error}")
        return _figures(holes, asyncio.run(_run(engine, holes)))
    finally:
        engine.shutdown()


def bench_crossfile(models: list[str], holes: int = 100, seed: int = 0, packages=None) -> dict:
    """Retrieval, then each model on the same holes with cross-file context off and on."""
    from coda_lsp.settings import Settings

    split = "given"
    if packages is None:
        packages, split = held_out(holes)
    cut = crossfile_holes(packages, holes, seed)
    if not cut:
        raise CodaError("no cross-file holes: no package has a line that uses a name defined in another of its files")
    budget = Settings(model="").context_files
    return {"holes": len(cut), "split": split, "packages": len({h.package for h in cut}), "seed": seed,
            "context_files": budget, "retrieval": retrieval(cut, packages, seed),
            "models": {m: {"off": _measure(m, cut, 0), "on": _measure(m, cut, budget)} for m in models}}


COLUMNS = ("exact", "prefix_match", "identifier", "answered", "context_tokens_median",
           "with_snippet_of_defining_file", "ms_median")
SHARES = {"exact", "prefix_match", "identifier", "answered", "with_snippet_of_defining_file"}


def format_crossfile(result: dict) -> str:
    retrieved = result["retrieval"]
    lines = [f"{result['holes']} cross-file line holes from {result['packages']} packages ({result['split']} split), "
             f"seed {result['seed']}",
             f"retrieval: the definition in the snippets packed into {retrieved['budget']} tokens "
             f"(imports: the files the hole's file imports; tabs: the defining file and {retrieved['tabs'] - 1} "
             f"others of its package)"]
    lines += [f"  {key:<36}{value:>8.1%}" for key, value in retrieved.items() if key not in ("budget", "tabs")]
    names = ("exact", "prefix_match", "identifier", "answered", "ctx_tokens", "def_file", "ms")
    width = max(len(m) for m in result["models"]) + 5
    lines.append(f"completion (context on: contextFiles {result['context_files']}, imports only)")
    lines.append(f"{'model / context':<{width}}" + "".join(f"{n:>13}" for n in names))
    for model, runs in result["models"].items():
        for mode in ("off", "on"):
            cells = (f"{runs[mode][c]:.1%}" if c in SHARES else f"{runs[mode][c]:g}" for c in COLUMNS)
            lines.append(f"{model + ' ' + mode:<{width}}" + "".join(f"{cell:>13}" for cell in cells))
    return "\n".join(lines)
