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
from seed_core.file_content import content_changes

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


def stale_student(dcfg, contents: dict | None = None) -> list[str]:
    """Settings that differ between ``dcfg`` and the distillation already in its output folder: the
    config its exported student records or, with no student (not exported yet, or removed while its
    results were kept), the ``config.yaml`` the run wrote when it started. ``contents``: see :func:`stale_data`."""
    import yaml

    from distill.trainer import CONFIG_NAME, STUDENT_NAME
    from seed_core.checkpoint_files import safe_load

    student, started = Path(dcfg.train.output_dir) / STUDENT_NAME, Path(dcfg.train.output_dir) / CONFIG_NAME
    if student.is_file():
        saved = safe_load(student).get("meta", {}).get("config") or {}
    elif started.is_file():
        saved = yaml.safe_load(started.read_text()) or {}
    else:
        return []
    changed = changed_settings(saved, to_dict(dcfg), RESULT_SECTIONS, STUDENT_NEUTRAL) if saved else []
    return changed + stale_data(dcfg, contents)


def stale_data(dcfg, contents: dict | None = None) -> list[str]:
    """How the images differ from those the distillation in ``dcfg``'s output folder trained on, as its
    checkpoint's fingerprint recorded them (:mod:`distill.resume`): their number, names and content
    (sizes and modification times, :func:`distill.data.file_content`): ``["data.content: ..."]``.
    Nothing when there is no checkpoint, when it predates the content record, or when the data cannot
    be opened here (the distillation itself says why, if it runs). Costs a listing and a name hash per
    student, and one ``stat`` per image (~40 us per file measured: ~50 s for ImageNet's 1.28M) once per
    data source when the caller passes one ``contents`` dict for all its students (a comparison's or a
    grid's check: the record is taken once, at the check, and shared)."""
    from distill.data import source_content, source_identity
    from distill.trainer import CHECKPOINT_NAME, build_source
    from seed_core.checkpoint_files import safe_load
    from seed_core.errors import UserError

    path = Path(dcfg.train.output_dir) / CHECKPOINT_NAME
    if not path.is_file():
        return []
    saved = safe_load(path).get("fingerprint") or {}
    if "data.content" not in saved:
        return []
    try:
        source = build_source(dcfg)
    except UserError:
        return []
    identity = source_identity(dcfg.data, source)
    changed = changed_values(
        {k: saved.get(f"data.{k}") for k in ("length", "images")},
        {k: identity[k] for k in ("length", "images")},
        show=lambda key, value: f"sha256 {value[7:19]}..." if str(value).startswith("sha256:") else repr(value),
    )
    contents = {} if contents is None else contents
    known = json.dumps(identity, sort_keys=True)
    if known not in contents:
        contents[known] = source_content(source)
    current = contents[known]
    content = content_changes(saved["data.content"], current) if saved["data.content"] and current else None
    return [f"data.{line}" for line in changed] + ([f"data.content: {content}"] if content else [])


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
