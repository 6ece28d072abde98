"""Detection transfer: backbone conversion, datasets and metrics shared by the engines
(Detectron2 in :mod:`seed_transfer.detection.d2`, imported lazily)."""
