"""Rule constructors: the helpers that make most primitive blocks two lines.

A family file declares a primitive and its rules side by side; these helpers
fill the common cases:

* ``unop`` / ``binop``: an elementwise primitive with its impl and its
  shape/dtype rule (operands strictly equal in shape and dtype: all numpy
  leniency lives in ``fgrad.numpy``);
* ``standard_primitive``: any primitive from a shape rule and a dtype rule;
* ``defjvp``: a JVP from one rule per argument, ``t_i -> ∂f/∂x_i · t_i``,
  summed, skipping symbolic zeros (``defjvp2`` also passes the output);
* ``deflinear``: a primitive linear in all its arguments; its JVP is itself;
* ``defbilinear``: linear in each of two arguments (``mul``, ``dot_general``);
* ``defjvp_zero``: derivative zero by declaration (comparisons, ``floor``);
* batching (``vmap``) rules, see ``transforms/vmap.py``:
  ``defvectorized`` (unary elementwise: apply as is, the batch axis stays
  put), ``defbroadcasting`` (n-ary elementwise: line the operands' batch
  axes up, broadcasting unbatched operands) and ``defreducer`` (an ``axes``
  parameter to shift past the batch axis). ``unop`` and ``binop`` install
  the first two themselves.

Rules are written with fgrad's own strict wrappers, never raw numpy, so
they are themselves differentiable, traceable and batchable.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.ad_util import UndefPrimal, Zero, add_tangents, is_undefined_primal
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive

# dtype "kinds" accepted by an elementwise primitive
FLOAT = "floating-point"
NUMBER = "numeric (int or float)"
INT = "integer"
INT_OR_BOOL = "integer or boolean"
ANY = "any"

_KIND_CHECKS: dict[str, Callable[[np.dtype], bool]] = {
    FLOAT: dtypes.is_float,
    NUMBER: lambda d: dtypes.is_float(d) or dtypes.is_int(d),
    INT: dtypes.is_int,
    INT_OR_BOOL: lambda d: dtypes.is_int(d) or dtypes.is_bool(d),
    ANY: lambda d: True,
}


def check_kind(op: str, kind: str, *avals: ShapedArray) -> None:
    for i, aval in enumerate(avals):
        if not _KIND_CHECKS[kind](aval.dtype):
            pos = f" operand {i}" if len(avals) > 1 else ""
            raise FgradTypeError(f"{op}:{pos} expected a {kind} array, got {aval.str_short()}")


def check_same_types(op: str, *avals: ShapedArray) -> None:
    """Strict elementwise check: equal shapes and equal dtypes (weak types may differ)."""
    first = avals[0]
    for aval in avals[1:]:
        if aval.shape != first.shape:
            raise FgradTypeError(f"{op}: operands must have equal shapes, got "
                                 + ", ".join(a.str_short() for a in avals)
                                 + " (fgrad.numpy broadcasts; fgrad.lax is strict)")
        if aval.dtype != first.dtype:
            raise FgradTypeError(f"{op}: operands must have equal dtypes, got "
                                 + ", ".join(a.str_short() for a in avals)
                                 + " (fgrad.numpy promotes; fgrad.lax is strict)")


def standard_primitive(name: str, impl: Callable[..., Any],
                       shape_rule: Callable[..., tuple[int, ...]],
                       dtype_rule: Callable[..., Any],
                       weak_type_rule: Callable[..., bool] | None = None,
                       multiple_results: bool = False) -> Primitive:
    """A primitive whose abstract eval is ``ShapedArray(shape_rule(...), dtype_rule(...))``.

    The default weak-type rule: the result is weak iff every operand is weak.
    """
    prim = Primitive(name, multiple_results=multiple_results)
    weak_rule = weak_type_rule or (lambda *avals, **_: bool(avals) and all(
        a.weak_type for a in avals))

    def abstract_eval(*avals: ShapedArray, **params: Any) -> ShapedArray:
        shape = shape_rule(*avals, **params)
        dtype = dtype_rule(*avals, **params)
        return ShapedArray(shape, dtype, weak_rule(*avals, **params))

    prim.def_impl(impl)
    prim.def_abstract_eval(abstract_eval)
    return prim


def unop(name: str, impl: Callable[..., Any], kind: str) -> Primitive:
    """Elementwise unary primitive: same shape and dtype out as in; batched by
    ``defvectorized``."""
    def shape_rule(x: ShapedArray, **_: Any) -> tuple[int, ...]:
        check_kind(name, kind, x)
        return x.shape

    prim = standard_primitive(name, impl, shape_rule, lambda x, **_: x.dtype)
    defvectorized(prim)
    return prim


def binop(name: str, impl: Callable[..., Any], kind: str,
          result_dtype: Any = None) -> Primitive:
    """Elementwise binary primitive on equal shapes and dtypes; batched by
    ``defbroadcasting``.

    ``result_dtype`` overrides the output dtype (``bool`` for comparisons).
    """
    def shape_rule(x: ShapedArray, y: ShapedArray, **_: Any) -> tuple[int, ...]:
        check_same_types(name, x, y)
        check_kind(name, kind, x, y)
        return x.shape

    if result_dtype is None:
        prim = standard_primitive(name, impl, shape_rule, lambda x, y, **_: x.dtype)
    else:
        prim = standard_primitive(name, impl, shape_rule,
                                  lambda x, y, **_: np.dtype(result_dtype),
                                  weak_type_rule=lambda *a, **_: False)
    defbroadcasting(prim)
    return prim


# --- JVP constructors ------------------------------------------------------------------

def defjvp(prim: Primitive, *rules: Callable[..., Any] | None) -> None:
    """JVP from one rule per argument: ``rule(t, *primals, **params) -> tangent contribution``.

    A ``None`` rule marks an argument the primitive is not differentiable in.
    """
    def jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
        primal_out = prim.bind(*primals, **params)
        tangent_out: Any = None
        for rule, t in zip(rules, tangents):
            if rule is not None and type(t) is not Zero:
                contribution = rule(t, *primals, **params)
                tangent_out = contribution if tangent_out is None else add_tangents(
                    tangent_out, contribution)
        if tangent_out is None:
            tangent_out = Zero(prim.abstract_eval(*[get_aval(p) for p in primals],
                                                  **params).strip_weak_type())
        return primal_out, tangent_out

    jvp.rules = rules  # type: ignore[attr-defined]  (for fgrad.tools.rules)
    prim.def_jvp(jvp)


def defjvp2(prim: Primitive, *rules: Callable[..., Any] | None) -> None:
    """Like ``defjvp`` but each rule also gets the output: ``rule(t, ans, *primals)``."""
    def jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
        ans = prim.bind(*primals, **params)
        tangent_out: Any = None
        for rule, t in zip(rules, tangents):
            if rule is not None and type(t) is not Zero:
                contribution = rule(t, ans, *primals, **params)
                tangent_out = contribution if tangent_out is None else add_tangents(
                    tangent_out, contribution)
        if tangent_out is None:
            tangent_out = Zero(get_aval(ans).strip_weak_type())
        return ans, tangent_out

    jvp.rules = rules  # type: ignore[attr-defined]  (for fgrad.tools.rules)
    prim.def_jvp(jvp)


def defjvp_zero(prim: Primitive) -> None:
    """The primitive's output does not depend differentiably on its inputs."""
    prim.nondifferentiable = True
    prim.declare_missing("transpose", "not linear (derivative is zero by declaration)")


def deflinear(prim: Primitive, transpose_rule: Callable[..., Any],
              linear_args: Sequence[int] | str = (0,)) -> None:
    """A primitive linear in ``linear_args`` (a tuple of positions, or ``"all"``).

    Its JVP is the primitive itself applied to the tangents (other arguments
    are passed as they are). ``transpose_rule(ct, *args, **params)`` returns
    one cotangent per argument (None for arguments it is not linear in).
    """
    def jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
        primal_out = prim.bind(*primals, **params)
        if len(primals) == 1:  # the common case (reshape, reduce_sum ...), made quick
            (t,) = tangents
            if type(t) is Zero:
                return primal_out, Zero(get_aval(primal_out).strip_weak_type())
            return primal_out, prim.bind(t, **params)
        lin = range(len(primals)) if linear_args == "all" else linear_args
        zeros = [type(tangents[i]) is Zero for i in lin]
        if all(zeros):
            return primal_out, Zero(get_aval(primal_out).strip_weak_type())
        if any(zeros):
            from fgrad.transforms.jvp import instantiate_zeros  # rules use transforms lazily
            tangents = [instantiate_zeros(t) if i in lin else t for i, t in enumerate(tangents)]
        args = [tangents[i] if i in lin else primals[i] for i in range(len(primals))]
        return primal_out, prim.bind(*args, **params)

    prim.def_jvp(jvp)
    prim.def_transpose(transpose_rule)
    prim.linear_args = linear_args if linear_args == "all" else tuple(linear_args)


def defbilinear(prim: Primitive, lhs_transpose: Callable[..., Any],
                rhs_transpose: Callable[..., Any]) -> None:
    """``f(x, y)`` linear in x for fixed y and in y for fixed x: f(ẋ, y) + f(x, ẏ).

    ``lhs_transpose(ct, x, y, **params)`` gives the cotangent of x (x is an
    ``UndefPrimal``), ``rhs_transpose`` that of y.
    """
    def jvp(primals: Sequence[Any], tangents: Sequence[Any], **params: Any) -> Any:
        x, y = primals
        x_dot, y_dot = tangents
        out = prim.bind(x, y, **params)
        if type(x_dot) is Zero:
            if type(y_dot) is Zero:
                return out, Zero(get_aval(out).strip_weak_type())
            return out, prim.bind(x, y_dot, **params)
        t = prim.bind(x_dot, y, **params)
        if type(y_dot) is not Zero:
            t = add_tangents(t, prim.bind(x, y_dot, **params))
        return out, t

    def transpose(ct: Any, x: Any, y: Any, **params: Any) -> list[Any]:
        ct_x = lhs_transpose(ct, x, y, **params) if is_undefined_primal(x) else None
        ct_y = rhs_transpose(ct, x, y, **params) if is_undefined_primal(y) else None
        return [ct_x, ct_y]

    prim.def_jvp(jvp)
    prim.def_transpose(transpose)
    prim.linear_args = (0, 1)


# --- batching-rule constructors ----------------------------------------------------------
#
# A batching rule is ``rule(vals, dims, *, axis_size, **params) -> (out, out_dim)``:
# ``vals`` carry their batch axes, ``dims[i]`` is where operand i's batch axis is (None:
# unbatched, the same for every batch element; at least one is not None). The rule runs in
# the parent trace and binds ordinary strict primitives. The wrappers of ``shape.py`` are
# imported inside the rules: that module imports this one.

BatchRule = Callable[..., tuple[Any, Any]]


def vectorized_batcher(prim: Primitive) -> BatchRule:
    """The batching rule of a unary elementwise primitive.

    Elementwise means "the same thing at every position", so the batch axis
    is just one more axis: apply ``prim`` to the batched operand with the
    same params; the output's batch axis is where the input's was.
    """
    def rule(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
             **params: Any) -> tuple[Any, int | None]:
        (x,), (dim,) = vals, dims
        return prim.bind(x, **params), dim

    return rule


def defvectorized(prim: Primitive) -> None:
    """Batch the unary elementwise ``prim`` with ``vectorized_batcher``."""
    prim.def_batch(vectorized_batcher(prim))


def broadcasting_batcher(prim: Primitive) -> BatchRule:
    """The batching rule of an n-ary elementwise primitive (``add``, ``select_n`` ...).

    The primitive needs operands of equal shapes, so the batch axes must be
    lined up. When every operand is batched at the same axis the primitive
    applies as it is. Otherwise the batch axis goes where the first batched
    operand has it (so at least that operand is not moved): the other batched
    operands move their batch axis there (one ``transpose`` each), and
    unbatched operands are broadcast to the batched shape with one
    ``broadcast_in_dim`` each. Both keep weak types, so the result's weak
    type is what the primitive gives unbatched operands.
    """
    def rule(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
             **params: Any) -> tuple[Any, int]:
        out_dim = next(d for d in dims if d is not None)
        if all(d == out_dim for d in dims):
            return prim.bind(*vals, **params), out_dim
        lined_up = [_batch_axis_to(v, d, out_dim, axis_size) for v, d in zip(vals, dims)]
        return prim.bind(*lined_up, **params), out_dim

    return rule


def defbroadcasting(prim: Primitive) -> None:
    """Batch the n-ary elementwise ``prim`` with ``broadcasting_batcher``."""
    prim.def_batch(broadcasting_batcher(prim))


def _batch_axis_to(x: Any, dim: int | None, dst: int, axis_size: int) -> Any:
    """``x`` with its batch axis at ``dst``: moved there, or (unbatched) broadcast into it."""
    from fgrad.primitives.shape import broadcast_in_dim
    from fgrad.transforms.vmap import moveaxis
    if dim is not None:
        return moveaxis(x, dim, dst)
    shape = get_aval(x).shape
    out_shape = (*shape[:dst], axis_size, *shape[dst:])
    return broadcast_in_dim(x, out_shape, [i for i in range(len(out_shape)) if i != dst])


def batched_axes(axes: Sequence[int], dim: int) -> tuple[int, ...]:
    """Axes of the unbatched operand, renumbered for the operand with batch axis ``dim``.

    Axes at or after ``dim`` move up by one; the order is kept (sorted stays sorted).
    """
    return tuple(a + 1 if a >= dim else a for a in axes)


def reducer_batcher(prim: Primitive) -> BatchRule:
    """The batching rule of a one-operand primitive that removes the axes ``axes``
    (``reduce_sum``, ``argmax`` ...); other params are passed through.

    The reduced axes are renumbered around the batch axis; the batch axis
    survives, moved down by the number of reduced axes before it.
    """
    def rule(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
             axes: tuple[int, ...], **params: Any) -> tuple[Any, int]:
        (x,), (dim,) = vals, dims
        new_axes = batched_axes(axes, dim)
        out_dim = dim - sum(1 for a in new_axes if a < dim)
        return prim.bind(x, axes=new_axes, **params), out_dim

    return rule


def defreducer(prim: Primitive) -> None:
    """Batch the reduction ``prim`` (an ``axes`` param) with ``reducer_batcher``."""
    prim.def_batch(reducer_batcher(prim))


__all__ = ["FLOAT", "NUMBER", "INT", "INT_OR_BOOL", "ANY", "standard_primitive", "unop",
           "binop", "defjvp", "defjvp2", "defjvp_zero", "deflinear", "defbilinear",
           "check_kind", "check_same_types", "UndefPrimal", "vectorized_batcher",
           "defvectorized", "broadcasting_batcher", "defbroadcasting", "reducer_batcher",
           "defreducer", "batched_axes"]
