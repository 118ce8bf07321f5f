"""Tests for ``fgrad.data``'s loaders: MNIST-1D (generation, cache), scikit-learn digits,
and the idx format of MNIST / Fashion-MNIST (files written here, including broken ones).

MNIST-1D is generated once for the module (a few seconds) into a temporary cache
directory; only the test of regeneration generates it a second time.
"""

from __future__ import annotations

import gzip
import random as pyrandom
import shutil
import struct
import sys

import mnist1d.data
import numpy as np
import pytest
import sklearn.datasets

from fgrad import data, random

_MNIST1D_FILE = "mnist1d_default_seed42.npz"


# --- MNIST-1D ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """(cache directory, arrays from the first load, which generates them)."""
    cache = tmp_path_factory.mktemp("fgrad_data")
    return cache, data.load_mnist1d(cache_dir=cache)


def _no_generation(*args, **kwargs):
    raise AssertionError("make_dataset was called although the cache should be used")


def _assert_same(a, b):
    for part_a, part_b in zip(a, b):
        for array_a, array_b in zip(part_a, part_b):
            assert array_a.dtype == array_b.dtype
            np.testing.assert_array_equal(array_a, array_b)


def test_mnist1d_shapes_dtypes_values(generated):
    _, ((x, y), (x_test, y_test)) = generated
    assert x.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert y.shape == (4000,) and y_test.shape == (1000,)
    assert x.dtype == x_test.dtype == np.float32 and y.dtype == y_test.dtype == np.int32
    assert np.isfinite(x).all() and np.isfinite(x_test).all()
    both = np.concatenate([x, x_test]).astype(np.float64)
    assert abs(both.mean()) < 1e-5 and abs(both.std() - 1.0) < 1e-5  # standardized globally
    counts = np.bincount(np.concatenate([y, y_test]))
    assert counts.tolist() == [500] * 10  # 5000 examples, 500 per class before the split
    assert 350 < np.bincount(y, minlength=10).min() and np.bincount(y).max() < 450


def test_mnist1d_second_load_uses_the_cache(generated, monkeypatch):
    cache, first = generated
    assert (cache / _MNIST1D_FILE).is_file()
    monkeypatch.setattr(mnist1d.data, "make_dataset", _no_generation)
    _assert_same(data.load_mnist1d(cache_dir=cache), first)
    # With a cache, the package is not even needed.
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    _assert_same(data.load_mnist1d(cache_dir=str(cache)), first)


def test_mnist1d_default_cache_dir_comes_from_the_environment(generated, monkeypatch, tmp_path):
    cache, first = generated
    shutil.copy(cache / _MNIST1D_FILE, tmp_path / _MNIST1D_FILE)
    monkeypatch.setattr(mnist1d.data, "make_dataset", _no_generation)
    monkeypatch.setenv("FGRAD_DATA_DIR", str(tmp_path))
    _assert_same(data.load_mnist1d(), first)


def test_mnist1d_regenerates_a_broken_cache_identically(generated, monkeypatch, tmp_path):
    _, first = generated
    (tmp_path / _MNIST1D_FILE).write_bytes(b"not an npz file")
    real_make_dataset, raw = mnist1d.data.make_dataset, []

    def recording_make_dataset(args):
        assert args.seed == 42 and args.num_samples == 5000  # the package's defaults
        raw.append(real_make_dataset(args))
        return raw[-1]

    monkeypatch.setattr(mnist1d.data, "make_dataset", recording_make_dataset)
    np.random.seed(123)
    pyrandom.seed(123)
    np_state, py_state = np.random.get_state(), pyrandom.getstate()
    second = data.load_mnist1d(cache_dir=tmp_path)
    assert len(raw) == 1
    _assert_same(second, first)  # deterministic: a fresh generation gives the same arrays
    (x, y), (x_test, y_test) = second
    np.testing.assert_array_equal(x, raw[0]["x"].astype(np.float32))
    np.testing.assert_array_equal(y_test, raw[0]["y_test"])
    # make_dataset reseeds the global generators; the loader puts them back.
    assert pyrandom.getstate() == py_state
    after = np.random.rand()
    np.random.set_state(np_state)
    assert after == np.random.rand()
    monkeypatch.setattr(mnist1d.data, "make_dataset", _no_generation)
    _assert_same(data.load_mnist1d(cache_dir=tmp_path), first)  # the cache was rewritten


def test_mnist1d_without_the_package(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "mnist1d", None)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)
    with pytest.raises(ImportError, match=r"load_mnist1d needs the 'mnist1d' package.*"
                                          r"pip install mnist1d \(or pip install "
                                          r"'fgrad\[examples\]'\)"):
        data.load_mnist1d(cache_dir=tmp_path)
    assert not (tmp_path / _MNIST1D_FILE).exists()


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("FGRAD_DATA_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert data.data_dir() == tmp_path / ".cache" / "fgrad"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.data_dir() == tmp_path / "xdg" / "fgrad"
    monkeypatch.setenv("FGRAD_DATA_DIR", str(tmp_path / "env"))
    assert data.data_dir() == tmp_path / "env"
    assert data.data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert data.data_dir("~/d") == tmp_path / "d"


# --- scikit-learn digits -------------------------------------------------------------------

def test_digits_shapes_dtypes_values():
    (x, y), (x_test, y_test) = data.load_digits()
    assert x.shape == (1438, 64) and x_test.shape == (359, 64)  # 359 = round(0.2 * 1797)
    assert x.dtype == x_test.dtype == np.float32 and y.dtype == y_test.dtype == np.int32
    assert x.min() == 0.0 and x.max() == 1.0 and x_test.max() <= 1.0
    assert set(np.unique(y).tolist()) == set(range(10))
    images, labels = sklearn.datasets.load_digits(return_X_y=True)
    # The split is a permutation of sklearn's data: same rows (with labels), scaled by 1/16.
    ours = np.concatenate([np.concatenate([x, x_test]) * 16,
                           np.concatenate([y, y_test])[:, None]], axis=1)
    theirs = np.concatenate([images, labels[:, None]], axis=1)
    np.testing.assert_array_equal(ours[np.lexsort(ours.T)], theirs[np.lexsort(theirs.T)])


def test_digits_split_is_reproducible_and_keyed():
    (x, y), (x_test, _) = data.load_digits()
    (x2, y2), _ = data.load_digits(key=random.key(0))
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    (x3, _), _ = data.load_digits(key=random.key(1))
    assert not np.array_equal(x, x3)
    (xi, _), (xi_test, _) = data.load_digits(test_size=100, flatten=False)
    assert xi.shape == (1697, 8, 8) and xi_test.shape == (100, 8, 8)
    _, (x_none, y_none) = data.load_digits(test_size=0)
    assert x_none.shape == (0, 64) and y_none.shape == (0,)


def test_digits_without_sklearn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"load_digits needs the 'scikit-learn' package.*"
                                          r"pip install scikit-learn"):
        data.load_digits()


# --- idx files -----------------------------------------------------------------------------

_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
          np.float64: 0x0E}


def _idx_bytes(array):
    """An idx file's bytes, written from the format's description (independently of fgrad)."""
    array = np.asarray(array)
    header = struct.pack(">BBBB", 0, 0, _CODES[array.dtype.type], array.ndim)
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    return header + dims + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_read_idx_hand_written_bytes(tmp_path):
    (tmp_path / "u8").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x03\x05\x06\xff")
    out = data.read_idx(tmp_path / "u8")
    assert out.dtype == np.uint8 and out.tolist() == [5, 6, 255]
    (tmp_path / "i16").write_bytes(b"\x00\x00\x0b\x02\x00\x00\x00\x01\x00\x00\x00\x02"
                                   b"\x01\x02\xff\xfe")
    out = data.read_idx(str(tmp_path / "i16"))
    assert out.dtype == np.int16 and out.dtype.isnative and out.tolist() == [[258, -2]]


@pytest.mark.parametrize("dtype", list(_CODES))
@pytest.mark.parametrize("gzipped", [False, True])
def test_read_idx_round_trip(tmp_path, dtype, gzipped):
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    raw = _idx_bytes(array)
    path = tmp_path / ("a.idx.gz" if gzipped else "a.idx")
    path.write_bytes(gzip.compress(raw) if gzipped else raw)
    out = data.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_read_idx_detects_gzip_by_content(tmp_path):
    (tmp_path / "labels").write_bytes(gzip.compress(_idx_bytes(np.arange(4, dtype=np.uint8))))
    assert data.read_idx(tmp_path / "labels").tolist() == [0, 1, 2, 3]
    (tmp_path / "plain.gz").write_bytes(_idx_bytes(np.arange(2, dtype=np.uint8)))
    assert data.read_idx(tmp_path / "plain.gz").tolist() == [0, 1]


@pytest.mark.parametrize("raw,message", [
    (b"\x00\x00", r"truncated: 2 bytes, shorter than the 4-byte idx magic number"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x07", r"bad magic number 0x01000801"),
    (b"\x00\x00\x0a\x01\x00\x00\x00\x01\x07", r"bad magic number 0x00000a01"),
    (b"\x00\x00\x08\x00", r"bad magic number 0x00000800"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", r"truncated header: 3 dimensions need 16 "
                                                  r"bytes, the file has 10"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03\x01\x02\x03",
     r"truncated: shape \(2, 3\) of uint8 needs 6 data bytes, the file has 3"),
    (b"\x00\x00\x0c\x01\x00\x00\x00\x01\x00\x00\x00\x01\x09",
     r"trailing bytes after the data: shape \(1,\) of int32 needs 4 data bytes, the file has 5"),
])
def test_read_idx_errors(tmp_path, raw, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=rf"read_idx: .*bad-idx: {message}"):
        data.read_idx(path)


def test_read_idx_broken_gzip_and_missing_file(tmp_path):
    packed = gzip.compress(_idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(ValueError, match=r"read_idx: .*cut.gz: broken gzip data .*truncated"):
        data.read_idx(tmp_path / "cut.gz")
    with pytest.raises(FileNotFoundError):
        data.read_idx(tmp_path / "nothing")


def test_load_idx(tmp_path):
    images = np.arange(3 * 2 * 2, dtype=np.uint8).reshape(3, 2, 2)
    (tmp_path / "img").write_bytes(_idx_bytes(images))
    (tmp_path / "lab").write_bytes(_idx_bytes(np.array([1, 2, 3], np.uint8)))
    (tmp_path / "lab4").write_bytes(_idx_bytes(np.arange(4, dtype=np.uint8)))
    (tmp_path / "lab2d").write_bytes(_idx_bytes(np.zeros((3, 1), np.uint8)))
    x, y = data.load_idx(tmp_path / "img", tmp_path / "lab")
    np.testing.assert_array_equal(x, images)
    assert y.tolist() == [1, 2, 3] and y.dtype == np.uint8
    with pytest.raises(ValueError, match=r"load_idx: 3 images \(shape \(3, 2, 2\)\) in .*img "
                                         r"but 4 labels in .*lab4"):
        data.load_idx(tmp_path / "img", tmp_path / "lab4")
    with pytest.raises(ValueError, match=r"load_idx: labels must be 1-dimensional, .*lab2d has "
                                         r"shape \(3, 1\)"):
        data.load_idx(tmp_path / "img", tmp_path / "lab2d")


def _write_mnist_dir(directory, rng):
    """A tiny MNIST-like directory using every naming variant load_mnist accepts."""
    splits = {"train": 6, "t10k": 4}
    arrays = {}
    for prefix, n in splits.items():
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        arrays[prefix] = (images, labels)
    (directory / "train-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(arrays["train"][0])))
    (directory / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(arrays["train"][1]))
    (directory / "t10k-images.idx3-ubyte").write_bytes(_idx_bytes(arrays["t10k"][0]))
    (directory / "t10k-labels.idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx_bytes(arrays["t10k"][1])))
    return arrays


def test_load_mnist(tmp_path):
    arrays = _write_mnist_dir(tmp_path, np.random.default_rng(1))
    (x, y), (x_test, y_test) = data.load_mnist(tmp_path)
    assert x.shape == (6, 28, 28) and x_test.shape == (4, 28, 28)
    assert x.dtype == np.float32 and y.dtype == y_test.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    np.testing.assert_allclose(x, arrays["train"][0] / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y_test, arrays["t10k"][1])
    (raw, _), (raw_test, _) = data.load_mnist(str(tmp_path), normalize=False)
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(raw_test, arrays["t10k"][0])


def test_load_mnist_missing_file(tmp_path):
    _write_mnist_dir(tmp_path, np.random.default_rng(2))
    (tmp_path / "t10k-labels.idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"load_mnist: none of \['t10k-labels-idx1-ubyte', "
                                                r"'t10k-labels-idx1-ubyte.gz', "
                                                r"'t10k-labels.idx1-ubyte', "
                                                r"'t10k-labels.idx1-ubyte.gz'\] in "):
        data.load_mnist(tmp_path)
