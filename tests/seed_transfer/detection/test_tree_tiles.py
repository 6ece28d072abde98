import importlib.util
import json

import numpy as np
import pytest

from seed_core.errors import MissingDependency
from seed_transfer.detection import tree_tiles
from seed_transfer.detection.data import load_coco_json
from seed_transfer.detection.tree_tiles import build_tree_tiles, clip_boxes, split_rows, tile_starts

needs_deepforest = pytest.mark.skipif(
    importlib.util.find_spec("deepforest") is None, reason="pip install --no-deps deepforest==2.1.0 (data only)"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_tree_tiles(tmp_path_factory.mktemp("tree_tiles"))


@needs_deepforest
def test_tree_tiles_splits(built):
    assert built["classes"] == ["Tree"] and not built["reused"]
    tile = built["params"]["tile_size"]
    regions = {}
    for split in ("train", "test"):
        info = built[split]
        records, classes = load_coco_json(info["json"], info["image_root"])
        assert classes == ["Tree"]
        assert len(records) == info["tiles"] > 0
        boxes = np.array([a["bbox"] for r in records for a in r["annotations"]])
        assert len(boxes) == info["boxes"] > 0
        assert (boxes >= 0).all() and (boxes <= tile).all()  # inside the tile
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert all((r["width"], r["height"]) == (tile, tile) for r in records)
        assert info["empty_tiles"] == sum(not r["annotations"] for r in records)
        images = json.loads(info["json"].read_text())["images"]
        for image in images:
            regions.setdefault((image["source"], split), []).append(image["y0"])
    # Train rows lie wholly above the test rows of the same source image.
    for source in {source for source, _ in regions}:
        assert max(regions[source, "train"]) + tile <= min(regions[source, "test"])


@needs_deepforest
def test_tree_tiles_idempotent(built):
    out_dir = built["out_dir"]
    stamp = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()}
    again = build_tree_tiles(out_dir)
    assert again["reused"]
    assert {s: (again[s]["tiles"], again[s]["boxes"]) for s in ("train", "test")} == {
        s: (built[s]["tiles"], built[s]["boxes"]) for s in ("train", "test")
    }
    assert {p: p.stat().st_mtime_ns for p in out_dir.rglob("*") if p.is_file()} == stamp  # nothing rewritten


@needs_deepforest
def test_tree_tiles_rebuild_on_new_parameters(tmp_path):
    first = build_tree_tiles(tmp_path, tile_size=400)
    second = build_tree_tiles(tmp_path, tile_size=400, min_visible=0.9)
    assert not second["reused"] and second["train"]["boxes"] <= first["train"]["boxes"]
    tiles = sorted(p.name for p in (tmp_path / "train").iterdir())
    assert len(tiles) == second["train"]["tiles"]  # the first build's files were replaced, not kept beside
    third = build_tree_tiles(tmp_path, tile_size=300)
    assert len(list((tmp_path / "train").iterdir())) == third["train"]["tiles"]


def test_tiling_helpers():
    assert tile_starts(450, 200, 200) == [0, 200]  # the 50-pixel edge strip is left out
    assert tile_starts(450, 200, 150) == [0, 150]
    assert split_rows([0, 200, 400, 600, 800], 200, 0.2) == {"train": [0, 200, 400, 600], "test": [800]}
    # With overlap, the train row that reaches into the first test row is dropped.
    assert split_rows([0, 150, 300, 450], 200, 0.25) == {"train": [0, 150], "test": [450]}
    boxes = np.array(
        [
            [190.0, 10, 230, 30],  # 10 of 40 px wide inside (25%)
            [180.0, 50, 220, 70],  # half inside
            [10.0, 10, 20, 20],  # inside
            [300.0, 300, 310, 310],
        ]
    )  # outside
    np.testing.assert_array_equal(clip_boxes(boxes, 0, 0, 200, 0.5), [[180, 50, 200, 70], [10, 10, 20, 20]])
    assert len(clip_boxes(boxes, 0, 0, 200, 0.0)) == 3  # a box needs some area inside
    # The tile to the right holds 30 of the first box's 40 px (75%), in its own coordinates.
    np.testing.assert_array_equal(clip_boxes(boxes, 200, 0, 200, 0.7), [[0, 10, 30, 30]])


def test_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="overlap"):
        build_tree_tiles(tmp_path, tile_size=100, overlap=100)
    with pytest.raises(ValueError, match="min_visible"):
        build_tree_tiles(tmp_path, min_visible=1.5)


def test_missing_deepforest_says_how_to_install(tmp_path, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        tree_tiles.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "deepforest" else real_find_spec(name, *args),
    )
    with pytest.raises(MissingDependency, match=r"pip install --no-deps deepforest==2\.1\.0"):  # exit 2 in the tools
        build_tree_tiles(tmp_path)
