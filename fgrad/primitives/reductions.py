"""Reductions: ``reduce_sum``, ``reduce_max``, ``reduce_min``, ``reduce_prod``,
``reduce_and``, ``reduce_or``, ``argmax``, ``argmin``, and the cumulative ops
``cumsum``, ``cumprod``, ``cummax``, ``cummin``, ``cumlogsumexp``.

Strict, like ``jax.lax``: ``axes`` is a tuple of distinct non-negative axes
(the wrappers sort it), a cumulative ``axis`` is one non-negative axis, and
nothing is promoted: the result has the operand's dtype. ``fgrad.numpy``
normalizes negative axes, ``keepdims``, ``where=`` and dtypes on top.

Conventions (all as in JAX):

* an empty reduction gives the identity: ``-inf`` for ``reduce_max`` of
  floats, the smallest integer for ints, ``1`` for ``reduce_prod``;
* ``reduce_max``/``reduce_min`` propagate NaN and split the gradient
  evenly between tied extrema (tangent averaged over the positions that
  equal the result);
* ``reduce_prod``'s JVP multiplies pairs in a balanced tree, so it is exact
  when inputs are zero (no division by the input);
* ``argmax``/``argmin`` return the first index of the extremum; a NaN
  counts as the extremum; both need a non-empty axis;
* the JVPs of ``cumprod``/``cummax``/``cummin``/``cumlogsumexp`` run JAX's
  parallel prefix scan (``associative_scan``) on (primal, tangent) pairs,
  so ties in ``cummax`` share the tangent exactly as JAX's do;
* ``cumsum`` is linear; its transpose is a ``cumsum`` in the other direction.

16-bit floats are accumulated in float32 and rounded once at the end.

Batching (``vmap``): the reductions and ``argmax``/``argmin`` use the
generic ``defreducer`` (their ``axes`` renumbered past the batch axis, the
batch axis moved down by the reduced axes before it); the cumulative ops
shift their ``axis`` the same way and keep the batch axis where it is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive
from fgrad.primitives import elementwise as _ew  # circular: used only inside rules
from fgrad.primitives import shape as _shape  # circular: used only inside rules
from fgrad.primitives.rules import (
    ANY, FLOAT, INT_OR_BOOL, NUMBER, batched_axes, check_kind, defjvp2, defjvp_zero, deflinear,
    defreducer, standard_primitive)


def check_axes(op: str, x: ShapedArray, axes: tuple[int, ...]) -> None:
    """Raise unless ``axes`` are distinct, non-negative axes of ``x``."""
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
        raise FgradTypeError(f"{op}: invalid axes {axes} for an operand of shape "
                             f"{x.str_short()} (axes must be distinct and in [0, {x.ndim}))")


def _reduced_shape(op: str, kind: str) -> Callable[..., tuple[int, ...]]:
    def rule(x: ShapedArray, axes: tuple[int, ...]) -> tuple[int, ...]:
        check_kind(op, kind, x)
        check_axes(op, x, axes)
        return tuple(d for i, d in enumerate(x.shape) if i not in axes)
    return rule


def _sorted_axes(axes: Sequence[int]) -> tuple[int, ...]:
    return tuple(sorted(int(a) for a in axes))


def _kept_dims(ndim: int, axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(i for i in range(ndim) if i not in axes)


def _in_f32(f: Callable[..., np.ndarray], errstate: bool = True) -> Callable[..., np.ndarray]:
    """Accumulate float16/bfloat16 in float32 and round once; silence NaN warnings.

    ``errstate=False`` skips the (costly, on the eager hot path) ``np.errstate``
    context: for an ``f`` that calls a ufunc's C ``reduce`` itself, numpy attributes
    the warnings to fgrad's frame, and the module filter in ``elementwise.py``
    silences them there.
    """
    def in_f32(x: np.ndarray, **params: Any) -> np.ndarray:
        if x.dtype.itemsize == 2 and dtypes.is_float(x.dtype):
            return np.asarray(f(x.astype(np.float32), **params)).astype(x.dtype)
        return np.asarray(f(x, **params))

    def impl(x: np.ndarray, **params: Any) -> np.ndarray:
        with np.errstate(all="ignore"):
            return in_f32(x, **params)
    return impl if errstate else in_f32


def _same_dtype(x: ShapedArray, **_: Any) -> np.dtype:
    return x.dtype


def _not_weak(*_: Any, **__: Any) -> bool:
    return False


# --- reduce_sum ------------------------------------------------------------------------------

def reduce_sum(operand: Any, axes: Sequence[int]) -> Any:
    """Sum over ``axes`` (``jax.lax.reduce_sum(operand, axes)``); keeps the dtype."""
    return reduce_sum_p.bind(operand, axes=_sorted_axes(axes))


def _reduce_sum_impl(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if dtypes.is_bool(x.dtype):
        return np.any(x, axis=axes)  # XLA: a sum of booleans is their "or"
    return np.add.reduce(x, axis=axes, dtype=x.dtype)  # np.sum without its Python layer


def _reduce_sum_transpose(ct: Any, x: Any, axes: tuple[int, ...]) -> list[Any]:
    shape = x.aval.shape
    return [_shape.broadcast_in_dim(ct, shape, _kept_dims(len(shape), axes))]


reduce_sum_p = standard_primitive("reduce_sum", _in_f32(_reduce_sum_impl, errstate=False),
                                  _reduced_shape("reduce_sum", ANY), _same_dtype)
deflinear(reduce_sum_p, _reduce_sum_transpose)
defreducer(reduce_sum_p)


# --- reduce_max / reduce_min -----------------------------------------------------------------

def reduce_max(operand: Any, axes: Sequence[int]) -> Any:
    """Maximum over ``axes`` (``jax.lax.reduce_max``); NaN-propagating, ``-inf`` if empty."""
    return reduce_max_p.bind(operand, axes=_sorted_axes(axes))


def reduce_min(operand: Any, axes: Sequence[int]) -> Any:
    """Minimum over ``axes`` (``jax.lax.reduce_min``); NaN-propagating, ``inf`` if empty."""
    return reduce_min_p.bind(operand, axes=_sorted_axes(axes))


def _max_identity(dtype: np.dtype) -> Any:
    if dtypes.is_bool(dtype):
        return False
    return -np.inf if dtypes.is_float(dtype) else np.iinfo(dtype).min


def _min_identity(dtype: np.dtype) -> Any:
    if dtypes.is_bool(dtype):
        return True
    return np.inf if dtypes.is_float(dtype) else np.iinfo(dtype).max


def _reduce_max_impl(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    # `initial` makes empty reductions return the identity instead of raising.
    with np.errstate(all="ignore"):
        return np.max(x, axis=axes, initial=x.dtype.type(_max_identity(x.dtype)))


def _reduce_min_impl(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.min(x, axis=axes, initial=x.dtype.type(_min_identity(x.dtype)))


def _reduce_chooser_jvp(t: Any, ans: Any, x: Any, axes: tuple[int, ...]) -> Any:
    # The tangent averaged over the positions that attain the result: sum(t*mask)/sum(mask).
    # NOTE: with a NaN operand no position equals the result, so the tangent is 0/0 = NaN.
    shape = get_aval(x).shape
    at_result = _ew.eq(x, _shape.broadcast_in_dim(ans, shape, _kept_dims(len(shape), axes)))
    mask = _ew.convert_element_type(at_result, t.dtype)
    return _ew.div(reduce_sum(_ew.mul(t, mask), axes), reduce_sum(mask, axes))


reduce_max_p = standard_primitive("reduce_max", _reduce_max_impl,
                                  _reduced_shape("reduce_max", ANY), _same_dtype)
defjvp2(reduce_max_p, _reduce_chooser_jvp)
defreducer(reduce_max_p)
reduce_min_p = standard_primitive("reduce_min", _reduce_min_impl,
                                  _reduced_shape("reduce_min", ANY), _same_dtype)
defjvp2(reduce_min_p, _reduce_chooser_jvp)
defreducer(reduce_min_p)


# --- reduce_prod -----------------------------------------------------------------------------

def reduce_prod(operand: Any, axes: Sequence[int]) -> Any:
    """Product over ``axes`` (``jax.lax.reduce_prod``); ``1`` if empty."""
    return reduce_prod_p.bind(operand, axes=_sorted_axes(axes))


def _reduce_prod_impl(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.prod(x, axis=axes, dtype=x.dtype)


def _reduce_prod_jvp(primals: Sequence[Any], tangents: Sequence[Any],
                     axes: tuple[int, ...]) -> tuple[Any, Any]:
    # Move the reduced axes to the front as one axis of length n, then halve it until
    # one row is left, multiplying the halves with the product rule (pad an odd half
    # with a 1). No division by the input, so zeros are exact, to any order.
    (x,), (t,) = primals, tangents
    shape, dtype = get_aval(x).shape, get_aval(x).dtype
    kept = _kept_dims(len(shape), axes)
    kept_shape = tuple(shape[i] for i in kept)
    n = int(np.prod([shape[a] for a in axes], dtype=np.int64))
    perm = axes + kept
    p, dp = x, t
    if perm != tuple(range(len(shape))):
        p, dp = _shape.transpose(p, perm), _shape.transpose(dp, perm)
    p, dp = _shape.reshape(p, (n, *kept_shape)), _shape.reshape(dp, (n, *kept_shape))
    while n > 1:
        half = (n + 1) // 2
        p1, p2 = _shape.slice_in_dim(p, 0, half), _shape.slice_in_dim(p, half, n)
        dp1, dp2 = _shape.slice_in_dim(dp, 0, half), _shape.slice_in_dim(dp, half, n)
        if n % 2:
            config = [(0, 1, 0)] + [(0, 0, 0)] * len(kept_shape)
            p2 = _shape.pad(p2, _shape.full((), 1, dtype), config)
            dp2 = _shape.pad(dp2, _shape.full((), 0, dtype), config)
        p, dp = _ew.mul(p1, p2), _ew.add(_ew.mul(dp1, p2), _ew.mul(p1, dp2))
        n = half
    t_out = _shape.reshape(dp, kept_shape) if n == 1 else _shape.full(kept_shape, 0, dtype)
    return reduce_prod(x, axes), t_out


reduce_prod_p = standard_primitive("reduce_prod", _in_f32(_reduce_prod_impl),
                                   _reduced_shape("reduce_prod", NUMBER), _same_dtype)
reduce_prod_p.def_jvp(_reduce_prod_jvp)
defreducer(reduce_prod_p)


# --- reduce_and / reduce_or ------------------------------------------------------------------

def reduce_and(operand: Any, axes: Sequence[int]) -> Any:
    """Logical (bool) or bitwise (int) "and" over ``axes``; ``True`` / all ones if empty."""
    return reduce_and_p.bind(operand, axes=_sorted_axes(axes))


def reduce_or(operand: Any, axes: Sequence[int]) -> Any:
    """Logical (bool) or bitwise (int) "or" over ``axes``; ``False`` / zero if empty."""
    return reduce_or_p.bind(operand, axes=_sorted_axes(axes))


def _reduce_and_impl(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if dtypes.is_bool(x.dtype):
        return np.all(x, axis=axes)
    return np.bitwise_and.reduce(x, axis=axes)


def _reduce_or_impl(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if dtypes.is_bool(x.dtype):
        return np.any(x, axis=axes)
    return np.bitwise_or.reduce(x, axis=axes)


reduce_and_p = standard_primitive("reduce_and", _reduce_and_impl,
                                  _reduced_shape("reduce_and", INT_OR_BOOL), _same_dtype,
                                  _not_weak)
reduce_or_p = standard_primitive("reduce_or", _reduce_or_impl,
                                 _reduced_shape("reduce_or", INT_OR_BOOL), _same_dtype,
                                 _not_weak)
defjvp_zero(reduce_and_p)
defjvp_zero(reduce_or_p)
defreducer(reduce_and_p)
defreducer(reduce_or_p)


# --- argmax / argmin -------------------------------------------------------------------------

def argmax(operand: Any, axis: int, index_dtype: Any) -> Any:
    """Index of the first maximum along ``axis`` (``jax.lax.argmax``); NaN counts as maximal."""
    return argmax_p.bind(operand, axes=(int(axis),),
                         index_dtype=dtypes.canonicalize_dtype(index_dtype))


def argmin(operand: Any, axis: int, index_dtype: Any) -> Any:
    """Index of the first minimum along ``axis`` (``jax.lax.argmin``); NaN counts as minimal."""
    return argmin_p.bind(operand, axes=(int(axis),),
                         index_dtype=dtypes.canonicalize_dtype(index_dtype))


def _argminmax_shape(op: str) -> Callable[..., tuple[int, ...]]:
    def rule(x: ShapedArray, axes: tuple[int, ...], index_dtype: np.dtype) -> tuple[int, ...]:
        if len(axes) != 1:
            raise FgradTypeError(f"{op}: reduces exactly one axis, got axes={axes}")
        check_axes(op, x, axes)
        if x.shape[axes[0]] == 0:
            raise FgradTypeError(f"{op}: needs a non-empty axis, got axis {axes[0]} of "
                                 f"{x.str_short()}")
        if not dtypes.is_int(index_dtype):
            raise FgradTypeError(f"{op}: index_dtype must be an integer dtype, got "
                                 f"{np.dtype(index_dtype)}")
        return tuple(d for i, d in enumerate(x.shape) if i != axes[0])
    return rule


def _argminmax_impl(np_fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    # numpy's argmax/argmin also return the first occurrence and treat NaN as extremal.
    def impl(x: np.ndarray, axes: tuple[int, ...], index_dtype: np.dtype) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np_fn(x, axis=axes[0]).astype(index_dtype)
    return impl


argmax_p = standard_primitive("argmax", _argminmax_impl(np.argmax), _argminmax_shape("argmax"),
                              lambda x, axes, index_dtype: index_dtype, _not_weak)
argmin_p = standard_primitive("argmin", _argminmax_impl(np.argmin), _argminmax_shape("argmin"),
                              lambda x, axes, index_dtype: index_dtype, _not_weak)
defjvp_zero(argmax_p)
defjvp_zero(argmin_p)
defreducer(argmax_p)  # index_dtype passes through; axes is a 1-tuple like any other
defreducer(argmin_p)


# --- cumulative reductions: cumsum, cumprod, cummax, cummin, cumlogsumexp ----------------------

def cumsum(operand: Any, axis: int = 0, reverse: bool = False) -> Any:
    """Running sum along ``axis`` (from the end if ``reverse``), ``jax.lax.cumsum``."""
    return cumsum_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cumprod(operand: Any, axis: int = 0, reverse: bool = False) -> Any:
    """Running product along ``axis`` (from the end if ``reverse``), ``jax.lax.cumprod``."""
    return cumprod_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cummax(operand: Any, axis: int = 0, reverse: bool = False) -> Any:
    """Running maximum along ``axis`` (from the end if ``reverse``), ``jax.lax.cummax``."""
    return cummax_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cummin(operand: Any, axis: int = 0, reverse: bool = False) -> Any:
    """Running minimum along ``axis`` (from the end if ``reverse``), ``jax.lax.cummin``."""
    return cummin_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def cumlogsumexp(operand: Any, axis: int = 0, reverse: bool = False) -> Any:
    """Running ``log(sum(exp(x)))`` along ``axis``, computed stably (``jax.lax.cumlogsumexp``)."""
    return cumlogsumexp_p.bind(operand, axis=int(axis), reverse=bool(reverse))


def _cumulative_shape(op: str, kind: str) -> Callable[..., tuple[int, ...]]:
    def rule(x: ShapedArray, axis: int, reverse: bool) -> tuple[int, ...]:
        check_kind(op, kind, x)
        if not 0 <= axis < x.ndim:
            raise FgradTypeError(f"{op}: axis {axis} is out of bounds for an operand of shape "
                                 f"{x.str_short()}")
        return x.shape
    return rule


def _cumulative_impl(accumulate: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def impl(x: np.ndarray, axis: int, reverse: bool) -> np.ndarray:
        if reverse:
            return np.flip(accumulate(np.flip(x, axis), axis=axis, dtype=x.dtype), axis)
        return accumulate(x, axis=axis, dtype=x.dtype)
    return _in_f32(impl)


def _cumulative_batch(prim: Primitive) -> Callable[..., tuple[Any, int]]:
    """Scan the same logical axis of the batched operand: ``axis`` renumbered past the
    batch axis, which stays where it is (every batch element scans independently)."""
    def rule(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int, axis: int,
             reverse: bool) -> tuple[Any, int]:
        (x,), (dim,) = vals, dims
        (new_axis,) = batched_axes((axis,), dim)
        return prim.bind(x, axis=new_axis, reverse=reverse), dim
    return rule


def _cumulative_primitive(name: str, accumulate: Callable[..., np.ndarray],
                          kind: str = NUMBER) -> Primitive:
    """A cumulative primitive with its impl, shape rule and batching rule (the JVPs and
    ``cumsum``'s transpose are set below)."""
    prim = standard_primitive(name, _cumulative_impl(accumulate), _cumulative_shape(name, kind),
                              _same_dtype)
    prim.def_batch(_cumulative_batch(prim))
    return prim


Pair = list[Any]  # [primal, tangent]


def _associative_scan(combine: Callable[[Pair, Pair], Pair], elems: Pair, axis: int) -> Pair:
    """Inclusive prefix scan of ``combine`` along ``axis``: the recursion of
    ``jax.lax.associative_scan``, so elements are combined in exactly JAX's order.

    Combine adjacent pairs, scan that half-length array recursively (giving the
    odd positions), combine each odd result with the next element (the even
    positions), and interleave.
    """
    n = get_aval(elems[0]).shape[axis]
    if n < 2:
        return elems

    def every_other(e: Any, start: int) -> Any:
        return _shape.slice_in_dim(e, start, n, 2, axis)

    pairs = combine([_shape.slice_in_dim(e, 0, n - 1, 2, axis) for e in elems],
                    [every_other(e, 1) for e in elems])
    odd = _associative_scan(combine, pairs, axis)
    m = get_aval(odd[0]).shape[axis]
    lead = odd if n % 2 else [_shape.slice_in_dim(e, 0, m - 1, 1, axis) for e in odd]
    even = combine(lead, [every_other(e, 2) for e in elems])
    even = [_shape.concatenate([_shape.slice_in_dim(e, 0, 1, 1, axis), r], axis)
            for e, r in zip(elems, even)]
    return [_interleave(a, b, axis) for a, b in zip(even, odd)]


def _interleave(a: Any, b: Any, axis: int) -> Any:
    # a[0], b[0], a[1], b[1], ...: spread each out with interior zeros, offset b, add.
    a_shape, b_shape = get_aval(a).shape, get_aval(b).shape
    none = [(0, 0, 0)] * len(a_shape)
    same = a_shape[axis] == b_shape[axis]
    a_config, b_config = list(none), list(none)
    a_config[axis] = (0, 1 if same else 0, 1)
    b_config[axis] = (1, 0 if same else 1, 1)
    zero = _shape.full((), 0, get_aval(a).dtype)
    return _ew.add(_shape.pad(a, zero, a_config), _shape.pad(b, zero, b_config))


def _jvp_of(prim: Primitive) -> Callable[[Pair, Pair], Pair]:
    """Combine (primal, tangent) pairs with a binary primitive and its own JVP rule."""
    def combine(a: Pair, b: Pair) -> Pair:
        out, t_out = prim.jvp((a[0], b[0]), (a[1], b[1]))
        return [out, t_out]
    return combine


def _logaddexp_pair(a: Pair, b: Pair) -> Pair:
    # log(exp(x) + exp(y)) = m + log(exp(x - m) + exp(y - m)) with m = max(x, y) held
    # constant for differentiation (stop_gradient): exact, stable, and smooth in x and y
    # (writing it with |x - y| would put a kink at x == y into higher derivatives).
    # x + y where x - y is NaN (equal infinities, NaN). Tangent: t_x exp(x - out) +
    # t_y exp(y - out), with +inf read as 0 (JAX's logaddexp JVP) to avoid inf - inf.
    from fgrad.primitives.custom_derivatives import stop_gradient
    (x, tx), (y, ty) = a, b
    delta = _ew.sub(x, y)
    m = stop_gradient(_ew.max(x, y))
    m = _ew.select(_ew.is_finite(m), m, _shape.full_like(m, 0))
    stable = _ew.add(m, _ew.log(_ew.add(_ew.exp(_ew.sub(x, m)), _ew.exp(_ew.sub(y, m)))))
    out = _ew.select(_ew.ne(delta, delta), _ew.add(x, y), stable)

    def finite(v: Any) -> Any:
        return _ew.select(_ew.eq(v, _shape.full_like(v, np.inf)), _shape.full_like(v, 0), v)

    weight_x = _ew.exp(_ew.sub(finite(x), finite(out)))
    weight_y = _ew.exp(_ew.sub(finite(y), finite(out)))
    return [out, _ew.add(_ew.mul(tx, weight_x), _ew.mul(ty, weight_y))]


def _cumulative_jvp(prim: Primitive,
                    combine: Callable[[], Callable[[Pair, Pair], Pair]]) -> None:
    # As JAX: differentiate the parallel prefix scan, here by scanning (primal, tangent)
    # pairs. The primal output is the primitive itself, so values match eager exactly.
    def jvp(primals: Sequence[Any], tangents: Sequence[Any], axis: int,
            reverse: bool) -> tuple[Any, Any]:
        (x,), (t,) = primals, tangents
        elems = [x, t]
        if reverse:
            elems = [_shape.rev(e, (axis,)) for e in elems]
        _, t_out = _associative_scan(combine(), elems, axis)
        if reverse:
            t_out = _shape.rev(t_out, (axis,))
        return prim.bind(x, axis=axis, reverse=reverse), t_out

    prim.def_jvp(jvp)


def _cumsum_transpose(ct: Any, x: Any, axis: int, reverse: bool) -> list[Any]:
    return [cumsum(ct, axis, not reverse)]


# NOTE: the combine functions are looked up at call time (the lambdas): this module is
# imported while elementwise.py is still half-initialized, before `mul_p` exists.
cumsum_p = _cumulative_primitive("cumsum", np.cumsum)
deflinear(cumsum_p, _cumsum_transpose)
cumprod_p = _cumulative_primitive("cumprod", np.cumprod)
_cumulative_jvp(cumprod_p, lambda: _jvp_of(_ew.mul_p))
cummax_p = _cumulative_primitive("cummax", np.maximum.accumulate)
_cumulative_jvp(cummax_p, lambda: _jvp_of(_ew.max_p))
cummin_p = _cumulative_primitive("cummin", np.minimum.accumulate)
_cumulative_jvp(cummin_p, lambda: _jvp_of(_ew.min_p))
cumlogsumexp_p = _cumulative_primitive("cumlogsumexp", np.logaddexp.accumulate, FLOAT)
_cumulative_jvp(cumlogsumexp_p, lambda: _logaddexp_pair)


__all__ = ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "reduce_and", "reduce_or",
           "argmax", "argmin", "cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"]
