"""``dot_general`` as a batched ``gemm`` library call, and the operand layouts gemm needs.

BLAS multiplies stacks of row-major matrices, each operand optionally
transposed (the ``trans_a`` / ``trans_b`` flags). ``as_matrices`` finds a
way to hand it an operand without copying: a stored operand whose axes
already lie as ``[batch, rows, cols]`` (or transposed) is used in place;
otherwise one kernel writes it out in a layout gemm takes. Integer products
(no BLAS) are a loop nest instead: broadcast, multiply, sum.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.lowering.kernel_ir import Cast, Idx, ScalarOp, alu, as_idx
from fgrad.lowering.lower_rules import _transpose
from fgrad.lowering.schedule import Lazy, Scheduler, elementwise, reindex

O = ScalarOp


def as_matrices(s: Scheduler, x: Lazy, batch: Sequence[int], free: Sequence[int],
                 contract: Sequence[int], dtype: np.dtype, contract_last: bool
                 ) -> tuple[str, bool]:
    """``x`` as a stack of matrices [batch, free, contract] (or [batch, contract, free]).

    Returns the buffer name and whether the library must transpose it. A
    stored operand whose axes already lie in either order is used in place.
    Otherwise a copy is written: in the operand's own axis order when gemm can
    take that (a plain copy: consecutive reads and writes), else transposed.

    Transposing the right-hand operand (``trans_b``) makes BLAS noticeably
    slower on small products, so inside a loop a program input or constant
    that would need it is transposed once, before the outermost loop.
    """
    b = math.prod(x.shape[d] for d in batch)
    f = math.prod(x.shape[d] for d in free)
    k = math.prod(x.shape[d] for d in contract)
    first, second = (free, contract) if contract_last else (contract, free)
    options = ((False, (*batch, *first, *second)), (True, (*batch, *second, *first)))
    if x.stored is not None:  # a shared value: write it once for every consumer
        x = s.materialize(x)
    if x.buffer is not None and x.dtype == dtype:
        for trans, order in options:
            view = x.tracker.transpose(order).reshape(
                (b, f, k) if contract_last != trans else (b, k, f))
            if len(view.views) == 1 and view.views[0].is_contiguous():
                if trans and not contract_last and s.in_loop and x.buffer.name in s.immutable:
                    with s.at_top_level():
                        return _written(s, x, options[0][1], dtype), False
                return x.buffer.name, trans
    trans, order = options[1] if contract_last and options[1][1] == tuple(range(x.ndim)) \
        else options[0]
    return _written(s, x, order, dtype), trans


def _written(s: Scheduler, x: Lazy, order: tuple[int, ...], dtype: np.dtype) -> str:
    """A new buffer holding ``x`` transposed by ``order``, converted to ``dtype``."""
    y = _transpose(s, x, permutation=order)
    if y.dtype != dtype:
        y = elementwise(lambda v: Cast(v, dtype), y, dtype=dtype)
    return s.materialize(y, name="layout").buffer.name  # type: ignore[union-attr]


def _dot_general(s: Scheduler, lhs: Lazy, rhs: Lazy, *, dimension_numbers: Any,
                 precision: Any, preferred_element_type: Any) -> Lazy:
    (lc, rc), (lb, rb) = dimension_numbers
    out_dtype = np.dtype(preferred_element_type or lhs.dtype)
    lf = [d for d in range(lhs.ndim) if d not in lc and d not in lb]
    rf = [d for d in range(rhs.ndim) if d not in rc and d not in rb]
    out_shape = (tuple(lhs.shape[d] for d in lb) + tuple(lhs.shape[d] for d in lf)
                 + tuple(rhs.shape[d] for d in rf))
    compute = out_dtype if out_dtype in (np.dtype(np.float32), np.dtype(np.float64)) else None
    if dtypes.is_float(out_dtype) and out_dtype.itemsize == 2:
        compute = np.dtype(np.float32)  # 16-bit floats: a float32 gemm, rounded once (as XLA)
    if compute is None:
        return dot_loops(s, lhs, rhs, lc, rc, lb, rb, lf, rf, out_shape, out_dtype)
    a, trans_a = as_matrices(s, lhs, lb, lf, lc, compute, contract_last=True)
    b, trans_b = as_matrices(s, rhs, rb, rf, rc, compute, contract_last=False)
    out = s.new_buffer(out_shape, compute)
    result = s.library_call("gemm", (a, b), out, batch=math.prod(lhs.shape[d] for d in lb),
                            m=math.prod(lhs.shape[d] for d in lf),
                            n=math.prod(rhs.shape[d] for d in rf),
                            k=math.prod(lhs.shape[d] for d in lc), trans_a=trans_a,
                            trans_b=trans_b)
    if compute == out_dtype:
        return result
    return elementwise(lambda v: Cast(v, out_dtype), result, dtype=out_dtype)


def dot_loops(s: Scheduler, lhs: Lazy, rhs: Lazy, lc: Any, rc: Any, lb: Any, rb: Any,
               lf: Any, rf: Any, out_shape: tuple[int, ...], out_dtype: np.dtype) -> Lazy:
    """Integer (and other non-BLAS) products as a loop nest: broadcast, multiply, sum."""
    nb, nlf = len(lb), len(lf)
    k_shape = [lhs.shape[d] for d in lc]
    full = out_shape + tuple(k_shape)

    def place(x: Lazy, batch: Any, free: Any, contract: Any, free_at: int) -> Lazy:
        def index_map(idxs: Sequence[Idx]) -> tuple[list[Idx], Idx | None]:
            src: list[Idx] = [as_idx(0)] * x.ndim
            for j, d in enumerate(batch):
                src[d] = idxs[j]
            for j, d in enumerate(free):
                src[d] = idxs[free_at + j]
            for j, d in enumerate(contract):
                src[d] = idxs[len(out_shape) + j]
            return src, None
        return reindex(x, full, index_map)

    a = place(lhs, lb, lf, lc, nb)
    b = place(rhs, rb, rf, rc, nb + nlf)
    prod = elementwise(lambda u, v: alu(O.MUL, Cast(u, out_dtype), Cast(v, out_dtype)), a, b,
                       dtype=out_dtype)
    axes = tuple(range(len(out_shape), len(full)))
    return s.reduce(prod, O.ADD, axes, out_dtype, name="dot")


RULES: dict[str, Callable[..., Any]] = {"dot_general": _dot_general}

__all__ = ["RULES", "as_matrices", "dot_loops"]
