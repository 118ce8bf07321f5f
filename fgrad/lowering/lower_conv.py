"""Convolution: im2col + gemm with affine index math, and transposed convolution as gemm + col2im.

``conv_general_dilated`` computes, per spatial axis ``d``, output position
``o`` and kernel tap ``t``,

    out[n, f, o] = sum over c, t of  lhs[n, c, p / b] * rhs[f, c, t],   p = o*s + t*r - pad_lo

where the input element exists only where ``p`` is a multiple of the base
(lhs) dilation ``b`` and inside the input; ``s`` is the window stride and
``r`` the kernel (rhs) dilation. Both lowerings here spend their time in
one BLAS ``gemm`` and write each intermediate with a loop nest whose index
arithmetic is affine (no division or modulo per element):

* **im2col.** The patches ``P[g, n, o.., c, t..]`` (every input element each
  output position sees) are written to memory once and multiplied with the
  kernel by one gemm per group (rows ``(n, o..)``, columns ``(c, t..)``).
  The loop nest writing ``P`` runs over those axes themselves, never over a
  flat row and column that would have to be unflattened with divisions;
  and their order is chosen so that the innermost loop walks the input with
  its smallest stride (the channels of an NHWC image, the batch of the
  swapped operands a weight gradient convolves). Rows may come before or
  after columns (gemm's transpose flag takes either), and the kernel is
  used in place when its layout already matches (an HWIO kernel is a
  ``[(h, w, i), o]`` matrix).
* **col2im**, for a transposed convolution (lhs dilation > 1 with unit
  window strides: the gradient of a strided convolution with respect to its
  input). Multiply first, ``Z[n, i, t, f] = sum_c lhs[n, c, i] * rhs[f, c, t]``,
  then add every ``Z`` into the one output position ``o = b*i - t*r + pad_lo``
  it contributes to. The zeros the dilation would insert (3/4 of the input
  for stride 2 in 2D) are never written, read or multiplied.

Integer convolutions (no BLAS) multiply and sum the same patches in a loop nest.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import numpy as np

from fgrad.lowering.kernel_ir import (
    Cast, Const, Idx, Load, ScalarOp, Store, Value, all_of, as_idx, eq, ge, lt, select)
from fgrad.lowering.lower_dot import as_matrices, dot_loops
from fgrad.lowering.lower_rules import _reshape, _transpose, _wide
from fgrad.lowering.schedule import (
    Lazy, Scheduler, buffer_value, const_value, flat_index, loop_nest, reindex)
from fgrad.lowering.views import ShapeTracker, row_major_strides

O = ScalarOp


@dataclasses.dataclass(frozen=True)
class Geometry:
    """The sizes of one convolution, named as in the module docstring."""

    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]
    strides: tuple[int, ...]
    padding: tuple[tuple[int, int], ...]
    base: tuple[int, ...]            # lhs dilation
    dilation: tuple[int, ...]        # rhs dilation
    groups: int
    batch_groups: bool               # groups split the batch (else the features)
    n_per: int                       # batch per group
    c_per: int                       # input channels per group
    o_per: int                       # output features per group
    sp_in: tuple[int, ...]
    window: tuple[int, ...]
    sp_out: tuple[int, ...]

    @property
    def out_shape(self) -> tuple[int, ...]:
        shape = [0] * (2 + len(self.sp_out))
        shape[self.out_spec[0]], shape[self.out_spec[1]] = self.n_per, self.groups * self.o_per
        for d, n in zip(self.out_spec[2:], self.sp_out):
            shape[d] = n
        return tuple(shape)


def _geometry(lhs: Lazy, rhs: Lazy, params: dict[str, Any]) -> Geometry:
    from fgrad.primitives.conv import reduce_window_shape_tuple
    lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
    batch_groups = params["batch_group_count"] > 1
    groups = params["batch_group_count"] if batch_groups else params["feature_group_count"]
    window = tuple(rhs.shape[d] for d in rhs_spec[2:])
    sp_in = tuple(lhs.shape[d] for d in lhs_spec[2:])
    sp_out = reduce_window_shape_tuple(sp_in, window, params["window_strides"],
                                       params["padding"], params["lhs_dilation"],
                                       params["rhs_dilation"])
    return Geometry(tuple(lhs_spec), tuple(rhs_spec), tuple(out_spec),
                    tuple(params["window_strides"]), tuple(params["padding"]),
                    tuple(params["lhs_dilation"]), tuple(params["rhs_dilation"]), groups,
                    batch_groups, lhs.shape[lhs_spec[0]] // params["batch_group_count"],
                    lhs.shape[lhs_spec[1]] // params["feature_group_count"],
                    rhs.shape[rhs_spec[0]] // groups, sp_in, window, tuple(sp_out))


def _conv(s: Scheduler, lhs: Lazy, rhs: Lazy, **params: Any) -> Lazy:
    geo = _geometry(lhs, rhs, params)
    out_dtype = np.dtype(params["preferred_element_type"] or lhs.dtype)
    gemm_ok = _wide(out_dtype) in (np.dtype(np.float32), np.dtype(np.float64))
    work = _wide(out_dtype) if gemm_ok else out_dtype
    if gemm_ok and geo.groups == 1 and all(st == 1 for st in geo.strides) and (
            any(b > 1 for b in geo.base) or _multiplying_first_pays(geo)):
        result = _col2im(s, lhs, rhs, geo, work)
    else:
        result = _im2col(s, lhs, rhs, geo, work, gemm_ok)
    if result.dtype == out_dtype:
        return result
    return Lazy(result.shape, out_dtype, lambda idxs, valid: Cast(result.read(idxs, valid),
                                                                  out_dtype), cost=1)


# --- im2col ---------------------------------------------------------------------------------------

# A patch axis: ("n", 0), ("c", 0), ("o", d) or ("t", d) for spatial axis d.
Axis = tuple[str, int]


def _axis_extent(geo: Geometry, axis: Axis) -> int:
    kind, d = axis
    if kind in ("n", "c"):
        return geo.n_per if kind == "n" else geo.c_per
    return geo.sp_out[d] if kind == "o" else geo.window[d]


def _lhs_strides(x: Lazy) -> tuple[int, ...]:
    """The element strides ``x`` is read with (its logical row-major ones if computed)."""
    if x.buffer is not None and x.tracker is not None and len(x.tracker.views) == 1:
        return x.tracker.views[0].strides
    return row_major_strides(x.shape)


def _patch_layout(geo: Geometry, lhs: Lazy) -> tuple[list[Axis], list[Axis], bool]:
    """Row axes, column axes (each in loop order) and whether columns come first.

    Each axis's cost is the input stride its loop steps over; within rows and
    within columns the axes go from the largest stride outward to the smallest
    inward, and the block holding the overall smallest stride goes last, so the
    innermost loop of the im2col nest reads (nearly) consecutive elements.
    """
    strides = _lhs_strides(lhs)
    spatial = geo.lhs_spec[2:]

    def cost(axis: Axis) -> float:
        kind, d = axis
        if _axis_extent(geo, axis) == 1:
            return math.inf  # a loop of one iteration: outermost, it does not matter
        if kind == "n":
            return abs(strides[geo.lhs_spec[0]])
        if kind == "c":
            return abs(strides[geo.lhs_spec[1]])
        step = geo.strides[d] if kind == "o" else geo.dilation[d]
        return abs(step * strides[spatial[d]]) / geo.base[d]

    n_sp = len(geo.window)
    rows = sorted([("n", 0), *(("o", d) for d in range(n_sp))], key=cost, reverse=True)
    cols = sorted([("c", 0), *(("t", d) for d in range(n_sp))], key=cost, reverse=True)
    return rows, cols, cost(cols[-1]) > cost(rows[-1])


def _input_coords(geo: Geometry, g: Idx, at: dict[Axis, Idx], ndim: int
                  ) -> tuple[list[Idx], Idx | None]:
    """The lhs coordinates the patch element ``at`` reads, and where it is real (not padding)."""
    full: list[Idx] = [as_idx(0)] * ndim
    n, c = at[("n", 0)], at[("c", 0)]
    full[geo.lhs_spec[0]] = g * geo.n_per + n if geo.batch_groups else n
    full[geo.lhs_spec[1]] = c if geo.batch_groups else g * geo.c_per + c
    conds: list[Idx] = []
    for d, dim in enumerate(geo.lhs_spec[2:]):
        lo, b = -geo.padding[d][0], geo.base[d]
        p = at[("o", d)] * geo.strides[d] + at[("t", d)] * geo.dilation[d] + lo
        hi = (geo.sp_out[d] - 1) * geo.strides[d] + (geo.window[d] - 1) * geo.dilation[d] + lo
        conds += _bounds(p, lo, hi, 0, geo.sp_in[d] * b)
        if b > 1:  # only a strided transposed conv gets here (col2im takes the rest)
            conds.append(eq(p % b, 0))
            p = p // b
        full[dim] = p
    return full, all_of(conds)


def _bounds(p: Idx, lo: int, hi: int, start: int, stop: int) -> list[Idx]:
    """``start <= p < stop`` for ``p`` ranging over ``[lo, hi]``: only the tests that can fail
    (an unpadded window needs none, and its loads need no mask)."""
    return ([ge(p, start)] if lo < start else []) + ([lt(p, stop)] if hi >= stop else [])


def _patches(geo: Geometry, lhs: Lazy, order: list[Axis], work: np.dtype) -> Lazy:
    """The im2col array, shape ``(groups, *extents of order)``; zeros in the padding."""
    zero = Const(np.zeros((), work)[()], work)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        full, cond = _input_coords(geo, idxs[0], dict(zip(order, idxs[1:])), lhs.ndim)
        v = lhs.read(full, all_of([valid, cond]))
        return select(cond, v if v.dtype == work else Cast(v, work), zero)

    shape = (geo.groups, *(_axis_extent(geo, a) for a in order))
    return Lazy(shape, work, read, cost=lhs.cost + 2)


def _kernel_matrix(s: Scheduler, rhs: Lazy, geo: Geometry, cols: list[Axis], work: np.dtype,
                   gemm: bool) -> tuple[Lazy, str | None, bool]:
    """The kernel as ``[groups, o_per, *cols]`` (lazy) and, for gemm, a buffer holding it as a
    stack of ``[K, o_per]`` or ``[o_per, K]`` matrices (the flag: transposed)."""
    if rhs.stored is not None:  # a shared value: write it once for every consumer
        rhs = s.materialize(rhs)
    spatial = geo.rhs_spec[2:]
    k_dims = [geo.rhs_spec[1] if kind == "c" else spatial[d] for kind, d in cols]
    # split the output features into (group, feature in group): a view on a stored kernel
    split = list(rhs.shape)
    split[geo.rhs_spec[0]:geo.rhs_spec[0] + 1] = [geo.groups, geo.o_per]
    w = _reshape(s, rhs, new_sizes=tuple(split))
    shift = lambda d: d + 1 if d > geo.rhs_spec[0] else d  # noqa: E731
    g_dim, f_dim = geo.rhs_spec[0], geo.rhs_spec[0] + 1
    k_split = [shift(d) for d in k_dims]
    lazy = _transpose(s, w, permutation=(g_dim, f_dim, *k_split))
    if not gemm:
        return lazy, None, False
    name, trans = as_matrices(s, w, (g_dim,), (f_dim,), k_split, work, contract_last=False)
    return lazy, name, trans


def _im2col(s: Scheduler, lhs: Lazy, rhs: Lazy, geo: Geometry, work: np.dtype,
            gemm: bool) -> Lazy:
    rows, cols, cols_first = _patch_layout(geo, lhs)
    order = [*cols, *rows] if cols_first else [*rows, *cols]
    patches = _patches(geo, lhs, order, work)
    m = math.prod(_axis_extent(geo, a) for a in rows)
    k = math.prod(_axis_extent(geo, a) for a in cols)
    kernel, w_name, w_trans = _kernel_matrix(s, rhs, geo, cols, work, gemm)
    result_shape = (geo.groups, *(_axis_extent(geo, a) for a in rows), geo.o_per)
    if gemm:
        a = s.materialize(patches, name="im2col").buffer
        assert a is not None and w_name is not None
        res = s.new_buffer(result_shape, work)
        result = s.library_call("gemm", (a.name, w_name), res, batch=geo.groups, m=m,
                                n=geo.o_per, k=k, trans_a=cols_first, trans_b=w_trans)
    else:  # integer convolutions: multiply and sum in a loop nest
        pos = {axis: 1 + i for i, axis in enumerate(order)}
        result = dot_loops(s, patches, kernel, [pos[a] for a in cols],
                            list(range(2, 2 + len(cols))), (0,), (0,),
                            [pos[a] for a in rows], [1], result_shape, work)
    return _to_out_layout(s, result, geo, rows)


def _to_out_layout(s: Scheduler, result: Lazy, geo: Geometry, rows: list[Axis]) -> Lazy:
    """``result[g, *rows, f]`` seen in the output's layout: with one group a strided view
    of the buffer; with several, the output feature splits into ``(g, f)`` (a ``/`` and a
    ``%`` where it is read: merging the two axes is no view)."""
    where = {axis: 1 + i for i, axis in enumerate(rows)}
    f_axis = len(rows) + 1

    def index_map(idxs: Sequence[Idx]) -> tuple[list[Idx], Idx | None]:
        src: list[Idx] = [as_idx(0)] * result.ndim
        for d, i in enumerate(idxs):
            if d == geo.out_spec[0]:
                src[where[("n", 0)]] = i
            elif d == geo.out_spec[1]:
                src[0], src[f_axis] = (i // geo.o_per, i % geo.o_per) if geo.groups > 1 \
                    else (as_idx(0), i)
            else:
                src[where[("o", geo.out_spec.index(d) - 2)]] = i
        return src, None

    perm: list[int] = []
    for d in range(len(geo.out_spec)):
        if d == geo.out_spec[1]:
            perm += [0, f_axis]
        else:
            perm.append(where[("n", 0)] if d == geo.out_spec[0]
                        else where[("o", geo.out_spec.index(d) - 2)])
    view = (lambda t: t.transpose(perm).reshape(geo.out_shape)) if geo.groups == 1 else None
    return reindex(result, geo.out_shape, index_map, view)


# --- col2im: transposed convolution ---------------------------------------------------------------

def _multiplying_first_pays(geo: Geometry) -> bool:
    """Would multiplying first cost no more multiply-adds and write less than im2col?
    Its products ``Z`` hold one value per input position, tap and output feature;
    im2col's patches one per output position, tap and input channel. So: at most as
    many input positions as output positions (else it multiplies values no output
    reads: a weight gradient, whose "input" is the whole image, would do 3x the work),
    and fewer output features than input channels (the input gradient of a layer
    that widens its channels, 32 -> 16 in a CNN's backward pass, writes 29 MB instead
    of 58)."""
    n_in, n_out = math.prod(geo.sp_in), math.prod(geo.sp_out)
    return n_in <= n_out and n_in * geo.o_per < n_out * geo.c_per


def _col2im(s: Scheduler, lhs: Lazy, rhs: Lazy, geo: Geometry, work: np.dtype) -> Lazy:
    n_sp = len(geo.window)
    # Z[(n, i..), (t.., f)] = lhs[(n, i..), c] @ rhs[c, (t.., f)]
    a, trans_a = as_matrices(s, lhs, (), (geo.lhs_spec[0], *geo.lhs_spec[2:]),
                              (geo.lhs_spec[1],), work, contract_last=True)
    b, trans_b = as_matrices(s, rhs, (), (*geo.rhs_spec[2:], geo.rhs_spec[0]),
                              (geo.rhs_spec[1],), work, contract_last=False)
    z_shape = (geo.n_per, *geo.sp_in, *geo.window, geo.o_per)
    z = s.new_buffer(z_shape, work)
    s.library_call("gemm", (a, b), z, batch=1, m=geo.n_per * math.prod(geo.sp_in),
                   n=geo.o_per * math.prod(geo.window), k=geo.c_per, trans_a=trans_a,
                   trans_b=trans_b)
    out_shape = (geo.n_per, *geo.sp_out, geo.o_per)
    if all(b == 1 for b in geo.base):  # each output position gathers its taps' products
        return _gather_taps(s, z, geo, work)
    out = s.new_buffer(out_shape, work)
    s.materialize(const_value(0, out_shape, work), name="zeros", out=out)

    def body(idxs: list[Idx]) -> list[Any]:
        n, i, t, f = idxs[0], idxs[1:1 + n_sp], idxs[1 + n_sp:1 + 2 * n_sp], idxs[-1]
        conds: list[Idx] = []
        o = []
        for d in range(n_sp):
            base, r, pad = geo.base[d], geo.dilation[d], geo.padding[d][0]
            o.append(i[d] * base + t[d] * -r + pad)
            conds += _bounds(o[-1], pad - (geo.window[d] - 1) * r,
                             base * (geo.sp_in[d] - 1) + pad, 0, geo.sp_out[d])
        inside = all_of(conds)
        value = Load(z.name, flat_index(idxs, z_shape), work)
        return [Store(out.name, flat_index([n, *o, f], out_shape), value, op=O.ADD,
                      mask=inside)]

    # sequential: several (i, t) add into one output position
    s.emit("col2im", loop_nest(z_shape, body, parallel=False))
    result = buffer_value(out, ShapeTracker.contiguous(out_shape))
    # result[n, o.., f] -> out layout; reuse the im2col view helper with g = 1 in front
    grouped = _reshape(s, result, new_sizes=(1, *out_shape))
    return _to_out_layout(s, grouped, geo, [("n", 0), *(("o", d) for d in range(n_sp))])


def _gather_taps(s: Scheduler, z: Any, geo: Geometry, work: np.dtype) -> Lazy:
    """Without lhs dilation every output position ``o`` reads the product of tap ``t``
    at input position ``i = o + t*r - pad_lo`` (where that exists): a sum over the taps,
    parallel over the output, instead of a sequential scatter into zeros."""
    n_sp = len(geo.window)
    z_shape = (geo.n_per, *geo.sp_in, *geo.window, geo.o_per)
    products = buffer_value(z, ShapeTracker.contiguous(z_shape))
    shape = (geo.n_per, *geo.sp_out, *geo.window, geo.o_per)

    def index_map(idxs: Sequence[Idx]) -> tuple[list[Idx], Idx | None]:
        n, o, t, f = idxs[0], idxs[1:1 + n_sp], idxs[1 + n_sp:1 + 2 * n_sp], idxs[-1]
        i, conds = [], []
        for d in range(n_sp):
            r, pad = geo.dilation[d], geo.padding[d][0]
            i.append(o[d] + t[d] * r + -pad)
            conds += _bounds(i[-1], -pad, geo.sp_out[d] - 1 + (geo.window[d] - 1) * r - pad,
                             0, geo.sp_in[d])
        return [n, *i, *t, f], all_of(conds)

    summed = s.reduce(reindex(products, shape, index_map), O.ADD,
                      tuple(range(1 + n_sp, 1 + 2 * n_sp)), work, name="col2im")
    grouped = _reshape(s, summed, new_sizes=(1, geo.n_per, *geo.sp_out, geo.o_per))
    return _to_out_layout(s, grouped, geo, [("n", 0), *(("o", d) for d in range(n_sp))])


RULES = {"conv_general_dilated": _conv}

__all__ = ["RULES", "Geometry"]
