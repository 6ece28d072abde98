"""Issue 30's end-to-end check, at toy size: a ViT teacher in the DINOv2 authors' layout distils a
ResNet-18 and a ViT-Tiny student with SEED and with SEED + dense, and ``compare`` reports them.

No DINOv2 weights install offline, so the teacher is a ViT-S/14 with random weights made by an
independent implementation (transformers' ``Dinov2Model``) and renamed to facebookresearch/dinov2's
layout (``dinov2_vits14_pretrain.pth``); that the project embeds such files as transformers does is
``tests/distill/test_vit_teachers.py``'s part. Here: the whole pipeline takes one."""

import csv
import sys
from pathlib import Path

import pytest
import yaml

transformers = pytest.importorskip("transformers")

from safetensors import safe_open  # noqa: E402
from test_vit_teachers import authors_dinov2  # noqa: E402  (tests/distill: the Hub -> authors' names)

from seed_core.config import load_config  # noqa: E402
from seed_transfer.pipelines.compare import CompareConfig, run_compare  # noqa: E402
from seed_transfer.pipelines.compare.plan import resolve  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "golden"))
from golden import PRESET  # noqa: E402

DEPTH = 12  # dinov2_vits14: 384 wide, 12 blocks, 6 heads, patch 14


@pytest.fixture(scope="module")
def dinov2_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("dinov2")
    config = transformers.Dinov2Config(
        hidden_size=384, num_hidden_layers=DEPTH, num_attention_heads=6, patch_size=14, image_size=518
    )
    transformers.set_seed(0)
    transformers.Dinov2Model(config).save_pretrained(root / "hf")
    with safe_open(root / "hf" / "model.safetensors", "pt") as f:
        hub = {key: f.get_tensor(key) for key in f.keys()}
    import torch

    path = root / "dinov2_vits14_pretrain.pth"
    torch.save(authors_dinov2(hub, DEPTH), path)
    return path


def vit_teacher_config(out, teacher, student_arch: str) -> CompareConfig:
    golden = yaml.safe_load(PRESET.read_text())
    overrides = [
        *golden["distill"]["overrides"],
        f"teacher.weights={teacher}",
        "teacher.arch=dinov2_vits14",
        "teacher.layout=dinov2",
        "teacher.input_size=28",
    ]
    return load_config(
        CompareConfig,
        PRESET,
        [
            f"output_dir={out}",
            f"student_arch={student_arch}",
            "distill.strategies=[seed, seed+dense]",
            "distill.seeds=1",
            f"distill.overrides={overrides}",
            "rows.pixels=false",
            "rows.teacher=null",
            "det.enabled=false",
        ],
    )


@pytest.mark.slow
@pytest.mark.parametrize("student_arch", ["resnet18", "timm:vit_tiny_patch16_224"])
def test_a_dinov2_layout_teacher_distils_and_compare_reports_seed_and_dense(tmp_path, dinov2_file, student_arch):
    cfg = vit_teacher_config(tmp_path / "cmp", dinov2_file, student_arch)
    plan = resolve(cfg)
    for dcfg in plan.distill.values():  # the teacher as asked, for both strategies
        assert (dcfg.teacher.arch, dcfg.teacher.layout, dcfg.student.arch) == ("dinov2_vits14", "dinov2", student_arch)
    run_compare(cfg, command="compare")
    rows = {row["row"]: row for row in csv.DictReader((tmp_path / "cmp" / "results.csv").open())}
    assert {"seed", "seed+dense", "random"} <= rows.keys()
    for name in ("seed", "seed+dense"):
        assert rows[name]["kind"] == "row" and rows[name]["weights"].endswith("student.pth")
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert "dinov2_vits14" in report and "seed+dense" in report
