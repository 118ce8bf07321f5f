"""``fgrad.data``: in-memory datasets, reproducible minibatches, transforms and offline loaders.

A small functional data layer for training loops. Nothing here is traced or
differentiated: data lives on the host as numpy arrays, and each minibatch is
a pytree of numpy arrays handed to a ``jit``-compiled step. Randomness comes
from explicit ``fgrad.random`` keys, so runs are reproducible::

    from fgrad import data, random

    (x, y), (x_test, y_test) = data.load_mnist1d()
    train = data.Dataset(x, y)
    key = random.key(0)
    for epoch in range(10):
        for xb, yb in train.batches(100, key=random.fold_in(key, epoch)):
            params = step(params, xb, yb)

* ``pipeline.py``: ``Dataset`` (len, indexing, map, shuffle, take, split,
  batches, num_batches) and ``train_test_split``.
* ``transforms.py``: ``one_hot``, ``fit_standardizer``/``Standardizer``,
  ``apply_to``, ``sample_beta``, ``mixup``.
* ``datasets.py``: ``load_mnist1d``, ``load_digits``, ``read_idx``, ``load_idx``,
  ``load_mnist``, ``data_dir``. No loader downloads anything.
"""

from __future__ import annotations

from fgrad.data.datasets import (
    data_dir, load_digits, load_idx, load_mnist, load_mnist1d, read_idx)
from fgrad.data.pipeline import Dataset, train_test_split
from fgrad.data.transforms import (
    Standardizer, apply_to, fit_standardizer, mixup, one_hot, sample_beta)

__all__ = [
    "Dataset", "train_test_split",
    "one_hot", "Standardizer", "fit_standardizer", "apply_to", "sample_beta", "mixup",
    "data_dir", "load_mnist1d", "load_digits", "read_idx", "load_idx", "load_mnist",
]
