"""A few Detectron2 iterations on the real tree tiles, end to end (CPU)."""

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

pytest.importorskip("detectron2")

from seed_transfer.detection.catalog import dataset_spec  # noqa: E402
from seed_transfer.detection.schedule import Schedule  # noqa: E402
from seed_transfer.detection.transfer import run_detection_transfer, summarize  # noqa: E402

REPO = Path(__file__).parents[3]
# Tiny and fast: 2 iterations, few proposals, small test images. Not a meaningful AP.
FAST = [
    "SOLVER.MAX_ITER",
    "2",
    "SOLVER.STEPS",
    "(1,)",
    "SOLVER.WARMUP_ITERS",
    "1",
    "SOLVER.IMS_PER_BATCH",
    "2",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "100",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "20",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "64",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "32",
    "INPUT.MIN_SIZE_TEST",
    "96",
    "INPUT.MIN_SIZE_TRAIN",
    "(96,)",
]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp("datasets")


def _not_json(constant):
    raise ValueError(f"{constant} is not JSON (jq refuses it)")


def test_r18_c4_from_a_student_export_writes_metrics(tmp_path, data_root):
    from distill.export import export_student
    from distill.models import build_backbone

    torch.manual_seed(0)
    export_student(build_backbone("resnet18")[0], "resnet18", tmp_path / "student.pth", meta={})
    summary = run_detection_transfer(
        str(REPO / "configs/det/trees_R_18_C4_demo.yaml"),
        str(tmp_path / "student.pth"),
        tmp_path / "out",
        seeds=2,
        data_root=str(data_root),
        opts=FAST,
    )
    assert summary["init"]["converted"] > 0 and summary["init"]["skipped"] == []
    # one console and one file handler, however many seeds ran in this process (not one pair per seed)
    assert len(logging.getLogger("detectron2").handlers) == 2
    # Detectron2's per-iteration log is not metrics.json, the file that marks a finished seed
    assert json.loads((tmp_path / "out" / "seed0" / "train_log.jsonl").read_text().splitlines()[0])["iteration"] >= 0
    metrics = json.loads((tmp_path / "out" / "seed0" / "metrics.json").read_text(), parse_constant=_not_json)
    assert set(metrics["results"]["bbox"]) >= {"AP", "AP50", "AP75", "APs", "APm", "APl"}
    json.loads((tmp_path / "out" / "summary.json").read_text(), parse_constant=_not_json)
    assert metrics["schedule"]["effective"]["max_iter"] == 2 and metrics["schedule"]["norm"] == "BN"
    assert list(metrics) == ["engine", "seed", "init", "schedule", "results"]  # the one schema, as torchvision's
    assert metrics["engine"] == "detectron2" and metrics["seed"] == 0 and metrics["init"] == summary["init"]
    assert set(summary["summary"]["bbox"]["AP"]) == {"mean", "std", "values"}
    assert (tmp_path / "out" / "summary.md").read_text().startswith("| init | task | AP | AP50 | AP75 |")
    # a finished seed is not trained again
    again = run_detection_transfer(
        str(REPO / "configs/det/trees_R_18_C4_demo.yaml"),
        str(tmp_path / "student.pth"),
        tmp_path / "out",
        seeds=2,
        data_root=str(data_root),
        opts=FAST,
    )
    assert json.dumps(again["summary"]) == json.dumps(summary["summary"])  # (APl may be nan)


def test_a_given_pkl_trains_from_its_checked_copy(tmp_path, data_root):
    """A MoCo-style .pkl: read by the restricted unpickler, copied, and the copy is what Detectron2 loads."""
    from seed_transfer.detection.convert import convert_checkpoint

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    convert_checkpoint(tmp_path / "r18.pth", tmp_path / "given" / "r18.pkl", arch="resnet18")
    result = run_detection_transfer(
        str(REPO / "configs/det/trees_R_18_C4_demo.yaml"),
        str(tmp_path / "given" / "r18.pkl"),
        tmp_path / "out",
        data_root=str(data_root),
        opts=FAST,
    )
    assert result["init"] == {"init": "detectron2 pkl"}
    log = (tmp_path / "out" / "seed0" / "log.txt").read_text()
    assert (
        f"Loading from {tmp_path / 'out' / 'backbone_d2.pkl'}" in log and "Reading a file from 'seed-transfer'" in log
    )


@pytest.mark.slow
def test_r50_fpn_random_init_via_the_cli(tmp_path, data_root):
    cmd = [
        sys.executable,
        str(REPO / "tools/transfer_det.py"),
        "--config",
        str(REPO / "configs/det/trees_R_50_FPN_demo.yaml"),
        "--weights",
        "random",
        "--data-root",
        str(data_root),
        "--output-dir",
        str(tmp_path / "fpn"),
        *FAST,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "fpn" / "summary.json").read_text())["summary"]["bbox"]["AP50"]["values"]


def test_matched_schedule_scales_lr_and_iterations():
    paper = Schedule(16, 0.02, 24000, (18000, 22000), 100)
    half = paper.scaled_to(8)
    assert half == Schedule(8, 0.01, 48000, (36000, 44000), 200)
    assert half.scaled_to(16) == paper


def test_summary_is_mean_and_std_over_seeds():
    runs = [{"results": {"bbox": {"AP": a, "AP50": 2 * a, "AP75": 0.0}}} for a in (10.0, 20.0)]
    summary = summarize(runs)
    assert summary["bbox"]["AP"]["mean"] == 15.0 and summary["bbox"]["AP"]["std"] == pytest.approx(7.0710678)


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="unknown detection dataset 'voc_2009_test'"):
        dataset_spec("voc_2009_test", tmp_path)
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), tmp_path / "mnv3.pth")
    cmd = [
        sys.executable,
        str(REPO / "tools/transfer_det.py"),
        "--config",
        str(REPO / "configs/det/voc_R_18_C4_24k.yaml"),
        "--weights",
        str(tmp_path / "mnv3.pth"),
        "--arch",
        "mobilenet_v3_small",
        "--output-dir",
        str(tmp_path / "o"),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "ResNets only" in result.stderr
    cmd[cmd.index("--weights") + 1 : cmd.index("--weights") + 4] = ["random"]  # drop --arch too
    cmd = [c for c in cmd if c != "mobilenet_v3_small"]
    result = subprocess.run(
        cmd + ["--data-root", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=300
    )
    assert result.returncode != 0 and "nowhere" in result.stderr


def test_det_table_gathers_initialisations_and_flags_mismatched_schedules(tmp_path):
    def write(name, max_iter):
        folder = tmp_path / name
        folder.mkdir()
        summary = {
            "name": name,
            "schedule": {"effective": {"max_iter": max_iter}},
            "summary": summarize([{"results": {"bbox": {"AP": 1.0, "AP50": 2.0, "AP75": 0.5}}}]),
        }
        (folder / "summary.json").write_text(json.dumps(summary))

    write("seed", 100)
    write("moco", 100)
    cmd = [sys.executable, str(REPO / "tools/det_table.py"), str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert "| moco | bbox | 1.00 ± 0.00 | 2.00 ± 0.00 | 0.50 ± 0.00 |" in out and "WARNING" not in out
    write("random", 50)
    assert (
        "WARNING: these runs used different schedules"
        in subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    )


def test_too_short_schedule_is_refused_with_the_keys(tmp_path):
    from seed_transfer.detection.d2.train_net import build_cfg
    from seed_transfer.detection.plan import DetRequest, make_plan

    def plan(**kwargs):
        return make_plan(
            DetRequest(REPO / "configs/det/trees_R_18_C4_demo.yaml", "random", tmp_path, engine="detectron2", **kwargs)
        )

    with pytest.raises(ValueError, match=r"SOLVER.MAX_ITER=1 must be >= 2"):
        plan(opts=["SOLVER.MAX_ITER", "1", "SOLVER.STEPS", "()"])
    with pytest.raises(ValueError, match=r"SOLVER.STEPS \[300\] must lie inside"):
        plan(opts=["SOLVER.STEPS", "(300,)"])
    scaled = plan(ims_per_batch=2)
    cfg, schedule = build_cfg(scaled, 0, tmp_path, None), scaled.schedule_entry()
    assert schedule["effective"] == {
        "ims_per_batch": 2,
        "base_lr": 0.01,
        "max_iter": 500,
        "steps": [300, 400],
        "warmup_iters": 50,
    }
    assert cfg.SOLVER.BASE_LR == 0.01 and cfg.MODEL.RESNETS.NORM == "BN"


def test_detectron2_reads_the_config_without_python_tags(tmp_path):
    """Detectron2's ``merge_from_file`` retries a file with ``!!python`` tags with ``yaml.unsafe_load``
    unless told not to; make_plan's reader refuses such a file first, and build_cfg also tells it not to."""
    import yaml

    from seed_transfer.detection.d2.train_net import build_cfg
    from seed_transfer.detection.plan import DetRequest, make_plan

    plan = make_plan(DetRequest(REPO / "configs/det/trees_R_18_C4_demo.yaml", "random", tmp_path, engine="detectron2"))
    config, marker = tmp_path / "payload.yaml", tmp_path / "marker"
    config.write_text(
        f'_BASE_: {plan.request.config}\nOUTPUT_DIR: !!python/object/apply:os.system ["touch {marker}"]\n'
    )
    with pytest.raises(yaml.constructor.ConstructorError, match="python/object/apply:os.system"):
        build_cfg(
            dataclasses.replace(plan, request=dataclasses.replace(plan.request, config=config)), 0, tmp_path, None
        )
    assert not marker.exists()


class _Stopped(Exception):
    pass


@pytest.mark.slow
def test_an_interrupted_seed_continues_from_its_last_checkpoint(tmp_path, data_root, monkeypatch):
    from detectron2.engine import HookBase

    from seed_transfer.detection.d2.train_net import Trainer

    class StopAfterIteration4(HookBase):  # after the checkpointer: as if killed right after a save
        def after_step(self):
            if self.trainer.iter == 3:
                raise _Stopped

    build_hooks = Trainer.build_hooks
    monkeypatch.setattr(Trainer, "build_hooks", lambda self: [*build_hooks(self), StopAfterIteration4()])
    config = str(REPO / "configs/det/trees_R_18_C4_demo.yaml")
    opts = [*FAST, "SOLVER.MAX_ITER", "6", "SOLVER.STEPS", "(5,)", "SOLVER.CHECKPOINT_PERIOD", "2"]
    run = lambda: run_detection_transfer(
        config,
        "random",
        tmp_path,
        seeds=1,
        data_root=str(data_root),  # noqa: E731
        opts=opts,
        resume=True,
    )
    with pytest.raises(_Stopped):
        run()
    seed_dir = tmp_path / "seed0"
    # checkpoints after iterations 2 and 4; only the latest resume point is kept
    assert sorted(p.name for p in seed_dir.glob("model_*.pth")) == ["model_0000003.pth"]
    assert not (seed_dir / "metrics.json").exists()
    monkeypatch.setattr(Trainer, "build_hooks", build_hooks)
    run()
    starts = [line for line in (seed_dir / "log.txt").read_text().splitlines() if "Starting training from" in line]
    assert starts[0].endswith("iteration 0") and starts[-1].endswith("iteration 4")
    assert json.loads((seed_dir / "metrics.json").read_text())["results"]["bbox"]["AP50"] >= 0
    # a finished seed keeps its full final state only, and resuming names it
    assert sorted(p.name for p in seed_dir.glob("model_*.pth")) == ["model_final.pth"]
    assert (seed_dir / "last_checkpoint").read_text() == "model_final.pth"


def test_slurms_signal_saves_the_running_iteration_and_hands_over_to_the_requeue(tmp_path, data_root, monkeypatch):
    import os
    import signal

    from detectron2.engine import HookBase

    from seed_transfer.detection.d2.train_net import Trainer

    requeued = []

    def submitits_handler(signum, frame):  # stands for submitit's: it requeues the job and ends the process
        requeued.append(signum)
        raise _Stopped

    class SignalDuringIteration2(HookBase):  # before the others: the signal comes while iteration 2 runs
        def before_step(self):
            if self.trainer.iter == 2:
                os.kill(os.getpid(), signal.SIGUSR2)

    build_hooks = Trainer.build_hooks
    monkeypatch.setattr(Trainer, "build_hooks", lambda self: [SignalDuringIteration2(), *build_hooks(self)])
    previous = signal.signal(signal.SIGUSR2, submitits_handler)
    config = str(REPO / "configs/det/trees_R_18_C4_demo.yaml")
    opts = [*FAST, "SOLVER.MAX_ITER", "6", "SOLVER.STEPS", "(5,)", "SOLVER.CHECKPOINT_PERIOD", "100"]
    run = lambda: run_detection_transfer(  # noqa: E731
        config, "random", tmp_path, seeds=1, data_root=str(data_root), opts=opts, resume=True
    )
    try:
        with pytest.raises(_Stopped):
            run()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    seed_dir = tmp_path / "seed0"
    assert requeued == [signal.SIGUSR2]  # once, after the checkpoint
    assert (seed_dir / "last_checkpoint").read_text() == "model_0000002.pth"  # no periodic one before it
    assert torch.load(seed_dir / "model_0000002.pth", map_location="cpu", weights_only=False)["iteration"] == 2
    assert signal.getsignal(signal.SIGUSR2) is previous  # the hook gave the handler back
    monkeypatch.setattr(Trainer, "build_hooks", build_hooks)
    run()
    starts = [line for line in (seed_dir / "log.txt").read_text().splitlines() if "Starting training from" in line]
    assert starts[-1].endswith("iteration 3")  # the iteration after the one the signal interrupted
    assert (seed_dir / "metrics.json").is_file()
