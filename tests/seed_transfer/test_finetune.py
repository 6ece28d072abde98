"""The per-seed loop of detection and segmentation transfer: finished seeds are read back,
missing ones run; mean ± std over seeds."""

import json
import math

import numpy as np
import pytest
import torch

from seed_transfer.finetune import json_line, mean_std, run_seeds, write_json


def test_finished_seeds_are_read_back_and_missing_ones_run(tmp_path):
    (tmp_path / "seed1").mkdir()
    (tmp_path / "seed1" / "metrics.json").write_text(json.dumps({"seed": 1, "AP": 5.0}))
    ran = []

    def run_one(seed, seed_dir):
        ran.append(seed)
        seed_dir.mkdir(parents=True)
        result = {"seed": seed, "AP": float(seed)}
        (seed_dir / "metrics.json").write_text(json.dumps(result))
        return result

    results = run_seeds(tmp_path, 3, run_one)
    assert ran == [0, 2] and [r["AP"] for r in results] == [0.0, 5.0, 2.0]
    assert run_seeds(tmp_path, 3, run_one) == results and ran == [0, 2]  # nothing runs twice


def test_mean_std_is_the_sample_std():
    assert mean_std([1, 3]) == {"mean": 2.0, "std": pytest.approx(2 ** 0.5), "values": [1.0, 3.0]}
    assert mean_std([4.0])["std"] == 0.0
    undefined = mean_std([float("nan"), float("nan")])  # APl without large objects, two seeds
    assert math.isnan(undefined["mean"]) and math.isnan(undefined["std"])


def _refuse(constant):
    raise ValueError(f"not strict JSON: {constant}")


def test_results_are_strict_json_with_null_for_undefined_metrics(tmp_path):
    path = tmp_path / "seed0" / "metrics.json"
    write_json({"results": {"bbox": {"AP": np.float32(12.5), "APl": float("nan"), "APm": np.float64("inf")}},
                "iterations": np.int64(3), "loss": torch.tensor(0.5), "ok": True, "weights": None}, path)
    blob = json.loads(path.read_text(), parse_constant=_refuse)  # NaN, Infinity would be refused
    assert blob == {"results": {"bbox": {"AP": 12.5, "APl": None, "APm": None}}, "iterations": 3, "loss": 0.5,
                    "ok": True, "weights": None}
    assert json.loads(json_line({"total_loss": float("-inf")}), parse_constant=_refuse) == {"total_loss": None}
    assert list(path.parent.iterdir()) == [path]  # written atomically: no temporary left


def test_mean_std_reads_null_as_undefined():
    undefined = mean_std([None, 3.0])  # a metric written as null by a finished seed
    assert math.isnan(undefined["mean"]) and math.isnan(undefined["std"])
