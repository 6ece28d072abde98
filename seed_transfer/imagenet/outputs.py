"""What every ImageNet evaluation writes beside its results: the resolved config, the code version
(``config.yaml``, ``run_info.json``), and the result JSON; and the rules of its output folder."""

import json
from contextlib import AbstractContextManager
from pathlib import Path

from seed_core import distributed as du
from seed_core.config import dump_config, to_dict
from seed_core.run_info import code_version, write_run_info
from seed_core.runtime import CHECKPOINT_NAME, run_folder


def evaluation_folder(cfg, name: str, resume: bool, overwrite: bool) -> AbstractContextManager[Path]:
    """``cfg.train.output_dir`` as the run folder of the evaluation ``name`` (its result is
    ``<name>.json``), for the block: writable, locked, and a run already there (a checkpoint or a
    result) continued only with ``resume`` or started over only with ``overwrite``, which removes
    the run's files (a feature cache or demo data in the folder stay) (:func:`seed_core.runtime.run_folder`)."""
    result = f"{name}.json"
    return run_folder(
        cfg.train.output_dir,
        f"ImageNet evaluation ({name})",
        resume=resume,
        overwrite=overwrite,
        holds=(CHECKPOINT_NAME, result),
        removes=(CHECKPOINT_NAME, result, "config.yaml", "metrics.csv", "run_info.json"),
        folder_key="train.output_dir",
    )


def start_output(cfg, output_dir: str | Path) -> Path:
    out = Path(output_dir)
    if du.is_main_process():
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
        write_run_info(out, {"world_size": du.world_size()})
    return out


def write_result(out: Path, name: str, result: dict, cfg) -> dict:
    """``<out>/<name>.json`` with the result, the resolved config and the code version (main process)."""
    result = {**result, "config": to_dict(cfg), "code": code_version()}
    path = out / f"{name}.json"
    if du.is_main_process():
        path.write_text(json.dumps(result, indent=2))
    return {**result, "path": str(path)}
