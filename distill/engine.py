"""The distillation training loop: SGD with warm-up + cosine, AMP, DDP, atomic
checkpoints and exact resume. One code path for CPU, one GPU and ``torchrun``.

Exact resume rests on three things: the checkpoint holds every piece of state
(student, heads, queues and pointers, momentum encoder, optimizer, AMP scaler,
step, RNG states); the lr schedule is a function of the step; and augmentations
are seeded per (seed, epoch, sample), so data order and views do not depend on
where a run was interrupted (see :mod:`distill.data`).
"""

import logging
import random
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from . import distributed as du
from .builder import build_method
from .checkpoints import safe_load
from .config import ConfigError, dump_config, resolve_path, to_dict
from .data import ResumableSampler, SeededViews, build_loader, build_source_dataset, mocov2_transform
from .export import atomic_save, export_student
from .metrics_log import MetricsLog
from .run_info import write_run_info
from .schedule import warmup_cosine
from .schema import DistillConfig

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pth"
STUDENT_NAME = "student.pth"
# Config sections that must match for a resumed run to continue the same training.
RESUME_MUST_MATCH = ("student", "distill", "optim")


def _training_state(method: nn.Module) -> dict[str, torch.Tensor]:
    """Everything but the frozen teacher, which is reloaded from its own checkpoint."""
    return {k: v for k, v in method.state_dict().items() if not k.startswith("teacher.")}


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: Path, cfg: DistillConfig, method, optimizer, scaler, step: int) -> None:
    atomic_save({
        "step": step,
        "model": _training_state(method),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_state(),
        "config": to_dict(cfg),
    }, path)


def load_checkpoint(path: Path, cfg: DistillConfig, method, optimizer, scaler) -> int:
    """Restore a run saved by :func:`save_checkpoint`; returns the step to continue from."""
    ckpt = safe_load(path)
    saved, current = ckpt["config"], to_dict(cfg)
    changed = [f"{section}.{key}: {saved[section][key]!r} -> {value!r}"
               for section in RESUME_MUST_MATCH for key, value in current[section].items()
               if saved[section].get(key) != value]
    if changed:
        raise ConfigError(f"cannot resume {path}: the config changed ({'; '.join(changed)}); "
                          f"use a new train.output_dir for a different run")
    missing, unexpected = method.load_state_dict(ckpt["model"], strict=False)
    missing = [k for k in missing if not k.startswith("teacher.")]
    if missing or unexpected:
        raise ConfigError(f"checkpoint {path} does not match the model: missing {missing}, unexpected {unexpected}")
    optimizer.load_state_dict(ckpt["optimizer"])
    if scaler is not None and ckpt["scaler"] is not None:
        scaler.load_state_dict(ckpt["scaler"])
    set_rng_state(ckpt["rng"])
    return ckpt["step"]


def backward_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scaler) -> None:
    """zero_grad, backward and step; through the AMP grad scaler when there is one (CUDA)."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        optimizer.step()


def all_finite(loss: torch.Tensor) -> bool:
    finite = torch.isfinite(loss.detach()).float()
    if du.is_distributed():
        dist.all_reduce(finite, op=dist.ReduceOp.MIN)
    return bool(finite.item())


def _mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, float]:
    stacked = torch.stack([v.float() for v in values.values()])
    if du.is_distributed():
        dist.all_reduce(stacked)
        stacked /= du.world_size()
    return dict(zip(values, stacked.tolist()))


def train(cfg: DistillConfig, resume: bool = False, method: nn.Module | None = None,
          source: torch.utils.data.Dataset | None = None) -> Path:
    """Run (or continue) the distillation of ``cfg``; returns the exported student's path.

    ``method`` and ``source`` replace the ones ``cfg`` describes (tests, custom data).
    """
    device = du.init_from_env()
    world, is_main = du.world_size(), du.is_main_process()
    if cfg.optim.batch_size % world:
        raise ConfigError(f"optim.batch_size={cfg.optim.batch_size} is not divisible by the {world} processes")
    out = Path(cfg.train.output_dir)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / "config.yaml")
        write_run_info(out, {"world_size": world, "device": str(device)})

    torch.manual_seed(cfg.train.seed)  # identical initialisation (queues included) on every rank
    method = method if method is not None else build_method(cfg)
    if cfg.train.sync_bn and du.is_distributed():
        if device.type != "cuda":
            raise ConfigError("train.sync_bn=true needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel)")
        method.student = nn.SyncBatchNorm.convert_sync_batchnorm(method.student)
    on_cuda = device.type == "cuda"
    method.to(device)
    if on_cuda and cfg.train.channels_last:
        method.to(memory_format=torch.channels_last)

    if source is None:
        demo_kwargs = {"length": cfg.data.demo_length} if cfg.data.source == "demo" else {}
        source = build_source_dataset(cfg.data.source, resolve_path(cfg.data.root), resolve_path(cfg.data.file_list),
                                      **demo_kwargs)
    per_rank = cfg.optim.batch_size // world
    sampler = ResumableSampler(len(source), per_rank, cfg.train.seed, du.rank(), world)
    views = SeededViews(source, mocov2_transform(cfg.data.image_size), num_views=method.num_views)
    loader = build_loader(views, sampler, per_rank, cfg.data.num_workers, pin_memory=on_cuda)
    steps_per_epoch = sampler.steps_per_epoch()
    total_steps = cfg.optim.epochs * steps_per_epoch
    lrs = warmup_cosine(cfg.optim.base_lr * cfg.optim.batch_size / 256, total_steps,
                        round(cfg.optim.warmup_epochs * steps_per_epoch))

    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=lrs[0],
                                momentum=cfg.optim.momentum, weight_decay=cfg.optim.weight_decay)
    # One AMP path: the scaler is None when AMP is off (always on the CPU).
    scaler = torch.amp.GradScaler("cuda") if on_cuda and cfg.train.amp else None

    ckpt_path, step = out / CHECKPOINT_NAME, 0
    if resume and ckpt_path.exists():
        step = load_checkpoint(ckpt_path, cfg, method, optimizer, scaler)
        log.info("resumed from %s at step %d", ckpt_path, step)
    elif resume:
        log.info("no checkpoint at %s: starting from scratch", ckpt_path)
    model = method
    if du.is_distributed():
        # No buffer broadcast each step: the queues are identical on every rank by
        # construction (same seed, all-gathered updates) and BN statistics stay per rank.
        model = DistributedDataParallel(method, device_ids=[device.index] if on_cuda else None,
                                        forward_sync_buffers=False)

    stop_step = min(total_steps, cfg.train.max_steps or total_steps)
    metrics = MetricsLog(out, cfg.train.tensorboard) if is_main else None
    progress = tqdm(total=stop_step, initial=step, disable=not is_main, desc=f"distill {cfg.distill.strategy}",
                    dynamic_ncols=True)
    method.train()
    tic = time.perf_counter()
    while step < stop_step:
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        sampler.set_position(epoch, step_in_epoch)
        for batch in loader:
            for group in optimizer.param_groups:
                group["lr"] = lrs[step]
            images = [v.to(device, non_blocking=True) for v in batch]
            if on_cuda and cfg.train.channels_last:
                images = [v.contiguous(memory_format=torch.channels_last) for v in images]
            with torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None):
                loss, parts = model(images)
            if not all_finite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at step {step} (epoch {epoch}); stopped. The last good checkpoint "
                    f"is {ckpt_path}. Try a lower optim.base_lr, check teacher.weights, or a larger distill.tau_teacher.")
            backward_step(loss, optimizer, scaler)
            step += 1
            progress.update(1)
            if step % cfg.train.log_every == 0 or step == stop_step:
                scalars = _mean_over_ranks({"loss": loss.detach(), **parts})
                elapsed, tic = time.perf_counter() - tic, time.perf_counter()
                scalars.update(lr=lrs[step - 1], epoch=step / steps_per_epoch,
                               images_per_sec=cfg.train.log_every * cfg.optim.batch_size / max(elapsed, 1e-9))
                progress.set_postfix(loss=f"{scalars['loss']:.4f}", lr=f"{scalars['lr']:.4g}")
                if metrics is not None:
                    metrics.log(step, scalars)
            if is_main and (step % cfg.train.checkpoint_every == 0 or step == stop_step):
                save_checkpoint(ckpt_path, cfg, method, optimizer, scaler, step)
            if step >= stop_step:
                break
    progress.close()
    student_path = out / STUDENT_NAME
    if is_main:
        if metrics is not None:
            metrics.close()
        export_student(method.student.backbone, cfg.student.arch, student_path, meta={
            "strategy": cfg.distill.strategy, "step": step, "total_steps": total_steps,
            "teacher": {"arch": cfg.teacher.arch, "weights": cfg.teacher.weights} if cfg.distill.strategy != "moco" else None,
            "config": to_dict(cfg)})
        log.info("student written to %s", student_path)
    du.barrier()
    return student_path
