"""Distributed helpers that fall back to a single process when DDP is not initialised."""

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    return rank() == 0


def is_launch_main_process() -> bool:
    """Rank 0 of a ``torchrun`` launch, read from its environment: right before the process
    group is set up and after an engine (Detectron2, MMEngine) has torn it down."""
    return int(os.environ.get("RANK", "0")) == 0


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` from every rank along dim 0 (rank order); no gradient.

    Returns ``tensor`` itself in a single process.
    """
    if not is_distributed():
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    return torch.cat(gathered, dim=0)


def init_from_env(backend: str | None = None, device_type: str | None = None) -> torch.device:
    """Initialise the process group when launched by ``torchrun`` (or by
    :func:`seed_core.runtime.launch`, which sets the same variables) and pick the device.

    ``torchrun`` sets WORLD_SIZE/RANK/LOCAL_RANK; without them this is a single
    process on ``cuda:0`` or the CPU. ``device_type`` ("cuda" or "cpu") decides
    instead of whether CUDA is available. The backend defaults to NCCL on CUDA and
    gloo on the CPU.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if (device_type or ("cuda" if torch.cuda.is_available() else "cpu")) == "cuda":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if int(os.environ.get("WORLD_SIZE", 1)) > 1 and not is_distributed():
        dist.init_process_group(backend or ("nccl" if device.type == "cuda" else "gloo"))
    return device


def barrier() -> None:
    if is_distributed():
        dist.barrier()
