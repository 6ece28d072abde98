"""The one door to MMSegmentation / MMEngine: lazy import, the mmcv-lite stand-in, and the
narrow ``torch.load`` allow-list that MMEngine's own checkpoints need under torch >= 2.6.
"""

import contextlib
import logging
import pickle

import numpy as np
import torch

from seed_core.errors import MissingDependency

from . import INSTALL_HINT, mmcv_compat

log = logging.getLogger(__name__)
_REGISTERED = False
HISTORY_BUFFER_METHODS = ("min", "max", "current", "mean")  # HistoryBuffer's default statistics


def import_mmseg():
    """Import ``mmseg`` (with ``mmseg.models``) and register this package's extras in its
    registries; raises ImportError with the install command when the extra is missing."""
    global _REGISTERED
    for module in ("mmengine", "mmcv", "mmseg"):
        try:
            __import__(module)
        except ImportError as err:
            raise MissingDependency(f"{module} is not installed ({err}); {INSTALL_HINT}") from err
    if mmcv_compat.install():
        log.debug("mmcv-lite: using seed_transfer's mmcv._ext stand-in (nms only)")
    try:
        import mmseg.models  # noqa: F401  (imports mmcv.ops)
        from mmseg.utils import register_all_modules
    except ImportError as err:  # e.g. ftfy/regex, which mmseg.utils imports unconditionally
        raise MissingDependency(f"importing mmseg failed ({err}); {INSTALL_HINT}") from err
    import mmseg

    if not _REGISTERED:
        register_all_modules(init_default_scope=False)
        from . import registered  # noqa: F401  (metric and transform, registered on import)

        _REGISTERED = True
    return mmseg


def _history_buffer_method(owner, name: str):
    """Stands in for ``getattr`` in MMEngine checkpoints, where it only rebuilds the statistics
    methods a ``HistoryBuffer`` pickles (``getattr(HistoryBuffer, "mean")``). Anything else is
    refused: a real ``getattr`` would let a crafted file reach arbitrary attributes."""
    from mmengine.logging import HistoryBuffer

    if owner is HistoryBuffer and name in HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f"refused getattr({owner!r}, {name!r}) in a checkpoint: only "
        f"HistoryBuffer.{{{', '.join(HISTORY_BUFFER_METHODS)}}} are allowed"
    )


def mmengine_pickled_classes() -> list:
    """The globals besides tensors that MMEngine 0.10 pickles into its checkpoints: the message
    hub's ``HistoryBuffer`` (logged scalars, with its statistics methods as ``getattr`` calls),
    the numpy arrays/scalars it holds, and ``ConfigDict``. ``getattr`` is mapped to
    :func:`_history_buffer_method`, which resolves only those methods."""
    from mmengine.config import ConfigDict
    from mmengine.logging import HistoryBuffer

    from seed_core.checkpoint_files import safe_globals_allowlist  # numpy dtypes and scalars (plain data)

    core = getattr(np, "_core", None) or np.core
    reconstruct = core.multiarray._reconstruct
    return [
        HistoryBuffer,
        ConfigDict,
        np.ndarray,
        (reconstruct, f"{core.__name__}.multiarray._reconstruct"),
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (_history_buffer_method, "builtins.getattr"),
        (_history_buffer_method, "__builtin__.getattr"),
    ] + safe_globals_allowlist()


@contextlib.contextmanager
def mmengine_safe_globals():
    """``torch.load(weights_only=True)`` accepts MMEngine checkpoints inside this block (resume,
    ``load_from``); the allow-list is scoped to the block, never global, and safety stays on."""
    with torch.serialization.safe_globals(mmengine_pickled_classes()):
        yield
