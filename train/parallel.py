"""Parallelism, applied to an unchanged model from outside (the torchtitan way).

Backends:
  torch  CPU or one GPU as is; several GPUs under torchrun, each decoder
         layer and then the root wrapped with FSDP2 (`fully_shard`).
  xla    torch_xla SPMD: a device mesh (fsdp x tensor) from the recipe, every
         parameter annotated with its partition spec (`param_spec`: FSDPv2,
         plus tensor parallelism on the attention and MLP projections) and
         each batch sharded over the fsdp axis. GSPMD inserts the
         collectives; multi-host TPU pods run the same program per host.

`param_spec` is the one sharding rule: the xla backend applies it and
`--dry-run` prints it.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from coda_core.errors import CodaError

# Projections whose output features split over "tensor" (column parallel), and whose input
# features do (row parallel); everything else is sharded over "fsdp" only.
COLUMN_PARALLEL = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
ROW_PARALLEL = ("o_proj", "down_proj")


def param_spec(name: str, shape: tuple[int, ...], fsdp: int, tensor: int) -> tuple[str | None, ...]:
    """The partition spec of a parameter on an (fsdp, tensor) mesh: one axis name (or None) per dim."""
    if len(shape) == 1:  # norms: tiny, replicated
        return (None,)
    module = name.rsplit(".", 2)[-2] if name.count(".") >= 1 else ""
    if module in COLUMN_PARALLEL and tensor > 1 and shape[0] % tensor == 0:
        return ("tensor", "fsdp" if shape[1] % fsdp == 0 else None)
    if module in ROW_PARALLEL and tensor > 1 and shape[1] % tensor == 0:
        return ("fsdp" if shape[0] % fsdp == 0 else None, "tensor")
    # FSDP: the first dimension that divides evenly
    for dim, size in enumerate(shape):
        if size % fsdp == 0:
            return tuple("fsdp" if d == dim else None for d in range(len(shape)))
    return (None,) * len(shape)


def shard_shape(shape: tuple[int, ...], spec: tuple[str | None, ...], fsdp: int, tensor: int) -> tuple[int, ...]:
    sizes = {"fsdp": fsdp, "tensor": tensor, None: 1}
    return tuple(size // sizes[axis] for size, axis in zip(shape, spec))


class _Checkpointed(nn.Module):
    """A decoder layer whose activations are recomputed in the backward pass."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, *args):
        return checkpoint(self.layer, *args, use_reentrant=False)


def checkpoint_layers(model: nn.Module) -> None:
    layers = model.model.layers
    for i, layer in enumerate(layers):
        layers[i] = _Checkpointed(layer)


def compile_layers(model: nn.Module) -> None:
    """torch.compile each decoder layer in place (names and state dict unchanged). Per layer, not the
    whole model: the layers have static shapes, while the LM head runs on a varying number of rows."""
    for layer in model.model.layers:
        layer.compile()


def unwrap_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Parameter names as the model format has them (without activation-checkpoint wrappers)."""
    return {k.replace(".layer.", ".", 1) if ".layers." in k and ".layer." in k else k: v for k, v in state.items()}


class TorchBackend:
    """CPU or one GPU; several GPUs with FSDP2 when started by torchrun (WORLD_SIZE > 1)."""

    name = "torch"

    def __init__(self, device: str = "auto"):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1:
            torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
            local = int(os.environ.get("LOCAL_RANK", "0"))
            if torch.cuda.is_available():
                torch.cuda.set_device(local)
            self.device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
        elif device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(device)
        self.full_logits = False  # the LM head runs only at masked targets

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def data_shard(self) -> tuple[int, int]:
        return self.rank, self.world

    def prepare(self, model: nn.Module) -> nn.Module:
        model.to(self.device)
        if self.world > 1:
            from torch.distributed.fsdp import fully_shard

            for layer in model.model.layers:
                fully_shard(layer)
            fully_shard(model)
        return model

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True)

    def step_done(self) -> None:
        pass

    def state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The full model state on the CPU (gathered from every rank under FSDP2: call it on all ranks)."""
        if self.world > 1:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        else:
            state = model.state_dict()
        return unwrap_state_dict(state)

    def optimizer_state(self, model: nn.Module, optimizer) -> dict:
        if self.world > 1:  # DTensor shards -> full tensors, keyed by parameter name
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

            return get_optimizer_state_dict(model, optimizer,
                                            options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return optimizer.state_dict()

    def load_optimizer_state(self, model: nn.Module, optimizer, state: dict) -> None:
        if self.world > 1:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
        else:
            optimizer.load_state_dict(state)

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        if self.world > 1:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
        else:
            model.load_state_dict(state)

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def sharding(self, model: nn.Module) -> dict[str, str]:
        return {name: f"replicated on {self.device}" for name, _ in model.named_parameters()}


class XlaBackend:
    """torch_xla SPMD over a (fsdp, tensor) mesh."""

    name = "xla"

    def __init__(self, fsdp: int, tensor: int):
        try:
            import torch_xla
            import torch_xla.distributed.spmd as xs
            import torch_xla.runtime as xr
        except ImportError as exc:
            raise CodaError(f"the xla backend needs torch_xla ({exc}); `make test` builds .venv-xla with it") from None
        xr.use_spmd()
        devices = xr.global_runtime_device_count()
        if fsdp * tensor != devices:
            raise CodaError(f"the recipe's mesh is fsdp {fsdp} x tensor {tensor} = {fsdp * tensor} devices, "
                            f"but {devices} are visible")
        self.xs, self.torch_xla = xs, torch_xla
        self.fsdp, self.tensor = fsdp, tensor
        self.mesh = xs.Mesh(list(range(devices)), (fsdp, tensor), ("fsdp", "tensor"))
        self.device = torch_xla.device()
        self.full_logits = True  # static shapes: no data-dependent gather of target rows
        self.is_main = xr.process_index() == 0
        self.data_shard = (xr.process_index(), xr.process_count())  # each host reads its own rows

    def prepare(self, model: nn.Module) -> nn.Module:
        model.to(self.device)
        for name, param in model.named_parameters():
            self.xs.mark_sharding(param, self.mesh, param_spec(name, tuple(param.shape), self.fsdp, self.tensor))
        return model

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device)
        if tensor.dim() >= 1 and tensor.shape[0] % self.fsdp == 0:
            self.xs.mark_sharding(tensor, self.mesh, ("fsdp",) + (None,) * (tensor.dim() - 1))
        return tensor

    def step_done(self) -> None:
        self.torch_xla.sync()  # cut and run the compiled graph of this step

    def state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return unwrap_state_dict({k: v.cpu() for k, v in model.state_dict().items()})

    def optimizer_state(self, model: nn.Module, optimizer) -> dict:
        return optimizer.state_dict()

    def load_optimizer_state(self, model: nn.Module, optimizer, state: dict) -> None:
        optimizer.load_state_dict(state)

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        model.load_state_dict(state)

    def barrier(self) -> None:
        pass

    def sharding(self, model: nn.Module) -> dict[str, str]:
        out = {}
        for name, param in model.named_parameters():
            out[name] = self.torch_xla._XLAC._get_xla_sharding_spec(param) or "replicated"
        return out
