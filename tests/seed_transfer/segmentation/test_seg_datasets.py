"""Official layouts -> mmseg dataset dicts; wrong layouts name what is missing; the offline example."""

import numpy as np
import pytest
from PIL import Image

from seed_core.errors import DataError
from seed_transfer.segmentation.datasets import (
    CITYSCAPES_ID_TO_TRAINID,
    DatasetLayoutError,
    make_voc_example,
    resolve_dataset,
)


def _voc(root, names_train=("a", "b"), names_val=("c",), aug=()):
    folder = root / "VOCdevkit" / "VOC2012"
    (folder / "JPEGImages").mkdir(parents=True)
    (folder / "SegmentationClass").mkdir()
    (folder / "ImageSets" / "Segmentation").mkdir(parents=True)
    (folder / "ImageSets/Segmentation/train.txt").write_text("".join(n + "\n" for n in names_train))
    (folder / "ImageSets/Segmentation/val.txt").write_text("".join(n + "\n" for n in names_val))
    for name in {*names_train, *names_val, *aug}:
        Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / "JPEGImages" / f"{name}.jpg")
    for name in {*names_train, *names_val}:
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(folder / "SegmentationClass" / f"{name}.png")
    if aug:
        (folder / "SegmentationClassAug").mkdir()
        for name in aug:
            Image.fromarray(np.zeros((2, 2), np.uint8)).save(folder / "SegmentationClassAug" / f"{name}.png")
    return folder


def test_unreadable_images_and_label_maps_are_refused_naming_them(tmp_path):
    """Refused before MMSegmentation reads anything: a mIoU over fewer images is another set's."""
    folder = _voc(tmp_path, names_val=("c", "d"))
    (folder / "JPEGImages" / "c.jpg").write_bytes(b"")
    (folder / "SegmentationClass" / "d.png").write_text("not a png")
    (folder / "JPEGImages" / "a.jpg").unlink()  # a missing file of the train split, scanned first
    with pytest.raises(DataError, match=r"train split: 1 of its 4 images cannot be read: .*a\.jpg \(FileNotFoundError"):
        resolve_dataset("voc12", tmp_path, tmp_path / "run")
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(folder / "JPEGImages" / "a.jpg")
    with pytest.raises(DataError) as refused:
        resolve_dataset("voc12", tmp_path, tmp_path / "run")
    message = str(refused.value)
    assert message.startswith(f"{folder}, val split: 2 of its 4 images cannot be read: {folder / 'JPEGImages/c.jpg'} ")
    assert "(empty file (0 bytes))" in message
    assert f"{folder / 'SegmentationClass/d.png'} (UnidentifiedImageError" in message


def test_wrong_voc_layout_names_the_missing_parts(tmp_path):
    (tmp_path / "VOCdevkit" / "VOC2012" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match=r"SegmentationClass.*train\.txt.*VOCdevkit/VOC2012"):
        resolve_dataset("voc12", tmp_path, tmp_path / "run")
    with pytest.raises(DatasetLayoutError, match="leftImg8bit"):
        resolve_dataset("cityscapes", tmp_path, tmp_path / "run")
    with pytest.raises(ValueError, match="unknown segmentation dataset 'ade'"):
        resolve_dataset("ade", tmp_path, tmp_path / "run")


def test_voc12aug_adds_sbd_minus_train_and_val(tmp_path):
    folder = _voc(tmp_path, aug=("a", "c", "d", "e"))
    data = resolve_dataset("voc12aug", tmp_path, tmp_path / "run")
    assert [d["data_prefix"]["seg_map_path"] for d in data["train"]] == ["SegmentationClass", "SegmentationClassAug"]
    assert (tmp_path / "run" / "voc_aug.txt").read_text().split() == ["d", "e"]  # val 'c' and train 'a' left out
    assert data["val"]["data_root"] == str(folder) and data["num_classes"] == 21
    assert data["info"]["aug_images"] == 2


def test_voc12aug_without_sbd_falls_back_to_train(tmp_path, caplog):
    _voc(tmp_path)
    data = resolve_dataset("voc12aug", tmp_path, tmp_path / "run")
    assert len(data["train"]) == 1 and "SegmentationClassAug" in caplog.text


def test_cityscapes_label_ids_are_mapped(tmp_path):
    for split in ("train", "val"):
        (tmp_path / "cityscapes" / "leftImg8bit" / split / "aachen").mkdir(parents=True)
        gt = tmp_path / "cityscapes" / "gtFine" / split / "aachen"
        gt.mkdir(parents=True)
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(gt / "aachen_000000_000019_gtFine_labelIds.png")
    data = resolve_dataset("cityscapes", tmp_path, tmp_path / "run")
    assert data["train"][0]["seg_map_suffix"] == "_gtFine_labelIds.png"
    assert data["label_transforms"] == [{"type": "CityscapesLabelIdsToTrainIds"}]
    from seed_transfer.segmentation.mmseg_setup import import_mmseg

    import_mmseg()
    from seed_transfer.segmentation.registered import CityscapesLabelIdsToTrainIds

    ids = np.array([[7, 26, 0], [33, 9, 255]], np.uint8)  # road, car, unlabeled / bicycle, parking, 255
    mapped = CityscapesLabelIdsToTrainIds()({"gt_seg_map": ids})["gt_seg_map"]
    assert mapped.tolist() == [[0, 13, 255], [18, 255, 255]] and CITYSCAPES_ID_TO_TRAINID[26] == 13


def test_offline_example_is_a_voc_layout(tmp_path):
    folder = make_voc_example(tmp_path / "voc_example")
    label = np.array(Image.open(folder / "SegmentationClass" / "voc_example_full.png"))
    assert label.shape == (375, 500) and set(np.unique(label)) == {0, 5, 9, 11, 15}
    data = resolve_dataset("voc_example", tmp_path, tmp_path / "run")
    assert data["info"]["train_images"] == 4 and data["info"]["val_images"] == 1
