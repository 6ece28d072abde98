"""A :class:`~seed_transfer.segmentation.schema.SegTransferConfig` -> the MMEngine config dict
MMSegmentation trains from: the model-zoo FCN-D8 / DeepLabV3-D8 recipe on a plain-stem ResNet.
The recipe's numbers (strides, dilations, head widths, dropout, loss weights, crop and flip,
sliding window) are config keys (``configs/seg/base/*.yaml``); this module only maps them.

Why ``ResNet`` (plain 7x7 stem, ``style='pytorch'``) and not the zoo's default ``ResNetV1c``:
V1c has a deep stem (three 3x3 convs) that no torchvision / MoCo / SwAV / SimCLR / DINO / SEED
ResNet has, so their stem weights would not load and the comparison would start every
initialisation with a random stem. The zoo's ``r50b`` configs use the same plain stem.
"""

from dataclasses import asdict

from seed_core.config import ConfigError

from .schema import BASIC_DEPTHS, SegScheduleConfig, SegTransferConfig

IMAGENET_MEAN = [123.675, 116.28, 103.53]  # RGB, 0-255: the torchvision preprocessing of every checkpoint
IMAGENET_STD = [58.395, 57.12, 57.375]


def scaled_schedule(schedule: SegScheduleConfig, total_batch: int) -> dict:
    """The schedule actually run at ``total_batch`` images per iteration (all processes).

    Equal to the reference batch: unchanged. Otherwise ``linear`` keeps lr / batch constant and
    the number of images seen (lr x r, iterations and intervals / r, r = batch / reference);
    ``accumulate`` keeps the zoo's numbers exactly and accumulates gradients over
    reference / batch iterations (BN statistics still see the smaller batch)."""
    if total_batch < 1:
        raise ConfigError(f"total batch must be >= 1, got {total_batch}")
    ratio = total_batch / schedule.reference_batch
    out = {
        "rule": "reference",
        "reference_batch": schedule.reference_batch,
        "total_batch": total_batch,
        "lr": schedule.lr,
        "iters": schedule.iters,
        "val_interval": schedule.val_interval,
        "checkpoint_interval": schedule.checkpoint_interval,
        "accumulate": 1,
    }
    if ratio == 1:
        return out
    if schedule.scaling == "accumulate":
        if schedule.reference_batch % total_batch:
            raise ConfigError(
                f"schedule.scaling=accumulate needs the total batch ({total_batch}) to divide "
                f"schedule.reference_batch ({schedule.reference_batch}); change data.batch_size "
                "or use schedule.scaling=linear"
            )
        steps = schedule.reference_batch // total_batch
        return {
            **out,
            "rule": f"accumulate x{steps}",
            "accumulate": steps,
            "iters": schedule.iters * steps,
            "val_interval": schedule.val_interval * steps,
            "checkpoint_interval": schedule.checkpoint_interval * steps,
        }
    return {
        **out,
        "rule": f"linear x{ratio:g}",
        "lr": schedule.lr * ratio,
        "iters": max(1, round(schedule.iters / ratio)),
        "val_interval": max(1, round(schedule.val_interval / ratio)) if schedule.val_interval else 0,
        "checkpoint_interval": max(1, round(schedule.checkpoint_interval / ratio)),
    }


def stage_channels(depth: int, index: int) -> int:
    """Output channels of ResNet stage ``index`` (0-3): 64..512 (BasicBlock), 256..2048 (Bottleneck)."""
    return (64 << index) * (1 if depth in BASIC_DEPTHS else 4)


def _heads(cfg: SegTransferConfig, depth: int, num_classes: int, norm_cfg: dict) -> tuple[dict, dict | None]:
    m = cfg.model
    width, aux_width = m.head_channels(depth)
    common = dict(
        in_index=m.in_index,
        in_channels=stage_channels(depth, m.in_index),
        channels=width,
        dropout_ratio=m.dropout_ratio,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=m.loss_weight),
    )
    if m.head == "fcn":
        decode = dict(type="FCNHead", num_convs=m.fcn_num_convs, concat_input=m.fcn_concat_input, **common)
    else:
        decode = dict(type="ASPPHead", dilations=tuple(m.aspp_dilations), **common)
    aux = None
    if m.aux_head:
        aux = dict(
            type="FCNHead",
            in_channels=stage_channels(depth, m.aux_in_index),
            in_index=m.aux_in_index,
            channels=aux_width,
            num_convs=m.aux_num_convs,
            concat_input=m.aux_concat_input,
            dropout_ratio=m.aux_dropout_ratio,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            align_corners=False,
            loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=m.aux_loss_weight),
        )
    return decode, aux


def build_model(cfg: SegTransferConfig, depth: int, num_classes: int, backbone_file: str | None) -> dict:
    """EncoderDecoder: ResNet with the config's strides / dilations (the zoo's D8: 1,2,1,1 and
    1,1,2,4, output stride 8) + heads. ``backbone_file``: converted weights (:mod:`.convert`) or
    None for mmseg's random init."""
    norm_cfg = dict(type=cfg.model.norm, requires_grad=True)
    crop = tuple(cfg.data.crop_size)
    backbone = dict(
        type="ResNet",
        depth=depth,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=tuple(cfg.model.dilations),
        strides=tuple(cfg.model.strides),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style="pytorch",
        contract_dilation=True,
    )
    if backbone_file:
        backbone["init_cfg"] = dict(type="Pretrained", checkpoint=str(backbone_file))
    decode, aux = _heads(cfg, depth, num_classes, norm_cfg)
    test_cfg = dict(mode="whole")
    if cfg.model.test_mode == "slide":
        window, stride = cfg.slide_window()
        test_cfg = dict(mode="slide", crop_size=tuple(window), stride=tuple(stride))
    model = dict(
        type="EncoderDecoder",
        data_preprocessor=dict(
            type="SegDataPreProcessor",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            bgr_to_rgb=True,
            pad_val=0,
            seg_pad_val=255,
            size=crop,
        ),
        backbone=backbone,
        decode_head=decode,
        train_cfg=dict(),
        test_cfg=test_cfg,
    )
    if aux:
        model["auxiliary_head"] = aux
    return model


def pipelines(cfg: SegTransferConfig, label_transforms: list[dict]) -> tuple[list[dict], list[dict]]:
    """The zoo's train / test pipelines; ``label_transforms`` run right after the labels are read."""
    scale = tuple(cfg.data.scale)
    train = [
        dict(type="LoadImageFromFile"),
        dict(type="LoadAnnotations"),
        *label_transforms,
        dict(type="RandomResize", scale=scale, ratio_range=tuple(cfg.data.ratio_range), keep_ratio=True),
        dict(type="RandomCrop", crop_size=tuple(cfg.data.crop_size), cat_max_ratio=cfg.data.cat_max_ratio),
        dict(type="RandomFlip", prob=cfg.data.flip_prob),
    ]
    if cfg.data.photometric:
        train.append(dict(type="PhotoMetricDistortion"))
    train.append(dict(type="PackSegInputs"))
    # labels are read after Resize: predictions are scored at the original resolution
    test = [
        dict(type="LoadImageFromFile"),
        dict(type="Resize", scale=scale, keep_ratio=True),
        dict(type="LoadAnnotations"),
        *label_transforms,
        dict(type="PackSegInputs"),
    ]
    return train, test


def build_mmengine_config(
    cfg: SegTransferConfig,
    data: dict,
    *,
    depth: int,
    backbone_file: str | None,
    work_dir: str,
    seed: int,
    world_size: int = 1,
    device: str = "cpu",
) -> tuple[dict, dict]:
    """(MMEngine config dict, schedule actually run). ``data`` comes from
    :func:`seed_transfer.segmentation.datasets.resolve_dataset`."""
    schedule = scaled_schedule(cfg.schedule, cfg.data.batch_size * world_size)
    train_pipeline, test_pipeline = pipelines(cfg, data["label_transforms"])
    train_sets = [{**d, "pipeline": train_pipeline} for d in data["train"]]
    train_set = train_sets[0] if len(train_sets) == 1 else dict(type="ConcatDataset", datasets=train_sets)
    workers = cfg.data.num_workers
    loader = dict(num_workers=workers, persistent_workers=workers > 0)
    val_loader = dict(
        batch_size=1,
        sampler=dict(type="DefaultSampler", shuffle=False),
        dataset={**data["val"], "pipeline": test_pipeline},
        **loader,
    )
    evaluator = dict(type="SegConfusionMetric")
    mm = dict(
        default_scope="mmseg",
        work_dir=str(work_dir),
        model=build_model(cfg, depth, data["num_classes"], backbone_file),
        train_dataloader=dict(
            batch_size=cfg.data.batch_size,
            sampler=dict(type="InfiniteSampler", shuffle=True),
            dataset=train_set,
            **loader,
        ),
        test_dataloader=val_loader,
        test_evaluator=evaluator,
        test_cfg=dict(type="TestLoop"),
        optim_wrapper=dict(
            type="OptimWrapper",
            accumulative_counts=schedule["accumulate"],
            clip_grad=None,
            optimizer=dict(
                type="SGD", lr=schedule["lr"], momentum=cfg.schedule.momentum, weight_decay=cfg.schedule.weight_decay
            ),
        ),
        param_scheduler=[
            dict(
                type="PolyLR",
                eta_min=cfg.schedule.min_lr,
                power=cfg.schedule.power,
                begin=0,
                end=schedule["iters"],
                by_epoch=False,
            )
        ],
        # periodic validation (also run at the last iteration) is for monitoring; the metrics
        # reported come from the final test pass over the same val set
        train_cfg=dict(
            type="IterBasedTrainLoop",
            max_iters=schedule["iters"],
            val_interval=schedule["val_interval"] or schedule["iters"] + 1,
        ),
        default_hooks=dict(
            timer=dict(type="IterTimerHook"),
            logger=dict(type="LoggerHook", interval=cfg.schedule.log_interval, log_metric_by_epoch=False),
            param_scheduler=dict(type="ParamSchedulerHook"),
            checkpoint=dict(
                type="CheckpointHook",
                by_epoch=False,
                interval=schedule["checkpoint_interval"],
                max_keep_ckpts=1,
                save_last=True,
            ),
            sampler_seed=dict(type="DistSamplerSeedHook"),
            visualization=dict(type="SegVisualizationHook"),
        ),
        env_cfg=dict(
            cudnn_benchmark=device == "cuda",
            mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
            dist_cfg=dict(backend="nccl" if device == "cuda" else "gloo"),
        ),
        visualizer=dict(
            type="SegLocalVisualizer",  # named after the run, one per seed
            vis_backends=[dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")],
        ),
        log_processor=dict(by_epoch=False),
        log_level="INFO",
        randomness=dict(seed=seed, deterministic=False),
        launcher="pytorch" if world_size > 1 else "none",
        load_from=None,
        resume=False,
    )
    if schedule["val_interval"]:
        mm.update(val_dataloader=val_loader, val_evaluator=evaluator, val_cfg=dict(type="ValLoop"))
    return mm, {
        **schedule,
        "batch_per_process": cfg.data.batch_size,
        "processes": world_size,
        "config_schedule": asdict(cfg.schedule),
    }
