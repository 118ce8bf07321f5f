"""``make_jaxpr`` and ``eval_shape``: look at a function without running it."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from fgrad.core.avals import ShapeDtypeStruct, get_aval
from fgrad.core.errors import api_boundary
from fgrad.core.jaxpr import ClosedJaxpr
from fgrad.core.pytree import tree_flatten, tree_map, tree_unflatten
from fgrad.core.staging import trace_to_jaxpr
from fgrad.transforms import api_util


def _abstractify(x: Any, where: str) -> Any:
    if isinstance(x, ShapeDtypeStruct):
        from fgrad.core.avals import ShapedArray
        return ShapedArray(x.shape, x.dtype, x.weak_type)
    return get_aval(api_util.canonicalize_arg(x, where))


def make_jaxpr(fun: Callable[..., Any], static_argnums: int | Sequence[int] = (),
               return_shape: bool = False) -> Callable[..., Any]:
    """A function that returns ``fun``'s jaxpr for the given example arguments.

    >>> import fgrad, fgrad.numpy as fnp
    >>> print(fgrad.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(1.0))
    { lambda ; a:f32[]. let
        b:f32[] = sin a
        c:f32[] = mul b 2.0:f32[]
      in (c,) }
    """
    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @api_boundary
    def make_jaxpr_fun(*args: Any, **kwargs: Any) -> Any:
        static = {i % len(args): args[i] for i in nums}
        dyn = [a for i, a in enumerate(args) if i not in static]

        def call(*dyn_args: Any) -> Any:
            it = iter(dyn_args)
            full = [static[i] if i in static else next(it) for i in range(len(args))]
            return fun(*full, **kwargs)

        leaves, in_tree = tree_flatten(tuple(dyn))
        avals = [_abstractify(x, "make_jaxpr") for x in leaves]
        flat_fun, out_tree = api_util.flatten_fun(call, in_tree, "make_jaxpr")
        closed: ClosedJaxpr = trace_to_jaxpr(flat_fun, avals)
        if return_shape:
            shapes = [ShapeDtypeStruct(a.shape, a.dtype, a.weak_type) for a in closed.out_avals]
            return closed, tree_unflatten(out_tree.value, shapes)
        return closed

    return make_jaxpr_fun


def eval_shape(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """The output shapes and dtypes of ``fun(*args)`` (``ShapeDtypeStruct``s), computing nothing."""
    _, shapes = make_jaxpr(lambda *a: fun(*a, **kwargs), return_shape=True)(*args)
    return shapes


__all__ = ["make_jaxpr", "eval_shape", "tree_map"]
