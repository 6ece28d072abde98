"""The Detectron2 engine. Importing this package needs Detectron2; nothing else in the
project imports it at module level, so the core works without it."""

from seed_core.errors import MissingDependency

from .. import DETECTRON2_INSTALL_HINT as INSTALL_HINT


def require_detectron2():
    """Import and return the ``detectron2`` module, or fail with the install instructions."""
    try:
        import detectron2
    except ImportError as err:
        raise MissingDependency(INSTALL_HINT) from err
    return detectron2
