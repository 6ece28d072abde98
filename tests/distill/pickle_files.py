"""Pickle files for the tests of the restricted unpickler (seed_core.safe_pickle) and its readers:
a payload that would create a marker file when unpickled, and pickles as Python 2 wrote them
(the official CIFAR batches, Caffe2 / Detectron1 weights)."""

import io
import os
import pickle
import struct
from pathlib import Path


class Payload:
    """Unpickled by a plain ``pickle.load``, runs ``touch <marker>`` (the pickle names ``posix.system``)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def write_pickle(path: Path, obj, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2's cPickle wrote it: ``str`` (here bytes and ASCII text) as BINSTRING."""

    def save_binstring(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    def save_text(self, obj):
        if obj.isascii():
            self.save_binstring(obj)
        else:
            pickle._Pickler.save_str(self, obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_binstring, str: save_text}


def python2_pickle(obj) -> bytes:
    """``obj`` pickled as Python 2 with numpy 1.x pickled it: protocol 2, strings as BINSTRING
    (read back as bytes with ``encoding="bytes"``), numpy's functions under ``numpy.core``."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.", b"cnumpy.core.")
