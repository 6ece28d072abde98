"""One checkpoint format for every training loop: everything a resumed run continues from,
written atomically (:func:`seed_core.atomic.atomic_save`)::

    {"format": "seed-transfer/train-state-v1",
     "step": 1200,                           # optimizer steps done
     "model": {...},                         # the trained state dict (each loop says which part)
     "optimizer": {...},
     "scaler": {...} | None,                 # the AMP grad scaler; None: AMP off
     "rng": {"torch": ByteTensor, "python": random.getstate(), "numpy": [...],
             "cuda": [ByteTensor per device]},  # "cuda" only where CUDA is available
     "fingerprint": {...} | None,            # what a resumed run must match (each loop's rule)
     ...}                                    # a loop's own extras (distillation: "config";
                                             # the ImageNet trainer: "evals")

Only tensors and plain containers, so ``torch.load(weights_only=True)`` reads it. Exact resume
needs every RNG a step may draw from: data order and augmentation are seeded by (seed, epoch,
sample) in every loop, but dropout, detection heads' box sampling, Python's ``random`` in a
transform and numpy all draw from the global generators.

:func:`read_training_state` also reads the two layouts written before this format: the
torchvision detection engine's (``iteration``, ``torch_rng``, ``cuda_rng``; no Python RNG) and
the ImageNet trainer's (``resume_key`` for the fingerprint).
"""

import random
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_save
from ..checkpoint_files import safe_load
from ..errors import CheckpointError

FORMAT = "seed-transfer/train-state-v1"
REQUIRED = ("step", "model", "optimizer", "rng")  # what every layout, once upgraded, holds


def rng_state() -> dict:
    """The global RNG states: torch (CPU), Python's ``random``, numpy and, where available, CUDA."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore :func:`rng_state`'s ``state``; generators it does not hold (older checkpoints, or
    CUDA in a checkpoint written without it) are left as they are."""
    torch.set_rng_state(state["torch"])
    if "python" in state:
        random.setstate(state["python"])
    if "numpy" in state:
        kind, keys, pos, has_gauss, gauss = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_state(
    path: str | Path,
    *,
    step: int,
    model: dict,
    optimizer: torch.optim.Optimizer,
    scaler,
    fingerprint: dict | None,
    **extra,
) -> None:
    """Write the checkpoint of the format above to ``path``, atomically; ``model`` is the state
    dict to restore, ``extra`` the loop's own entries."""
    reserved = {"format", "step", "model", "optimizer", "scaler", "rng", "fingerprint"} & extra.keys()
    if reserved:
        raise ValueError(f"extra checkpoint entries {sorted(reserved)} would replace the format's own")
    atomic_save(
        {
            "format": FORMAT,
            "step": step,
            "model": model,
            "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_state(),
            "fingerprint": fingerprint,
            **extra,
        },
        path,
    )


def _upgrade(state: dict) -> dict:
    """A checkpoint of an earlier layout in this format's keys (see the module docstring)."""
    if "format" in state:
        return state
    if "iteration" in state and "step" not in state:  # the torchvision detection engine's
        state = {k: v for k, v in state.items() if k not in ("iteration", "torch_rng", "cuda_rng")} | {
            "step": state["iteration"],
            "fingerprint": None,
            "rng": {"torch": state["torch_rng"], **({"cuda": state["cuda_rng"]} if state["cuda_rng"] else {})},
        }
    if "resume_key" in state and "fingerprint" not in state:  # the ImageNet trainer's
        state = {k: v for k, v in state.items() if k != "resume_key"} | {"fingerprint": state["resume_key"]}
    return state  # distillation checkpoints had these keys already ("fingerprint" once it existed)


def read_training_state(path: str | Path) -> dict:
    """The checkpoint at ``path`` (read with :func:`seed_core.checkpoint_files.safe_load`), in this format.
    A file that is no training state (an exported student, published weights) is a
    :class:`~seed_core.errors.CheckpointError` naming what it is."""
    state = safe_load(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a training checkpoint (it holds a {type(state).__name__})")
    state = _upgrade(state)
    missing = [key for key in REQUIRED if key not in state]
    if missing:
        layout = state.get("format")
        kind = f"a {layout} file" if isinstance(layout, str) else "weights without a training state"
        raise CheckpointError(
            f"{path} is {kind}, not a training checkpoint (no {', '.join(missing)}): --resume continues "
            "from the checkpoint.pth a run writes; to start from these weights, start a new run that loads them"
        )
    return state


def restore_training_state(state: dict, optimizer: torch.optim.Optimizer, scaler, rng: bool = True) -> int:
    """Load ``state``'s optimizer, scaler and (with ``rng``) RNG states; returns the step to
    continue from. The model's state is the loop's to load (each knows which part it trains and
    how strictly to match it); a loop whose data loader draws from the global RNG when it
    starts restores the RNG itself, after that (``rng=False``)."""
    optimizer.load_state_dict(state["optimizer"])
    if scaler is not None and state["scaler"] is not None:
        scaler.load_state_dict(state["scaler"])
    if rng:
        set_rng_state(state["rng"])
    return state["step"]
