"""Indexing primitives: ``gather``, the ``scatter`` family, ``dynamic_slice`` and
``dynamic_update_slice``.

These are the primitives behind numpy indexing (``x[idx]``) and functional
updates (``x.at[idx].set(v)``); ``fgrad/numpy/_indexing.py`` translates index
expressions into them.

**One index structure for all of them.** XLA's gather has five kinds of
dimension numbers; fgrad uses the smallest structure that still covers numpy
advanced indexing. ``indices`` is an integer array of shape
``batch_shape + (len(axes),)``: for each batch position, its coordinates
along ``axes`` (a sorted tuple of distinct operand axes). The other operand
axes are taken whole. So, with ``rest`` the operand's non-indexed dims::

    gather(operand, indices, axes=axes).shape == batch_shape + rest
    scatter_*(operand, indices, updates, axes=axes): updates.shape == batch_shape + rest

``x[i, :, j]`` (with ``i``, ``j`` broadcast together) is
``gather(x, stack([i, j], -1), axes=(0, 2))``; a strided slice becomes one
more coordinate array (an ``iota``). Everything else numpy indexing does
(moving the advanced dims, new axes, reversals) is a transpose or reshape
around the primitive, done in the numpy layer. The price of the simple
structure: a slice combined with a scatter is expressed with an index per
element rather than a window.

**Out-of-bounds indices** (JAX's conventions): a gather's ``mode`` is
``"clip"`` (clamp each coordinate into range; what ``x[idx]`` does) or
``"fill"`` (an out-of-bounds batch position yields ``fill_value``: by default
NaN for floats, the minimum of a signed and the maximum of an unsigned int
dtype, True for bool; what ``jnp.take`` does). A scatter's ``mode`` is
``"drop"`` (out-of-bounds updates are skipped; ``x.at[idx].set``'s default)
or ``"clip"``. Negative indices are *not* wrapped here: the numpy layer adds
the axis size first, as ``jax.numpy`` does. ``dynamic_slice`` clamps its start
indices so that the slice stays in bounds.

**Repeated indices.** ``scatter_add``/``mul``/``min``/``max`` combine all
updates to one position. ``scatter`` (set) lets the *last* update in batch
order win (JAX leaves the winner unspecified; fgrad makes it deterministic),
and its rules agree: only the winning update receives a cotangent.

**Derivatives.** Index arrays are not differentiable. ``gather`` and
``scatter_add`` are linear (each is the other's transpose); ``scatter`` is
linear in ``(operand, updates)`` jointly; ``scatter_mul`` is linear in the
operand, and its derivative in the updates is exact even for repeated
indices (JAX requires unique indices there); ``scatter_min``/``max`` split
the tangent evenly between tied winners, operand included, as JAX does.

**Batching.** The ``vmap`` rules come from the constructors in
``indexing_batch.py`` and are registered in each block below: a batched
operand adds one axis taken whole, batched indices add one batch dim of the
indices (the operand is not broadcast), both together index the operand's
batch axis with an iota coordinate; batched ``dynamic_slice`` starts turn
into a gather, batched ``dynamic_update_slice`` starts into a scatter.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.ad_util import Zero, add_tangents, is_undefined_primal
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import shape as _shape
from fgrad.primitives.indexing_batch import (
    dynamic_slice_batcher,
    dynamic_update_slice_batcher,
    gather_batcher,
    scatter_batcher,
)
from fgrad.primitives.rules import deflinear, standard_primitive

Axes = tuple[int, ...]

# JAX's mode names (strings or jax.lax.GatherScatterMode members), mapped to the two
# behaviours of each kind of primitive. A gather that "promises" in-bounds indices clamps
# on CPU; a scatter that promises drops.
_GATHER_MODES = {"clip": "clip", "promise_in_bounds": "clip", None: "clip",
                 "fill": "fill", "drop": "fill", "fill_or_drop": "fill"}
_SCATTER_MODES = {"drop": "drop", "fill": "drop", "fill_or_drop": "drop",
                  "promise_in_bounds": "drop", None: "drop", "clip": "clip"}


def _mode(table: dict[Any, str], mode: Any, op: str) -> str:
    key = getattr(mode, "name", mode)  # also accept enum members, by their name
    key = key.lower() if isinstance(key, str) else key
    if key not in table:
        raise ValueError(f"{op}: unknown mode {mode!r}; expected one of "
                         f"{sorted(k for k in table if k)}")
    return table[key]


def gather_mode(mode: Any, op: str = "gather") -> str:
    """``"clip"`` or ``"fill"``: what a gather does with ``mode`` (any JAX spelling, or None)."""
    return _mode(_GATHER_MODES, mode, op)


def scatter_mode(mode: Any, op: str = "scatter") -> str:
    """``"drop"`` or ``"clip"``: what a scatter does with ``mode`` (any JAX spelling, or None)."""
    return _mode(_SCATTER_MODES, mode, op)


def _gather_mode_of(scatter_mode: str) -> str:
    """The gather that reads what a scatter of this mode wrote (for transposes)."""
    return "clip" if scatter_mode == "clip" else "fill"


def default_fill_value(dtype: Any) -> Any:
    """The value an out-of-bounds ``"fill"`` gather returns when none is given (JAX's)."""
    dtype = np.dtype(dtype)
    if dtypes.is_float(dtype):
        return np.nan
    if dtypes.is_unsigned(dtype):
        return np.iinfo(dtype).max
    if dtypes.is_int(dtype):
        return np.iinfo(dtype).min
    return True


def _zeros(aval: ShapedArray) -> Any:
    return _shape.full(aval.shape, 0, aval.dtype)


# --- the index structure, shared by every gather and scatter -------------------------------

def _check_indices(op: str, operand: ShapedArray, indices: ShapedArray, axes: Axes,
                   mode: str, modes: tuple[str, ...]) -> tuple[Axes, Axes]:
    """Validate ``indices``/``axes``; return ``(batch_shape, rest_shape)``."""
    where = f"{op}: operand {operand.str_short()}, indices {indices.str_short()}, axes={axes}"
    if mode not in modes:
        raise FgradTypeError(f"{where}: mode must be one of {modes}, got {mode!r}")
    if not dtypes.is_int(indices.dtype):
        raise FgradTypeError(f"{where}: indices must have an integer dtype")
    if indices.ndim < 1 or indices.shape[-1] != len(axes):
        raise FgradTypeError(f"{where}: indices must have shape batch_shape + "
                             f"({len(axes)},), one coordinate per indexed axis")
    if list(axes) != sorted(set(axes)) or any(not 0 <= a < operand.ndim for a in axes):
        raise FgradTypeError(f"{where}: axes must be sorted, distinct axes of the operand")
    batch = indices.shape[:-1]
    if mode == "clip" and int(np.prod(batch)) > 0 and any(operand.shape[a] == 0 for a in axes):
        raise FgradTypeError(f"{where}: cannot clip indices into an axis of size 0")
    rest = tuple(d for a, d in enumerate(operand.shape) if a not in axes)
    return batch, rest


def _flat_targets(shape: Sequence[int], indices: np.ndarray, axes: Axes,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Row-major offsets into the indexed axes (coordinates clamped), and an in-bounds mask.

    The impls move the indexed axes to the front and flatten them, so every
    batch position addresses one "row" ``offset`` of shape ``rest``.
    """
    n = int(np.prod(indices.shape[:-1]))
    coords = indices.reshape(n, len(axes)).astype(np.int64)
    sizes = np.array([shape[a] for a in axes], dtype=np.int64)
    in_bounds = np.all((coords >= 0) & (coords < sizes), axis=1)
    coords = np.clip(coords, 0, np.maximum(sizes - 1, 0))
    strides = np.ones(len(axes), dtype=np.int64)
    for k in range(len(axes) - 2, -1, -1):
        strides[k] = strides[k + 1] * sizes[k + 1]
    return coords @ strides, in_bounds


def _rows(x: np.ndarray, axes: Axes) -> tuple[np.ndarray, list[int]]:
    """``x`` with ``axes`` moved to the front and flattened into one: (rows, *rest)."""
    perm = [*axes, *(a for a in range(x.ndim) if a not in axes)]
    moved = np.transpose(x, perm)
    n_rows = int(np.prod(moved.shape[:len(axes)]))
    return np.ascontiguousarray(moved).reshape((n_rows, *moved.shape[len(axes):])), perm


# --- gather ------------------------------------------------------------------------------

def gather(operand: Any, indices: Any, *, axes: Sequence[int], mode: Any = "clip",
           fill_value: Any = None) -> Any:
    """``operand`` read at ``indices``: output ``batch_shape + rest`` (see the module docstring).

    ``indices[..., k]`` is the coordinate along ``axes[k]``; the other axes are
    taken whole. ``mode`` is ``"clip"`` (the default: clamp into range) or
    ``"fill"`` (out-of-bounds positions give ``fill_value``, by default NaN /
    the int minimum / the uint maximum / True). fgrad's form of
    ``jax.lax.gather``.

    >>> import numpy as np
    >>> x = np.arange(6.0).reshape(2, 3)
    >>> gather(x, np.array([[2], [0]]), axes=(1,))  # columns 2 and 0: batch dim first
    Array([[2., 5.],
           [0., 3.]], dtype=float32)
    """
    mode = gather_mode(mode)
    fill = None if mode == "clip" or fill_value is None else np.asarray(fill_value).item()
    return gather_p.bind(operand, indices, axes=tuple(int(a) for a in axes), mode=mode,
                         fill_value=fill)


def _gather_impl(operand: np.ndarray, indices: np.ndarray, *, axes: Axes, mode: str,
                 fill_value: Any) -> np.ndarray:
    rows, _ = _rows(operand, axes)
    offsets, in_bounds = _flat_targets(operand.shape, indices, axes)
    out = rows[offsets] if rows.shape[0] else np.zeros((len(offsets), *rows.shape[1:]),
                                                       operand.dtype)
    if mode == "fill":
        fill = default_fill_value(operand.dtype) if fill_value is None else fill_value
        keep = in_bounds.reshape((-1,) + (1,) * (out.ndim - 1))
        with np.errstate(invalid="ignore"):
            out = np.where(keep, out, np.asarray(fill).astype(operand.dtype))
    return out.reshape(indices.shape[:-1] + out.shape[1:])


def _gather_shape(operand: ShapedArray, indices: ShapedArray, *, axes: Axes, mode: str,
                  fill_value: Any) -> tuple[int, ...]:
    batch, rest = _check_indices("gather", operand, indices, axes, mode, ("clip", "fill"))
    return batch + rest


def _gather_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, axes: Axes, mode: str,
                fill_value: Any) -> tuple[Any, Any]:
    operand, indices = primals
    out = gather_p.bind(operand, indices, axes=axes, mode=mode, fill_value=fill_value)
    if type(tangents[0]) is Zero:
        return out, Zero(get_aval(out).strip_weak_type())
    # A filled position is a constant: its tangent is 0, not the fill value.
    return out, gather_p.bind(tangents[0], indices, axes=axes, mode=mode,
                              fill_value=None if mode == "clip" else 0)


def _gather_transpose(ct: Any, operand: Any, indices: Any, *, axes: Axes, mode: str,
                      fill_value: Any) -> list[Any]:
    # Each output element was read from one operand position: send it back there,
    # summing where positions repeat; filled (out-of-bounds) reads send nothing.
    scatter_mode = "clip" if mode == "clip" else "drop"
    return [scatter_add(_zeros(operand.aval), indices, ct, axes=axes, mode=scatter_mode), None]


gather_p = standard_primitive("gather", _gather_impl, _gather_shape,
                              lambda operand, indices, **_: operand.dtype,
                              lambda operand, indices, **_: operand.weak_type)
gather_p.def_jvp(_gather_jvp)
gather_p.def_transpose(_gather_transpose)
gather_p.linear_args = (0,)
gather_p.def_batch(gather_batcher(gather_p))


# --- the scatter family: one impl and one shape rule, five combiners ----------------------

def _set_last_wins(rows: np.ndarray, offsets: np.ndarray, updates: np.ndarray) -> None:
    # NOTE: numpy's `rows[offsets] = updates` leaves the winner of repeated indices
    # unspecified; pick the last occurrence of each offset explicitly.
    _, first_from_end = np.unique(offsets[::-1], return_index=True)
    last = len(offsets) - 1 - first_from_end
    rows[offsets[last]] = updates[last]


_COMBINERS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], None]] = {
    "scatter": _set_last_wins,
    "scatter_add": np.add.at,
    "scatter_mul": np.multiply.at,
    "scatter_min": np.minimum.at,
    "scatter_max": np.maximum.at,
}


def _scatter_impl(name: str) -> Callable[..., np.ndarray]:
    combine = _COMBINERS[name]

    def impl(operand: np.ndarray, indices: np.ndarray, updates: np.ndarray, *, axes: Axes,
             mode: str) -> np.ndarray:
        rows, perm = _rows(operand, axes)
        if np.may_share_memory(rows, operand) or not rows.flags.writeable:
            rows = rows.copy()  # never write into an input (a size-0 view shares no memory)
        offsets, in_bounds = _flat_targets(operand.shape, indices, axes)
        flat_updates = updates.reshape((len(offsets), *rows.shape[1:]))
        if mode == "drop":
            offsets, flat_updates = offsets[in_bounds], flat_updates[in_bounds]
        with np.errstate(all="ignore"):
            combine(rows, offsets, flat_updates)
        moved_shape = [operand.shape[a] for a in perm]
        return np.transpose(rows.reshape(moved_shape), np.argsort(perm))

    impl.__name__ = f"_{name}_impl"
    return impl


def _scatter_shape(name: str) -> Callable[..., tuple[int, ...]]:
    def rule(operand: ShapedArray, indices: ShapedArray, updates: ShapedArray, *, axes: Axes,
             mode: str) -> tuple[int, ...]:
        batch, rest = _check_indices(name, operand, indices, axes, mode, ("clip", "drop"))
        if updates.shape != batch + rest or updates.dtype != operand.dtype:
            expected = ShapedArray(batch + rest, operand.dtype).str_short()
            raise FgradTypeError(f"{name}: updates must be {expected} (batch_shape + the "
                                 f"operand's non-indexed dims, the operand's dtype) for "
                                 f"operand {operand.str_short()}, indices "
                                 f"{indices.str_short()}, axes={axes}; got "
                                 f"{updates.str_short()}")
        return operand.shape
    return rule


def _scatter_primitive(name: str) -> Any:
    prim = standard_primitive(name, _scatter_impl(name), _scatter_shape(name),
                              lambda operand, *_, **__: operand.dtype,
                              lambda operand, *_, **__: operand.weak_type)
    prim.def_batch(scatter_batcher(prim))  # one batching rule for the whole family
    return prim


def _scatter_bind(prim: Any, operand: Any, indices: Any, updates: Any, axes: Sequence[int],
                  mode: Any) -> Any:
    return prim.bind(operand, indices, updates, axes=tuple(int(a) for a in axes),
                     mode=scatter_mode(mode, prim.name))


def _gather_like(x: Any, indices: Any, axes: Axes, scatter_mode: str, fill: Any = 0) -> Any:
    """Read ``x`` where a scatter of ``scatter_mode`` writes (dropped positions read ``fill``)."""
    gmode = _gather_mode_of(scatter_mode)
    return gather_p.bind(x, indices, axes=axes, mode=gmode,
                         fill_value=None if gmode == "clip" else fill)


# --- scatter_add -------------------------------------------------------------------------

def scatter_add(operand: Any, indices: Any, updates: Any, *, axes: Sequence[int],
                mode: Any = "drop") -> Any:
    """``operand`` with ``updates`` added at ``indices`` (repeats accumulate).

    Shapes as in ``gather``: ``updates.shape == batch_shape + rest``. ``mode``
    is ``"drop"`` (default: skip out-of-bounds updates) or ``"clip"``.
    """
    return _scatter_bind(scatter_add_p, operand, indices, updates, axes, mode)


def _scatter_add_transpose(ct: Any, operand: Any, indices: Any, updates: Any, *, axes: Axes,
                           mode: str) -> list[Any]:
    ct_updates = _gather_like(ct, indices, axes, mode) if is_undefined_primal(updates) else None
    return [ct if is_undefined_primal(operand) else None, None, ct_updates]


scatter_add_p = _scatter_primitive("scatter_add")
deflinear(scatter_add_p, _scatter_add_transpose, linear_args=(0, 2))


# --- scatter (set) ------------------------------------------------------------------------

def scatter(operand: Any, indices: Any, updates: Any, *, axes: Sequence[int],
            mode: Any = "drop") -> Any:
    """``operand`` with the positions at ``indices`` overwritten by ``updates``.

    For repeated indices the last update (in row-major batch order) wins.
    """
    return _scatter_bind(scatter_p, operand, indices, updates, axes, mode)


def _winners(operand_aval: ShapedArray, indices: Any, updates_aval: ShapedArray, axes: Axes,
             mode: str) -> Any:
    """Bool mask over ``updates``: True where that update is the one that lands."""
    batch = updates_aval.shape[:len(get_aval(indices).shape) - 1]
    ids = _shape.reshape(_shape.iota(np.int32, int(np.prod(batch))), batch)
    ids = _shape.broadcast_in_dim(ids, updates_aval.shape, tuple(range(len(batch))))
    owner = scatter_p.bind(_shape.full(operand_aval.shape, -1, np.int32), indices, ids,
                           axes=axes, mode=mode)
    return _ew.eq(_gather_like(owner, indices, axes, mode, fill=-1), ids)


def _scatter_transpose(ct: Any, operand: Any, indices: Any, updates: Any, *, axes: Axes,
                       mode: str) -> list[Any]:
    updates_aval = get_aval(updates)
    ct_operand = ct_updates = None
    if is_undefined_primal(operand):  # the overwritten positions saw none of the operand
        ct_operand = scatter_p.bind(ct, indices, _zeros(updates_aval), axes=axes, mode=mode)
    if is_undefined_primal(updates):  # only the winning update reaches the output
        won = _winners(operand.aval if is_undefined_primal(operand) else get_aval(operand),
                       indices, updates_aval, axes, mode)
        ct_updates = _ew.select(won, _gather_like(ct, indices, axes, mode),
                                _zeros(updates_aval))
    return [ct_operand, None, ct_updates]


scatter_p = _scatter_primitive("scatter")
deflinear(scatter_p, _scatter_transpose, linear_args=(0, 2))


# --- scatter_mul ---------------------------------------------------------------------------

def scatter_mul(operand: Any, indices: Any, updates: Any, *, axes: Sequence[int],
                mode: Any = "drop") -> Any:
    """``operand`` multiplied by ``updates`` at ``indices`` (repeats multiply together)."""
    return _scatter_bind(scatter_mul_p, operand, indices, updates, axes, mode)


def _product_of_others(x: Any, indices: Any, y: Any, axes: Axes, mode: str) -> Any:
    """For each update k landing at p: ``x[p]`` times the *other* updates landing at p.

    That is d out[p] / d y[k]. With one update at p it is just ``x[p]`` (exact;
    JAX's rule, which assumes unique indices). With several: for y[k] != 0,
    the full product at p divided by y[k] (zeros included, so the derivative
    is right too); for y[k] == 0, the product of the nonzero updates if y[k]
    is the only zero at p, else 0. NOTE: the division loses accuracy in the
    second derivative when y[k]**2 underflows (|y| below ~1e-154 in float64,
    ~1e-19 in float32), and the second derivative is not exact where two
    updates at p are exactly 0.
    """
    x_aval, y_aval = get_aval(x), get_aval(y)
    one, zero = _shape.full(y_aval.shape, 1, y_aval.dtype), _zeros(y_aval)

    def at_targets(z: Any) -> Any:
        return _gather_like(z, indices, axes, mode)

    def per_target(values: Any, combine: Any, init: Any) -> Any:  # combine over p, read at k
        return at_targets(combine.bind(init, indices, values, axes=axes, mode=mode))

    is_zero = _ew.eq(y, zero)
    alone = _ew.eq(per_target(one, scatter_add_p, _zeros(x_aval)), one)
    n_zero = per_target(_ew.select(is_zero, one, zero), scatter_add_p, _zeros(x_aval))
    full = per_target(y, scatter_mul_p, x)
    prod_nonzero = per_target(_ew.select(is_zero, one, y), scatter_mul_p, x)
    divisor = _ew.select(_ew.bitwise_or(is_zero, alone), one, y)  # never 0; 1 where unused
    shared = _ew.select(is_zero, _ew.select(_ew.eq(n_zero, one), prod_nonzero, zero),
                        _ew.div(full, divisor))
    return _ew.select(alone, at_targets(x), shared)


def _scatter_mul_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, axes: Axes,
                     mode: str) -> tuple[Any, Any]:
    x, indices, y = primals
    x_dot, _, y_dot = tangents
    out = scatter_mul_p.bind(x, indices, y, axes=axes, mode=mode)
    t: Any = Zero(get_aval(out).strip_weak_type())
    if type(x_dot) is not Zero:  # linear in the operand
        t = scatter_mul_p.bind(x_dot, indices, y, axes=axes, mode=mode)
    if type(y_dot) is not Zero:  # product rule over the updates landing at each position
        contrib = _ew.mul(y_dot, _product_of_others(x, indices, y, axes, mode))
        t = add_tangents(t, scatter_add_p.bind(_zeros(get_aval(out).strip_weak_type()),
                                               indices, contrib, axes=axes, mode=mode))
    return out, t


def _scatter_mul_transpose(ct: Any, operand: Any, indices: Any, updates: Any, *, axes: Axes,
                           mode: str) -> list[Any]:
    # out = operand * (product of the updates at each position): transpose is the same scaling
    return [scatter_mul_p.bind(ct, indices, updates, axes=axes, mode=mode), None, None]


scatter_mul_p = _scatter_primitive("scatter_mul")
scatter_mul_p.def_jvp(_scatter_mul_jvp)
scatter_mul_p.def_transpose(_scatter_mul_transpose)
scatter_mul_p.linear_args = (0,)


# --- scatter_min / scatter_max -----------------------------------------------------------------

def scatter_min(operand: Any, indices: Any, updates: Any, *, axes: Sequence[int],
                mode: Any = "drop") -> Any:
    """``operand`` with each indexed position replaced by the minimum of it and its updates."""
    return _scatter_bind(scatter_min_p, operand, indices, updates, axes, mode)


def scatter_max(operand: Any, indices: Any, updates: Any, *, axes: Sequence[int],
                mode: Any = "drop") -> Any:
    """``operand`` with each indexed position replaced by the maximum of it and its updates."""
    return _scatter_bind(scatter_max_p, operand, indices, updates, axes, mode)


def _scatter_extremum_jvp(prim: Any) -> Callable[..., tuple[Any, Any]]:
    # The output at p is one of its candidates (the operand and the updates landing at
    # p); its tangent is the mean tangent of the candidates equal to it (JAX's rule).
    def jvp(primals: Sequence[Any], tangents: Sequence[Any], *, axes: Axes,
            mode: str) -> tuple[Any, Any]:
        from fgrad.transforms.jvp import instantiate_zeros  # rules use transforms lazily
        x, indices, y = primals
        out = prim.bind(x, indices, y, axes=axes, mode=mode)
        if all(type(t) is Zero for t in tangents[::2]):
            return out, Zero(get_aval(out).strip_weak_type())
        x_dot, y_dot = instantiate_zeros(tangents[0]), instantiate_zeros(tangents[2])
        x_aval, y_aval = get_aval(x_dot), get_aval(y_dot)
        x_won = _ew.eq(x, out)
        y_won = _ew.eq(y, _gather_like(out, indices, axes, mode))
        ones_x, zeros_x = _shape.full(x_aval.shape, 1, x_aval.dtype), _zeros(x_aval)
        ones_y, zeros_y = _shape.full(y_aval.shape, 1, y_aval.dtype), _zeros(y_aval)
        count = _ew.add(_ew.select(x_won, ones_x, zeros_x),
                        scatter_add_p.bind(zeros_x, indices, _ew.select(y_won, ones_y, zeros_y),
                                           axes=axes, mode=mode))
        total = _ew.add(_ew.select(x_won, x_dot, zeros_x),
                        scatter_add_p.bind(zeros_x, indices, _ew.select(y_won, y_dot, zeros_y),
                                           axes=axes, mode=mode))
        return out, _ew.div(total, count)
    return jvp


scatter_min_p = _scatter_primitive("scatter_min")
scatter_max_p = _scatter_primitive("scatter_max")
for _p in (scatter_min_p, scatter_max_p):
    _p.def_jvp(_scatter_extremum_jvp(_p))
    _p.declare_missing("transpose", "not linear")


# --- dynamic_slice -----------------------------------------------------------------------

def _start_indices(op: str, shape: Sequence[int], start_indices: Sequence[Any],
                   allow_negative_indices: bool) -> list[Any]:
    """Scalar start indices of one integer dtype, negative ones wrapped (JAX's convention)."""
    if len(start_indices) != len(shape):
        raise FgradTypeError(f"{op}: got {len(start_indices)} start indices for an operand "
                             f"of rank {len(shape)}")
    avals = [get_aval(s) for s in start_indices]
    wide = any(a.dtype.itemsize == 8 for a in avals) and dtypes.canonicalize_dtype(
        np.int64) == np.int64
    dtype = np.dtype(np.int64 if wide else np.int32)
    starts = []
    for s, aval, size in zip(start_indices, avals, shape, strict=True):
        if aval.ndim != 0 or not dtypes.is_int(aval.dtype):
            raise FgradTypeError(f"{op}: start indices must be integer scalars, got "
                                 f"{aval.str_short()}")
        if isinstance(s, (int, np.integer)):
            if s < 0 and not allow_negative_indices:
                raise ValueError(f"{op}: index {s} is out of bounds for an axis of size {size} "
                                 "with allow_negative_indices=False")
            s = int(s) + size if s < 0 else int(s)
            starts.append(_shape.full((), s, dtype))
            continue
        s = s if aval.dtype == dtype and not aval.weak_type else \
            _ew.convert_element_type(s, dtype)
        if allow_negative_indices and not dtypes.is_unsigned(aval.dtype):
            s = _ew.select(_ew.lt(s, _shape.full((), 0, dtype)),
                           _ew.add(s, _shape.full((), size, dtype)), s)
        starts.append(s)
    return starts


def _clamped_starts(shape: Sequence[int], starts: Sequence[np.ndarray],
                    sizes: Sequence[int]) -> list[int]:
    return [int(np.clip(int(s), 0, d - k)) for s, d, k in zip(starts, shape, sizes, strict=True)]


def _check_starts(op: str, operand: ShapedArray, starts: Sequence[ShapedArray]) -> None:
    if len(starts) != operand.ndim:
        raise FgradTypeError(f"{op}: operand {operand.str_short()} needs {operand.ndim} start "
                             f"indices, got {len(starts)}")
    if any(s.ndim != 0 or not dtypes.is_int(s.dtype) or s.dtype != starts[0].dtype
           for s in starts):
        raise FgradTypeError(f"{op}: start indices must be integer scalars of one dtype, got "
                             + ", ".join(s.str_short() for s in starts))


def dynamic_slice(operand: Any, start_indices: Sequence[Any], slice_sizes: Sequence[int], *,
                  allow_negative_indices: bool = True) -> Any:
    """The block of ``slice_sizes`` starting at ``start_indices`` (scalars, possibly traced).

    Negative starts count from the end; then each start is clamped into
    ``[0, size - slice_size]`` so the block stays in bounds (``jax.lax.dynamic_slice``).
    """
    shape = get_aval(operand).shape
    starts = _start_indices("dynamic_slice", shape, start_indices, allow_negative_indices)
    return dynamic_slice_p.bind(operand, *starts, slice_sizes=tuple(int(k) for k in slice_sizes))


def _dynamic_slice_impl(operand: np.ndarray, *starts: np.ndarray,
                        slice_sizes: tuple[int, ...]) -> np.ndarray:
    begin = _clamped_starts(operand.shape, starts, slice_sizes)
    return operand[tuple(slice(b, b + k) for b, k in zip(begin, slice_sizes, strict=True))]


def _dynamic_slice_shape(operand: ShapedArray, *starts: ShapedArray,
                         slice_sizes: tuple[int, ...]) -> tuple[int, ...]:
    _check_starts("dynamic_slice", operand, starts)
    if len(slice_sizes) != operand.ndim or any(
            not 0 <= k <= d for k, d in zip(slice_sizes, operand.shape, strict=True)):
        raise FgradTypeError(f"dynamic_slice: slice_sizes {slice_sizes} must give a size "
                             f"between 0 and the axis size for each axis of "
                             f"{operand.str_short()}")
    return slice_sizes


def _dynamic_slice_transpose(ct: Any, operand: Any, *starts: Any,
                             slice_sizes: tuple[int, ...]) -> list[Any]:
    # The block goes back where it came from (same clamped starts), zeros elsewhere.
    zeros = _zeros(operand.aval)
    return [dynamic_update_slice_p.bind(zeros, ct, *starts), *([None] * len(starts))]


dynamic_slice_p = standard_primitive("dynamic_slice", _dynamic_slice_impl,
                                     _dynamic_slice_shape,
                                     lambda operand, *_, **__: operand.dtype,
                                     lambda operand, *_, **__: operand.weak_type)
deflinear(dynamic_slice_p, _dynamic_slice_transpose, linear_args=(0,))
dynamic_slice_p.def_batch(dynamic_slice_batcher(dynamic_slice_p, gather_p))


# --- dynamic_update_slice -----------------------------------------------------------------

def dynamic_update_slice(operand: Any, update: Any, start_indices: Sequence[Any], *,
                         allow_negative_indices: bool = True) -> Any:
    """``operand`` with the block at ``start_indices`` replaced by ``update``.

    Starts are wrapped and clamped as in ``dynamic_slice``, so the whole
    ``update`` always lands inside ``operand`` (``jax.lax.dynamic_update_slice``).
    """
    shape = get_aval(operand).shape
    starts = _start_indices("dynamic_update_slice", shape, start_indices,
                            allow_negative_indices)
    return dynamic_update_slice_p.bind(operand, update, *starts)


def _dynamic_update_slice_impl(operand: np.ndarray, update: np.ndarray,
                               *starts: np.ndarray) -> np.ndarray:
    begin = _clamped_starts(operand.shape, starts, update.shape)
    out = operand.copy()
    out[tuple(slice(b, b + k) for b, k in zip(begin, update.shape, strict=True))] = update
    return out


def _dynamic_update_slice_shape(operand: ShapedArray, update: ShapedArray,
                                *starts: ShapedArray) -> tuple[int, ...]:
    _check_starts("dynamic_update_slice", operand, starts)
    if (update.ndim != operand.ndim or update.dtype != operand.dtype
            or any(k > d for k, d in zip(update.shape, operand.shape, strict=True))):
        raise FgradTypeError(f"dynamic_update_slice: update {update.str_short()} must have the "
                             f"rank and dtype of operand {operand.str_short()} and fit in it")
    return operand.shape


def _dynamic_update_slice_transpose(ct: Any, operand: Any, update: Any,
                                    *starts: Any) -> list[Any]:
    update_aval = get_aval(update)
    ct_operand = ct_update = None
    if is_undefined_primal(operand):  # the block was overwritten: no cotangent there
        ct_operand = dynamic_update_slice_p.bind(ct, _zeros(update_aval), *starts)
    if is_undefined_primal(update):
        ct_update = dynamic_slice_p.bind(ct, *starts, slice_sizes=update_aval.shape)
    return [ct_operand, ct_update, *([None] * len(starts))]


dynamic_update_slice_p = standard_primitive(
    "dynamic_update_slice", _dynamic_update_slice_impl, _dynamic_update_slice_shape,
    lambda operand, *_, **__: operand.dtype,
    lambda operand, update, *_, **__: operand.weak_type and update.weak_type)
deflinear(dynamic_update_slice_p, _dynamic_update_slice_transpose, linear_args=(0, 1))
dynamic_update_slice_p.def_batch(dynamic_update_slice_batcher(dynamic_update_slice_p,
                                                              scatter_p))


__all__ = ["gather", "scatter", "scatter_add", "scatter_mul", "scatter_min", "scatter_max",
           "dynamic_slice", "dynamic_update_slice"]
