"""Lowering rules for control flow: ``cond``, ``while`` and ``scan`` become native branches
and loops inside the program's one entry point.

The values a loop or a branch hands on live in buffers allocated once:

* ``cond``: the index goes to a one-element buffer; each branch is scheduled
  into its own list of steps that ends by writing the shared output buffers;
* ``while``: the carry lives in buffers; the condition's steps write a bool
  buffer that the native loop tests; the body computes the new carry into
  temporaries first (it may read any old carry while computing any new
  one) and then copies them over;
* ``scan``: the same carry handling, plus a step counter buffer that the
  native loop writes before each iteration; the body's kernels read it to
  pick row ``i`` of every ``xs`` and to write row ``i`` of every ``ys``
  (``length - 1 - i`` when ``reverse``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.lowering.kernel_ir import (
    Idx, IndexValue, Load, Store, Value, as_idx, const, from_value, imax, imin)
from fgrad.lowering.schedule import (
    Branch, Buffer, Lazy, Repeat, Scheduler, WhileLoop, buffer_value, elementwise, flat_index,
    loop_nest)


def _write(s: Scheduler, values: Sequence[Lazy], avals: Sequence[Any]) -> list[Buffer]:
    """Fresh buffers holding ``values`` (always copied: loop state must not alias)."""
    bufs = []
    for v, aval in zip(values, avals):
        buf = s.new_buffer(aval.shape, aval.dtype)
        s.materialize(v, name="store", out=buf)
        bufs.append(buf)
    return bufs


def _copy(s: Scheduler, sources: Sequence[Buffer], targets: Sequence[Buffer]) -> None:
    for src, dst in zip(sources, targets):
        s.materialize(buffer_value(src), name="carry", out=dst)


def _cond(s: Scheduler, index: Lazy, *operands: Lazy, branches: Sequence[Any]) -> list[Lazy]:
    n = len(branches)
    clamped = elementwise(lambda v: IndexValue(imin(imax(from_value(v), 0), n - 1),
                                               np.dtype(np.int32)), index,
                          dtype=np.dtype(np.int32))
    index_buf = s.new_buffer((), np.int32)
    s.materialize(clamped, name="branch_index", out=index_buf)
    avals = branches[0].out_avals
    outs = [s.new_buffer(a.shape, a.dtype) for a in avals]
    cases = []
    for branch in branches:
        with s.collect() as steps:
            results = s.run_jaxpr(branch, operands)
            for r, o in zip(results, outs):
                s.materialize(r, name="branch_out", out=o)
        cases.append(tuple(steps))
    s.steps.append(Branch(index_buf.name, tuple(cases)))
    return [buffer_value(o) for o in outs]


def _while(s: Scheduler, *operands: Lazy, cond_jaxpr: Any, cond_nconsts: int,
           body_jaxpr: Any, body_nconsts: int) -> list[Lazy]:
    cond_consts = operands[:cond_nconsts]
    body_consts = operands[cond_nconsts:cond_nconsts + body_nconsts]
    init = operands[cond_nconsts + body_nconsts:]
    avals = body_jaxpr.out_avals
    carry = _write(s, init, avals)
    carry_values = [buffer_value(c) for c in carry]
    pred = s.new_buffer((), np.bool_)
    with s.collect() as cond_steps:
        (p,) = s.run_jaxpr(cond_jaxpr, [*cond_consts, *carry_values])
        s.materialize(p, name="while_pred", out=pred)
    with s.collect() as body_steps:
        new = s.run_jaxpr(body_jaxpr, [*body_consts, *carry_values])
        _copy(s, _write(s, new, avals), carry)
    s.steps.append(WhileLoop(tuple(cond_steps), pred.name, tuple(body_steps)))
    return carry_values


def _scan(s: Scheduler, *operands: Lazy, jaxpr: Any, num_consts: int, num_carry: int,
          length: int, reverse: bool, **_: Any) -> list[Lazy]:
    consts = operands[:num_consts]
    init = operands[num_consts:num_consts + num_carry]
    xs = operands[num_consts + num_carry:]
    out_avals = jaxpr.out_avals
    carry_avals, y_avals = out_avals[:num_carry], out_avals[num_carry:]
    carry = _write(s, init, carry_avals)
    carry_values = [buffer_value(c) for c in carry]
    ys = [s.new_buffer((length, *a.shape), a.dtype) for a in y_avals]
    counter = s.new_buffer((), np.int64)
    step = from_value(Load(counter.name, const(0), np.dtype(np.int64)))
    row = step * -1 + (length - 1) if reverse else step

    def slice_of(x: Lazy) -> Lazy:
        return Lazy(x.shape[1:], x.dtype, lambda idxs, valid: x.read([row, *idxs], valid),
                    cost=x.cost)

    with s.collect() as body:
        results = s.run_jaxpr(jaxpr, [*consts, *carry_values, *map(slice_of, xs)])
        new_carry, new_ys = results[:num_carry], results[num_carry:]
        temps = _write(s, new_carry, carry_avals)
        for y, buf in zip(new_ys, ys):
            _store_row(s, y, buf, row)
        _copy(s, temps, carry)
    s.steps.append(Repeat(counter.name, length, tuple(body)))
    return [*carry_values, *(buffer_value(b) for b in ys)]


def _store_row(s: Scheduler, y: Lazy, buf: Buffer, row: Idx) -> None:
    """``buf[row] = y`` for the current step's row."""
    size = int(np.prod(y.shape, dtype=np.int64))

    def body(idxs: list[Idx]) -> list[Any]:
        value: Value = y.read(idxs, None)
        return [Store(buf.name, row * size + flat_index(idxs, y.shape), value)]

    s.emit("scan_ys", loop_nest(y.shape, body) if y.shape else body([]))


RULES: dict[str, Callable[..., Any]] = {"cond": _cond, "while": _while, "scan": _scan}

__all__ = ["RULES", "as_idx"]
