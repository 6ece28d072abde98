"""What every ImageNet evaluation writes beside its results: the resolved config, the code version
(``config.yaml``, ``run_info.json``), and the result JSON."""

import json
from pathlib import Path

from seed_core import distributed as du
from seed_core.config import dump_config, to_dict
from seed_core.run_info import code_version, write_run_info


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
