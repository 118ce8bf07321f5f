"""The lenient layer's plumbing: turning numpy-style arguments into strict ones.

``fgrad.numpy`` accepts what numpy accepts (Python scalars, mixed dtypes,
broadcastable shapes, negative axes) and calls ``fgrad.lax`` primitives that
accept only exact matches. The conversions live here:

* ``asarray_arg``: Python scalars and numpy values become fgrad Arrays
  (Python scalars weakly typed, float64 narrowed without x64);
* ``promote_dtypes``: JAX's promotion lattice (``core/dtypes.py``) applied to
  all arguments, casting with ``convert_element_type`` where needed;
* ``broadcast_arrays``: numpy broadcasting made explicit with
  ``broadcast_in_dim`` (error messages name the operation and all shapes);
* ``normalize_axis``: negative axes and ``None``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.trace import Tracer
from fgrad.primitives.elementwise import convert_element_type, convert_element_type_p
from fgrad.primitives.shape import broadcast_in_dim


def asarray_arg(x: Any, op: str = "fgrad.numpy") -> Any:
    """An fgrad value (Array or tracer) for ``x``."""
    if isinstance(x, (Array, Tracer)):
        return x
    if isinstance(x, (bool, int, float, np.generic, np.ndarray)):
        dtype, weak = dtypes.dtype_and_weak_type(x)
        return Array(np.asarray(x, dtype=dtype), weak)
    if isinstance(x, (list, tuple)):
        from fgrad.numpy._creation import array
        return array(x)
    if hasattr(x, "__array__"):
        return asarray_arg(np.asarray(x), op)
    raise TypeError(f"{op}: expected an array or a Python scalar, got {type(x).__name__}")


def result_dtype(*args: Any) -> tuple[np.dtype, bool]:
    pairs = []
    for x in args:
        aval = get_aval(x)
        pairs.append((aval.dtype, aval.weak_type))
    return dtypes.result_type(*pairs)


def cast(x: Any, dtype: Any, weak_type: bool = False) -> Any:
    aval = get_aval(x)
    if aval.dtype == dtype and aval.weak_type == weak_type:
        return x
    if type(x) is Array and x.ndim == 0:
        # A scalar constant (typically a Python number): convert it now, so a jaxpr
        # shows `mul a 2.0:f32[]` rather than a conversion equation.
        value = convert_element_type_p.impl(x._value, new_dtype=np.dtype(dtype),
                                            weak_type=weak_type)
        return Array(np.asarray(value), weak_type)
    return convert_element_type(x, dtype, weak_type)


def promote_dtypes(*args: Any, op: str = "fgrad.numpy") -> list[Any]:
    """Convert all arguments to their common (promoted) dtype, JAX style."""
    arrays = [asarray_arg(x, op) for x in args]
    if len(arrays) < 2:
        return arrays
    return _cast_to_result_type(arrays, inexact=False)


def _cast_to_result_type(arrays: Sequence[Any], inexact: bool) -> list[Any]:
    """Cast fgrad values to their result type (made a float one if ``inexact``)."""
    avals = [get_aval(x) for x in arrays]
    dtype, weak = dtypes.result_type(*[(a.dtype, a.weak_type) for a in avals])
    if inexact:
        dtype = to_inexact_dtype(dtype)
    return [x if a.dtype == dtype and a.weak_type == weak else cast(x, dtype, weak)
            for x, a in zip(arrays, avals, strict=True)]


def to_inexact_dtype(dtype: Any) -> np.dtype:
    """The float dtype an int/bool dtype computes in (JAX: 64-bit ints -> float64, else float32)."""
    dtype = np.dtype(dtype)
    if dtypes.is_float(dtype):
        return dtype
    return dtypes.canonicalize_dtype(np.float64 if dtype.itemsize == 8 else np.float32)


def promote_to_inexact(*args: Any, op: str = "fgrad.numpy") -> list[Any]:
    """Promote, then move integer/bool results to a float dtype (for sin, log, / ...)."""
    return _cast_to_result_type([asarray_arg(x, op) for x in args], inexact=True)


def broadcast_shapes(*shapes: Sequence[int], op: str = "broadcast_shapes") -> tuple[int, ...]:
    ndim = max((len(s) for s in shapes), default=0)
    out = [1] * ndim
    for s in shapes:
        lead = ndim - len(s)
        for i, d in enumerate(s):
            if d != out[lead + i] and d != 1:
                if out[lead + i] != 1:
                    shown = " and ".join(str(tuple(s)) for s in shapes)
                    raise ValueError(f"{op}: incompatible shapes for broadcasting: {shown}")
                out[lead + i] = d
    return tuple(out)


def broadcast_to_shape(x: Any, shape: tuple[int, ...], op: str = "broadcast_to") -> Any:
    aval = get_aval(x)
    if aval.shape == shape:
        return x
    lead = len(shape) - aval.ndim
    if lead < 0 or any(d not in (1, shape[lead + i]) for i, d in enumerate(aval.shape)):
        raise ValueError(f"{op}: cannot broadcast an array of shape {aval.shape} to shape "
                         f"{shape}")
    return broadcast_in_dim(x, shape, tuple(range(lead, len(shape))))


def broadcast_arrays(*args: Any, op: str = "fgrad.numpy") -> list[Any]:
    return _broadcast_arrays(args, [get_aval(x) for x in args], op)


def _broadcast_arrays(args: Sequence[Any], avals: Sequence[ShapedArray], op: str) -> list[Any]:
    try:
        shape = broadcast_shapes(*(a.shape for a in avals), op=op)
    except ValueError:
        shown = " and ".join(a.str_short() for a in avals)
        raise ValueError(f"{op}: incompatible shapes for broadcasting: {shown}") from None
    # (The shapes are compatible, so each operand's axes line up with the last ones.)
    return [x if a.shape == shape else
            broadcast_in_dim(x, shape, tuple(range(len(shape) - a.ndim, len(shape))))
            for x, a in zip(args, avals, strict=True)]


def promote_and_broadcast(*args: Any, op: str, inexact: bool = False) -> list[Any]:
    # Fast path: operands that already share one dtype and weak type (nearly every
    # operation inside a traced model) need no promotion, only perhaps broadcasting.
    avals = [getattr(x, "aval", None) for x in args]
    first = avals[0]
    if isinstance(first, ShapedArray) and (not inexact or dtypes.is_float(first.dtype)):
        dtype, weak, shape = first.dtype, first.weak_type, first.shape
        same_shape = True
        for a in avals:
            if not isinstance(a, ShapedArray) or a.dtype != dtype or a.weak_type != weak:
                break
            same_shape = same_shape and a.shape == shape
        else:
            return list(args) if same_shape else _broadcast_arrays(args, avals, op)
    arrays = promote_to_inexact(*args, op=op) if inexact else promote_dtypes(*args, op=op)
    return broadcast_arrays(*arrays, op=op)


def normalize_axis(axis: int, ndim: int, op: str = "fgrad.numpy") -> int:
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of bounds for an array of dimension {ndim}")
    return axis % ndim


def normalize_axes(axis: Any, ndim: int, op: str = "fgrad.numpy") -> tuple[int, ...]:
    """``None`` means all axes; ints and tuples of ints may be negative."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    axes = tuple(normalize_axis(a, ndim, op) for a in axis)
    if len(set(axes)) != len(axes):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(axes))


# --- the eager fast path -----------------------------------------------------------------
# Eager code (no transform active) calls elementwise functions on small arrays in
# tight loops, where Python overhead dominates. For those calls we skip building
# avals and tracing machinery: the result dtype comes from a cache keyed by the
# argument types, filled by running the primitive's real shape/dtype rule once,
# and the primitive's own numpy ``impl`` computes the value. The result is
# identical to the general path (tests compare the two); anything unusual
# (tracers, odd argument types, incompatible shapes, errors) takes the general path.

from fgrad.config import config as _config  # noqa: E402
from fgrad.core import trace as _trace_mod  # noqa: E402
from fgrad.core.avals import ShapedArray as _ShapedArray  # noqa: E402
from fgrad.primitives.elementwise import convert_element_type_p as _convert_p  # noqa: E402

_PY_SCALARS = (float, int, bool)
_fast_cache: dict[Any, Any] = {}


def _fast_arg(x: Any) -> tuple[Any, Any, bool] | None:
    """(value, dtype-or-Python-type, weak) for an Array or Python scalar, else None."""
    t = type(x)
    if t is Array:
        v = x._value
        return v, v.dtype, x.weak_type
    if t in _PY_SCALARS:
        return x, t, t is not bool
    return None


def _fast_types(prim: Any, inexact: bool, args: tuple[Any, ...]) -> Any:
    """Cache miss: derive (cast dtypes, out dtype, out weak) with the real rules, or None."""
    try:
        promoted = promote_to_inexact(*args) if inexact else promote_dtypes(*args)
        avals = [get_aval(p) for p in promoted]
        out = prim.abstract_eval(*[_ShapedArray((), a.dtype, a.weak_type) for a in avals])
    except Exception:
        return None  # let the general path raise its proper error
    casts = tuple(a.dtype for a in avals)
    return casts, out.dtype, out.weak_type


def _cast(v: Any, dtype: Any, to: Any) -> Any:
    if type(v) is not np.ndarray:
        # A Python scalar: a numpy scalar of the target type is cheaper than a 0-d
        # array, and numpy keeps the array operand's dtype when mixing them.
        return to.type(v)
    return v if dtype == to else _convert_p.impl(v, new_dtype=to, weak_type=False)


def eager_unary(prim: Any, inexact: bool, x: Any) -> Any:
    """Apply unary elementwise ``prim`` eagerly, or return None to decline (general path)."""
    if _trace_mod._context.trace is not _trace_mod.eval_trace or type(x) is not Array:
        return None
    v = x._value
    key = (prim, inexact, _config.enable_x64, v.dtype, x.weak_type)
    entry = _fast_cache.get(key)
    if entry is None:
        entry = _fast_types(prim, inexact, (x,))
        if entry is None:
            return None
        _fast_cache[key] = entry
    (to,), out_dtype, out_weak = entry
    out = prim.impl(v if v.dtype == to else _convert_p.impl(v, new_dtype=to, weak_type=False))
    if type(out) is not np.ndarray or out.dtype != out_dtype:
        out = np.asarray(out, dtype=out_dtype)
    return Array(out, out_weak)


def eager_binary(prim: Any, inexact: bool, x: Any, y: Any) -> Any:
    """Apply binary elementwise ``prim`` eagerly, or return None to decline (general path)."""
    if _trace_mod._context.trace is not _trace_mod.eval_trace:
        return None
    tx, ty = type(x), type(y)
    if tx is Array:
        xv, xd, xw = x._value, x._value.dtype, x.weak_type
    elif tx in _PY_SCALARS:
        xv, xd, xw = x, tx, tx is not bool
    else:
        return None
    if ty is Array:
        yv, yd, yw = y._value, y._value.dtype, y.weak_type
    elif ty in _PY_SCALARS:
        yv, yd, yw = y, ty, ty is not bool
    else:
        return None
    key = (prim, inexact, _config.enable_x64, xd, xw, yd, yw)
    entry = _fast_cache.get(key)
    if entry is None:
        entry = _fast_types(prim, inexact, (x, y))
        if entry is None:
            return None
        _fast_cache[key] = entry
    (xt, yt), out_dtype, out_weak = entry
    if xd is not xt:
        xv = _cast(xv, xd, xt)
    if yd is not yt:
        yv = _cast(yv, yd, yt)
    if type(xv) is np.ndarray and type(yv) is np.ndarray and xv.shape != yv.shape:
        try:
            np.broadcast_shapes(xv.shape, yv.shape)
        except ValueError:
            return None  # the general path raises the message naming the operation
    out = prim.impl(xv, yv)
    if type(out) is not np.ndarray or out.dtype != out_dtype:
        out = np.asarray(out, dtype=out_dtype)
    return Array(out, out_weak)
