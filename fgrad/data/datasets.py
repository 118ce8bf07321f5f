"""Dataset loaders that never download: MNIST-1D, scikit-learn digits, MNIST idx files.

Every loader returns numpy arrays: inputs float32, labels int32, split as
``((x_train, y_train), (x_test, y_test))``.

* ``load_mnist1d`` generates MNIST-1D (Greydanus & Steinbach, 2020-2024) with
  the ``mnist1d`` package's ``make_dataset(get_dataset_args())``: procedural,
  deterministic (seed 42) and offline. Its ``get_dataset`` is avoided on
  purpose: it tries to download first and writes a pickle into the current
  directory. The arrays are cached as an ``.npz`` file in ``data_dir()``, so
  later calls (even without ``mnist1d`` installed) just read them.
* ``load_digits`` reads scikit-learn's 8x8 digits, which ship inside its wheel.
* ``read_idx`` / ``load_idx`` / ``load_mnist`` parse the idx format of MNIST and
  Fashion-MNIST (optionally gzipped) from files you already have.

The idx format (LeCun's MNIST page): a 4-byte magic number ``00 00 TT NN``
(``TT`` the element type: 08 uint8, 09 int8, 0B int16, 0C int32, 0D float32,
0E float64; ``NN`` the number of dimensions), then ``NN`` big-endian uint32
dimension sizes, then the elements in C order, big-endian.

Read next: ``pipeline.py`` (wrap the arrays in a ``Dataset`` to batch them).
"""

from __future__ import annotations

import gzip
import math
import os
import random
import struct
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from fgrad import random as frandom
from fgrad.data.pipeline import train_test_split

__all__ = ["data_dir", "load_mnist1d", "load_digits", "read_idx", "load_idx", "load_mnist"]

Split = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def data_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory fgrad caches generated data in (it is not created here).

    The first that is set: ``cache_dir``, the ``FGRAD_DATA_DIR`` environment
    variable, ``$XDG_CACHE_HOME/fgrad``, ``~/.cache/fgrad``.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("FGRAD_DATA_DIR"):
        return Path(os.environ["FGRAD_DATA_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "fgrad"
    return Path.home() / ".cache" / "fgrad"


# --- MNIST-1D ------------------------------------------------------------------------------

# The cache holds exactly what load_mnist1d returns for the package's default arguments.
_MNIST1D_FILE = "mnist1d_default_seed42.npz"
_MNIST1D_SHAPES = {"x": (4000, 40), "y": (4000,), "x_test": (1000, 40), "y_test": (1000,)}
_MNIST1D_DTYPES = {"x": np.float32, "y": np.int32, "x_test": np.float32, "y_test": np.int32}


def _missing(where: str, package: str, error: ImportError) -> ImportError:
    return ImportError(f"{where} needs the '{package}' package, which could not be imported "
                       f"({error}). Install it with: pip install {package} "
                       "(or pip install 'fgrad[examples]')")


def _generate_mnist1d() -> dict[str, np.ndarray]:
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise _missing("load_mnist1d", "mnist1d", e) from e
    # make_dataset seeds Python's and numpy's global generators; put them back afterwards
    # so loading data does not change the caller's random streams.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {name: np.asarray(raw[name], dtype) for name, dtype in _MNIST1D_DTYPES.items()}


def _read_mnist1d_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None when the file is missing, unreadable or not as expected."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _MNIST1D_SHAPES}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    for name, array in arrays.items():
        if array.shape != _MNIST1D_SHAPES[name] or array.dtype != _MNIST1D_DTYPES[name]:
            return None
    return arrays


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the .npz under a temporary name, then rename: a reader (another test
    worker, another process) never sees a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache may be shared
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_mnist1d(cache_dir: str | os.PathLike[str] | None = None) -> Split:
    """MNIST-1D: 4000 training and 1000 test sequences of length 40, ten classes.

    Generated offline on the first call (about a second; needs ``pip install
    mnist1d``) and cached as ``mnist1d_default_seed42.npz`` in
    ``data_dir(cache_dir)``; an unreadable cache file is regenerated. The data
    equals the published ``mnist1d_data.pkl`` (to float32 precision).

    Args:
      cache_dir: where to cache; default ``data_dir()`` (``$FGRAD_DATA_DIR`` or
        ``~/.cache/fgrad``).

    Returns:
      ``((x, y), (x_test, y_test))``: x float32 [4000, 40] (globally
      standardized), y int32 [4000] in 0..9, x_test [1000, 40], y_test [1000].

    Raises:
      ImportError: no cache yet and the ``mnist1d`` package is not installed.
    """
    path = data_dir(cache_dir) / _MNIST1D_FILE
    arrays = _read_mnist1d_cache(path)
    if arrays is None:
        arrays = _generate_mnist1d()
        _write_atomically(path, arrays)
    return (arrays["x"], arrays["y"]), (arrays["x_test"], arrays["y_test"])


# --- scikit-learn digits -------------------------------------------------------------------

def load_digits(test_size: int | float = 0.2, key: Any = None, flatten: bool = True) -> Split:
    """scikit-learn's handwritten digits: 1797 images of 8x8 pixels, ten classes.

    The data ships inside scikit-learn's wheel (``sklearn.datasets.load_digits``);
    nothing is downloaded.

    Args:
      test_size: the test part, a count or a fraction (rounded to a count).
      key: an ``fgrad.random`` key for the split; default ``key(0)``, so every
        call returns the same split.
      flatten: images as [N, 64] vectors (default) or [N, 8, 8].

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: x float32 in [0, 1] (the raw
      pixel values 0..16 divided by 16), y int32 in 0..9.

    Raises:
      ImportError: scikit-learn is not installed.
    """
    try:
        from sklearn.datasets import load_digits as sklearn_load_digits
    except ImportError as e:
        raise _missing("load_digits", "scikit-learn", e) from e
    images, labels = sklearn_load_digits(return_X_y=True)
    x = (images / 16.0).astype(np.float32)
    if not flatten:
        x = x.reshape(-1, 8, 8)
    key = frandom.key(0) if key is None else key
    return train_test_split(x, labels.astype(np.int32), test_size=test_size, key=key)


# --- idx files (MNIST, Fashion-MNIST) ------------------------------------------------------

_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if not raw.startswith(_GZIP_MAGIC):  # decided by content, not by the ".gz" suffix
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"read_idx: {path}: broken gzip data ({e}); is the file "
                         "truncated?") from e


def _parse_idx(raw: bytes, where: str) -> np.ndarray:
    if len(raw) < 4:
        raise ValueError(f"read_idx: {where}: truncated: {len(raw)} bytes, shorter than the "
                         "4-byte idx magic number")
    zero0, zero1, type_code, ndim = raw[:4]
    if zero0 != 0 or zero1 != 0 or type_code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(
            f"read_idx: {where}: bad magic number 0x{raw[:4].hex()}: an idx file starts with "
            "00 00, a type code (08 uint8, 09 int8, 0b int16, 0c int32, 0d float32, 0e "
            "float64) and the number of dimensions (>= 1); e.g. 0x00000803 for MNIST images "
            "and 0x00000801 for labels")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"read_idx: {where}: truncated header: {ndim} dimensions need "
                         f"{header} bytes, the file has {len(raw)}")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _IDX_DTYPES[type_code]
    need, have = math.prod(shape) * dtype.itemsize, len(raw) - header
    if have != need:
        problem = "truncated" if have < need else "trailing bytes after the data"
        raise ValueError(f"read_idx: {where}: {problem}: shape {shape} of "
                         f"{dtype.newbyteorder('=')} needs {need} data bytes, the file has "
                         f"{have}")
    data = np.frombuffer(raw, dtype, count=math.prod(shape), offset=header)
    # astype to native byte order makes a private, writable copy.
    return data.astype(dtype.newbyteorder("=")).reshape(shape)


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """One idx file (gzipped or not) as a numpy array of its shape and native-endian dtype.

    Raises:
      FileNotFoundError: no such file.
      ValueError: a bad magic number, a truncated or overlong file, or broken
        gzip data (the message names the file).
    """
    path = Path(path)
    return _parse_idx(_read_bytes(path), str(path))


def load_idx(images_path: str | os.PathLike[str],
             labels_path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """An idx image file and its idx label file, checked to match: ``(images, labels)``.

    The arrays keep the files' dtypes (uint8 for MNIST); ``load_mnist`` converts.

    Raises:
      ValueError: as ``read_idx``, or the labels are not 1-dimensional, or the
        counts of images and labels differ.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if labels.ndim != 1:
        raise ValueError(f"load_idx: labels must be 1-dimensional, {labels_path} has shape "
                         f"{labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"load_idx: {images.shape[0]} images (shape {images.shape}) in "
                         f"{images_path} but {labels.shape[0]} labels in {labels_path}")
    return images, labels


def _find_idx(directory: Path, prefix: str, kind: str, rank: int) -> Path:
    # The official names (train-images-idx3-ubyte) and a common variant (train-images.idx3-ubyte),
    # each plain or gzipped.
    stems = [f"{prefix}-{kind}-idx{rank}-ubyte", f"{prefix}-{kind}.idx{rank}-ubyte"]
    names = [stem + suffix for stem in stems for suffix in ("", ".gz")]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"load_mnist: none of {names} in {directory}")


def load_mnist(path: str | os.PathLike[str], normalize: bool = True) -> Split:
    """MNIST or Fashion-MNIST from a directory holding the four standard idx files.

    Looks for ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte`` (each possibly
    with ``.gz``, or named ``train-images.idx3-ubyte`` and so on).

    Args:
      path: the directory.
      normalize: images as float32 in [0, 1] (pixel / 255, default) or raw uint8.

    Returns:
      ``((x_train, y_train), (x_test, y_test))``: x [N, 28, 28], y int32.

    Raises:
      FileNotFoundError: a file is missing (the message lists the names tried).
      ValueError: as ``load_idx``.
    """
    directory = Path(path).expanduser()
    splits = []
    for prefix in ("train", "t10k"):
        images, labels = load_idx(_find_idx(directory, prefix, "images", 3),
                                  _find_idx(directory, prefix, "labels", 1))
        if normalize:
            images = (images / 255.0).astype(np.float32)
        splits.append((images, labels.astype(np.int32)))
    return splits[0], splits[1]
