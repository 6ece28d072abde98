"""One image reader everywhere: the same file gives the same pixels to every reader of the project
(the distillation's image folder, file list and stamps, the classification datasets, the torchvision
detection engine), transparency composited on white and 16-bit images scaled to 8 bits, while an
ordinary 8-bit image reads byte for byte as torchvision's reader read it."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.datasets.folder import pil_loader

from distill.data import build_source_dataset
from seed_core.images import read_rgb, to_rgb
from seed_transfer.datasets import build_dataset
from seed_transfer.detection.tv.data import DetectionDataset

HEIGHT, WIDTH = 36, 40
# an 8-bit grey ramp whose mean is ~125, the example of the issue
RAMP = np.linspace(0, 250, HEIGHT * WIDTH).reshape(HEIGHT, WIDTH).round().astype(np.uint8)
RGB = np.stack([RAMP, RAMP[::-1], np.roll(RAMP, 7, axis=1)], axis=-1)  # H x W x 3 uint8
RED = (255, 0, 0)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_48_bit(path: Path, rgb16: np.ndarray) -> None:
    """A 16-bit-per-channel RGB PNG (PIL cannot write one): filter byte 0 per row, big-endian samples."""
    height, width, _ = rgb16.shape
    rows = b"".join(b"\0" + rgb16[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(rows)))


def half_transparent_rgba() -> np.ndarray:
    """Left half fully transparent over red (what a plain conversion shows), right half the opaque RGB ramp."""
    rgba = np.concatenate([RGB, np.full((HEIGHT, WIDTH, 1), 255, np.uint8)], axis=-1)
    rgba[:, : WIDTH // 2] = (*RED, 0)
    return rgba


def write_images(folder: Path) -> dict[str, np.ndarray | None]:
    """The test files, each with the pixels it must read as (None: as torchvision's ``pil_loader``)."""
    folder.mkdir(parents=True, exist_ok=True)
    white_left = RGB.copy()
    white_left[:, : WIDTH // 2] = 255
    grey_white_left = np.repeat(RAMP[..., None], 3, axis=-1)
    grey_white_left[:, : WIDTH // 2] = 255
    expected = {}

    Image.fromarray(half_transparent_rgba(), "RGBA").save(folder / "rgba.png")
    expected["rgba.png"] = white_left

    grey_alpha = np.stack([RAMP, np.where(np.arange(WIDTH) < WIDTH // 2, 0, 255)[None].repeat(HEIGHT, 0)], axis=-1)
    Image.fromarray(grey_alpha.astype(np.uint8), "LA").save(folder / "la.png")
    expected["la.png"] = grey_white_left

    palette = Image.new("P", (WIDTH, HEIGHT))
    palette.putpalette([*RED, 10, 200, 30] + [0] * (3 * 254))
    palette.putdata([0 if x < WIDTH // 2 else 1 for _ in range(HEIGHT) for x in range(WIDTH)])
    palette.save(folder / "palette.png", transparency=0)  # index 0 (red) is transparent
    expected["palette.png"] = np.where(np.arange(WIDTH)[None, :, None] < WIDTH // 2, 255, [10, 200, 30]).astype(
        np.uint8
    ) * np.ones((HEIGHT, 1, 1), np.uint8)

    Image.fromarray(RGB).save(folder / "rgb_key.png", transparency=tuple(int(v) for v in RGB[0, 0]))
    keyed = RGB.copy()
    keyed[(RGB == RGB[0, 0]).all(axis=-1)] = 255  # the transparent colour (tRNS) shows the background
    expected["rgb_key.png"] = keyed

    ramp16 = RAMP.astype(np.uint16) * 257  # k stored as 257 k: reads back as k
    Image.fromarray(ramp16).save(folder / "grey16.png")
    expected["grey16.png"] = np.repeat(RAMP[..., None], 3, axis=-1)

    Image.fromarray(ramp16).save(folder / "grey16_key.png", transparency=int(ramp16[0, 0]))
    keyed = np.repeat(RAMP[..., None], 3, axis=-1)
    keyed[RAMP == RAMP[0, 0]] = 255
    expected["grey16_key.png"] = keyed

    Image.frombytes("I;16B", (WIDTH, HEIGHT), ramp16.astype(">u2").tobytes()).save(folder / "grey16b.tif")
    expected["grey16b.tif"] = np.repeat(RAMP[..., None], 3, axis=-1)

    Image.fromarray(ramp16.astype(np.int32), "I").save(folder / "grey32.tif")  # PIL's mode I: 32-bit integers
    expected["grey32.tif"] = np.repeat(RAMP[..., None], 3, axis=-1)

    png_48_bit(folder / "rgb48.png", RGB.astype(np.uint16) * 257)
    expected["rgb48.png"] = RGB

    Image.fromarray(RGB).convert("CMYK").save(folder / "cmyk.jpg")
    expected["cmyk.jpg"] = None  # PIL's CMYK conversion, as torchvision read it
    Image.fromarray(RGB).save(folder / "rgb.jpg", quality=90)
    expected["rgb.jpg"] = None
    Image.fromarray(RAMP).save(folder / "grey.png")
    expected["grey.png"] = None
    Image.fromarray(RGB).save(folder / "rgb.png")
    expected["rgb.png"] = RGB
    return expected


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("images") / "all"
    return folder, write_images(folder)


def pixels(image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


def test_each_kind_reads_as_it_looks(images):
    folder, expected = images
    for name, want in expected.items():
        got = pixels(read_rgb(folder / name))
        if want is None:  # an ordinary image: byte for byte torchvision's reader
            want = np.asarray(pil_loader(str(folder / name)))
        assert got.shape == (HEIGHT, WIDTH, 3), name
        assert np.array_equal(got, want), name


def test_the_two_faults_of_a_plain_conversion_are_gone(images):
    folder, _ = images
    with Image.open(folder / "grey16.png") as image:
        assert np.asarray(image.convert("RGB")).mean() > 250  # PIL clips 16-bit values to white
    assert abs(pixels(read_rgb(folder / "grey16.png")).mean() - RAMP.mean()) < 0.01
    assert 124 < RAMP.mean() < 126
    with Image.open(folder / "rgba.png") as image:
        assert np.asarray(image.convert("RGB"))[0, 0].tolist() == list(RED)  # the colour under the alpha
    assert pixels(read_rgb(folder / "rgba.png"))[0, 0].tolist() == [255, 255, 255]


def test_a_caller_may_composite_on_another_background(images):
    folder, _ = images
    assert pixels(read_rgb(folder / "rgba.png", background=(0, 0, 0)))[0, 0].tolist() == [0, 0, 0]
    assert pixels(to_rgb(Image.fromarray(half_transparent_rgba(), "RGBA")))[0, 0].tolist() == [255, 255, 255]


def class_folder_copy(folder: Path, root: Path, names) -> None:
    for name in names:
        target = root / "class" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((folder / name).read_bytes())


def test_every_reader_gives_the_same_pixels(images, tmp_path):
    folder, expected = images
    names = sorted(expected)
    want = {name: pixels(read_rgb(folder / name)) for name in names}

    # distillation: image folder (torchvision's listing, the project's reader), file list, stamps
    class_folder_copy(folder, tmp_path / "distill", names)
    source = build_source_dataset("imagefolder", root=str(tmp_path / "distill"))
    read = {Path(source.image_path(i)).name: pixels(source[i]) for i in range(len(source))}
    assert sorted(read) == names
    (tmp_path / "list.txt").write_text("".join(f"{folder / name}\n" for name in names))
    listed = build_source_dataset("filelist", file_list=str(tmp_path / "list.txt"))
    read_list = {Path(listed.image_path(i)).name: pixels(listed[i]) for i in range(len(listed))}
    stamps_root = tmp_path / "stamps"
    pngs = [name for name in names if name.endswith(".png")]  # the stamps are PNGs
    for name in pngs:
        (stamps_root / "misc" / name).parent.mkdir(parents=True, exist_ok=True)
        (stamps_root / "misc" / name).write_bytes((folder / name).read_bytes())
    stamps = build_source_dataset("stamps", root=str(stamps_root))
    read_stamps = {Path(stamps.image_path(i)).name: pixels(stamps[i]) for i in range(len(stamps))}
    assert sorted(read_stamps) == pngs

    # evaluation: the image-folder classification dataset, the labelled stamps, torchvision detection
    for split in ("train", "test"):
        class_folder_copy(folder, tmp_path / "cls" / split, names)
    test = build_dataset("imagefolder", tmp_path / "cls", "test")
    read_cls = {test.image_paths[i].name: pixels(test[i][0]) for i in range(len(test))}
    labelled_root = tmp_path / "labelled"
    for name in pngs:
        (labelled_root / "animals/birds" / name).parent.mkdir(parents=True, exist_ok=True)
        (labelled_root / "animals/birds" / name).write_bytes((folder / name).read_bytes())
    labelled = [build_dataset("stamps", labelled_root, split) for split in ("train", "test")]
    read_labelled = {d.image_paths[i].name: pixels(d[i][0]) for d in labelled for i in range(len(d))}
    assert sorted(read_labelled) == pngs
    records = [{"file_name": str(folder / name), "image_id": name, "annotations": []} for name in names]
    detection = DetectionDataset(records)
    read_det = {}
    for i, name in enumerate(names):
        image, _ = detection[i]  # 3 x H x W in [0, 1]
        read_det[name] = (image * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    for readers in (read, read_list, read_stamps, read_cls, read_labelled, read_det):
        for name, got in readers.items():
            assert np.array_equal(got, want[name]), name
