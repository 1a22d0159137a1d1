"""Data parallelism for the trainer through ``torch.distributed``: ranks, their rows, collectives.

A job started by ``torchrun`` (``WORLD_SIZE`` > 1 in its environment) joins the process group,
NCCL on CUDA and gloo on CPU, each rank on its own GPU (``LOCAL_RANK``). A job started by plain
``python`` is one rank of one: every function here is then the identity and communicates
nothing, so a one-process run computes exactly what the single-device trainer computed.

The split of the work: every rank draws the same global batch of a step from ``(seed, step)``
and takes its own consecutive rows (:func:`rows`), so a run's batches do not depend on the
number of ranks; gradients are averaged by DDP; only rank 0 (:func:`is_main`) writes files.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """Rank 0, the one rank that writes checkpoints, logs and models."""
    return rank() == 0


def setup(device: str | None = None) -> torch.device:
    """This rank's device; joins torchrun's process group when launched by torchrun.

    ``device=None`` is CUDA when available, else the CPU. Under torchrun a CUDA device without
    an index becomes the rank's own GPU, ``cuda:LOCAL_RANK``.
    """
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if launched and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def shutdown() -> None:
    """Leave the process group (at the end of a torchrun job)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def rows(n: int) -> slice:
    """This rank's rows of a global batch of ``n``: consecutive, as many on every rank."""
    world = world_size()
    if n % world:
        raise ValueError(
            f"batch_size {n} does not split evenly over {world} ranks (GPUs); make the "
            f"batch size a multiple of {world} or use a number of GPUs that divides it"
        )
    share = n // world
    return slice(rank() * share, (rank() + 1) * share)


def _comm_device() -> torch.device:
    """Where a collective's tensors live: NCCL reduces on the GPU, gloo on the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: np.ndarray) -> np.ndarray:
    """The sum over ranks of a float64 array; the array itself for one rank."""
    if world_size() == 1:
        return values
    tensor = torch.as_tensor(np.asarray(values, dtype=np.float64), device=_comm_device())
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


def all_reduce_sum_(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks in place (nothing for one rank); returns it."""
    if world_size() > 1:
        if tensor.device != _comm_device():
            reduced = tensor.to(_comm_device())
            dist.all_reduce(reduced)
            tensor.copy_(reduced)
        else:
            dist.all_reduce(tensor)
    return tensor


def broadcast(obj):
    """Rank 0's ``obj`` (picklable) on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def data_parallel(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``module`` wrapped in DDP when there are several ranks, else itself."""
    if world_size() == 1:
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        broadcast_buffers=False,  # the loss's buffers never change
    )


def sync_gradients(model: torch.nn.Module, last: bool):
    """Context for one micro-batch's forward and backward: DDP all-reduces the gradients only
    on the ``last`` micro-batch of a step (``no_sync`` before it)."""
    if last or not hasattr(model, "no_sync"):
        return contextlib.nullcontext()
    return model.no_sync()


def local_module(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a compiled and/or DDP wrapper: its passes communicate nothing."""
    model = getattr(model, "_orig_mod", model)
    from torch.nn.parallel import DistributedDataParallel

    return model.module if isinstance(model, DistributedDataParallel) else model
