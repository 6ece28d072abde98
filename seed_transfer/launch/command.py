"""A command as ``fn(argv) -> exit status``, named ``"package.module:function"`` so that a job
or another process can import it (nothing but strings crosses to it)."""

import importlib
from collections.abc import Callable


def resolve(fn: str | Callable) -> Callable:
    """``"package.module:function"`` -> the function (imported here); a callable as it is."""
    if callable(fn):
        return fn
    module, sep, name = fn.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"expected 'package.module:function', got {fn!r}")
    return getattr(importlib.import_module(module), name)


def fn_name(fn: str | Callable) -> str:
    return fn if isinstance(fn, str) else f"{fn.__module__}:{fn.__qualname__}"
