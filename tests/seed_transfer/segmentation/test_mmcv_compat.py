"""The mmcv._ext stand-in: used only when the compiled ops are absent; nms works, others say what to do."""

import importlib.machinery
import importlib.util
import sys
import types

import pytest
import torch
import torchvision

from seed_transfer.segmentation import mmcv_compat


@pytest.fixture
def no_ext(monkeypatch):
    """mmcv-lite as installed here: no mmcv._ext (any stand-in from earlier imports removed)."""
    monkeypatch.delitem(sys.modules, mmcv_compat.EXT_NAME, raising=False)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == mmcv_compat.EXT_NAME else real_find_spec(name, *a)
    )


def test_stand_in_is_installed_when_compiled_ops_are_missing(no_ext):
    assert not mmcv_compat.compiled_ops_available()
    assert mmcv_compat.install() is True
    ext = sys.modules[mmcv_compat.EXT_NAME]
    assert ext.IS_SEED_TRANSFER_STUB and not mmcv_compat.compiled_ops_available()
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30], [0, 0, 9, 11.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    assert (
        ext.nms(boxes, scores, iou_threshold=0.5, offset=0).tolist() == torchvision.ops.nms(boxes, scores, 0.5).tolist()
    )
    # offset=1: widths x2 - x1 + 1, as mmcv's legacy mode
    assert (
        ext.nms(boxes, scores, 0.5, 1).tolist()
        == torchvision.ops.nms(boxes + torch.tensor([0, 0, 1, 1.0]), scores, 0.5).tolist()
    )


def test_missing_op_raises_naming_the_op(no_ext):
    mmcv_compat.install()
    ext = sys.modules[mmcv_compat.EXT_NAME]
    with pytest.raises(mmcv_compat.MissingCompiledOp, match=r"'roi_align_forward'.*install full mmcv"):
        ext.roi_align_forward(torch.zeros(1))
    assert hasattr(ext, "deform_conv_forward")  # so mmcv's import-time checks pass
    with pytest.raises(AttributeError):
        ext.__wrapped__  # dunder look-ups are not ops


def test_full_mmcv_is_left_untouched(monkeypatch):
    real = types.ModuleType(mmcv_compat.EXT_NAME)  # a compiled extension already imported
    monkeypatch.setitem(sys.modules, mmcv_compat.EXT_NAME, real)
    assert mmcv_compat.compiled_ops_available() and mmcv_compat.install() is False
    assert sys.modules[mmcv_compat.EXT_NAME] is real
    # ...or importable but not yet imported
    monkeypatch.delitem(sys.modules, mmcv_compat.EXT_NAME)
    real_find_spec = importlib.util.find_spec
    spec = importlib.machinery.ModuleSpec(mmcv_compat.EXT_NAME, loader=None)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: spec if name == mmcv_compat.EXT_NAME else real_find_spec(name, *a)
    )
    assert mmcv_compat.install() is False and mmcv_compat.EXT_NAME not in sys.modules


def test_mmseg_models_import_with_the_stand_in():
    from seed_transfer.segmentation.mmseg_setup import import_mmseg

    import_mmseg()
    import mmcv.ops

    assert (
        getattr(sys.modules[mmcv_compat.EXT_NAME], "IS_SEED_TRANSFER_STUB", False)
        is not mmcv_compat.compiled_ops_available()
    )
    kept = mmcv.ops.nms(torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10.0]]), torch.tensor([0.9, 0.8]), 0.5)[1]
    assert kept.tolist() == [0]
