"""Lowering rules for windowed primitives: pooling, its derivatives, and convolution.

All of them read their input through one *window view*: a lazy value of
shape ``out_shape + window_shape`` whose element ``(o, w)`` is the input at
``p = o * stride + w * window_dilation - pad_low`` (per axis), divided by
the base dilation, and the fill value wherever ``p`` falls in padding or
between dilated elements. Nothing is copied to build it; then

* ``reduce_window_*`` reduces the window axes (one kernel);
* max/min pooling's derivative pair first finds each window's chosen tap
  (two passes: the extreme value, then its first position) and then
  gathers from, or scatter-adds into, that tap;
* a convolution materializes the window view once as an im2col matrix
  (grouped) and multiplies it with the kernel through ``gemm``.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.lowering.kernel_ir import (
    Alu, Cast, Const, Idx, IndexValue, ScalarOp, Store, Value, all_of, alu, as_idx, eq,
    from_value, ge, lt)
from fgrad.lowering.lower_rules import _wide, _dot_loops
from fgrad.lowering.schedule import (
    Lazy, Scheduler, buffer_value, const_value, elementwise, flat_index, loop_nest)
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


def _flag(cond: Idx) -> Value:
    return Cast(IndexValue(cond, np.dtype(np.int64)), np.dtype(bool))


def window_view(x: Lazy, fill: Any, w: Window, dtype: np.dtype | None = None) -> Lazy:
    """``x`` seen as ``out_shape + window_shape`` windows, ``fill`` in the padding."""
    n = x.ndim
    dtype = np.dtype(dtype or x.dtype)
    shape = _out_shape(x.shape, w) + tuple(w["window_dimensions"])
    fill_value = Const(np.asarray(fill).astype(dtype)[()], dtype)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        src, cond = _source(idxs[:n], idxs[n:], x.shape, w)
        v = x.read(src, all_of([c for c in (valid, cond) if c]))
        v = v if v.dtype == dtype else Cast(v, dtype)
        return v if cond is None else Alu(O.WHERE, (_flag(cond), v, fill_value), dtype)

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
        v = t.read(src, all_of([c for c in (valid, cond) if c]))
        return v if cond is None else Alu(O.WHERE, (_flag(cond), v, zero), t.dtype)

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


# --- convolution: grouped im2col + gemm ---------------------------------------------------------

def _conv(s: Scheduler, lhs: Lazy, rhs: Lazy, *, window_strides: tuple[int, ...],
          padding: Any, lhs_dilation: tuple[int, ...], rhs_dilation: tuple[int, ...],
          dimension_numbers: Any, feature_group_count: int, batch_group_count: int,
          precision: Any, preferred_element_type: Any) -> Lazy:
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    out_dtype = np.dtype(preferred_element_type or lhs.dtype)
    gemm_ok = out_dtype in (np.dtype(np.float32), np.dtype(np.float64)) or (
        out_dtype.kind == "f" and out_dtype.itemsize == 2)
    work = _wide(out_dtype) if gemm_ok else out_dtype
    n_sp = len(window_strides)
    batch, chans = lhs.shape[lhs_spec[0]], lhs.shape[lhs_spec[1]]
    n_out, c_in = rhs.shape[rhs_spec[0]], rhs.shape[rhs_spec[1]]
    win = tuple(rhs.shape[d] for d in rhs_spec[2:])
    sp_in = tuple(lhs.shape[d] for d in lhs_spec[2:])
    groups = batch_group_count if batch_group_count > 1 else feature_group_count
    n_per = batch // batch_group_count        # batch per group (batch groups split N)
    c_per = chans // feature_group_count      # channels per group (= c_in)
    w = dict(window_dimensions=win, window_strides=window_strides, padding=padding,
             base_dilation=lhs_dilation, window_dilation=rhs_dilation)
    out_sp = _out_shape(sp_in, w)
    m, k, o_per = n_per * math.prod(out_sp), c_per * math.prod(win), n_out // groups

    def patch(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        # idxs = (g, row, col): row = (n', *out_sp) and col = (c', *win), both row-major
        g, row, col = idxs
        n_i, *o = _unflat(row, (n_per, *out_sp))
        c_i, *taps = _unflat(col, (c_per, *win))
        src_sp, cond = _source(o, taps, sp_in, w)
        full: list[Idx] = [as_idx(0)] * lhs.ndim
        full[lhs_spec[0]] = g * n_per + n_i if batch_group_count > 1 else n_i
        full[lhs_spec[1]] = c_i if batch_group_count > 1 else g * c_per + c_i
        for d, p in zip(lhs_spec[2:], src_sp):
            full[d] = p
        v = lhs.read(full, all_of([c for c in (valid, cond) if c]))
        v = v if v.dtype == work else Cast(v, work)
        zero = Const(np.zeros((), work)[()], work)
        return v if cond is None else Alu(O.WHERE, (_flag(cond), v, zero), work)

    def kernel(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        g, o_i, col = idxs  # (g, o', (c', *win))
        c_i, *taps = _unflat(col, (c_in, *win))
        full: list[Idx] = [as_idx(0)] * rhs.ndim
        full[rhs_spec[0]] = g * o_per + o_i
        full[rhs_spec[1]] = c_i
        for d, t in zip(rhs_spec[2:], taps):
            full[d] = t
        v = rhs.read(full, valid)
        return v if v.dtype == work else Cast(v, work)

    patches = Lazy((groups, m, k), work, patch, cost=lhs.cost + 2)
    weights = Lazy((groups, o_per, k), work, kernel, cost=rhs.cost + 1)
    if gemm_ok:
        a = s.materialize(patches, name="im2col").buffer
        b = s.materialize(weights, name="conv_kernel").buffer
        res = s.new_buffer((groups, m, o_per), work)
        result = s.library_call("gemm", (a.name, b.name), res, batch=groups, m=m, n=o_per, k=k,
                                trans_a=False, trans_b=True)
    else:  # integer convolutions: multiply and sum in a loop nest
        result = _dot_loops(s, patches, weights, (2,), (2,), (0,), (0,), [1], [1],
                            (groups, m, o_per), work)
    out_shape = [0] * (2 + n_sp)
    out_shape[out_spec[0]], out_shape[out_spec[1]] = n_per, n_out
    for d, n in zip(out_spec[2:], out_sp):
        out_shape[d] = n

    def read_out(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        n_i, f = idxs[out_spec[0]], idxs[out_spec[1]]
        row = flat_index([n_i, *[idxs[d] for d in out_spec[2:]]], (n_per, *out_sp))
        v = result.read([f // o_per, row, f % o_per], valid)
        return v if v.dtype == out_dtype else Cast(v, out_dtype)

    return Lazy(out_shape, out_dtype, read_out, cost=1)


def _unflat(flat: Idx, shape: Sequence[int]) -> list[Idx]:
    return [(flat // st) % n if st else as_idx(0) for n, st in zip(shape, row_major_strides(shape))]


RULES: dict[str, Callable[..., Any]] = {
    "reduce_window_sum": _reduce_window(O.ADD),
    "reduce_window_max": _reduce_window(O.MAX),
    "reduce_window_min": _reduce_window(O.MIN),
    "select_and_gather_add": _select_and_gather_add,
    "select_and_scatter_add": _select_and_scatter_add,
    "conv_general_dilated": _conv,
}

__all__ = ["RULES", "window_view"]
