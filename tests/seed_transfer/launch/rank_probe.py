"""``main([FOLDER])`` writes FOLDER/rank<RANK>.json: the distributed variables this process was
given (the launcher tests run it under torchrun and as a submitit job of two tasks)."""

import json
import os
from pathlib import Path

KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def main(argv: list[str]) -> int:
    env = {key: os.environ.get(key) for key in KEYS}
    (Path(argv[0]) / f"rank{env['RANK']}.json").write_text(json.dumps(env))
    return 0
