"""Calling the entry point with the numpy arrays themselves (the fast dispatch path).

The entry point reads a table of buffer addresses. Filling that table from
Python costs about a microsecond per array (``x.ctypes.data`` builds a helper
object), more than the rest of a tiny call. So each program also gets an
*object entry*: a native function that takes the arrays as ``PyObject *``
(their ``id()``, which in CPython is the object's address), reads each
array's fields itself, checks them, and builds the table on its own stack::

    int fgrad_entry_N_objects(ptr in0, ..., ptr out0, ..., ptr consts)
        for each input:  an exact numpy.ndarray?  C-contiguous and aligned?
                         ndim, dims and dtype as compiled?
                         (otherwise return 1 + its position: nothing was read through it)
        table[slot] = in->data           (what numpy's PyArray_DATA macro reads)
        arena = exchange(spare, null)    (the temporaries of an earlier call, if no other
        if !arena: arena = malloc(...)    thread holds them; return -1 when malloc fails)
        fgrad_entry_N(table)
        if !compare_and_swap(spare, null, arena): free(arena)      (keep it for next time)
        return 0

Keeping the temporaries' memory between calls matters for large programs: a
fresh ``malloc`` of more than 32 MiB is a fresh ``mmap``, and the kernel then
faults in and zeroes every page on first touch and unmaps them at ``free``
(measured: 45% of a stride-1 CNN step, 150 MB of im2col patches, went there).
The spare lives in the slot after the buffer table's last, in the table of
constants the runtime keeps; the runtime frees it with the program.

It reads numpy's array struct (``PyArrayObject_fields``: the data pointer
right after the object header, then ndim, dims, strides, base, descr, flags)
and the dtype's ``type_num``, the fields numpy's own C macros read in every
compiled extension. The offsets are not assumed: ``layout()`` measures them on
sample arrays against what Python reports, and returns None (the table path
is used) on any Python or numpy build where they do not agree.
"""

from __future__ import annotations

import ctypes
import functools
from typing import Sequence

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir

from fgrad.lowering.cpu_llvm.irutil import I32, I64, PTR, get_or_declare

C_CONTIGUOUS, ALIGNED = 0x1, 0x100  # NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_ALIGNED


@functools.lru_cache(maxsize=None)
def layout() -> dict[str, int] | None:
    """Byte offsets of the array fields the object entry reads, or None if they cannot
    be confirmed on this build."""
    header = object.__basicsize__  # sizeof(PyObject): the data pointer comes next
    offsets = {"type": header - 8, "data": header, "nd": header + 8, "dims": header + 16,
               "descr": header + 40, "flags": header + 48, "type_num": header + 12}

    def read(address: int, ctype: type) -> int:
        return ctype.from_address(address).value or 0  # type: ignore[attr-defined]

    samples = [np.zeros((2, 3), np.float32), np.zeros((4, 6), np.int64)[::2, 1:4],
               np.zeros((), np.bool_), np.zeros(5, np.float64)[1:], np.zeros((0, 7), np.int32)]
    for x in samples:
        base = id(x)
        dims = read(base + offsets["dims"], ctypes.c_void_p)
        flags = read(base + offsets["flags"], ctypes.c_int)
        descr = read(base + offsets["descr"], ctypes.c_void_p)
        if (read(base + offsets["type"], ctypes.c_void_p) != id(np.ndarray)
                or read(base + offsets["data"], ctypes.c_void_p) != x.__array_interface__["data"][0]
                or read(base + offsets["nd"], ctypes.c_int) != x.ndim
                or any(read(dims + 8 * i, ctypes.c_int64) != n for i, n in enumerate(x.shape))
                or bool(flags & C_CONTIGUOUS) != x.flags.c_contiguous
                or bool(flags & ALIGNED) != x.flags.aligned
                or descr != id(x.dtype)
                or read(descr + offsets["type_num"], ctypes.c_int) != x.dtype.num):
            return None
    return offsets


@functools.lru_cache(maxsize=None)
def register_symbols() -> None:
    """Make the C library's malloc and free, and numpy's array type object, known to
    the JIT under fgrad's names."""
    libc = ctypes.CDLL(None)
    for name in ("malloc", "free"):
        llvm.add_symbol(f"fgrad_{name}", ctypes.cast(getattr(libc, name), ctypes.c_void_p).value)
    llvm.add_symbol("fgrad_ndarray_type", id(np.ndarray))  # an exact ndarray, no subclass


def render_object_entry(module: ir.Module, entry_name: str, nslots: int,
                        inputs: Sequence[tuple[int, tuple[int, ...], np.dtype]],
                        outputs: Sequence[int], consts: Sequence[int],
                        temps: Sequence[tuple[int, int]], arena_bytes: int) -> str:
    """Add ``{entry_name}_objects`` to ``module`` (see the module docstring); its name.

    ``inputs`` are (slot, shape, dtype) in argument order, ``outputs`` and ``consts``
    slots (constants are read from a table the caller keeps, whose slot ``nslots``
    holds the spare arena), ``temps`` (slot, byte offset) inside one arena of
    ``arena_bytes``."""
    offsets = layout()
    assert offsets is not None, "render_object_entry needs a confirmed array layout"
    name = f"{entry_name}_objects"
    fn = ir.Function(module, ir.FunctionType(I32, [PTR] * (len(inputs) + len(outputs) + 1)),
                     name=name)
    entry = get_or_declare(module, entry_name, ir.FunctionType(ir.VoidType(), [PTR]))
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    table = b.alloca(PTR, size=ir.Constant(I64, max(nslots, 1)), name="table")

    def field(obj: ir.Value, offset: int, typ: ir.Type) -> ir.Value:
        return b.load(b.gep(obj, [ir.Constant(I64, offset)], source_etype=ir.IntType(8)), typ=typ)

    def put(slot: int, value: ir.Value) -> None:
        b.store(value, b.gep(table, [ir.Constant(I64, slot)], source_etype=PTR))

    def require(ok: ir.Value, status: int) -> None:
        fail = fn.append_basic_block(f"bad{status}")
        good = fn.append_basic_block(f"ok{status}")
        b.cbranch(ok, good, fail)
        b.position_at_end(fail)
        b.ret(ir.Constant(I32, status))
        b.position_at_end(good)

    def equal(value: ir.Value, expected: int) -> ir.Value:
        return b.icmp_signed("==", value, ir.Constant(value.type, expected))

    ndarray_type = module.globals.get("fgrad_ndarray_type") or ir.GlobalVariable(
        module, ir.IntType(8), "fgrad_ndarray_type")
    args = list(fn.args)
    for k, (slot, shape, dtype) in enumerate(inputs):
        obj = args[k]
        require(b.icmp_unsigned("==", field(obj, offsets["type"], PTR), ndarray_type), k + 1)
        flags = b.and_(field(obj, offsets["flags"], I32), ir.Constant(I32, C_CONTIGUOUS | ALIGNED))
        ok = b.and_(equal(flags, C_CONTIGUOUS | ALIGNED),
                    equal(field(obj, offsets["nd"], I32), len(shape)))
        descr = field(obj, offsets["descr"], PTR)
        ok = b.and_(ok, equal(field(descr, offsets["type_num"], I32), np.dtype(dtype).num))
        require(ok, k + 1)  # ndim is confirmed before the dims are read
        if shape:
            dims = field(obj, offsets["dims"], PTR)
            ok = equal(field(dims, 0, I64), shape[0])
            for d, n in enumerate(shape[1:], 1):
                ok = b.and_(ok, equal(field(dims, 8 * d, I64), n))
            require(ok, k + 1)
        put(slot, field(obj, offsets["data"], PTR))
    for k, slot in enumerate(outputs):  # allocated by the caller with the compiled types
        put(slot, field(args[len(inputs) + k], offsets["data"], PTR))
    const_table = args[-1]
    for slot in consts:
        put(slot, b.load(b.gep(const_table, [ir.Constant(I64, slot)], source_etype=PTR), typ=PTR))
    null = ir.Constant(PTR, None)
    spare = b.gep(const_table, [ir.Constant(I64, nslots)], source_etype=PTR, name="spare")
    arena = None
    if arena_bytes:
        kept = b.atomic_rmw("xchg", spare, null, "acq_rel", name="kept")
        from_kept = b.block
        have, fresh = fn.append_basic_block("have_arena"), fn.append_basic_block("malloc")
        b.cbranch(b.icmp_unsigned("!=", kept, null), have, fresh)
        b.position_at_end(fresh)
        malloc = get_or_declare(module, "fgrad_malloc", ir.FunctionType(PTR, [I64]))
        allocated = b.call(malloc, [ir.Constant(I64, arena_bytes + 64)], name="allocated")
        require(b.icmp_unsigned("!=", allocated, null), -1)
        from_malloc = b.block
        b.branch(have)
        b.position_at_end(have)
        arena = b.phi(PTR, name="arena")
        arena.add_incoming(kept, from_kept)
        arena.add_incoming(allocated, from_malloc)
        start = b.ptrtoint(arena, I64)
        aligned = b.and_(b.add(start, ir.Constant(I64, 63)), ir.Constant(I64, ~63))
        for slot, offset in temps:
            put(slot, b.inttoptr(b.add(aligned, ir.Constant(I64, offset)), PTR))
    b.call(entry, [table])
    if arena is not None:  # keep it for the next call, unless another call kept its own
        swap = b.cmpxchg(spare, null, arena, "acq_rel", "monotonic", name="keep")
        kept_now = b.extract_value(swap, 1)
        release, done = fn.append_basic_block("free"), fn.append_basic_block("done")
        b.cbranch(kept_now, done, release)
        b.position_at_end(release)
        b.call(get_or_declare(module, "fgrad_free", ir.FunctionType(ir.VoidType(), [PTR])),
               [arena])
        b.branch(done)
        b.position_at_end(done)
    b.ret(ir.Constant(I32, 0))
    return name


__all__ = ["layout", "register_symbols", "render_object_entry"]
