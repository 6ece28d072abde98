"""The trainers' set-up (seed_core.runtime.setup): a full disk while a checkpoint is written and
Ctrl-C during training each end with one line that says where the last checkpoint is and how
to continue; the NaN note names a checkpoint only when one exists; a file that is no training
state is refused on resume, naming what it is."""

import errno
import os

import pytest
import torch
from full_disk import FullDiskFile

from seed_core import atomic
from seed_core.atomic import DiskFull, atomic_save
from seed_core.errors import EXIT_INTERRUPTED, CheckpointError, UserError, report_user_error
from seed_core.runtime import (
    CHECKPOINT_NAME,
    TrainingInterrupted,
    TrainLoop,
    read_training_state,
    save_training_state,
    start_training,
)
from seed_core.runtime.setup import continue_command


def tiny_state():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(4, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def writer(model, optimizer):
    def write(path, step):
        save_training_state(path, step=step, model=model.state_dict(), optimizer=optimizer, scaler=None, fingerprint={})

    return write


def fill_the_disk(monkeypatch, room: int = 100) -> None:
    real_fdopen = os.fdopen
    monkeypatch.setattr(atomic.os, "fdopen", lambda fd, mode: FullDiskFile(real_fdopen(fd, mode), room))


def test_continue_command_adds_resume_and_drops_overwrite(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    argv = ["tools/eval_linear.py", "--config", "a b.yaml", "--overwrite", "optim.epochs=3"]
    assert continue_command(False, argv) == "python tools/eval_linear.py --config 'a b.yaml' optim.epochs=3 --resume"
    assert continue_command(True, [*argv[:-1], "--resume"]).count("--resume") == 1
    assert continue_command(True, ["seed-compare", "--config", "c.yaml"]) == "seed-compare --config c.yaml"
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert continue_command(False, ["tools/distill.py"]).startswith("torchrun --nproc_per_node=4 tools/distill.py")


def test_a_full_disk_during_a_checkpoint_is_one_line_and_keeps_the_previous_one(tmp_path, monkeypatch):
    setup = start_training(tmp_path, amp=False, resume=False)
    model, optimizer = tiny_state()
    hook = setup.checkpoint_hook(writer(model, optimizer), period=1)
    hook.save(1)
    before = (tmp_path / CHECKPOINT_NAME).read_bytes()
    fill_the_disk(monkeypatch)
    with pytest.raises(DiskFull) as info:
        hook.save(2)
    message = str(info.value)
    assert f"the disk holding {tmp_path / CHECKPOINT_NAME} is full" in message
    assert "the checkpoint of step 2 was not written" in message
    assert f"the previous one is intact ({tmp_path / CHECKPOINT_NAME}, step 1)" in message
    assert "--resume" in message and isinstance(info.value, UserError)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT_NAME]  # no temporary left


def test_a_full_disk_before_any_checkpoint_says_there_is_none(tmp_path, monkeypatch):
    setup = start_training(tmp_path / "run", amp=False, resume=False)
    model, optimizer = tiny_state()
    fill_the_disk(monkeypatch)
    with pytest.raises(DiskFull, match="the checkpoint of step 5 was not written and there is no earlier one"):
        setup.save(5, lambda path: writer(model, optimizer)(path, 5))


def test_atomic_save_tells_a_full_disk_from_other_failures(tmp_path, monkeypatch):
    atomic_save(b"old", tmp_path / "f", dump=lambda obj, f: f.write(obj))

    def no_space(obj, f):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFull, match=r"the disk holding .*f is full.*the one there before, if any, is intact"):
        atomic_save(b"new", tmp_path / "f", dump=no_space)

    def zip_writer_failure(obj, f):  # torch's writer: a bare RuntimeError, no errno
        raise RuntimeError("[enforce fail at inline_container.cc] . PytorchStreamWriter failed writing file data/0")

    with pytest.raises(RuntimeError) as info:  # plenty of room: not a full disk, the error as it is
        atomic_save(b"new", tmp_path / "f", dump=zip_writer_failure)
    assert not isinstance(info.value, DiskFull)
    monkeypatch.setattr(atomic, "_free_bytes", lambda folder: 4096)  # next to nothing left
    with pytest.raises(DiskFull, match="0.0 MB left"):
        atomic_save(b"new", tmp_path / "f", dump=zip_writer_failure)
    assert (tmp_path / "f").read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f"]


def interrupted_at(step_to_interrupt: int):
    def run_step(step, batch):
        if step == step_to_interrupt:
            raise KeyboardInterrupt
        return step

    return run_step


def test_ctrl_c_names_the_last_checkpoint_and_the_command_that_continues(tmp_path, monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr("sys.argv", ["tools/eval_linear.py", "--config", "x.yaml"])
    setup = start_training(tmp_path, amp=False, resume=False)
    model, optimizer = tiny_state()
    hooks = [setup.checkpoint_hook(writer(model, optimizer), period=2)]
    with pytest.raises(TrainingInterrupted) as info:
        setup.run(TrainLoop(interrupted_at(4), hooks, start=0, stop=10), iter(range(10)))
    message = str(info.value)
    assert message == (
        f"interrupted (Ctrl-C) during step 5 of 10: the last checkpoint is {tmp_path / CHECKPOINT_NAME} (step 4); "
        "continue with: python tools/eval_linear.py --config x.yaml --resume"
    )
    assert read_training_state(tmp_path / CHECKPOINT_NAME)["step"] == 4
    assert info.value.exit_status == EXIT_INTERRUPTED == 130


def test_ctrl_c_before_the_first_checkpoint_says_so(tmp_path, capsys):
    setup = start_training(tmp_path, amp=False, resume=True)
    with pytest.raises(TrainingInterrupted) as info:
        setup.run(TrainLoop(interrupted_at(0), [], start=0, stop=3), iter(range(3)))
    assert f"no checkpoint was written yet ({tmp_path / CHECKPOINT_NAME} does not exist)" in str(info.value)
    assert report_user_error(info.value) == 130
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_the_nonfinite_note_names_a_checkpoint_only_when_there_is_one(tmp_path):
    setup = start_training(tmp_path, amp=False, resume=False)
    assert setup.nonfinite_note() == "no checkpoint was written before it"
    model, optimizer = tiny_state()
    setup.save(3, lambda path: writer(model, optimizer)(path, 3))
    assert setup.nonfinite_note() == f"the last good checkpoint is {tmp_path / CHECKPOINT_NAME}, step 3"


def test_resume_reads_the_checkpoint_and_starts_over_without_one(tmp_path):
    assert start_training(tmp_path, amp=False, resume=True).read_checkpoint() is None
    model, optimizer = tiny_state()
    writer(model, optimizer)(tmp_path / CHECKPOINT_NAME, 7)
    (tmp_path / f".{CHECKPOINT_NAME}.0123abcd.tmp").write_bytes(b"half a checkpoint")
    setup = start_training(tmp_path, amp=False, resume=True)
    assert not list(tmp_path.glob("*.tmp"))  # what a killed save left is removed at the start
    assert setup.read_checkpoint()["step"] == 7 and setup.saved_step == 7
    assert start_training(tmp_path, amp=False, resume=False).read_checkpoint() is None
    assert setup.scaler is None and setup.wrap(model) is model  # the CPU: no AMP; one process: no DDP


def test_an_exported_student_is_not_a_training_checkpoint(tmp_path):
    torch.save({"format": "seed-transfer/student-v1", "arch": "resnet18", "state_dict": {}, "meta": {}}, tmp_path / "s")
    with pytest.raises(CheckpointError, match="is a seed-transfer/student-v1 file, not a training checkpoint"):
        read_training_state(tmp_path / "s")
    torch.save({"state_dict": {}}, tmp_path / "w")
    with pytest.raises(CheckpointError, match="weights without a training state"):
        read_training_state(tmp_path / "w")


def test_a_checkpoint_this_run_did_not_read_or_write_is_not_named_as_its_own(tmp_path):
    model, optimizer = tiny_state()
    writer(model, optimizer)(tmp_path / CHECKPOINT_NAME, 9)  # an earlier run's, in a folder used without --resume
    setup = start_training(tmp_path, amp=False, resume=False)
    assert setup.nonfinite_note() == "no checkpoint was written before it"
    with pytest.raises(TrainingInterrupted, match="no checkpoint was written by this run yet .* an earlier run's"):
        setup.run(TrainLoop(interrupted_at(0), [], start=0, stop=3), iter(range(3)))
