"""Finding and loading CoDA checkpoints, safely.

`load_model` opens a local model directory or a hub repository id. It reads
safetensors only (never pickle, never remote code) and checks every tensor's
name and shape against the architecture before anything is assigned, so a bad
checkpoint fails with one clear `CheckpointError` instead of a half-loaded
model. Qwen3 autoregressive checkpoints load too: same keys, and a tied
Qwen3 head is copied into CoDA's untied `lm_head`. A bundled model's name
(`coda-mini`, see `coda_core.bundled`) opens the folder that ships in the package.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from .atomic import atomic_directory
from .bundled import bundled_model_dir, is_bundled
from .choices import DTYPE_NAMES
from .config import CoDAConfig, load_config
from .errors import CheckpointError, DeviceError, ModelNotFoundError, UnsafeCheckpointError
from .hub import DownloadProgress, is_repo_id, snapshot
from .model import CoDALanguageModel
from . import kernels
from .quantize import check_quantize, pack, prepare, quantize_state

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
INDEX_FILE = "model.safetensors.index.json"
# Non-weight tensors some exporters include; recomputed from the config here.
IGNORED_KEYS = re.compile(r".*rotary_emb\.inv_freq$")

DTYPES = {name: getattr(torch, torch_name) for name, torch_name in DTYPE_NAMES.items()}  # "auto" aside


def default_dtype(device: torch.device, config: CoDAConfig | None = None) -> torch.dtype:
    """The float dtype "auto" means: on a GPU bf16 (fp16 without bf16 support); on a CPU bf16 only where
    it is measured faster than fp32 on `config`'s linear layers (a 2,048-square layer without one), since
    a CPU without AMX or AVX512-BF16 emulates it several times slower (coda_core.kernels)."""
    return kernels.plan(config or kernels.SQUARE, device, None, "none").dtype


def resolve_dtype(dtype: str | torch.dtype, device: str | torch.device,
                  config: CoDAConfig | None = None) -> torch.dtype:
    """A torch dtype from a name ("bfloat16", "fp32", ...) or "auto" (see default_dtype)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return default_dtype(torch.device(device), config)
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose auto or one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device `device` names ("auto": CUDA when available, else the CPU); a DeviceError
    when it is unknown or not on this machine."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise DeviceError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto") from None
    if device.type == "cuda":
        if not torch.backends.cuda.is_built():
            raise DeviceError(f"device {device} asked for, but this torch build has no CUDA (torch {torch.__version__}); "
                              "use cpu or auto, or install a CUDA build of torch")
        count = torch.cuda.device_count()
        if count == 0:
            raise DeviceError(f"device {device} asked for, but CUDA finds no GPU on this machine; use cpu or auto")
        if device.index is not None and device.index >= count:
            raise DeviceError(f"device {device} asked for, but this machine has {count} GPU(s): cuda:0"
                              + (f" to cuda:{count - 1}" if count > 1 else ""))
    return device


def resolve_model_dir(name_or_path: str | os.PathLike, *, weights: bool = True,
                      on_progress: DownloadProgress | None = None) -> Path:
    """A local directory for `name_or_path`: a bundled model, the path itself, or a hub snapshot.

    A bundled model's bare name (the string "coda-mini") is the folder shipped
    in the package, even when the working directory holds a folder of that
    name; write ./coda-mini (or pass a Path) for that one. It never touches the
    network, and a bundled folder that is missing or has no weights is a
    ModelNotFoundError (a broken install).

    A hub repo id (`org/name`) is looked up in the local Hugging Face cache
    first and downloaded only when it is missing and the hub is reachable
    (coda_core.hub; `on_progress(done_bytes, total_bytes)` follows the
    download); the user asked for a hub model, so that download is theirs.
    With `weights=False` only config and tokenizer files are fetched.
    """
    if is_bundled(name_or_path):
        return bundled_model_dir(name_or_path)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelNotFoundError(f"{path} is a file; pass the model directory that holds config.json")
    name = hub_id(name_or_path)
    if name is None:
        raise ModelNotFoundError(f"model directory {path} does not exist")
    return snapshot(name, weights=weights, on_progress=on_progress)


def hub_id(name_or_path: str | os.PathLike) -> str | None:
    """`name_or_path` when it names a hub model (`org/name`, and no bundled model or local path), else None."""
    path = Path(name_or_path).expanduser()
    if is_bundled(name_or_path) or path.exists():
        return None
    # A name whose parent is an existing directory is a mistyped local path, not a hub id.
    return str(name_or_path) if is_repo_id(str(name_or_path)) and not path.parent.is_dir() else None


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint: from the shard index, or the lone file(s)."""
    index = model_dir / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index} is not a valid shard index: {exc!r}") from None
        files = [model_dir / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{index} names shard(s) that do not exist: {', '.join(missing)}")
        return files
    files = sorted(model_dir.glob("*.safetensors"))
    if files:
        return files
    pickles = sorted(f.name for f in model_dir.iterdir() if f.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeCheckpointError(
            f"{model_dir} has only pickle-based weights ({', '.join(pickles)}). Loading pickle can run "
            f"arbitrary code, so coda reads safetensors only; convert the checkpoint to safetensors first.")
    raise CheckpointError(f"{model_dir} has no weights (*.safetensors)")


def read_state_dict(files: list[Path], expected: dict[str, torch.Size], dtype: torch.dtype,
                    device: torch.device, convert=None) -> dict[str, torch.Tensor]:
    """Read every tensor in `files`, checking names and shapes against `expected`.

    Each tensor is cast to `dtype`, or, when `convert(key, tensor)` is given and returns entries for it
    (a quantized weight's packed form and scales), replaced by those as soon as it is read.
    """
    state: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    for file in files:
        try:
            with safe_open(file, framework="pt", device=str(device)) as reader:
                for key in reader.keys():
                    if IGNORED_KEYS.match(key):
                        continue
                    if key not in expected:
                        unexpected.append(key)
                        continue
                    shape = torch.Size(reader.get_slice(key).get_shape())
                    if shape != expected[key]:
                        raise CheckpointError(f"{file.name}: tensor {key} has shape {tuple(shape)}, "
                                              f"the config expects {tuple(expected[key])}")
                    tensor = reader.get_tensor(key)
                    state.update((convert and convert(key, tensor)) or {key: tensor.to(dtype)})
        except SafetensorError as exc:
            raise CheckpointError(f"{file} is not a readable safetensors file: {exc}") from None
    if unexpected:
        raise CheckpointError(f"checkpoint has tensors this architecture does not use: {', '.join(unexpected[:5])}"
                              + (f" (+{len(unexpected) - 5} more)" if len(unexpected) > 5 else ""))
    return state


def load_model(name_or_path: str | os.PathLike, device: str | torch.device = "cpu",
               dtype: str | torch.dtype = "auto", quantize: str | None = None,
               on_progress: DownloadProgress | None = None, plan: kernels.Plan | None = None) -> CoDALanguageModel:
    """Open a CoDA (or Qwen3) checkpoint as a CoDALanguageModel in eval mode.

    name_or_path: a bundled model's name, a model directory or a hub repo id (see resolve_model_dir).
    device: "cpu", "cuda", "cuda:1", ... or "auto" (CUDA when available).
    dtype: a dtype or its name, or "auto": on a CPU, measured (coda_core.kernels).
    quantize: "none" (or None) or "int8": int8 linear layers (coda_core.quantize) wherever int8 is
        measured faster here, each weight quantized as it is read.
    on_progress: follows a hub model's download, as (bytes done, bytes in all); see coda_core.hub.
    plan: what to build, instead of measuring (kernels.choose makes one from given timings).
    The model's `kernel_plan` says what was chosen (`model.kernel_plan.describe()`).
    """
    device = resolve_device(device)
    fixed = None if dtype == "auto" else resolve_dtype(dtype, device)
    quantize = check_quantize(quantize)
    model_dir = resolve_model_dir(name_or_path, on_progress=on_progress)
    config = load_config(model_dir)
    files = weight_files(model_dir)
    plan = plan or kernels.plan(config, device, fixed, quantize)
    dtype = plan.dtype

    with torch.device("meta"):
        model = CoDALanguageModel(config)
    expected = {name: t.shape for name, t in model.state_dict().items()}
    quantized = prepare(model, set(plan.int8))
    convert = lambda key, tensor: quantize_state(key, tensor) if key in quantized else None
    state = read_state_dict(files, expected, dtype, device, convert)
    if "lm_head.weight" not in state and "model.embed_tokens.weight" in state:
        # A tied Qwen3 checkpoint stores only the embeddings; CoDA's head starts as their copy.
        head = state["model.embed_tokens.weight"]
        state.update(convert("lm_head.weight", head) or {"lm_head.weight": head.clone()})
    missing = sorted(set(expected) - set(state))
    if missing:
        raise CheckpointError(f"{model_dir}: checkpoint lacks tensor(s) {', '.join(missing[:5])}"
                              + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""))
    model.load_state_dict(state, assign=True)
    del state
    pack(model)
    model.config.dtype = dtype
    model.kernel_plan = plan
    return model.eval()


def meta_model(config: CoDAConfig) -> CoDALanguageModel:
    """The architecture without weights: for counting parameters and planning memory."""
    with torch.device("meta"):
        return CoDALanguageModel(config)


def save_model_dir(model: CoDALanguageModel, tokenizer, out: str | os.PathLike, max_shard_size: str = "2GB") -> Path:
    """Write config, sharded safetensors and tokenizer to `out`, which appears whole or not at all.
    `out` must not hold files."""
    with atomic_directory(out) as tmp:
        model.save_pretrained(tmp, max_shard_size=max_shard_size, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(out)
