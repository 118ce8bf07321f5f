"""numpy indexing over fgrad's primitives: ``x[idx]``, ``x.at[idx].set(v)``, ``take``.

An index expression is parsed once (``_parse``) into one *entry* per operand
axis (a slice, a static int or an integer array) plus new axes. Two lowerings:

* **Basic indexing** (only slices, ints, ``None``, ``...``): static
  ``slice`` (with strides), ``rev`` for negative steps, ``squeeze`` for the
  ints, ``expand_dims`` for new axes. No gather.
* **Advanced indexing** (any integer or boolean array): the *index grid*
  (``_Grid``). The integer arrays (and the ints, which then count as
  advanced, as in numpy) are broadcast together into the block ``A``; every
  other non-trivial slice becomes one more coordinate array (an ``arange``
  along its own new dim). Stacked, they are the ``indices`` of one
  ``gather``/``scatter`` whose output is ``A + sliced dims + untouched dims``;
  a transpose and a reshape give numpy's layout, where ``A`` sits at the
  first advanced index if the advanced indices are adjacent, else in front.
  ``x[idx]`` first applies its slices with ``slice`` (cheap) so its grid has
  no slice coordinates; ``.at[idx]`` updates need them, to know where to write.

Conventions, as in ``jax.numpy``: negative indices count from the end (the
axis size is added before the primitive sees them); out-of-bounds indices
clamp in ``x[idx]``, scatters drop out-of-bounds updates, and ``take``
fills (NaN for floats); boolean masks must be concrete (their ``nonzero``
fixes the result's shape); a bare list as the whole index is an error (use a
tuple or an array). ``x.at[idx].op(v)`` casts ``v`` to ``x``'s dtype and
returns a new array; with repeated indices ``set`` keeps the last value and
``add``/``multiply``/``min``/``max`` combine them all.
"""

from __future__ import annotations

import operator
import warnings
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import get_aval
from fgrad.core.errors import NonConcreteBooleanIndexError
from fgrad.core.trace import Tracer
from fgrad.numpy._util import (
    asarray_arg,
    broadcast_shapes,
    broadcast_to_shape,
    cast,
    normalize_axis,
    promote_dtypes,
)
from fgrad.primitives import elementwise as lax_ew
from fgrad.primitives import indexing as lax_ix
from fgrad.primitives import shape as lax_shape

Entry = tuple[str, Any]  # ("new", None) | ("slice", slice) | ("int", int) | ("array", array)
_FULL = slice(None)


# --- parsing an index expression --------------------------------------------------------------

def _static(x: Any) -> Any:
    """A numpy value for ``x`` if it is known now (not a truly abstract tracer), else None."""
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        return None if value is None else np.asarray(value)
    return np.asarray(x)


def _slice_element(v: Any, item: slice, pos: int) -> int | None:
    if v is None:
        return None
    try:
        return operator.index(v)
    except Exception:
        raise IndexError(f"Slice entries must be static integers. Got {item} at position "
                         f"{pos}; for a slice at a traced offset use "
                         "fgrad.lax.dynamic_slice") from None


def _classify(item: Any, pos: int) -> Entry:
    """One element of an index tuple: ("new"|"ellipsis"|"slice"|"int"|"bool"|"array", value)."""
    if item is None:
        return ("new", None)
    if item is Ellipsis:
        return ("ellipsis", None)
    if isinstance(item, slice):
        start, stop, step = (_slice_element(v, item, pos) for v in (item.start, item.stop,
                                                                    item.step))
        if step == 0:
            raise ValueError("slice step cannot be zero")
        return ("slice", slice(start, stop, step))
    if isinstance(item, (bool, np.bool_)):
        return ("bool", np.asarray(item))
    if isinstance(item, (int, np.integer)):
        return ("int", int(item))
    if isinstance(item, (list, tuple)):
        item = np.asarray(item) if len(item) else np.zeros(0, np.int32)
    if isinstance(item, (np.ndarray, Array, Tracer)):
        dtype = get_aval(item).dtype if not isinstance(item, np.ndarray) else item.dtype
        if dtypes.is_bool(dtype):
            return ("bool", item)
        if dtypes.is_int(dtype):
            value = item if isinstance(item, Tracer) else np.asarray(item)
            if isinstance(value, np.ndarray) and value.ndim == 0:
                return ("int", int(value))
            return ("array", value)
        raise TypeError(f"Indexer must have integer or boolean type, got indexer with type "
                        f"{dtype} at position {pos}, indexer value {item}")
    raise TypeError(f"Indexer must have integer or boolean type, got indexer with type "
                    f"{type(item).__name__} at position {pos}, indexer value {item!r}")


def _parse(idx: Any, shape: Sequence[int]) -> tuple[list[Entry], list[int]]:
    """Entries for every axis of the (expanded) operand, and the axes to insert first.

    A boolean scalar indexes a new size-1 axis (inserted into the operand)
    with the mask ``[b]``, as in JAX; an n-d boolean mask becomes n integer
    arrays (its ``nonzero``).
    """
    if isinstance(idx, list):
        raise TypeError("Using a non-tuple sequence for multidimensional indexing is not "
                        "allowed; use `arr[array(seq)]` instead of `arr[seq]`, or a tuple.")
    items = [_classify(item, pos) for pos, item in
             enumerate(idx if isinstance(idx, tuple) else (idx,))]
    if sum(kind == "ellipsis" for kind, _ in items) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    consumed = sum(np.ndim(v) if kind == "bool" else 1 for kind, v in items
                   if kind in ("slice", "int", "array", "bool"))
    if consumed > len(shape):
        raise IndexError(f"Too many indices: array is {len(shape)}-dimensional, but "
                         f"{consumed} were indexed")
    entries: list[Entry] = []
    inserted: list[int] = []
    axis = 0  # the next axis of the original operand
    for pos, (kind, value) in enumerate(items):
        if kind == "ellipsis":
            entries += [("slice", _FULL)] * (len(shape) - consumed)
            axis += len(shape) - consumed
        elif kind == "bool":
            mask = _static(value)
            if mask is None:
                raise NonConcreteBooleanIndexError(
                    f"Array boolean indices must be concrete; got {get_aval(value).str_short()}"
                    ". The result's shape would depend on the mask's values. Use "
                    "fnp.where(mask, x, 0) to keep the shape, or index with a static (numpy) "
                    "mask.")
            if mask.ndim == 0:
                inserted.append(len(entries) - sum(k == "new" for k, _ in entries))
                entries.append(("array", np.nonzero(mask.reshape(1))[0]))
                continue
            expected = tuple(shape[axis:axis + mask.ndim])
            if mask.shape != expected:
                raise IndexError(f"boolean index did not match shape of indexed array in index "
                                 f"{pos}: got {mask.shape}, expected {expected}")
            entries += [("array", nz) for nz in np.nonzero(mask)]
            axis += mask.ndim
        else:
            entries.append((kind, value))
            axis += kind != "new"
    entries += [("slice", _FULL)] * (len(shape) - axis)
    return entries, inserted


# --- basic indexing: static slices ---------------------------------------------------------------

def _slice_bounds(s: slice, size: int) -> tuple[int, int, int, bool]:
    """``(start, limit, stride, reversed)`` for ``lax.slice``: negative steps slice the
    same elements in increasing order, then reverse."""
    start, stop, step = s.indices(size)
    if step > 0:
        return start, max(start, stop), step, False
    n = len(range(start, stop, step))
    if n == 0:
        return 0, 0, 1, False
    return start + (n - 1) * step, start + 1, -step, True


def _static_int(i: int, size: int, axis: int, wrap: bool) -> int:
    """A static int index: negative counts from the end, then clamp (JAX, not numpy)."""
    if size == 0:
        raise IndexError(f"index is out of bounds for axis {axis} with size 0")
    i = i + size if i < 0 and wrap else i
    return min(max(i, 0), size - 1)


def _apply_static(x: Any, entries: list[Entry], ints: bool,
                  wrap: bool = True) -> tuple[Any, list[Entry]]:
    """Apply the slices (and, if ``ints``, the static ints) of ``entries`` with ``slice``,
    ``rev`` and ``squeeze``. Returns the result and the entries left to apply (applied
    slices become full slices; applied ints disappear)."""
    shape = get_aval(x).shape
    starts, limits, strides = [0] * len(shape), list(shape), [1] * len(shape)
    reversed_axes, squeezed, rest = [], [], []
    axis = 0
    for kind, value in entries:
        if kind == "slice":
            starts[axis], limits[axis], strides[axis], rev = _slice_bounds(value, shape[axis])
            if rev:
                reversed_axes.append(axis)
            rest.append(("slice", _FULL))
        elif kind == "int" and ints:
            starts[axis] = _static_int(value, shape[axis], axis, wrap)
            limits[axis] = starts[axis] + 1
            squeezed.append(axis)
        else:
            rest.append((kind, value))
        axis += kind != "new"
    if (starts, limits) != ([0] * len(shape), list(shape)) or any(k != 1 for k in strides):
        x = lax_shape.slice(x, starts, limits,
                            strides if any(k != 1 for k in strides) else None)
    if reversed_axes:
        x = lax_shape.rev(x, reversed_axes)
    if squeezed:
        x = lax_shape.squeeze(x, squeezed)
    return x, rest


def _basic(x: Any, entries: list[Entry], wrap: bool) -> Any:
    x, rest = _apply_static(x, entries, ints=True, wrap=wrap)
    new_axes = [i for i, (kind, _) in enumerate(rest) if kind == "new"]
    return lax_shape.expand_dims(x, new_axes) if new_axes else x


# --- advanced indexing: the index grid -------------------------------------------------------

def _index_dtype(traced: Sequence[Any], shape: Sequence[int]) -> np.dtype:
    """int32, unless x64 is on and an index array or an axis size needs 64 bits."""
    wide = (any(get_aval(t).dtype.itemsize == 8 for t in traced)
            or any(d >= 2**31 for d in shape))
    return dtypes.canonicalize_dtype(np.int64 if wide else np.int32)


class _Grid:
    """The coordinates of an index expression, for one gather or scatter.

    ``indices`` has shape ``B + (len(axes),)`` with ``B = A + S`` (``A``: the
    ints and integer arrays broadcast together, ``S``: one dim per slice that
    is not the whole axis). The primitive's result has shape ``B + R``
    (``R``: the untouched axes); ``order`` lists those dims in numpy's order,
    ``None`` marking a new axis, and ``shape`` is numpy's result shape.
    """

    def __init__(self, shape: Sequence[int], entries: list[Entry], wrap: bool) -> None:
        advanced = [p for p, (kind, _) in enumerate(entries) if kind in ("int", "array")]
        a_shape = broadcast_shapes(*(np.shape(entries[p][1]) for p in advanced),
                                   op="indexing")
        index_dtype = _index_dtype([v for _, v in entries if isinstance(v, Tracer)], shape)
        coords: list[tuple[Any, tuple[int, ...], int]] = []  # (array, its dims in B, axis)
        layout: list[tuple[str, int] | None] = []  # per entry: ("A"|"S"|"R", k) or None (new)
        s_sizes: list[int] = []
        r_axes: list[int] = []
        axis = 0
        for kind, value in entries:
            if kind == "new":
                layout.append(None)
                continue
            size = shape[axis]
            if kind != "slice":  # ints and arrays: broadcast together, aligned on the right
                value = _wrapped(value, size, index_dtype, wrap)
                ndim = get_aval(value).ndim
                coords.append((value, tuple(range(len(a_shape) - ndim, len(a_shape))), axis))
                layout.append(("A", 0))
            elif value.indices(size) != (0, size, 1):  # a proper slice: one coordinate per step
                positions = np.arange(size)[value].astype(index_dtype)
                coords.append((positions, (len(a_shape) + len(s_sizes),), axis))
                layout.append(("S", len(s_sizes)))
                s_sizes.append(len(positions))
            else:  # the whole axis: left to the primitive
                layout.append(("R", len(r_axes)))
                r_axes.append(axis)
            axis += 1
        self.batch_shape = tuple(a_shape) + tuple(s_sizes)
        self.axes = tuple(a for _, _, a in coords)
        self.indices = _stack(coords, self.batch_shape, index_dtype)
        self.gathered_shape = self.batch_shape + tuple(shape[a] for a in r_axes)
        # numpy's rule: the A block replaces the advanced indices if they are adjacent,
        # else it goes in front.
        n_a, n_b = len(a_shape), len(self.batch_shape)
        adjacent = not advanced or advanced[-1] - advanced[0] == len(advanced) - 1
        order: list[int | None] = [] if adjacent else list(range(n_a))
        for p, where in enumerate(layout):
            if where is None:
                order.append(None)
            elif where[0] == "A":
                if adjacent and p == advanced[0]:
                    order += range(n_a)
            else:
                order.append(where[1] + (n_a if where[0] == "S" else n_b))
        self.shape = tuple(1 if d is None else self.gathered_shape[d] for d in order)
        self.perm = [d for d in order if d is not None]

    def to_numpy_layout(self, y: Any) -> Any:
        """The primitive's ``B + R`` result, rearranged into numpy's result."""
        if self.perm != sorted(self.perm):
            y = lax_shape.transpose(y, self.perm)
        return lax_shape.reshape(y, self.shape) if get_aval(y).shape != self.shape else y

    def to_primitive_layout(self, v: Any) -> Any:
        """Updates in numpy's result layout (already that shape), rearranged to ``B + R``."""
        moved_shape = [self.gathered_shape[d] for d in self.perm]
        if get_aval(v).shape != tuple(moved_shape):
            v = lax_shape.reshape(v, moved_shape)
        if self.perm != sorted(self.perm):
            v = lax_shape.transpose(v, [int(i) for i in np.argsort(self.perm)])
        return v


def _wrapped(value: Any, size: int, index_dtype: np.dtype, wrap: bool) -> Any:
    """An index (array) with negative entries counted from the end (``wrap``), as index_dtype."""
    if not isinstance(value, Tracer):
        value = np.asarray(value, dtype=np.int64)
        value = np.where(value < 0, value + size, value) if wrap else value
        # Out-of-bounds stays out of bounds (-1 or size) when narrowed to index_dtype.
        return np.clip(value, -1, size).astype(index_dtype)
    unsigned = dtypes.is_unsigned(value.dtype)
    value = cast(value, index_dtype)
    if not wrap or unsigned:
        return value
    shape = get_aval(value).shape
    return lax_ew.select(lax_ew.lt(value, lax_shape.full(shape, 0, index_dtype)),
                         lax_ew.add(value, lax_shape.full(shape, size, index_dtype)), value)


def _stack(coords: list[tuple[Any, tuple[int, ...], int]], batch_shape: tuple[int, ...],
           index_dtype: np.dtype) -> Any:
    """The coordinate arrays broadcast to ``batch_shape`` and stacked on a last axis."""
    if all(not isinstance(c, Tracer) for c, _, _ in coords):  # all static: one constant
        cols = []
        for c, dims, _ in coords:
            aligned = [1] * len(batch_shape)
            for k, d in enumerate(dims):
                aligned[d] = np.shape(c)[k]
            cols.append(np.broadcast_to(np.reshape(c, aligned), batch_shape))
        stacked = np.stack(cols, axis=-1) if cols else np.zeros((*batch_shape, 0))
        return Array(stacked.astype(index_dtype))
    out_shape = (*batch_shape, 1)
    cols = [lax_shape.broadcast_in_dim(c if isinstance(c, Tracer) else Array(c), out_shape, dims)
            for c, dims, _ in coords]
    return lax_shape.concatenate(cols, len(batch_shape))


# --- x[idx] and x.at[idx].get() ---------------------------------------------------------------

def getitem(x: Any, idx: Any) -> Any:
    """``x[idx]`` with numpy's semantics and JAX's conventions (see the module docstring).

    >>> import fgrad.numpy as fnp
    >>> getitem(fnp.arange(6).reshape(2, 3), (slice(None), fnp.array([2, 0])))
    Array([[2, 0],
           [5, 3]], dtype=int32)
    """
    return _take(x, idx, "clip", None, True)


def _take(x: Any, idx: Any, mode: str, fill_value: Any, wrap: bool) -> Any:
    x = asarray_arg(x, "indexing")
    entries, inserted = _parse(idx, get_aval(x).shape)
    if inserted:
        x = lax_shape.expand_dims(x, inserted)
    if mode == "clip":
        if not any(kind == "array" for kind, _ in entries):
            return _basic(x, entries, wrap)
        x, entries = _apply_static(x, entries, ints=False)  # slices now; the grid has none
    aval = get_aval(x)
    grid = _Grid(aval.shape, entries, wrap)
    if int(np.prod(grid.shape)) == 0:  # nothing to read (even from an empty axis), as in JAX
        zero = Array(np.zeros((), aval.dtype), aval.weak_type)
        return lax_shape.broadcast_in_dim(zero, grid.shape, ())
    _check_gather_axes(aval.shape, grid)
    y = lax_ix.gather(x, grid.indices, axes=grid.axes, mode=mode, fill_value=fill_value)
    return grid.to_numpy_layout(y)


def _check_gather_axes(shape: Sequence[int], grid: _Grid) -> None:
    if int(np.prod(grid.batch_shape)) > 0:
        for a in grid.axes:
            if shape[a] == 0:
                raise IndexError(f"index is out of bounds for axis {a} with size 0")


# --- x.at[idx] -------------------------------------------------------------------------------

def _scatter_update(x: Any, idx: Any, values: Any, scatter: Callable[..., Any],
                    mode: Any, wrap: bool) -> Any:
    """``x[idx] (op)= values`` as a new array: promote, scatter, cast back to x's type."""
    x = asarray_arg(x, "at[]")
    aval = get_aval(x)
    if (isinstance(values, int) and not isinstance(values, bool) and dtypes.is_int(aval.dtype)
            and np.iinfo(aval.dtype).min <= values <= np.iinfo(aval.dtype).max):
        values = Array(np.asarray(values, aval.dtype))  # an int that fits keeps x's int type
    entries, inserted = _parse(idx, aval.shape)
    xe = lax_shape.expand_dims(x, inserted) if inserted else x
    grid = _Grid(get_aval(xe).shape, entries, wrap)
    if int(np.prod(grid.shape)) == 0:
        return x  # nothing to update (and nothing to broadcast the values against)
    xp, vp = promote_dtypes(xe, values, op="at[]")
    if get_aval(xp).dtype != aval.dtype:
        warnings.warn(f"at[]: update values of dtype {get_aval(vp).dtype} cannot be safely cast "
                      f"to the array's dtype {aval.dtype}; the result is cast back to "
                      f"{aval.dtype} (JAX warns the same and plans to make this an error)",
                      FutureWarning, stacklevel=4)
    updates = grid.to_primitive_layout(broadcast_to_shape(vp, grid.shape, op="at[]"))
    out = scatter(xp, grid.indices, updates, axes=grid.axes, mode=mode)
    if inserted:
        out = lax_shape.squeeze(out, inserted)
    return cast(out, aval.dtype, aval.weak_type)


class _IndexUpdateRef:
    """``x.at[idx]``: methods return a copy of ``x`` updated at ``idx``.

    ``mode`` is ``None``/``"drop"``/``"fill"`` (skip out-of-bounds updates; for
    ``get``: clamp, or fill with ``"fill"``) or ``"clip"``.
    ``indices_are_sorted`` and ``unique_indices`` are accepted for JAX
    compatibility; they do not change the result.
    """

    __slots__ = ("array", "index")

    def __init__(self, array: Any, index: Any) -> None:
        self.array = array
        self.index = index

    def __repr__(self) -> str:
        return f"_IndexUpdateRef({self.array!r}, {self.index!r})"

    def get(self, *, indices_are_sorted: bool = False, unique_indices: bool = False,
            mode: Any = None, fill_value: Any = None, wrap_negative_indices: bool = True) -> Any:
        """``x[idx]``; ``mode="fill"`` returns ``fill_value`` (default NaN) out of bounds."""
        gather_mode = lax_ix.gather_mode(mode, "at[].get")
        return _take(self.array, self.index, gather_mode, fill_value, wrap_negative_indices)

    def _update(self, values: Any, scatter: Callable[..., Any], mode: Any,
                wrap: bool) -> Any:
        return _scatter_update(self.array, self.index, values, scatter, mode, wrap)

    def set(self, values: Any, *, indices_are_sorted: bool = False,  # noqa: A003
            unique_indices: bool = False, mode: Any = None,
            wrap_negative_indices: bool = True) -> Any:
        """``x[idx] = values``; with repeated indices the last value wins."""
        return self._update(values, lax_ix.scatter, mode, wrap_negative_indices)

    def add(self, values: Any, *, indices_are_sorted: bool = False,
            unique_indices: bool = False, mode: Any = None,
            wrap_negative_indices: bool = True) -> Any:
        """``x[idx] += values``; repeated indices accumulate."""
        return self._update(values, lax_ix.scatter_add, mode, wrap_negative_indices)

    def subtract(self, values: Any, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode: Any = None,
                 wrap_negative_indices: bool = True) -> Any:
        """``x[idx] -= values``."""
        negated = lax_ew.neg(asarray_arg(values, "at[].subtract"))
        return self._update(negated, lax_ix.scatter_add, mode, wrap_negative_indices)

    def multiply(self, values: Any, *, indices_are_sorted: bool = False,
                 unique_indices: bool = False, mode: Any = None,
                 wrap_negative_indices: bool = True) -> Any:
        """``x[idx] *= values``; repeated indices multiply together."""
        return self._update(values, lax_ix.scatter_mul, mode, wrap_negative_indices)

    mul = multiply

    def divide(self, values: Any, *, indices_are_sorted: bool = False,
               unique_indices: bool = False, mode: Any = None,
               wrap_negative_indices: bool = True) -> Any:
        """``x[idx] /= values`` (as in JAX: ``x / ones.at[idx].multiply(values)``)."""
        from fgrad.numpy._ufuncs import divide
        ones = lax_shape.full_like(asarray_arg(self.array), 1)
        return divide(self.array, _scatter_update(ones, self.index, values, lax_ix.scatter_mul,
                                                  mode, wrap_negative_indices))

    def power(self, values: Any, *, indices_are_sorted: bool = False,
              unique_indices: bool = False, mode: Any = None,
              wrap_negative_indices: bool = True) -> Any:
        """``x[idx] **= values`` (as in JAX: ``x ** ones.at[idx].multiply(values)``)."""
        from fgrad.numpy._ufuncs import power
        ones = lax_shape.full_like(asarray_arg(self.array), 1)
        return power(self.array, _scatter_update(ones, self.index, values, lax_ix.scatter_mul,
                                                 mode, wrap_negative_indices))

    def min(self, values: Any, *, indices_are_sorted: bool = False,  # noqa: A003
            unique_indices: bool = False, mode: Any = None,
            wrap_negative_indices: bool = True) -> Any:
        """``x[idx] = minimum(x[idx], values)``, combining repeated indices."""
        return self._update(values, lax_ix.scatter_min, mode, wrap_negative_indices)

    def max(self, values: Any, *, indices_are_sorted: bool = False,  # noqa: A003
            unique_indices: bool = False, mode: Any = None,
            wrap_negative_indices: bool = True) -> Any:
        """``x[idx] = maximum(x[idx], values)``, combining repeated indices."""
        return self._update(values, lax_ix.scatter_max, mode, wrap_negative_indices)


class _IndexUpdateHelper:
    """The ``x.at`` object: ``x.at[idx]`` is an ``_IndexUpdateRef``."""

    __slots__ = ("array",)

    def __init__(self, array: Any) -> None:
        self.array = array

    def __getitem__(self, index: Any) -> _IndexUpdateRef:
        return _IndexUpdateRef(self.array, index)

    def __repr__(self) -> str:
        return f"_IndexUpdateHelper({self.array!r})"


def index_update_helper(x: Any) -> _IndexUpdateHelper:
    """``x.at``: ``index_update_helper(x)[idx].set(v)`` is ``x.at[idx].set(v)``."""
    return _IndexUpdateHelper(x)


# --- public numpy functions ----------------------------------------------------------------

def take(a: Any, indices: Any, axis: int | None = None, mode: str | None = None,
         fill_value: Any = None, unique_indices: bool = False,
         indices_are_sorted: bool = False) -> Any:
    """Elements of ``a`` at ``indices`` along ``axis`` (the flattened ``a`` if None).

    ``mode``: ``None``/``"fill"`` (default: out-of-bounds gives ``fill_value``,
    NaN for floats), ``"clip"`` (clamp; negative indices clamp to 0),
    ``"wrap"`` (indices modulo the axis size).

    >>> import fgrad.numpy as fnp
    >>> take(fnp.array([1.0, 2.0, 3.0]), fnp.array([2, -1, 5]))
    Array([ 3.,  3., nan], dtype=float32)
    """
    a = asarray_arg(a, "take")
    indices = asarray_arg(indices, "take")
    if axis is None:
        a = lax_shape.reshape(a, (get_aval(a).size,))
        axis = 0
    axis = normalize_axis(axis, get_aval(a).ndim, "take")
    size = get_aval(a).shape[axis]
    if mode is None or mode == "fill":
        gather_mode, wrap = "fill", True
    elif mode == "clip":
        gather_mode, wrap = "clip", False
    elif mode == "wrap":
        gather_mode, wrap = "clip", True
        if size:
            indices = lax_ew.rem(indices, lax_shape.full_like(indices, size))
    elif mode == "raise":
        raise NotImplementedError("take: mode='raise' is not supported (fgrad cannot raise "
                                  "on traced values); use 'fill', 'clip' or 'wrap'")
    else:
        raise ValueError(f"take: invalid mode {mode!r}; expected 'fill', 'clip' or 'wrap'")
    if size == 0 and get_aval(indices).size:
        raise IndexError("Cannot do a non-empty take() from an empty axis.")
    return _take(a, (_FULL,) * axis + (indices,), gather_mode, fill_value, wrap)


def _along_axis_index(arr_shape: Sequence[int], indices: Any, axis: int) -> tuple[Any, ...]:
    """``indices`` on ``axis`` and an ``arange`` on every other axis, ready to broadcast."""
    rank = len(arr_shape)
    grid: list[Any] = []
    for i in range(rank):
        if i == axis:
            grid.append(indices)
        else:
            grid.append(np.arange(arr_shape[i]).reshape([-1 if j == i else 1
                                                         for j in range(rank)]))
    return tuple(grid)


def take_along_axis(arr: Any, indices: Any, axis: int | None, mode: str | None = None,
                    fill_value: Any = None) -> Any:
    """``arr`` read at ``indices`` along ``axis``, other axes matched elementwise.

    ``indices`` has ``arr``'s rank; its shape broadcasts with ``arr``'s apart
    from ``axis``. Out-of-bounds indices fill (NaN for floats) unless
    ``mode="clip"``.

    >>> import fgrad.numpy as fnp
    >>> take_along_axis(fnp.array([[10.0, 20.0], [30.0, 40.0]]), fnp.array([[1], [0]]), 1)
    Array([[20.],
           [30.]], dtype=float32)
    """
    arr = asarray_arg(arr, "take_along_axis")
    indices = asarray_arg(indices, "take_along_axis")
    if axis is None:
        if get_aval(indices).ndim != 1:
            raise ValueError("take_along_axis: when axis=None, indices must be 1-d, got "
                             f"{get_aval(indices).str_short()}")
        arr, axis = lax_shape.reshape(arr, (get_aval(arr).size,)), 0
    shape, idx_aval = get_aval(arr).shape, get_aval(indices)
    if idx_aval.ndim != len(shape):
        raise ValueError(f"take_along_axis: indices and arr must have the same number of "
                         f"dimensions; {idx_aval.ndim} vs. {len(shape)}")
    if not dtypes.is_int(idx_aval.dtype):
        raise TypeError(f"take_along_axis: indices must be integers, got {idx_aval.str_short()}")
    axis = normalize_axis(axis, len(shape), "take_along_axis")
    if shape[axis] == 0:
        out_shape = broadcast_shapes(idx_aval.shape, shape[:axis] + (1,) + shape[axis + 1:],
                                     op="take_along_axis")
        return lax_shape.full(out_shape, 0, get_aval(arr).dtype)
    gather_mode = lax_ix.gather_mode("fill" if mode is None else mode, "take_along_axis")
    return _take(arr, _along_axis_index(shape, indices, axis), gather_mode, fill_value, True)


def put_along_axis(arr: Any, indices: Any, values: Any, axis: int | None,
                   inplace: bool = True, mode: str | None = None) -> Any:
    """``arr`` with ``values`` written at ``indices`` along ``axis`` (``inplace=False`` only).

    fgrad arrays are immutable, so, as in JAX, ``inplace`` must be False.
    """
    if inplace:
        raise ValueError("put_along_axis: fgrad arrays are immutable; pass inplace=False to "
                         "get an updated copy")
    arr = asarray_arg(arr, "put_along_axis")
    indices = asarray_arg(indices, "put_along_axis")
    original_shape = get_aval(arr).shape
    if axis is None:
        arr, axis = lax_shape.reshape(arr, (get_aval(arr).size,)), 0
    shape = get_aval(arr).shape
    if get_aval(indices).ndim != len(shape):
        raise ValueError(f"put_along_axis: indices and arr must have the same number of "
                         f"dimensions; {get_aval(indices).ndim} vs. {len(shape)}")
    axis = normalize_axis(axis, len(shape), "put_along_axis")
    out = index_update_helper(arr)[_along_axis_index(shape, indices, axis)].set(values,
                                                                               mode=mode)
    return lax_shape.reshape(out, original_shape) if shape != original_shape else out


def _int_arrays(arrays: Sequence[np.ndarray]) -> tuple[Any, ...]:
    return tuple(Array(np.asarray(a).astype(dtypes.default_int_dtype())) for a in arrays)


def diag_indices(n: int, ndim: int = 2) -> tuple[Any, ...]:
    """Indices of the main diagonal of an ``n x ... x n`` array (``ndim`` copies of arange(n))."""
    if n < 0 or ndim < 0:
        raise ValueError(f"diag_indices: n and ndim must be non-negative, got n={n}, "
                         f"ndim={ndim}")
    return _int_arrays(np.diag_indices(n, ndim))


def tril_indices(n: int, k: int = 0, m: int | None = None) -> tuple[Any, Any]:
    """Row and column indices of the lower triangle of an ``n x m`` array (diagonal offset k)."""
    return _int_arrays(np.tril_indices(n, k, m))  # type: ignore[return-value]


def triu_indices(n: int, k: int = 0, m: int | None = None) -> tuple[Any, Any]:
    """Row and column indices of the upper triangle of an ``n x m`` array (diagonal offset k)."""
    return _int_arrays(np.triu_indices(n, k, m))  # type: ignore[return-value]


__all__ = ["take", "take_along_axis", "put_along_axis", "diag_indices", "tril_indices",
           "triu_indices"]
