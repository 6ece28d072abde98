"""The ablation runner: grid expansion (one axis at a time and the full grid), stable point
names, a tiny grid end to end (distillation, resume, kNN + linear evaluation, tables, plots),
skipping on a second run, and clear refusals of bad grids."""

import csv
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from tiny import TINY, make_image_folder, tiny_cnn

from seed_core.config import ConfigError, load_config
from seed_transfer.pipelines.ablation import AblationConfig, expand_grid, run_ablation
from seed_transfer.pipelines.ablation.report import is_log_scale

REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "configs/ablation/demo.yaml"


def demo(*overrides) -> AblationConfig:
    return load_config(AblationConfig, DEMO, list(overrides))


def names(cfg: AblationConfig) -> list[str]:
    return [p.name for p in expand_grid(cfg).points]


# ---------------------------------------------------------------- grid expansion
def test_axes_mode_sweeps_one_axis_at_a_time_around_the_base():
    grid = expand_grid(demo())
    assert names(demo()) == [
        "distill.tau_teacher-0.0001",
        "base",
        "distill.tau_teacher-0.1",
        "distill.queue_size-32",
        "distill.queue_size-128",
        "distill.strategy-l2",
        "teacher-mnv2_in32",
    ]  # the base point runs once
    by_name = {p.name: p for p in grid.points}
    assert by_name["distill.tau_teacher-0.0001"].distill.distill.tau_teacher == pytest.approx(1e-4)  # YAML "1.0e-4"
    assert by_name["distill.tau_teacher-0.0001"].distill.distill.queue_size == 512  # the base's, from overrides
    assert by_name["teacher-mnv2_in32"].distill.teacher.input_size is None
    assert by_name["base"].overrides == [] and by_name["base"].distill.teacher.input_size == 64
    assert by_name["base"].distill.train.output_dir.endswith("points/base/distill")
    # each axis lists its own values, the base value pointing at the shared base point
    assert grid.members["distill.queue_size"] == [
        (32, "distill.queue_size-32"),
        (128, "distill.queue_size-128"),
        (512, "base"),
    ]
    assert grid.members["teacher"] == [("mnv2_in64", "base"), ("mnv2_in32", "teacher-mnv2_in32")]
    assert grid.base_values == {
        "distill.tau_teacher": 0.01,
        "distill.queue_size": 512,
        "distill.strategy": "seed",
        "teacher": "mnv2_in64",
    }


def test_point_names_are_stable_across_runs_grids_and_modes():
    full = names(demo())
    assert names(demo()) == full
    assert set(names(demo("only=[distill.queue_size]"))) <= set(full)
    product = names(demo("only=[distill.tau_teacher, distill.queue_size]", "mode=product"))
    assert len(product) == len(set(product)) == 9
    # a product point that keeps the queue at its base value is the axes-mode tau point
    assert {"base", "distill.tau_teacher-0.1", "distill.queue_size-32"} <= set(product)
    assert "distill.tau_teacher-0.0001__distill.queue_size-128" in product
    # a value given as a string reads the same as the number: same point
    assert names(demo("only=[distill.tau_teacher]", "axes.distill.tau_teacher=['1e-4', 0.01]")) == [
        "distill.tau_teacher-0.0001",
        "base",
    ]


def test_points_with_the_same_teacher_data_and_seed_share_a_teacher_cache(tmp_path):
    shared = str(tmp_path / "teacher_cache")
    caches = {p.name: p.distill.teacher.cache_dir for p in expand_grid(demo(f"output_dir={tmp_path}")).points}
    # every point but the one whose teacher sees 32 px inputs (no other point needs its embeddings)
    assert caches == {name: None if name == "teacher-mnv2_in32" else shared for name in caches}
    assert not any(p.distill.teacher.cache_dir for p in expand_grid(demo("teacher_cache=false")).points)
    mine = dataclasses.replace(demo(), overrides=[*demo().overrides, "teacher.cache_dir=/fast/cache"])
    assert {p.distill.teacher.cache_dir for p in expand_grid(mine).points} == {"/fast/cache"}


def test_command_line_override_replaces_an_axis():
    cfg = demo("axes.distill.queue_size=[64]", "only=[distill.queue_size]")
    assert names(cfg) == ["distill.queue_size-64"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["axes.distill.tau_teachr=[0.1]"],
            r"axes.distill.tau_teachr=0.1: unknown config key 'distill.tau_teachr'; "
            r"did you mean 'distill.tau_teacher'",
        ),
        (["axes.distill.queue_size=[]"], r"axes.distill.queue_size is empty"),
        (
            ["axes.teacher=[mnv2_in64, swav_r50]"],
            r"unknown teacher preset 'swav_r50'; known presets: mnv2_in64, mnv2_in32",
        ),
        (["axes.distill.strategy=[seed, simclr]"], r"axes.distill.strategy=simclr: distill.strategy='simclr'"),
        (["axes.distill.queue_size=[16]"], r"axes.distill.queue_size=16: distill.queue_size=16 is smaller"),
        (["axes.distill.queue_size=[64, 64]"], r"axes.distill.queue_size lists a value twice"),
        (["axes.distill.tau_teacher=0.1"], r"axes.distill.tau_teacher: expected a list"),
        (["axes.train.output_dir=[a, b]"], r"axes.train.output_dir: set by the runner"),
        (["mode=grid"], r"mode='grid': choose one of axes, product"),
        (["only=[distill.tau]"], r"only: unknown axis 'distill.tau'"),
        (["teachers.broken=teacher.arch=resnet50"], r"teachers.broken: expected a non-empty list"),
        (["eval.cls.enabled=false"], r"both false"),
    ],
)
def test_bad_grids_are_refused_naming_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message):
        expand_grid(demo(*overrides))


def test_an_empty_grid_is_refused(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text(yaml.safe_dump({"base": str(REPO / "configs/distill/demo.yaml")}))
    with pytest.raises(ConfigError, match="axes is empty"):
        load_config(AblationConfig, path)


def test_product_of_axes_setting_the_same_key_is_refused(tmp_path):
    path = tmp_path / "overlap.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "_base_": str(DEMO),
                "mode": "product",
                "axes": {"teacher.input_size": [32], "teacher": ["mnv2_in64", "mnv2_in32"]},
            }
        )
    )
    with pytest.raises(ConfigError, match="axes 'teacher' and 'teacher.input_size' both set teacher.input_size"):
        expand_grid(load_config(AblationConfig, path, ["only=[teacher, teacher.input_size]"]))
    assert len(names(load_config(AblationConfig, path, ["mode=axes", "only=[teacher, teacher.input_size]"]))) == 3


def test_log_x_for_axes_that_span_decades():
    assert is_log_scale([1e-4, 1e-3, 0.01, 0.1]) and is_log_scale([256, 1024, 4096, 16384, 65536])
    assert is_log_scale([32, 128, 512])
    assert not is_log_scale([0.5, 1.0]) and not is_log_scale(["seed", "l2"]) and not is_log_scale([0.0, 1.0])


def test_paper_preset_loads_with_its_teachers():
    cfg = load_config(AblationConfig, REPO / "configs/ablation/paper_tau_queue.yaml")
    grid = expand_grid(cfg)
    assert set(cfg.teachers) == {"mocov2_r50", "mocov2_r152", "swav_r50", "simclr_r50"}
    assert len(grid.points) == 13  # 4 + 5 + 3 + 4 settings, the base shared by the four axes
    assert grid.base_values["teacher"] == "mocov2_r50"  # the preset the base config already uses
    by_name = {p.name: p.distill for p in grid.points}
    assert by_name["teacher-mocov2_r152"].teacher.arch == "resnet152"
    assert by_name["teacher-simclr_r50"].teacher.layout == "simclr"
    assert by_name["base"].distill.tau_teacher == 0.01 and by_name["base"].distill.queue_size == 65536


# ---------------------------------------------------------------- end to end
@pytest.fixture
def tiny_grid(tmp_path) -> AblationConfig:
    """A tiny registered student and two tiny teachers, 4 distillation steps per point,
    kNN and linear transfer on one tiny image folder (train/, val/, test/)."""
    teachers = {}
    for seed, name in enumerate(("tiny_a", "tiny_b")):
        torch.manual_seed(seed)
        torch.save(tiny_cnn()[0].state_dict(), tmp_path / f"{name}.pth")  # a torchvision-style state dict
        teachers[name] = [f"teacher.weights={tmp_path / f'{name}.pth'}"]
    images = make_image_folder(tmp_path / "images", classes=2, per_class=8, size=24)  # 16 images: 2 steps/epoch
    for seed, (split, per_class) in enumerate((("train", 4), ("val", 2), ("test", 2)), 1):
        make_image_folder(tmp_path / "eval_data" / split, classes=3, per_class=per_class, size=12, seed=seed)
    cache = tmp_path / "cache"
    grid = {
        "base": str(REPO / "configs/distill/base.yaml"),
        "overrides": [
            f"student.arch={TINY}",
            f"teacher.arch={TINY}",
            "teacher.layout=torchvision",
            *teachers["tiny_a"],
            f"data.root={images}",
            "data.image_size=16",
            "data.num_workers=0",
            "optim.batch_size=8",
            "optim.epochs=2",
            "optim.warmup_epochs=0",
            "distill.queue_size=16",
            "train.tensorboard=false",
            "train.log_every=1",
            "train.checkpoint_every=1",
        ],
        "teachers": teachers,
        "axes": {"distill.tau_teacher": [0.01, 0.1], "teacher": ["tiny_a", "tiny_b"]},
        "output_dir": str(tmp_path / "ablation"),
        "eval": {
            "knn": {
                "enabled": True,
                "config": str(REPO / "configs/eval/knn_imagenet.yaml"),
                "overrides": [
                    f"data.root={tmp_path / 'eval_data'}",
                    "features.resize=16",
                    "features.crop=16",
                    "features.num_workers=0",
                    f"features.cache_dir={cache}",
                    "knn.k=3",
                ],
            },
            "cls": {
                "enabled": True,
                "config": str(REPO / "configs/transfer/cls/linear.yaml"),
                "datasets": [f"imagefolder:{tmp_path / 'eval_data'}"],
                "overrides": [
                    "features.resize=16",
                    "features.crop=16",
                    "features.num_workers=0",
                    "linear.num_c=3",
                    "linear.n_jobs=1",
                    "linear.wd_min_exp=-1",
                    "linear.wd_max_exp=3",
                    "linear.max_iter=100",
                    "knn.k=3",
                    f"features.cache_dir={cache}",
                ],
            },
        },
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(grid))
    return load_config(AblationConfig, path)


def test_tiny_grid_end_to_end_resumes_and_skips(tiny_grid):
    from distill.trainer import train

    out = Path(tiny_grid.output_dir)
    base = next(p for p in expand_grid(tiny_grid).points if p.name == "base")
    # an interrupted distillation: the base point stopped after 1 of its 4 steps
    partial = base.distill
    partial.train.max_steps = 1
    train(partial, resume=True)
    partial.train.max_steps = None

    first = run_ablation(tiny_grid)
    assert [p["point"] for p in first["points"]] == ["base", "distill.tau_teacher-0.1", "teacher-tiny_b"]
    assert all(s["status"] == "ran" for s in first["stages"])
    with open(out / "points/base/distill/metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2, 3, 4]  # resumed at step 2, not restarted
    for point in first["points"]:
        assert point["status"] == "done"
        metrics = point["metrics"]
        assert set(metrics) == {"knn top-1", "knn top-5", "linear imagefolder", "knn imagefolder"}
        assert 0 <= metrics["knn top-1"] <= metrics["knn top-5"] <= 100
        assert 0 <= metrics["linear imagefolder"] <= 100 and 0 <= metrics["knn imagefolder"] <= 100
        student = out / "points" / point["point"] / "distill" / "student.pth"
        assert student.is_file()
        assert (
            json.loads((out / "points" / point["point"] / "eval/student__knn.json").read_text())["knn"]["top1"]
            == metrics["knn top-1"]
        )

    for axis in ("distill.tau_teacher", "teacher"):
        for ext in ("md", "csv", "png"):
            assert (out / f"{axis}.{ext}").is_file(), f"{axis}.{ext}"
    with open(out / "distill.tau_teacher.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["distill.tau_teacher"], r["point"], r["base"]) for r in rows] == [
        ("0.01", "base", "True"),
        ("0.1", "distill.tau_teacher-0.1", "False"),
    ]
    assert float(rows[1]["linear imagefolder"]) == pytest.approx(first["points"][1]["metrics"]["linear imagefolder"])
    report = (out / "report.md").read_text()
    assert "## distill.tau_teacher" in report and "![teacher](teacher.png)" in report
    assert "| 0.01 (base) |" in report and "| tiny_b |" in report and "knn top-1" in report
    # the tau_T points share teacher tiny_a: the base point wrote its embeddings (step 1 when interrupted,
    # steps 2-4 on resume), the tau_T = 0.1 point read all 4 steps; tiny_b's only point ran its teacher live
    caches = {p["point"]: p["teacher_cache"] for p in first["points"]}
    assert caches["base"]["mode"] == "wrote" and caches["base"]["computed_steps"] == 3
    assert caches["distill.tau_teacher-0.1"] == {
        "folder": caches["base"]["folder"],
        "mode": "read",
        "read_steps": 4,
        "computed_steps": 0,
    }
    assert caches["teacher-tiny_b"] is None and Path(caches["base"]["folder"]).parent == out / "teacher_cache"
    assert "## Teacher cache" in report and "| `distill.tau_teacher-0.1` | read (`" in report
    assert "| `teacher-tiny_b` | not used | - | - |" in report

    second = run_ablation(tiny_grid)  # every point finished: nothing is trained or evaluated again
    assert second["stages"] and all(s["status"] == "skipped" for s in second["stages"])
    assert [p["metrics"] for p in second["points"]] == [p["metrics"] for p in first["points"]]
    assert [p["teacher_cache"] for p in second["points"]] == [p["teacher_cache"] for p in first["points"]]
    assert second["tables"] == first["tables"]

    # other settings for the same folder: refused before anything runs, naming what changed
    changed = dataclasses.replace(tiny_grid, overrides=[*tiny_grid.overrides, "optim.base_lr=0.5"])
    with pytest.raises(ConfigError, match=r"point base: .* other settings \(optim.base_lr: 0.03 -> 0.5\)"):
        run_ablation(changed)


def test_cli_refuses_a_bad_grid_and_lists_points(capsys):
    cmd = [sys.executable, str(REPO / "tools/ablate.py"), "--config", str(DEMO), "axes.teacher=[nope]"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.returncode == 2
    assert "error: axes.teacher: unknown teacher preset 'nope'" in result.stderr

    from seed_transfer.cli import ablate as tool

    assert tool.main(["--config", str(DEMO), "--dry-run", "only=[distill.strategy]"]) == 0
    assert capsys.readouterr().out.splitlines() == ["base: (base config)", "distill.strategy-l2: distill.strategy=l2"]


def test_product_grid_report_has_one_row_per_point_and_a_plot_per_axis(tmp_path):
    from seed_transfer.pipelines.ablation.report import write_reports

    cfg = demo("only=[distill.tau_teacher, distill.queue_size]", "mode=product", f"output_dir={tmp_path}")
    grid = expand_grid(cfg)
    records = [
        {
            "point": p.name,
            "settings": p.settings,
            "overrides": p.overrides,
            "status": "done",
            "metrics": {"linear digits": 50.0 + i, "knn digits": 40.0 + i},
        }
        for i, p in enumerate(grid.points)
    ]
    records[-1].update(status="failed: loss is nan", metrics={})
    result = write_reports(cfg, grid, records, [], 0.0)
    with open(tmp_path / "grid.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 9 and [r["point"] for r in rows] == [p.name for p in grid.points]
    assert rows[0]["distill.tau_teacher"] == "0.0001" and rows[0]["distill.queue_size"] == "32"
    assert float(rows[0]["linear digits"]) == 50.0 and rows[-1]["linear digits"] == ""
    assert (tmp_path / "distill.tau_teacher.png").is_file() and (tmp_path / "distill.queue_size.png").is_file()
    assert [r["point"] for r in result["tables"]["distill.queue_size"]] == [p.name for p in grid.points]
    report = (tmp_path / "report.md").read_text()
    assert "## Full grid" in report and "(failed)" in report and "Failed points" in report


def test_bad_evaluation_settings_are_refused_before_anything_runs(tmp_path):
    """Every point's evaluation configs are resolved up front: a typo in eval.cls.overrides stops
    the grid before the first distillation, with nothing written."""
    cfg = demo(f"output_dir={tmp_path / 'abl'}", 'eval.cls.overrides=["features.resiz=16"]')
    with pytest.raises(ConfigError, match=r"features\.resiz"):
        run_ablation(cfg)
    assert not (tmp_path / "abl").exists()


def test_an_evaluation_of_other_settings_is_refused_naming_them(tmp_path):
    from seed_core.config import to_dict
    from seed_transfer.pipelines.ablation.run import evaluations, stale_outputs

    cfg = demo(f"output_dir={tmp_path / 'abl'}", "only=[distill.queue_size]")
    grid = expand_grid(cfg)
    stage, ecfg, result = evaluations(cfg, grid.points[0])[-1]
    result.parent.mkdir(parents=True)
    result.write_text(json.dumps({"config": to_dict(ecfg)}))
    assert stale_outputs(cfg, grid) == []
    changed = demo(
        f"output_dir={tmp_path / 'abl'}",
        "only=[distill.queue_size]",
        f"eval.cls.overrides={json.dumps([*cfg.eval.cls.overrides, 'knn.k=7'])}",
    )
    problems = stale_outputs(changed, expand_grid(changed))
    assert len(problems) == 1 and "knn.k: " in problems[0] and "-> 7" in problems[0]


@pytest.mark.slow
def test_the_grid_as_parallel_local_jobs_gives_the_sequential_tables(tiny_grid, tmp_path, monkeypatch):
    from seed_transfer.launch import load_launcher_config
    from seed_transfer.pipelines.ablation.dag import run_ablation_dag

    paths = [str(Path(__file__).parent), str(REPO / "tests" / "distill"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))  # the jobs import ablation_job, tiny
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the jobs run (launcher.cpus_per_task=1): the same arithmetic
    try:
        sequential = run_ablation(tiny_grid)
    finally:
        torch.set_num_threads(threads)
    cfg, events = dataclasses.replace(tiny_grid, output_dir=str(tmp_path / "dag")), []
    launcher = load_launcher_config("slurm", ["executor=local", "cpus_per_task=1", "time_min=30", "max_requeues=0"])
    result = run_ablation_dag(
        cfg,
        launcher,
        poll_seconds=0.2,
        on_event=lambda kind, name: events.append((kind, name)),
        job_fn="ablation_job:main",
    )
    first_end = next(i for i, (kind, _) in enumerate(events) if kind != "submitted")
    assert first_end == 3  # every point submitted before any ended: they ran side by side
    assert sorted(name for _, name in events) == sorted(
        2 * ["point base", "point distill.tau_teacher-0.1", "point teacher-tiny_b"]
    )
    assert [p["point"] for p in result["points"]] == [p["point"] for p in sequential["points"]]
    assert [p["metrics"] for p in result["points"]] == [p["metrics"] for p in sequential["points"]]
    assert result["tables"] == sequential["tables"]
    assert {s["status"] for s in result["stages"]} == {"ran as jobs"}

    events.clear()  # every point finished: no job, the same tables
    again = run_ablation_dag(
        cfg,
        launcher,
        poll_seconds=0.2,
        on_event=lambda kind, name: events.append((kind, name)),
        job_fn="ablation_job:main",
    )
    assert events == [] and again["tables"] == sequential["tables"]
    assert all(s["status"] == "skipped" for s in again["stages"])

    # the last job of a chained graph on SLURM (launcher.wait=false) is this report pass, from the jobs' records
    from seed_transfer.pipelines.ablation.dag import nodes, report_job
    from seed_transfer.pipelines.ablation.run import prepare

    plan = prepare(cfg)
    assert report_job(cfg, plan, tuple(node.name for node in nodes(plan)))["tables"] == sequential["tables"]
