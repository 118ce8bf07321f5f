"""The backends `jit` can run a jaxpr with, registered with its backend registry.

* ``"interpret"``: the reference backend, which runs a jaxpr equation by
  equation with each primitive's numpy ``impl``;
* ``"cpu"``: the kernel-IR scheduler and the LLVM code generator (the default
  without a GPU);
* ``"cuda"`` / ``"cuda_emulator"``: the same kernels printed as CUDA C, run on
  a GPU through cupy, or on the CPU by the emulator (``lowering/cuda/``).
"""

from __future__ import annotations

import os
import sys
import weakref

from typing import Any, Sequence

from fgrad.core.array import Array
from fgrad.core.jaxpr import ClosedJaxpr, eval_closed_jaxpr
from fgrad.core.trace import eval_trace, set_current_trace
from fgrad.lowering import lower_rules
from fgrad.transforms.jit import register_backend


def run_interpreted(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """Evaluate ``closed`` eagerly (the reference semantics of every backend)."""
    with set_current_trace(eval_trace):
        outs = eval_closed_jaxpr(closed, *args)
    return [x._value if isinstance(x, Array) else x for x in outs]


register_backend("interpret", run_interpreted)


# --- "cpu": the kernel-IR scheduler and the LLVM code generator -------------------------------

# The compiled program of each jaxpr, for as long as the jaxpr lives (jit's caches hold
# it): dropping a jitted function, or its clear_cache(), frees its programs.
_cpu_cache: weakref.WeakKeyDictionary[ClosedJaxpr, Any] = weakref.WeakKeyDictionary()


def _cpu_executable(closed: ClosedJaxpr) -> Any:
    """The compiled program for ``closed`` (cached per jaxpr object)."""
    exe = _cpu_cache.get(closed)
    if exe is None:
        from fgrad.lowering.cpu_llvm.runtime import CpuExecutable
        from fgrad.lowering.schedule import schedule
        exe = _cpu_cache[closed] = CpuExecutable(schedule(closed))
        _debug_print(closed, exe)
    return exe


def run_cpu(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """Compile ``closed`` once and run it natively: one call into the entry point."""
    return _cpu_executable(closed)([x._value if isinstance(x, Array) else x for x in args])


def describe(closed: ClosedJaxpr, stage: str) -> str:
    """One stage of compiling ``closed``, as text (``Lowered.as_text``): the CPU's stages,
    or ``"cuda"``, the CUDA C source of the same kernels (rendered, not compiled)."""
    if stage == "cuda":
        from fgrad.lowering.cuda.render import render_program
        from fgrad.lowering.schedule import schedule
        return render_program(schedule(closed)).source
    exe = _cpu_executable(closed)
    if stage == "kernels":
        return str(exe.program)
    if stage == "llvm":
        return exe.compiled.llvm_ir
    if stage == "llvm-opt":
        return exe.compiled.optimized_ir
    if stage == "asm":
        return exe.compiled.assembly()
    return str(closed)


def _debug_print(closed: ClosedJaxpr, exe: Any) -> None:
    """``FGRAD_DEBUG=jaxpr,kernels,llvm,llvm-opt,asm``: print those stages of each compile
    (the CUDA backends print ``kernels`` and ``cuda`` the same way)."""
    stages = [s.strip() for s in os.environ.get("FGRAD_DEBUG", "").split(",") if s.strip()]
    for stage in stages:
        print(f"--- fgrad: {stage} ---", file=sys.stderr)
        print(describe(closed, stage), file=sys.stderr)


register_backend("cpu", run_cpu, default_priority=1,
                 prepare=lambda closed: _cpu_executable(closed).run_direct)


# --- "cuda" and "cuda_emulator": the same kernels as CUDA C (lowering/cuda/) ------------------
# Registered by name only: the CUDA modules load at the first call, and cupy only when
# a GPU is used, so `import fgrad` stays light on machines without one.

def _cuda_runner(name: str) -> Any:
    def run(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
        from fgrad.lowering.cuda import runtime
        return getattr(runtime, name)(closed, args)
    return run


def _gpu_available() -> bool:
    from fgrad.lowering.cuda.device import gpu_available
    return gpu_available()


register_backend("cuda", _cuda_runner("run_cuda"), default_priority=2, available=_gpu_available)
register_backend("cuda_emulator", _cuda_runner("run_emulated"))
lower_rules.install()
