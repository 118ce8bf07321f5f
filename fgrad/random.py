"""``fgrad.random``: reproducible random numbers from explicit keys (``jax.random``'s API).

There is no global generator. A **key** is a uint32 array of shape ``(2,)``;
every function takes one and is a pure function of it, so the same key gives
the same numbers eagerly, under ``jit`` and under ``vmap`` (``vmap`` over a
batch of keys equals a loop over them). To get fresh numbers, derive new
keys: ``split(key)`` (several independent keys) or ``fold_in(key, i)``.
Never reuse a key for two purposes::

    key = fgrad.random.key(0)
    key, sub = fgrad.random.split(key)
    w = fgrad.random.normal(sub, (3, 4))

Compatibility with JAX (default ``threefry2x32`` generator, its default
``jax_threefry_partitionable=True``): ``key``/``PRNGKey``, ``split``,
``fold_in``, ``bits``, ``uniform`` (minval/maxval and 16-bit floats too),
``bernoulli``, ``randint``, ``permutation`` and ``choice`` without ``p``
give JAX's bits exactly, with x64 off and on. ``normal``,
``truncated_normal`` and ``gumbel`` run JAX's algorithms on the same uniform
bits, but their transcendental functions (``erf_inv``, ``erf``, ``log``) are
numpy's rather than XLA's, so their floats agree to a few ulps.
``categorical`` and ``choice`` with ``p`` compare such floats; their results
equal JAX's except on (vanishingly rare) near-ties. As in JAX,
``split(key, n)[i]`` equals ``fold_in(key, i)``. Differences by design:

* ``key(seed)`` returns a raw ``uint32[2]`` key, like ``PRNGKey``; JAX's
  ``key`` returns a typed scalar key array (``jax.random.key_data`` of it is
  what fgrad returns). ``key_data`` and ``wrap_key_data`` are identities.
* ``fold_in`` rejects float data (JAX truncates it).

Read next: ``fgrad/primitives/random.py`` (the threefry2x32 primitive).
"""

from __future__ import annotations

import math
import operator
from typing import Any, Sequence

import numpy as np

from fgrad import lax
from fgrad import numpy as fnp
from fgrad.config import config
from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import get_aval
from fgrad.core.trace import Tracer
from fgrad.numpy._util import asarray_arg, normalize_axis
from fgrad.primitives import random as _prng  # noqa: F401  (registers the primitives)
from fgrad.primitives.custom_derivatives import stop_gradient
from fgrad.primitives.random import (
    argsort, bitcast_convert_type, fma, random_bits, shift_right_logical, threefry_fold_in,
    threefry_seed, threefry_split)

_U32 = np.dtype(np.uint32)
_UINT_OF_WIDTH = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: _U32,
                  64: np.dtype(np.uint64)}
Shape = Sequence[int]


# --- argument checking -----------------------------------------------------------------------

def _check_key(name: str, key: Any, allow_batched: bool = False) -> Any:
    """``key`` as an fgrad value, after checking that it is a raw key (or keys)."""
    key = asarray_arg(key, name)
    aval = get_aval(key)
    if aval.dtype != _U32 or aval.ndim == 0 or aval.shape[-1] != 2:
        raise TypeError(f"{name}: expected a PRNG key, a uint32 array of shape (2,) made by "
                        f"fgrad.random.key, PRNGKey, split or fold_in; got {aval.str_short()}")
    if aval.ndim > 1 and not allow_batched:
        raise ValueError(f"{name} accepts a single key, but was given a key array of shape "
                         f"{aval.shape} ({aval.shape[:-1]} keys). Use fgrad.vmap for batching.")
    return key


def _shape_arg(name: str, shape: Any) -> tuple[int, ...]:
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        out = tuple(operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"{name}: shape must be a sequence of integers, got {shape!r}") from None
    if any(d < 0 for d in out):
        raise ValueError(f"{name}: shape {out} has a negative dimension")
    return out


def _check_shape(name: str, shape: tuple[int, ...], *param_shapes: tuple[int, ...]) -> None:
    """The parameters must broadcast to ``shape`` exactly (JAX's rule)."""
    try:
        result = fnp.broadcast_shapes(shape, *param_shapes)
    except ValueError:
        result = None
    if result != shape:
        raise ValueError(f"{name}: parameter shapes {list(param_shapes)} must be broadcast-"
                         f"compatible with the shape argument {shape}, and broadcasting "
                         f"them with it must give {shape} (got {result})")


def _float_dtype(name: str, dtype: Any) -> np.dtype:
    dtype = dtypes.canonicalize_dtype(float if dtype is None else dtype)
    if not dtypes.is_float(dtype):
        raise ValueError(f"dtype argument to `{name}` must be a float dtype, got {dtype}")
    return dtype


def _cast(x: Any, dtype: np.dtype) -> Any:
    """``x`` (anything array-like) converted to a strongly typed ``dtype`` array."""
    if isinstance(x, Tracer):
        return lax.convert_element_type(x, dtype)
    # A constant (Python scalar, numpy or fgrad array): convert it now, so that jaxprs show
    # the constant rather than a conversion. numpy's casts round like convert_element_type.
    return Array(np.asarray(np.asarray(x).astype(dtype)))


def _full(shape: Sequence[int], value: Any, dtype: Any) -> Any:
    return lax.full(tuple(shape), value, np.dtype(dtype))


def _row(keys: Any, i: int) -> Any:
    """``keys[i]`` of a key array ``(n, 2)``, with strict ops."""
    return lax.reshape(lax.slice(keys, (i, 0), (i + 1, 2)), (2,))


# --- keys -----------------------------------------------------------------------------------

def _seed_array(name: str, seed: Any) -> Any:
    if isinstance(seed, int):  # (bool too: True is the seed 1, as in JAX)
        if not -(2**63) <= seed < 2**63:
            raise OverflowError(f"{name}: seed {seed} does not fit in a 64-bit integer")
        # As in JAX: a Python int is taken as int64, so with x64 off it wraps to 32 bits.
        wide = np.asarray(seed, np.int64)
        return Array(wide if config.enable_x64 else wide.astype(np.int32))
    seed = asarray_arg(seed, name)
    aval = get_aval(seed)
    if aval.ndim:
        raise TypeError(f"{name} accepts a scalar seed, but was given an array of shape "
                        f"{aval.shape} != (). Use fgrad.vmap for batching.")
    if not dtypes.is_int(aval.dtype):
        raise TypeError(f"{name}: PRNG key seed must be an integer; got {aval.str_short()}")
    return seed


def key(seed: Any) -> Any:
    """A PRNG key from an integer seed: a ``uint32[2]`` array (JAX's key data).

    Args:
      seed: a Python int (any int64 value; with x64 off only its low 32 bits
        count, as in JAX), or a 0-d integer array (traced too: ``vmap`` over seeds works).

    Returns:
      The key ``[high 32 bits, low 32 bits]`` of the seed. NOTE: JAX's ``key``
      returns a typed key scalar; fgrad's keys are always raw ``uint32[2]``.

    >>> key(42)
    Array([ 0, 42], dtype=uint32)
    """
    return threefry_seed(_seed_array("key", seed))


def PRNGKey(seed: Any) -> Any:  # noqa: N802 (JAX's name)
    """A PRNG key from an integer seed, a ``uint32[2]`` array: the same as ``key``."""
    return threefry_seed(_seed_array("PRNGKey", seed))


def key_data(keys: Any) -> Any:
    """The raw ``uint32`` data of a key or key array: fgrad's keys are raw already."""
    return _check_key("key_data", keys, allow_batched=True)


def wrap_key_data(key_bits_array: Any) -> Any:
    """A key (array) from raw ``uint32[..., 2]`` data: the identity in fgrad."""
    return _check_key("wrap_key_data", key_bits_array, allow_batched=True)


def split(key: Any, num: int | Shape = 2) -> Any:
    """Split a key into ``num`` new keys (an int, or a shape): ``uint32[*num, 2]``.

    >>> split(PRNGKey(0)).shape
    (2, 2)
    """
    key = _check_key("split", key)
    shape = _shape_arg("split", num)
    return threefry_split(key, shape)


def fold_in(key: Any, data: Any) -> Any:
    """A new key derived from ``key`` and the 32-bit integer ``data`` (e.g. a step number).

    ``data`` is a Python int in ``[0, 2**32)`` or a 0-d integer array (taken
    modulo 2**32; traced values work).
    """
    key = _check_key("fold_in", key)
    if isinstance(data, int) and not isinstance(data, bool):
        if not 0 <= data < 2**32:
            raise OverflowError(f"fold_in: Python integer {data} out of bounds for uint32")
        return threefry_fold_in(key, Array(np.asarray(data, _U32)))
    data = asarray_arg(data, "fold_in")
    aval = get_aval(data)
    if aval.ndim:
        raise TypeError(f"fold_in accepts a scalar, but was given an array of shape "
                        f"{aval.shape} != (). Use fgrad.vmap for batching.")
    if not (dtypes.is_int(aval.dtype) or dtypes.is_bool(aval.dtype)):
        raise TypeError(f"fold_in: data must be an integer, got {aval.str_short()}")
    return threefry_fold_in(key, lax.convert_element_type(data, _U32))


# --- bits and uniform floats ----------------------------------------------------------------

def bits(key: Any, shape: Shape = (), dtype: Any = None) -> Any:
    """Uniform random bits as unsigned integers of ``dtype`` (default uint32, uint64 with x64)."""
    key = _check_key("bits", key)
    dtype = dtypes.canonicalize_dtype(dtypes.default_uint_dtype() if dtype is None else dtype)
    if not dtypes.is_unsigned(dtype):
        raise ValueError(f"dtype argument to `bits` must be an unsigned int dtype, got {dtype}")
    return random_bits(key, dtype.itemsize * 8, _shape_arg("bits", shape))


def _uniform(key: Any, shape: tuple[int, ...], dtype: np.dtype, minval: Any, maxval: Any) -> Any:
    """Uniform floats in [minval, maxval), JAX's algorithm step by step (no checks)."""
    finfo = dtypes.finfo(dtype)
    nbits, nmant = int(finfo.bits), int(finfo.nmant)
    # Random mantissa bits under the exponent of 1.0 give a float in [1, 2); minus 1.
    # (Floats with fewer than 8 mantissa bits, i.e. bfloat16, draw 8 random bits.)
    rng_bits = 8 if nmant < 8 else nbits
    uint = _UINT_OF_WIDTH[nbits]
    raw = random_bits(key, rng_bits, shape)
    if rng_bits != nbits:
        raw = lax.convert_element_type(raw, uint)
    mantissa = shift_right_logical(raw, _full(shape, rng_bits - nmant, uint))
    one_bits = int(np.array(1.0, dtype).view(uint))
    floats = bitcast_convert_type(lax.bitwise_or(mantissa, _full(shape, one_bits, uint)), dtype)
    floats = lax.sub(floats, _full(shape, 1, dtype))
    minval = fnp.broadcast_to(_cast(minval, dtype), shape)
    maxval = fnp.broadcast_to(_cast(maxval, dtype), shape)
    span = lax.sub(maxval, minval)
    # NOTE: XLA fuses floats * span + minval into one fused multiply-add for float32 and
    # float64 (rounded once) but rounds each step for 16-bit floats; we do the same.
    if nbits >= 32:
        scaled = fma(floats, span, minval)
    else:
        scaled = lax.add(lax.mul(floats, span), minval)
    return lax.max(minval, scaled)


def uniform(key: Any, shape: Shape = (), dtype: Any = None, minval: Any = 0.0,
            maxval: Any = 1.0) -> Any:
    """Uniform random floats in ``[minval, maxval)``.

    Args:
      key: a PRNG key.
      shape: the result shape.
      dtype: a float dtype (default float32, float64 with x64).
      minval, maxval: bounds, scalars or arrays that broadcast to ``shape``.

    Raises:
      ValueError: for a non-float ``dtype`` or bounds that do not broadcast to ``shape``.
    """
    key = _check_key("uniform", key)
    dtype = _float_dtype("uniform", dtype)
    shape = _shape_arg("uniform", shape)
    _check_shape("uniform", shape, np.shape(minval), np.shape(maxval))
    return _uniform(key, shape, dtype, minval, maxval)


# --- continuous distributions -------------------------------------------------------------

def normal(key: Any, shape: Shape = (), dtype: Any = None) -> Any:
    """Standard normal floats: ``sqrt(2) * erf_inv(u)`` for ``u`` uniform in (-1, 1)."""
    key = _check_key("normal", key)
    dtype = _float_dtype("normal", dtype)
    shape = _shape_arg("normal", shape)
    low = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype))  # keeps erf_inv finite
    u = _uniform(key, shape, dtype, low, 1.0)
    return lax.mul(_full(shape, np.sqrt(2), dtype), lax.erf_inv(u))


def truncated_normal(key: Any, lower: Any, upper: Any, shape: Shape | None = None,
                     dtype: Any = None) -> Any:
    """Standard normal floats truncated to the open interval ``(lower, upper)``.

    Inverse-CDF sampling: ``u`` uniform in ``[erf(lower/√2), erf(upper/√2))``,
    then ``√2 erf_inv(u)``, clamped into the open interval. ``shape`` defaults
    to the broadcast shape of ``lower`` and ``upper``; differentiable in both.
    """
    key = _check_key("truncated_normal", key)
    dtype = _float_dtype("truncated_normal", dtype)
    bound_shapes = (np.shape(lower), np.shape(upper))
    if shape is None:
        shape = fnp.broadcast_shapes(*bound_shapes)
    else:
        shape = _shape_arg("truncated_normal", shape)
        _check_shape("truncated_normal", shape, *bound_shapes)
    lower, upper = _cast(lower, dtype), _cast(upper, dtype)
    sqrt2 = np.array(np.sqrt(2), dtype)
    a = lax.erf(fnp.divide(lower, sqrt2))
    b = lax.erf(fnp.divide(upper, sqrt2))
    out = fnp.multiply(sqrt2, lax.erf_inv(_uniform(key, shape, dtype, a, b)))
    return fnp.clip(out, fnp.nextafter(stop_gradient(lower), np.array(np.inf, dtype)),
                    fnp.nextafter(stop_gradient(upper), np.array(-np.inf, dtype)))


def gumbel(key: Any, shape: Shape = (), dtype: Any = None, mode: str = "low") -> Any:
    """Standard Gumbel floats ``-log(-log(u))``.

    ``mode="high"`` uses two uniforms per value for a finer grid near 0 (so
    the largest values are about 32 rather than 16 in float32), as in JAX.
    """
    key = _check_key("gumbel", key)
    dtype = _float_dtype("gumbel", dtype)
    if mode not in ("low", "high"):
        raise ValueError(f"gumbel: mode must be 'low' or 'high', got {mode!r}")
    return _gumbel(key, _shape_arg("gumbel", shape), dtype, mode)


def _gumbel(key: Any, shape: tuple[int, ...], dtype: np.dtype, mode: str) -> Any:
    finfo = dtypes.finfo(dtype)
    if mode == "low":
        u = _uniform(key, shape, dtype, float(finfo.tiny), 1.0)
        return fnp.negative(fnp.log(fnp.negative(fnp.log(u))))
    both = _uniform(key, (2, *shape), dtype, 0.0, 1.0)
    high, low = both[0], both[1]
    fine = fnp.add(fnp.add(high, fnp.multiply(np.array(2.0 ** -int(finfo.nmant), dtype), low)),
                   np.array(finfo.tiny, dtype))
    x = fnp.where(fnp.greater_equal(high, np.array(0.5, dtype)), high, fine)
    return fnp.negative(fnp.log(fnp.negative(fnp.log1p(fnp.negative(x)))))


# --- discrete distributions ---------------------------------------------------------------

def bernoulli(key: Any, p: Any = 0.5, shape: Shape | None = None) -> Any:
    """Booleans that are True with probability ``p`` (a float or float array).

    ``shape`` defaults to ``p``'s shape; ``p`` must broadcast to it.
    """
    key = _check_key("bernoulli", key)
    p = asarray_arg(p, "bernoulli")
    dtype = get_aval(p).dtype
    if not dtypes.is_float(dtype):
        raise TypeError(f"bernoulli probability `p` must have a floating dtype, got {dtype}.")
    if shape is None:
        shape = tuple(get_aval(p).shape)
    else:
        shape = _shape_arg("bernoulli", shape)
        _check_shape("bernoulli", shape, tuple(get_aval(p).shape))
    return fnp.less(_uniform(key, shape, dtype, 0.0, 1.0), p)


def _convert_and_clip_integer(x: Any, dtype: np.dtype) -> Any:
    """``x`` (integers) converted to ``dtype``, clamping into its range rather than wrapping."""
    x_info, info = np.iinfo(get_aval(x).dtype), np.iinfo(dtype)
    x_dtype = get_aval(x).dtype
    low = np.asarray(max(int(info.min), int(x_info.min)), x_dtype)  # numpy scalars: a Python
    high = np.asarray(min(int(info.max), int(x_info.max)), x_dtype)  # int may not fit int32
    return lax.convert_element_type(fnp.clip(x, low, high), dtype)


def randint(key: Any, shape: Shape, minval: Any, maxval: Any, dtype: Any = None) -> Any:
    """Uniform random integers in ``[minval, maxval)`` (bounds clamped to ``dtype``'s range).

    JAX's algorithm: twice ``dtype``'s bits per value reduced modulo the span
    (nearly unbiased); 8- and 16-bit dtypes are sampled in 32 bits. When
    ``maxval <= minval`` the result is ``minval``.
    """
    key = _check_key("randint", key)
    dtype = dtypes.canonicalize_dtype(int if dtype is None else dtype)
    if not dtypes.is_int(dtype):
        raise TypeError(f"randint only accepts integer dtypes, got {dtype}")
    shape = _shape_arg("randint", shape)
    minval, maxval = asarray_arg(minval, "randint"), asarray_arg(maxval, "randint")
    info = np.iinfo(dtype)
    sample_dtype = dtype
    if info.bits < 32:  # sample in 32 bits: less bias
        sample_dtype = np.dtype(np.int32)
        low, high = np.int32(info.min), np.int32(info.max)
        minval = fnp.clip(lax.convert_element_type(minval, np.int32), low, high)
        maxval = fnp.clip(lax.convert_element_type(maxval, np.int32), low, high + 1)
    out = _randint(key, shape, minval, maxval, sample_dtype)
    return lax.convert_element_type(out, dtype)


def _randint(key: Any, shape: tuple[int, ...], minval: Any, maxval: Any,
             dtype: np.dtype) -> Any:
    _check_shape("randint", shape, tuple(get_aval(minval).shape), tuple(get_aval(maxval).shape))
    if not dtypes.is_int(get_aval(minval).dtype):
        minval = lax.convert_element_type(minval, dtypes.default_int_dtype())
    if not dtypes.is_int(get_aval(maxval).dtype):
        maxval = lax.convert_element_type(maxval, dtypes.default_int_dtype())
    # A maxval above dtype's maximum means "up to and including the maximum".
    dtype_max = Array(np.asarray(np.iinfo(dtype).max, dtype))
    out_of_range = fnp.greater(maxval, _convert_and_clip_integer(dtype_max,
                                                                  get_aval(maxval).dtype))
    minval = fnp.broadcast_to(_convert_and_clip_integer(minval, dtype), shape)
    maxval = fnp.broadcast_to(_convert_and_clip_integer(maxval, dtype), shape)
    out_of_range = fnp.broadcast_to(out_of_range, shape)
    nbits = np.iinfo(dtype).bits
    keys = threefry_split(key, (2,))
    higher = random_bits(_row(keys, 0), nbits, shape)
    lower = random_bits(_row(keys, 1), nbits, shape)
    uint = _UINT_OF_WIDTH[nbits]
    ones = _full(shape, 1, uint)
    span = lax.convert_element_type(lax.sub(maxval, minval), uint)  # wraps: the true span
    span = lax.select(lax.le(maxval, minval), ones, span)
    # One more when maxval is out of range; the full range wraps to 0, and x % 0 == x.
    span = lax.select(lax.bitwise_and(out_of_range, lax.gt(maxval, minval)),
                      lax.add(span, ones), span)
    # (higher * 2**nbits + lower) % span, without overflow: 2**nbits % span via its square root.
    multiplier = lax.rem(_full(shape, 2 ** (nbits // 2), uint), span)
    multiplier = lax.rem(lax.mul(multiplier, multiplier), span)
    offset = lax.add(lax.mul(lax.rem(higher, span), multiplier), lax.rem(lower, span))
    offset = lax.rem(offset, span)
    return lax.add(minval, lax.convert_element_type(offset, dtype))


def _shuffle(key: Any, x: Any, axis: int) -> Any:
    """``x`` permuted along ``axis`` by sorting on random 32-bit keys (each lane
    independently). Collisions are handled as in JAX: enough rounds (each a stable
    sort on fresh keys) that all orders are (nearly) equally likely."""
    size = math.prod(get_aval(x).shape)
    num_rounds = int(np.ceil(3 * np.log(max(1, size)) / np.log(np.iinfo(np.uint32).max)))
    for _ in range(num_rounds):
        keys = threefry_split(key, (2,))
        key, subkey = _row(keys, 0), _row(keys, 1)
        sort_keys = random_bits(subkey, 32, get_aval(x).shape)
        x = fnp.take_along_axis(x, argsort(sort_keys, axis), axis)
    return x


def permutation(key: Any, x: Any, axis: int = 0, independent: bool = False) -> Any:
    """A random permutation of ``arange(x)`` (an int ``x``) or of ``x``'s slices along ``axis``.

    ``independent=True`` shuffles every 1-d lane along ``axis`` separately.
    Differentiable in ``x`` (the permutation is a gather).
    """
    key = _check_key("permutation", key)
    x = asarray_arg(x, "permutation")
    aval = get_aval(x)
    if aval.ndim == 0:
        if not dtypes.is_int(aval.dtype):
            raise TypeError(f"permutation: x must be an integer or at least 1-dimensional, "
                            f"got {aval.str_short()}")
        normalize_axis(axis, 1, "permutation")
        return _shuffle(key, fnp.arange(operator.index(x)), 0)
    axis = normalize_axis(axis, aval.ndim, "permutation")
    if independent or aval.ndim == 1:
        return _shuffle(key, x, axis)
    order = _shuffle(key, fnp.arange(aval.shape[axis]), 0)
    return fnp.take(x, order, axis)


def _top_k_indices(x: Any, k: int) -> Any:
    """Indices of the ``k`` largest entries along the last axis, largest first (ties: lower
    index first), as ``lax.top_k``."""
    order = argsort(fnp.negative(x), get_aval(x).ndim - 1)
    return order[..., :k]


def choice(key: Any, a: Any, shape: Shape = (), replace: bool = True, p: Any = None,
           axis: int = 0) -> Any:
    """Random samples from ``a``'s slices along ``axis`` (or from ``arange(a)`` for an int ``a``).

    Args:
      key: a PRNG key.
      a: an int n (sample from ``arange(n)``) or an array.
      shape: the sample shape (a sequence).
      replace: sample with replacement (default) or without.
      p: probabilities of the entries (1-d, ``a.shape[axis]`` long); uniform if None.
      axis: the axis of ``a`` to sample along.

    Returns:
      ``shape`` samples: an array of shape ``a.shape[:axis] + shape + a.shape[axis+1:]``.
    """
    key = _check_key("choice", key)
    if not isinstance(shape, Sequence):
        raise TypeError(f"shape argument of fgrad.random.choice must be a sequence, got {shape}")
    shape = _shape_arg("choice", shape)
    arr = asarray_arg(a, "choice")
    aval = get_aval(arr)
    if aval.ndim == 0:
        n_inputs = operator.index(a if isinstance(a, int) else arr)
    else:
        axis = normalize_axis(axis, aval.ndim, "choice")
        n_inputs = aval.shape[axis]
    n_draws = math.prod(shape)
    if n_draws == 0:
        return fnp.zeros(shape, dtype=aval.dtype)
    if n_inputs <= 0:
        raise ValueError("choice: a must be greater than 0 unless no samples are taken")
    if not replace and n_draws > n_inputs:
        raise ValueError(f"choice: cannot take a larger sample (size {n_draws}) than the "
                         f"population (size {n_inputs}) when 'replace=False'")
    if p is None:
        if replace:
            index = randint(key, shape, 0, n_inputs)
            result = index if aval.ndim == 0 else fnp.take(arr, index, axis)
        else:
            population = n_inputs if aval.ndim == 0 else arr
            shuffled = permutation(key, population, axis if aval.ndim else 0)
            result = lax.slice_in_dim(shuffled, 0, n_draws, axis=axis if aval.ndim else 0)
    else:
        p_arr = asarray_arg(p, "choice")
        p_dtype = get_aval(p_arr).dtype
        if not dtypes.is_float(p_dtype):
            p_arr = lax.convert_element_type(p_arr, dtypes.default_float_dtype())
        if tuple(get_aval(p_arr).shape) != (n_inputs,):
            raise ValueError(f"choice: p must be None or a 1D vector with the same size as "
                             f"a.shape[axis]. p has shape {tuple(get_aval(p_arr).shape)} and "
                             f"a.shape[axis] is {n_inputs}.")
        if replace:
            p_cuml = fnp.cumsum(p_arr)
            dtype = get_aval(p_cuml).dtype
            u = _uniform(key, shape, dtype, 0.0, 1.0)
            r = fnp.multiply(p_cuml[-1], fnp.subtract(np.array(1, dtype), u))
            # searchsorted(p_cuml, r, side="left"): how many cumulative sums lie below r.
            below = fnp.less(p_cuml, fnp.expand_dims(r, -1))
            index = fnp.sum(below, axis=-1, dtype=dtypes.default_int_dtype())
        else:
            # The Gumbel top-k trick: the k largest of log(p) + Gumbel noise.
            dtype = get_aval(p_arr).dtype
            g = fnp.add(_gumbel(key, (n_inputs,), dtype, "low"), fnp.log(p_arr))
            index = lax.convert_element_type(_top_k_indices(g, n_draws),
                                             dtypes.default_int_dtype())
        result = index if aval.ndim == 0 else fnp.take(arr, index, axis)
    out_shape = shape if aval.ndim == 0 else (*aval.shape[:axis], *shape,
                                              *aval.shape[axis + 1:])
    return fnp.reshape(result, out_shape)


def categorical(key: Any, logits: Any, axis: int = -1, shape: Shape | None = None,
                replace: bool = True) -> Any:
    """Samples of categorical distributions with probabilities ``softmax(logits, axis)``.

    The Gumbel-max trick: ``argmax(logits + gumbel noise, axis)``; without
    replacement, the Gumbel top-k. ``shape`` defaults to ``logits``' shape
    without ``axis``; a longer ``shape`` draws several samples per distribution
    (its leading dimensions).
    """
    key = _check_key("categorical", key)
    logits = asarray_arg(logits, "categorical")
    aval = get_aval(logits)
    if not dtypes.is_float(aval.dtype):
        raise TypeError(f"categorical: logits must be floats, got {aval.str_short()}")
    axis = normalize_axis(axis, aval.ndim, "categorical")
    batch_shape = aval.shape[:axis] + aval.shape[axis + 1:]
    if shape is None:
        shape = batch_shape
    else:
        shape = _shape_arg("categorical", shape)
        _check_shape("categorical", shape, batch_shape)
    prefix = shape[:len(shape) - len(batch_shape)]
    if replace:
        # Noise of shape prefix + (shape's tail with the category axis put back).
        noise_shape = list(shape[len(prefix):])
        noise_shape.insert(axis, aval.shape[axis])
        noise = _gumbel(key, (*prefix, *noise_shape), aval.dtype, "low")
        scores = fnp.add(noise, fnp.expand_dims(logits, tuple(range(len(prefix)))))
        return fnp.argmax(scores, axis=axis - aval.ndim)
    k = math.prod(prefix)
    if k > aval.shape[axis]:
        raise ValueError(f"categorical: number of samples without replacement ({k}) cannot "
                         f"exceed the number of categories ({aval.shape[axis]})")
    scores = fnp.add(logits, _gumbel(key, aval.shape, aval.dtype, "low"))
    # int32 indices, like lax.top_k's (JAX returns those even with x64)
    indices = _top_k_indices(fnp.moveaxis(scores, axis, -1), k)  # batch_shape + (k,)
    return fnp.reshape(fnp.moveaxis(indices, -1, 0), shape)


__all__ = ["key", "PRNGKey", "key_data", "wrap_key_data", "split", "fold_in", "bits",
           "uniform", "normal", "truncated_normal", "gumbel", "bernoulli", "randint",
           "permutation", "choice", "categorical"]
