"""A few FCN iterations on the real offline example: metrics per seed, summary, skip, resume, tool errors."""

import json
import os
from pathlib import Path

import pytest
import torch
import torchvision

from seed_transfer.segmentation.transfer import run_segmentation_transfer

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "configs" / "seg" / "demo_fcn-d8_voc_example.yaml"
TINY = [
    "data.crop_size=[64, 64]",
    "data.scale=[128, 64]",
    "schedule.iters=2",
    "schedule.log_interval=1",
    "schedule.checkpoint_interval=2",
]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("seg")
    torch.manual_seed(0)  # the random "checkpoint" must not depend on the tests that ran before
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp / "tv_r18.pth")
    summary = run_segmentation_transfer(
        DEMO, str(tmp / "tv_r18.pth"), tmp / "out", seeds=2, data_root=tmp / "data", opts=TINY, arch="resnet18"
    )
    return tmp, summary


def test_fcn_trains_and_reports_miou(demo_run):
    tmp, summary = demo_run
    assert summary["name"] == "tv_r18" and summary["seeds"] == 2 and summary["init"]["init"] == "converted"
    for metric in ("mIoU", "mAcc", "aAcc"):
        values = summary["summary"][metric]["values"]
        assert len(values) == 2 and all(0 <= v <= 100 for v in values)
    seed0 = json.loads((tmp / "out" / "seed0" / "metrics.json").read_text())
    per_class = seed0["results"]["per_class"]
    # aeroplane is not in the example: no accuracy; IoU 0 if it was predicted somewhere, else undefined
    assert len(per_class) == 21 and per_class["aeroplane"]["Acc"] is None
    assert per_class["aeroplane"]["IoU"] in (None, 0.0)
    assert per_class["person"]["IoU"] is not None
    assert seed0["schedule"]["iters"] == 2 and seed0["dataset"]["val_images"] == 1
    assert json.loads((tmp / "out" / "summary.json").read_text())["summary"] == summary["summary"]
    assert (tmp / "out" / "config.yaml").is_file() and (tmp / "out" / "summary.md").is_file()


def test_finished_seeds_are_skipped_and_resume_reads_mmengine_checkpoints(demo_run):
    tmp, summary = demo_run
    metrics = tmp / "out" / "seed0" / "metrics.json"
    stamp = metrics.stat().st_mtime_ns
    again = run_segmentation_transfer(
        DEMO, str(tmp / "tv_r18.pth"), tmp / "out", seeds=2, data_root=tmp / "data", opts=TINY, arch="resnet18"
    )
    assert metrics.stat().st_mtime_ns == stamp and again["summary"] == summary["summary"]
    # an interrupted seed: no metrics.json, a last checkpoint (MMEngine's pickles) to resume from
    os.remove(tmp / "out" / "seed1" / "metrics.json")
    resumed = run_segmentation_transfer(
        DEMO,
        str(tmp / "tv_r18.pth"),
        tmp / "out",
        seeds=2,
        data_root=tmp / "data",
        opts=TINY,
        arch="resnet18",
        resume=True,
    )
    assert (tmp / "out" / "seed1" / "metrics.json").is_file() and len(resumed["summary"]["mIoU"]["values"]) == 2


def test_tool_reports_bad_inputs(tmp_path, capsys):
    from seed_transfer.cli import transfer_seg as tool  # what tools/transfer_seg.py runs

    # random init without a depth
    assert tool.main(["--config", str(DEMO), "--output-dir", str(tmp_path / "a"), "model.depth=null"]) == 2
    assert "model.depth=50" in capsys.readouterr().err
    # a dataset folder in the wrong layout
    (tmp_path / "data").mkdir()
    config = ROOT / "configs" / "seg" / "fcn-d8_voc12aug-512x512_20k.yaml"
    assert (
        tool.main(
            [
                "--config",
                str(config),
                "--data-root",
                str(tmp_path / "data"),
                "--output-dir",
                str(tmp_path / "b"),
                "model.depth=18",
            ]
        )
        == 2
    )
    assert "JPEGImages" in capsys.readouterr().err
    # a checkpoint that is no ResNet
    torch.save(torchvision.models.mobilenet_v2(weights=None).state_dict(), tmp_path / "mnv2.pth")
    assert (
        tool.main(
            [
                "--config",
                str(DEMO),
                "--weights",
                str(tmp_path / "mnv2.pth"),
                "--arch",
                "mobilenet_v2",
                "--output-dir",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "plain 7x7 stem" in capsys.readouterr().err


def test_several_cpu_processes_are_refused_clearly(tmp_path, monkeypatch):
    if torch.cuda.is_available():
        pytest.skip("the refusal is for machines without CUDA")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match="one GPU per process"):
        run_segmentation_transfer(
            DEMO, "random", tmp_path / "out", data_root=tmp_path / "data", opts=[*TINY, "model.depth=18"]
        )


class _Requeued(Exception):
    pass


def test_slurms_signal_saves_the_running_iteration_and_hands_over_to_the_requeue(demo_run, tmp_path, monkeypatch):
    import signal

    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    tmp, _ = demo_run
    requeued = []

    def submitits_handler(signum, frame):  # stands for submitit's: it requeues the job and ends the process
        requeued.append(signum)
        raise _Requeued

    class SignalDuringIteration2(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            if runner.iter == 1:
                os.kill(os.getpid(), signal.SIGUSR2)

    train = Runner.train

    def train_with_a_signal(self):
        self.register_hook(SignalDuringIteration2(), priority="VERY_HIGH")
        return train(self)

    monkeypatch.setattr(Runner, "train", train_with_a_signal)
    opts = [*TINY[:3], "schedule.iters=4", "schedule.checkpoint_interval=100"]
    run = lambda **kw: run_segmentation_transfer(  # noqa: E731
        DEMO, str(tmp / "tv_r18.pth"), tmp_path / "out", seeds=1, data_root=tmp / "data", opts=opts,
        arch="resnet18", **kw,
    )  # fmt: skip
    previous = signal.signal(signal.SIGUSR2, submitits_handler)
    try:
        with pytest.raises(_Requeued):
            run()
    finally:
        signal.signal(signal.SIGUSR2, previous)
    seed_dir = tmp_path / "out" / "seed0"
    assert requeued == [signal.SIGUSR2]  # once, after the checkpoint
    assert (seed_dir / "last_checkpoint").read_text() == str(seed_dir / "iter_2.pth")  # no periodic one before
    assert torch.load(seed_dir / "iter_2.pth", map_location="cpu", weights_only=False)["meta"]["iter"] == 2
    assert signal.getsignal(signal.SIGUSR2) is previous  # the hook gave the handler back
    monkeypatch.setattr(Runner, "train", train)
    run(resume=True)
    assert json.loads((seed_dir / "metrics.json").read_text())["schedule"]["iters"] == 4
