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
from fgrad.lowering.kernel_ir import (
    Alu, Cast, Const, Idx, Kernel, Load, Loop, ScalarOp, Store, alu, as_idx, var)
from fgrad.lowering.lower_rules import _transpose
from fgrad.lowering.schedule import (
    Buffer, Lazy, LibraryCall, Program, Scheduler, Step, elementwise, reindex, step_buffers)

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



# --- folding an update into the product: p + alpha * (a @ b) as one gemm ----------------------

def fold_gemm_updates(program: Program) -> Program:
    """Let gemm compute ``out = p + alpha * (a @ b)`` itself (BLAS's ``beta = 1``).

    An optimizer step ``w - lr * grad`` whose ``grad`` is a product written only for
    it, ``t = gemm(a, b)`` then ``out[i] = p[i] - c * t[i]``, costs a zeroing of ``t``
    inside BLAS, the product, and a pass reading ``p`` and ``t``. Here it becomes
    ``out = gemm(a, b, p; alpha=-c)``: each block of ``out`` is copied from ``p``
    just before BLAS adds its block of the product to it (``beta = 1``), and ``t``
    is never written. The call stays where the product was when ``p`` is ready
    there (an optimizer's weights are inputs), so its operands are still in cache.
    Only top-level steps are rewritten (buffers there are written once, so ``a`` and
    ``b`` still hold their values at the update's place).
    """
    steps = list(program.steps)
    for g, gemm in enumerate(steps):
        if not (isinstance(gemm, LibraryCall) and gemm.name == "gemm" and len(gemm.args) == 3):
            continue
        t = gemm.args[-1]
        users = [i for i, step in enumerate(steps) if i != g and _mentions(step, t)]
        if t in program.outputs or len(users) != 1 or not isinstance(steps[users[0]], Kernel):
            continue
        update = _update_of(steps[users[0]], t, program.buffers[t])
        if update is None:
            continue
        p, out, alpha = update
        if any(_mentions(step, out) for i, step in enumerate(steps) if i != users[0]):
            continue
        params = {**dict(gemm.params), "alpha": alpha}
        fused = (LibraryCall("gemm", (*gemm.args[:-1], p, out), tuple(params.items())),)
        # at the product's place if p is ready there (its operands are still in cache),
        # else at the update's
        ready = p in program.inputs or p in program.consts or not any(
            _mentions(step, p) for step in steps[g:users[0]])
        steps[g], steps[users[0]] = (fused, ()) if ready else ((), fused)
        program.buffers.pop(t)
    flat: list[Step] = []
    for step in steps:
        flat.extend(step if isinstance(step, tuple) else [step])
    return Program(program.buffers, program.inputs, program.consts, program.outputs, flat)


def _mentions(step: Any, name: str) -> bool:
    """Does ``step`` (a step, or a tuple of steps) read or write buffer ``name``?"""
    steps = step if isinstance(step, tuple) else (step,)
    return any(name in step_buffers(s) for s in steps)


def _update_of(kernel: Kernel, t: str, buf: Buffer) -> tuple[str, str, float] | None:
    """(p, out, alpha) if ``kernel`` is exactly ``out[i] = p[i] + alpha * t[i]`` over all
    of ``t`` (written ``p + t``, ``t + p``, ``p - t``, ``p - c * t``, ``p + c * t``)."""
    if len(kernel.body) != 1 or not isinstance(kernel.body[0], Loop):
        return None
    loop = kernel.body[0]
    if loop.extent != buf.size or len(loop.body) != 1 or not isinstance(loop.body[0], Store):
        return None
    store, i = loop.body[0], var(loop.var)
    if store.op is not None or store.mask is not None or store.index != i:
        return None

    def load(v: Any) -> str | None:
        ok = isinstance(v, Load) and v.index == i and v.mask is None and v.dtype == buf.dtype
        return v.buf if ok else None

    def scaled_t(v: Any) -> float | None:  # t[i] or c * t[i]: the factor
        if load(v) == t:
            return 1.0
        if isinstance(v, Alu) and v.op is O.MUL:
            for c, x in (v.args, v.args[::-1]):
                if isinstance(c, Const) and c.dtype == buf.dtype and load(x) == t:
                    return float(c.value)
        return None

    v = store.value
    if not (isinstance(v, Alu) and v.op in (O.ADD, O.SUB) and v.dtype == buf.dtype):
        return None
    orders = [v.args, v.args[::-1]] if v.op is O.ADD else [v.args]
    for p_value, t_value in orders:
        p, factor = load(p_value), scaled_t(t_value)
        if p is not None and p not in (t, store.buf) and factor is not None:
            return p, store.buf, -factor if v.op is O.SUB else factor
    return None


__all__ = ["RULES", "as_matrices", "dot_loops", "fold_gemm_updates"]
