"""The torchvision engine's fine-tuning and evaluation of one seed (Detectron2's training recipe).

``run_seed`` is the engine's entry point (the same role and ``metrics.json`` as
:func:`seed_transfer.detection.d2.train_net.run_seed`): build the detector around the loaded
backbone, train with SGD (momentum, weight decay, none on norm layers as
``SOLVER.WEIGHT_DECAY_NORM`` 0), linear warm-up then steps of ``GAMMA`` (``WarmupMultiStepLR``)
or cosine, AMP on CUDA, DDP under ``torchrun`` or ``num_gpus`` > 1 processes; precise BN before
the evaluation when ``TEST.PRECISE_BN.ENABLED``; evaluate with the shared metrics. The loop, its
step, checkpoint and launcher are the training runtime's (:mod:`seed_core.runtime`).

Outputs in ``output_dir``: ``config.yaml`` (resolved), ``train_log.jsonl`` (one JSON line per
logged iteration: iteration, lr, losses, seconds per iteration; plot it with pandas),
``checkpoint.pth`` (:mod:`seed_core.runtime.train_state`: model, optimizer, AMP scaler, iteration as
``step``, RNG incl. Python's, the resolved config and seed; written atomically every
``SOLVER.CHECKPOINT_PERIOD`` and at the end; ``resume`` continues from it, bit-identically) and
``metrics.json``.
"""

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torchvision
import yaml
from tqdm import tqdm

from seed_core import distributed as du
from seed_core.config import ConfigError, changed_values, flatten
from seed_core.runtime import (
    CHECKPOINT_NAME,
    CallbackHook,
    ProgressBar,
    TrainLoop,
    launch,
    optimizer_step,
    read_training_state,
    restore_training_state,
    save_training_state,
    set_rng_state,
    start_training,
)

from ...backbones import FLAG_UNSAFE_OPTION, is_random, load_backbone
from ...finetune import METRICS_FILE, PreparedWeights, json_line, seed_folder, write_json
from ..evaluation import coco_detection_ap, voc_detection_ap
from ..plan import DetPlan
from .config import load_run_config
from .data import DetectionDataset, IterationBatches, collate, load_dataset, load_training_records
from .models import build_detector
from .recipe import flip_probability, lr_factor

log = logging.getLogger(__name__)
LOG_PERIOD = 20  # iterations between log lines, as Detectron2's writers
SEED_RUN_FILES = (CHECKPOINT_NAME, "train_log.jsonl", "config.yaml")  # the checkpoint first: what --overwrite removes


# ----------------------------------------------------------------------------- model and optimizer


def build_model(cfg, weights, arch=None, layout="auto", allow_unsafe_pickle=False, seed=0):
    """(detector, init description) for ``weights`` (a checkpoint or "random") under ``cfg``."""
    random_init = is_random(weights)  # (a Detectron2 .pkl is refused by the plan, detection.plan.make_plan)
    arch = arch or (f"resnet{cfg.MODEL.RESNETS.DEPTH}" if random_init else None)
    network, arch = load_backbone(
        None if random_init else weights, arch, layout, allow_unsafe_pickle, seed, unsafe_option=FLAG_UNSAFE_OPTION
    )
    depth = arch.removeprefix("resnet")
    if depth.isdigit() and int(depth) != cfg.MODEL.RESNETS.DEPTH:
        raise ConfigError(
            f"the weights are a {arch}, but the config has MODEL.RESNETS.DEPTH "
            f"{cfg.MODEL.RESNETS.DEPTH}: use the R{depth} config or override MODEL.RESNETS.DEPTH {depth}"
        )
    if cfg.MODEL.RESNETS.STRIDE_IN_1X1 and isinstance(network, torchvision.models.ResNet):
        raise ConfigError(
            "MODEL.RESNETS.STRIDE_IN_1X1 True is the Caffe2 (MSRA) ResNet; torchvision ResNets "
            "stride in the 3x3 conv: set MODEL.RESNETS.STRIDE_IN_1X1 False"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the heads' initialisation depends on the seed only
        model = build_detector(cfg, network)
    return model, {
        "init": "random" if random_init else "checkpoint",
        "arch": arch,
        **({} if random_init else {"weights": str(weights)}),
    }


_NORM_TYPES = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.SGD:
    """SGD with Detectron2's parameter groups: norm weights/biases at ``WEIGHT_DECAY_NORM``, biases at
    ``WEIGHT_DECAY_BIAS`` (default ``WEIGHT_DECAY``) and ``BIAS_LR_FACTOR`` x lr."""
    solver, groups, seen = cfg.SOLVER, [], set()
    bias_decay = solver.WEIGHT_DECAY if solver.WEIGHT_DECAY_BIAS is None else solver.WEIGHT_DECAY_BIAS
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            decay, lr = solver.WEIGHT_DECAY, solver.BASE_LR
            if isinstance(module, _NORM_TYPES):
                decay = solver.WEIGHT_DECAY_NORM
            elif name == "bias":
                decay, lr = bias_decay, solver.BASE_LR * solver.BIAS_LR_FACTOR
            groups.append({"params": [param], "lr": lr, "initial_lr": lr, "weight_decay": decay})
    return torch.optim.SGD(groups, lr=solver.BASE_LR, momentum=solver.MOMENTUM, nesterov=solver.NESTEROV)


# ----------------------------------------------------------------------------- distributed helpers


def _world() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)


def _unwrap(model):
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def _to(device, images, targets=None):
    images = [i.to(device, non_blocking=True) for i in images]
    if targets is None:
        return images
    return images, [{k: v.to(device) if torch.is_tensor(v) else v for k, v in t.items()} for t in targets]


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict(model, dataset: DetectionDataset, device, with_masks: bool) -> dict:
    """``{image_id: [{"bbox", "score", "category_id"(, "segmentation")}]}`` for this process's share
    of ``dataset`` (every ``world_size``-th image), one image at a time as Detectron2 tests."""
    import pycocotools.mask as mask_util

    rank, world = _world()
    model = _unwrap(model).eval()
    predictions = {}
    for index in tqdm(range(rank, len(dataset), world), desc="evaluate", disable=rank != 0, mininterval=10):
        image, target = dataset[index]
        (output,) = model(_to(device, [image]))
        output = {k: v.cpu() for k, v in output.items()}
        preds = [
            {"bbox": box, "score": score, "category_id": label - 1}
            for box, score, label in zip(output["boxes"].tolist(), output["scores"].tolist(), output["labels"].tolist())
        ]
        if with_masks:
            for pred, mask in zip(preds, (output["masks"][:, 0] > 0.5).numpy().astype(np.uint8)):
                rle = mask_util.encode(np.asfortranarray(mask))
                pred["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
        predictions[target["image_id"]] = preds
    return predictions


def evaluate(model, cfg, data_root, device) -> dict:
    """``{"bbox": {...}, ("segm": {...})}`` on ``DATASETS.TEST`` (one test set, as the protocol
    uses; several: the first's results, each logged) with the shared metric functions."""
    rank, world = _world()
    results = {}
    for name in cfg.DATASETS.TEST:
        test = load_dataset(name, data_root)
        predictions = predict(model, DetectionDataset(test["records"]), device, cfg.MODEL.MASK_ON)
        if world > 1:
            parts = [None] * world
            dist.all_gather_object(parts, predictions)
            predictions = {k: v for part in parts for k, v in part.items()}
        if rank != 0:
            continue
        if test["metric"] == "voc":
            if cfg.MODEL.MASK_ON:
                raise ConfigError(f"{name}: the VOC detection metric has no mask AP (set MODEL.MASK_ON False)")
            found = {
                "bbox": voc_detection_ap(
                    test["records"], predictions, test["classes"], use_07_metric=test["use_07_metric"]
                )
            }
        else:
            found = {"bbox": coco_detection_ap(test["records"], predictions, test["classes"], "bbox")}
            if cfg.MODEL.MASK_ON:
                found["segm"] = coco_detection_ap(test["records"], predictions, test["classes"], "segm")
        log.info(
            "%s: %s", name, {task: {k: round(v, 2) for k, v in m.items() if "-" not in k} for task, m in found.items()}
        )
        results = results or found
    return results


@torch.no_grad()
def precise_bn(model, batches, device, num_iter: int) -> None:
    """Recompute the BN statistics as the plain average over ``num_iter`` training batches
    (Detectron2's PreciseBN hook): cumulative moving average (momentum None) from reset stats."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    for _, (images, targets) in zip(range(num_iter), batches):
        model(*_to(device, images, targets))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


# ----------------------------------------------------------------------------- training


def _clip_gradients(model, clip) -> None:
    """``SOLVER.CLIP_GRADIENTS``: clip the gradients of ``model`` by norm or by value."""
    params = [p for p in model.parameters() if p.grad is not None]
    if clip.CLIP_TYPE == "norm":
        torch.nn.utils.clip_grad_norm_(params, clip.CLIP_VALUE, clip.NORM_TYPE)
    else:
        torch.nn.utils.clip_grad_value_(params, clip.CLIP_VALUE)


# Keys a resumed run may change: where and how often it writes, how its data loads.
RESUME_FREE = ("OUTPUT_DIR", "SOLVER.CHECKPOINT_PERIOD", "DATALOADER.NUM_WORKERS", "TEST.EVAL_PERIOD", "VIS_PERIOD")


def read_resumable(path: Path, fingerprint: dict) -> dict:
    """The training state at ``path``, once it continues the fine-tuning of ``fingerprint``."""
    state = read_training_state(path)
    check_resume_fingerprint(path, state.get("fingerprint"), fingerprint)
    return state


def check_resume_fingerprint(path: Path, saved: dict | None, current: dict) -> None:
    """Refuse to resume ``path`` when a setting that alters the fine-tuning changed since it was
    written (naming each), as distillation does; a checkpoint without a fingerprint is not judged."""
    if not saved:
        return
    changed = changed_values(saved, current, skip=lambda key: key in RESUME_FREE)
    if changed:
        raise ConfigError(
            f"cannot resume {path}: settings that alter the fine-tuning changed since it was written "
            f"({'; '.join(changed)}); resume with those settings, or fine-tune into another folder"
        )


def train(cfg, model, records, output_dir: Path, seed: int, device, resume: bool = False) -> None:
    """Fine-tune ``model`` on ``records`` for ``SOLVER.MAX_ITER`` iterations (see the module docstring)."""
    rank, world = _world()
    solver = cfg.SOLVER
    setup = start_training(output_dir, amp=solver.AMP.ENABLED, resume=resume, device=device)  # AMP: on CUDA
    scaler = setup.scaler
    optimizer = build_optimizer(cfg, model)
    fingerprint = {**flatten(cfg.to_dict()), "seed": seed}  # what a resumed run must match
    start = 0
    state = setup.read_checkpoint(lambda path: read_resumable(path, fingerprint))
    if state is not None:
        _unwrap(model).load_state_dict(state["model"])
        start = restore_training_state(state, optimizer, scaler, rng=False)  # the RNG below, once the loader runs
        log.info("resumed from %s at iteration %d", setup.checkpoint_path, start)
    model = setup.wrap(model)
    model.train()
    flip = flip_probability(cfg)

    def batches(first, last, sampler_seed):
        sampler = IterationBatches(
            len(records), solver.IMS_PER_BATCH // world, sampler_seed, first, last, rank, world, flip
        )
        return torch.utils.data.DataLoader(
            DetectionDataset(records, cfg.MODEL.MASK_ON),
            batch_sampler=sampler,
            num_workers=cfg.DATALOADER.NUM_WORKERS,
            collate_fn=collate,
            pin_memory=device.type == "cuda",
        )

    clip = solver.CLIP_GRADIENTS
    clip_grads = (lambda: _clip_gradients(model, clip)) if clip.ENABLED else None

    def run_step(iteration: int, batch) -> tuple[float, torch.Tensor, dict]:
        factor = lr_factor(iteration, solver)
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] * factor
        images, targets = _to(device, *batch)
        with torch.autocast(device.type, enabled=scaler is not None):
            losses = model(images, targets)
        loss = sum(losses.values())
        optimizer_step(
            loss,
            optimizer,
            scaler,
            clip_grads=clip_grads,
            nonfinite=lambda value: f"loss became {value} at iteration {iteration}: {losses}; {setup.nonfinite_note()}",
        )
        return factor, loss.detach(), losses

    def save(path: Path, done: int) -> None:
        save_training_state(
            path,
            step=done,
            model=_unwrap(model).state_dict(),
            optimizer=optimizer,
            scaler=scaler,
            fingerprint=fingerprint,
        )

    progress = ProgressBar("train", mininterval=10)
    logfile = None

    def open_log(loop: TrainLoop) -> None:
        nonlocal logfile
        logfile = (output_dir / "train_log.jsonl").open("a") if rank == 0 else None

    def log_row(loop: TrainLoop) -> None:
        done, (factor, loss, losses) = loop.step, loop.outputs
        if logfile and (done % LOG_PERIOD == 0 or done == solver.MAX_ITER or done == loop.start + 1):
            row = {
                "iteration": done,
                "lr": solver.BASE_LR * factor,
                "total_loss": loss.item(),
                **{k: v.item() for k, v in losses.items()},
                "time": time.perf_counter() - loop.step_started,
                "data_time": loop.data_time,
            }
            logfile.write(json_line(row) + "\n")
            logfile.flush()
            progress.set_postfix(loss=f"{loss.item():.3f}", lr=f"{row['lr']:.4g}")

    def close_log(loop: TrainLoop) -> None:
        if logfile:
            logfile.close()

    hooks = [
        progress,
        CallbackHook(before_train=open_log, after_step=log_row, after_train=close_log),
        setup.checkpoint_hook(save, solver.CHECKPOINT_PERIOD),
    ]
    # Starting the loader draws its base seed from the global RNG: an uninterrupted run draws it
    # before iteration 0, so a resumed one draws it before its RNG state is restored, and the
    # stream then continues where the checkpoint left it (bit-identical resume).
    iteration_batches = iter(batches(start, solver.MAX_ITER, seed))
    if state is not None:
        set_rng_state(state["rng"])
    setup.run(TrainLoop(run_step, hooks, start, solver.MAX_ITER), iteration_batches)
    if cfg.TEST.PRECISE_BN.ENABLED and start < solver.MAX_ITER:
        precise_bn(model, batches(0, cfg.TEST.PRECISE_BN.NUM_ITER, seed + 7919), device, cfg.TEST.PRECISE_BN.NUM_ITER)
        if rank == 0:
            setup.save(solver.MAX_ITER, lambda path: save(path, solver.MAX_ITER))


# ----------------------------------------------------------------------------- one seed


def _run(plan: DetPlan, seed: int, output_dir: Path, backbone: PreparedWeights) -> dict | None:
    rank, world = _world()
    request = plan.request
    device = du.init_from_env(device_type=plan.device)  # the process group is up already (launch)
    cfg = load_run_config(plan)
    if rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    torch.manual_seed(seed + rank)  # Detectron2 seeds each process with seed + rank
    np.random.seed(seed + rank)
    records, classes = load_training_records(
        cfg.DATASETS.TRAIN, request.data_root, cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS
    )
    if len(classes) != cfg.MODEL.ROI_HEADS.NUM_CLASSES:
        raise ConfigError(
            f"DATASETS.TRAIN has {len(classes)} classes but MODEL.ROI_HEADS.NUM_CLASSES is "
            f"{cfg.MODEL.ROI_HEADS.NUM_CLASSES}"
        )
    model, init = build_model(cfg, backbone.file, request.arch, request.layout, request.allow_unsafe_pickle, seed)
    model.to(device)
    train(cfg, model, records, output_dir, seed, device, request.resume)
    results = evaluate(model, cfg, request.data_root, device)
    if rank != 0:
        return None
    metrics = plan.seed_metrics(seed, init, results)
    write_json(metrics, output_dir / METRICS_FILE)
    return metrics


def run_seed(plan: DetPlan, seed: int, seed_dir, backbone: PreparedWeights) -> dict:
    """Train + evaluate one seed of ``plan``; returns the contents of ``<seed_dir>/metrics.json``.

    ``num_gpus`` 0: the CPU; 1: one GPU; more: that many processes on this machine (NCCL). Under
    ``torchrun`` (``WORLD_SIZE`` set) each process runs its share in the launched process group.
    The seed folder is locked meanwhile, and an interrupted seed there is continued or started over
    only when asked (:func:`seed_transfer.finetune.seed_folder`)."""
    num_gpus = plan.request.num_gpus
    with seed_folder(plan.request, seed_dir, "torchvision", holds=SEED_RUN_FILES[:1], removes=SEED_RUN_FILES):
        launch(
            _run,
            (plan, seed, Path(seed_dir), backbone),
            num_processes=num_gpus,
            backend="nccl" if torch.cuda.is_available() and num_gpus > 0 else "gloo",
        )
    return json.loads((Path(seed_dir) / METRICS_FILE).read_text())
