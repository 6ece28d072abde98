"""The step loop: hooks in order around each step, no batch drawn past the last step, resumed
starts, after_train on errors, resumable batches and periodic checkpoints."""

import itertools

import pytest
import torch
from torch.utils.data import DataLoader

from distill.data import ResumableSampler
from seed_core.runtime import CallbackHook, HookBase, PeriodicCheckpoint, TrainLoop, resumable_batches


class Recorder(HookBase):
    def __init__(self, name, events):
        self.name, self.events = name, events

    def before_train(self):
        self.events.append((self.name, "before_train", self.loop.step))

    def before_step(self):
        self.events.append((self.name, "before_step", self.loop.step))

    def after_step(self):
        self.events.append((self.name, "after_step", self.loop.step, self.loop.outputs))

    def after_train(self):
        self.events.append((self.name, "after_train", self.loop.step))


def test_hooks_run_in_order_around_each_step():
    events = []

    def run_step(step, batch):
        events.append(("step", step, batch))
        return f"out{step}"

    loop = TrainLoop(run_step, [Recorder("a", events), Recorder("b", events)], start=0, stop=2)
    assert loop.run(["x", "y"]) == 2
    assert events == [
        ("a", "before_train", 0),
        ("b", "before_train", 0),
        ("a", "before_step", 0),
        ("b", "before_step", 0),
        ("step", 0, "x"),
        ("a", "after_step", 1, "out0"),
        ("b", "after_step", 1, "out0"),  # after a step: the number of steps done
        ("a", "before_step", 1),
        ("b", "before_step", 1),
        ("step", 1, "y"),
        ("a", "after_step", 2, "out1"),
        ("b", "after_step", 2, "out1"),
        ("a", "after_train", 2),
        ("b", "after_train", 2),
    ]


def test_a_resumed_loop_runs_the_remaining_steps_and_draws_no_batch_past_the_last():
    drawn = []

    def batches():
        for i in itertools.count():
            drawn.append(i)
            yield i

    steps = []
    loop = TrainLoop(lambda step, batch: steps.append((step, batch)), start=3, stop=6)
    assert loop.run(batches()) == 6
    assert steps == [(3, 0), (4, 1), (5, 2)] and drawn == [0, 1, 2]
    finished = TrainLoop(lambda step, batch: pytest.fail("a finished run runs no step"), start=6, stop=6)
    assert finished.run(batches()) == 6
    assert drawn == [0, 1, 2]


def test_after_train_runs_on_an_error_and_the_error_propagates():
    events = []

    def run_step(step, batch):
        if step == 1:
            raise FloatingPointError("loss is nan")

    with pytest.raises(FloatingPointError, match="loss is nan"):
        TrainLoop(
            run_step,
            [
                CallbackHook(
                    after_step=lambda loop: events.append(("after_step", loop.step)),
                    after_train=lambda loop: events.append(("after_train", loop.step)),
                )
            ],
            stop=3,
        ).run(range(3))
    assert events == [("after_step", 1), ("after_train", 1)]


def test_data_that_runs_out_is_an_error_naming_the_step():
    with pytest.raises(RuntimeError, match="the data ran out at step 2 of 4"):
        TrainLoop(lambda step, batch: None, stop=4).run(range(2))


class KeyedRange(torch.utils.data.Dataset):
    """``[(index, sample_seed)]`` -> (index, sample_seed), as the samplers' datasets are keyed."""

    def __init__(self, size):
        self.size = size

    def __len__(self):
        return self.size

    def __getitem__(self, key):
        return torch.tensor(key)


def test_resumable_batches_continue_where_an_uninterrupted_run_would_be():
    keyed = KeyedRange(10)
    sampler = ResumableSampler(len(keyed), batch_size_per_rank=2, seed=7)
    loader = DataLoader(keyed, batch_size=2, sampler=sampler, drop_last=True)
    per_epoch = sampler.steps_per_epoch()
    full = [b.tolist() for b in itertools.islice(resumable_batches(loader, sampler, 0, per_epoch), 3 * per_epoch)]
    assert sorted(i for batch in full[:per_epoch] for i, _ in batch) == list(range(10))  # an epoch sees each once
    assert full[:per_epoch] != full[per_epoch : 2 * per_epoch]  # and the next one another order
    for start in (3, per_epoch, 2 * per_epoch + 1):  # mid-epoch, at an epoch's end, in a later epoch
        resumed = itertools.islice(resumable_batches(loader, sampler, start, per_epoch), 3 * per_epoch - start)
        assert [b.tolist() for b in resumed] == full[start:], start


def test_periodic_checkpoints_at_multiples_the_last_step_and_extra_steps():
    saved = []
    hook = PeriodicCheckpoint(saved.append, period=3, also=lambda step: step % 4 == 0)
    TrainLoop(lambda step, batch: None, [hook], start=1, stop=10).run(range(9))
    assert saved == [3, 4, 6, 8, 9, 10]
