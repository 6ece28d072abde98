"""The step loop every training run shares, in the shape of Detectron2's ``TrainerBase`` and
``HookBase``: :class:`TrainLoop` runs ``run_step(step, batch)`` for the steps ``start..stop-1``
and calls its hooks around each; what differs between trainings (logging, evaluation,
checkpoints, progress) is a hook.

One step:

1. the next batch is drawn (``loop.data_time``: the seconds that took);
2. ``before_step()`` of every hook; ``loop.step`` is the step about to run (0-based);
3. ``loop.outputs = run_step(loop.step, batch)``;
4. ``loop.step`` counts the step done (so it is the number of steps done);
5. ``after_step()`` of every hook, in the order given: a hook sees what the ones before it
   did (e.g. evaluate, then log the evaluation, then checkpoint).

No batch is drawn after the last step: a loader past its end would start another epoch, and
starting one may draw from the global RNG. ``after_train()`` runs when the loop ends, on an
error too (it closes files and progress bars); what only a finished loop may do (a last
evaluation, exporting) follows :meth:`TrainLoop.run`.
"""

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tqdm import tqdm

from .. import distributed as du
from . import preemption

log = logging.getLogger(__name__)


class HookBase:
    """What a :class:`TrainLoop` calls around its steps; ``self.loop`` is the loop it runs in."""

    loop: "TrainLoop"

    def before_train(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass


class TrainLoop:
    """``run_step(step, batch)`` for ``step`` in ``start..stop-1``, with ``hooks`` around it (see
    the module docstring). ``start`` is where a resumed run continues."""

    def __init__(
        self, run_step: Callable[[int, Any], Any], hooks: Iterable[HookBase] = (), start: int = 0, stop: int = 0
    ):
        self.run_step = run_step
        self.start, self.stop, self.step = start, stop, start
        self.outputs: Any = None  # what run_step returned for the last step
        self.data_time = 0.0  # seconds the last batch took to arrive
        self.step_started = 0.0  # time.perf_counter() when the last step began waiting for its batch
        self.hooks = list(hooks)
        for hook in self.hooks:
            hook.loop = self

    def run(self, batches: Iterable) -> int:
        """Run the steps on ``batches`` (one per step; an iterator already started is continued)
        and return the number of steps done, ``stop``."""
        batches = iter(batches)
        for hook in self.hooks:
            hook.before_train()
        try:
            while self.step < self.stop:
                self.step_started = time.perf_counter()
                try:
                    batch = next(batches)
                except StopIteration:
                    raise RuntimeError(f"the data ran out at step {self.step} of {self.stop}") from None
                self.data_time = time.perf_counter() - self.step_started
                for hook in self.hooks:
                    hook.before_step()
                self.outputs = self.run_step(self.step, batch)
                self.step += 1
                for hook in self.hooks:
                    hook.after_step()
        finally:
            for hook in self.hooks:
                hook.after_train()
        return self.step


def resumable_batches(loader: Iterable, sampler, start: int, steps_per_epoch: int) -> Iterator:
    """The batches of the steps ``start, start + 1, ...`` (for ever: :class:`TrainLoop` draws as
    many as it runs steps), epoch after epoch: before each epoch's loader starts, ``sampler``
    (a :class:`distill.data.ResumableSampler`) is set to that epoch and the step within it, so a
    resumed run gets the batches an uninterrupted one would have had."""
    step = start
    while True:
        epoch, step_in_epoch = divmod(step, steps_per_epoch)
        sampler.set_position(epoch, step_in_epoch)
        for batch in loader:
            yield batch
            step += 1


class CallbackHook(HookBase):
    """A hook made of functions of the loop (Detectron2's ``CallbackHook``): for what only one
    training logs or evaluates, written beside its step function."""

    def __init__(
        self,
        *,
        before_train: Callable | None = None,
        after_train: Callable | None = None,
        before_step: Callable | None = None,
        after_step: Callable | None = None,
    ):
        self._calls = {
            "before_train": before_train,
            "after_train": after_train,
            "before_step": before_step,
            "after_step": after_step,
        }

    def _call(self, name: str) -> None:
        if self._calls[name] is not None:
            self._calls[name](self.loop)

    def before_train(self) -> None:
        self._call("before_train")

    def after_train(self) -> None:
        self._call("after_train")

    def before_step(self) -> None:
        self._call("before_step")

    def after_step(self) -> None:
        self._call("after_step")


class ProgressBar(HookBase):
    """A tqdm bar over the steps on the main process (``set_postfix`` for the logging hooks)."""

    def __init__(self, desc: str, **tqdm_kwargs):
        self.desc, self.tqdm_kwargs, self.bar = desc, tqdm_kwargs, None

    def before_train(self) -> None:
        self.bar = tqdm(
            total=self.loop.stop,
            initial=self.loop.start,
            desc=self.desc,
            disable=not du.is_main_process(),
            **self.tqdm_kwargs,
        )

    def after_step(self) -> None:
        self.bar.update(1)

    def set_postfix(self, **values) -> None:
        self.bar.set_postfix(**values)

    def after_train(self) -> None:
        self.bar.close()


class PeriodicCheckpoint(HookBase):
    """``save(step)`` on the main process after every ``period``-th step, the last one, and each
    step where ``also(step)`` holds (e.g. the end of an epoch); and, in a submitit job, after the
    step during which SLURM's pre-timeout / preemption signal came, before the job is requeued
    (:mod:`.preemption`)."""

    def __init__(self, save: Callable[[int], None], period: int, also: Callable[[int], bool] | None = None):
        self.save, self.period, self.also = save, period, also

    def before_train(self) -> None:
        preemption.install()

    def after_step(self) -> None:
        step = self.loop.step
        periodic = step % self.period == 0 or step == self.loop.stop or (self.also is not None and self.also(step))
        signalled = preemption.pending() is not None
        if du.is_main_process() and (periodic or signalled):
            self.save(step)
        if signalled:
            log.warning("checkpoint saved after step %d on the signal: handing over to the requeue", step)
            preemption.hand_over()

    def after_train(self) -> None:
        preemption.uninstall()
