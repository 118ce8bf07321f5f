"""Abstract values: what a tracer knows about the array it stands for.

A traced function never sees numbers, only *abstract values* (avals): a shape,
a dtype and a weak-type bit. Shape and dtype rules map input avals to output
avals; the jaxpr printer writes them as ``f32[3,4]``. This module is the whole
type system of fgrad's IR.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgrad.core import dtypes

Shape = tuple[int, ...]


class ShapedArray:
    """An array type: ``shape`` (tuple of ints), ``dtype`` and ``weak_type``.

    ``weak_type`` marks values that came from Python scalars (``2.0``): they
    adopt the dtype of whatever they meet, as in JAX (``x_f16 * 2.0`` stays
    float16).
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: Shape, dtype: Any, weak_type: bool = False) -> None:
        # Fast path for the common case (a numpy shape tuple and a dtype object):
        # avals are created on every traced operation.
        self.shape = shape if type(shape) is tuple else tuple(int(d) for d in shape)
        self.dtype = dtype if type(dtype) is np.dtype or isinstance(dtype, np.dtype) \
            else np.dtype(dtype)
        self.weak_type = bool(weak_type)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def update(self, shape: Shape | None = None, dtype: Any = None,
               weak_type: bool | None = None) -> ShapedArray:
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)

    def strip_weak_type(self) -> ShapedArray:
        return self if not self.weak_type else ShapedArray(self.shape, self.dtype, False)

    def _key(self) -> tuple[Shape, np.dtype, bool]:
        return (self.shape, self.dtype, self.weak_type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ShapedArray) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def str_short(self) -> str:
        """``f32[3,4]``, the form the jaxpr printer and error messages use."""
        return f"{dtypes.short_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __str__(self) -> str:
        return self.str_short()

    def __repr__(self) -> str:
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapedArray({self.shape}, {self.dtype.name}{weak})"


class ShapeDtypeStruct:
    """Public stand-in for an array of a given shape and dtype (``eval_shape``'s result)."""

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape: Shape, dtype: Any, weak_type: bool = False) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.weak_type = weak_type

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, ShapeDtypeStruct) and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype, self.weak_type))

    def __repr__(self) -> str:
        weak = ", weak_type=True" if self.weak_type else ""
        return f"ShapeDtypeStruct(shape={self.shape}, dtype={self.dtype.name}{weak})"


def get_aval(x: Any) -> ShapedArray:
    """The abstract value of any array-like: tracer, fgrad Array, numpy value or Python scalar."""
    aval = getattr(x, "aval", None)
    if isinstance(aval, ShapedArray):
        return aval
    dtype, weak = dtypes.dtype_and_weak_type(x)
    return ShapedArray(np.shape(x), dtype, weak)


def is_array_like(x: Any) -> bool:
    """True for anything fgrad accepts as an array argument."""
    return (isinstance(x, (np.ndarray, np.generic, bool, int, float))
            or isinstance(getattr(x, "aval", None), ShapedArray))
