"""The distillation training loop: SGD with warm-up + cosine, AMP, DDP, atomic
checkpoints and exact resume. One code path for CPU, one GPU and ``torchrun``, on the
training runtime every loop shares (:mod:`seed_core.runtime`: step loop and hooks, checkpoint
format, AMP/NaN-safe step).

Exact resume rests on three things: the checkpoint holds every piece of state
(student, heads, queues and pointers, momentum encoder, optimizer, AMP scaler,
step, RNG states); the lr schedule is a function of the step; and augmentations
are seeded per (seed, epoch, sample), so data order and views do not depend on
where a run was interrupted (see :mod:`distill.data`). A resumed run must also be the
same training: the checkpoint's fingerprint of every setting that alters it (teacher
file by content, data as measured, ...) must match the new run's (:mod:`distill.resume`),
and the output folder's ``config.yaml`` and ``run_info.json`` are written only once that,
the data and the method have passed, so a start that fails leaves them as they were.

Bad images (empty, not images, truncated, oversized) do not end a run: they are skipped, each
replaced by the next readable one, named in the log, ``run_info.json`` and the checkpoint, up to
``data.max_bad_images`` (:mod:`seed_core.bad_images`).

With ``teacher.cache_dir`` the teacher's embeddings go through a teacher cache
(:mod:`distill.teacher_cache`): read where written, computed and written elsewhere;
:func:`precompute_teacher` (``tools/distill.py --teacher-only``) fills it ahead.
"""

import logging
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from seed_core import distributed as du
from seed_core.bad_images import BadImages, open_skipping_bad_images
from seed_core.config import ConfigError, dump_config, resolve_path, to_dict
from seed_core.errors import CheckpointError, DataError
from seed_core.metrics_log import MetricsLog
from seed_core.run_info import update_run_info, write_run_info
from seed_core.runtime import (
    CHECKPOINT_NAME,
    CallbackHook,
    ProgressBar,
    TrainLoop,
    all_ranks,
    optimizer_step,
    read_training_state,
    restore_training_state,
    resumable_batches,
    run_folder,
    save_training_state,
    start_training,
)
from seed_core.runtime.precision import Precision

from .builder import build_method, build_teacher
from .data import (
    ResumableSampler,
    SeededViews,
    build_loader,
    build_source_dataset,
    draft_short_side,
    mocov2_transform,
)
from .export import export_student
from .resume import RESUME_FREE, check_resumable, training_fingerprint
from .schedule import warmup_cosine
from .schema import NEEDS_TEACHER, DistillConfig, run_precision
from .teacher_cache import CachedTeacher, TeacherCache, teacher_output, training_sampler

log = logging.getLogger(__name__)

STUDENT_NAME = "student.pth"
CONFIG_NAME = "config.yaml"  # the resolved config, written when a run starts (read by the pipelines' stale rule)


def _training_state(method: nn.Module) -> dict[str, torch.Tensor]:
    """Everything but the frozen teacher, which is reloaded from its own checkpoint."""
    return {k: v for k, v in method.state_dict().items() if not k.startswith("teacher.")}


def save_distill_state(
    path: Path,
    cfg: DistillConfig,
    method,
    optimizer,
    scaler,
    step: int,
    fingerprint: dict,
    bad_images: list[dict] | None = None,
) -> None:
    """Everything a resumed run continues from (:mod:`seed_core.runtime.train_state`), with the config
    and the fingerprint it must match (:mod:`distill.resume`), and the bad images met so far
    (:meth:`seed_core.bad_images.BadImages.state`)."""
    save_training_state(
        path,
        step=step,
        model=_training_state(method),
        optimizer=optimizer,
        scaler=scaler,
        fingerprint=fingerprint,
        config=to_dict(cfg),
        bad_images=bad_images or [],
    )


def read_distill_state(path: Path, cfg: DistillConfig, fingerprint: dict) -> dict:
    """The training state of :func:`save_distill_state` at ``path``, once it is known to continue this
    run: a ConfigError names every setting that alters the training and changed since."""
    checkpoint = read_training_state(path)
    check_resumable(path, checkpoint, fingerprint, cfg)
    return checkpoint


def _teacher_changes(saved_config: dict, cfg: DistillConfig) -> list[str]:
    saved, current = saved_config.get("teacher", {}), to_dict(cfg)["teacher"]
    return [
        f"teacher.{key}: {saved[key]!r} -> {value!r}"
        for key, value in current.items()
        if f"teacher.{key}" not in RESUME_FREE and key in saved and saved[key] != value
    ]


def _teacher_sized(model: dict) -> set[str]:
    """The tensors whose shape the teacher's embedding size decides: the queue and the head's output
    layer (the backbone and the head's hidden layers follow student.arch, which the fingerprint checks)."""
    head = [key for key in model if key.startswith("student.head.") and key.endswith(".weight")]
    return {"queue.embeddings", *([head[-1], head[-1].removesuffix("weight") + "bias"] if head else [])}


def _check_shapes(path: Path, checkpoint: dict, method: nn.Module, cfg: DistillConfig) -> None:
    """Tensors of another shape in the checkpoint, named before load_state_dict would fail: a queue or
    head output of another size means a teacher of another embedding size (say which setting changed);
    any other tensor means a file that does not hold this run's model (edited, or of another model)."""
    model = method.state_dict()
    keys = [key for key, saved in checkpoint["model"].items() if key in model and saved.shape != model[key].shape]
    if not keys:
        return

    def shapes(key: str) -> str:
        there, here = (" x ".join(map(str, tensors[key].shape)) for tensors in (checkpoint["model"], model))
        return f"{key} is {there} there and {here} here"

    other = [key for key in keys if key not in _teacher_sized(model)]
    if other:
        raise CheckpointError(
            f"cannot resume {path}: its tensor {shapes(other[0])}"
            + (f" ({len(other) - 1} more tensors differ)" if len(other) > 1 else "")
            + ": the file does not hold this run's model (edited by hand, or written for another model); "
            "start over with --overwrite, or in another train.output_dir"
        )
    mismatched = [shapes(key) for key in sorted(keys, key=lambda key: "queue" not in key)]  # the queue says it best
    changes = "; ".join(_teacher_changes(checkpoint["config"], cfg)) or (
        f"no teacher setting changed, so the content of teacher.weights={cfg.teacher.weights} did"
    )
    raise ConfigError(
        f"cannot resume {path}: the teacher's embedding size changed ({'; '.join(mismatched[:2])}): "
        f"{changes}. Resume with the teacher the run started with, or start a new run in another "
        f"train.output_dir"
    )


def restore_distill_state(path: Path, checkpoint: dict, cfg: DistillConfig, method, optimizer, scaler) -> int:
    """Restore the state of :func:`read_distill_state`'s ``checkpoint``; returns the step to continue from."""
    _check_shapes(path, checkpoint, method, cfg)
    missing, unexpected = method.load_state_dict(checkpoint["model"], strict=False)
    missing = [k for k in missing if not k.startswith("teacher.")]
    if missing or unexpected:
        raise ConfigError(f"checkpoint {path} does not match the model: missing {missing}, unexpected {unexpected}")
    return restore_training_state(checkpoint, optimizer, scaler)


def _mean_over_ranks(values: dict[str, torch.Tensor]) -> dict[str, float]:
    stacked = torch.stack([v.float() for v in values.values()])
    if du.is_distributed():
        dist.all_reduce(stacked)
        stacked /= du.world_size()
    return dict(zip(values, stacked.tolist()))


def build_source(cfg: DistillConfig) -> torch.utils.data.Dataset:
    """The image source that ``cfg.data`` describes."""
    d = cfg.data
    kwargs = {"length": d.demo_length} if d.source == "demo" else {}
    if d.jpeg_draft and d.source in ("imagefolder", "filelist"):
        kwargs["min_short_side"] = draft_short_side(d.image_size, d.crop_scale_min)
    return build_source_dataset(d.source, resolve_path(d.root), resolve_path(d.file_list), **kwargs)


def data_name(cfg: DistillConfig) -> str:
    """The data in messages: ``data.root=/data/train``, ``data.file_list=...`` or ``data.source=demo``."""
    if cfg.data.root:
        return f"data.root={cfg.data.root}"
    return f"data.file_list={cfg.data.file_list}" if cfg.data.file_list else f"data.source={cfg.data.source}"


def require_one_batch(cfg: DistillConfig, source: torch.utils.data.Dataset) -> None:
    """A DataError, naming the data and the batch, when ``source`` cannot fill one global batch."""
    if len(source) < cfg.optim.batch_size:
        raise DataError(
            f"{data_name(cfg)} holds {len(source)} images, fewer than one batch (optim.batch_size="
            f"{cfg.optim.batch_size}): lower optim.batch_size or add images"
        )


def view_transform(cfg: DistillConfig):
    """The augmentation of every view: MoCo v2's, with the crop scale and blur of ``cfg.data``."""
    return mocov2_transform(cfg.data.image_size, crop_scale_min=cfg.data.crop_scale_min, blur=cfg.data.blur)


def per_rank_batch(cfg: DistillConfig) -> int:
    world = du.world_size()
    if cfg.optim.batch_size % world:
        raise ConfigError(f"optim.batch_size={cfg.optim.batch_size} is not divisible by the {world} processes")
    return cfg.optim.batch_size // world


def schedule_steps(cfg: DistillConfig, sampler: ResumableSampler) -> tuple[int, int]:
    """(steps of the whole schedule, the step this run stops at: ``train.max_steps`` or the end)."""
    total_steps = cfg.optim.epochs * sampler.steps_per_epoch()
    return total_steps, min(total_steps, cfg.train.max_steps or total_steps)


def open_teacher_cache(cfg: DistillConfig, source, device: torch.device) -> TeacherCache | None:
    """The run's teacher cache; None when ``teacher.cache_dir`` is unset or the strategy has no teacher."""
    if cfg.teacher.cache_dir is None:
        return None
    if cfg.distill.strategy not in NEEDS_TEACHER:
        log.info("teacher.cache_dir is ignored: distill.strategy=%s has no teacher", cfg.distill.strategy)
        return None
    return TeacherCache.for_run(cfg, source, device)


def prepare_cache_writes(
    cache: TeacherCache, teacher: nn.Module, cfg: DistillConfig, device: torch.device, precision: Precision, epochs: int
) -> None:
    """Record what the teacher produces in the cache's metadata, log the size, check the disk."""
    embed_dim, dtype = teacher_output(teacher, cfg.data.image_size, device, precision)
    cache.create(embed_dim, dtype)
    cache.check_disk(epochs, cfg.teacher.cache_dir)


def count_bad_images(
    bad_images: BadImages,
    indices: torch.Tensor,
    read_indices: torch.Tensor,
    step: int | None,
    out: Path | None,
    share: bool = True,
) -> None:
    """Record the bad images a batch passed over (``share``: as every rank's batch did), in
    ``out``'s run_info.json too; a DataError once there are more than data.max_bad_images allows."""
    if bad_images.note(indices, read_indices, step, share=share) and out is not None:
        update_run_info(out, {"bad_images": bad_images.summary()})
    bad_images.check()


RUN_FILES = (CHECKPOINT_NAME, STUDENT_NAME, CONFIG_NAME, "metrics.csv", "run_info.json")  # what --overwrite removes


def train(
    cfg: DistillConfig,
    resume: bool = False,
    method: nn.Module | None = None,
    source: torch.utils.data.Dataset | None = None,
    overwrite: bool = False,
) -> Path:
    """Run (or continue) the distillation of ``cfg``; returns the exported student's path.

    ``method`` and ``source`` replace the ones ``cfg`` describes (tests, custom data). With
    ``teacher.cache_dir``, a run whose every step is in the teacher cache builds no teacher.
    The output folder must be writable, is locked while the run writes it (a second process on it
    stops), and a run already there is continued (``resume``) or started over (``overwrite``:
    :data:`RUN_FILES` removed) only when asked (:func:`seed_core.runtime.run_folder`).
    """
    with run_folder(
        cfg.train.output_dir,
        "distillation",
        resume=resume,
        overwrite=overwrite,
        holds=(CHECKPOINT_NAME, STUDENT_NAME),
        removes=RUN_FILES,
        folder_key="train.output_dir",
    ):
        return _train(cfg, resume, method, source)


def _train(
    cfg: DistillConfig,
    resume: bool,
    method: nn.Module | None,
    source: torch.utils.data.Dataset | None,
) -> Path:
    out = Path(cfg.train.output_dir)
    device = du.init_from_env()
    precision = run_precision(cfg, device)
    setup = start_training(
        out, amp=precision.needs_scaler, resume=resume, device=device, temporaries=[out / STUDENT_NAME]
    )
    device, scaler, ckpt_path = setup.device, setup.scaler, setup.checkpoint_path
    world, is_main = du.world_size(), setup.is_main
    per_rank = per_rank_batch(cfg)
    on_cuda = setup.on_cuda

    source = source if source is not None else build_source(cfg)
    require_one_batch(cfg, source)
    source, bad_images = open_skipping_bad_images(source, cfg.data.max_bad_images, data_name(cfg))
    fingerprint = training_fingerprint(cfg, source)
    checkpoint = setup.read_checkpoint(lambda path: read_distill_state(path, cfg, fingerprint))
    sampler = training_sampler(cfg, len(source), per_rank, du.rank(), world)  # teacher.cache_views: bounded views
    steps_per_epoch = sampler.steps_per_epoch()
    total_steps, stop_step = schedule_steps(cfg, sampler)
    cache = open_teacher_cache(cfg, source, device)
    cache_is_new = cache is not None and cache.meta is None
    cache_complete = cache is not None and all_ranks(
        cache.covers(sampler, checkpoint["step"] if checkpoint else 0, stop_step), device
    )

    torch.manual_seed(cfg.train.seed)  # identical initialisation (queues included) on every rank
    if method is None:
        method = build_method(cfg, cached_embed_dim=cache.embed_dim if cache_complete else None)
    if cfg.train.sync_bn and du.is_distributed():
        if device.type != "cuda":
            raise ConfigError("train.sync_bn=true needs CUDA (PyTorch's SyncBatchNorm has no CPU kernel)")
        method.student = nn.SyncBatchNorm.convert_sync_batchnorm(method.student)
    method.to(device)
    if precision.channels_last:
        method.to(memory_format=torch.channels_last)
    teacher_feed = None
    if cache is not None:
        teacher_feed = CachedTeacher(cache, method.teacher)
        if not cache_complete:
            prepare_cache_writes(cache, method.teacher, cfg, device, precision, epochs=-(-stop_step // steps_per_epoch))
        log.info(
            "teacher cache %s: %s",
            cache.folder,
            "read (every step of this run is cached: the teacher is not run)"
            if cache_complete
            else "written (a new cache)"
            if cache_is_new
            else "completed (partial: cached batches are read, the others computed and written)",
        )

    views = SeededViews(source, view_transform(cfg), num_views=method.num_views, with_index=True)
    loader = build_loader(views, sampler, per_rank, cfg.data.num_workers, pin_memory=on_cuda)
    lrs = warmup_cosine(
        cfg.optim.base_lr * cfg.optim.batch_size / 256, total_steps, round(cfg.optim.warmup_epochs * steps_per_epoch)
    )

    optimizer = torch.optim.SGD(
        [p for p in method.parameters() if p.requires_grad],
        lr=lrs[0],
        momentum=cfg.optim.momentum,
        weight_decay=cfg.optim.weight_decay,
    )

    step = 0
    if checkpoint is not None:
        step = restore_distill_state(ckpt_path, checkpoint, cfg, method, optimizer, scaler)
        bad_images.restore(checkpoint.get("bad_images", []))
        bad_images.check()  # data.max_bad_images may have been lowered since
        del checkpoint  # its copy of the optimizer state is no longer needed
        log.info("resumed from %s at step %d", ckpt_path, step)
    if is_main:  # the run has started (method built, data open, resume checked): record what it is
        out.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, out / CONFIG_NAME)
        write_run_info(
            out,
            {
                "world_size": world,
                "device": str(device),
                "precision": precision.describe(),
                "bad_images": bad_images.summary(),
            },
        )
    # No buffer broadcast each step: the queues are identical on every rank by
    # construction (same seed, all-gathered updates) and BN statistics stay per rank.
    model = setup.wrap(method, forward_sync_buffers=False)

    def run_step(step: int, batch) -> tuple[torch.Tensor, dict]:
        (views, indices, read_indices), epoch = batch, step // steps_per_epoch
        count_bad_images(bad_images, indices, read_indices, step, out if is_main else None)
        for group in optimizer.param_groups:
            group["lr"] = lrs[step]
        images = [precision.layout(v.to(device, non_blocking=True)) for v in views]
        with precision.autocast():
            teacher_emb = teacher_feed(epoch, indices, images[0]) if teacher_feed is not None else None
            loss, parts = model(images, teacher_emb=teacher_emb)
        optimizer_step(
            loss,
            optimizer,
            scaler,
            nonfinite=lambda value: (
                f"loss is {value} at step {step} (epoch {epoch}); stopped; {setup.nonfinite_note()}. "
                "Try a lower optim.base_lr, check teacher.weights, or a larger distill.tau_teacher."
            ),
        )
        return loss.detach(), parts

    # The rows an interrupted run logged after its checkpoint are logged again from here.
    metrics = MetricsLog(out, cfg.train.tensorboard, resume_step=step) if is_main else None
    progress = ProgressBar(f"distill {cfg.distill.strategy}", dynamic_ncols=True)
    tic = time.perf_counter()

    def log_scalars(loop: TrainLoop) -> None:
        nonlocal tic
        if loop.step % cfg.train.log_every and loop.step != stop_step:
            return
        loss, parts = loop.outputs
        scalars = _mean_over_ranks({"loss": loss, **parts})
        elapsed, tic = time.perf_counter() - tic, time.perf_counter()
        scalars.update(
            lr=lrs[loop.step - 1],
            epoch=loop.step / steps_per_epoch,
            images_per_sec=cfg.train.log_every * cfg.optim.batch_size / max(elapsed, 1e-9),
        )
        progress.set_postfix(loss=f"{scalars['loss']:.4f}", lr=f"{scalars['lr']:.4g}")
        if metrics is not None:
            metrics.log(loop.step, scalars)

    hooks = [
        progress,
        CallbackHook(after_step=log_scalars),
        setup.checkpoint_hook(
            lambda path, done: save_distill_state(
                path, cfg, method, optimizer, scaler, done, fingerprint, bad_images.state()
            ),
            cfg.train.checkpoint_every,
        ),
    ]
    method.train()
    loop = TrainLoop(run_step, hooks, start=step, stop=stop_step)
    step = setup.run(loop, resumable_batches(loader, sampler, step, steps_per_epoch))
    if cache is not None:
        cache.close()
    student_path = out / STUDENT_NAME
    if is_main:
        if metrics is not None:
            metrics.close()
        export_student(
            method.student.backbone,
            cfg.student.arch,
            student_path,
            meta={
                "strategy": cfg.distill.strategy,
                "step": step,
                "total_steps": total_steps,
                "teacher": (
                    None
                    if cfg.distill.strategy == "moco"
                    else {"arch": cfg.teacher.arch, "weights": cfg.teacher.weights}
                ),
                "teacher_cache": teacher_feed.record() if teacher_feed is not None else None,
                "config": to_dict(cfg),
            },
        )
        log.info("student written to %s", student_path)
        if bad_images.records:
            log.info(
                "%d bad images skipped, of at most %d (data.max_bad_images); run_info.json lists them",
                len(bad_images.records),
                bad_images.limit,
            )
    du.barrier()
    return student_path


def precompute_teacher(cfg: DistillConfig) -> Path:
    """Fill the teacher cache of ``cfg`` (``tools/distill.py --teacher-only``): run only the
    teacher, under ``torch.inference_mode`` (AMP and channels-last on CUDA, as training runs
    it), over the views of every epoch the training run will take; returns the cache folder.
    Students of the same teacher, data and seed can then be trained in parallel, each
    reading the cache. Batches already in the cache are skipped, so it can be resumed.

    Batches hold ``teacher.cache_batch_size`` views per process (default: the training batch
    per process). What is guaranteed: with the default, the batches are the training run's
    own, so a student trained from this cache is bit-identical to one trained with a live
    teacher. With another batch size the embeddings are the same up to float rounding on
    backends whose kernels depend on the batch size (e.g. cuDNN's algorithm choice).
    """
    device = du.init_from_env()
    if cfg.distill.strategy not in NEEDS_TEACHER:
        raise ConfigError(f"--teacher-only: distill.strategy={cfg.distill.strategy} has no teacher")
    if cfg.teacher.cache_dir is None:
        raise ConfigError("--teacher-only needs a cache to fill: set teacher.cache_dir=/path/to/teacher_cache")
    on_cuda = device.type == "cuda"
    precision = run_precision(cfg, device)
    source = build_source(cfg)
    require_one_batch(cfg, source)
    source, bad_images = open_skipping_bad_images(source, cfg.data.max_bad_images, data_name(cfg))
    per_rank = per_rank_batch(cfg)
    train_sampler = ResumableSampler(len(source), per_rank, cfg.train.seed, du.rank(), du.world_size())
    _, stop_step = schedule_steps(cfg, train_sampler)
    epochs = -(-stop_step // train_sampler.steps_per_epoch())
    batch = cfg.teacher.cache_batch_size or per_rank
    # drop_last=False: the padded last batch of an epoch covers the samples any batch size may train on
    sampler = ResumableSampler(len(source), batch, cfg.train.seed, du.rank(), du.world_size(), drop_last=False)
    cache = TeacherCache.for_run(cfg, source, device)
    # epochs past teacher.cache_views=K train on views 0..K-1, which the first K epochs fill
    todo = {epoch: cache.first_unwritten_step(sampler, epoch) for epoch in range(cache.stored_views(epochs))}
    todo = {epoch: first for epoch, first in todo.items() if first < sampler.steps_per_epoch()}
    if not todo:
        log.info("teacher cache %s already holds all %d epochs", cache.folder, epochs)
        return cache.folder

    torch.manual_seed(cfg.train.seed)
    teacher = build_teacher(cfg).to(device)
    if precision.channels_last:
        teacher.to(memory_format=torch.channels_last)
    prepare_cache_writes(cache, teacher, cfg, device, precision, epochs)
    views = SeededViews(source, view_transform(cfg), num_views=1, with_index=True)
    loader = build_loader(views, sampler, batch, cfg.data.num_workers, pin_memory=on_cuda)
    progress = tqdm(
        total=sum(sampler.steps_per_epoch() - first for first in todo.values()),
        disable=not du.is_main_process(),
        desc="teacher cache",
        dynamic_ncols=True,
    )
    with torch.inference_mode():
        for epoch, first in todo.items():
            sampler.set_position(epoch, first)
            for (images,), indices, read_indices in loader:
                count_bad_images(bad_images, indices, read_indices, None, None, share=False)  # ranks may differ
                images = precision.layout(images.to(device, non_blocking=True))
                with precision.autocast():
                    cache.write(epoch, indices, teacher(images))
                progress.update(1)
    progress.close()
    cache.close()
    log.info("teacher cache %s: %d epochs written", cache.folder, epochs)
    return cache.folder
