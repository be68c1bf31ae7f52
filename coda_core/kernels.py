"""How a model computes on this machine, chosen by timing the candidates here.

Which matmul is fastest depends on the CPU in ways no flag predicts: bf16 is
native with AVX512-BF16 or AMX and emulated (3-15x slower than fp32) without;
`torch._int_mm` ran 5x faster than fp32 with AVX512-VNNI and 75x slower on an
AVX2-only EPYC; fbgemm's int8 kernels are fast on both. Environment variables
such as ATEN_CPU_CAPABILITY do not reproduce another CPU either (some kernels
read CPUID). So the loader times the candidates on the model's own layer
shapes, on the user's machine, and keeps the answer:

  dtype "auto" on a CPU    float32 or bfloat16, whichever runs the model's
                           linear layers faster (bfloat16 only if measured so);
  quantize "int8"          per layer shape, the int8 kernel or the float
                           dtype, whichever is faster (a tiny model's small
                           layers may stay float: int8 only where it pays).

Each candidate is timed on a column slice of the layer (at most SLICE output
channels, so an emulated or slow kernel costs milliseconds, not seconds) for
a window step's rows and a prefill's (ROWS; the LM head sees window rows
only: a prefill asks it for no logits). The timings go to
`$CODA_CACHE/kernels.json` (default ~/.cache/coda), keyed by this CPU, torch
version, thread count and shape, so the next start measures nothing. The
choice itself (`choose`) is a pure function of the timings, and the tests
drive it with injected ones.

On a GPU nothing is timed: bf16 (fp16 without bf16 support), and int8 is
weight-only (coda_core.quantize).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from . import quantize as q

ROWS = (32, 256)  # a window step's rows (a 32-token block) and a prefill's
SLICE = 512  # output channels timed per candidate: the time per channel carries over to the whole layer
FLOATS = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Shape:
    """A linear layer's shape [out, in], how many layers of it the model has, and whether it is the LM head."""
    in_features: int
    out_features: int
    count: int = 1
    head: bool = False

    @property
    def key(self) -> str:
        return f"{self.in_features}x{self.out_features}"

    @property
    def rows(self) -> tuple[int, ...]:
        return ROWS[:1] if self.head else ROWS


def model_shapes(config) -> list[Shape]:
    """The distinct linear layer shapes of a CoDA config, with their counts (the LM head apart)."""
    C, I, D = config.hidden_size, config.intermediate_size, config.head_dim
    H, G, L = config.num_attention_heads, config.num_key_value_heads, config.num_hidden_layers
    counts: dict[tuple[int, int], int] = {}
    for shape in [(C, H * D), (C, G * D), (C, G * D), (H * D, C), (C, I), (C, I), (I, C)]:
        counts[shape] = counts.get(shape, 0) + L
    return [Shape(i, o, n) for (i, o), n in counts.items()] + [Shape(C, config.vocab_size, 1, head=True)]


# -- the choice: a pure function of timings ---------------------------------------------

@dataclass
class Plan:
    """What the loader builds: the float dtype, and the layer shapes computed in int8.

    `ms` holds the timings it was chosen from, {candidate: {shape key: ms}} (a shape's rows summed),
    empty when nothing was timed (a GPU, or dtype and quantization both fixed by the caller).
    """
    dtype: torch.dtype
    int8: frozenset[str] = frozenset()
    quantize: str = "none"
    shapes: list[Shape] = field(default_factory=list)
    ms: dict[str, dict[str, float]] = field(default_factory=dict)
    int8_kernel: str = q.CPU_KERNEL

    def _cost(self, pick: Callable[[Shape], str]) -> float | None:
        try:
            return sum(s.count * self.ms[pick(s)][s.key] for s in self.shapes)
        except KeyError:
            return None

    def chosen(self, shape: Shape) -> str:
        return "int8" if shape.key in self.int8 else _name(self.dtype)

    def speedup(self) -> float | None:
        """The model's linear layers as chosen, against all of them in fp32 (None if fp32 was not timed)."""
        base, mine = self._cost(lambda s: "float32"), self._cost(self.chosen)
        return round(base / mine, 2) if base and mine else None

    def describe(self) -> str:
        """One line for coda info, coda-lsp --check and the status: e.g. `int8 (fbgemm) 5.4x fp32`."""
        ratio = self.speedup()
        vs = f" {ratio}x fp32" if ratio and not (self.dtype == torch.float32 and not self.int8) else ""
        if self.quantize == "none":
            return f"{_name(self.dtype)}{vs}" + self._bf16_note()
        if not self.int8 and self.int8_kernel == q.CPU_KERNEL and "int8" not in self.ms:
            return (f"{_name(self.dtype)}{vs}: int8 unavailable, this torch build has no fbgemm "
                    f"(torch.backends.quantized.supported_engines lacks x86/fbgemm)")
        if not self.int8:
            int8, mine = self._cost(lambda s: "int8"), self._cost(self.chosen)
            measured = f", measured {mine / int8:.2f}x {_name(self.dtype)} here" if int8 and mine else ""
            return f"{_name(self.dtype)}{vs}: int8 ({self.int8_kernel}) unused{measured}"
        where = "" if len(self.int8) == len(self.shapes) else \
            f" on {len(self.int8)} of {len(self.shapes)} layer shapes ({_name(self.dtype)} on the rest)"
        return f"int8 ({self.int8_kernel}){where}{vs}"

    def _bf16_note(self) -> str:
        if self.dtype != torch.float32 or "bfloat16" not in self.ms:
            return ""
        bf16, fp32 = self._cost(lambda s: "bfloat16"), self._cost(lambda s: "float32")
        return f" (bf16 measured {fp32 / bf16:.2f}x fp32)" if bf16 and fp32 else ""


def _name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def choose(shapes: list[Shape], ms: dict[str, dict[str, float]], dtype: torch.dtype | None,
           quantize: str) -> Plan:
    """The plan these timings call for. `dtype` None: the faster of float32 and bfloat16 (bfloat16 only
    when it was timed and is faster); else that dtype. int8: each shape whose int8 time beats the float
    dtype's."""
    plan = Plan(dtype or torch.float32, frozenset(), quantize, shapes, ms)
    if dtype is None and "bfloat16" in ms and plan._cost(lambda s: "bfloat16") < plan._cost(lambda s: "float32"):
        plan.dtype = torch.bfloat16
    if quantize == "int8" and "int8" in ms:
        float_ms = ms[_name(plan.dtype)]
        plan.int8 = frozenset(s.key for s in shapes if ms["int8"][s.key] < float_ms[s.key])
    return plan


# -- timing -----------------------------------------------------------------------------

def time_candidate(candidate: str, shape: Shape, repeats: int = 3) -> float:
    """Milliseconds `candidate` takes for `shape`, its rows summed, scaled from a slice of SLICE channels.

    The fastest of `repeats` calls: a call that another process interrupted says nothing about the kernel."""
    cols = min(shape.out_features, SLICE)
    gen = torch.Generator().manual_seed(0)
    weight = torch.randn(cols, shape.in_features, generator=gen) * 0.02
    if candidate == "int8":
        layer = q.Int8Linear.from_float(weight)
        run = layer
    else:
        w = weight.to(FLOATS[candidate])
        run = lambda x: F.linear(x, w)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _time_rows(run, shape, candidate, repeats, gen) * shape.out_features / cols
    finally:
        torch.set_num_threads(threads)


def _time_rows(run, shape: Shape, candidate: str, repeats: int, gen: torch.Generator) -> float:
    total = 0.0
    for rows in shape.rows:
        x = torch.randn(rows, shape.in_features, generator=gen).to(torch.float32 if candidate == "int8"
                                                                     else FLOATS[candidate])
        run(x)  # warm-up: first-call allocation and kernel selection
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - start)
        total += min(times) * 1e3
    return total


def machine_key() -> str:
    """This CPU (its model name and feature flags), torch build and thread count: what timings depend on."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            lines = [line for line in f if line.startswith(("model name", "flags"))]
        cpu = ";".join(sorted(set(lines)))
    except OSError:
        pass
    # torch's own reading of the CPU too: under an emulator /proc/cpuinfo is the host's
    digest = hashlib.sha1(f"{cpu};{torch.backends.cpu.get_cpu_capability()}".encode()).hexdigest()[:12]
    return f"cpu {digest} torch {torch.__version__} threads {torch.get_num_threads()}"


def cache_file() -> Path:
    return Path(os.environ.get("CODA_CACHE", Path.home() / ".cache" / "coda")) / "kernels.json"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # missing or damaged: measure again


def _write_cache(path: Path, data: dict) -> None:
    """Write atomically; a cache that cannot be written (read-only home) only costs a re-measure."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".kernels.", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass


def measured(candidates: list[str], shapes: list[Shape],
             timer: Callable[[str, Shape], float] = time_candidate) -> dict[str, dict[str, float]]:
    """{candidate: {shape key: ms}}, from the cache where this machine timed it before, else timed now."""
    path, machine = cache_file(), machine_key()
    cache = _read_cache(path)
    known = cache.get(machine, {})
    fresh = False
    ms: dict[str, dict[str, float]] = {}
    for candidate in candidates:
        for shape in shapes:
            key = f"{candidate} {shape.key} rows {','.join(map(str, shape.rows))}"
            if not isinstance(known.get(key), (int, float)):
                known[key], fresh = float(timer(candidate, shape)), True
            ms.setdefault(candidate, {})[shape.key] = known[key]
    if fresh:
        cache[machine] = known
        _write_cache(path, cache)
    return ms


Timings = Callable[[list[str], list[Shape]], dict[str, dict[str, float]]]


def plan(model, device: torch.device, dtype: torch.dtype | None, quantize: str,
         timings: Timings = measured) -> Plan:
    """How to build a model on `device`: `model` a CoDA config or a list of Shapes; `dtype` None means
    auto. `timings(candidates, shapes)` gives {candidate: {shape key: ms}} (`measured`: this machine's).
    See the module docstring."""
    shapes = model if isinstance(model, list) else model_shapes(model)
    if device.type != "cpu":
        auto = torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float16
        return every_layer(shapes, device, dtype or (auto if device.type == "cuda" else torch.float32), quantize)
    if dtype is not None and quantize == "none":
        return Plan(dtype, quantize=quantize, shapes=shapes)  # nothing to choose: time nothing
    candidates = ["float32"]  # always: the ratios are against it
    if dtype is None or dtype != torch.float32:
        candidates.append("bfloat16" if dtype is None else _name(dtype))
    if quantize == "int8" and q.cpu_kernel_available():
        candidates.append("int8")
    return choose(shapes, timings(candidates, shapes), dtype, quantize)


def every_layer(model, device: torch.device, dtype: torch.dtype, quantize: str) -> Plan:
    """A plan, timing nothing, with every linear layer in int8 (for `quantize` "int8"): a kernel's own
    fidelity whatever this machine would choose (coda bench sample), and tests that need int8 layers."""
    shapes = model if isinstance(model, list) else model_shapes(model)
    int8 = frozenset(s.key for s in shapes) if quantize == "int8" else frozenset()
    return Plan(dtype, int8, quantize, shapes, int8_kernel=q.CPU_KERNEL if device.type == "cpu" else q.GPU_KERNEL)


SQUARE = [Shape(2048, 2048)]  # what "auto" times without a model: a CoDA-v0-sized layer
