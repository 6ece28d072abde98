"""The ablation's config (``configs/ablation/*.yaml``), checked when it loads: the axes, the
teacher presets, the evaluations; and the shapes of its grid (points and their members)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from distill.schema import DistillConfig
from seed_core.config import ConfigError, flatten, parse_overrides

from ..compare.schema import ClsStageConfig

MODES = ("axes", "product")


TEACHER_AXIS = "teacher"  # the axis whose values are names of ``teachers`` presets


RUNNER_KEYS = ("train.output_dir",)  # set by the runner for every point


BASE_POINT = "base"


TEACHER_CACHE_DIR = "teacher_cache"  # <output_dir>/teacher_cache


STUDENT_MODEL_NAME = "student"  # model.name of every evaluation: eval/student__<dataset>.json


@dataclass
class KnnStageConfig:
    enabled: bool = False
    config: str = "configs/eval/knn_imagenet.yaml"  # ImageNet-style train/ (bank) + val/ (queries)
    overrides: list[str] = field(default_factory=list)  # key=value for that TransferClsConfig (data.root, ...)


@dataclass
class AblationEvalConfig:
    knn: KnnStageConfig = field(default_factory=KnnStageConfig)  # top-1 / top-5 (run_knn_eval)
    cls: ClsStageConfig = field(default_factory=ClsStageConfig)  # linear + kNN per dataset (run_cls_transfer)


@dataclass
class AblationConfig:
    base: str = "configs/distill/demo.yaml"  # the distillation config every point starts from
    overrides: list[str] = field(default_factory=list)  # key=value for every point (data paths, budget)
    axes: dict[str, Any] = field(default_factory=dict)  # config key (or "teacher") -> list of values
    teachers: dict[str, Any] = field(default_factory=dict)  # preset name -> list of key=value overrides
    mode: str = "axes"  # axes: one axis at a time around the base | product: the full cartesian grid
    only: list[str] = field(default_factory=list)  # run these axes only (empty: every axis)
    eval: AblationEvalConfig = field(default_factory=AblationEvalConfig)
    output_dir: str = "outputs/ablation"
    # Points with the same teacher, data and seed share <output_dir>/teacher_cache (teacher.cache_dir):
    # the first writes the teacher's embeddings, the others read them. A teacher.cache_dir in the
    # distillation config or overrides is kept as it is.
    teacher_cache: bool = True
    title: str = "SEED ablation"
    note: str = ""  # written at the top of the report
    # With --launcher slurm every point (its distillation and evaluations) is a job of its own, all
    # in parallel; these launcher keys over the command line's size each, e.g. {gpus_per_node: 8}.
    jobs: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        from ...launch.config import check_launcher_keys

        check_launcher_keys(self.jobs, "jobs")
        if self.mode not in MODES:
            raise ConfigError(f"mode={self.mode!r}: choose one of {', '.join(MODES)}")
        if not (self.eval.knn.enabled or self.eval.cls.enabled):
            raise ConfigError(
                "eval.knn.enabled and eval.cls.enabled are both false: a point would have no "
                "metric; enable one (eval.cls.enabled=true)"
            )
        preset_overrides(self)
        selected_axes(self)


# ---------------------------------------------------------------- grid
def preset_overrides(cfg: AblationConfig) -> dict[str, list[str]]:
    """The ``teachers`` presets, checked: name -> list of key=value distillation overrides."""
    presets = {}
    for name, overrides in (cfg.teachers or {}).items():
        if not isinstance(overrides, list) or not overrides or not all(isinstance(o, str) for o in overrides):
            raise ConfigError(
                f"teachers.{name}: expected a non-empty list of key=value overrides "
                f"(e.g. [teacher.weights=/path/ckpt.pth, teacher.arch=resnet50]), got {overrides!r}"
            )
        parse_overrides(overrides)  # "not of the form key=value" names the item
        bad = [o for o in overrides if o.partition("=")[0].strip() in RUNNER_KEYS]
        if bad:
            raise ConfigError(f"teachers.{name}: {bad[0]!r} is set by the runner for every point; remove it")
        presets[str(name)] = list(overrides)
    return presets


def selected_axes(cfg: AblationConfig) -> dict[str, list]:
    """The grid's axes (after ``only``), checked: key -> non-empty list of distinct values."""
    if not isinstance(cfg.axes, dict) or not cfg.axes:
        raise ConfigError("axes is empty: give at least one axis, e.g. axes: {distill.tau_teacher: [0.001, 0.01]}")
    axes = flatten(cfg.axes)
    presets = preset_overrides(cfg)
    for key, values in axes.items():
        if key in RUNNER_KEYS:
            raise ConfigError(
                f"axes.{key}: set by the runner for every point (each point has its own folder); remove this axis"
            )
        if not isinstance(values, list):
            raise ConfigError(f"axes.{key}: expected a list of values, got {values!r}")
        if not values:
            raise ConfigError(
                f"axes.{key} is empty: give at least one value, or leave the axis out (only=[...] runs some axes)"
            )
        if any(isinstance(v, (list, dict)) for v in values):
            raise ConfigError(f"axes.{key}: values must be scalars (or null), got {values!r}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise ConfigError(f"axes.{key} lists a value twice: {values}")
        if key == TEACHER_AXIS:
            unknown = [v for v in values if str(v) not in presets]
            if unknown:
                raise ConfigError(
                    f"axes.teacher: unknown teacher preset {unknown[0]!r}; known presets: "
                    f"{', '.join(presets) or '(none)'}; add it under teachers: (name: [key=value, ...])"
                )
    unknown = [a for a in cfg.only if a not in axes]
    if unknown:
        raise ConfigError(f"only: unknown axis {unknown[0]!r}; the grid's axes are {', '.join(axes)}")
    return {k: v for k, v in axes.items() if not cfg.only or k in cfg.only}


def axis_overrides(cfg: AblationConfig, axis: str, value) -> list[str]:
    """The distillation overrides of one axis setting."""
    if axis == TEACHER_AXIS:
        return preset_overrides(cfg)[str(value)]
    text = json.dumps(value)
    if isinstance(value, str) and yaml.safe_load(value) == value:  # plain when YAML reads it back as given
        text = value
    return [f"{axis}={text}"]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]", "_", text)


@dataclass
class Point:
    """One distillation + evaluation: its folder name, axis settings and resolved config."""

    name: str
    settings: dict[str, Any]  # axis -> value (as the config reads it; preset name for ``teacher``)
    overrides: list[str]  # distillation overrides on top of the base config and cfg.overrides
    distill: DistillConfig  # resolved, train.output_dir = <output_dir>/points/<name>/distill


@dataclass
class Grid:
    axes: dict[str, list]  # axis -> values as the config reads them (e.g. "1e-4" -> 0.0001)
    points: list[Point]  # unique, in run order
    members: dict[str, list[tuple[Any, str]]]  # axis -> [(value, point name)] (the rows of its table)
    base_values: dict[str, Any]  # axis -> the base config's value ("teacher": the preset equal to it, or None)
    base: DistillConfig  # the base config with cfg.overrides
