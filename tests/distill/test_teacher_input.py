"""The teacher gets the input normalisation its family was trained with (the student keeps
ImageNet's), chosen by the layout or by teacher.input_norm, in the cache key too; and the
teacher-family augmentation presets of the SEED authors (SwAV crop scale, SimCLR no blur)."""

import logging

import pytest
import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as T
from test_data import RandomImages
from tiny import TINY, make_image_folder, tiny_cnn
from train_worker import BASE

from distill.builder import build_teacher
from distill.data import IMAGENET, UNIT_RANGE, Normalization, SeededViews, mocov2_transform
from distill.schema import DistillConfig
from distill.teacher import FrozenTeacher, resolve_input_norm
from distill.teacher_cache import TeacherCache
from distill.trainer import build_source, view_transform
from seed_core.config import ConfigError, load_config

MEAN = torch.tensor(IMAGENET.mean).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET.std).view(1, 3, 1, 1)


class Recorder(nn.Module):
    """A backbone that remembers its input and returns its per-channel means (N x 3)."""

    def forward(self, images):
        self.seen = images.clone()
        return images.mean(dim=(2, 3))


def student_view(pixels: torch.Tensor) -> torch.Tensor:
    """[0, 1] pixels as the student sees them: ImageNet-normalised."""
    return (pixels - MEAN) / STD


@pytest.mark.parametrize(
    "input_norm, expected",
    [
        (UNIT_RANGE, lambda pixels: pixels),
        (
            Normalization((0.5, 0.5, 0.5), (0.25, 0.5, 2.0)),
            lambda pixels: (pixels - 0.5) / torch.tensor([0.25, 0.5, 2.0]).view(1, 3, 1, 1),
        ),
    ],
)
def test_the_teacher_gets_its_own_normalisation_of_the_students_view(input_norm, expected):
    pixels = torch.rand(2, 3, 8, 8)
    teacher = FrozenTeacher(Recorder(), input_norm=input_norm)
    teacher(student_view(pixels))
    assert torch.allclose(teacher.backbone.seen, expected(pixels), atol=1e-6)


def test_the_same_normalisation_passes_the_view_unchanged_and_adds_no_state():
    view = torch.randn(2, 3, 8, 8)
    teacher = FrozenTeacher(Recorder(), input_norm=IMAGENET)
    teacher(view)
    assert torch.equal(teacher.backbone.seen, view)
    renormalising = FrozenTeacher(Recorder(), input_norm=UNIT_RANGE)
    assert renormalising.state_dict().keys() == teacher.state_dict().keys()  # the config decides, not a checkpoint


def test_renormalisation_comes_before_the_resize():
    pixels = torch.rand(1, 3, 16, 16)
    teacher = FrozenTeacher(Recorder(), input_size=8, input_norm=UNIT_RANGE)
    teacher(student_view(pixels))
    resized = nn.functional.interpolate(pixels, size=8, mode="bilinear", align_corners=False, antialias=True)
    assert torch.allclose(teacher.backbone.seen, resized, atol=1e-6)


@pytest.mark.parametrize(
    "setting, layout, expected, source",
    [
        ("auto", "simclr", UNIT_RANGE, "simclr layout"),
        ("auto", "mocov2", IMAGENET, "mocov2 layout"),
        ("auto", "swav", IMAGENET, "swav layout"),
        ("auto", "dino", IMAGENET, "dino layout"),
        ("auto", "torchvision", IMAGENET, "torchvision layout"),
        ("imagenet", "simclr", IMAGENET, "teacher.input_norm=imagenet"),
        ("none", "mocov2", UNIT_RANGE, "teacher.input_norm=none"),
        (
            [0.5, 0.4, 0.3, 0.2, 0.2, 0.2],
            "simclr",
            Normalization((0.5, 0.4, 0.3), (0.2, 0.2, 0.2)),
            "teacher.input_norm",
        ),
    ],
)
def test_the_layout_or_the_setting_decides(setting, layout, expected, source):
    assert resolve_input_norm(setting, layout) == (expected, source)


@pytest.fixture(scope="module")
def simclr_file(tmp_path_factory):
    """A file laid out as tonylins/simclr-converter writes it: {"state_dict": torchvision ResNet keys with fc}."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("simclr") / "resnet18-1x.pth"
    torch.save({"state_dict": torchvision.models.resnet18().state_dict()}, path)
    return path


def teacher_config(weights, *overrides):
    return load_config(
        DistillConfig,
        None,
        [
            "data.root=/unused",
            f"teacher.weights={weights}",
            "teacher.arch=resnet18",
            "student.arch=resnet18",
            "distill.queue_size=64",
            "optim.batch_size=32",
            *overrides,
        ],
    )


def test_a_simclr_teacher_gets_unit_range_pixels_and_says_so(simclr_file, caplog):
    with caplog.at_level(logging.INFO, logger="distill"):
        teacher = build_teacher(teacher_config(simclr_file))
    assert "teacher input: [0, 1] pixels (no normalisation) (simclr layout)" in caplog.text
    reference = torchvision.models.resnet18()
    reference.load_state_dict(torch.load(simclr_file)["state_dict"])
    reference.fc = nn.Identity()
    pixels = torch.rand(2, 3, 32, 32)
    expected = nn.functional.normalize(reference.eval()(pixels), dim=1)
    assert torch.allclose(teacher(student_view(pixels)), expected, atol=1e-5)
    as_imagenet = build_teacher(teacher_config(simclr_file, "teacher.input_norm=imagenet"))
    assert torch.allclose(as_imagenet(pixels), expected, atol=1e-5)  # no re-normalisation: the view goes in as is


def cache_folder(data_root, weights, *overrides):
    cfg = load_config(
        DistillConfig,
        None,
        [
            *BASE,
            f"data.root={data_root}",
            f"teacher.weights={weights}",
            f"teacher.arch={TINY}",
            "teacher.cache_dir=/unused",
            *overrides,
        ],
    )
    return TeacherCache.for_run(cfg, build_source(cfg), torch.device("cpu")).folder


def test_the_cache_key_holds_the_resolved_normalisation_and_augmentation(tmp_path):
    data_root = make_image_folder(tmp_path / "images", classes=2, per_class=4)
    torch.manual_seed(0)
    weights = tmp_path / "teacher.pth"
    torch.save(tiny_cnn()[0].state_dict(), weights)  # detected as a torchvision layout: ImageNet input
    base = cache_folder(data_root, weights)
    assert cache_folder(data_root, weights, "teacher.input_norm=imagenet") == base  # what auto resolves to
    folders = [
        cache_folder(data_root, weights, override)
        for override in (
            "teacher.input_norm=none",
            "teacher.input_norm=[0.5,0.5,0.5,0.5,0.5,0.5]",
            "data.crop_scale_min=0.14",
            "data.blur=false",
        )
    ]
    assert base not in folders and len(set(folders)) == len(folders)


def test_augmentation_presets_change_the_views_and_the_defaults_do_not():
    images = RandomImages(4)
    default = SeededViews(images, mocov2_transform(32), num_views=1)
    cfg = load_config(DistillConfig, None, ["data.root=/x", "teacher.weights=/t.pth", "data.image_size=32"])
    configured = SeededViews(images, view_transform(cfg), num_views=1)
    assert all(torch.equal(default[(i, 7)][0], configured[(i, 7)][0]) for i in range(4))
    for preset in (dict(crop_scale_min=0.14), dict(blur=False)):
        other = SeededViews(images, mocov2_transform(32, **preset), num_views=1)
        assert any(not torch.equal(default[(i, 7)][0], other[(i, 7)][0]) for i in range(4)), preset

    def blurs(transform):
        return [
            t
            for t in transform.transforms
            if isinstance(t, T.RandomApply) and isinstance(t.transforms[0], T.GaussianBlur)
        ]

    assert len(blurs(mocov2_transform(32))) == 1 and not blurs(mocov2_transform(32, blur=False))
    assert mocov2_transform(32, crop_scale_min=0.14).transforms[0].scale == (0.14, 1.0)


def test_the_swav_and_simclr_configs_set_the_authors_presets():
    from pathlib import Path

    configs = Path(__file__).parents[2] / "configs/distill"
    swav = load_config(DistillConfig, configs / "seed_r18_swav_r50.yaml", ["data.root=/x", "teacher.weights=/t"])
    simclr = load_config(DistillConfig, configs / "seed_r18_simclr_r50.yaml", ["data.root=/x", "teacher.weights=/t"])
    mocov2 = load_config(DistillConfig, configs / "seed_r18_mocov2_r50.yaml", ["data.root=/x", "teacher.weights=/t"])
    assert (swav.data.crop_scale_min, swav.data.blur) == (0.14, True)
    assert (simclr.data.crop_scale_min, simclr.data.blur) == (0.2, False)
    assert (mocov2.data.crop_scale_min, mocov2.data.blur) == (0.2, True)
    assert resolve_input_norm(simclr.teacher.input_norm, simclr.teacher.layout)[0] == UNIT_RANGE


@pytest.mark.parametrize(
    "override, message",
    [
        ("teacher.input_norm=imagnet", "teacher.input_norm='imagnet': choose one of auto, imagenet, none"),
        ("teacher.input_norm=[0.5,0.5,0.5]", r"teacher.input_norm=\[0.5, 0.5, 0.5\]: an explicit normalisation is 6"),
        ("teacher.input_norm=[0,0,0,1,1,0]", "with every std > 0"),
        ("data.crop_scale_min=0", r"data.crop_scale_min must be in \(0, 1\], got 0.0"),
        ("data.crop_scale_min=1.5", r"data.crop_scale_min must be in \(0, 1\], got 1.5"),
    ],
)
def test_bad_input_settings_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(DistillConfig, None, ["data.root=/x", "teacher.weights=/t.pth", override])
