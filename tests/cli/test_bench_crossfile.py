"""coda bench crossfile: which lines become cross-file holes (coda_cli.crossfile_holes), the retrieval
study, and a run with a tiny model through the CLI."""

import pytest

from coda_cli import crossfile_holes as holes_module
from coda_cli.bench_crossfile import bench_crossfile, crossfile_holes, format_crossfile, retrieval
from coda_train.corpus import Package

CORE = '''\
"""Core: the names the other files use."""

threshold = 5
MAX = 3


def compute_total(values):
    return sum(values)


def setup_logging():
    return None


class Registry:
    def __init__(self):
        self.items = {}
'''

UTIL = '''\
def setup_logging():
    return "also here: ambiguous"
'''

APP = '''\
from pkg.core import MAX, Registry, compute_total, setup_logging, threshold

DEFAULT = compute_total([1, 2, 3])


def local_helper(values):
    return [v * 2 for v in values]


def run(values):
    """Uses compute_total(values) in a docstring."""
    doubled = local_helper(values)
    total = compute_total(doubled)
    registry = Registry()
    # compute_total(values) in a comment
    text = "compute_total(values) in a string"
    setup_logging()
    head = values[:MAX]
    from pkg.core import Registry as Reg
    result = compute_total(
        values)
    again = compute_total(values); other = 1
    if compute_total(values) > 3:
        pass
    return total, registry, text, head, Reg, result, again, other


def check(threshold):
    return threshold > 3


class Runner:
    def go(self, values):
        value = self.compute_total(values)
        return compute_total(values) + value
'''

CLI = '''\
from pkg import core
from pkg.core import Registry


def main(values, name):
    count = core.compute_total(values)
    found = Registry().items.get(name)
    return count, found
'''

# (file, line, identifier) of every line that uses a name another file defines, and nothing else
EXPECTED = {
    ("app.py", 13, "compute_total"),  # total = compute_total(doubled)
    ("app.py", 14, "Registry"),  # registry = Registry()
    ("app.py", 35, "compute_total"),  # return compute_total(values) + value
    ("cli.py", 6, "compute_total"),  # count = core.compute_total(values): an imported module's attribute
    ("cli.py", 7, "Registry"),
}


@pytest.fixture
def package(tmp_path) -> Package:
    folder = tmp_path / "pkg"
    folder.mkdir()
    files = {"__init__.py": "", "core.py": CORE, "util.py": UTIL, "app.py": APP, "cli.py": CLI}
    for name, text in files.items():
        (folder / name).write_text(text)
    return Package("dist/pkg", "MIT", True, [folder / name for name in files])


def _found(holes) -> set:
    return {(h.file.rsplit("/", 1)[-1], h.line, h.identifier) for h in holes}


def test_holes_are_the_lines_that_use_another_files_names(package, tmp_path, monkeypatch):
    monkeypatch.setattr(holes_module, "PER_FILE", 100)  # every hole, so a wrong one cannot hide behind the cap
    holes = crossfile_holes([package], holes=100, seed=0)
    assert _found(holes) == EXPECTED
    assert all(h.defined_in == str(tmp_path / "pkg" / "core.py") for h in holes)
    assert all(h.root == str(tmp_path) for h in holes)  # where `from pkg.core import ...` resolves
    assert holes == sorted(holes)


def test_a_hole_is_the_line_after_its_indentation(package):
    hole = next(h for h in crossfile_holes([package]) if h.line == 13)
    text = (package.files[3]).read_text()
    assert hole.target == "total = compute_total(doubled)"
    assert hole.prefix.endswith('local_helper(values)\n    ')
    assert hole.suffix.startswith("    registry = Registry()\n")
    assert hole.prefix + hole.target + "\n" + hole.suffix == text


def test_sampling_is_deterministic_and_follows_the_seed(package):
    assert crossfile_holes([package], holes=3, seed=7) == crossfile_holes([package], holes=3, seed=7)
    picks = {tuple(_found(crossfile_holes([package], holes=3, seed=seed))) for seed in range(10)}
    assert len(picks) > 1
    assert all(len(p) == 3 and set(p) <= EXPECTED for p in picks)


def test_bench_crossfile_with_a_tiny_model(package, tiny_model_dir):
    result = bench_crossfile([str(tiny_model_dir)], holes=2, seed=0, packages=[package])
    assert result["holes"] == 2 and result["packages"] == 1 and result["split"] == "given"
    runs = result["models"][str(tiny_model_dir)]
    keys = {"exact", "prefix_match", "identifier", "answered", "context_tokens_median",
            "with_snippet_of_defining_file", "ms_median"}
    assert set(runs) == {"off", "on"} and set(runs["off"]) == keys and set(runs["on"]) == keys
    assert runs["off"]["context_tokens_median"] == 0 and runs["off"]["with_snippet_of_defining_file"] == 0
    assert runs["on"]["context_tokens_median"] > 0  # the imported core.py was read and given
    assert runs["on"]["with_snippet_of_defining_file"] == 1.0
    table = format_crossfile(result)
    assert table.count(str(tiny_model_dir)) == 2


def test_retrieval_finds_the_definitions_the_holes_need(package, monkeypatch):
    monkeypatch.setattr(holes_module, "PER_FILE", 100)
    holes = crossfile_holes([package], holes=100, seed=0)
    found = retrieval(holes, [package])
    assert found["budget"] == 512
    # every hole's file imports core.py (app.py by name, cli.py as `from pkg import core`), and the
    # names used around the cursor put their definitions first
    assert found["imports jaccard definitions first"] == found["imports bm25 definitions first"] == 1.0
    assert found["tabs jaccard definitions first"] == 1.0
    assert all(0.0 <= found[f"{source} {measure}"] <= 1.0 for source in ("imports", "tabs")
               for measure in ("jaccard", "bm25"))
