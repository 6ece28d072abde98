"""Semantic segmentation transfer (FCN / DeepLabV3 with MMSegmentation) of any checkpoint.

MMSegmentation is an optional extra: nothing here imports it at module import time; the
functions that need it go through :func:`seed_transfer.segmentation.mmseg_setup.import_mmseg`,
which says how to install it when it is missing.
"""

INSTALL_HINT = (
    "segmentation transfer needs the optional MMSegmentation extra: pip install -e '.[seg]' "
    "(MMSegmentation 1.2.2, MMEngine 0.10.7, mmcv-lite 2.1.0)"
)
