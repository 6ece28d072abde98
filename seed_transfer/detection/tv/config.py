"""Detectron2-format detection configs without Detectron2.

Reads the YAML files of ``configs/det/`` as Detectron2's ``CfgNode.merge_from_file`` does:
``_BASE_`` files first (paths relative to the including file), then the file; string values
are decoded with ``ast.literal_eval`` (so ``(200,)`` is a tuple, ``BN`` stays a string); every
key must be a Detectron2 key, given once per mapping (:func:`seed_core.config.load_yaml`), with
Detectron2's default (``d2_defaults.yaml``) for the keys no file sets. ``KEY VALUE`` overrides
are applied as ``merge_from_list`` applies them.

    cfg = load_config("configs/det/trees_R_18_C4_demo.yaml", ["SOLVER.MAX_ITER", "100"])
    cfg.MODEL.RPN.NMS_THRESH   # 0.7, Detectron2's default
"""

import ast
import copy
import difflib
from functools import lru_cache
from pathlib import Path

from seed_core.config import ConfigError, load_yaml
from seed_core.errors import MissingFile

DEFAULTS_FILE = Path(__file__).with_name("d2_defaults.yaml")
BASE_KEY = "_BASE_"


class CfgNode(dict):
    """A nested dict whose keys also read as attributes (``cfg.MODEL.RPN.NMS_THRESH``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, CfgNode) else v for k, v in self.items()}


def _node(value):
    if isinstance(value, dict):
        return CfgNode({k: _node(v) for k, v in value.items()})
    return value


def _decode(value):
    """A YAML or command-line value as Detectron2 decodes it: literals evaluated, tuples as lists."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    if isinstance(value, tuple | list):
        return [_decode(v) for v in value]
    return value


def _coerce(key: str, value, default, source: str):
    """``value`` for ``key`` if its type fits Detectron2's default (as yacs checks it)."""
    if default is None or value is None or type(value) is type(default):
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(
        f"{source}: {key} must be a {type(default).__name__} like its Detectron2 default {default!r}, got {value!r}"
    )


@lru_cache(maxsize=1)
def _defaults() -> CfgNode:
    return _node(load_yaml(DEFAULTS_FILE))


def _flat_keys(node: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in node.items():
        keys += _flat_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return keys


def _unknown_key(key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, _flat_keys(_defaults()), n=3)
    hint = f"; did you mean {close}?" if close else ""
    return ConfigError(f"{source}: {key} is not a Detectron2 config key{hint}")


def _merge(into: dict, update: dict, source: str, prefix: str = "") -> None:
    """Merge ``update`` into ``into`` (a tree of Detectron2 keys), refusing unknown keys."""
    for key, value in update.items():
        full = prefix + key
        if key not in into:
            raise _unknown_key(full, source)
        if isinstance(into[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: {full} is a section of keys, got the value {value!r}")
            _merge(into[key], value, source, f"{full}.")
        else:
            into[key] = _coerce(full, _decode(value), into[key], source)


def _read_with_bases(path: Path, seen: tuple = ()) -> dict:
    """The file's keys over those of its ``_BASE_`` chain (plain dicts, not yet checked)."""
    if not path.is_file():
        raise MissingFile(f"detection config not found: {path}" + (f" (the _BASE_ of {seen[-1]})" if seen else ""))
    if path.resolve() in seen:
        raise ConfigError(f"{path}: _BASE_ files include each other ({' -> '.join(map(str, seen))})")
    data = load_yaml(path) or {}  # a duplicated key or a syntax error: one line naming the file and the lines
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a detection config is a mapping of Detectron2 keys, got {type(data).__name__}")
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    merged = _read_with_bases((path.parent / Path(base).expanduser()), (*seen, path.resolve()))
    _deep_update(merged, data)
    return merged


def _deep_update(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_update(into[key], value)
        else:
            into[key] = value


def apply_opts(cfg: CfgNode, opts) -> None:
    """``[KEY, VALUE, KEY, VALUE, ...]`` overrides (``SOLVER.MAX_ITER 100``), as Detectron2's ``merge_from_list``."""
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"overrides come in KEY VALUE pairs; got an odd number: {opts}")
    for key, value in zip(opts[0::2], opts[1::2]):
        *parents, leaf = key.split(".")
        node = cfg
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
            if not isinstance(node, dict):
                raise _unknown_key(key, "override")
        if not isinstance(node, dict) or leaf not in node or isinstance(node[leaf], dict):
            raise _unknown_key(key, "override")
        node[leaf] = _coerce(key, _decode(value), node[leaf], "override")


def load_config(config_file: str | Path, opts=()) -> CfgNode:
    """Detectron2's defaults, then ``config_file`` with its ``_BASE_`` chain, then ``opts``."""
    path = Path(config_file).expanduser()
    cfg = copy.deepcopy(_defaults())
    _merge(cfg, _read_with_bases(path), str(path))
    apply_opts(cfg, opts)
    return cfg


def load_run_config(plan) -> CfgNode:
    """The config one seed of ``plan`` (a :class:`~seed_transfer.detection.plan.DetPlan`) trains
    with: its file and overrides, then the plan's norms, schedule and AMP."""
    cfg = load_config(plan.request.config, plan.request.opts)
    plan.apply(cfg)
    return cfg
