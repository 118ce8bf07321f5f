"""Staging: turning a Python function into a jaxpr.

``StagingTrace`` is the trace behind ``make_jaxpr`` and ``jit``. Its tracers
carry only an aval and a ``Var``; binding a primitive appends an equation
(after running the primitive's shape rule, so errors surface here, at the
user's line) and returns tracers for the new variables. Values that are not
this trace's tracers become constants of the jaxpr: 0-d ones are written
inline as ``Literal``s, others become ``constvars`` (closed-over arrays, and
tracers of enclosing transforms, which is how ``jit`` inside ``grad`` sees the
outer tangents).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.jaxpr import Atom, ClosedJaxpr, Jaxpr, JaxprEqn, Literal, SourceInfo, Var
from fgrad.core.trace import (Trace, Tracer, abstract_eval_cached, check_alive, current_trace,
                              set_current_trace)

_FGRAD_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_source_info() -> SourceInfo | None:
    """The innermost stack frame outside the fgrad package: the user's line."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith(_FGRAD_DIR) and "contextlib" not in filename:
            return SourceInfo(filename, frame.f_lineno, frame.f_code.co_name)
        frame = frame.f_back
    return None


class StagingTracer(Tracer):
    # (named ``jaxpr_var``, not ``var``: ``x.var()`` is numpy's variance method)
    __slots__ = ("jaxpr_var",)

    def __init__(self, trace: StagingTrace, var: Var) -> None:
        self._trace = trace
        self.jaxpr_var = var

    @property
    def aval(self) -> ShapedArray:
        return self.jaxpr_var.aval


class StagingTrace(Trace):
    """Records every primitive applied to its tracers as an equation."""

    name = "a staged (jit/make_jaxpr) function"
    # Equations remember the user's line that created them (for error messages and
    # debugging dumps); internal traces that users never see skip the stack walk.
    record_source_info = True

    def __init__(self, parent: Trace | None = None) -> None:
        self.parent = parent if parent is not None else current_trace()
        self.invars: list[Var] = []
        self.eqns: list[JaxprEqn] = []
        self.constvars: list[Var] = []
        self.consts: list[Any] = []
        self._const_ids: dict[int, Var] = {}

    def new_arg(self, aval: ShapedArray) -> StagingTracer:
        var = Var(aval)
        self.invars.append(var)
        return StagingTracer(self, var)

    def is_own(self, x: Any) -> bool:
        return isinstance(x, StagingTracer) and x._trace is self

    def to_atom(self, x: Any) -> Atom:
        """The jaxpr atom standing for ``x``: a var, a literal or a new constvar."""
        if type(x) is StagingTracer and x._trace is self:
            return x.jaxpr_var
        if isinstance(x, Tracer):
            check_alive(x)
        elif (x._value.ndim if type(x) is Array else np.ndim(x)) == 0:
            return make_literal(x)
        var = self._const_ids.get(id(x))
        if var is None:
            var = self._const_ids[id(x)] = Var(get_aval(x))
            self.constvars.append(var)
            self.consts.append(x)
        return var

    def process_primitive(self, prim: Any, args: tuple[Any, ...], params: dict[str, Any]) -> Any:
        atoms = [self.to_atom(x) for x in args]
        return self.emit(prim, atoms, params)

    def emit(self, prim: Any, atoms: list[Atom], params: dict[str, Any]) -> Any:
        """Append ``prim`` applied to ``atoms`` and return tracers for its outputs."""
        out = abstract_eval_cached(prim, [a.aval for a in atoms], params)
        source_info = user_source_info() if self.record_source_info else None
        if not prim.multiple_results:
            var = Var(out)
            self.eqns.append(JaxprEqn(prim, atoms, params, [var], source_info))
            return StagingTracer(self, var)
        outvars = [Var(aval) for aval in out]
        self.eqns.append(JaxprEqn(prim, atoms, params, outvars, source_info))
        return [StagingTracer(self, v) for v in outvars]

    def to_jaxpr(self, outs: Sequence[Any]) -> ClosedJaxpr:
        outvars = [self.to_atom(x) for x in outs]
        jaxpr = Jaxpr(self.constvars, self.invars, outvars, self.eqns)
        return ClosedJaxpr(jaxpr, self.consts)


def make_literal(x: Any) -> Literal:
    dtype, weak = dtypes.dtype_and_weak_type(x)
    value = np.asarray(x._value if isinstance(x, Array) else x, dtype=dtype)
    return Literal(Array(value, weak), ShapedArray((), dtype, weak))


def trace_to_jaxpr(fun: Callable[..., Sequence[Any]],
                   in_avals: Sequence[ShapedArray]) -> ClosedJaxpr:
    """Stage ``fun`` (flat list of arrays in, flat list out) into a closed jaxpr."""
    trace = StagingTrace()
    args = [trace.new_arg(aval) for aval in in_avals]
    try:
        with set_current_trace(trace):
            outs = fun(*args)
        return trace.to_jaxpr(outs)
    finally:
        trace.invalidate()
