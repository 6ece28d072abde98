"""A comparison whose student is MobileNetV3-Large (SEED's headline student), end to end at toy
size: distillation, classification transfer and detection through the torchvision engine
(MobileNetV3 + FPN), for the distilled row and random init."""

import csv
import sys
from pathlib import Path

import pytest

from seed_core.config import load_config
from seed_transfer.pipelines.compare import CompareConfig, run_compare

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests" / "golden"))
from golden import PRESET  # noqa: E402


def test_the_mobilenet_preset_resolves_to_the_torchvision_engine():
    from seed_transfer.pipelines.compare.plan import resolve

    cfg = load_config(CompareConfig, REPO / "configs/compare/demo_mnv3l.yaml")
    plan = resolve(cfg)
    assert cfg.student_arch == "mobilenet_v3_large" and {run.plan.engine for run in plan.det} == {"torchvision"}
    assert {d.student.arch for d in plan.distill.values()} == {"mobilenet_v3_large"}


@pytest.mark.slow
def test_a_mobilenet_v3_large_student_goes_through_every_stage(tmp_path):
    out = tmp_path / "cmp"
    cfg = load_config(
        CompareConfig,
        PRESET,
        [
            f"output_dir={out}",
            f"det.data_root={tmp_path / 'datasets'}",
            "student_arch=mobilenet_v3_large",
            "distill.strategies=[seed]",
            "distill.seeds=1",
            "rows.pixels=false",
            "rows.teacher=null",
            "det.seeds=1",
        ],
    )
    result = run_compare(cfg)
    with open(out / "results.csv") as f:
        rows = {r["row"]: r for r in csv.DictReader(f)}
    for name in ("seed", "random"):
        assert 0 <= float(rows[name]["knn digits"]) <= 100
        assert 0 <= float(rows[name]["AP"]) <= 100, rows[name]
    metrics = (out / "det" / "seed" / "seed0" / "metrics.json").read_text()
    assert '"arch": "mobilenet_v3_large"' in metrics and '"engine": "torchvision"' in metrics
    assert {s["stage"] for s in result["stages"]} == {"distill", "cls digits", "det"}
