"""Detection datasets as lists of records in Detectron2's standard dataset-dict format.

The records are plain Python (no Detectron2 import), so both detection engines read them:

    {"file_name": "/data/VOCdevkit/VOC2007/JPEGImages/000005.jpg", "image_id": "000005",
     "height": 375, "width": 500,
     "annotations": [{"bbox": [262.0, 210.0, 323.0, 338.0],   # x0, y0, x1, y1 in pixels
                      "bbox_mode": 0,                          # XYXY_ABS
                      "category_id": 8, "difficult": False,
                      "iscrowd": 0,                            # COCO only
                      "segmentation": [[x, y, ...], ...]},    # COCO only (polygons or RLE)
                     ...]}

Boxes are continuous pixel coordinates: a box covering the whole image is
``[0, 0, width, height]``. ``bbox_mode`` is the integer 0, which equals Detectron2's
``BoxMode.XYXY_ABS`` (an ``IntEnum``), so Detectron2's mapper takes the records as they are.

Boxes are checked, as neither engine does: in a test split an impossible box is a ground
truth no detection can match, which lowers AP without a word. A box reaching outside its
image is clipped to it, with a warning naming the file and the objects. A VOC object whose
box is empty or inverted (xmax <= xmin or ymax <= ymin, after clipping) is refused with an
error naming the file and the object. In COCO JSON a negative width or height is refused the
same way; an annotation whose box is empty inside its image is dropped with a warning (zero
boxes occur in published COCO-format sets, and Detectron2 drops them in training too).

Readers:
    load_voc(root, split)              Pascal VOC XML (VOCdevkit/VOC2007, VOC2012, or any VOC-format set)
    load_voc_many([(root, split), ...]) e.g. VOC07 trainval + VOC12 trainval, the usual training set
    load_coco_json(json_path, image_root) any COCO-format instances JSON -> (records, class names)
"""

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from pathlib import Path

from PIL import Image

from seed_core.bad_images import refuse_bad_images
from seed_core.errors import DataError, MissingFile

from ..voc import CLASSES as VOC_CLASSES

logger = logging.getLogger(__name__)

XYXY_ABS = 0  # == detectron2.structures.BoxMode.XYXY_ABS
XYWH_ABS = 1  # == detectron2.structures.BoxMode.XYWH_ABS
VOC_LAYOUT = (
    "Pascal VOC layout: <root>/ImageSets/Main/<split>.txt (one image id per line), "
    "<root>/Annotations/<id>.xml, <root>/JPEGImages/<id>.jpg, where <root> is e.g. "
    "VOCdevkit/VOC2007"
)
# Bad image files (empty, not images, oversized) are refused when a split is read, naming them
# (seed_core.bad_images.refuse_bad_images), never skipped: an AP over fewer test images is the AP of another set.
BAD_IMAGE_FIX = "a detection set is read whole, so replace them (e.g. from the dataset's archive)"
COCO_LAYOUT = (
    "COCO layout: an instances JSON with 'images', 'annotations' and 'categories', and an image "
    "folder that holds each image's 'file_name'"
)


def box_mode_name(mode) -> str:
    """'XYXY_ABS' or 'XYWH_ABS' for a record's ``bbox_mode`` (int, string or Detectron2's BoxMode)."""
    name = getattr(mode, "name", mode)  # a BoxMode member has .name; an int or a string stands for itself
    if name in (XYXY_ABS, "XYXY_ABS"):
        return "XYXY_ABS"
    if name in (XYWH_ABS, "XYWH_ABS"):
        return "XYWH_ABS"
    raise DataError(f"unsupported bbox_mode {mode!r}: expected XYXY_ABS (0) or XYWH_ABS (1)")


def clip_box(box: Sequence[float], width: float, height: float) -> list[float]:
    """[x0, y0, x1, y1] clipped to the ``width`` x ``height`` image."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return [min(max(x0, 0.0), width), min(max(y0, 0.0), height), min(max(x1, 0.0), width), min(max(y1, 0.0), height)]


def is_empty(box: Sequence[float]) -> bool:
    """Whether [x0, y0, x1, y1] covers no area (inverted or zero width/height)."""
    return box[2] <= box[0] or box[3] <= box[1]


def _fmt(box: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def box_xyxy(annotation: dict) -> list[float]:
    """The annotation's box as [x0, y0, x1, y1] in pixels, whatever its ``bbox_mode``."""
    x, y, a, b = (float(v) for v in annotation["bbox"])
    if box_mode_name(annotation.get("bbox_mode", XYXY_ABS)) == "XYWH_ABS":
        return [x, y, x + a, y + b]
    return [x, y, a, b]


# ----------------------------------------------------------------------------- Pascal VOC


def _checked_voc_boxes(
    annotations: list[dict], width: int | None, height: int | None, xml_path: Path, classes: Sequence[str]
) -> list[dict]:
    """``annotations`` with their boxes clipped to the image (when its size is known; one
    warning lists what moved); an empty or inverted box is a ``ValueError`` naming the object."""
    clipped = []
    for number, annotation in enumerate(annotations, start=1):
        what = f"object {number} ({classes[annotation['category_id']]})"
        box = annotation["bbox"]
        inside = clip_box(box, width, height) if width is not None else box
        if is_empty(inside):
            where = f" after clipping to the {width}x{height} image" if inside != box else ""
            raise DataError(
                f"{xml_path}: {what} has an empty or inverted box {_fmt(box)} (x0, y0, x1, y1 in pixels "
                f"from 0: x1 <= x0 or y1 <= y0{where}): fix its <bndbox> or remove the object"
            )
        if inside != box:
            clipped.append(f"{what} {_fmt(box)} -> {_fmt(inside)}")
            annotation["bbox"] = inside
    if clipped:
        logger.warning(
            "%s: boxes reach outside the %dx%d image, clipped: %s", xml_path, width, height, "; ".join(clipped)
        )
    return annotations


def _text(element: ET.Element, tag: str, xml_path: Path) -> str:
    child = element.find(tag)
    if child is None or child.text is None:
        raise DataError(f"{xml_path}: <{element.tag}> has no <{tag}> ({VOC_LAYOUT})")
    return child.text.strip()


def read_voc_xml(xml_path: str | Path, classes: Sequence[str], one_based: bool = True) -> dict:
    """One VOC annotation file -> ``{"height", "width", "annotations"}`` (no file name, no id).

    Only ``<size>``, and per ``<object>`` its ``<name>``, ``<bndbox>`` and (optional)
    ``<difficult>`` are read; ``<pose>``, ``<truncated>`` and the rest may be absent.
    ``one_based``: VOC's integer corners are 1-based inclusive pixel indices, so, as in
    Detectron2's reader, 1 is subtracted from xmin and ymin (a whole-image box becomes
    ``[0, 0, W, H]``). Files whose corners are already continuous coordinates (e.g. the
    deepforest annotations) pass ``one_based=False``. ``height``/``width`` are ``None``
    when the file has no usable ``<size>`` (then boxes are checked but not clipped).
    """
    xml_path = Path(xml_path)
    if not xml_path.is_file():
        raise MissingFile(f"expected the annotation file {xml_path} ({VOC_LAYOUT})")
    try:
        tree = ET.parse(xml_path).getroot()
    except ET.ParseError as err:
        raise DataError(f"{xml_path}: not valid XML ({err})") from err
    size = tree.find("size")
    height = width = None
    if size is not None and size.findtext("height") and size.findtext("width"):
        height, width = int(float(size.findtext("height"))), int(float(size.findtext("width")))
    annotations = []
    for obj in tree.findall("object"):
        name = _text(obj, "name", xml_path)
        if name not in classes:
            raise DataError(f"{xml_path}: object class {name!r} is not one of the dataset's classes {list(classes)}")
        box_element = obj.find("bndbox")
        if box_element is None:
            raise DataError(f"{xml_path}: an <object> ({name}) has no <bndbox>")
        box = [float(_text(box_element, tag, xml_path)) for tag in ("xmin", "ymin", "xmax", "ymax")]
        if one_based:
            box[0] -= 1.0
            box[1] -= 1.0
        difficult = obj.findtext("difficult")  # absent in a few VOC2012 files: not difficult
        annotations.append(
            {
                "bbox": box,
                "bbox_mode": XYXY_ABS,
                "category_id": classes.index(name),
                "difficult": bool(int(difficult)) if difficult and difficult.strip() else False,
            }
        )
    return {
        "height": height,
        "width": width,
        "annotations": _checked_voc_boxes(annotations, width, height, xml_path, classes),
    }


def find_voc_root(root: str | Path) -> Path:
    """The folder holding ImageSets/, Annotations/ and JPEGImages/: ``root`` itself, or the
    single ``VOC<year>`` folder in ``root`` or ``root/VOCdevkit``."""
    root = Path(root).expanduser()
    if (root / "ImageSets").is_dir() or (root / "Annotations").is_dir():
        return root
    candidates = sorted(p for pattern in ("VOC20*", "VOCdevkit/VOC20*") for p in root.glob(pattern) if p.is_dir())
    if len(candidates) > 1:
        raise DataError(
            f"{root} holds several VOC folders ({', '.join(map(str, candidates))}); "
            "pass the one to read, e.g. VOCdevkit/VOC2007"
        )
    return candidates[0] if candidates else root


def load_voc(root: str | Path, split: str, classes: Sequence[str] = VOC_CLASSES) -> list[dict]:
    """Records of one split of a Pascal VOC detection set, in the order of the split file.

    ``root`` is the year folder (``VOCdevkit/VOC2007``) or a folder above it that holds a
    single year. ``image_id`` is the VOC file id (e.g. ``"000005"``); difficult objects are
    kept, flagged ``"difficult": True`` (trained on, as in Detectron2; ignored by the VOC
    metric). Every listed annotation and image file must exist.
    """
    root = find_voc_root(root)
    classes = tuple(classes)
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    if not split_file.is_file():
        raise MissingFile(f"expected the split file {split_file} ({VOC_LAYOUT})")
    image_ids = [line.split()[0] for line in split_file.read_text().splitlines() if line.strip()]
    if not image_ids:
        raise DataError(f"{split_file}: lists no images")
    image_paths = [root / "JPEGImages" / f"{image_id}.jpg" for image_id in image_ids]
    for image_path in image_paths:
        if not image_path.is_file():
            raise MissingFile(f"expected the image {image_path} ({VOC_LAYOUT})")
    refuse_bad_images(image_paths, f"{root}, {split} split", BAD_IMAGE_FIX)  # before a header is read for a size
    records = []
    for image_id, image_path in zip(image_ids, image_paths):
        xml_path = root / "Annotations" / f"{image_id}.xml"
        record = read_voc_xml(xml_path, classes)
        if record["height"] is None:  # no <size>: read it from the image header, then clip
            with Image.open(image_path) as image:
                record["width"], record["height"] = image.size
            _checked_voc_boxes(record["annotations"], record["width"], record["height"], xml_path, classes)
        records.append({"file_name": str(image_path), "image_id": image_id, **record})
    return records


def load_voc_many(specs: Iterable[tuple[str | Path, str]], classes: Sequence[str] = VOC_CLASSES) -> list[dict]:
    """The concatenated records of several ``(root, split)`` pairs, e.g. the usual VOC
    detection training set ``[(".../VOC2007", "trainval"), (".../VOC2012", "trainval")]``.
    Image ids must be unique across the parts (VOC2007 and VOC2012 ids are)."""
    records, seen = [], set()
    for root, split in specs:
        part = load_voc(root, split, classes)
        repeated = seen.intersection(r["image_id"] for r in part)
        if repeated:
            raise DataError(f"image ids of {root} ({split}) repeat earlier parts, e.g. {sorted(repeated)[:3]}")
        seen.update(r["image_id"] for r in part)
        records += part
    return records


# ----------------------------------------------------------------------------- COCO JSON


def _valid_polygons(segmentation) -> list | dict | None:
    """Polygons with at least 3 points (as Detectron2 keeps them), an RLE dict as it is,
    or ``None`` when nothing usable is left."""
    if isinstance(segmentation, dict):  # RLE (crowd regions)
        return segmentation
    polygons = [[float(v) for v in polygon] for polygon in segmentation if len(polygon) % 2 == 0 and len(polygon) >= 6]
    return polygons or None


def _some(ids: list, limit: int = 10) -> str:
    return ", ".join(map(str, ids[:limit])) + (f", ... (+{len(ids) - limit} more)" if len(ids) > limit else "")


def load_coco_json(json_path: str | Path, image_root: str | Path) -> tuple[list[dict], list[str]]:
    """Records of a COCO-format instances JSON, and the class names.

    Categories are sorted by their JSON id and mapped to contiguous ids 0..K-1 (as
    Detectron2 does); ``classes[category_id]`` is the name. Boxes are converted from COCO's
    XYWH to XYXY; ``iscrowd`` is kept (crowd regions are ignored by the COCO metric and by
    Detectron2's training mapper); polygons (and RLE) are kept under ``segmentation``. An
    annotation whose polygons all have fewer than 3 points is dropped (Detectron2 drops it
    too). Images without annotations are kept (training loaders filter them). Boxes are
    checked as the module docstring says.
    """
    json_path, image_root = Path(json_path).expanduser(), Path(image_root).expanduser()
    if not json_path.is_file():
        raise MissingFile(f"expected the COCO annotation file {json_path} ({COCO_LAYOUT})")
    if not image_root.is_dir():
        raise MissingFile(f"expected the image folder {image_root} ({COCO_LAYOUT})")
    with open(json_path) as f:
        coco = json.load(f)
    for key in ("images", "annotations", "categories"):
        if key not in coco:
            raise DataError(f"{json_path}: no {key!r} list ({COCO_LAYOUT})")
    categories = sorted(coco["categories"], key=lambda c: c["id"])
    contiguous = {c["id"]: i for i, c in enumerate(categories)}
    classes = [c["name"] for c in categories]

    by_image: dict = {image["id"]: [] for image in coco["images"]}
    sizes = {image["id"]: (float(image["width"]), float(image["height"])) for image in coco["images"]}
    dropped, clipped, empty = 0, [], []
    for ann in coco["annotations"]:
        if ann["image_id"] not in by_image:
            raise DataError(f"{json_path}: annotation {ann.get('id')} refers to unknown image {ann['image_id']}")
        if ann["category_id"] not in contiguous:
            raise DataError(f"{json_path}: annotation {ann.get('id')} has unknown category {ann['category_id']}")
        x, y, w, h = (float(v) for v in ann["bbox"])
        if w < 0 or h < 0:
            raise DataError(
                f"{json_path}: annotation {ann.get('id')} (image {ann['image_id']}) has a negative width "
                f"or height in its bbox {ann['bbox']} (COCO boxes are [x, y, width, height]): fix or "
                "remove it"
            )
        box = clip_box([x, y, x + w, y + h], *sizes[ann["image_id"]])
        if is_empty(box):
            empty.append(ann.get("id"))
            continue
        if box != [x, y, x + w, y + h]:
            clipped.append(ann.get("id"))
        record_ann = {
            "bbox": box,
            "bbox_mode": XYXY_ABS,
            "category_id": contiguous[ann["category_id"]],
            "difficult": False,
            "iscrowd": int(ann.get("iscrowd", 0)),
        }
        if "segmentation" in ann:
            segmentation = _valid_polygons(ann["segmentation"])
            if segmentation is None:
                dropped += 1
                continue
            record_ann["segmentation"] = segmentation
        by_image[ann["image_id"]].append(record_ann)
    if dropped:
        logger.warning("%s: dropped %d annotations without a valid polygon (fewer than 3 points)", json_path, dropped)
    if empty:
        logger.warning(
            "%s: dropped %d annotations whose box is empty inside its image (ids %s)",
            json_path,
            len(empty),
            _some(empty),
        )
    if clipped:
        logger.warning(
            "%s: clipped %d boxes that reach outside their image (ids %s)", json_path, len(clipped), _some(clipped)
        )

    records = []
    for image in coco["images"]:
        image_path = image_root / image["file_name"]
        if not image_path.is_file():
            raise MissingFile(f"expected the image {image_path} (listed in {json_path}; {COCO_LAYOUT})")
        records.append(
            {
                "file_name": str(image_path),
                "image_id": image["id"],
                "height": int(image["height"]),
                "width": int(image["width"]),
                "annotations": by_image[image["id"]],
            }
        )
    refuse_bad_images([r["file_name"] for r in records], f"{json_path}", BAD_IMAGE_FIX)
    return records, classes
