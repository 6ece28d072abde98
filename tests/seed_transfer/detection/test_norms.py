"""NORM values across both engines: MoCo's naiveSyncBN in the C4 protocol, what SyncBN and
naiveSyncBN run as, and the torchvision engine's NaiveSyncBatchNorm against BatchNorm over the
whole batch (two gloo processes on the CPU)."""

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from seed_transfer.detection.norms import run_norm
from seed_transfer.detection.plan import DetRequest, make_plan
from seed_transfer.detection.tv.config import load_config, load_run_config
from seed_transfer.detection.tv.layers import NaiveSyncBatchNorm, convert_norm, norm_layer

REPO = Path(__file__).parents[3]
C4_CONFIGS = sorted(p for p in (REPO / "configs/det").glob("*C4*.yaml") if "trees" not in p.name)


@pytest.mark.parametrize("config", C4_CONFIGS, ids=lambda p: p.name)
def test_c4_protocol_uses_mocos_naive_sync_bn(config):
    """moco/detection/configs/Base-RCNN-C4-BN.yaml (commit d00ef73): RESNETS.NORM naiveSyncBN;
    the res5 head and MoCo's extra norm after it take RESNETS.NORM."""
    cfg = load_config(config)
    assert cfg.MODEL.RESNETS.NORM == "naiveSyncBN"
    assert cfg.MODEL.ROI_HEADS.NAME == "Res5ROIHeadsExtraNorm"


@pytest.mark.parametrize(
    "name, device, world, expected",
    [
        ("SyncBN", "cpu", 1, "BN"),
        ("SyncBN", "cpu", 2, "BN"),
        ("SyncBN", "cuda", 1, "BN"),
        ("SyncBN", "cuda", 8, "SyncBN"),
        ("naiveSyncBN", "cpu", 1, "BN"),
        ("naiveSyncBN", "cuda", 1, "BN"),
        ("naiveSyncBN", "cpu", 2, "naiveSyncBN"),
        ("naiveSyncBN", "cuda", 8, "naiveSyncBN"),
        ("FrozenBN", "cpu", 1, "FrozenBN"),
        ("GN", "cuda", 8, "GN"),
    ],
)
def test_run_norm(name, device, world, expected):
    assert run_norm(name, device, world) == expected


def test_one_cpu_process_runs_every_sync_norm_as_bn():
    plan = make_plan(DetRequest(REPO / "configs/det/voc_R_50_C4_24k.yaml", "random", ".", engine="torchvision"))
    assert plan.schedule_entry()["norm"] == "BN" and load_run_config(plan).MODEL.RESNETS.NORM == "BN"
    cfg = load_run_config(
        make_plan(DetRequest(REPO / "configs/det/coco_R_50_FPN_1x.yaml", "random", ".", engine="torchvision"))
    )
    assert [cfg.MODEL[k].NORM for k in ("RESNETS", "FPN", "ROI_BOX_HEAD", "ROI_MASK_HEAD")] == ["BN"] * 4


def test_detectron2_engine_resolves_naive_sync_bn_the_same_way(tmp_path):
    pytest.importorskip("detectron2")
    from seed_transfer.detection.d2.train_net import build_cfg
    from seed_transfer.detection.plan import DetRequest, make_plan

    config = REPO / "configs/det/voc_R_50_C4_24k.yaml"
    plan = make_plan(DetRequest(config, "random", tmp_path, engine="detectron2"))
    cfg = build_cfg(plan, 0, tmp_path, None)
    assert cfg.MODEL.RESNETS.NORM == "BN" and plan.schedule_entry()["norm"] == "BN"
    cfg = build_cfg(
        make_plan(DetRequest(config, "random", tmp_path, engine="detectron2", num_gpus=8)), 0, tmp_path, None
    )
    assert cfg.MODEL.RESNETS.NORM == "naiveSyncBN"


def _pretrained_bn(channels=3):
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5), bn.bias.normal_(), bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2)
    return bn


def test_one_process_naive_sync_bn_is_batch_norm():
    bn = _pretrained_bn()
    synced = convert_norm(nn.Sequential(bn), "naiveSyncBN")[0]
    assert type(synced) is NaiveSyncBatchNorm and norm_layer("naiveSyncBN") is NaiveSyncBatchNorm
    for key, value in bn.state_dict().items():
        assert torch.equal(synced.state_dict()[key], value), key
    x = torch.randn(4, 3, 5, 5)
    torch.testing.assert_close(synced(x), bn(x))
    torch.testing.assert_close(synced.running_var, bn.running_var)
    torch.testing.assert_close(synced.eval()(x), bn.eval()(x))


def _two_process_worker(rank, init_file, x, state, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        synced = NaiveSyncBatchNorm(x.shape[1])
        synced.load_state_dict(state)
        half = x[rank * len(x) // 2 : (rank + 1) * len(x) // 2].clone().requires_grad_(True)
        out = synced(half)
        (out * torch.arange(out.numel()).reshape(out.shape)).sum().backward()
        torch.save(
            {
                "out": out.detach(),
                "grad": half.grad,
                "running_mean": synced.running_mean,
                "running_var": synced.running_var,
                "weight_grad": synced.weight.grad,
            },
            Path(out_dir) / f"{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_two_processes_normalise_with_the_statistics_of_the_whole_batch(tmp_path):
    """Two gloo processes holding half a batch each = BatchNorm over the whole batch, forward and
    backward (the all-reduce is differentiable); the running variance is the biased one, as
    Detectron2's NaiveSyncBatchNorm keeps it."""
    torch.manual_seed(0)
    x, bn = torch.randn(8, 3, 4, 4) * 2 + 1, _pretrained_bn()
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_two_process_worker, args=(str(tmp_path / "init"), x, state, str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]

    whole = x.clone().requires_grad_(True)
    out = bn(whole)
    (out * torch.cat([torch.arange(out.numel() // 2).reshape(4, 3, 4, 4)] * 2)).sum().backward()
    torch.testing.assert_close(torch.cat([r["out"] for r in ranks]), out.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.cat([r["grad"] for r in ranks]), whole.grad, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(ranks[0]["weight_grad"] + ranks[1]["weight_grad"], bn.weight.grad, atol=1e-4, rtol=1e-4)
    biased_var = x.var(dim=(0, 2, 3), unbiased=False)
    for r in ranks:
        torch.testing.assert_close(r["running_mean"], bn.running_mean)
        torch.testing.assert_close(r["running_var"], state["running_var"] + 0.1 * (biased_var - state["running_var"]))
