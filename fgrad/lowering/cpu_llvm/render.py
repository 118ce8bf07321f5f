"""Printing one kernel as an LLVM function: a table of scalar ops and a walk over statements.

Each kernel becomes a function whose buffer parameters are ``noalias``
pointers (a kernel never reads a buffer it writes, except a read-modify-write
of the same element, so this is true and lets LLVM vectorize). The entry
point that calls the kernels in order is ``program.py``'s.

Numerics are chosen to match numpy: no fast-math flags (so no FMA
contraction, and an expression is evaluated as written), except ``reassoc``
on the accumulating addition (or multiplication) of a float reduction: LLVM
then sums in several vector lanes at once and adds the lanes up at the end,
as numpy's own pairwise summation does (the scheduler already splits long
sums into blocks, see ``simplify.block_sums``). ``MAX``/``MIN`` use
``llvm.maximum``/``llvm.minimum`` (NaN-propagating); float ``!=`` is
unordered (NaN != NaN); integer division and remainder by zero give 0
instead of trapping; a masked load reads index 0 instead of the masked index
and selects the fill value, so it never touches memory outside its buffer.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from llvmlite import ir

from fgrad.lowering.cpu_llvm.irutil import (
    I1, I8, I64, PTR, entry_alloca, for_range, get_or_declare, llvm_type)
from fgrad.lowering.cpu_llvm.mathlib import exp_f32, tanh_f32
from fgrad.lowering.kernel_ir import (
    AccRef, Accumulate, Alu, Cast, Const, DefineAcc, Idx, IndexValue, Kernel, Load, Loop,
    ScalarOp, Stmt, Store, Value)
from fgrad.lowering.semantics import identity

O = ScalarOp

# Float ops that are LLVM intrinsics (vectorizable) and those that are libm calls.
_INTRINSIC = {O.ABS: "llvm.fabs", O.EXP: "llvm.exp", O.LOG: "llvm.log", O.SIN: "llvm.sin",
              O.COS: "llvm.cos", O.SQRT: "llvm.sqrt", O.FLOOR: "llvm.floor",
              O.CEIL: "llvm.ceil", O.ROUND: "llvm.round", O.MAX: "llvm.maximum",
              O.MIN: "llvm.minimum", O.POW: "llvm.pow"}
_LIBM = {O.TANH: "tanh", O.LOG1P: "log1p", O.EXPM1: "expm1", O.ATAN2: "atan2", O.ERF: "erf",
         O.ERFC: "erfc", O.LGAMMA: "lgamma", O.NEXTAFTER: "nextafter"}
_FCMP = {O.CMPLT: "<", O.CMPLE: "<=", O.CMPEQ: "=="}
# The one fast-math flag: a float sum's (or product's) own accumulating operation may be
# reassociated, so LLVM keeps several partial sums in vector lanes.
_REASSOC: dict[ScalarOp, Callable[[ir.IRBuilder], Callable[..., ir.Value]]] = {
    O.ADD: lambda b: b.fadd, O.MUL: lambda b: b.fmul}
_ICMP = {O.CMPLT: "<", O.CMPLE: "<=", O.CMPEQ: "==", O.CMPNE: "!="}


class KernelRenderer:
    """Renders one ``Kernel`` into an LLVM function of ``module``."""

    def __init__(self, module: ir.Module, kernel: Kernel, name: str,
                 linkage: str = "internal", ranged: bool = False) -> None:
        """``ranged``: the function takes two more arguments, ``start`` and ``stop``, and
        runs only those iterations of the kernel's outermost loop (a parallel one: the
        thread pool's pieces, see ``program.py``)."""
        self.module, self.kernel = module, kernel
        fnty = ir.FunctionType(ir.VoidType(), [PTR] * len(kernel.params) + [I64, I64] * ranged)
        self.fn = ir.Function(module, fnty, name=name)
        self.range = tuple(self.fn.args[-2:]) if ranged else None
        self.fn.linkage = linkage
        self.ptrs: dict[str, ir.Value] = {}
        self.sizes: dict[str, int] = {}
        self.dtypes: dict[str, np.dtype] = {}
        for arg, p in zip(self.fn.args, kernel.params):
            arg.add_attribute("noalias")
            self.ptrs[p.name], self.sizes[p.name], self.dtypes[p.name] = arg, p.size, p.dtype
        self.builder = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.loops: dict[str, ir.Value] = {}
        self.accs: dict[str, tuple[ir.Value, ScalarOp, np.dtype]] = {}
        self.memo: dict[int, tuple[Value, ir.Value]] = {}

    def render(self) -> ir.Function:
        self.block(self.kernel.body)
        self.builder.ret_void()
        return self.fn

    # --- statements -----------------------------------------------------------------------------
    def block(self, stmts: tuple[Stmt, ...]) -> None:
        b = self.builder
        for s in stmts:
            self.memo = {}  # rendered values are only reused within one statement's block
            if isinstance(s, Loop) and self.range is not None and s is self.kernel.body[0]:
                start, stop = self.range
                with for_range(b, b.sub(stop, start), s.var) as i:
                    self.loops[s.var] = b.add(i, start, flags=["nsw"])
                    self.block(s.body)
            elif isinstance(s, Loop):
                with for_range(b, s.extent, s.var) as i:
                    self.loops[s.var] = i
                    self.block(s.body)
            elif isinstance(s, Store):
                if s.mask is None:
                    self.store(s)
                else:
                    flag = b.icmp_signed("!=", self.index(s.mask), ir.Constant(I64, 0))
                    with b.if_then(flag):
                        self.memo = {}  # values made before the branch stay valid, but keep
                        self.store(s)   # it simple: nothing rendered in here escapes
            elif isinstance(s, DefineAcc):
                slot = entry_alloca(b, llvm_type(s.dtype), name=s.name)
                b.store(self.const(identity(s.op, s.dtype), s.dtype), slot)
                self.accs[s.name] = (slot, s.op, np.dtype(s.dtype))
            elif isinstance(s, Accumulate):
                slot, op, dtype = self.accs[s.name]
                acc, value = b.load(slot, typ=llvm_type(dtype)), self.value(s.value)
                if dtype.kind == "f" and op in _REASSOC:  # see the module docstring
                    b.store(_REASSOC[op](b)(acc, value, flags=("reassoc",)), slot)
                else:
                    b.store(self.alu(op, [acc, value], dtype, dtype), slot)
            else:
                raise TypeError(f"cpu backend: unknown statement {s!r}")

    def store(self, s: Store) -> None:
        b, dtype = self.builder, self.dtypes[s.buf]
        address = self.address(s.buf, self.index(s.index))
        value = self.value(s.value)
        if s.op is not None:  # read-modify-write (scatter-add and friends)
            old = b.load(address, typ=llvm_type(dtype, in_memory=True))
            old = b.trunc(old, I1) if dtype == np.bool_ else old
            value = self.alu(s.op, [old, value], dtype, dtype)
        b.store(self.to_memory(value, dtype), address)

    # --- values ---------------------------------------------------------------------------------
    def value(self, v: Value) -> ir.Value:
        # Expressions are DAGs (a value used twice is one object): each node is rendered
        # once per statement, or shared subexpressions would be emitted exponentially often.
        key = id(v)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is v:
            return hit[1]
        out = self._value(v)
        self.memo[key] = (v, out)
        return out

    def _value(self, v: Value) -> ir.Value:
        b = self.builder
        if isinstance(v, Const):
            return self.const(v.value, v.dtype)
        if isinstance(v, Load):
            return self.load(v)
        if isinstance(v, Alu):
            arg_dtype = v.args[-1].dtype if v.op is O.WHERE else v.args[0].dtype
            return self.alu(v.op, [self.value(a) for a in v.args], arg_dtype, v.dtype)
        if isinstance(v, Cast):
            return self.cast(self.value(v.x), v.x.dtype, v.dtype)
        if isinstance(v, IndexValue):
            return self.cast(self.index(v.index), np.dtype(np.int64), v.dtype)
        if isinstance(v, AccRef):
            slot, _, dtype = self.accs[v.name]
            return b.load(slot, typ=llvm_type(dtype))
        raise TypeError(f"cpu backend: unknown value {v!r}")

    def const(self, value: Any, dtype: np.dtype) -> ir.Value:
        dtype = np.dtype(dtype)
        if dtype.name == "bfloat16":  # held as its bit pattern (see irutil.llvm_type)
            return ir.Constant(llvm_type(dtype), int(np.array(value, dtype).view(np.uint16)))
        if dtype.kind == "f":
            return ir.Constant(llvm_type(dtype), float(value))
        return ir.Constant(llvm_type(dtype), int(value))

    def address(self, buf: str, index: ir.Value) -> ir.Value:
        elt = llvm_type(self.dtypes[buf], in_memory=True)
        return self.builder.gep(self.ptrs[buf], [index], inbounds=True, source_etype=elt)

    def load(self, v: Load) -> ir.Value:
        b, dtype = self.builder, self.dtypes[v.buf]
        if v.mask is not None and self.sizes[v.buf] == 0:
            return self.const(v.fill, dtype)  # an empty buffer: every read is padding
        index = self.index(v.index)
        mask = None
        if v.mask is not None:
            mask = b.icmp_signed("!=", self.index(v.mask), ir.Constant(I64, 0))
            index = b.select(mask, index, ir.Constant(I64, 0))
        x = b.load(self.address(v.buf, index), typ=llvm_type(dtype, in_memory=True))
        if dtype == np.bool_:
            x = b.trunc(x, I1)
        return x if mask is None else b.select(mask, x, self.const(v.fill, dtype))

    def to_memory(self, x: ir.Value, dtype: np.dtype) -> ir.Value:
        return self.builder.zext(x, I8) if dtype == np.bool_ else x

    def index(self, e: Idx) -> ir.Value:
        b, op, a = self.builder, e.op, e.args
        if op == "var":
            return self.loops[a[0]]
        if op == "const":
            return ir.Constant(I64, a[0])
        if op == "value":
            v = a[0]
            return self.cast(self.value(v), v.dtype, np.dtype(np.int64))
        x, y = self.index(a[0]), self.index(a[1])
        if op in ("min", "max"):
            first = b.icmp_signed("<" if op == "min" else ">", x, y)
            return b.select(first, x, y)
        if op in ("add", "mul"):
            return (b.add if op == "add" else b.mul)(x, y, flags=["nsw"])
        if op in ("div", "mod"):
            # floor semantics; the divisors are positive constants and the dividends are
            # non-negative (indices), so signed division already floors
            return b.sdiv(x, y) if op == "div" else b.srem(x, y)
        if op == "and":
            return b.and_(x, y)
        cmp = {"lt": "<", "ge": ">=", "eq": "=="}[op]
        return b.zext(b.icmp_signed(cmp, x, y), I64)

    # --- the op table -----------------------------------------------------------------------------
    def intrinsic(self, name: str, typ: ir.Type, nargs: int) -> ir.Function:
        suffix = "f32" if isinstance(typ, ir.FloatType) else "f64"
        return get_or_declare(self.module, f"{name}.{suffix}", ir.FunctionType(typ, [typ] * nargs))

    def libm(self, name: str, typ: ir.Type, nargs: int) -> ir.Function:
        cname = name + ("f" if isinstance(typ, ir.FloatType) else "")
        return get_or_declare(self.module, cname, ir.FunctionType(typ, [typ] * nargs))

    def alu(self, op: ScalarOp, args: list[ir.Value], dtype: np.dtype,
            out_dtype: np.dtype) -> ir.Value:
        b = self.builder
        if op is O.WHERE:
            return b.select(args[0], args[1], args[2])
        if op is O.BITCAST:
            return b.bitcast(args[0], llvm_type(out_dtype))
        dtype = np.dtype(dtype)
        if dtype.kind == "f":
            return self.float_alu(op, args, dtype)
        return self.int_alu(op, args, dtype)

    def float_alu(self, op: ScalarOp, args: list[ir.Value], dtype: np.dtype) -> ir.Value:
        b, typ = self.builder, llvm_type(dtype)
        simple: dict[ScalarOp, Callable[..., ir.Value]] = {
            O.ADD: b.fadd, O.SUB: b.fsub, O.MUL: b.fmul, O.DIV: b.fdiv, O.REM: b.frem}
        if op in simple:
            return simple[op](*args)
        if op is O.NEG:
            return b.fneg(args[0])
        if dtype == np.float32 and op in (O.EXP, O.TANH):  # vectorizable, see mathlib.py
            declare = lambda name, n: self.intrinsic(name, typ, n)  # noqa: E731
            return (exp_f32 if op is O.EXP else tanh_f32)(b, args[0], declare)
        if op in _INTRINSIC:
            return b.call(self.intrinsic(_INTRINSIC[op], typ, len(args)), args)
        if op is O.FMA:
            return b.call(self.intrinsic("llvm.fma", typ, 3), args)
        if op in _LIBM:
            return b.call(self.libm(_LIBM[op], typ, len(args)), args)
        if op is O.RSQRT:
            root = b.call(self.intrinsic("llvm.sqrt", typ, 1), args)
            return b.fdiv(ir.Constant(typ, 1.0), root)
        if op is O.LOGADDEXP:  # max + log1p(exp(min - max)); equal arguments (incl. ±inf): + ln 2
            x, y = args
            hi = b.call(self.intrinsic("llvm.maximum", typ, 2), [x, y])
            lo = b.call(self.intrinsic("llvm.minimum", typ, 2), [x, y])
            tail = b.call(self.libm("log1p", typ, 1),
                          [b.call(self.intrinsic("llvm.exp", typ, 1), [b.fsub(lo, hi)])])
            same = b.fcmp_ordered("==", x, y)
            return b.select(same, b.fadd(hi, ir.Constant(typ, float(np.log(2)))),
                            b.fadd(hi, tail))
        if op in _FCMP:
            return b.fcmp_ordered(_FCMP[op], *args)
        if op is O.CMPNE:
            return b.fcmp_unordered("!=", *args)
        raise NotImplementedError(f"cpu backend: no float rendering for {op.name}")

    def int_alu(self, op: ScalarOp, args: list[ir.Value], dtype: np.dtype) -> ir.Value:
        b, typ = self.builder, llvm_type(dtype)
        signed = dtype.kind == "i"
        simple: dict[ScalarOp, Callable[..., ir.Value]] = {
            O.ADD: b.add, O.SUB: b.sub, O.MUL: b.mul, O.AND: b.and_, O.OR: b.or_, O.XOR: b.xor}
        if op in simple:
            return simple[op](*args)
        if op is O.NOT:
            return b.not_(args[0])
        if op in (O.SHL, O.SHR):  # XLA: amounts outside [0, bits) give 0
            x, y = args
            bits = ir.Constant(typ, 8 * dtype.itemsize)
            ok = b.icmp_unsigned("<", y, bits)
            safe = b.select(ok, y, ir.Constant(typ, 0))
            shifted = b.shl(x, safe) if op is O.SHL else b.lshr(x, safe)
            return b.select(ok, shifted, ir.Constant(typ, 0))
        if op is O.NEG:
            return b.neg(args[0])
        if op is O.ABS:
            negative = b.icmp_signed("<", args[0], ir.Constant(typ, 0))
            return b.select(negative, b.neg(args[0]), args[0])
        if op in (O.MAX, O.MIN):
            cmp = b.icmp_signed if signed else b.icmp_unsigned
            first = cmp(">" if op is O.MAX else "<", args[0], args[1])
            return b.select(first, args[0], args[1])
        if op in (O.DIV, O.REM):
            # XLA's answers where C has none: x / 0 == -1, x % 0 == x,
            # INT_MIN / -1 == INT_MIN (wrapping), INT_MIN % -1 == 0; no trap either way
            x, y = args
            zero, minus_one = ir.Constant(typ, 0), ir.Constant(typ, -1)
            by_zero = b.icmp_signed("==", y, zero)
            by_minus_one = b.icmp_signed("==", y, minus_one) if signed else ir.Constant(I1, 0)
            safe = b.select(b.or_(by_zero, by_minus_one), ir.Constant(typ, 1), y)
            if op is O.DIV:
                q = (b.sdiv if signed else b.udiv)(x, safe)
                q = b.select(by_minus_one, b.neg(x), q)
                return b.select(by_zero, minus_one, q)
            r = (b.srem if signed else b.urem)(x, safe)
            return b.select(by_zero, x, b.select(by_minus_one, zero, r))
        if op in _ICMP:
            cmp = b.icmp_signed if signed or dtype == np.bool_ else b.icmp_unsigned
            if dtype == np.bool_:
                cmp = b.icmp_unsigned
            return cmp(_ICMP[op], *args)
        raise NotImplementedError(f"cpu backend: no {dtype} rendering for {op.name}")

    def cast(self, x: ir.Value, src: np.dtype, dst: np.dtype) -> ir.Value:
        b = self.builder
        src, dst = np.dtype(src), np.dtype(dst)
        if src == dst:
            return x
        if src.name == "bfloat16":  # widen the bits to a float32 first
            x = b.bitcast(b.shl(b.zext(x, ir.IntType(32)), ir.Constant(ir.IntType(32), 16)),
                          ir.FloatType())
            return self.cast(x, np.dtype(np.float32), dst)
        if dst.name == "bfloat16":
            return self.to_bfloat16(self.cast(x, src, np.dtype(np.float32)))
        to = llvm_type(dst)
        if dst == np.bool_:
            if src.kind == "f":
                return b.fcmp_unordered("!=", x, ir.Constant(x.type, 0.0))
            return b.icmp_unsigned("!=", x, ir.Constant(x.type, 0))
        if src.kind == "f" and dst.kind == "f":
            return b.fpext(x, to) if dst.itemsize > src.itemsize else b.fptrunc(x, to)
        if src.kind == "f":
            return self.saturating_to_int(x, dst)
        if dst.kind == "f":
            return b.sitofp(x, to) if src.kind == "i" else b.uitofp(x, to)
        if dst.itemsize > src.itemsize or src == np.bool_:
            return b.sext(x, to) if src.kind == "i" else b.zext(x, to)
        return b.trunc(x, to) if dst.itemsize < src.itemsize else x

    def saturating_to_int(self, x: ir.Value, dst: np.dtype) -> ir.Value:
        """Float to int as XLA converts: clamped to the int range, NaN to 0 (never poison)."""
        b, to = self.builder, llvm_type(dst)
        info = np.iinfo(dst)
        lo, hi = ir.Constant(x.type, float(info.min)), ir.Constant(x.type, float(info.max))
        in_range = b.and_(b.fcmp_ordered(">=", x, lo), b.fcmp_ordered("<", x, hi))
        safe = b.select(in_range, x, ir.Constant(x.type, 0.0))
        converted = (b.fptosi if dst.kind == "i" else b.fptoui)(safe, to)
        high = b.select(b.fcmp_ordered(">=", x, hi), ir.Constant(to, int(info.max)),
                        b.select(b.fcmp_ordered("<", x, lo), ir.Constant(to, int(info.min)),
                                 ir.Constant(to, 0)))
        return b.select(in_range, converted, high)

    def to_bfloat16(self, x: ir.Value) -> ir.Value:
        """float32 -> bfloat16 bits, rounding to nearest even; NaN stays a (quiet) NaN."""
        b, i32 = self.builder, ir.IntType(32)
        bits = b.bitcast(x, i32)
        lsb = b.and_(b.lshr(bits, ir.Constant(i32, 16)), ir.Constant(i32, 1))
        rounded = b.add(bits, b.add(ir.Constant(i32, 0x7FFF), lsb))
        is_nan = b.fcmp_unordered("uno", x, x)
        out = b.select(is_nan, b.or_(bits, ir.Constant(i32, 0x400000)), rounded)
        return b.trunc(b.lshr(out, ir.Constant(i32, 16)), ir.IntType(16))


__all__ = ["KernelRenderer"]
