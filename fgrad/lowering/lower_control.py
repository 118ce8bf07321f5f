"""Lowering rules for control flow: ``cond``, ``while`` and ``scan`` become native branches
and loops inside the program's one entry point.

The values a loop or a branch hands on live in buffers allocated once:

* ``cond``: the index goes to a one-element buffer; each branch is scheduled
  into its own list of steps that ends by writing the shared output buffers;
* ``while``: the carry lives in buffers; the condition's steps write a bool
  buffer that the native loop tests; the body then updates the carry
  (``_update_carry``): a carry passed through unchanged costs nothing, a new
  value is written straight into its carry buffer when no other pending
  update still reads that buffer (``c + delta`` reads its own element only),
  and the rest (a swap ``(a, b) -> (b, a)``, say) go through temporaries;
* ``scan``: the same carry handling, plus a step counter buffer that the
  native loop writes before each iteration; the body's kernels read it to
  pick row ``i`` of every ``xs`` and to write row ``i`` of every ``ys``
  (``length - 1 - i`` when ``reverse``). The ``ys`` rows are written before
  the carry changes (they may read the old one); a value that is both a ``y``
  and read again (the new hidden state of an RNN is also the next carry) is
  then read back from its row instead of being recomputed.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.lowering.kernel_ir import (
    Alu, Cast, Idx, IndexValue, Load, Loop, Stmt, Store, Value, as_idx, const, from_value, imax,
    imin)
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


def _store_body(v: Lazy, buf: Buffer) -> list[Stmt]:
    return loop_nest(v.shape, lambda idxs: [Store(buf.name, flat_index(idxs, v.shape),
                                                  v.read(idxs, None))])


def _update_carry(s: Scheduler, new: Sequence[Lazy], carry: Sequence[Buffer]) -> None:
    """Write the loop body's ``new`` carry values into the ``carry`` buffers.

    Every value is computed from the *old* carry, so a buffer may be overwritten
    only once no pending update reads it any more (its own update may, element by
    element). Updates are done in place in such an order; what is left (a cycle,
    or a value reading its own buffer shifted) is computed into temporaries first.
    """
    pending: dict[str, tuple[Lazy, Buffer, list[Stmt]]] = {}
    for v, buf in zip(new, carry):
        if v.buffer is buf and v.tracker is not None and len(v.tracker.views) == 1 \
                and v.tracker.views[0].is_contiguous():
            continue  # passed through unchanged
        pending[buf.name] = (v, buf, _store_body(v, buf))
    while pending:
        ready = [name for name, (_, buf, body) in pending.items()
                 if _reads_only_own_element(body, name) and not any(
                     name in _loaded(other) for o, (_, _, other) in pending.items() if o != name)]
        if not ready:
            break
        for name in ready:
            s.emit("carry", pending.pop(name)[2])
    values = [v for v, _, _ in pending.values()]
    temps = _write(s, values, [buf for _, buf, _ in pending.values()])
    for src, (_, dst, _) in zip(temps, pending.values()):
        s.materialize(buffer_value(src), name="carry", out=dst)


def _loaded(body: Sequence[Stmt]) -> dict[str, list[Load]]:
    """Every load in ``body`` (in values, indices and masks alike), by buffer."""
    loads: dict[str, list[Load]] = {}
    seen: set[int] = set()

    def visit(x: Any) -> None:
        if id(x) in seen:
            return
        seen.add(id(x))
        if isinstance(x, Load):
            loads.setdefault(x.buf, []).append(x)
        children = {Load: lambda: (x.index, x.mask), Alu: lambda: x.args,
                    Cast: lambda: (x.x,), IndexValue: lambda: (x.index,),
                    Idx: lambda: x.args, Loop: lambda: x.body,
                    Store: lambda: (x.index, x.value, x.mask)}.get(type(x))
        for child in children() if children else ():
            if child is not None:
                visit(child)

    for st in body:
        visit(st)
    return loads


def _reads_only_own_element(body: Sequence[Stmt], name: str) -> bool:
    """Whether ``body`` (one store loop nest) reads buffer ``name`` only where it writes."""
    store = body[0]
    while isinstance(store, Loop):
        store = store.body[0]
    assert isinstance(store, Store)
    return all(ld.mask is None and ld.index == store.index
               for ld in _loaded(body).get(name, []))


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
        _update_carry(s, s.run_jaxpr(body_jaxpr, [*body_consts, *carry_values]), carry)
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
        for y, buf in zip(new_ys, ys):
            _store_row(s, y, buf, row)
        _update_carry(s, new_carry, carry)
    s.steps.append(Repeat(counter.name, length, tuple(body)))
    return [*carry_values, *(buffer_value(b) for b in ys)]


def _store_row(s: Scheduler, y: Lazy, buf: Buffer, row: Idx) -> None:
    """``buf[row] = y`` for the current step's row; a shared ``y`` is read back from there."""
    size = int(np.prod(y.shape, dtype=np.int64))

    def body(idxs: list[Idx]) -> list[Any]:
        value: Value = y.read(idxs, None)
        return [Store(buf.name, row * size + flat_index(idxs, y.shape), value)]

    s.emit("scan_ys", loop_nest(y.shape, body) if y.shape else body([]))
    if y.stored is not None:
        stored = Lazy(y.shape, y.dtype, lambda idxs, valid: Load(
            buf.name, row * size + flat_index(idxs, y.shape), buf.dtype, valid), cost=0)
        s.remember(y, stored)


RULES: dict[str, Callable[..., Any]] = {"cond": _cond, "while": _while, "scan": _scan}

__all__ = ["RULES", "as_idx"]
