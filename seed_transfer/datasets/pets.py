"""Oxford-IIIT Pet (Parkhi et al., 2012), 37 breeds.

Layout (``root`` is the folder holding these, or its parent ``oxford-iiit-pet/``):
    images/<Breed_name>_<n>.jpg
    annotations/{trainval, test}.txt      lines Abyssinian_100 1 1 1 (name, class id 1-based, species, breed id)
Split: the official trainval (3,680) / test (3,669); there is no official val split, so
``train`` and ``trainval`` both read trainval.txt. Class names are the image-name
prefixes (``Abyssinian``, ``american_bulldog``), ordered by class id; both split files
are read so that every split sees the same class list.
"""

from collections.abc import Callable
from pathlib import Path

from .base import DatasetInfo, ImageFileDataset, Layout, find_root, split_parts

PETS = DatasetInfo("pets", "mean_per_class", has_official_val=False)
LAYOUT = Layout("pets", "official Oxford-IIIT Pet layout: images/<Breed>_<n>.jpg, "
                        "annotations/{trainval,test}.txt")
SPLIT_FILES = {"train": "trainval.txt", "test": "test.txt"}


def _read_split(split_file: Path) -> list[tuple[int, str, int, str]]:
    """(line number, image name, 0-based class id, class name) per line."""
    entries = []
    for number, line in LAYOUT.lines(split_file, "split file"):
        if line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) != 4 or not fields[1].isdigit() or int(fields[1]) < 1 or "_" not in fields[0]:
            raise LAYOUT.malformed(split_file, f"expected '<Breed>_<n> <class id from 1> <species> <breed id>', "
                                              f"got {line!r}", number)
        entries.append((number, fields[0], int(fields[1]) - 1, fields[0].rsplit("_", 1)[0]))
    return entries


def build_pets(root: str | Path, split: str, transform: Callable | None = None) -> ImageFileDataset:
    (part,) = split_parts(PETS, split)  # trainval = train = trainval.txt
    root = find_root(root, "oxford-iiit-pet")
    split_files = {name: root / "annotations" / file for name, file in SPLIT_FILES.items()}
    splits = {name: _read_split(path) for name, path in split_files.items()}
    names: dict[int, str] = {}
    for name, entries in splits.items():
        for number, _, class_id, class_name in entries:
            if names.setdefault(class_id, class_name) != class_name:
                raise LAYOUT.malformed(split_files[name], f"class id {class_id + 1} is {class_name!r} here "
                                                          f"but {names[class_id]!r} before", number)
    if sorted(names) != list(range(len(names))):
        raise LAYOUT.malformed(root / "annotations", f"class ids are not 1..{len(names)}: "
                                                     f"{[i + 1 for i in sorted(names)]}")
    classes = [names[i] for i in range(len(names))]
    images = LAYOUT.folder(root / "images", "image folder")
    image_paths = [images / f"{image}.jpg" for _, image, _, _ in splits[part]]
    targets = [class_id for _, _, class_id, _ in splits[part]]
    return ImageFileDataset(PETS, split, classes, image_paths, targets, LAYOUT, transform)
