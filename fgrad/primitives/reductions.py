"""Reductions: ``reduce_sum``, ``reduce_max``, ``reduce_min``, ``reduce_prod``,
``reduce_and``, ``reduce_or``, ``argmax``, ``argmin`` and the cumulative ops.

Strict: ``axes`` is a sorted tuple of distinct non-negative axes (the numpy
layer normalizes negative axes and ``keepdims``). ``reduce_max``'s gradient
is split evenly between tied maxima, as in JAX.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import FgradTypeError
from fgrad.primitives import shape as _shape
from fgrad.primitives.rules import deflinear, standard_primitive


def check_axes(op: str, x: ShapedArray, axes: tuple[int, ...]) -> None:
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
        raise FgradTypeError(f"{op}: invalid axes {axes} for an operand of shape "
                             f"{x.str_short()}")


def _reduced_shape(op: str):  # type: ignore[no-untyped-def]
    def rule(x: ShapedArray, axes: tuple[int, ...]) -> tuple[int, ...]:
        check_axes(op, x, axes)
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return rule


# --- reduce_sum ------------------------------------------------------------------------------

def reduce_sum(operand: Any, axes: Sequence[int]) -> Any:
    """Sum over ``axes``."""
    return reduce_sum_p.bind(operand, axes=tuple(sorted(int(a) for a in axes)))


def _reduce_sum_impl(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if dtypes.is_bool(x.dtype):
        return np.any(x, axis=axes)  # XLA: sum of booleans is "or"
    return np.sum(x, axis=axes, dtype=x.dtype)


def _reduce_sum_transpose(ct: Any, x: Any, axes: tuple[int, ...]) -> list[Any]:
    shape = x.aval.shape
    kept = tuple(i for i in range(len(shape)) if i not in axes)
    return [_shape.broadcast_in_dim(ct, shape, kept)]


reduce_sum_p = standard_primitive("reduce_sum", _reduce_sum_impl, _reduced_shape("reduce_sum"),
                                  lambda x, axes: x.dtype, lambda x, axes: x.weak_type)
deflinear(reduce_sum_p, _reduce_sum_transpose)


__all__ = ["reduce_sum"]
