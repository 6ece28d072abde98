"""An evaluation refuses a bad image, naming it, where a distillation skips it: a score over
fewer test images would be a score of another test set. The header scan refuses a split when it
is built (naming the first 3 bad files and the count); a truncated file, found only by decoding,
when it is read. From a DataLoader worker as from the main process, the tools end with one line
that names the file, and exit status 2."""

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


def test_a_split_with_bad_files_is_refused_when_built_naming_them(root):
    """The header scan finds the empty file when the split is opened; the truncated JPEG, whose
    header is fine, is refused when it is read."""
    with pytest.raises(DataError) as scanned:
        build_dataset("imagefolder", root, "test")
    assert str(scanned.value) == (
        f"imagefolder, test split: 1 of its 3 images cannot be read: {root / 'test/cat/cat_0.jpg'} (empty file "
        "(0 bytes)); an evaluation reads every image of its split, so replace them (e.g. from the dataset's archive)"
    )
    fake_trees.write_image(root / "test" / "cat" / "cat_0.jpg")
    test = build_dataset("imagefolder", root, "test")
    assert test[1][0].mode == "RGB"  # the good ones read as before
    with pytest.raises(DataError, match="dog_1.jpg of the test split cannot be read .OSError: image file is truncated"):
        test[2]


def test_the_refusal_names_three_files_and_the_count(root):
    for name in ("cat/cat_9.jpg", "dog/dog_8.jpg", "dog/dog_9.jpg"):
        (root / "test" / name).write_text("not an image")
    (root / "train" / "cat" / "cat_0.jpg").write_bytes(b"")  # the train split is scanned too
    with pytest.raises(DataError) as scanned:
        build_dataset("imagefolder", root, "test")
    message = str(scanned.value)
    assert message.startswith("imagefolder, test split: 4 of its 6 images cannot be read: ")
    assert message.count("UnidentifiedImageError") == 2 and "and 1 more;" in message, message
    with pytest.raises(DataError, match=r"imagefolder, train split: 1 of its \d+ images cannot be read: .*cat_0.jpg"):
        build_dataset("imagefolder", root, "train")


def test_from_a_loader_worker_the_error_is_one_line(root, capsys):
    fake_trees.write_image(root / "test" / "cat" / "cat_0.jpg")  # leave the truncated one, met only when decoded
    test = build_dataset("imagefolder", root, "test", transform=np.asarray)
    with pytest.raises(DataError) as caught:
        list(DataLoader(test, batch_size=1, num_workers=1))
    assert "Traceback" in str(caught.value)  # what torch hands over: the worker's traceback around it
    assert report_user_error(caught.value) == 2
    assert capsys.readouterr().err == (
        f"error: imagefolder: image {root / 'test/dog/dog_1.jpg'} of the test split cannot be read "
        "(OSError: image file is truncated (2 bytes not processed)); an evaluation "
        "reads every image of its split, so replace the file (e.g. from the dataset's archive)\n"
    )


def run_transfer_cls(root: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    out = tmp_path / "out"
    args = ["--config", REPO / "configs/transfer/cls/linear.yaml", "model.weights=random", "model.arch=resnet18"]
    args += ["data.name=imagefolder", f"data.root={root}", "features.resize=32", "features.crop=32"]
    args += ["features.cache_dir=null", "features.num_workers=1", "linear.num_c=2", f"output_dir={out}"]
    return subprocess.run(
        [sys.executable, str(REPO / "tools/transfer_cls.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )


def test_transfer_cls_refuses_a_split_with_an_empty_file_in_one_line(root, tmp_path):
    result = run_transfer_cls(root, tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr[-3000:]
    assert f"1 of its 3 images cannot be read: {root / 'test/cat/cat_0.jpg'} (empty file (0 bytes))" in lines[-1]


def test_transfer_cls_stops_on_a_bad_test_image(root, tmp_path):
    (root / "test" / "cat" / "cat_0.jpg").unlink()  # leave the truncated one, met only when decoded
    fake_trees.write_image(root / "test" / "cat" / "cat_0.jpg")
    result = run_transfer_cls(root, tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert [line for line in lines if line.startswith("error: ")] == lines[-1:], result.stderr[-3000:]
    assert (
        f"image {root / 'test/dog/dog_1.jpg'} of the test split cannot be read (OSError: image file is truncated"
        in lines[-1]
    )
