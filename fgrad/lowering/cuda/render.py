"""Printing kernel IR as CUDA C: a table of scalar ops and a walk over statements.

One module is one self-contained translation unit (no ``#include``: NVRTC
has no headers): the prelude of ``dialect.py``, then one
``extern "C" __global__`` function per kernel whose parameters are one
``__restrict__`` pointer per buffer (``const`` for inputs); every size is a
compile-time constant in the source. ``plan.py`` decides how a kernel is
spread over threads; the walk prints that plan:

* the parallel loops become a flattened grid-stride loop (``strided``);
* a long reduction gets a block of threads and a shared-memory tree
  (``block_reduce``: the only place barriers appear);
* a scatter's read-modify-write becomes an atomic update;
* everything else is plain C: ``for`` loops, ``if`` for masked stores.

Every value becomes a named ``const`` temporary (``v12``), so a shared
subexpression (expressions are DAGs) is computed once per statement;
indices are ``long long``. Floating-point arithmetic is not contracted into
FMAs (``--fmad=false`` in ``CudaModule.options``), so results match numpy's
wherever CUDA's math functions are correctly rounded.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.lowering.cuda import plan as planning
from fgrad.lowering.cuda.dialect import (
    HALF, PRELUDE, cast_expr, ctype, from_mem, literal, mem_type, to_mem)
from fgrad.lowering.kernel_ir import (
    COMPARE, AccRef, Accumulate, Alu, Cast, Const, DefineAcc, Idx, IndexValue, Kernel, Load,
    Loop, Param, ScalarOp, Stmt, Store, Value)
from fgrad.lowering.schedule import Branch, Program, Repeat, WhileLoop
from fgrad.lowering.semantics import identity

O = ScalarOp
OPTIONS = ("--fmad=false",)

# --- the op table: C format strings over the operands {0} {1} {2} ------------------------------
# {t} register type, {f} "f" for float math functions, {u} the unsigned type integer
# arithmetic wraps in (signed overflow is undefined in C), {w} the unsigned type of the
# same width (logical shifts), {bits} the width.
_ANY = {O.CMPLT: "{0} < {1}", O.CMPLE: "{0} <= {1}", O.CMPEQ: "{0} == {1}",
        O.CMPNE: "{0} != {1}", O.WHERE: "{0} ? {1} : {2}", O.MAX: "fg_max<{t}>({0}, {1})",
        O.MIN: "fg_min<{t}>({0}, {1})"}
FLOAT_OPS = {**_ANY, O.NEG: "-{0}", O.ADD: "{0} + {1}", O.SUB: "{0} - {1}", O.MUL: "{0} * {1}",
             O.DIV: "{0} / {1}", O.REM: "fmod{f}({0}, {1})", O.RSQRT: "({t})1 / sqrt{f}({0})",
             O.LOGADDEXP: "fg_logaddexp({0}, {1})", O.FMA: "fma{f}({0}, {1}, {2})",
             **{op: f"{op.value}{{f}}({{0}})" for op in (
                 O.EXP, O.LOG, O.LOG1P, O.EXPM1, O.SIN, O.COS, O.TANH, O.SQRT, O.FLOOR, O.CEIL,
                 O.ROUND, O.ERF, O.ERFC, O.LGAMMA)},  # roundf: half away from zero, as ROUND
             O.ABS: "fabs{f}({0})", O.POW: "pow{f}({0}, {1})", O.ATAN2: "atan2{f}({0}, {1})",
             O.NEXTAFTER: "nextafter{f}({0}, {1})"}
INT_OPS = {**_ANY, O.NEG: "({t})(0 - ({u}){0})", O.ADD: "({t})(({u}){0} + ({u}){1})",
           O.SUB: "({t})(({u}){0} - ({u}){1})", O.MUL: "({t})(({u}){0} * ({u}){1})",
           O.ABS: "({0} < 0 ? ({t})(0 - ({u}){0}) : {0})", O.DIV: "fg_div<{t}>({0}, {1})",
           O.REM: "fg_rem<{t}>({0}, {1})", O.POW: "fg_ipow<{t}>({0}, {1})",
           O.AND: "({t})({0} & {1})", O.OR: "({t})({0} | {1})", O.XOR: "({t})({0} ^ {1})",
           O.NOT: "({t})~{0}", O.SHL: "(({u}){1} < {bits} ? ({t})(({w}){0} << {1}) : ({t})0)",
           O.SHR: "(({u}){1} < {bits} ? ({t})(({w}){0} >> {1}) : ({t})0)",
           O.FLOOR: "{0}", O.CEIL: "{0}", O.ROUND: "{0}"}
UINT_OPS = {**INT_OPS, O.ABS: "{0}"}
BOOL_OPS = {**_ANY, **{op: INT_OPS[op] for op in (O.ADD, O.MUL, O.AND, O.OR, O.XOR, O.SHL,
                                                  O.SHR, O.FLOOR, O.CEIL, O.ROUND)},
            O.ABS: "{0}", O.NOT: "!{0}"}  # numpy: add is or, multiply is and


def alu_expr(op: ScalarOp, dtype: Any, out: Any, args: Sequence[str]) -> str:
    """``op`` on C expressions of ``dtype``, as a C expression of type ``out``."""
    dtype, out = np.dtype(dtype), np.dtype(out)
    if op is O.BITCAST:
        if out == np.bool_:
            return f"({args[0]} != 0)"
        return from_mem(out, f"fg_bitcast<{mem_type(out)}>({to_mem(dtype, args[0])})")
    half = HALF.get(dtype.name)
    if half and op is O.NEXTAFTER:  # the next 16-bit value, not the next float
        return f"fg_next16({args[0]}, {args[1]}, {str(dtype.name == 'bfloat16').lower()})"
    table = FLOAT_OPS if dtypes.is_float(dtype) else BOOL_OPS if dtype == np.bool_ else \
        UINT_OPS if dtype.kind == "u" else INT_OPS
    if op not in table:
        raise NotImplementedError(f"cuda renderer: no {dtype} rendering for {op.name}")
    width = 8 * dtype.itemsize
    expr = table[op].format(
        *args, t=ctype(dtype), f="" if dtype == np.float64 else "f", bits=width,
        u="unsigned long long" if width == 64 else "unsigned int",
        w={8: "unsigned char", 16: "unsigned short", 32: "unsigned int",
           64: "unsigned long long"}[width])
    if half and op not in COMPARE and op is not O.WHERE:
        return f"{half[2]}({expr})"  # computed in float, rounded once to the 16-bit format
    return expr


# --- the walk ------------------------------------------------------------------------------------

_PRECEDENCE = {"and": 0, "lt": 1, "ge": 1, "eq": 1, "add": 2, "mul": 3, "div": 3, "mod": 3}
_SYMBOL = {"add": "+", "mul": "*", "div": "/", "mod": "%", "lt": "<", "ge": ">=", "eq": "==",
           "and": "&&"}


class _Writer:
    """Renders one kernel's statements as C lines, following its plan."""

    def __init__(self, kernel: Kernel) -> None:
        names = [p.name for p in kernel.params] + [
            s.var if isinstance(s, Loop) else s.name for s, _ in planning.walk(kernel.body)
            if isinstance(s, (Loop, DefineAcc))]
        clash = [n for n in names if re.fullmatch(r"v\d+|fg_\w*|[^A-Za-z_].*|.*\W.*", n)]
        if clash:  # a shadowed name would compile and compute the wrong thing
            raise ValueError(f"cuda renderer: kernel {kernel.name}: names {clash} are not C "
                             "identifiers or are the renderer's own (v<n>, fg_*)")
        self.plan = planning.plan(kernel)
        self.types = {p.name: np.dtype(p.dtype) for p in kernel.params}
        self.sizes = {p.name: p.size for p in kernel.params}
        self.accs: dict[str, tuple[ScalarOp, np.dtype]] = {}
        self.lines: list[str] = []
        self.depth, self.count = 1, 0
        self.memo: dict[int, tuple[Any, str]] = {}

    def emit(self, line: str) -> None:
        self.lines.append("  " * self.depth + line)

    def open(self, header: str) -> None:
        self.emit(header + " {")
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.emit("}")

    def strided(self, start: str, step: str, loops: Sequence[Loop]) -> None:
        """Opens a ``for`` over the flattened ``loops`` from ``start`` by ``step`` and splits
        the flat index into their variables (the innermost varying fastest)."""
        flat = f"fg_{'r' if start == 'threadIdx.x' else 'i'}{self.depth}"
        n = int(np.prod([lp.extent for lp in loops]))
        if start != "threadIdx.x":  # a grid-stride loop: mostly one iteration per thread
            self.emit("#pragma unroll 1")  # (unrolling would only bloat the code)
        self.open(f"for (long long {flat} = {start}; {flat} < {n}LL; {flat} += {step})")
        extents = [max(lp.extent, 1) for lp in loops]  # an empty loop: dead code that compiles
        for k, lp in enumerate(loops):
            inner = int(np.prod(extents[k + 1:]))
            x = flat if inner == 1 else f"{flat} / {inner}LL"
            if k > 0:
                x = f"{x} % {extents[k]}LL" if inner == 1 else f"({x}) % {extents[k]}LL"
            self.emit(f"const long long {lp.var} = {x};")

    def block_reduce(self, defs: list[DefineAcc], loops: list[Loop], tail: list[Store]) -> None:
        """Each thread accumulates a strided share; a shared-memory tree combines the shares
        (halving the active threads each step); thread 0 stores. Rows need no barrier in
        between: after the last one, only thread 0 reads, only slot 0, which only it writes."""
        self.block(defs)
        for loop in loops:
            chain = planning.chain(loop)
            self.strided("threadIdx.x", "blockDim.x", chain)
            self.block(chain[-1].body)
            self.close()
        for d in defs:
            self.emit(f"__shared__ {ctype(d.dtype)} fg_s_{d.name}[{planning.BLOCK}];")
            self.emit(f"fg_s_{d.name}[threadIdx.x] = {d.name};")
        self.emit("__syncthreads();")
        self.open(f"for (int fg_half = {planning.BLOCK // 2}; fg_half > 0; fg_half >>= 1)")
        self.open("if (threadIdx.x < fg_half)")
        for d in defs:
            mine, other = f"fg_s_{d.name}[threadIdx.x]", f"fg_s_{d.name}[threadIdx.x + fg_half]"
            self.emit(f"{mine} = {alu_expr(d.op, d.dtype, d.dtype, [mine, other])};")
        self.close()
        self.emit("__syncthreads();")
        self.close()
        self.open("if (threadIdx.x == 0)")
        for d in defs:
            self.emit(f"{d.name} = fg_s_{d.name}[0];")
        self.block(tail)
        self.close()

    # --- statements ----------------------------------------------------------------------------
    def block(self, stmts: Sequence[Stmt]) -> None:
        for s in stmts:
            self.memo = {}  # a temporary is visible only in the C block that declared it
            self.stmt(s)

    def stmt(self, s: Stmt) -> None:
        if isinstance(s, Loop):
            self.open(f"for (long long {s.var} = 0; {s.var} < {s.extent}LL; ++{s.var})")
            self.block(s.body)
            self.close()
        elif isinstance(s, DefineAcc):
            dtype = np.dtype(s.dtype)
            self.accs[s.name] = (s.op, dtype)
            init = identity(s.op, np.dtype(np.float32) if dtype.name in HALF else dtype)
            self.emit(f"{ctype(dtype)} {s.name} = {literal(init, dtype)};")
        elif isinstance(s, Accumulate):
            op, dtype = self.accs[s.name]
            value = self.value(s.value)
            self.emit(f"{s.name} = {alu_expr(op, dtype, dtype, [s.name, value])};")
        elif isinstance(s, Store):
            if s.mask is not None:
                self.open(f"if ({self.index(s.mask)})")
            self.store(s)
            if s.mask is not None:
                self.close()
        else:
            raise TypeError(f"cuda renderer: unknown statement {s!r}")

    def store(self, s: Store) -> None:
        dtype = self.types[s.buf]
        target = f"{s.buf}[{self.index(s.index)}]"
        value = cast_expr(self.value(s.value), s.value.dtype, dtype)
        if s.op is None:
            self.emit(f"{target} = {to_mem(dtype, value)};")
        elif self.plan.mode != "atomic":  # read-modify-write: no other thread writes here
            new = alu_expr(s.op, dtype, dtype, [from_mem(dtype, target), value])
            self.emit(f"{target} = {to_mem(dtype, new)};")
        elif s.op is O.ADD and dtype in (np.float32, np.float64):
            self.emit(f"atomicAdd(&{target}, {value});")  # the hardware's float reduction
        else:
            t, word = ctype(dtype), "unsigned int" if dtype.itemsize == 4 else "unsigned long long"
            update = alu_expr(s.op, dtype, dtype, ["a", "b"])
            self.emit(f"fg_atomic<{word}>(&{target}, {value}, "
                      f"[]({t} a, {t} b) {{ return ({t})({update}); }});")

    # --- values --------------------------------------------------------------------------------
    def value(self, v: Value) -> str:
        hit = self.memo.get(id(v))
        if hit is not None and hit[0] is v:
            return hit[1]
        if isinstance(v, Const):
            return literal(v.value, v.dtype)
        if isinstance(v, AccRef):
            return v.name  # never memoized: the accumulator changes
        if isinstance(v, Load):
            expr = self.load(v)
        elif isinstance(v, Alu):
            arg_dtype = v.args[-1].dtype if v.op is O.WHERE else v.args[0].dtype
            expr = alu_expr(v.op, arg_dtype, v.dtype, [self.value(a) for a in v.args])
        elif isinstance(v, Cast):
            expr = cast_expr(self.value(v.x), v.x.dtype, v.dtype)
        elif isinstance(v, IndexValue):
            expr = cast_expr(self.index(v.index), np.int64, v.dtype)
        else:
            raise TypeError(f"cuda renderer: unknown value {v!r}")
        name = f"v{self.count}"
        self.count += 1
        self.emit(f"const {ctype(v.dtype)} {name} = {expr};")
        self.memo[id(v)] = (v, name)
        return name

    def load(self, v: Load) -> str:
        dtype = self.types[v.buf]
        fill = literal(v.fill, dtype)
        if v.mask is not None and self.sizes[v.buf] == 0:
            return fill  # an empty buffer: every read is padding
        read = cast_expr(from_mem(dtype, f"{v.buf}[{self.index(v.index)}]"), dtype, v.dtype)
        return read if v.mask is None else f"({self.index(v.mask)}) ? {read} : {fill}"

    def index(self, e: Idx, parent: int = -1) -> str:
        """A ``long long`` C expression, parenthesized where ``parent`` binds tighter."""
        op, a = e.op, e.args
        if op in ("var", "const"):
            return str(a[0]) if op == "var" or abs(a[0]) < 2**31 else f"{a[0]}LL"
        if op == "value":
            return f"(long long){self.value(a[0])}"
        if op in ("min", "max"):
            return f"fg_{op}<long long>({self.index(a[0])}, {self.index(a[1])})"
        mine = _PRECEDENCE[op]
        text = f"{self.index(a[0], mine)} {_SYMBOL[op]} {self.index(a[1], mine + 1)}"
        return f"({text})" if mine < parent else text


# --- kernels and modules -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class CudaKernel:
    name: str                    # the extern "C" __global__ function's name (unique in its module)
    params: tuple[Param, ...]    # one pointer per buffer, in argument order
    grid: int                    # blocks (1-D)
    block: int                   # threads per block (1-D)
    shared_bytes: int = 0        # dynamic shared memory (a block reduction's arrays are static)
    ir: Kernel | None = dataclasses.field(default=None, compare=False, repr=False)
    mode: str = "thread"         # the launch plan: "thread", "block", "atomic" or "serial"


@dataclasses.dataclass(frozen=True)
class CudaModule:
    source: str                  # one translation unit: the prelude, then every kernel
    kernels: tuple[CudaKernel, ...]
    options: tuple[str, ...] = OPTIONS  # compiler options (NVRTC, nvcc, cupy.RawModule)


def c_name(name: str) -> str:
    """``name`` as a C identifier (characters that cannot be in one become ``_``)."""
    name = re.sub(r"\W", "_", name)
    return name if re.match(r"[A-Za-z_]", name) else "k_" + name


def render_kernel(kernel: Kernel, name: str | None = None) -> str:
    """The ``extern "C" __global__`` function for ``kernel`` (named ``name`` if given)."""
    return _render(kernel, c_name(name or kernel.name))[0]


def _render(kernel: Kernel, name: str) -> tuple[str, planning.Plan]:
    w = _Writer(kernel)
    p = w.plan
    if p.mode in ("thread", "atomic"):
        w.strided("blockIdx.x * (long long)blockDim.x + threadIdx.x",
                  "(long long)gridDim.x * blockDim.x", p.run)
        w.block(p.body)
        w.close()
    elif p.mode == "block":
        if p.run:
            w.strided("(long long)blockIdx.x", "gridDim.x", p.run)
        w.block_reduce(*planning.reduction(p.body))  # type: ignore[misc]
        if p.run:
            w.close()
    else:
        w.block(p.body)
    params = ", ".join(f"{'' if q.is_output else 'const '}{mem_type(q.dtype)}* __restrict__ "
                       f"{q.name}" for q in kernel.params)
    head = f'extern "C" __global__ void __launch_bounds__({p.block}) {name}({params}) {{'
    return "\n".join([head, *w.lines, "}"]), p


def render_module(kernels: Sequence[Kernel]) -> CudaModule:
    """The prelude and every kernel, named ``k{position}_{IR name}`` (unique)."""
    texts, out = [PRELUDE], []
    for i, kernel in enumerate(kernels):
        name = f"k{i}_{c_name(kernel.name)}"
        text, p = _render(kernel, name)
        texts.append(text)
        out.append(CudaKernel(name, kernel.params, p.grid, p.block, 0, kernel, p.mode))
    return CudaModule("\n\n".join(texts) + "\n", tuple(out))


def program_kernels(steps: Sequence[Any]) -> list[Kernel]:
    """The kernels of ``steps`` in textual order (branches in turn, loop bodies once)."""
    found: list[Kernel] = []
    for step in steps:
        if isinstance(step, Kernel):
            found.append(step)
        elif isinstance(step, Branch):
            for branch in step.branches:
                found.extend(program_kernels(branch))
        elif isinstance(step, Repeat):
            found.extend(program_kernels(step.body))
        elif isinstance(step, WhileLoop):
            found.extend(program_kernels(step.cond) + program_kernels(step.body))
    return found


def render_program(program: Program) -> CudaModule:
    """One module with every kernel of ``program``; ``CudaKernel.ir`` is its IR kernel."""
    return render_module(program_kernels(program.steps))


__all__ = ["CudaKernel", "CudaModule", "render_kernel", "render_module", "render_program",
           "program_kernels", "alu_expr", "c_name", "FLOAT_OPS", "INT_OPS", "UINT_OPS",
           "BOOL_OPS", "OPTIONS"]
