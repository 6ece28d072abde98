"""The allowed values of every numeric config key, declared beside its schema and checked before
anything runs (:func:`seed_core.config.load_config` calls :func:`check_values`).

Each config dataclass lists its numeric fields in a ``RANGES`` class attribute:

    @dataclass
    class OptimConfig:
        RANGES: ClassVar = {"epochs": at_least(1), "base_lr": above(0), "momentum": within(0, 1, high_open=True)}
        epochs: int = 200
        ...

Every float anywhere in a config must be finite (``nan`` and ``inf`` are refused, naming the key);
every field in ``RANGES`` must lie in its range (``None`` passes for optional fields; each element
of a list). ``ANY`` declares a number with no bound (a seed, an exponent), so that a test can
require every numeric field of every schema to be declared (``tests/distill/test_value_ranges.py``):
a new key cannot be forgotten.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class Range:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def __str__(self) -> str:
        if self.high is None:
            return "any number" if self.low is None else f"{'>' if self.low_open else 'at least'} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else 'at most'} {self.high:g}"
        return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


ANY = Range()


def at_least(low: float) -> Range:
    return Range(low=low)


def above(low: float) -> Range:
    return Range(low=low, low_open=True)


def within(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Range:
    return Range(low, high, low_open, high_open)


def numeric_fields(cls: type) -> list[str]:
    """The fields of the dataclass ``cls`` that hold numbers (int, float, optional, or lists of them)."""
    hints = typing.get_type_hints(cls)
    names = []
    for f in dataclasses.fields(cls):
        kinds = set(typing.get_args(hints[f.name])) or {hints[f.name]}
        for kind in list(kinds):
            kinds |= set(typing.get_args(kind))  # list[float] -> float
        if kinds & {int, float} and bool not in kinds:
            names.append(f.name)
    return names


def check_values(cfg: Any, prefix: str = "") -> None:
    """Raise a :class:`~seed_core.config.ConfigError` naming the first key whose value is not finite or
    lies outside its declared range, walking nested configs."""
    ranges = getattr(type(cfg), "RANGES", {})
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value, key = getattr(cfg, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            check_values(value, key + ".")
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        for v in numbers:
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key}={value} must be a finite number")
        bounds = ranges.get(f.name)
        if bounds is not None and any(v not in bounds for v in numbers):
            optional = type(None) in typing.get_args(hints[f.name])
            raise ConfigError(f"{key} must be {bounds}{' (or null)' if optional else ''}, got {value}")
