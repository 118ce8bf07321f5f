"""User-defined derivatives and rematerialisation: ``custom_jvp``, ``custom_vjp``,
``checkpoint``, ``stop_gradient``.

Each is a *call primitive* holding a closed jaxpr of the user's function:

* ``custom_jvp_call[call_jaxpr, jvp]``: evaluates ``call_jaxpr``; its JVP rule
  calls the user's ``jvp`` function instead of differentiating the jaxpr.
* ``custom_vjp_call[call_jaxpr, fwd, bwd]``: its JVP runs the user's ``fwd``
  (primal outputs and residuals) and emits ``custom_lin``, a linear primitive
  whose transpose calls the user's ``bwd``. Forward mode over ``custom_lin``
  is an error, as in JAX: a VJP gives no JVP.
* ``checkpoint[jaxpr]``: evaluates ``jaxpr``; under partial evaluation it
  saves only its inputs, and the backward pass recomputes the rest.
* ``stop_gradient``: identity with a zero derivative.

Their rules apply transforms to sub-jaxprs, so they import those transforms
inside the rule functions (the sanctioned exception to the layering).

Under ``vmap`` the user's rules are batched along with the function (the
batched ``custom_jvp_call`` carries a vmapped ``jvp``, the batched
``custom_vjp_call`` a vmapped ``fwd``/``bwd``), so ``grad(vmap(f))`` still
uses the custom rule. Their outputs are always batched at axis 0.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.ad_util import Zero, is_undefined_primal, tangent_aval
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import ClosedJaxpr, eval_closed_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.core.pytree import tree_flatten, tree_unflatten
from fgrad.core.staging import trace_to_jaxpr
from fgrad.core.trace import Tracer, set_current_trace
from fgrad.primitives.rules import defjvp_zero, standard_primitive


def _stage(fun: Callable[..., Any], args: Sequence[Any], where: str
           ) -> tuple[ClosedJaxpr, list[Any], Any, list[Any]]:
    """Flatten ``args``, stage ``fun`` and hoist tracer constants into arguments.

    Returns ``(jaxpr, leaves, out_tree, hoisted)``; the jaxpr takes
    ``(*hoisted, *leaves)``.
    """
    from fgrad.transforms import api_util
    from fgrad.transforms.jit import hoist_tracer_consts
    leaves, in_tree = tree_flatten(tuple(args))
    leaves = api_util.canonicalize_leaves(leaves, where)
    flat_fun, out_tree = api_util.flatten_fun(fun, in_tree, where)
    closed = trace_to_jaxpr(flat_fun, [get_aval(x) for x in leaves])
    closed, hoisted = hoist_tracer_consts(closed)
    return closed, leaves, out_tree.value, hoisted


def _call_abstract_eval(*avals: ShapedArray, call_jaxpr: ClosedJaxpr, **_: Any
                        ) -> list[ShapedArray]:
    return call_jaxpr.out_avals


def _call_impl(*args: Any, call_jaxpr: ClosedJaxpr, **_: Any) -> list[Any]:
    return eval_closed_jaxpr(call_jaxpr, *args)


def _check_tangent_tree(where: str, primal_out: Sequence[Any], tangent_out: Sequence[Any]
                        ) -> None:
    for p, t in zip(primal_out, tangent_out):
        p_aval, t_aval = get_aval(p), get_aval(t)
        if p_aval.shape != t_aval.shape or (dtypes.is_float(p_aval.dtype)
                                            and p_aval.dtype != t_aval.dtype):
            raise TypeError(f"{where}: the custom rule returned a tangent of type "
                            f"{t_aval.str_short()} for a primal output of type "
                            f"{p_aval.str_short()}; they must match in shape and dtype")


# --- custom_jvp ---------------------------------------------------------------------------

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)


def _custom_jvp_call_jvp(primals: Sequence[Any], tangents: Sequence[Any], *,
                         call_jaxpr: ClosedJaxpr, jvp: Callable[..., Any],
                         num_hoisted: int) -> tuple[list[Any], list[Any]]:
    from fgrad.transforms.jvp import instantiate_zeros
    if any(type(t) is not Zero for t in tangents[:num_hoisted]):
        raise NotImplementedError(
            "custom_jvp: the function closes over a value that is being differentiated by an "
            "outer transform; pass that value as an explicit argument instead")
    primals_out, tangents_out = jvp(primals[num_hoisted:],
                                    [instantiate_zeros(t) for t in tangents[num_hoisted:]])
    return list(primals_out), list(tangents_out)


def _check_no_batched_closure(where: str, hoisted_dims: Sequence[int | None]) -> None:
    # The user's rule would see such a value as a tracer of the vmap that has handed the
    # primitive on, not as an argument: it cannot be batched along with the rule.
    if any(d is not None for d in hoisted_dims):
        raise NotImplementedError(
            f"{where}: differentiating a function that closes over a value batched by an "
            "enclosing vmap is not supported; pass that value as an explicit argument instead")


def _custom_jvp_call_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                           call_jaxpr: ClosedJaxpr, jvp: Callable[..., Any],
                           num_hoisted: int) -> tuple[list[Any], list[int]]:
    # Batch the function *and* its rule, so that differentiating the batched function still
    # uses the user's rule. Every output is batched at 0 (broadcast if need be): the rule's
    # outputs must have the same types as the function's, whatever either depends on.
    from fgrad.transforms.vmap import batch_flat, batch_jaxpr, matchaxis
    batched, out_dims = batch_jaxpr(call_jaxpr, dims, axis_size, out_dims_wanted=0,
                                    instantiate=True)
    n_out, arg_dims = len(out_dims), list(dims[num_hoisted:])

    def batched_jvp(primals: Sequence[Any], tangents: Sequence[Any]
                    ) -> tuple[list[Any], list[Any]]:
        _check_no_batched_closure("custom_jvp", dims[:num_hoisted])
        # A tangent has its primal's (batched) type, so it has the primal's batch axis.
        n = len(primals)
        outs, got = batch_flat(lambda *xs: [*(o for part in jvp(xs[:n], xs[n:]) for o in part)],
                               [*primals, *tangents], arg_dims * 2, axis_size)
        outs = [matchaxis(o, d, 0, axis_size) for o, d in zip(outs, got)]
        return outs[:n_out], outs[n_out:]

    batched_jvp.__name__ = f"vmap({getattr(jvp, '__name__', 'jvp')})"
    outs = custom_jvp_call_p.bind(*vals, call_jaxpr=batched, jvp=batched_jvp,
                                  num_hoisted=num_hoisted)
    return outs, out_dims


custom_jvp_call_p.def_impl(_call_impl)
custom_jvp_call_p.cache_abstract_eval = False
custom_jvp_call_p.def_abstract_eval(_call_abstract_eval)
custom_jvp_call_p.def_jvp(_custom_jvp_call_jvp)
custom_jvp_call_p.def_batch(_custom_jvp_call_batch)
custom_jvp_call_p.declare_missing("transpose", "a custom_jvp function is not linear in general")


class custom_jvp:  # noqa: N801 (JAX's name)
    """A function with a user-defined JVP rule.

    >>> import fgrad, fgrad.numpy as fnp
    >>> @fgrad.custom_jvp
    ... def f(x):
    ...     return fnp.sin(x)
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return f(x), 2.0 * t   # a deliberately "wrong" derivative
    >>> fgrad.grad(f)(0.0)
    Array(2., dtype=float32, weak_type=True)
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()) -> None:
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp: Callable[..., Any] | None = None
        functools.update_wrapper(self, fun, updated=())  # keep our own attributes

    def defjvp(self, jvp: Callable[..., Any], symbolic_zeros: bool = False) -> Callable[..., Any]:
        """Register ``jvp(primals, tangents) -> (primal_out, tangent_out)``."""
        self.jvp = jvp
        return jvp

    def defjvps(self, *jvps: Callable[..., Any] | None) -> None:
        """One rule per argument: ``jvps[i](t_i, primal_out, *primals) -> contribution``."""
        def jvp(primals: tuple[Any, ...], tangents: tuple[Any, ...]) -> Any:
            out = self(*primals)
            total = None
            for rule, t in zip(jvps, tangents):
                if rule is None:
                    continue
                contribution = rule(t, out, *primals)
                total = contribution if total is None else _tree_add(total, contribution)
            if total is None:
                from fgrad.core.pytree import tree_map
                from fgrad.primitives.shape import full_like
                total = tree_map(lambda o: full_like(o, 0), out)
            return out, total
        self.jvp = jvp

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from fgrad.transforms import api_util
        name = api_util.fun_name(self.fun)
        if self.jvp is None:
            raise AttributeError(f"No JVP defined for custom_jvp function {name} using defjvp.")
        args = api_util.resolve_kwargs(self.fun, args, kwargs)
        nondiff = {i % len(args) for i in self.nondiff_argnums}
        static = {i: args[i] for i in nondiff}
        dyn = [a for i, a in enumerate(args) if i not in nondiff]

        def merge(dyn_args: Sequence[Any]) -> list[Any]:
            it = iter(dyn_args)
            return [static[i] if i in static else next(it) for i in range(len(args))]

        closed, leaves, out_tree, hoisted = _stage(lambda *d: self.fun(*merge(d)), dyn,
                                                   f"custom_jvp({name})")
        in_tree = tree_flatten(tuple(dyn))[1]
        user_jvp = self.jvp

        def flat_jvp(primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[list[Any], list[Any]]:
            p_args = tree_unflatten(in_tree, primals)
            t_args = tree_unflatten(in_tree, tangents)
            static_args = [static[i] for i in sorted(static)]
            out = user_jvp(*static_args, tuple(p_args), tuple(t_args))
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(f"custom_jvp({name}): the jvp rule must return a pair "
                                "(primal_out, tangent_out)")
            p_out, p_tree = tree_flatten(out[0])
            t_out, t_tree = tree_flatten(out[1])
            if p_tree != out_tree or t_tree != out_tree:
                raise TypeError(f"custom_jvp({name}): the jvp rule returned primal structure "
                                f"{p_tree} and tangent structure {t_tree}, but the function "
                                f"returns {out_tree}")
            _check_tangent_tree(f"custom_jvp({name})", p_out, t_out)
            return p_out, t_out

        flat_jvp.__name__ = api_util.fun_name(user_jvp)
        outs = custom_jvp_call_p.bind(*hoisted, *leaves, call_jaxpr=closed, jvp=flat_jvp,
                                      num_hoisted=len(hoisted))
        return tree_unflatten(out_tree, outs)


def _tree_add(a: Any, b: Any) -> Any:
    from fgrad.core.pytree import tree_map
    from fgrad.primitives.elementwise import add
    return tree_map(add, a, b)


# --- custom_vjp ------------------------------------------------------------------------------

custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)
custom_lin_p = Primitive("custom_lin", multiple_results=True)


def _custom_vjp_call_jvp(primals: Sequence[Any], tangents: Sequence[Any], *,
                         call_jaxpr: ClosedJaxpr, fwd: Callable[..., Any],
                         bwd: Callable[..., Any], num_hoisted: int) -> Any:
    from fgrad.transforms.jvp import instantiate_zeros
    if any(type(t) is not Zero for t in tangents[:num_hoisted]):
        raise NotImplementedError(
            "custom_vjp: the function closes over a value that is being differentiated by an "
            "outer transform; pass that value as an explicit argument instead")
    primals_out, residuals = fwd(primals[num_hoisted:])
    out_avals = [tangent_aval(get_aval(p)) for p in primals_out]
    lin_tangents = [instantiate_zeros(t) for t in tangents[num_hoisted:]]
    tangents_out = custom_lin_p.bind(*residuals, *lin_tangents, num_res=len(residuals),
                                     bwd=bwd, out_avals=tuple(out_avals))
    return list(primals_out), list(tangents_out)


def _custom_lin_impl(*args: Any, **params: Any) -> Any:
    raise TypeError("can't apply forward-mode autodiff (jvp) to a custom_vjp function: it "
                    "defines only a VJP. Use reverse mode (grad, vjp, jacrev), or define the "
                    "function with custom_jvp instead.")


def _custom_lin_transpose(cts: Sequence[Any], *args: Any, num_res: int,
                          bwd: Callable[..., Any], out_avals: tuple[ShapedArray, ...]
                          ) -> list[Any]:
    from fgrad.transforms.jvp import instantiate_zeros
    residuals = args[:num_res]
    cts_in = bwd(residuals, [instantiate_zeros(c) for c in cts])
    return [None] * num_res + list(cts_in)


def _batched_bwd(bwd: Callable[..., Any], res_dims: Sequence[int | None],
                 in_dims: Sequence[int | None], axis_size: int) -> Callable[..., Any]:
    """``bwd`` for batched residuals and output cotangents (batched at 0).

    Returns cotangents laid out like the batched inputs: at the input's batch axis,
    or, for an unbatched input, summed over the batch (every batch element used it).
    """
    from fgrad.primitives.elementwise import mul
    from fgrad.primitives.reductions import reduce_sum
    from fgrad.primitives.shape import full_like
    from fgrad.transforms.vmap import batch_flat, matchaxis

    def bwd_batched(residuals: Sequence[Any], cts: Sequence[Any]) -> list[Any]:
        n_res = len(residuals)
        cts_in, got = batch_flat(lambda *xs: list(bwd(xs[:n_res], xs[n_res:])),
                                 [*residuals, *cts], [*res_dims, *[0] * len(cts)], axis_size)
        out = []
        for ct, src, dst in zip(cts_in, got, in_dims):
            if dst is not None:
                out.append(matchaxis(ct, src, dst, axis_size))
            elif src is not None:
                out.append(reduce_sum(ct, (src,)))
            elif dtypes.is_float(get_aval(ct).dtype):  # the same for each of axis_size uses
                out.append(mul(ct, full_like(ct, axis_size)))
            else:
                out.append(ct)  # integer inputs: zero cotangents
        return out

    bwd_batched.__name__ = f"vmap({getattr(bwd, '__name__', 'bwd')})"
    return bwd_batched


def _custom_vjp_call_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                           call_jaxpr: ClosedJaxpr, fwd: Callable[..., Any],
                           bwd: Callable[..., Any], num_hoisted: int
                           ) -> tuple[list[Any], list[int]]:
    # As for custom_jvp: batch the function and fwd/bwd, all outputs batched at 0. The
    # residuals keep the batch axes fwd gives them (unbatched weights stay unbatched).
    from fgrad.transforms.vmap import batch_flat, batch_jaxpr, matchaxis
    batched, out_dims = batch_jaxpr(call_jaxpr, dims, axis_size, out_dims_wanted=0,
                                    instantiate=True)
    n_out, arg_dims = len(out_dims), list(dims[num_hoisted:])
    box: dict[str, Callable[..., Any]] = {}

    def batched_fwd(primals: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        _check_no_batched_closure("custom_vjp", dims[:num_hoisted])
        outs, got = batch_flat(lambda *xs: [*(o for part in fwd(xs) for o in part)],
                               primals, arg_dims, axis_size)
        primals_out = [matchaxis(o, d, 0, axis_size) for o, d in zip(outs[:n_out], got)]
        box["bwd"] = _batched_bwd(bwd, got[n_out:], arg_dims, axis_size)
        return primals_out, outs[n_out:]

    def batched_bwd(residuals: Sequence[Any], cts: Sequence[Any]) -> list[Any]:
        return box["bwd"](residuals, cts)  # (fwd has always run first: it made them)

    batched_fwd.__name__ = f"vmap({getattr(fwd, '__name__', 'fwd')})"
    batched_bwd.__name__ = f"vmap({getattr(bwd, '__name__', 'bwd')})"
    outs = custom_vjp_call_p.bind(*vals, call_jaxpr=batched, fwd=batched_fwd, bwd=batched_bwd,
                                  num_hoisted=num_hoisted)
    return outs, out_dims


def _custom_lin_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                      num_res: int, bwd: Callable[..., Any],
                      out_avals: tuple[ShapedArray, ...]) -> tuple[list[Any], list[int]]:
    # custom_lin only ever runs transposed, so batching it means batching bwd.
    from fgrad.transforms.vmap import batched_aval
    batched_bwd = _batched_bwd(bwd, dims[:num_res], dims[num_res:], axis_size)
    avals = tuple(batched_aval(a, 0, axis_size) for a in out_avals)
    outs = custom_lin_p.bind(*vals, num_res=num_res, bwd=batched_bwd, out_avals=avals)
    return outs, [0] * len(out_avals)


custom_vjp_call_p.def_impl(_call_impl)
custom_vjp_call_p.cache_abstract_eval = False
custom_vjp_call_p.def_abstract_eval(_call_abstract_eval)
custom_vjp_call_p.def_jvp(_custom_vjp_call_jvp)
custom_vjp_call_p.def_batch(_custom_vjp_call_batch)
custom_vjp_call_p.declare_missing("transpose", "a custom_vjp function is not linear in general")
custom_lin_p.def_impl(_custom_lin_impl)
custom_lin_p.cache_abstract_eval = False
custom_lin_p.def_abstract_eval(lambda *avals, num_res, bwd, out_avals: list(out_avals))
custom_lin_p.def_transpose(_custom_lin_transpose)
custom_lin_p.def_batch(_custom_lin_batch)
custom_lin_p.declare_missing("jvp", "custom_lin only exists to be transposed (custom_vjp's "
                                    "backward pass); differentiate the bwd function instead")
custom_lin_p.linear_args = "all after the residuals"


class custom_vjp:  # noqa: N801 (JAX's name)
    """A function with a user-defined VJP: ``f.defvjp(fwd, bwd)``.

    ``fwd(*args) -> (out, residuals)``; ``bwd(residuals, ct_out) -> tuple`` with one
    cotangent per argument (``None`` for a zero cotangent). With
    ``nondiff_argnums``, ``bwd`` receives those arguments first.
    """

    def __init__(self, fun: Callable[..., Any], nondiff_argnums: Sequence[int] = ()) -> None:
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd: Callable[..., Any] | None = None
        self.bwd: Callable[..., Any] | None = None
        functools.update_wrapper(self, fun, updated=())  # keep our own attributes

    def defvjp(self, fwd: Callable[..., Any], bwd: Callable[..., Any],
               symbolic_zeros: bool = False) -> None:
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from fgrad.transforms import api_util
        name = api_util.fun_name(self.fun)
        if self.fwd is None or self.bwd is None:
            raise AttributeError(f"No VJP defined for custom_vjp function {name} using defvjp.")
        args = api_util.resolve_kwargs(self.fun, args, kwargs)
        nondiff = {i % len(args) for i in self.nondiff_argnums}
        static = {i: args[i] for i in nondiff}
        static_args = [static[i] for i in sorted(static)]
        dyn = [a for i, a in enumerate(args) if i not in nondiff]

        def merge(dyn_args: Sequence[Any]) -> list[Any]:
            it = iter(dyn_args)
            return [static[i] if i in static else next(it) for i in range(len(args))]

        closed, leaves, out_tree, hoisted = _stage(lambda *d: self.fun(*merge(d)), dyn,
                                                   f"custom_vjp({name})")
        in_tree = tree_flatten(tuple(dyn))[1]
        user_fwd, user_bwd = self.fwd, self.bwd
        res_tree_box: list[Any] = []

        def flat_fwd(primals: Sequence[Any]) -> tuple[list[Any], list[Any]]:
            out = user_fwd(*merge(tree_unflatten(in_tree, primals)))
            if not (isinstance(out, (tuple, list)) and len(out) == 2):
                raise TypeError(f"custom_vjp({name}): fwd must return a pair "
                                "(output, residuals)")
            p_out, p_tree = tree_flatten(out[0])
            if p_tree != out_tree:
                raise TypeError(f"custom_vjp({name}): fwd returned output structure {p_tree}, "
                                f"but the function returns {out_tree}")
            res, res_tree = tree_flatten(out[1])
            res_tree_box[:] = [res_tree]
            return p_out, res

        def flat_bwd(residuals: Sequence[Any], cts: Sequence[Any]) -> list[Any]:
            res = tree_unflatten(res_tree_box[0], residuals)
            cts_in = user_bwd(*static_args, res, tree_unflatten(out_tree, cts))
            if not isinstance(cts_in, (tuple, list)) or len(cts_in) != len(dyn):
                raise TypeError(f"custom_vjp({name}): bwd must return a tuple with one "
                                f"cotangent per differentiable argument ({len(dyn)}), got "
                                f"{type(cts_in).__name__}")
            from fgrad.core.pytree import flatten_up_to
            from fgrad.primitives.shape import full
            flat: list[Any] = []
            for arg, ct in zip(dyn, cts_in):
                arg_leaves, arg_tree = tree_flatten(arg)
                # None anywhere in the cotangent (in place of a whole argument or of a
                # subtree) means zeros there, as in JAX.
                if ct is None:
                    subtrees = [None] * len(arg_leaves)
                else:
                    try:
                        subtrees = flatten_up_to(arg_tree, ct)
                    except ValueError as e:
                        raise TypeError(f"custom_vjp({name}): bwd returned a cotangent whose "
                                        f"structure does not match its argument's: {e}"
                                        ) from None
                for x, sub in zip(arg_leaves, subtrees):
                    if sub is None:
                        flat.append(full(np.shape(x), 0, get_aval(x).dtype))
                        continue
                    if tree_flatten(sub)[1].num_leaves != 1 or isinstance(sub, (tuple, list,
                                                                                 dict)):
                        raise TypeError(f"custom_vjp({name}): bwd returned a cotangent of "
                                        f"structure {tree_flatten(ct)[1]} for an argument of "
                                        f"structure {arg_tree}")
                    _check_tangent_tree(f"custom_vjp({name}) bwd", [x], [sub])
                    flat.append(sub)
            return flat

        flat_fwd.__name__ = api_util.fun_name(user_fwd)
        flat_bwd.__name__ = api_util.fun_name(user_bwd)
        outs = custom_vjp_call_p.bind(*hoisted, *leaves, call_jaxpr=closed, fwd=flat_fwd,
                                      bwd=flat_bwd, num_hoisted=len(hoisted))
        return tree_unflatten(out_tree, outs)


# --- checkpoint (remat) ---------------------------------------------------------------------------

checkpoint_p = Primitive("checkpoint", multiple_results=True)


def _checkpoint_jvp(primals: Sequence[Any], tangents: Sequence[Any], *, jaxpr: ClosedJaxpr,
                    prevent_cse: bool) -> tuple[list[Any], list[Any]]:
    from fgrad.transforms.jvp import jvp_jaxpr
    nonzeros = [type(t) is not Zero for t in tangents]
    jvp_closed, out_nz = jvp_jaxpr(jaxpr, nonzeros, instantiate=False)
    outs = checkpoint_p.bind(*primals, *[t for t in tangents if type(t) is not Zero],
                             jaxpr=jvp_closed, prevent_cse=prevent_cse)
    n = len(jaxpr.out_avals)
    rest = iter(outs[n:])
    return outs[:n], [next(rest) if nz else Zero(tangent_aval(a))
                      for nz, a in zip(out_nz, jaxpr.out_avals)]


def _checkpoint_partial_eval(trace: Any, args: Sequence[Any], params: dict[str, Any]) -> Any:
    """Save only the inputs: known outputs now, everything else recomputed when needed."""
    from fgrad.transforms.partial_eval import dce_closed_outputs, partial_eval_jaxpr
    jaxpr = params["jaxpr"]
    unknowns = [trace.is_own(x) for x in args]
    known_jaxpr, _, out_unknowns, num_res = partial_eval_jaxpr(jaxpr, unknowns)
    n_known_out = len(known_jaxpr.out_avals) - num_res
    known_only = dce_closed_outputs(known_jaxpr, [True] * n_known_out + [False] * num_res)
    with set_current_trace(trace.parent):
        known_outs = checkpoint_p.bind(*[x for x, uk in zip(args, unknowns) if not uk],
                                       jaxpr=known_only, prevent_cse=params["prevent_cse"])
    unknown_jaxpr = dce_closed_outputs(jaxpr, out_unknowns)
    unknown_outs = trace.emit(checkpoint_p, [trace.to_atom(x) for x in args],
                              dict(params, jaxpr=unknown_jaxpr))
    known_iter, unknown_iter = iter(known_outs), iter(unknown_outs)
    return [next(unknown_iter) if uk else next(known_iter) for uk in out_unknowns]


def _checkpoint_transpose(cts: Sequence[Any], *args: Any, jaxpr: ClosedJaxpr,
                          prevent_cse: bool) -> list[Any]:
    from fgrad.transforms.jvp import instantiate_zeros
    from fgrad.transforms.transpose import transpose_jaxpr
    linear = [is_undefined_primal(x) for x in args]
    t_jaxpr = transpose_jaxpr(jaxpr, linear)
    residuals = [x for x in args if not is_undefined_primal(x)]
    cts_in = iter(checkpoint_p.bind(*residuals, *map(instantiate_zeros, cts), jaxpr=t_jaxpr,
                                    prevent_cse=prevent_cse))
    return [next(cts_in) if lin else None for lin in linear]


def _checkpoint_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                      jaxpr: ClosedJaxpr, prevent_cse: bool) -> tuple[Any, list[Any]]:
    # The batched body is still a checkpoint: grad(vmap(checkpoint(f))) recomputes it too.
    from fgrad.transforms.vmap import batch_jaxpr
    batched, out_dims = batch_jaxpr(jaxpr, dims, axis_size)
    return checkpoint_p.bind(*vals, jaxpr=batched, prevent_cse=prevent_cse), out_dims


checkpoint_p.def_impl(lambda *args, jaxpr, prevent_cse: eval_closed_jaxpr(jaxpr, *args))
checkpoint_p.cache_abstract_eval = False
checkpoint_p.def_abstract_eval(lambda *avals, jaxpr, prevent_cse: jaxpr.out_avals)
checkpoint_p.def_jvp(_checkpoint_jvp)
checkpoint_p.def_transpose(_checkpoint_transpose)
checkpoint_p.partial_eval = _checkpoint_partial_eval
checkpoint_p.def_batch(_checkpoint_batch)
checkpoint_p.linear_args = "when its jaxpr is"


def checkpoint(fun: Callable[..., Any], *, prevent_cse: bool = True, policy: Any = None,
               static_argnums: int | Sequence[int] = ()) -> Callable[..., Any]:
    """Rematerialise: under ``grad``, save only ``fun``'s inputs and recompute its
    intermediates in the backward pass (less memory, more compute).

    ``policy`` is accepted for JAX compatibility; only "save nothing" is implemented.
    """
    if policy is not None:
        raise NotImplementedError("checkpoint: policies are not supported yet (fgrad saves "
                                  "only the inputs)")
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def remat_fun(*args: Any, **kwargs: Any) -> Any:
        from fgrad.transforms import api_util
        args = api_util.resolve_kwargs(fun, args, kwargs)
        static = {i % len(args): args[i] for i in nums}
        dyn = [a for i, a in enumerate(args) if i not in static]

        def call(*dyn_args: Any) -> Any:
            it = iter(dyn_args)
            return fun(*[static[i] if i in static else next(it) for i in range(len(args))])

        closed, leaves, out_tree, hoisted = _stage(call, dyn,
                                                   f"checkpoint({api_util.fun_name(fun)})")
        outs = checkpoint_p.bind(*hoisted, *leaves, jaxpr=closed, prevent_cse=prevent_cse)
        return tree_unflatten(out_tree, outs)

    return remat_fun


remat = checkpoint


# --- stop_gradient ---------------------------------------------------------------------------------

stop_gradient_p = standard_primitive("stop_gradient", lambda x: x, lambda x: x.shape,
                                     lambda x: x.dtype, lambda x: x.weak_type)
defjvp_zero(stop_gradient_p)
stop_gradient_p.def_batch(lambda vals, dims, *, axis_size: (stop_gradient_p.bind(vals[0]),
                                                             dims[0]))


def stop_gradient(x: Any) -> Any:
    """Identity whose derivative is zero (applied to every leaf of a pytree)."""
    from fgrad.core.pytree import tree_map
    return tree_map(lambda leaf: stop_gradient_p.bind(leaf) if dtypes.is_float(
        get_aval(leaf).dtype) else leaf, x)


__all__ = ["custom_jvp", "custom_vjp", "checkpoint", "remat", "stop_gradient", "Tracer",
           "FgradTypeError"]
