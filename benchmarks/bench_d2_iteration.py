"""Detectron2 fine-tuning speed: seconds per training iteration and peak memory of
Faster R-CNN R18-C4 and R50-C4 (the VOC configs) on VOC-sized inputs.

Runs the real models of configs/det/ (res5 head of this project, BN) on synthetic images
of a VOC image's size (500 x 375, resized by the config's test size 800) with random
boxes, both depths in one run so their ratio is measured side by side:

    python benchmarks/bench_d2_iteration.py                 # GPU if present, else CPU
    python benchmarks/bench_d2_iteration.py --iters 3 --batch 1 --min-size 480   # quick CPU
"""

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def build(depth: int, device: str, min_size: int):
    from detectron2.config import get_cfg
    from detectron2.modeling import build_model

    from seed_transfer.detection.d2.heads import register_heads

    register_heads()
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO / "configs/det" / f"voc_R_{depth}_C4_24k.yaml"))
    cfg.MODEL.DEVICE = device
    cfg.MODEL.RESNETS.NORM = "BN"  # one process: SyncBN is plain BN
    cfg.INPUT.MIN_SIZE_TEST = min_size
    model = build_model(cfg).train()
    return model, torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.001, momentum=0.9)


def batch(n: int, min_size: int, device: str):
    from detectron2.structures import Boxes, Instances

    h, w = min_size, round(min_size * 500 / 375)
    g = torch.Generator().manual_seed(0)
    items = []
    for _ in range(n):
        xy = torch.rand(5, 2, generator=g) * torch.tensor([w * 0.7, h * 0.7])
        wh = 30 + torch.rand(5, 2, generator=g) * 150
        inst = Instances(
            (h, w), gt_boxes=Boxes(torch.cat([xy, xy + wh], 1)), gt_classes=torch.randint(0, 20, (5,), generator=g)
        )
        items.append({"image": torch.rand(3, h, w) * 255, "instances": inst.to(device)})
    return items


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--depths", type=int, nargs="+", default=[18, 50])
    parser.add_argument("--batch", type=int, default=2, help="images per iteration (per GPU)")
    parser.add_argument("--min-size", type=int, default=800)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    from detectron2.utils.events import EventStorage

    device = "cuda" if torch.cuda.is_available() else "cpu"
    times = {}
    with EventStorage(0):
        run(args, device, times)
    if len(times) == 2:
        (a, ta), (b, tb) = times.items()
        print(f"ratio R{b}/R{a}: {tb / ta:.2f}")


def run(args, device: str, times: dict) -> None:
    for depth in args.depths:
        model, optimizer = build(depth, device, args.min_size)
        data = batch(args.batch, args.min_size, device)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        per_iter = []
        for i in range(args.warmup + args.iters):
            tic = time.perf_counter()
            with torch.autocast(device, dtype=torch.float16, enabled=device == "cuda"):
                loss = sum(model(data).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if device == "cuda":
                torch.cuda.synchronize()
            if i >= args.warmup:
                per_iter.append(time.perf_counter() - tic)
        times[depth] = statistics.median(per_iter)
        memory = (
            f"peak GPU {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB"
            if device == "cuda"
            else f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
        print(
            f"R{depth}-C4 on {device}: {times[depth]:.3f} s/iter (median of {args.iters}, batch {args.batch}, "
            f"{args.min_size}px short side), {memory}"
        )
        del model, optimizer


if __name__ == "__main__":
    main()
