"""A backbone's last feature map, caught during its ordinary forward (for dense distillation).

The backbones map images to pooled features (N x D). Dense distillation also needs the grid those
features were pooled from, without a second forward pass: a :class:`FeatureMapTap` hooks the
backbone once and keeps, after every forward, ``tap.map``: N x C x h x w.

- CNNs (torchvision ResNets, MobileNetV3s, EfficientNets; timm CNNs; any net with a global
  average-pool module): the input of the last one; torchvision's MobileNetV2, which pools with a
  function call, the output of its ``features``.
- Vision transformers (:class:`distill.vit.DinoViT`, timm's ``VisionTransformer``): the patch
  tokens after the final norm, class and register tokens dropped, laid out on the patch grid.
"""

import torch
import torch.nn as nn


def _is_global_pool(module: nn.Module) -> bool:
    # timm's SelectAdaptivePool2d wraps an adaptive pool of its own: take the wrapper, whose input is the map
    return isinstance(module, nn.AdaptiveAvgPool2d) or type(module).__name__ == "SelectAdaptivePool2d"


def _prefix_tokens(backbone: nn.Module) -> int | None:
    """How many tokens precede the patch tokens (class + registers), or None for a non-ViT."""
    if hasattr(backbone, "num_registers") and hasattr(backbone, "tokens"):  # distill.vit.DinoViT
        return 1 + backbone.num_registers
    if hasattr(backbone, "patch_embed") and hasattr(backbone, "num_prefix_tokens"):  # timm ViT family
        return backbone.num_prefix_tokens
    return None


class FeatureMapTap:
    """Keeps the last feature map of ``backbone`` (N x C x h x w) from each of its forwards in ``map``."""

    def __init__(self, backbone: nn.Module):
        self.map: torch.Tensor | None = None
        self._grid: tuple[int, int] | None = None
        prefix = _prefix_tokens(backbone)
        if prefix is not None:
            self._prefix = prefix
            # patch_embed gives N x h x w x D (NHWC, as both DinoViT and timm's dynamic-size ViTs run it)
            backbone.patch_embed.register_forward_hook(self._keep_grid)
            backbone.norm.register_forward_hook(self._keep_tokens)
            return
        pools = [module for module in backbone.modules() if _is_global_pool(module)]
        if pools:
            pools[-1].register_forward_pre_hook(self._keep_pool_input)
        elif isinstance(getattr(backbone, "features", None), nn.Module):
            backbone.features.register_forward_hook(self._keep_output)
        else:
            raise ValueError(
                f"{type(backbone).__name__} has no global average pool to take its feature map from "
                "(dense distillation needs a CNN with one, or a ViT)"
            )

    def _keep_pool_input(self, module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.map = inputs[0]  # N x C x h x w

    def _keep_output(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        self.map = output  # N x C x h x w

    def _keep_grid(self, module: nn.Module, inputs, output: torch.Tensor) -> None:
        if output.dim() != 4:
            raise ValueError(f"the ViT's patch embedding gave {tuple(output.shape)}, not N x h x w x D")
        self._grid = output.shape[1], output.shape[2]

    def _keep_tokens(self, module: nn.Module, inputs, tokens: torch.Tensor) -> None:
        height, width = self._grid
        patches = tokens[:, self._prefix :]  # N x hw x D, row by row
        self.map = patches.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)  # N x D x h x w
