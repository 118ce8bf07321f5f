"""Forward-mode differentiation: the JVP trace.

``jvp(f, primals, tangents)`` evaluates ``f`` and, alongside, the directional
derivative J·v. Each ``JVPTracer`` carries a primal value and a tangent; for
every primitive the ``JVPTrace`` calls that primitive's ``jvp`` rule with the
*parent* trace current, so the rule's own operations are computed (or traced,
or differentiated again) by whatever transform encloses this one.

Tangents can be the symbolic ``Zero``: constants, integer values and outputs
of non-differentiable primitives never get a materialised zero array. Only
at the boundary, where a user asks for an output tangent, are zeros
instantiated.

This trace is also the first half of reverse mode: ``linearize`` runs it on
top of a ``PartialEvalTrace`` (``partial_eval.py``).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from fgrad.core import dtypes
from fgrad.core.ad_util import Zero, tangent_aval
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.jaxpr import ClosedJaxpr, eval_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.staging import trace_to_jaxpr
from fgrad.core.trace import Trace, Tracer, _context, check_alive, current_trace, set_current_trace


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent", "_aval")

    def __init__(self, trace: JVPTrace, primal: Any, tangent: Any) -> None:
        self._trace = trace
        self.primal = primal
        self.tangent = tangent
        self._aval: ShapedArray | None = None

    @property
    def aval(self) -> ShapedArray:
        aval = self._aval
        if aval is None:  # computed once: the numpy layer asks for it several times per op
            aval = self._aval = get_aval(self.primal)
        return aval

    def to_concrete_value(self) -> Any:
        primal = self.primal
        if isinstance(primal, Tracer):
            return primal.to_concrete_value()
        return primal


class JVPTrace(Trace):
    name = "a jvp/grad transform"

    def __init__(self, parent: Trace) -> None:
        self.parent = parent
        self.records_constants = parent.records_constants

    def to_primal_tangent(self, x: Any) -> tuple[Any, Any]:
        if isinstance(x, JVPTracer) and x._trace is self:
            return x.primal, x.tangent
        if isinstance(x, Tracer):
            check_alive(x)
        return x, Zero(tangent_aval(get_aval(x)))

    def process_primitive(self, prim: Primitive, args: tuple[Any, ...],
                          params: dict[str, Any]) -> Any:
        primals, tangents = [], []
        any_tangent = False
        for x in args:
            if type(x) is JVPTracer and x._trace is self:
                primals.append(x.primal)
                tangents.append(x.tangent)
                any_tangent = True
            else:
                p, t = self.to_primal_tangent(x)
                primals.append(p)
                tangents.append(t)
        # The rule runs with the parent trace current (``set_current_trace``, inlined:
        # this runs for every operation under jvp/grad).
        context = _context
        prev, context.trace = context.trace, self.parent
        try:
            if not any_tangent or prim.nondifferentiable:
                return prim.bind(*primals, **params)
            if prim.jvp is None:
                raise NotImplementedError(
                    f"Differentiation rule for '{prim.name}' not implemented"
                    + (f": {prim.missing_reasons['jvp']}" if "jvp" in prim.missing_reasons
                       else ""))
            primal_out, tangent_out = prim.jvp(primals, tangents, **params)
        finally:
            context.trace = prev
        if prim.multiple_results:
            return [self.new_tracer(p, t) for p, t in zip(primal_out, tangent_out)]
        return self.new_tracer(primal_out, tangent_out)

    def new_tracer(self, primal: Any, tangent: Any) -> Any:
        # A value with a zero tangent needs no tracer: it is a constant to this trace.
        if type(tangent) is Zero:
            return primal
        return JVPTracer(self, primal, tangent)


def zeros_like_aval(aval: ShapedArray) -> Any:
    """A materialised array of zeros of type ``aval`` (bound under the current trace)."""
    from fgrad.primitives.shape import full  # transforms import primitives, never the reverse
    return full(aval.shape, 0, aval.dtype)


def instantiate_zeros(t: Any) -> Any:
    return zeros_like_aval(t.aval) if type(t) is Zero else t


def jvp_flat(fun: Callable[..., Sequence[Any]], primals: Sequence[Any],
             tangents: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """JVP of a flat function; tangents may be ``Zero``; output tangents may be ``Zero``."""
    trace = JVPTrace(current_trace())
    try:
        in_tracers = [trace.new_tracer(p, t) for p, t in zip(primals, tangents)]
        with set_current_trace(trace):
            outs = fun(*in_tracers)
        pairs = [trace.to_primal_tangent(o) for o in outs]
    finally:
        trace.invalidate()
    return [p for p, _ in pairs], [t for _, t in pairs]


def jvp_jaxpr(closed: ClosedJaxpr, nonzeros: Sequence[bool],
              instantiate: bool | Sequence[bool]) -> tuple[ClosedJaxpr, list[bool]]:
    """The jaxpr of ``(primals, nonzero tangents) -> (primals_out, tangents_out)``.

    Used by the jvp rules of higher-order primitives (``jit``, ``checkpoint``,
    control flow). Returns the new jaxpr and which output tangents are nonzero
    (those not nonzero are left out of its outputs).
    """
    in_avals = closed.in_avals
    n_out = len(closed.out_avals)
    inst = [instantiate] * n_out if isinstance(instantiate, bool) else list(instantiate)
    tangent_avals = [tangent_aval(a) for a, nz in zip(in_avals, nonzeros) if nz]
    out_nonzeros: list[bool] = []

    def fun(*args: Any) -> list[Any]:
        primals, rest = list(args[:len(in_avals)]), iter(args[len(in_avals):])
        tangents = [next(rest) if nz else Zero(tangent_aval(a))
                    for a, nz in zip(in_avals, nonzeros)]
        primals_out, tangents_out = jvp_flat(
            lambda *xs: eval_jaxpr(closed.jaxpr, closed.consts, *xs), primals, tangents)
        tangents_out = [instantiate_zeros(t) if i else t for t, i in zip(tangents_out, inst)]
        out_nonzeros[:] = [type(t) is not Zero for t in tangents_out]
        return primals_out + [t for t in tangents_out if type(t) is not Zero]

    jaxpr = trace_to_jaxpr(fun, [*in_avals, *tangent_avals])
    return jaxpr, out_nonzeros


def check_tangent(primal: Any, tangent: Any, where: str) -> Any:
    """Validate a user-supplied tangent against its primal (shape and dtype)."""
    p_aval, t_aval = get_aval(primal), get_aval(tangent)
    if not dtypes.is_float(p_aval.dtype):
        return Zero(tangent_aval(p_aval))  # integer/bool primals have no tangent space
    if p_aval.shape != t_aval.shape or p_aval.dtype != t_aval.dtype:
        raise TypeError(f"{where}: primal and tangent arguments must have equal shapes and "
                        f"dtypes, got primal {p_aval.str_short()} and tangent "
                        f"{t_aval.str_short()}")
    return tangent
