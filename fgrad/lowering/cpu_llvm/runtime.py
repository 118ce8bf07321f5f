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
from typing import Any, Sequence

import numpy as np

from fgrad.lowering.cpu_llvm.compile import Compiled, compile_module
from fgrad.lowering.cpu_llvm.render import render_program
from fgrad.lowering.host_calls import raise_pending
from fgrad.lowering.schedule import Program

_ids = itertools.count()
_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class CpuExecutable:
    def __init__(self, program: Program) -> None:
        self.program = program
        name = f"fgrad_entry_{next(_ids)}"
        self.module = render_program(program, name)
        self.compiled: Compiled = compile_module(self.module, name)
        self._entry = _ENTRY_TYPE(self.compiled.address)
        names = list(program.buffers)
        self._slot = {n: i for i, n in enumerate(names)}
        self._inputs = [(self._slot[n], program.buffers[n]) for n in program.inputs]
        self._consts = [(self._slot[n], np.ascontiguousarray(c).reshape(-1))
                        for n, c in program.consts.items()]
        taken = set(program.inputs) | set(program.consts) | set(program.outputs)
        # Temporaries live in one arena per call, each at a 64-byte aligned offset.
        self._temps, offset = [], 0
        for n, b in program.buffers.items():
            if n not in taken:
                self._temps.append((self._slot[n], offset))
                offset += -(-max(b.size * b.dtype.itemsize, 1) // 64) * 64
        self._arena_bytes = offset + 64
        self._outputs = [(self._slot[n], program.buffers[n]) for n in program.outputs]
        self._nbuf = len(names)
        self._temp_slots = np.array([slot for slot, _ in self._temps], np.int64)
        self._temp_offsets = np.array([off for _, off in self._temps], np.uint64)

    def __call__(self, args: Sequence[Any]) -> list[np.ndarray]:
        if len(args) != len(self._inputs):
            raise TypeError(f"compiled program takes {len(self._inputs)} arguments, got "
                            f"{len(args)}")
        pointers = np.empty(self._nbuf, np.uint64)
        keep = []
        for (slot, buf), x in zip(self._inputs, args):
            x = np.asarray(x)
            if x.shape != buf.shape or x.dtype != buf.dtype:
                raise TypeError(f"compiled program: argument {buf.name} must be "
                                f"{buf.dtype}{list(buf.shape)}, got {x.dtype}{list(x.shape)}")
            if not x.flags.c_contiguous:
                x = np.ascontiguousarray(x)
            keep.append(x)
            pointers[slot] = x.ctypes.data
        for slot, c in self._consts:
            pointers[slot] = c.ctypes.data
        arena = np.empty(self._arena_bytes, np.uint8)
        base = (arena.ctypes.data + 63) // 64 * 64
        pointers[self._temp_slots] = self._temp_offsets + np.uint64(base)
        outs = []
        for slot, buf in self._outputs:
            out = np.empty(buf.shape, buf.dtype) if buf.size else np.empty(1, buf.dtype)
            pointers[slot] = out.ctypes.data
            outs.append(out if buf.size else out[:0].reshape(buf.shape))
        self._entry(pointers.ctypes.data)
        raise_pending()  # an exception inside a host call surfaces here
        return outs


__all__ = ["CpuExecutable"]
