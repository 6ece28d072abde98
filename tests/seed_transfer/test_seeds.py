"""The per-seed loop of detection and segmentation transfer: finished seeds are read back,
missing ones run; mean ± std over seeds."""

import json
import math

import pytest

from seed_transfer.seeds import mean_std, run_seeds


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
