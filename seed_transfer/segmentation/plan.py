"""The fine-tuning plan of a segmentation transfer: the request and its config, read and checked
once before anything runs (as :mod:`seed_transfer.detection.plan` for detection), so that a
comparison resolves every row's plan up front and hands it to :func:`~.transfer.transfer`."""

from __future__ import annotations

from dataclasses import dataclass, replace

from seed_core.config import load_config

from ..finetune import FinetuneRequest
from .mmseg_setup import import_mmseg
from .schema import SegTransferConfig


@dataclass(frozen=True)
class SegPlan:
    """One segmentation run, resolved: the request and the config every seed trains with."""

    request: FinetuneRequest
    config: SegTransferConfig  # request.opts applied; data.root is request.data_root when that is given

    def only(self, seed: int) -> SegPlan:
        """This plan for one seed and no summary (one job of a comparison run as a cluster DAG)."""
        request = replace(self.request, only_seed=seed)
        request.check()
        return replace(self, request=request)


def make_plan(request: FinetuneRequest) -> SegPlan:
    """Check ``request`` and read its config (``request.config`` with ``request.opts``); writes nothing.
    Fails at once, with the install command, when the [seg] extra (MMSegmentation) is missing."""
    request.check()
    import_mmseg()
    cfg = load_config(SegTransferConfig, request.config, list(request.opts))
    if request.data_root is not None:
        cfg.data.root = str(request.data_root)
    return SegPlan(request, cfg)
