"""The comparison pipeline end to end at toy size: distillation (SEED, MoCo v2), random
init, linear + kNN transfer, detection fine-tuning, report; a second run skips every stage."""

import csv
import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from seed_core.config import ConfigError, load_config
from seed_transfer.pipelines.compare import CompareConfig, run_compare

REPO = Path(__file__).resolve().parents[3]
TINY_DISTILL = [
    "optim.epochs=1",
    "data.demo_length=32",
    "optim.batch_size=16",
    "distill.queue_size=64",
    "data.image_size=32",
    "teacher.input_size=32",
    "train.tensorboard=false",
    "data.num_workers=0",
    "train.log_every=1",
    "optim.warmup_epochs=0",
]
TINY_DET = [
    "SOLVER.MAX_ITER",
    "2",
    "SOLVER.STEPS",
    "(1,)",
    "SOLVER.WARMUP_ITERS",
    "1",
    "SOLVER.IMS_PER_BATCH",
    "2",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "50",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "10",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "32",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "16",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "INPUT.MIN_SIZE_TRAIN",
    "(64,)",
]


TINY_SEG = [
    "data.crop_size=[64, 64]",
    "data.scale=[128, 64]",
    "schedule.iters=2",
    "schedule.log_interval=1",
    "schedule.checkpoint_interval=2",
]


def tiny_config(tmp_path: Path, det: bool, seg: bool = False) -> CompareConfig:
    tiny_cls = [
        "features.resize=16",
        "features.crop=16",
        "linear.num_c=3",
        "linear.n_jobs=1",
        "linear.wd_min_exp=-1",
        "linear.wd_max_exp=3",
        "linear.max_iter=100",
        f"features.cache_dir={tmp_path / 'cache'}",
        "fewshot.enabled=true",
        "fewshot.episodes=20",
        "fewshot.shots=[1, 5]",
        "fewshot.n_query=5",
    ]
    # The demo's pipeline on data every machine has (the demo's own stamps need the Debian package):
    # the scikit-image photos for distillation, scikit-learn's digits for classification.
    return load_config(
        CompareConfig,
        REPO / "configs/compare/demo.yaml",
        [
            f"output_dir={tmp_path / 'cmp'}",
            "distill.config=configs/distill/demo.yaml",
            "cls.config=configs/transfer/cls/digits_demo.yaml",
            f"distill.overrides={json.dumps(TINY_DISTILL)}",
            f"cls.overrides={json.dumps(tiny_cls)}",
            f"det.enabled={str(det).lower()}",
            f"det.opts={json.dumps(TINY_DET)}",
            "det.seeds=1",
            f"det.data_root={tmp_path / 'datasets'}",
            f"seg.enabled={str(seg).lower()}",
            f"seg.opts={json.dumps(TINY_SEG)}",
            f"seg.data_root={tmp_path / 'seg'}",
        ],
    )


@pytest.mark.slow
def test_tiny_comparison_writes_the_report_and_resumes(tmp_path):
    det = importlib.util.find_spec("detectron2") is not None  # the core installs without it
    seg = importlib.util.find_spec("mmseg") is not None  # the [seg] extra (installed in CI)
    cfg = tiny_config(tmp_path, det, seg)
    first = run_compare(cfg, command="python tools/compare.py --config tiny.yaml")
    out = tmp_path / "cmp"
    assert [r["name"] for r in first["rows"]] == ["seed", "moco", "random", "pixels", "teacher-mnv2"]
    for strategy in ("seed", "moco"):
        assert (out / "distill" / strategy / "student.pth").is_file()
    for name in ("report.md", "results.csv", "results.png", "loss_curves.png", "cls/val_curves.png"):
        assert (out / name).is_file(), name

    with open(out / "results.csv") as f:
        entries = list(csv.DictReader(f))
    rows = {r["row"]: r for r in entries if r["kind"] == "row"}
    assert set(rows) == {"seed", "moco", "random", "pixels", "teacher-mnv2"}
    assert {r["row"] for r in entries if r["kind"] == "difference"} == {"seed - random", "moco - random", "seed - moco"}
    for name, r in rows.items():
        assert 10 <= float(r["linear digits"]) <= 100 and 10 <= float(r["knn digits"]) <= 100  # chance is 10
        assert 0 <= float(r["1shot digits"]) <= 100 and 0 <= float(r["5shot digits"]) <= 100
        if det and name not in ("teacher-mnv2", "pixels"):  # detection converts ResNets only
            assert 0 <= float(r["AP"]) <= 100 and float(r["AP std"]) == 0.0
        if seg and name not in ("teacher-mnv2", "pixels"):  # so does segmentation
            assert 0 <= float(r["mIoU"]) <= 100
    assert rows["teacher-mnv2"].get("AP", "") == "" and rows["pixels"].get("AP", "") == ""
    report = (out / "report.md").read_text()
    assert "not ImageNet numbers" in report and "mobilenet_v2" in report
    assert "- **Command**: `python tools/compare.py --config tiny.yaml`" in report
    assert f"- **Hardware** (of this invocation): {os.cpu_count()} CPU cores (" in report
    for name in ("seed", "moco", "random", "pixels", "teacher-mnv2"):
        assert f"| {name} |" in report
    for column in (
        ["linear (digits)", "knn (digits)"] + (["AP", "AP50", "AP75"] if det else []) + (["mIoU"] if seg else [])
    ):
        assert column in report
    assert all(s["status"] == "ran" for s in first["stages"])

    second = run_compare(cfg)  # everything exists: nothing is trained or evaluated again
    assert second["stages"] and all(s["status"] == "skipped" for s in second["stages"])
    assert [s["row"] for s in second["stages"]] == [s["row"] for s in first["stages"]]
    assert second["table"] == first["table"]
    # skipped stages still report how long they took when they ran
    assert [s["seconds"] for s in second["stages"]] == [s["seconds"] for s in first["stages"]]


def test_interrupted_distillation_is_not_taken_as_done(tmp_path):
    import torch

    from seed_transfer.pipelines.compare.plan import distill_config
    from seed_transfer.pipelines.stages import student_is_complete

    cfg = tiny_config(tmp_path, det=False)
    dcfg = distill_config(cfg, "seed")
    path = tmp_path / "student.pth"
    torch.save({"meta": {"step": 1, "total_steps": 2}}, path)
    assert not student_is_complete(path, dcfg)
    torch.save({"meta": {"step": 2, "total_steps": 2}}, path)
    assert student_is_complete(path, dcfg)
    assert dcfg.distill.strategy == "seed" and dcfg.train.output_dir.endswith("distill/seed")
    assert distill_config(cfg, "seed+moco").train.output_dir.endswith("distill/seed_moco")


def test_bad_config_names_the_key():
    with pytest.raises(ConfigError, match="distill.strategies"):
        load_config(CompareConfig, REPO / "configs/compare/demo.yaml", ["distill.strategies=[seed, simclr]"])
    with pytest.raises(ConfigError, match="unknown config key 'det.seed'"):
        load_config(CompareConfig, REPO / "configs/compare/demo.yaml", ["det.seed=3"])
    with pytest.raises(ConfigError, match="det.engine"):
        load_config(CompareConfig, REPO / "configs/compare/demo.yaml", ["det.engine=mmdet"])


def test_paper_and_small_presets_load():
    cfg = load_config(CompareConfig, REPO / "configs/compare/paper.yaml")
    assert cfg.distill.strategies == ["seed", "moco"] and cfg.det.config.endswith("voc_R_18_C4_24k.yaml")
    from seed_transfer.pipelines.compare.plan import distill_config

    small = load_config(CompareConfig, REPO / "configs/compare/small.yaml")
    demo = load_config(CompareConfig, REPO / "configs/compare/demo.yaml")
    assert small.det.seeds >= 3 and small.det.config == demo.det.config  # same pipeline, bigger budget
    dcfg = distill_config(small, "seed")
    # distillation steps: 537 distillation stamps (distill/stamps.py) // batch, times the epochs
    assert dcfg.data.source == "stamps" and dcfg.optim.epochs * (537 // dcfg.optim.batch_size) >= 1000
    assert small.distill.seeds >= 2 and demo.cls.config == small.cls.config == "configs/transfer/cls/stamps.yaml"


def test_the_dinov2_preset_loads_and_its_teacher_row_is_classification_only():
    from seed_transfer.pipelines.compare.plan import distill_config
    from seed_transfer.pipelines.compare.rows import det_supported
    from seed_transfer.pipelines.compare.schema import Row

    cfg = load_config(CompareConfig, REPO / "configs/compare/dinov2_r18.yaml")
    seed = distill_config(cfg, "seed")
    assert (seed.student.arch, seed.teacher.arch, seed.teacher.layout) == ("resnet18", "dinov2_vits14", "dinov2")
    assert distill_config(cfg, "moco").distill.strategy == "moco" and cfg.distill.seeds >= 2
    teacher = Row(cfg.rows.teacher_name, cfg.rows.teacher, cfg.rows.teacher_arch)
    assert cfg.rows.teacher == seed.teacher.weights and not det_supported(teacher)


def test_command_line_reports_bad_input(tmp_path, capsys):
    from seed_transfer.cli.compare import main

    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["--config", "configs/compare/demo.yaml", "det.seed=3"]) == 2
    assert "det.seed" in capsys.readouterr().err


def test_rows_get_detection_where_the_engine_can_build_them():
    from seed_transfer.pipelines.compare.rows import det_supported
    from seed_transfer.pipelines.compare.schema import Row

    mobilenet = Row("teacher", "mnv2.pth", "mobilenet_v2")
    assert det_supported(Row("seed", "s.pth", "resnet18")) and det_supported(Row("random", "random", "resnet18"))
    assert not det_supported(mobilenet) and det_supported(mobilenet, "torchvision")
    assert not det_supported(Row("pixels", "pixels", "pixels"), "torchvision")


def test_the_report_names_the_command_as_typed(monkeypatch):
    from seed_transfer.cli.compare import _command_line

    monkeypatch.setattr(sys, "argv", ["tools/compare.py", "--config", "configs/compare/small.yaml", "det.seeds=3"])
    assert _command_line(None) == "python tools/compare.py --config configs/compare/small.yaml det.seeds=3"
    assert _command_line(["--config", "my config.yaml"]) == "seed-transfer-compare --config 'my config.yaml'"


def test_distillation_seeds_are_members_of_one_row(tmp_path):
    from seed_transfer.pipelines.compare.plan import cls_config, distill_config
    from seed_transfer.pipelines.compare.rows import build_rows
    from seed_transfer.pipelines.compare.schema import Row

    cfg = tiny_config(tmp_path, det=False)
    cfg.distill.seeds = 2
    first, second = distill_config(cfg, "seed", 0), distill_config(cfg, "seed", 1)
    assert first.train.output_dir.endswith("distill/seed") and second.train.output_dir.endswith("distill/seed-s1")
    assert second.train.seed == first.train.seed + 1
    assert {k: v for k, v in vars(second.optim).items()} == vars(first.optim)
    students = [Row("seed", "a.pth", "resnet18", "seed", 0), Row("seed", "b.pth", "resnet18", "seed", 1)]
    rows = build_rows(cfg, students)
    assert [(r.name, r.member) for r in rows if r.name == "random"] == [("random", 0), ("random", 1)]
    random_s1 = cls_config(cfg, rows[3], None)
    assert random_s1.model.name == "random-s1" and random_s1.model.seed == 1


def test_a_changed_preset_on_an_existing_output_dir_is_refused(tmp_path):
    import torch

    from seed_core.config import to_dict
    from seed_transfer.pipelines.compare.plan import cls_config, distill_config, resolve
    from seed_transfer.pipelines.compare.run import check_not_stale
    from seed_transfer.pipelines.compare.schema import Row

    cfg = tiny_config(tmp_path, det=False)
    check_not_stale(resolve(cfg))  # nothing there yet
    dcfg = distill_config(cfg, "seed")
    Path(dcfg.train.output_dir).mkdir(parents=True)
    torch.save({"meta": {"config": to_dict(dcfg)}}, Path(dcfg.train.output_dir) / "student.pth")
    ccfg = cls_config(cfg, Row("seed", "x.pth", "resnet18"), None)
    Path(ccfg.output_dir).mkdir(parents=True)
    (Path(ccfg.output_dir) / "seed__digits.json").write_text(json.dumps({"config": to_dict(ccfg)}))
    check_not_stale(resolve(cfg))  # the same settings: reused
    cfg.distill.overrides = [*cfg.distill.overrides, "optim.base_lr=0.06", "data.num_workers=1"]
    cfg.cls.overrides = [*cfg.cls.overrides, "linear.num_c=5", "linear.n_jobs=2"]
    with pytest.raises(ConfigError) as err:
        check_not_stale(resolve(cfg))
    message = str(err.value)
    assert "optim.base_lr: 0.03 -> 0.06" in message and "linear.num_c: 3 -> 5" in message
    assert "num_workers" not in message and "n_jobs" not in message  # speed settings change no result


def test_rows_with_the_same_teacher_views_share_the_teacher_cache(tmp_path):
    from seed_transfer.pipelines.compare.plan import distill_configs

    cfg = tiny_config(tmp_path, det=False)
    cfg.distill.strategies = ["seed", "l2", "moco"]
    configs = distill_configs(cfg)
    assert (
        configs["seed", 0].teacher.cache_dir
        == configs["l2", 0].teacher.cache_dir
        == str(tmp_path / "cmp" / "teacher_cache")
    )
    assert configs["moco", 0].teacher.cache_dir is None  # no teacher
    cfg.distill.strategies = ["seed", "moco"]
    assert distill_configs(cfg)["seed", 0].teacher.cache_dir is None  # nothing to share: no cache written
    cfg.distill.strategies = ["seed", "seed+dense"]  # dense reads the live teacher's feature maps: no cache
    configs = distill_configs(cfg)
    assert configs["seed", 0].teacher.cache_dir is None and configs["seed+dense", 0].teacher.cache_dir is None
    for dcfg in configs.values():
        dcfg.validate()  # as the plan hands them down: seed+dense refuses a cache, and none is set


@pytest.mark.parametrize(
    "override, key",
    [
        ('det.opts=["SOLVER.MAX_ITERS", "5"]', "SOLVER.MAX_ITERS"),  # a detection option that does not exist
        ('cls.overrides=["features.resiz=16"]', "features.resiz"),  # a classification key that does not exist
        ('distill.overrides=["optim.epoch=3"]', "optim.epoch"),
        ('seg.opts=["schedule.iter=2"]', "schedule.iter"),
    ],
)
def test_every_sub_config_is_checked_before_anything_runs(tmp_path, override, key):
    """A typo in any stage's settings stops the comparison at once, naming the key, with nothing
    written: before, a bad det.opts surfaced only after the distillation had run."""
    from seed_transfer.pipelines.compare.plan import resolve

    cfg = load_config(
        CompareConfig,
        REPO / "configs/compare/demo.yaml",
        [f"output_dir={tmp_path / 'cmp'}", "det.engine=torchvision", "seg.enabled=true", override],
    )
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        run_compare(cfg)
    assert not (tmp_path / "cmp").exists()
    good = load_config(
        CompareConfig,
        REPO / "configs/compare/demo.yaml",
        [f"output_dir={tmp_path / 'cmp'}", "det.engine=torchvision", "seg.enabled=true"],
    )
    plan = resolve(good)
    assert len(plan.distill) == 2 and plan.cls[0].config.data.name == "stamps"
    # every fine-tuned row carries its resolved plan: one engine and schedule for all of them
    assert {(run.plan.engine, run.plan.effective.max_iter) for run in plan.det} == {("torchvision", 80)}
    assert [run.row.tag for run in plan.det] == ["seed", "moco", "random", "teacher-mnv2"] and plan.seg


def test_a_changed_fine_tuning_schedule_on_an_existing_output_dir_is_refused(tmp_path):
    """Detection (and segmentation) folders record the settings that produced them; a preset whose
    det.opts changed since is refused before anything runs, naming the change (before, the old
    summaries were reused silently)."""
    from seed_transfer.pipelines.compare.plan import finetune_settings, resolve
    from seed_transfer.pipelines.compare.run import check_not_stale
    from seed_transfer.pipelines.stages import write_settings

    cfg = tiny_config(tmp_path, det=True)
    folder = tmp_path / "cmp" / "det" / "seed"
    folder.mkdir(parents=True)
    write_settings(folder, finetune_settings(cfg, "det"))
    check_not_stale(resolve(cfg))  # the same settings: reused
    (tmp_path / "cmp" / "det" / "old").mkdir()  # a folder from before settings were recorded: not judged
    check_not_stale(resolve(cfg))
    cfg.det.opts = [*cfg.det.opts, "SOLVER.BASE_LR", "0.02"]
    with pytest.raises(ConfigError, match=r"det/seed: opts: .*SOLVER.BASE_LR', '0.02'\]"):
        check_not_stale(resolve(cfg))


def test_a_fine_tuning_folder_records_its_settings_before_its_first_seed(tmp_path, monkeypatch):
    """So a partly fine-tuned folder (an interrupted run, a cluster DAG's finished seeds) is judged
    by the stale rule too, not only a finished one."""
    import seed_transfer.detection.transfer as det_transfer
    from seed_transfer.pipelines.compare.plan import finetune_settings, resolve
    from seed_transfer.pipelines.compare.run import finetune

    cfg = tiny_config(tmp_path, det=True)
    cfg.det.seeds = 2
    (run,) = [run for run in resolve(cfg).det if run.row.tag == "seed"]
    out, seen = tmp_path / "cmp" / "det" / "seed", []
    assert run.out == out
    monkeypatch.setattr(
        det_transfer,
        "run_detection_transfer",
        lambda plan: seen.append((json.loads((out / "settings.json").read_text()), plan)) or {},
    )
    finetune(run, seed=1)
    # the settings first; then the row's resolved plan, narrowed to the one seed (a job's)
    assert seen == [(finetune_settings(cfg, "det"), run.plan.only(1))]
    assert seen[0][1].request.only_seed == 1 and run.plan.request.only_seed is None


def test_detection_options_are_typed_keys_that_become_detectron2_pairs():
    from seed_transfer.pipelines.compare.schema import detectron2_opts

    assert detectron2_opts(
        {
            "SOLVER": {"MAX_ITER": 500, "STEPS": [375, 450], "BASE_LR": 0.01},
            "INPUT": {"MIN_SIZE_TRAIN": [160]},
            "MODEL": {"RPN": {"PRE_NMS_TOPK_TEST": 300}},
            "DATASETS": {"TRAIN": ["voc_2007_trainval"]},
        }
    ) == [
        "SOLVER.MAX_ITER",
        "500",
        "SOLVER.STEPS",
        "(375, 450)",
        "SOLVER.BASE_LR",
        "0.01",
        "INPUT.MIN_SIZE_TRAIN",
        "(160,)",
        "MODEL.RPN.PRE_NMS_TOPK_TEST",
        "300",
        "DATASETS.TRAIN",
        "('voc_2007_trainval',)",
    ]
    small = load_config(CompareConfig, REPO / "configs/compare/small.yaml", ["det.options.SOLVER.BASE_LR=0.02"])
    opts = small.det.all_opts()  # the demo's options with the small preset's schedule merged over them
    assert opts[opts.index("SOLVER.MAX_ITER") + 1] == "500" and opts[opts.index("SOLVER.BASE_LR") + 1] == "0.02"
    assert opts[opts.index("INPUT.MIN_SIZE_TRAIN") + 1] == "(160,)"
    with pytest.raises(ConfigError, match=r"det\.options\.SOLVER\.STEPS: expected a list of scalars"):
        load_config(CompareConfig, REPO / "configs/compare/demo.yaml", ["det.options.SOLVER.STEPS=[[1, 2]]"])


def test_fine_tuning_takes_the_first_members_of_each_strategy(tmp_path):
    from seed_transfer.pipelines.compare.rows import build_rows, finetune_rows
    from seed_transfer.pipelines.compare.schema import Row

    cfg = tiny_config(tmp_path, det=False)
    cfg.distill.seeds, cfg.det.members = 4, 2
    students = [Row(s, f"{s}{m}.pth", "resnet18", s, m) for s in ("seed", "moco") for m in range(4)]
    rows = build_rows(cfg, students)
    chosen = [row.tag for row, _ in finetune_rows(cfg, "det", rows)]
    # random init is replicated like the students (the teacher is a MobileNet)
    assert chosen == ["seed", "seed-s1", "moco", "moco-s1", "random", "random-s1"]
    cfg.det.members = None
    assert [row.tag for row, _ in finetune_rows(cfg, "det", rows)][:4] == ["seed", "seed-s1", "seed-s2", "seed-s3"]
    assert [row.tag for row, _ in finetune_rows(cfg, "det", rows)][-4:] == [
        f"random{t}" for t in ("", "-s1", "-s2", "-s3")
    ]


def test_members_start_at_first_member_and_random_members_draw_their_own_seeds(tmp_path):
    from seed_transfer.pipelines.compare.plan import cls_config, distill_configs
    from seed_transfer.pipelines.compare.rows import build_rows, finetune_rows, seed_offset, student_rows

    cfg = tiny_config(tmp_path, det=False)
    base = distill_configs(cfg)[("seed", 0)].train.seed
    cfg.distill.seeds, cfg.distill.first_member, cfg.det.members = 3, 4, 2
    configs = distill_configs(cfg)
    assert sorted(configs) == [(s, m) for s in ("moco", "seed") for m in (4, 5, 6)]
    assert [configs[("seed", m)].train.seed for m in (4, 5, 6)] == [base + 4, base + 5, base + 6]
    assert configs[("moco", 5)].train.output_dir.endswith("moco-s5")
    rows = build_rows(cfg, student_rows(cfg, configs))
    randoms = [row for row in rows if row.name == "random"]
    assert [row.member for row in randoms] == [4, 5, 6]
    assert [cls_config(cfg, row, None).model.seed for row in randoms] == [4, 5, 6]  # classification's init
    tuned = [row for row, _ in finetune_rows(cfg, "det", rows)]
    assert [row.tag for row in tuned] == ["seed-s4", "seed-s5", "moco-s4", "moco-s5", "random-s4", "random-s5"]
    # fine-tuning seed k of random member m runs with RNG seed 1000 m + k; students' seeds are shared
    assert [seed_offset(row) for row in tuned] == [0, 0, 0, 0, 4000, 5000]
    with pytest.raises(ConfigError, match="distill.first_member must be at least 0, got -1"):
        load_config(CompareConfig, REPO / "configs/compare/small.yaml", ["distill.first_member=-1"])


def test_primary_comparisons_name_rows_of_the_comparison():
    cfg = load_config(CompareConfig, REPO / "configs/compare/confirm.yaml")
    assert cfg.primary == ["seed - moco 5shot stamps", "seed - random AP"]
    assert (cfg.distill.seeds, cfg.distill.first_member, cfg.det.members, cfg.det.seeds) == (8, 4, 3, 2)
    with pytest.raises(ConfigError, match="names the row 'dino'"):
        load_config(CompareConfig, REPO / "configs/compare/small.yaml", ['primary=["dino - moco AP"]'])
    with pytest.raises(ConfigError, match="is not '<row> - <row> <column>'"):
        load_config(CompareConfig, REPO / "configs/compare/small.yaml", ['primary=["seed minus moco"]'])


def test_the_first_invocation_registers_the_design_and_the_report_names_changes(tmp_path):
    from seed_transfer.pipelines.compare.registration import changes, register, registration_lines

    cfg = load_config(CompareConfig, REPO / "configs/compare/confirm.yaml", [f"output_dir={tmp_path}"])
    record = register(cfg)
    assert record["design"]["distill.seeds"] == 8 and (tmp_path / "registration.json").is_file()
    assert changes(cfg, record) == [] and len(registration_lines(cfg)) == 1
    cfg.distill.seeds = 9  # e.g. extended after seeing p = 0.07
    assert register(cfg) == record  # the first registration stays
    assert changes(cfg, record) == ["distill.seeds: 8 when registered, 9 now"]
    assert "**Changed after the run started**" in registration_lines(cfg)[1]


@pytest.mark.parametrize(
    "members, message",
    [(0, r"det.members must be at least 1 \(or null\), got 0"), (3, "det.members=3: .*distill.seeds=2")],
)
def test_fine_tuned_members_are_checked_against_the_distillations(members, message):
    with pytest.raises(ConfigError, match=message):
        load_config(CompareConfig, REPO / "configs/compare/small.yaml", [f"det.members={members}"])


def test_a_student_whose_every_result_exists_is_not_distilled_again(tmp_path, monkeypatch):
    import distill.trainer
    from seed_transfer.classification.transfer import result_path
    from seed_transfer.pipelines.compare.plan import cls_config, distill_configs, resolve
    from seed_transfer.pipelines.compare.run import results_outlive_student, run_distill
    from seed_transfer.pipelines.stages import Stages

    cfg = tiny_config(tmp_path, det=True)
    cfg.det.seeds = 2
    plan = resolve(cfg)
    seed, moco = plan.students
    assert not results_outlive_student(plan, seed)  # no result at all: it is distilled
    result = result_path(cls_config(cfg, seed, None))
    result.parent.mkdir(parents=True)
    result.write_text("{}")
    assert not results_outlive_student(plan, seed)  # its detection summary is missing
    summary = tmp_path / "cmp" / "det" / "seed" / "summary.json"
    summary.parent.mkdir(parents=True)
    summary.write_text(json.dumps({"seeds": 1}))
    assert not results_outlive_student(plan, seed)  # one seed of two
    for k in range(2):  # cluster jobs leave each seed's metrics.json, the summary comes last
        (summary.parent / f"seed{k}").mkdir()
        (summary.parent / f"seed{k}" / "metrics.json").write_text("{}")
    assert results_outlive_student(plan, seed)
    summary.write_text(json.dumps({"seeds": 2}))
    assert results_outlive_student(plan, seed)
    assert not results_outlive_student(plan, moco)

    distilled = []
    monkeypatch.setattr(distill.trainer, "train", lambda dcfg, resume: distilled.append(dcfg.distill.strategy))
    stages = Stages(tmp_path / "stages.json")
    run_distill(plan, stages)
    assert distilled == ["moco"] and [s["status"] for s in stages.records] == ["skipped", "ran"]

    # what the run recorded when it started still guards its results against a changed config
    from seed_core.config import dump_config
    from seed_transfer.pipelines.compare.run import check_not_stale

    dcfg = distill_configs(cfg)["seed", 0]
    Path(dcfg.train.output_dir).mkdir(parents=True)
    dump_config(dcfg, Path(dcfg.train.output_dir) / "config.yaml")
    check_not_stale(resolve(cfg))
    cfg.distill.overrides = [*cfg.distill.overrides, "optim.base_lr=0.06"]
    with pytest.raises(ConfigError, match="optim.base_lr: 0.03 -> 0.06"):
        check_not_stale(resolve(cfg))

    checkpoint = Path(seed.weights).parent / "checkpoint.pth"  # a started distillation resumes instead
    checkpoint.write_bytes(b"")
    assert not results_outlive_student(plan, seed)


def test_the_small4_preset_extends_small_with_the_same_distillations():
    from seed_transfer.pipelines.compare.plan import distill_configs

    small = load_config(CompareConfig, REPO / "configs/compare/small.yaml")
    small4 = load_config(CompareConfig, REPO / "configs/compare/small4.yaml")
    assert (small4.distill.seeds, small4.det.members, small.det.members) == (4, 2, None)
    assert small4.det == type(small4.det)(**{**vars(small.det), "members": 2})  # the same fine-tuning
    first, more = distill_configs(small), distill_configs(small4)
    for key, dcfg in first.items():  # members 0 and 1 are small's own distillations
        other = more[key]
        other.train.output_dir = dcfg.train.output_dir
        assert other == dcfg, key
    assert more["seed", 3].train.seed == first["seed", 0].train.seed + 3
