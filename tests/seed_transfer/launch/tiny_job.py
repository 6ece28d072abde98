"""A tiny distillation as a command, ``main(argv) -> status``, for the launcher's tests; the jobs
import it as ``tiny_job:main`` (the tests put this folder and tests/distill on PYTHONPATH).

    main([DATA, OUT, key=value ..., "--resume", "--wait-for-signal-at", STEP])

``--wait-for-signal-at STEP``: when not resuming, the run writes ``OUT/waiting.pid`` (its process
id) as step STEP (0-based) begins and waits there, at most 120 s, until a signal is held
(:mod:`seed_core.runtime.preemption`); then it finishes the step.
"""

import os
import time
from pathlib import Path

from train_worker import tiny_config, tiny_method

from distill.trainer import train
from seed_core.runtime import preemption

DEFAULTS = ["train.checkpoint_every=3"]  # 6 steps; checkpoints after steps 3 and 6


def main(argv: list[str]) -> int:
    argv = list(argv)
    resume = "--resume" in argv
    wait_at = None
    if "--wait-for-signal-at" in argv:
        i = argv.index("--wait-for-signal-at")
        wait_at = int(argv[i + 1])
        del argv[i : i + 2]
    data_root, output_dir, *overrides = [a for a in argv if a != "--resume"]
    cfg = tiny_config(data_root, output_dir, *DEFAULTS, *overrides)
    method = tiny_method(cfg)
    if wait_at is not None and not resume:
        forward, calls = method.forward, []

        def wait_for_signal(*args, **kwargs):
            if len(calls) == wait_at:
                (Path(output_dir) / "waiting.pid").write_text(str(os.getpid()))
                deadline = time.monotonic() + 120
                while preemption.pending() is None:  # the signal is held until this step ends
                    if time.monotonic() > deadline:
                        raise RuntimeError("no signal came")
                    time.sleep(0.05)
            calls.append(1)
            return forward(*args, **kwargs)

        method.forward = wait_for_signal
    train(cfg, resume=resume, method=method)
    return 0
