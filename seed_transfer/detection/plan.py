"""The fine-tuning plan of a detection transfer: what both engines must agree on, resolved
once and checked before anything runs or is written.

A :class:`DetRequest` is what the caller asks for (weights, config, seeds, engine, GPUs, ...).
:func:`make_plan` turns it into a frozen :class:`DetPlan`: the engine (``auto`` resolved), the
device and the number of processes one seed trains in, what every configured ``NORM`` runs as
(:func:`~seed_transfer.detection.norms.run_norm`: SyncBN/naiveSyncBN alone are BN), and two
schedules: the config's own (``reference``) and the one the run trains with (``effective``,
the matched-schedule rule of :class:`~seed_transfer.detection.schedule.Schedule` when
``ims_per_batch`` sets another total batch). Each engine reads the config with its own reader
(Detectron2's ``CfgNode``; the torchvision engine's :func:`~seed_transfer.detection.tv.config.load_config`,
which gives the same values), calls :meth:`DetPlan.apply`, and writes
:meth:`DetPlan.seed_metrics` as the seed's ``metrics.json``.

    plan = make_plan(DetRequest("configs/det/voc_R_50_C4_24k.yaml", "student.pth", "out", ims_per_batch=8))
    plan.effective.max_iter      # 48000: half the paper's batch of 16, twice its 24000 iterations

Every refusal is a one-line :class:`~seed_core.config.ConfigError` (a user error) naming the key.
"""

import importlib.util
import logging
import os
from dataclasses import dataclass, replace

from seed_core.config import ConfigError
from seed_core.errors import MissingDependency

from ..finetune import FinetuneRequest, seed_metrics
from . import DETECTRON2_INSTALL_HINT
from .norms import NORM_KEYS, run_norm
from .schedule import Schedule
from .tv.config import load_config
from .tv.recipe import check_trainable

log = logging.getLogger(__name__)
ENGINES = ("auto", "detectron2", "torchvision")
TORCHRUN_ENGINES = ("torchvision",)  # Detectron2's ``launch`` starts its own processes instead


@dataclass(frozen=True)
class DetRequest(FinetuneRequest):
    """One detection transfer as asked for; ``config`` is a Detectron2-format file under ``configs/det/``
    and ``opts`` its ``KEY VALUE`` overrides."""

    engine: str = "auto"  # detectron2 | torchvision | auto (Detectron2 when installed, else torchvision)
    num_gpus: int = 0  # 0: the CPU; N: N GPU processes (torchvision engine under torchrun: GPUs per process)
    ims_per_batch: int | None = None  # another total batch (fewer GPUs): lr scales, iterations/steps inversely


@dataclass(frozen=True)
class DetPlan:
    """One detection run, resolved (see the module docstring); the same for every seed."""

    request: DetRequest
    engine: str  # detectron2 | torchvision
    device: str  # cpu | cuda
    world_size: int  # processes one seed trains in
    norms: tuple[tuple[str, str], ...]  # (MODEL section, the norm its NORM runs as), for the sections with a NORM
    reference: Schedule  # the config's schedule
    effective: Schedule  # the schedule this run trains with

    def only(self, seed: int) -> "DetPlan":
        """This plan for one seed and no summary (one job of a comparison run as a cluster DAG)."""
        request = replace(self.request, only_seed=seed)
        request.check()
        return replace(self, request=request)

    @property
    def amp(self) -> bool:
        return self.device == "cuda"  # mixed precision on GPUs, as Detectron2's AMPTrainer; fp32 on the CPU

    def apply(self, cfg) -> None:
        """Set, in place, the plan's values on a Detectron2-format config (Detectron2's ``CfgNode``
        before ``freeze()``, or the torchvision engine's): every NORM, the schedule, AMP."""
        for section, norm in self.norms:
            cfg["MODEL"][section]["NORM"] = norm
        solver, effective = cfg["SOLVER"], self.effective
        solver["IMS_PER_BATCH"], solver["BASE_LR"] = effective.ims_per_batch, effective.base_lr
        solver["MAX_ITER"], solver["WARMUP_ITERS"] = effective.max_iter, effective.warmup_iters
        solver["STEPS"] = type(solver["STEPS"])(effective.steps)  # the reader's own container: tuple or list
        solver["AMP"]["ENABLED"] = self.amp

    def schedule_entry(self) -> dict:
        """The ``schedule`` of ``metrics.json`` and ``summary.json``."""
        return {
            "reference": self.reference.as_dict(),
            "effective": self.effective.as_dict(),
            "norm": dict(self.norms)["RESNETS"],
            "amp": self.amp,
        }

    def seed_metrics(self, seed: int, init: dict, results: dict) -> dict:
        """A seed's ``metrics.json`` (:func:`seed_transfer.finetune.seed_metrics`), the same for both engines;
        ``results`` is ``{"bbox": {"AP", "AP50", ...}, ("segm": {...})}``."""
        return seed_metrics(self.engine, seed, init, self.schedule_entry(), results)


def resolve_engine(engine: str) -> str:
    """The engine to run: ``auto`` picks Detectron2 when it is installed, else torchvision (and
    logs which); ``detectron2`` without Detectron2 fails with the install instructions."""
    if engine not in ENGINES:
        raise ConfigError(f"engine: unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    installed = importlib.util.find_spec("detectron2") is not None
    if engine == "auto":
        engine = "detectron2" if installed else "torchvision"
        log.info(
            "detection engine: %s (--engine auto; Detectron2 %s)",
            engine,
            "is installed" if installed else "is not installed",
        )
    elif engine == "detectron2" and not installed:
        raise MissingDependency(DETECTRON2_INSTALL_HINT + " Or use --engine torchvision, which needs no Detectron2.")
    return engine


def process_count(engine: str, num_gpus: int) -> int:
    """The processes one seed trains in: torchrun's ``WORLD_SIZE`` for the torchvision engine,
    else one per GPU (one on the CPU)."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    return launched if engine in TORCHRUN_ENGINES and launched > 1 else max(num_gpus, 1)


def make_plan(request: DetRequest) -> DetPlan:
    """Resolve and check ``request``: reads the config (the torchvision engine's reader, which needs
    no Detectron2 and gives Detectron2's values), writes nothing."""
    request.check()
    if request.num_gpus < 0:
        raise ConfigError(f"num_gpus={request.num_gpus} must be >= 0 (0: the CPU)")
    engine = resolve_engine(request.engine)
    if engine == "torchvision" and str(request.weights).endswith(".pkl"):
        raise ConfigError(
            f"weights={request.weights}: the torchvision engine reads the source checkpoint "
            "(student export, MoCo, torchvision, ...), not a Detectron2 .pkl; pass that file, "
            "or engine detectron2"
        )
    cfg = load_config(request.config, request.opts)
    if engine == "torchvision":
        check_trainable(cfg)
    device = "cuda" if request.num_gpus > 0 else "cpu"
    return plan_config(cfg, request, engine, device, process_count(engine, request.num_gpus))


def plan_config(cfg, request: DetRequest, engine: str, device: str, world_size: int) -> DetPlan:
    """The plan of ``request`` for the loaded config ``cfg`` on ``device`` with ``world_size`` processes:
    the norm rule, the schedule rule and the schedule's checks."""
    model, solver = cfg["MODEL"], cfg["SOLVER"]
    norms = tuple((key, run_norm(model[key]["NORM"], device, world_size)) for key in NORM_KEYS if "NORM" in model[key])
    reference = Schedule(
        solver["IMS_PER_BATCH"], solver["BASE_LR"], solver["MAX_ITER"], tuple(solver["STEPS"]), solver["WARMUP_ITERS"]
    )
    effective = reference if request.ims_per_batch is None else reference.scaled_to(request.ims_per_batch)
    check_schedule(
        effective,
        world_size,
        f"{request.config}"
        + ("" if effective == reference else f" (scaled to ims_per_batch={effective.ims_per_batch})"),
    )
    return DetPlan(request, engine, device, world_size, norms, reference, effective)


def check_schedule(schedule: Schedule, world_size: int, source: str) -> None:
    """Refuse a schedule that either engine cannot train."""
    # Detectron2's WarmupMultiStepLR fails on fewer ("Total num_updates must be greater than ...")
    if schedule.max_iter < 2:
        raise ConfigError(f"{source}: SOLVER.MAX_ITER={schedule.max_iter} must be >= 2")
    if any(not 0 < step < schedule.max_iter for step in schedule.steps):
        raise ConfigError(
            f"{source}: SOLVER.STEPS {list(schedule.steps)} must lie inside (0, SOLVER.MAX_ITER={schedule.max_iter})"
        )
    if schedule.ims_per_batch % world_size:  # each process takes an equal share of the batch
        raise ConfigError(
            f"{source}: SOLVER.IMS_PER_BATCH={schedule.ims_per_batch} must be a multiple of the "
            f"{world_size} processes (set ims_per_batch)"
        )
