"""int8 linear layers: a quarter of fp32's bytes per weight, and int8 arithmetic on the CPU.

A decode step reads every weight once, and on a CPU that read and the
multiply-adds are most of the step. `int8` stores each chosen linear layer's
weight as int8 [out, in] with one fp32 scale per output channel (symmetric,
as gpt-fast's weight-only int8). Embeddings and norms keep the model's dtype.
Which layers are converted is the loader's measured choice
(coda_core.kernels): every one where int8 is faster, the LM head included.

How a layer computes depends on the device:
  CPU   fbgemm, through torch's quantized engine (`x86`): the weight is
        prepacked once, at load, into fbgemm's blocked layout (the int8 copy
        is then freed), and each call runs an int8 GEMM with VNNI where the CPU
        has it, AVX2's vpmaddubsw where not. The activations go in as two
        7-bit digits per value: each row (token) is scaled to [-1, 1] by its
        largest magnitude, its first digit is that rounded to 1/63, its
        second the remainder, magnified 126x and rounded again; both stacked
        as rows of one GEMM, so the weights are read once. That keeps about 14
        bits of each activation, where one 8-bit digit per token changed the
        top-1 token at 4.8% of coda-mini's masked positions (weight error
        alone: 1.4%). 7 bits, not 8: AVX2 without VNNI sums pairs of uint8 x
        int8 products in int16, and only values up to 127 cannot saturate.
  other the weight is widened to the activations' dtype per call: weight-only,
        correct, not fast (a GPU runs bf16 at full speed anyway).

Measured on one window's rows (33), K x N = 2,048 x 6,144, 2 threads, on the
AVX512-VNNI EPYC here: fp32 22.0 ms, bf16 2.83, two digits 2.98, one 8-bit
digit 1.62, torch._int_mm (the previous kernel) 3.03; on an AVX2-only EPYC,
issue 29 measured fp32 13.3, torch._int_mm 994, torch's dynamic int8 Linear
(fbgemm) 2.7 ms. For the same single 8-bit digit, fbgemm was faster than
`_int_mm` on both kinds (1.62 vs 3.03 ms here, 2.7 vs 994 there), so `_int_mm` is gone.

torch marks quantized tensors (`torch.quantize_per_channel`, which fbgemm's
prepack takes) as deprecated in favour of torchao. torchao 0.18's CPU paths
measured slower than fp32 on that AVX2 CPU (Int8DynamicActivationInt8Weight
141 ms, Int8WeightOnly 40 ms, fp32 66 ms for one CoDA-v0 layer), so fbgemm
stays until torchao's CPU int8 is fast; `_prepack` is the one place to
change.

`quantize_model` converts a model in place. `coda_core.loading.load_model`
takes `quantize=` and quantizes each weight as it reads it (`prepare`, then
`quantize_state` per tensor, then `pack`), so a quantized model never sits in
memory in its float dtype first.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .choices import QUANTIZE

CPU_KERNEL = "fbgemm"
GPU_KERNEL = "weight-only"
DIGIT = 63  # activation digits in [-63, 63], stored as uint8 digit + ZERO_POINT: in [1, 127]
ZERO_POINT = DIGIT + 1


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


def _prepack(weight: torch.Tensor, scales: torch.Tensor):
    """fbgemm's packed form of an int8 weight [out, in] with per-output-channel scales."""
    with warnings.catch_warnings():  # quantized tensors are deprecated: see the module docstring
        warnings.simplefilter("ignore", UserWarning)
        zeros = torch.zeros(len(scales), dtype=torch.long)
        qweight = torch._make_per_channel_quantized_tensor(weight, scales.double(), zeros, 0)
        return torch.ops.quantized.linear_prepack(qweight, None)


def _unpack(packed) -> tuple[torch.Tensor, torch.Tensor]:
    qweight, _ = torch.ops.quantized.linear_unpack(packed)
    return qweight.int_repr(), qweight.q_per_channel_scales().float()


def activation_digits(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [M, K] fp32 as two digits per value, [2M, K] in [-DIGIT, DIGIT] (first digits, then remainders),
    and each row's scale [M, 1]: x = (round(first) + round(second) / (2 * DIGIT)) * scale, to ~14 bits."""
    rows = x.shape[0]
    digits = torch.empty(2 * rows, x.shape[1], dtype=torch.float32, device=x.device)
    first, second = digits[:rows], digits[rows:]
    scale = x.abs().amax(dim=1, keepdim=True).clamp_min(1e-30) / DIGIT
    torch.div(x, scale, out=first)
    torch.round(first, out=second)
    second.sub_(first).mul_(-2 * DIGIT)  # (first - round(first)) x 126: the remainder, back in [-63, 63]
    return digits, scale


def int8_matmul(x: torch.Tensor, packed) -> torch.Tensor:
    """x [M, K] fp32 @ the packed int8 weight's transpose, activations in two 7-bit digits (module
    docstring): one fbgemm GEMM over both digits' rows, which quantizes each digit as round(d) + 64."""
    rows = x.shape[0]
    digits, scale = activation_digits(x)
    y = torch.ops.quantized.linear_with_input_q_dq_qweight_dq_output_fp32(digits, 1.0, ZERO_POINT, packed)
    return torch.add(y[:rows], y[rows:], alpha=1 / (2 * DIGIT)).mul_(scale)


@functools.cache
def cpu_kernel_available() -> bool:
    """Whether this torch build runs fbgemm's int8 GEMM here (x86 builds do; the answer decides whether
    int8 is a candidate at all)."""
    try:
        weight, scales = int8_weight(torch.ones(8, 8))
        int8_matmul(torch.ones(2, 8), _prepack(weight, scales))
        return True
    except (RuntimeError, NotImplementedError):
        return False


class Int8Linear(nn.Module):
    """A bias-free linear layer with an int8 weight [out, in] and fp32 per-output-channel `scales`.

    On the CPU `pack()` moves the weight into fbgemm's packed form (and frees the int8 copy); the
    state dict still holds `weight` and `scales`, unpacked from it.
    """

    def __init__(self, in_features: int, out_features: int, device=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.empty(out_features, in_features, dtype=torch.int8, device=device))
        self.register_buffer("scales", torch.empty(out_features, dtype=torch.float32, device=device))
        self.packed = None

    @classmethod
    def from_float(cls, weight: torch.Tensor) -> "Int8Linear":
        layer = cls(weight.shape[1], weight.shape[0], device=weight.device)
        layer.weight, layer.scales = int8_weight(weight)
        return layer.pack()

    def pack(self) -> "Int8Linear":
        if self.packed is None and self.weight.device.type == "cpu" and cpu_kernel_available():
            self.packed = _prepack(self.weight, self.scales)
            self.weight = torch.empty(0, dtype=torch.int8)
        return self

    @property
    def kernel(self) -> str:
        return CPU_KERNEL if self.packed is not None else GPU_KERNEL

    def nbytes(self) -> int:
        return self.out_features * (self.in_features + 4)

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        if self.packed is not None:
            destination[prefix + "weight"], destination[prefix + "scales"] = _unpack(self.packed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is None:
            return F.linear(x, self.weight.to(x.dtype)) * self.scales.to(x.dtype)
        y = int8_matmul(x.reshape(-1, self.in_features).float(), self.packed)
        return y.to(x.dtype).view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, kernel={self.kernel}"


def _linear_layers(model: nn.Module, shapes: set[str] | None) -> dict[str, nn.Linear]:
    """The bias-free linear layers (CoDA has no biases) by module name; with `shapes`, only those whose
    `{in}x{out}` is in it."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and module.bias is None
            and (shapes is None or f"{module.in_features}x{module.out_features}" in shapes)}


def _replace(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def prepare(model: nn.Module, shapes: set[str] | None = None) -> set[str]:
    """Swap each linear layer of `shapes` (`{in}x{out}`; None: all) for an empty Int8Linear on the layer's
    device (`meta` while loading). Returns the names of the weights that are then stored quantized."""
    names = set()
    for name, linear in _linear_layers(model, shapes).items():
        _replace(model, name, Int8Linear(linear.in_features, linear.out_features, device=linear.weight.device))
        names.add(f"{name}.weight")
    return names


def quantize_state(key: str, weight: torch.Tensor) -> dict[str, torch.Tensor]:
    """The state-dict entries of quantized weight `key` (`...proj.weight`): its int8 weight and scales."""
    q, scales = int8_weight(weight)
    return {key: q, key.removesuffix("weight") + "scales": scales}


def pack(model: nn.Module) -> nn.Module:
    """Pack every Int8Linear of a loaded model for its device's kernel, one layer at a time."""
    for module in model.modules():
        if isinstance(module, Int8Linear):
            module.pack()
    return model


@torch.no_grad()
def quantize_model(model: nn.Module, mode: str | None, shapes: set[str] | None = None) -> nn.Module:
    """Quantize `model`'s linear layers (of `shapes`, `{in}x{out}`; None: all) in place, one layer at a
    time (its float weight freed as it goes)."""
    if check_quantize(mode) == "none":
        return model
    for name, linear in _linear_layers(model, shapes).items():
        _replace(model, name, Int8Linear.from_float(linear.weight))
    return model


def quantization(model: nn.Module) -> str:
    """How `model`'s linear layers are stored: one of QUANTIZE ("int8" when any layer is)."""
    return "int8" if any(isinstance(m, Int8Linear) for m in model.modules()) else "none"


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer of `model`, packed int8 weights at their size: what its
    weights cost in memory."""
    int8 = [m for m in model.modules() if isinstance(m, Int8Linear)]
    counted = {id(t) for m in int8 for t in (m.weight, m.scales)}
    tensors = (t for t in (*model.parameters(), *model.buffers()) if id(t) not in counted)
    return sum(t.numel() * t.element_size() for t in tensors) + sum(m.nbytes() for m in int8)
