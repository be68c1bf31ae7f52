"""The import graph: coda_core at the bottom, the apps above it, the `coda` command on top.

Read from the source with ast (nothing is imported), so a lazy import inside a
function counts as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# package -> its folder; coda_train installs from train/ (pyproject's package-dir)
PACKAGES = {"coda_core": "coda_core", "coda_lsp": "coda_lsp", "coda_eval": "coda_eval", "coda_train": "train",
            "coda_cli": "coda_cli"}
# what each package may import of the others: the apps stand on coda_core alone, and only the
# `coda` command sees them all
ALLOWED = {
    "coda_core": set(),
    "coda_lsp": {"coda_core"},
    "coda_eval": {"coda_core"},
    "coda_train": {"coda_core"},
    "coda_cli": {"coda_core", "coda_lsp", "coda_eval", "coda_train"},
}


def imported_packages(path: Path, package: str) -> set[str]:
    """Top-level project packages that the module at `path` (inside `package`) imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add(package if node.level else (node.module or "").split(".")[0])
    # `train` is the folder's name, never an import name: importing it picks up whatever
    # `train` a user's environment has first on sys.path
    return {name for name in found if name in PACKAGES or name == "train"} - {package}


def module_imports() -> dict[tuple[str, str], set[str]]:
    return {(package, str(path.relative_to(ROOT))): imported_packages(path, package)
            for package, folder in PACKAGES.items() for path in sorted((ROOT / folder).rglob("*.py"))}


@pytest.mark.parametrize("package", PACKAGES)
def test_packages_import_only_the_layers_below(package):
    wrong = {module: sorted(names - ALLOWED[package])
             for (owner, module), names in module_imports().items() if owner == package and names - ALLOWED[package]}
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package]) or 'nothing of ours'}: {wrong}"


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from coda_lsp.engine import Engine\n    import train.cli\n")
    assert imported_packages(module, "coda_core") == {"coda_lsp", "train"}


def test_tests_import_the_training_package_by_its_installed_name():
    offenders = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "tests").glob("*.py"))
                 if "train" in imported_packages(p, "tests")]
    assert not offenders


def test_the_language_server_owns_its_protocol():
    """coda_lsp speaks LSP through lsprotocol's types and its own message loop (coda_lsp.protocol):
    no pygls, whose fixes for a hostile client had to reach into its privates. pygls is the client
    library of `coda bench lsp`, the demo and the tests."""
    users = []
    for path in sorted((ROOT / "coda_lsp").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            users += [str(path.relative_to(ROOT)) for name in names if name.split(".")[0] == "pygls"]
    assert not users, f"coda_lsp imports pygls in {users}"
