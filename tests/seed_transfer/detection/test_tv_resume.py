"""The torchvision engine resumes bit-identically: a run interrupted right after its checkpoint
and resumed in a process whose RNGs were seeded otherwise ends with the weights, optimizer
state and losses of an uninterrupted run, and its torch and Python RNG streams continue as that
run's did (the checkpoint holds Python's ``random`` too; the loader draws its seed before the
RNG state is restored)."""

import json
import random
from pathlib import Path

import pytest
import torch

from seed_transfer.detection.plan import DetRequest, make_plan
from seed_transfer.detection.tv.config import load_config, load_run_config
from seed_transfer.detection.tv.data import load_training_records
from seed_transfer.detection.tv.train import build_model, train

REPO = Path(__file__).parents[3]
C4 = REPO / "configs/det/trees_R_18_C4_demo.yaml"
ITERATIONS = 4
FAST = [
    "SOLVER.MAX_ITER",
    str(ITERATIONS),
    "SOLVER.STEPS",
    "(2,)",
    "SOLVER.WARMUP_ITERS",
    "1",
    "SOLVER.IMS_PER_BATCH",
    "2",
    "SOLVER.CHECKPOINT_PERIOD",
    "1",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "16",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "8",
    "INPUT.MIN_SIZE_TRAIN",
    "(64,)",
]


class Interrupted(Exception):
    pass


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    cfg = load_config(C4, FAST)
    return load_training_records(
        cfg.DATASETS.TRAIN, str(tmp_path_factory.mktemp("datasets")), cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    )[0]


def run(records, output_dir: Path, process_seed: int, resume=False, interrupt_at=None):
    """Train as ``run_seed`` does in a new process whose Python RNG has ``process_seed``; each
    iteration's forward first draws once from torch's and once from Python's RNG (the draws are
    returned). ``interrupt_at``: the iteration that is killed before its forward."""
    random.seed(process_seed)
    cfg = load_run_config(make_plan(DetRequest(C4, "random", output_dir, opts=FAST, engine="torchvision")))
    torch.manual_seed(0)  # run_seed seeds each process with seed + rank
    model, _ = build_model(cfg, "random", seed=0)
    draws, forward = [], model.forward

    def probed_forward(images, targets=None):
        if interrupt_at is not None and len(draws) == interrupt_at:
            raise Interrupted
        draws.append((torch.rand(()).item(), random.random()))
        return forward(images, targets)

    model.forward = probed_forward
    output_dir.mkdir(parents=True, exist_ok=True)
    train(cfg, model, records, output_dir, seed=0, device=torch.device("cpu"), resume=resume)
    return draws


def losses(output_dir: Path) -> dict[int, dict]:
    rows = [json.loads(line) for line in (output_dir / "train_log.jsonl").read_text().splitlines()]
    return {row["iteration"]: {k: v for k, v in row.items() if k not in ("time", "data_time")} for row in rows}


@pytest.mark.slow
def test_an_interrupted_run_resumes_bit_identically_including_python_rng(tmp_path, records):
    full = run(records, tmp_path / "full", process_seed=1)
    with pytest.raises(Interrupted):
        run(records, tmp_path / "parts", process_seed=1, interrupt_at=2)
    saved = torch.load(tmp_path / "parts" / "checkpoint.pth", weights_only=True)
    assert saved["step"] == 2 and "python" in saved["rng"]
    resumed = run(records, tmp_path / "parts", process_seed=2, resume=True)  # a new process
    assert resumed == full[2:]  # both RNG streams continue where the interrupted run left them
    ends = [torch.load(tmp_path / name / "checkpoint.pth", weights_only=True) for name in ("full", "parts")]
    assert ends[0]["step"] == ends[1]["step"] == ITERATIONS
    for key, value in ends[0]["model"].items():
        assert torch.equal(value, ends[1]["model"][key]), key
    for key, value in ends[0]["optimizer"]["state"].items():
        assert torch.equal(value["momentum_buffer"], ends[1]["optimizer"]["state"][key]["momentum_buffer"]), key
    assert losses(tmp_path / "parts")[ITERATIONS] == losses(tmp_path / "full")[ITERATIONS]


def test_resuming_with_a_changed_fine_tuning_setting_is_refused_naming_it(tmp_path):
    from seed_core.config import ConfigError
    from seed_transfer.detection.tv.train import check_resume_fingerprint

    path = tmp_path / "checkpoint.pth"
    saved = {"SOLVER.BASE_LR": 0.02, "SOLVER.STEPS": (1,), "SOLVER.CHECKPOINT_PERIOD": 50, "seed": 0}
    check_resume_fingerprint(path, saved, dict(saved))
    check_resume_fingerprint(path, saved, {**saved, "SOLVER.CHECKPOINT_PERIOD": 10, "DATALOADER.NUM_WORKERS": 4})
    check_resume_fingerprint(path, None, {**saved, "SOLVER.BASE_LR": 0.01})  # written before fingerprints
    with pytest.raises(
        ConfigError, match=r"cannot resume .*checkpoint.pth.*SOLVER.BASE_LR: 0.02 -> 0.01; seed: 0 -> 1"
    ):
        check_resume_fingerprint(path, saved, {**saved, "SOLVER.BASE_LR": 0.01, "seed": 1})
