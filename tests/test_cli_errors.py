"""Bad input to the tools ends with one line, ``error: <message>`` naming what to fix, exit
status 2 and no traceback, and writes nothing to the output folder. One subprocess per case,
each failing before any model is trained (a few seconds, mostly the imports)."""

import ast
import importlib
import importlib.util
import os
import pickle
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tomllib
import torch
import torchvision
from pickle_files import Payload, write_pickle
from tiny import make_image_folder

REPO = Path(__file__).parents[1]


def run_tool(tool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / tool), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


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
    return SimpleNamespace(
        root=root,
        teacher=teacher,
        truncated=truncated,
        text=text,
        directory=root / "checkpoints",
        images=make_image_folder(root / "images", classes=2, per_class=4),
        few=make_image_folder(root / "few", classes=2, per_class=2),
        empty=root / "empty",
        class_folders=root / "class_folders",
        non_images=root / "non_images",
    )


def distill_args(bad, out: Path, **overrides) -> list[str]:
    settings = {
        "data.root": bad.images,
        "teacher.weights": bad.teacher,
        "teacher.arch": "mobilenet_v3_small",
        "student.arch": "resnet18",
        "data.image_size": 32,
        "data.num_workers": 0,
        "optim.batch_size": 8,
        "distill.queue_size": 64,
        "optim.epochs": 1,
        "train.tensorboard": "false",
        "train.output_dir": out,
        **overrides,
    }
    return ["--config", REPO / "configs/distill/base.yaml", *(f"{key}={value}" for key, value in settings.items())]


DISTILL_CASES = {  # case -> (overrides, what the error line says)
    "truncated teacher checkpoint": (
        lambda b: {"teacher.weights": b.truncated},
        ["truncated.pth is truncated or damaged (PytorchStreamReader failed", "copy or download it again"],
    ),
    "text file as teacher checkpoint": (
        lambda b: {"teacher.weights": b.text},
        ["notes.pth is not a checkpoint (it starts with", "check the path"],
    ),
    "directory as teacher checkpoint": (
        lambda b: {"teacher.weights": b.directory},
        ["checkpoints is a directory, not a checkpoint"],
    ),
    "missing teacher checkpoint": (
        lambda b: {"teacher.weights": b.root / "nowhere.pth"},
        ["checkpoint not found:", "nowhere.pth"],
    ),
    "wrong layout for the file": (
        lambda b: {"teacher.layout": "mocov2"},
        ["mobilenet_v3_small.pth: expected a mocov2 checkpoint, but the file is laid out as torchvision"],
    ),
    "wrong arch for the file": (
        lambda b: {"teacher.arch": "resnet18"},
        ["does not fit the ResNet backbone, probably the wrong architecture"],
    ),
    "empty image folder": (lambda b: {"data.root": b.empty}, ["empty' has no class folders", "root/<class>/<image>"]),
    "class folders with no images": (
        lambda b: {"data.root": b.class_folders},
        ["2 of its 2 class folders hold no image (a, b)", ".jpg"],
    ),
    "non-image files only": (lambda b: {"data.root": b.non_images}, ["1 of its 1 class folders hold no image (a)"]),
    "unknown torchvision arch": (
        lambda b: {"student.arch": "resnet19"},
        ["student.arch=resnet19: unknown architecture; close matches: resnet18"],
    ),
    "unknown timm arch": (
        lambda b: {"student.arch": "timm:nonexistent_net"},
        ["student.arch=timm:nonexistent_net: timm has no model 'nonexistent_net'"],
    ),
    "fewer images than one batch": (
        lambda b: {"data.root": b.few},
        ["holds 4 images, fewer than one batch (optim.batch_size=8)"],
    ),
}


@pytest.mark.parametrize("case", list(DISTILL_CASES))
def test_distill_bad_input(bad, tmp_path, case):
    overrides, expected = DISTILL_CASES[case]
    out = tmp_path / "out"
    line = assert_one_line_error(
        run_tool("distill.py", *distill_args(bad, out, **overrides(bad)), cwd=tmp_path), *expected
    )
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


def run_random_probe(tmp_path: Path, dataset: str, root: Path, out: Path) -> subprocess.CompletedProcess:
    """transfer_cls of a random ResNet-18 on ``dataset`` at ``root`` (no feature cache)."""
    return run_tool(
        "transfer_cls.py",
        "--config",
        REPO / "configs/transfer/cls/linear.yaml",
        "model.weights=random",
        "model.arch=resnet18",
        f"data.name={dataset}",
        f"data.root={root}",
        f"output_dir={out}",
        "features.cache_dir=null",
        cwd=tmp_path,
    )


def test_transfer_cls_missing_dataset_root(tmp_path):
    out = tmp_path / "out"
    result = run_random_probe(tmp_path, "imagefolder", tmp_path / "nowhere", out)
    assert_one_line_error(result, f"expected the train folder {tmp_path / 'nowhere'}/train")
    assert not out.exists()


def test_transfer_cls_bad_weights_path(tmp_path):
    out = tmp_path / "out"
    result = run_tool(
        "transfer_cls.py",
        "--config",
        REPO / "configs/transfer/cls/digits_demo.yaml",
        f"model.weights={tmp_path / 'nowhere.pth'}",
        f"output_dir={out}",
        cwd=tmp_path,
    )
    assert_one_line_error(result, f"model.weights={tmp_path / 'nowhere.pth'}: no such file", "'random'")
    assert not out.exists()


@pytest.mark.parametrize(
    "tool, config",
    [
        ("transfer_det.py", "configs/det/trees_R_18_C4_demo.yaml"),
        ("transfer_seg.py", "configs/seg/demo_fcn-d8_voc_example.yaml"),
    ],
)
def test_transfer_det_and_seg_missing_weights(tmp_path, tool, config):
    out = tmp_path / "out"
    result = run_tool(
        tool, "--config", REPO / config, "--weights", tmp_path / "nowhere.pth", "--output-dir", out, cwd=tmp_path
    )
    assert_one_line_error(result, f"--weights={tmp_path / 'nowhere.pth'}: no such file")
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("detectron2") is None, reason="a .pkl is for the Detectron2 engine")
def test_transfer_det_refuses_a_pkl_with_a_payload(tmp_path):
    marker, out = tmp_path / "marker", tmp_path / "out"
    weights = write_pickle(tmp_path / "moco_r50.pkl", {"model": {"w": Payload(marker)}, "__author__": "MOCO"})
    result = run_tool(
        "transfer_det.py",
        "--config",
        REPO / "configs/det/trees_R_18_C4_demo.yaml",
        "--weights",
        weights,
        "--output-dir",
        out,
        cwd=tmp_path,
    )
    line = assert_one_line_error(
        result, f"{weights}: refused to unpickle 'posix.system': a weights file holds only arrays, numbers and strings"
    )
    assert "allow_unsafe_pickle" not in line  # no key lets a .pkl run code
    assert not marker.exists() and not out.exists()


def test_transfer_cls_refuses_a_cifar_batch_with_a_payload(tmp_path):
    marker, out, root = tmp_path / "marker", tmp_path / "out", tmp_path / "data" / "cifar-10-batches-py"
    write_pickle(root / "batches.meta", {b"label_names": [b"cat", b"dog"], b"num_vis": 3072})
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        write_pickle(root / name, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]})
    batch = write_pickle(root / "data_batch_1", {b"data": Payload(marker), b"labels": [0, 1]})
    result = run_random_probe(tmp_path, "cifar10", tmp_path / "data", out)
    assert_one_line_error(result, f"{batch}: refused to unpickle 'posix.system': a CIFAR file holds only arrays")
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "_base_: {base}\noptim:\n  epochs: 1\n  batch_size: 8\n  epochs: 2\n",
            "key 'epochs' is given twice in one mapping, at lines 3 and 5",
        ),
        ("_base_: {base}\noptim:\n  epochs: [1\n", "line 4: YAML syntax error: expected ',' or ']'"),
    ],
    ids=["duplicated key", "syntax error"],
)
def test_distill_config_with_a_duplicated_key_or_a_syntax_error(tmp_path, text, expected):
    config = tmp_path / "mine.yaml"
    config.write_text(text.format(base=REPO / "configs/distill/base.yaml"))
    result = run_tool("distill.py", "--config", config, f"train.output_dir={tmp_path / 'out'}", cwd=tmp_path)
    assert_one_line_error(result, f"{config}", expected)
    assert not (tmp_path / "out").exists()


def test_transfer_det_config_with_a_duplicated_key(tmp_path):
    config = tmp_path / "det.yaml"
    config.write_text(
        f"_BASE_: {REPO / 'configs/det/trees_R_18_C4_demo.yaml'}\nSOLVER:\n  MAX_ITER: 10\n  MAX_ITER: 20\n"
    )
    result = run_tool(
        "transfer_det.py", "--config", config, "--weights", "random", "--output-dir", tmp_path / "out", cwd=tmp_path
    )
    assert_one_line_error(result, f"{config}: key 'MAX_ITER' is given twice in one mapping, at lines 3 and 4")
    assert not (tmp_path / "out").exists()


def test_compare_bad_key(tmp_path):
    out = tmp_path / "out"
    result = run_tool(
        "compare.py", "--config", REPO / "configs/compare/demo.yaml", "bogus.key=1", f"output_dir={out}", cwd=tmp_path
    )
    assert_one_line_error(result, "unknown config key 'bogus'")
    assert not out.exists()


# ---------------------------------------------------------------- one CLI layer
# tools/<tool>.py -> (its command line seed_transfer/cli/<module>.py, the console script)
TOOLS = {
    "distill.py": ("distill", "seed-distill"),
    "transfer_cls.py": ("transfer_cls", "seed-transfer-cls"),
    "transfer_det.py": ("transfer_det", "seed-transfer-det"),
    "transfer_seg.py": ("transfer_seg", "seed-transfer-seg"),
    "eval_linear.py": ("eval_linear", "seed-eval-linear"),
    "eval_knn.py": ("eval_knn", "seed-eval-knn"),
    "eval_semisup.py": ("eval_semisup", "seed-eval-semisup"),
    "ablate.py": ("ablate", "seed-ablate"),
    "compare.py": ("compare", "seed-transfer-compare"),
    "convert_to_d2.py": ("convert_d2", "seed-convert-d2"),
    "cls_table.py": ("cls_table", "seed-cls-table"),
    "det_table.py": ("det_table", "seed-det-table"),
}
CONFIG_TOOLS = {  # module -> a config it reads (key=value overrides after it)
    "distill": "configs/distill/base.yaml",
    "transfer_cls": "configs/transfer/cls/linear.yaml",
    "eval_linear": "configs/eval/linear_imagenet.yaml",
    "eval_knn": "configs/eval/knn_imagenet.yaml",
    "eval_semisup": "configs/eval/semisup_1pct.yaml",
    "ablate": "configs/ablation/demo.yaml",
    "compare": "configs/compare/demo.yaml",
}


def cli(module: str):
    return importlib.import_module(f"seed_transfer.cli.{module}")


def test_every_tool_is_a_console_script_and_a_thin_wrapper():
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {script: f"seed_transfer.cli.{module}:main" for module, script in TOOLS.values()}
    assert sorted(p.name for p in (REPO / "tools").glob("*.py")) == sorted([*TOOLS, "_entry.py"])
    for tool, (module, _) in TOOLS.items():
        assert callable(cli(module).main)
        tree = ast.parse((REPO / "tools" / tool).read_text())
        imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
        assert [ast.unparse(node) for node in imports] == [
            "import sys",
            "import _entry",
            f"from seed_transfer.cli.{module} import main",
        ], tool
        assert "    python tools/" in ast.get_docstring(tree), f"{tool}: keep the usage examples"


@pytest.mark.parametrize("tool", list(TOOLS))
def test_help_through_the_wrapper(tmp_path, tool):
    result = run_tool(tool, "--help", cwd=tmp_path)  # from another folder: nothing found by the cwd
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith(f"usage: {tool}") and "python tools/" in result.stdout


@pytest.mark.parametrize("module, script", list(TOOLS.values()))
def test_help_through_the_console_script_entry(monkeypatch, capsys, module, script):
    monkeypatch.setattr(sys, "argv", [script, "--help"])  # what the installed script runs: main()
    with pytest.raises(SystemExit) as exit_:
        cli(module).main()
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {script}") and f"`{script}" in out


def test_help_through_python_m(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "seed_transfer.cli.distill", "--help"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0 and "--teacher-only" in result.stdout, result.stderr[-3000:]


def assert_one_line(capsys, *expected: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    for text in expected:
        assert text in err[0], err[0]


@pytest.mark.parametrize("module", list(CONFIG_TOOLS))
def test_a_bad_key_or_a_missing_config_is_one_line_and_exit_2(capsys, tmp_path, module):
    config = str(REPO / CONFIG_TOOLS[module])
    assert cli(module).main(["--config", config, "bogus.key=1", f"output_dir={tmp_path}"]) == 2
    assert_one_line(capsys, "unknown config key 'bogus'")
    assert cli(module).main(["--config", str(tmp_path / "nowhere.yaml")]) == 2
    assert_one_line(capsys, f"config file not found: {tmp_path / 'nowhere.yaml'}")


def test_table_and_converter_errors_are_one_line_and_exit_2(capsys, tmp_path):
    assert cli("cls_table").main([str(tmp_path), "--out", str(tmp_path / "t")]) == 2
    assert_one_line(capsys, f"no transfer_cls results found under {tmp_path}")
    assert cli("det_table").main([str(tmp_path)]) == 2
    assert_one_line(capsys, f"no summary.json under {tmp_path}")
    assert cli("convert_d2").main([str(tmp_path / "nowhere.pth"), str(tmp_path / "out.pkl")]) == 2
    assert_one_line(capsys, f"checkpoint not found: {tmp_path / 'nowhere.pth'}")


@pytest.mark.parametrize(
    "module, config",
    [
        ("transfer_det", "configs/det/trees_R_18_C4_demo.yaml"),
        ("transfer_seg", "configs/seg/demo_fcn-d8_voc_example.yaml"),
    ],
)
def test_run_keys_of_detection_and_segmentation(capsys, monkeypatch, tmp_path, module, config):
    """run.<key>=<value> sets the request, the flags are aliases; unknown or doubly given keys are refused."""
    tool, config = cli(module), str(REPO / config)
    assert tool.main(["--config", config, "run.seedz=2"]) == 2
    assert_one_line(capsys, "unknown config key 'run.seedz'; did you mean 'run.seeds'?")
    assert tool.main(["--config", config, "--seeds", "2", "run.seeds=3"]) == 2
    assert_one_line(capsys, "--seeds and run.seeds= both set run.seeds")
    assert tool.main(["--config", config, "run.seeds=two"]) == 2
    assert_one_line(capsys, "run.seeds: expected int, got 'two'")
    assert tool.main(["--config", config, f"run.weights={tmp_path / 'nowhere.pth'}"]) == 2
    assert_one_line(capsys, f"run.weights={tmp_path / 'nowhere.pth'}: no such file")

    requests = []
    monkeypatch.setattr(tool, "transfer", lambda request: requests.append(request) or {})
    monkeypatch.setattr(tool, "markdown_comparison", lambda summaries: "")
    engine_opts = ["SOLVER.MAX_ITER", "2"] if module == "transfer_det" else ["schedule.iters=2"]
    assert (
        tool.main(
            ["--config", config, "--seeds", "2", f"run.output_dir={tmp_path / 'out'}", "run.name=x", *engine_opts]
        )
        == 0
    )
    assert (
        tool.main(
            ["--config", config, "--output-dir", str(tmp_path / "out"), "--name", "x", "run.seeds=2", *engine_opts]
        )
        == 0
    )  # flags first: detection's trailing arguments are all KEY VALUE pairs
    assert requests[0] == requests[1]
    assert (requests[0].seeds, requests[0].name, requests[0].weights) == (2, "x", "random")
    assert requests[0].output_dir == tmp_path / "out" and requests[0].opts == tuple(engine_opts)
    assert tool.main(["--config", config]) == 0  # the defaults: random init, outputs/<tool>/<config>/<name>
    assert requests[2].output_dir == Path(f"outputs/{module}/{Path(config).stem}/random")


@pytest.mark.parametrize("error", [RuntimeError, ValueError, FileNotFoundError, ImportError, KeyError])
@pytest.mark.parametrize("module", [module for module, _ in TOOLS.values()])
def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path, module, error):
    """Only a UserError becomes exit 2: any other exception from the work propagates (a bug),
    also the ValueError/OSError/ImportError that the tools used to turn into "error: ..."."""

    def bug(*args, **kwargs):
        raise error("a bug in the code")

    monkeypatch.setattr(cli(module), "_run", bug)
    args = (
        ["--config", "any.yaml"]
        if module in CONFIG_TOOLS or module.startswith("transfer_")
        else [str(tmp_path), str(tmp_path / "out")]
        if module == "convert_d2"
        else [str(tmp_path), "--out", "x"]
    )
    with pytest.raises(error, match="a bug in the code"):
        cli(module).main(args)


def test_a_bug_deep_in_a_tool_shows_a_traceback_in_a_fresh_process(tmp_path):
    code = (
        "import sys, seed_transfer.cli.distill as tool\n"
        "def load_config(*args): raise RuntimeError('a bug in the config loader')\n"
        "tool.load_config = load_config\n"
        f"sys.exit(tool.main(['--config', {str(REPO / 'configs/distill/base.yaml')!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" in result.stderr and result.stderr.strip().endswith("RuntimeError: a bug in the config loader")
    assert "error: " not in result.stderr


def test_the_user_errors_are_one_family():
    """What the command lines catch: UserError alone; its kinds stay what callers caught before."""
    from distill.checkpoints import CheckpointError
    from seed_core.config import ConfigError
    from seed_core.errors import DataError, MissingDependency, MissingFile, UserError
    from seed_core.safe_pickle import RefusedPickle

    for kind, builtin in [
        (ConfigError, ValueError),
        (CheckpointError, ValueError),
        (RefusedPickle, pickle.UnpicklingError),
        (DataError, ValueError),
        (MissingFile, FileNotFoundError),
        (MissingDependency, ImportError),
    ]:
        assert issubclass(kind, UserError) and issubclass(kind, builtin)
    assert str(MissingFile("x.pth is not there")) == "x.pth is not there"


def sys_path_edits(path: Path) -> list[int]:
    """Lines of ``path`` that assign to, or call a method of, ``sys.path`` (or ``sys.path[...]``)."""

    def is_sys_path(node) -> bool:
        while isinstance(node, ast.Subscript):
            node = node.value
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "path"
            and isinstance(node.value, ast.Name)
            and node.value.id == "sys"
        )

    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, (ast.AugAssign, ast.AnnAssign))
            else []
        )
        if any(is_sys_path(t) for t in targets):
            lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and is_sys_path(node.func.value):
            lines.append(node.lineno)
    return sorted(lines)


def test_only_the_entry_module_edits_sys_path(tmp_path):
    edits = {
        str(path.relative_to(REPO)): lines
        for folder in ("tools", "benchmarks", "seed_transfer", "distill")
        for path in sorted((REPO / folder).rglob("*.py"))
        if (lines := sys_path_edits(path))
    }
    assert list(edits) == ["tools/_entry.py"], edits
    probe = tmp_path / "probe.py"  # the check sees each way of editing it
    probe.write_text(
        "import sys\nsys.path = []\nsys.path[:] = []\nsys.path.insert(0, 'x')\nsys.path += ['y']\nprint(sys.path)\n"
    )
    assert sys_path_edits(probe) == [2, 3, 4, 5]


def test_a_slurm_launch_without_slurm_fails_up_front_with_one_line(tmp_path, capsys, monkeypatch):
    """--launcher on a long-running tool: slurm on a machine without sbatch is refused before anything
    is submitted or written (exit 2, one line); local runs the tool here as before."""
    import shutil

    from seed_transfer.cli import distill

    monkeypatch.setattr(shutil, "which", lambda name: None)  # no sbatch, whatever this machine has
    out = tmp_path / "run"
    argv = ["--config", str(REPO / "configs/distill/demo.yaml"), f"train.output_dir={out}", "--launcher", "slurm"]
    assert distill.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sbatch" in err[0] and not out.exists()
    assert distill.main([*argv[:-2], "launcher.launcher=torchrun", "launcher.nodes=2"]) == 2  # one node from here
    assert "--nnodes 2" in capsys.readouterr().err


def test_the_run_folder_of_a_launched_tool_comes_from_its_config():
    from distill.schema import DistillConfig
    from seed_transfer.cli.common import run_folder
    from seed_transfer.pipelines.compare import CompareConfig

    argv = ["--config", "configs/distill/demo.yaml", "train.output_dir=/scratch/me/run1", "optim.epochs=3"]
    assert str(run_folder("distill", argv, DistillConfig, "train.output_dir")) == "/scratch/me/run1"
    assert (
        str(run_folder("compare", ["--config=configs/compare/demo.yaml"], CompareConfig, "output_dir"))
        == "outputs/compare/demo"
    )
    assert str(run_folder("transfer_det", ["--config", "x.yaml"], None, "output_dir")) == "outputs/transfer_det"


def test_distill_never_overwrites_a_run_unasked(tmp_path, bad):
    import json as _json

    out = tmp_path / "run"
    first = run_tool("distill.py", *distill_args(bad, out), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = (out / "checkpoint.pth").read_bytes()
    again = run_tool("distill.py", *distill_args(bad, out), cwd=tmp_path)  # the same command, re-typed
    assert_one_line_error(again, f"{out} already holds a run (checkpoint.pth, student.pth)", "--resume", "--overwrite")
    assert (out / "checkpoint.pth").read_bytes() == before and not (out / ".lock").exists()
    over = run_tool("distill.py", *distill_args(bad, out), "--overwrite", cwd=tmp_path)
    assert over.returncode == 0 and "--overwrite: removed the run" in over.stderr
    assert (out / "metrics.csv").read_text().count("step") == 1  # one header: the old log was removed
    # a live process holding the folder: a second writer stops, naming it; a dead one's lock is taken over
    (out / ".lock").write_text(_json.dumps({"host": __import__("socket").gethostname(), "pid": os.getpid()}))
    held = run_tool("distill.py", *distill_args(bad, out), "--resume", cwd=tmp_path)
    assert_one_line_error(held, f"{out.resolve()} is in use by a run (process {os.getpid()} on", "delete")
    gone_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    gone_pid.wait()
    (out / ".lock").write_text(_json.dumps({"host": __import__("socket").gethostname(), "pid": gone_pid.pid}))
    resumed = run_tool("distill.py", *distill_args(bad, out), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0 and "taking over a stale lock" in resumed.stderr
    assert not (out / ".lock").exists()


def test_convert_refuses_to_write_over_its_input(tmp_path):
    weights = tmp_path / "student.pth"
    torch.save({"state_dict": torchvision.models.resnet18().state_dict()}, weights)
    before = weights.read_bytes()
    result = run_tool("convert_to_d2.py", weights, weights, cwd=tmp_path)
    assert_one_line_error(result, "student.pth is the input: give the converted weights another name")
    assert weights.read_bytes() == before
