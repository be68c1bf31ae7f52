"""`coda train pipeline PIPELINE.yaml`: build the data, then pre-train -> mid-train -> SFT.

    out: runs/tiny-cpu                  # relative to the working directory
    corpus: {max_chars_per_package: 6000000}   # optional: `coda train corpus` into <out>/corpus
    tokenizer: null                     # default: the bundled Qwen3 tokenizer; a path (relative to
                                        # this file), or {vocab_size: 8192}: a BPE trained on
                                        # <out>/corpus into <out>/tokenizer
    data:                               # prepared once into <out>/data/<name>
      code: {src: [../../coda_core], languages: [python], seq_len: 128}   # workers: N or auto (processes)
      chat: {src: ["{out}/corpus/sft.jsonl"], seq_len: 192}   # {out}: the pipeline's out
    from: null                          # optional: a model (folder or name) the first stage starts from,
                                        # e.g. an earlier run's shipped model; its tokenizer replaces
                                        # `tokenizer`, so the data is prepared with the ids it knows
    stages:                             # in order; each starts from the previous stage's export
      - {recipe: tiny-pretrain.yaml, data: code, valid: code-valid}   # valid: held-out data (optional)
      # name: the stage's folder under <out> (default: its recipe's stage), for two stages of one kind
      - {recipe: tiny-midtrain.yaml, data: code}
      - {recipe: tiny-sft.yaml, data: chat}

Input paths are relative to the pipeline file, stage recipes' to theirs
(`from` given on the command line, `coda train pipeline --from MODEL`, to the
working directory). A run that starts `from` a model records it in
<out>/from.json, and `coda train ship` carries that model's training summary
into the new one: short runs continued one from another add up.
Every step whose output exists is skipped, so a rerun after a failure
carries on: the corpus, the tokenizer, prepared data, and a stage whose
export exists; a stage with checkpoints but no export resumes from its
newest one.
"""

from __future__ import annotations

import json
from pathlib import Path

from coda_core.bundled import is_bundled
from coda_core.tokenizer import BUNDLED_TOKENIZER, load_tokenizer

from .data import MANIFEST, DataError
from .prepare import prepare, resolve_workers
from .recipe import RecipeError, load_recipe, read_yaml
from .trainer import run_recipe

KEYS = {"out", "corpus", "tokenizer", "data", "stages", "from"}
STAGES_FILE = "stages.json"  # <out>/stages.json: the stage folders, in the order they ran
FROM_FILE = "from.json"  # <out>/from.json: the model the first stage started from, when one did
CORPUS_KEYS = {"max_chars_per_package", "max_sft", "decontaminate"}
TOKENIZER_KEYS = {"vocab_size", "max_chars"}
DATA_KEYS = {"src", "languages", "seq_len", "seed", "workers"}
STAGE_KEYS = {"recipe", "data", "valid", "name", "set"}


def _check_keys(values: dict, known: set[str], where: str, prefix: str = "") -> None:
    if not isinstance(values, dict):
        raise RecipeError(f"{where}: {prefix.rstrip('.') or 'the pipeline'} must be a mapping")
    for key in values:
        if key not in known:
            raise RecipeError(f"{where}: unknown key {prefix + key!r}; known: {', '.join(sorted(known))}")


def load_pipeline(path: str | Path) -> dict:
    path = Path(path)
    spec = read_yaml(path, "pipeline")
    _check_keys(spec, KEYS, str(path))
    for name, data in spec.get("data", {}).items():
        _check_keys(data, DATA_KEYS, str(path), f"data.{name}.")
        if not data.get("src"):
            raise RecipeError(f"{path}: data.{name}.src is empty")
        try:
            resolve_workers(data.get("workers", 1))
        except DataError as exc:
            raise RecipeError(f"{path}: data.{name}.{exc}") from None
    if spec.get("corpus") is not None:
        _check_keys(spec["corpus"], CORPUS_KEYS, str(path), "corpus.")
    if isinstance(spec.get("tokenizer"), dict):
        _check_keys(spec["tokenizer"], TOKENIZER_KEYS, str(path), "tokenizer.")
        if spec.get("corpus") is None:
            raise RecipeError(f"{path}: a tokenizer trained by the pipeline ({{vocab_size: ...}}) needs a corpus")
    if not spec.get("stages"):
        raise RecipeError(f"{path}: no stages")
    folders = [stage.get("name") or load_recipe(path.parent / stage["recipe"]).stage
               for stage in spec["stages"] if isinstance(stage, dict) and "recipe" in stage]
    if len(set(folders)) < len(folders):
        raise RecipeError(f"{path}: two stages would share one folder under out; give one a `name`")
    for i, stage in enumerate(spec["stages"]):
        _check_keys(stage, STAGE_KEYS, str(path), f"stages[{i}].")
        if "recipe" not in stage:
            raise RecipeError(f"{path}: stages[{i}] names no recipe")
        for key in ("data", "valid"):
            if (key == "data" or key in stage) and stage.get(key) not in spec.get("data", {}):
                raise RecipeError(f"{path}: stages[{i}].{key} {stage.get(key)!r} is not one of data: "
                                  f"{', '.join(spec.get('data', {}))}")
    return spec


def _tokenizer_dir(spec: dict, here: Path, out_dir: Path, start: Path | None, progress: bool) -> str:
    """The pipeline's tokenizer folder, building the corpus and training the BPE first when asked;
    a run that continues a model uses that model's."""
    if spec.get("corpus") is not None and not (out_dir / "corpus" / "manifest.json").exists():
        from .corpus import build_corpus

        build_corpus(out_dir / "corpus", progress=progress, **spec["corpus"])
    if start is not None:
        return str(start)
    tokenizer = spec.get("tokenizer")
    if isinstance(tokenizer, dict):
        target = out_dir / "tokenizer"
        if not (target / "tokenizer.json").exists():
            from .tokenizer import build_tokenizer

            build_tokenizer(out_dir / "corpus", target, **tokenizer)
        return str(target)
    return str(here / tokenizer) if tokenizer else str(BUNDLED_TOKENIZER)


def _start_model(spec: dict, here: Path, start: str | None) -> Path | None:
    """The model folder the first stage starts from (`--from`, else the pipeline's `from`), or None."""
    from coda_core.loading import resolve_model_dir

    if start is None and spec.get("from") is None:
        return None
    name = start if start is not None else spec["from"]
    if start is None and not is_bundled(name):
        name = here / name
    folder = resolve_model_dir(name, weights=False).resolve()
    if not (folder / "tokenizer.json").is_file():
        raise RecipeError(f"{folder} has no tokenizer.json; a run continues a model with its own tokenizer")
    return folder


def run_pipeline(path: str | Path, out: str | None = None, start: str | None = None,
                 progress: bool = True) -> list[dict]:
    """Run the pipeline at `path` into `out` (default: its own); `start`: a model to continue from."""
    path = Path(path)
    spec = load_pipeline(path)
    here = path.parent
    out_dir = Path(out or spec.get("out", "runs/pipeline"))
    start_dir = _start_model(spec, here, start)
    tokenizer_dir = _tokenizer_dir(spec, here, out_dir, start_dir, progress)

    def source(src: str) -> str:
        return src.replace("{out}", str(out_dir)) if src.startswith("{out}") else str(here / src)

    prepared = {}
    for name, data in spec["data"].items():
        target = out_dir / "data" / name
        if not (target / MANIFEST).exists():
            prepare([source(src) for src in data["src"]], load_tokenizer(tokenizer_dir), target,
                    seq_len=int(data.get("seq_len", 1024)), seed=int(data.get("seed", 0)),
                    languages=set(data["languages"]) if data.get("languages") else None,
                    workers=data.get("workers", 1), progress=progress)
        prepared[name] = target.resolve()

    summaries, previous, names = [], None, []
    for stage in spec["stages"]:
        recipe_path = here / stage["recipe"]
        overrides = [f"data.train={prepared[stage['data']]}", f"model.tokenizer={Path(tokenizer_dir).resolve()}"]
        if stage.get("valid"):
            overrides.append(f"data.valid={prepared[stage['valid']]}")
        recipe = load_recipe(recipe_path, overrides + list(stage.get("set", [])))
        recipe.out = str(out_dir / stage.get("name", recipe.stage))
        # The stages' folders in order, for `coda train ship` (which reports each and ships the last).
        names.append(Path(recipe.out).name)
        (out_dir / STAGES_FILE).write_text(json.dumps(names) + "\n")
        if previous is None and start_dir is not None:  # continue the given model
            previous = start_dir
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / FROM_FILE).write_text(json.dumps({"model": str(start_dir)}) + "\n")
        if previous is not None:  # start from the previous stage's export
            recipe.model.init, recipe.model.path = "checkpoint", str(Path(previous).resolve())
            recipe.model.tokenizer = None
        export = Path(recipe.out) / "export"
        if (export / "config.json").exists():
            summaries.append({"stage": stage.get("name", recipe.stage), "skipped": "already exported",
                              "export": str(export)})
        else:
            summaries.append({"name": stage.get("name", recipe.stage),
                              **run_recipe(recipe.validate(), resume=True, progress=progress)})
        previous = export
    return summaries
