"""A restricted unpickler for the plain pickles the project reads: Detectron2 ``.pkl`` weights
(``{"model": {name: numpy array}, "__author__": ..., "matching_heuristics": True}``) and the
CIFAR batches (``{b"data": uint8 array, b"labels": [...], ...}``).

A pickle names the callables that rebuild its objects, and a plain ``pickle.load`` calls
whatever it names (``os.system`` included): reading an untrusted file runs its code. Here a
pickle may name only what numpy arrays, numpy scalars and dtypes, ``bytes`` (protocols 0-2) and
``collections.OrderedDict`` need; dicts, lists, tuples, numbers and strings have opcodes of their
own. Any other name is refused before it is called, as one line naming the file and the name:

    load(path, "a weights file")
    # RefusedPickle: w.pkl: refused to unpickle 'posix.system': a weights file holds only arrays, numbers and strings

``torch.save`` files are not read here: :func:`seed_core.checkpoint_files.safe_load` reads them with
``torch.load(weights_only=True)``, torch's own restricted unpickler.
"""

import _compat_pickle
import codecs
import collections
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from .errors import UserError

_core = getattr(np, "_core", None) or np.core  # numpy >= 2 names it numpy._core, 1.x numpy.core


def _codecs_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` of text only (how protocols 0-2 write bytes); no other codec input."""
    if not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode of a {type(text).__name__}, not of text")
    return codecs.encode(text, encoding, errors)


def _empty_bytes(*args):
    """``bytes()``, as protocols 0-2 write ``b""``; no other call of ``bytes``."""
    if args:
        raise pickle.UnpicklingError(f"bytes{args!r}: only bytes() (an empty string) is admitted")
    return b""


def _allowed() -> dict[tuple[str, str], Any]:
    """(module, name) as a pickle names it -> the object. numpy 1.x wrote ``numpy.core.*``,
    numpy 2 writes ``numpy._core.*``; both resolve to the installed numpy's objects."""
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("_codecs", "encode"): _codecs_encode,  # bytes under protocol 0-2: _codecs.encode(str, "latin1")
        ("builtins", "bytes"): _empty_bytes,  # b"" under protocol 0-2: bytes()
    }
    for package in ("numpy.core", "numpy._core"):
        allowed[(f"{package}.multiarray", "_reconstruct")] = _core.multiarray._reconstruct  # an array
        allowed[(f"{package}.multiarray", "scalar")] = _core.multiarray.scalar  # a numpy scalar
        allowed[(f"{package}.numeric", "_frombuffer")] = _core.numeric._frombuffer  # an array, protocol 5
    return allowed


_ALLOWED = _allowed()


class RefusedPickle(UserError, pickle.UnpicklingError):
    """A pickle that names a callable the restricted unpickler does not admit; nothing was run."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: Path, kind: str, **kwargs):
        super().__init__(file, **kwargs)
        self.path, self.kind = path, kind

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 pickles (protocol < 3) name Python 2 modules; map them as pickle itself does.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            refused = f"{module}.{name}"
            raise RefusedPickle(
                f"{self.path}: refused to unpickle '{refused}': {self.kind} holds only arrays, numbers and strings"
            ) from None


def load(path: str | Path, kind: str, encoding: str = "ASCII") -> Any:
    """The object pickled in ``path``, rebuilt from numpy arrays, dtypes and scalars, dicts,
    ``OrderedDict``, lists, tuples, numbers, strings and bytes only.

    ``kind`` names the file in a refusal ("a weights file", "a CIFAR file"). ``encoding`` is
    :func:`pickle.load`'s, for Python 2 strings: ``"latin1"`` (Detectron2's choice; arrays keep
    their bytes) or ``"bytes"`` (CIFAR's keys stay ``b"data"``). A name outside the list raises
    :class:`RefusedPickle` before anything is called; a truncated or damaged file raises what
    :func:`pickle.load` raises (``pickle.UnpicklingError``, ``EOFError``, ``ValueError``, ...).
    """
    path = Path(path)
    with path.open("rb") as f:
        return _RestrictedUnpickler(f, path, kind, encoding=encoding).load()
