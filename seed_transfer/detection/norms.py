"""What a config's ``NORM`` values mean in one run: the same rule for both engines.

Detectron2's synchronised norms need several processes. ``SyncBN`` (PyTorch's
``SyncBatchNorm``) has no CPU kernel, so on the CPU or in one process it is plain BN.
``naiveSyncBN`` (``detectron2.layers.NaiveSyncBatchNorm``: per-process mean and mean of
squares averaged by an all-reduce; MoCo's detection protocol since moco commit d00ef73) is
plain BN in one process by definition, and also runs across CPU (gloo) processes.
"""

NORM_KEYS = ("RESNETS", "FPN", "ROI_BOX_HEAD", "ROI_MASK_HEAD")  # the MODEL sections with a NORM
SYNC_NORMS = ("SyncBN", "naiveSyncBN")


def run_norm(name: str, device: str, world_size: int) -> str:
    """The norm a layer configured as ``name`` runs as on ``device`` with ``world_size`` processes."""
    if name == "SyncBN" and (device == "cpu" or world_size == 1):
        return "BN"
    if name == "naiveSyncBN" and world_size == 1:
        return "BN"
    return name
