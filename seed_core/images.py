"""The one image reader of the project: an image file -> PIL RGB image, the same pixels for every reader.

Every reader (the distillation sources, the classification datasets, the torchvision detection
engine) opens its files with :func:`read_rgb`, so one file gives one set of pixels whichever
reads it. What it does with the images that a plain ``Image.open(path).convert("RGB")`` gets wrong:

- **Transparency** (RGBA, LA, palette or grey/RGB PNGs with a transparent colour, 16-bit ones
  too): composited on a white background (``WHITE``), as image editors and most tools do when they
  flatten an image. A straight ``convert("RGB")`` drops the alpha and keeps whatever colours
  happen to be stored under it (often black, or the remains of an edit), which the viewer of the
  file never sees. White, not the dataset mean, because it is what the image looks like on a page
  and the Tux Paint stamps (the project's offline data, photos cut out on transparent
  backgrounds) were always read so: their published numbers do not move.
- **16-bit grey** (PIL modes ``I;16``, ``I;16L``, ``I;16B``, and ``I``, 32-bit integers, which PIL
  gives for some 16-bit TIFFs and PNGs): scaled to 8 bits as ``round(v / 257)`` (0 -> 0,
  65535 -> 255, and an 8-bit value k stored as 257 k reads back as k). PIL's own conversion
  clips every value above 255 to white. 48- and 64-bit RGB(A) PNGs are read by PIL as 8-bit
  RGB(A) already (the high byte of each sample), so they need nothing more.
- **CMYK** (some JPEGs, Adobe's inverted ones included: PIL undoes the inversion): PIL's
  CMYK -> RGB conversion, as torchvision's reader; embedded ICC profiles are not applied, by
  anyone here, so the pixels are the ones torchvision-trained models saw.
- **EXIF orientation**: ignored, as torchvision's ``ImageFolder`` ignores it: a photo stored
  sideways with an orientation tag is read sideways, as the published ImageNet numbers read it.

Two engines decode their images themselves and are not routed through here: Detectron2's
``DatasetMapper`` (the ``d2`` detection engine: it applies the EXIF orientation, and converts
with PIL's plain ``convert``) and MMSegmentation's ``LoadImageFromFile`` (OpenCV: applies the
orientation, drops the alpha, scales 16 bits by 1/256). Their evaluations keep their libraries'
pixels, as their published numbers do.

Everything else (8-bit RGB, grey ``L``, bilevel ``1``, ``YCbCr``, ...) is ``convert("RGB")``
exactly as torchvision's ``pil_loader``: the same bytes as before, so no published number moves.
"""

import math
from pathlib import Path

import numpy as np
from PIL import Image

WHITE = (255, 255, 255)
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")  # grey images PIL would clip to white
TRANSPARENT_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _eight_bit_grey(image: Image.Image) -> Image.Image:
    """A 16-bit (or 32-bit integer) grey image as 8-bit ``L`` (or ``LA`` when it has a transparent
    value): ``round(v / 257)``, values outside 0-65535 clipped."""
    values = np.asarray(image).astype(np.int64)  # I;16B arrives big-endian: astype makes it native
    grey = Image.fromarray(((np.clip(values, 0, 65535) + 128) // 257).astype(np.uint8), "L")
    transparent = image.info.get("transparency")
    if isinstance(transparent, int):  # a PNG tRNS grey value, in the 16-bit scale of the samples
        alpha = np.where(values == transparent, 0, 255).astype(np.uint8)
        return Image.merge("LA", (grey, Image.fromarray(alpha, "L")))
    return grey


def to_rgb(image: Image.Image, background: tuple[int, int, int] = WHITE) -> Image.Image:
    """``image`` as an RGB image, by the rules of the module docstring (transparency composited on
    ``background``, white unless a caller asks for another)."""
    if image.mode in SIXTEEN_BIT_MODES:
        image = _eight_bit_grey(image)
    if image.mode not in TRANSPARENT_MODES and "transparency" not in image.info:
        return image.convert("RGB")  # torchvision's pil_loader: ordinary images read as they always were
    canvas = Image.new("RGBA", image.size, (*background, 255))
    canvas.alpha_composite(image.convert("RGBA"))
    return canvas.convert("RGB")


def read_rgb(
    path: str | Path, background: tuple[int, int, int] = WHITE, min_short_side: int | None = None
) -> Image.Image:
    """The image file at ``path`` as a PIL RGB image (decoded now, file closed): see the module docstring.
    PIL's errors pass through (:data:`seed_core.bad_images.READ_ERRORS` lists them): each reader
    decides what a bad file means to it.

    ``min_short_side``: a JPEG may be decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling,
    PIL's ``draft``), the smallest that keeps its shorter side at least this long; other formats,
    and JPEGs too small to reduce, are read at full size. None: always full size."""
    with Image.open(path) as image:
        if min_short_side is not None and image.format == "JPEG":
            width, height = image.size
            factor = min(width, height) / min_short_side  # the reduction the caller allows
            if factor >= 2:
                image.draft("RGB", (math.ceil(width / factor), math.ceil(height / factor)))
        return to_rgb(image, background)
