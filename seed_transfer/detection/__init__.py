"""Detection transfer: backbone conversion, datasets and metrics shared by the engines
(Detectron2 in :mod:`seed_transfer.detection.d2`, imported lazily).

The install hint of the optional Detectron2 lives here, below both the engine choice
(:func:`seed_transfer.detection.plan.resolve_engine`) and the engine (:mod:`.d2`), which name it."""

DETECTRON2_INSTALL_HINT = (
    "Detectron2 is not installed. Install it with `bash tools/install_detectron2.sh` "
    "(the pure-Python sal-detectron2 0.7.2 build, CPU and GPU), or build the official "
    "release from source where a CUDA toolchain is available "
    "(https://detectron2.readthedocs.io/en/latest/tutorials/install.html)."
)
