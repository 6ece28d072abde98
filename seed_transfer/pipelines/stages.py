"""Stage bookkeeping shared by the pipelines (comparison and ablation): config paths that work
from anywhere, the record of what each stage did and how long it took, and the completeness
test of a distilled student."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from distill.schema import DistillConfig
from seed_core.atomic import atomic_save
from seed_core.checkpoint_files import safe_load

log = logging.getLogger(__name__)


REPO_ROOT = Path(__file__).resolve().parents[2]


def config_path(path: str) -> Path:
    """A config path as given, else relative to the repository (so the presets run from anywhere)."""
    given = Path(path).expanduser()
    return given if given.is_file() or given.is_absolute() else REPO_ROOT / given


def dataset_overrides(dataset: str | None) -> list[str]:
    """A pipeline's ``"name"`` / ``"name:root"`` dataset entry as classification overrides (None: the config's)."""
    if not dataset:
        return []
    name, _, root = dataset.partition(":")
    return [f"data.name={name}"] + ([f"data.root={root}"] if root else [])


def row_dir_name(name: str) -> str:
    return name.replace("+", "_")


class Stages:
    """Records what each stage did (``ran`` / ``skipped`` / ``ran as jobs``) and how long it took.

    ``jobs``: ``{(stage, row): seconds}`` of the stages that cluster jobs ran (:mod:`.compare.dag`);
    this process only reads or summarises their outputs, and records the jobs' seconds."""

    def __init__(self, path: Path, jobs: dict[tuple[str, str], float] | None = None):
        self.path, self.records, self.jobs = path, [], dict(jobs or {})
        previous = json.loads(path.read_text()) if path.is_file() else []
        # a skipped stage reports the seconds it took when it ran (kept in <output_dir>/stages.json)
        self.previous = {(r["stage"], r["row"]): r["seconds"] for r in previous}

    def run(self, stage: str, row: str, done: bool, fn):
        tic = time.perf_counter()
        in_jobs = (stage, row) in self.jobs
        if in_jobs:
            log.info("[%s] %s: ran as cluster jobs (%.0f s), collecting", stage, row, self.jobs[stage, row])
        elif done:
            log.info("[%s] %s: outputs exist, skipped", stage, row)
        else:
            log.info("[%s] %s: running", stage, row)
        value = fn()
        if in_jobs:
            seconds, status = self.jobs[stage, row], "ran as jobs"
        else:
            seconds = self.previous.get((stage, row), 0.0) if done else time.perf_counter() - tic
            status = "skipped" if done else "ran"
        self.records.append({"stage": stage, "row": row, "status": status, "seconds": round(seconds, 2)})
        merged = {(r["stage"], r["row"]): r for r in self.records}
        self.path.write_text(
            json.dumps(
                [
                    *({"stage": k[0], "row": k[1], "seconds": v} for k, v in self.previous.items() if k not in merged),
                    *self.records,
                ],
                indent=2,
            )
        )
        if not done and not in_jobs:
            log.info("[%s] %s: done in %.0f s", stage, row, seconds)
        return value


SETTINGS_FILE = "settings.json"  # beside a stage's outputs: the settings that produced them


def write_settings(folder: Path, settings: dict) -> None:
    """Record the settings that ``folder``'s outputs come from, before the first of them is written
    (so a partly finished folder is judged too), atomically (parallel jobs write the same file)."""
    text = json.dumps(settings, indent=2, sort_keys=True) + "\n"
    atomic_save(text, folder / SETTINGS_FILE, dump=lambda obj, f: f.write(obj.encode()))


def student_is_complete(path: Path, dcfg: DistillConfig) -> bool:
    """The export exists and records the last step of the configured schedule."""
    if not path.is_file():
        return False
    meta = safe_load(path).get("meta", {})
    step, total = meta.get("step"), meta.get("total_steps")
    target = min(total, dcfg.train.max_steps) if total is not None and dcfg.train.max_steps else total
    return step is not None and target is not None and step >= target
