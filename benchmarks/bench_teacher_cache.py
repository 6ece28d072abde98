"""Wall time of the tau_T sweep of SEED's Table 5 with a live teacher and with the teacher cache.

For each student, the tau_T points are distilled from one ResNet-50 teacher twice, side by
side in one run (point by point, alternating): with a live teacher (every point runs the
teacher at every step) and with ``teacher.cache_dir`` (the first point writes the cache, the
others read it and do not build the teacher). It prints, per student, both totals and their
ratio, the teacher's share of a live step (median teacher forward over median whole SEED step
on the same batch, data loading excluded) and whether every student trained from the cache is
bit-identical to its live twin (``torch.equal`` on every tensor of the export).
Target: >= 3x less wall time for the 5-point sweep with the MobileNetV3-Large student.

The teacher is a randomly initialised ResNet-50 with a MoCo v2 head (2048-2048-128), written to
a temporary file as a MoCo v2 checkpoint: the timings are those of real weights, the students
are not. Data: the offline demo photos (``data.source=demo``). CPU-sized defaults: student
64 px, teacher 112 px (``teacher.input_size``), batch 32, 24 steps per point.

    python benchmarks/bench_teacher_cache.py
    python benchmarks/bench_teacher_cache.py --students mobilenet_v3_large --steps 48 --batch 64
    python benchmarks/bench_teacher_cache.py --steps 4 --batch 8 --timing-steps 2   # a quick check that it runs
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torchvision

from distill.builder import build_method
from distill.schema import DistillConfig
from distill.trainer import train
from seed_core.checkpoint_files import safe_load
from seed_core.config import load_config

REPO = Path(__file__).resolve().parents[1]


def write_teacher(path: Path) -> Path:
    """A random ResNet-50 MoCo v2 checkpoint (``module.encoder_q.*`` with its 2048-2048-128 head)."""
    torch.manual_seed(0)
    encoder = torchvision.models.resnet50()
    encoder.fc = torch.nn.Sequential(torch.nn.Linear(2048, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 128))
    state = {f"module.encoder_q.{k}": v for k, v in encoder.state_dict().items()}
    torch.save({"arch": "resnet50", "state_dict": state}, path)
    return path


def point_config(args, teacher: Path, student: str, tau: float, output_dir: Path, cache: Path | None):
    epochs = args.epochs
    overrides = [
        f"student.arch={student}",
        "teacher.arch=resnet50",
        "teacher.layout=mocov2",
        f"teacher.weights={teacher}",
        f"teacher.input_size={args.teacher_size}",
        "data.source=demo",
        f"data.demo_length={args.batch * args.steps // epochs}",
        f"data.image_size={args.image_size}",
        f"data.num_workers={args.workers}",
        f"optim.batch_size={args.batch}",
        f"optim.epochs={epochs}",
        "optim.warmup_epochs=0",
        f"distill.queue_size={args.queue_size}",
        f"distill.tau_teacher={tau}",
        f"train.output_dir={output_dir}",
        "train.tensorboard=false",
        f"train.log_every={args.steps}",
        f"train.checkpoint_every={args.steps}",
    ]
    if cache is not None:
        overrides.append(f"teacher.cache_dir={cache}")
    return load_config(DistillConfig, REPO / "configs/distill/base.yaml", overrides)


def timed_run(cfg) -> float:
    tic = time.perf_counter()
    train(cfg)
    return time.perf_counter() - tic


def identical_students(a: Path, b: Path) -> bool:
    sa, sb = safe_load(a / "student.pth")["state_dict"], safe_load(b / "student.pth")["state_dict"]
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def teacher_share(cfg, steps: int) -> float:
    """Median teacher forward / median whole live SEED step (forward, loss, backward, SGD), same batch."""
    method = build_method(cfg).train()
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
    images = torch.randn(cfg.optim.batch_size, 3, cfg.data.image_size, cfg.data.image_size)
    teacher_times, step_times = [], []
    for i in range(steps + 1):  # the first of each warms up
        tic = time.perf_counter()
        method.teacher(images)
        teacher_times.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        loss, _ = method([images])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - tic)
    return statistics.median(teacher_times[1:]) / statistics.median(step_times[1:])


def sweep(args, teacher: Path, student: str, work: Path) -> dict:
    live_s, cached_s, same, modes = [], [], [], []
    cache = work / student / "teacher_cache"
    for tau in args.taus:
        live = point_config(args, teacher, student, tau, work / student / f"live_{tau:g}", None)
        cached = point_config(args, teacher, student, tau, work / student / f"cached_{tau:g}", cache)
        live_s.append(timed_run(live))
        cached_s.append(timed_run(cached))
        modes.append(safe_load(Path(cached.train.output_dir) / "student.pth")["meta"]["teacher_cache"]["mode"])
        same.append(identical_students(Path(live.train.output_dir), Path(cached.train.output_dir)))
        print(
            f"  {student} tau_T={tau:g}: live {live_s[-1]:.1f} s, cached {cached_s[-1]:.1f} s ({modes[-1]}), "
            f"identical: {same[-1]}",
            flush=True,
        )
    share = teacher_share(point_config(args, teacher, student, args.taus[0], work / "unused", None), args.timing_steps)
    return {
        "student": student,
        "live": sum(live_s),
        "cached": sum(cached_s),
        "share": share,
        "same": same,
        "modes": modes,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", nargs="+", default=["mobilenet_v3_large", "resnet18"])
    parser.add_argument("--taus", nargs="+", type=float, default=[1e-4, 1e-3, 1e-2, 0.03, 0.1], help="tau_T points")
    parser.add_argument("--steps", type=int, default=24, help="distillation steps per point")
    parser.add_argument("--epochs", type=int, default=2, help="the steps are spread over this many epochs")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=64, help="student view size (data.image_size)")
    parser.add_argument("--teacher-size", type=int, default=112, help="teacher input size (teacher.input_size)")
    parser.add_argument("--queue-size", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=0, help="data.num_workers")
    parser.add_argument("--timing-steps", type=int, default=5, help="timed steps for the teacher's share")
    parser.add_argument("--workdir", default=None, help="default: a temporary folder, deleted at the end")
    args = parser.parse_args()
    if args.steps % args.epochs:
        parser.error(f"--steps {args.steps} must be a multiple of --epochs {args.epochs}")

    with tempfile.TemporaryDirectory(prefix="bench_teacher_cache_") as tmp:
        work = Path(args.workdir or tmp)
        teacher = write_teacher(work / "resnet50_mocov2_random.pth")
        print(
            f"tau_T sweep {args.taus}: {args.steps} steps x batch {args.batch}, student {args.image_size} px, "
            f"teacher ResNet-50 (random init) at {args.teacher_size} px, K={args.queue_size}, "
            f"{torch.get_num_threads()} CPU threads, {args.workers} loader workers",
            flush=True,
        )
        results = [sweep(args, teacher, student, work) for student in args.students]

    print(
        "\n| student | points | live teacher (s) | teacher cache (s) | ratio | teacher share of a live step | "
        "cache use | identical students |\n|---|---|---|---|---|---|---|---|"
    )
    for r in results:
        print(
            f"| {r['student']} | {len(r['same'])} | {r['live']:.1f} | {r['cached']:.1f} | "
            f"{r['live'] / r['cached']:.2f}x | {r['share'] * 100:.0f}% | {', '.join(r['modes'])} | "
            f"{sum(r['same'])}/{len(r['same'])} |"
        )


if __name__ == "__main__":
    main()
