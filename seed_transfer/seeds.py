"""Fine-tuning over several seeds, shared by detection and segmentation transfer: one folder
per seed (``seed<k>/metrics.json``, skipped when it exists, so an interrupted comparison
continues) and mean ± std over the seeds.
"""

import json
import logging
import math
import statistics
from pathlib import Path
from typing import Callable

log = logging.getLogger(__name__)
METRICS_FILE = "metrics.json"


def run_seeds(output_dir: str | Path, seeds: int, run_one: Callable[[int, Path], dict]) -> list[dict]:
    """``run_one(seed, seed_dir)`` for every seed without a ``seed_dir/metrics.json`` (which
    ``run_one`` writes); the finished seeds' results are read back. Returns one dict per seed."""
    results = []
    for seed in range(seeds):
        seed_dir = Path(output_dir) / f"seed{seed}"
        done = seed_dir / METRICS_FILE
        if done.is_file():
            log.info("seed %d: %s exists, skipped", seed, done)
            results.append(json.loads(done.read_text()))
        else:
            results.append(run_one(seed, seed_dir))
    return results


def mean_std(values: list[float]) -> dict:
    """``{"mean", "std" (sample; 0 for one value), "values"}`` of one metric over seeds. An
    undefined value (NaN, e.g. COCO's APl on a set without large objects) makes both NaN."""
    values = [float(v) for v in values]
    if any(math.isnan(v) for v in values):
        return {"mean": math.nan, "std": math.nan, "values": values}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}
