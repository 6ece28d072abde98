"""``python -m seed_transfer.launch package.module:function ARGS...``: ``function(ARGS)`` as a
command (its return value is the exit status). What ``torchrun -m`` runs on each node."""

import sys

from .command import resolve

if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(resolve(sys.argv[1])(sys.argv[2:]))
