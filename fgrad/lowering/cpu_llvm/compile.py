"""Compiling LLVM IR for the host CPU with llvmlite's MCJIT.

One target machine for the host (its CPU name and features, so AVX2/AVX-512
are used where present), the new pass manager at speed level 3 with loop
and SLP vectorization, and one MCJIT engine that every compiled module is
added to. BLAS comes from scipy: ``scipy.linalg.cython_blas`` exports
``sgemm``/``dgemm`` as PyCapsules whose pointers we register as the symbols
``fgrad_sgemm``/``fgrad_dgemm`` that rendered modules call.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from typing import Any

import llvmlite.binding as llvm
from llvmlite import ir

_lock = threading.Lock()


@functools.lru_cache(maxsize=None)
def _engine() -> tuple[Any, Any]:
    """(target machine, MCJIT engine), created once; also registers the BLAS symbols."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple()
    tm = target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                      features=llvm.get_host_cpu_features().flatten(),
                                      opt=3, codemodel="jitdefault", jit=True)
    engine = llvm.create_mcjit_compiler(llvm.parse_assembly(""), tm)
    for name in ("sgemm", "dgemm"):
        llvm.add_symbol(f"fgrad_{name}", _blas_address(name))
    return tm, engine


def _blas_address(name: str) -> int:
    from scipy.linalg import cython_blas
    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return int(get_pointer(capsule, get_name(capsule)))


def optimize(module: Any, tm: Any) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pto.loop_vectorization = True
    pto.slp_vectorization = True
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


class Compiled:
    """A compiled module: its optimized IR and assembly (for debugging) and its entry."""

    def __init__(self, llvm_ir: str, optimized_ir: str, module: Any, address: int) -> None:
        self.llvm_ir, self.optimized_ir, self._module = llvm_ir, optimized_ir, module
        self.address = address

    def assembly(self) -> str:
        tm, _ = _engine()
        return tm.emit_assembly(self._module)


def compile_module(module: ir.Module, entry: str) -> Compiled:
    """Verify, optimize and JIT ``module``; returns the address of ``entry``."""
    tm, engine = _engine()
    text = str(module)
    with _lock:  # MCJIT engines are not thread-safe
        mod = llvm.parse_assembly(text)
        mod.triple = tm.triple
        mod.data_layout = str(tm.target_data)
        mod.verify()
        optimize(mod, tm)
        engine.add_module(mod)
        engine.finalize_object()
        address = engine.get_function_address(entry)
    return Compiled(text, str(mod), mod, address)


__all__ = ["compile_module", "Compiled", "optimize"]
