"""Files that a tool refuses say which file and what to do in the tool at hand (issue 27): an unsafe
pickle names the option of that tool (or none), a missing ``_base_`` file names the file that asks
for it, a checkpoint with a tensor of another shape names the tensor and both shapes. One subprocess
per case, as tests/test_cli_errors.py: exit 2, one line, no traceback, nothing written."""

from pathlib import Path

import pytest
import torch
import torchvision
from pickle_files import Payload
from test_cli_errors import REPO, assert_one_line_error, run_tool
from tiny import make_image_folder


@pytest.fixture
def payload_pth(tmp_path) -> tuple[Path, Path]:
    """A torch.save file that names ``posix.system`` (a marker file if it ran), and the marker."""
    marker = tmp_path / "marker"
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": torchvision.models.resnet18().state_dict(), "recipe": Payload(marker)}, path)
    return path, marker


def test_distill_names_the_teacher_key(tmp_path, payload_pth):
    weights, marker = payload_pth
    out = tmp_path / "out"
    result = run_tool(
        "distill.py",
        "--config",
        REPO / "configs/distill/base.yaml",
        f"data.root={make_image_folder(tmp_path / 'images', per_class=4)}",
        f"teacher.weights={weights}",
        "teacher.arch=resnet18",
        "optim.batch_size=8",
        "distill.queue_size=64",
        f"train.output_dir={out}",
        cwd=tmp_path,
    )
    assert_one_line_error(result, f"{weights}: the safe unpickler", "refused the class 'posix.system'")
    assert_one_line_error(result, "teacher.allow_unsafe_pickle=true unpickles arbitrary code")
    assert not marker.exists() and not out.exists()


def test_transfer_cls_names_its_model_key_not_the_teachers(tmp_path, payload_pth):
    weights, marker = payload_pth
    out = tmp_path / "out"
    result = run_tool(
        "transfer_cls.py",
        "--config",
        REPO / "configs/transfer/cls/digits_demo.yaml",
        f"model.weights={weights}",
        "model.arch=resnet18",
        f"output_dir={out}",
        "features.cache_dir=null",
        cwd=tmp_path,
    )
    line = assert_one_line_error(result, "refused the class 'posix.system'", "model.allow_unsafe_pickle=true unpickles")
    assert "teacher." not in line
    assert not marker.exists() and not out.exists()


def test_convert_to_d2_names_its_flag(tmp_path, payload_pth):
    weights, marker = payload_pth
    result = run_tool("convert_to_d2.py", weights, tmp_path / "out.pkl", cwd=tmp_path)
    line = assert_one_line_error(result, "refused the class 'posix.system'", "--allow-unsafe-pickle unpickles")
    assert "teacher." not in line and "model." not in line
    assert not marker.exists() and not (tmp_path / "out.pkl").exists()


def test_convert_to_d2_names_an_edited_tensor_and_both_shapes(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    state["conv1.weight"] = state["conv1.weight"][:, :, :5, :5].clone()
    weights = tmp_path / "edited.pth"
    torch.save(state, weights)
    line = assert_one_line_error(
        run_tool("convert_to_d2.py", weights, tmp_path / "out.pkl", "--arch", "resnet18", cwd=tmp_path),
        f"{weights} (layout torchvision) does not fit the ResNet backbone: every name fits",
        "conv1.weight: checkpoint (64, 3, 5, 5) vs model (64, 3, 7, 7)",
    )
    assert "wrong architecture" not in line
    assert not (tmp_path / "out.pkl").exists()


def test_a_missing_base_file_names_the_file_that_asks_for_it(tmp_path):
    config = tmp_path / "mine.yaml"
    config.write_text("_base_: presets/base.yaml\noptim:\n  epochs: 1\n")
    result = run_tool("distill.py", "--config", config, f"train.output_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert_one_line_error(
        result, f"{config}: its _base_ file 'presets/base.yaml' is not found (looked for {tmp_path}/presets/base.yaml)"
    )
    assert not (tmp_path / "out").exists()
