"""Outputs written by an earlier run with other settings: found before anything runs, so a
changed preset on an existing ``output_dir`` never mixes old and new results silently.

One rule for the comparison and the ablation runner: a finished student depends on the
``RESULT_SECTIONS`` of its distillation config (less ``STUDENT_NEUTRAL``), a classification
result on the protocol sections of its transfer config (less ``CLS_NEUTRAL``: how fast it ran).
"""

from __future__ import annotations

import json
from pathlib import Path

from seed_core.config import ConfigError, changed_values, flatten, to_dict

from .stages import SETTINGS_FILE

RESULT_SECTIONS = ("student", "teacher", "distill", "data", "optim")  # what a finished student depends on
STUDENT_NEUTRAL = ("data.num_workers", "data.max_bad_images", "teacher.cache_dir", "teacher.cache_batch_size")
CLS_SECTIONS = ("data", "features", "linear", "knn", "fewshot")  # a result's protocol (the model is the row's)
CLS_NEUTRAL = ("features.num_workers", "features.batch_size", "features.cache_dir", "linear.n_jobs")


def changed_settings(
    saved: dict, current: dict, sections: tuple[str, ...] | None = None, neutral: tuple[str, ...] = ()
) -> list[str]:
    """``["optim.base_lr: 0.03 -> 0.06", ...]``: the keys of ``current`` (a nested config dict) whose
    value differs in ``saved``, within ``sections`` (None: all), leaving out ``neutral`` keys and keys
    that ``saved`` does not record (settings added since, whose defaults keep the old behaviour)."""
    return changed_values(
        flatten(saved),
        flatten(current),
        skip=lambda key: (sections is not None and key.split(".")[0] not in sections) or key in neutral,
    )


def stale_student(dcfg) -> list[str]:
    """Settings that differ between ``dcfg`` and the distillation already in its output folder: the
    config its exported student records or, with no student (not exported yet, or removed while its
    results were kept), the ``config.yaml`` the run wrote when it started."""
    import yaml

    from seed_core.checkpoint_files import safe_load
    from distill.trainer import CONFIG_NAME, STUDENT_NAME

    student, started = Path(dcfg.train.output_dir) / STUDENT_NAME, Path(dcfg.train.output_dir) / CONFIG_NAME
    if student.is_file():
        saved = safe_load(student).get("meta", {}).get("config") or {}
    elif started.is_file():
        saved = yaml.safe_load(started.read_text()) or {}
    else:
        return []
    return changed_settings(saved, to_dict(dcfg), RESULT_SECTIONS, STUDENT_NEUTRAL) if saved else []


def stale_result(saved_config: dict | None, ccfg) -> list[str]:
    """Protocol settings that differ between a classification result's recorded config and ``ccfg``."""
    return changed_settings(saved_config, to_dict(ccfg), CLS_SECTIONS, CLS_NEUTRAL) if saved_config else []


def stale_folder(folder: Path, settings: dict) -> list[str]:
    """Settings that differ between ``settings`` and those recorded in ``folder`` by
    :func:`~seed_transfer.pipelines.stages.write_settings` (``["opts: [...] -> [...]"]``; nothing
    when the folder records none, e.g. written before they were kept)."""
    recorded = folder / SETTINGS_FILE
    return changed_settings(json.loads(recorded.read_text()), settings) if recorded.is_file() else []


def refuse_stale(output_dir: str | Path, problems: list[str]) -> None:
    """Stop, naming every output of other settings in ``output_dir`` (none: nothing happens)."""
    if problems:
        raise ConfigError(
            f"{output_dir} holds outputs of other settings ({' | '.join(problems)}); use another "
            f"output_dir for the new settings, or delete those outputs to redo them"
        )
