"""Parity of the two detection engines: the same ResNet weights, the same real data (the
offline tree tiles), the same config and short schedule, fine-tuned by Detectron2 and by the
torchvision engine; prints both AP tables side by side with the difference, and the seconds
per training iteration of each (median over the same real batches, measured in this run) with
their ratio.

    python benchmarks/bench_det_engines.py                          # R18-C4, 40 iterations, 128 px, 64 RoIs
    python benchmarks/bench_det_engines.py --iters 200 --size 200 --seeds 2 --weights student.pth

The default weights are a seeded random ResNet-18 written as a student export (no ImageNet
ResNet ships offline); pass --weights for a real checkpoint. A few dozen CPU iterations give
near-zero AP; the point is that both engines land in the same place, not the numbers.
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def schedule_opts(args) -> list[str]:
    steps = f"({int(args.iters * 0.75)},)"
    return [
        "SOLVER.MAX_ITER",
        str(args.iters),
        "SOLVER.STEPS",
        steps,
        "SOLVER.WARMUP_ITERS",
        str(max(args.iters // 10, 1)),
        "SOLVER.IMS_PER_BATCH",
        str(args.batch),
        "SOLVER.CHECKPOINT_PERIOD",
        str(args.iters),
        "INPUT.MIN_SIZE_TRAIN",
        f"({args.size},)",
        "INPUT.MIN_SIZE_TEST",
        str(args.size),
        "MODEL.RPN.POST_NMS_TOPK_TEST",
        str(args.proposals),
        "MODEL.RPN.POST_NMS_TOPK_TRAIN",
        str(4 * args.rois),
        "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
        str(args.rois),
    ]


def step_times(engine: str, config: str, opts: list[str], weights: str, data_root: str, batch: int, steps: int):
    """Median seconds of one training step (forward, backward, SGD) of ``engine``'s model on real tiles."""
    from seed_transfer.detection.plan import DetRequest, make_plan
    from seed_transfer.detection.tv.config import load_run_config
    from seed_transfer.detection.tv.data import DetectionDataset, load_dataset
    from seed_transfer.detection.tv.train import build_model

    records = load_dataset("trees_train", data_root)["records"]
    dataset = DetectionDataset(records)
    batches = [[dataset[(i * batch + j) % len(dataset)] for j in range(batch)] for i in range(steps + 1)]
    if engine == "torchvision":
        cfg = load_run_config(make_plan(DetRequest(config, weights, data_root, opts=opts, engine="torchvision")))
        model, _ = build_model(cfg, weights)

        def run(items):
            images, targets = zip(*items)
            return model(list(images), list(targets))
    else:
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.modeling import build_model as build_d2_model
        from detectron2.structures import Boxes, Instances
        from detectron2.utils.events import EventStorage

        from seed_transfer.detection.convert import convert_checkpoint
        from seed_transfer.detection.d2.train_net import build_cfg

        pkl = Path(data_root) / "bench_weights.pkl"
        convert_checkpoint(weights, pkl)
        out = Path(data_root) / "unused"
        cfg = build_cfg(make_plan(DetRequest(config, weights, out, opts=opts, engine="detectron2")), 0, out, str(pkl))
        model = build_d2_model(cfg)
        DetectionCheckpointer(model).load(str(pkl))
        storage = EventStorage(0).__enter__()  # Detectron2's losses log into it

        def run(items):  # Detectron2 resizes in its data loader: resize here to the short side the config sets
            inputs = []
            for image, t in items:
                scale = cfg.INPUT.MIN_SIZE_TRAIN[0] / min(image.shape[1:])
                image = torch.nn.functional.interpolate(image[None], scale_factor=scale, mode="bilinear")[0]
                inputs.append(
                    {
                        "image": image * 255,
                        "instances": Instances(
                            image.shape[1:], gt_boxes=Boxes(t["boxes"] * scale), gt_classes=t["labels"] - 1
                        ),
                    }
                )
            return model(inputs)

    model.train()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    times = []
    for i, items in enumerate(batches):
        tic = time.perf_counter()
        loss = sum(run(items).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if i:  # the first step warms up
            times.append(time.perf_counter() - tic)
    if engine == "detectron2":
        storage.__exit__(None, None, None)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs/det/trees_R_18_C4_demo.yaml"))
    parser.add_argument("--weights", default=None, help="default: a seeded random ResNet-18 student export")
    parser.add_argument("--iters", type=int, default=40)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--size", type=int, default=128, help="short side, train and test")
    parser.add_argument("--proposals", type=int, default=100, help="RPN proposals per test image")
    parser.add_argument("--rois", type=int, default=64, help="sampled regions per training image (C4: res5 on each)")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--timing-steps", type=int, default=4)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    from seed_transfer.detection.transfer import SUMMARY_METRICS, run_detection_transfer

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_det_engines_"))
    weights = args.weights
    if weights is None:
        from distill.export import export_student
        from distill.models import build_backbone

        torch.manual_seed(0)
        weights = str(export_student(build_backbone("resnet18")[0], "resnet18", work / "resnet18.pth", meta={}))
    opts, data_root = schedule_opts(args), str(work / "datasets")
    results, seconds = {}, {}
    for engine in ("detectron2", "torchvision"):
        tic = time.perf_counter()
        summary = run_detection_transfer(
            args.config,
            weights,
            work / engine,
            seeds=args.seeds,
            name=engine,
            engine=engine,
            data_root=data_root,
            opts=opts,
        )
        results[engine] = summary["summary"]["bbox"]
        print(f"{engine}: fine-tune + evaluate {time.perf_counter() - tic:.0f} s", flush=True)
        seconds[engine] = step_times(engine, args.config, opts, weights, data_root, args.batch, args.timing_steps)

    print(
        f"\n{Path(args.config).name}, {args.iters} iterations x {args.batch} images at {args.size} px, "
        f"{args.seeds} seed(s), tree tiles (trees_test), weights {Path(weights).name}"
    )
    print("| metric | detectron2 | torchvision | torchvision - detectron2 |\n|---|---|---|---|")
    for metric in SUMMARY_METRICS:
        d2, tv = results["detectron2"].get(metric), results["torchvision"].get(metric)
        if d2 and tv:
            print(
                f"| {metric} | {d2['mean']:.2f} ± {d2['std']:.2f} | {tv['mean']:.2f} ± {tv['std']:.2f} | "
                f"{tv['mean'] - d2['mean']:+.2f} |"
            )
    print(
        f"\ns/iteration (median of {args.timing_steps} training steps, batch {args.batch}, CPU threads "
        f"{torch.get_num_threads()}): detectron2 {seconds['detectron2']:.3f}, torchvision {seconds['torchvision']:.3f}, "
        f"ratio torchvision/detectron2 {seconds['torchvision'] / seconds['detectron2']:.2f}"
    )
    (work / "bench.json").write_text(
        json.dumps({"args": vars(args), "bbox": results, "seconds_per_iter": seconds}, indent=2)
    )


if __name__ == "__main__":
    main()
