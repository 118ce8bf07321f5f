"""Op-table records for the indexing family: ``gather``, the scatters, ``dynamic_slice``,
``dynamic_update_slice`` (``fgrad.lax``), and numpy indexing (``x[idx]``, ``x.at[idx]``,
``take``, ``take_along_axis``, ``put_along_axis``).

The JAX twins of the strict primitives are ``jax.lax.gather``/``scatter_*`` with
the dimension numbers that fgrad's simpler index structure stands for
(``jax_dnums``). Index arguments are either drawn ("int", with out-of-bounds
values) or fixed ("const", with repeated indices where that matters).

Two deliberate differences from JAX are avoided by the twins, not hidden:
``x[idx]``'s gradient in JAX drops out-of-bounds indices although its value
clamps them, so the twins of clamping gathers use ``mode="clip"``; and JAX has
no derivative of ``scatter_mul`` with repeated indices, so that twin applies
the updates one at a time.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.numpy._indexing import getitem, index_update_helper
from op_table import Arg, Rec

ALL_FLOATS = (np.float32, np.float16, jnp.bfloat16)
_MODES = {"clip": jax.lax.GatherScatterMode.CLIP,
          "fill": jax.lax.GatherScatterMode.FILL_OR_DROP,
          "drop": jax.lax.GatherScatterMode.FILL_OR_DROP}


def _arg(*shape: int) -> Arg:
    return Arg(tuple(shape))


def _const(value: Any) -> Arg:
    value = np.asarray(value)
    return Arg(value.shape, "const", value=value)


def _ints(shape: Sequence[int], lo: int, hi: int) -> Arg:
    return Arg(tuple(shape), "int", (lo, hi))


def jax_dnums(ndim: int, axes: Sequence[int], n_batch: int, scatter: bool = False) -> Any:
    """JAX dimension numbers for fgrad's (axes, batch-first) index structure."""
    rest = tuple(range(n_batch, n_batch + ndim - len(axes)))
    if scatter:
        return jax.lax.ScatterDimensionNumbers(update_window_dims=rest,
                                               inserted_window_dims=tuple(axes),
                                               scatter_dims_to_operand_dims=tuple(axes))
    return jax.lax.GatherDimensionNumbers(offset_dims=rest, collapsed_slice_dims=tuple(axes),
                                          start_index_map=tuple(axes))


def jax_gather(x: Any, i: Any, axes: Sequence[int], mode: str, fill_value: Any = None) -> Any:
    x, i = jnp.asarray(x), jnp.asarray(i)
    sizes = tuple(1 if a in axes else d for a, d in enumerate(x.shape))
    return jax.lax.gather(x, i, jax_dnums(x.ndim, axes, i.ndim - 1), sizes, mode=_MODES[mode],
                          fill_value=fill_value)


def jax_scatter(op: str, x: Any, i: Any, u: Any, axes: Sequence[int], mode: str,
                unique_indices: bool = False) -> Any:
    x, i = jnp.asarray(x), jnp.asarray(i)
    fn = {"scatter": jax.lax.scatter, "scatter_add": jax.lax.scatter_add,
          "scatter_mul": jax.lax.scatter_mul, "scatter_min": jax.lax.scatter_min,
          "scatter_max": jax.lax.scatter_max}[op]
    return fn(x, i, jnp.asarray(u), jax_dnums(x.ndim, axes, i.ndim - 1, scatter=True),
              mode=_MODES[mode], unique_indices=unique_indices)


def jax_scatter_mul_one_by_one(x: Any, i: Any, u: Any, axes: Sequence[int], mode: str) -> Any:
    # Each single update has unique indices, where JAX's scatter_mul is differentiable.
    i, u = np.asarray(i), jnp.asarray(u)
    flat_i = i.reshape(-1, i.shape[-1])
    flat_u = u.reshape((flat_i.shape[0],) + u.shape[i.ndim - 1:])
    for k in range(flat_i.shape[0]):
        x = jax_scatter("scatter_mul", x, flat_i[k:k + 1], flat_u[k:k + 1], axes, mode,
                        unique_indices=True)
    return x


def _spread(*xs: np.ndarray) -> list[np.ndarray]:
    """Replace the float values by well-separated ones in the same order (no ties, no
    near-ties: min/max are then smooth over the finite-difference step)."""
    flat = np.concatenate([np.ravel(x) for x in xs])
    ranks = np.empty(len(flat))
    ranks[np.argsort(flat, kind="stable")] = np.arange(len(flat))
    values = -1.5 + 3.0 * ranks / max(len(flat), 1)
    out, offset = [], 0
    for x in xs:
        out.append(values[offset:offset + np.size(x)].reshape(np.shape(x)))
        offset += np.size(x)
    return out


REPEATED = np.array([[1, 0], [3, 2], [1, 0], [0, 2], [1, 0]])  # (1, 0) three times
# fmt: off
LAX_RECORDS = [
    Rec("lax_gather_axis0", lambda x, i: lax.gather(x, i, axes=(0,)),
        [_arg(4, 3), _ints((5, 1), -3, 7)],
        lambda x, i: jax_gather(x, i, (0,), "clip"), prims=("gather",), dtypes=ALL_FLOATS,
        linear=True),
    Rec("lax_gather_two_axes_batch2d", lambda x, i: lax.gather(x, i, axes=(0, 2)),
        [_arg(3, 2, 4), _ints((2, 3, 2), -1, 5)],
        lambda x, i: jax_gather(x, i, (0, 2), "clip"), prims=("gather",), linear=True),
    Rec("lax_gather_all_axes", lambda x, i: lax.gather(x, i, axes=(0, 1)),
        [_arg(3, 4), _const(REPEATED[:, ::-1])],
        lambda x, i: jax_gather(x, i, (0, 1), "clip"), prims=("gather",), linear=True),
    Rec("lax_gather_no_axes", lambda x, i: lax.gather(x, i, axes=()),
        [_arg(2, 3), _const(np.zeros((2, 0), np.int32))],
        lambda x, i: jax_gather(x, i, (), "clip"), prims=("gather",), linear=True),
    Rec("lax_gather_scalar_batch", lambda x, i: lax.gather(x, i, axes=(1,)),
        [_arg(2, 5), _ints((1,), -2, 7)],
        lambda x, i: jax_gather(x, i, (1,), "clip"), prims=("gather",), linear=True),
    Rec("lax_gather_fill_zero", lambda x, i: lax.gather(x, i, axes=(1,), mode="fill",
                                                        fill_value=0.0),
        [_arg(2, 4), _ints((6, 1), -3, 7)],
        lambda x, i: jax_gather(x, i, (1,), "fill", 0.0), prims=("gather",),
        dtypes=ALL_FLOATS, linear=True),
    Rec("lax_gather_fill_nan", lambda x, i: lax.gather(x, i, axes=(0,), mode="fill"),
        [_arg(3, 2), _ints((4, 1), -3, 6)],
        lambda x, i: jax_gather(x, i, (0,), "fill"), prims=("gather",), dtypes=ALL_FLOATS,
        diff=False),
    Rec("lax_gather_fill_int", lambda x, i: lax.gather(x, i, axes=(0,), mode="fill"),
        [Arg((4,), "int", (-9, 9)), _const([[1], [4], [-1]])],
        lambda x, i: jax_gather(x, i, (0,), "fill"), prims=("gather",), diff=False),
    Rec("lax_scatter_add_repeated", lambda x, u: lax.scatter_add(x, REPEATED, u, axes=(0, 2)),
        [_arg(4, 2, 3), _arg(5, 2)],
        lambda x, u: jax_scatter("scatter_add", x, REPEATED, u, (0, 2), "drop"),
        prims=("scatter_add",), dtypes=ALL_FLOATS, linear=True, rtol=3e-2),
    Rec("lax_scatter_add_oob_drop", lambda x, u, i: lax.scatter_add(x, i, u, axes=(1,)),
        [_arg(2, 3), _arg(4, 2), _ints((4, 1), -2, 5)],
        lambda x, u, i: jax_scatter("scatter_add", x, i, u, (1,), "drop"),
        prims=("scatter_add",), linear=True),
    Rec("lax_scatter_add_clip", lambda x, u, i: lax.scatter_add(x, i, u, axes=(1,), mode="clip"),
        [_arg(2, 3), _arg(4, 2), _ints((4, 1), -2, 5)],
        lambda x, u, i: jax_scatter("scatter_add", x, i, u, (1,), "clip"),
        prims=("scatter_add",), linear=True),
    Rec("lax_scatter_set_repeated", lambda x, u: lax.scatter(x, REPEATED, u, axes=(0, 2)),
        [_arg(4, 2, 3), _arg(5, 2)],
        lambda x, u: jax_scatter("scatter", x, REPEATED, u, (0, 2), "drop"),
        prims=("scatter",), dtypes=ALL_FLOATS, linear=True),
    Rec("lax_scatter_set_clip", lambda x, u, i: lax.scatter(x, i, u, axes=(0,), mode="clip"),
        [_arg(3), _arg(2), _const([[5], [-4]])],
        lambda x, u, i: jax_scatter("scatter", x, i, u, (0,), "clip"),
        prims=("scatter",), linear=True),
    Rec("lax_scatter_mul_repeated", lambda x, u: lax.scatter_mul(x, REPEATED, u, axes=(0, 1)),
        [_arg(4, 3), Arg((5,), avoid=(0.0,))],  # see _product_of_others: tiny updates
        lambda x, u: jax_scatter_mul_one_by_one(x, REPEATED, u, (0, 1), "drop"),
        prims=("scatter_mul",), dtypes=ALL_FLOATS, rtol=3e-2),
    Rec("lax_scatter_mul_windows", lambda x, u, i: lax.scatter_mul(x, i, u, axes=(1,)),
        [_arg(3, 4), _arg(2, 3), _const([[2], [0]])],
        lambda x, u, i: jax_scatter_mul_one_by_one(x, i, u, (1,), "drop"),
        prims=("scatter_mul",)),
    Rec("lax_scatter_min_repeated", lambda x, u: lax.scatter_min(x, REPEATED, u, axes=(0, 2)),
        [_arg(4, 2, 3), _arg(5, 2)],
        lambda x, u: jax_scatter("scatter_min", x, REPEATED, u, (0, 2), "drop"),
        prims=("scatter_min",), dtypes=ALL_FLOATS, prepare=_spread),
    Rec("lax_scatter_max_clip", lambda x, u, i: lax.scatter_max(x, i, u, axes=(0,), mode="clip"),
        # in bounds: JAX's scatter_max JVP is wrong for clipped out-of-bounds indices
        [_arg(3, 2), _arg(4, 2), _const([[0], [2], [0], [1]])],
        lambda x, u, i: jax_scatter("scatter_max", x, i, u, (0,), "clip"),
        prims=("scatter_max",), prepare=lambda x, u, i: [*_spread(x, u), i]),
    Rec("lax_scatter_int", lambda x, u: lax.scatter_add(x, REPEATED[:, :1], u, axes=(0,)),
        [Arg((4,), "int", (-9, 9)), Arg((5,), "int", (-9, 9))],
        lambda x, u: jax_scatter("scatter_add", x, REPEATED[:, :1], u, (0,), "drop"),
        prims=("scatter_add",), diff=False),
    Rec("lax_dynamic_slice", lambda x, a, b: lax.dynamic_slice(x, (a, b), (2, 3)),
        [_arg(4, 5), _ints((), -6, 6), _ints((), -6, 6)],
        lambda x, a, b: jax.lax.dynamic_slice(x, (a, b), (2, 3)),
        prims=("dynamic_slice",), dtypes=ALL_FLOATS, linear=True),
    Rec("lax_dynamic_slice_static", lambda x: lax.dynamic_slice(x, (-1, 7), (1, 0)),
        [_arg(3, 4)], lambda x: jax.lax.dynamic_slice(x, (-1, 7), (1, 0)),
        prims=("dynamic_slice",), linear=True),
    Rec("lax_dynamic_update_slice", lambda x, u, a, b: lax.dynamic_update_slice(x, u, (a, b)),
        [_arg(4, 5), _arg(2, 3), _ints((), -6, 6), _ints((), -6, 6)],
        lambda x, u, a, b: jax.lax.dynamic_update_slice(x, u, (a, b)),
        prims=("dynamic_update_slice",), dtypes=ALL_FLOATS, linear=True),
    Rec("lax_dynamic_update_slice_empty", lambda x, u, a: lax.dynamic_update_slice(x, u, (a,)),
        [_arg(3), _arg(0), _ints((), -4, 4)],
        lambda x, u, a: jax.lax.dynamic_update_slice(x, u, (a,)),
        prims=("dynamic_update_slice",), linear=True),
]


def _get(idx: Any) -> Rec:
    """A getitem record: JAX's twin clamps explicitly (see the module docstring)."""
    return Rec(f"np_getitem_{_idx_name(idx)}", lambda x: getitem(x, idx),
               [_arg(3, 4, 5)], lambda x: jnp.asarray(x).at[idx].get(mode="clip"),
               prims=("slice", "gather"), linear=True)


def _idx_name(idx: Any) -> str:
    parts = idx if isinstance(idx, tuple) else (idx,)

    def one(p: Any) -> str:
        if p is None:
            return "new"
        if p is Ellipsis:
            return "ell"
        if isinstance(p, slice):
            return f"s{p.start}_{p.stop}_{p.step}".replace("None", "").replace("-", "m")
        if isinstance(p, np.ndarray):
            return f"{'b' if p.dtype == bool else 'a'}{'x'.join(map(str, p.shape))}"
        if isinstance(p, list):
            return "l" + "_".join(map(str, p))
        return str(p).replace("-", "m")
    return "_".join(one(p) for p in parts) or "empty"


A = np.array
GETITEM_INDICES = [
    1, -1, 7, (Ellipsis, -2), (None, 1, Ellipsis, None), (slice(1, None, 2),),
    (slice(None), slice(None, None, -1)), (slice(None), slice(3, 0, -2), 4),
    (A([2, -1, 5, 0]),), (A([0, 2]), slice(None), A([[1], [-1]])),
    (slice(None), A([1, 1, 3]), A([4, 0, 2])), (1, slice(1, 3), A([0, 4])),
    (A([[0, 1]]), None, A([2, 3])), (A([True, False, True]),),
    (slice(None), A([[True, False, True, False, True]] * 4)), (True, 1), (False,),
    (slice(None, 2), [0, 3], slice(None, None, -2)),
]

NUMPY_RECORDS = [_get(idx) for idx in GETITEM_INDICES] + [
    Rec("np_getitem_traced_ints", lambda x, i, j: getitem(x, (i, slice(None), j)),
        [_arg(3, 4, 5), _ints((2, 1), -4, 5), _ints((3,), -6, 7)],
        lambda x, i, j: jnp.asarray(x).at[i, :, j].get(mode="clip"),
        prims=("gather", "select_n"), dtypes=ALL_FLOATS, linear=True),
    Rec("np_getitem_traced_scalar", lambda x, i: getitem(x, (Ellipsis, i)),
        [_arg(2, 3), _ints((), -4, 4)],
        lambda x, i: jnp.asarray(x).at[..., i].get(mode="clip"), prims=("gather",),
        linear=True),
    Rec("np_at_set", lambda x, v: index_update_helper(x)[A([0, 2, 0]), 1:].set(v),
        [_arg(3, 4), _arg(3)],
        lambda x, v: jnp.asarray(x).at[A([0, 2, 0]), 1:].set(v),
        prims=("scatter",), dtypes=ALL_FLOATS, linear=True),
    Rec("np_at_set_weak_scalar", lambda x: index_update_helper(x)[::2, -1].set(2.0),
        [_arg(3, 4)], lambda x: jnp.asarray(x).at[::2, -1].set(2.0), prims=("scatter",),
        dtypes=ALL_FLOATS),
    Rec("np_at_add_repeated", lambda x, v: index_update_helper(x)[:, A([1, 3, 1, 1])].add(v),
        [_arg(2, 4), _arg(2, 4)],
        lambda x, v: jnp.asarray(x).at[:, A([1, 3, 1, 1])].add(v),
        prims=("scatter_add",), dtypes=ALL_FLOATS, linear=True, rtol=3e-2),
    Rec("np_at_add_traced", lambda x, v, i: index_update_helper(x)[i].add(v),
        [_arg(4, 2), _arg(3, 2), _ints((3,), -6, 6)],
        lambda x, v, i: jnp.asarray(x).at[i].add(v), prims=("scatter_add",), linear=True),
    Rec("np_at_add_int_values", lambda x: index_update_helper(x)[1:, 0].add(2),
        [Arg((3, 2), "int", (-5, 5))], lambda x: jnp.asarray(x).at[1:, 0].add(2),
        prims=("scatter_add",), diff=False),
    Rec("np_at_multiply_unique", lambda x, v: index_update_helper(x)[A([2, 0])].multiply(v),
        [_arg(3, 2), _arg(2)],
        lambda x, v: jnp.asarray(x).at[A([2, 0])].multiply(v, unique_indices=True),
        prims=("scatter_mul",)),
    Rec("np_at_min", lambda x, v: index_update_helper(x)[A([1, 1, 0]), ::-1].min(v),
        [_arg(2, 3), _arg(3, 3)], lambda x, v: jnp.asarray(x).at[A([1, 1, 0]), ::-1].min(v),
        prims=("scatter_min",), prepare=_spread),
    Rec("np_at_max", lambda x, v: index_update_helper(x)[..., A([2, -1])].max(v),
        [_arg(2, 4), _arg(2, 2)], lambda x, v: jnp.asarray(x).at[..., A([2, -1])].max(v),
        prims=("scatter_max",), prepare=_spread),
    Rec("np_at_get_fill", lambda x: index_update_helper(x)[A([0, 5, -1])].get(mode="fill"),
        [_arg(3, 2)], lambda x: jnp.asarray(x).at[A([0, 5, -1])].get(mode="fill"),
        prims=("gather",), dtypes=ALL_FLOATS, diff=False),
    Rec("np_take", lambda x, i: fnp.take(x, i, axis=1, fill_value=0.0),
        [_arg(2, 3, 2), _ints((2, 2), -5, 5)],
        lambda x, i: jnp.take(x, i, axis=1, fill_value=0.0), prims=("gather",), linear=True),
    Rec("np_take_flat_clip", lambda x, i: fnp.take(x, i, mode="clip"),
        [_arg(2, 3), _ints((4,), -8, 8)], lambda x, i: jnp.take(x, i, mode="clip"),
        prims=("gather",), linear=True),
    Rec("np_take_wrap", lambda x, i: fnp.take(x, i, axis=0, mode="wrap"),
        [_arg(3), _ints((4,), -8, 8)], lambda x, i: jnp.take(x, i, axis=0, mode="wrap"),
        prims=("gather", "rem"), linear=True),
    Rec("np_take_fill_nan", lambda x, i: fnp.take(x, i, axis=-1),
        [_arg(2, 3), _ints((4,), -5, 5)], lambda x, i: jnp.take(x, i, axis=-1),
        prims=("gather",), dtypes=ALL_FLOATS, diff=False),
    Rec("np_take_along_axis", lambda x, i: fnp.take_along_axis(x, i, axis=1, fill_value=0.0),
        [_arg(2, 4, 3), _ints((2, 2, 1), -4, 4)],
        lambda x, i: jnp.take_along_axis(x, i, axis=1, fill_value=0.0),
        prims=("gather",), linear=True),
    Rec("np_take_along_axis_clip", lambda x, i: fnp.take_along_axis(x, i, -1, mode="clip"),
        [_arg(1, 3), _ints((2, 5), -1, 4)],
        lambda x, i: jnp.take_along_axis(x, i, -1, mode="clip"), prims=("gather",),
        linear=True),
    Rec("np_put_along_axis", lambda x, v: fnp.put_along_axis(x, A([[2], [0]]), v, 1,
                                                             inplace=False),
        [_arg(2, 3), _arg(2, 1)],
        lambda x, v: jnp.put_along_axis(x, A([[2], [0]]), v, 1, inplace=False),
        prims=("scatter",), linear=True),
]
# fmt: on

RECORDS = LAX_RECORDS + NUMPY_RECORDS
