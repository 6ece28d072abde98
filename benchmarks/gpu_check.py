"""Every GPU figure the project claims, from one command on one GPU (a few minutes; under 8).

    python benchmarks/gpu_check.py                # needs CUDA; prints one markdown table
    python benchmarks/gpu_check.py --cpu-smoke    # toy sizes on the CPU: checks the script, measures nothing

1. Distillation images/s, batch 256 at 224 px, AMP + channels-last, K = 65,536: ResNet-18 <- ResNet-50
   and MobileNetV3-Large <- ResNet-50 (MoCo v2 head, 128-d), each with a live teacher and with the
   teacher cache (``distill.teacher_cache`` read path, from a cache written just before, so from the
   page cache). Synthetic images already on the GPU: the model's rate, not the loader's.
2. The SEED step's overhead over teacher forward + student forward/backward with a trivial loss, at
   K = 65,536 (``bench_seed_step.py``'s measurement, alternating steps; target <= 2%).
3. Data-loader images/s: MoCo v2 augmentation at 224 px of the demo photos (decoded once, in memory:
   no JPEG decoding), one worker per CPU core, against the model's images/s of 1; and per core with
   JPEG decoding (generated 1600 x 1200 photos), full size and with ``data.jpeg_draft``
   (``bench_loader.py``'s measurement).
3b. The demo's SEED step phase by phase on the GPU (``bench_step_breakdown.py``: data wait, teacher
   forward, student forward, objective, backward, optimizer; the step over its passes alone), in
   fp16 and in bf16 autocast (``train.amp_dtype``).
4. A few Faster R-CNN R18-C4 training iterations per detection engine (random init, random images
   with random boxes at the VOC schedule's largest training size): the torchvision engine
   (``seed_transfer.detection.tv``), and Detectron2 when it is installed (else skipped).
5. Peak GPU memory of each row.

Random weights throughout: speed and memory do not depend on them. Exit status 0; 1 when a
row failed (the row says why); 2 without CUDA.
"""

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

from seed_core.runtime import backward_step

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DET_CONFIG = REPO / "configs/det/voc_R_18_C4_24k.yaml"


def images_per_second(rate: float) -> str:
    return f"{rate:,.0f} images/s" if rate >= 100 else f"{rate:.3g} images/s"


class Device:
    """The device, AMP and the timing helpers of one check."""

    def __init__(self, smoke: bool):
        self.device = torch.device("cpu" if smoke else "cuda")
        self.amp = self.channels_last = not smoke

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak(self) -> str:
        return f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if self.device.type == "cuda" else "-"

    def seconds(self, fn, steps: int, warmup: int) -> float:
        """Wall seconds of ``steps`` calls of ``fn`` after ``warmup`` untimed ones."""
        for _ in range(warmup):
            fn()
        self.sync()
        tic = time.perf_counter()
        for _ in range(steps):
            fn()
        self.sync()
        return time.perf_counter() - tic


# ---------------------------------------------------------------- 1. distillation
def seed_method(student_arch: str, queue_size: int):
    from distill.builder import build_student
    from distill.heads import MLPHead
    from distill.methods import SEED
    from distill.models import build_backbone
    from distill.teacher import FrozenTeacher

    torch.manual_seed(0)
    backbone, dim = build_backbone("resnet50")
    teacher = FrozenTeacher(backbone, MLPHead(dim, 128))
    return SEED(build_student(student_arch, 128), teacher, embed_dim=128, queue_size=queue_size)


def distillation_rows(args, dev: Device, work: Path) -> list[tuple[str, str, str]]:
    from distill.teacher_cache import CachedTeacher, TeacherCache

    rows = []
    for student, label in (("resnet18", "R18 <- R50"), ("mobilenet_v3_large", "MNv3-L <- R50")):
        method = seed_method(student, args.queue_size).to(dev.device).train()
        if dev.channels_last:
            method.to(memory_format=torch.channels_last)
        optimizer = torch.optim.SGD(method.student.parameters(), lr=0.03, momentum=0.9, weight_decay=1e-4)
        scaler = torch.amp.GradScaler("cuda") if dev.amp else None
        images = torch.randn(args.batch, 3, args.image_size, args.image_size, device=dev.device)
        if dev.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        batches = args.steps + args.warmup
        dataset_length = args.batch * batches
        indices = torch.randperm(dataset_length).view(batches, args.batch)

        # a cache of this teacher's embeddings of `images`, one batch of rows per step, as the engine writes it
        cache = TeacherCache(work / f"cache_{student}", {"bench": "gpu_check", "data": {"length": dataset_length}})
        with torch.inference_mode(), torch.autocast(dev.device.type, dtype=torch.float16, enabled=dev.amp):
            embeddings = method.teacher(images)
            cache.create(embeddings.shape[1], embeddings.dtype)
            for batch_indices in indices:
                cache.write(0, batch_indices, embeddings)
        feed, position = CachedTeacher(cache, None), iter(range(10**9))

        def step(cached: bool):
            with torch.autocast(dev.device.type, dtype=torch.float16, enabled=dev.amp):
                teacher_emb = feed(0, indices[next(position) % batches], images) if cached else None
                loss, _ = method([images], teacher_emb=teacher_emb)
            backward_step(loss, optimizer, scaler)

        for cached in (False, True):
            dev.reset_peak()
            seconds = dev.seconds(lambda: step(cached), args.steps, args.warmup)
            rate = args.batch * args.steps / seconds
            rows.append(
                (
                    f"distillation {label}, {'teacher cache' if cached else 'live teacher'}",
                    images_per_second(rate),
                    dev.peak(),
                )
            )
        cache.close()
    return rows


# ---------------------------------------------------------------- 2. SEED overhead
def overhead_rows(args, dev: Device) -> list[tuple[str, str, str]]:
    from bench_seed_step import build, step_fn, timed  # beside this script, so on sys.path when it runs

    torch.manual_seed(0)
    method, optimizer = build(
        argparse.Namespace(student="resnet18", teacher="resnet50", queue_size=args.queue_size), dev.device
    )
    method.train()
    images = torch.randn(args.batch, 3, args.image_size, args.image_size, device=dev.device)
    if dev.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    for _ in range(args.warmup):
        step_fn(method, optimizer, images, False, dev.amp)
        step_fn(method, optimizer, images, True, dev.amp)
    dev.reset_peak()
    ratios = []
    for _ in range(args.steps):
        base = timed(lambda: step_fn(method, optimizer, images, False, dev.amp), dev.device)
        ratios.append(timed(lambda: step_fn(method, optimizer, images, True, dev.amp), dev.device) / base)
    overhead = (statistics.median(ratios) - 1) * 100
    return [
        (
            f"SEED step over teacher fwd + student fwd/bwd (R18 <- R50, K={args.queue_size:,})",
            f"{overhead:+.2f}% (target <= 2%)",
            dev.peak(),
        )
    ]


# ---------------------------------------------------------------- 3. data loader
def loader_rows(args, dev: Device, model_rate: str | None) -> list[tuple[str, str, str]]:
    from distill.data import DemoPhotos, ResumableSampler, SeededViews, build_loader, mocov2_transform

    workers = args.workers or os.cpu_count()
    source = DemoPhotos(length=args.batch * (args.loader_batches + 1))
    views = SeededViews(source, mocov2_transform(args.image_size), num_views=1, with_index=True)
    sampler = ResumableSampler(len(source), args.batch, seed=0)
    loader = build_loader(views, sampler, args.batch, workers, pin_memory=dev.device.type == "cuda")
    batches = iter(loader)
    next(batches)  # workers start and the first batch arrives: not timed
    tic = time.perf_counter()
    count = sum(len(indices) for _, indices in batches)
    rate = count / (time.perf_counter() - tic)
    versus = f" (model R18 <- R50, live teacher: {model_rate})" if model_rate else ""
    return [
        (
            f"data loader, MoCo v2 augmentation at {args.image_size} px, {workers} workers",
            f"{images_per_second(rate)}{versus}",
            "-",
        )
    ]


def jpeg_loader_rows(args) -> list[tuple[str, str, str]]:
    from bench_loader import generated_jpegs, rate

    from distill.data import draft_short_side, mocov2_transform

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with tempfile.TemporaryDirectory(prefix="gpu_check_jpeg_") as tmp:
            size = (320, 240) if args.cpu_smoke else (1600, 1200)
            paths = generated_jpegs(Path(tmp), 4 if args.cpu_smoke else 40, size)
            transform = mocov2_transform(args.image_size)
            short = draft_short_side(args.image_size, 0.2)
            full, draft = rate(paths, transform, None, 3), rate(paths, transform, short, 3)
    finally:
        torch.set_num_threads(threads)
    return [
        (
            f"loader per core, {size[0]} x {size[1]} JPEGs at {args.image_size} px: full decode / jpeg_draft",
            f"{full:.0f} / {draft:.0f} images/s ({draft / full:.2f}x)",
            "-",
        )
    ]


# ---------------------------------------------------------------- 3b. the demo's step, phase by phase
def step_breakdown_rows(args, dev: Device) -> list[tuple[str, str, str]]:
    import bench_step_breakdown

    rows = []
    for amp_dtype in ("fp16", "bf16") if dev.amp else (None,):
        small = ["optim.batch_size=4", "data.num_workers=0"] if args.cpu_smoke else []
        amp = [f"train.amp_dtype={amp_dtype}"] if amp_dtype else ["train.amp=false"]
        argv = [
            "--config",
            str(REPO / "configs/distill/demo.yaml"),
            "--device",
            str(dev.device),
            "--steps",
            "2" if args.cpu_smoke else "20",
            *small,
            *amp,
        ]
        dev.reset_peak()
        result = bench_step_breakdown.main(argv)
        phases = ", ".join(f"{name} {1e3 * seconds:.1f}" for name, seconds in result["phases_s"].items())
        rows.append(
            (
                f"demo SEED step ({result['precision']}), ms per phase",
                f"step {1e3 * result['step_s']:.1f} ({result['images_per_s']:.0f} images/s), "
                f"{result['step_over_passes']:.2f}x its passes; {phases}",
                dev.peak(),
            )
        )
    return rows


# ---------------------------------------------------------------- 4. detection
def detection_batch(args, dev: Device, generator: torch.Generator):
    """``args.det_batch`` random images (0-1, det_size x 4/3 det_size) with 5 random boxes of 20 VOC classes."""
    height, width = args.det_size, args.det_size * 4 // 3
    images, targets = [], []
    for _ in range(args.det_batch):
        corner = torch.rand(5, 2, generator=generator) * torch.tensor([width * 0.6, height * 0.6])
        size = 20 + torch.rand(5, 2, generator=generator) * torch.tensor([width * 0.3, height * 0.3])
        images.append(torch.rand(3, height, width, generator=generator))
        targets.append(
            {
                "boxes": torch.cat([corner, corner + size], dim=1),
                "labels": torch.randint(1, 21, (5,), generator=generator),
            }
        )
    return images, targets


def train_iterations(model, parameters, forward, dev: Device, args) -> float:
    """Median seconds of one SGD iteration (AMP on CUDA) of ``forward() -> loss dict``."""
    optimizer = torch.optim.SGD(parameters, lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler("cuda") if dev.amp else None
    times = []
    for i in range(args.det_iters + 1):
        dev.sync()
        tic = time.perf_counter()
        with torch.autocast(dev.device.type, enabled=dev.amp):
            loss = sum(forward().values())
        backward_step(loss, optimizer, scaler)
        dev.sync()
        if i:  # the first iteration warms up
            times.append(time.perf_counter() - tic)
    return statistics.median(times)


def detection_opts(args) -> list[str]:
    """One training size, the images' own (no multi-scale draw: every iteration costs the same)."""
    return ["INPUT.MIN_SIZE_TRAIN", f"({args.det_size},)", "SOLVER.IMS_PER_BATCH", str(args.det_batch)]


def detection_tv_rows(args, dev: Device) -> list[tuple[str, str, str]]:
    from seed_transfer.detection.plan import DetRequest, make_plan
    from seed_transfer.detection.tv.config import load_run_config
    from seed_transfer.detection.tv.train import build_model

    plan = make_plan(
        DetRequest(
            DET_CONFIG,
            "random",
            ".",
            opts=detection_opts(args),
            engine="torchvision",
            num_gpus=int(dev.device.type == "cuda"),
        )
    )
    cfg = load_run_config(plan)
    model, _ = build_model(cfg, "random")
    model.to(dev.device).train()
    images, targets = detection_batch(args, dev, torch.Generator().manual_seed(0))
    images = [i.to(dev.device) for i in images]
    targets = [{k: v.to(dev.device) for k, v in t.items()} for t in targets]
    dev.reset_peak()
    seconds = train_iterations(
        model, [p for p in model.parameters() if p.requires_grad], lambda: model(images, targets), dev, args
    )
    return [
        (
            f"detection torchvision engine, R18-C4, batch {args.det_batch} at {args.det_size} px",
            f"{seconds:.3f} s/iteration",
            dev.peak(),
        )
    ]


def detection_d2_rows(args, dev: Device, work: Path) -> list[tuple[str, str, str]]:
    if importlib.util.find_spec("detectron2") is None:
        return [
            (
                "detection Detectron2 engine",
                "skipped: Detectron2 is not installed (bash tools/install_detectron2.sh)",
                "-",
            )
        ]
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model as build_d2_model
    from detectron2.structures import Boxes, Instances
    from detectron2.utils.events import EventStorage

    from distill.export import export_student
    from distill.models import build_backbone
    from seed_transfer.detection.convert import convert_checkpoint
    from seed_transfer.detection.d2.train_net import build_cfg
    from seed_transfer.detection.plan import DetRequest, make_plan

    torch.manual_seed(0)
    student = export_student(build_backbone("resnet18")[0], "resnet18", work / "resnet18.pth", meta={})
    convert_checkpoint(student, work / "resnet18.pkl")
    plan = make_plan(
        DetRequest(
            DET_CONFIG,
            student,
            work / "d2",
            opts=detection_opts(args),
            engine="detectron2",
            num_gpus=int(dev.device.type == "cuda"),
        )
    )
    cfg = build_cfg(plan, 0, work / "d2", str(work / "resnet18.pkl"))
    model = build_d2_model(cfg)
    DetectionCheckpointer(model).load(str(work / "resnet18.pkl"))
    model.train()
    images, targets = detection_batch(args, dev, torch.Generator().manual_seed(0))
    inputs = [
        {
            "image": (image * 255).to(dev.device),
            "instances": Instances(
                image.shape[1:], gt_boxes=Boxes(t["boxes"].to(dev.device)), gt_classes=(t["labels"] - 1).to(dev.device)
            ),
        }
        for image, t in zip(images, targets)
    ]
    dev.reset_peak()
    with EventStorage(0):  # Detectron2's losses log into it
        seconds = train_iterations(
            model, [p for p in model.parameters() if p.requires_grad], lambda: model(inputs), dev, args
        )
    return [
        (
            f"detection Detectron2 engine, R18-C4, batch {args.det_batch} at {args.det_size} px",
            f"{seconds:.3f} s/iteration",
            dev.peak(),
        )
    ]


# ---------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="run every row on the CPU at toy sizes")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--queue-size", type=int, default=65536)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per distillation row")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--loader-batches", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0, help="loader workers (0: one per CPU core)")
    parser.add_argument("--det-batch", type=int, default=8)
    parser.add_argument("--det-size", type=int, default=800, help="short side of the detection images")
    parser.add_argument("--det-iters", type=int, default=10)
    args = parser.parse_args(argv)
    if args.cpu_smoke:
        args.batch, args.image_size, args.queue_size, args.steps, args.warmup = 4, 64, 64, 2, 1
        args.loader_batches, args.workers, args.det_batch, args.det_size, args.det_iters = 2, 1, 1, 128, 1
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device (torch.cuda.is_available() is False); run it on a machine with a GPU "
            "(--cpu-smoke checks the script on the CPU)",
            file=sys.stderr,
        )
        return 2
    dev = Device(args.cpu_smoke)
    if dev.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if dev.device.type == "cuda" else "CPU smoke run (toy sizes: no figures)"
    print(
        f"gpu_check on {name}, torch {torch.__version__}, batch {args.batch} at {args.image_size} px, "
        f"AMP {dev.amp}, channels-last {dev.channels_last}",
        flush=True,
    )
    rows, failed, tic = [], [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        sections = [
            ("distillation", lambda: distillation_rows(args, dev, work)),
            ("SEED overhead", lambda: overhead_rows(args, dev)),
            (
                "data loader",
                lambda: loader_rows(
                    args,
                    dev,
                    next((r[1] for r in rows if r[0].startswith("distillation R18") and "live" in r[0]), None),
                ),
            ),
            ("data loader, JPEG", lambda: jpeg_loader_rows(args)),
            ("step breakdown", lambda: step_breakdown_rows(args, dev)),
            ("detection torchvision", lambda: detection_tv_rows(args, dev)),
            ("detection Detectron2", lambda: detection_d2_rows(args, dev, work)),
        ]
        for section, run in sections:
            start = time.perf_counter()
            try:
                rows += run()
            except Exception as err:  # one broken row must not hide the others' figures
                traceback.print_exc()
                rows.append((section, f"FAILED: {type(err).__name__}: {err}".replace("\n", " ")[:200], "-"))
                failed.append(section)
            print(f"[{section}] {time.perf_counter() - start:.0f} s", flush=True)
    print("\n| figure | value | peak GPU memory |\n|---|---|---|")
    for figure, value, peak in rows:
        print(f"| {figure} | {value} | {peak} |")
    print(f"\n{time.perf_counter() - tic:.0f} s in all" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
