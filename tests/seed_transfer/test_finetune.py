"""What detection and segmentation transfer share: the request, the weight preparation, the
per-seed loop (finished seeds are read back, missing ones run), mean ± std over seeds, the
summary and its markdown."""

import json
import math

import numpy as np
import pytest
import torch

from seed_core.config import ConfigError
from seed_transfer.backbones import is_random, weights_name
from seed_transfer.finetune import (
    FinetuneRequest,
    gather_summaries,
    json_line,
    markdown_table,
    mean_std,
    prepare_weights,
    run_seeds,
    summarize,
    write_json,
    write_summary,
)


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
    assert mean_std([1, 3]) == {"mean": 2.0, "std": pytest.approx(2**0.5), "values": [1.0, 3.0]}
    assert mean_std([4.0])["std"] == 0.0
    undefined = mean_std([float("nan"), float("nan")])  # APl without large objects, two seeds
    assert math.isnan(undefined["mean"]) and math.isnan(undefined["std"])


def _refuse(constant):
    raise ValueError(f"not strict JSON: {constant}")


def test_results_are_strict_json_with_null_for_undefined_metrics(tmp_path):
    path = tmp_path / "seed0" / "metrics.json"
    write_json(
        {
            "results": {"bbox": {"AP": np.float32(12.5), "APl": float("nan"), "APm": np.float64("inf")}},
            "iterations": np.int64(3),
            "loss": torch.tensor(0.5),
            "ok": True,
            "weights": None,
        },
        path,
    )
    blob = json.loads(path.read_text(), parse_constant=_refuse)  # NaN, Infinity would be refused
    assert blob == {
        "results": {"bbox": {"AP": 12.5, "APl": None, "APm": None}},
        "iterations": 3,
        "loss": 0.5,
        "ok": True,
        "weights": None,
    }
    assert json.loads(json_line({"total_loss": float("-inf")}), parse_constant=_refuse) == {"total_loss": None}
    assert list(path.parent.iterdir()) == [path]  # written atomically: no temporary left


def test_mean_std_reads_null_as_undefined():
    undefined = mean_std([None, 3.0])  # a metric written as null by a finished seed
    assert math.isnan(undefined["mean"]) and math.isnan(undefined["std"])


def test_one_rule_names_rows_and_recognises_a_random_init():
    assert [is_random(w) for w in (None, "", "random", "random.pth")] == [True, True, True, False]
    assert weights_name("/ckpt/moco_v2_800ep_pretrain.pth.tar") == "moco_v2_800ep_pretrain"
    assert weights_name("") == weights_name(None) == "random"
    request = FinetuneRequest("c.yaml", "/x/student.pth", "out", opts=["a=1"])
    assert request.row == "student" and request.opts == ("a=1",) and request.output_dir.name == "out"
    assert FinetuneRequest("c.yaml", "random", "out", name="mine").row == "mine"
    with pytest.raises(ConfigError, match="seeds=0 must be >= 1"):
        FinetuneRequest("c.yaml", "random", "out", seeds=0).check()


def test_weights_are_converted_once_and_the_init_records_the_report(tmp_path, caplog):
    calls = []

    def convert(weights, out, arch, layout, allow_unsafe_pickle):
        calls.append((weights, out, arch, layout, allow_unsafe_pickle))
        out.write_text("converted")
        return {
            "arch": "resnet18",
            "depth": 18,
            "layout": "student",
            "converted": 40,
            "skipped": ["fc.weight"],
            "dropped": [],
            "settings": {"not": "recorded"},
        }

    request = FinetuneRequest("c.yaml", "student.pth", tmp_path, arch="resnet18")
    prepared = prepare_weights(request, tmp_path / "backbone.pkl", convert)
    assert calls == [("student.pth", tmp_path / "backbone.pkl", "resnet18", "auto", False)]
    assert prepared.file == str(tmp_path / "backbone.pkl") and (tmp_path / "backbone.pkl").read_text() == "converted"
    assert prepared.init == {
        "init": "converted",
        "arch": "resnet18",
        "depth": 18,
        "layout": "student",
        "converted": 40,
        "skipped": ["fc.weight"],
        "dropped": [],
    }
    assert "fc.weight" in caplog.text  # keys not converted are reported
    random = prepare_weights(FinetuneRequest("c.yaml", "random", tmp_path), tmp_path / "unused.pkl", convert)
    assert (random.file, random.init, len(calls)) == (None, {"init": "random"}, 1)


def test_summary_over_seeds_and_its_markdown(tmp_path):
    seeds = [{"AP": 10.0, "APl": None}, {"AP": 20.0, "APl": 3.0}]
    summary = summarize(seeds, ("AP", "APl", "APm"))
    assert summary["AP"] == {"mean": 15.0, "std": pytest.approx(7.0710678), "values": [10.0, 20.0]}
    assert math.isnan(summary["APl"]["mean"]) and "APm" not in summary  # undefined in one seed: undefined
    table = markdown_table([{"name": "seed", "summary": summary}], ("AP", "APl", "APm"))
    assert table.splitlines() == ["| init | AP | APl | APm |", "|---|---|---|---|", "| seed | 15.00 ± 7.07 | - | - |"]
    by_task = markdown_table([{"name": "moco", "summary": {"bbox": summary, "segm": {}}}], ("AP",), by_task=True)
    assert by_task.splitlines()[2:] == ["| moco | bbox | 15.00 ± 7.07 |", "| moco | segm | - |"]

    request = FinetuneRequest("c.yaml", "/w/moco.pth.tar", tmp_path / "row", seeds=2)
    request.output_dir.mkdir()
    per_seed = [{"init": {"init": "converted"}, "schedule": {"iters": 2}, "results": r} for r in seeds]
    record = write_summary(request, "engine", per_seed, summary, lambda s: markdown_table(s, ("AP",)), extra=1)
    assert record["name"] == "moco" and record["seeds"] == 2 and record["extra"] == 1
    assert record["init"] == {"init": "converted"} and record["schedule"] == {"iters": 2}
    written = json.loads((tmp_path / "row" / "summary.json").read_text(), parse_constant=_refuse)
    assert written["summary"]["APl"]["mean"] is None  # strict JSON
    assert (tmp_path / "row" / "summary.md").read_text().endswith("| moco | 15.00 ± 7.07 |\n")
    assert [s["name"] for s in gather_summaries([tmp_path])] == ["moco"]
