"""Tiny fake copies of the official dataset layouts (a few 6 x 5 images per class).

Each ``make_<dataset>(parent)`` writes the tree the official archives extract under
``parent`` and returns the dataset folder (e.g. ``parent/dtd``); the docstrings list
the split sizes the tests expect.
"""

import pickle
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, seed: int = 0, mode: str = "RGB") -> Path:
    """A 6 x 5 random image (format from the extension; ``mode="L"`` for a grayscale file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.random.default_rng(seed).integers(0, 256, (5, 6, 3), dtype=np.uint8)
    Image.fromarray(array).convert(mode).save(path)
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _pickle(path: Path, contents: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(contents, f)


def cifar_batch(labels: list[int], seed: int, label_key: bytes = b"labels") -> dict:
    """Images: pixel (c, y, x) of image i = (i * 7 + c * 3 + seed) % 256, so tests can check the CHW -> HWC order."""
    data = np.zeros((len(labels), 3, 32, 32), dtype=np.uint8)
    for i in range(len(labels)):
        for c in range(3):
            data[i, c] = (i * 7 + c * 3 + seed) % 256
    return {b"data": data.reshape(len(labels), 3072), label_key: labels, b"batch_label": b"fake"}


def make_cifar10(parent: Path) -> Path:
    """3 classes; train = 5 batches x 2 images (labels 0,1 / 1,2 / 2,0 / 0,1 / 1,2), test = 3 images (2, 1, 0)."""
    root = parent / "cifar-10-batches-py"
    _pickle(root / "batches.meta", {b"label_names": [b"airplane", b"automobile", b"bird"], b"num_vis": 3072})
    for i in range(5):
        _pickle(root / f"data_batch_{i + 1}", cifar_batch([i % 3, (i + 1) % 3], seed=i))
    _pickle(root / "test_batch", cifar_batch([2, 1, 0], seed=10))
    return root


def make_cifar100(parent: Path) -> Path:
    """3 fine classes; train = 4 images (fine 0, 1, 2, 2), test = 2 images (fine 1, 0)."""
    root = parent / "cifar-100-python"
    _pickle(root / "meta", {b"fine_label_names": [b"apple", b"aquarium_fish", b"baby"],
                            b"coarse_label_names": [b"fruit", b"fish"]})
    for name, fine, seed in (("train", [0, 1, 2, 2], 0), ("test", [1, 0], 5)):
        batch = cifar_batch(fine, seed, label_key=b"fine_labels")
        batch[b"coarse_labels"] = [0] * len(fine)
        _pickle(root / name, batch)
    return root


SUN_CLASSES = ["/a/abbey", "/b/bakery/shop", "/c/campus"]


def make_sun397(parent: Path, partitions_inside: bool = True) -> Path:
    """3 classes (abbey, bakery/shop, campus), 2 train + 1 test image each; Partitions inside or beside SUN397/."""
    root = parent / "SUN397"
    write_lines(root / "ClassName.txt", SUN_CLASSES)
    train, test = [], []
    for c, key in enumerate(SUN_CLASSES):
        names = [f"{key}/sun_{c}{j}.jpg" for j in range(3)]
        for j, name in enumerate(names):
            write_image(root / name.lstrip("/"), seed=10 * c + j)
        train += names[:2]
        test += names[2:]
    partitions = root / "Partitions" if partitions_inside else parent / "Partitions"
    write_lines(partitions / "ClassName.txt", SUN_CLASSES)
    write_lines(partitions / "Training_01.txt", train)
    write_lines(partitions / "Testing_01.txt", test)
    return root


DTD_CLASSES = ["banded", "blotchy", "zigzagged"]


def make_dtd(parent: Path) -> Path:
    """3 classes, 4 images each; split 1: 2 train, 1 val, 1 test per class (the split-2 files list them reversed)."""
    root = parent / "dtd"
    splits = {"train": [], "val": [], "test": []}
    for c, name in enumerate(DTD_CLASSES):
        files = [f"{name}/{name}_{j:04d}.jpg" for j in range(4)]
        for j, file in enumerate(files):
            write_image(root / "images" / file, seed=10 * c + j)
        splits["train"] += files[:2]
        splits["val"] += files[2:3]
        splits["test"] += files[3:]
    for split, lines in splits.items():
        write_lines(root / "labels" / f"{split}1.txt", lines)
        write_lines(root / "labels" / f"{split}2.txt", lines[::-1])
    (root / "images" / "banded" / ".directory").write_text("hidden file of the archive\n")
    return root


AIRCRAFT_VARIANTS = ["Boeing 707-320", "F/A-18", "DHC-1"]


def make_aircraft(parent: Path) -> Path:
    """3 variants with spaces / slash / hyphen; 2 train, 1 val, 1 test image per variant."""
    root = parent / "fgvc-aircraft-2013b"
    data = root / "data"
    write_lines(data / "variants.txt", AIRCRAFT_VARIANTS)
    splits = {"train": [], "val": [], "test": []}
    for c, variant in enumerate(AIRCRAFT_VARIANTS):
        ids = [f"{1025794 + 10 * c + j:07d}" for j in range(4)]
        for j, image_id in enumerate(ids):
            write_image(data / "images" / f"{image_id}.jpg", seed=10 * c + j)
        splits["train"] += [f"{i} {variant}" for i in ids[:2]]
        splits["val"] += [f"{ids[2]} {variant}"]
        splits["test"] += [f"{ids[3]} {variant}"]
    for split, lines in splits.items():
        write_lines(data / f"images_variant_{split}.txt", lines)
    return root


CARS_CLASSES = ["AM General Hummer SUV 2000", "Acura RL Sedan 2012", "Acura TL Sedan 2012"]


def cars_annotations(fnames: list[str], labels: list[int]) -> np.ndarray:
    """The official 1 x N struct array of the annotation files (class 1-based)."""
    fields = ["bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname"]
    annotations = np.zeros(len(fnames), dtype=[(f, "O") for f in fields])
    for i, (fname, label) in enumerate(zip(fnames, labels)):
        annotations[i] = (1, 1, 5, 4, label, fname)
    return annotations


def make_cars(parent: Path, test_annos_in_devkit: bool = False) -> Path:
    """3 classes; train = 5 images (classes 1, 2, 3, 1, 2), test = 3 images (3, 2, 1)."""
    import scipy.io

    root = parent / "stanford_cars"
    (root / "devkit").mkdir(parents=True)
    scipy.io.savemat(root / "devkit" / "cars_meta.mat", {"class_names": np.array(CARS_CLASSES, dtype=object)})
    for split, labels in (("train", [1, 2, 3, 1, 2]), ("test", [3, 2, 1])):
        fnames = [f"{i + 1:05d}.jpg" for i in range(len(labels))]
        for i, fname in enumerate(fnames):
            write_image(root / f"cars_{split}" / fname, seed=i)
        if split == "train":
            mat = root / "devkit" / "cars_train_annos.mat"
        else:
            mat = (root / "devkit" if test_annos_in_devkit else root) / "cars_test_annos_withlabels.mat"
        scipy.io.savemat(mat, {"annotations": cars_annotations(fnames, labels)})
    return root


PETS_LINES = {
    "trainval": ["Abyssinian_100 1 1 1", "Abyssinian_101 1 1 1", "american_bulldog_10 2 2 1",
                 "american_bulldog_100 2 2 1", "Bengal_1 3 1 2"],
    "test": ["Abyssinian_1 1 1 1", "american_bulldog_1 2 2 1", "Bengal_10 3 1 2"],
}


def make_pets(parent: Path) -> Path:
    """3 breeds (Abyssinian, american_bulldog, Bengal); trainval = 5 images, test = 3."""
    root = parent / "oxford-iiit-pet"
    for split, lines in PETS_LINES.items():
        write_lines(root / "annotations" / f"{split}.txt", lines)
        for i, line in enumerate(lines):
            write_image(root / "images" / f"{line.split()[0]}.jpg", seed=i)
    return root


FLOWERS_LABELS = [1, 1, 2, 2, 3, 3, 1, 2, 3]  # image_00001 .. image_00009


def make_flowers(parent: Path) -> Path:
    """9 images of 3 classes; train = ids 1, 3, 5, val = 2, 4, test = 6, 7, 8, 9."""
    import scipy.io

    root = parent / "flowers-102"
    for i in range(len(FLOWERS_LABELS)):
        write_image(root / "jpg" / f"image_{i + 1:05d}.jpg", seed=i)
    scipy.io.savemat(root / "imagelabels.mat", {"labels": np.array([FLOWERS_LABELS], dtype=np.uint8)})
    scipy.io.savemat(root / "setid.mat", {"trnid": np.array([[1, 3, 5]], dtype=np.uint16),
                                          "valid": np.array([[2, 4]], dtype=np.uint16),
                                          "tstid": np.array([[6, 7, 8, 9]], dtype=np.uint16)})
    return root


CALTECH_COUNTS = {"BACKGROUND_Google": 3, "Faces": 4, "Faces_easy": 3, "accordion": 32}


def make_caltech101(parent: Path) -> Path:
    """Classes Faces (4 images), Faces_easy (3), accordion (32) plus BACKGROUND_Google, which is dropped."""
    root = parent / "101_ObjectCategories"
    for c, (name, count) in enumerate(CALTECH_COUNTS.items()):
        for j in range(count):
            write_image(root / name / f"image_{j + 1:04d}.jpg", seed=100 * c + j)
    return root


FOOD_CLASSES = ["apple_pie", "baby_back_ribs", "baklava"]


def make_food101(parent: Path) -> Path:
    """3 classes, 2 train + 1 test image each."""
    root = parent / "food-101"
    write_lines(root / "meta" / "classes.txt", FOOD_CLASSES)
    splits = {"train": [], "test": []}
    for c, name in enumerate(FOOD_CLASSES):
        ids = [f"{name}/{1005649 + 10 * c + j}" for j in range(3)]
        for j, image_id in enumerate(ids):
            write_image(root / "images" / f"{image_id}.jpg", seed=10 * c + j)
        splits["train"] += ids[:2]
        splits["test"] += ids[2:]
    for split, lines in splits.items():
        write_lines(root / "meta" / f"{split}.txt", lines)
    return root


VOC_CLASSES = ["aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
# image id -> {class: VOC flag}; unlisted classes are -1 (negative)
VOC_IMAGES = {
    "train": {"000005": {"chair": 1, "diningtable": 0}, "000007": {"car": 1}},
    "val": {"000009": {"horse": 1, "person": 1}},
    "test": {"000001": {"dog": 1, "person": 1}, "000002": {"train": 1}, "000004": {"car": 0, "bus": 1}},
}


def make_voc2007(parent: Path) -> Path:
    """VOCdevkit/VOC2007 with train = 2 images, val = 1, test = 3 and per-class files (difficult = 0)."""
    root = parent / "VOCdevkit" / "VOC2007"
    main = root / "ImageSets" / "Main"
    splits = dict(VOC_IMAGES, trainval={**VOC_IMAGES["train"], **VOC_IMAGES["val"]})
    for split, images in splits.items():
        write_lines(main / f"{split}.txt", list(images))
        for name in VOC_CLASSES:
            # the official files pad positives with two spaces: "000007  1"
            write_lines(main / f"{name}_{split}.txt",
                        [f"{image_id} {flags.get(name, -1):2d}" for image_id, flags in images.items()])
        for i, image_id in enumerate(images):
            write_image(root / "JPEGImages" / f"{image_id}.jpg", seed=i)
    return root


def make_imagefolder(parent: Path, with_val: bool = True) -> Path:
    """train: cat (2 images), dog (2 + a grayscale PNG + a stray text file); val: cat (1); test: cat (1), dog (2)."""
    root = parent / "my_dataset"
    counts = {"train": {"cat": 2, "dog": 2}, "test": {"cat": 1, "dog": 2}}
    if with_val:
        counts["val"] = {"cat": 1}
    for split, classes in counts.items():
        for name, count in classes.items():
            for j in range(count):
                write_image(root / split / name / f"{name}_{j}.jpg", seed=j)
    write_image(root / "train" / "dog" / "dog_gray.png", mode="L")
    (root / "train" / "dog" / "notes.txt").write_text("not an image\n")
    return root
