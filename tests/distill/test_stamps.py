"""The stamps catalogue: evaluation labels from the category tree, distillation images, compositing."""

import re
from pathlib import Path

import fake_stamps
import numpy as np
import pytest
from PIL import Image

from distill.data import SOURCES, _open_rgb, build_source_dataset
from distill.stamps import (
    EVAL_CATEGORIES,
    StampImages,
    composite,
    labelled_stamps,
    open_composited,
    unlabelled_stamps,
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return fake_stamps.make_stamps(tmp_path_factory.mktemp("fake"))


def test_labels_come_from_the_category_tree(root):
    labelled = labelled_stamps(root)
    assert [path for path, _ in labelled] == fake_stamps.photo_paths()  # sorted; sub-folders included
    for path, index in labelled:
        assert path.startswith(EVAL_CATEGORIES[index] + "/")
    assert dict(labelled)["animals/birds/parrots/lorikeet.png"] == EVAL_CATEGORIES.index("animals/birds")
    assert dict(labelled)["vehicles/auto/sedan.png"] == EVAL_CATEGORIES.index("vehicles")
    assert np.bincount([index for _, index in labelled]).tolist() == [4, 2, 2, 2, 2, 2, 2, 2, 2, 4]


def test_drawn_stamps_and_other_categories_are_the_distillation_images(root):
    assert unlabelled_stamps(root) == sorted(fake_stamps.UNLABELLED)
    assert not {path for path, _ in labelled_stamps(root)} & set(unlabelled_stamps(root))


def test_small_images_and_mirror_copies_are_left_out_everywhere(root):
    every = {path for path, _ in labelled_stamps(root)} | set(unlabelled_stamps(root))
    assert fake_stamps.TOO_SMALL not in every and fake_stamps.MIRROR not in every
    assert (root / fake_stamps.TOO_SMALL).is_file() and (root / fake_stamps.MIRROR).is_file()
    assert not any(path.endswith(".txt") for path in every)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparent_pixels_are_composited_on_white(tmp_path, mode):
    path = fake_stamps.write_stamp(tmp_path / f"stamp_{mode}.png", seed=3, mode=mode)
    with Image.open(path) as raw:
        assert raw.mode == mode and raw.convert("RGB").getpixel((0, 0)) != (255, 255, 255)  # what plain RGB shows
    image = open_composited(path)
    pixels = np.asarray(image)
    assert image.mode == "RGB" and image.size == fake_stamps.SIZE
    assert (pixels[:, : fake_stamps.SIZE[0] // 2] == 255).all()
    colour = fake_stamps.colour(3)
    expected = colour if mode != "LA" else Image.new("RGB", (1, 1), colour).convert("L").getpixel((0, 0))
    assert (pixels[:, fake_stamps.SIZE[0] // 2 :] == expected).all()
    assert np.asarray(open_composited(path, background=(0, 0, 0)))[0, 0].tolist() == [0, 0, 0]


def test_opaque_images_are_only_converted():
    grey = Image.new("L", (4, 4), 7)
    assert composite(grey).mode == "RGB" and composite(grey).getpixel((0, 0)) == (7, 7, 7)


def test_distillation_source(root):
    assert "stamps" in SOURCES
    source = build_source_dataset("stamps", str(root))
    assert isinstance(source, StampImages) and len(source) == len(fake_stamps.UNLABELLED)
    image = source[0]
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255)
    assert np.array_equal(np.asarray(_open_rgb(str(root / source.paths[0]))), np.asarray(image))
    assert source.fingerprint() == StampImages(root).fingerprint() and len(source.fingerprint()) == 64


def test_missing_root_names_the_package(tmp_path):
    missing = tmp_path / "nowhere"
    message = (
        f"Tux Paint stamps not found at {missing}; install them with `apt-get install "
        f"--no-install-recommends tuxpaint-stamps-default` (Debian/Ubuntu) or set the root"
    )
    for call in (labelled_stamps, unlabelled_stamps, StampImages):
        with pytest.raises(FileNotFoundError, match=re.escape(message)):
            call(missing)


def test_a_tree_without_distillation_images_is_refused(tmp_path):
    fake_stamps.write_stamp(tmp_path / "plants/trees/oak.png", seed=0)
    with pytest.raises(ValueError, match="no PNG of at least 32 px outside the evaluation categories"):
        StampImages(tmp_path)
