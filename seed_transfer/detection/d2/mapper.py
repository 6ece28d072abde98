"""Detectron2's ``DatasetMapper``, with an image file that does not decode named in one line.

Detectron2 reads each image itself (``detection_utils.read_image``: EXIF orientation applied, a plain
``convert``), and the project keeps those pixels, as the published Detectron2 numbers do (see
:mod:`seed_core.images`). The header scan that opens a split (:func:`seed_core.bad_images.refuse_bad_images`)
finds empty, non-image and oversized files before the first iteration; a file that only decoding finds bad
(a truncated JPEG) reached the user as a traceback from a loader worker, without the file's name. Here it
is a :class:`~seed_core.errors.DataError` naming the file, as the torchvision engine's reader says it.
"""

from detectron2.data import DatasetMapper
from PIL import Image

from seed_core.bad_images import READ_ERRORS
from seed_core.errors import DataError

BAD_FILE_FIX = "a detection set is read whole, so replace the file (e.g. from the dataset's archive)"


def decode_fault(path: str) -> str | None:
    """Why the image at ``path`` does not decode (None: it decodes)."""
    try:
        with Image.open(path) as image:
            image.load()
    except READ_ERRORS as err:
        return f"{type(err).__name__}: {' '.join(str(err).split())}"
    return None


class NamingDatasetMapper(DatasetMapper):
    """``DatasetMapper`` whose read errors name the image file, when the file is what is at fault."""

    def __call__(self, dataset_dict):
        try:
            return super().__call__(dataset_dict)
        except READ_ERRORS:
            path = dataset_dict["file_name"]
            fault = decode_fault(path)  # decoded again only after a failure: the file, or something else?
            if fault is None:
                raise
            raise DataError(f"image {path} cannot be read ({fault}); {BAD_FILE_FIX}") from None
