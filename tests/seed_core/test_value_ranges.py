"""Every numeric key of every schema is declared with its range, and a bad value of each is refused
before anything runs, naming the key: the cases are generated from the schemas, so a new key cannot
be forgotten (a key without a RANGES entry fails the first test)."""

import dataclasses
import math
import re
import typing

import pytest

from distill.schema import DistillConfig
from seed_core.config import ConfigError, load_config
from seed_core.value_ranges import Range, at_least, check_values, numeric_fields, within
from seed_transfer.classification.schema import TransferClsConfig
from seed_transfer.imagenet.schema import LinearEvalConfig, SemisupConfig
from seed_transfer.launch.config import LauncherConfig, load_launcher_config
from seed_transfer.pipelines.ablation.schema import AblationConfig
from seed_transfer.pipelines.compare.schema import CompareConfig
from seed_transfer.segmentation.schema import SegTransferConfig

TOP = (
    DistillConfig,
    TransferClsConfig,
    LinearEvalConfig,
    SemisupConfig,
    SegTransferConfig,
    CompareConfig,
    AblationConfig,
)


def numeric_keys(cls: type, prefix: str = "") -> list[tuple[str, type, str]]:
    """(dotted key, the dataclass that declares it, field name) for every numeric field under ``cls``."""
    hints = typing.get_type_hints(cls)
    keys = [(prefix + name, cls, name) for name in numeric_fields(cls)]
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            keys += numeric_keys(hints[f.name], prefix + f.name + ".")
    return keys


CASES = [(top, *key) for top in TOP for key in numeric_keys(top)]


def outside(bounds: Range, integer: bool) -> str | None:
    """A value just outside ``bounds`` (None: unbounded)."""
    step = 1 if integer else 0.5
    if bounds.low is not None:
        value = bounds.low if bounds.low_open else bounds.low - step
    elif bounds.high is not None:
        value = bounds.high if bounds.high_open else bounds.high + step
    else:
        return None
    return str(int(value)) if integer else repr(float(value))


def test_every_numeric_field_of_every_schema_declares_its_range():
    missing, stale = [], []
    for cls in {declaring for _, _, declaring, _ in CASES} | {LauncherConfig}:
        ranges = getattr(cls, "RANGES", {})
        missing += [f"{cls.__name__}.{name}" for name in numeric_fields(cls) if name not in ranges]
        stale += [f"{cls.__name__}.{name}" for name in ranges if name not in numeric_fields(cls)]
    assert not missing, f"numeric keys without a RANGES entry: {missing}"
    assert not stale, f"RANGES entries that are no numeric field: {stale}"
    assert len(CASES) > 100  # the walk reaches the nested sections


@pytest.mark.parametrize("top, key, cls, name", CASES, ids=[f"{c[0].__name__}:{c[1]}" for c in CASES])
def test_a_value_outside_the_range_is_refused_naming_the_key(top, key, cls, name):
    bounds = cls.RANGES[name]
    hint = typing.get_type_hints(cls)[name]
    kinds = set(typing.get_args(hint)) or {hint}
    for kind in list(kinds):
        kinds |= set(typing.get_args(kind))
    integer, is_list = (
        float not in kinds,
        typing.get_origin(hint) is list or list in {typing.get_origin(k) for k in kinds},
    )
    bad = outside(bounds, integer)
    if bad is not None:
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)} must be {re.escape(str(bounds))}"):
            load_config(top, None, [f"{key}={f'[{bad}]' if is_list else bad}"])
    if not integer:
        for value in ("nan", "inf", "-inf"):
            with pytest.raises(ConfigError, match=rf"^{key}=.* must be a finite number"):
                load_config(top, None, [f"{key}={f'[{value}]' if is_list else value}"])


@pytest.mark.parametrize(
    "override, message",
    [  # the cases the hostile user tried (issue 27): each accepted before, then failed or misbehaved
        ("optim.base_lr=nan", "optim.base_lr=nan must be a finite number"),
        ("distill.tau_teacher=inf", "distill.tau_teacher=inf must be a finite number"),
        ("distill.tau_student=nan", "distill.tau_student=nan must be a finite number"),
        ("train.max_steps=0", "train.max_steps must be at least 1 (or null), got 0"),
        ("train.max_steps=-3", "train.max_steps must be at least 1 (or null), got -3"),
        ("optim.warmup_epochs=-1", "optim.warmup_epochs must be at least 0, got -1.0"),
        ("train.checkpoint_every=0", "train.checkpoint_every must be at least 1, got 0"),
        ("train.log_every=0", "train.log_every must be at least 1, got 0"),
        ("optim.momentum=-1", "optim.momentum must be in [0, 1), got -1.0"),
        ("data.num_workers=-1", "data.num_workers must be at least 0, got -1"),
        ("student.embed_dim=0", "student.embed_dim must be at least 1, got 0"),
    ],
)
def test_the_reported_bad_values_are_refused(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(DistillConfig, None, [override])
    assert str(err.value) == message


def test_launcher_values_are_checked_too():
    with pytest.raises(ConfigError, match=r"launcher.mem_gb=nan must be a finite number"):
        load_launcher_config("slurm", ["mem_gb=nan"])
    with pytest.raises(ConfigError, match=r"launcher.cpus_per_task must be at least 1, got 0"):
        load_launcher_config("slurm", ["cpus_per_task=0"])


def test_ranges_read_as_they_are_written():
    assert [str(r) for r in (at_least(1), within(0, 1, high_open=True), Range(0, None, low_open=True))] == [
        "at least 1",
        "in [0, 1)",
        "> 0",
    ]
    assert 0 in within(0, 1, high_open=True) and 1 not in within(0, 1, high_open=True)
    assert math.inf in at_least(0)  # a range says nothing of finiteness: check_values does
    check_values(DistillConfig())  # the defaults pass


@pytest.mark.parametrize(
    "top, override, message",
    [  # what a range cannot say stays in the schema's validate(): lengths, emptiness, checks across keys
        (DistillConfig, "distill.queue_size=100", "distill.queue_size=100 is smaller than the global batch"),
        (DistillConfig, "data.max_bad_images=2.5", "data.max_bad_images=2.5: give a fraction of the images"),
        (TransferClsConfig, "fewshot.shots=[]", "fewshot.shots is empty: give at least one K"),
        (LinearEvalConfig, "optim.milestones=[0]", r"optim.milestones=[0] must lie in (0, optim.epochs=100]"),
        (SegTransferConfig, "data.crop_size=[512]", "data.crop_size: expected two positive numbers, got [512]"),
        (SegTransferConfig, "model.aspp_dilations=[]", "model.aspp_dilations: expected one or more integers"),
        (CompareConfig, "det.members=2", "det.members=2: fine-tune between 1 and distill.seeds=1"),
    ],
)
def test_checks_that_are_no_range_stay_with_the_schema(top, override, message):
    base = {
        DistillConfig: ["data.root=/x", "teacher.weights=/t.pth"],
        TransferClsConfig: ["model.arch=resnet18"],
        LinearEvalConfig: ["model.arch=resnet18", "data.demo=digits"],
    }.get(top, [])
    with pytest.raises(ConfigError) as err:
        load_config(top, None, [*base, override])
    assert str(err.value).startswith(message)
