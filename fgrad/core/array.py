"""``fgrad.Array``: the value that eager fgrad code computes with.

An Array is a numpy array plus one extra bit, ``weak_type`` (see
``avals.ShapedArray``). Arrays are immutable by convention: functional
updates go through ``x.at[idx].set(y)``. The arithmetic operators (``+``,
``@``, ``.T``, ``.sum()``, indexing ...) are *installed* onto this class by
``fgrad/numpy/_array.py``, so the core never imports the numpy layer.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgrad.core.avals import ShapedArray


class Array:
    """An immutable n-dimensional array living in host memory."""

    __slots__ = ("_value", "weak_type", "_aval")
    __array_priority__ = 100  # numpy defers to our operators: np_array + Array -> Array

    def __init__(self, value: np.ndarray, weak_type: bool = False) -> None:
        self._value = value
        self.weak_type = weak_type
        self._aval: ShapedArray | None = None

    @property
    def aval(self) -> ShapedArray:
        aval = self._aval
        if aval is None:  # computed once: arrays are immutable
            aval = self._aval = ShapedArray(self._value.shape, self._value.dtype,
                                            self.weak_type)
        return aval

    @property
    def shape(self) -> tuple[int, ...]:
        return self._value.shape

    @property
    def dtype(self) -> np.dtype:
        return self._value.dtype

    @property
    def ndim(self) -> int:
        return self._value.ndim

    @property
    def size(self) -> int:
        return self._value.size

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        value = self._value
        if dtype is not None and np.dtype(dtype) != value.dtype:
            return value.astype(dtype)
        # Hand out a read-only view: writing into it would break immutability.
        view = value.view()
        view.flags.writeable = False
        return view

    def __len__(self) -> int:
        if self._value.ndim == 0:
            raise TypeError("len() of unsized object (a 0-d fgrad Array)")
        return len(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __int__(self) -> int:
        return int(self._value)

    def __float__(self) -> float:
        return float(self._value)

    def __index__(self) -> int:
        return self._value.__index__()

    def __complex__(self) -> complex:
        return complex(self._value)

    def item(self, *args: Any) -> Any:
        return self._value.item(*args)

    def tolist(self) -> Any:
        return self._value.tolist()

    def block_until_ready(self) -> Array:
        return self  # host arrays are always ready; kept for JAX compatibility

    def __repr__(self) -> str:
        # Same format as JAX: Array([1., 2.], dtype=float32)
        body = np.array2string(self._value, separator=", ", prefix="Array(")
        weak = ", weak_type=True" if self.weak_type else ""
        return f"Array({body}, dtype={self.dtype.name}{weak})"

    def __str__(self) -> str:
        return str(self._value)

    def __hash__(self) -> int:
        raise TypeError("unhashable type: 'Array' (arrays are values; use a tuple of "
                        "Python numbers as a dict key, or mark the argument static)")

    def __reduce__(self) -> Any:
        return (Array, (self._value, self.weak_type))

    def __deepcopy__(self, memo: Any) -> Array:
        return self  # immutable

    def __copy__(self) -> Array:
        return self
