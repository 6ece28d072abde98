"""Overhead of the SEED objective over plain teacher + student passes.

Times, in one run and alternating, (a) teacher forward + student forward/backward
with a trivial loss, and (b) the full SEED step (same passes + similarity to the
K-entry queue, soft cross-entropy, enqueue), then prints the ratio (b)/(a) and the
peak memory. The paper setting is K = 65,536, batch 256, ResNet-18 student and
ResNet-50 teacher at 224 px on a GPU (target: overhead <= 2%); on a CPU use a small
batch:

    python benchmarks/bench_seed_step.py                                   # GPU defaults
    python benchmarks/bench_seed_step.py --batch 16 --image-size 112 --steps 6   # CPU
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from distill.heads import EmbeddingNet, MLPHead
from distill.methods import SEED
from distill.models import build_backbone
from distill.teacher import FrozenTeacher


def build(args, device):
    student_backbone, student_dim = build_backbone(args.student)
    teacher_backbone, teacher_dim = build_backbone(args.teacher)
    teacher = FrozenTeacher(teacher_backbone, MLPHead(teacher_dim, 128))
    student = EmbeddingNet(student_backbone, MLPHead(student_dim, 128))
    method = SEED(student, teacher, embed_dim=128, queue_size=args.queue_size).to(device)
    if device.type == "cuda":
        method.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(method.student.parameters(), lr=0.01, momentum=0.9)
    return method, optimizer


def step_fn(method, optimizer, images, full_seed: bool, amp: bool):
    with torch.autocast(images.device.type, dtype=torch.float16, enabled=amp):
        if full_seed:
            loss, _ = method([images])
        else:  # same passes, trivial loss
            student_emb, teacher_emb = method.student(images), method.teacher(images)
            loss = F.mse_loss(student_emb.float(), teacher_emb)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed(fn, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    tic = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - tic


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default="resnet18")
    parser.add_argument("--teacher", default="resnet50")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--queue-size", type=int, default=65536)
    parser.add_argument("--steps", type=int, default=30, help="timed steps of each kind (alternating)")
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = device.type == "cuda"
    torch.manual_seed(0)
    method, optimizer = build(args, device)
    method.train()
    images = torch.randn(args.batch, 3, args.image_size, args.image_size, device=device)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    for _ in range(args.warmup):
        step_fn(method, optimizer, images, False, amp)
        step_fn(method, optimizer, images, True, amp)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    base, seed, ratios = [], [], []
    for _ in range(args.steps):
        base.append(timed(lambda: step_fn(method, optimizer, images, False, amp), device))
        seed.append(timed(lambda: step_fn(method, optimizer, images, True, amp), device))
        ratios.append(seed[-1] / base[-1])
    print(
        f"device {device}, student {args.student}, teacher {args.teacher}, batch {args.batch}, "
        f"{args.image_size}px, K={args.queue_size}, AMP {amp}, {args.steps} steps each"
    )
    print(f"(a) teacher fwd + student fwd/bwd, trivial loss: median {statistics.median(base) * 1e3:.1f} ms/step")
    print(f"(b) full SEED step:                             median {statistics.median(seed) * 1e3:.1f} ms/step")
    print(
        f"overhead (b)/(a): median of paired ratios {statistics.median(ratios):.4f} "
        f"({(statistics.median(ratios) - 1) * 100:+.2f}%)"
    )
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    else:
        import resource

        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
