import importlib
import json
import subprocess
import sys
from pathlib import Path

from tiny_bn import TINY_BN, make_imagenet

REPO = Path(__file__).parents[3]


def load_tool(name: str):
    """The command line of tools/<name>.py (its main)."""
    return importlib.import_module(f"seed_transfer.cli.{name}")


def common(tmp_path, root):
    return [
        "model.weights=random",
        f"model.arch={TINY_BN}",
        f"data.root={root}",
        "data.train_crop=12",
        "data.num_workers=0",
        "features.resize=14",
        "features.crop=12",
        "optim.epochs=1",
        "optim.batch_size=4",
        "train.tensorboard=false",
        f"train.output_dir={tmp_path / 'out'}",
    ]


def test_eval_linear_cli_runs_and_reports(tmp_path, capsys):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=4, val_per_class=2)
    rc = load_tool("eval_linear").main(
        ["--config", str(REPO / "configs/eval/linear_imagenet.yaml"), *common(tmp_path, root), "optim.milestones=[1]"]
    )
    assert rc == 0
    assert "linear probe: top-1" in capsys.readouterr().out
    result = json.loads((tmp_path / "out" / "linear_eval.json").read_text())
    assert result["steps"] == 2 and (tmp_path / "out" / "config.yaml").is_file()
    assert (tmp_path / "out" / "run_info.json").is_file() and (tmp_path / "out" / "metrics.csv").is_file()


def test_eval_semisup_cli_reports_bad_input(tmp_path, capsys):
    root = make_imagenet(tmp_path / "imagenet", classes=2, train_per_class=2, val_per_class=1)
    tool = load_tool("eval_semisup")
    config = ["--config", str(REPO / "configs/eval/semisup_10pct.yaml")]
    assert tool.main([*config, *common(tmp_path, root), f"data.subset_file={tmp_path / 'absent.txt'}"]) == 2
    assert "error: " in capsys.readouterr().err
    (tmp_path / "list.txt").write_text("n00000000_0.JPEG\nn00000001_5.JPEG\n")
    assert tool.main([*config, *common(tmp_path, root), f"data.subset_file={tmp_path / 'list.txt'}"]) == 2
    assert "1 of the 2 images" in capsys.readouterr().err
    (tmp_path / "list.txt").write_text("n00000000_0.JPEG\nn00000001_1.JPEG\nn00000000_1.JPEG\nn00000001_0.JPEG\n")
    assert tool.main([*config, *common(tmp_path, root), f"data.subset_file={tmp_path / 'list.txt'}"]) == 0
    assert "fine-tuned on 4 images (list.txt): top-1" in capsys.readouterr().out


def test_cli_errors_in_a_fresh_process(tmp_path):
    for tool, config, message in [
        ("eval_linear.py", "linear_imagenet.yaml", "data.root is required"),
        ("eval_semisup.py", "semisup_1pct.yaml", "data.root is required"),
    ]:
        cmd = [
            sys.executable,
            str(REPO / "tools" / tool),
            "--config",
            str(REPO / "configs/eval" / config),
            "model.weights=random",
            "model.arch=resnet18",
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2 and f"error: {message}" in result.stderr, result.stderr
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/eval_linear.py"),
            "--config",
            str(REPO / "configs/eval/linear_imagenet.yaml"),
            "optim.epoch=3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and "did you mean 'optim.epochs'" in result.stderr
