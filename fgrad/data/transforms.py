"""Array transforms for datasets and minibatches: one-hot labels, standardization, mixup.

All of these are host-side numpy functions: they take numpy or fgrad arrays
and return numpy arrays, so their outputs can be fed to ``fgrad.jit``-compiled
training steps. Random ones take an explicit ``fgrad.random`` key (the same
key gives the same result) and never touch numpy's global generator.

Conventions:

* Labels are integer class indices in ``[0, num_classes)`` or one-hot /
  soft-label float rows; out-of-range integers are an error here (``fgrad.nn.
  one_hot`` maps them to zero rows, which silently hides a bug in a dataset).
* Standardization statistics are fitted on the training data only
  (``fit_standardizer(x_train)``) and then applied to every split; features
  with zero spread are centred but not scaled, as scikit-learn does.
* ``mixup`` follows Zhang et al. (2018, "mixup: Beyond Empirical Risk
  Minimization"): one ``lam ~ Beta(alpha, alpha)`` per minibatch, each example
  mixed with a partner from a random permutation of the same minibatch.
* ``sample_beta`` draws Beta variates by inverting the CDF (``scipy.special.
  betaincinv``) at uniforms built from 64 random bits of ``fgrad.random.bits``:
  exact up to floating point, one uniform per sample, and no rejection loop.
  (``fgrad.random`` has no ``beta`` yet; JAX's gamma-based one would give
  different numbers anyway.)

Read next: ``pipeline.py`` (``Dataset``, whose ``map`` these plug into).
"""

from __future__ import annotations

import dataclasses
import operator
from typing import Any, Callable

import numpy as np
import scipy.special

from fgrad import random as frandom

__all__ = ["one_hot", "Standardizer", "fit_standardizer", "apply_to", "sample_beta", "mixup"]


def _float_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a transform outputs: floats keep theirs, everything else becomes float32."""
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float32)


# --- one_hot -------------------------------------------------------------------------------

def one_hot(labels: Any, num_classes: int, dtype: Any = np.float32) -> np.ndarray:
    """Integer class labels as one-hot rows: shape ``labels.shape + (num_classes,)``.

    Args:
      labels: integers in ``[0, num_classes)``, any shape.
      num_classes: the number of classes, a positive integer.
      dtype: the output dtype (default float32).

    Raises:
      TypeError: ``labels`` are not integers.
      ValueError: ``num_classes`` is not positive, or a label is out of range.

    Example:
      >>> one_hot(np.array([2, 0]), 3).tolist()
      [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    labels = np.asarray(labels)
    num_classes = operator.index(num_classes)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"one_hot: labels must be integers, got {labels.dtype}"
                        f"{list(labels.shape)}")
    if num_classes <= 0:
        raise ValueError(f"one_hot: num_classes must be positive, got {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"one_hot: labels must lie in [0, {num_classes}), got values from "
                         f"{labels.min()} to {labels.max()}")
    return (labels[..., None] == np.arange(num_classes)).astype(dtype)


# --- standardization -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Standardizer:
    """``x -> (x - mean) / std``, with statistics fitted once (see ``fit_standardizer``).

    ``mean`` and ``std`` broadcast against the arrays it is applied to (for
    per-feature statistics they have the feature shape), so it works on a
    whole dataset and on minibatches alike.
    """

    mean: np.ndarray
    std: np.ndarray

    def __call__(self, x: Any) -> np.ndarray:
        x = np.asarray(x)
        dtype = _float_dtype(x.dtype)
        return ((x - self.mean) / self.std).astype(dtype)

    def inverse(self, z: Any) -> np.ndarray:
        """Undo the transform: ``z * std + mean``."""
        z = np.asarray(z)
        return (z * self.std + self.mean).astype(_float_dtype(z.dtype))


def fit_standardizer(x: Any, axis: int | tuple[int, ...] | None = 0,
                     eps: float = 1e-8) -> Standardizer:
    """Fit a ``Standardizer`` (mean 0, standard deviation 1) on training data ``x``.

    Args:
      x: the training inputs.
      axis: the axes the statistics are taken over: 0 (default) standardizes
        each feature over the examples; ``None`` uses one global mean and std
        (how MNIST-1D is normalized).
      eps: features whose standard deviation is at most ``eps`` (e.g. constant
        border pixels) get ``std = 1``: they are centred, not blown up.

    Returns:
      A ``Standardizer``; the statistics are computed in float64 and stored in
      ``x``'s float dtype (float32 for integer inputs).

    Example:
      >>> s = fit_standardizer(np.array([[0.0, 5.0], [2.0, 5.0]]))
      >>> s(np.array([[0.0, 5.0], [2.0, 5.0]])).tolist()
      [[-1.0, 0.0], [1.0, 0.0]]
    """
    x = np.asarray(x)
    if x.ndim == 0 or x.size == 0:
        raise ValueError(f"fit_standardizer: x must be a non-empty array of examples, got "
                         f"{x.dtype}{list(x.shape)}")
    axes = _stat_axes(axis, x.ndim)
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    std = x64.std(axis=axes, keepdims=True)
    std = np.where(std > eps, std, 1.0)
    # Drop the example axis (and, for global statistics, all axes) so the statistics
    # broadcast against batches and single examples alike.
    mean, std = (mean.reshape(()), std.reshape(())) if axis is None else (mean[0], std[0])
    dtype = _float_dtype(x.dtype)
    return Standardizer(mean=mean.astype(dtype), std=std.astype(dtype))


def _stat_axes(axis: int | tuple[int, ...] | None, ndim: int) -> tuple[int, ...]:
    """``axis`` as a tuple of non-negative axes, which must include the example axis 0."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if any(not -ndim <= a < ndim for a in axes):
        raise ValueError(f"fit_standardizer: axis {axis} out of bounds for an array of "
                         f"{ndim} dimensions")
    axes = tuple(sorted({a % ndim for a in axes}))
    if 0 not in axes:
        raise ValueError(f"fit_standardizer: axis {axis} must include the example axis 0 "
                         "(statistics are fitted over examples, then applied to new ones)")
    return axes


# --- pytree field helper -------------------------------------------------------------------

def apply_to(field: Any, fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A function of a dict/tuple/list that applies ``fn`` to one entry and keeps the rest.

    Meant for ``Dataset.map`` and minibatches: ``ds.map(apply_to("x", scaler))``
    or ``apply_to(0, scaler)`` for ``(x, y)`` tuples.

    Example:
      >>> apply_to(0, lambda x: x * 2)((np.ones(2), "labels"))[0].tolist()
      [2.0, 2.0]
    """
    def apply(data: Any) -> Any:
        if isinstance(data, dict):
            if field not in data:
                raise KeyError(f"apply_to: no field {field!r} in a dict with keys "
                               f"{list(data)}")
            return {**data, field: fn(data[field])}
        if isinstance(data, (tuple, list)):
            items = list(data)
            items[field] = fn(items[field])
            return tuple(items) if isinstance(data, tuple) else items
        raise TypeError(f"apply_to: expected a dict, tuple or list, got {type(data).__name__}")

    return apply


# --- Beta sampling and mixup ---------------------------------------------------------------

def _open_uniform(key: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Float64 uniforms in the open interval (0, 1) from 64 random bits each."""
    words = np.asarray(frandom.bits(key, shape + (2,), dtype=np.uint32)).astype(np.float64)
    # hi * 2^32 + lo + 1/2 lies in [1/2, 2^64 - 1/2], so u never rounds to 0; it can round
    # to 1.0 only within 2^-53 of it, where betaincinv returns 1 (a value Beta reaches).
    return (words[..., 0] * 2.0**32 + words[..., 1] + 0.5) / 2.0**64


def sample_beta(key: Any, a: Any, b: Any, shape: tuple[int, ...] | None = None,
                dtype: Any = np.float32) -> np.ndarray:
    """Beta(a, b) random numbers in [0, 1], drawn by inverting the CDF (see module doc).

    Args:
      key: an ``fgrad.random`` key.
      a, b: positive shape parameters (floats or arrays broadcasting to ``shape``).
      shape: the output shape; default: ``a`` and ``b`` broadcast together.
      dtype: a float dtype (default float32).

    Raises:
      ValueError: ``a`` or ``b`` is not positive, or does not broadcast to ``shape``.
    """
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if not (np.all(a64 > 0) and np.all(b64 > 0)):
        raise ValueError(f"sample_beta: a and b must be positive, got a={a!r}, b={b!r}")
    try:
        full = np.broadcast_shapes(a64.shape, b64.shape)
        shape = full if shape is None else tuple(operator.index(d) for d in shape)
        ok = np.broadcast_shapes(full, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"sample_beta: a{list(a64.shape)} and b{list(b64.shape)} do not "
                         f"broadcast to shape {shape}")
    u = _open_uniform(key, shape)
    return scipy.special.betaincinv(a64, b64, u).astype(dtype)


def _mixup_fields(batch: Any) -> tuple[Any, Any, Callable[[Any, Any], Any]]:
    """``(x, y, rebuild)`` for an ``(x, y)`` pair or a dict with "x" and "y" entries."""
    if isinstance(batch, dict):
        missing = {"x", "y"} - set(batch)
        if missing:
            raise KeyError(f"mixup: a dict batch needs entries 'x' and 'y'; missing "
                           f"{sorted(missing)} in keys {list(batch)}")
        return batch["x"], batch["y"], lambda x, y: {**batch, "x": x, "y": y}
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1], lambda x, y: type(batch)((x, y))
    raise TypeError(f"mixup: expected a batch (x, y) or a dict with 'x' and 'y', got "
                    f"{type(batch).__name__}")


def mixup(key: Any, batch: Any, alpha: float, num_classes: int | None = None) -> Any:
    """Mix a minibatch with a shuffled copy of itself (inputs and one-hot labels).

    With ``lam ~ Beta(alpha, alpha)`` (one per call) and ``perm`` a random
    permutation of the batch: ``x' = lam * x + (1 - lam) * x[perm]`` and
    ``y' = lam * y + (1 - lam) * y[perm]`` where ``y`` is one-hot. Train on
    ``(x', y')`` with a cross-entropy that accepts soft labels. Small ``alpha``
    (e.g. 0.2) keeps most ``lam`` near 0 or 1; ``alpha = 1`` is uniform.

    Args:
      key: an ``fgrad.random`` key (the same key gives the same mix).
      batch: ``(x, y)`` or a dict with ``"x"`` and ``"y"`` (other entries are
        passed through unchanged). ``y`` holds integer labels, or one-hot /
        soft-label float rows of shape ``(batch, num_classes)``.
      alpha: the Beta distribution's parameter, positive.
      num_classes: needed for integer labels.

    Returns:
      The batch with the same structure: ``x'`` in ``x``'s float dtype (float32
      for integer inputs) and ``y'`` float32 (or ``y``'s float dtype) rows
      summing to 1.

    Raises:
      ValueError: ``alpha`` is not positive, ``x`` and ``y`` differ in length,
        or integer labels come without ``num_classes``.
    """
    x_in, y_in, rebuild = _mixup_fields(batch)
    x, y = np.asarray(x_in), np.asarray(y_in)
    if not alpha > 0:
        raise ValueError(f"mixup: alpha must be positive, got {alpha!r}")
    if x.ndim == 0 or y.ndim == 0 or x.shape[0] != y.shape[0]:
        raise ValueError(f"mixup: x and y must have the same leading (batch) length, got "
                         f"x {x.dtype}{list(x.shape)} and y {y.dtype}{list(y.shape)}")
    if np.issubdtype(y.dtype, np.integer):
        if num_classes is None:
            raise ValueError(f"mixup: integer labels y {y.dtype}{list(y.shape)} need "
                             "num_classes (to one-hot encode them)")
        y = one_hot(y, num_classes)
    elif y.ndim != 2 or (num_classes is not None and y.shape[1] != num_classes):
        raise ValueError(f"mixup: float labels must be one-hot rows of shape (batch, "
                         f"num_classes={num_classes}), got {y.dtype}{list(y.shape)}")
    key_lam, key_perm = frandom.split(key)
    lam = float(sample_beta(key_lam, alpha, alpha, dtype=np.float64))
    perm = np.asarray(frandom.permutation(key_perm, x.shape[0]))
    x_dtype, y_dtype = _float_dtype(x.dtype), _float_dtype(y.dtype)
    x_mix = (lam * x + (1.0 - lam) * x[perm]).astype(x_dtype)
    y_mix = (lam * y + (1.0 - lam) * y[perm]).astype(y_dtype)
    return rebuild(x_mix, y_mix)
