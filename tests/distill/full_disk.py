"""A file object that fails as a full disk does, for the tests of disk-full handling (the trainer's and
seed_core's): imported as a top-level module, as tiny.py is."""

import errno
import os


class FullDiskFile:
    """A file whose writes fail as on a full disk once ``room`` bytes are written."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):  # as os.fdopen's file, in a with block (dunders bypass __getattr__)
        return self

    def __exit__(self, *exc):
        self.f.close()
