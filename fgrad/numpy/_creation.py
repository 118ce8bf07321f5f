"""Array creation: ``array``, ``zeros``, ``full``, ``arange``, ``linspace``, ``eye`` and friends.

Dtypes follow JAX, not numpy: float32 and int32 by default (64 bits need
``enable_x64``), and a Python scalar makes a *weakly typed* array
(``fnp.array(1.0)`` yields to the dtype of whatever it meets), while lists and
numpy values make strongly typed ones. ``zeros_like(x)`` and friends read only
``x``'s shape and dtype, so under a transform they are constants, never
functions of the traced ``x``.

Sequences (``arange``, ``eye``, ``tri``) are built from ``iota`` rather than
numpy constants, so a staged program carries one small equation, not a
baked-in array. Their sizes must be concrete Python values, as in JAX.
"""

from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from fgrad.config import config
from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import get_aval
from fgrad.core.errors import ConcretizationTypeError, concretization_message
from fgrad.core.trace import Tracer
from fgrad.numpy._util import broadcast_shapes, broadcast_to_shape, cast, normalize_axis
from fgrad.primitives import elementwise as lax
from fgrad.primitives import shape as lax_shape


def _fnp() -> Any:
    import fgrad.numpy as fnp  # late: the other fgrad.numpy modules import this one
    return fnp


def _is_array(x: Any) -> bool:
    return isinstance(x, (Array, Tracer))


def _user_dtype(dtype: Any, default: Any = None) -> np.dtype:
    return dtypes.canonicalize_dtype(default if dtype is None else dtype)


def _ndim(x: Any) -> int:
    return get_aval(x).ndim if _is_array(x) else int(np.ndim(x))


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _leaves(item)]
    return [x]


def _canonical_shape(shape: Any, op: str) -> tuple[int, ...]:
    try:
        dims = (operator.index(shape),) if not isinstance(shape, (tuple, list)) else tuple(
            operator.index(d) for d in shape)
    except TypeError:
        raise TypeError(f"{op}: shape must be an int or a sequence of ints, got {shape!r}") \
            from None
    if any(d < 0 for d in dims):
        raise ValueError(f"{op}: negative dimensions are not allowed, got shape {dims}")
    return dims


def _filled(shape: Sequence[int], value: Any, dtype: np.dtype, weak: bool) -> Any:
    """``value`` (a concrete scalar, or a traced 0-d array) broadcast to ``shape``."""
    if _is_array(value):
        scalar = cast(value, dtype, weak)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            scalar = Array(np.asarray(value).astype(dtype), weak)
    return lax_shape.broadcast_in_dim(scalar, tuple(shape), ()) if tuple(shape) else scalar


# --- array, asarray --------------------------------------------------------------------------


def array(object: Any, dtype: Any = None, copy: bool = True, order: str | None = "K",  # noqa: A002
          ndmin: int = 0) -> Any:
    """An fgrad array from array-like data: scalars, (nested) lists, numpy or fgrad arrays.

    A Python scalar gives a weakly typed array; lists and numpy values are
    strongly typed, their dtype JAX's promotion of the leaves (``[1, 2.5]`` is
    float32). Lists may hold traced values: they are stacked. ``copy`` is
    accepted for numpy compatibility (fgrad arrays are immutable).

    >>> import fgrad.numpy as fnp
    >>> fnp.array(1.0)
    Array(1., dtype=float32, weak_type=True)
    >>> fnp.array([1, 2.5])
    Array([1. , 2.5], dtype=float32)
    """
    if order not in (None, "K", "C"):
        raise NotImplementedError(f"array: only order='K' or 'C' is supported, got {order!r}")
    out = _array(object, None if dtype is None else dtypes.canonicalize_dtype(dtype))
    if ndmin > get_aval(out).ndim:
        out = lax_shape.reshape(out, (1,) * (ndmin - get_aval(out).ndim) + get_aval(out).shape)
    return out


def _array(obj: Any, dtype: np.dtype | None) -> Any:
    if _is_array(obj):
        return obj if dtype is None else cast(obj, dtype)
    if isinstance(obj, (list, tuple)):
        leaves = _leaves(obj)
        if any(leaf is None for leaf in leaves):
            raise ValueError("array: None is not a valid array element")
        if dtype is None:
            dtype = dtypes.result_type(*[dtypes.dtype_and_weak_type(leaf) for leaf in leaves])[0] \
                if leaves else dtypes.default_float_dtype()
        if any(_is_array(leaf) for leaf in leaves):
            parts = [_array(item, dtype) for item in obj]
            return _fnp().stack(parts) if parts else Array(np.zeros((0,), dtype))
        return Array(np.array(obj, dtype=dtype), False)
    if isinstance(obj, (str, bytes)) or obj is None:
        raise TypeError(f"array: cannot make an fgrad array from {type(obj).__name__} {obj!r}")
    value_dtype, weak = dtypes.dtype_and_weak_type(obj)
    weak = weak and dtype is None
    with np.errstate(invalid="ignore", over="ignore"):
        value = np.asarray(obj).astype(value_dtype if dtype is None else dtype)
    return Array(value, weak)


def asarray(a: Any, dtype: Any = None, order: str | None = None, *, copy: bool | None = None
            ) -> Any:
    """Like ``array``; fgrad and numpy arrays of the right dtype pass through."""
    return array(a, dtype, order=order)


def copy(a: Any, order: str | None = None) -> Any:
    """A copy of ``a`` (fgrad arrays are immutable, so the same values)."""
    return array(a, order=order)


def astype(x: Any, dtype: Any, /, *, copy: bool = False) -> Any:
    """``x`` converted to ``dtype`` (None: the default float); the result is strongly typed."""
    x = array(x) if not _is_array(x) else x
    return cast(x, _user_dtype(dtype, dtypes.default_float_dtype()))


# --- filled arrays ---------------------------------------------------------------------------


def zeros(shape: Any, dtype: Any = None) -> Any:
    """An array of zeros (float32 by default)."""
    return full(shape, 0, _user_dtype(dtype, dtypes.default_float_dtype()))


def ones(shape: Any, dtype: Any = None) -> Any:
    """An array of ones (float32 by default)."""
    return full(shape, 1, _user_dtype(dtype, dtypes.default_float_dtype()))


empty = zeros  # fgrad arrays are immutable: an "uninitialized" array might as well be zeros


def full(shape: Any, fill_value: Any, dtype: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value``.

    Without ``dtype``, a Python scalar fill gives a weakly typed array, as in JAX.
    A non-scalar ``fill_value`` is broadcast to ``shape``.
    """
    shape = _canonical_shape(shape, "full")
    if _ndim(fill_value) != 0:
        return broadcast_to_shape(asarray(fill_value, dtype), shape, "full")
    if dtype is None:
        dt, weak = dtypes.dtype_and_weak_type(fill_value)
    else:
        dt, weak = dtypes.canonicalize_dtype(dtype), False
    return _filled(shape, fill_value, dt, weak)


def full_like(a: Any, fill_value: Any, dtype: Any = None, shape: Any = None) -> Any:
    """An array with ``a``'s shape and dtype (or ``shape``/``dtype``) filled with ``fill_value``.

    Reads only ``a``'s type, so it is a constant even when ``a`` is traced.
    Keeps ``a``'s weak type unless ``dtype`` is given.
    """
    aval = get_aval(a if _is_array(a) or isinstance(a, (np.ndarray, np.generic, bool, int, float))
                    else array(a))
    shape = aval.shape if shape is None else _canonical_shape(shape, "full_like")
    dt = aval.dtype if dtype is None else dtypes.canonicalize_dtype(dtype)
    weak = aval.weak_type and dtype is None
    if _ndim(fill_value) != 0:
        return broadcast_to_shape(asarray(fill_value, dt), shape, "full_like")
    return _filled(shape, fill_value, dt, weak)


def zeros_like(a: Any, dtype: Any = None, shape: Any = None) -> Any:
    """Zeros with ``a``'s shape and dtype (a constant, even for a traced ``a``)."""
    return full_like(a, 0, dtype, shape)


def ones_like(a: Any, dtype: Any = None, shape: Any = None) -> Any:
    """Ones with ``a``'s shape and dtype (a constant, even for a traced ``a``)."""
    return full_like(a, 1, dtype, shape)


empty_like = zeros_like


# --- ranges ----------------------------------------------------------------------------------


def _concrete_scalar(x: Any, name: str, op: str) -> Any:
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        if value is None:
            raise ConcretizationTypeError(concretization_message(
                f"{op}() argument '{name}'", x.aval.str_short(),
                "the output's size would depend on it"))
        x = Array(np.asarray(value), x.aval.weak_type)
    if np.ndim(x) != 0:
        raise ValueError(f"{op}: arguments must be scalars; got {name}={x}")
    return x


def arange(start: Any, stop: Any = None, step: Any = None, dtype: Any = None) -> Any:
    """Evenly spaced values in ``[start, stop)``: ints give int32, floats float32 (as jnp).

    The arguments must be concrete (the length of the result depends on them).

    >>> import fgrad.numpy as fnp
    >>> fnp.arange(3)
    Array([0, 1, 2], dtype=int32)
    >>> fnp.arange(0.5, 2.0, 0.5)
    Array([0.5, 1. , 1.5], dtype=float32)
    """
    names = ("stop" if stop is None and step is None else "start", "stop", "step")
    start, stop, step = (None if v is None else _concrete_scalar(v, n, "arange")
                         for v, n in zip((start, stop, step), names))
    given = [v for v in (start, stop, step) if v is not None]
    if dtype is None:
        dtype = dtypes.result_type(*[dtypes.dtype_and_weak_type(v) for v in given])[0]
    dtype = dtypes.canonicalize_dtype(dtype)
    if stop is None:
        start, stop = 0, start
    lo, hi = float(start), float(stop)
    if step is not None:
        # Computed in a working dtype (float32 for 16-bit floats), then cast, as JAX does.
        work = np.dtype(np.float32) if dtypes.is_float(dtype) and dtype.itemsize < 4 else dtype
        size = max(0, int(np.ceil((hi - lo) / float(step))))
        ramp = lax.mul(_filled((size,), step, work, False), lax_shape.iota(work, size))
        return cast(lax.add(_filled((size,), start, work, False), ramp), dtype)
    if lo == 0:
        return lax_shape.iota(dtype, max(0, int(np.ceil(hi))))
    size = max(0, int(np.ceil(hi - lo)))
    return lax.add(_filled((size,), start, dtype, False), lax_shape.iota(dtype, size))


def _inexact(dtype: np.dtype) -> np.dtype:
    return dtype if dtypes.is_float(dtype) else dtypes.default_float_dtype()


def linspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype: Any = None, axis: int = 0) -> Any:
    """``num`` evenly spaced values from ``start`` to ``stop`` (included if ``endpoint``).

    ``start`` and ``stop`` may be arrays (the values then run along ``axis``)
    and may be traced: linspace is differentiable in them.
    """
    num = operator.index(num)
    if num < 0:
        raise ValueError(f"linspace: number of samples, {num}, must be non-negative")
    fnp = _fnp()
    start, stop = asarray(start), asarray(stop)
    if dtype is None:
        dtype = _inexact(dtypes.result_type((start.dtype, start.weak_type),
                                            (stop.dtype, stop.weak_type))[0])
    dtype = dtypes.canonicalize_dtype(dtype)
    work = _inexact(dtype)
    start, stop = cast(start, work), cast(stop, work)
    bounds = broadcast_shapes(start.shape, stop.shape, op="linspace")
    start, stop = broadcast_to_shape(start, bounds), broadcast_to_shape(stop, bounds)
    axis = normalize_axis(axis, len(bounds) + 1, "linspace")
    expanded = bounds[:axis] + (1,) + bounds[axis:]
    div = num - 1 if endpoint else num
    if num > 1:
        delta = fnp.divide(fnp.subtract(stop, start), Array(np.asarray(div, work)))
        step = fnp.divide(lax_shape.broadcasted_iota(work, expanded[:axis] + (div,)
                                                     + expanded[axis + 1:], axis),
                          Array(np.asarray(div, work)))
        out = fnp.add(fnp.multiply(lax_shape.reshape(start, expanded), fnp.subtract(1, step)),
                      fnp.multiply(lax_shape.reshape(stop, expanded), step))
        if endpoint:
            out = fnp.concatenate([out, lax_shape.reshape(stop, expanded)], axis=axis)
    elif num == 1:
        delta = Array(np.asarray(np.nan, work)) if endpoint else fnp.subtract(stop, start)
        out = lax_shape.reshape(start, expanded)
    else:
        delta = Array(np.asarray(np.nan, work))
        out = zeros(bounds[:axis] + (0,) + bounds[axis:], work)
    if dtypes.is_int(dtype):
        out = lax.floor(out)
    out = cast(out, dtype)
    return (out, delta) if retstep else out


def logspace(start: Any, stop: Any, num: int = 50, endpoint: bool = True, base: Any = 10.0,
             dtype: Any = None, axis: int = 0) -> Any:
    """``base ** linspace(start, stop, num)``."""
    start, stop = asarray(start), asarray(stop)
    if dtype is None:
        dtype = _inexact(dtypes.result_type((start.dtype, start.weak_type),
                                            (stop.dtype, stop.weak_type))[0])
    dtype = dtypes.canonicalize_dtype(dtype)
    work = _inexact(dtype)
    lin = linspace(cast(start, work), cast(stop, work), num, endpoint=endpoint, axis=axis)
    return cast(_fnp().power(base, lin), dtype)


# --- matrices ---------------------------------------------------------------------------------


def _index_grid(n: int, m: int) -> tuple[Any, Any]:
    int32 = np.dtype(np.int32)
    return (lax_shape.broadcasted_iota(int32, (n, m), 0),
            lax_shape.broadcasted_iota(int32, (n, m), 1))


def eye(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Any:  # noqa: N803
    """An ``N x M`` matrix with ones on the ``k``-th diagonal (float32 by default)."""
    n = operator.index(N)
    m = n if M is None else operator.index(M)
    if n < 0 or m < 0:
        raise ValueError(f"eye: negative dimensions are not allowed, got N={N} and M={M}")
    rows, cols = _index_grid(n, m)
    on_diagonal = _fnp().equal(_fnp().add(rows, k), cols)
    return cast(on_diagonal, _user_dtype(dtype, dtypes.default_float_dtype()))


def identity(n: int, dtype: Any = None) -> Any:
    """The ``n x n`` identity matrix."""
    return eye(n, dtype=dtype)


def tri(N: int, M: int | None = None, k: int = 0, dtype: Any = None) -> Any:  # noqa: N803
    """Ones at and below the ``k``-th diagonal (float32 by default, as in JAX)."""
    n = operator.index(N)
    m = n if M is None else operator.index(M)
    rows, cols = _index_grid(n, m)
    mask = lax.ge(lax.add(rows, _filled((n, m), operator.index(k), np.dtype(np.int32), False)),
                  cols)
    return cast(mask, _user_dtype(dtype, np.float32))


def _triangle(m: Any, k: int, lower: bool, op: str) -> Any:
    m = asarray(m)
    shape = get_aval(m).shape
    if len(shape) < 2:
        raise ValueError(f"{op}: the argument must be at least 2-D, got shape {shape}")
    mask = tri(shape[-2], shape[-1], k if lower else k - 1, dtype=np.bool_)
    mask = lax_shape.broadcast_in_dim(mask, shape, (len(shape) - 2, len(shape) - 1))
    zero = zeros_like(m)
    return lax.select(mask, m, zero) if lower else lax.select(mask, zero, m)


def tril(m: Any, k: int = 0) -> Any:
    """``m`` with the elements above the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(m, operator.index(k), True, "tril")


def triu(m: Any, k: int = 0) -> Any:
    """``m`` with the elements below the ``k``-th diagonal zeroed (last two axes)."""
    return _triangle(m, operator.index(k), False, "triu")


def diag(v: Any, k: int = 0) -> Any:
    """A 1-D ``v`` as the ``k``-th diagonal of a square matrix; of a 2-D ``v``, its diagonal."""
    v = asarray(v)
    k = operator.index(k)
    shape = get_aval(v).shape
    if len(shape) == 2:
        return _fnp().diagonal(v, offset=k)
    if len(shape) != 1:
        raise ValueError(f"diag: the input must be 1-D or 2-D, got shape {shape}")
    n = shape[0] + abs(k)
    zero = full_like(v, 0, shape=())
    column = lax_shape.pad(v, zero, [(max(0, -k), max(0, k), 0)])
    column = lax_shape.broadcast_in_dim(column, (n, n), (0,))
    return lax.select(eye(n, k=k, dtype=np.bool_), column, full_like(v, 0, shape=(n, n)))


def diagflat(v: Any, k: int = 0) -> Any:
    """``diag`` of the flattened ``v``."""
    return diag(_fnp().ravel(asarray(v)), k)


def meshgrid(*xi: Any, copy: bool = True, sparse: bool = False, indexing: str = "xy") -> list[Any]:
    """Coordinate matrices from 1-D coordinate vectors (``'xy'``: Cartesian, ``'ij'``: matrix)."""
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    args = [asarray(x) for x in xi]
    if any(get_aval(a).ndim != 1 for a in args):
        raise ValueError(f"meshgrid: arguments must be 1-D, got shapes "
                         f"{[get_aval(a).shape for a in args]}")
    if indexing == "xy" and len(args) >= 2:
        args[0], args[1] = args[1], args[0]
    sizes = [get_aval(a).shape[0] for a in args]
    out = []
    for i, a in enumerate(args):
        shape = [1] * len(args) if sparse else list(sizes)
        shape[i] = sizes[i]
        out.append(lax_shape.broadcast_in_dim(a, tuple(shape), (i,)))
    if indexing == "xy" and len(args) >= 2:
        out[0], out[1] = out[1], out[0]
    return out


# --- dtype helpers ------------------------------------------------------------------------------


def _dtype_and_weak(x: Any) -> tuple[np.dtype, bool]:
    if x is int or x is float:  # Python's scalar types stand for weak values, as in JAX
        return dtypes.dtype_and_weak_type(x(0))
    if x is bool:
        return np.dtype(np.bool_), False
    if _is_array(x) or isinstance(x, (np.ndarray, np.generic, int, float, list, tuple)):
        return dtypes.dtype_and_weak_type(x)
    return dtypes.canonicalize_dtype(x), False


def result_type(*args: Any) -> np.dtype:
    """The dtype of an operation on ``args`` (arrays, scalars or dtypes), JAX's lattice."""
    return dtypes.result_type(*[_dtype_and_weak(a) for a in args])[0]


def promote_types(a: Any, b: Any) -> np.dtype:
    """The dtype two strongly typed dtypes promote to, as ``jnp.promote_types``.

    Like JAX (and unlike ``result_type``) the answer is not narrowed to 32 bits
    when x64 is off: ``promote_types(float32, float64)`` is float64.
    """
    a, b = np.dtype(a), np.dtype(b)
    out = dtypes._result_type(True, ((a, False), (b, False)))[0]
    # JAX's 32-bit lattice also orders uint32 below int32 (they meet at int32, not int64).
    if not config.enable_x64 and out == np.int64 and max(a.itemsize, b.itemsize) <= 4:
        return np.dtype(np.int32)
    return out


def can_cast(from_: Any, to: Any, casting: str = "safe") -> bool:
    """numpy's ``can_cast`` on dtypes (arrays stand for their dtype)."""
    if _is_array(from_):
        from_ = from_.dtype
    return bool(np.can_cast(from_, to, casting))


def _dtype_of(x: Any) -> np.dtype:
    is_value = _is_array(x) or isinstance(x, (np.ndarray, np.generic))
    return np.dtype(x.dtype if is_value else x)


def finfo(dtype: Any) -> Any:
    """Machine limits of a float dtype or array (bfloat16 included)."""
    return dtypes.finfo(_dtype_of(dtype))


def iinfo(dtype: Any) -> Any:
    """Machine limits of an integer dtype or array."""
    return dtypes.iinfo(_dtype_of(dtype))


__all__ = ["array", "asarray", "copy", "astype", "zeros", "ones", "empty", "full", "zeros_like",
           "ones_like", "empty_like", "full_like", "arange", "linspace", "logspace", "eye",
           "identity", "tri", "tril", "triu", "diag", "diagflat", "meshgrid", "result_type",
           "promote_types", "can_cast", "finfo", "iinfo"]
