"""One config system for every tool: typed dataclass defaults, YAML files with
``_base_`` inheritance, and ``key=value`` command-line overrides.

    cfg = load_config(DistillConfig, "configs/distill/seed_r18_mocov2_r50.yaml",
                      ["data.root=/imagenet/train", "optim.epochs=100"])

Precedence: dataclass defaults < base files (in order) < the file < overrides.
Unknown keys and values of the wrong type stop with a :class:`ConfigError` that
names the key (and the closest valid key); so do a key given twice in one YAML mapping
and a YAML syntax error, naming the file and the lines (:func:`load_yaml`, which reads
plain values only, as ``yaml.safe_load``). The resolved config is written beside every
output with :func:`dump_config`.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")
BASE_KEY = "_base_"
PACKAGE_SCHEME = "pkg://"


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key, first: int, second: int):
        super().__init__(f"key {key!r} at lines {first} and {second}")
        self.key, self.first, self.second = key, first, second


class _PlainLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s loader (plain values: a ``!!python`` tag is refused) that also refuses a
    key given twice in one mapping, which YAML reads silently as the last of the two values."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):  # else the base class refuses it
            self._refuse_duplicates(node)
        return super().construct_mapping(node, deep)

    def _refuse_duplicates(self, node: yaml.MappingNode) -> None:
        first_lines: dict = {}  # key -> the 1-based line it is first given on
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *anchor`` entries are meant to be overridden
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                first = first_lines.get(key)
            except TypeError:  # an unhashable key: the base class refuses it, with its line
                continue
            if first is not None:
                raise _DuplicateKey(key, first, line)
            first_lines[key] = line


def _yaml_error(err: yaml.YAMLError, source: str, lines: bool = True) -> ConfigError:
    """One line naming ``source`` (a file, or an override: ``lines=False``) and the line."""
    if isinstance(err, _DuplicateKey):
        return ConfigError(
            f"{source}: key {err.key!r} is given twice in one mapping"
            + (f", at lines {err.first} and {err.second}" if lines else "")
            + " (YAML would keep only the second value): keep one"
        )
    if not isinstance(err, yaml.MarkedYAMLError):  # e.g. a control character in an override
        return ConfigError(f"{source}: {' '.join(str(err).split())}")
    mark = err.problem_mark or err.context_mark
    where = f"{source}, line {mark.line + 1}" if mark and lines else source
    if isinstance(err, yaml.constructor.ConstructorError):
        return ConfigError(f"{where}: {err.problem} (a config holds plain YAML values only)")
    context = err.context or ""
    if context and err.context_mark and err.context_mark.line != getattr(mark, "line", None):
        context += f" from line {err.context_mark.line + 1}"
    return ConfigError(f"{where}: YAML syntax error: {err.problem}" + (f" ({context})" if context else ""))


def load_yaml(path: str | Path) -> Any:
    """The YAML file ``path`` as plain values (mappings, lists, strings, numbers, booleans, None):
    ``yaml.safe_load``, which refuses ``!!python`` tags, and a key given twice in one mapping is
    refused too. Every error is one :class:`ConfigError` naming the file (and the line, or both
    lines of a duplicated key)."""
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); a config is a YAML file"
        ) from None
    try:
        return yaml.load(text, Loader=_PlainLoader)
    except yaml.reader.ReaderError as err:  # a control character: the error gives its position, not its line
        line = text.count("\n", 0, err.position) + 1
        raise ConfigError(f"{path}, line {line}: unacceptable character #x{err.character:04x}: {err.reason}") from None
    except yaml.YAMLError as err:
        raise _yaml_error(err, str(path)) from None


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """Read ``path`` and merge it over its ``_base_`` files (paths relative to ``path``)."""
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path in seen:
        raise ConfigError(f"config inheritance loops: {' -> '.join(map(str, seen + (path,)))}")
    data = load_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, found {type(data).__name__}")
    bases = data.pop(BASE_KEY, [])
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(base, str) for base in bases):
        raise ConfigError(f"{path}: {BASE_KEY} must be a file name or a list of them, got {bases!r}")
    merged: dict = {}
    for base in bases:
        base_path = (path.parent / base).resolve()
        if not base_path.is_file():
            raise ConfigError(f"{path}: its {BASE_KEY} file {base!r} is not found (looked for {base_path})")
        merged = _merge(merged, _read_yaml(base_path, seen + (path,)))
    return _merge(merged, data)


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def parse_overrides(overrides: list[str]) -> dict:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a": {"b": 1}, "c": ["x", "y"]}`` (values parsed as YAML)."""
    tree: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value (e.g. optim.epochs=100)")
        node = tree
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        try:
            node[leaf] = yaml.load(raw, Loader=_PlainLoader) if raw.strip() else None
        except yaml.YAMLError as err:
            raise _yaml_error(err, f"override {item!r}", lines=False) from None
    return tree


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a field's type annotation, converting where YAML is loose."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return _coerce(value, option, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_type,) = typing.get_args(annotation) or (Any,)
        return [_coerce(v, item_type, f"{key}[{i}]") for i, v in enumerate(value)]
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
    elif annotation is float:
        # YAML 1.1 reads "1e-4" as a string; accept it and ints for float fields.
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                return float(value)
            except ValueError:
                pass
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif dataclasses.is_dataclass(annotation):
        return from_dict(annotation, value, prefix=key + ".")
    else:
        return value
    raise ConfigError(f"{key}: expected {getattr(annotation, '__name__', annotation)}, got {value!r}")


def from_dict(cls: type[T], data: dict | None, prefix: str = "") -> T:
    """Build the dataclass ``cls`` from nested dicts; unknown keys are errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, names, n=1)
        hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; valid keys: {', '.join(names)}"
        raise ConfigError(f"unknown config key '{prefix}{key}'{hint}")
    kwargs = {name: _coerce(data[name], hints[name], prefix + name) for name in names if name in data}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"base_lr": 0.03}}`` -> ``{"optim.base_lr": 0.03}``."""
    flat = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return flat


def changed_values(saved: dict, current: dict, skip=None, show=None) -> list[str]:
    """``["optim.base_lr: 0.03 -> 0.06", ...]``: the keys of ``current`` (a flat dict) whose value
    differs in ``saved``, leaving out keys that ``saved`` does not record (settings added since) and
    those where ``skip(key)`` holds; ``show(key, value)`` writes a value (default: ``repr``)."""
    show = show or (lambda key, value: repr(value))
    return [
        f"{key}: {show(key, saved[key])} -> {show(key, value)}"
        for key, value in current.items()
        if key in saved and saved[key] != value and not (skip and skip(key))
    ]


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] = ()) -> T:
    """Defaults of ``cls``, then the YAML file (with its bases), then ``key=value`` overrides; every
    number checked (:mod:`seed_core.value_ranges`), then the config's own ``validate()``."""
    data = _read_yaml(Path(path)) if path else {}
    data = _merge(data, parse_overrides(list(overrides)))
    cfg = from_dict(cls, data)
    from .value_ranges import check_values  # it imports this module

    check_values(cfg)  # finite numbers, each in the range its schema declares
    validate = getattr(cfg, "validate", None)
    if validate is not None:
        validate()
    return cfg


def dump_config(cfg: Any, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def resolve_path(value: str | None) -> str | None:
    """Resolve a path from a config: ``~`` expanded, and ``pkg://module/rel/path`` for a
    file shipped inside an installed Python package (e.g. demo weights)."""
    if value is None or not value.startswith(PACKAGE_SCHEME):
        return None if value is None else str(Path(value).expanduser())
    module, _, relative = value[len(PACKAGE_SCHEME) :].partition("/")
    try:
        root = importlib.resources.files(module)
    except ModuleNotFoundError:
        raise ConfigError(
            f"{value}: Python package {module!r} is not installed "
            f"(the README's set-up command installs the demo data packages)"
        ) from None
    return str(root / relative)
