"""How a kernel is spread over GPU threads: its launch plan, decided from the IR alone.

A kernel-IR loop marked ``parallel`` promises independent iterations; the
rest runs in order. The plan picks one of four shapes (``render.py``
prints each):

* **thread**: the kernel is a loop nest whose outer loop is ``parallel``.
  That loop, and the loops perfectly nested in it whose iterations provably
  store to distinct addresses (``_injective``), become one flattened
  grid-stride loop: thread ``blockIdx.x * blockDim.x + threadIdx.x`` takes
  flat iterations ``tid, tid + threads, ...``.
* **block**: as *thread*, but each iteration (one output) is a long
  reduction (``_reduction``): a block of ``BLOCK`` threads shares it, each
  accumulating a strided part, then a shared-memory tree combines the parts.
  A kernel without a parallel loop that is one long reduction (a full sum)
  is a single such row.
* **atomic**: a scatter, i.e. a serial loop nest of read-modify-write
  stores of 32- or 64-bit values, runs in parallel with atomic updates.
  The order of float additions then varies, as in XLA's GPU scatter.
* **serial**: anything else (a scatter that overwrites, a scan along a
  whole array, a scalar) runs in one thread, in program order.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterator, Sequence

from fgrad.lowering.cuda.dialect import HALF
from fgrad.lowering.kernel_ir import (
    AccRef, Accumulate, Alu, Cast, DefineAcc, Idx, IndexValue, Kernel, Load, Loop, ScalarOp,
    Stmt, Store)

BLOCK = 256              # threads per block (a power of two: the reduction tree halves it)
MAX_GRID = 4096          # blocks of a grid-stride loop: enough to fill any current GPU
BLOCK_REDUCE_MIN = 1024  # a reduction this long (per output) gets a whole block
ATOMIC_OPS = (ScalarOp.ADD, ScalarOp.MUL, ScalarOp.MAX, ScalarOp.MIN, ScalarOp.AND,
              ScalarOp.OR)


@dataclasses.dataclass(frozen=True)
class Plan:
    mode: str                    # "thread", "block", "atomic" or "serial"
    run: tuple[Loop, ...] = ()   # loops flattened over threads (thread, atomic) or blocks
    body: tuple[Stmt, ...] = ()  # what one iteration of the run executes
    grid: int = 1
    block: int = 1


def chain(loop: Loop) -> list[Loop]:
    """``loop`` and the loops perfectly nested in it."""
    loops = [loop]
    while len(loops[-1].body) == 1 and isinstance(loops[-1].body[0], Loop):
        loops.append(loops[-1].body[0])
    return loops


def walk(stmts: Sequence[Stmt], loops: tuple[Loop, ...] = ()
         ) -> Iterator[tuple[Stmt, tuple[Loop, ...]]]:
    """Every statement, with the loops around it inside ``stmts``."""
    for s in stmts:
        yield s, loops
        if isinstance(s, Loop):
            yield from walk(s.body, loops + (s,))


def values(stmts: Sequence[Stmt]) -> Iterator[Any]:
    """Every value and index node the statements read (each shared node once)."""
    seen: set[int] = set()
    todo: list[Any] = [x for s, _ in walk(stmts) for x in (
        (s.value, s.index, s.mask) if isinstance(s, Store) else
        (s.value,) if isinstance(s, Accumulate) else ())]
    while todo:
        v = todo.pop()
        if v is None or id(v) in seen:
            continue
        seen.add(id(v))
        yield v
        todo.extend(v.args if isinstance(v, (Alu, Idx)) else (v.x,) if isinstance(v, Cast) else
                    (v.index, v.mask) if isinstance(v, Load) else
                    (v.index,) if isinstance(v, IndexValue) else ())


def _affine(e: Idx) -> dict[str, int] | None:
    """The loop variables' coefficients in an affine index; None if it is not affine."""
    if e.op in ("var", "const"):
        return {e.args[0]: 1} if e.op == "var" else {}
    if e.op not in ("add", "mul"):
        return None  # div, mod, min, max, data-dependent: nothing proven
    scale = e.args[1].args[0] if e.op == "mul" else 1
    out: dict[str, int] = {}
    for part in (_affine(a) for a in e.args if not a.is_const()):
        if part is None:
            return None
        for k, c in part.items():
            out[k] = out.get(k, 0) + c * scale
    return out


def _injective(run: Sequence[Loop], body: Sequence[Stmt]) -> bool:
    """True if two iterations of the ``run`` loops never store to the same address.

    Proven for one store per buffer, at affine indices whose coefficients form a mixed
    radix (each larger than the span of the smaller ones, as in a row-major flat index).
    """
    stores = [(s, loops) for s, loops in walk(body) if isinstance(s, Store)]
    if len({s.buf for s, _ in stores}) < len(stores):
        return False
    for s, loops in stores:
        coeffs = _affine(s.index)
        if coeffs is None or any(coeffs.get(lp.var, 0) == 0 for lp in run if lp.extent > 1):
            return False
        span = 0
        for c, n in sorted((abs(coeffs.get(lp.var, 0)), lp.extent) for lp in (*run, *loops)
                           if lp.extent > 1):
            if c and c <= span:
                return False
            span += c * (n - 1)
    return True


def _ungroup(loop: Loop, ops: dict[str, ScalarOp]) -> Loop:
    """``for i: (part = identity; for j: part op= v; acc op= part)`` as ``for i: for j:
    acc op= v``: the same reduction, regrouped (``simplify.block_sums`` groups long float
    sums in blocks for a serial loop's rounding; a block of threads spreads them anyway)."""
    body = loop.body
    if len(body) == 3 and isinstance(body[0], DefineAcc) and isinstance(body[1], Loop) and \
            isinstance(body[2], Accumulate) and ops.get(body[2].name) is body[0].op and \
            body[2].value == AccRef(body[0].name, body[0].dtype) and \
            all(isinstance(s, Accumulate) and s.name == body[0].name for s in body[1].body):
        inner = body[1]
        steps = tuple(Accumulate(body[2].name, s.value) for s in inner.body)  # type: ignore
        return Loop(loop.var, loop.extent, (Loop(inner.var, inner.extent, steps),),
                    loop.parallel)
    return loop


def reduction(body: Sequence[Stmt]) -> tuple[list[DefineAcc], list[Loop], list[Store]] | None:
    """``body`` as accumulators, long loops that only accumulate into them, then stores."""
    k = 0
    while k < len(body) and isinstance(body[k], DefineAcc):
        k += 1
    m = k
    while m < len(body) and isinstance(body[m], Loop):
        m += 1
    defs, tail = body[:k], body[m:]
    ops = {d.name: d.op for d in defs}  # type: ignore[union-attr]
    loops = [_ungroup(lp, ops) for lp in body[k:m]]  # type: ignore[arg-type]
    if not defs or not loops or not all(isinstance(s, Store) for s in tail) or \
            any(isinstance(s, Store) for s, _ in walk(loops)) or \
            any(isinstance(v, AccRef) and v.name in ops for v in values(loops)):
        return None  # e.g. a scan: it stores the running value, so the order matters
    if max(math.prod(lp.extent for lp in chain(loop)) for loop in loops) < BLOCK_REDUCE_MIN:
        return None  # short: one thread per output beats a block and its barriers
    return list(defs), loops, list(tail)  # type: ignore[arg-type]


def plan(kernel: Kernel) -> Plan:
    """The launch plan of ``kernel``, with its grid and block sizes."""
    body, types = kernel.body, {p.name: p.dtype for p in kernel.params}
    mode, run = "serial", []
    if len(body) == 1 and isinstance(body[0], Loop) and body[0].parallel:
        run = [body[0]]
        while len(run[-1].body) == 1 and isinstance(run[-1].body[0], Loop) and \
                _injective([*run, run[-1].body[0]], run[-1].body[0].body):
            run.append(run[-1].body[0])
        body = run[-1].body
        mode = "block" if reduction(body) else "thread"
    elif reduction(body):
        mode = "block"
    elif len(body) == 1 and isinstance(body[0], Loop):
        loops = chain(body[0])
        if all(isinstance(s, Store) and s.op in ATOMIC_OPS and types[s.buf].itemsize in (4, 8)
               and types[s.buf].name not in HALF for s in loops[-1].body):
            mode, run, body = "atomic", loops, loops[-1].body
    n = math.prod(lp.extent for lp in run)
    if mode == "serial":
        return Plan(mode, (), body)
    if mode == "block":
        return Plan(mode, tuple(run), body, max(1, min(n, MAX_GRID)), BLOCK)
    block = BLOCK if n >= BLOCK else max(32, -(-n // 32) * 32)
    return Plan(mode, tuple(run), body, max(1, min(-(-n // block), MAX_GRID)), block)


__all__ = ["Plan", "plan", "chain", "walk", "values", "reduction", "BLOCK", "MAX_GRID",
           "BLOCK_REDUCE_MIN", "ATOMIC_OPS"]
