"""Small helpers for writing LLVM IR with llvmlite's ``IRBuilder`` (after numba's cgutils).

``for_range`` is a counted loop as a context manager: the body is emitted
inside the ``with`` block and sees the induction variable; the loop has the
shape LLVM's vectorizer expects (a header with a phi, a ``nsw`` increment,
a single exit).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
from llvmlite import ir

I1, I8, I32, I64 = ir.IntType(1), ir.IntType(8), ir.IntType(32), ir.IntType(64)
PTR = ir.PointerType()  # opaque pointer (LLVM >= 15)


def llvm_type(dtype: np.dtype, in_memory: bool = False) -> ir.Type:
    """The LLVM type of a scalar of ``dtype`` (bools are i1 in registers, i8 in memory)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return I8 if in_memory else I1
    if dtype.name == "bfloat16":  # LLVM's bfloat arithmetic is not needed: its bits, as i16
        return ir.IntType(16)
    if dtype.kind in "iu":
        return ir.IntType(8 * dtype.itemsize)
    if dtype == np.float32:
        return ir.FloatType()
    if dtype == np.float64:
        return ir.DoubleType()
    if dtype == np.float16:
        return ir.HalfType()
    raise NotImplementedError(f"cpu backend: no LLVM type for dtype {dtype}")


@contextlib.contextmanager
def for_range(builder: ir.IRBuilder, count: int | ir.Value, name: str = "i"
              ) -> Iterator[ir.Value]:
    """``for (i = 0; i < count; i++) { body }``; yields ``i`` (an i64)."""
    count = ir.Constant(I64, count) if isinstance(count, int) else count
    pre = builder.block
    header = builder.append_basic_block(f"{name}.header")
    body = builder.append_basic_block(f"{name}.body")
    end = builder.append_basic_block(f"{name}.end")
    builder.branch(header)
    builder.position_at_end(header)
    index = builder.phi(I64, name=name)
    index.add_incoming(ir.Constant(I64, 0), pre)
    builder.cbranch(builder.icmp_signed("<", index, count), body, end)
    builder.position_at_end(body)
    yield index
    nxt = builder.add(index, ir.Constant(I64, 1), name=f"{name}.next", flags=["nsw"])
    index.add_incoming(nxt, builder.block)
    builder.branch(header)
    builder.position_at_end(end)


def entry_alloca(builder: ir.IRBuilder, typ: ir.Type, name: str = "") -> ir.Value:
    """An ``alloca`` in the function's entry block (where mem2reg can promote it)."""
    with builder.goto_entry_block():
        return builder.alloca(typ, name=name)


def get_or_declare(module: ir.Module, name: str, fnty: ir.FunctionType) -> ir.Function:
    """The function ``name`` in ``module``, declared if it is not there yet."""
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, fnty, name=name)


__all__ = ["I1", "I8", "I32", "I64", "PTR", "llvm_type", "for_range", "entry_alloca",
           "get_or_declare"]
