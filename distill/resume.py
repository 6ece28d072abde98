"""What a resumed run must share with the run that wrote its checkpoint.

Every checkpoint stores the run's *fingerprint*: each config key that decides what is
trained, flattened (``"optim.base_lr": 0.03``), some taken as they are rather than as
they are written:

- ``teacher.weights`` by content (``sha256:...``): a moved or copied file is the same teacher;
- ``teacher.layout`` and ``teacher.input_norm`` as resolved (``auto`` -> the detected layout
  and what that layout's checkpoints take as input);
- ``data.root`` and ``data.file_list`` as absolute paths, and three measured keys,
  ``data.length`` and ``data.images`` (the number of images and the sha256 of their list),
  so that a folder that changed under the same root is found too, and ``data.content``: the
  files' sizes and modification times, hashed per 1/64 of the list (:func:`distill.data.file_content`),
  so that an image replaced or edited under the same name is found, and told where.
  It costs one ``stat`` per file (shared among DDP ranks): 12-15 us per file measured on folders of
  20,000 and 200,000 small files from a warm cache (a loaded 2-core machine), so ~15-20 s for
  ImageNet's 1.28M files; it runs after the bad-image header scan, which reads the same inodes
  (and costs more: 0.06-0.45 ms per file), so a cold network file system is paid for once.

``--resume`` refuses a config whose fingerprint differs and names every changed key. The
keys of ``RESUME_FREE`` only say where the run writes, how often, how fast it goes and
when it gives up, and may change; so may the teacher keys of a strategy without a teacher.
Checkpoints written before fingerprints existed are compared on the config keys they saved;
checkpoints written before ``data.content`` existed resume with a warning that the images'
content could not be checked (their names and number still are).
"""

import logging
from typing import Any

from torch.utils.data import Dataset

from seed_core.config import ConfigError, changed_values, flatten, to_dict
from seed_core.file_content import content_changes

from .data import Normalization, source_content, source_identity
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
    fingerprint["data.content"] = source_content(source)
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
    content = []
    if "fingerprint" in checkpoint:
        saved, current = dict(checkpoint["fingerprint"]), dict(fingerprint)
        saved_content, current_content = saved.pop("data.content", None), current.pop("data.content", None)
        if saved_content is None and current_content is not None and "data.content" not in checkpoint["fingerprint"]:
            log.warning(
                "the checkpoint predates the data content fingerprint: that its images are the ones it was "
                "trained on is checked by their names and number only, not by their sizes and times"
            )
        elif saved_content is not None and current_content is not None:
            changed = content_changes(saved_content, current_content)
            content = [f"data.content: {changed}"] if changed else []
    else:
        log.warning(
            "the checkpoint predates run fingerprints: its config is checked, not the content of the "
            "teacher file nor the number of images"
        )
        saved, current = _training_keys(checkpoint["config"]), _training_keys(to_dict(cfg))
        saved.pop("teacher.weights", None)
    return changed_values(saved, current, show=_show) + content


def check_resumable(path, checkpoint: dict, fingerprint: dict[str, Any], cfg: DistillConfig) -> None:
    """Raise a ConfigError naming every training key that changed since ``checkpoint`` was written."""
    changed = changed_keys(checkpoint, fingerprint, cfg)
    if changed:
        raise ConfigError(
            f"cannot resume {path}: settings that alter the training changed since it was written "
            f"({'; '.join(changed)}); resume with the settings it was written with"
            f"{' and its images as they were' if any(c.startswith('data.content') for c in changed) else ''}, "
            f"or start a new run in another train.output_dir"
        )
