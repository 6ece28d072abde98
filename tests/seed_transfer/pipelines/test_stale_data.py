"""The stale-output rule sees the images too: a distillation folder whose checkpoint recorded other
images (more or fewer, renamed, or replaced under the same name) is named, as a changed setting is."""

import shutil

from tiny import make_image_folder
from train_worker import run, tiny_config

from seed_transfer.pipelines.stale import stale_data, stale_student


def test_changed_images_make_a_distillation_folder_stale(tmp_path):
    data_root = make_image_folder(tmp_path / "images", classes=2, per_class=8)
    out = tmp_path / "out"
    cfg = tiny_config(data_root, out, "train.max_steps=2")
    assert stale_data(cfg) == []  # nothing there yet
    run(data_root, out, "train.max_steps=2")
    assert stale_data(cfg) == [] and stale_student(cfg) == []  # the same images: reused

    (data_root / "class0" / "5.png").write_bytes((data_root / "class0" / "6.png").read_bytes() + b"\0")
    (changed,) = stale_data(cfg)
    assert changed.startswith("data.content: the sizes of files changed in 1 of 16 parts of the list (images 5-5")
    assert stale_student(cfg) == [changed]  # what the comparison and the ablation runner refuse, naming it

    shutil.copy(data_root / "class0" / "0.png", data_root / "class1" / "extra.png")
    lines = stale_data(cfg)
    assert lines[0] == "data.length: 16 -> 17" and lines[1].startswith("data.images: sha256 ")
    assert lines[2] == "data.content: 16 files then, 17 now"


def test_data_that_cannot_be_opened_here_is_left_to_the_distillation(tmp_path):
    data_root = make_image_folder(tmp_path / "images", classes=2, per_class=8)
    run(data_root, tmp_path / "out", "train.max_steps=2")
    shutil.rmtree(data_root)  # e.g. a cluster's data folder, seen only from the compute nodes
    assert stale_data(tiny_config(data_root, tmp_path / "out")) == []
