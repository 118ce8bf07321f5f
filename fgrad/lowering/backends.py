"""The backends `jit` can run a jaxpr with, registered with its backend registry.

Today only ``"interpret"`` exists: the reference backend, which runs a jaxpr
equation by equation with each primitive's numpy ``impl``. The LLVM (CPU)
and CUDA backends plug into the same registry.
"""

from __future__ import annotations

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


def run_cpu(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """Compile ``closed`` once (cached on the jaxpr object) and run it natively."""
    entry = _cpu_cache.get(id(closed))
    if entry is None or entry[0] is not closed:
        from fgrad.lowering.cpu_llvm.runtime import CpuExecutable
        from fgrad.lowering.schedule import schedule
        entry = _cpu_cache[id(closed)] = (closed, CpuExecutable(schedule(closed)))
    return entry[1]([x._value if isinstance(x, Array) else x for x in args])


register_backend("cpu", run_cpu)
lower_rules.install()
