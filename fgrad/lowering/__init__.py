"""From jaxprs to running code. Registers fgrad's backends with ``jit``.

Today only ``"interpret"`` exists: the reference backend, which runs a jaxpr
equation by equation with each primitive's numpy ``impl``. The LLVM (CPU)
and CUDA backends plug into the same registry.
"""

from __future__ import annotations

from typing import Any, Sequence

from fgrad.core.array import Array
from fgrad.core.jaxpr import ClosedJaxpr, eval_closed_jaxpr
from fgrad.core.trace import eval_trace, set_current_trace
from fgrad.transforms.jit import register_backend


def run_interpreted(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """Evaluate ``closed`` eagerly (the reference semantics of every backend)."""
    with set_current_trace(eval_trace):
        outs = eval_closed_jaxpr(closed, *args)
    return [x._value if isinstance(x, Array) else x for x in outs]


register_backend("interpret", run_interpreted)
