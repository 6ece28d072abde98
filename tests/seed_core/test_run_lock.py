import json
import os
import socket

import pytest

from seed_core.run_lock import LOCK_NAME, FolderInUse, acquire, release, run_lock


def test_the_lock_is_held_for_the_block_and_reentrant_within_a_process(tmp_path):
    with run_lock(tmp_path / "run", "distillation"):
        lock = tmp_path / "run" / LOCK_NAME
        holder = json.loads(lock.read_text())
        assert holder["pid"] == os.getpid() and holder["tool"] == "distillation"
        with run_lock(tmp_path / "run", "comparison"):  # the same process again: the report pass of a DAG
            assert lock.exists()
        assert lock.exists()  # the outer block still holds it
    assert not lock.exists()


def test_an_exception_releases_the_lock(tmp_path):
    with pytest.raises(RuntimeError):
        with run_lock(tmp_path, "distillation"):
            raise RuntimeError("a failed run")
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_live_holder_on_another_host_stops_a_second_writer_naming_it(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": "node-7", "pid": 1, "tool": "comparison", "since": "t"}))
    with pytest.raises(FolderInUse, match=r"in use by comparison \(process 1 on node-7, since t\).*delete"):
        acquire(tmp_path, "distillation")
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "node-7"  # untouched


def test_a_requeued_slurm_job_takes_over_its_own_lock(tmp_path, monkeypatch):
    # the job was killed on node-7 and requeued elsewhere: same SLURM job id, other host and pid
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    (tmp_path / LOCK_NAME).write_text(json.dumps({"host": "node-7", "pid": 1, "slurm_job_id": "4242"}))
    acquire(tmp_path, "distillation")
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == socket.gethostname()
    release(tmp_path)


def test_a_damaged_lock_file_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("{not json")
    with run_lock(tmp_path, "distillation"):
        assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()


def test_a_folder_the_lock_created_is_removed_when_nothing_was_written(tmp_path):
    with run_lock(tmp_path / "never", "distillation"):
        pass  # e.g. a run refused before it started
    assert not (tmp_path / "never").exists()
    with run_lock(tmp_path / "used", "distillation"):
        (tmp_path / "used" / "config.yaml").write_text("x: 1\n")
    assert (tmp_path / "used" / "config.yaml").exists() and not (tmp_path / "used" / LOCK_NAME).exists()
