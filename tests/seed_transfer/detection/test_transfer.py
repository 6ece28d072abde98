"""seed_transfer.detection.transfer: what the Detectron2 engine is given as its backbone (no Detectron2
needed). A given .pkl reaches Detectron2, which unpickles it freely, only as a checked copy."""

import pickle

import numpy as np
import pytest
from pickle_files import Payload, write_pickle

from seed_core.safe_pickle import RefusedPickle
from seed_transfer.detection.plan import DetPlan, DetRequest
from seed_transfer.detection.schedule import Schedule
from seed_transfer.detection.transfer import prepare_backbone, transfer

SCHEDULE = Schedule(2, 0.01, 10, (5,), 1)


def _plan(weights, out, engine="detectron2") -> DetPlan:
    request = DetRequest("configs/det/trees_R_18_C4_demo.yaml", str(weights), out, engine=engine)
    return DetPlan(request, engine, "cpu", 1, (("RESNETS", "BN"),), SCHEDULE, SCHEDULE)


def test_a_given_pkl_is_checked_and_detectron2_gets_the_copy(tmp_path):
    model = {"stem.conv1.weight": np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2)}
    given = write_pickle(tmp_path / "moco.pkl", {"model": model, "__author__": "MOCO", "matching_heuristics": True})
    backbone = prepare_backbone(_plan(given, tmp_path / "out"))
    assert backbone.file == str(tmp_path / "out" / "backbone_d2.pkl") and backbone.init == {"init": "detectron2 pkl"}
    with open(backbone.file, "rb") as f:
        copied = pickle.load(f, encoding="latin1")
    np.testing.assert_array_equal(copied["model"]["stem.conv1.weight"], model["stem.conv1.weight"])


@pytest.mark.parametrize("run", [prepare_backbone, transfer])
def test_a_pkl_with_a_payload_is_refused_before_anything_is_written(tmp_path, monkeypatch, run):
    marker = tmp_path / "marker"
    given = write_pickle(tmp_path / "moco.pkl", {"model": {"w": Payload(marker)}, "__author__": "x"})
    plan = _plan(given, tmp_path / "out")
    monkeypatch.setattr("seed_transfer.detection.transfer.make_plan", lambda request: plan)  # Detectron2 or not
    with pytest.raises(RefusedPickle, match=f"{given}: refused to unpickle 'posix.system'"):
        run(plan if run is prepare_backbone else plan.request)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_the_torchvision_engine_reads_the_checkpoint_itself(tmp_path):
    backbone = prepare_backbone(_plan(tmp_path / "student.pth", tmp_path / "out", engine="torchvision"))
    assert backbone.file == str(tmp_path / "student.pth") and backbone.init is None
