"""Transposition: running a linear jaxpr backwards.

``linearize`` produces a jaxpr that is linear in its inputs (the tangents).
Its transpose maps output cotangents to input cotangents: that is the VJP,
and reverse-mode autodiff is nothing more than linearize + transpose.

``backward_pass`` walks the equations in reverse. The linear inputs are
``UndefPrimal`` (we do not know them; we want their cotangents). Equations
that read no linear value (residual computations, e.g. the recomputation
inside ``checkpoint``) are first evaluated forwards. Then each linear
equation's ``transpose`` rule receives the cotangent of its output and
returns cotangents for its linear inputs, which are summed (``add_any``)
into the cotangents of those variables. A primitive only ever needs its
transpose rule for the arguments it is linear in.
"""

from __future__ import annotations

from typing import Any, Sequence

from fgrad.core.ad_util import UndefPrimal, Zero, add_tangents, tangent_aval
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, Literal, Var
from fgrad.core.staging import trace_to_jaxpr
from fgrad.transforms.jvp import instantiate_zeros


def backward_pass(jaxpr: Jaxpr, consts: Sequence[Any], args: Sequence[Any],
                  cts_out: Sequence[Any]) -> list[Any]:
    """Cotangents for the ``UndefPrimal`` entries of ``args`` (``Zero`` where none flows)."""
    primal_env: dict[Var, Any] = dict(zip(jaxpr.constvars, consts))
    linear: set[Var] = set()

    def read(atom: Any) -> Any:
        if type(atom) is Literal:
            return atom.val
        return UndefPrimal(atom.aval) if atom in linear else primal_env[atom]

    for v, x in zip(jaxpr.invars, args):
        if type(x) is UndefPrimal:
            linear.add(v)
        else:
            primal_env[v] = x

    # Forward: evaluate what does not depend on the linear inputs.
    linear_eqns = []
    for eqn in jaxpr.eqns:
        for v in eqn.invars:
            if type(v) is Var and v in linear:
                linear.update(eqn.outvars)
                linear_eqns.append(eqn)
                break
        else:
            outs = eqn.primitive.bind(*map(read, eqn.invars), **eqn.params)
            primal_env.update(zip(eqn.outvars, outs if eqn.primitive.multiple_results
                                  else [outs]))

    # Backward: push cotangents from outputs to inputs. Only nonzero cotangents of
    # linear variables are stored; an equation none of whose outputs has one is skipped.
    ct_env: dict[Var, Any] = {}

    def write_ct(v: Any, ct: Any) -> None:
        if type(v) is Var and v in linear and ct is not None and type(ct) is not Zero:
            ct_env[v] = add_tangents(ct_env[v], ct) if v in ct_env else ct

    for v, ct in zip(jaxpr.outvars, cts_out):
        write_ct(v, ct)
    for eqn in reversed(linear_eqns):
        prim = eqn.primitive
        if prim.multiple_results:
            cts = [ct_env.pop(v, None) for v in eqn.outvars]
            if all(ct is None for ct in cts):
                continue
            ct_arg: Any = [Zero(tangent_aval(v.aval)) if ct is None else ct
                           for v, ct in zip(eqn.outvars, cts)]
        else:
            ct_arg = ct_env.pop(eqn.outvars[0], None)
            if ct_arg is None:
                continue
        if prim.transpose is None:
            raise NotImplementedError(
                f"Transpose rule (for reverse-mode differentiation) for '{prim.name}' "
                "not implemented"
                + (f": {prim.missing_reasons['transpose']}"
                   if "transpose" in prim.missing_reasons else ""))
        cts_in = prim.transpose(ct_arg, *map(read, eqn.invars), **eqn.params)
        for v, ct in zip(eqn.invars, cts_in):
            write_ct(v, ct)

    return [ct_env.pop(v, Zero(tangent_aval(v.aval))) if type(x) is UndefPrimal else None
            for v, x in zip(jaxpr.invars, args)]


def transpose_jaxpr(closed: ClosedJaxpr, linear: Sequence[bool]) -> ClosedJaxpr:
    """The jaxpr ``(*nonlinear_ins, *cts_out) -> cts for the linear inputs`` (zeros instantiated)."""
    in_avals = closed.in_avals
    res_avals = [a for a, lin in zip(in_avals, linear) if not lin]
    ct_avals = [tangent_aval(a) for a in closed.out_avals]

    def fun(*args: Any) -> list[Any]:
        res, cts = iter(args[:len(res_avals)]), args[len(res_avals):]
        primals = [UndefPrimal(a) if lin else next(res) for a, lin in zip(in_avals, linear)]
        cts_in = backward_pass(closed.jaxpr, closed.consts, primals, cts)
        return [instantiate_zeros(ct) for ct, lin in zip(cts_in, linear) if lin]

    return trace_to_jaxpr(fun, [*res_avals, *ct_avals])
