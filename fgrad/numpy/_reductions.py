"""Reductions with numpy semantics, on top of the strict ``fgrad.lax`` reductions.

``sum``, ``prod``, ``max``/``amax``, ``min``/``amin``, ``all``, ``any``,
``mean``, ``var``, ``std``, ``average``, ``ptp``, ``count_nonzero``,
``argmax``, ``argmin``, ``cumsum``, ``cumprod``, ``cumulative_sum``,
``cumulative_prod`` and the NaN-ignoring ``nansum``, ``nanprod``, ``nanmax``,
``nanmin``, ``nanmean``.

This layer does what the primitives refuse to: ``axis`` may be None (all
axes), an int or a tuple, negative; ``keepdims`` keeps reduced axes as size 1;
``where=`` masks elements out (replaced by the reduction's identity); and
dtypes are chosen as JAX chooses them:

* ``sum``/``prod`` of bools and of ints narrower than the default int
  accumulate in the default int (``uint`` for unsigned); ``cumsum``/``cumprod``
  keep ints as they are but turn bools into the default int;
* ``mean``/``var``/``std``/``average`` of ints and bools are floats;
* float16/bfloat16 are accumulated in float32, rounded once at the end;
* results are never weakly typed (``fnp.sum(2.0)`` is a strong float32).

``max``/``min`` have no identity, so an empty reduction without ``initial=``
is a ``ValueError``, as in numpy and JAX.
"""

from __future__ import annotations

import builtins
import operator
from typing import Any, Callable

import numpy as np

from fgrad.core import dtypes
from fgrad.core import trace as _trace_mod
from fgrad.core.array import Array
from fgrad.core.avals import get_aval
from fgrad.numpy._util import asarray_arg, broadcast_to_shape, cast
from fgrad.numpy._util import result_dtype as _result_dtype
from fgrad.primitives import elementwise as lax_ew
from fgrad.primitives import reductions as lax_red
from fgrad.primitives import shape as lax_shape

Reducer = Callable[[Any, tuple[int, ...]], Any]
Combiner = Callable[[Any, Any], Any]


# --- argument handling ----------------------------------------------------------------------

def _axis_list(axis: Any, ndim: int, name: str) -> tuple[int, ...]:
    """``axis`` (an int or a sequence of ints, possibly negative) normalized, in its order."""
    seq = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in seq:
        a = operator.index(a)
        if not -ndim <= a < ndim:
            raise ValueError(f"{name}: axis {a} is out of bounds for array of dimension {ndim}")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{name}: duplicate value in 'axis': {axis}")
    return tuple(out)


def _axes(axis: Any, ndim: int, name: str) -> tuple[int, ...]:
    """``axis`` (None for all axes, an int or a sequence) as sorted non-negative axes."""
    return tuple(range(ndim)) if axis is None else tuple(sorted(_axis_list(axis, ndim, name)))


def _check_no_out(name: str, out: Any) -> None:
    if out is not None:
        raise NotImplementedError(f"The 'out' argument to fnp.{name} is not supported "
                                  "(fgrad arrays are immutable).")


def _check_where(name: str, where: Any, shape: tuple[int, ...]) -> Any:
    """``where`` as a bool array broadcast to ``shape`` (None stays None)."""
    if where is None:
        return None
    where = asarray_arg(where, name)
    if not dtypes.is_bool(where.dtype):
        raise ValueError(f"fnp.{name}: where must be None or a boolean array; got "
                         f"where.dtype={where.dtype}.")
    return broadcast_to_shape(where, shape, name)


def _user_dtype(dtype: Any) -> np.dtype | None:
    return None if dtype is None else dtypes.canonicalize_dtype(dtype)


def _promote_integer(dtype: np.dtype) -> np.dtype:
    """Bools and narrow ints widen to the default (u)int, as numpy's sum does."""
    if dtypes.is_bool(dtype):
        return dtypes.default_int_dtype()
    if dtypes.is_unsigned(dtype):
        return builtins.max(dtype, dtypes.default_uint_dtype(), key=lambda d: d.itemsize)
    if dtypes.is_int(dtype):
        return builtins.max(dtype, dtypes.default_int_dtype(), key=lambda d: d.itemsize)
    return dtype


def _to_inexact(dtype: np.dtype) -> np.dtype:
    """JAX's ``to_inexact_dtype``: 64-bit ints become float64, other ints and bool float32."""
    if dtypes.is_float(dtype):
        return dtype
    return dtypes.canonicalize_dtype(np.float64 if dtype.itemsize == 8 else np.float32)


def _promote_to_inexact(*args: Any) -> list[Any]:
    """Common dtype of ``args``, made inexact as ``_to_inexact`` does; strongly typed."""
    arrays = [asarray_arg(x, "average") for x in args]
    dtype = _to_inexact(_result_dtype(*arrays)[0])
    return [cast(x, dtype) for x in arrays]


def _upcast_f16(dtype: np.dtype) -> np.dtype:
    if dtypes.is_float(dtype) and dtype.itemsize == 2:
        return np.dtype(np.float32)
    return dtype


def _identity(value: float, dtype: np.dtype) -> Any:
    """The scalar ``value`` in ``dtype``; +-inf saturate to an integer dtype's range."""
    if dtypes.is_bool(dtype):
        return np.bool_(value > 0)
    if dtypes.is_int(dtype):
        info = np.iinfo(dtype)
        return dtype.type(builtins.min(builtins.max(value, info.min), info.max))
    return dtype.type(value)


def _keepdims(out: Any, in_shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    return lax_shape.reshape(out, tuple(1 if i in axes else d for i, d in enumerate(in_shape)))


def _full(shape: tuple[int, ...], value: Any, dtype: np.dtype) -> Any:
    return lax_shape.full(shape, value, dtype)


def _isnan(x: Any) -> Any:
    return lax_ew.ne(x, x)


def _cast_to_numeric(a: Any) -> Any:
    return cast(a, dtypes.default_int_dtype()) if dtypes.is_bool(a.dtype) else a


def _cast_to_bool(a: Any) -> Any:
    return cast(a, np.dtype(bool))


# --- the generic reduction ------------------------------------------------------------------

def _reduction(a: Any, name: str, reducer: Reducer, op: Combiner, init_val: float, *,
               bool_reducer: Reducer | None = None, bool_op: Combiner | None = None,
               has_identity: bool = True, preproc: Callable[[Any], Any] | None = None,
               upcast_f16: bool = False, axis: Any = None, dtype: Any = None,
               keepdims: bool = False, initial: Any = None, where: Any = None,
               promote_integers: bool = False) -> Any:
    """Reduce ``a`` with ``reducer`` (a strict reduction) following ``jnp``'s rules.

    ``op`` combines ``initial`` with the result; ``init_val`` (the identity)
    replaces the elements ``where`` masks out.
    """
    a = asarray_arg(a, name)
    if initial is None and not has_identity and where is not None:
        raise ValueError(f"reduction operation {name} does not have an identity, so to use a "
                         "where mask one has to specify 'initial'")
    if preproc is not None:
        a = preproc(a)
    shape = get_aval(a).shape
    where = _check_where(name, where, shape)
    axes = _axes(axis, len(shape), name)
    if initial is None and not has_identity and builtins.any(shape[d] == 0 for d in axes):
        raise ValueError(f"zero-size array to reduction operation {name} which has no identity")
    result_dtype = _user_dtype(dtype)
    if result_dtype is None:
        result_dtype = _promote_integer(a.dtype) if promote_integers else a.dtype
    computation = _upcast_f16(result_dtype) if upcast_f16 else result_dtype
    a = cast(a, computation)
    if dtypes.is_bool(computation):
        reducer, op = bool_reducer or reducer, bool_op or op
    if where is not None:
        a = lax_ew.select(where, a, _full(shape, _identity(init_val, computation), computation))
    out = reducer(a, axes)
    if initial is not None:
        initial = cast(asarray_arg(initial, name), computation)
        if initial.shape != ():
            raise ValueError(f"fnp.{name}: initial value must be a scalar. Got array of shape "
                             f"{initial.shape}")
        out = op(lax_shape.broadcast_in_dim(initial, out.shape, ()), out)
    if keepdims:
        out = _keepdims(out, shape, axes)
    return cast(out, result_dtype)


# --- sum, prod, max, min, all, any ----------------------------------------------------------

_FAST_SUM_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _fast_axes(axis: Any, ndim: int) -> tuple[int, ...] | None:
    """Normalized axes for the eager fast path, or None to take the general path."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:
        return (axis % ndim,)
    return None


def sum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,  # noqa: A001
        keepdims: bool = False, initial: Any = None, where: Any = None,
        promote_integers: bool = True) -> Any:
    """Sum of the elements over ``axis``; bools and narrow ints accumulate in the default int.

    >>> import fgrad.numpy as fnp
    >>> fnp.sum(fnp.array([[1, 2], [3, 4]]), axis=0)
    Array([4, 6], dtype=int32)
    """
    if (dtype is None and out is None and initial is None and where is None
            and type(a) is Array and a.dtype in _FAST_SUM_DTYPES
            and _trace_mod._context.trace is _trace_mod.eval_trace):
        # Eager fast path for the common case (float32/64 array, no options): the
        # primitive's own impl, without tracing machinery. Tests compare it with jit.
        value = a._value
        axes = _fast_axes(axis, value.ndim)
        if axes is not None:
            result = lax_red.reduce_sum_p.impl(value, axes=axes)
            if keepdims:
                result = np.reshape(result, [1 if i in axes else d
                                             for i, d in enumerate(value.shape)])
            return Array(np.asarray(result, dtype=value.dtype), False)
    _check_no_out("sum", out)
    return _reduction(a, "sum", lax_red.reduce_sum, lax_ew.add, 0, bool_op=lax_ew.bitwise_or,
                      preproc=_cast_to_numeric, upcast_f16=dtype is None, axis=axis,
                      dtype=dtype, keepdims=keepdims, initial=initial, where=where,
                      promote_integers=promote_integers)


def prod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
         initial: Any = None, where: Any = None, promote_integers: bool = True) -> Any:
    """Product of the elements over ``axis`` (dtype rules as ``sum``)."""
    _check_no_out("prod", out)
    return _reduction(a, "prod", lax_red.reduce_prod, lax_ew.mul, 1,
                      bool_reducer=lax_red.reduce_and, bool_op=lax_ew.bitwise_and,
                      preproc=_cast_to_numeric, upcast_f16=dtype is None, axis=axis,
                      dtype=dtype, keepdims=keepdims, initial=initial, where=where,
                      promote_integers=promote_integers)


def max(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = None) -> Any:
    """Maximum over ``axis``; NaN-propagating; the gradient is split evenly among ties.

    Raises ValueError for an empty reduction without ``initial``, or ``where``
    without ``initial``.
    """
    _check_no_out("max", out)
    return _reduction(a, "max", lax_red.reduce_max, lax_ew.max, -np.inf, has_identity=False,
                      axis=axis, keepdims=keepdims, initial=initial, where=where)


def min(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,  # noqa: A001
        initial: Any = None, where: Any = None) -> Any:
    """Minimum over ``axis``; see ``max``."""
    _check_no_out("min", out)
    return _reduction(a, "min", lax_red.reduce_min, lax_ew.min, np.inf, has_identity=False,
                      axis=axis, keepdims=keepdims, initial=initial, where=where)


amax = max
amin = min


def all(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *,  # noqa: A001
        where: Any = None) -> Any:
    """True where every element over ``axis`` is nonzero (``True`` for an empty axis)."""
    _check_no_out("all", out)
    return _reduction(a, "all", lax_red.reduce_and, lax_ew.bitwise_and, True,
                      preproc=_cast_to_bool, axis=axis, keepdims=keepdims, where=where)


def any(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False, *,  # noqa: A001
        where: Any = None) -> Any:
    """True where some element over ``axis`` is nonzero (``False`` for an empty axis)."""
    _check_no_out("any", out)
    return _reduction(a, "any", lax_red.reduce_or, lax_ew.bitwise_or, False,
                      preproc=_cast_to_bool, axis=axis, keepdims=keepdims, where=where)


# --- mean, var, std, average ----------------------------------------------------------------

def _count(shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool, where: Any,
           dtype: np.dtype) -> Any:
    """How many elements each output reduces: a scalar, or per output when masked."""
    if where is None:
        n = int(np.prod([shape[d] for d in axes], dtype=np.int64))
        return _full((), n, dtype)
    return sum(where, axes, dtype=dtype, keepdims=keepdims)


def _div_by(x: Any, count: Any) -> Any:
    return lax_ew.div(x, broadcast_to_shape(count, x.shape, "divide"))


def mean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: bool = False,
         *, where: Any = None) -> Any:
    """Arithmetic mean over ``axis``; empty gives NaN.

    Ints and bools give float32 (float64 for 64-bit ints), as in JAX.
    """
    _check_no_out("mean", out)
    a = asarray_arg(a, "mean")
    shape = get_aval(a).shape
    mask = _check_where("mean", where, shape)
    result_dtype = _to_inexact(a.dtype) if dtype is None else _user_dtype(dtype)
    computation = _upcast_f16(result_dtype) if dtype is None else result_dtype
    axes = _axes(axis, len(shape), "mean")
    count = _count(shape, axes, keepdims, mask, computation)
    total = sum(a, axes, dtype=computation, keepdims=keepdims, where=mask)
    return cast(_div_by(total, count), result_dtype)


_mean = mean  # `var` and `std` have an argument named `mean`


def _var_dtypes(a_dtype: np.dtype, dtype: np.dtype | None) -> tuple[np.dtype, np.dtype]:
    """(computation dtype, result dtype) of ``var``, as JAX chooses them."""
    if dtype is not None:
        return _upcast_f16(dtype), dtype
    result = _to_inexact(a_dtype)
    return _upcast_f16(result), result


def var(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, mean: Any = None,
        correction: int | float | None = None) -> Any:
    """Variance over ``axis``, dividing by ``N - ddof``; NaN where ``N - ddof <= 0``.

    ``correction`` is the array-API name of ``ddof`` (give at most one);
    ``mean`` may pass a precomputed mean (with ``keepdims=True`` shape).
    """
    _check_no_out("var", out)
    if correction is None:
        correction = ddof
    elif not isinstance(ddof, int) or ddof != 0:
        raise ValueError("fnp.var: ddof and correction can't be provided simultaneously.")
    a = asarray_arg(a, "var")
    shape = get_aval(a).shape
    mask = _check_where("var", where, shape)
    computation, result_dtype = _var_dtypes(a.dtype, _user_dtype(dtype))
    a = cast(a, computation)
    axes = _axes(axis, len(shape), "var")
    if mean is None:
        a_mean = _mean(a, axes, dtype=computation, keepdims=True, where=mask)
    else:
        a_mean = cast(asarray_arg(mean, "var"), computation)
    centered = lax_ew.square(lax_ew.sub(a, broadcast_to_shape(a_mean, shape, "var")))
    count = _count(shape, axes, keepdims, mask, computation)
    normalizer = lax_ew.sub(count, _full(count.shape, correction, computation))
    total = sum(centered, axes, dtype=computation, keepdims=keepdims, where=mask)
    result = cast(_div_by(total, normalizer), result_dtype)
    # NOTE: N - ddof <= 0 gives NaN (not inf or a negative variance), as in JAX.
    valid = broadcast_to_shape(lax_ew.gt(normalizer, _full(count.shape, 0, computation)),
                               result.shape, "var")
    return lax_ew.select(valid, result, _full(result.shape, np.nan, result_dtype))


def std(a: Any, axis: Any = None, dtype: Any = None, out: Any = None, ddof: int = 0,
        keepdims: bool = False, *, where: Any = None, mean: Any = None,
        correction: int | float | None = None) -> Any:
    """Standard deviation: ``sqrt(var(...))`` with the same arguments."""
    _check_no_out("std", out)
    if dtype is not None and not dtypes.is_float(_user_dtype(dtype)):
        raise ValueError(f"dtype argument to fnp.std must be inexact; got "
                         f"{_user_dtype(dtype)}")
    return lax_ew.sqrt(var(a, axis, dtype, None, ddof, keepdims, where=where, mean=mean,
                           correction=correction))


def average(a: Any, axis: Any = None, weights: Any = None, returned: bool = False,
            keepdims: bool = False) -> Any:
    """Weighted mean ``sum(a * w) / sum(w)`` over ``axis``; plain ``mean`` without weights.

    ``weights`` has ``a``'s shape, or (with ``axis`` given) the shape of the
    reduced axes in ``axis``'s order. With ``returned=True`` also returns the
    sum of the weights, broadcast like the average.
    """
    a = asarray_arg(a, "average")
    ndim = get_aval(a).ndim
    order = None if axis is None else _axis_list(axis, ndim, "average")
    if weights is None:
        (a,) = _promote_to_inexact(a)
        avg = mean(a, axis=axis, keepdims=keepdims)
        n = int(np.prod([a.shape[d] for d in _axes(axis, ndim, "average")], dtype=np.int64))
        weights_sum = _full((), n, avg.dtype)
    else:
        a, weights = _promote_to_inexact(a, weights)
        if a.shape != weights.shape:
            if order is None:
                raise ValueError("fnp.average: Axis must be specified when shapes of a and "
                                 f"weights differ (got {a.shape} and {weights.shape}).")
            if weights.shape != tuple(a.shape[d] for d in order):
                raise ValueError("fnp.average: Shape of weights must be consistent with shape "
                                 f"of a along specified axis (got {weights.shape} for axes "
                                 f"{order} of {a.shape}).")
            if list(order) != sorted(order):
                weights = lax_shape.transpose(weights, tuple(np.argsort(order)))
            weights = lax_shape.broadcast_in_dim(weights, a.shape, tuple(sorted(order)))
        weights_sum = sum(weights, axis=axis, keepdims=keepdims)
        avg = lax_ew.div(sum(lax_ew.mul(a, weights), axis=axis, keepdims=keepdims),
                         weights_sum)
    if returned:
        return avg, broadcast_to_shape(weights_sum, avg.shape, "average")
    return avg


# --- ptp, count_nonzero ---------------------------------------------------------------------

def ptp(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False) -> Any:
    """Range ("peak to peak"): ``max - min`` over ``axis``."""
    _check_no_out("ptp", out)
    return lax_ew.sub(max(a, axis, keepdims=keepdims), min(a, axis, keepdims=keepdims))


def count_nonzero(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """How many elements over ``axis`` are nonzero, in the default int dtype."""
    a = asarray_arg(a, "count_nonzero")
    nonzero = lax_ew.ne(a, _full(a.shape, 0, a.dtype))
    return sum(nonzero, axis, dtype=dtypes.default_int_dtype(), keepdims=keepdims)


# --- argmax, argmin -------------------------------------------------------------------------

def _arg_reduction(a: Any, name: str, lax_fn: Callable[..., Any], axis: Any,
                   keepdims: bool | None) -> Any:
    a = asarray_arg(a, name)
    shape = get_aval(a).shape
    if axis is None:
        dims = tuple(range(len(shape)))
        a = lax_shape.reshape(a, (int(np.prod(shape, dtype=np.int64)),))
        axis = 0
    else:
        (axis,) = dims = _axis_list(operator.index(axis), len(shape), name)
    if a.shape[axis] == 0:
        raise ValueError(f"attempt to get {name} of an empty sequence")
    out = lax_fn(a, axis, dtypes.default_int_dtype())
    return _keepdims(out, shape, dims) if keepdims else out


def argmax(a: Any, axis: Any = None, out: Any = None, keepdims: bool | None = None) -> Any:
    """Index of the first maximum along ``axis`` (of the flattened array if None)."""
    _check_no_out("argmax", out)
    return _arg_reduction(a, "argmax", lax_red.argmax, axis, keepdims)


def argmin(a: Any, axis: Any = None, out: Any = None, keepdims: bool | None = None) -> Any:
    """Index of the first minimum along ``axis`` (of the flattened array if None)."""
    _check_no_out("argmin", out)
    return _arg_reduction(a, "argmin", lax_red.argmin, axis, keepdims)


# --- cumulative reductions ------------------------------------------------------------------

def _cumulative(a: Any, name: str, lax_fn: Callable[..., Any], axis: Any, dtype: Any,
                promote_integers: bool = False) -> Any:
    a = asarray_arg(a, name)
    if axis is None or a.ndim == 0:
        a = lax_shape.reshape(a, (a.size,))
    (axis,) = _axis_list(0 if axis is None else operator.index(axis), a.ndim, name)
    user = _user_dtype(dtype)
    if user is None:
        result = (_promote_integer(a.dtype) if promote_integers or dtypes.is_bool(a.dtype)
                  else a.dtype)
        computation = result
    elif dtypes.is_bool(user):
        result, computation = user, dtypes.default_int_dtype()
        a = _cast_to_bool(a)
    else:
        result = computation = user
    return cast(lax_fn(cast(a, computation), axis), result)


def cumsum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """Running sum along ``axis`` (over the flattened array if None); bools count as ints."""
    _check_no_out("cumsum", out)
    return _cumulative(a, "cumsum", lax_red.cumsum, axis, dtype)


def cumprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None) -> Any:
    """Running product along ``axis`` (over the flattened array if None)."""
    _check_no_out("cumprod", out)
    return _cumulative(a, "cumprod", lax_red.cumprod, axis, dtype)


def _array_api_cumulative(x: Any, name: str, lax_fn: Callable[..., Any], axis: Any,
                          dtype: Any, include_initial: bool, identity: int,
                          promote_integers: bool) -> Any:
    x = asarray_arg(x, name)
    if x.ndim == 0:
        raise ValueError(f"fnp.{name}: the input must be non-scalar, got a 0-d array")
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"fnp.{name}: the input array has rank {x.ndim}, however axis "
                             "was not set to an explicit value. The axis argument is only "
                             "optional for one-dimensional arrays.")
        axis = 0
    (axis,) = _axes(axis, x.ndim, name)
    out = _cumulative(x, name, lax_fn, axis, dtype, promote_integers)
    if include_initial:
        config = [(1 if d == axis else 0, 0, 0) for d in range(x.ndim)]
        out = lax_shape.pad(out, _full((), identity, out.dtype), config)
    return out


def cumulative_sum(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                   include_initial: bool = False) -> Any:
    """Array-API running sum: ``axis`` required unless 1-d; narrow ints widen as in ``sum``."""
    return _array_api_cumulative(x, "cumulative_sum", lax_red.cumsum, axis, dtype,
                                 include_initial, 0, promote_integers=True)


def cumulative_prod(x: Any, /, *, axis: int | None = None, dtype: Any = None,
                    include_initial: bool = False) -> Any:
    """Array-API running product: ``axis`` required unless 1-d; ints keep their dtype."""
    return _array_api_cumulative(x, "cumulative_prod", lax_red.cumprod, axis, dtype,
                                 include_initial, 1, promote_integers=False)


# --- NaN-ignoring reductions ----------------------------------------------------------------

def _nan_reduction(a: Any, name: str, reduction: Callable[..., Any], init_val: float,
                   nan_if_all_nan: bool, axis: Any, keepdims: bool, **kwargs: Any) -> Any:
    a = asarray_arg(a, name)
    if not dtypes.is_float(a.dtype):
        return reduction(a, axis=axis, keepdims=keepdims, **kwargs)
    nan = _isnan(a)
    filled = lax_ew.select(nan, _full(a.shape, _identity(init_val, a.dtype), a.dtype), a)
    out = reduction(filled, axis=axis, keepdims=keepdims, **kwargs)
    if not nan_if_all_nan:
        return out
    all_nan = all(nan, axis=axis, keepdims=keepdims)
    return lax_ew.select(all_nan, _full(out.shape, np.nan, out.dtype), out)


def nansum(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
           keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    """``sum`` treating NaN as zero."""
    _check_no_out("nansum", out)
    return _nan_reduction(a, "nansum", sum, 0, False, axis, keepdims, dtype=dtype,
                          initial=initial, where=where)


def nanprod(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, initial: Any = None, where: Any = None) -> Any:
    """``prod`` treating NaN as one."""
    _check_no_out("nanprod", out)
    return _nan_reduction(a, "nanprod", prod, 1, False, axis, keepdims, dtype=dtype,
                          initial=initial, where=where)


def nanmax(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = None, where: Any = None) -> Any:
    """``max`` ignoring NaN; NaN where every element is NaN (and no ``initial``)."""
    _check_no_out("nanmax", out)
    return _nan_reduction(a, "nanmax", max, -np.inf, initial is None, axis, keepdims,
                          initial=initial, where=where)


def nanmin(a: Any, axis: Any = None, out: Any = None, keepdims: bool = False,
           initial: Any = None, where: Any = None) -> Any:
    """``min`` ignoring NaN; NaN where every element is NaN (and no ``initial``)."""
    _check_no_out("nanmin", out)
    return _nan_reduction(a, "nanmin", min, np.inf, initial is None, axis, keepdims,
                          initial=initial, where=where)


def nanmean(a: Any, axis: Any = None, dtype: Any = None, out: Any = None,
            keepdims: bool = False, where: Any = None) -> Any:
    """``mean`` of the non-NaN elements (NaN where there are none)."""
    _check_no_out("nanmean", out)
    a = asarray_arg(a, "nanmean")
    if not dtypes.is_float(a.dtype):
        return mean(a, axis, dtype, None, keepdims, where=where)
    dtype = a.dtype if dtype is None else _user_dtype(dtype)
    count = sum(lax_ew.bitwise_not(_isnan(a)), axis, dtype=dtype, keepdims=keepdims,
                where=where)
    return lax_ew.div(nansum(a, axis, dtype=dtype, keepdims=keepdims, where=where), count)


__all__ = ["sum", "prod", "max", "min", "amax", "amin", "all", "any", "mean", "var", "std",
           "average", "ptp", "count_nonzero", "argmax", "argmin", "cumsum", "cumprod",
           "cumulative_sum", "cumulative_prod", "nansum", "nanprod", "nanmax", "nanmin",
           "nanmean"]
