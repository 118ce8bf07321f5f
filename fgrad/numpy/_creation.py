"""Array creation: ``array``, ``asarray``, ``zeros``, ``ones``, ``full`` and friends."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.trace import Tracer
from fgrad.primitives.shape import full as _full


def array(object: Any, dtype: Any = None, copy: bool = True) -> Any:  # noqa: A002
    """An fgrad array from array-like data (float64 becomes float32 without x64)."""
    if isinstance(object, (Array, Tracer)):
        from fgrad.numpy._util import cast
        return object if dtype is None else cast(object, dtypes.canonicalize_dtype(dtype))
    if isinstance(object, (list, tuple)) and any(isinstance(x, (Array, Tracer))
                                                 for x in _flat(object)):
        from fgrad.numpy._shape import stack
        return stack([array(x, dtype) for x in object])
    value = np.array(object, dtype=None if dtype is None else dtypes.canonicalize_dtype(dtype))
    if dtype is None:
        value = value.astype(dtypes.canonicalize_dtype(value.dtype))
    return Array(value, False)


def _flat(xs: Any) -> list[Any]:
    out = []
    for x in xs:
        out.extend(_flat(x) if isinstance(x, (list, tuple)) else [x])
    return out


def asarray(a: Any, dtype: Any = None) -> Any:
    return array(a, dtype, copy=False)


def zeros(shape: int | Sequence[int], dtype: Any = None) -> Any:
    return full(shape, 0, dtypes.default_float_dtype() if dtype is None else dtype)


def ones(shape: int | Sequence[int], dtype: Any = None) -> Any:
    return full(shape, 1, dtypes.default_float_dtype() if dtype is None else dtype)


def full(shape: int | Sequence[int], fill_value: Any, dtype: Any = None) -> Any:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if dtype is None and isinstance(fill_value, (bool, int, float)):
        dtype = (np.bool_ if isinstance(fill_value, bool) else
                 dtypes.default_int_dtype() if isinstance(fill_value, int)
                 else dtypes.default_float_dtype())
    return _full(shape, fill_value, dtype)


__all__ = ["array", "asarray", "zeros", "ones", "full"]
