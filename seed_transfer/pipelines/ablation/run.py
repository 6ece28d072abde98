"""Ablation runner: one base distillation config, a grid of overrides, distillation +
evaluation per point, then one table and plot per axis (SEED's Tables 3-5 and Figure 5).

    cfg = load_config(AblationConfig, "configs/ablation/demo.yaml", ["only=[distill.tau_teacher]"])
    result = run_ablation(cfg)

A grid is a mapping ``axes`` of config key -> values. ``mode: axes`` (default) sweeps one
axis at a time around the base config, like the paper; ``mode: product`` runs the full
cartesian grid. The axis ``teacher`` takes names of ``teachers`` presets, each a list of
``key=value`` distillation overrides (checkpoint path, architecture, layout).

A point is named from the settings that change the base config (``base`` when none does,
``distill.tau_teacher-0.001__teacher-swav_r50`` otherwise), so the same point has the same
folder in every grid and mode, and the base point of a one-at-a-time sweep runs once:

- ``points/<name>/distill/``: the distillation (``train(resume=True)``: an interrupted run
  continues from its checkpoint; a finished export is not trained again).
- ``teacher_cache/``: the teacher's embeddings, shared by the points with the same teacher,
  data and seed (``teacher_cache: true``, the default): the first of them writes them, the
  others read them and never run the teacher (:mod:`distill.teacher_cache`).
- ``points/<name>/eval/``: ``student__knn.json`` (``run_knn_eval``) and
  ``student__<dataset>.json`` (``run_cls_transfer``), skipped when newer than the student.
- tables, CSVs, plots and ``report.md`` (``seed_transfer.pipelines.ablation.report``): always rewritten.

The output folder has one writer at a time (:func:`ablation_lock`): a second invocation on it
stops with one line naming the holder. The same command again continues where the first stopped.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from distill.schema import DistillConfig
from distill.teacher_cache import share_teacher_cache
from seed_core.config import ConfigError, dump_config, load_config, to_dict
from seed_core.run_lock import run_lock
from seed_core.runtime import check_writable

from ...classification.schema import TransferClsConfig
from ..stages import Stages, config_path, dataset_overrides, student_is_complete
from ..stale import refuse_stale, stale_result, stale_student
from .schema import (
    BASE_POINT,
    STUDENT_MODEL_NAME,
    TEACHER_AXIS,
    TEACHER_CACHE_DIR,
    AblationConfig,
    Grid,
    Point,
    axis_overrides,
    selected_axes,
    slug,
)

log = logging.getLogger(__name__)


def _keys_set(overrides: list[str]) -> set[str]:
    return {o.partition("=")[0].strip() for o in overrides}


def _lookup(tree: dict, dotted: str):
    for part in dotted.split("."):
        tree = tree[part]
    return tree


def _resolved(dcfg: DistillConfig) -> dict:
    """The config as a dict, without the runner's own keys (so two points can be compared)."""
    tree = to_dict(dcfg)
    tree["train"].pop("output_dir")
    return tree


def expand_grid(cfg: AblationConfig) -> Grid:
    """Every point of the grid, each with its resolved distillation config (so a bad value
    stops here, before anything runs)."""
    axes = selected_axes(cfg)
    base_path = config_path(cfg.base)

    def load(overrides: list[str], where: str) -> DistillConfig:
        try:
            return load_config(DistillConfig, base_path, [*cfg.overrides, *overrides])
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None

    base_config = load([], f"base {cfg.base} with overrides {cfg.overrides}")
    base = _resolved(base_config)
    values, changes, base_values = {}, {}, {}
    for axis, raw_values in axes.items():
        values[axis] = []
        for raw in raw_values:
            single = _resolved(load(axis_overrides(cfg, axis, raw), f"axes.{axis}={raw}"))
            value = str(raw) if axis == TEACHER_AXIS else _lookup(single, axis)
            values[axis].append(value)
            changes[axis, json.dumps(value)] = single != base  # a setting equal to the base is not in the name
            if single == base:
                base_values.setdefault(axis, value)
        base_values.setdefault(axis, None if axis == TEACHER_AXIS else _lookup(base, axis))
        if len({json.dumps(v) for v in values[axis]}) != len(values[axis]):
            raise ConfigError(f"axes.{axis}: two values read the same ({raw_values} -> {values[axis]})")

    if cfg.mode == "product":
        _check_disjoint(cfg, axes)
        combos = [dict(zip(values, combo)) for combo in itertools.product(*values.values())]
    else:
        combos = [{axis: v} for axis, vs in values.items() for v in vs]

    points: dict[str, Point] = {}
    members: dict[str, list] = {axis: [] for axis in values}
    for settings in combos:
        changed = [(a, v) for a, v in settings.items() if changes[a, json.dumps(v)]]
        name = "__".join(slug(f"{a}-{v}") for a, v in changed) or BASE_POINT
        overrides = [o for a, v in changed for o in axis_overrides(cfg, a, v)]
        out = Path(cfg.output_dir) / "points" / name / "distill"
        point = Point(name, settings, overrides, load([*overrides, f"train.output_dir={out}"], f"point {name}"))
        if name in points and _resolved(points[name].distill) != _resolved(point.distill):
            raise ConfigError(f"points {points[name].settings} and {settings} are both named {name!r} but differ")
        points.setdefault(name, point)
        for axis, value in settings.items():
            members[axis].append((value, name))
    for axis in members:  # product mode: one row per (value, point); axes mode: one per value
        members[axis] = list(dict.fromkeys(members[axis]))
    if cfg.teacher_cache:
        share_teacher_cache([p.distill for p in points.values()], Path(cfg.output_dir) / TEACHER_CACHE_DIR)
    return Grid(values, list(points.values()), members, base_values, base_config)


def _check_disjoint(cfg: AblationConfig, axes: dict[str, list]) -> None:
    """In the full grid two axes setting the same key would depend on their order: refuse."""
    owner: dict[str, str] = {}
    for axis, vals in axes.items():
        for key in set().union(*(_keys_set(axis_overrides(cfg, axis, v)) for v in vals)):
            if key in owner and owner[key] != axis:
                raise ConfigError(
                    f"mode=product: axes {owner[key]!r} and {axis!r} both set {key}; "
                    f"remove one of them (or use mode=axes)"
                )
            owner[key] = axis


def stale_settings(point: Point, contents: dict | None = None) -> list[str]:
    """Settings that differ between the point's config and its existing student export (a
    folder written by an earlier grid with other overrides): ``["optim.base_lr: 0.03 -> 0.06"]``."""
    return stale_student(point.distill, contents)


# ---------------------------------------------------------------- evaluation
def eval_dir(cfg: AblationConfig, point: Point) -> Path:
    return Path(cfg.output_dir) / "points" / point.name / "eval"


def knn_config(cfg: AblationConfig, point: Point, student: Path) -> TransferClsConfig:
    overrides = [
        *cfg.eval.knn.overrides,
        f"model.weights={student}",
        f"model.name={STUDENT_MODEL_NAME}",
        f"output_dir={eval_dir(cfg, point)}",
    ]
    return load_config(TransferClsConfig, config_path(cfg.eval.knn.config), overrides)


def cls_configs(cfg: AblationConfig, point: Point, student: Path) -> list[TransferClsConfig]:
    """One TransferClsConfig per dataset of eval.cls (``name`` or ``name:root``; none: the config's)."""
    base = [
        *cfg.eval.cls.overrides,
        f"model.weights={student}",
        f"model.name={STUDENT_MODEL_NAME}",
        f"output_dir={eval_dir(cfg, point)}",
    ]
    return [
        load_config(TransferClsConfig, config_path(cfg.eval.cls.config), [*base, *dataset_overrides(dataset)])
        for dataset in cfg.eval.cls.datasets or [None]
    ]


def _fresh_json(path: Path, student: Path) -> dict | None:
    """The result in ``path`` when it exists and was written after the student export."""
    if path.is_file() and student.is_file() and path.stat().st_mtime >= student.stat().st_mtime:
        return json.loads(path.read_text())
    return None


def point_metrics(results: list[dict]) -> dict[str, float | None]:
    """Table columns of one point: ``knn top-1``/``knn top-5`` (kNN eval), ``linear <dataset>`` and
    ``knn <dataset>`` (classification transfer), in percent."""
    metrics = {}
    for r in results:
        if "top1" in (r.get("knn") or {}):
            metrics["knn top-1"], metrics["knn top-5"] = r["knn"]["top1"], r["knn"]["top5"]
        else:
            if r.get("linear") is not None:
                metrics[f"linear {r['dataset']}"] = r["linear"].get("score")
            if r.get("knn") is not None:
                metrics[f"knn {r['dataset']}"] = r["knn"].get("score")
    return metrics


# ---------------------------------------------------------------- run loop
def evaluations(cfg: AblationConfig, point: Point) -> list[tuple[str, TransferClsConfig, Path]]:
    """The point's evaluations, resolved: (stage name, config, result file) for kNN and each dataset."""
    from distill.trainer import STUDENT_NAME

    from ...classification.transfer import result_path

    student = Path(point.distill.train.output_dir) / STUDENT_NAME
    stages = []
    if cfg.eval.knn.enabled:
        kcfg = knn_config(cfg, point, student)
        stages.append(("knn", kcfg, Path(kcfg.output_dir) / f"{STUDENT_MODEL_NAME}__knn.json"))
    if cfg.eval.cls.enabled:
        stages += [(f"cls {c.data.name}", c, result_path(c)) for c in cls_configs(cfg, point, student)]
    return stages


def stale_outputs(cfg: AblationConfig, grid: Grid, evals: dict[str, list] | None = None) -> list[str]:
    """Outputs of other settings in ``output_dir``: students (distillation settings) and evaluation
    results (protocol settings), by the comparison's rule (:mod:`seed_transfer.pipelines.stale`).
    ``evals``: each point's :func:`evaluations` by point name, when already resolved."""
    problems, contents = [], {}  # contents: each data source's file record, taken once for all points
    for point in grid.points:
        stale = stale_settings(point, contents)
        if stale:
            problems.append(
                f"point {point.name}: {Path(point.distill.train.output_dir)} holds a student "
                f"distilled with other settings ({'; '.join(stale)})"
            )
        for _, ecfg, result in evals[point.name] if evals else evaluations(cfg, point):
            changed = stale_result(json.loads(result.read_text()).get("config"), ecfg) if result.is_file() else []
            if changed:
                problems.append(
                    f"point {point.name}: {result} was evaluated with other settings ({'; '.join(changed)})"
                )
    return problems


def run_point(cfg: AblationConfig, point: Point, stages: Stages, evals: list | None = None) -> dict:
    """Distil (or resume, or skip) and evaluate one point (``evals``: its :func:`evaluations`, when
    already resolved); returns its record for the tables."""
    from distill.trainer import STUDENT_NAME, train

    from ...classification.transfer import run_cls_transfer
    from ...imagenet.knn import run_knn_eval

    student = Path(point.distill.train.output_dir) / STUDENT_NAME
    done = student_is_complete(student, point.distill)
    stages.run("distill", point.name, done, lambda: None if done else train(point.distill, resume=True))
    results = []
    for stage, ecfg, result in evaluations(cfg, point) if evals is None else evals:
        previous = _fresh_json(result, student)
        run = run_knn_eval if stage == "knn" else run_cls_transfer
        results.append(
            stages.run(stage, point.name, previous is not None, lambda: previous if previous is not None else run(ecfg))
        )
    return {
        "point": point.name,
        "settings": point.settings,
        "overrides": point.overrides,
        "status": "done",
        "metrics": point_metrics(results),
        "teacher_cache": teacher_cache_record(student),
    }


def teacher_cache_record(student: Path) -> dict | None:
    """What the distillation that exported ``student`` did with the teacher cache (read, wrote,
    completed; steps of each), from the export's meta; None when it used none."""
    from seed_core.checkpoint_files import safe_load

    return safe_load(student).get("meta", {}).get("teacher_cache") if student.is_file() else None


def point_done(cfg: AblationConfig, point: Point, evals: list | None = None) -> bool:
    """The point's student is complete and every evaluation is newer than it."""
    from distill.trainer import STUDENT_NAME

    student = Path(point.distill.train.output_dir) / STUDENT_NAME
    evals = evaluations(cfg, point) if evals is None else evals
    return student_is_complete(student, point.distill) and all(
        _fresh_json(result, student) is not None for _, _, result in evals
    )


def run_point_or_fail(cfg: AblationConfig, point: Point, stages: Stages, evals: list | None = None) -> dict:
    """:func:`run_point`; a diverged setting (FloatingPointError) is a result of the ablation, not a crash."""
    try:
        return run_point(cfg, point, stages, evals)
    except FloatingPointError as err:
        log.error("point %s failed: %s", point.name, err)
        return {
            "point": point.name,
            "settings": point.settings,
            "overrides": point.overrides,
            "status": f"failed: {err}",
            "metrics": {},
        }


@dataclass(frozen=True)
class AblationPlan:
    """The ablation, resolved once (:func:`prepare`): the points run it as it is, in this process or as
    cluster jobs (:mod:`.dag`), and the report reads it; nothing resolves a config again."""

    cfg: AblationConfig
    grid: Grid  # every point with its resolved distillation config
    evals: dict[str, list]  # point name -> its evaluations, resolved (:func:`evaluations`)


def prepare(cfg: AblationConfig) -> AblationPlan:
    """Every point's distillation config and evaluations, resolved and checked, and the output folder
    refused if it holds results of other settings; nothing is written."""
    grid = expand_grid(cfg)  # every point's distillation config, resolved and checked
    evals = {p.name: evaluations(cfg, p) for p in grid.points}  # ... and its evaluations, before anything runs
    refuse_stale(cfg.output_dir, stale_outputs(cfg, grid, evals))  # never mix results of two different configs
    return AblationPlan(cfg, grid, evals)


def ablation_lock(cfg: AblationConfig, tool: str = "ablation"):
    """``output_dir`` checked writable and locked for the block (:mod:`seed_core.run_lock`): one
    writer, a second invocation on the folder stops naming the holder. Re-entrant in a process, so
    a job graph's driver can hold it around the jobs and the report pass (:func:`run_ablation`)."""
    check_writable(cfg.output_dir, "output_dir")
    return run_lock(cfg.output_dir, tool)


def run_ablation(
    cfg: AblationConfig,
    jobs: dict[str, dict] | None = None,
    started: float | None = None,
    plan: AblationPlan | None = None,
) -> dict:
    """Run every point (skipping finished ones), then write tables, plots and report.md. ``jobs``:
    the points that cluster jobs ran (:mod:`.dag`), by name: ``{"record", "stages", "seconds"}``;
    ``started``: the ``time.perf_counter()`` at which this invocation began (default: now); ``plan``:
    ``cfg`` resolved already (:mod:`.dag` hands down the plan its jobs ran; default: :func:`prepare`)."""
    tic = time.perf_counter() if started is None else started
    plan = plan or prepare(cfg)  # nothing written yet
    grid, evals = plan.grid, plan.evals
    with ablation_lock(cfg):  # one writer: a second invocation on the folder stops
        return _run_points(cfg, grid, evals, jobs, tic)


def _run_points(cfg: AblationConfig, grid: Grid, evals: dict[str, list], jobs: dict | None, tic: float) -> dict:
    from .report import write_reports

    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, out / "config.yaml")
    (out / "grid.json").write_text(
        json.dumps([{"point": p.name, "settings": p.settings, "overrides": p.overrides} for p in grid.points], indent=2)
    )
    jobs = jobs or {}
    stages = Stages(
        out / "stages.json",
        {(s["stage"], s["row"]): s["seconds"] for job in jobs.values() for s in job["stages"] if s["status"] == "ran"},
    )
    records = []
    for i, point in enumerate(grid.points, 1):
        if point.name in jobs:  # its job's record, and its stages as the job ran them
            for s in jobs[point.name]["stages"]:
                stages.run(s["stage"], s["row"], True, lambda: None)
            records.append(jobs[point.name]["record"])
            continue
        log.info("[%d/%d] point %s (%s)", i, len(grid.points), point.name, " ".join(point.overrides) or "base config")
        records.append(run_point_or_fail(cfg, point, stages, evals[point.name]))
    report = write_reports(cfg, grid, records, stages.records, time.perf_counter() - tic)
    log.info("report written to %s", report["report"])
    return {"points": records, "stages": stages.records, **report}
