"""Scheduling: a jaxpr becomes a ``Program`` of kernels and library calls.

The scheduler walks the jaxpr once. Every variable becomes a *lazy value*
(``Lazy``): its shape and dtype, plus a function that says how to compute
one element, given index expressions for its position. Nothing is computed
or stored while walking; instead

* an elementwise primitive makes a new lazy value whose element is an ``Alu``
  of its operands' elements (so chains of elementwise ops fuse: the kernel
  that finally needs them computes them all in registers);
* a movement primitive (broadcast, transpose, slice, reverse, pad, reshape)
  changes only *which* element is read: on a value stored in a buffer it
  updates the buffer's ``ShapeTracker`` (no copy), on a lazy expression it
  rewrites the index expressions handed down to it;
* a reduction emits a kernel at once: a loop over the kept axes, an
  accumulator, an inner loop over the reduced axes that evaluates the
  producer's elementwise expression (so ``sum(exp(x - m))`` is one pass);
* a matrix product is a library call (``gemm``) on buffers laid out as
  stacks of matrices, using the transposed-operand flags instead of copies
  where the layout allows.

A lazy value is *materialized* (one kernel writes it to a new buffer) when
a library call needs it in memory or when it is an output. A value several
equations use is materialized at once if it is expensive (its ``cost``, the
operations a read recomputes, exceeds ``RECOMPUTE_LIMIT``); a cheap one is
*shared*: each consumer recomputes it (``y * y`` with ``y`` an elementwise
chain stays one pass, and a reduction absorbs it), until some consumer needs
it in memory; from then on every later reader loads that buffer. Each
primitive's ``lower`` slot holds its rule:
``rule(scheduler, *operands: Lazy, **params) -> Lazy | list[Lazy]``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import Counter
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np

from fgrad.core.jaxpr import ClosedJaxpr, Literal, Var
from fgrad.lowering.kernel_ir import (
    AccRef, Accumulate, Alu, Cast, Const, DefineAcc, Idx, IndexValue, Kernel, Load, Loop, Param,
    ScalarOp, Stmt, Store, Value, all_of, as_idx, masked_load, select, var)
from fgrad.lowering.semantics import identity
from fgrad.lowering.simplify import BLOCK, block_sums, collapse_loops
from fgrad.lowering.views import ShapeTracker, row_major_strides

Reader = Callable[[Sequence[Idx], "Idx | None"], Value]


# --- the program ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Buffer:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclasses.dataclass(frozen=True)
class LibraryCall:
    """A call into a library routine: ``gemm`` computes ``out = op(a) @ op(b)`` per batch
    (``gemm(a, b, c)``: ``out = c + alpha * op(a) @ op(b)``, ``alpha`` a parameter)."""

    name: str
    args: tuple[str, ...]          # input buffers, then the output buffer
    params: tuple[tuple[str, Any], ...]

    def param(self, key: str, default: Any = KeyError) -> Any:
        params = dict(self.params)
        if default is KeyError or key in params:
            return params[key]
        return default

    def __str__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params)
        return f"{self.args[-1]} = {self.name}({', '.join(self.args[:-1])}; {params})"


@dataclasses.dataclass(frozen=True)
class Branch:
    """Run ``branches[i]`` where ``i`` is the int32 in buffer ``index`` (``cond``, ``switch``)."""

    index: str
    branches: tuple[tuple[Step, ...], ...]

    def __str__(self) -> str:
        parts = [f"switch {self.index}[0]:"]
        for i, steps in enumerate(self.branches):
            parts.append(f"  case {i}:")
            parts.extend("    " + line for step in steps for line in str(step).splitlines())
        return "\n".join(parts)


@dataclasses.dataclass(frozen=True)
class Repeat:
    """Run ``body`` ``length`` times, with the step number in int64 buffer ``counter``
    (``scan``: the body's kernels read the step to index ``xs`` and ``ys``)."""

    counter: str
    length: int
    body: tuple[Step, ...]

    def __str__(self) -> str:
        lines = [f"repeat {self.counter}[0] in 0..{self.length}:"]
        lines.extend("  " + line for step in self.body for line in str(step).splitlines())
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class WhileLoop:
    """Run ``cond`` (which writes the bool buffer ``pred``), and ``body`` while it is true."""

    cond: tuple[Step, ...]
    pred: str
    body: tuple[Step, ...]

    def __str__(self) -> str:
        lines = ["while:"]
        lines.extend("  " + line for step in self.cond for line in str(step).splitlines())
        lines.append(f"  while {self.pred}[0] do:")
        lines.extend("    " + line for step in self.body for line in str(step).splitlines())
        return "\n".join(lines)


Step = Union[Kernel, LibraryCall, Branch, Repeat, WhileLoop]


def nested_steps(step: Step) -> list[tuple[Step, ...]]:
    """The step sequences inside ``step`` (a branch's cases, a loop's body and condition)."""
    if isinstance(step, Branch):
        return list(step.branches)
    if isinstance(step, Repeat):
        return [step.body]
    if isinstance(step, WhileLoop):
        return [step.cond, step.body]
    return []


def step_buffers(step: Step) -> set[str]:
    """Every buffer ``step`` (or a step inside it) reads or writes."""
    names = {p.name for p in step.params} if isinstance(step, Kernel) else \
        set(step.args) if isinstance(step, LibraryCall) else \
        {step.index} if isinstance(step, Branch) else \
        {step.counter} if isinstance(step, Repeat) else {step.pred}
    for body in nested_steps(step):
        for inner in body:
            names |= step_buffers(inner)
    return names


@dataclasses.dataclass
class Program:
    """Kernels and library calls over named buffers; what a backend compiles and runs."""

    buffers: dict[str, Buffer]
    inputs: list[str]              # one buffer per jaxpr input, in order
    consts: dict[str, np.ndarray]  # buffers holding the jaxpr's constants
    outputs: list[str]             # one fresh buffer per jaxpr output
    steps: list[Step]

    def __str__(self) -> str:
        def sig(names: Sequence[str]) -> str:
            return ", ".join(f"{n}: {_aval_str(self.buffers[n])}" for n in names)
        lines = [f"program({sig(self.inputs)}) -> ({sig(self.outputs)})"]
        if self.consts:
            lines.append(f"  constants: {sig(list(self.consts))}")
        for step in self.steps:
            lines.append(_indent(str(step)))
        return "\n".join(lines)


def _aval_str(b: Buffer) -> str:
    from fgrad.core.dtypes import short_name
    return f"{short_name(b.dtype)}[{','.join(map(str, b.shape))}]"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# --- lazy values ------------------------------------------------------------------------------

class Lazy:
    """A value of the program: shape, dtype and how to compute the element at ``idxs``.

    ``read(idxs, valid)`` returns the scalar IR for the element; ``valid``
    (an index condition, or None) guards the loads inside, so a padded read
    never touches memory out of bounds. A value stored in a buffer also
    knows its ``buffer`` and ``tracker``; ``cost`` counts the ops a read
    recomputes (0 for a plain view of a buffer).
    """

    __slots__ = ("shape", "dtype", "read", "buffer", "tracker", "cost", "stored")

    def __init__(self, shape: Sequence[int], dtype: Any, read: Reader, cost: int = 1,
                 buffer: Buffer | None = None, tracker: ShapeTracker | None = None) -> None:
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        self.read, self.cost = read, cost
        self.buffer, self.tracker = buffer, tracker
        # a shared value (``Scheduler.share``): where it has been written to memory, as
        # (the step list that wrote it, its buffer value)
        self.stored: list[tuple[list[Any], Lazy]] | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)


def buffer_value(buf: Buffer, tracker: ShapeTracker | None = None) -> Lazy:
    tracker = tracker or ShapeTracker.contiguous(buf.shape)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        index, mask = tracker.index(idxs)
        return masked_load(buf.name, index, buf.dtype, all_of([valid, mask]))

    return Lazy(tracker.shape, buf.dtype, read, cost=0, buffer=buf, tracker=tracker)


def const_value(value: Any, shape: Sequence[int], dtype: Any) -> Lazy:
    c = Const(np.asarray(value, dtype=dtype)[()], np.dtype(dtype))
    return Lazy(shape, dtype, lambda idxs, valid: c, cost=0)


def elementwise(fn: Callable[..., Value], *xs: Lazy, dtype: Any = None, weight: int = 1
                ) -> Lazy:
    """The lazy value whose element is ``fn`` of the operands' elements (equal shapes);
    ``weight``: what ``fn`` costs, in simple arithmetic operations."""
    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        return fn(*[x.read(idxs, valid) for x in xs])
    out_dtype = dtype if dtype is not None else xs[0].dtype
    return Lazy(xs[0].shape, out_dtype, read, cost=weight + sum(x.cost for x in xs))


def reindex(x: Lazy, shape: Sequence[int],
            index_map: Callable[[Sequence[Idx]], tuple[list[Idx], Idx | None]],
            tracker_op: Callable[[ShapeTracker], ShapeTracker] | None = None,
            fill: Any = 0) -> Lazy:
    """A movement op: element ``idxs`` of the result is element ``index_map(idxs)`` of ``x``.

    ``index_map`` may also return a condition; where it is false the result is
    ``fill`` (padding). On a buffer the op is applied to the tracker instead
    (``tracker_op``), which folds it into strides.
    """
    if x.buffer is not None and x.tracker is not None and tracker_op is not None:
        return buffer_value(x.buffer, tracker_op(x.tracker))
    fill_value = Const(np.asarray(fill, x.dtype)[()], x.dtype)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        src, cond = index_map(idxs)
        if cond is None:
            return x.read(src, valid)
        return select(cond, x.read(src, all_of([valid, cond])), fill_value)

    return Lazy(shape, x.dtype, read, cost=x.cost)


# --- the scheduler ----------------------------------------------------------------------------

class LoweringError(NotImplementedError):
    """A primitive has no lowering for this backend (no silent fallback)."""


class Scheduler:
    """Walks a jaxpr and collects the ``Program``; lowering rules call back into it."""

    def __init__(self) -> None:
        self.buffers: dict[str, Buffer] = {}
        self.consts: dict[str, np.ndarray] = {}
        self.steps: list[Step] = []
        self._scopes: list[list[Step]] = [self.steps]  # the step lists being filled now
        self.immutable: set[str] = set()  # buffers nothing writes: inputs and constants
        self._count = Counter[str]()

    def run_jaxpr(self, closed: ClosedJaxpr, args: Sequence[Lazy]) -> list[Lazy]:
        """Schedule every equation of ``closed`` on ``args``; the outputs' lazy values.

        Higher-order primitives (``jit``, custom derivatives) call this on their
        inner jaxpr, so their bodies are inlined and fuse with what surrounds them.
        """
        jaxpr = closed.jaxpr
        env: dict[Var, Lazy] = {}
        for v, c in zip(jaxpr.constvars, closed.consts):
            env[v] = self.constant(np.asarray(c, dtype=v.aval.dtype).reshape(v.aval.shape))
        env.update(zip(jaxpr.invars, args))
        uses = Counter(v for eqn in jaxpr.eqns for v in eqn.invars if isinstance(v, Var))
        uses.update(v for v in jaxpr.outvars if isinstance(v, Var))

        def read(atom: Any) -> Lazy:
            if isinstance(atom, Literal):
                return const_value(np.asarray(atom.val), atom.aval.shape, atom.aval.dtype)
            return env[atom]

        for eqn in jaxpr.eqns:
            rule = eqn.primitive.lower
            if rule is None:
                raise LoweringError(
                    f"jit: no lowering for primitive '{eqn.primitive.name}' in the compiled "
                    f"backends yet (run with jit(..., backend='interpret'))")
            outs = rule(self, *map(read, eqn.invars), **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
            for v, out in zip(eqn.outvars, outs):
                if uses[v] > 1 and out.buffer is None and out.cost > 0:
                    out = self.materialize(out, name=eqn.primitive.name) \
                        if out.cost > RECOMPUTE_LIMIT else self.share(out)
                env[v] = out
        return [read(a) for a in jaxpr.outvars]

    def constant(self, value: np.ndarray) -> Lazy:
        """A buffer holding ``value`` (a jaxpr constant), read-only for the program."""
        value = np.ascontiguousarray(value)
        if value.ndim == 0 or value.size == 1:
            return const_value(value.reshape(()), value.shape, value.dtype)
        buf = self.new_buffer(value.shape, value.dtype, prefix="c")
        self.consts[buf.name] = value.reshape(-1)
        self.immutable.add(buf.name)
        return buffer_value(buf)

    def new_buffer(self, shape: Sequence[int], dtype: Any, prefix: str = "t") -> Buffer:
        self._count[prefix] += 1
        buf = Buffer(f"{prefix}{self._count[prefix] - 1}", tuple(shape), np.dtype(dtype))
        self.buffers[buf.name] = buf
        return buf

    @contextlib.contextmanager
    def collect(self) -> Iterator[list[Step]]:
        """Steps emitted inside the ``with`` block go to the yielded list (a branch or a
        loop body), not to the program's top level."""
        outer, self.steps = self.steps, []
        self._scopes.append(self.steps)
        try:
            yield self.steps
        finally:
            self._scopes.pop()
            self.steps = outer

    @property
    def in_loop(self) -> bool:
        """Whether steps emitted now run inside a loop or branch of the program."""
        return len(self._scopes) > 1

    @contextlib.contextmanager
    def at_top_level(self) -> Iterator[None]:
        """Steps emitted inside the ``with`` block run once, before any loop (for work on
        ``immutable`` buffers that a loop body would otherwise repeat)."""
        saved = self.steps, self._scopes
        self.steps, self._scopes = self._scopes[0], [self._scopes[0]]
        try:
            yield
        finally:
            self.steps, self._scopes = saved

    def share(self, x: Lazy) -> Lazy:
        """``x`` for several consumers: recomputed by each until one materializes it."""
        def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
            return (self._stored(shared) or x).read(idxs, valid)
        shared = Lazy(x.shape, x.dtype, read, cost=x.cost)
        shared.stored = []
        return shared

    def remember(self, x: Lazy, stored: Lazy) -> None:
        """Later readers of the shared ``x`` in this scope read ``stored`` (its value in memory)."""
        if x.stored is not None and self._stored(x) is None:
            x.stored.append((self.steps, stored))

    def _stored(self, x: Lazy) -> Lazy | None:
        """The buffer a shared ``x`` was written to, if the steps running now can see it
        (written at this level or an enclosing one, not inside a finished branch or loop)."""
        for scope, value in x.stored or ():
            if any(scope is active for active in self._scopes):
                return value
        return None

    def emit(self, name: str, body: Sequence[Stmt]) -> None:
        self.steps.append(Kernel(name, self._params(body), block_sums(collapse_loops(tuple(body)))))

    def _params(self, body: Sequence[Stmt]) -> tuple[Param, ...]:
        reads, writes = buffers_used(body)
        ordered = [n for n in self.buffers if n in reads or n in writes]
        return tuple(Param(n, self.buffers[n].dtype, self.buffers[n].size, n in writes)
                     for n in ordered)

    def materialize(self, x: Lazy, name: str = "copy", out: Buffer | None = None) -> Lazy:
        """Write ``x`` into a new (or the given) contiguous buffer with one kernel."""
        if out is None and x.buffer is not None and x.tracker is not None and \
                len(x.tracker.views) == 1 and x.tracker.views[0].is_contiguous():
            return x
        stored = self._stored(x) if out is None else None
        if stored is not None:
            return stored
        buf = out or self.new_buffer(x.shape, x.dtype)
        self.emit(name, loop_nest(x.shape, lambda idxs: [
            Store(buf.name, flat_index(idxs, x.shape), x.read(idxs, None))]))
        value = buffer_value(buf)
        if out is None:
            self.remember(x, value)
        return value

    def reduce(self, x: Lazy, op: ScalarOp, axes: Sequence[int], out_dtype: Any,
               acc_dtype: Any = None, name: str = "reduce") -> Lazy:
        """``op``-reduce ``x`` over ``axes``.

        Usually one kernel: the kept axes are the outer, parallel loops and each
        output element has its own accumulator, filled by inner loops over the
        reduced axes (``simplify.block_sums`` splits a long float sum into blocks).
        When the innermost axis is kept (summing the rows of a matrix: a bias
        gradient), those inner loops would stride through memory; a short column
        reduction instead runs the loops in the input's own order and adds each
        row into the output (``_reduce_columns``). A long one keeps the first form,
        whose blocked sums stay accurate.
        """
        axes = tuple(sorted(axes))
        kept = [d for d in range(x.ndim) if d not in axes]
        out_shape = tuple(x.shape[d] for d in kept)
        acc_dtype = np.dtype(acc_dtype or out_dtype)
        red_shape = [x.shape[d] for d in axes]
        if kept and kept[-1] == x.ndim - 1 and axes and math.prod(red_shape) < 2 * BLOCK:
            return self._reduce_columns(x, op, axes, out_dtype, acc_dtype, name)
        buf = self.new_buffer(out_shape, out_dtype)

        def element(full: Sequence[Idx]) -> Value:
            value = x.read(full, None)
            return value if value.dtype == acc_dtype else Cast(value, acc_dtype)

        def outer(kept_idxs: Sequence[Idx]) -> list[Stmt]:
            def inner(red_idxs: Sequence[Idx]) -> list[Stmt]:
                return [Accumulate("acc", element(_merge(kept, kept_idxs, axes, red_idxs)))]

            result: Value = AccRef("acc", acc_dtype)
            return [DefineAcc("acc", op, acc_dtype),
                    *loop_nest(red_shape, inner, prefix="r", parallel=False),
                    Store(buf.name, flat_index(kept_idxs, out_shape),
                          result if acc_dtype == buf.dtype else Cast(result, buf.dtype))]

        self.emit(name, loop_nest(out_shape, outer))
        return buffer_value(buf)

    def _reduce_columns(self, x: Lazy, op: ScalarOp, axes: tuple[int, ...], out_dtype: Any,
                        acc_dtype: np.dtype, name: str) -> Lazy:
        """``out = identity``, then ``out[kept] op= x[i]`` for every ``i`` in row-major order:
        consecutive reads and writes, and the innermost loop vectorizes. When the
        outermost axis is kept, its iterations write disjoint outputs: that loop is
        parallel (a sum over a convolution's taps), else sequential (a bias gradient)."""
        kept = [d for d in range(x.ndim) if d not in axes]
        out_shape = tuple(x.shape[d] for d in kept)
        acc = self.new_buffer(out_shape, acc_dtype)
        self.materialize(const_value(identity(op, acc_dtype), out_shape, acc_dtype),
                         name=f"{name}_init", out=acc)

        def body(idxs: list[Idx]) -> list[Stmt]:
            value = x.read(idxs, None)
            value = value if value.dtype == acc_dtype else Cast(value, acc_dtype)
            return [Store(acc.name, flat_index([idxs[d] for d in kept], out_shape), value,
                          op=op)]

        self.emit(name, loop_nest(x.shape, body, parallel=0 not in axes))
        result = buffer_value(acc)
        if acc_dtype == np.dtype(out_dtype):
            return result
        return self.materialize(Lazy(out_shape, out_dtype, lambda idxs, valid: Cast(
            result.read(idxs, valid), np.dtype(out_dtype))), name=f"{name}_cast")

    def library_call(self, name: str, args: Sequence[str], out: Buffer, **params: Any) -> Lazy:
        self.steps.append(LibraryCall(name, (*args, out.name), tuple(params.items())))
        return buffer_value(out)


# A value used by several equations is recomputed by each while a read costs at most this
# many simple operations (a transcendental counts ~4); a write and a read of memory cost
# about as much as that, and fusing keeps reductions to one pass.
RECOMPUTE_LIMIT = 12


def _merge(kept: Sequence[int], kept_idxs: Sequence[Idx], axes: Sequence[int],
           red_idxs: Sequence[Idx]) -> list[Idx]:
    """Full coordinates from the kept axes' indices and the reduced axes' ones."""
    full: list[Idx] = [as_idx(0)] * (len(kept) + len(axes))
    for d, i in zip(kept, kept_idxs):
        full[d] = i
    for d, i in zip(axes, red_idxs):
        full[d] = i
    return full


def loop_nest(shape: Sequence[int], body: Callable[[list[Idx]], list[Stmt]],
              prefix: str = "i", parallel: bool = True) -> list[Stmt]:
    """Nested loops over ``shape`` (outermost first; the outermost marked parallel)."""
    names = [f"{prefix}{k}" for k in range(len(shape))]
    stmts = body([var(n) for n in names])
    for k in reversed(range(len(shape))):
        stmts = [Loop(names[k], int(shape[k]), tuple(stmts), parallel=parallel and k == 0)]
    return stmts


def flat_index(idxs: Sequence[Idx], shape: Sequence[int]) -> Idx:
    flat = as_idx(0)
    for i, st in zip(idxs, row_major_strides(shape)):
        flat = flat + i * st
    return flat


def buffers_used(stmts: Sequence[Stmt]) -> tuple[set[str], set[str]]:
    reads: set[str] = set()
    writes: set[str] = set()
    seen: set[int] = set()  # expressions are DAGs: visit each shared node once
    keep: list[Any] = []

    def value(v: Any) -> None:
        if id(v) in seen:
            return
        seen.add(id(v))
        keep.append(v)
        if isinstance(v, Load):
            reads.add(v.buf)
            index(v.index)
            if v.mask is not None:
                index(v.mask)
        elif isinstance(v, Alu):
            for a in v.args:
                value(a)
        elif isinstance(v, Cast):
            value(v.x)
        elif isinstance(v, IndexValue):
            index(v.index)

    def index(e: Idx) -> None:
        if e.op == "value":
            value(e.args[0])
        for a in e.args:
            if isinstance(a, Idx):
                index(a)

    def walk(ss: Sequence[Stmt]) -> None:
        for s in ss:
            if isinstance(s, Loop):
                walk(s.body)
            elif isinstance(s, Store):
                writes.add(s.buf)
                if s.op is not None:
                    reads.add(s.buf)
                index(s.index)
                value(s.value)
                if s.mask is not None:
                    index(s.mask)
            elif isinstance(s, Accumulate):
                value(s.value)

    walk(stmts)
    return reads, writes


def schedule(closed: ClosedJaxpr) -> Program:
    """The ``Program`` computing ``closed`` (inputs: its invars; outputs: fresh buffers)."""
    sched = Scheduler()
    inputs = [sched.new_buffer(v.aval.shape, v.aval.dtype, prefix="in")
              for v in closed.jaxpr.invars]
    sched.immutable.update(b.name for b in inputs)
    results = sched.run_jaxpr(closed, [buffer_value(b) for b in inputs])
    outputs: list[str] = []
    for value in results:
        buf = value.buffer
        if (buf is not None and buf.name.startswith("t") and buf.name not in outputs
                and len(value.tracker.views) == 1 and value.tracker.views[0].is_contiguous()
                and math.prod(value.shape) == buf.size):  # not a prefix of a bigger buffer
            # a temporary already laid out as the output: no copy, only its shape changes
            sched.buffers[buf.name] = Buffer(buf.name, value.shape, buf.dtype)
            outputs.append(buf.name)
            continue
        out = sched.new_buffer(value.shape, value.dtype, prefix="out")
        sched.materialize(value, name="output", out=out)
        outputs.append(out.name)
    program = Program(sched.buffers, [b.name for b in inputs], sched.consts, outputs,
                      sched.steps)
    # (both modules import this one)
    from fgrad.lowering.dedupe import merge_duplicate_kernels
    from fgrad.lowering.lower_dot import fold_gemm_updates
    return fold_gemm_updates(merge_duplicate_kernels(program))


__all__ = ["Buffer", "LibraryCall", "Branch", "Repeat", "WhileLoop", "Step", "Program", "Lazy",
           "Scheduler", "LoweringError", "RECOMPUTE_LIMIT", "buffer_value", "const_value",
           "elementwise", "reindex", "loop_nest", "flat_index", "schedule", "nested_steps",
           "step_buffers", "buffers_used"]
