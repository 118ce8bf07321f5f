"""Shape primitives: moving data around without arithmetic.

``broadcast_in_dim``, ``reshape``, ``transpose``, ``squeeze``,
``expand_dims``, ``slice``, ``pad``, ``concatenate``, ``rev``, ``iota``.
All are linear, so each has a transpose rule; a compiler can express most
of them as *views* (strides and offsets) without copying.

Broadcasting is explicit: ``broadcast_in_dim(x, shape, dims)`` places x's
axis ``i`` at output axis ``dims[i]``. Its transpose sums over the new axes,
which is why no other rule ever needs to "unbroadcast".
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.ad_util import is_undefined_primal
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import FgradTypeError
from fgrad.primitives import reductions as _red
from fgrad.primitives.rules import deflinear, standard_primitive


def _same_dtype(x: ShapedArray, **_: Any) -> np.dtype:
    return x.dtype


def _keep_weak(x: ShapedArray, **_: Any) -> bool:
    return x.weak_type


# --- broadcast_in_dim --------------------------------------------------------------------

def broadcast_in_dim(operand: Any, shape: Sequence[int],
                     broadcast_dimensions: Sequence[int]) -> Any:
    """Broadcast ``operand`` to ``shape``, its axis i going to ``broadcast_dimensions[i]``."""
    return broadcast_in_dim_p.bind(operand, shape=tuple(int(d) for d in shape),
                                   broadcast_dimensions=tuple(int(d) for d in
                                                              broadcast_dimensions))


def _broadcast_in_dim_impl(x: np.ndarray, shape: tuple[int, ...],
                           broadcast_dimensions: tuple[int, ...]) -> np.ndarray:
    expanded = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        expanded[dst] = x.shape[src]
    return np.broadcast_to(x.reshape(expanded), shape)


def _broadcast_in_dim_shape(x: ShapedArray, shape: tuple[int, ...],
                            broadcast_dimensions: tuple[int, ...]) -> tuple[int, ...]:
    dims = broadcast_dimensions
    ok = (len(dims) == x.ndim and len(set(dims)) == len(dims)
          and all(0 <= d < len(shape) for d in dims) and list(dims) == sorted(dims)
          and all(x.shape[i] in (1, shape[d]) for i, d in enumerate(dims))
          and all(d >= 0 for d in shape))
    if not ok:
        raise FgradTypeError(f"broadcast_in_dim: cannot broadcast operand {x.str_short()} to "
                             f"shape {shape} with broadcast_dimensions={dims}")
    return shape


def _broadcast_in_dim_transpose(ct: Any, x: Any, shape: tuple[int, ...],
                                broadcast_dimensions: tuple[int, ...]) -> list[Any]:
    in_shape = x.aval.shape
    new_axes = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    expanded_axes = tuple(d for i, d in enumerate(broadcast_dimensions)
                          if in_shape[i] == 1 and shape[d] != 1)
    summed = _red.reduce_sum(ct, tuple(sorted(new_axes + expanded_axes))) \
        if new_axes or expanded_axes else ct
    return [reshape(summed, in_shape) if summed.shape != in_shape else summed]


broadcast_in_dim_p = standard_primitive("broadcast_in_dim", _broadcast_in_dim_impl,
                                        _broadcast_in_dim_shape, _same_dtype, _keep_weak)
deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)


def full(shape: Sequence[int], fill_value: Any, dtype: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (a scalar, possibly traced)."""
    if dtype is None:
        dtype, weak = dtypes.dtype_and_weak_type(fill_value)
    else:
        dtype, weak = dtypes.canonicalize_dtype(dtype), False
    if isinstance(fill_value, (bool, int, float, np.generic, np.ndarray)):
        scalar: Any = np.asarray(fill_value).astype(dtype)
        from fgrad.core.array import Array
        scalar = Array(scalar, weak)
    else:
        from fgrad.primitives.elementwise import convert_element_type
        scalar = fill_value if fill_value.dtype == dtype else convert_element_type(
            fill_value, dtype)
    if np.ndim(scalar) != 0 and getattr(scalar, "ndim", 0) != 0:
        raise FgradTypeError(f"full: fill_value must be a scalar, got shape {np.shape(scalar)}")
    if tuple(shape) == ():
        return scalar
    return broadcast_in_dim(scalar, shape, ())


def full_like(x: Any, fill_value: Any) -> Any:
    """An array like ``x`` (shape, dtype, weak type) filled with ``fill_value``."""
    aval = x.aval
    from fgrad.core.array import Array
    scalar = Array(np.asarray(fill_value).astype(aval.dtype), aval.weak_type)
    if aval.shape == ():
        return scalar
    return broadcast_in_dim(scalar, aval.shape, ())


# --- reshape ---------------------------------------------------------------------------

def reshape(operand: Any, new_sizes: Sequence[int]) -> Any:
    """Row-major reshape to ``new_sizes`` (same number of elements)."""
    return reshape_p.bind(operand, new_sizes=tuple(int(d) for d in new_sizes))


def _reshape_shape(x: ShapedArray, new_sizes: tuple[int, ...]) -> tuple[int, ...]:
    if any(d < 0 for d in new_sizes) or int(np.prod(new_sizes)) != x.size:
        raise FgradTypeError(f"reshape: cannot reshape {x.str_short()} ({x.size} elements) "
                             f"to shape {new_sizes}")
    return new_sizes


reshape_p = standard_primitive("reshape", lambda x, new_sizes: np.reshape(x, new_sizes),
                               _reshape_shape, _same_dtype, _keep_weak)
deflinear(reshape_p, lambda ct, x, new_sizes: [reshape(ct, x.aval.shape)])


# --- transpose ---------------------------------------------------------------------------

def transpose(operand: Any, permutation: Sequence[int]) -> Any:
    """Permute axes: output axis i is input axis ``permutation[i]``."""
    return transpose_p.bind(operand, permutation=tuple(int(p) for p in permutation))


def _transpose_shape(x: ShapedArray, permutation: tuple[int, ...]) -> tuple[int, ...]:
    if sorted(permutation) != list(range(x.ndim)):
        raise FgradTypeError(f"transpose: permutation {permutation} is not a permutation of "
                             f"the axes of {x.str_short()}")
    return tuple(x.shape[p] for p in permutation)


transpose_p = standard_primitive("transpose",
                                 lambda x, permutation: np.transpose(x, permutation),
                                 _transpose_shape, _same_dtype, _keep_weak)
deflinear(transpose_p, lambda ct, x, permutation: [
    transpose(ct, tuple(np.argsort(permutation)))])


# --- squeeze / expand_dims ---------------------------------------------------------------------

def squeeze(array: Any, dimensions: Sequence[int]) -> Any:
    """Remove the size-1 axes ``dimensions`` (non-negative, as all strict ops)."""
    return squeeze_p.bind(array, dimensions=tuple(sorted(int(d) for d in dimensions)))


def _squeeze_shape(x: ShapedArray, dimensions: tuple[int, ...]) -> tuple[int, ...]:
    if any(not 0 <= d < x.ndim or x.shape[d] != 1 for d in dimensions) or \
            len(set(dimensions)) != len(dimensions):
        raise FgradTypeError(f"squeeze: cannot remove axes {dimensions} of {x.str_short()}: "
                             "each must exist and have size 1")
    return tuple(s for i, s in enumerate(x.shape) if i not in dimensions)


squeeze_p = standard_primitive("squeeze", lambda x, dimensions: np.squeeze(x, dimensions),
                               _squeeze_shape, _same_dtype, _keep_weak)
deflinear(squeeze_p, lambda ct, x, dimensions: [reshape(ct, x.aval.shape)])


def expand_dims(array: Any, dimensions: Sequence[int]) -> Any:
    """Insert size-1 axes so that they land at output positions ``dimensions``."""
    ndim_out = array.ndim + len(dimensions)
    dims = sorted(d % ndim_out for d in dimensions)
    shape = list(array.shape)
    for d in dims:
        shape.insert(d, 1)
    return reshape(array, shape)


__all__ = ["broadcast_in_dim", "full", "full_like", "reshape", "transpose", "squeeze",
           "expand_dims"]
