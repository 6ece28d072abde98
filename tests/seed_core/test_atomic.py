"""seed_core.atomic: atomic, durable writes with the permissions of a plain open(), and the
clean-up of what a killed write leaves."""

import errno
import os
import pickle
import stat
import subprocess
import sys
import textwrap

import pytest
import torch

from seed_core.atomic import DiskFull, atomic_save, remove_stale_temporaries


@pytest.fixture
def umask():
    """Set the process umask for one test, restoring it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_permissions_of_open(tmp_path, umask, mask, mode):
    umask(mask)
    path = tmp_path / "student.pth"
    atomic_save({"w": torch.zeros(2)}, path)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert stat.S_IMODE(plain.stat().st_mode) == mode  # the same as any file the user creates


def test_file_and_folder_are_fsynced_around_the_rename(tmp_path, monkeypatch):
    synced, replaced = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append(len(synced)), real_replace(a, b)))
    atomic_save([1, 2], tmp_path / "checkpoint.pth", dump=pickle.dump)
    assert synced == [False, True]  # the file's bytes, then the folder entry
    assert replaced == [1]  # the rename comes after the file's fsync, before the folder's


def test_a_failed_write_keeps_the_last_good_file(tmp_path):
    path = tmp_path / "checkpoint.pth"
    atomic_save({"step": 1}, path)

    def broken(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save({"step": 2}, path, dump=broken)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth"]


def test_stale_temporaries_of_a_killed_write_are_removed(tmp_path, caplog):
    """A real SIGKILL in the middle of a save leaves a hidden temporary; only those of the named
    files are removed."""
    script = textwrap.dedent(f"""
        import os, signal
        from seed_core.atomic import atomic_save
        def dump(obj, f):
            f.write(b"x" * 1000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        atomic_save(None, {str(tmp_path / "checkpoint.pth")!r}, dump=dump)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == -9
    (stale,) = tmp_path.glob(".checkpoint.pth.*.tmp")
    assert stale.stat().st_size == 1000
    keep = [tmp_path / "checkpoint.pth", tmp_path / ".student.pth.1234.tmp", tmp_path / ".checkpoint.pth.txt"]
    for path in keep:
        path.write_text("keep")
    with caplog.at_level("INFO", logger="seed_core.atomic"):
        remove_stale_temporaries(tmp_path / "checkpoint.pth", tmp_path / "other" / "nothing.pth")
    assert not stale.exists() and all(path.exists() for path in keep)
    assert f"removed {stale} (0.0 MB), left by an interrupted write of checkpoint.pth" in caplog.messages


FILE_SIZE_LIMITED_SAVE = """
import resource, sys, torch
from seed_core.atomic import DiskFull, atomic_save
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))  # 1 MiB
atomic_save(torch.zeros(3), sys.argv[1])  # small: fits
try:
    atomic_save(torch.zeros(1 << 20), sys.argv[1])  # 4 MiB: torch's zip writer fails with a bare RuntimeError
except DiskFull as err:
    print(err)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_the_file_size_limit_is_named_and_the_last_good_file_kept(tmp_path):
    target = tmp_path / "checkpoint.pth"
    done = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMITED_SAVE, str(target)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        f"the write of {target} reached this process's file-size limit (1.0 MB, ulimit -f): checkpoint.pth was not "
        "written and the one there before, if any, is intact; raise the limit (ulimit -f unlimited, or the job's "
        "file-size limit) and run again"
    )
    assert torch.load(target).shape == (3,) and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pth"]


def test_a_write_too_big_for_the_file_system_says_so(tmp_path):
    def too_big(obj, f):
        raise OSError(errno.EFBIG, "File too large")

    with pytest.raises(DiskFull, match="reached .*file-size limit|reached the largest file its file system allows"):
        atomic_save(b"x", tmp_path / "f", dump=too_big)
