"""The completion filters of coda_lsp.postprocess, one golden case a file.

Each tests/lsp/fixtures/postprocess/<filter>-<what>.toml names the filter, its
arguments, its input and the output expected; the README there says how to add
one. Every public function of coda_lsp.postprocess must have a case.
"""

import inspect
from pathlib import Path

import pytest

from coda_lsp import postprocess

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest depends on tomli there
    import tomli as tomllib

CASES = sorted((Path(__file__).parent / "fixtures" / "postprocess").glob("*.toml"))


def load(path: Path) -> dict:
    with path.open("rb") as f:  # binary: TOML's own reading of line breaks, not the platform's
        return tomllib.load(f)


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_golden_case(path: Path):
    case = load(path)
    name, text, expected = case.pop("filter"), case.pop("input"), case.pop("expected")
    assert path.stem.startswith(f"{name}-"), "a case's file name starts with the filter it checks"
    assert getattr(postprocess, name)(text, **case) == expected


def test_every_filter_has_a_golden_case():
    filters = {name for name, function in inspect.getmembers(postprocess, inspect.isfunction)
               if function.__module__ == postprocess.__name__ and not name.startswith("_")}
    assert filters == {load(path)["filter"] for path in CASES}
