"""A whole ``Program`` as LLVM IR: the kernels, and one entry point that runs the steps.

The entry point ``fgrad_entry_N(ptr bufs)`` loads every buffer's address
from the array ``bufs`` (the runtime fills it, in ``program.buffers`` order)
and runs the steps in order: kernel calls, BLAS ``gemm`` calls (on one thread
when small, see ``blas.py``), host calls, and native branches and loops for
``cond``, ``while`` and ``scan``.

Kernels go to one of two modules (``Modules``), compiled with different
effort (``compile.py``):

* ``main``: the entry point and every kernel that does real work, optimized
  at LLVM's speed level 3 (vectorized, unrolled);
* ``cheap``: kernels that touch at most ``CHEAP_WORK`` elements per run of
  the program (a loss's last few reductions, a bias update, a scalar
  output). The full pipeline would spend milliseconds vectorizing each of
  them to save nanoseconds per call; a light pipeline (speed level 1, no
  vectorization) compiles them in a fraction of the time into scalar code
  that is fast enough. A kernel inside a ``scan`` counts its work once per
  step, and one inside a ``while`` loop (trip count unknown) is never cheap.

A cheap kernel is an external function of its own module that ``main``
declares; the JIT links the two when it loads them.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from llvmlite import ir

from fgrad.lowering.cpu_llvm import blas, gemm, pool
from fgrad.lowering.cpu_llvm.irutil import (
    I1, I8, I64, PTR, entry_alloca, for_range, get_or_declare, llvm_type)
from fgrad.lowering.cpu_llvm.render import KernelRenderer
from fgrad.lowering.kernel_ir import Kernel, Loop, Stmt
from fgrad.lowering.schedule import Branch, LibraryCall, Program, Repeat, WhileLoop
from fgrad.lowering.simplify import canonical

CHEAP_WORK = 2048  # element-steps per program run below which a kernel is compiled lightly


@dataclasses.dataclass
class Modules:
    """The rendered program: ``main`` (entry point, heavy kernels) and ``cheap`` kernels."""

    main: ir.Module
    cheap: ir.Module
    entry: str

    def __str__(self) -> str:
        return f"{self.main}\n; --- cheap kernels (light optimization) ---\n{self.cheap}"


def work(stmts: tuple[Stmt, ...], repeat: int = 1) -> int:
    """How many statement executions ``stmts`` cost, run ``repeat`` times."""
    return sum(work(s.body, repeat * s.extent) if isinstance(s, Loop) else repeat
               for s in stmts)


def render_program(program: Program, entry_name: str) -> Modules:
    """The LLVM modules for ``program``, with the entry point ``entry_name``."""
    modules = Modules(ir.Module(name="fgrad"), ir.Module(name="fgrad_cheap"), entry_name)
    entry = ir.Function(modules.main, ir.FunctionType(ir.VoidType(), [PTR]), name=entry_name)
    b = ir.IRBuilder(entry.append_basic_block("entry"))
    ptrs = {}
    for i, name in enumerate(program.buffers):
        slot = b.gep(entry.args[0], [ir.Constant(I64, i)], inbounds=True, source_etype=PTR)
        ptrs[name] = b.load(slot, typ=PTR, name=name)
    _StepRenderer(modules, b, ptrs, program).steps(program.steps, repeat=1)
    b.ret_void()
    return modules


class _StepRenderer:
    """The entry point's body: kernel calls, library calls and native control flow."""

    def __init__(self, modules: Modules, b: ir.IRBuilder, ptrs: dict[str, ir.Value],
                 program: Program) -> None:
        self.modules, self.b, self.ptrs, self.program = modules, b, ptrs, program
        self.count = 0
        self.rendered: dict[tuple[str, int, bool], ir.Function] = {}

    def steps(self, steps: Any, repeat: float) -> None:
        """Render ``steps``, which run ``repeat`` times per program run (inf: unknown)."""
        b = self.b
        for step in steps:
            if isinstance(step, Kernel):
                self.kernel(step, repeat)
            elif isinstance(step, LibraryCall) and step.name == "gemm":
                _render_gemm(self.modules, b, step, self.ptrs, self.program)
            elif isinstance(step, LibraryCall) and step.name == "host_call":
                _render_host_call(self.modules.main, b, step, self.ptrs, self.program)
            elif isinstance(step, Branch):  # cond / switch: a native switch on the index
                index = b.load(self.ptrs[step.index], typ=ir.IntType(32))
                end = b.append_basic_block("branch.end")
                cases = [b.append_basic_block(f"branch.case{i}")
                         for i in range(len(step.branches))]
                switch = b.switch(index, cases[-1])
                for i, (block, body) in enumerate(zip(cases, step.branches)):
                    switch.add_case(ir.Constant(ir.IntType(32), i), block)
                    b.position_at_end(block)
                    self.steps(body, repeat)
                    b.branch(end)
                b.position_at_end(end)
            elif isinstance(step, Repeat):  # scan: a native loop storing its step number
                with for_range(b, step.length, "step") as i:
                    b.store(i, self.ptrs[step.counter])
                    self.steps(step.body, repeat * step.length)
            elif isinstance(step, WhileLoop):
                header = b.append_basic_block("while.cond")
                body = b.append_basic_block("while.body")
                end = b.append_basic_block("while.end")
                b.branch(header)
                b.position_at_end(header)
                self.steps(step.cond, math.inf)
                flag = b.load(self.ptrs[step.pred], typ=I8)
                b.cbranch(b.icmp_unsigned("!=", flag, ir.Constant(I8, 0)), body, end)
                b.position_at_end(body)
                self.steps(step.body, math.inf)
                b.branch(header)
                b.position_at_end(end)
            else:
                raise NotImplementedError(f"cpu backend: no rendering for step {step!r}")

    def kernel(self, kernel: Kernel, repeat: float) -> None:
        """Call ``kernel``, compiled once per program for every kernel that computes the
        same on other buffers (``simplify.canonical``: the layers of an MLP share theirs)."""
        parts = _kernel_parts(kernel)
        cheap = parts == 1 and work(kernel.body) * repeat <= CHEAP_WORK
        key = (str(canonical(kernel)), parts, cheap)
        fn = self.rendered.get(key)
        if fn is None:
            self.count += 1
            name = f"k{self.count}_{kernel.name}"
            if parts > 1:
                fn = self.split_kernel(kernel, name, parts)
            elif cheap:
                # external in its own module (so unique per program), declared in main
                fn = KernelRenderer(self.modules.cheap, kernel,
                                    f"{self.modules.entry}_{name}", linkage="external").render()
                fn = get_or_declare(self.modules.main, fn.name, fn.function_type)
            else:
                fn = KernelRenderer(self.modules.main, kernel, name).render()
                fn.attributes.add("noinline")  # the entry stays a list of calls
            self.rendered[key] = fn
        if parts > 1:
            self.run_pieces(fn, kernel, parts)
        else:
            self.b.call(fn, [self.ptrs[p.name] for p in kernel.params])

    def split_kernel(self, kernel: Kernel, name: str, parts: int) -> ir.Function:
        """A piece function for running ``kernel``'s outermost (parallel) loop in
        ``parts`` pieces on the thread pool: the kernel takes a range of that loop, and
        piece ``j`` (``pool.piece_function``) runs block ``j`` of it."""
        main = self.modules.main
        fn = KernelRenderer(main, kernel, name, ranged=True).render()
        extent = kernel.body[0].extent  # type: ignore[union-attr]
        pb, pointers, start, stop = pool.piece_function(
            main, f"{name}_piece", len(kernel.params), extent, parts)
        pb.call(fn, [*pointers, start, stop])
        pb.ret_void()
        pb.function.linkage = "internal"
        return pb.function

    def run_pieces(self, piece: ir.Function, kernel: Kernel, parts: int) -> None:
        """Hand ``kernel``'s buffers and its piece function to the thread pool."""
        pool.call_parallel_for(self.modules.main, self.b, piece,
                               [self.ptrs[p.name] for p in kernel.params], parts)


def _kernel_parts(kernel: Kernel) -> int:
    """Into how many pieces to cut ``kernel`` (1: run it whole): only a kernel that is
    one parallel loop, with enough work per call (``pool.SPLIT_KERNEL_WORK``)."""
    body = kernel.body
    if len(body) != 1 or not isinstance(body[0], Loop) or not body[0].parallel:
        return 1
    return min(pool.kernel_parts_for(work(body)), body[0].extent)


def _render_host_call(module: ir.Module, b: ir.IRBuilder, call: LibraryCall,
                      ptrs: dict[str, ir.Value], program: Program) -> None:
    """A call back into Python (see ``host_calls.py``) with an array of buffer pointers."""
    import llvmlite.binding as llvm

    from fgrad.lowering.host_calls import make_callback
    symbol, address = make_callback(call, program.buffers)
    llvm.add_symbol(symbol, address)
    fn = get_or_declare(module, symbol, ir.FunctionType(ir.VoidType(), [PTR]))
    with b.goto_entry_block():
        array = b.alloca(PTR, size=ir.Constant(I64, len(call.args)))
    for i, name in enumerate(call.args):
        slot = b.gep(array, [ir.Constant(I64, i)], inbounds=True, source_etype=PTR)
        b.store(ptrs[name], slot)
    b.call(fn, [array])


def _render_gemm(modules: Modules, b: ir.IRBuilder, call: LibraryCall,
                 ptrs: dict[str, ir.Value], program: Program) -> None:
    """Row-major ``C = op(A) @ op(B)`` per batch, as column-major BLAS ``C^T = op(B)^T op(A)^T``.

    Fortran BLAS takes every argument by pointer: ``gemm(transa, transb, m, n, k,
    alpha, a, lda, b, ldb, beta, c, ldc)``. A large product is cut into pieces the
    thread pool shares (``pool.py``, ``_gemm_piece``); each runs on one BLAS thread.
    With an addend (``gemm(a, b, p)``), fgrad's routine (``gemm.py``) reads ``p``
    itself; for BLAS each piece first copies its block of ``p`` into C and BLAS adds
    to it (``beta = 1``). The pieces, mere calls, are compiled lightly (the ``cheap``
    module)."""
    module = modules.main
    c_name = call.args[-1]
    dtype = program.buffers[c_name].dtype
    nargs = len(call.args)
    batch, m, n, k = (call.param(p) for p in ("batch", "m", "n", "k"))
    if m == 0 or n == 0:
        return
    parts = pool.parts_for(m * n * k)
    i32 = ir.IntType(32)
    one_thread = blas.has_thread_control() and (parts > 1 or batch * m * n * k < blas.SMALL_GEMM)
    if one_thread:  # see blas.py: a small product runs on the calling thread alone
        threads = get_or_declare(module, "fgrad_blas_threads", ir.FunctionType(i32, [i32]))
        before = b.call(threads, [ir.Constant(i32, 1)])
    piece = None
    if parts > 1:
        name = modules.cheap.get_unique_name(f"{modules.entry}_gemm_piece")
        defined = _gemm_piece(modules.cheap, call, dtype, parts, name)
        piece = get_or_declare(module, defined.name, defined.function_type)
    with for_range(b, batch, "batch") as i:
        def at(name: str, stride: int) -> ir.Value:
            offset = b.mul(i, ir.Constant(I64, stride))
            return b.gep(ptrs[name], [offset], inbounds=True, source_etype=llvm_type(dtype))
        operands = [at(name, size) for name, size in
                    zip(call.args, (m * k, k * n) + (m * n,) * (nargs - 2))]
        if piece is None:
            _call_gemm(module, b, call, dtype, *operands)
        else:
            pool.call_parallel_for(module, b, piece, operands, parts)
    if one_thread:
        b.call(threads, [before])


def _call_gemm(module: ir.Module, b: ir.IRBuilder, call: LibraryCall, dtype: np.dtype,
               *operands: ir.Value, rows: tuple[Any, Any] | None = None,
               cols: tuple[Any, Any] | None = None) -> None:
    """One BLAS call for the product's rows ``rows`` (first, count) and columns ``cols``
    of C (all by default): A's rows and C's rows, or B's and C's columns, move along.
    ``operands``: A, B, (the addend,) C. Bounds are ints or i64 values."""
    typ = llvm_type(dtype)
    m, n, k = (call.param(p) for p in ("m", "n", "k"))
    ta, tb = call.param("trans_a"), call.param("trans_b")
    (r0, mm), (c0, nn) = rows or (0, m), cols or (0, n)
    a, b_, *addend, c = operands

    def value(x: Any) -> ir.Value:
        return ir.Constant(I64, x) if isinstance(x, int) else x

    def mul(x: Any, y: int) -> Any:
        return x * y if isinstance(x, int) else b.mul(x, ir.Constant(I64, y))

    def plus(x: Any, y: Any) -> Any:
        return x + y if isinstance(x, int) and isinstance(y, int) else b.add(value(x), value(y))

    def at(ptr: ir.Value, offset: Any) -> ir.Value:
        return b.gep(ptr, [value(offset)], inbounds=True, source_etype=typ)

    a_block = at(a, r0 if ta else mul(r0, k))
    b_block = at(b_, mul(c0, k) if tb else c0)
    c_block = at(c, plus(mul(r0, n), c0))
    if gemm.use_for(dtype, m, n, k, ta, tb):  # fgrad's own routine (gemm.py)
        gemm.register(dtype)
        own = get_or_declare(module, gemm.symbol(dtype), gemm.signature(dtype))
        p_block = at(addend[0], plus(mul(r0, n), c0)) if addend else ir.Constant(PTR, None)
        b.call(own, [value(int(ta)), value(mm), value(nn), value(k),
                     ir.Constant(typ, call.param("alpha", 1.0)), a_block, value(m if ta else k),
                     b_block, value(n), p_block, c_block, value(n)])
        return
    if addend:  # C's block starts as the addend's (BLAS then adds the product: beta = 1)
        memcpy = module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])

        def copy(first: Any, count: Any) -> None:
            nbytes = value(mul(count, dtype.itemsize))
            b.call(memcpy, [at(c, first), at(addend[0], first), nbytes, ir.Constant(I1, 0)])
        if cols is None:  # whole rows: one contiguous block
            copy(mul(r0, n), mul(mm, n))
        else:
            with for_range(b, value(mm), "row") as r:
                copy(plus(mul(plus(r, r0), n), c0), nn)
    fn = get_or_declare(module, "fgrad_sgemm" if dtype == np.float32 else "fgrad_dgemm",
                        ir.FunctionType(ir.VoidType(), [PTR] * 13))
    i32 = ir.IntType(32)

    def by_ref(x: Any, typ_: ir.Type) -> ir.Value:
        slot = entry_alloca(b, typ_)
        if not isinstance(x, ir.Value):
            x = ir.Constant(typ_, x)
        elif typ_ == i32:
            x = b.trunc(x, i32)
        b.store(x, slot)
        return slot

    chars = [by_ref(ord("T" if t else "N"), I8) for t in (tb, ta)]
    dims = [by_ref(d, i32) for d in (nn, mm, k)]
    lds = [by_ref(max(1, d), i32) for d in (k if tb else n, m if ta else k, n)]
    alpha = by_ref(call.param("alpha", 1.0), typ)
    beta = by_ref(1.0 if addend else 0.0, typ)
    b.call(fn, [chars[0], chars[1], dims[0], dims[1], dims[2], alpha, b_block, lds[0],
                a_block, lds[1], beta, c_block, lds[2]])


def _gemm_piece(module: ir.Module, call: LibraryCall, dtype: np.dtype, parts: int,
                name: str) -> ir.Function:
    """``void piece(ptr ctx, i64 j)``: block ``j`` of ``parts`` of the product whose A, B
    (addend) and C pointers ``ctx`` holds. The blocks split the larger operand, so each
    thread packs only its share of it: C's columns (and B's) when B is the larger,
    else C's rows (and A's)."""
    m, n = call.param("m"), call.param("n")
    by_cols = n >= m
    b, operands, start, stop = pool.piece_function(module, name, len(call.args),
                                                   n if by_cols else m, parts)
    span = (start, b.sub(stop, start))
    _call_gemm(module, b, call, dtype, *operands, cols=span if by_cols else None,
               rows=None if by_cols else span)
    b.ret_void()
    return b.function


__all__ = ["render_program", "Modules", "CHEAP_WORK", "work"]
