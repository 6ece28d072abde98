"""Bad input to the tools ends with one line, ``error: <message>`` naming what to fix, exit
status 2 and no traceback, and writes nothing to the output folder. One subprocess per case,
each failing before any model is trained (a few seconds, mostly the imports)."""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torchvision

from tiny import make_image_folder

REPO = Path(__file__).parents[1]


def run_tool(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / tool), *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def assert_one_line_error(result: subprocess.CompletedProcess, *expected: str) -> str:
    """Exit 2, no traceback, the last stderr line is the only ``error:`` line and says ``expected``."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr[-3000:]
    for text in expected:
        assert text in lines[-1], lines[-1]
    return lines[-1]


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> SimpleNamespace:
    """A real teacher file, and every bad file and folder of the matrix."""
    root = tmp_path_factory.mktemp("bad_input")
    torch.manual_seed(0)
    teacher = root / "mobilenet_v3_small.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), teacher)
    truncated = root / "truncated.pth"
    truncated.write_bytes(teacher.read_bytes()[: teacher.stat().st_size // 2])
    text = root / "notes.pth"
    text.write_text("learning rate 0.03, batch 256\n")
    (root / "checkpoints").mkdir()
    (root / "empty").mkdir()
    for name in ("a", "b"):
        (root / "class_folders" / name).mkdir(parents=True)
    (root / "non_images" / "a").mkdir(parents=True)
    (root / "non_images" / "a" / "README.txt").write_text("photos to come\n")
    (root / "non_images" / "a" / "labels.csv").write_text("file,label\n")
    return SimpleNamespace(root=root, teacher=teacher, truncated=truncated, text=text, directory=root / "checkpoints",
                           images=make_image_folder(root / "images", classes=2, per_class=4),
                           few=make_image_folder(root / "few", classes=2, per_class=2),
                           empty=root / "empty", class_folders=root / "class_folders",
                           non_images=root / "non_images")


def distill_args(bad, out: Path, **overrides) -> list[str]:
    settings = {"data.root": bad.images, "teacher.weights": bad.teacher, "teacher.arch": "mobilenet_v3_small",
                "student.arch": "resnet18", "data.image_size": 32, "data.num_workers": 0, "optim.batch_size": 8,
                "distill.queue_size": 64, "optim.epochs": 1, "train.tensorboard": "false", "train.output_dir": out,
                **overrides}
    return ["--config", REPO / "configs/distill/base.yaml", *(f"{key}={value}" for key, value in settings.items())]


DISTILL_CASES = {  # case -> (overrides, what the error line says)
    "truncated teacher checkpoint": (
        lambda b: {"teacher.weights": b.truncated},
        ["truncated.pth is truncated or damaged (PytorchStreamReader failed", "copy or download it again"]),
    "text file as teacher checkpoint": (
        lambda b: {"teacher.weights": b.text}, ["notes.pth is not a checkpoint (it starts with", "check the path"]),
    "directory as teacher checkpoint": (
        lambda b: {"teacher.weights": b.directory}, ["checkpoints is a directory, not a checkpoint"]),
    "missing teacher checkpoint": (
        lambda b: {"teacher.weights": b.root / "nowhere.pth"}, ["checkpoint not found:", "nowhere.pth"]),
    "wrong layout for the file": (
        lambda b: {"teacher.layout": "mocov2"},
        ["mobilenet_v3_small.pth: expected a mocov2 checkpoint, but the file is laid out as torchvision"]),
    "wrong arch for the file": (
        lambda b: {"teacher.arch": "resnet18"}, ["does not fit the ResNet backbone, probably the wrong architecture"]),
    "empty image folder": (
        lambda b: {"data.root": b.empty}, ["empty' has no class folders", "root/<class>/<image>"]),
    "class folders with no images": (
        lambda b: {"data.root": b.class_folders}, ["2 of its 2 class folders hold no image (a, b)", ".jpg"]),
    "non-image files only": (
        lambda b: {"data.root": b.non_images}, ["1 of its 1 class folders hold no image (a)"]),
    "unknown torchvision arch": (
        lambda b: {"student.arch": "resnet19"},
        ["student.arch=resnet19: unknown architecture; close matches: resnet18"]),
    "unknown timm arch": (
        lambda b: {"student.arch": "timm:nonexistent_net"},
        ["student.arch=timm:nonexistent_net: timm has no model 'nonexistent_net'"]),
    "fewer images than one batch": (
        lambda b: {"data.root": b.few}, ["holds 4 images, fewer than one batch (optim.batch_size=8)"]),
}


@pytest.mark.parametrize("case", list(DISTILL_CASES))
def test_distill_bad_input(bad, tmp_path, case):
    overrides, expected = DISTILL_CASES[case]
    out = tmp_path / "out"
    line = assert_one_line_error(run_tool("distill.py", *distill_args(bad, out, **overrides(bad)), cwd=tmp_path),
                                 *expected)
    assert line.count(str(bad.root)) <= 1  # the bad file or folder is named once
    assert not out.exists()  # nothing written: no config.yaml or run_info.json naming a run that never started


def test_distill_missing_config_file(tmp_path):
    result = run_tool("distill.py", "--config", tmp_path / "nowhere.yaml", cwd=tmp_path)
    assert_one_line_error(result, f"config file not found: {tmp_path / 'nowhere.yaml'}")


def test_distill_resume_from_a_truncated_checkpoint(bad, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "checkpoint.pth").write_bytes(bad.truncated.read_bytes())
    result = run_tool("distill.py", *distill_args(bad, out), "--resume", cwd=tmp_path)
    assert_one_line_error(result, "checkpoint.pth is truncated or damaged")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pth"]


def test_transfer_cls_missing_dataset_root(tmp_path):
    out = tmp_path / "out"
    result = run_tool("transfer_cls.py", "--config", REPO / "configs/transfer/cls/linear.yaml", "model.weights=random",
                      "model.arch=resnet18", "data.name=imagefolder", f"data.root={tmp_path / 'nowhere'}",
                      f"output_dir={out}", "features.cache_dir=null", cwd=tmp_path)
    assert_one_line_error(result, f"expected the train folder {tmp_path / 'nowhere'}/train")
    assert not out.exists()


def test_transfer_cls_bad_weights_path(tmp_path):
    out = tmp_path / "out"
    result = run_tool("transfer_cls.py", "--config", REPO / "configs/transfer/cls/digits_demo.yaml",
                      f"model.weights={tmp_path / 'nowhere.pth'}", f"output_dir={out}", cwd=tmp_path)
    assert_one_line_error(result, f"model.weights={tmp_path / 'nowhere.pth'}: no such file", "'random'")
    assert not out.exists()


@pytest.mark.parametrize("tool, config", [("transfer_det.py", "configs/det/trees_R_18_C4_demo.yaml"),
                                          ("transfer_seg.py", "configs/seg/demo_fcn-d8_voc_example.yaml")])
def test_transfer_det_and_seg_missing_weights(tmp_path, tool, config):
    out = tmp_path / "out"
    result = run_tool(tool, "--config", REPO / config, "--weights", tmp_path / "nowhere.pth", "--output-dir", out,
                      cwd=tmp_path)
    assert_one_line_error(result, f"--weights={tmp_path / 'nowhere.pth'}: no such file")
    assert not out.exists()


def test_compare_bad_key(tmp_path):
    out = tmp_path / "out"
    result = run_tool("compare.py", "--config", REPO / "configs/compare/demo.yaml", "bogus.key=1", f"output_dir={out}",
                      cwd=tmp_path)
    assert_one_line_error(result, "unknown config key 'bogus'")
    assert not out.exists()
