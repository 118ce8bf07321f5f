"""Conditionals: ``cond`` and ``switch``, both one primitive, ``cond``.

``cond[branches] index *operands`` applies ``branches[index]`` (closed jaxprs
of identical signature) to the operands; ``switch`` is the n-way form and
``cond(pred, true_fun, false_fun)`` is ``switch`` with ``branches =
(false_fun, true_fun)`` and ``index = int32(pred)``, exactly as in JAX.

Conventions, all JAX's:

* Both (all) branches are *always* traced, even when the predicate is a
  concrete value, so an error in the untaken branch surfaces eagerly too;
  only the chosen branch is evaluated.
* Branch outputs must agree in pytree structure, shape and dtype (weak types
  may differ); the result takes the types of ``branches[0]`` (``false_fun``
  for ``cond``), weak type included.
* ``switch`` clamps the index into ``[0, len(branches) - 1]``.
* Under ``vmap`` a *batched* index cannot pick one branch for every lane:
  every branch runs on the whole batch and ``select_n`` picks each lane's
  result. Operands fed to branch ``i`` go through ``select(index == i, x,
  stop_gradient(x))`` so that a lane's gradient never flows through a branch
  it did not take (a NaN there would otherwise leak in, as ``0 * inf``).
* Reverse mode: partial evaluation splits every branch into a known part
  (the primal outputs and residuals) and an unknown, linear part. Branches
  must agree on one residual list, so each returns the union of all
  branches' residuals, zeros in the slots it does not produce.

Everything a branch closes over (arrays, tracers of enclosing transforms)
becomes an explicit operand (``common.stage``), so every rule sees it.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.config import config
from fgrad.core import dtypes
from fgrad.core.ad_util import Zero, is_undefined_primal, tangent_aval
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, Var, eval_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.pytree import PyTreeDef, tree_flatten, tree_unflatten
from fgrad.core.staging import trace_to_jaxpr
from fgrad.core.trace import Tracer, eval_trace, set_current_trace
from fgrad.primitives.control_flow.common import describe_type_mismatch, stage
from fgrad.primitives.custom_derivatives import stop_gradient
from fgrad.primitives.elementwise import convert_element_type, eq, ne, select_n
from fgrad.primitives.elementwise import max as lax_max, min as lax_min
from fgrad.primitives.shape import broadcast_in_dim, full

# --- helpers shared with loops.py ------------------------------------------------------------


def same_types(a: Sequence[ShapedArray], b: Sequence[ShapedArray]) -> bool:
    """Equal length, shapes and dtypes (weak types may differ, as in JAX's typematch)."""
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype
                                    for x, y in zip(a, b))


def avals_str(avals: Sequence[ShapedArray]) -> str:
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


def eval_eagerly(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """Run ``closed`` on numpy values with each primitive's impl (an impl's sub-jaxprs)."""
    with set_current_trace(eval_trace):
        outs = eval_jaxpr(closed.jaxpr, closed.consts, *args)
    return [x._value if isinstance(x, Array) else x for x in outs]


def concrete_value(x: Any) -> Any:
    """The value of ``x`` if known now (an array, or a tracer that knows it), else None."""
    return x.to_concrete_value() if isinstance(x, Tracer) else x


def canonical_leaves(tree: Any, where: str) -> tuple[list[Any], PyTreeDef, list[ShapedArray]]:
    """Flatten ``tree`` into fgrad values, its structure and their avals."""
    from fgrad.transforms import api_util
    leaves, treedef = tree_flatten(tree)
    leaves = api_util.canonicalize_leaves(leaves, where)
    return leaves, treedef, [get_aval(x) for x in leaves]


def merge_consts(staged: Sequence[tuple[ClosedJaxpr, list[Any]]]
                 ) -> tuple[list[ClosedJaxpr], list[Any]]:
    """Give several staged jaxprs one shared list of leading const inputs.

    Each ``(jaxpr, consts)`` takes ``(*consts, *args)``; the results all take
    ``(*merged, *args)``, where ``merged`` holds every distinct const once
    (the same closed-over array in two branches is passed once).
    """
    merged: list[Any] = []
    position: dict[int, int] = {}
    for _, consts in staged:
        for c in consts:
            if id(c) not in position:
                position[id(c)] = len(merged)
                merged.append(c)
    out = []
    for closed, consts in staged:
        j = closed.jaxpr
        own = {position[id(c)]: v for c, v in zip(consts, j.invars)}
        const_vars = [own[k] if k in own else Var(get_aval(c)) for k, c in enumerate(merged)]
        invars = const_vars + j.invars[len(consts):]
        out.append(ClosedJaxpr(Jaxpr(j.constvars, invars, j.outvars, j.eqns), closed.consts))
    return out, merged


def batch_jaxpr(closed: ClosedJaxpr, in_dims: Sequence[int | None], axis_size: int,
                instantiate: bool | Sequence[bool]) -> tuple[ClosedJaxpr, list[bool]]:
    """The jaxpr of ``vmap(closed)``: inputs batched along ``in_dims`` (None: unbatched).

    Batched outputs come out with the batch axis first; outputs listed in
    ``instantiate`` are batched (broadcast) even if they do not vary. Returns
    the jaxpr and which outputs are batched.
    """
    # Imported here: rules apply transforms to sub-jaxprs (the sanctioned exception to
    # the layering of STYLE c.2).
    from fgrad.transforms import vmap
    batched, out_dims = vmap.batch_jaxpr(closed, in_dims, axis_size, out_dims_wanted=0,
                                         instantiate=instantiate)
    return batched, [d is not None for d in out_dims]


# --- the public functions ---------------------------------------------------------------------


def cond(pred: Any, true_fun: Callable[..., Any], false_fun: Callable[..., Any],
         *operands: Any) -> Any:
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, as one primitive.

    JAX's ``jax.lax.cond(pred, true_fun, false_fun, *operands)``. ``pred`` is
    a scalar bool (or a number, compared with 0). Both functions are traced
    and must return the same pytree structure, shapes and dtypes; only the
    chosen one runs. Under ``vmap`` with a batched ``pred`` both run and
    ``select`` combines them; ``grad``, ``jvp`` and ``jit`` see one ``cond``.

    >>> import fgrad, fgrad.numpy as fnp
    >>> cond(fnp.float32(2.0) > 1.0, lambda x: x * 10.0, lambda x: x, 3.0)
    Array(30., dtype=float32, weak_type=True)

    Raises:
      TypeError: ``pred`` is not a scalar bool or number, a function is not
        callable, or the branches' outputs differ in structure or type.
    """
    if not (callable(true_fun) and callable(false_fun)):
        raise TypeError("lax.cond: true_fun and false_fun arguments should be callable.")
    if pred is None:
        raise TypeError("cond predicate is None")
    if isinstance(pred, (list, tuple)):
        raise TypeError(f"Pred must be a scalar, got {pred} of type {type(pred)}")
    pred = _scalar(pred, "cond", "Pred")
    aval = get_aval(pred)
    if not dtypes.is_bool(aval.dtype):
        if not (dtypes.is_int(aval.dtype) or dtypes.is_float(aval.dtype)):
            raise TypeError(f"Pred type must be either boolean or number, got {aval.dtype}.")
        pred = ne(pred, full((), 0, aval.dtype))
    if config.disable_jit:
        value = concrete_value(pred)
        if value is not None:
            return true_fun(*operands) if bool(np.asarray(value)) else false_fun(*operands)
    index = convert_element_type(pred, np.int32)
    # Traced true_fun first (JAX's order: its errors surface first), bound as (false, true).
    return _bind_cond("cond", index, [("true_fun", true_fun), ("false_fun", false_fun)],
                      operands, branch_order=(1, 0))


def switch(index: Any, branches: Sequence[Callable[..., Any]], *operands: Any) -> Any:
    """``branches[clamp(index, 0, len(branches) - 1)](*operands)``, as one primitive.

    JAX's ``jax.lax.switch(index, branches, *operands)``: ``index`` is an
    integer scalar, converted to int32 and clamped into range (so -3 picks
    the first branch and 99 the last). All branches are traced and must
    return the same structure, shapes and dtypes.

    >>> switch(5, [lambda x: x + 1.0, lambda x: x * 2.0], 3.0)
    Array(6., dtype=float32, weak_type=True)

    Raises:
      TypeError: ``index`` is not an integer scalar, a branch is not callable,
        or the branches' outputs differ.
      ValueError: ``branches`` is empty.
    """
    branches = tuple(branches)
    if not all(callable(b) for b in branches):
        raise TypeError("lax.switch: branches argument should be a sequence of callables.")
    index = _scalar(index, "switch", "Branch index")
    aval = get_aval(index)
    if not dtypes.is_int(aval.dtype):
        raise TypeError(f"Index type must be an integer, got {index} as {aval.dtype}")
    if not branches:
        raise ValueError("Empty branch sequence")
    if len(branches) == 1:
        return branches[0](*operands)
    index = convert_element_type(index, np.int32)
    index = lax_min(lax_max(index, full((), 0, np.int32)),
                    full((), len(branches) - 1, np.int32))
    if config.disable_jit:
        value = concrete_value(index)
        if value is not None:
            return branches[int(np.asarray(value))](*operands)
    named = [(f"branch {i}", b) for i, b in enumerate(branches)]
    return _bind_cond("switch", index, named, operands, tuple(range(len(branches))))


def _scalar(x: Any, api: str, what: str) -> Any:
    from fgrad.transforms import api_util
    x = api_util.canonicalize_arg(x, api)
    if get_aval(x).shape != ():
        raise TypeError(f"{what} must be a scalar, got {x} of shape {get_aval(x).shape}.")
    return x


def _bind_cond(api: str, index: Any, named_funs: Sequence[tuple[str, Callable[..., Any]]],
               operands: tuple[Any, ...], branch_order: Sequence[int]) -> Any:
    """Stage every function (in the given order), check them, and bind ``cond_p``.

    ``branch_order[k]`` is the position in ``named_funs`` of branch ``k``.
    """
    leaves, in_tree, avals = canonical_leaves(tuple(operands), api)
    staged = [stage(fun, avals, in_tree, f"{api} {name}") for name, fun in named_funs]
    _check_branch_outputs(api, [name for name, _ in named_funs],
                          [(out_tree, closed.out_avals) for closed, _, out_tree in staged])
    ordered = [staged[k] for k in branch_order]
    jaxprs, consts = merge_consts([(closed, c) for closed, c, _ in ordered])
    outs = cond_p.bind(index, *consts, *leaves, branches=tuple(jaxprs))
    return tree_unflatten(staged[0][2], outs)


def _check_branch_outputs(api: str, names: Sequence[str],
                          outs: Sequence[tuple[PyTreeDef, list[ShapedArray]]]) -> None:
    tree0, avals0 = outs[0]
    for name, (tree, avals) in zip(names[1:], outs[1:]):
        why = describe_type_mismatch(f"{names[0]} output", tree0, avals0,
                                     f"{name} output", tree, avals)
        if why is None:
            continue
        if tree != tree0:
            raise TypeError(f"{api} branch outputs must have the same pytree structure, but "
                            f"they differ: {why}")
        raise TypeError(f"{api} branches must have equal output types, but they differ: "
                        f"{why}")


# --- cond: the primitive ------------------------------------------------------------------------

cond_p = Primitive("cond", multiple_results=True)


def _cond_abstract_eval(index: ShapedArray, *avals: ShapedArray,
                        branches: tuple[ClosedJaxpr, ...]) -> list[ShapedArray]:
    if not branches:
        raise FgradTypeError("cond: needs at least one branch")
    if index.shape != () or index.dtype != np.int32:
        raise FgradTypeError(f"cond: the branch index must be an int32 scalar, got "
                             f"{index.str_short()}")
    out0 = branches[0].out_avals
    for i, branch in enumerate(branches):
        if not same_types(branch.in_avals, avals):
            raise FgradTypeError(f"cond: branch {i} takes {avals_str(branch.in_avals)} but "
                                 f"the operands are {avals_str(avals)}")
        if not same_types(branch.out_avals, out0):
            raise FgradTypeError(f"cond: branch {i} returns {avals_str(branch.out_avals)} "
                                 f"but branch 0 returns {avals_str(out0)}")
    return list(out0)


def _cond_impl(index: np.ndarray, *args: np.ndarray,
               branches: tuple[ClosedJaxpr, ...]) -> list[np.ndarray]:
    # NOTE: out of range picks the nearest branch (switch clamps before binding anyway).
    i = int(np.clip(index, 0, len(branches) - 1))
    return eval_eagerly(branches[i], args)


def _cond_jvp(primals: Sequence[Any], tangents: Sequence[Any], *,
              branches: tuple[ClosedJaxpr, ...]) -> tuple[list[Any], list[Any]]:
    from fgrad.transforms.jvp import jvp_jaxpr
    index, *ops = primals
    ops_nz = [type(t) is not Zero for t in tangents[1:]]
    # An output tangent is nonzero if it is in any branch; then every branch must produce it.
    first = [jvp_jaxpr(b, ops_nz, instantiate=False) for b in branches]
    out_nz = [any(nzs) for nzs in zip(*(nz for _, nz in first))]
    jvps = tuple(j if nz == out_nz else jvp_jaxpr(b, ops_nz, instantiate=out_nz)[0]
                 for (j, nz), b in zip(first, branches))
    nz_tangents = [t for t in tangents[1:] if type(t) is not Zero]
    outs = cond_p.bind(index, *ops, *nz_tangents, branches=jvps)
    n = len(out_nz)
    rest = iter(outs[n:])
    out_avals = branches[0].out_avals
    return outs[:n], [next(rest) if nz else Zero(tangent_aval(a))
                      for nz, a in zip(out_nz, out_avals)]


def _cond_partial_eval(trace: Any, args: Sequence[Any], params: dict[str, Any]) -> list[Any]:
    from fgrad.transforms.partial_eval import (dce_closed_outputs, partial_eval_jaxpr,
                                               residual_avals)
    branches = params["branches"]
    index, *ops = args
    if trace.is_own(index):  # which branch runs is unknown: stage the whole cond
        return trace.emit(cond_p, [trace.to_atom(x) for x in args], params)
    ops_uk = [trace.is_own(x) for x in ops]
    first = [partial_eval_jaxpr(b, ops_uk) for b in branches]
    out_uks = [any(uks) for uks in zip(*(f[2] for f in first))]
    splits = [f if f[2] == out_uks else partial_eval_jaxpr(b, ops_uk, instantiate=out_uks)
              for f, b in zip(first, branches)]
    n_known = len(out_uks) - sum(out_uks)
    if any(out_uks):
        all_res, slots = _merge_residuals([residual_avals(s[1], s[3]) for s in splits])
        known = tuple(_join_residual_outputs(s[0], n_known, all_res, idx)
                      for s, idx in zip(splits, slots))
        unknown = tuple(_join_residual_inputs(s[1], s[3], all_res, idx)
                        for s, idx in zip(splits, slots))
    else:  # nothing unknown comes out: the known half needs no residuals
        known = tuple(dce_closed_outputs(s[0], [True] * n_known + [False] * s[3])
                      for s in splits)
    known_outs: list[Any] = []
    if known[0].out_avals:  # (a cond with no outputs would compute nothing)
        with set_current_trace(trace.parent):
            known_outs = cond_p.bind(index, *[x for x, uk in zip(ops, ops_uk) if not uk],
                                     branches=known)
    known_outs, residuals = known_outs[:n_known], known_outs[n_known:]
    unknown_outs: list[Any] = []
    if any(out_uks):
        atoms = [trace.to_atom(x) for x in [index, *residuals]] + \
                [trace.to_atom(x) for x, uk in zip(ops, ops_uk) if uk]
        unknown_outs = trace.emit(cond_p, atoms, dict(params, branches=unknown))
    known_iter, unknown_iter = iter(known_outs), iter(unknown_outs)
    return [next(unknown_iter) if uk else next(known_iter) for uk in out_uks]


def _merge_residuals(per_branch: Sequence[list[ShapedArray]]
                     ) -> tuple[list[ShapedArray], list[list[int]]]:
    """One residual list for all branches, reusing slots of equal type across branches.

    ``[x], [y], [x, x] -> [x, y, x]`` with slots ``[[0], [1], [0, 2]]``: the
    k-th residual of a given type in each branch shares one slot.
    """
    tagged = []
    for avals in per_branch:
        counts: dict[ShapedArray, itertools.count[int]] = {}
        tagged.append([(a, next(counts.setdefault(a, itertools.count()))) for a in avals])
    order = list(dict.fromkeys(t for branch in tagged for t in branch))
    slot = {t: i for i, t in enumerate(order)}
    return [a for a, _ in order], [[slot[t] for t in branch] for branch in tagged]


def _join_residual_outputs(known: ClosedJaxpr, n_out: int, all_res: Sequence[ShapedArray],
                           slots: Sequence[int]) -> ClosedJaxpr:
    """``known`` returning ``all_res`` (zeros in the slots this branch does not fill)."""
    def fun(*args: Any) -> list[Any]:
        outs = eval_jaxpr(known.jaxpr, known.consts, *args)
        res: list[Any] = [None] * len(all_res)
        for k, r in zip(slots, outs[n_out:]):
            res[k] = r
        return outs[:n_out] + [full(a.shape, 0, a.dtype) if r is None else r
                               for r, a in zip(res, all_res)]

    return trace_to_jaxpr(fun, known.in_avals)


def _join_residual_inputs(unknown: ClosedJaxpr, num_res: int, all_res: Sequence[ShapedArray],
                          slots: Sequence[int]) -> ClosedJaxpr:
    """``unknown`` taking all of ``all_res`` first (ignoring the slots it does not read)."""
    j = unknown.jaxpr
    own = dict(zip(slots, j.invars[:num_res]))
    res_vars = [own[k] if k in own else Var(a) for k, a in enumerate(all_res)]
    jaxpr = Jaxpr(j.constvars, res_vars + j.invars[num_res:], j.outvars, j.eqns)
    return ClosedJaxpr(jaxpr, unknown.consts)


def _cond_transpose(cts: Sequence[Any], index: Any, *args: Any,
                    branches: tuple[ClosedJaxpr, ...]) -> list[Any]:
    from fgrad.transforms.jvp import instantiate_zeros
    from fgrad.transforms.transpose import transpose_jaxpr
    if is_undefined_primal(index):
        raise ValueError("cond: cannot transpose with respect to the branch index")
    linear = [is_undefined_primal(x) for x in args]
    transposed = tuple(transpose_jaxpr(b, linear) for b in branches)
    residuals = [x for x in args if not is_undefined_primal(x)]
    cts_in = iter(cond_p.bind(index, *residuals, *map(instantiate_zeros, cts),
                              branches=transposed))
    return [None] + [next(cts_in) if lin else None for lin in linear]


def _cond_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                branches: tuple[ClosedJaxpr, ...]) -> tuple[list[Any], list[int | None]]:
    index, *ops = vals
    index_dim, *op_dims = dims
    if index_dim is not None:
        return _cond_batch_select(index, index_dim, ops, op_dims, axis_size, branches)
    # One branch for the whole batch: batch each branch, agreeing on which outputs vary.
    natural = [batch_jaxpr(b, op_dims, axis_size, False) for b in branches]
    out_batched = [any(bs) for bs in zip(*(bs for _, bs in natural))]
    batched = tuple(j if bs == out_batched else batch_jaxpr(b, op_dims, axis_size, out_batched)[0]
                    for (j, bs), b in zip(natural, branches))
    outs = cond_p.bind(index, *ops, branches=batched)
    return outs, [0 if b else None for b in out_batched]


def _cond_batch_select(index: Any, index_dim: int, ops: Sequence[Any],
                       op_dims: Sequence[int | None], axis_size: int,
                       branches: tuple[ClosedJaxpr, ...]) -> tuple[list[Any], list[int]]:
    """A batched index: run every branch on the whole batch, then select per lane."""
    from fgrad.transforms.vmap import bdim_at_front
    index = bdim_at_front(index, index_dim, axis_size)
    ops = [bdim_at_front(x, d, axis_size) for x, d in zip(ops, op_dims)]
    results = []
    for i, branch in enumerate(branches):
        batched, _ = batch_jaxpr(branch, [0] * len(ops), axis_size, True)
        taken = eq(index, full((axis_size,), i, np.int32))
        # Lanes that do not take branch i see its inputs through stop_gradient: no gradient
        # (not even a NaN from 0 * inf) flows back through a branch a lane did not take.
        guarded = [select_n(broadcast_lanes(taken, x), stop_gradient(x), x)
                   if dtypes.is_float(get_aval(x).dtype) else x for x in ops]
        results.append(eval_jaxpr(batched.jaxpr, batched.consts, *guarded))
    outs = [select_n(broadcast_lanes(index, cases[0]), *cases) for cases in zip(*results)]
    return outs, [0] * len(outs)


def broadcast_lanes(per_lane: Any, like: Any) -> Any:
    """Broadcast a per-lane ``(B,)`` array to ``like``'s shape ``(B, ...)``."""
    shape = get_aval(like).shape
    return per_lane if len(shape) == 1 else broadcast_in_dim(per_lane, shape, (0,))


cond_p.def_impl(_cond_impl)
cond_p.cache_abstract_eval = False  # params hold jaxprs: new objects on every call
cond_p.def_abstract_eval(_cond_abstract_eval)
cond_p.def_jvp(_cond_jvp)
cond_p.partial_eval = _cond_partial_eval
cond_p.def_transpose(_cond_transpose)
cond_p.linear_args = "the operands its branches are linear in (never the index)"
cond_p.def_batch(_cond_batch)


__all__ = ["cond", "switch"]
