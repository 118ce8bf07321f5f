"""The jaxpr printer. A user feature: its output is meant to be read.

Variables get short names in order of appearance (``a``, ``b``, ... ``z``,
``ba``, ``bb`` ...), each binding shows its type, and parameters print in
brackets after the primitive's name. Nested jaxprs (in ``jit``, ``cond``,
``scan`` ... parameters) are printed indented, with their own names.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgrad.core.dtypes import short_name
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, JaxprEqn, Literal, Var


class _Names:
    def __init__(self) -> None:
        self.names: dict[Var, str] = {}

    def __call__(self, v: Any) -> str:
        if isinstance(v, Literal):
            return _literal(v)
        if v not in self.names:
            self.names[v] = _letters(len(self.names))
        return self.names[v]


def _letters(n: int) -> str:
    s = ""
    while True:
        s = chr(ord("a") + n % 26) + s
        n //= 26
        if n == 0:
            return s


def _literal(lit: Literal) -> str:
    val = np.asarray(lit.val)
    if val.dtype == np.bool_:
        text = "True" if val else "False"
    elif np.issubdtype(val.dtype, np.integer):
        text = str(int(val))
    else:
        text = repr(float(val))
    return f"{text}:{short_name(lit.aval.dtype)}[]"


def _binder(v: Var, names: _Names) -> str:
    return f"{names(v)}:{v.aval.str_short()}"


def _param(value: Any, indent: int) -> str:
    if isinstance(value, (Jaxpr, ClosedJaxpr)):
        jaxpr = value.jaxpr if isinstance(value, ClosedJaxpr) else value
        return pp_jaxpr(jaxpr, indent + 4)
    if isinstance(value, (list, tuple)) and value and all(
            isinstance(x, (Jaxpr, ClosedJaxpr)) for x in value):
        inner = ("\n" + " " * (indent + 2)).join(_param(x, indent) for x in value)
        return "(\n" + " " * (indent + 2) + inner + "\n" + " " * indent + ")"
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    if callable(value) and hasattr(value, "__name__"):
        return value.__name__
    return str(value)


def pp_eqn(eqn: JaxprEqn, names: _Names | None = None, indent: int = 0) -> str:
    names = names or _Names()
    lhs = " ".join(_binder(v, names) for v in eqn.outvars)
    if eqn.primitive.pretty is not None:
        shown = eqn.primitive.pretty(eqn.params)
    else:
        shown = eqn.params
    params = " ".join(f"{k}={_param(v, indent)}" for k, v in shown.items())
    rhs = eqn.primitive.name + (f"[{params}]" if params else "")
    args = " ".join(names(a) for a in eqn.invars)
    return f"{lhs} = {rhs} {args}".rstrip()


def pp_jaxpr(jaxpr: Jaxpr, indent: int = 0) -> str:
    """Render ``jaxpr`` as text (``str(jaxpr)`` calls this)."""
    names = _Names()
    constvars = " ".join(_binder(v, names) for v in jaxpr.constvars)
    invars = " ".join(_binder(v, names) for v in jaxpr.invars)
    pad = " " * indent
    lines = [f"{{ lambda {constvars}; {invars}. let"]
    for eqn in jaxpr.eqns:
        lines.append(pad + "    " + pp_eqn(eqn, names, indent + 4))
    outs = ", ".join(names(v) for v in jaxpr.outvars)
    trailing = "," if len(jaxpr.outvars) == 1 else ""
    lines.append(pad + f"  in ({outs}{trailing}) }}")
    return "\n".join(lines)
