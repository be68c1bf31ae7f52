"""What a file imports: the files its import statements may name, for the languages with a grammar.

The import statements come from the syntax tree's top-level statements (so an import in a string
or a comment is not one, nor one inside a function); each module is then resolved to the places
the language's tools would look for it: Python, beside the file and under each workspace folder
(relative imports from the file's own package); JavaScript and TypeScript, a relative specifier
with each of their file suffixes. Go and Rust name packages and crates, which need their build
files to resolve; they get no imported files.

Nothing here touches the disk: most candidates do not exist, and coda_lsp.project keeps those that
do inside the workspace folders, and reads them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from .trees import node_text, parse

# A file larger than this is generated, vendored or minified: no snippets of it, nor its imports.
MAX_FILE_BYTES = 256 * 1024

_JS_SUFFIXES = ("", ".ts", ".tsx", ".js", ".jsx", ".mjs", "/index.ts", "/index.tsx", "/index.js")
_PY_FROM = re.compile(r"from\s+(\.*)([\w.]*)\s+import\s+\(?([^)]*)\)?", re.S)
_PY_IMPORT = re.compile(r"import\s+(.+)", re.S)
_DOTTED = re.compile(r"\w+(?:\.\w+)*")  # a module's name: never a path


def import_statements(language_id: str, source: str) -> tuple[str, ...]:
    """The module's import statements, as text (JavaScript: the module specifier), in order."""
    if language_id not in ("python", "javascript", "javascriptreact", "typescript", "typescriptreact"):
        return ()
    data = source[:MAX_FILE_BYTES].encode("utf-8", "surrogatepass")
    tree = parse(data, language_id)
    if tree is None:
        return ()
    if language_id == "python":
        return tuple(node_text(node, data) for node in _import_nodes(tree.root_node))
    specifiers = (node.child_by_field_name("source") for node in _import_nodes(tree.root_node))
    return tuple(node_text(spec, data).strip("'\"`") for spec in specifiers if spec is not None)


def candidate_paths(path: Path, language_id: str, statements, roots: list[Path]) -> Iterator[Path]:
    """The places the modules of `statements` may be, in import order, each once; most do not exist."""
    seen: set[Path] = set()
    for statement in statements:
        for candidate in _python(path, statement, roots) if language_id == "python" else _javascript(path, statement):
            if candidate not in seen:
                seen.add(candidate)
                yield candidate


def imported_paths(path: Path | None, language_id: str, source: str, roots: list[Path]) -> Iterator[Path]:
    """Candidate files for the imports of `source` (at `path`)."""
    if path is not None:
        yield from candidate_paths(path, language_id, import_statements(language_id, source), roots)


_IMPORTS = {"import_statement", "import_from_statement", "future_import_statement"}
_BODIES = {"function_definition", "class_definition", "decorated_definition", "function_declaration",
           "class_declaration", "method_definition", "arrow_function", "lexical_declaration", "expression_statement"}


def _import_nodes(root):
    """The module's import statements, in order, also inside top-level `try`, `if` and `with`
    (`try: import x except ImportError: ...`), never inside a function or class."""
    stack = list(reversed(root.children))
    while stack:
        node = stack.pop()
        if node.type in _IMPORTS:
            yield node
        elif node.type not in _BODIES and node.child_count:
            stack.extend(reversed(node.children))


def _module_files(base: Path, dotted: str) -> list[Path]:
    folder = base.joinpath(*dotted.split(".")) if dotted else base
    return [folder.with_suffix(".py"), folder / "__init__.py"] if dotted else [folder / "__init__.py"]


def _python(path: Path, statement: str, roots: list[Path]) -> list[Path]:
    match = _PY_FROM.match(statement)
    if match:
        dots, module, names = match.groups()
        if dots:  # relative: from the file's own package, one folder up per extra dot
            if len(dots) - 1 >= len(path.parent.parents):
                return []
            bases = [path.parent.parents[len(dots) - 2] if len(dots) > 1 else path.parent]
        else:
            bases = [path.parent, *roots]
        out = []
        for base in bases:
            out += _module_files(base, module) if module else []  # `from . import x` imports x
            for name in re.findall(r"(\w+)(?:\s+as\s+\w+)?", names):  # `from pkg import module`
                out += _module_files(base, f"{module}.{name}" if module else name)
        return out
    match = _PY_IMPORT.match(statement)
    modules = [m.split(" as ")[0].strip() for m in match.group(1).split(",")] if match else []
    return [p for m in modules if _DOTTED.fullmatch(m) for base in (path.parent, *roots)
            for p in _module_files(base, m)]


def _javascript(path: Path, spec: str) -> list[Path]:
    if not spec.startswith("."):  # a package from node_modules: not the project's code
        return []
    target = path.parent / spec
    return [Path(os.path.normpath(f"{target}{suffix}")) for suffix in _JS_SUFFIXES]
