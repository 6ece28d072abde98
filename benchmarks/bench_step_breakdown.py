"""Where a distillation step's time goes (issue 31 item 1), CPU or CUDA, in one table from one run.

A SEED step, run phase by phase on the real loader and models of a distillation config:

    data wait      next batch from the DataLoader (decode + augmentation, or waiting for workers)
    to device      the views onto the device
    teacher fwd    the frozen teacher's embeddings (no gradient)
    student fwd    the student's embeddings
    objective      the SEED loss over D+ = [own teacher embedding; queue] and the enqueue
    backward       the student's gradients
    optimizer      SGD step and zeroing the gradients

then, separately, the passes ALONE on one fixed batch (no loader, nothing else): teacher forward,
student forward + backward. The last line is the ratio of the full step to the passes alone: what
the step costs beyond the networks' own compute (issue 31's target: within 1.25x).

FLOPs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (matrix products and
convolutions; a backward pass counts its own). The device's peak is not looked up in a table: it is
MEASURED here as the best float32 matrix-product rate of ``torch.mm`` on square matrices (2048 on a
CPU, 8192 on CUDA) on the same threads, so "achieved / peak" is relative to what this device
reaches on its best kernel, not to a datasheet.

    python benchmarks/bench_step_breakdown.py                                   # the demo's config
    python benchmarks/bench_step_breakdown.py --config configs/distill/demo.yaml --steps 30 data.num_workers=1
    python benchmarks/bench_step_breakdown.py --json step.json                  # also as JSON
    python benchmarks/bench_step_breakdown.py train.amp_dtype=bf16              # bf16 autocast + channels_last

Timings mean nothing beside another busy process on the same cores: pause other jobs first
(``kill -STOP``) and say what else ran. Only ``distill.strategy=seed`` is broken into phases (the
other strategies' objectives differ); the teacher must run live (no ``teacher.cache_dir``).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from distill.builder import build_method
from distill.data import ResumableSampler, SeededViews, build_loader
from distill.losses import seed_loss
from distill.schema import DistillConfig, run_precision
from distill.trainer import build_source, view_transform
from seed_core.config import load_config
from seed_core.runtime.precision import Precision

PHASES = ("data wait", "to device", "teacher fwd", "student fwd", "objective", "backward", "optimizer")


class Clock:
    """Wall time between marks; on CUDA each mark waits for the device, so a phase owns its kernels."""

    def __init__(self, device: torch.device):
        self.device, self.last = device, None

    def mark(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        elapsed, self.last = (0.0 if self.last is None else now - self.last), now
        return elapsed


def seed_step_by_phase(method, optimizer, batches, device, clock: Clock, precision: Precision) -> dict[str, float]:
    """One SEED step as :class:`distill.methods.SEED` runs it, timed phase by phase."""
    times = {}
    clock.mark()
    views = next(batches)  # [N x 3 x H x W] per view
    times["data wait"] = clock.mark()
    images = precision.layout(views[0].to(device, non_blocking=True))
    times["to device"] = clock.mark()
    with torch.no_grad(), precision.autocast():
        teacher_emb = method.teacher(images)  # N x C
    times["teacher fwd"] = clock.mark()
    with precision.autocast():
        student_emb = method.student(images)  # N x C
    times["student fwd"] = clock.mark()
    loss = seed_loss(student_emb, teacher_emb, method.queue.embeddings, method.tau_student, method.tau_teacher)
    method.queue.push(teacher_emb)
    times["objective"] = clock.mark()
    loss.backward()
    times["backward"] = clock.mark()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    times["optimizer"] = clock.mark()
    return times


def timed(fn, repeats: int, device: torch.device) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls, after one warm-up call."""
    clock, samples = Clock(device), []
    fn()
    for _ in range(repeats):
        clock.mark()
        fn()
        samples.append(clock.mark())
    return statistics.median(samples)


def measured_peak_flops(device: torch.device) -> float:
    """The best float32 ``torch.mm`` rate on this device and these threads (FLOP/s)."""
    size = 8192 if device.type == "cuda" else 2048
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    seconds = min(timed(lambda: torch.mm(a, b), 3, device) for _ in range(3))
    return 2 * size**3 / seconds


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/distill/demo.yaml")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = parser.parse_args(argv)

    cfg = load_config(DistillConfig, args.config, args.overrides)
    if cfg.distill.strategy != "seed" or cfg.teacher.cache_dir:
        parser.error("the breakdown is of a live-teacher SEED step: distill.strategy=seed, teacher.cache_dir=null")
    device = torch.device(args.device)
    method = build_method(cfg).to(device).train()
    precision = run_precision(cfg, device)  # train.amp, train.amp_dtype, train.channels_last: as the trainer runs
    if precision.channels_last:
        method.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(
        [p for p in method.parameters() if p.requires_grad], lr=0.01, momentum=cfg.optim.momentum
    )
    source = build_source(cfg)
    views = SeededViews(source, view_transform(cfg), num_views=method.num_views)
    sampler = ResumableSampler(len(source), cfg.optim.batch_size, cfg.train.seed, 0, 1)
    loader = build_loader(views, sampler, cfg.optim.batch_size, cfg.data.num_workers, device.type == "cuda")

    def forever():
        while True:
            yield from loader

    batches, clock = forever(), Clock(device)
    for _ in range(args.warmup):
        seed_step_by_phase(method, optimizer, batches, device, clock, precision)
    steps = [seed_step_by_phase(method, optimizer, batches, device, clock, precision) for _ in range(args.steps)]
    phase = {name: statistics.median(step[name] for step in steps) for name in PHASES}
    step_seconds = statistics.median(sum(step.values()) for step in steps)

    # The passes alone, on one fixed batch.
    images = precision.layout(next(batches)[0].to(device))

    def teacher_pass():
        with torch.no_grad(), precision.autocast():
            method.teacher(images)

    def student_pass():
        with precision.autocast():
            embeddings = method.student(images)
        embeddings.float().sum().backward()
        optimizer.zero_grad(set_to_none=True)

    teacher_alone, student_alone = timed(teacher_pass, args.steps, device), timed(student_pass, args.steps, device)
    teacher_flops, student_flops = count_flops(teacher_pass), count_flops(student_pass)
    peak = measured_peak_flops(device)

    batch = cfg.optim.batch_size
    rows = [(name, phase[name], None) for name in PHASES]
    result = {
        "config": args.config,
        "overrides": args.overrides,
        "device": str(device),
        "precision": precision.describe(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loader_workers": cfg.data.num_workers,
        "batch": batch,
        "steps": args.steps,
        "phases_s": phase,
        "step_s": step_seconds,
        "images_per_s": batch / step_seconds,
        "teacher_alone_s": teacher_alone,
        "student_alone_s": student_alone,
        "teacher_gflop": teacher_flops / 1e9,
        "student_gflop": student_flops / 1e9,
        "measured_peak_gflops": peak / 1e9,
        "step_over_passes": step_seconds / (teacher_alone + student_alone),
    }
    print(
        f"{args.config} {' '.join(args.overrides)} | {precision.describe()} | {torch.get_num_threads()} torch threads, "
        f"{cfg.data.num_workers} loader workers, OMP_NUM_THREADS={result['omp_num_threads']}, "
        f"OMP_WAIT_POLICY={result['omp_wait_policy']} | batch {batch}, median of {args.steps} steps\n"
    )
    print("| phase | ms per step | share of the step |")
    print("|---|---:|---:|")
    for name, seconds, _ in rows:
        print(f"| {name} | {1e3 * seconds:.1f} | {100 * seconds / step_seconds:.1f}% |")
    print(f"| **full step** | **{1e3 * step_seconds:.1f}** | {batch / step_seconds:.1f} images/s |")
    print()
    print("| pass alone (fixed batch) | ms | GFLOP | achieved GFLOP/s | of measured peak |")
    print("|---|---:|---:|---:|---:|")
    for name, seconds, flops in (
        ("teacher forward", teacher_alone, teacher_flops),
        ("student forward + backward", student_alone, student_flops),
    ):
        rate = flops / seconds
        print(f"| {name} | {1e3 * seconds:.1f} | {flops / 1e9:.2f} | {rate / 1e9:.1f} | {100 * rate / peak:.0f}% |")
    print(f"\nmeasured peak (best fp32 torch.mm on these threads): {peak / 1e9:.1f} GFLOP/s")
    print(f"full step / passes alone: {result['step_over_passes']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
