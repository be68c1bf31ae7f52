"""What `coda info` reports about a model directory, computed without loading weights.

`kernels` is what the loader would choose on this machine (coda_core.kernels): timed on the model's
layer shapes with random weights the first time, then read from the user's cache."""

from __future__ import annotations

import os

import torch

from .config import load_config
from .hub import download_size, weights_on_disk
from .loading import hub_id, meta_model, resolve_model_dir
from . import kernels
from .quantize import prepare, weight_bytes
from .tokenizer import find_special_ids, has_tokenizer, load_tokenizer


def model_info(name_or_path: str | os.PathLike) -> dict:
    """Architecture, parameter count, dtype, memory estimates, special ids, and whether the weights
    are on disk (with their size, or for a hub model not yet downloaded, the size to download).

    Works on a directory holding only config and tokenizer files: the
    parameters are counted on the meta device.
    """
    model_dir = resolve_model_dir(name_or_path, weights=False)
    on_disk = weights_on_disk(model_dir)
    repo = hub_id(name_or_path)
    config = load_config(model_dir)
    parameters = sum(p.numel() for p in meta_model(config).parameters())
    int8 = meta_model(config).to(torch.bfloat16)  # int8 linear layers, the rest in bf16 (coda_core.quantize)
    prepare(int8)
    tokenizer = load_tokenizer(model_dir) if has_tokenizer(model_dir) else None
    stored = config.dtype if isinstance(config.dtype, torch.dtype) else getattr(torch, str(config.dtype or "float32"))
    kv_bytes_per_token = 2 * config.num_hidden_layers * config.num_key_value_heads * config.head_dim * 2
    return {
        "path": str(model_dir),
        "model_type": config.model_type,
        "architecture": {
            "layers": config.num_hidden_layers,
            "hidden_size": config.hidden_size,
            "intermediate_size": config.intermediate_size,
            "attention_heads": config.num_attention_heads,
            "kv_heads": config.num_key_value_heads,
            "head_dim": config.head_dim,
            "vocab_size": config.vocab_size,
            "rope_theta": config.rope_parameters["rope_theta"],
            "tied_lm_head": bool(config.tie_word_embeddings),
            "attention": "bidirectional",
        },
        "parameters": parameters,
        "dtype": str(stored).removeprefix("torch."),
        "memory": {
            "weights_bytes_stored": parameters * stored.itemsize,
            "weights_bytes_bf16": parameters * 2,
            "weights_bytes_int8": weight_bytes(int8),
            "kv_cache_bytes_per_token_bf16": kv_bytes_per_token,
        },
        "weights": {"on_disk": on_disk > 0, "hub_id": repo,
                    "bytes": on_disk or (download_size(repo) if repo else None)},
        "kernels": {"cpu": kernels.plan(config, torch.device("cpu"), None, "none").describe(),
                    "cpu_int8": kernels.plan(config, torch.device("cpu"), None, "int8").describe()},
        "special_ids": find_special_ids(config, tokenizer),
        "tokenizer": tokenizer is not None,
    }


def format_info(info: dict) -> str:
    gib = 1024**3
    arch = info["architecture"]
    mem = info["memory"]
    ids = info["special_ids"]
    return "\n".join([
        f"model        {info['path']} ({info['model_type']}, {arch['attention']} attention)",
        f"parameters   {info['parameters']:,}",
        f"layers       {arch['layers']} x hidden {arch['hidden_size']}, MLP {arch['intermediate_size']}",
        f"attention    {arch['attention_heads']} query / {arch['kv_heads']} kv heads of {arch['head_dim']}, "
        f"RoPE theta {arch['rope_theta']:g}",
        f"vocabulary   {arch['vocab_size']:,} ({'tied' if arch['tied_lm_head'] else 'untied'} LM head)",
        f"dtype        {info['dtype']} as stored",
        f"memory       {mem['weights_bytes_stored'] / gib:.2f} GiB stored, {mem['weights_bytes_bf16'] / gib:.2f} GiB "
        f"in bf16, KV cache {mem['kv_cache_bytes_per_token_bf16']:,} bytes per token (bf16)",
        f"quantized    {mem['weights_bytes_int8'] / gib:.2f} GiB with int8 linear layers (--quantize int8; the "
        f"rest in bf16)",
        f"weights      {_weights_line(info['weights'])}",
        f"on this CPU  {info['kernels']['cpu']} (dtype auto); --quantize int8: {info['kernels']['cpu_int8']}",
        f"special ids  mask {ids['mask']}, pad {ids['pad']}, eos {ids['eos']}"
        + ("" if info["tokenizer"] else " (no tokenizer files; ids from config.json)"),
    ])


def _weights_line(weights: dict) -> str:
    gib, hub_id = 1024**3, weights["hub_id"]
    if weights["on_disk"]:
        return f"on disk, {weights['bytes'] / gib:.2f} GiB of safetensors"
    if hub_id is None:
        return "none in this directory (config and tokenizer only)"
    size = f"{weights['bytes'] / gib:.2f} GiB " if weights["bytes"] else ""
    return (f"not on disk: {size}to download once, into the Hugging Face cache, on first use or with "
            f"`hf download {hub_id}`" + ("" if size else " (its size unknown: the hub was offline or did not say)"))
