"""Compiling LLVM IR for the host CPU with llvmlite's MCJIT.

One target machine for the host (its CPU name and features, so AVX2/AVX-512
are used where present), the new pass manager (speed level 3 with loop and
SLP vectorization for the program's main module, a light pipeline for its
cheap kernels: see ``program.py``), and one MCJIT engine that every compiled
module is added to; the BLAS symbols the modules call come from ``blas.py``.
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

import llvmlite.binding as llvm

from fgrad.lowering.cpu_llvm import blas
from fgrad.lowering.cpu_llvm.program import Modules

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
    blas.register()
    return tm, engine


# Pipeline settings per module (see program.py): the heavy kernels get everything; the
# cheap ones a light pipeline without vectorization (it would only add compile time).
LEVELS = {"main": dict(speed_level=3, vectorize=True),
          "cheap": dict(speed_level=1, vectorize=False)}


def optimize(module: Any, tm: Any, speed_level: int = 3, vectorize: bool = True) -> None:
    pto = llvm.create_pipeline_tuning_options(speed_level=speed_level)
    # unrolling goes with vectorizing: in scalar code it only multiplies the instructions
    pto.loop_vectorization = pto.slp_vectorization = pto.loop_unrolling = vectorize
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(module, pb)


def add_runtime_module(text: str, names: list[str]) -> list[int]:
    """Compile hand-written LLVM IR (the thread pool's runtime) into the shared engine,
    lightly optimized; the addresses of the functions ``names``."""
    tm, engine = _engine()
    with _lock:
        mod = llvm.parse_assembly(text)
        mod.triple = tm.triple
        mod.data_layout = str(tm.target_data)
        mod.verify()
        optimize(mod, tm, **LEVELS["cheap"])
        engine.add_module(mod)
        engine.finalize_object()
        return [engine.get_function_address(name) for name in names]


class Compiled:
    """The compiled program: its entry point's address, its LLVM IR as generated and (on
    demand) optimized and as assembly, and the seconds each compile stage took
    (``timings``: print, parse, optimize, codegen)."""

    def __init__(self, llvm_ir: str, modules: list[Any], address: int,
                 timings: dict[str, float]) -> None:
        self.llvm_ir, self._modules, self.address = llvm_ir, modules, address
        self.timings = timings

    @property
    def optimized_ir(self) -> str:
        return "\n".join(map(str, self._modules))

    def release(self) -> None:
        """Take the modules out of the engine (when the program is no longer used), so
        the engine's symbol lookups and memory do not grow with every program ever
        compiled. The machine code stays mapped; nothing may call it afterwards."""
        _, engine = _engine()
        with _lock:
            for module in self._modules:
                engine.remove_module(module)
        self._modules = []

    def function_address(self, name: str) -> int:
        """The address of another function of the program's modules."""
        _, engine = _engine()
        with _lock:
            return engine.get_function_address(name)

    def assembly(self) -> str:
        tm, _ = _engine()
        return "\n".join(tm.emit_assembly(m) for m in self._modules)


def compile_modules(modules: Modules) -> Compiled:
    """Verify, optimize and JIT the program's modules; the address of its entry point."""
    tm, engine = _engine()
    clock = [time.perf_counter()]
    timings: dict[str, float] = {}

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock[0]
        clock[0] = now

    texts = {"cheap": str(modules.cheap), "main": str(modules.main)}
    lap("print")
    parsed = []
    with _lock:  # MCJIT engines are not thread-safe
        for kind, text in texts.items():  # cheap first: main declares its functions
            mod = llvm.parse_assembly(text)
            mod.triple = tm.triple
            mod.data_layout = str(tm.target_data)
            mod.verify()
            lap("parse")
            optimize(mod, tm, **LEVELS[kind])
            lap("optimize")
            engine.add_module(mod)
            parsed.append(mod)
        engine.finalize_object()
        address = engine.get_function_address(modules.entry)
        lap("codegen")
    return Compiled(str(modules), parsed, address, timings)


__all__ = ["compile_modules", "Compiled", "optimize", "LEVELS"]
