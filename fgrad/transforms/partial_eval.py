"""Partial evaluation: compute what is known now, record the rest.

``PartialEvalTrace`` splits a computation in two. Values that are not its
own tracers are *known*: operations on known values only are computed right
away (by the parent trace). Its own tracers are *unknown*: any operation
touching one is recorded as an equation of a new jaxpr, and the known values
it reads become that jaxpr's constants, the **residuals**.

That is all reverse mode needs. ``linearize`` runs the JVP trace on top of a
partial evaluator with known primals and unknown tangents: the primal
computation happens now, and the tangent computation, which is linear in the
tangents, is recorded as a jaxpr that ``transpose.py`` can run backwards.

``partial_eval_jaxpr`` does the same to a whole jaxpr (for higher-order
primitives like ``jit``): it returns a *known* jaxpr that computes the known
outputs plus the residuals, and an *unknown* jaxpr that takes the residuals
and the unknown inputs.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from fgrad.core.ad_util import Zero, tangent_aval
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var, eval_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.staging import StagingTrace, StagingTracer, trace_to_jaxpr
from fgrad.core.trace import Trace, current_trace, eval_trace, set_current_trace
from fgrad.transforms.jvp import JVPTrace, instantiate_zeros


class PartialEvalTrace(StagingTrace):
    """A staging trace that only stages operations touching its own (unknown) tracers."""

    name = "a linearize/grad transform"
    record_source_info = False

    def __init__(self, parent: Trace | None = None) -> None:
        super().__init__(parent)
        # Known (constant) values are computed by the parent, so this trace records
        # constants only if the parent does.
        self.records_constants = self.parent.records_constants

    def process_primitive(self, prim: Primitive, args: tuple[Any, ...],
                          params: dict[str, Any]) -> Any:
        for x in args:
            if type(x) is StagingTracer and x._trace is self:
                break
        else:  # every input is known: compute it now, in the parent trace
            if self.parent is eval_trace:  # eager: no rule runs, so no trace switch needed
                return eval_trace.process_primitive(prim, args, params)
            with set_current_trace(self.parent):
                return prim.bind(*args, **params)
        if prim.partial_eval is not None:
            return prim.partial_eval(self, args, params)
        return self.emit(prim, [x.jaxpr_var if type(x) is StagingTracer and x._trace is self
                                else self.to_atom(x) for x in args], params)


def dce_jaxpr(jaxpr: Jaxpr, used_outputs: Sequence[bool] | None = None) -> Jaxpr:
    """Drop equations whose results no output needs (dead-code elimination)."""
    outvars = (jaxpr.outvars if used_outputs is None
               else [v for v, used in zip(jaxpr.outvars, used_outputs) if used])
    eqns, _ = _live_eqns(jaxpr.eqns, outvars)
    return Jaxpr(jaxpr.constvars, jaxpr.invars, outvars, eqns)


def _live_eqns(eqns: Sequence[JaxprEqn], outvars: Sequence[Any]
               ) -> tuple[list[JaxprEqn], set[Var]]:
    """The equations ``outvars`` need (in order), and every variable those read."""
    live = {v for v in outvars if type(v) is Var}
    kept = []
    for eqn in reversed(eqns):
        for v in eqn.outvars:
            if v in live:
                kept.append(eqn)
                for x in eqn.invars:
                    if type(x) is Var:
                        live.add(x)
                break
    kept.reverse()
    return kept, live


def dce_closed(closed: ClosedJaxpr) -> ClosedJaxpr:
    """DCE, also dropping constvars nothing reads any more."""
    jaxpr = closed.jaxpr
    eqns, live = _live_eqns(jaxpr.eqns, jaxpr.outvars)
    keep = [(v, c) for v, c in zip(jaxpr.constvars, closed.consts) if v in live]
    new = Jaxpr([v for v, _ in keep], jaxpr.invars, jaxpr.outvars, eqns)
    return ClosedJaxpr(new, [c for _, c in keep])


def linearize_flat(fun: Callable[..., Sequence[Any]],
                   primals: Sequence[Any]) -> tuple[list[Any], ClosedJaxpr]:
    """Evaluate ``fun`` at ``primals`` and return its linear tangent map as a jaxpr.

    The jaxpr takes one tangent per primal and returns one tangent per output
    (zeros instantiated). Its consts are the residuals.
    """
    pe = PartialEvalTrace(current_trace())
    jvp_trace = JVPTrace(pe)
    try:
        tangents_in = [pe.new_arg(tangent_aval(get_aval(p))) for p in primals]
        in_tracers = [jvp_trace.new_tracer(p, t) for p, t in zip(primals, tangents_in)]
        with set_current_trace(jvp_trace):
            outs = fun(*in_tracers)
        pairs = [jvp_trace.to_primal_tangent(o) for o in outs]
        with set_current_trace(pe):
            tangents_out = [instantiate_zeros(t) for _, t in pairs]
        lin = dce_closed(pe.to_jaxpr(tangents_out))
    finally:
        jvp_trace.invalidate()
        pe.invalidate()
    return [p for p, _ in pairs], lin


def partial_eval_jaxpr(closed: ClosedJaxpr, in_unknowns: Sequence[bool],
                       instantiate: bool | Sequence[bool] = False
                       ) -> tuple[ClosedJaxpr, ClosedJaxpr, list[bool], int]:
    """Split ``closed`` into a known and an unknown part.

    Returns ``(jaxpr_known, jaxpr_unknown, out_unknowns, num_res)``:
    ``jaxpr_known(*known_ins) -> (*known_outs, *residuals)`` and
    ``jaxpr_unknown(*residuals, *unknown_ins) -> unknown_outs``. Outputs
    listed in ``instantiate`` are made unknown even when they could be known.
    """
    n_out = len(closed.out_avals)
    inst = [instantiate] * n_out if isinstance(instantiate, bool) else list(instantiate)
    in_avals = closed.in_avals
    known_avals = [a for a, uk in zip(in_avals, in_unknowns) if not uk]
    unknown_avals = [a for a, uk in zip(in_avals, in_unknowns) if uk]
    result: dict[str, Any] = {}

    def known_fun(*known_args: Any) -> list[Any]:
        pe = PartialEvalTrace(current_trace())
        try:
            unknown_args = iter([pe.new_arg(a) for a in unknown_avals])
            known_iter = iter(known_args)
            args = [next(unknown_args) if uk else next(known_iter) for uk in in_unknowns]
            with set_current_trace(pe):
                outs = eval_jaxpr(closed.jaxpr, closed.consts, *args)
            out_unknowns = [pe.is_own(o) or i for o, i in zip(outs, inst)]
            unknown_jaxpr = pe.to_jaxpr([o for o, uk in zip(outs, out_unknowns) if uk])
        finally:
            pe.invalidate()
        # The residuals (the unknown jaxpr's consts) become its leading inputs.
        j = unknown_jaxpr.jaxpr
        result["unknown"] = ClosedJaxpr(Jaxpr([], j.constvars + j.invars, j.outvars, j.eqns), [])
        result["out_unknowns"] = out_unknowns
        result["num_res"] = len(j.constvars)
        known_outs = [o for o, uk in zip(outs, out_unknowns) if not uk]
        return known_outs + list(unknown_jaxpr.consts)

    known = trace_to_jaxpr(known_fun, known_avals)
    return known, result["unknown"], result["out_unknowns"], result["num_res"]


def residual_avals(jaxpr_unknown: ClosedJaxpr, num_res: int) -> list[ShapedArray]:
    return [v.aval for v in jaxpr_unknown.jaxpr.invars[:num_res]]


__all__ = ["PartialEvalTrace", "linearize_flat", "partial_eval_jaxpr", "dce_jaxpr",
           "dce_closed", "Zero", "Literal"]


def dce_closed_outputs(closed: ClosedJaxpr, used_outputs: Sequence[bool]) -> ClosedJaxpr:
    """Keep only the ``used_outputs`` of ``closed`` and the equations they need."""
    jaxpr = dce_jaxpr(closed.jaxpr, used_outputs)
    return ClosedJaxpr(jaxpr, closed.consts)
