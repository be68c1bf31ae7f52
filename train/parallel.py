"""Parallelism, applied to an unchanged model from outside (the torchtitan way).

A backend is everything the trainer knows about where and how a step runs;
the trainer never asks which backend it has:

    shard(batch_size, what, validation)  which rows this process reads for a batch (a `Shard`)
    prepare(model, activation_checkpointing, compile)  wrap and place the model
    to_device(tensor)          one batch tensor of this process's rows, as the step's input
    loss_logits(model, batch)  the logits `coda_train.masking.diffusion_loss` scores
    step_done()                the end of an optimizer step
    state_dict(model) / load_model_state(model, state)  parameters under the model format's names,
                               whatever wrappers `prepare` added
    optimizer_state / load_optimizer_state, barrier, is_main, device, sharding(model)

Backends:
  torch  CPU or one GPU as is; several GPUs under torchrun, each decoder
         layer and then the root wrapped with FSDP2 (`fully_shard`). Each
         process reads `train.batch_size` rows of its own; the LM head runs
         only at the masked targets.
  xla    torch_xla SPMD: a device mesh (fsdp x tensor) from the recipe, every
         parameter annotated with its partition spec (`param_spec`: FSDPv2,
         plus tensor parallelism on the attention and MLP projections) and
         each batch sharded over the fsdp axis. GSPMD inserts the
         collectives; a multi-host pod runs the same program on every host
         (`backend.hosts` of them, checked against the runtime).
         `train.batch_size` is the global batch: each host reads
         batch_size / hosts rows and `to_device` assembles the hosts' rows
         into one global array (`local_shards`). Logits are computed at every
         position: static shapes, no data-dependent gather.

`param_spec` is the one sharding rule: the xla backend applies it and
`--dry-run` prints it.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

from coda_core.errors import CodaError

from .masking import target_rows

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


# -- the batch over hosts ---------------------------------------------------------------


@dataclass(frozen=True)
class Shard:
    """What one process reads: reader `index` of `count` (each gets every count-th row), `rows` per batch."""

    index: int
    count: int
    rows: int


def host_batch(batch_size: int, hosts: int, fsdp: int, what: str = "train.batch_size") -> int:
    """Rows each host reads for a global batch of `batch_size` split over `hosts` and sharded over `fsdp`."""
    if batch_size % hosts:
        raise CodaError(f"{what} is {batch_size}, which does not split over backend.hosts {hosts}: each host "
                        f"reads batch / hosts rows, so make it a multiple of {hosts}")
    if hosts > 1 and batch_size % fsdp:
        raise CodaError(f"{what} is {batch_size}, which does not split over mesh.fsdp {fsdp}: on several hosts "
                        f"the batch is sharded over fsdp, so make it a multiple of {fsdp}")
    return batch_size // hosts


def device_blocks(mesh_ids: np.ndarray, local_ids: Sequence[int]) -> list[int]:
    """For each of this host's devices (global ids), the fsdp index of the mesh row it sits in: the block of
    the global batch it holds (block k is rows [k * B/fsdp, (k+1) * B/fsdp))."""
    mesh_ids = np.asarray(mesh_ids).reshape(mesh_ids.shape[0], -1)
    rows = {int(d): i for i, row in enumerate(mesh_ids) for d in row}
    return [rows[int(d)] for d in local_ids]


def check_host_layout(blocks: Sequence[int], fsdp: int, hosts: int) -> None:
    """Each host must hold whole fsdp blocks (all their tensor-parallel devices), fsdp / hosts of them."""
    if len(set(blocks)) * hosts != fsdp:
        raise CodaError(f"this host's {len(blocks)} devices hold {len(set(blocks))} of the mesh's {fsdp} fsdp "
                        f"rows, not fsdp / hosts = {fsdp / hosts:g}: a tensor-parallel group spans hosts; "
                        "choose backend.mesh.tensor no larger than the devices of one host")


def local_shards(rows: torch.Tensor, blocks: Sequence[int]) -> tuple[list[torch.Tensor], int]:
    """This host's rows as one shard per local device (`blocks`: each device's fsdp block, from
    `device_blocks`). The host's rows fill its blocks in increasing order, so one host's rows are its
    part of the global batch. Returns the shards and the rows per block."""
    mine = sorted(set(blocks))
    if len(rows) % len(mine):
        raise CodaError(f"a batch of {len(rows)} rows does not split over this host's {len(mine)} fsdp rows")
    per = len(rows) // len(mine)
    where = {b: i for i, b in enumerate(mine)}
    return [rows[where[b] * per:(where[b] + 1) * per] for b in blocks], per


# -- wrappers and their names -----------------------------------------------------------------


class _Checkpointed(nn.Module):
    """A decoder layer whose activations are recomputed in the backward pass."""

    WRAPPED = "layer"  # the attribute, so `<path>.layer.` in the wrapped model's parameter names

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, *args, **kwargs):
        return checkpoint(self.layer, *args, use_reentrant=False, **kwargs)


def checkpoint_layers(model: nn.Module) -> None:
    layers = model.model.layers
    for i, layer in enumerate(layers):
        layers[i] = _Checkpointed(layer)


def compile_layers(model: nn.Module) -> None:
    """torch.compile each decoder layer in place (names and state dict unchanged). Per layer, not the
    whole model: the layers have static shapes, while the LM head runs on a varying number of rows."""
    for layer in model.model.layers:
        layer.compile()


def _renames(model: nn.Module) -> list[tuple[str, str]]:
    """(wrapped prefix, model-format prefix) for every wrapper `prepare` put into `model`."""
    return [(f"{path}.{_Checkpointed.WRAPPED}.", f"{path}.") for path, module in model.named_modules()
            if isinstance(module, _Checkpointed)]


def _rename(name: str, renames: list[tuple[str, str]]) -> str:
    for old, new in renames:
        if name.startswith(old):
            return new + name[len(old):]
    return name


class _Backend(ABC):
    """What both backends share: wrapping the model, and the model format's names in both directions.
    Each backend says how it places the model and reads or writes its full state (the three hooks)."""

    device: torch.device
    is_main: bool

    @abstractmethod
    def _place(self, model: nn.Module) -> nn.Module:
        """The model on this backend's devices, sharded as it shards."""

    @abstractmethod
    def _full_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """Every parameter and buffer of the placed model, whole, on the CPU (wrapper names kept)."""

    @abstractmethod
    def _load_full_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Load a whole state (wrapper names) into the placed model."""

    def prepare(self, model: nn.Module, *, activation_checkpointing: bool = False,
                compile: bool = False) -> nn.Module:
        """Apply activation checkpointing, torch.compile and this backend's placement (in that order)."""
        if activation_checkpointing:
            checkpoint_layers(model)
        if compile:
            compile_layers(model)
        return self._place(model)

    def state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The full model state on the CPU, named as the model format names it (call it on every process)."""
        renames = _renames(model)
        return {_rename(k, renames): v for k, v in self._full_state(model).items()}

    def load_model_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        """Load a state named as the model format names it (what `state_dict` returns) into the prepared
        model. Returns the (missing, unexpected) names, sorted; it loads only when both are empty."""
        renames = _renames(model)
        wrapped = {_rename(k, renames): k for k in model.state_dict()}
        missing, unexpected = sorted(set(wrapped) - set(state)), sorted(set(state) - set(wrapped))
        if not missing and not unexpected:
            self._load_full_state(model, {wrapped[k]: v for k, v in state.items()})
        return missing, unexpected


class TorchBackend(_Backend):
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

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def shard(self, batch_size: int, what: str = "train.batch_size", validation: bool = False) -> Shard:
        """Each rank trains on `batch_size` rows of its own; every rank evaluates the same validation rows
        (so rank 0's validation loss covers the whole validation batch)."""
        if validation:
            return Shard(0, 1, batch_size)
        return Shard(self.rank, self.world, batch_size)

    def _place(self, model: nn.Module) -> nn.Module:
        model.to(self.device)
        if self.world > 1:
            from torch.distributed.fsdp import fully_shard

            for layer in model.model.layers:
                fully_shard(layer)
            fully_shard(model)
        return model

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(self.device, non_blocking=True)

    def loss_logits(self, model: nn.Module, batch) -> torch.Tensor:
        """Logits [N, V] at the N hidden rows that predict a masked target: the LM head runs only there."""
        return model(batch.input_ids, logits_index=target_rows(batch)).logits

    def step_done(self) -> None:
        pass

    def _full_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        if self.world > 1:  # gathered from every rank
            from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

            return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return model.state_dict()

    def _load_full_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        if self.world > 1:
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
        else:
            model.load_state_dict(state)

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

    def barrier(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def sharding(self, model: nn.Module) -> dict[str, str]:
        return {name: f"replicated on {self.device}" for name, _ in model.named_parameters()}


class XlaBackend(_Backend):
    """torch_xla SPMD over a (fsdp, tensor) mesh, on `hosts` processes (one per host)."""

    name = "xla"

    def __init__(self, fsdp: int, tensor: int, hosts: int = 1):
        try:
            import torch_xla
            import torch_xla.distributed.spmd as xs
            import torch_xla.runtime as xr
        except ImportError as exc:
            raise CodaError(f"the xla backend needs torch_xla ({exc}); `make test` builds .venv-xla with it") from None
        xr.use_spmd()
        processes = xr.process_count()
        if processes != hosts:
            raise CodaError(f"the recipe's backend.hosts is {hosts}, but this run has {processes} process(es) "
                            f"(torch_xla.runtime.process_count()); start it on every host of the slice, one "
                            f"process each, or set backend.hosts to {processes}")
        devices = xr.global_runtime_device_count()
        if fsdp * tensor != devices:
            raise CodaError(f"the recipe's mesh is fsdp {fsdp} x tensor {tensor} = {fsdp * tensor} devices, "
                            f"but {devices} are visible")
        self.xs, self.torch_xla = xs, torch_xla
        self.fsdp, self.tensor, self.hosts = fsdp, tensor, hosts
        self.mesh = xs.Mesh(list(range(devices)), (fsdp, tensor), ("fsdp", "tensor"))
        self.device = torch_xla.device()
        self.process = xr.process_index()
        self.is_main = self.process == 0
        # The devices this process feeds (global ids, in the runtime's order) and the fsdp block of each.
        local = [int(d.rsplit(":", 1)[-1]) for d in torch_xla._XLAC._xla_get_runtime_devices()]
        self.blocks = device_blocks(self.mesh.device_ids.reshape(fsdp, tensor), local)
        check_host_layout(self.blocks, fsdp, hosts)
        self._op_shardings: dict[int, object] = {}

    def shard(self, batch_size: int, what: str = "train.batch_size", validation: bool = False) -> Shard:
        """`batch_size` is global: each host reads batch_size / hosts rows of its own (validation too)."""
        return Shard(self.process, self.hosts, host_batch(batch_size, self.hosts, self.fsdp, what))

    def _place(self, model: nn.Module) -> nn.Module:
        model.to(self.device)
        for name, param in model.named_parameters():
            self.xs.mark_sharding(param, self.mesh, param_spec(name, tuple(param.shape), self.fsdp, self.tensor))
        return model

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """This host's rows [b, ...] -> the global batch [b * hosts, ...] on the mesh, sharded over fsdp.

        Each local device gets its block of this host's rows; torch_xla joins every host's blocks into one
        global array (`_global_tensor_from_cpu_shards`, what torch_xla itself uses to gather a value from
        every host). On one host a batch that does not split over fsdp is replicated instead."""
        if tensor.dim() >= 1 and tensor.shape[0] * self.hosts % self.fsdp == 0:
            shards, per_block = local_shards(tensor.contiguous(), self.blocks)
            if tensor.dim() not in self._op_shardings:
                spec = ("fsdp",) + (None,) * (tensor.dim() - 1)
                self._op_shardings[tensor.dim()] = self.mesh.get_op_sharding(spec)
            return self.torch_xla._XLAC._global_tensor_from_cpu_shards(
                shards, self._op_shardings[tensor.dim()], [per_block * self.fsdp, *tensor.shape[1:]])
        if self.hosts > 1:
            raise CodaError(f"a batch tensor of shape {tuple(tensor.shape)} on each of {self.hosts} hosts does not "
                            f"split over mesh.fsdp {self.fsdp}")
        return tensor.to(self.device)

    def loss_logits(self, model: nn.Module, batch) -> torch.Tensor:
        """Logits [B, L, V] at every position: static shapes, no data-dependent gather of target rows."""
        return model(batch.input_ids).logits

    def step_done(self) -> None:
        self.torch_xla.sync()  # cut and run the compiled graph of this step

    def _full_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        return {k: v.cpu() for k, v in model.state_dict().items()}

    def _load_full_state(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        model.load_state_dict(state)

    def optimizer_state(self, model: nn.Module, optimizer) -> dict:
        return optimizer.state_dict()

    def load_optimizer_state(self, model: nn.Module, optimizer, state: dict) -> None:
        optimizer.load_state_dict(state)

    def barrier(self) -> None:
        pass

    def sharding(self, model: nn.Module) -> dict[str, str]:
        out = {}
        for name, param in model.named_parameters():
            out[name] = self.torch_xla._XLAC._get_xla_sharding_spec(param) or "replicated"
        return out


def make_backend(spec) -> TorchBackend | XlaBackend:
    """The backend a recipe's `backend` section names."""
    if spec.name == "xla":
        return XlaBackend(spec.mesh.fsdp, spec.mesh.tensor, spec.hosts)
    return TorchBackend(spec.device)
