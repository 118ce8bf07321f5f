"""Running kernel IR with numpy: the living definition of the IR.

Every renderer (LLVM, CUDA C) is tested against this interpreter, and it is
how CUDA kernels are checked on machines without a GPU. It runs a kernel
*vectorised*: a loop does not iterate, it adds an array axis. Inside ``d``
nested loops every value is a numpy array with ``d`` axes (size 1 where the
value does not depend on a loop), so a whole loop nest costs a handful of
numpy calls. ``Accumulate`` inside deeper loops than its ``DefineAcc``
reduces over the axes in between with one numpy ``accumulate``; reading the
accumulator inside those loops (after the ``Accumulate``) gives the running
value, which is how cumulative sums are written.

That reading is faithful because kernels are written without loop-carried
dependences other than accumulators: no iteration reads what another wrote.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from fgrad.lowering import semantics
from fgrad.lowering.kernel_ir import (
    AccRef, Accumulate, Alu, Cast, Const, DefineAcc, Idx, IndexValue, Kernel, Load, Loop, ScalarOp,
    Stmt, Store, Value)

_REDUCE = {ScalarOp.ADD: np.add, ScalarOp.MUL: np.multiply, ScalarOp.MAX: np.maximum,
           ScalarOp.MIN: np.minimum, ScalarOp.AND: np.bitwise_and, ScalarOp.OR: np.bitwise_or,
           ScalarOp.LOGADDEXP: np.logaddexp}


class KernelArgumentError(ValueError):
    """A buffer handed to a kernel does not match its declared parameter."""


def check_buffers(kernel: Kernel, buffers: Mapping[str, np.ndarray]) -> None:
    """Every param present, flat, C-contiguous, of the declared dtype and size."""
    for p in kernel.params:
        if p.name not in buffers:
            raise KernelArgumentError(f"kernel {kernel.name}: missing buffer {p.name!r}")
        b = buffers[p.name]
        if not isinstance(b, np.ndarray) or b.ndim != 1 or not b.flags.c_contiguous:
            raise KernelArgumentError(f"kernel {kernel.name}: buffer {p.name!r} must be a flat "
                                      f"C-contiguous numpy array, got {type(b).__name__} "
                                      f"{getattr(b, 'shape', '')}")
        if b.dtype != p.dtype or b.size != p.size:
            raise KernelArgumentError(
                f"kernel {kernel.name}: buffer {p.name!r} is {b.dtype}[{b.size}], the kernel "
                f"expects {p.dtype}[{p.size}]")
        if p.is_output and not b.flags.writeable:
            raise KernelArgumentError(f"kernel {kernel.name}: output {p.name!r} is read-only")


def run_kernel(kernel: Kernel, buffers: Mapping[str, np.ndarray]) -> None:
    """Execute ``kernel`` on ``buffers`` (name -> flat array); outputs are written in place."""
    check_buffers(kernel, buffers)
    _Runner(buffers).block(kernel.body, ())


class _Runner:
    def __init__(self, buffers: Mapping[str, np.ndarray]) -> None:
        self.buffers = buffers
        self.loops: dict[str, np.ndarray] = {}   # loop var -> arange shaped for its depth
        self.accs: dict[str, tuple[ScalarOp, np.ndarray]] = {}
        # accumulator -> its running values inside the loops that accumulate into it
        self.running: dict[str, np.ndarray] = {}

    # Values computed inside `shape` (the extents of the enclosing loops) have len(shape)
    # axes; `_lift` adds the trailing axes a value made in an outer loop lacks.
    @staticmethod
    def _lift(x: np.ndarray, depth: int) -> np.ndarray:
        x = np.asarray(x)
        return x.reshape(x.shape + (1,) * (depth - x.ndim)) if x.ndim < depth else x

    def block(self, stmts: tuple[Stmt, ...], shape: tuple[int, ...]) -> None:
        for s in stmts:
            self.memo: dict[Any, Any] = {}
            if isinstance(s, Loop):
                depth = len(shape)
                self.loops[s.var] = np.arange(s.extent, dtype=np.int64).reshape(
                    (1,) * depth + (s.extent,))
                self.block(s.body, shape + (s.extent,))
                del self.loops[s.var]
            elif isinstance(s, Store):
                index = np.broadcast_to(self.index(s.index, len(shape)), shape).ravel()
                value = np.broadcast_to(self.value(s.value, len(shape)), shape).ravel()
                out = self.buffers[s.buf]
                if s.mask is not None:
                    keep = np.broadcast_to(self.index(s.mask, len(shape)), shape).ravel()
                    index, value = index[keep.astype(bool)], value[keep.astype(bool)]
                value = value.astype(out.dtype, copy=False)
                if s.op is None:
                    out[index] = value  # repeated indices: the last in loop order wins
                else:
                    with np.errstate(all="ignore"):
                        _REDUCE[s.op].at(out, index, value)
            elif isinstance(s, DefineAcc):
                init = semantics.identity(s.op, s.dtype)
                self.accs[s.name] = (s.op, np.full(shape, init, dtype=s.dtype))
            elif isinstance(s, Accumulate):
                op, acc = self.accs[s.name]
                value = np.broadcast_to(self.value(s.value, len(shape)), shape)
                if acc.ndim == len(shape):
                    self.accs[s.name] = (op, semantics.apply(op, acc.dtype, acc, value))
                else:
                    # The loops between the accumulator's definition and here run in
                    # order: the running value after each iteration is a prefix scan
                    # along them (row-major), and what the definition level sees is
                    # the last one. (The count is explicit: -1 is ambiguous when acc is empty.)
                    inner = int(np.prod(shape[acc.ndim:]))
                    steps = value.astype(acc.dtype).reshape(acc.shape + (inner,))
                    running = _REDUCE[op].accumulate(
                        np.concatenate([acc[..., None], steps], axis=-1), axis=-1)
                    self.running[s.name] = running[..., 1:].reshape(shape)
                    self.accs[s.name] = (op, running[..., -1])
            else:
                raise TypeError(f"kernel IR: unknown statement {s!r}")

    def index(self, e: Idx, depth: int) -> np.ndarray:
        op, a = e.op, e.args
        if op == "var":
            return self._lift(self.loops[a[0]], depth)
        if op == "const":
            return np.int64(a[0])
        if op == "value":
            return np.asarray(self.value(a[0], depth)).astype(np.int64)
        x, y = self.index(a[0], depth), self.index(a[1], depth)
        if op == "min":
            return np.minimum(x, y)
        if op == "max":
            return np.maximum(x, y)
        if op == "add":
            return x + y
        if op == "mul":
            return x * y
        if op == "div":
            return x // y
        if op == "mod":
            return x % y
        if op == "lt":
            return x < y
        if op == "ge":
            return x >= y
        if op == "eq":
            return x == y
        if op == "and":
            return np.logical_and(x, y)
        raise ValueError(f"kernel IR: unknown index op {op!r}")

    def value(self, v: Value, depth: int) -> Any:
        # memoized per statement: expressions are DAGs whose shared nodes must be
        # evaluated once (the threefry rounds reuse every intermediate twice)
        key = (id(v), depth)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is v:
            return hit[1]
        out = self._value(v, depth)
        self.memo[key] = (v, out)
        return out

    def _value(self, v: Value, depth: int) -> Any:
        if isinstance(v, Const):
            return np.asarray(v.value, dtype=v.dtype)
        if isinstance(v, Load):
            buf = self.buffers[v.buf]
            index = self.index(v.index, depth)
            if v.mask is None:
                return buf[index]
            mask = np.broadcast_arrays(self.index(v.mask, depth), index)[0]
            safe = np.where(mask, index, 0)  # never read outside the buffer, as compiled code
            return np.where(mask, buf[safe] if buf.size else np.zeros_like(safe, buf.dtype),
                            np.asarray(v.fill, buf.dtype))
        if isinstance(v, Alu):
            args = [self._lift(self.value(a, depth), depth) for a in v.args]
            return semantics.apply(v.op, v.dtype, *args)
        if isinstance(v, Cast):
            return semantics.cast(self.value(v.x, depth), v.dtype)
        if isinstance(v, IndexValue):
            return np.asarray(self.index(v.index, depth)).astype(v.dtype)
        if isinstance(v, AccRef):
            running = self.running.get(v.name)
            if running is not None and running.ndim == depth:
                return running  # read inside the accumulating loop: the prefix so far
            return self._lift(self.accs[v.name][1], depth)
        raise TypeError(f"kernel IR: unknown value {v!r}")


__all__ = ["run_kernel", "check_buffers", "KernelArgumentError"]


# --- whole programs ---------------------------------------------------------------------------

def run_program(program: Any, args: Any) -> list[np.ndarray]:
    """Run a ``schedule.Program`` with numpy: kernels by ``run_kernel``, library calls by numpy.

    ``args`` are arrays for ``program.inputs`` (checked against the buffers'
    shapes and dtypes); returns the output arrays, shaped.
    """
    buffers: dict[str, np.ndarray] = {}
    for name, x in zip(program.inputs, args, strict=True):
        buf = program.buffers[name]
        x = np.asarray(x)
        if x.shape != buf.shape or x.dtype != buf.dtype:
            raise KernelArgumentError(f"program input {name}: got {x.dtype}{list(x.shape)}, "
                                      f"expected {buf.dtype}{list(buf.shape)}")
        buffers[name] = np.ascontiguousarray(x).reshape(-1)
    for name, c in program.consts.items():
        buffers[name] = c.reshape(-1)
    for name, buf in program.buffers.items():
        if name not in buffers:
            buffers[name] = np.zeros(buf.size, buf.dtype)
    _run_steps(program.steps, buffers)
    return [buffers[n].reshape(program.buffers[n].shape) for n in program.outputs]


def _run_steps(steps: Any, buffers: dict[str, np.ndarray]) -> None:
    from fgrad.lowering.schedule import Branch, Repeat, WhileLoop
    for step in steps:
        if isinstance(step, Kernel):
            run_kernel(step, {p.name: buffers[p.name] for p in step.params})
        elif isinstance(step, Branch):
            _run_steps(step.branches[int(buffers[step.index][0])], buffers)
        elif isinstance(step, Repeat):
            for i in range(step.length):
                buffers[step.counter][0] = i
                _run_steps(step.body, buffers)
        elif isinstance(step, WhileLoop):
            _run_steps(step.cond, buffers)
            while bool(buffers[step.pred][0]):
                _run_steps(step.body, buffers)
                _run_steps(step.cond, buffers)
        else:
            LIBRARY[step.name](step, buffers)


def gemm_operands(call: Any, a: Any, b: Any) -> tuple[Any, Any]:
    """The flat buffers of a ``gemm`` as stacks of matrices, transposed as its flags say
    (views, for numpy and cupy alike): ``out = a @ b`` per batch."""
    batch, m, n, k = (call.param(p) for p in ("batch", "m", "n", "k"))
    a = a.reshape((batch, k, m) if call.param("trans_a") else (batch, m, k))
    b = b.reshape((batch, n, k) if call.param("trans_b") else (batch, k, n))
    return (a.transpose(0, 2, 1) if call.param("trans_a") else a,
            b.transpose(0, 2, 1) if call.param("trans_b") else b)


def gemm_update(call: Any, product: Any, addend: Any) -> Any:
    """What a ``gemm`` writes (flat), given the product (numpy or cupy, rounded to the
    output's dtype) and its addend buffer (None without one): ``addend + alpha *
    product``, each step rounded."""
    product = product.reshape(-1)
    alpha = call.param("alpha", 1.0)
    if alpha != 1.0:
        product = product * product.dtype.type(alpha)
    return product if addend is None else addend + product


def _gemm(call: Any, buffers: dict[str, np.ndarray]) -> None:
    a, b, *addend, out = (buffers[name] for name in call.args)
    product = np.matmul(*gemm_operands(call, a, b)).astype(out.dtype)
    out[:] = gemm_update(call, product, addend[0] if addend else None)


def _host_call(call: Any, buffers: dict[str, np.ndarray]) -> None:
    from fgrad.lowering.host_calls import run_impl
    n_in = call.param("n_inputs")
    shapes = call.param("shapes")
    arrays = [buffers[n].reshape(shape) for n, shape in zip(call.args, shapes)]
    for target, result in zip(arrays[n_in:], run_impl(call, arrays[:n_in])):
        target[...] = np.asarray(result, dtype=target.dtype)


LIBRARY: dict[str, Any] = {"gemm": _gemm, "host_call": _host_call}

__all__ += ["run_program", "gemm_operands", "LIBRARY"]
