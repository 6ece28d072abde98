import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seed_core.errors import DataError
from seed_transfer.detection.data import (
    VOC_CLASSES,
    XYWH_ABS,
    box_xyxy,
    load_coco_json,
    load_voc,
    load_voc_many,
    read_voc_xml,
)


def write_jpeg(path: Path, width: int, height: int):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 128, dtype=np.uint8)).save(path)


def voc_object(name, box, difficult=None, full=True) -> str:
    """One <object>; ``full`` adds the <pose>/<truncated> tags that Detectron2's VOC evaluator needs."""
    tags = "<pose>Left</pose><truncated>0</truncated>" if full else ""
    flag = "" if difficult is None else f"<difficult>{int(difficult)}</difficult>"
    xmin, ymin, xmax, ymax = box
    return (
        f"<object><name>{name}</name>{tags}{flag}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


def write_voc_image(root: Path, image_id: str, size, objects: list[str], with_size=True):
    width, height = size
    write_jpeg(root / "JPEGImages" / f"{image_id}.jpg", width, height)
    size_tag = f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>" if with_size else ""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / f"{image_id}.xml").write_text(
        f"<annotation><filename>{image_id}.jpg</filename>{size_tag}{''.join(objects)}</annotation>"
    )


def write_split(root: Path, split: str, image_ids: list[str]):
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in image_ids))


def make_voc(parent: Path, year: int = 2007) -> Path:
    """VOCdevkit/VOC<year>: trainval = 000005 (full tags, a difficult chair), 000007 (no pose/truncated,
    no <size>, an object without <difficult>); test = 000009."""
    root = parent / "VOCdevkit" / f"VOC{year}"
    prefix = "" if year == 2007 else f"{year}_"
    write_voc_image(
        root,
        f"{prefix}000005",
        (50, 40),
        [voc_object("chair", (1, 2, 10, 20), difficult=False), voc_object("chair", (5, 5, 50, 40), difficult=True)],
    )
    write_voc_image(
        root,
        f"{prefix}000007",
        (30, 20),
        [
            voc_object("car", (3, 4, 30, 20), difficult=False, full=False),
            voc_object("person", (1, 1, 5, 5), full=False),
        ],
        with_size=False,
    )
    write_voc_image(root, f"{prefix}000009", (20, 20), [voc_object("dog", (2, 2, 8, 8), difficult=0)])
    write_split(root, "trainval", [f"{prefix}000005", f"{prefix}000007"])
    write_split(root, "test", [f"{prefix}000009"])
    return root


def test_load_voc_records(tmp_path):
    root = make_voc(tmp_path)
    records = load_voc(root, "trainval")
    assert [r["image_id"] for r in records] == ["000005", "000007"]
    first, second = records
    assert first["file_name"] == str(root / "JPEGImages" / "000005.jpg")
    assert (first["width"], first["height"]) == (50, 40)
    chair = VOC_CLASSES.index("chair")
    # 1-based inclusive corners -> continuous: xmin and ymin minus 1, as Detectron2's reader does.
    assert first["annotations"] == [
        {"bbox": [0.0, 1.0, 10.0, 20.0], "bbox_mode": 0, "category_id": chair, "difficult": False},
        {"bbox": [4.0, 4.0, 50.0, 40.0], "bbox_mode": 0, "category_id": chair, "difficult": True},
    ]
    # No <pose>/<truncated>, no <size> (read from the JPEG), no <difficult> (not difficult).
    assert (second["width"], second["height"]) == (30, 20)
    assert [(a["category_id"], a["bbox"], a["difficult"]) for a in second["annotations"]] == [
        (VOC_CLASSES.index("car"), [2.0, 3.0, 30.0, 20.0], False),
        (VOC_CLASSES.index("person"), [0.0, 0.0, 5.0, 5.0], False),
    ]


def test_load_voc_root_forms(tmp_path):
    root = make_voc(tmp_path)
    expected = load_voc(root, "test")
    assert load_voc(tmp_path / "VOCdevkit", "test") == expected
    assert load_voc(tmp_path, "test") == expected
    make_voc(tmp_path, 2012)
    with pytest.raises(ValueError, match="several VOC folders"):
        load_voc(tmp_path / "VOCdevkit", "test")


def test_load_voc_many(tmp_path):
    voc07, voc12 = make_voc(tmp_path, 2007), make_voc(tmp_path, 2012)
    records = load_voc_many([(voc07, "trainval"), (voc12, "trainval")])
    assert [r["image_id"] for r in records] == ["000005", "000007", "2012_000005", "2012_000007"]
    with pytest.raises(ValueError, match="repeat earlier parts"):
        load_voc_many([(voc07, "test"), (voc07, "test")])


def test_load_voc_missing_files(tmp_path):
    root = make_voc(tmp_path)
    split_file = root / "ImageSets" / "Main" / "val.txt"
    with pytest.raises(FileNotFoundError, match=re.escape(f"expected the split file {split_file} (Pascal VOC layout")):
        load_voc(root, "val")
    (root / "JPEGImages" / "000009.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"expected the image {root / 'JPEGImages' / '000009.jpg'}")):
        load_voc(root, "test")
    (root / "Annotations" / "000007.xml").unlink()
    with pytest.raises(
        FileNotFoundError, match=re.escape(f"expected the annotation file {root / 'Annotations' / '000007.xml'}")
    ):
        load_voc(root, "trainval")


def test_load_voc_unknown_class(tmp_path):
    root = make_voc(tmp_path)
    with pytest.raises(ValueError, match=re.escape("object class 'dog' is not one of the dataset's classes")):
        load_voc(root, "test", classes=("cat", "chair"))
    assert load_voc(root, "test", classes=("cat", "dog"))[0]["annotations"][0]["category_id"] == 1


def test_read_voc_xml_continuous_corners(tmp_path):
    root = make_voc(tmp_path)
    record = read_voc_xml(root / "Annotations" / "000009.xml", VOC_CLASSES, one_based=False)
    assert record["annotations"][0]["bbox"] == [2.0, 2.0, 8.0, 8.0]


def one_image_voc(parent: Path, objects: list[str], size=(50, 40), with_size=True) -> Path:
    root = parent / "VOC2007"
    write_voc_image(root, "000001", size, objects, with_size=with_size)
    write_split(root, "test", ["000001"])
    return root


def test_voc_boxes_outside_the_image_are_clipped_with_a_warning(tmp_path, caplog):
    root = one_image_voc(tmp_path, [voc_object("dog", (2, 2, 20, 20)), voc_object("cat", (-4, 10, 60, 45))])
    with caplog.at_level("WARNING", logger="seed_transfer.detection.data"):
        (record,) = load_voc(root, "test")
    assert [a["bbox"] for a in record["annotations"]] == [[1.0, 1.0, 20.0, 20.0], [0.0, 9.0, 50.0, 40.0]]
    (warning,) = caplog.messages
    assert str(root / "Annotations" / "000001.xml") in warning and "50x40 image" in warning
    assert "object 2 (cat) [-5, 9, 60, 45] -> [0, 9, 50, 40]" in warning and "object 1" not in warning


def test_voc_boxes_of_an_xml_without_size_are_clipped_to_the_image_read(tmp_path, caplog):
    root = one_image_voc(tmp_path, [voc_object("dog", (11, 1, 35, 10))], size=(30, 20), with_size=False)
    with caplog.at_level("WARNING", logger="seed_transfer.detection.data"):
        (record,) = load_voc(root, "test")
    assert record["annotations"][0]["bbox"] == [10.0, 0.0, 30.0, 10.0] and "30x20 image" in caplog.text


# VOC corners are 1-based inclusive: (5, 30, 40, 30) is a valid box one pixel high, (5, 30, 40, 29) is not.
@pytest.mark.parametrize("box, clipping", [((20, 5, 10, 30), False), ((5, 30, 40, 29), False), ((60, 5, 70, 30), True)])
def test_empty_or_inverted_voc_boxes_are_refused_naming_file_and_object(tmp_path, box, clipping):
    root = one_image_voc(tmp_path, [voc_object("dog", (2, 2, 20, 20)), voc_object("horse", box)])
    with pytest.raises(ValueError) as error:
        load_voc(root, "test")
    message = str(error.value)
    assert message.startswith(f"{root / 'Annotations' / '000001.xml'}: object 2 (horse) has an empty or inverted box")
    assert "\n" not in message and "fix its <bndbox> or remove the object" in message
    assert ("after clipping to the 50x40 image" in message) == clipping


def test_coco_boxes_are_clipped_dropped_when_empty_and_refused_when_inverted(tmp_path, caplog):
    json_path, images = make_coco(tmp_path)
    coco = json.loads(json_path.read_text())
    coco["annotations"] += [
        {"id": 5, "image_id": 13, "category_id": 3, "bbox": [6, 4, 8, 3], "area": 24, "iscrowd": 0},  # out right
        {"id": 6, "image_id": 13, "category_id": 3, "bbox": [12, 2, 3, 3], "area": 9, "iscrowd": 0},  # beyond x = 10
        {"id": 7, "image_id": 13, "category_id": 7, "bbox": [1, 1, 0, 5], "area": 0, "iscrowd": 0},
    ]  # zero width
    json_path.write_text(json.dumps(coco))
    with caplog.at_level("WARNING", logger="seed_transfer.detection.data"):
        records, _ = load_coco_json(json_path, images)
    assert [a["bbox"] for a in records[2]["annotations"]] == [[6.0, 4.0, 10.0, 7.0]]
    assert f"{json_path}: clipped 1 boxes that reach outside their image (ids 5)" in caplog.messages
    assert f"{json_path}: dropped 2 annotations whose box is empty inside its image (ids 6, 7)" in caplog.messages

    coco["annotations"].append({"id": 8, "image_id": 11, "category_id": 3, "bbox": [5, 5, -2, 4], "iscrowd": 0})
    json_path.write_text(json.dumps(coco))
    with pytest.raises(ValueError, match=re.escape(f"{json_path}: annotation 8 (image 11) has a negative width")):
        load_coco_json(json_path, images)


def test_the_torchvision_engine_reads_the_checked_boxes(tmp_path):
    from seed_transfer.detection.tv.data import load_dataset

    one_image_voc(tmp_path, [voc_object("dog", (30, 5, 10, 30))])
    with pytest.raises(ValueError, match="object 1 \\(dog\\) has an empty or inverted box"):
        load_dataset("voc_2007_test", tmp_path)


def test_box_xyxy_modes():
    assert box_xyxy({"bbox": [1, 2, 3, 4], "bbox_mode": "XYXY_ABS"}) == [1, 2, 3, 4]
    assert box_xyxy({"bbox": [1, 2, 3, 4], "bbox_mode": XYWH_ABS}) == [1, 2, 4, 6]
    assert box_xyxy({"bbox": [1, 2, 3, 4], "bbox_mode": "XYWH_ABS"}) == [1, 2, 4, 6]
    with pytest.raises(ValueError, match="unsupported bbox_mode"):
        box_xyxy({"bbox": [1, 2, 3, 4], "bbox_mode": 2})


def make_coco(parent: Path) -> tuple[Path, Path]:
    """Two categories with ids 7 ("zebra") and 3 ("cat"); three images, the last without annotations."""
    images = parent / "images"
    for name, size in (("a.jpg", (40, 30)), ("b.jpg", (20, 20)), ("c.jpg", (10, 10))):
        write_jpeg(images / name, *size)
    square = [2, 2, 12, 2, 12, 12, 2, 12]
    coco = {
        "images": [
            {"id": 11, "file_name": "a.jpg", "width": 40, "height": 30},
            {"id": 12, "file_name": "b.jpg", "width": 20, "height": 20},
            {"id": 13, "file_name": "c.jpg", "width": 10, "height": 10},
        ],
        "categories": [{"id": 7, "name": "zebra"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 11,
                "category_id": 7,
                "bbox": [2, 2, 10, 10],
                "area": 100,
                "iscrowd": 0,
                "segmentation": [square],
            },
            {
                "id": 2,
                "image_id": 11,
                "category_id": 3,
                "bbox": [20, 5, 5, 8],
                "area": 40,
                "iscrowd": 0,
                "segmentation": [[20, 5, 25, 5, 25, 13], [1, 1, 2, 2]],
            },  # the 2-point polygon is dropped
            {
                "id": 3,
                "image_id": 12,
                "category_id": 3,
                "bbox": [0, 0, 4, 4],
                "area": 16,
                "iscrowd": 0,
                "segmentation": [[0, 0, 4, 0]],
            },  # no valid polygon: the annotation is dropped
            {
                "id": 4,
                "image_id": 12,
                "category_id": 7,
                "bbox": [5, 5, 10, 10],
                "area": 100,
                "iscrowd": 1,
                "segmentation": {"size": [20, 20], "counts": [105, 10, 10, 10, 265]},
            },
        ],
    }
    json_path = parent / "annotations" / "instances.json"
    json_path.parent.mkdir(parents=True)
    json_path.write_text(json.dumps(coco))
    return json_path, images


def test_load_coco_json(tmp_path):
    json_path, images = make_coco(tmp_path)
    records, classes = load_coco_json(json_path, images)
    assert classes == ["cat", "zebra"]  # sorted by category id (3, 7) -> contiguous ids 0, 1
    assert [(r["image_id"], r["file_name"], r["width"], r["height"]) for r in records] == [
        (11, str(images / "a.jpg"), 40, 30),
        (12, str(images / "b.jpg"), 20, 20),
        (13, str(images / "c.jpg"), 10, 10),
    ]
    a, b, c = (r["annotations"] for r in records)
    assert a == [
        {
            "bbox": [2.0, 2.0, 12.0, 12.0],
            "bbox_mode": 0,
            "category_id": 1,
            "difficult": False,
            "iscrowd": 0,
            "segmentation": [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0, 2.0, 12.0]],
        },
        {
            "bbox": [20.0, 5.0, 25.0, 13.0],
            "bbox_mode": 0,
            "category_id": 0,
            "difficult": False,
            "iscrowd": 0,
            "segmentation": [[20.0, 5.0, 25.0, 5.0, 25.0, 13.0]],
        },
    ]
    assert len(b) == 1 and b[0]["iscrowd"] == 1 and b[0]["category_id"] == 1
    assert b[0]["segmentation"]["counts"] == [105, 10, 10, 10, 265]  # RLE kept as it is
    assert c == []


def test_load_coco_json_missing_files(tmp_path):
    json_path, images = make_coco(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape(f"expected the COCO annotation file {tmp_path / 'x.json'}")):
        load_coco_json(tmp_path / "x.json", images)
    with pytest.raises(FileNotFoundError, match=re.escape(f"expected the image folder {tmp_path / 'nowhere'}")):
        load_coco_json(json_path, tmp_path / "nowhere")
    (images / "b.jpg").unlink()
    expected = f"expected the image {images / 'b.jpg'} (listed in {json_path}"
    with pytest.raises(FileNotFoundError, match=re.escape(expected)):
        load_coco_json(json_path, images)


def test_engine_neutral_modules_do_not_import_detectron2():
    code = (
        "import sys, seed_transfer.detection.data, seed_transfer.detection.evaluation, "
        "seed_transfer.detection.tree_tiles; assert 'detectron2' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_bad_image_files_are_refused_when_a_split_is_read_naming_them(tmp_path):
    """Never skipped: an AP over fewer test images is the AP of another set. The scan runs before
    an XML without <size> sends load_voc to the image header."""
    root = make_voc(tmp_path)
    (root / "JPEGImages" / "000007.jpg").write_bytes(b"")  # the one without <size>
    with pytest.raises(DataError) as refused:
        load_voc(root, "trainval")
    assert str(refused.value) == (
        f"{root}, trainval split: 1 of its 2 images cannot be read: {root / 'JPEGImages/000007.jpg'} (empty file "
        "(0 bytes)); a detection set is read whole, so replace them (e.g. from the dataset's archive)"
    )
    json_path, images = make_coco(tmp_path)
    (images / "b.jpg").write_text("not an image")
    with pytest.raises(
        DataError, match=re.escape(f"{json_path}: 1 of its 3 images cannot be read: {images / 'b.jpg'}")
    ):
        load_coco_json(json_path, images)


def test_the_torchvision_engine_names_a_truncated_image(tmp_path):
    from seed_transfer.detection.tv.data import DetectionDataset

    root = make_voc(tmp_path)
    records = load_voc(root, "test")
    data = (root / "JPEGImages" / "000009.jpg").read_bytes()
    (root / "JPEGImages" / "000009.jpg").write_bytes(data[: len(data) // 2])  # header intact: found when decoded
    with pytest.raises(DataError, match=re.escape(f"image {records[0]['file_name']} cannot be read (OSError: ")):
        DetectionDataset(records)[0]
