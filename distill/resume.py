"""What a resumed run must share with the run that wrote its checkpoint.

Every checkpoint stores the run's *fingerprint*: each config key that decides what is
trained, flattened (``"optim.base_lr": 0.03``), some taken as they are rather than as
they are written:

- ``teacher.weights`` by content (``sha256:...``): a moved or copied file is the same teacher;
- ``teacher.layout`` and ``teacher.input_norm`` as resolved (``auto`` -> the detected layout
  and what that layout's checkpoints take as input);
- ``data.root`` and ``data.file_list`` as absolute paths, and two measured keys,
  ``data.length`` and ``data.images`` (the number of images and the sha256 of their list),
  so that a folder that changed under the same root is found too.

``--resume`` refuses a config whose fingerprint differs and names every changed key. The
keys of ``RESUME_FREE`` only say where the run writes, how often, how fast it goes and
when it gives up, and may change; so may the teacher keys of a strategy without a teacher.
Checkpoints written before fingerprints existed are compared on the config keys they saved.
"""

import logging
from typing import Any

from torch.utils.data import Dataset

from seed_core.config import ConfigError, changed_values, flatten, to_dict
from .data import Normalization, source_identity
from .schema import NEEDS_TEACHER, DistillConfig
from .teacher import describe_norm
from .teacher_cache import teacher_identity

log = logging.getLogger(__name__)

RESUME_FREE = (
    "data.num_workers",
    "data.max_bad_images",  # when a run stops; raising it to --resume one that stopped is the point
    "train.output_dir",
    "train.log_every",
    "train.checkpoint_every",
    "train.tensorboard",
    "train.max_steps",  # where the run stops; the schedule spans optim.epochs either way
    "train.channels_last",  # a memory layout: the same training up to float rounding, as on another GPU
    "teacher.cache_dir",
    "teacher.cache_batch_size",
    "teacher.allow_unsafe_pickle",
)


def _training_keys(config: dict) -> dict[str, Any]:
    """The config keys (flattened) that decide the training: all but RESUME_FREE, and no teacher
    keys for a strategy without a teacher."""
    flat = flatten(config)
    has_teacher = flat.get("distill.strategy") in NEEDS_TEACHER
    return {k: v for k, v in flat.items() if k not in RESUME_FREE and (has_teacher or not k.startswith("teacher."))}


def training_fingerprint(cfg: DistillConfig, source: Dataset) -> dict[str, Any]:
    """The fingerprint of a run of ``cfg`` on ``source`` (see the module docstring)."""
    fingerprint = _training_keys(to_dict(cfg))
    if cfg.distill.strategy in NEEDS_TEACHER:
        fingerprint.update({f"teacher.{k}": v for k, v in teacher_identity(cfg, require_file=False).items()})
    fingerprint.update({f"data.{k}": v for k, v in source_identity(cfg.data, source).items()})
    return fingerprint


def _show(key: str, value: Any) -> str:
    if isinstance(value, str) and value.startswith("sha256:"):
        return f"sha256 {value[7:19]}..."
    if key == "teacher.input_norm" and isinstance(value, list) and len(value) == 6:
        return describe_norm(Normalization(tuple(value[:3]), tuple(value[3:])))
    return repr(value)


def changed_keys(checkpoint: dict, fingerprint: dict[str, Any], cfg: DistillConfig) -> list[str]:
    """``["teacher.input_size: None -> 24", ...]``: the training keys whose value differs between
    ``checkpoint`` and this run (``fingerprint``, of ``cfg``). Keys that only one side records
    (added or removed since) are not compared. A checkpoint without a fingerprint is compared on
    the config it saved, less ``teacher.weights`` (a path, which may have moved)."""
    if "fingerprint" in checkpoint:
        saved, current = checkpoint["fingerprint"], fingerprint
    else:
        log.warning(
            "the checkpoint predates run fingerprints: its config is checked, not the content of the "
            "teacher file nor the number of images"
        )
        saved, current = _training_keys(checkpoint["config"]), _training_keys(to_dict(cfg))
        saved.pop("teacher.weights", None)
    return changed_values(saved, current, show=_show)


def check_resumable(path, checkpoint: dict, fingerprint: dict[str, Any], cfg: DistillConfig) -> None:
    """Raise a ConfigError naming every training key that changed since ``checkpoint`` was written."""
    changed = changed_keys(checkpoint, fingerprint, cfg)
    if changed:
        raise ConfigError(
            f"cannot resume {path}: settings that alter the training changed since it was written "
            f"({'; '.join(changed)}); resume with the settings it was written with, or start a new "
            f"run in another train.output_dir"
        )
