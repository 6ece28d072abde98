"""Stand-in for ``mmcv._ext`` (mmcv's compiled CUDA/C++ ops) when only ``mmcv-lite`` is installed.

``import mmseg.models`` imports ``mmcv.ops``, whose modules call
``mmcv.utils.ext_loader.load_ext('_ext', [names])`` at import time; with mmcv-lite there is no
``mmcv._ext`` and the import fails, although FCN / DeepLabV3 on a ResNet use none of those ops.
:func:`install` registers a module under that name that provides

- ``nms``: :func:`torchvision.ops.nms` behind mmcv's signature (``offset`` 0 or 1);
- every other op: a function that raises :class:`MissingCompiledOp`, naming the op and saying
  to install full mmcv.

It does nothing when the compiled ops exist (full mmcv is used untouched), and nothing is
patched in mmcv or mmseg themselves.
"""

import importlib.machinery
import importlib.util
import sys
import types

import torch

EXT_NAME = "mmcv._ext"
FULL_MMCV_HINT = (
    "install full mmcv with its compiled ops instead of mmcv-lite: "
    "pip uninstall -y mmcv-lite && pip install mmcv==2.1.0 (builds from source; see "
    "https://mmcv.readthedocs.io/en/latest/get_started/installation.html)"
)


class MissingCompiledOp(NotImplementedError):
    """A compiled mmcv op was called but only mmcv-lite (no ``mmcv._ext``) is installed."""


def compiled_ops_available() -> bool:
    """True when the real ``mmcv._ext`` is importable (full mmcv), False with mmcv-lite."""
    module = sys.modules.get(EXT_NAME)
    if module is not None:
        return not getattr(module, "IS_SEED_TRANSFER_STUB", False)
    try:
        return importlib.util.find_spec(EXT_NAME) is not None
    except ModuleNotFoundError:  # no mmcv at all
        return False


def nms(bboxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, offset: int = 0) -> torch.Tensor:
    """mmcv's ``ext_module.nms``: boxes N x 4 (x1, y1, x2, y2), scores N -> kept indices, by
    decreasing score. ``offset=1`` is the legacy pixel convention (width = x2 - x1 + 1)."""
    import torchvision

    if offset not in (0, 1):
        raise ValueError(f"nms offset must be 0 or 1, got {offset}")
    boxes = bboxes.float()
    if offset:
        boxes = torch.cat([boxes[:, :2], boxes[:, 2:] + offset], dim=1)
    return torchvision.ops.nms(boxes, scores.float(), float(iou_threshold))


def _missing(name: str):
    def op(*args, **kwargs):
        raise MissingCompiledOp(
            f"the mmcv op {name!r} needs mmcv's compiled extension (mmcv._ext), which mmcv-lite "
            f"does not have; seed_transfer only provides 'nms' without it. To use {name!r}, {FULL_MMCV_HINT}"
        )

    op.__name__ = name
    return op


def _stub_module() -> types.ModuleType:
    module = types.ModuleType(EXT_NAME, "seed_transfer stand-in for mmcv._ext (mmcv-lite): only nms works")
    module.IS_SEED_TRANSFER_STUB = True
    # A spec without a loader: mmcv's ``check_ops_exist`` (pkgutil.find_loader) then answers False.
    module.__spec__ = importlib.machinery.ModuleSpec(EXT_NAME, loader=None)
    module.nms = nms

    # PEP 562: any other attribute mmcv asks for is an op that raises when called, so
    # ``load_ext``'s ``hasattr`` checks pass at import time.
    def __getattr__(name: str):
        if name.startswith("__"):  # dunder look-ups (pickle, inspect) are not ops
            raise AttributeError(name)
        return _missing(name)

    module.__getattr__ = __getattr__
    return module


def install() -> bool:
    """Register the stand-in as ``mmcv._ext`` if the compiled ops are absent.

    Returns True when the stand-in is (now) in use, False when full mmcv provides the ops.
    Call before importing ``mmcv.ops`` / ``mmseg.models``."""
    if compiled_ops_available():
        return False
    sys.modules.setdefault(EXT_NAME, _stub_module())
    return True
