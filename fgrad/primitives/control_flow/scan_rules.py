"""The transformation rules of ``scan_p``: JVP, partial evaluation, transpose, batching.

Each rule transforms the loop *body* (a closed jaxpr) with the same helper
the transform uses for whole functions (``jvp_jaxpr``, ``partial_eval_jaxpr``,
``backward_pass``, a batched re-evaluation) and binds ``scan_p`` again with
the new body. Operands keep JAX's layout ``(*consts, *carry, *xs)``.

Three of the rules need a *fixed point* over the carry: whether a carry has
a nonzero tangent (jvp), is unknown (partial eval) or is batched (vmap)
depends on the carry *output* of the body, which depends on that same
property of the carry *input*. Start from the initial carry's property,
transform the body, turn on every carry the body's output turns on, and
repeat; at most ``num_carry`` rounds, since each round adds at least one.

Partial evaluation is what makes ``grad(scan)`` cost memory linear in the
number of steps: the *known* scan computes the primal loop and emits, per
step, the residuals the tangent computation needs, stacked like ``ys``;
residuals that depend only on the consts are computed once, before the loop
(hoisted), and residuals that are simply a slice of a known ``xs`` are not
copied at all. The *unknown* scan takes the hoisted residuals as consts and
the stacked ones as extra ``xs``. Its transpose runs the loop in the other
direction: the carry cotangent flows backwards, const cotangents are summed
in extra carries, and xs cotangents come out as ys.
"""

from __future__ import annotations

from typing import Any, Sequence

from fgrad.core.ad_util import UndefPrimal, Zero, add_tangents, is_undefined_primal, tangent_aval
from fgrad.core.avals import get_aval
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, Var, eval_jaxpr
from fgrad.core.staging import trace_to_jaxpr
from fgrad.core.trace import set_current_trace
from fgrad.primitives.control_flow.scan import _split, _stacked, _unstacked, scan_p


def _move_binders(closed: ClosedJaxpr, in_order: Sequence[int],
                  out_order: Sequence[int] | None = None) -> ClosedJaxpr:
    """The same jaxpr with its inputs (and outputs) listed in a new order."""
    j = closed.jaxpr
    outvars = j.outvars if out_order is None else [j.outvars[i] for i in out_order]
    return ClosedJaxpr(Jaxpr(j.constvars, [j.invars[i] for i in in_order], outvars, j.eqns),
                       closed.consts)


def _positions(flags: Sequence[bool], value: bool = True) -> list[int]:
    return [i for i, f in enumerate(flags) if f == value]


def _pick(xs: Sequence[Any], flags: Sequence[bool], value: bool = True) -> list[Any]:
    return [x for x, f in zip(xs, flags) if f == value]


def _merge(flags: Sequence[bool], when_true: Sequence[Any], when_false: Sequence[Any]
           ) -> list[Any]:
    t, f = iter(when_true), iter(when_false)
    return [next(t) if flag else next(f) for flag in flags]


# --- jvp ----------------------------------------------------------------------------------------

def _scan_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, jaxpr: ClosedJaxpr,
              num_consts: int, num_carry: int, length: int, reverse: bool, unroll: int
              ) -> tuple[list[Any], list[Any]]:
    from fgrad.transforms.jvp import instantiate_zeros, jvp_jaxpr
    num_ys = len(jaxpr.out_avals) - num_carry
    nonzeros = [type(t) is not Zero for t in tangents]
    const_nz, init_nz, xs_nz = _split(nonzeros, [num_consts, num_carry])
    carry_nz = init_nz
    for _ in range(num_carry + 1):  # fixed point: which carries have nonzero tangents
        body, out_nz = jvp_jaxpr(jaxpr, const_nz + carry_nz + xs_nz,
                                 instantiate=carry_nz + [False] * num_ys)
        if out_nz[:num_carry] == carry_nz:
            break
        carry_nz = [a or b for a, b in zip(carry_nz, out_nz[:num_carry])]
    ys_nz = out_nz[num_carry:]
    # The jvp body takes (primals, tangents) and returns (primals_out, tangents_out);
    # interleave them into scan's layout: consts, const tangents, carry, carry tangents, ...
    n, n_cd, n_kd, n_yd = len(primals), sum(const_nz), sum(carry_nz), sum(ys_nz)
    nc, nk = num_consts, num_carry
    in_order = [*range(nc), *range(n, n + n_cd), *range(nc, nc + nk),
                *range(n + n_cd, n + n_cd + n_kd), *range(nc + nk, n),
                *range(n + n_cd + n_kd, len(body.in_avals))]
    m = nk + num_ys
    out_order = [*range(nk), *range(m, m + n_kd), *range(nk, m), *range(m + n_kd, m + n_kd + n_yd)]
    body = _move_binders(body, in_order, out_order)
    consts, init, xs = _split(primals, [nc, nk])
    consts_dot, init_dot, xs_dot = _split(tangents, [nc, nk])
    init_dot = [instantiate_zeros(t) for t, nz in zip(init_dot, carry_nz) if nz]
    outs = scan_p.bind(*consts, *_pick(consts_dot, const_nz), *init, *init_dot,
                       *xs, *_pick(xs_dot, xs_nz), jaxpr=body, num_consts=nc + n_cd,
                       num_carry=nk + n_kd, length=length, reverse=reverse, unroll=unroll)
    carry, carry_dot, ys, ys_dot = _split(outs, [nk, n_kd, num_ys])
    out_avals = list(jaxpr.out_avals[:nk]) + [_stacked(length, a) for a in jaxpr.out_avals[nk:]]
    out_nz = carry_nz + ys_nz
    zeros = [Zero(tangent_aval(a)) for a in _pick(out_avals, out_nz, False)]
    return carry + ys, _merge(out_nz, carry_dot + ys_dot, zeros)


# --- partial evaluation -------------------------------------------------------------------------

def _scan_partial_eval(trace: Any, args: Sequence[Any], params: dict[str, Any]) -> list[Any]:
    from fgrad.transforms.partial_eval import dce_closed_outputs, partial_eval_jaxpr
    jaxpr, nc, nk = params["jaxpr"], params["num_consts"], params["num_carry"]
    num_ys = len(jaxpr.out_avals) - nk
    const_uk, init_uk, xs_uk = _split([trace.is_own(x) for x in args], [nc, nk])
    carry_uk = init_uk
    for _ in range(nk + 1):  # fixed point: which carries are unknown
        known, unknown, out_uk, num_res = partial_eval_jaxpr(
            jaxpr, const_uk + carry_uk + xs_uk, instantiate=carry_uk + [False] * num_ys)
        if out_uk[:nk] == carry_uk:
            break
        carry_uk = [a or b for a, b in zip(carry_uk, out_uk[:nk])]
    consts, init, xs = _split(args, [nc, nk])
    known_consts, known_init, known_xs = (_pick(consts, const_uk, False),
                                          _pick(init, carry_uk, False), _pick(xs, xs_uk, False))
    # known: (*known_consts, *known_carry, *known_x) -> (*known_carry, *known_y, *residuals).
    # Split it once more, with only the consts known: the residuals it can still compute
    # depend on the consts alone, so they are loop-invariant and computed once, here.
    n_known_out = len(known.out_avals) - num_res
    n_loop = len(known_init) + len(known_xs)
    pre, body, res_varies, _ = partial_eval_jaxpr(
        known, [False] * len(known_consts) + [True] * n_loop,
        instantiate=[True] * n_known_out + [False] * num_res)
    res_varies = res_varies[n_known_out:]
    n_hoisted = num_res - sum(res_varies)
    with set_current_trace(trace.parent):
        pre_outs = eval_jaxpr(pre.jaxpr, pre.consts, *known_consts)
    hoisted, body_consts = pre_outs[:n_hoisted], pre_outs[n_hoisted:]
    # body: (*body_consts, *known_carry, *known_x) -> (*known_carry, *known_y, *varying_res).
    # A varying residual that is just a slice of a known xs is read from that xs directly.
    x_index = {id(v): i for i, v in enumerate(body.jaxpr.invars[len(body_consts)
                                                                + len(known_init):])}
    forwarded = [x_index.get(id(v)) if isinstance(v, Var) else None
                 for v in body.jaxpr.outvars[n_known_out:]]
    body = dce_closed_outputs(body, [True] * n_known_out + [f is None for f in forwarded])
    known_outs: list[Any] = []
    if body.out_avals:
        with set_current_trace(trace.parent):
            known_outs = scan_p.bind(*body_consts, *known_init, *known_xs, jaxpr=body,
                                     num_consts=len(body_consts), num_carry=len(known_init),
                                     length=params["length"], reverse=params["reverse"],
                                     unroll=params["unroll"])
    stacked = iter(known_outs[n_known_out:])
    varying = [next(stacked) if f is None else known_xs[f] for f in forwarded]
    # unknown: (*residuals, *unknown_consts, *unknown_carry, *unknown_x) -> unknown outputs.
    # Hoisted residuals become consts of the unknown scan, varying ones extra xs.
    n_unknown_in = len(unknown.in_avals) - num_res
    in_order = [*_positions(res_varies, False), *range(num_res, num_res + n_unknown_in),
                *_positions(res_varies, True)]
    unknown = _move_binders(unknown, in_order)
    operands = [*hoisted, *_pick(consts, const_uk), *_pick(init, carry_uk),
                *_pick(xs, xs_uk), *varying]
    unknown_outs = trace.emit(scan_p, [trace.to_atom(x) for x in operands],
                              dict(params, jaxpr=unknown,
                                   num_consts=n_hoisted + sum(const_uk),
                                   num_carry=sum(carry_uk)))
    return _merge(out_uk, unknown_outs, known_outs[:n_known_out])


# --- transpose ----------------------------------------------------------------------------------

def _scan_transpose(cts: Sequence[Any], *args: Any, jaxpr: ClosedJaxpr, num_consts: int,
                    num_carry: int, length: int, reverse: bool, unroll: int) -> list[Any]:
    # Consts and xs given as values are residuals (non-linear); every carry is linear
    # (a carry started from a known value, e.g. instantiated zeros, still is).
    from fgrad.transforms.jvp import instantiate_zeros, zeros_like_aval
    from fgrad.transforms.transpose import backward_pass
    nc, nk = num_consts, num_carry
    consts, init, xs = _split(args, [nc, nk])
    const_lin = [is_undefined_primal(x) for x in consts]
    xs_lin = [is_undefined_primal(x) for x in xs]
    const_avals, carry_avals, x_avals = _split(jaxpr.in_avals, [nc, nk])
    y_avals = jaxpr.out_avals[nk:]
    ires, eres = _pick(consts, const_lin, False), _pick(xs, xs_lin, False)
    ct_const_avals = [tangent_aval(a) for a in _pick(const_avals, const_lin)]
    ct_carry_avals = [tangent_aval(a) for a in carry_avals]
    sizes = [len(ires), len(ct_const_avals), nk, len(y_avals)]

    # body: (*ires, *ct_consts_acc, *ct_carry, *ct_y, *eres) -> (*ct_consts_acc, *ct_carry, *ct_x)
    def transposed_body(*a: Any) -> list[Any]:
        ires_, acc, ct_carry, ct_y, eres_ = _split(a, sizes)
        primals = (_merge(const_lin, [UndefPrimal(v) for v in _pick(const_avals, const_lin)],
                          ires_)
                   + [UndefPrimal(v) for v in carry_avals]
                   + _merge(xs_lin, [UndefPrimal(v) for v in _pick(x_avals, xs_lin)], eres_))
        cts_in = backward_pass(jaxpr.jaxpr, jaxpr.consts, primals, [*ct_carry, *ct_y])
        ct_consts, ct_init, ct_x = _split(cts_in, [nc, nk])
        acc = [instantiate_zeros(add_tangents(s, c))
               for s, c in zip(acc, _pick(ct_consts, const_lin))]
        return (acc + [instantiate_zeros(c) for c in ct_init]
                + [instantiate_zeros(c) for c in _pick(ct_x, xs_lin)])

    body = trace_to_jaxpr(transposed_body, [
        *[get_aval(x) for x in ires], *ct_const_avals, *ct_carry_avals,
        *[tangent_aval(a) for a in y_avals], *[_unstacked(get_aval(x)) for x in eres]])
    ct_carry, ct_ys = _split(cts, [nk])
    outs = scan_p.bind(*ires, *[zeros_like_aval(a) for a in ct_const_avals],
                       *[instantiate_zeros(c) for c in ct_carry],
                       *[instantiate_zeros(c) for c in ct_ys], *eres, jaxpr=body,
                       num_consts=len(ires), num_carry=len(ct_const_avals) + nk, length=length,
                       reverse=not reverse, unroll=unroll)
    ct_consts, ct_init, ct_xs = _split(outs, [len(ct_const_avals), nk])
    return (_merge(const_lin, ct_consts, [None] * nc)
            + [c if is_undefined_primal(x) else None for c, x in zip(ct_init, init)]
            + _merge(xs_lin, ct_xs, [None] * len(xs)))


# --- batching -----------------------------------------------------------------------------------

def _scan_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                jaxpr: ClosedJaxpr, num_consts: int, num_carry: int, length: int,
                reverse: bool, unroll: int) -> tuple[list[Any], list[int | None]]:
    from fgrad.transforms.vmap import batch_jaxpr, bdim_at_front, moveaxis
    nc, nk = num_consts, num_carry
    num_ys = len(jaxpr.out_avals) - nk
    const_b, init_b, xs_b = _split([d is not None for d in dims], [nc, nk])
    carry_b = init_b
    for _ in range(nk + 1):  # fixed point: which carries must be batched
        # Inside the body every batched value has its batch axis first.
        body, out_dims = batch_jaxpr(jaxpr, [0 if b else None for b in const_b + carry_b + xs_b],
                                     axis_size, out_dims_wanted=0,
                                     instantiate=carry_b + [False] * num_ys)
        out_b = [d is not None for d in out_dims]
        if out_b[:nk] == carry_b:
            break
        carry_b = [a or b for a, b in zip(carry_b, out_b[:nk])]
    consts, init, xs = _split(vals, [nc, nk])
    const_d, init_d, xs_d = _split(dims, [nc, nk])
    consts = [x if d is None else moveaxis(x, d, 0) for x, d in zip(consts, const_d)]
    init = [bdim_at_front(x, d, axis_size) if b else x for x, d, b in zip(init, init_d, carry_b)]
    # xs are sliced along axis 0 by the loop, so their batch axis goes to 1.
    xs = [x if d is None else moveaxis(x, d, 1) for x, d in zip(xs, xs_d)]
    outs = scan_p.bind(*consts, *init, *xs, jaxpr=body, num_consts=nc, num_carry=nk,
                       length=length, reverse=reverse, unroll=unroll)
    out_dims = [0 if b else None for b in carry_b] + [1 if b else None
                                                      for b in out_b[nk:]]
    return outs, out_dims


scan_p.def_jvp(_scan_jvp)
scan_p.partial_eval = _scan_partial_eval
scan_p.def_transpose(_scan_transpose)
scan_p.def_batch(_scan_batch)
