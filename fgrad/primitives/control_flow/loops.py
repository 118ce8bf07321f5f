"""Loops with a data-dependent trip count: ``while_loop`` (primitive ``while``).

``while[cond_jaxpr, body_jaxpr, cond_nconsts, body_nconsts] *cconsts *bconsts
*carry`` repeats ``carry = body(*bconsts, *carry)`` while ``cond(*cconsts,
*carry)`` is True and returns the final carry. The constants are whatever
``cond_fun`` and ``body_fun`` close over, made explicit operands.

Conventions, all JAX's:

* The carry keeps its pytree structure, shapes and dtypes; a weakly typed
  initial value (a Python scalar) is first promoted to the type the body
  returns (``while_loop(c, lambda i: i + 0.5, 0)`` carries a float32).
  ``cond_fun`` must return a boolean scalar.
* Forward mode works (the JVP carries the tangents as extra carries, for
  the fixed point of carries whose tangents are nonzero), and so does
  ``linearize``. Reverse mode does not: the trip count is unknown, so there
  is no bound on what would have to be stored. The transpose rule raises
  JAX's error, which points to ``scan`` or ``fori_loop`` with static bounds.
* Under ``vmap`` with a batched predicate the loop runs until every lane is
  done; each step updates only the lanes whose predicate still holds
  (``select_n``), so finished lanes keep their final values.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.config import config
from fgrad.core import dtypes
from fgrad.core.ad_util import Zero, tangent_aval
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import ConcretizationTypeError, FgradTypeError
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, Var, eval_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.pytree import tree_flatten, tree_map, tree_unflatten, treedef_is_leaf
from fgrad.core.staging import trace_to_jaxpr
from fgrad.core.trace import set_current_trace
from fgrad.primitives.control_flow.common import describe_type_mismatch, stage
from fgrad.primitives.control_flow.conditionals import (
    avals_str, batch_jaxpr, broadcast_lanes, canonical_leaves, eval_eagerly, same_types)
from fgrad.primitives.elementwise import convert_element_type, select_n
from fgrad.primitives.reductions import reduce_or

_REVERSE_MODE_ERROR = (
    "Reverse-mode differentiation does not work for lax.while_loop or lax.fori_loop with "
    "dynamic start/stop values. Try using lax.scan, or using fori_loop with static "
    "start/stop.")


def while_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any],
               init_val: Any) -> Any:
    """``val = init_val; while cond_fun(val): val = body_fun(val); return val``, staged.

    JAX's ``jax.lax.while_loop(cond_fun, body_fun, init_val)``. ``init_val``
    is any pytree of arrays; ``body_fun`` must return the same structure,
    shapes and dtypes, and ``cond_fun`` a boolean scalar. The loop is one
    primitive: ``jit`` stages it (the body is traced once, whatever the trip
    count), ``jvp``/``linearize`` differentiate it; ``grad`` raises (use
    ``scan`` or ``fori_loop`` with static bounds).

    >>> while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * 2.0), (0, 1.0))
    (Array(5, dtype=int32, weak_type=True), Array(32., dtype=float32, weak_type=True))

    Raises:
      TypeError: a function is not callable, ``cond_fun`` does not return a
        boolean scalar, or the body changes the carry's structure or types.
    """
    if not (callable(body_fun) and callable(cond_fun)):
        raise TypeError("lax.while_loop: body_fun and cond_fun arguments should be callable.")
    if config.disable_jit:
        try:
            return _python_while(cond_fun, body_fun, init_val)
        except ConcretizationTypeError:
            pass  # e.g. under vmap: the values are not concrete, so stage the loop after all
    leaves, carry_tree, avals = canonical_leaves(init_val, "while_loop")
    cond_closed, cond_consts, body_closed, body_consts, body_tree = \
        _stage_loop(cond_fun, body_fun, carry_tree, avals)
    if body_tree != carry_tree:
        raise TypeError("while_loop body function carry input and carry output must have the "
                        "same pytree structure, but they differ: "
                        + str(describe_type_mismatch("the carry input", carry_tree, avals,
                                                     "the carry output", body_tree,
                                                     body_closed.out_avals)))
    # A weakly typed initial value (a Python scalar) takes the type the body gives it.
    promoted = [_promote_weak(x, a, out)
                for x, a, out in zip(leaves, avals, body_closed.out_avals)]
    if any(p is not x for p, x in zip(promoted, leaves)):
        leaves, _, avals = canonical_leaves(promoted, "while_loop")
        cond_closed, cond_consts, body_closed, body_consts, body_tree = \
            _stage_loop(cond_fun, body_fun, carry_tree, avals)
    why = describe_type_mismatch("the carry input", carry_tree, avals, "the carry output",
                                 body_tree, body_closed.out_avals)
    if why is not None:
        raise TypeError("while_loop body function carry input and carry output must have "
                        f"equal types, but they differ: {why}")
    outs = while_p.bind(*cond_consts, *body_consts, *leaves, body_jaxpr=body_closed,
                        body_nconsts=len(body_consts), cond_jaxpr=cond_closed,
                        cond_nconsts=len(cond_consts))
    return tree_unflatten(carry_tree, outs)


def _stage_loop(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any],
                carry_tree: Any, avals: list[ShapedArray]) -> tuple[Any, ...]:
    args_tree = tree_flatten((tree_unflatten(carry_tree, avals),))[1]
    cond_closed, cond_consts, cond_tree = stage(cond_fun, avals, args_tree,
                                                "while_loop cond_fun")
    if not treedef_is_leaf(cond_tree):
        raise TypeError(f"cond_fun must return a boolean scalar, but got pytree {cond_tree}.")
    pred = cond_closed.out_avals[0]
    if pred.shape != () or not dtypes.is_bool(pred.dtype):
        raise TypeError(f"cond_fun must return a boolean scalar, but got output type(s) "
                        f"[{pred.str_short()}].")
    body_closed, body_consts, body_tree = stage(body_fun, avals, args_tree,
                                                "while_loop body_fun")
    return cond_closed, cond_consts, body_closed, body_consts, body_tree


def _promote_weak(x: Any, aval: ShapedArray, out: ShapedArray) -> Any:
    if not aval.weak_type or (aval.shape == out.shape and aval.dtype == out.dtype):
        return x
    dtype, _ = dtypes.result_type((aval.dtype, True), (out.dtype, out.weak_type))
    return convert_element_type(x, dtype)


def _python_while(cond_fun: Callable[[Any], Any], body_fun: Callable[[Any], Any],
                  init_val: Any) -> Any:
    """The loop run by Python itself (``disable_jit``), like JAX does."""
    from fgrad.numpy import asarray
    val = tree_map(asarray, init_val)
    while cond_fun(val):
        val = tree_map(asarray, body_fun(val))
    return val


# --- while: the primitive ---------------------------------------------------------------------

while_p = Primitive("while", multiple_results=True)


def _split(xs: Sequence[Any], cond_nconsts: int, body_nconsts: int) -> tuple[list[Any], ...]:
    xs = list(xs)
    n = cond_nconsts + body_nconsts
    return xs[:cond_nconsts], xs[cond_nconsts:n], xs[n:]


def _while_abstract_eval(*avals: ShapedArray, body_jaxpr: ClosedJaxpr, body_nconsts: int,
                         cond_jaxpr: ClosedJaxpr, cond_nconsts: int) -> list[ShapedArray]:
    cconsts, bconsts, carry = _split(avals, cond_nconsts, body_nconsts)
    if not same_types(cond_jaxpr.in_avals, [*cconsts, *carry]):
        raise FgradTypeError(f"while: cond_jaxpr takes {avals_str(cond_jaxpr.in_avals)} but "
                             f"gets {avals_str([*cconsts, *carry])}")
    if not same_types(body_jaxpr.in_avals, [*bconsts, *carry]):
        raise FgradTypeError(f"while: body_jaxpr takes {avals_str(body_jaxpr.in_avals)} but "
                             f"gets {avals_str([*bconsts, *carry])}")
    if not same_types(body_jaxpr.out_avals, carry):
        raise FgradTypeError(f"while: body_jaxpr returns {avals_str(body_jaxpr.out_avals)} "
                             f"for a carry of type {avals_str(carry)}")
    if not same_types(cond_jaxpr.out_avals, [ShapedArray((), np.bool_)]):
        raise FgradTypeError(f"while: cond_jaxpr must return a boolean scalar, got "
                             f"{avals_str(cond_jaxpr.out_avals)}")
    return list(body_jaxpr.out_avals)


def _while_impl(*args: np.ndarray, body_jaxpr: ClosedJaxpr, body_nconsts: int,
                cond_jaxpr: ClosedJaxpr, cond_nconsts: int) -> list[np.ndarray]:
    cconsts, bconsts, carry = _split(args, cond_nconsts, body_nconsts)
    while bool(np.asarray(eval_eagerly(cond_jaxpr, [*cconsts, *carry])[0])):
        carry = eval_eagerly(body_jaxpr, [*bconsts, *carry])
    return carry


def _while_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, body_jaxpr: ClosedJaxpr,
               body_nconsts: int, cond_jaxpr: ClosedJaxpr, cond_nconsts: int
               ) -> tuple[list[Any], list[Any]]:
    from fgrad.transforms.jvp import instantiate_zeros, jvp_jaxpr
    nonzeros = [type(t) is not Zero for t in tangents]
    _, bconst_nz, carry_nz = _split(nonzeros, cond_nconsts, body_nconsts)
    # A carry's tangent is nonzero if its initial tangent is, or if the body makes it so
    # from another nonzero tangent: iterate to the fixed point (at most one step per carry).
    for _ in range(len(carry_nz) + 1):
        body_jvp, out_nz = jvp_jaxpr(body_jaxpr, bconst_nz + carry_nz, instantiate=carry_nz)
        if out_nz == carry_nz:
            break
        carry_nz = [a or b for a, b in zip(carry_nz, out_nz)]
    cconsts, bconsts, carry = _split(primals, cond_nconsts, body_nconsts)
    _, bconst_dot, carry_dot = _split(tangents, cond_nconsts, body_nconsts)
    bconst_dot = [t for t in bconst_dot if type(t) is not Zero]
    carry_dot = [instantiate_zeros(t) for t, nz in zip(carry_dot, carry_nz) if nz]
    # body_jvp takes (bconsts, carry, bconst_dot, carry_dot); the loop wants its consts
    # first: (bconsts, bconst_dot, carry, carry_dot).
    j = body_jvp.jaxpr
    nb, nc, nbd = len(bconsts), len(carry), len(bconst_dot)
    v = j.invars
    invars = v[:nb] + v[nb + nc:nb + nc + nbd] + v[nb:nb + nc] + v[nb + nc + nbd:]
    body = ClosedJaxpr(Jaxpr(j.constvars, invars, j.outvars, j.eqns), body_jvp.consts)
    # The cond ignores the tangent carries.
    c = cond_jaxpr.jaxpr
    cond_invars = c.invars + [Var(x.aval) for x in v[nb + nc + nbd:]]
    cond = ClosedJaxpr(Jaxpr(c.constvars, cond_invars, c.outvars, c.eqns), cond_jaxpr.consts)
    outs = while_p.bind(*cconsts, *bconsts, *bconst_dot, *carry, *carry_dot, body_jaxpr=body,
                        body_nconsts=nb + nbd, cond_jaxpr=cond, cond_nconsts=cond_nconsts)
    rest = iter(outs[nc:])
    return outs[:nc], [next(rest) if nz else Zero(tangent_aval(a))
                       for nz, a in zip(carry_nz, body_jaxpr.out_avals)]


def _while_partial_eval(trace: Any, args: Sequence[Any], params: dict[str, Any]) -> list[Any]:
    """Known carries by a loop of the known part; the rest by the whole loop, staged.

    The staged loop recomputes the known carries (nothing can be saved per
    iteration without a bound on their number): that is what makes
    ``linearize`` work, and leaves a ``while`` in the linear jaxpr whose
    transpose raises the reverse-mode error.
    """
    from fgrad.transforms.partial_eval import dce_closed_outputs, partial_eval_jaxpr
    cn, bn = params["cond_nconsts"], params["body_nconsts"]
    body, cond = params["body_jaxpr"], params["cond_jaxpr"]
    unknowns = [trace.is_own(x) for x in args]
    cconst_uk, bconst_uk, carry_uk = _split(unknowns, cn, bn)
    for _ in range(len(carry_uk) + 1):  # fixed point of the unknown carries
        body_known, _, out_uk, num_res = partial_eval_jaxpr(body, bconst_uk + carry_uk,
                                                            instantiate=carry_uk)
        if out_uk == carry_uk:
            break
        carry_uk = [a or b for a, b in zip(carry_uk, out_uk)]
    cond_known, _, (pred_uk,), cond_res = partial_eval_jaxpr(cond, cconst_uk + carry_uk)
    if pred_uk or all(carry_uk):
        return trace.emit(while_p, [trace.to_atom(x) for x in args], params)
    n_known = len(carry_uk) - sum(carry_uk)
    body_known = dce_closed_outputs(body_known, [True] * n_known + [False] * num_res)
    cond_known = dce_closed_outputs(cond_known, [True] + [False] * cond_res)
    known_in = [x for x, uk in zip(args, cconst_uk + bconst_uk + carry_uk) if not uk]
    with set_current_trace(trace.parent):
        known_outs = while_p.bind(*known_in, body_jaxpr=body_known,
                                  body_nconsts=bn - sum(bconst_uk), cond_jaxpr=cond_known,
                                  cond_nconsts=cn - sum(cconst_uk))
    all_outs = trace.emit(while_p, [trace.to_atom(x) for x in args], params)
    known_iter = iter(known_outs)
    return [out if uk else next(known_iter) for out, uk in zip(all_outs, carry_uk)]


def _while_transpose(cts: Sequence[Any], *args: Any, **params: Any) -> list[Any]:
    raise ValueError(_REVERSE_MODE_ERROR)


def _while_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                 body_jaxpr: ClosedJaxpr, body_nconsts: int, cond_jaxpr: ClosedJaxpr,
                 cond_nconsts: int) -> tuple[list[Any], list[int | None]]:
    from fgrad.transforms.vmap import matchaxis
    cn, bn = cond_nconsts, body_nconsts
    cconsts, bconsts, init = _split(vals, cn, bn)
    cdims, bdims, init_dims = _split(dims, cn, bn)
    # Which carries vary over the batch: those that start batched, and those the body makes
    # batched (from a batched const or another batched carry); iterate to the fixed point.
    carry_bat = [d is not None for d in init_dims]
    for _ in range(len(carry_bat) + 1):
        dims_in = bdims + [0 if b else None for b in carry_bat]
        body_b, out_bat = batch_jaxpr(body_jaxpr, dims_in, axis_size, carry_bat)
        if out_bat == carry_bat:
            break
        carry_bat = [a or b for a, b in zip(carry_bat, out_bat)]
    carry_dims = [0 if b else None for b in carry_bat]
    cond_b, (pred_bat,) = batch_jaxpr(cond_jaxpr, cdims + carry_dims, axis_size, False)
    if pred_bat and not all(carry_bat):  # lanes stop at different times: all carries per lane
        carry_dims = [0] * len(carry_dims)
        body_b, _ = batch_jaxpr(body_jaxpr, bdims + carry_dims, axis_size, True)
        cond_b, _ = batch_jaxpr(cond_jaxpr, cdims + carry_dims, axis_size, False)
    init = [matchaxis(x, d, t, axis_size) for x, d, t in zip(init, init_dims, carry_dims)]
    if not pred_bat:
        outs = while_p.bind(*cconsts, *bconsts, *init, body_jaxpr=body_b, body_nconsts=bn,
                            cond_jaxpr=cond_b, cond_nconsts=cn)
        return outs, carry_dims
    # A batched predicate: loop while any lane is running; the body updates running lanes
    # only (it needs the cond's consts to know which lanes those are).
    def any_running(*args: Any) -> list[Any]:
        return [reduce_or(eval_jaxpr(cond_b.jaxpr, cond_b.consts, *args)[0], (0,))]

    def masked_body(*args: Any) -> list[Any]:
        cc, bc, carry = _split(args, cn, bn)
        running = eval_jaxpr(cond_b.jaxpr, cond_b.consts, *cc, *carry)[0]
        new = eval_jaxpr(body_b.jaxpr, body_b.consts, *bc, *carry)
        return [select_n(broadcast_lanes(running, old), old, x) for old, x in zip(carry, new)]

    cond_any = trace_to_jaxpr(any_running, cond_b.in_avals)
    body_masked = trace_to_jaxpr(masked_body, cond_b.in_avals[:cn] + body_b.in_avals)
    outs = while_p.bind(*cconsts, *cconsts, *bconsts, *init, body_jaxpr=body_masked,
                        body_nconsts=cn + bn, cond_jaxpr=cond_any, cond_nconsts=cn)
    return outs, carry_dims


while_p.def_impl(_while_impl)
while_p.cache_abstract_eval = False  # params hold jaxprs: new objects on every call
while_p.def_abstract_eval(_while_abstract_eval)
while_p.def_jvp(_while_jvp)
while_p.partial_eval = _while_partial_eval
# Its JVP is linear in the tangent carries, but it cannot be transposed: the rule raises
# JAX's error (reverse mode needs scan or fori_loop with static bounds).
while_p.def_transpose(_while_transpose)
while_p.linear_args = "the tangent carries of its JVP (its transpose raises)"
while_p.def_batch(_while_batch)


__all__ = ["while_loop"]
