"""An evaluation refuses a bad image, naming it, where a distillation skips it: a score over
fewer test images would be a score of another test set. From a DataLoader worker as from the
main process, the tools end with one line that names the file, and exit status 2."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

import fake_trees
from seed_core.errors import DataError, report_user_error
from seed_transfer.datasets import build_dataset

REPO = Path(__file__).parents[3]


def truncated_jpeg() -> bytes:
    pixels = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()[: len(buffer.getvalue()) // 2]


@pytest.fixture
def root(tmp_path) -> Path:
    """The fake image folder with a truncated JPEG and an empty file among its 3 test images."""
    root = fake_trees.make_imagefolder(tmp_path)
    (root / "test" / "dog" / "dog_1.jpg").write_bytes(truncated_jpeg())
    (root / "test" / "cat" / "cat_0.jpg").write_bytes(b"")
    return root


def test_a_bad_test_image_is_refused_and_named(root):
    test = build_dataset("imagefolder", root, "test")
    with pytest.raises(DataError) as empty:
        test[0]
    assert str(empty.value).startswith(
        f"imagefolder: image {root / 'test/cat/cat_0.jpg'} of the test split cannot be read"
    )
    assert "UnidentifiedImageError" in str(empty.value) and "replace the file" in str(empty.value)
    assert test[1][0].mode == "RGB"  # the good ones read as before
    with pytest.raises(DataError, match="dog_1.jpg of the test split cannot be read .OSError: image file is truncated"):
        test[2]


def test_from_a_loader_worker_the_error_is_one_line(root, capsys):
    test = build_dataset("imagefolder", root, "test", transform=np.asarray)
    with pytest.raises(DataError) as caught:
        list(DataLoader(test, batch_size=1, num_workers=1))
    assert "Traceback" in str(caught.value)  # what torch hands over: the worker's traceback around it
    assert report_user_error(caught.value) == 2
    assert capsys.readouterr().err == (
        f"error: imagefolder: image {root / 'test/cat/cat_0.jpg'} of the test split cannot be read "
        f"(UnidentifiedImageError: cannot identify image file '{root / 'test/cat/cat_0.jpg'}'); an evaluation "
        "reads every image of its split, so replace the file (e.g. from the dataset's archive)\n"
    )


def test_transfer_cls_stops_on_a_bad_test_image(root, tmp_path):
    (root / "test" / "cat" / "cat_0.jpg").unlink()  # leave the truncated one, met only when decoded
    fake_trees.write_image(root / "test" / "cat" / "cat_0.jpg")
    out = tmp_path / "out"
    args = ["--config", REPO / "configs/transfer/cls/linear.yaml", "model.weights=random", "model.arch=resnet18"]
    args += ["data.name=imagefolder", f"data.root={root}", "features.resize=32", "features.crop=32"]
    args += ["features.cache_dir=null", "features.num_workers=1", "linear.num_c=2", f"output_dir={out}"]
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/transfer_cls.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr[-3000:]
    assert (
        f"image {root / 'test/dog/dog_1.jpg'} of the test split cannot be read (OSError: image file is truncated"
        in lines[-1]
    )
