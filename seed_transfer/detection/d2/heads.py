"""C4 ROI heads whose res5 holds the pretrained ``layer4`` of every ResNet depth.

Detectron2's ``Res5ROIHeads`` always builds res5 from BottleneckBlocks, so the ``layer4``
weights of a ResNet-18/34 would not fit (they are skipped, and res5 stays random). The heads
here build res5 like the backbone's own stage:

- depth 18/34: BasicBlocks 256 -> 512 channels, stride 2 in the first block, 2 (R18) or
  3 (R34) blocks, as ``build_resnet_backbone`` builds res5 for those depths;
- depth 50/101/152: Detectron2's three BottleneckBlocks, unchanged.

The box predictor and the (C4) mask head take res5's output channels: 512 for R18/R34,
2048 for R50+. Config keys::

    MODEL.ROI_HEADS.NAME: "Res5ROIHeadsAnyDepth"    # Res5ROIHeads, any depth
    MODEL.ROI_HEADS.NAME: "Res5ROIHeadsExtraNorm"   # MoCo's detection protocol: + a norm after res5
    MODEL.RESNETS.DEPTH: 18                          # picks the block type
    MODEL.RESNETS.NORM: "naiveSyncBN"                # res5 and the extra norm (MoCo's; "BN" in one process)
"""

from detectron2.layers import get_norm
from detectron2.modeling import ROI_HEADS_REGISTRY
from detectron2.modeling.backbone.resnet import BasicBlock, ResNet
from detectron2.modeling.roi_heads import Res5ROIHeads
from torch import nn

# Blocks in res5 (layer4) for the BasicBlock depths.
_BASIC_RES5_BLOCKS = {18: 2, 34: 3}


class Res5ROIHeadsAnyDepth(Res5ROIHeads):
    """``Res5ROIHeads`` with a BasicBlock res5 for ResNet-18/34 (BottleneckBlocks otherwise)."""

    @classmethod
    def _build_res5_block(cls, cfg) -> tuple[nn.Sequential, int]:
        depth = cfg.MODEL.RESNETS.DEPTH
        if depth not in _BASIC_RES5_BLOCKS:
            return super()._build_res5_block(cfg)
        out_channels = cfg.MODEL.RESNETS.RES2_OUT_CHANNELS * 2**3  # res5 is 8x res2: 512
        num_blocks = _BASIC_RES5_BLOCKS[depth]
        blocks = ResNet.make_stage(
            BasicBlock,
            num_blocks,
            stride_per_block=[2] + [1] * (num_blocks - 1),
            in_channels=out_channels // 2,
            out_channels=out_channels,
            norm=cfg.MODEL.RESNETS.NORM,
        )
        return nn.Sequential(*blocks), out_channels


class Res5ROIHeadsExtraNorm(Res5ROIHeadsAnyDepth):
    """MoCo's C4 head (moco/detection/train_net.py): res5, then one more ``MODEL.RESNETS.NORM``
    layer over its output. With synchronised BN everywhere the head's input statistics are normalised
    the same way as in the backbone, which is what makes fine-tuning from self-supervised
    weights stable. The extra norm is not in the pretrained file (it starts at identity)."""

    @classmethod
    def _build_res5_block(cls, cfg) -> tuple[nn.Sequential, int]:
        res5, out_channels = super()._build_res5_block(cfg)
        res5.add_module("norm", get_norm(cfg.MODEL.RESNETS.NORM, out_channels))
        return res5, out_channels


HEADS = (Res5ROIHeadsAnyDepth, Res5ROIHeadsExtraNorm)


def register_heads() -> None:
    """Register :data:`HEADS` in ``ROI_HEADS_REGISTRY``; a name already there is left as it is
    (the registry refuses duplicates), so calling this again, or re-importing, is harmless."""
    for head in HEADS:
        if head.__name__ not in ROI_HEADS_REGISTRY:
            ROI_HEADS_REGISTRY.register(head)


register_heads()
