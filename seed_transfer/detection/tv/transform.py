"""torchvision's ``GeneralizedRCNNTransform`` with Detectron2's input settings.

Detectron2 resizes in its data loader (``ResizeShortestEdge``: short side from
``INPUT.MIN_SIZE_TRAIN``, "choice" or "range" sampling, long side capped at ``MAX_SIZE_TRAIN``;
``MIN_SIZE_TEST`` / ``MAX_SIZE_TEST`` at test time, 0 = no resize), normalises with
``MODEL.PIXEL_MEAN/STD`` (0-255 scale, in ``INPUT.FORMAT`` channel order) and pads to the
backbone's size divisibility (32 for FPN, none for C4). torchvision does the same inside the
model on 0-1 RGB tensors, with one size list and one max size for both phases; this subclass
takes both phases' sizes. Detections are mapped back to the input image size by torchvision.
"""

import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform, _resize_image_and_masks, resize_boxes

from seed_core.config import ConfigError


def pixel_stats(cfg) -> tuple[list[float], list[float]]:
    """``MODEL.PIXEL_MEAN/STD`` (0-255, ``INPUT.FORMAT`` order) as torchvision's 0-1 RGB values."""
    mean, std, fmt = list(cfg.MODEL.PIXEL_MEAN), list(cfg.MODEL.PIXEL_STD), cfg.INPUT.FORMAT
    if fmt not in ("RGB", "BGR"):
        raise ConfigError(f"INPUT.FORMAT {fmt!r}: the torchvision engine reads RGB or BGR configs")
    if len(mean) != 3 or len(std) != 3:
        raise ConfigError(f"MODEL.PIXEL_MEAN/STD need 3 values, got {mean} / {std}")
    if fmt == "BGR":  # images are read as RGB; Detectron2's BGR statistics are reversed to match
        mean, std = mean[::-1], std[::-1]
    return [m / 255.0 for m in mean], [s / 255.0 for s in std]


class D2Transform(GeneralizedRCNNTransform):
    """Normalise, resize (train: sampled short side; test: fixed), pad, as Detectron2's input."""

    def __init__(self, cfg, size_divisible: int):
        mean, std = pixel_stats(cfg)
        inp = cfg.INPUT
        sizes = list(inp.MIN_SIZE_TRAIN) if isinstance(inp.MIN_SIZE_TRAIN, list) else [inp.MIN_SIZE_TRAIN]
        if inp.MIN_SIZE_TRAIN_SAMPLING not in ("choice", "range") or (
            inp.MIN_SIZE_TRAIN_SAMPLING == "range" and len(sizes) != 2
        ):
            raise ConfigError(
                f"INPUT.MIN_SIZE_TRAIN_SAMPLING {inp.MIN_SIZE_TRAIN_SAMPLING!r} with MIN_SIZE_TRAIN "
                f"{sizes}: use 'choice', or 'range' with two sizes"
            )
        super().__init__(sizes, inp.MAX_SIZE_TRAIN, mean, std, size_divisible=max(size_divisible, 1))
        self.sampling, self.max_size_train = inp.MIN_SIZE_TRAIN_SAMPLING, inp.MAX_SIZE_TRAIN
        self.min_size_test, self.max_size_test = inp.MIN_SIZE_TEST, inp.MAX_SIZE_TEST

    def resize(self, image, target=None):
        if self.training:
            if self.sampling == "range":
                size = int(torch.randint(self.min_size[0], self.min_size[1] + 1, (1,)).item())
            else:
                size = self.torch_choice(self.min_size)
            max_size = self.max_size_train
        else:
            size, max_size = self.min_size_test, self.max_size_test
        if size == 0:  # Detectron2: MIN_SIZE_TEST 0 disables resizing
            return image, target
        h, w = image.shape[-2:]
        image, target = _resize_image_and_masks(image, size, max_size, target)
        if target is not None:
            target["boxes"] = resize_boxes(target["boxes"], (h, w), image.shape[-2:])
        return image, target
