import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("detectron2")
import torch  # noqa: E402
from detectron2.data import (  # noqa: E402
    DatasetCatalog,
    MetadataCatalog,
    detection_utils,  # noqa: E402
)
from detectron2.data import transforms as T  # noqa: E402
from detectron2.evaluation import PascalVOCDetectionEvaluator  # noqa: E402
from detectron2.structures import BitMasks, Boxes, Instances  # noqa: E402

from seed_transfer.detection.d2.datasets import (  # noqa: E402
    register_coco_json,
    register_dataset,
    register_tree_tiles,
    register_voc,
)
from seed_transfer.detection.d2.evaluation import (
    COCODetectionEvaluator,
    VOCDetectionEvaluator,  # noqa: E402
    build_evaluator,
)
from seed_transfer.detection.data import load_voc  # noqa: E402

CLASSES = ("cat", "dog", "person")


@pytest.fixture
def names():
    """Dataset names registered by a test, removed afterwards (the catalogs are process-global)."""
    registered = []
    yield registered
    for name in registered:
        for catalog in (DatasetCatalog, MetadataCatalog):
            if name in catalog.list():
                catalog.remove(name)


def make_voc07(parent: Path, seed: int = 0, num_images: int = 6, year: int = 2007) -> Path:
    """VOCdevkit/VOC<year> with random integer boxes of CLASSES (full XML tags, so that Detectron2's own
    evaluator can read it; every 4th object difficult); splits test = all images, train = the first two."""
    rng = np.random.default_rng(seed)
    root = parent / "VOCdevkit" / f"VOC{year}"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / folder).mkdir(parents=True)
    ids = [f"{i:06d}" for i in range(num_images)]
    count = 0
    for image_id in ids:
        width, height = 120, 100
        Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(root / "JPEGImages" / f"{image_id}.jpg")
        objects = []
        for _ in range(rng.integers(1, 4)):
            x0, y0 = rng.integers(1, 60), rng.integers(1, 50)
            x1, y1 = x0 + rng.integers(10, 60), y0 + rng.integers(10, 50)
            objects.append(
                f"<object><name>{CLASSES[count % 3]}</name><pose>Unspecified</pose>"
                f"<truncated>0</truncated><difficult>{int(count % 4 == 3)}</difficult><bndbox>"
                f"<xmin>{x0}</xmin><ymin>{y0}</ymin><xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object>"
            )
            count += 1
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
            f"{''.join(objects)}</annotation>"
        )
    (root / "ImageSets" / "Main" / "test.txt").write_text("\n".join(ids) + "\n")
    (root / "ImageSets" / "Main" / "train.txt").write_text("\n".join(ids[:2]) + "\n")
    return root


def to_instances(record: dict, boxes, scores, classes, masks=None) -> Instances:
    instances = Instances((record["height"], record["width"]))
    instances.pred_boxes = Boxes(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4))
    instances.scores = torch.tensor(scores, dtype=torch.float32)
    instances.pred_classes = torch.tensor(classes, dtype=torch.int64)
    if masks is not None:
        instances.pred_masks = torch.as_tensor(np.asarray(masks, dtype=bool)).reshape(
            -1, record["height"], record["width"]
        )
    return instances


def feed_ground_truth(evaluator, records, with_masks=False):
    evaluator.reset()
    for record in records:
        annotations = [a for a in record["annotations"] if not a.get("iscrowd", 0)]
        masks = None
        if with_masks:
            masks = BitMasks.from_polygon_masks(
                [a["segmentation"] for a in annotations], record["height"], record["width"]
            ).tensor
        instances = to_instances(
            record,
            [a["bbox"] for a in annotations],
            [1.0] * len(annotations),
            [a["category_id"] for a in annotations],
            masks,
        )
        evaluator.process([{"image_id": record["image_id"]}], [{"instances": instances}])
    return evaluator.evaluate()


def test_register_dataset_is_idempotent(names):
    records = [{"file_name": "a.jpg", "image_id": 1, "height": 4, "width": 4, "annotations": []}]
    names.append(register_dataset("seed_test_plain", lambda: records, ["thing"], "coco"))
    assert DatasetCatalog.get("seed_test_plain") == records
    register_dataset("seed_test_plain", lambda: records[:0], ["other"], "pascal_voc")  # replaces, no crash
    assert DatasetCatalog.get("seed_test_plain") == []
    assert MetadataCatalog.get("seed_test_plain").thing_classes == ["other"]
    with pytest.raises(ValueError, match="evaluator_type"):
        register_dataset("seed_test_plain", lambda: records, ["thing"], "lvis")


def test_register_voc_and_detectron2_mapper(tmp_path, names):
    root = make_voc07(tmp_path)
    names.append(register_voc("seed_test_voc", tmp_path / "VOCdevkit", "train", CLASSES))
    names.append(register_voc("seed_test_voc", root, "test", CLASSES))  # registered twice: the last one holds
    records = DatasetCatalog.get("seed_test_voc")
    assert records == load_voc(root, "test", CLASSES) and len(records) == 6
    metadata = MetadataCatalog.get("seed_test_voc")
    assert (metadata.thing_classes, metadata.evaluator_type, metadata.year, metadata.split) == (
        list(CLASSES),
        "pascal_voc",
        2007,
        "test",
    )
    assert metadata.voc_use_07_metric
    assert isinstance(build_evaluator("seed_test_voc"), VOCDetectionEvaluator)
    # Detectron2's mapper takes the records' integer bbox_mode as BoxMode.XYXY_ABS.
    record = records[0]
    annotations = [
        detection_utils.transform_instance_annotations(
            dict(a), T.TransformList([]), (record["height"], record["width"])
        )
        for a in record["annotations"]
    ]
    instances = detection_utils.annotations_to_instances(annotations, (record["height"], record["width"]))
    np.testing.assert_allclose(instances.gt_boxes.tensor.numpy(), [a["bbox"] for a in record["annotations"]])


def test_voc_evaluator_ground_truth_is_100(tmp_path, names):
    names.append(register_voc("seed_test_voc_gt", make_voc07(tmp_path), "test", CLASSES))
    results = feed_ground_truth(VOCDetectionEvaluator("seed_test_voc_gt"), DatasetCatalog.get("seed_test_voc_gt"))
    assert set(results) == {"bbox"}
    assert results["bbox"] == pytest.approx(
        {"AP": 100.0, "AP50": 100.0, "AP75": 100.0, **{f"AP50-{c}": 100.0 for c in CLASSES}}
    )


@pytest.mark.parametrize("year", [2007, 2012])  # the 11-point metric, the area metric
def test_voc_evaluator_matches_detectron2(tmp_path, names, year):
    """Imperfect predictions scored by ours and by Detectron2's PascalVOCDetectionEvaluator (which reads the
    XML, 1-based corners, and writes scores with 3 decimals and corners with 1: the predictions are made
    exact in those formats)."""
    names.append(
        register_voc("seed_test_voc_ref", make_voc07(tmp_path, seed=1, num_images=8, year=year), "test", CLASSES)
    )
    assert MetadataCatalog.get("seed_test_voc_ref").voc_use_07_metric == (year == 2007)
    records = DatasetCatalog.get("seed_test_voc_ref")
    rng = np.random.default_rng(2)
    scores = iter(rng.permutation(np.arange(1, 1000)) / 1000)  # distinct, exact with 3 decimals
    ours, reference = VOCDetectionEvaluator("seed_test_voc_ref"), PascalVOCDetectionEvaluator("seed_test_voc_ref")
    ours.reset()
    reference.reset()
    for record in records:
        boxes, classes = [], []
        for a in record["annotations"]:
            for _ in range(rng.integers(0, 3)):  # 0 to 2 jittered copies of each box
                boxes.append(np.array(a["bbox"]) + rng.integers(-6, 7, size=4))
                classes.append(a["category_id"] if rng.random() < 0.85 else int(rng.integers(0, 3)))
        for _ in range(rng.integers(0, 3)):  # false positives
            x0, y0 = rng.integers(0, 80), rng.integers(0, 60)
            boxes.append(np.array([x0, y0, x0 + rng.integers(5, 40), y0 + rng.integers(5, 40)]))
            classes.append(int(rng.integers(0, 3)))
        instances = to_instances(record, np.array(boxes, dtype=float), [next(scores) for _ in boxes], classes)
        for evaluator in (ours, reference):
            evaluator.process([{"image_id": record["image_id"]}], [{"instances": instances}])
    expected = reference.evaluate()["bbox"]
    got = ours.evaluate()["bbox"]
    assert 0 < got["AP"] < 100
    for key in ("AP", "AP50", "AP75"):
        assert got[key] == pytest.approx(expected[key], abs=1e-9), key


def write_coco(parent: Path) -> tuple[Path, Path]:
    images = parent / "images"
    images.mkdir()
    coco = {"images": [], "annotations": [], "categories": [{"id": 5, "name": "ball"}, {"id": 9, "name": "cube"}]}
    for i in range(3):
        Image.fromarray(np.zeros((60, 80, 3), dtype=np.uint8)).save(images / f"{i}.jpg")
        coco["images"].append({"id": 100 + i, "file_name": f"{i}.jpg", "width": 80, "height": 60})
        for j, (x, y, size) in enumerate(((5 + i, 5, 20), (40, 20 + i, 30))):
            coco["annotations"].append(
                {
                    "id": len(coco["annotations"]) + 1,
                    "image_id": 100 + i,
                    "category_id": (5, 9)[j],
                    "bbox": [x, y, size, size],
                    "iscrowd": 0,
                    "area": size * size,
                    "segmentation": [[x, y, x + size, y, x + size, y + size, x, y + size]],
                }
            )
    json_path = parent / "instances.json"
    json_path.write_text(json.dumps(coco))
    return json_path, images


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools, numpy 2
def test_coco_json_registration_and_evaluator(tmp_path, names):
    json_path, images = write_coco(tmp_path)
    names.append(register_coco_json("seed_test_coco", json_path, images))
    records = DatasetCatalog.get("seed_test_coco")  # loading sets the classes from the JSON
    assert len(records) == 3 and MetadataCatalog.get("seed_test_coco").thing_classes == ["ball", "cube"]
    evaluator = build_evaluator("seed_test_coco", with_masks=True)
    assert isinstance(evaluator, COCODetectionEvaluator)
    results = feed_ground_truth(evaluator, records, with_masks=True)
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP75", "AP-ball", "AP-cube"):
            assert results[task][key] == pytest.approx(100.0), (task, key)


@pytest.mark.skipif(importlib.util.find_spec("deepforest") is None, reason="pip install --no-deps deepforest==2.1.0")
def test_register_tree_tiles(tmp_path, names):
    registered = register_tree_tiles(tmp_path, name="seed_test_trees")
    names.extend(registered.values())
    assert registered == {"train": "seed_test_trees_train", "test": "seed_test_trees_test"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    for split, name in registered.items():
        assert len(DatasetCatalog.get(name)) == manifest["splits"][split]["tiles"]
        metadata = MetadataCatalog.get(name)
        assert (metadata.thing_classes, metadata.evaluator_type) == (["Tree"], "coco")
    assert register_tree_tiles(tmp_path, name="seed_test_trees") == registered  # reused and re-registered


def test_detectron2_builtin_voc_keeps_its_own_evaluator():
    # Detectron2's built-in VOC loader drops the difficult flags; its own evaluator reads them from the XML.
    if "voc_2007_test" not in MetadataCatalog.list() or MetadataCatalog.get("voc_2007_test").get("year") is None:
        pytest.skip("Detectron2's built-in voc_2007_test is not registered")
    assert isinstance(build_evaluator("voc_2007_test"), PascalVOCDetectionEvaluator)
