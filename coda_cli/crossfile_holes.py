"""The holes of `coda bench crossfile`: lines that need a name from another file of their package.

A hole is one line of code, in a function or class body, that uses a name
defined at the top level of *another* file of the same package (and bound
nowhere in its own file, imports aside): the model can only know that name,
its spelling and its signature from the file it comes from. On random lines
most of what the model needs is in the file, so context from other files
could not show.

The packages are the corpus's held-out ones (train.corpus.split_of ==
"bench"; "valid" too when bench alone has too few holes), so the models have
not trained on them.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import keyword
import random
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 256 * 1024  # bigger files are generated tables, not code a completion would see
PER_FILE, PER_PACKAGE = 3, 20  # no single file or package makes the benchmark
SKIP_NAMES = set(dir(builtins)) | set(keyword.kwlist) | set(keyword.softkwlist)
# Statements with a body: their first line is a header, not a line a completion finishes alone.
COMPOUND = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.If, ast.For, ast.AsyncFor, ast.While,
            ast.With, ast.AsyncWith, ast.Try, ast.TryStar, ast.Match)
IMPORTS = (ast.Import, ast.ImportFrom)


@dataclass(frozen=True, order=True)
class Hole:
    package: str
    file: str
    line: int  # 1-based
    identifier: str  # the name the line uses from another file
    defined_in: str  # the file that defines it
    root: str  # the folder imports resolve from (holds the package's top-level module)
    prefix: str  # the file up to the line's first non-space character
    target: str  # the rest of the line
    suffix: str  # the text after the line's newline


def _read(path: Path) -> tuple[str, ast.Module] | None:
    """(text, tree) of a file, or None: too large, unreadable or not Python 3."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
        return text, ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _wanted(name: str) -> bool:
    return len(name) >= 4 and not (name.startswith("__") and name.endswith("__")) and name not in SKIP_NAMES


def top_level_names(tree: ast.Module) -> set[str]:
    """Names a file defines at its top level: def, async def, class, and plain assignment targets."""
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if _wanted(n)}


def bound_names(tree: ast.Module) -> tuple[set[str], set[str]]:
    """(names the file binds anywhere other than by import: defs, assignments, arguments, loop
    targets..., names its imports bind). A local `total` in the hole's own file is not the other
    file's `total`, so the own file's every binding rules a name out, not only its top level."""
    own, imported = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            own.add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, (ast.ExceptHandler, ast.MatchAs, ast.MatchStar)) and node.name:
            own.add(node.name)
        elif isinstance(node, IMPORTS):
            imported |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return own, imported


def _used(stmt: ast.stmt, imported: set[str]) -> list[tuple[int, str]]:
    """(column, name) of the names a statement reads: bare names, and attributes of an imported
    module (`util.compute_total`); an attribute of anything else (`self.total`) is not the name."""
    used = []
    for node in ast.walk(stmt):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            used.append((node.col_offset, node.id))
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in imported:
            used.append((node.end_col_offset - len(node.attr), node.attr))
    return sorted(used)


def _code_lines(tree: ast.Module):
    """Simple statements inside a function or class body that sit alone on their one line."""
    starts: dict[int, int] = {}
    found = []

    def visit(body: list[ast.stmt], nested: bool) -> None:
        for stmt in body:
            starts[stmt.lineno] = starts.get(stmt.lineno, 0) + 1
            if isinstance(stmt, COMPOUND):
                inner = nested or isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                for field in ("body", "orelse", "finalbody"):
                    visit(getattr(stmt, field, []), inner)
                for part in getattr(stmt, "handlers", []) + getattr(stmt, "cases", []):
                    visit(part.body, inner)
            elif nested and stmt.end_lineno == stmt.lineno and not isinstance(stmt, IMPORTS) and not (
                    isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):  # docstrings
                found.append(stmt)

    visit(tree.body, False)
    return [s for s in found if starts[s.lineno] == 1]  # not `a = 1; b = 2`


def file_holes(package: str, path: Path, text: str, tree: ast.Module, others: dict[str, str]) -> list[Hole]:
    """Every hole of one file; `others` maps each name defined in exactly one other file to that file."""
    own, imported = bound_names(tree)
    lines = text.splitlines(keepends=True)
    starts = [0, *itertools.accumulate(map(len, lines))]
    holes = []
    for stmt in _code_lines(tree):
        row = stmt.lineno - 1
        line = lines[row].rstrip("\r\n")
        indent = len(line) - len(line.lstrip())
        if stmt.col_offset != indent or not 10 <= len(line.strip()) <= 120:
            continue  # ast columns are UTF-8 bytes: a line with non-ASCII before the statement is skipped
        names = [n for _, n in _used(stmt, imported) if n in others and n not in own]
        if names:
            holes.append(Hole(package, str(path), row + 1, names[0], others[names[0]], str(package_root(path)),
                              text[:starts[row] + indent], line[indent:].rstrip(), text[starts[row + 1]:]))
    return holes


def package_root(path: Path) -> Path:
    """The folder above the file's outermost package (the first without __init__.py): where
    `import pkg.x` and relative imports resolve."""
    folder = path.parent
    while (folder / "__init__.py").is_file() and folder.parent != folder:
        folder = folder.parent
    return folder


def package_holes(package) -> list[Hole]:
    """Every hole of one `train.corpus.Package`."""
    parsed = {path: got for path in sorted(package.files) if (got := _read(Path(path)))}
    defined: dict[str, list[Path]] = {}
    for path, (_, tree) in parsed.items():
        for name in top_level_names(tree):
            defined.setdefault(name, []).append(path)
    # A name that is also a module of the package (`_bootstrap = None`, later the module) names the module.
    modules = {part.removesuffix(".py") for path in parsed for part in Path(path).parts[-3:]}
    unique = {name: str(files[0]) for name, files in defined.items() if len(files) == 1 and name not in modules}
    holes = []
    for path, (text, tree) in parsed.items():
        others = {name: file for name, file in unique.items() if file != str(path)}
        holes += file_holes(package.name, Path(path), text, tree, others)
    return holes


def crossfile_holes(packages, holes: int = 100, seed: int = 0) -> list[Hole]:
    """`holes` holes over `packages`, at most PER_FILE per file and PER_PACKAGE per package, sampled
    with random.Random(seed) from sorted inputs: the same holes on every run and machine."""
    rng = random.Random(seed)
    pool = []
    for package in sorted(packages, key=lambda p: p.name):
        by_file: dict[str, list[Hole]] = {}
        for hole in package_holes(package):
            by_file.setdefault(hole.file, []).append(hole)
        kept = [h for file in sorted(by_file) for h in rng.sample(by_file[file], min(PER_FILE, len(by_file[file])))]
        pool += rng.sample(sorted(kept), min(PER_PACKAGE, len(kept)))
    return sorted(rng.sample(sorted(pool), min(holes, len(pool))))


def held_out(holes: int) -> tuple[list, str]:
    """The bench split's packages, with the valid split's when bench has fewer than `holes` holes."""
    from coda_train.corpus import installed_packages, split_of, stdlib_packages

    every = stdlib_packages() + installed_packages()
    bench = [p for p in every if split_of(p.name) == "bench"]
    if len(crossfile_holes(bench, holes)) >= holes:
        return bench, "bench"
    return bench + [p for p in every if split_of(p.name) == "valid"], "bench+valid"
