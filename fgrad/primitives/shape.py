"""Shape primitives: moving data around without arithmetic.

``broadcast_in_dim``, ``reshape``, ``transpose``, ``squeeze`` (and the
``expand_dims`` helper), ``slice``, ``pad``, ``concatenate``, ``rev`` and
``iota``. All but ``iota`` are linear, so each has a transpose rule; a
compiler can express most of them as *views* (strides and offsets) without
copying. ``iota`` has no inputs at all: it makes ``0, 1, 2, ...``.

Strict, as everywhere in ``fgrad.lax``: axes are non-negative, operands of
``concatenate`` and ``pad`` share one dtype, ``pad``'s padding value is a
scalar. The numpy layer (``fgrad/numpy/_shape.py``) does the normalizing.

Conventions worth knowing:

* Broadcasting is explicit: ``broadcast_in_dim(x, shape, dims)`` places x's
  axis ``i`` at output axis ``dims[i]``. Its transpose sums over the new
  axes, which is why no other rule ever needs to "unbroadcast".
* ``pad`` takes ``(low, high, interior)`` per axis, as XLA does. Negative
  ``low``/``high`` *crop*; ``interior`` inserts that many padding values
  between neighbours. So ``slice`` with strides transposes to a ``pad`` with
  interior padding, and ``pad`` transposes back to a (strided) ``slice``.
* ``pad`` is linear in the operand *and* in the padding value: the padding
  value's cotangent is the sum of the cotangent over the padded positions.
* Batching (``vmap``) rules keep the batch axis where it is whenever the
  primitive can carry it along: most just add a trivial entry for it to
  their per-axis params (a full slice, zero padding, ...) and shift the axis
  numbers past it, so no transpose is emitted. Only ``reshape`` may have to
  move it, and ``concatenate``/``pad`` broadcast what the batch must share.
"""

from __future__ import annotations

import builtins
import functools
import math
from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.ad_util import is_undefined_primal
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive
from fgrad.core.trace import current_trace
from fgrad.primitives import elementwise as _ew  # circular, but only used inside rules
from fgrad.primitives import reductions as _red
from fgrad.primitives.rules import defjvp_zero, deflinear, standard_primitive
from fgrad.transforms.vmap import moveaxis

PaddingConfig = tuple[tuple[int, int, int], ...]


def _same_dtype(x: ShapedArray, *_: Any, **__: Any) -> np.dtype:
    return x.dtype


def _keep_weak(x: ShapedArray, **_: Any) -> bool:
    return x.weak_type


def _ints(values: Sequence[Any]) -> tuple[int, ...]:
    return tuple(map(int, values))


def _zero_scalar(dtype: np.dtype, weak_type: bool = False) -> Array:
    """A 0-d zero (strongly typed by default): the padding value of a transpose rule."""
    return Array(np.zeros((), dtype), weak_type)


def _shift_axes(axes: Sequence[int], bdim: int) -> tuple[int, ...]:
    """Axis numbers of an unbatched array, renumbered for its batched version (batch at bdim)."""
    return tuple(a + 1 if a >= bdim else a for a in axes)


def _insert_at(params: Sequence[Any], bdim: int, entry: Any) -> tuple[Any, ...]:
    """A per-axis param tuple with ``entry`` added for the batch axis at ``bdim``."""
    return (*params[:bdim], entry, *params[bdim:])


def _unbatched_aval(x: Any, bdim: int | None) -> ShapedArray:
    """The type of one batch element of ``x``."""
    aval = get_aval(x)
    if bdim is None:
        return aval
    return ShapedArray(aval.shape[:bdim] + aval.shape[bdim + 1:], aval.dtype, aval.weak_type)


def _check_element(prim: Primitive, vals: Sequence[Any], dims: Sequence[int | None],
                   **params: Any) -> ShapedArray:
    """Type-check ``prim`` on one batch element, first thing in a batching rule: bad
    arguments fail with the unbatched message and shapes, as eagerly and under jit."""
    return prim.abstract_eval(*[_unbatched_aval(v, d) for v, d in zip(vals, dims)], **params)


def _add_batch_axis(x: Any, axis_size: int, bdim: int) -> Any:
    """Broadcast an unbatched ``x`` straight to a batch axis at ``bdim`` (no transpose);
    only where each batch element needs a copy (``concatenate``, strict ``select_n``)."""
    shape = get_aval(x).shape
    return broadcast_in_dim(x, _insert_at(shape, bdim, axis_size),
                            _shift_axes(range(len(shape)), bdim))


# --- broadcast_in_dim --------------------------------------------------------------------

def broadcast_in_dim(operand: Any, shape: Sequence[int],
                     broadcast_dimensions: Sequence[int]) -> Any:
    """Broadcast ``operand`` to ``shape``, its axis i going to ``broadcast_dimensions[i]``."""
    return broadcast_in_dim_p.bind(operand, shape=_ints(shape),
                                   broadcast_dimensions=_ints(broadcast_dimensions))


def _broadcast_in_dim_impl(x: np.ndarray, shape: tuple[int, ...],
                           broadcast_dimensions: tuple[int, ...]) -> np.ndarray:
    expanded = [1] * len(shape)
    for src, dst in enumerate(broadcast_dimensions):
        expanded[dst] = x.shape[src]
    x = x.reshape(expanded)
    if math.prod(shape) <= _SMALL:
        # np.broadcast_to costs several µs of Python; for a small result (a bias row
        # stretched over a batch) a plain copy is cheaper, and its values are the same.
        out = np.empty(shape, x.dtype)
        out[...] = x
        return out
    return np.broadcast_to(x, shape)


_SMALL = 1 << 14  # elements


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
    axes, reshaped = _summed_axes(in_shape, shape, broadcast_dimensions)
    summed = _red.reduce_sum_p.bind(ct, axes=axes) if axes else ct
    return [reshape(summed, in_shape) if reshaped else summed]


@functools.lru_cache(maxsize=4096)
def _summed_axes(in_shape: tuple[int, ...], shape: tuple[int, ...],
                 broadcast_dimensions: tuple[int, ...]) -> tuple[tuple[int, ...], bool]:
    """The transpose of a broadcast sums over the new axes and over the size-1 axes that
    were stretched (sorted), then reshapes to ``in_shape`` when the sum's shape differs."""
    new_axes = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    expanded_axes = tuple(d for i, d in enumerate(broadcast_dimensions)
                          if in_shape[i] == 1 and shape[d] != 1)
    axes = tuple(sorted(new_axes + expanded_axes))
    summed_shape = tuple(n for d, n in enumerate(shape) if d not in axes)
    return axes, summed_shape != in_shape


def _broadcast_in_dim_batch(vals: Sequence[Any], dims: Sequence[int | None], *,
                            axis_size: int, shape: tuple[int, ...],
                            broadcast_dimensions: tuple[int, ...]) -> tuple[Any, int]:
    # The operand's batch axis goes right after the output axis of the operand axis before
    # it: broadcast_dimensions stays increasing, and no transpose is needed.
    _check_element(broadcast_in_dim_p, vals, dims, shape=shape,
                   broadcast_dimensions=broadcast_dimensions)
    (x,), (bdim,) = vals, dims
    out_bdim = broadcast_dimensions[bdim - 1] + 1 if bdim > 0 else 0
    dims_out = _shift_axes(broadcast_dimensions, out_bdim)
    return broadcast_in_dim(x, _insert_at(shape, out_bdim, axis_size),
                            _insert_at(dims_out, bdim, out_bdim)), out_bdim


broadcast_in_dim_p = standard_primitive("broadcast_in_dim", _broadcast_in_dim_impl,
                                        _broadcast_in_dim_shape, _same_dtype, _keep_weak)
deflinear(broadcast_in_dim_p, _broadcast_in_dim_transpose)
broadcast_in_dim_p.def_batch(_broadcast_in_dim_batch)


def full(shape: Sequence[int], fill_value: Any, dtype: Any = None) -> Any:
    """An array of ``shape`` filled with ``fill_value`` (a scalar, possibly traced).

    Weakly typed only when ``dtype`` is None and ``fill_value`` is (a Python scalar).
    """
    if dtype is None:
        dtype, weak = dtypes.dtype_and_weak_type(fill_value)
    else:
        dtype, weak = dtypes.canonicalize_dtype(dtype), False
    if isinstance(fill_value, (bool, int, float, np.generic, np.ndarray)):
        if np.ndim(fill_value) != 0:
            raise FgradTypeError(f"full: fill_value must be a scalar, got shape "
                                 f"{np.shape(fill_value)}")
        scalar: Any = Array(np.asarray(fill_value).astype(dtype), weak)
    else:
        aval = get_aval(fill_value)
        if aval.ndim != 0:
            raise FgradTypeError(f"full: fill_value must be a scalar, got {aval.str_short()}")
        scalar = fill_value if (aval.dtype, aval.weak_type) == (dtype, weak) else \
            _ew.convert_element_type(fill_value, dtype, weak)
    if tuple(shape) == ():
        return scalar
    return broadcast_in_dim(scalar, shape, ())


def full_like(x: Any, fill_value: Any) -> Any:
    """An array like ``x`` (shape, dtype, weak type) filled with the constant ``fill_value``."""
    aval = get_aval(x)
    eager = not current_trace().records_constants
    key = (aval.shape, aval.dtype, aval.weak_type, type(fill_value), fill_value)
    if eager:
        # Derivative rules ask for the same constants over and over (the 1 in tanh's
        # 1 - y², the 2 in x²'s 2x); eagerly they are immutable arrays, so one per
        # type and value is enough. Under staging a constant is an equation: no cache.
        try:
            hit = _constant_cache.get(key)
        except TypeError:  # an unhashable fill value: no caching
            hit, eager = None, False
        if hit is not None:
            return hit
    scalar = Array(np.asarray(fill_value).astype(aval.dtype), aval.weak_type)
    out = scalar if aval.shape == () else broadcast_in_dim(scalar, aval.shape, ())
    if eager and isinstance(out, Array):
        if len(_constant_cache) > 512:
            _constant_cache.clear()
        _constant_cache[key] = out
    return out


_constant_cache: dict[Any, Array] = {}


# --- reshape ---------------------------------------------------------------------------

def reshape(operand: Any, new_sizes: Sequence[int],
            dimensions: Sequence[int] | None = None) -> Any:
    """Row-major reshape to ``new_sizes``; ``dimensions`` first transposes the operand."""
    if dimensions is not None and tuple(dimensions) != tuple(range(len(dimensions))):
        operand = transpose(operand, dimensions)
    return reshape_p.bind(operand, new_sizes=_ints(new_sizes))


def _reshape_shape(x: ShapedArray, new_sizes: tuple[int, ...]) -> tuple[int, ...]:
    if any(d < 0 for d in new_sizes) or int(np.prod(new_sizes, dtype=np.int64)) != x.size:
        raise FgradTypeError(f"reshape: cannot reshape {x.str_short()} ({x.size} elements) "
                             f"to shape {new_sizes}")
    return new_sizes


def _reshape_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                   new_sizes: tuple[int, ...]) -> tuple[Any, int]:
    # Row-major order: with the batch axis at bdim, the flat index is (before, batch, after).
    # If some leading new_sizes hold exactly the elements before it, the batch axis can stay
    # in place between them and the rest (e.g. a batch axis first or last); otherwise move
    # it to the front, the only place it never splits an element group.
    _check_element(reshape_p, vals, dims, new_sizes=new_sizes)
    (x,), (bdim,) = vals, dims
    shape = get_aval(x).shape
    before = int(np.prod(shape[:bdim], dtype=np.int64))
    for k in range(len(new_sizes) + 1):
        if int(np.prod(new_sizes[:k], dtype=np.int64)) == before:
            return reshape(x, _insert_at(new_sizes, k, axis_size)), k
    return reshape(moveaxis(x, bdim, 0), (axis_size, *new_sizes)), 0


reshape_p = standard_primitive("reshape", lambda x, new_sizes: np.reshape(x, new_sizes),
                               _reshape_shape, _same_dtype, _keep_weak)
deflinear(reshape_p, lambda ct, x, new_sizes: [reshape(ct, x.aval.shape)])
reshape_p.def_batch(_reshape_batch)


# --- transpose ---------------------------------------------------------------------------

def transpose(operand: Any, permutation: Sequence[int]) -> Any:
    """Permute axes: output axis i is input axis ``permutation[i]``."""
    return transpose_p.bind(operand, permutation=_ints(permutation))


def _transpose_shape(x: ShapedArray, permutation: tuple[int, ...]) -> tuple[int, ...]:
    if sorted(permutation) != list(range(x.ndim)):
        raise FgradTypeError(f"transpose: permutation {permutation} is not a permutation of "
                             f"the axes of {x.str_short()}")
    return tuple(x.shape[p] for p in permutation)


def _transpose_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                     permutation: tuple[int, ...]) -> tuple[Any, int]:
    # The batch axis keeps its position; the other axes are permuted around it.
    _check_element(transpose_p, vals, dims, permutation=permutation)
    (x,), (bdim,) = vals, dims
    perm = _insert_at(_shift_axes(permutation, bdim), bdim, bdim)
    return transpose(x, perm), bdim


transpose_p = standard_primitive("transpose",
                                 lambda x, permutation: np.transpose(x, permutation),
                                 _transpose_shape, _same_dtype, _keep_weak)
deflinear(transpose_p, lambda ct, x, permutation: [
    transpose(ct, tuple(int(i) for i in np.argsort(permutation)))])
transpose_p.def_batch(_transpose_batch)


# --- squeeze / expand_dims ---------------------------------------------------------------------

def squeeze(array: Any, dimensions: Sequence[int]) -> Any:
    """Remove the size-1 axes ``dimensions`` (non-negative, as all strict ops)."""
    return squeeze_p.bind(array, dimensions=tuple(sorted(_ints(dimensions))))


def _squeeze_shape(x: ShapedArray, dimensions: tuple[int, ...]) -> tuple[int, ...]:
    if any(not 0 <= d < x.ndim or x.shape[d] != 1 for d in dimensions) or \
            len(set(dimensions)) != len(dimensions):
        raise FgradTypeError(f"squeeze: cannot remove axes {dimensions} of {x.str_short()}: "
                             "each must exist and have size 1")
    return tuple(s for i, s in enumerate(x.shape) if i not in dimensions)


def _squeeze_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                   dimensions: tuple[int, ...]) -> tuple[Any, int]:
    # The batch axis moves left by the number of removed axes before it.
    _check_element(squeeze_p, vals, dims, dimensions=dimensions)
    (x,), (bdim,) = vals, dims
    return squeeze(x, _shift_axes(dimensions, bdim)), bdim - sum(d < bdim for d in dimensions)


squeeze_p = standard_primitive("squeeze", lambda x, dimensions: np.squeeze(x, dimensions),
                               _squeeze_shape, _same_dtype, _keep_weak)
deflinear(squeeze_p, lambda ct, x, dimensions: [reshape(ct, x.aval.shape)])
squeeze_p.def_batch(_squeeze_batch)


def expand_dims(array: Any, dimensions: Sequence[int]) -> Any:
    """Insert size-1 axes so that they land at output positions ``dimensions``.

    Like ``jax.lax.expand_dims``, negative positions count from the end of the output.
    """
    shape = list(get_aval(array).shape)
    ndim_out = len(shape) + len(dimensions)
    if any(not -ndim_out <= d < ndim_out for d in dimensions):
        raise FgradTypeError(f"expand_dims: dimensions {tuple(dimensions)} out of range for "
                             f"an output of rank {ndim_out}")
    dims = sorted(int(d) % ndim_out for d in dimensions)
    if len(set(dims)) != len(dims):
        raise FgradTypeError(f"expand_dims: repeated dimension in {tuple(dimensions)}")
    for d in dims:
        shape.insert(d, 1)
    return reshape(array, shape)


# --- slice ---------------------------------------------------------------------------------

def slice(operand: Any, start_indices: Sequence[int], limit_indices: Sequence[int],  # noqa: A001
          strides: Sequence[int] | None = None) -> Any:
    """``operand[start:limit:stride]`` on every axis (static, in-bounds indices).

    >>> import numpy as np
    >>> slice(np.arange(10), (1,), (8,), (3,)).tolist()
    [1, 4, 7]
    """
    return slice_p.bind(operand, start_indices=_ints(start_indices),
                        limit_indices=_ints(limit_indices),
                        strides=None if strides is None else _ints(strides))


def slice_in_dim(operand: Any, start_index: int | None, limit_index: int | None,
                 stride: int = 1, axis: int = 0) -> Any:
    """``slice`` along the single axis ``axis`` (``jax.lax.slice_in_dim``).

    As in JAX, this convenience wrapper (not the primitive) accepts ``None`` and
    negative indices and a negative ``axis``, counted from the end.
    """
    shape = get_aval(operand).shape
    axis = int(axis) + len(shape) if int(axis) < 0 else int(axis)
    if not 0 <= axis < len(shape):
        raise FgradTypeError(f"slice_in_dim: axis {axis} out of range for "
                             f"{get_aval(operand).str_short()}")
    size = shape[axis]
    start = 0 if start_index is None else int(start_index)
    limit = size if limit_index is None else int(limit_index)
    start, limit = (start + size if start < 0 else start), (limit + size if limit < 0 else limit)
    starts, limits, strides = [0] * len(shape), list(shape), [1] * len(shape)
    starts[axis], limits[axis], strides[axis] = start, limit, int(stride)
    return slice(operand, starts, limits, None if stride == 1 else strides)


def _slice_impl(x: np.ndarray, start_indices: tuple[int, ...], limit_indices: tuple[int, ...],
                strides: tuple[int, ...] | None) -> np.ndarray:
    steps = strides or (1,) * x.ndim
    return x[tuple(builtins.slice(s, e, k) for s, e, k in
                   zip(start_indices, limit_indices, steps))]


def _slice_shape(x: ShapedArray, start_indices: tuple[int, ...],
                 limit_indices: tuple[int, ...],
                 strides: tuple[int, ...] | None) -> tuple[int, ...]:
    steps = strides if strides is not None else (1,) * x.ndim
    where = (f"slice: operand {x.str_short()}, start_indices={start_indices}, "
             f"limit_indices={limit_indices}, strides={strides}")
    if not len(start_indices) == len(limit_indices) == len(steps) == x.ndim:
        raise FgradTypeError(f"{where}: need one start, limit and stride per axis")
    for s, e, k, n in zip(start_indices, limit_indices, steps, x.shape):
        if not 0 <= s <= e <= n:
            raise FgradTypeError(f"{where}: need 0 <= start <= limit <= size on every axis")
        if k < 1:
            raise FgradTypeError(f"{where}: strides must be positive")
    # ceil((limit - start) / stride) elements per axis
    return tuple(-(-(e - s) // k) for s, e, k in zip(start_indices, limit_indices, steps))


def _slice_transpose(ct: Any, x: Any, start_indices: tuple[int, ...],
                     limit_indices: tuple[int, ...],
                     strides: tuple[int, ...] | None) -> list[Any]:
    # Put the cotangent back where the slice read it and zeros everywhere else: a pad
    # whose interior padding fills the gaps a stride skipped.
    steps = strides if strides is not None else (1,) * len(start_indices)
    config = []
    for s, k, n, m in zip(start_indices, steps, x.aval.shape, ct.shape):
        last = s + (m - 1) * k + 1 if m else s  # one past the last element read
        config.append((s, n - last, k - 1))
    return [pad(ct, _zero_scalar(ct.dtype), config)]


def _slice_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                 start_indices: tuple[int, ...], limit_indices: tuple[int, ...],
                 strides: tuple[int, ...] | None) -> tuple[Any, int]:
    # The whole batch axis, stride 1.
    _check_element(slice_p, vals, dims, start_indices=start_indices,
                   limit_indices=limit_indices, strides=strides)
    (x,), (bdim,) = vals, dims
    return slice(x, _insert_at(start_indices, bdim, 0),
                 _insert_at(limit_indices, bdim, axis_size),
                 None if strides is None else _insert_at(strides, bdim, 1)), bdim


slice_p = standard_primitive("slice", _slice_impl, _slice_shape, _same_dtype, _keep_weak)
deflinear(slice_p, _slice_transpose)
slice_p.def_batch(_slice_batch)


# --- pad -----------------------------------------------------------------------------------

def pad(operand: Any, padding_value: Any, padding_config: Sequence[Sequence[int]]) -> Any:
    """Pad each axis by ``(low, high, interior)`` copies of the scalar ``padding_value``.

    Negative ``low``/``high`` remove elements from that end instead.

    >>> import numpy as np
    >>> pad(np.array([1, 2, 3]), np.int64(0), [(1, -1, 1)]).tolist()  # [1, 0, 2, 0, 3] shifted
    [0, 1, 0, 2, 0]
    """
    config = tuple((int(lo), int(hi), int(interior)) for lo, hi, interior in padding_config)
    return pad_p.bind(operand, padding_value, padding_config=config)


def _dilated(n: int, interior: int) -> int:
    return n + (n - 1) * interior if n else 0


def _pad_impl(x: np.ndarray, padding_value: np.ndarray,
              padding_config: PaddingConfig) -> np.ndarray:
    # Pad with the non-negative parts of low/high, place x on a strided grid, then crop
    # the negative parts.
    grown = [max(lo, 0) + max(hi, 0) + _dilated(n, i)
             for (lo, hi, i), n in zip(padding_config, x.shape)]
    out = np.full(grown, padding_value, dtype=x.dtype)
    out[tuple(builtins.slice(max(lo, 0), max(lo, 0) + _dilated(n, i), i + 1)
              for (lo, hi, i), n in zip(padding_config, x.shape))] = x
    return out[tuple(builtins.slice(max(-lo, 0), max(-lo, 0) + size)
                     for (lo, _, _), size in zip(padding_config,
                                                 _pad_out_shape(x.shape, padding_config)))]


def _pad_out_shape(shape: tuple[int, ...], padding_config: PaddingConfig) -> tuple[int, ...]:
    return tuple(lo + hi + _dilated(n, i) for (lo, hi, i), n in zip(padding_config, shape))


def _pad_shape(x: ShapedArray, padding_value: ShapedArray,
               padding_config: PaddingConfig) -> tuple[int, ...]:
    where = f"pad: operand {x.str_short()}, padding_value {padding_value.str_short()}"
    if padding_value.ndim != 0:
        raise FgradTypeError(f"{where}: padding_value must be a scalar")
    if x.dtype != padding_value.dtype:
        raise FgradTypeError(f"{where}: operand and padding_value must have the same dtype")
    if len(padding_config) != x.ndim:
        raise FgradTypeError(f"{where}: padding_config {padding_config} needs one "
                             f"(low, high, interior) triple per axis")
    if any(i < 0 for _, _, i in padding_config):
        raise FgradTypeError(f"{where}: interior padding must be non-negative, got "
                             f"padding_config {padding_config}")
    out = _pad_out_shape(x.shape, padding_config)
    if any(d < 0 for d in out):
        raise FgradTypeError(f"{where}: padding_config {padding_config} gives the negative "
                             f"shape {out}")
    return out


def _pad_transpose(ct: Any, operand: Any, padding_value: Any,
                   padding_config: PaddingConfig) -> list[Any]:
    # Operand: undo the cropping by padding zeros back in, then read the operand's
    # positions with a strided slice. Padding value: it was copied to every padded
    # position, so its cotangent is the sum of ct there, i.e. sum(ct) - sum(operand's ct).
    shape = get_aval(operand).shape
    uncrop = [(max(-lo, 0), max(-hi, 0), 0) for lo, hi, _ in padding_config]
    full_ct = pad(ct, _zero_scalar(ct.dtype), uncrop) if any(map(any, uncrop)) else ct
    starts = [max(lo, 0) for lo, _, _ in padding_config]
    limits = [s + _dilated(n, i) for s, n, (_, _, i) in zip(starts, shape, padding_config)]
    strides = [i + 1 for _, _, i in padding_config]
    ct_operand = slice(full_ct, starts, limits,
                       strides if any(s != 1 for s in strides) else None)
    ct_padding_value = None
    if is_undefined_primal(padding_value):
        everything = tuple(range(len(shape)))
        ct_padding_value = _ew.sub(_red.reduce_sum(ct, everything),
                                   _red.reduce_sum(ct_operand, everything))
    return [ct_operand if is_undefined_primal(operand) else None, ct_padding_value]


def _pad_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
               padding_config: PaddingConfig) -> tuple[Any, int]:
    _check_element(pad_p, vals, dims, padding_config=padding_config)
    (x, padding_value), (x_bdim, value_bdim) = vals, dims
    if value_bdim is None:
        # No padding along the batch axis.
        return pad(x, padding_value, _insert_at(padding_config, x_bdim, (0, 0, 0))), x_bdim
    # A padding value per batch element: pad with zeros, then select each element's value
    # at the padded positions, found by padding a mask of the operand's positions the same
    # way. The zero is weak so that the result is weak iff operand and value both are.
    x_aval = get_aval(x)
    bdim = 0 if x_bdim is None else x_bdim
    config = padding_config if x_bdim is None else _insert_at(padding_config, bdim, (0, 0, 0))
    padded = pad(x, _zero_scalar(x_aval.dtype, weak_type=True), config)
    if x_bdim is None:
        padded = _add_batch_axis(padded, axis_size, bdim)
    is_operand = pad(full(_unbatched_aval(x, x_bdim).shape, True, np.bool_),
                     Array(np.array(False), False), padding_config)
    out_shape = get_aval(padded).shape
    values = broadcast_in_dim(padding_value, out_shape, (bdim,))
    return _ew.select(_add_batch_axis(is_operand, axis_size, bdim), padded, values), bdim


pad_p = standard_primitive("pad", _pad_impl, _pad_shape, _same_dtype)
deflinear(pad_p, _pad_transpose, linear_args=(0, 1))
pad_p.def_batch(_pad_batch)


# --- concatenate ---------------------------------------------------------------------------

def concatenate(operands: Sequence[Any], dimension: int) -> Any:
    """Join ``operands`` along ``dimension`` (same rank and dtype, equal sizes elsewhere)."""
    return concatenate_p.bind(*operands, dimension=int(dimension))


def _concatenate_shape(*operands: ShapedArray, dimension: int) -> tuple[int, ...]:
    if not operands:
        raise FgradTypeError("concatenate: needs at least one operand")
    shown = ", ".join(o.str_short() for o in operands)
    first = operands[0]
    if any(o.ndim != first.ndim for o in operands):
        raise FgradTypeError(f"concatenate: operands must have equal ranks, got {shown}")
    if any(o.dtype != first.dtype for o in operands):
        raise FgradTypeError(f"concatenate: operands must have equal dtypes, got {shown} "
                             "(fgrad.numpy promotes; fgrad.lax is strict)")
    if not 0 <= dimension < first.ndim:
        raise FgradTypeError(f"concatenate: dimension {dimension} out of range for {shown}")
    rest = {o.shape[:dimension] + o.shape[dimension + 1:] for o in operands}
    if len(rest) != 1:
        raise FgradTypeError(f"concatenate: operands must have equal sizes except along "
                             f"dimension {dimension}, got {shown}")
    size = sum(o.shape[dimension] for o in operands)
    return first.shape[:dimension] + (size,) + first.shape[dimension + 1:]


def _concatenate_transpose(ct: Any, *operands: Any, dimension: int) -> list[Any]:
    # Each operand's cotangent is its own stretch of ct along `dimension`.
    cts: list[Any] = []
    offset = 0
    for x in operands:
        size = get_aval(x).shape[dimension]
        cts.append(slice_in_dim(ct, offset, offset + size, 1, dimension)
                   if is_undefined_primal(x) else None)
        offset += size
    return cts


def _concatenate_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                       dimension: int) -> tuple[Any, int]:
    # Every operand needs the batch axis, at one common position: the one most batched
    # operands already have (fewest transposes); unbatched operands are broadcast there.
    _check_element(concatenate_p, vals, dims, dimension=dimension)
    batched = [d for d in dims if d is not None]
    bdim = max(set(batched), key=lambda d: (batched.count(d), -d))
    operands = [_add_batch_axis(x, axis_size, bdim) if d is None else moveaxis(x, d, bdim)
                for x, d in zip(vals, dims)]
    return concatenate(operands, dimension + 1 if dimension >= bdim else dimension), bdim


concatenate_p = standard_primitive(
    "concatenate", lambda *xs, dimension: np.concatenate(xs, axis=dimension),
    _concatenate_shape, _same_dtype)
deflinear(concatenate_p, _concatenate_transpose, linear_args="all")
concatenate_p.def_batch(_concatenate_batch)


# --- rev -----------------------------------------------------------------------------------

def rev(operand: Any, dimensions: Sequence[int]) -> Any:
    """Reverse the order of elements along each axis in ``dimensions``."""
    return rev_p.bind(operand, dimensions=_ints(dimensions))


def _rev_shape(x: ShapedArray, dimensions: tuple[int, ...]) -> tuple[int, ...]:
    if any(not 0 <= d < x.ndim for d in dimensions) or len(set(dimensions)) != len(dimensions):
        raise FgradTypeError(f"rev: dimensions {dimensions} must be distinct axes of "
                             f"{x.str_short()}")
    return x.shape


def _rev_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
               dimensions: tuple[int, ...]) -> tuple[Any, int]:
    _check_element(rev_p, vals, dims, dimensions=dimensions)
    (x,), (bdim,) = vals, dims
    return rev(x, _shift_axes(dimensions, bdim)), bdim


rev_p = standard_primitive("rev", lambda x, dimensions: np.flip(x, dimensions),
                           _rev_shape, _same_dtype, _keep_weak)
deflinear(rev_p, lambda ct, x, dimensions: [rev(ct, dimensions)])
rev_p.def_batch(_rev_batch)


# --- iota ----------------------------------------------------------------------------------

def iota(dtype: Any, size: int) -> Any:
    """``[0, 1, ..., size - 1]`` of ``dtype`` (an integer or float dtype)."""
    return broadcasted_iota(dtype, (size,), 0)


def broadcasted_iota(dtype: Any, shape: Sequence[int], dimension: int) -> Any:
    """An array of ``shape`` whose value at each index is that index's ``dimension`` coordinate."""
    return iota_p.bind(dtype=dtypes.canonicalize_dtype(dtype), shape=_ints(shape),
                       dimension=int(dimension))


def _iota_impl(*, dtype: np.dtype, shape: tuple[int, ...], dimension: int) -> np.ndarray:
    line = np.arange(shape[dimension], dtype=np.int64).astype(dtype)
    return np.broadcast_to(line.reshape([-1 if i == dimension else 1
                                         for i in range(len(shape))]), shape)


def _iota_shape(*, dtype: np.dtype, shape: tuple[int, ...], dimension: int) -> tuple[int, ...]:
    if not (dtypes.is_int(dtype) or dtypes.is_float(dtype)):
        raise FgradTypeError(f"iota: dtype must be an integer or float dtype, got {dtype}")
    if any(d < 0 for d in shape) or not 0 <= dimension < len(shape):
        raise FgradTypeError(f"iota: invalid shape {shape} or dimension {dimension}")
    return shape


def _iota_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                **params: Any) -> tuple[Any, None]:
    # iota has no operands, so vmap never calls this (it only batches primitives with a
    # batched operand); should anything call it, the result is the same for every batch
    # element: unbatched.
    if vals:
        raise AssertionError(f"iota takes no operands, got {len(vals)}")
    return iota_p.bind(**params), None


iota_p = standard_primitive("iota", _iota_impl, _iota_shape, lambda **params: params["dtype"])
defjvp_zero(iota_p)
iota_p.def_batch(_iota_batch)


__all__ = ["broadcast_in_dim", "full", "full_like", "reshape", "transpose", "squeeze",
           "expand_dims", "slice", "slice_in_dim", "pad", "concatenate", "rev", "iota",
           "broadcasted_iota"]
