"""The Detectron2 engine. Importing this package needs Detectron2; nothing else in the
project imports it at module level, so the core works without it."""

from seed_core.errors import MissingDependency

INSTALL_HINT = (
    "Detectron2 is not installed. Install it with `bash tools/install_detectron2.sh` "
    "(the pure-Python sal-detectron2 0.7.2 build, CPU and GPU), or build the official "
    "release from source where a CUDA toolchain is available "
    "(https://detectron2.readthedocs.io/en/latest/tutorials/install.html)."
)


def require_detectron2():
    """Import and return the ``detectron2`` module, or fail with the install instructions."""
    try:
        import detectron2
    except ImportError as err:
        raise MissingDependency(INSTALL_HINT) from err
    return detectron2
