"""The torchvision engine's reading of Detectron2's recipe keys that need no model and no data: the
learning-rate multiplier of ``SOLVER`` (warm-up, steps or cosine) and ``INPUT.RANDOM_FLIP``.

They live apart from the training loop (:mod:`.train`, which uses them) so that the detection plan
(:func:`seed_transfer.detection.plan.make_plan`) can refuse a config the engine cannot train
(:func:`check_trainable`) before anything runs, without importing the loop that imports the plan.
"""

import math
from bisect import bisect_right

from seed_core.config import ConfigError


def lr_factor(iteration: int, solver) -> float:
    """Detectron2's multiplier of the base lr at ``iteration`` (0-based): linear (or constant) warm-up
    from ``WARMUP_FACTOR`` over ``WARMUP_ITERS``, times gamma^(steps passed) or a cosine to 0."""
    if solver.LR_SCHEDULER_NAME == "WarmupMultiStepLR":
        factor = solver.GAMMA ** bisect_right([s for s in solver.STEPS if s <= solver.MAX_ITER], iteration)
    elif solver.LR_SCHEDULER_NAME == "WarmupCosineLR":
        factor = 0.5 * (1 + math.cos(math.pi * iteration / solver.MAX_ITER))
    else:
        raise ConfigError(
            f"SOLVER.LR_SCHEDULER_NAME {solver.LR_SCHEDULER_NAME!r}: the torchvision engine has "
            "WarmupMultiStepLR and WarmupCosineLR"
        )
    if iteration < solver.WARMUP_ITERS:
        alpha = iteration / solver.WARMUP_ITERS
        warmup = {"linear": solver.WARMUP_FACTOR * (1 - alpha) + alpha, "constant": solver.WARMUP_FACTOR}
        if solver.WARMUP_METHOD not in warmup:
            raise ConfigError(f"SOLVER.WARMUP_METHOD {solver.WARMUP_METHOD!r}: use linear or constant")
        factor *= warmup[solver.WARMUP_METHOD]
    return factor


def flip_probability(cfg) -> float:
    """``INPUT.RANDOM_FLIP`` as the probability of a horizontal flip."""
    if cfg.INPUT.RANDOM_FLIP not in ("horizontal", "none"):
        raise ConfigError(f"INPUT.RANDOM_FLIP {cfg.INPUT.RANDOM_FLIP!r}: the torchvision engine has horizontal or none")
    return 0.5 if cfg.INPUT.RANDOM_FLIP == "horizontal" else 0.0


def check_trainable(cfg) -> None:
    """The config-only checks of this engine (schedule, warm-up, flip), made by the plan before
    anything runs (a comparison stops at once, not after its distillations). Checks that need the
    weights or the data (depth, STRIDE_IN_1X1, NUM_CLASSES, mask AP on VOC) come when those are read."""
    lr_factor(0, cfg.SOLVER)  # the scheduler and, with a warm-up, its method
    flip_probability(cfg)
