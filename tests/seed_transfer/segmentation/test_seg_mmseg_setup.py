"""Missing extra -> install command; MMEngine checkpoints load under a narrow, scoped allow-list."""

import pickle
import sys

import pytest
import torch

from seed_transfer.segmentation.mmseg_setup import import_mmseg, mmengine_safe_globals


@pytest.mark.parametrize("module", ["mmseg", "mmengine"])
def test_missing_extra_says_how_to_install(monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # "not installed"
    with pytest.raises(ImportError, match=r"pip install -e '\.\[seg\]'"):
        import_mmseg()


def _history_buffer_checkpoint(path):
    import_mmseg()
    from mmengine.logging import HistoryBuffer

    buffer = HistoryBuffer()
    buffer.update(0.5)
    torch.save({"message_hub": {"log_scalars": {"train/loss": buffer}}, "meta": {"seed": 0}}, path)


def test_mmengine_checkpoint_loads_only_inside_the_block(tmp_path):
    _history_buffer_checkpoint(tmp_path / "ck.pth")
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "ck.pth", weights_only=True)
    with mmengine_safe_globals():
        loaded = torch.load(tmp_path / "ck.pth", weights_only=True)
    assert loaded["message_hub"]["log_scalars"]["train/loss"].mean() == 0.5
    with pytest.raises(pickle.UnpicklingError):  # the allow-list does not outlive the block
        torch.load(tmp_path / "ck.pth", weights_only=True)


class _Crafted:
    def __reduce__(self):
        from mmengine.logging import HistoryBuffer

        return getattr, (HistoryBuffer, "__init__")  # getattr beyond the statistics methods


def test_getattr_is_limited_to_history_buffer_methods(tmp_path):
    import_mmseg()
    torch.save({"x": _Crafted()}, tmp_path / "crafted.pth")
    with mmengine_safe_globals(), pytest.raises(pickle.UnpicklingError, match="refused getattr"):
        torch.load(tmp_path / "crafted.pth", weights_only=True)
