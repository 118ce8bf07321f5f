"""In-memory datasets and reproducible minibatches: the ``Dataset`` pytree container.

A ``Dataset`` holds a pytree (a dict, a tuple ``(x, y)``, nested containers) of
numpy arrays that share their leading length: row ``i`` of every array is
example ``i``. It is immutable and functional: ``map``, ``shuffle``, ``take``
and ``split`` return new datasets, and the arrays it holds are read-only views.

Randomness comes only from explicit ``fgrad.random`` keys, never from a global
generator, so an experiment is reproducible from its seed:

* ``ds.batches(batch_size, key)`` visits the examples in the order
  ``fgrad.random.permutation(key, len(ds))`` (the same bits as
  ``jax.random.permutation``): the same key gives the same minibatches, a
  different key a different order. Derive one key per epoch, e.g.
  ``fold_in(key, epoch)``.
* Without a key the order is ``0, 1, ..., n-1``.

Minibatches are fresh, writable numpy arrays with the dataset's pytree
structure, so they go straight into ``fgrad.jit``-compiled functions (numpy
leaves are plain inputs, not baked-in constants).

Read next: ``transforms.py`` (one_hot, standardization, mixup) and
``datasets.py`` (the loaders).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Iterator

import numpy as np

from fgrad import random as frandom
from fgrad.tree_util import tree_flatten, tree_unflatten

__all__ = ["Dataset", "train_test_split"]


def _shapes(treedef: Any, leaves: list[np.ndarray]) -> str:
    """The pytree with each array replaced by its shape, for error messages."""
    return repr(tree_unflatten(treedef, [tuple(leaf.shape) for leaf in leaves]))


class _Verbatim(str):
    """A string whose repr is itself, so a pytree of them prints without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _batch_size_arg(where: str, batch_size: Any) -> int:
    try:
        size = operator.index(batch_size)
    except TypeError:
        raise TypeError(f"{where}: batch_size must be an integer, got {batch_size!r}") from None
    if isinstance(batch_size, bool) or size <= 0:
        raise ValueError(f"{where}: batch_size must be a positive integer, got {batch_size!r}")
    return size


class Dataset:
    """An in-memory dataset: a pytree of arrays sharing their leading (example) axis.

    ``Dataset(x, y)`` holds the tuple ``(x, y)``; ``Dataset({"x": x, "y": y})``
    holds the dict; any pytree of arrays works. Leaves may be numpy or fgrad
    arrays (anything ``numpy.asarray`` converts), but Python lists are pytree
    containers, not arrays. Leaves are stored as read-only numpy arrays (no
    copy is made of numpy inputs).

    Args:
      *arrays: one pytree of arrays, or several arrays (held as a tuple).

    Raises:
      TypeError: no arrays were given.
      ValueError: an array is 0-dimensional or the leading lengths differ.

    Example:
      >>> import numpy as np, fgrad
      >>> ds = Dataset(np.arange(10.0).reshape(5, 2), np.arange(5))
      >>> len(ds)
      5
      >>> [y.tolist() for _, y in ds.batches(2)]
      [[0, 1], [2, 3], [4]]
      >>> key = fgrad.random.key(0)
      >>> order = [y.tolist() for _, y in ds.batches(5, key=key)]
      >>> order == [y.tolist() for _, y in ds.batches(5, key=key)]  # same key, same order
      True
    """

    __slots__ = ("_leaves", "_treedef", "_length")

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise TypeError("Dataset: expected one pytree of arrays or several arrays, got none")
        data = arrays[0] if len(arrays) == 1 else tuple(arrays)
        self._init_from_tree(data, "Dataset")

    def _init_from_tree(self, data: Any, where: str) -> None:
        leaves, treedef = tree_flatten(data)
        if not leaves:
            raise ValueError(f"{where}: the data {data!r} contains no arrays")
        arrays = []
        for leaf in leaves:
            array = np.asarray(leaf).view()  # a view, so read-only does not touch the caller's
            array.flags.writeable = False
            arrays.append(array)
        if any(a.ndim == 0 for a in arrays):
            raise ValueError(f"{where}: every array needs a leading example axis; got shapes "
                             f"{_shapes(treedef, arrays)} (Python lists are pytree containers, "
                             "not arrays: convert them with numpy.asarray)")
        lengths = {a.shape[0] for a in arrays}
        if len(lengths) != 1:
            raise ValueError(f"{where}: all arrays must have the same leading length; got "
                             f"shapes {_shapes(treedef, arrays)}")
        self._leaves: list[np.ndarray] = arrays
        self._treedef = treedef
        self._length: int = lengths.pop()

    @classmethod
    def _from_tree(cls, data: Any, where: str) -> Dataset:
        ds = cls.__new__(cls)
        ds._init_from_tree(data, where)
        return ds

    # --- inspection ------------------------------------------------------------------------

    @property
    def data(self) -> Any:
        """The whole dataset as a pytree of read-only numpy arrays."""
        return tree_unflatten(self._treedef, self._leaves)

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        described = tree_unflatten(
            self._treedef, [_Verbatim(f"{a.dtype}{list(a.shape)}") for a in self._leaves])
        return f"Dataset(len={self._length}, {described})"

    def __getitem__(self, index: Any) -> Any:
        """``index`` applied to every array's leading axis: an int gives one example,
        a slice, integer array or boolean mask a batch (both as pytrees of arrays)."""
        if isinstance(index, tuple):
            raise TypeError("Dataset indexing takes one index for the example axis, got a tuple "
                            f"{index!r}; index the arrays of ds.data for more axes")
        index = np.asarray(index) if not isinstance(index, (int, slice, np.integer)) else index
        return tree_unflatten(self._treedef, [np.array(a[index]) for a in self._leaves])

    def __iter__(self) -> Iterator[Any]:
        """The examples one by one (slow for big datasets: prefer ``batches``)."""
        for i in range(self._length):
            yield self[i]

    # --- new datasets ----------------------------------------------------------------------

    def take(self, indices: Any) -> Dataset:
        """A new dataset of the examples at ``indices`` (a 1-d integer array), in that order."""
        idx = np.asarray(indices)
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"Dataset.take: indices must be a 1-d integer array, got "
                            f"{idx.dtype}{list(idx.shape)}")
        if idx.size and (idx.min() < -self._length or idx.max() >= self._length):
            raise IndexError(f"Dataset.take: indices range over [{idx.min()}, {idx.max()}], "
                             f"out of bounds for a dataset of length {self._length}")
        return Dataset._from_tree(
            tree_unflatten(self._treedef, [a[idx] for a in self._leaves]), "Dataset.take")

    def map(self, transform: Callable[[Any], Any]) -> Dataset:
        """A new dataset ``transform(self.data)``.

        ``transform`` sees the whole pytree of arrays at once (vectorized, like a
        function of one big batch), so the same function can also be applied to
        minibatches. Use ``fgrad.data.apply_to("x", f)`` to transform one field.

        Raises:
          ValueError: the result's arrays do not share a leading length.
        """
        return Dataset._from_tree(transform(self.data), "Dataset.map")

    def shuffle(self, key: Any) -> Dataset:
        """A new dataset in the order ``fgrad.random.permutation(key, len(self))``."""
        return self.take(self._order(key))

    def split(self, first: int | float, key: Any = None) -> tuple[Dataset, Dataset]:
        """Two datasets: the first ``first`` examples and the rest.

        Args:
          first: a count (int in ``[0, len]``) or a fraction (float in ``[0, 1]``;
            the count is ``round(first * len)``).
          key: when given, the examples are shuffled with it first (reproducibly).

        Example:
          >>> ds = Dataset(np.arange(10))
          >>> a, b = ds.split(0.8)
          >>> len(a), len(b)
          (8, 2)
        """
        count = _split_count("Dataset.split", first, self._length)
        order = self._order(key)
        return self.take(order[:count]), self.take(order[count:])

    # --- minibatches -----------------------------------------------------------------------

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        """How many minibatches ``batches(batch_size, drop_last=drop_last)`` yields."""
        size = _batch_size_arg("Dataset.num_batches", batch_size)
        full, rest = divmod(self._length, size)
        return full if drop_last or rest == 0 else full + 1

    def batches(self, batch_size: int, key: Any = None,
                drop_last: bool = False) -> Iterator[Any]:
        """An iterator over one epoch of minibatches (pytrees of fresh numpy arrays).

        Every example appears exactly once per epoch, except the last
        ``len % batch_size`` ones in the visiting order when ``drop_last``. The
        last batch is smaller when ``len`` is not a multiple of ``batch_size``
        and ``drop_last`` is False.

        Args:
          batch_size: examples per batch, a positive integer.
          key: an ``fgrad.random`` key; the visiting order is
            ``fgrad.random.permutation(key, len(self))``. ``None``: in order.
            For several epochs use a new key per epoch, e.g. ``fold_in(key, epoch)``.
          drop_last: drop the last batch when it is smaller than ``batch_size``.

        Raises:
          TypeError, ValueError: ``batch_size`` is not a positive integer, or
            ``key`` is not a key (raised at the call, not at the first ``next``).
        """
        size = _batch_size_arg("Dataset.batches", batch_size)
        order = self._order(key)
        return self._iterate(order, size, drop_last)

    def _iterate(self, order: np.ndarray, size: int, drop_last: bool) -> Iterator[Any]:
        stop = len(order) - len(order) % size if drop_last else len(order)
        for start in range(0, stop, size):
            idx = order[start:start + size]
            # Fancy indexing copies, so a batch never aliases the (read-only) dataset.
            yield tree_unflatten(self._treedef, [a[idx] for a in self._leaves])

    def _order(self, key: Any) -> np.ndarray:
        if key is None:
            return np.arange(self._length)
        return np.asarray(frandom.permutation(key, self._length))


def _split_count(where: str, first: Any, length: int) -> int:
    if isinstance(first, bool):
        raise TypeError(f"{where}: expected a count (int) or a fraction (float), got {first!r}")
    if isinstance(first, (int, np.integer)):
        if not 0 <= first <= length:
            raise ValueError(f"{where}: count {first} out of range [0, {length}]")
        return int(first)
    if isinstance(first, (float, np.floating)):
        if not 0.0 <= first <= 1.0:
            raise ValueError(f"{where}: fraction {first} out of range [0, 1]")
        return int(round(first * length))
    raise TypeError(f"{where}: expected a count (int) or a fraction (float), got {first!r}")


def train_test_split(*arrays: Any, test_size: int | float = 0.2,
                     key: Any = None) -> tuple[Any, Any]:
    """Split arrays (or one pytree of arrays) into a train part and a test part.

    Args:
      *arrays: as for ``Dataset``: one pytree of arrays, or several arrays.
      test_size: the test part's size, a count or a fraction (rounded to the
        nearest count).
      key: an ``fgrad.random`` key to shuffle with before splitting (the same key
        gives the same split). ``None``: no shuffle, the test part is the tail.

    Returns:
      ``(train, test)``, each with the structure of the input (a tuple when
      several arrays were given).

    Example:
      >>> x, y = np.arange(20.0).reshape(10, 2), np.arange(10)
      >>> (x_tr, y_tr), (x_te, y_te) = train_test_split(x, y, test_size=0.3)
      >>> y_te.tolist()
      [7, 8, 9]
    """
    if not arrays:
        raise TypeError("train_test_split: expected one pytree of arrays or several arrays")
    ds = Dataset._from_tree(arrays[0] if len(arrays) == 1 else arrays, "train_test_split")
    n_test = _split_count("train_test_split", test_size, len(ds))
    order = ds._order(key)
    n_train = len(ds) - n_test
    return ds[order[:n_train]], ds[order[n_train:]]
