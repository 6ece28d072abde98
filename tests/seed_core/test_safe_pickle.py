"""The restricted unpickler: arrays, numbers and strings load, from any protocol and from Python 2;
anything else is refused, naming the file and the class, before it runs."""

import collections
import pickle
import re

import numpy as np
import pytest
import torch
from pickle_files import Payload, python2_pickle, write_pickle

from seed_core import safe_pickle
from seed_core.errors import UserError


def weights() -> dict:
    """A Detectron2-style weights file, with the other plain values pickles carry."""
    return {
        "model": {"stem.conv1.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2), "res2.0.n": np.ones(3)},
        "__author__": "MOCO",
        "matching_heuristics": True,
        "epoch": np.int64(200),
        "best": np.float64(76.1),
        "names": collections.OrderedDict(a=b"\x00\xff", b=(1, 2.5, None, "text")),
        "empty": np.zeros((0, 4), np.uint8),
        "blank": b"",  # bytes() under protocols 0-2
    }


def assert_same(loaded, expected):
    assert type(loaded) is type(expected) or isinstance(loaded, type(expected)), (loaded, expected)
    if isinstance(expected, np.ndarray):
        assert loaded.dtype == expected.dtype and loaded.shape == expected.shape
        np.testing.assert_array_equal(loaded, expected)
    elif isinstance(expected, dict):
        assert list(loaded) == list(expected)
        for key in expected:
            assert_same(loaded[key], expected[key])
    elif isinstance(expected, tuple | list):
        assert len(loaded) == len(expected)
        for a, b in zip(loaded, expected):
            assert_same(a, b)
    else:
        assert loaded == expected


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("encoding", ["latin1", "bytes", "ASCII"])
def test_arrays_numbers_and_strings_load_from_every_protocol(tmp_path, protocol, encoding):
    path = write_pickle(tmp_path / "w.pkl", weights(), protocol)
    assert_same(safe_pickle.load(path, "a weights file", encoding=encoding), weights())


def test_a_python2_pickle_loads_as_the_official_files_were_written(tmp_path):
    """cPickle protocol 2, strings as BINSTRING, numpy 1.x names (numpy.core.multiarray._reconstruct)."""
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    raw = python2_pickle({b"data": data, b"labels": [3, 1], b"batch_label": b"testing batch 1 of 1"})
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw and b"_codecs" not in raw
    (tmp_path / "test_batch").write_bytes(raw)
    loaded = safe_pickle.load(tmp_path / "test_batch", "a CIFAR file", encoding="bytes")
    assert list(loaded) == [b"data", b"labels", b"batch_label"] and loaded[b"labels"] == [3, 1]
    np.testing.assert_array_equal(loaded[b"data"], data)
    as_text = safe_pickle.load(tmp_path / "test_batch", "a CIFAR file", encoding="latin1")  # Detectron2's choice
    assert as_text["batch_label"] == "testing batch 1 of 1"
    np.testing.assert_array_equal(as_text["data"], data)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_payload_is_refused_naming_the_file_and_the_class_and_never_runs(tmp_path, protocol):
    marker = tmp_path / "marker"
    obj = weights()
    obj["model"]["res2.0.n"] = [1, {"deep": Payload(marker)}]  # anywhere in the file
    path = write_pickle(tmp_path / "w.pkl", obj, protocol)
    with pytest.raises(safe_pickle.RefusedPickle) as refused:
        safe_pickle.load(path, "a weights file")
    assert str(refused.value) == (
        f"{path}: refused to unpickle 'posix.system': a weights file holds only arrays, numbers and strings"
    )
    assert isinstance(refused.value, UserError) and isinstance(refused.value, pickle.UnpicklingError)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # what a plain pickle.load does with the same file
    assert marker.exists()


@pytest.mark.parametrize(
    "obj, refused",
    [
        (torch.zeros(2), "torch._utils._rebuild_tensor_v2"),  # a tensor: torch.load reads those
        (eval, "builtins.eval"),
        (getattr, "builtins.getattr"),
        (np.load, "numpy.load"),  # numpy, but not an array
        ({1, 2}, "builtins.set"),  # protocol 2 names Python 2's __builtin__.set, mapped as pickle maps it
        (np.array([Payload("m")], dtype=object), "posix.system"),  # inside an object array
    ],
    ids=["tensor", "eval", "getattr", "numpy.load", "py2 set", "object array"],
)
def test_only_what_arrays_need_is_admitted(tmp_path, obj, refused):
    path = write_pickle(tmp_path / "x.pkl", {"model": obj}, protocol=2)
    with pytest.raises(safe_pickle.RefusedPickle, match=re.escape(f"refused to unpickle '{refused}'")):
        safe_pickle.load(path, "a weights file")


def test_codecs_encode_takes_text_only(tmp_path):
    """Protocol 2 writes bytes as ``_codecs.encode(text, "latin1")``; nothing else may be encoded."""
    crafted = b"\x80\x02c_codecs\nencode\nC\x03abcX\x04\x00\x00\x00zlib\x86R."  # encode(b"abc", "zlib")
    (tmp_path / "c.pkl").write_bytes(crafted)
    with pytest.raises(pickle.UnpicklingError, match="_codecs.encode of a bytes, not of text"):
        safe_pickle.load(tmp_path / "c.pkl", "a weights file")


def test_a_truncated_file_raises_what_pickle_raises(tmp_path):
    path = write_pickle(tmp_path / "w.pkl", weights())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises((pickle.UnpicklingError, EOFError)) as raised:
        safe_pickle.load(path, "a weights file")
    assert not isinstance(raised.value, safe_pickle.RefusedPickle)
