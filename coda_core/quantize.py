"""int8 linear layers: a quarter of fp32's bytes to read per step, and int8 arithmetic on the CPU.

A decode step reads every weight from memory once, and on a CPU that read is
most of the step: the CoDA-v0 shape streams 8 GB per window step in fp32.
`int8` stores each linear layer's weight as int8 [out, in] with one fp32 scale
per output channel (symmetric, as gpt-fast's weight-only int8). Embeddings and
norms keep the model's dtype. Every linear layer is converted, the LM head
included (at 151,936 x 2,048 it is 15% of CoDA-v0's weights and is read on
every step).

How a layer computes depends on the device:
  CPU   the activations are quantized too, per row (one scale per token, the
        row's largest magnitude / 127), and multiplied in int8 by
        torch._int_mm into int32, then scaled back. Measured on this
        project's 2-core machines (M = 33 rows, 2048 x 6144): fp32 15.3 ms,
        int8 3.0 ms with AVX512-VNNI, 4.1 ms vs 11.3 ms with AVX2 kernels.
        torch's weight-only kernel (_weight_int8pack_mm) was 23x *slower*
        than fp32 with fp32 activations, and slower than bf16 with bf16 ones.
  other the weight is widened to the activations' dtype per call: weight-only,
        correct, not fast (a GPU runs bf16 at full speed anyway).

`quantize_model` converts a model in place. `coda_core.loading.load_model`
takes `quantize=` and quantizes each weight as it reads it (`prepare`, then
`quantize_state` per tensor), so a quantized model never sits in memory in
its float dtype first.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .choices import QUANTIZE


def check_quantize(mode: str | None) -> str:
    """`mode` as one of QUANTIZE ("none" for None); a ValueError names the choices."""
    mode = mode or "none"
    if mode not in QUANTIZE:
        raise ValueError(f"unknown quantization {mode!r}; choose one of {', '.join(QUANTIZE)}")
    return mode


def int8_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(int8 [out, in], fp32 scales [out]): symmetric, one scale per output channel."""
    w = weight.float()
    scales = w.abs().amax(dim=1).clamp_min(1e-8) / 127
    return torch.round(w / scales[:, None]).clamp_(-127, 127).to(torch.int8), scales


class Int8Linear(nn.Module):
    """A bias-free linear layer with an int8 weight [out, in] and fp32 per-output-channel `scales`."""

    def __init__(self, in_features: int, out_features: int, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.empty(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("scales", torch.empty(out_features, dtype=torch.float32, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":
            return F.linear(x, self.weight.to(x.dtype)) * self.scales.to(x.dtype)
        rows = x.reshape(-1, self.in_features).float()
        row_scales = rows.abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127
        q = torch.round(rows / row_scales).clamp_(-127, 127).to(torch.int8)
        # The weight's [out, in] layout read as [in, out]: oneDNN's int8 kernels take it fastest so
        # (a contiguous [in, out] copy ran 3x slower on an AVX2-only CPU).
        y = torch._int_mm(q, self.weight.t()) * row_scales * self.scales
        return y.to(x.dtype).view(*x.shape[:-1], self.out_features)


def _quantizable(model: nn.Module) -> dict[str, nn.Linear]:
    """The linear layers int8 converts, by module name (bias-free ones: CoDA has no biases)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and module.bias is None}


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def prepare(model: nn.Module, mode: str) -> set[str]:
    """Swap each quantizable linear layer for an empty Int8Linear on the layer's device (`meta` while
    loading). Returns the names of the weights that are then stored quantized."""
    if mode == "none":
        return set()
    names = set()
    for name, linear in _quantizable(model).items():
        _replace(model, name, Int8Linear(linear.in_features, linear.out_features, device=linear.weight.device))
        names.add(f"{name}.weight")
    return names


def quantize_state(key: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """The state-dict entries of quantized weight `key` (`...proj.weight`): its int8 weight and scales."""
    q, scales = int8_weight(weight)
    return {key: q, key.removesuffix("weight") + "scales": scales}


@torch.no_grad()
def quantize_model(model: nn.Module, mode: str | None) -> nn.Module:
    """Quantize `model`'s linear layers in place, one layer at a time (its float weight freed as it goes)."""
    if check_quantize(mode) == "none":
        return model
    for name, linear in _quantizable(model).items():
        layer = Int8Linear(linear.in_features, linear.out_features, device=linear.weight.device)
        layer.weight, layer.scales = int8_weight(linear.weight)
        _replace(model, name, layer)
    return model


def quantization(model: nn.Module) -> str:
    """How `model`'s linear layers are stored: one of QUANTIZE."""
    return "int8" if any(isinstance(m, Int8Linear) for m in model.modules()) else "none"


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer of `model`: what its weights cost in memory."""
    return sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
