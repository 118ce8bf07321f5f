"""Lowering rules for windowed primitives: pooling and its derivatives.

All of them read their input through one *window view*: a lazy value of
shape ``out_shape + window_shape`` whose element ``(o, w)`` is the input at
``p = o * stride + w * window_dilation - pad_low`` (per axis), divided by
the base dilation, and the fill value wherever ``p`` falls in padding or
between dilated elements. Nothing is copied to build it; then

* ``reduce_window_*`` reduces the window axes (one kernel);
* max/min pooling's derivative pair first finds each window's chosen tap
  (two passes: the extreme value, then its first position) and then
  gathers from, or scatter-adds into, that tap.

Convolution has its own module, ``lower_conv.py``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.lowering.kernel_ir import (
    Cast, Const, Idx, IndexValue, ScalarOp, Store, Value, all_of, alu, as_idx, eq,
    from_value, ge, lt, select)
from fgrad.lowering.lower_rules import _wide
from fgrad.lowering.schedule import (
    Lazy, Scheduler, buffer_value, const_value, flat_index, loop_nest)
from fgrad.lowering.semantics import identity
from fgrad.lowering.views import row_major_strides

O = ScalarOp
Window = dict[str, Any]  # window_dimensions, window_strides, padding, base/window_dilation


def _out_shape(shape: Sequence[int], w: Window) -> tuple[int, ...]:
    from fgrad.primitives.conv import reduce_window_shape_tuple
    return reduce_window_shape_tuple(shape, w["window_dimensions"], w["window_strides"],
                                     w["padding"], w["base_dilation"], w["window_dilation"])


def _source(o: Sequence[Idx], taps: Sequence[Idx], shape: Sequence[int], w: Window
            ) -> tuple[list[Idx], Idx | None]:
    """Input coordinates of window tap ``taps`` at output ``o``, and where they are real."""
    src, conds = [], []
    for d, (oi, ti) in enumerate(zip(o, taps)):
        lo = w["padding"][d][0]
        p = oi * w["window_strides"][d] + ti * w["window_dilation"][d] + (-lo)
        b = w["base_dilation"][d]
        conds.append(ge(p, 0))
        if b > 1:
            conds.append(eq(p % b, 0))
            p = p // b
        conds.append(lt(p, shape[d]))
        src.append(p)
    return src, all_of(conds)



def window_view(x: Lazy, fill: Any, w: Window, dtype: np.dtype | None = None) -> Lazy:
    """``x`` seen as ``out_shape + window_shape`` windows, ``fill`` in the padding."""
    n = x.ndim
    dtype = np.dtype(dtype or x.dtype)
    shape = _out_shape(x.shape, w) + tuple(w["window_dimensions"])
    fill_value = Const(np.asarray(fill).astype(dtype)[()], dtype)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        src, cond = _source(idxs[:n], idxs[n:], x.shape, w)
        v = x.read(src, all_of([valid, cond]))
        v = v if v.dtype == dtype else Cast(v, dtype)
        return select(cond, v, fill_value)

    return Lazy(shape, dtype, read, cost=x.cost + 2)


def _window_params(params: dict[str, Any]) -> Window:
    return {k: params[k] for k in ("window_dimensions", "window_strides", "padding",
                                   "base_dilation", "window_dilation")}


def _reduce_window(op: O) -> Callable[..., Lazy]:
    def rule(s: Scheduler, x: Lazy, **params: Any) -> Lazy:
        w = _window_params(params)
        wide = _wide(x.dtype)
        view = window_view(x, identity(op, wide), w, wide)
        axes = tuple(range(x.ndim, 2 * x.ndim))
        return s.reduce(view, op, axes, x.dtype, acc_dtype=wide,
                        name=f"reduce_window_{op.name.lower()}")
    return rule


# --- max/min pooling derivatives: find each window's chosen tap ---------------------------------

def _chosen_taps(s: Scheduler, x: Lazy, select_max: bool, w: Window) -> Lazy:
    """Per output window, the row-major index of its first extreme tap (a buffer)."""
    op = O.MAX if select_max else O.MIN
    wide = _wide(x.dtype)
    view = window_view(x, identity(op, wide), w, wide)
    n = x.ndim
    axes = tuple(range(n, 2 * n))
    best = s.reduce(view, op, axes, wide, name="window_extreme")
    n_taps = math.prod(w["window_dimensions"])
    i64 = np.dtype(np.int64)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        v, m = view.read(idxs, valid), best.read(idxs[:n], valid)
        hit = alu(O.CMPEQ, v, m)
        if wide.kind == "f":  # NaN is the extreme: the first NaN wins
            hit = alu(O.OR, hit, alu(O.AND, alu(O.CMPNE, v, v), alu(O.CMPNE, m, m)))
        tap = IndexValue(flat_index(idxs[n:], w["window_dimensions"]), i64)
        return alu(O.WHERE, hit, tap, Const(np.int64(n_taps), i64))

    candidates = Lazy(view.shape, i64, read, cost=view.cost + 4)
    return s.reduce(candidates, O.MIN, axes, i64, name="window_first_extreme")


def _tap_coords(tap: Idx, window: Sequence[int]) -> list[Idx]:
    return [(tap // st) % k if st else as_idx(0)
            for k, st in zip(window, row_major_strides(window))]


def _select_and_gather_add(s: Scheduler, t: Lazy, x: Lazy, *, select_prim: Any,
                           **params: Any) -> Lazy:
    from fgrad.primitives.elementwise import ge_p
    w = _window_params(params)
    taps = _chosen_taps(s, x, select_prim is ge_p, w)
    zero = Const(np.zeros((), t.dtype)[()], t.dtype)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        tap = from_value(taps.read(idxs, valid))
        src, cond = _source(idxs, _tap_coords(tap, w["window_dimensions"]), x.shape, w)
        v = t.read(src, all_of([valid, cond]))
        return select(cond, v, zero)

    return Lazy(taps.shape, t.dtype, read, cost=t.cost + 3)


def _select_and_scatter_add(s: Scheduler, source: Lazy, x: Lazy, *, select_prim: Any,
                            **params: Any) -> Lazy:
    from fgrad.primitives.elementwise import ge_p
    w = _window_params(params)
    taps = _chosen_taps(s, x, select_prim is ge_p, w)
    out = s.new_buffer(x.shape, source.dtype)
    s.materialize(const_value(0, x.shape, source.dtype), name="zeros", out=out)

    def body(o: list[Idx]) -> list[Any]:
        tap = from_value(taps.read(o, None))
        src, cond = _source(o, _tap_coords(tap, w["window_dimensions"]), x.shape, w)
        return [Store(out.name, flat_index(src, x.shape), source.read(o, None), op=O.ADD,
                      mask=cond)]

    s.emit("select_and_scatter_add", loop_nest(taps.shape, body, parallel=False))
    return buffer_value(out)


RULES: dict[str, Callable[..., Any]] = {
    "reduce_window_sum": _reduce_window(O.ADD),
    "reduce_window_max": _reduce_window(O.MAX),
    "reduce_window_min": _reduce_window(O.MIN),
    "select_and_gather_add": _select_and_gather_add,
    "select_and_scatter_add": _select_and_scatter_add,
}

__all__ = ["RULES", "window_view"]
