"""Images per second per core of the distillation's loader (issue 31 item 5): read + MoCo v2 views.

One process, one thread (a loader worker's view of the machine): each image file is read by the
project's reader and augmented by ``mocov2_transform``, with every JPEG decoded at full size, and
again with ``data.jpeg_draft`` (decoded at 1/2, 1/4 or 1/8 size when every crop keeps at least the
output's pixels: ``distill.data.draft_short_side``). The two are timed alternately, image by image
batches, in one run, so the ratio is measured side by side.

    python benchmarks/bench_loader.py                          # generated 1600 x 1200 and 500 x 375 JPEGs
    python benchmarks/bench_loader.py --root /data/imagenet/train --images 2000   # your own files

Generated images are smooth colour fields with texture, saved at JPEG quality 90 (so they decode like
photos, not like noise). Say what else ran: on shared cores the numbers mean little.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from distill.data import draft_short_side, mocov2_transform
from seed_core.images import read_rgb


def generated_jpegs(folder: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    width, height = size
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    paths = []
    for i in range(count):
        phase = rng.uniform(0, 6.28, 3)
        freq = rng.uniform(2, 12, 3)
        channels = [127 + 90 * np.sin(freq[c] * (x + y * (c + 1)) + phase[c]) for c in range(3)]
        pixels = np.stack(channels, axis=2) + rng.normal(0, 12, (height, width, 3))
        path = folder / f"{size[0]}x{size[1]}_{i}.jpg"
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        paths.append(path)
    return paths


def rate(paths: list[Path], transform, min_short_side: int | None, rounds: int) -> float:
    """Median images/s over ``rounds`` passes through ``paths``."""
    rates = []
    for _ in range(rounds):
        tic = time.perf_counter()
        for path in paths:
            transform(read_rgb(path, min_short_side=min_short_side))
        rates.append(len(paths) / (time.perf_counter() - tic))
    return statistics.median(rates)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", help="a folder of JPEGs (searched recursively); default: generated ones")
    parser.add_argument("--images", type=int, default=40, help="images per set")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 112, 224], help="output sizes (px)")
    parser.add_argument("--crop-scale-min", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.root:
            sets = {args.root: sorted(Path(args.root).rglob("*.[jJ][pP]*[gG]"))[: args.images]}
        else:
            sets = {
                f"generated {w} x {h}": generated_jpegs(Path(tmp), args.images, (w, h))
                for w, h in ((1600, 1200), (500, 375))
            }
        print(f"torch {torch.__version__}, 1 thread, {args.rounds} rounds, median images/s per core\n")
        print("| images | output | decode short side (draft) | full decode | jpeg_draft | ratio |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, paths in sets.items():
            for size in args.sizes:
                transform = mocov2_transform(size, crop_scale_min=args.crop_scale_min)
                short = draft_short_side(size, args.crop_scale_min)
                rate(paths[:3], transform, short, 1)  # warm-up
                full, draft = [], []
                for _ in range(args.rounds):  # alternating, so both see the same machine
                    full.append(rate(paths, transform, None, 1))
                    draft.append(rate(paths, transform, short, 1))
                full_rate, draft_rate = statistics.median(full), statistics.median(draft)
                print(
                    f"| {name} | {size} | {short} | {full_rate:.0f} | {draft_rate:.0f} | {draft_rate / full_rate:.2f}x |"
                )


if __name__ == "__main__":
    main()
