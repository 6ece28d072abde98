"""The comparison's config (``configs/compare/*.yaml``) and its rows.

Every key is typed; :meth:`CompareConfig.validate` checks the keys of this file, and
:func:`seed_transfer.pipelines.compare.plan.resolve` resolves and checks every sub-config
(distillation, classification, detection, segmentation) before the first stage runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from distill.schema import STRATEGIES
from seed_core.config import ConfigError
from seed_core.value_ranges import at_least


def detectron2_opts(options: dict, prefix: str = "") -> list[str]:
    """``{"SOLVER": {"MAX_ITER": 500, "STEPS": [375, 450]}}`` -> ``["SOLVER.MAX_ITER", "500",
    "SOLVER.STEPS", "(375, 450)"]``: Detectron2's command-line syntax (its values are Python literals)."""
    pairs = []
    for key, value in options.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs += detectron2_opts(value, f"{name}.")
        elif isinstance(value, (list, tuple)):
            if any(isinstance(v, (list, tuple, dict)) for v in value):
                raise ConfigError(f"det.options.{name}: expected a list of scalars, got {value!r}")
            pairs += [name, repr(tuple(value))]
        elif value is None:
            raise ConfigError(f"det.options.{name} has no value: give one, or leave the key out")
        else:
            pairs += [name, value if isinstance(value, str) else repr(value)]
    return pairs


@dataclass
class DistillStageConfig:
    RANGES: ClassVar = {"seeds": at_least(1), "first_member": at_least(0)}
    config: str = "configs/distill/demo.yaml"  # one distillation config shared by every strategy
    overrides: list[str] = field(default_factory=list)  # key=value for that config (data paths, budget)
    strategies: list[str] = field(default_factory=lambda: ["seed", "moco"])  # one row each
    # Independent distillations per strategy, members first_member, first_member + 1, ... (member k:
    # train.seed = the config's seed + k, folder <strategy>-s<k>; random init k: model seed k): each
    # row's scores and differences then include the distillation's own seed-to-seed noise.
    seeds: int = 1
    # The first member's index: a confirmatory run takes seeds disjoint from its pilot's (e.g. 4 after
    # a pilot's members 0-3), so no distillation is counted in both.
    first_member: int = 0

    def members(self) -> range:
        """The member indices of every strategy (and of random init)."""
        return range(self.first_member, self.first_member + self.seeds)


@dataclass
class RowsConfig:
    random: bool = True  # a random-init row (student_arch)
    pixels: bool = False  # a raw-pixel row (classification only): what the input alone gives
    teacher: str | None = None  # a supervised / teacher checkpoint for an extra row (null: none)
    teacher_arch: str | None = None  # its architecture (null: what the checkpoint records)
    teacher_name: str = "teacher"  # its row label


@dataclass
class ClsStageConfig:
    enabled: bool = True
    config: str = "configs/transfer/cls/digits_demo.yaml"
    overrides: list[str] = field(default_factory=list)  # key=value for the TransferClsConfig, every row
    datasets: list[str] = field(default_factory=list)  # "name" or "name:root"; empty: the config's dataset


@dataclass
class DetStageConfig:
    RANGES: ClassVar = {
        "seeds": at_least(1),
        "members": at_least(1),
        "num_gpus": at_least(0),
        "ims_per_batch": at_least(1),
    }
    enabled: bool = True
    config: str = "configs/det/trees_R_18_C4_demo.yaml"  # Detectron2 YAML; one schedule for every row
    # Detectron2 config keys with typed values, as a nested mapping, the same for every row, e.g.
    #   options: {SOLVER: {MAX_ITER: 500, STEPS: [375, 450]}, INPUT: {MIN_SIZE_TRAIN: [160]}}
    # (a list is a Detectron2 tuple); one key on the command line: det.options.SOLVER.MAX_ITER=1000
    options: dict[str, Any] = field(default_factory=dict)
    opts: list[str] = field(default_factory=list)  # raw Detectron2 KEY VALUE strings, applied after options
    seeds: int = 1  # fine-tuning seeds per row (mean +- std)
    # Distillations per strategy that are fine-tuned: the first N members (null: every one), random
    # init's included (its member k draws its initialisation from its own seeds). Frozen-feature
    # classification costs seconds a row, a fine-tuning minutes to hours: more distillations for the
    # classification columns need not mean as many more fine-tunings.
    members: int | None = None
    data_root: str | None = None  # dataset folder (the demo's tree tiles are built here on first use)
    num_gpus: int = 0
    ims_per_batch: int | None = None  # null: the config's (the schedule is matched by the library)
    # auto: Detectron2 when installed, else the torchvision engine (which also takes
    # MobileNet/EfficientNet/timm rows with an FPN config); or detectron2 / torchvision
    engine: str = "auto"

    def all_opts(self) -> list[str]:
        """``options`` then ``opts`` as the KEY VALUE strings both engines read."""
        return [*detectron2_opts(self.options), *self.opts]


@dataclass
class SegStageConfig:
    RANGES: ClassVar = {"seeds": at_least(1), "members": at_least(1)}
    enabled: bool = False  # needs the [seg] extra (MMSegmentation)
    config: str = "configs/seg/demo_fcn-d8_voc_example.yaml"  # one schedule for every row
    opts: list[str] = field(default_factory=list)  # key=value for that config, the same for every row
    seeds: int = 1
    members: int | None = None  # members per strategy and of random init that are fine-tuned (null: all; det.members)
    data_root: str | None = None  # dataset folder (the offline example is written here on first use)


@dataclass
class JobsConfig:
    """Each stage's resources when the comparison runs as a DAG of cluster jobs (``--launcher slurm``):
    ``launcher.<key>`` values over the command line's, e.g. ``distill: {gpus_per_node: 8, time_min: 4320}``,
    ``det: {gpus_per_node: 1}`` (one job per distillation, per row x dataset, per row x fine-tuning seed)."""

    distill: dict[str, Any] = field(default_factory=dict)
    cls: dict[str, Any] = field(default_factory=dict)
    det: dict[str, Any] = field(default_factory=dict)
    seg: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        from ...launch.config import check_launcher_keys

        for stage in fields(self):
            check_launcher_keys(getattr(self, stage.name), f"jobs.{stage.name}")


@dataclass
class CompareConfig:
    output_dir: str = "outputs/compare"
    title: str = "SEED vs plain self-supervised training"
    note: str = ""  # written at the top of the report (e.g. "small-data numbers, not ImageNet numbers")
    student_arch: str = "resnet18"
    distill: DistillStageConfig = field(default_factory=DistillStageConfig)
    rows: RowsConfig = field(default_factory=RowsConfig)
    cls: ClsStageConfig = field(default_factory=ClsStageConfig)
    det: DetStageConfig = field(default_factory=DetStageConfig)
    seg: SegStageConfig = field(default_factory=SegStageConfig)
    jobs: JobsConfig = field(default_factory=JobsConfig)  # resources per stage on a cluster (--launcher slurm)
    # The questions asked before the run, e.g. ["seed - moco 5shot stamps", "seed - random AP"]: the
    # report tests them with Holm's correction over this set and labels every other difference
    # exploratory (seed_transfer/pipelines/differences.py). Empty: every difference is exploratory.
    primary: list[str] = field(default_factory=list)

    def validate(self) -> None:
        """Names and checks across keys; each number's own range is its ``RANGES`` entry, checked
        before this by :func:`seed_core.config.load_config`."""
        self.jobs.validate()
        for question in self.primary:
            parse_comparison(question, self.row_names())
        bad = [s for s in self.distill.strategies if s not in STRATEGIES]
        if bad:
            raise ConfigError(f"distill.strategies: unknown {bad}; choose from {', '.join(STRATEGIES)}")
        if len(set(self.distill.strategies)) != len(self.distill.strategies):
            raise ConfigError(f"distill.strategies lists a strategy twice: {self.distill.strategies}")
        for stage in ("det", "seg"):
            members = getattr(self, stage).members
            if members is not None and not 1 <= members <= self.distill.seeds:
                raise ConfigError(
                    f"{stage}.members={members}: fine-tune between 1 and distill.seeds={self.distill.seeds} "
                    f"distillations per strategy, or null for every one"
                )
        from ...detection.plan import ENGINES

        if self.det.engine not in ENGINES:
            raise ConfigError(f"det.engine={self.det.engine!r}; choose one of {', '.join(ENGINES)}")
        if len(self.det.opts) % 2:
            raise ConfigError(f"det.opts must be KEY VALUE pairs, got {len(self.det.opts)} items")
        detectron2_opts(self.det.options)  # values must be scalars or lists of scalars

    def row_names(self) -> list[str]:
        """The names of the rows this config makes (strategies, random, pixels, teacher)."""
        names = [*self.distill.strategies, *(["random"] if self.rows.random else [])]
        names += ["pixels"] if self.rows.pixels else []
        return names + ([self.rows.teacher_name] if self.rows.teacher else [])


def parse_comparison(text: str, rows: list[str] | None = None) -> tuple[str, str, str]:
    """``"seed - moco 5shot stamps"`` -> ``("seed", "moco", "5shot stamps")``: a primary comparison as
    the preset declares it (row, minus, row, then the report's column). ``rows``: the names allowed."""
    a, sep, rest = text.strip().partition(" - ")
    b, _, column = rest.strip().partition(" ")
    if not sep or not a or not b or not column.strip():
        raise ConfigError(
            f"primary: {text!r} is not '<row> - <row> <column>', e.g. 'seed - moco 5shot stamps' or 'seed - random AP'"
        )
    for name in (a, b):
        if rows is not None and name not in rows:
            raise ConfigError(f"primary: {text!r} names the row {name!r}; this comparison has {', '.join(rows)}")
    return a, b, column.strip()


@dataclass
class Row:
    """One initialisation: its label, weights (a path or "random") and architecture.

    ``member`` tells independent instances of the same row apart: distillation seed k of a
    strategy, or random-init seed k; the table aggregates the members of a row by ``name``.
    """

    name: str
    weights: str
    arch: str | None = None
    strategy: str | None = None  # the distillation strategy that produced it
    member: int = 0

    @property
    def tag(self) -> str:
        """The member's name in output paths and per-run results: ``seed``, ``seed-s1``, ..."""
        return self.name if self.member == 0 else f"{self.name}-s{self.member}"
