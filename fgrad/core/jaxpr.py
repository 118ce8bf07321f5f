"""The jaxpr: fgrad's intermediate representation.

A jaxpr is a typed, first-order program in A-normal form: a list of
*equations*, each applying one primitive to variables or literals and
binding new variables. ``make_jaxpr(f)(x)`` prints one:

    { lambda ; a:f32[3]. let
        b:f32[3] = tanh a
        c:f32[] = reduce_sum[axes=(0,)] b
      in (c,) }

Pieces: ``Var`` (a typed name; compared by identity), ``Literal`` (a scalar
constant written inline), ``JaxprEqn``, ``Jaxpr`` (constvars, invars,
equations, outvars) and ``ClosedJaxpr`` (a jaxpr plus the values of its
constvars). ``eval_jaxpr`` interprets a jaxpr by binding each equation's
primitive under the current trace, so evaluating a jaxpr inside a transform
transforms it. ``typecheck_jaxpr`` re-derives every type and is run on every
jaxpr a transform produces in the tests.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import JaxprTypeError
from fgrad.core.primitive import Primitive


class Var:
    """A variable of a jaxpr: just a typed identity (names are given when printing)."""

    __slots__ = ("aval",)

    def __init__(self, aval: ShapedArray) -> None:
        self.aval = aval

    def __repr__(self) -> str:
        return f"Var({self.aval.str_short()})"


class Literal:
    """A scalar constant appearing inline in an equation (``2.0:f32[]``)."""

    __slots__ = ("val", "aval")

    def __init__(self, val: Any, aval: ShapedArray) -> None:
        self.val = val
        self.aval = aval

    def __repr__(self) -> str:
        return f"Literal({self.val})"


Atom = Var | Literal


class SourceInfo:
    """Where in the user's code an equation was created (file, line, function)."""

    __slots__ = ("filename", "lineno", "function")

    def __init__(self, filename: str, lineno: int, function: str) -> None:
        self.filename, self.lineno, self.function = filename, lineno, function

    def __str__(self) -> str:
        return f"{self.filename}:{self.lineno} ({self.function})"


class JaxprEqn:
    """``outvars = primitive[params] invars``."""

    __slots__ = ("primitive", "invars", "params", "outvars", "source_info")

    def __init__(self, primitive: Primitive, invars: list[Atom], params: dict[str, Any],
                 outvars: list[Var], source_info: SourceInfo | None = None) -> None:
        self.primitive = primitive
        self.invars = invars
        self.params = params
        self.outvars = outvars
        self.source_info = source_info

    def replace(self, **changes: Any) -> JaxprEqn:
        fields = {k: getattr(self, k) for k in self.__slots__}
        fields.update(changes)
        return JaxprEqn(**fields)

    def __repr__(self) -> str:
        from fgrad.core.pretty import pp_eqn
        return pp_eqn(self)


class Jaxpr:
    """A typed program: ``{ lambda constvars ; invars . let eqns in outvars }``."""

    __slots__ = ("constvars", "invars", "outvars", "eqns")

    def __init__(self, constvars: list[Var], invars: list[Var], outvars: list[Atom],
                 eqns: list[JaxprEqn]) -> None:
        self.constvars = list(constvars)
        self.invars = list(invars)
        self.outvars = list(outvars)
        self.eqns = list(eqns)

    @property
    def in_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.invars]

    @property
    def out_avals(self) -> list[ShapedArray]:
        return [v.aval for v in self.outvars]

    def __str__(self) -> str:
        from fgrad.core.pretty import pp_jaxpr
        return pp_jaxpr(self)

    __repr__ = __str__


class ClosedJaxpr:
    """A jaxpr whose constvars are bound to values (``consts``)."""

    __slots__ = ("jaxpr", "consts", "__weakref__")  # (backends cache programs per jaxpr)

    def __init__(self, jaxpr: Jaxpr, consts: Sequence[Any]) -> None:
        if len(jaxpr.constvars) != len(consts):
            raise ValueError("ClosedJaxpr: number of consts does not match constvars")
        self.jaxpr = jaxpr
        self.consts = list(consts)

    @property
    def in_avals(self) -> list[ShapedArray]:
        return self.jaxpr.in_avals

    @property
    def out_avals(self) -> list[ShapedArray]:
        return self.jaxpr.out_avals

    @property
    def eqns(self) -> list[JaxprEqn]:
        return self.jaxpr.eqns

    def __str__(self) -> str:
        from fgrad.core.pretty import pp_jaxpr
        return pp_jaxpr(self.jaxpr)

    __repr__ = __str__


def eval_jaxpr(jaxpr: Jaxpr, consts: Sequence[Any], *args: Any) -> list[Any]:
    """Run ``jaxpr`` by binding each equation under the current trace."""
    env: dict[Var, Any] = {}

    def read(atom: Atom) -> Any:
        return atom.val if type(atom) is Literal else env[atom]

    if len(args) != len(jaxpr.invars):
        raise TypeError(f"eval_jaxpr: expected {len(jaxpr.invars)} arguments, got {len(args)}")
    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        outs = eqn.primitive.bind(*map(read, eqn.invars), **eqn.params)
        if eqn.primitive.multiple_results:
            env.update(zip(eqn.outvars, outs))
        else:
            env[eqn.outvars[0]] = outs
    return [read(v) for v in jaxpr.outvars]


def eval_closed_jaxpr(closed: ClosedJaxpr, *args: Any) -> list[Any]:
    return eval_jaxpr(closed.jaxpr, closed.consts, *args)


# --- type checking --------------------------------------------------------------

def _same_type(a: ShapedArray, b: ShapedArray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.weak_type == b.weak_type


def typecheck_jaxpr(jaxpr: Jaxpr | ClosedJaxpr) -> None:
    """Check every equation's types against its primitive's shape rule.

    Raises ``JaxprTypeError`` naming the offending equation. Run by the tests
    on every jaxpr a transform produces: a transform that builds an ill-typed
    program is caught at the rule that built it.
    """
    if isinstance(jaxpr, ClosedJaxpr):
        for v, c in zip(jaxpr.jaxpr.constvars, jaxpr.consts):
            aval = get_aval(c)
            if aval.shape != v.aval.shape or aval.dtype != v.aval.dtype:
                raise JaxprTypeError(f"const of type {aval.str_short()} bound to a constvar "
                                     f"of type {v.aval.str_short()}")
        jaxpr = jaxpr.jaxpr
    defined: set[Var] = set()

    def define(v: Var) -> None:
        if v in defined:
            raise JaxprTypeError(f"variable {v} defined twice")
        defined.add(v)

    def check_atom(a: Atom, where: str) -> None:
        if isinstance(a, Literal):
            if np.shape(a.val) != a.aval.shape:
                raise JaxprTypeError(f"literal {a.val} does not match its type {a.aval}")
        elif a not in defined:
            raise JaxprTypeError(f"{where}: variable of type {a.aval.str_short()} used "
                                 "before it is defined")

    for v in [*jaxpr.constvars, *jaxpr.invars]:
        define(v)
    for eqn in jaxpr.eqns:
        for a in eqn.invars:
            check_atom(a, eqn.primitive.name)
        in_avals = [a.aval for a in eqn.invars]
        try:
            out = eqn.primitive.abstract_eval(*in_avals, **eqn.params)
        except Exception as e:
            raise JaxprTypeError(f"equation `{eqn}` failed its shape rule: {e}") from e
        out_avals = out if eqn.primitive.multiple_results else [out]
        if len(out_avals) != len(eqn.outvars):
            raise JaxprTypeError(f"equation `{eqn}` has {len(eqn.outvars)} outputs, its "
                                 f"rule gives {len(out_avals)}")
        for param in eqn.params.values():  # sub-jaxprs of higher-order primitives
            for sub in (param if isinstance(param, (tuple, list)) else (param,)):
                if isinstance(sub, (Jaxpr, ClosedJaxpr)):
                    try:
                        typecheck_jaxpr(sub)
                    except JaxprTypeError as e:
                        raise JaxprTypeError(f"in the jaxpr inside `{eqn.primitive.name}`: "
                                             f"{e}") from e
        for v, aval in zip(eqn.outvars, out_avals):
            if not _same_type(v.aval, aval):
                raise JaxprTypeError(f"equation `{eqn}` binds a variable of type "
                                     f"{v.aval!r} but its rule gives {aval!r}")
            define(v)
    for a in jaxpr.outvars:
        check_atom(a, "output")
