"""Running a compiled program: check the arguments, allocate buffers, one native call.

``CpuExecutable(program)`` renders and compiles the program once. Calling
it checks every argument against its buffer (shape and dtype; a
non-contiguous array is copied to a contiguous one) *before* any pointer
reaches native code, allocates the temporaries and outputs, and makes
exactly one ctypes call into the entry point, which runs every kernel and
library call. ctypes releases the GIL for the duration of the call.
"""

from __future__ import annotations

import ctypes
import itertools
import weakref
from typing import Any, Sequence

import numpy as np

from fgrad.lowering.cpu_llvm import objects
from fgrad.lowering.cpu_llvm.compile import Compiled, compile_modules
from fgrad.lowering.cpu_llvm.program import render_program
from fgrad.lowering.host_calls import raise_pending
from fgrad.lowering.schedule import LibraryCall, Program, nested_steps

_ids = itertools.count()
_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


def address(x: np.ndarray) -> int:
    """The address of ``x``'s first element.

    ``x.ctypes.data`` builds a ctypes helper object and costs about a microsecond;
    viewing the buffer as a ``c_char`` costs a quarter of that, but needs a writable,
    non-empty buffer.
    """
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(x))
    except (TypeError, ValueError):
        return int(x.ctypes.data)


class CpuExecutable:
    def __init__(self, program: Program) -> None:
        self.program = program
        name = f"fgrad_entry_{next(_ids)}"
        names = list(program.buffers)
        slot = {n: i for i, n in enumerate(names)}
        self._inputs = [(slot[n], program.buffers[n]) for n in program.inputs]
        self._outputs = [(slot[n], program.buffers[n]) for n in program.outputs]
        # The table of buffer addresses the entry point reads: the constants' are fixed.
        self._consts = [np.ascontiguousarray(c).reshape(-1) for c in program.consts.values()]
        # (one slot more: where the object entry keeps the temporaries between calls)
        self._table = np.zeros(len(names) + 1, np.uint64)
        for n, c in zip(program.consts, self._consts):
            self._table[slot[n]] = address(c) if c.size else 0
        taken = set(program.inputs) | set(program.consts) | set(program.outputs)
        # Temporaries live in one arena per call, each at a 64-byte aligned offset.
        temps, offset = [], 0
        for n, b in program.buffers.items():
            if n not in taken:
                temps.append((slot[n], offset))
                offset += -(-max(b.size * b.dtype.itemsize, 1) // 64) * 64
        self._arena_bytes = offset + 64 if temps else 0
        self._temp_slots = np.array([i for i, _ in temps], np.int64)
        self._temp_offsets = np.array([off for _, off in temps], np.uint64)
        self._host_calls = _has_host_calls(program.steps)

        self.modules = render_program(program, name)
        direct = objects.layout() is not None
        if direct:  # the object entry: see objects.py
            objects.register_symbols()
            direct_name = objects.render_object_entry(
                self.modules.cheap, name, len(names),
                [(i, b.shape, b.dtype) for i, b in self._inputs], [i for i, _ in self._outputs],
                [slot[n] for n in program.consts], temps, offset)
        self.compiled: Compiled = compile_modules(self.modules)
        self._entry = _ENTRY_TYPE(self.compiled.address)
        # when this executable is dropped (not at exit: the engine may be gone by then)
        weakref.finalize(self, self.compiled.release).atexit = False
        weakref.finalize(self, _free_spare, self._table, len(names)).atexit = False
        self._spares: list[np.ndarray] = []  # the table path's temporaries, kept likewise
        self._out_types = [(b.shape, b.dtype) for _, b in self._outputs]
        self._direct = None
        if direct:
            nargs = len(self._inputs) + len(self._outputs) + 1
            self._direct = ctypes.CFUNCTYPE(ctypes.c_int, *[ctypes.c_void_p] * nargs)(
                self.compiled.function_address(direct_name))
            self._table_address = address(self._table)

    def __call__(self, args: Sequence[Any]) -> list[np.ndarray]:
        if len(args) != len(self._inputs):
            raise TypeError(f"compiled program takes {len(self._inputs)} arguments, got "
                            f"{len(args)}")
        table = self._table.copy()
        keep = []  # arrays the native code reads: alive until it returns
        for (slot, buf), x in zip(self._inputs, args):
            if type(x) is not np.ndarray:
                x = np.asarray(x)
            if x.shape != buf.shape or x.dtype != buf.dtype:
                raise TypeError(f"compiled program: argument {buf.name} must be "
                                f"{buf.dtype}{list(buf.shape)}, got {x.dtype}{list(x.shape)}")
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            keep.append(x)
            table[slot] = address(x) if x.size else 0
        arena = None
        if self._arena_bytes:  # list.pop and append are atomic: each thread its own arena
            try:
                arena = self._spares.pop()
            except IndexError:
                arena = np.empty(self._arena_bytes, np.uint8)
            table[self._temp_slots] = self._temp_offsets + np.uint64(
                -(-address(arena) // 64) * 64)
        outs = []
        for slot, buf in self._outputs:
            out = np.empty(buf.shape, buf.dtype)
            table[slot] = address(out) if out.size else 0
            outs.append(out)
        self._entry(address(table))
        if arena is not None and not self._spares:
            self._spares.append(arena)
        if self._host_calls:
            raise_pending()  # an exception inside a host call surfaces here
        return outs

    def run_direct(self, args: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Run with ``args``, numpy arrays of the compiled shapes and dtypes (the caller
        has matched them, as jit's fast path does): the object entry checks them again
        natively, and any it refuses (a non-contiguous array, say) take ``__call__``."""
        direct = self._direct
        if direct is None or len(args) != len(self._inputs):
            return self(args)
        outs = [np.empty(shape, dtype) for shape, dtype in self._out_types]
        status = direct(*map(id, args), *map(id, outs), self._table_address)
        if status:
            if status < 0:
                raise MemoryError(f"compiled program: could not allocate "
                                  f"{self._arena_bytes} bytes of temporaries")
            return self(args)
        if self._host_calls:
            raise_pending()
        return outs


def _free_spare(table: np.ndarray, slot: int) -> None:
    """Free the temporaries the object entry kept in ``table[slot]`` (at the program's end)."""
    kept, table[slot] = int(table[slot]), 0
    if kept:
        ctypes.CDLL(None).free(ctypes.c_void_p(kept))


def _has_host_calls(steps: Sequence[Any]) -> bool:
    return any((isinstance(step, LibraryCall) and step.name == "host_call")
               or any(_has_host_calls(body) for body in nested_steps(step)) for step in steps)


__all__ = ["CpuExecutable", "address"]
