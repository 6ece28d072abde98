"""The supervised training loop shared by the linear probe and semi-supervised fine-tuning:
SGD with a per-step schedule, AMP on CUDA, DDP through ``torchrun``, validation top-1/top-5,
``metrics.csv``, tqdm progress, and atomic checkpoints with exact resume, on the training runtime
every loop shares (:mod:`seed_core.runtime`).

Exact resume (as in :mod:`distill.trainer`): the checkpoint (:mod:`seed_core.runtime.train_state`) holds
the trained weights, optimizer, AMP scaler, step, evaluation history and RNG states, and the
config values that must match (``TrainJob.resume_key``); the schedule is a function of the step; data
order and augmentation are functions of (seed, epoch, index) (:class:`distill.data.ResumableSampler`).
The loader has its own generator, so starting a loader never draws from the global RNG (which
dropout in fine-tuned networks uses).
"""

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Subset

from distill.data import ResumableSampler
from distill.schedule import warmup_cosine
from seed_core import distributed as du
from seed_core.config import ConfigError
from seed_core.metrics_log import MetricsLog
from seed_core.runtime import (
    CallbackHook,
    ProgressBar,
    TrainLoop,
    optimizer_step,
    read_training_state,
    restore_training_state,
    resumable_batches,
    save_training_state,
    start_training,
)

from .schema import EvalOptimConfig, EvalTrainConfig

log = logging.getLogger(__name__)


@dataclass
class TrainJob:
    """What to train: ``model`` maps a batch to N x C logits; ``trained`` is the part whose state is
    checkpointed (the classifier of a probe, the whole network when fine-tuning); ``param_groups``
    are optimizer groups, each with an ``lr_scale`` relative to the scheduled lr."""

    model: nn.Module
    trained: nn.Module
    param_groups: list[dict]
    train_set: Dataset  # [(index, sample_seed)] -> (input, target)
    val_set: Dataset  # [i] -> (input, target)
    resume_key: dict = field(default_factory=dict)  # config values that must match to resume


def lr_schedule(cfg: EvalOptimConfig, steps_per_epoch: int) -> list[float]:
    """Per-step lr: ``base_lr * batch/256``, then x0.1 at each milestone epoch (MoCo) or cosine to 0."""
    peak = cfg.base_lr * cfg.batch_size / 256
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        return warmup_cosine(peak, total, round(cfg.warmup_epochs * steps_per_epoch))
    return [peak * 0.1 ** sum(step >= m * steps_per_epoch for m in cfg.milestones) for step in range(total)]


def topk_correct(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> list[int]:
    """Number of rows whose label is among the k highest logits, for each k (clamped to C)."""
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices  # N x k
    hits = top == labels[:, None]
    return [int(hits[:, :k].any(dim=1).sum()) for k in ks]


@torch.no_grad()
def evaluate(
    model: nn.Module, dataset: Dataset, batch_size: int, num_workers: int, device: torch.device, amp: bool
) -> dict:
    """Top-1/top-5 (percent) over ``dataset``; under DDP each rank scores every world-th image
    (no padding, no duplicates) and the counts are summed."""
    was_training = model.training
    model.eval()
    shard = Subset(dataset, range(du.rank(), len(dataset), du.world_size()))
    loader = DataLoader(shard, batch_size=batch_size, num_workers=num_workers, pin_memory=device.type == "cuda")
    counts = torch.zeros(3, dtype=torch.float64)  # top-1 hits, top-5 hits, images
    for inputs, labels in loader:
        inputs, labels = inputs.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            logits = model(inputs)
        counts += torch.tensor([*topk_correct(logits.float(), labels), len(labels)], dtype=torch.float64)
    if du.is_distributed():
        counts = counts.to(device)
        dist.all_reduce(counts)
    model.train(was_training)
    top1, top5, n = counts.tolist()
    if n == 0:
        raise ValueError("the validation set holds no images")
    return {"top1": 100 * top1 / n, "top5": 100 * top5 / n, "images": int(n)}


def read_resumable(path: Path, resume_key: dict) -> dict:
    """The training state at ``path``, once its ``resume_key`` is this run's: a ConfigError names
    every value that changed."""
    state = read_training_state(path)
    saved = state["fingerprint"]
    changed = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in resume_key.items() if saved.get(k) != v]
    if changed:
        raise ConfigError(
            f"cannot resume {path}: the config changed ({'; '.join(changed)}); "
            "use a new train.output_dir for a different run"
        )
    return state


def fit(
    job: TrainJob,
    optim: EvalOptimConfig,
    train: EvalTrainConfig,
    num_workers: int,
    resume: bool = False,
    desc: str = "train",
) -> dict:
    """Train ``job`` and return {"final": {...}, "best": {...}, "evals": [...], "steps", "seconds"}.

    Validation runs every ``train.eval_every`` epochs and after the last step; with ``max_steps``
    the run stops early (and is continued with ``resume=True``).
    """
    out = Path(train.output_dir)
    setup = start_training(out, amp=train.amp, resume=resume)
    device, scaler, on_cuda = setup.device, setup.scaler, setup.on_cuda
    world, is_main = du.world_size(), setup.is_main
    if optim.batch_size % world:
        raise ConfigError(f"optim.batch_size={optim.batch_size} is not divisible by the {world} processes")
    torch.manual_seed(train.seed + du.rank())  # dropout in fine-tuned networks; restored on resume
    job.model.to(device)

    per_rank = optim.batch_size // world
    try:
        sampler = ResumableSampler(len(job.train_set), per_rank, train.seed, du.rank(), world, drop_last=False)
    except ValueError as err:
        raise ConfigError(f"{err}: lower optim.batch_size") from None
    loader = DataLoader(
        job.train_set,
        batch_size=per_rank,
        sampler=sampler,
        num_workers=num_workers,
        pin_memory=on_cuda,
        drop_last=True,
        persistent_workers=num_workers > 0,
        generator=torch.Generator().manual_seed(train.seed),
    )
    steps_per_epoch = sampler.steps_per_epoch()
    total_steps = optim.epochs * steps_per_epoch
    lrs = lr_schedule(optim, steps_per_epoch)
    optimizer = torch.optim.SGD(
        job.param_groups, lr=lrs[0], momentum=optim.momentum, nesterov=optim.nesterov, weight_decay=optim.weight_decay
    )

    step, evals = 0, []
    ckpt = setup.read_checkpoint(lambda path: read_resumable(path, job.resume_key))
    if ckpt is not None:
        job.trained.load_state_dict(ckpt["model"])
        step, evals = restore_training_state(ckpt, optimizer, scaler), ckpt["evals"]
        log.info("resumed from %s at step %d", setup.checkpoint_path, step)

    def save(path: Path, step: int) -> None:
        save_training_state(
            path,
            step=step,
            model=job.trained.state_dict(),
            optimizer=optimizer,
            scaler=scaler,
            fingerprint=job.resume_key,
            evals=evals,
        )

    def validate(step: int) -> dict:
        result = evaluate(job.model, job.val_set, train.eval_batch_size, num_workers, device, scaler is not None)
        evals.append({"step": step, "epoch": step / steps_per_epoch, **result})
        log.info(
            "%s step %d (epoch %.2f): val top-1 %.2f, top-5 %.2f",
            desc,
            step,
            step / steps_per_epoch,
            result["top1"],
            result["top5"],
        )
        return result

    model = setup.wrap(job.model)
    stop_step = min(total_steps, train.max_steps or total_steps)

    def run_step(step: int, batch) -> torch.Tensor:
        for group in optimizer.param_groups:
            group["lr"] = lrs[step] * group["lr_scale"]
        inputs, labels = (t.to(device, non_blocking=True) for t in batch)
        with torch.autocast(device.type, dtype=torch.float16, enabled=scaler is not None):
            logits = model(inputs)
            loss = F.cross_entropy(logits.float(), labels)
        optimizer_step(
            loss,
            optimizer,
            scaler,
            nonfinite=lambda value: (
                f"loss is {value} at step {step}; stopped ({setup.nonfinite_note()}). Try a lower optim.base_lr."
            ),
        )
        return loss.detach()

    # The rows an interrupted run logged after its checkpoint are logged again from here.
    metrics = MetricsLog(out, train.tensorboard, resume_step=step) if is_main else None
    progress = ProgressBar(desc, dynamic_ncols=True)
    tic, seconds = time.perf_counter(), time.perf_counter()

    def evaluate_and_log(loop: TrainLoop) -> None:
        """Validate every ``train.eval_every`` epochs and at the last step; log those steps and
        every ``train.log_every``-th."""
        nonlocal tic
        step = loop.step
        val = None
        if step == stop_step or (step % steps_per_epoch == 0 and (step // steps_per_epoch) % train.eval_every == 0):
            val = validate(step)
        if step % train.log_every == 0 or val is not None:
            loss_value = loop.outputs.clone()
            if du.is_distributed():
                dist.all_reduce(loss_value)
                loss_value /= world
            elapsed, tic = time.perf_counter() - tic, time.perf_counter()
            row = {
                "loss": loss_value.item(),
                "lr": lrs[step - 1],
                "epoch": step / steps_per_epoch,
                "val_top1": val["top1"] if val else float("nan"),
                "val_top5": val["top5"] if val else float("nan"),
                "seconds": elapsed,
            }
            progress.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.4g}")
            if metrics is not None:
                metrics.log(step, row)

    hooks = [
        progress,
        CallbackHook(after_step=evaluate_and_log),
        setup.checkpoint_hook(save, train.checkpoint_every, also=lambda done: done % steps_per_epoch == 0),
    ]
    job.model.train()
    loop = TrainLoop(run_step, hooks, start=step, stop=stop_step)
    step = setup.run(loop, resumable_batches(loader, sampler, step, steps_per_epoch))
    if metrics is not None:
        metrics.close()
    if not evals or evals[-1]["step"] != step:  # resumed at the end, or nothing to train
        validate(step)
    du.barrier()
    best = max(evals, key=lambda e: e["top1"])
    return {
        "final": evals[-1],
        "best": best,
        "evals": evals,
        "steps": step,
        "total_steps": total_steps,
        "finished": step >= total_steps,
        "seconds": round(time.perf_counter() - seconds, 3),
    }
