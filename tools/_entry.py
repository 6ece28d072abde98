"""Imported first by every script in tools/: makes ``import distill`` find the package.

Python puts a script's folder first on sys.path, where tools/distill.py would shadow the
``distill`` package. This imports the package with the folder off the path, then puts the
path back as it was: once ``distill`` is in sys.modules the script cannot shadow it, and a
process spawned from the script (torch.multiprocessing re-runs the script) still finds this
module. This is the project's only sys.path edit; the console scripts need none.
"""

import sys
from pathlib import Path

_TOOLS = Path(__file__).resolve().parent
_path = sys.path[:]
sys.path[:] = [p for p in _path if Path(p or ".").resolve() != _TOOLS]
try:
    import distill  # noqa: E402, F401
finally:
    sys.path[:] = _path
