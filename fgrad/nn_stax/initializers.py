"""``fgrad.nn_stax.initializers``: weight initializers with ``jax.nn.initializers``' API.

An **initializer** is a function ``init(key, shape, dtype=None) -> array``: it
turns a PRNG key (``fgrad.random.key``) and a shape into fresh weights. The
public functions below *build* initializers (``glorot_normal()`` returns one);
``zeros`` and ``ones`` are initializers themselves, as in JAX.

Why the scale matters: a layer ``y = x @ W`` with ``fan_in`` inputs multiplies
the variance of its activations by ``fan_in * Var(W)``. ``variance_scaling``
picks ``Var(W) = scale / n`` with ``n`` the fan-in (LeCun, He), the fan-out,
or their mean (Glorot/Xavier), so activations neither explode nor vanish
with depth (He's ``scale=2`` compensates for ReLU zeroing half of them).

Conventions (JAX's, kept exactly):

* **Fans** come from ``in_axis`` (default -2), ``out_axis`` (default -1) and
  ``batch_axis`` (default none); every other axis is the "receptive field"
  (a convolution kernel's spatial axes) and multiplies both fans. A Dense
  weight ``(in, out)`` has ``fan_in = in``; a conv kernel ``HWIO`` has
  ``fan_in = H * W * I``.
* ``distribution="truncated_normal"`` draws a standard normal truncated to
  ``(-2, 2)`` and divides by its standard deviation ``0.87962566103423978``,
  so the *truncated* samples have variance ``scale / n``. ``glorot_normal``,
  ``he_normal`` and ``lecun_normal`` are truncated normals, as in JAX.
* ``"uniform"`` draws from ``[-sqrt(3 v), sqrt(3 v))`` (variance ``v``).
* ``uniform(scale)`` draws from ``[0, scale)`` (not centred), as in JAX.
* The same key gives the same numbers as JAX: ``fgrad.random`` reproduces
  JAX's threefry bits exactly; ``normal`` and ``truncated_normal`` agree with
  JAX's to a few float ulps (their ``erf_inv`` is numpy's, not XLA's).

``orthogonal`` needs a QR decomposition: on a concrete key it is LAPACK's (numpy,
float64); on a traced key (inside ``jit`` or ``vmap``) Gram-Schmidt with one
reorthogonalization, which gives the same matrix to rounding. Complex dtypes
are not supported (fgrad has none).

Read next: ``fgrad/nn_stax/__init__.py`` (the layers that use these).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

import fgrad.numpy as fnp
from fgrad import random
from fgrad.core import dtypes
from fgrad.core.trace import Tracer

Initializer = Callable[..., Any]

# Standard deviation of a standard normal truncated to (-2, 2).
_TRUNCATED_STDDEV = 0.87962566103423978


def _dtype(dtype: Any) -> np.dtype:
    return dtypes.default_float_dtype() if dtype is None else dtypes.canonicalize_dtype(dtype)


def _no_sharding(name: str, out_sharding: Any) -> None:
    if out_sharding is not None:
        raise ValueError(f"{name}: fgrad runs on one device; out_sharding must be None, "
                         f"got {out_sharding!r}")


def _shape(shape: Any) -> tuple[int, ...]:
    return (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)


# --- constant initializers ----------------------------------------------------------------------


def zeros(key: Any, shape: Sequence[int], dtype: Any = None, out_sharding: Any = None) -> Any:
    """An initializer that returns zeros (``key`` is ignored).

    >>> zeros(None, (2,))
    Array([0., 0.], dtype=float32)
    """
    _no_sharding("zeros", out_sharding)
    return fnp.zeros(_shape(shape), _dtype(dtype))


def ones(key: Any, shape: Sequence[int], dtype: Any = None, out_sharding: Any = None) -> Any:
    """An initializer that returns ones (``key`` is ignored).

    >>> ones(None, (2,))
    Array([1., 1.], dtype=float32)
    """
    _no_sharding("ones", out_sharding)
    return fnp.ones(_shape(shape), _dtype(dtype))


def constant(value: Any, dtype: Any = None) -> Initializer:
    """Build an initializer that fills arrays with ``value``.

    Args:
      value: the fill value.
      dtype: the initializer's default dtype (float32, or float64 with x64).

    >>> constant(-7.0)(None, (2,))
    Array([-7., -7.], dtype=float32)
    """
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype, out_sharding: Any = None) -> Any:
        _no_sharding("constant", out_sharding)
        return fnp.full(_shape(shape), value, _dtype(dtype))
    return init


# --- simple random initializers -----------------------------------------------------------------


def uniform(scale: Any = 1e-2, dtype: Any = None) -> Initializer:
    """Build an initializer drawing uniformly from ``[0, scale)`` (note: not centred).

    Args:
      scale: the upper bound.
      dtype: the initializer's default dtype.
    """
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype, out_sharding: Any = None) -> Any:
        _no_sharding("uniform", out_sharding)
        dtype = _dtype(dtype)
        return random.uniform(key, _shape(shape), dtype) * fnp.array(scale, dtype)
    return init


def normal(stddev: Any = 1e-2, dtype: Any = None) -> Initializer:
    """Build an initializer drawing from a normal with mean 0 and standard deviation ``stddev``.

    Args:
      stddev: the standard deviation (default ``1e-2``, as in JAX).
      dtype: the initializer's default dtype.
    """
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype, out_sharding: Any = None) -> Any:
        _no_sharding("normal", out_sharding)
        dtype = _dtype(dtype)
        return random.normal(key, _shape(shape), dtype) * fnp.array(stddev, dtype)
    return init


def truncated_normal(stddev: Any = 1e-2, dtype: Any = None, lower: Any = -2.0,
                     upper: Any = 2.0) -> Initializer:
    """Build an initializer drawing ``stddev * z`` for ``z`` standard normal in ``(lower, upper)``.

    Unlike ``variance_scaling``, no variance correction is applied: the samples'
    standard deviation is smaller than ``stddev`` (by 0.88 for the default bounds).

    Args:
      stddev: the standard deviation of the *untruncated* distribution.
      dtype: the initializer's default dtype.
      lower, upper: the truncation bounds, in units of ``stddev``.
    """
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype, out_sharding: Any = None) -> Any:
        _no_sharding("truncated_normal", out_sharding)
        dtype = _dtype(dtype)
        z = random.truncated_normal(key, lower, upper, _shape(shape), dtype)
        return z * fnp.array(stddev, dtype)
    return init


# --- variance scaling ---------------------------------------------------------------------------


def _size(shape: tuple[int, ...], axes: Any) -> int:
    return shape[axes] if isinstance(axes, int) else math.prod(shape[a] for a in axes)


def _compute_fans(shape: tuple[int, ...], in_axis: Any = -2, out_axis: Any = -1,
                  batch_axis: Any = ()) -> tuple[float, float]:
    """``(fan_in, fan_out)``: the in/out sizes times the receptive field (all other axes)."""
    if isinstance(in_axis, int) and in_axis == -2 and len(shape) <= 1:
        raise ValueError(f"Can't compute input and output sizes of a {len(shape)}-dimensional "
                         "weights tensor with default in_axis. Must be at least 2D or specify "
                         "in_axis explicitly.")
    in_size, out_size = _size(shape, in_axis), _size(shape, out_axis)
    batch_size = _size(shape, batch_axis)
    receptive_field = math.prod(shape) / in_size / out_size / batch_size
    return in_size * receptive_field, out_size * receptive_field


def variance_scaling(scale: Any, mode: str, distribution: str, in_axis: Any = -2,
                     out_axis: Any = -1, batch_axis: Any = (), dtype: Any = None
                     ) -> Initializer:
    """Build an initializer whose samples have variance ``scale / n``.

    Args:
      scale: a positive float.
      mode: what ``n`` is: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` (their
        mean) or ``"fan_geo_avg"`` (their geometric mean).
      distribution: ``"truncated_normal"`` (truncated at two standard
        deviations, then rescaled so the truncated samples have the variance),
        ``"normal"`` or ``"uniform"`` (on ``[-sqrt(3 v), sqrt(3 v))``).
      in_axis, out_axis, batch_axis: an axis or a sequence of axes of the
        weight shape; the remaining axes form the receptive field.
      dtype: the initializer's default dtype.

    Raises:
      ValueError: for an unknown ``mode`` or ``distribution`` (when called), or
        a weight of rank < 2 with the default ``in_axis``.

    >>> import fgrad
    >>> w = variance_scaling(2.0, "fan_in", "normal")(fgrad.random.key(0), (512, 256))
    >>> round(float(w.std() * w.std() * 512), 1)
    2.0
    """
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype, out_sharding: Any = None) -> Any:
        _no_sharding("variance_scaling", out_sharding)
        shape = _shape(shape)
        dtype = _dtype(dtype)
        fan_in, fan_out = _compute_fans(shape, in_axis, out_axis, batch_axis)
        denominators = {"fan_in": lambda: fan_in, "fan_out": lambda: fan_out,
                        "fan_avg": lambda: (fan_in + fan_out) / 2,
                        "fan_geo_avg": lambda: (fan_in * fan_out) ** 0.5}
        if mode not in denominators:
            raise ValueError(f"invalid mode for variance scaling initializer: {mode}")
        # NOTE: built with array ops in the weight dtype, exactly as JAX does, so the
        # rounding of the scale factor (and hence every weight) matches bit for bit.
        variance = fnp.array(scale / denominators[mode](), dtype)
        if distribution == "truncated_normal":
            stddev = fnp.sqrt(variance) / fnp.array(_TRUNCATED_STDDEV, dtype)
            return random.truncated_normal(key, -2, 2, shape, dtype) * stddev
        if distribution == "normal":
            return random.normal(key, shape, dtype) * fnp.sqrt(variance)
        if distribution == "uniform":
            return random.uniform(key, shape, dtype, -1) * fnp.sqrt(3 * variance)
        raise ValueError(
            f"invalid distribution for variance scaling initializer: {distribution}")
    return init


def glorot_uniform(in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = (),
                   dtype: Any = None) -> Initializer:
    """Glorot (Xavier) uniform: ``variance_scaling(1.0, "fan_avg", "uniform")``."""
    return variance_scaling(1.0, "fan_avg", "uniform", in_axis, out_axis, batch_axis, dtype)


def glorot_normal(in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = (),
                  dtype: Any = None) -> Initializer:
    """Glorot (Xavier) normal: ``variance_scaling(1.0, "fan_avg", "truncated_normal")``."""
    return variance_scaling(1.0, "fan_avg", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def lecun_uniform(in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = (),
                  dtype: Any = None) -> Initializer:
    """LeCun uniform: ``variance_scaling(1.0, "fan_in", "uniform")``."""
    return variance_scaling(1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def lecun_normal(in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = (),
                 dtype: Any = None) -> Initializer:
    """LeCun normal: ``variance_scaling(1.0, "fan_in", "truncated_normal")``."""
    return variance_scaling(1.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


def he_uniform(in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = (),
               dtype: Any = None) -> Initializer:
    """He (Kaiming) uniform: ``variance_scaling(2.0, "fan_in", "uniform")``."""
    return variance_scaling(2.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, dtype)


def he_normal(in_axis: Any = -2, out_axis: Any = -1, batch_axis: Any = (),
              dtype: Any = None) -> Initializer:
    """He (Kaiming) normal: ``variance_scaling(2.0, "fan_in", "truncated_normal")``."""
    return variance_scaling(2.0, "fan_in", "truncated_normal", in_axis, out_axis, batch_axis,
                            dtype)


xavier_uniform = glorot_uniform
xavier_normal = glorot_normal
kaiming_uniform = he_uniform
kaiming_normal = he_normal


# --- orthogonal ---------------------------------------------------------------------------------


def _orthogonal_matrix(key: Any, n: int, m: int, dtype: np.dtype) -> Any:
    """``jax.random.orthogonal(key, n, (), dtype, m)``: a Haar-random ``n x m`` (semi-)orthogonal.

    Q of the QR decomposition of a ``max x min`` standard normal matrix, with the
    signs chosen so that R's diagonal is positive: that makes the factorization
    unique, hence the distribution uniform (Mezzadri 2007) and the result equal to
    JAX's for the same normal draws. A concrete draw goes through LAPACK (numpy,
    in float64); a traced one (under ``jit`` or ``vmap``) through Gram-Schmidt.
    """
    z = random.normal(key, (max(n, m), min(n, m)), dtype)
    if isinstance(z, Tracer):
        compute = np.promote_types(dtype, np.float32)  # 16-bit floats: orthogonalize in f32
        q = _gram_schmidt(fnp.asarray(z, compute)).astype(dtype)
        return q.T if n < m else q
    # NOTE: float64 QR then a cast: at least as accurate as JAX's QR in the weight dtype.
    q, r = np.linalg.qr(np.asarray(z, np.float64))
    q = q * np.where(np.diagonal(r) < 0, -1.0, 1.0)[None, :]
    return fnp.asarray((q.T if n < m else q).astype(dtype))


def _gram_schmidt(z: Any) -> Any:
    """Q (positive-diagonal R) of a tall ``z`` by Gram-Schmidt, reorthogonalized once.

    Column k has the projections on columns 0..k-1 removed twice ("twice is
    enough": Giraud et al. 2005), which keeps Q orthogonal to rounding even when
    z is ill-conditioned, and is then normalized (so R's diagonal is positive).
    The loop is a ``fori_loop``, so it traces to one small program at any size.
    """
    from fgrad import lax  # the control-flow wrappers sit above the numpy layer

    cols = fnp.arange(z.shape[1])

    def body(k: Any, q: Any) -> Any:
        v = q @ (cols == k).astype(q.dtype)          # column k
        done = q * (cols < k).astype(q.dtype)        # the finished columns
        for _ in range(2):
            v = v - done @ (done.T @ v)
        return fnp.where(cols == k, (v / fnp.linalg.norm(v))[:, None], q)

    return lax.fori_loop(0, z.shape[1], body, z)


def orthogonal(scale: Any = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """Build an initializer of (semi-)orthogonal matrices, uniformly distributed.

    The weight is viewed as a matrix whose columns lie along ``column_axis``
    and whose rows are all other axes flattened; it has orthonormal rows or
    columns, whichever are fewer, times ``scale``. Works on concrete and traced
    keys (see the module docstring).

    Args:
      scale: a multiplier.
      column_axis: the axis holding the columns.
      dtype: the initializer's default dtype.

    Raises:
      ValueError: for a shape of rank < 2.
    """
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype, out_sharding: Any = None) -> Any:
        _no_sharding("orthogonal", out_sharding)
        shape = _shape(shape)
        dtype = _dtype(dtype)
        if len(shape) < 2:
            raise ValueError("orthogonal initializer requires at least a 2D shape")
        if 0 in shape:
            return fnp.zeros(shape, dtype)
        n_cols = shape[column_axis]
        n_rows = math.prod(shape) // n_cols
        q = _orthogonal_matrix(key, n_rows, n_cols, dtype)
        q = fnp.reshape(q, tuple(np.delete(np.array(shape), column_axis)) + (n_cols,))
        return fnp.array(scale, dtype) * fnp.moveaxis(q, -1, column_axis)
    return init


def delta_orthogonal(scale: Any = 1.0, column_axis: int = -1, dtype: Any = None) -> Initializer:
    """Build a delta-orthogonal initializer for 3-, 4- or 5-D convolution kernels.

    The kernel is zero except at the spatial centre, which holds an orthogonal
    ``(in, out)`` matrix (Xiao et al. 2018), so the convolution starts as an
    orthogonal map of the channels. Needs ``in <= out`` and a concrete key.

    Raises:
      ValueError: for another rank, or more input than output channels.
    """
    def init(key: Any, shape: Sequence[int], dtype: Any = dtype, out_sharding: Any = None) -> Any:
        _no_sharding("delta_orthogonal", out_sharding)
        shape = _shape(shape)
        dtype = _dtype(dtype)
        if len(shape) not in (3, 4, 5):
            raise ValueError("Delta orthogonal initializer requires a 3D, 4D or 5D shape.")
        if shape[-1] < shape[-2]:
            raise ValueError("`fan_in` must be less or equal than `fan_out`. ")
        matrix = orthogonal(scale, column_axis, dtype)(key, shape[-2:])
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        return fnp.zeros(shape, dtype).at[centre].set(matrix)
    return init


__all__ = [
    "Initializer", "zeros", "ones", "constant", "uniform", "normal", "truncated_normal",
    "variance_scaling", "glorot_uniform", "glorot_normal", "xavier_uniform", "xavier_normal",
    "lecun_uniform", "lecun_normal", "he_uniform", "he_normal", "kaiming_uniform",
    "kaiming_normal", "orthogonal", "delta_orthogonal",
]
