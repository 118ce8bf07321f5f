"""Shared machinery of the control-flow primitives (``cond``, ``while_loop``, ``scan``).

A control-flow primitive holds its branches or loop bodies as *closed
jaxprs* in its params, and everything they read from the enclosing scope
becomes an explicit operand. That second point is what lets every transform
treat the primitive like any other: a value the body closes over (a weight
matrix, or a tracer of an enclosing ``grad``) is just another input, so the
JVP, partial-evaluation, transpose and batching rules see it and handle it.

``stage`` does the conversion: it traces a Python function of pytrees into a
jaxpr whose constants are all turned into leading inputs (JAX calls this
"convert constvars"), and returns those constants so the caller can pass
them as operands. ``check_same_types`` is the one place that says, leaf by
leaf, why two pytrees of types (branch outputs, loop carry in/out) differ.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr
from fgrad.core.pytree import PyTreeDef, tree_flatten, tree_unflatten
from fgrad.core.staging import trace_to_jaxpr


def stage(fun: Callable[..., Any], in_avals_tree: Any, in_tree: PyTreeDef, where: str
          ) -> tuple[ClosedJaxpr, list[Any], PyTreeDef]:
    """Trace ``fun(*args)`` for abstract args into ``(jaxpr, consts, out_tree)``.

    ``in_avals_tree`` is the flat list of input avals and ``in_tree`` the
    pytree structure of the positional-argument tuple they fill. The
    returned jaxpr has no constants: it takes ``(*consts, *flat_args)``.
    """
    from fgrad.transforms import api_util
    flat_fun, out_tree = api_util.flatten_fun(fun, in_tree, where)
    closed = trace_to_jaxpr(flat_fun, list(in_avals_tree))
    jaxpr = closed.jaxpr
    converted = Jaxpr([], jaxpr.constvars + jaxpr.invars, jaxpr.outvars, jaxpr.eqns)
    return ClosedJaxpr(converted, []), list(closed.consts), out_tree.value


def avals_of(leaves: Sequence[Any]) -> list[ShapedArray]:
    return [get_aval(x) for x in leaves]


def leaf_paths(treedef: PyTreeDef, prefix: str = "") -> list[str]:
    """A readable path per leaf of ``treedef``: ``[0]['w'].b`` style, as JAX prints keys."""
    kind = treedef._kind
    if kind is None:
        return [prefix or "(the value)"]
    if kind.name == "dict" or kind.name == "OrderedDict":
        keys = [f"[{k!r}]" for k in treedef._node_data]
    elif kind.name == "namedtuple":
        keys = [f".{f}" for f in treedef._node_data._fields]
    else:
        keys = [f"[{i}]" for i in range(len(treedef._children))]
    return [p for key, child in zip(keys, treedef._children)
            for p in leaf_paths(child, prefix + key)]


def describe_type_mismatch(what_a: str, tree_a: PyTreeDef, avals_a: Sequence[ShapedArray],
                           what_b: str, tree_b: PyTreeDef, avals_b: Sequence[ShapedArray]
                           ) -> str | None:
    """Why two pytrees of avals differ (structure, then leaf types), or None if they match.

    Weak types are ignored (JAX does the same: a weak ``0.0`` carry meets a
    strong float32 body output), shapes and dtypes must be equal.
    """
    if tree_a != tree_b:
        return (f"{what_a} has structure {tree_a} but {what_b} has structure {tree_b}")
    paths = leaf_paths(tree_a)
    bad = [f"  {path}: {a.str_short()} vs {b.str_short()}"
           for path, a, b in zip(paths, avals_a, avals_b)
           if a.shape != b.shape or a.dtype != b.dtype]
    if not bad:
        return None
    return (f"{what_a} and {what_b} must have identical types, but these leaves differ "
            f"({what_a} vs {what_b}):\n" + "\n".join(bad))


__all__ = ["stage", "avals_of", "describe_type_mismatch", "leaf_paths", "tree_flatten", "tree_unflatten"]
