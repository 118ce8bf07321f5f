"""Batching (``vmap``) rules for the indexing primitives, as rule constructors.

``indexing.py`` registers each rule in its primitive's block
(``gather_p.def_batch(gather_batcher(gather_p))`` and so on); the rules live
here because they share one idea and several helpers, and because the family
file is long enough already.

**The index structure under a batch axis.** A gather reads
``operand[indices[..., 0], ..., indices[..., n-1]]`` along ``axes`` and takes
the other ("rest") operand axes whole: its output is
``batch_shape + rest``. A vmapped gather has three cases, the same three as
JAX's gather batching rule (``jax/_src/lax/slicing.py``):

* *operand batched only*: the batch axis is one more operand axis that is
  taken whole, i.e. one more rest axis. The indices stay as they are (they
  are the same for every batch element) and the output's batch axis is where
  that rest axis lands;
* *indices batched only*: the batch axis is one more batch dimension of the
  indices (it only has to sit in front of the coordinate axis). The operand
  is *not* broadcast: every batch element reads the same operand;
* *both batched*: element ``b`` must read its own slice of the operand. With
  the batch axes in front, prepend ``b`` itself as a coordinate (an ``iota``
  concatenated to the indices) and index the operand's batch axis with it.
  (Modern XLA has "batching dims" for this; fgrad's smaller index structure
  uses the older concatenated-iota form. The iota is always in bounds, so the
  out-of-bounds behaviour of every mode is the per-element one.)

A scatter's output has the operand's shape, so an update that varies over the
batch needs a batched operand: an unbatched operand is broadcast then (each
element writes its own copy). With unbatched indices the batch axis is again
one more rest axis (the updates carry it at the matching position); with
batched indices the iota coordinate keeps the elements' writes apart, and the
order of the writes inside each element is unchanged (``scatter``'s "last
update wins" holds per element).

``dynamic_slice`` / ``dynamic_update_slice`` with unbatched starts stay what
they are, with one more axis sliced (or updated) whole from start 0. With
batched starts the block moves per element, which is a gather (scatter) of
the block: one index per block element, ``clamp(start) + iota`` along each
axis the block does not cover entirely (an axis it covers needs no index: its
clamped start is 0).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import get_aval
from fgrad.core.primitive import Primitive
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import shape as _shape
from fgrad.transforms.vmap import bdim_at_front, moveaxis

Axes = tuple[int, ...]
Dims = Sequence[int | None]
BatchRule = Callable[..., tuple[Any, Any]]


# --- helpers ---------------------------------------------------------------------------------

def _batch_axis_to(x: Any, dim: int | None, dst: int, axis_size: int) -> Any:
    """``x`` with its batch axis at ``dst``: moved there, or (unbatched) broadcast into it."""
    if dim is not None:
        return moveaxis(x, dim, dst)
    shape = get_aval(x).shape
    out_shape = (*shape[:dst], axis_size, *shape[dst:])
    return _shape.broadcast_in_dim(x, out_shape, [i for i in range(len(out_shape)) if i != dst])


def _shifted(axes: Axes, dim: int) -> Axes:
    """``axes`` renumbered for an operand that has a batch axis at ``dim`` (still sorted)."""
    return tuple(a + 1 if a >= dim else a for a in axes)


def _rest_position(axes: Axes, dim: int) -> int:
    """Where the operand's batch axis ``dim`` sits among its non-indexed axes."""
    return dim - sum(a < dim for a in axes)


def _coordinate_dtype(dtype: Any, largest: int) -> np.dtype:
    """An index dtype holding ``0..largest``: ``dtype`` when it can, else int32 (or int64)."""
    dtype = np.dtype(dtype)
    if dtypes.canonicalize_dtype(dtype) == dtype and dtypes.iinfo(dtype).max >= largest:
        return dtype
    wide = largest > np.iinfo(np.int32).max
    return dtypes.canonicalize_dtype(np.int64 if wide else np.int32)


def _as_dtype(x: Any, dtype: np.dtype) -> Any:
    return x if get_aval(x).dtype == dtype else _ew.convert_element_type(x, dtype)


def _with_batch_coordinate(indices: Any, axis_size: int) -> Any:
    """Indices with the batch axis first get its position prepended as coordinate 0."""
    aval = get_aval(indices)
    dtype = _coordinate_dtype(aval.dtype, axis_size - 1)
    iota = _shape.broadcasted_iota(dtype, (*aval.shape[:-1], 1), 0)
    return _shape.concatenate([iota, _as_dtype(indices, dtype)], aval.ndim - 1)


def _permuted(x: Any, perm: Sequence[int]) -> Any:
    return x if list(perm) == sorted(perm) else _shape.transpose(x, perm)


def _front_axes(axes: Axes) -> Axes:
    """The axes of an operand whose batch axis was put in front and is indexed too."""
    return (0, *(a + 1 for a in axes))


# --- gather ------------------------------------------------------------------------------------

def gather_batcher(gather_p: Primitive) -> BatchRule:
    """The batching rule of ``gather`` (the three cases of the module docstring)."""
    def rule(vals: Sequence[Any], dims: Dims, *, axis_size: int, axes: Axes, mode: str,
             fill_value: Any) -> tuple[Any, int]:
        (operand, indices), (op_dim, idx_dim) = vals, dims
        params = dict(mode=mode, fill_value=fill_value)
        if idx_dim is None:  # the batch axis is one more axis taken whole
            new_axes = _shifted(axes, op_dim)
            out = gather_p.bind(operand, indices, axes=new_axes, **params)
            return out, get_aval(indices).ndim - 1 + _rest_position(new_axes, op_dim)
        if op_dim is None:  # one more batch dim of the indices; the operand is shared
            last = get_aval(indices).ndim - 1
            if idx_dim == last:  # behind the coordinate axis: move it just in front of it
                indices, idx_dim = moveaxis(indices, last, last - 1), last - 1
            return gather_p.bind(operand, indices, axes=axes, **params), idx_dim
        operand = moveaxis(operand, op_dim, 0)
        indices = _with_batch_coordinate(moveaxis(indices, idx_dim, 0), axis_size)
        return gather_p.bind(operand, indices, axes=_front_axes(axes), **params), 0
    return rule


# --- the scatter family ----------------------------------------------------------------------

def scatter_batcher(prim: Primitive) -> BatchRule:
    """The batching rule of ``scatter``, ``scatter_add``/``mul``/``min``/``max``."""
    def rule(vals: Sequence[Any], dims: Dims, *, axis_size: int, axes: Axes,
             mode: str) -> tuple[Any, int]:
        (operand, indices, updates), (op_dim, idx_dim, upd_dim) = vals, dims
        if idx_dim is None:
            if op_dim is None:  # batched updates need a batched operand to land in
                operand, op_dim = bdim_at_front(operand, None, axis_size), 0
            new_axes = _shifted(axes, op_dim)
            n_batch = get_aval(indices).ndim - 1
            updates = _batch_axis_to(updates, upd_dim, n_batch + _rest_position(new_axes, op_dim),
                                     axis_size)
            return prim.bind(operand, indices, updates, axes=new_axes, mode=mode), op_dim
        operand = bdim_at_front(operand, op_dim, axis_size)
        indices = _with_batch_coordinate(moveaxis(indices, idx_dim, 0), axis_size)
        updates = bdim_at_front(updates, upd_dim, axis_size)
        return prim.bind(operand, indices, updates, axes=_front_axes(axes), mode=mode), 0
    return rule


# --- dynamic_slice and dynamic_update_slice ----------------------------------------------------

def _unbatched_shape(x: Any, dim: int | None) -> tuple[int, ...]:
    shape = get_aval(x).shape
    return shape if dim is None else shape[:dim] + shape[dim + 1:]


def _moving_axes(shape: Sequence[int], sizes: Sequence[int]) -> list[int]:
    """The axes a block of ``sizes`` does not cover entirely: only there do starts matter
    (along the others the clamped start is 0)."""
    return [i for i, (d, k) in enumerate(zip(shape, sizes)) if k < d]


def _start_dtype(starts: Sequence[Any]) -> np.dtype:
    return get_aval(starts[0]).dtype if starts else dtypes.canonicalize_dtype(np.int32)


def _shared_starts(starts: Sequence[Any], start_dims: Dims, dim: int | None) -> list[Any]:
    """Unbatched start indices: batched ones (on covered axes, where they clamp to 0 anyway)
    become 0, and an operand with a batch axis at ``dim`` gets start 0 there."""
    zero = _shape.full((), 0, _start_dtype(starts))
    out = [s if d is None else zero for s, d in zip(starts, start_dims)]
    if dim is not None:
        out.insert(dim, zero)
    return out


def _block_indices(shape: Sequence[int], starts: Sequence[Any], start_dims: Dims,
                   sizes: Sequence[int], axis_size: int, batch_coordinate: bool,
                   ) -> tuple[Any, Axes, list[int]]:
    """Gather/scatter indices for the block of ``sizes`` at each batch element's ``starts``.

    The indices have shape ``(axis_size, *sizes along the moving axes, n)``;
    their coordinates are the batch position (if ``batch_coordinate``, for an
    operand with its batch axis in front) and ``clamp(start) + iota`` along each
    moving axis. Returns ``(indices, axes, order)`` where ``order`` lists the
    operand axes in the order the gather's output (after its batch axis) has them.
    """
    moving = _moving_axes(shape, sizes)
    grid = (axis_size, *(sizes[i] for i in moving))
    dtype = _coordinate_dtype(_start_dtype(starts), max([axis_size - 1, *shape]))
    coords = [_shape.broadcasted_iota(dtype, grid, 0)] if batch_coordinate else []
    for pos, i in enumerate(moving):
        s = _as_dtype(starts[i], dtype)  # a scalar, or (axis_size,) when batched
        bounds = get_aval(s).shape
        s = _ew.max(_ew.min(s, _shape.full(bounds, shape[i] - sizes[i], dtype)),
                    _shape.full(bounds, 0, dtype))  # dynamic_slice's clamping
        s = _shape.broadcast_in_dim(s, grid, () if start_dims[i] is None else (0,))
        coords.append(_ew.add(s, _shape.broadcasted_iota(dtype, grid, 1 + pos)))
    indices = _shape.concatenate([_shape.reshape(c, (*grid, 1)) for c in coords], len(grid))
    axes = _front_axes(tuple(moving)) if batch_coordinate else tuple(moving)
    return indices, axes, moving + [i for i in range(len(shape)) if i not in moving]


def dynamic_slice_batcher(dynamic_slice_p: Primitive, gather_p: Primitive) -> BatchRule:
    """``dynamic_slice``'s batching rule: shared starts slice the batch axis whole; batched
    starts become a gather of the block (an unbatched operand is not broadcast)."""
    def rule(vals: Sequence[Any], dims: Dims, *, axis_size: int,
             slice_sizes: tuple[int, ...]) -> tuple[Any, int | None]:
        (operand, *starts), (op_dim, *start_dims) = vals, dims
        shape = _unbatched_shape(operand, op_dim)
        moving = _moving_axes(shape, slice_sizes)
        if all(start_dims[i] is None for i in moving):
            sizes = slice_sizes if op_dim is None else (
                *slice_sizes[:op_dim], axis_size, *slice_sizes[op_dim:])
            return dynamic_slice_p.bind(operand, *_shared_starts(starts, start_dims, op_dim),
                                        slice_sizes=sizes), op_dim
        batched = op_dim is not None
        indices, axes, order = _block_indices(shape, starts, start_dims, slice_sizes,
                                              axis_size, batch_coordinate=batched)
        operand = moveaxis(operand, op_dim, 0) if batched else operand
        out = gather_p.bind(operand, indices, axes=axes, mode="clip", fill_value=None)
        perm = [0, *(1 + order.index(i) for i in range(len(shape)))]  # back to operand order
        return _permuted(out, perm), 0
    return rule


def dynamic_update_slice_batcher(dynamic_update_slice_p: Primitive,
                                 scatter_p: Primitive) -> BatchRule:
    """``dynamic_update_slice``'s batching rule: shared starts update the batch axis whole;
    batched starts become a scatter of the block."""
    def rule(vals: Sequence[Any], dims: Dims, *, axis_size: int) -> tuple[Any, int | None]:
        (operand, update, *starts), (op_dim, up_dim, *start_dims) = vals, dims
        shape, sizes = _unbatched_shape(operand, op_dim), _unbatched_shape(update, up_dim)
        if all(start_dims[i] is None for i in _moving_axes(shape, sizes)):
            dim = op_dim if op_dim is not None else up_dim
            if dim is not None:
                operand = _batch_axis_to(operand, op_dim, dim, axis_size)
                update = _batch_axis_to(update, up_dim, dim, axis_size)
            return dynamic_update_slice_p.bind(
                operand, update, *_shared_starts(starts, start_dims, dim)), dim
        weak = get_aval(operand).weak_type and get_aval(update).weak_type
        operand = bdim_at_front(operand, op_dim, axis_size)
        update = bdim_at_front(update, up_dim, axis_size)
        indices, axes, order = _block_indices(shape, starts, start_dims, sizes, axis_size,
                                              batch_coordinate=True)
        update = _permuted(update, [0, *(1 + i for i in order)])
        if get_aval(operand).weak_type and not weak:  # the result is weak only if both are
            operand = _ew.convert_element_type(operand, get_aval(operand).dtype)
        return scatter_p.bind(operand, indices, update, axes=axes, mode="clip"), 0
    return rule


__all__: list[str] = []
