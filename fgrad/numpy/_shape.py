"""Shape manipulation with numpy semantics: reshape, stack, split, pad, roll, flip ...

Every function here normalizes numpy-style arguments (negative axes, ``-1``
in shapes, ``None`` meaning "all axes" or "flatten", Python scalars, lists,
numpy arrays) and then calls the strict shape primitives of
``fgrad.primitives.shape``. Nothing here needs a rule of its own: the
derivative of ``jnp.roll`` is that of the ``slice`` and ``concatenate`` it is
built from.

Conventions (those of ``jax.numpy``):

* results are always fgrad values; weak types survive (``fnp.stack([1.0, 2.0])``
  is a weakly typed float32 array), and functions that join several arrays
  (``concatenate``, ``stack``, ...) promote their dtypes as JAX does;
* sizes, shifts, repeats and pad widths must be static Python/numpy ints
  (a traced value raises a concretization error naming the fix);
* ``pad`` supports the modes ``constant``, ``edge``, ``reflect``,
  ``symmetric`` and ``wrap``, built from slices, reversals and concatenation.
"""

from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import get_aval
from fgrad.core.trace import Tracer
from fgrad.numpy._util import (
    asarray_arg,
    broadcast_to_shape,
    cast,
    normalize_axes,
    normalize_axis,
    promote_dtypes,
)
from fgrad.numpy._util import broadcast_arrays as _broadcast_arrays
from fgrad.numpy._util import broadcast_shapes as _broadcast_shapes
from fgrad.primitives import elementwise as lax_ew
from fgrad.primitives import shape as lax


def _index_tuple(x: Any) -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple of Python ints (traced values raise)."""
    if isinstance(x, (Array, Tracer, np.ndarray, np.generic)):
        if get_aval(x).ndim == 0:
            return (operator.index(x),)  # a tracer raises, naming static_argnums as the fix
        x = np.asarray(x).tolist()
    if isinstance(x, (list, tuple)):
        return tuple(operator.index(v) for v in x)
    return (operator.index(x),)


def _shape_of(x: Any) -> tuple[int, ...]:
    return get_aval(x).shape


def _check_order(order: str, op: str) -> None:
    if order != "C":
        raise NotImplementedError(f"{op}: only order='C' is supported, got order={order!r}")


# --- reshaping --------------------------------------------------------------------------

def _infer_shape(old: tuple[int, ...], new: tuple[int, ...], op: str) -> tuple[int, ...]:
    size = int(np.prod(old, dtype=np.int64))
    unknown = [i for i, d in enumerate(new) if d == -1]
    known = int(np.prod([d for d in new if d != -1], dtype=np.int64))
    bad = (len(unknown) > 1 or any(d < -1 for d in new)
           or (unknown and (known == 0 or size % known)) or (not unknown and known != size))
    if bad:
        raise TypeError(f"{op}: cannot reshape an array of shape {old} (size {size}) into "
                        f"shape {new}" + (" (at most one -1 is allowed)" if len(unknown) > 1
                                          else ""))
    if unknown:
        return tuple(size // known if d == -1 else d for d in new)
    return new


def reshape(a: Any, shape: int | Sequence[int], order: str = "C") -> Any:
    """``a`` with a new shape (row-major); one entry of ``shape`` may be -1.

    >>> import fgrad.numpy as fnp
    >>> fnp.reshape(fnp.array([1, 2, 3, 4]), (2, -1)).shape
    (2, 2)
    """
    _check_order(order, "reshape")
    a = asarray_arg(a, "reshape")
    old = _shape_of(a)
    new = _infer_shape(old, _index_tuple(shape), "reshape")
    return a if new == old else lax.reshape(a, new)


def ravel(a: Any, order: str = "C") -> Any:
    """``a`` flattened to one dimension (row-major)."""
    _check_order(order, "ravel")
    a = asarray_arg(a, "ravel")
    aval = get_aval(a)
    return a if aval.ndim == 1 else lax.reshape(a, (aval.size,))


def transpose(a: Any, axes: Sequence[int] | None = None) -> Any:
    """Permute the axes of ``a``; ``axes=None`` reverses them."""
    a = asarray_arg(a, "transpose")
    ndim = get_aval(a).ndim
    if axes is None:
        perm = tuple(range(ndim))[::-1]
    else:
        perm = tuple(normalize_axis(ax, ndim, "transpose") for ax in _index_tuple(axes))
        if sorted(perm) != list(range(ndim)):
            raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of the "
                             f"axes of an array of shape {_shape_of(a)}")
    return a if perm == tuple(range(ndim)) else lax.transpose(a, perm)


def swapaxes(a: Any, axis1: int, axis2: int) -> Any:
    """``a`` with axes ``axis1`` and ``axis2`` interchanged."""
    a = asarray_arg(a, "swapaxes")
    ndim = get_aval(a).ndim
    perm = list(range(ndim))
    i, j = normalize_axis(axis1, ndim, "swapaxes"), normalize_axis(axis2, ndim, "swapaxes")
    perm[i], perm[j] = perm[j], perm[i]
    return transpose(a, perm)


def moveaxis(a: Any, source: int | Sequence[int], destination: int | Sequence[int]) -> Any:
    """Move axes ``source`` to positions ``destination``; the others keep their order."""
    a = asarray_arg(a, "moveaxis")
    ndim = get_aval(a).ndim
    src = [normalize_axis(s, ndim, "moveaxis") for s in _index_tuple(source)]
    dst = [normalize_axis(d, ndim, "moveaxis") for d in _index_tuple(destination)]
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source} and destination {destination} must "
                         "have the same number of elements")
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: repeated axis in source {source} or destination "
                         f"{destination}")
    perm = [i for i in range(ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        perm.insert(d, s)
    return transpose(a, perm)


def expand_dims(a: Any, axis: int | Sequence[int]) -> Any:
    """Insert size-1 axes at positions ``axis`` of the result."""
    a = asarray_arg(a, "expand_dims")
    shape = list(_shape_of(a))
    axes = _index_tuple(axis)
    out_ndim = len(shape) + len(axes)
    positions = sorted(normalize_axis(ax, out_ndim, "expand_dims") for ax in axes)
    if len(set(positions)) != len(positions):
        raise ValueError(f"expand_dims: repeated axis in {axis}")
    for p in positions:
        shape.insert(p, 1)
    return lax.reshape(a, shape)


def squeeze(a: Any, axis: int | Sequence[int] | None = None) -> Any:
    """Remove size-1 axes: all of them (``axis=None``) or those listed."""
    a = asarray_arg(a, "squeeze")
    shape = _shape_of(a)
    if axis is None:
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    else:
        axes = normalize_axes(_index_tuple(axis), len(shape), "squeeze")
        if any(shape[i] != 1 for i in axes):
            raise ValueError(f"squeeze: cannot select an axis to squeeze out which has size "
                             f"not equal to one, got shape={shape} and axis={axis}")
    return lax.squeeze(a, axes) if axes else a


# --- broadcasting --------------------------------------------------------------------------

def broadcast_shapes(*shapes: int | Sequence[int]) -> tuple[int, ...]:
    """The shape numpy broadcasting gives to arrays of ``shapes``."""
    return _broadcast_shapes(*(_index_tuple(s) for s in shapes), op="broadcast_shapes")


def broadcast_to(array: Any, shape: int | Sequence[int]) -> Any:
    """``array`` broadcast to ``shape`` (numpy rules: new axes in front, size-1 axes stretch)."""
    array = asarray_arg(array, "broadcast_to")
    shape = _index_tuple(shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"broadcast_to: negative dimensions are not allowed, got {shape}")
    return broadcast_to_shape(array, shape, "broadcast_to")


def broadcast_arrays(*args: Any) -> list[Any]:
    """All ``args`` broadcast to their common shape (dtypes are kept)."""
    arrays = [asarray_arg(x, "broadcast_arrays") for x in args]
    return _broadcast_arrays(*arrays, op="broadcast_arrays")


# --- joining --------------------------------------------------------------------------------

def _as_list(arrays: Any, op: str) -> list[Any]:
    """A sequence of array-likes; an array stands for the list of its slices along axis 0."""
    if isinstance(arrays, (Array, Tracer, np.ndarray)):
        a = asarray_arg(arrays, op)
        if get_aval(a).ndim == 0:
            raise ValueError(f"{op}: got a 0-d array where a sequence of arrays was expected")
        n = _shape_of(a)[0]
        return [lax.squeeze(lax.slice_in_dim(a, i, i + 1, 1, 0), (0,)) for i in range(n)]
    return [asarray_arg(x, op) for x in arrays]


def _join_dtypes(arrays: list[Any], dtype: Any) -> list[Any]:
    if dtype is not None:
        dtype = dtypes.canonicalize_dtype(dtype)
        return [cast(x, dtype) for x in arrays]
    return promote_dtypes(*arrays)


def concatenate(arrays: Any, axis: int | None = 0, dtype: Any = None) -> Any:
    """Join arrays along an existing axis; ``axis=None`` flattens them first.

    >>> import fgrad.numpy as fnp
    >>> fnp.concatenate([fnp.zeros(2), fnp.ones(3)]).shape
    (5,)
    """
    arrays = _as_list(arrays, "concatenate")
    if not arrays:
        raise ValueError("concatenate: need at least one array to concatenate")
    if axis is None:
        arrays = [ravel(x) for x in arrays]
        axis = 0
    ndim = get_aval(arrays[0]).ndim
    if ndim == 0:
        raise ValueError("concatenate: zero-dimensional arrays cannot be concatenated")
    if any(get_aval(x).ndim != ndim for x in arrays):
        shown = ", ".join(str(_shape_of(x)) for x in arrays)
        raise ValueError(f"concatenate: all arrays must have the same number of dimensions, "
                         f"got shapes {shown}")
    axis = normalize_axis(axis, ndim, "concatenate")
    arrays = _join_dtypes(arrays, dtype)
    return arrays[0] if len(arrays) == 1 else lax.concatenate(arrays, axis)


def stack(arrays: Any, axis: int = 0, out: None = None, dtype: Any = None) -> Any:
    """Join arrays of one shape along a new axis ``axis``."""
    if out is not None:
        raise NotImplementedError("stack: the 'out' argument is not supported")
    arrays = _as_list(arrays, "stack")
    if not arrays:
        raise ValueError("stack: need at least one array to stack")
    shapes = {_shape_of(x) for x in arrays}
    if len(shapes) != 1:
        shown = ", ".join(str(_shape_of(x)) for x in arrays)
        raise ValueError(f"stack: all input arrays must have the same shape, got {shown}")
    axis = normalize_axis(axis, len(shapes.pop()) + 1, "stack")
    arrays = _join_dtypes(arrays, dtype)
    expanded = [expand_dims(x, axis) for x in arrays]
    return expanded[0] if len(expanded) == 1 else lax.concatenate(expanded, axis)


def vstack(tup: Any, dtype: Any = None) -> Any:
    """Stack arrays row-wise: 1-d arrays become rows, then ``concatenate(axis=0)``."""
    return concatenate([atleast_2d(x) for x in _as_list(tup, "vstack")], 0, dtype)


def hstack(tup: Any, dtype: Any = None) -> Any:
    """Stack arrays column-wise: along axis 1, or axis 0 for 1-d arrays."""
    arrays = [atleast_1d(x) for x in _as_list(tup, "hstack")]
    axis = 0 if arrays and get_aval(arrays[0]).ndim == 1 else 1
    return concatenate(arrays, axis, dtype)


def dstack(tup: Any, dtype: Any = None) -> Any:
    """Stack arrays depth-wise (along axis 2), after ``atleast_3d``."""
    return concatenate([atleast_3d(x) for x in _as_list(tup, "dstack")], 2, dtype)


def column_stack(tup: Any) -> Any:
    """Stack 1-d arrays as the columns of a 2-d array (2-d arrays are taken as they are)."""
    arrays = [transpose(atleast_2d(x)) if get_aval(x).ndim < 2 else x
              for x in _as_list(tup, "column_stack")]
    return concatenate(arrays, 1)


# --- splitting --------------------------------------------------------------------------------

def _split(op: str, ary: Any, indices_or_sections: Any, axis: int) -> list[Any]:
    ary = asarray_arg(ary, op)
    shape = _shape_of(ary)
    axis = normalize_axis(axis, len(shape), op)
    size = shape[axis]
    if isinstance(indices_or_sections, (list, tuple)) or np.ndim(indices_or_sections) > 0:
        # Split points behave like Python slice bounds (negative counts from the end,
        # out-of-range clamps), as in numpy.
        points = [0, *_index_tuple(indices_or_sections), size]
        bounds = [slice(lo, hi).indices(size)[:2] for lo, hi in zip(points, points[1:])]
        bounds = [(lo, max(lo, hi)) for lo, hi in bounds]
    else:
        sections = operator.index(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"{op}: number of sections must be larger than 0, got {sections}")
        each, extra = divmod(size, sections)
        if extra and op == "split":
            raise ValueError(f"split: array split does not result in an equal division: an "
                             f"axis of size {size} into {sections} sections")
        sizes = [each + 1] * extra + [each] * (sections - extra)
        starts = np.cumsum([0, *sizes])
        bounds = [(int(lo), int(hi)) for lo, hi in zip(starts, starts[1:])]
    return [lax.slice_in_dim(ary, lo, hi, 1, axis) for lo, hi in bounds]


def split(ary: Any, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Any]:
    """Split into equal sections (an int) or at the given indices (a sequence)."""
    return _split("split", ary, indices_or_sections, axis)


def array_split(ary: Any, indices_or_sections: int | Sequence[int], axis: int = 0) -> list[Any]:
    """Like ``split``, but an int need not divide the axis: the first sections get one more."""
    return _split("array_split", ary, indices_or_sections, axis)


# --- repeating ------------------------------------------------------------------------------

def tile(A: Any, reps: int | Sequence[int]) -> Any:
    """``A`` repeated ``reps[i]`` times along axis i (``reps`` padded with leading 1s)."""
    A = asarray_arg(A, "tile")
    reps = _index_tuple(reps)
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: reps must be non-negative, got {reps}")
    shape = _shape_of(A)
    ndim = max(len(shape), len(reps))
    shape = (1,) * (ndim - len(shape)) + shape
    reps = (1,) * (ndim - len(reps)) + reps
    if all(r == 1 for r in reps):
        return lax.reshape(A, shape) if shape != _shape_of(A) else A
    # Broadcast to (r0, n0, r1, n1, ...), then merge each (r_i, n_i) pair.
    A = lax.reshape(A, shape)
    pairs = [d for r, n in zip(reps, shape) for d in (r, n)]
    tiled = lax.broadcast_in_dim(A, pairs, tuple(range(1, 2 * ndim, 2)))
    return lax.reshape(tiled, [r * n for r, n in zip(reps, shape)])


def _runs(index: np.ndarray) -> list[tuple[str, int, int]]:
    """Cut an index sequence into ("slice", lo, hi) and ("repeat", i, count) pieces."""
    pieces: list[tuple[str, int, int]] = []
    k = 0
    while k < len(index):
        j = k
        while j + 1 < len(index) and index[j + 1] == index[k]:
            j += 1
        if j > k:
            pieces.append(("repeat", int(index[k]), j - k + 1))
        elif pieces and pieces[-1][0] == "slice" and pieces[-1][2] == index[k]:
            pieces[-1] = ("slice", pieces[-1][1], int(index[k]) + 1)
        else:
            pieces.append(("slice", int(index[k]), int(index[k]) + 1))
        k = j + 1
    return pieces


def repeat(a: Any, repeats: int | Sequence[int], axis: int | None = None,
           total_repeat_length: int | None = None) -> Any:
    """Repeat each element ``repeats`` times (an int, or one static count per element).

    ``axis=None`` flattens first. With ``total_repeat_length`` the result is cut to that
    length, or filled up with the last element, as in ``jax.numpy.repeat``.
    """
    a = asarray_arg(a, "repeat")
    if axis is None:
        a, axis = ravel(a), 0
    shape = _shape_of(a)
    counts = np.asarray(repeats)  # a traced array raises: counts decide the output shape
    if counts.dtype.kind not in "iu" or np.any(counts < 0) or counts.ndim > 1:
        raise ValueError(f"repeat: repeats must be non-negative integers, got {repeats}")
    if not shape:  # a scalar: only a single count makes sense
        if counts.size != 1:
            raise ValueError("repeat: a scalar can only be repeated by a single count")
        n = int(counts.reshape(())) if total_repeat_length is None else total_repeat_length
        return lax.broadcast_in_dim(a, (n,), ())
    axis = normalize_axis(axis, len(shape), "repeat")
    n = shape[axis]
    if counts.ndim == 0 and total_repeat_length is None:
        # The fast path: broadcast a new axis after `axis`, then merge the two.
        r = int(counts)
        grown = [*shape[:axis + 1], r, *shape[axis + 1:]]
        out = lax.broadcast_in_dim(a, grown, tuple(i for i in range(len(grown))
                                                   if i != axis + 1))
        return lax.reshape(out, [*shape[:axis], n * r, *shape[axis + 1:]])
    try:
        counts = np.broadcast_to(counts, (n,))
    except ValueError:
        raise ValueError(f"repeat: got {counts.size} repeats for an axis of size {n}") from None
    index = np.repeat(np.arange(n), counts)
    if total_repeat_length is not None:  # cut, or fill up with the last element
        index = np.concatenate([index[:total_repeat_length],
                                np.full(max(total_repeat_length - len(index), 0),
                                        n - 1, dtype=index.dtype)])
    if len(index) == 0:
        return lax.slice_in_dim(a, 0, 0, 1, axis)
    parts = []
    for kind, lo, hi in _runs(index):
        if kind == "slice":
            parts.append(lax.slice_in_dim(a, lo, hi, 1, axis))
        else:  # one element `lo`, `hi` times
            one = lax.slice_in_dim(a, lo, lo + 1, 1, axis)
            target = [*shape[:axis], hi, *shape[axis + 1:]]
            parts.append(lax.broadcast_in_dim(one, target, tuple(range(len(shape)))))
    return parts[0] if len(parts) == 1 else lax.concatenate(parts, axis)


# --- padding --------------------------------------------------------------------------------

_PAD_KWARGS = {"constant": {"constant_values"}, "edge": set(), "wrap": set(),
               "reflect": {"reflect_type"}, "symmetric": {"reflect_type"}}


def _pairs(values: Any, ndim: int, name: str) -> np.ndarray:
    """numpy's forms of ``pad_width`` as an (ndim, 2) table of (before, after).

    Accepted: ``n``, ``(n,)``, ``(before, after)``, ``((before, after),)``, one pair per axis.
    """
    arr = np.asarray(values)
    if arr.ndim < 2 and arr.size in (1, 2):
        arr = arr.reshape(1, arr.size)
    if arr.shape in ((1, 1), (1, 2), (ndim, 2)):
        return np.broadcast_to(arr, (ndim, 2))
    raise ValueError(f"pad: {name} has unsupported shape {np.shape(values)} for an array of "
                     f"rank {ndim}; valid shapes are ({ndim}, 2), (1, 2), (2,), (1,) and ()")


def _pad_constant(array: Any, widths: list[tuple[int, int]], constant_values: Any) -> Any:
    aval = get_aval(array)
    values = asarray_arg(constant_values, "pad")
    values = cast(values, aval.dtype, aval.weak_type)  # NOTE: JAX casts, even float -> int
    vshape = _shape_of(values)
    if vshape in ((), (1,), (1, 1)):
        scalar = lax.reshape(values, ()) if vshape else values
        return lax.pad(array, scalar, [(lo, hi, 0) for lo, hi in widths])
    if len(vshape) > 2 or vshape[-1] not in (1, 2):
        raise ValueError(f"pad: constant_values has unsupported shape {vshape}")
    # One (before, after) value per axis: pad one side of one axis at a time.
    table = broadcast_to_shape(values, (aval.ndim, 2), "pad")
    for axis, (lo, hi) in enumerate(widths):
        for side, width in ((0, lo), (1, hi)):
            if width:
                value = lax.reshape(lax.slice(table, (axis, side), (axis + 1, side + 1)), ())
                config = [(0, 0, 0)] * aval.ndim
                config[axis] = (width, 0, 0) if side == 0 else (0, width, 0)
                array = lax.pad(array, value, config)
    return array


def _pad_edge(array: Any, axis: int, lo: int, hi: int) -> Any:
    shape = _shape_of(array)
    n = shape[axis]
    dims = tuple(range(len(shape)))

    def edge_copies(i: int, width: int) -> Any:
        one = lax.slice_in_dim(array, i, i + 1, 1, axis)
        return lax.broadcast_in_dim(one, [*shape[:axis], width, *shape[axis + 1:]], dims)

    parts = [edge_copies(0, lo)] if lo else []
    parts += [array] + ([edge_copies(n - 1, hi)] if hi else [])
    return lax.concatenate(parts, axis)


def _pad_wrap(array: Any, axis: int, lo: int, hi: int) -> Any:
    n = _shape_of(array)[axis]
    (lo_reps, lo_rest), (hi_reps, hi_rest) = divmod(lo, n), divmod(hi, n)
    parts = [lax.slice_in_dim(array, n - lo_rest, n, 1, axis)] if lo_rest else []
    parts += [array] * (lo_reps + hi_reps + 1)
    parts += [lax.slice_in_dim(array, 0, hi_rest, 1, axis)] if hi_rest else []
    return lax.concatenate(parts, axis) if len(parts) > 1 else array


def _pad_reflect(array: Any, axis: int, lo: int, hi: int, symmetric: bool, odd: bool) -> Any:
    # Mirror repeatedly: each round copies at most one (reflected) array length, and
    # the result grows, so a width larger than the axis takes a few rounds (as numpy).
    n = _shape_of(array)[axis]
    dims = tuple(range(len(_shape_of(array))))
    skip = 0 if symmetric or n == 1 else 1  # "reflect" does not repeat the edge element
    for before, width in ((True, lo), (False, hi)):
        while width > 0:
            size = _shape_of(array)[axis]
            take = min(width, n - skip)
            width -= take
            if before:
                piece = lax.slice_in_dim(array, skip, skip + take, 1, axis)
                edge = lax.slice_in_dim(array, 0, 1, 1, axis)
            else:
                piece = lax.slice_in_dim(array, size - take - skip, size - skip, 1, axis)
                edge = lax.slice_in_dim(array, size - 1, size, 1, axis)
            piece = lax.rev(piece, (axis,))
            if odd:  # reflect the values through the edge too: 2 * edge - x
                edge = lax.broadcast_in_dim(edge, _shape_of(piece), dims)
                piece = lax_ew.sub(lax_ew.add(edge, edge), piece)
            array = lax.concatenate([piece, array] if before else [array, piece], axis)
    return array


def pad(array: Any, pad_width: Any, mode: str = "constant", **kwargs: Any) -> Any:
    """Pad ``array``; ``pad_width`` in numpy's forms (an int, a pair, one pair per axis).

    Modes: ``constant`` (``constant_values``, default 0), ``edge``, ``reflect`` and
    ``symmetric`` (``reflect_type`` "even" or "odd"), ``wrap``.

    >>> import fgrad.numpy as fnp
    >>> fnp.pad(fnp.array([1, 2, 3]), (1, 2), mode="edge").tolist()
    [1, 1, 2, 3, 3, 3]
    """
    array = asarray_arg(array, "pad")
    shape = _shape_of(array)
    if callable(mode) or mode not in _PAD_KWARGS:
        raise NotImplementedError(f"pad: mode {mode!r} is not implemented; supported modes "
                                  f"are {sorted(_PAD_KWARGS)}")
    unsupported = set(kwargs) - _PAD_KWARGS[mode]
    if unsupported:
        raise ValueError(f"pad: unsupported keyword arguments for mode {mode!r}: "
                         f"{sorted(unsupported)}")
    table = _pairs(pad_width, len(shape), "pad_width")
    if table.size and table.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be of integral type, got {pad_width}")
    if np.any(table < 0):
        raise ValueError(f"pad: pad_width can't contain negative values, got {pad_width}")
    widths = [(int(lo), int(hi)) for lo, hi in table]
    if not shape:
        return array  # nothing to pad (numpy and JAX agree)
    if mode == "constant":
        return _pad_constant(array, widths, kwargs.get("constant_values", 0))
    reflect_type = kwargs.get("reflect_type", "even")
    if reflect_type not in ("even", "odd"):
        raise ValueError(f"pad: reflect_type must be 'even' or 'odd', got {reflect_type!r}")
    for axis, (lo, hi) in enumerate(widths):
        if not (lo or hi):
            continue
        if shape[axis] == 0:
            raise ValueError(f"pad: cannot apply {mode!r} padding to the empty axis {axis} "
                             f"of an array of shape {shape}")
        if mode == "edge":
            array = _pad_edge(array, axis, lo, hi)
        elif mode == "wrap":
            array = _pad_wrap(array, axis, lo, hi)
        else:
            array = _pad_reflect(array, axis, lo, hi, mode == "symmetric",
                                 reflect_type == "odd")
    return array


# --- reversing and rotating ------------------------------------------------------------------

def flip(m: Any, axis: int | Sequence[int] | None = None) -> Any:
    """Reverse the order of elements along ``axis`` (all axes when None)."""
    m = asarray_arg(m, "flip")
    ndim = get_aval(m).ndim
    axes = normalize_axes(None if axis is None else _index_tuple(axis), ndim, "flip")
    return lax.rev(m, axes) if axes else m


def fliplr(m: Any) -> Any:
    """Reverse along axis 1 (needs at least 2 dimensions)."""
    m = asarray_arg(m, "fliplr")
    if get_aval(m).ndim < 2:
        raise ValueError(f"fliplr: the input must have at least 2 dimensions, got shape "
                         f"{_shape_of(m)}")
    return lax.rev(m, (1,))


def flipud(m: Any) -> Any:
    """Reverse along axis 0 (needs at least 1 dimension)."""
    m = asarray_arg(m, "flipud")
    if get_aval(m).ndim < 1:
        raise ValueError("flipud: the input must have at least 1 dimension, got shape ()")
    return lax.rev(m, (0,))


def roll(a: Any, shift: int | Sequence[int], axis: int | Sequence[int] | None = None) -> Any:
    """Shift elements cyclically by ``shift`` along ``axis`` (flattened when None)."""
    a = asarray_arg(a, "roll")
    shape = _shape_of(a)
    if axis is None:
        return lax.reshape(roll(ravel(a), shift, 0), shape)
    axes = [normalize_axis(ax, len(shape), "roll") for ax in _index_tuple(axis)]
    shifts = _index_tuple(shift)
    try:
        pairs = np.broadcast_arrays(np.asarray(axes), np.asarray(shifts))
    except ValueError:
        raise ValueError(f"roll: shift {shift} and axis {axis} must have broadcastable "
                         "lengths") from None
    for ax, s in zip(*(p.ravel() for p in pairs)):
        n = shape[int(ax)]
        start = (-int(s)) % n if n else 0
        if start:  # out = a[start:] followed by a[:start]
            a = lax.concatenate([lax.slice_in_dim(a, start, n, 1, int(ax)),
                                 lax.slice_in_dim(a, 0, start, 1, int(ax))], int(ax))
    return a


def rot90(m: Any, k: int = 1, axes: tuple[int, int] = (0, 1)) -> Any:
    """Rotate by 90 degrees ``k`` times, from the first towards the second of ``axes``."""
    m = asarray_arg(m, "rot90")
    ndim = get_aval(m).ndim
    if ndim < 2:
        raise ValueError(f"rot90: the input must have at least 2 dimensions, got shape "
                         f"{_shape_of(m)}")
    ax1, ax2 = (normalize_axis(ax, ndim, "rot90") for ax in axes)
    if ax1 == ax2:
        raise ValueError(f"rot90: axes must be different, got {axes}")
    k = operator.index(k) % 4
    if k == 0:
        return m
    if k == 2:
        return lax.rev(m, tuple(sorted((ax1, ax2))))
    perm = list(range(ndim))
    perm[ax1], perm[ax2] = perm[ax2], perm[ax1]
    if k == 1:
        return lax.transpose(lax.rev(m, (ax2,)), perm)
    return lax.rev(lax.transpose(m, perm), (ax2,))


# --- rank helpers --------------------------------------------------------------------------

def _atleast(op: str, arys: tuple[Any, ...], new_shape: Any) -> Any:
    out = []
    for x in arys:
        x = asarray_arg(x, op)
        shape = _shape_of(x)
        target = new_shape(shape)
        out.append(lax.reshape(x, target) if target != shape else x)
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys: Any) -> Any:
    """Each input viewed with at least 1 dimension (one array in, one out; else a list)."""
    return _atleast("atleast_1d", arys, lambda s: s if len(s) >= 1 else (1,))


def atleast_2d(*arys: Any) -> Any:
    """Each input with at least 2 dimensions: a 1-d ``(n,)`` becomes ``(1, n)``."""
    return _atleast("atleast_2d", arys, lambda s: s if len(s) >= 2 else (1,) * (2 - len(s)) + s)


def atleast_3d(*arys: Any) -> Any:
    """At least 3 dimensions: ``(n,)`` becomes ``(1, n, 1)``, ``(m, n)`` becomes ``(m, n, 1)``."""
    def grow(s: tuple[int, ...]) -> tuple[int, ...]:
        return {0: (1, 1, 1), 1: (1, *s, 1), 2: (*s, 1)}.get(len(s), s)
    return _atleast("atleast_3d", arys, grow)


def shape(a: Any) -> tuple[int, ...]:
    """The shape of ``a`` (an array, a tracer, a scalar or a nested list)."""
    return _shape_of(a) if hasattr(a, "aval") else np.shape(a)


def ndim(a: Any) -> int:
    """The number of dimensions of ``a``."""
    return len(shape(a))


def size(a: Any, axis: int | None = None) -> int:
    """The number of elements of ``a``, or the length of axis ``axis``."""
    s = shape(a)
    if axis is None:
        return int(np.prod(s, dtype=np.int64))
    return s[normalize_axis(axis, len(s), "size")]


__all__ = [
    "reshape", "ravel", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze",
    "broadcast_shapes", "broadcast_to", "broadcast_arrays", "concatenate", "stack", "vstack",
    "hstack", "dstack", "column_stack", "split", "array_split", "tile", "repeat", "pad",
    "flip", "fliplr", "flipud", "roll", "rot90", "atleast_1d", "atleast_2d", "atleast_3d",
    "shape", "ndim", "size",
]
