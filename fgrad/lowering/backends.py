"""The backends `jit` can run a jaxpr with, registered with its backend registry.

Today only ``"interpret"`` exists: the reference backend, which runs a jaxpr
equation by equation with each primitive's numpy ``impl``. The LLVM (CPU)
and CUDA backends plug into the same registry.
"""

from __future__ import annotations

import os
import sys

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

_cpu_cache: dict[int, tuple[ClosedJaxpr, Any]] = {}


def _cpu_executable(closed: ClosedJaxpr) -> Any:
    """The compiled program for ``closed`` (cached on the jaxpr object)."""
    entry = _cpu_cache.get(id(closed))
    if entry is None or entry[0] is not closed:
        from fgrad.lowering.cpu_llvm.runtime import CpuExecutable
        from fgrad.lowering.schedule import schedule
        entry = _cpu_cache[id(closed)] = (closed, CpuExecutable(schedule(closed)))
        _debug_print(closed, entry[1])
    return entry[1]


def run_cpu(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """Compile ``closed`` once and run it natively: one call into the entry point."""
    return _cpu_executable(closed)([x._value if isinstance(x, Array) else x for x in args])


def describe(closed: ClosedJaxpr, stage: str) -> str:
    """One stage of compiling ``closed`` for the CPU, as text (``Lowered.as_text``)."""
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
    """``FGRAD_DEBUG=jaxpr,kernels,llvm,llvm-opt,asm``: print those stages of each compile."""
    stages = [s.strip() for s in os.environ.get("FGRAD_DEBUG", "").split(",") if s.strip()]
    for stage in stages:
        print(f"--- fgrad: {stage} ---", file=sys.stderr)
        print(describe(closed, stage), file=sys.stderr)


register_backend("cpu", run_cpu)
lower_rules.install()
