"""One launcher for every training run: alone in this process, as one rank of a ``torchrun``
launch, or on ``num_processes`` local processes spawned here::

    launch(main, args, num_processes=4)   # a driver: main(*args) on 4 processes of this machine
    device = du.init_from_env()           # inside main: its device (cuda:LOCAL_RANK or the CPU),
                                          # and the process group if several processes run

Spawned processes get the environment ``torchrun`` would give them (``RANK``, ``LOCAL_RANK``,
``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` on a free local port), so code inside ``main``
cannot tell the two launches apart; in a single process nothing is initialised and every helper
of :mod:`seed_core.distributed` (``du``) falls back to rank 0 of 1.
"""

import os
import socket
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(local_rank: int, main: Callable, args: tuple, world: int, port: int, backend: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(local_rank),
        LOCAL_RANK=str(local_rank),
        WORLD_SIZE=str(world),
    )
    dist.init_process_group(backend, rank=local_rank, world_size=world)
    try:
        main(*args)
    finally:
        dist.destroy_process_group()


def launch(main: Callable, args: tuple = (), num_processes: int = 1, backend: str | None = None) -> Any:
    """Run ``main(*args)`` and return what it returns in this process.

    - under ``torchrun`` (``WORLD_SIZE`` > 1 in the environment): this process is one rank; the
      process group is initialised if needed, and every rank waits for the others at the end;
    - ``num_processes`` > 1: ``main`` runs on that many processes spawned on this machine (it and
      ``args`` must pickle: a module-level function); returns None, so a result is handed back
      through files, as every run writes its own;
    - otherwise: in this process, with no process group.

    ``backend`` defaults to NCCL where CUDA is available and gloo elsewhere.
    """
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        if not dist.is_initialized():
            dist.init_process_group(backend)
        result = main(*args)
        dist.barrier()
        return result
    if num_processes > 1:
        torch.multiprocessing.spawn(
            _spawned, args=(main, args, num_processes, _free_port(), backend), nprocs=num_processes
        )
        return None
    return main(*args)
