"""Inference is device-correct: every tensor it makes is on the model's device, or on the host on purpose.

A tensor factory called without a device (torch.arange(n), torch.tensor(ids))
makes a CPU tensor. On a CPU model that is harmless, so a CPU-only CI never
sees it; on a GPU model it crashes the first time it meets a CUDA tensor
(the fast decoder did, on an H200). The rule, as in gpt-fast: every factory
call in inference code names its device: the model's, or "cpu" for a value
that stays on the host (turned into Python values at once, or built there and
moved once).

`DevicelessFactories` holds the code to it where CI can: it records every
factory call made from our packages without a device, during real decodes of
every kind on the CPU.

Asking for CUDA where there is none is one clear error, never a traceback.
"""

import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

import coda_core
from coda_core.denoise import DecodeOptions
from coda_core.sampler import Sampler
from coda_core.token_choice import SamplingParams

from small_models import tiny_model

REPO = Path(coda_core.__file__).resolve().parents[1]
INFERENCE = ("coda_core", "coda_lsp", "coda_eval", "coda_cli")
TORCH = Path(torch.__file__).resolve().parent
FACTORIES = {torch.arange, torch.zeros, torch.ones, torch.full, torch.empty, torch.empty_strided, torch.tensor,
             torch.as_tensor, torch.scalar_tensor, torch.rand, torch.randn, torch.randint, torch.randperm,
             torch.linspace, torch.logspace, torch.eye}


class DevicelessFactories(TorchFunctionMode):
    """Records "file:line torch.name" for each tensor factory our inference code calls without a device."""

    def __init__(self):
        super().__init__()
        self.calls: set[str] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and kwargs.get("device") is None:
            frame = sys._getframe(1)
            while frame is not None and Path(frame.f_code.co_filename).resolve().is_relative_to(TORCH):
                frame = frame.f_back  # torch's own wrappers: the caller is further out
            if frame is not None:
                path = Path(frame.f_code.co_filename).resolve()
                if path.is_relative_to(REPO) and path.relative_to(REPO).parts[0] in INFERENCE:
                    self.calls.add(f"{path.relative_to(REPO)}:{frame.f_lineno} torch.{func.__name__}")
        return func(*args, **kwargs)


PREFIX = "import math\n\n\ndef area(radius):\n    return"
SUFFIX = "\n\n\ndef circumference(radius):\n    return 2 * math.pi * radius\n"


def every_kind_of_decode(sampler: Sampler) -> None:
    """The decodes the editor, the CLI, eval and the benchmarks run, through the public sampler API."""
    tok = sampler.tokenizer
    pre, suf = tok.encode(PREFIX), tok.encode(SUFFIX)
    sampler.infill(pre, suf, 16, first_line=True, options=DecodeOptions(sub_block_size=4))  # a line hole
    sampler.infill(pre, suf, 16, first_line=True)  # the same keystroke again: the prefix cache's restore
    sampler.infill(pre, suf, 12, n=2, options=DecodeOptions(sampling=SamplingParams(0.8, 0.9, 50)))
    sampler.infill(pre, suf, 12, options=DecodeOptions(factor=1.0))  # the Fast-dLLM factor rule
    sampler.infill(pre, suf, 12, options=DecodeOptions(max_per_step=2, refresh=2))
    for alg, temp in [("maskgit_plus", None), ("origin", None), ("entropy", 0.5), ("topk_margin", None)]:
        sampler.infill(pre, suf, 8, strategy="reference", options=DecodeOptions(alg=alg, alg_temp=temp, steps=4))
    sampler.rewrite(pre, tok.encode(" math.pi * radius ** 2"), suf)
    sampler.fill_holes([pre, tok.encode("\n\ndef half(x):\n    return"), suf], [6, 5])
    sampler.generate(sampler.chat_prompt([{"role": "user", "content": "add two numbers"}]), 8)


def test_decodes_make_no_tensor_without_a_device(bundled_tokenizer):
    sampler = Sampler(tiny_model(), bundled_tokenizer)
    with DevicelessFactories() as recorder:
        every_kind_of_decode(sampler)
    assert not recorder.calls, "tensors made without a device (on the CPU, whatever the model's device):\n" + \
        "\n".join(sorted(recorder.calls))


def test_the_shape_benchmark_makes_no_tensor_without_a_device():
    from coda_cli.bench import bench_forward, bench_sample_shape

    with DevicelessFactories() as recorder:
        bench_sample_shape(prefix=48, suffix=8, hole=8, steps=2, preset="tiny", dtype=torch.float32)
        bench_forward(context=32, window=8, repeats=1, preset="tiny", dtype=torch.float32)
    assert not recorder.calls, "\n".join(sorted(recorder.calls))


def test_the_recorder_sees_a_factory_without_a_device():
    # The check itself can fail: a deviceless call from our code is caught, one naming its device is not.
    from coda_core import canvas

    with DevicelessFactories() as recorder:
        canvas.build_canvas([1, 2], [3], [4], copies=1, mask_id=9, pad_id=0, end_ids=(0,), device="cpu")
        torch.arange(3)  # from this test: not inference code
    assert not recorder.calls
    with DevicelessFactories() as recorder:
        exec(compile("torch.arange(3)", str(REPO / "coda_core" / "planted.py"), "exec"), {"torch": torch})
    assert recorder.calls == {"coda_core/planted.py:1 torch.arange"}


# -- asking for CUDA where there is none ------------------------------------------------------------

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: nothing to refuse")


@no_cuda
@pytest.mark.parametrize("args", [
    ["infill", "{src}:5:12"],
    ["rewrite", "{src}:4-5"],
    ["eval", "humaneval", "--limit", "1", "--out", "{tmp}/eval"],
    ["bench", "sample", "--holes", "1"],  # with --model
    ["bench", "sample", "--preset", "tiny"],  # the shape, without one
    ["bench", "forward", "--preset", "tiny"],
])
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_cuda_without_cuda_is_one_clear_error(args, device, tiny_model_dir, tmp_path):
    from helpers import coda

    src = tmp_path / "ex.py"
    src.write_text("import math\n\n\ndef area(r):\n    return \n")
    model = ["--model", str(tiny_model_dir)] if args[0] in ("infill", "rewrite", "eval") or "--holes" in args else []
    result = coda(*(a.format(src=src, tmp=tmp_path) for a in args), *model, "--device", device)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"coda: error: device {device} asked for, but ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "use cpu or auto" in result.stderr  # whichever torch
    assert not (tmp_path / "eval").exists()  # refused before anything was written
