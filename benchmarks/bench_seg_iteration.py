#!/usr/bin/env python
"""Training-iteration time and peak memory of FCN-R50-D8 (mmseg) at the VOC crop size (512x512).

    python benchmarks/bench_seg_iteration.py                       # CPU: batch 1, 2 timed iterations
    python benchmarks/bench_seg_iteration.py --device cuda --batch 4 --iters 20

One iteration = forward (decode + auxiliary losses), backward and an SGD step on random
images and labels (21 classes), the model built exactly as configs/seg/fcn-d8_voc12aug-512x512_20k.yaml
builds it (BN in a single process). Peak memory: torch.cuda.max_memory_allocated on GPU, the
process's peak resident set (ru_maxrss, everything the process ever held) on CPU. CPU numbers
depend heavily on the machine's load; use a quiet machine and set OMP_NUM_THREADS to its cores.
"""

import argparse
import resource
import statistics
import time
from pathlib import Path

import torch

from seed_core.config import load_config
from seed_transfer.segmentation.mmconfig import build_model
from seed_transfer.segmentation.mmseg_setup import import_mmseg
from seed_transfer.segmentation.schema import SegTransferConfig

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "seg" / "fcn-d8_voc12aug-512x512_20k.yaml"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=1, help="images per iteration (the zoo: 4 per GPU)")
    parser.add_argument("--iters", type=int, default=2, help="timed iterations")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--depth", type=int, default=50)
    args = parser.parse_args(argv)

    import_mmseg()
    from mmengine.registry import DefaultScope
    from mmengine.structures import PixelData
    from mmseg.registry import MODELS
    from mmseg.structures import SegDataSample

    cfg = load_config(SegTransferConfig, CONFIG, ["model.norm=BN"])
    device = torch.device(args.device)
    with DefaultScope.overwrite_default_scope("mmseg"):
        model = MODELS.build(build_model(cfg, args.depth, 21, None)).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    height, width = cfg.data.crop_size
    images = torch.randn(args.batch, 3, height, width, device=device)
    samples = []
    for _ in range(args.batch):
        sample = SegDataSample(metainfo={"img_shape": (height, width), "pad_shape": (height, width)})
        sample.gt_sem_seg = PixelData(data=torch.randint(0, 21, (1, height, width), device=device))
        samples.append(sample)

    def step() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        losses = model(images, samples, mode="loss")
        loss = sum(v for k, v in losses.items() if "loss" in k)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(args.warmup):
        step()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = [step() for _ in range(args.iters)]
    if device.type == "cuda":
        peak = f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (max allocated, GPU)"
        name = torch.cuda.get_device_name()
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (peak RSS, process)"
        name = f"CPU, {torch.get_num_threads()} threads"
    print(f"FCN-R{args.depth}-D8, {height}x{width}, batch {args.batch}, {name}")
    print(
        f"iteration: {statistics.median(times):.2f} s median over {args.iters} "
        f"(min {min(times):.2f}, max {max(times):.2f}); {args.batch / statistics.median(times):.2f} images/s"
    )
    print(f"peak memory: {peak}")


if __name__ == "__main__":
    main()
