"""Fine-tuning over several seeds, shared by detection and segmentation transfer: one folder
per seed (``seed<k>/metrics.json``, skipped when it exists, so an interrupted comparison
continues) and mean ± std over the seeds.

Results files are strict JSON (:func:`write_json`): an undefined metric (NaN, e.g. COCO's APl
on a set without large objects) is written as ``null``, which ``jq`` and every JSON parser
read; a bare ``NaN`` is Python's extension, not JSON. Readers take ``null`` as undefined.
"""

import json
import logging
import math
import numbers
import statistics
from pathlib import Path
from typing import Callable

from distill.export import atomic_save

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


def json_safe(value):
    """``value`` with every non-finite number as None (JSON null) and numpy/torch scalars as
    Python numbers, through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {key: json_safe(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real) or (hasattr(value, "item") and getattr(value, "ndim", None) == 0):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def json_line(obj) -> str:
    """One line of strict JSON (for ``.jsonl`` logs)."""
    return json.dumps(json_safe(obj), allow_nan=False)


def write_json(obj, path: str | Path) -> None:
    """``obj`` as strict, indented JSON at ``path`` (:func:`json_safe`), written atomically: a
    killed write cannot leave a truncated ``metrics.json`` that marks a seed as finished."""
    text = json.dumps(json_safe(obj), indent=2, allow_nan=False)
    atomic_save(text, path, dump=lambda t, f: f.write(t.encode()))


def mean_std(values: list[float | None]) -> dict:
    """``{"mean", "std" (sample; 0 for one value), "values"}`` of one metric over seeds. An
    undefined value (NaN, or None as read back from JSON null) makes both NaN."""
    values = [math.nan if v is None else float(v) for v in values]
    if any(math.isnan(v) for v in values):
        return {"mean": math.nan, "std": math.nan, "values": values}
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}
