"""The `coda` command line contracts: info, init-model, bench forward, help, error handling."""

import json
import math

import pytest

from helpers import CODA, coda


def test_console_script_is_installed():
    assert CODA.is_file(), "the `coda` console script is declared in pyproject.toml"


def test_info_json_on_the_release_config(coda_v0_dir):
    result = coda("info", coda_v0_dir, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["parameters"] == 2031739904
    assert info["special_ids"] == {"mask": 151669, "pad": 151643, "eos": 151645}
    assert info["dtype"] == "float32"
    assert info["architecture"]["layers"] == 28
    assert info["memory"]["weights_bytes_bf16"] == 2 * 2031739904


def test_info_text_without_tokenizer(coda_v0_dir, tmp_path):
    (tmp_path / "config.json").write_bytes((coda_v0_dir / "config.json").read_bytes())
    result = coda("info", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2,031,739,904" in result.stdout
    assert "mask 151669, pad 151643" in result.stdout


def test_init_model_then_load(tmp_path):
    out = tmp_path / "tiny"
    result = coda("init-model", "--preset", "tiny", "--out", out, "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    info = json.loads(coda("info", out, "--json").stdout)
    assert info["special_ids"] == {"mask": 151669, "pad": 151643, "eos": 151645}
    # same seed, same weights; another seed, other weights
    again = tmp_path / "again"
    other = tmp_path / "other"
    assert coda("init-model", "--preset", "tiny", "--out", again, "--seed", "7").returncode == 0
    assert coda("init-model", "--preset", "tiny", "--out", other, "--seed", "8").returncode == 0
    assert (out / "model.safetensors").read_bytes() == (again / "model.safetensors").read_bytes()
    assert (out / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()


def test_init_model_refuses_a_non_empty_out(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = coda("init-model", "--preset", "tiny", "--out", tmp_path)
    assert result.returncode == 2
    assert "already exists and is not empty" in result.stderr
    assert (tmp_path / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize("args, message", [
    (["info", "/no/such/model"], "does not exist"),
    (["info", "Salesforce/CoDA-v0-Instruct"], "hf download Salesforce/CoDA-v0-Instruct"),
    # every subcommand keeps the same contract, whichever package runs it
    (["eval", "compare", "/no/a.jsonl", "/no/b.jsonl"], "/no/a.jsonl"),
    (["eval", "humaneval", "--model", "/no/such/model", "--out", "{tmp}/eval"], "does not exist"),
    (["train", "run", "/no/such/recipe.yaml"], "cannot read recipe /no/such/recipe.yaml"),
    (["train", "export", "/no/such/checkpoint", "--out", "{tmp}/export"], "/no/such/checkpoint"),
    (["bench", "sample", "--model", "/no/such/model", "--holes", "1"], "does not exist"),
    (["bench", "lsp", "--model", "/no/such/model"], "/no/such/model"),
])
def test_errors_are_one_line_without_traceback(args, message, tmp_path):
    result = coda(*(arg.format(tmp=tmp_path) for arg in args), env={"HF_HOME": str(tmp_path / "hf")})
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("coda: error: ")


# `coda eval` and `coda train` parse their own arguments: their help must come from their own parsers,
# asked first (`coda train --help`) or after a subcommand (`coda train run --help`).
TRAIN_COMMANDS = ["prepare", "corpus", "tokenizer", "run", "bench", "export", "pipeline", "ship"]


def listed(*names: str) -> list[str]:
    """How argparse lists subcommands: each at the start of a line, indented by four spaces."""
    return [f"\n    {name}" for name in names]


@pytest.mark.parametrize("argv, wanted", [
    ("train --help", ["usage: coda train ", *listed(*TRAIN_COMMANDS)]),
    ("train -h", ["usage: coda train ", *listed(*TRAIN_COMMANDS)]),
    ("eval --help", ["usage: coda eval ", "coda eval check TASK", "coda eval compare A.jsonl B.jsonl"]),
    ("train run --help", ["usage: coda train run ", "--dry-run"]),
    ("eval check --help", ["usage: coda eval check ", "--solutions"]),
    ("eval compare --help", ["usage: coda eval compare "]),
    ("--help", ["usage: coda ", *listed("eval", "train", "bench")]),
])
def test_help_lists_each_commands_own_subcommands(argv, wanted, capsys):
    from coda_cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv.split())
    out, err = capsys.readouterr()
    assert exited.value.code == 0, err
    assert [text for text in wanted if text not in out] == [], out


def test_help_of_train_and_eval_exits_0_from_the_console_script():
    for command, subcommand in (("train", "pipeline"), ("eval", "coda eval compare")):
        result = coda(command, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: coda {command} ") and subcommand in result.stdout, result.stdout


def test_bench_forward_reports_the_contract_keys():
    # The real benchmark code on the tiny shape, so the suite stays fast; the
    # CoDA-v0 figures come from `coda bench forward` (see docs/PERFORMANCE.md).
    result = coda("bench", "forward", "--json", "--preset", "tiny", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert {"full_ms", "window_ms", "speedup"} <= figures.keys()
    assert figures["speedup"] == pytest.approx(figures["full_ms"] / figures["window_ms"], rel=0.01)


SOURCE = "import math\n\n\ndef area(r):\n    return \n\n\nprint(area(2))\n"


def test_infill_json(tiny_model_dir, tmp_path):
    path = tmp_path / "ex.py"
    path.write_text(SOURCE)
    result = coda("infill", f"{path}:5:12", "--model", tiny_model_dir, "--max-new-tokens", "8", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert {"text", "forwards", "tokens", "ms"} <= out.keys()
    assert isinstance(out["text"], str) and out["forwards"] >= 1 and out["tokens"] >= 1


def test_rewrite_prints_the_span(tiny_model_dir, tmp_path):
    path = tmp_path / "ex.py"
    path.write_text(SOURCE)
    result = coda("rewrite", f"{path}:4-5", "--model", tiny_model_dir, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["forwards"] >= 1


@pytest.mark.parametrize("target, message", [
    ("{path}:50:1", "line 50 is outside the file"),
    ("{path}:5:40", "column 40 is outside line 5"),
    ("{path}:5", "expected FILE:LINE:COL"),
    ("{missing}:1:1", "no such file"),
])
def test_infill_bad_positions(tiny_model_dir, tmp_path, target, message):
    path = tmp_path / "ex.py"
    path.write_text(SOURCE)
    result = coda("infill", target.format(path=path, missing=tmp_path / "gone.py"), "--model", tiny_model_dir)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_rewrite_bad_range(tiny_model_dir, tmp_path):
    path = tmp_path / "ex.py"
    path.write_text(SOURCE)
    result = coda("rewrite", f"{path}:5-4", "--model", tiny_model_dir)
    assert result.returncode == 2 and "not a range inside the file" in result.stderr


def test_split_at_positions():
    from coda_cli.main import split_at

    text = "ab\ncdé\n"
    assert split_at(text, 1, 1) == ("", text)
    assert split_at(text, 2, 3) == ("ab\ncd", "é\n")
    assert split_at(text, 2, 4) == ("ab\ncdé", "\n")
    assert split_at(text, 3, 1) == (text, "")


def test_bench_sample_contract_keys(tiny_model_dir):
    # The real benchmark code on the tiny shape and tiny model, so the suite stays fast.
    shape = coda("bench", "sample", "--json", "--preset", "tiny", "--steps", "2", "--prefix-tokens", "64",
                 "--suffix-tokens", "16")
    assert shape.returncode == 0, shape.stderr
    assert {"ref_step_ms", "fast_step_ms", "step_speedup", "prefill_ms"} <= json.loads(shape.stdout).keys()
    model = coda("bench", "sample", "--json", "--model", tiny_model_dir, "--holes", "2")
    assert model.returncode == 0, model.stderr
    figures = json.loads(model.stdout)
    assert {"tokens_per_forward", "wall_speedup", "agreement"} <= figures.keys()
    assert figures["holes"] == 2 and 0 <= figures["agreement"] <= 1
    for kind in ("fast", "ref"):  # an exact first line is a whole prefix: the share can only be larger
        assert figures[f"{kind}_line_exact"] <= figures[f"{kind}_prefix_match"] <= 1
    assert 0 <= figures["ends_hole"] <= 1 and 0 <= figures["ref_ends_hole"] <= 1


# -- the default model: $CODA_MODEL, else the bundled coda-mini -----------------------------------

def answer(result) -> tuple:
    """What a greedy infill decided, without its timings."""
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    return out["text"], [c["text"] for c in out["candidates"]], out["forwards"]


def test_info_coda_mini(coda_mini_dir):
    from safetensors import safe_open

    from coda_core.tokenizer import load_tokenizer

    result = coda("info", "coda-mini", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["path"] == str(coda_mini_dir) and info["tokenizer"] is True
    stored = 0  # every tensor in the weights: CoDA's head is untied, so lm_head is stored too
    for file in coda_mini_dir.glob("*.safetensors"):
        with safe_open(file, framework="pt") as reader:
            stored += sum(math.prod(reader.get_slice(key).get_shape()) for key in reader.keys())
    assert info["parameters"] == stored
    mask = load_tokenizer(coda_mini_dir).convert_tokens_to_ids("<|mask|>")
    ids = info["special_ids"]
    assert ids["mask"] == mask and len({ids["mask"], ids["pad"], ids["eos"]}) == 3
    # no MODEL at all: the default, described in text
    text = coda("info", default_model=True)
    assert text.returncode == 0, text.stderr
    assert str(coda_mini_dir) in text.stdout and f"{info['parameters']:,}" in text.stdout


def test_infill_without_a_model_uses_coda_mini(coda_mini_dir, tmp_path):
    path = tmp_path / "ex.py"
    path.write_text(SOURCE)
    default = coda("infill", f"{path}:5:12", "--max-new-tokens", "4", "--json", default_model=True)
    named = coda("infill", f"{path}:5:12", "--max-new-tokens", "4", "--json", "--model", coda_mini_dir)
    assert answer(default) == answer(named)


def test_infill_without_a_model_uses_coda_model(tiny_model_dir, tmp_path):
    path = tmp_path / "ex.py"
    path.write_text(SOURCE)
    default = coda("infill", f"{path}:5:12", "--max-new-tokens", "4", "--json", env={"CODA_MODEL": str(tiny_model_dir)})
    named = coda("infill", f"{path}:5:12", "--max-new-tokens", "4", "--json", "--model", tiny_model_dir)
    assert answer(default) == answer(named)


@pytest.mark.parametrize("args", [
    ["info"],
    ["infill", "{path}:5:12"],
    ["rewrite", "{path}:4-5"],
    ["eval", "humaneval", "--limit", "1", "--out", "{out}"],
    ["bench", "lsp"],
])
def test_every_model_command_defaults_to_coda_model(args, tmp_path):
    # A model that does not exist: each command must fail naming it, so each read $CODA_MODEL.
    path = tmp_path / "ex.py"
    path.write_text(SOURCE)
    missing = tmp_path / "no-such-model"
    result = coda(*[a.format(path=path, out=tmp_path / "run") for a in args], env={"CODA_MODEL": str(missing)})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("coda: error: ") and str(missing) in result.stderr
    assert "Traceback" not in result.stderr
