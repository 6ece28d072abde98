"""Detectron2's mapper names an image file that does not decode (issue 27)."""

import re

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("detectron2")

from detectron2.config import get_cfg  # noqa: E402

from seed_core.errors import DataError  # noqa: E402
from seed_transfer.detection.d2.mapper import NamingDatasetMapper  # noqa: E402


def record(path):
    return {"file_name": str(path), "image_id": 0, "height": 48, "width": 64, "annotations": []}


def write_jpeg(path):
    pixels = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, quality=95)


def test_a_truncated_image_is_named(tmp_path):
    path = tmp_path / "half.jpg"
    write_jpeg(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # the header intact: the split's scan passes it, decoding does not
    mapper = NamingDatasetMapper(get_cfg(), is_train=False)
    with pytest.raises(DataError, match=re.escape(f"image {path} cannot be read (OSError: ")) as caught:
        mapper(record(path))
    assert "replace the file" in str(caught.value)


def test_a_good_image_maps_as_detectron2_maps_it(tmp_path):
    from detectron2.data import DatasetMapper

    path = tmp_path / "good.jpg"
    write_jpeg(path)
    cfg = get_cfg()
    ours, theirs = (
        NamingDatasetMapper(cfg, is_train=False)(record(path)),
        DatasetMapper(cfg, is_train=False)(record(path)),
    )
    assert ours.keys() == theirs.keys()
    assert (ours["image"] == theirs["image"]).all()


def test_other_errors_pass_through(tmp_path):
    path = tmp_path / "good.jpg"
    write_jpeg(path)
    broken = record(path) | {"annotations": [{"bbox": [0, 0, 1], "bbox_mode": 0, "category_id": 0}]}  # 3 numbers
    with pytest.raises(Exception) as caught:
        NamingDatasetMapper(get_cfg(), is_train=True)(broken)
    assert not isinstance(caught.value, DataError)
