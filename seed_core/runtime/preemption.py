"""A checkpoint when SLURM says the job must stop: its pre-timeout / preemption signal (USR2) is
held until the step that is running has finished, then the training saves a checkpoint and hands
the signal to the handler that was there before (submitit's, which requeues the job with
``--resume``: :mod:`seed_transfer.launch.job`). The requeued job continues from the step the
signal interrupted instead of from the last periodic checkpoint.

Nothing changes where no handler is installed (a run outside a submitit job: the signal keeps
its default action). A step's state is consistent only between steps, so the signal is never
acted on inside one; a step longer than the signal's lead (``launcher.signal_delay_s``) ends
the job at its time limit, and the last periodic checkpoint remains.
"""

from __future__ import annotations

import logging
import signal

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGUSR2,) if hasattr(signal, "SIGUSR2") else ()

_held: dict[int, object] = {}  # signal -> the handler it had before ours
_pending: int | None = None


def _hold(signum: int, frame) -> None:
    global _pending
    _pending = signum
    log.warning("signal %d: the step that is running finishes, then a checkpoint is saved and the job requeued", signum)


def install() -> bool:
    """Hold :data:`SIGNALS` until :func:`hand_over` where a handler of their own is installed (in a
    submitit job); returns whether any is held. Main thread only (Python's rule for handlers)."""
    global _pending
    _pending = None
    for signum in SIGNALS:
        previous = signal.getsignal(signum)
        if callable(previous) and previous is not _hold:
            _held[signum] = previous
            signal.signal(signum, _hold)
    return bool(_held)


def pending() -> int | None:
    """The signal that came since :func:`install`, or None."""
    return _pending


def uninstall() -> None:
    """Give every held signal its handler back."""
    for signum, previous in _held.items():
        signal.signal(signum, previous)
    _held.clear()


def hand_over() -> None:
    """Give the held signals their handlers back and call the one of the signal that came (it
    requeues the job and ends this process)."""
    global _pending
    signum, previous = _pending, _held.get(_pending)
    uninstall()
    _pending = None
    if signum is not None and callable(previous):
        previous(signum, None)
