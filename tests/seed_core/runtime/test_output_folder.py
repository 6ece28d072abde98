"""The run folder's rules (seed_core.runtime.output_folder): writable or one line, one writer, and a
run there continued or started over only when asked."""

import errno
import json
import os
import socket
from pathlib import Path

import pytest

from seed_core.run_lock import LOCK_NAME, FolderInUse
from seed_core.runtime import (
    FolderNotWritable,
    RunExists,
    check_not_overwriting,
    check_writable,
    output_folder,
    run_folder,
)

HOLDS, REMOVES = ("checkpoint.pth", "result.json"), ("checkpoint.pth", "result.json", "metrics.csv", "model_*.pth")


def test_a_file_where_the_folder_should_be_is_one_line(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(FolderNotWritable, match=r"train.output_dir=.*out is a file, not a folder"):
        check_writable(tmp_path / "out", "train.output_dir")
    with pytest.raises(FolderNotWritable, match=r"out is a file, so the folder cannot be made there"):
        check_writable(tmp_path / "out" / "run", "train.output_dir")


def test_an_unwritable_folder_is_one_line(tmp_path, monkeypatch):
    check_writable(tmp_path / "new" / "deeper")  # made later, under a folder that can be written

    def read_only(dir):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(output_folder.tempfile, "TemporaryFile", read_only)  # root writes anywhere: say it cannot
    with pytest.raises(FolderNotWritable, match=r"output_dir=.*new is not writable \(.*, where it would be made\)"):
        check_writable(tmp_path / "new", "output_dir")
    with pytest.raises(FolderNotWritable, match="Permission denied; give a folder you can write"):
        check_writable(tmp_path, "output_dir")


@pytest.mark.skipif(not Path("/sys/kernel").is_dir(), reason="needs Linux's sysfs, which nobody can write into")
def test_a_folder_nobody_can_make_is_refused_for_real():
    """For real, also as root (who writes into read-only folders): sysfs refuses new entries to everyone."""
    with pytest.raises(FolderNotWritable, match="is not writable"):
        check_writable(Path("/sys/seed_transfer_test_out"), "output_dir")


def test_a_run_is_continued_or_started_over_only_when_asked(tmp_path):
    check_not_overwriting(tmp_path, resume=False, overwrite=False, holds=HOLDS, removes=REMOVES)  # nothing there
    for name in ("checkpoint.pth", "metrics.csv", "model_0001.pth", "model_final.pth", "data.bin"):
        (tmp_path / name).write_text(name)
    with pytest.raises(RunExists) as info:
        check_not_overwriting(tmp_path, resume=False, overwrite=False, holds=HOLDS, removes=REMOVES, folder_key="k")
    assert str(info.value) == (
        f"{tmp_path} already holds a run (checkpoint.pth): continue it with --resume, start it over with "
        "--overwrite (removes checkpoint.pth, result.json, metrics.csv, model_*.pth), or give another k"
    )
    check_not_overwriting(tmp_path, resume=True, overwrite=False, holds=HOLDS, removes=REMOVES)
    assert (tmp_path / "checkpoint.pth").exists()
    check_not_overwriting(tmp_path, resume=False, overwrite=True, holds=HOLDS, removes=REMOVES)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]  # what is not the run's stays


def test_the_folder_is_locked_while_the_block_runs(tmp_path):
    out = tmp_path / "run"
    with run_folder(out, "test", resume=False, overwrite=False, holds=HOLDS, removes=REMOVES) as folder:
        assert folder == out and json.loads((out / LOCK_NAME).read_text())["tool"] == "test"
    assert not out.exists()  # nothing was written: no folder left behind
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "tool": "other"}))
    with pytest.raises(FolderInUse, match=f"is in use by other \\(process {os.getpid()}"):
        with run_folder(out, "test", resume=True, overwrite=False, holds=HOLDS, removes=REMOVES, main=True):
            pass


def test_other_ranks_take_no_lock_and_check_nothing(tmp_path, monkeypatch):
    (tmp_path / "checkpoint.pth").write_text("a run")
    monkeypatch.setenv("RANK", "1")
    with run_folder(tmp_path, "test", resume=False, overwrite=False, holds=HOLDS, removes=REMOVES):
        assert not (tmp_path / LOCK_NAME).exists()
