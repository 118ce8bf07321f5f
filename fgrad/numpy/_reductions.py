"""Reductions with numpy semantics: ``axis`` (None, int, tuple, negative), ``keepdims``."""

from __future__ import annotations

from typing import Any

from fgrad.core import dtypes
from fgrad.core.avals import get_aval
from fgrad.numpy._util import asarray_arg, cast, normalize_axes
from fgrad.primitives import reductions as lax_red
from fgrad.primitives.shape import reshape


def _keepdims(out: Any, in_shape: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    shape = tuple(1 if i in axes else d for i, d in enumerate(in_shape))
    return reshape(out, shape)


def sum(a: Any, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum of elements over ``axis``; bools and small ints accumulate in the default int."""
    a = asarray_arg(a, "sum")
    aval = get_aval(a)
    if dtype is not None:
        a = cast(a, dtypes.canonicalize_dtype(dtype))
    elif dtypes.is_bool(aval.dtype) or (dtypes.is_int(aval.dtype) and aval.dtype.itemsize < 4):
        a = cast(a, dtypes.default_uint_dtype() if dtypes.is_unsigned(aval.dtype)
                 else dtypes.default_int_dtype())
    axes = normalize_axes(axis, aval.ndim, "sum")
    out = lax_red.reduce_sum(a, axes)
    return _keepdims(out, aval.shape, axes) if keepdims else out


__all__ = ["sum"]
