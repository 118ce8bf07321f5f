"""Focused tests of the reductions family against JAX.

The strict primitives (``fgrad.lax.reduce_*``, ``argmax``/``argmin``, the
cumulative ops) and the ``fgrad.numpy`` reductions are compared with their
``jax.lax`` / ``jax.numpy`` twins: values, dtypes and weak types over shapes
with 0-d, size-0 and size-1 axes; JVPs, VJPs and second derivatives in
float64, including the awkward points (tied maxima, zeros in products,
``-inf`` in ``cumlogsumexp``, NaN); ``jit`` against eager; the jaxprs of
gradients through ``typecheck_jaxpr``; and the error messages.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax as jlax
from jax._src.lax.lax import _convert_element_type

import fgrad
import fgrad.numpy as fnp
from fgrad import lax
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.primitives.reductions import cumsum_p
from strategies import arrays, shapes

BF16 = np.dtype(ml_dtypes.bfloat16)
TOL = {np.dtype(np.float16): 2e-3, BF16: 2e-2, np.dtype(np.float32): 2e-6,
       np.dtype(np.float64): 1e-12}


# --- helpers -----------------------------------------------------------------------------

def assert_like_jax(got: Any, want: Any, rtol: float | None = None,
                    check_weak: bool = True) -> None:
    """Same shape, dtype, weak type and (close, NaN-equal) values as JAX's result."""
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"shape {g.shape} != JAX's {w.shape}"
    assert g.dtype == w.dtype, f"dtype {g.dtype} != JAX's {w.dtype}"
    if check_weak:
        assert bool(got.weak_type) == bool(want.weak_type), (
            f"weak_type {got.weak_type} != JAX's {want.weak_type}")
    tol = TOL.get(g.dtype, 0) if rtol is None else rtol
    if g.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w)
    else:
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=tol,
                                   atol=tol, equal_nan=True)


def rand(shape: tuple[int, ...], dtype: Any = np.float64, seed: int = 0,
         lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if np.dtype(dtype).kind in "iu":
        return rng.integers(int(lo) if lo >= 0 else -5, 6, shape).astype(dtype)
    return rng.uniform(lo, hi, shape).astype(dtype)


def jax_batch(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` under one ``jax.jit``: many oracle values for one compilation."""
    return jax.jit(fn)(*args)


def weak_pair(value: np.ndarray) -> tuple[Any, Any]:
    """The same weakly typed array in fgrad and in JAX."""
    return fgrad.Array(value, True), _convert_element_type(value, value.dtype, weak_type=True)


def all_axes_subsets(ndim: int) -> list[tuple[int, ...]]:
    return [tuple(a for a in range(ndim) if mask >> a & 1) for mask in range(2 ** ndim)]


# --- strict reductions: values -------------------------------------------------------------

REDUCERS = ["reduce_sum", "reduce_max", "reduce_min", "reduce_prod"]
SHAPES = [(), (0,), (1,), (4,), (2, 3), (2, 0, 3), (1, 3, 1)]


@pytest.mark.parametrize("name", REDUCERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF16, np.int32, np.uint8])
def test_lax_reduce_values(name: str, dtype: Any) -> None:
    prod = name == "reduce_prod"
    for shape in SHAPES:
        x = rand(shape, dtype, lo=0.5 if prod else -2.0, hi=1.5 if prod else 2.0)
        subsets = all_axes_subsets(len(shape))
        wants = jax_batch(lambda v: [getattr(jlax, name)(v, a) for a in subsets], x)
        for axes, want in zip(subsets, wants):
            assert_like_jax(getattr(lax, name)(x, axes), want)


@pytest.mark.parametrize("name", ["reduce_max", "reduce_min"])
def test_reduce_max_min_bool_and_nan(name: str) -> None:
    b = np.array([[True, False, False], [False, False, False]])
    assert_like_jax(getattr(lax, name)(b, (1,)), getattr(jlax, name)(b, (1,)))
    x = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, -1.0]], np.float32)
    got = getattr(lax, name)(x, (1,))
    assert np.isnan(np.asarray(got)[0]) and not np.isnan(np.asarray(got)[1])
    assert_like_jax(got, getattr(jlax, name)(x, (1,)))


@pytest.mark.parametrize("name", REDUCERS + ["cumsum", "cumprod", "cummax", "cummin",
                                             "cumlogsumexp"])
def test_weak_type_is_kept(name: str) -> None:
    ours, theirs = weak_pair(rand((2, 3), np.float32))
    fn = getattr(lax, name)
    if name.startswith("cum"):
        assert_like_jax(fn(ours, 1), getattr(jlax, name)(theirs, 1))
    else:
        assert_like_jax(fn(ours, (0,)), getattr(jlax, name)(theirs, (0,)))


@pytest.mark.parametrize("name", ["reduce_and", "reduce_or"])
@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.uint8])
def test_reduce_and_or(name: str, dtype: Any) -> None:
    for shape in SHAPES:
        x = rand(shape, dtype, seed=len(shape))
        subsets = all_axes_subsets(len(shape))
        wants = jax_batch(lambda v: [getattr(jlax, name)(v, a) for a in subsets], x)
        for axes, want in zip(subsets, wants):
            assert_like_jax(getattr(lax, name)(x, axes), want)
    ours, theirs = weak_pair(np.array([3, 5], np.int32))
    assert_like_jax(getattr(lax, name)(ours, (0,)), getattr(jlax, name)(theirs, (0,)))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF16, np.int32, np.bool_])
def test_argmax_argmin_values(name: str, dtype: Any) -> None:
    for shape in [(1,), (5,), (3, 4), (2, 1, 3)]:
        x = rand(shape, dtype, seed=1)
        cases = [(axis, index_dtype) for axis in range(len(shape))
                 for index_dtype in (np.int32, np.int8)]
        wants = jax_batch(lambda v: [getattr(jlax, name)(v, *c) for c in cases], x)
        for case, want in zip(cases, wants):
            assert_like_jax(getattr(lax, name)(x, *case), want)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_ties_and_nan(name: str) -> None:
    # Ties give the first index; a NaN counts as the extremum (its first occurrence).
    x = np.array([[1.0, 3.0, 3.0, 0.0, 0.0], [2.0, np.nan, 5.0, np.nan, -1.0],
                  [np.nan] * 5, [-np.inf, -np.inf, np.inf, np.inf, 0.0]], np.float32)
    assert_like_jax(getattr(lax, name)(x, 1, np.int32), getattr(jlax, name)(x, 1, np.int32))
    assert int(lax.argmax(np.array([1.0, 3.0, 3.0]), 0, np.int32)) == 1
    assert int(lax.argmin(np.array([2.0, np.nan, 0.0, np.nan]), 0, np.int32)) == 1


# --- cumulative ops: values ------------------------------------------------------------------

CUMULATIVE = ["cumsum", "cumprod", "cummax", "cummin", "cumlogsumexp"]


@pytest.mark.parametrize("name", CUMULATIVE)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8])
def test_cumulative_values(name: str, dtype: Any) -> None:
    if name == "cumlogsumexp" and np.dtype(dtype).kind != "f":
        pytest.raises(FgradTypeError, lax.cumlogsumexp, np.ones(3, dtype))
        return
    for shape in [(0,), (1,), (6,), (3, 4), (2, 0, 3)]:
        x = rand(shape, dtype, lo=0.5 if name == "cumprod" else -2.0,
                 hi=1.5 if name == "cumprod" else 2.0)
        cases = [(axis, reverse) for axis in range(len(shape)) for reverse in (False, True)]
        wants = jax_batch(lambda v: [getattr(jlax, name)(v, axis=a, reverse=r)
                                     for a, r in cases], x)
        for (axis, reverse), want in zip(cases, wants):
            assert_like_jax(getattr(lax, name)(x, axis, reverse), want,
                            rtol=1e-2 if np.dtype(dtype).itemsize == 2 else None)


def test_cumulative_nan_and_inf() -> None:
    x = np.array([1.0, np.nan, 3.0, -np.inf, 2.0], np.float32)
    for name in CUMULATIVE:
        assert_like_jax(getattr(lax, name)(x), getattr(jlax, name)(x))
    y = np.array([-np.inf, -np.inf, 0.0, np.inf, 1.0], np.float32)
    assert_like_jax(lax.cumlogsumexp(y), jlax.cumlogsumexp(y))


# --- derivatives of the strict ops, float64, against JAX -------------------------------------

def check_derivatives(f: Callable[..., Any], jf: Callable[..., Any], x: np.ndarray,
                      order: int = 2) -> None:
    """JVP, VJP and (for order 2) a Hessian-vector product agree with JAX's.

    The second-order check is ``jvp(grad(sum(f(x) * ct)))`` along a random
    direction, which exercises the JVP of every rule's own JVP. JAX's side
    runs under one ``jax.jit`` (one compilation per case).
    """
    rng = np.random.default_rng(3)
    t = rng.normal(size=x.shape)
    primal, tangent = fgrad.jvp(f, (x,), (t,))
    ct = rng.normal(size=np.shape(primal))

    def scalar(v: Any) -> Any:
        return fnp.sum(f(v) * ct)

    def j_scalar(v: Any) -> Any:
        return jnp.sum(jf(v) * ct)

    def hvp(v: Any) -> Any:
        return fgrad.jvp(fgrad.grad(scalar), (v,), (t,))[1]

    def oracle(v: Any, t: Any, ct: Any) -> Any:
        out = list(jax.jvp(jf, (v,), (t,))) + list(jax.vjp(jf, v)[1](ct))
        return out + [jax.jvp(jax.grad(j_scalar), (v,), (t,))[1]] if order >= 2 else out

    want = jax_batch(oracle, x, t, ct)
    assert_like_jax(primal, want[0])
    assert_like_jax(tangent, want[1])
    (g,) = fgrad.vjp(f, x)[1](ct)
    assert_like_jax(g, want[2])
    assert_like_jax(fgrad.jit(fgrad.grad(scalar))(x), want[2], rtol=1e-10)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(scalar))(x))
    if order >= 2:
        assert_like_jax(hvp(x), want[3], rtol=1e-10)
        typecheck_jaxpr(fgrad.make_jaxpr(hvp)(x))


TIES = np.array([[1.0, 3.0, 3.0, -1.0], [2.0, 2.0, 2.0, 2.0], [0.5, -4.0, 0.5, -4.0]])


@pytest.mark.parametrize("name", REDUCERS)
def test_reduce_derivatives(x64: None, name: str) -> None:
    x = rand((3, 4), seed=4)
    for axes in [(1,), (0, 1)]:
        check_derivatives(lambda v: getattr(lax, name)(v, axes),
                          lambda v: getattr(jlax, name)(v, axes), x)


@pytest.mark.parametrize("name", ["reduce_max", "reduce_min"])
def test_reduce_max_min_ties_average_the_tangent(x64: None, name: str) -> None:
    for axes in [(1,), (0, 1)]:
        check_derivatives(lambda v: getattr(lax, name)(v, axes),
                          lambda v: getattr(jlax, name)(v, axes), TIES)
    # Three tied maxima share the gradient equally.
    g = fgrad.grad(lambda v: lax.reduce_max(v, (0,)))(np.array([1.0, 5.0, 5.0, 5.0]))
    np.testing.assert_allclose(np.asarray(g), [0, 1 / 3, 1 / 3, 1 / 3])


def test_reduce_max_nan_and_empty_tangents(x64: None) -> None:
    x = np.array([1.0, np.nan, 2.0])
    got = fgrad.jvp(lambda v: lax.reduce_max(v, (0,)), (x,), (np.ones(3),))
    want = jax.jvp(lambda v: jlax.reduce_max(v, (0,)), (x,), (np.ones(3),))
    assert_like_jax(got[0], want[0])
    assert_like_jax(got[1], want[1])
    empty = np.zeros((0, 2))
    got = fgrad.jvp(lambda v: lax.reduce_min(v, (0,)), (empty,), (empty,))
    want = jax.jvp(lambda v: jlax.reduce_min(v, (0,)), (empty,), (empty,))
    assert_like_jax(got[1], want[1])


@pytest.mark.parametrize("x", [
    np.array([2.0, 0.0, 3.0, -1.5]),                      # exactly one zero
    np.array([0.0, 4.0, 0.0, 2.0, 1.0]),                  # two zeros: gradient all zero
    np.array([[1.5, 0.0, 2.0], [0.0, 0.0, 3.0]]),         # zeros per row
    np.array([[0.5, -2.0, 1.0, 3.0, 0.25, -1.0, 2.0]]),   # odd length: padded tree
], ids=["one_zero", "two_zeros", "rows", "odd"])
def test_reduce_prod_zeros(x64: None, x: np.ndarray) -> None:
    axes = (x.ndim - 1,)
    check_derivatives(lambda v: lax.reduce_prod(v, axes), lambda v: jlax.reduce_prod(v, axes), x)
    if x.ndim == 1 and np.sum(x == 0) == 1:
        # d/dx_i prod(x) at the zero is the product of the others, not 0/0.
        g = np.asarray(fgrad.grad(lambda v: lax.reduce_prod(v, (0,)))(x))
        np.testing.assert_allclose(g[x == 0], np.prod(x[x != 0]))


def test_reduce_prod_empty_and_0d(x64: None) -> None:
    for x in (np.zeros((0, 3)), np.array(2.5)):
        axes = (0,) if x.ndim else ()
        check_derivatives(lambda v: lax.reduce_prod(v, axes),
                          lambda v: jlax.reduce_prod(v, axes), x)


@pytest.mark.parametrize("name", CUMULATIVE)
@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_derivatives(x64: None, name: str, reverse: bool) -> None:
    cases = [((3, 5), 1), ((0, 3), 0)] + ([((7,), 0)] if not reverse else [])
    for shape, axis in cases:
        x = rand(shape, seed=5)
        check_derivatives(lambda v: getattr(lax, name)(v, axis, reverse),
                          lambda v: getattr(jlax, name)(v, axis=axis, reverse=reverse), x)


@pytest.mark.parametrize("name", ["cummax", "cummin"])
@pytest.mark.parametrize("reverse", [False, True])
def test_cummax_cummin_ties_match_jax(x64: None, name: str, reverse: bool) -> None:
    # On ties the tangent is shared in the pattern of JAX's parallel prefix scan.
    x = np.array([[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [0.0, 2.0, 2.0, 1.0, 2.0, 2.0, -1.0],
                  [3.0, 1.0, 3.0, 3.0, 0.0, 3.0, 3.0], [2.0, 2.0, 1.0, 2.0, 2.0, 0.0, 2.0]])
    check_derivatives(lambda v: getattr(lax, name)(v, 1, reverse),
                      lambda v: getattr(jlax, name)(v, axis=1, reverse=reverse), x)


def test_cumprod_with_zeros_and_cumlogsumexp_with_inf(x64: None) -> None:
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0, -1.0])
    check_derivatives(lax.cumprod, jlax.cumprod, x)
    check_derivatives(functools.partial(lax.cumprod, reverse=True),
                      functools.partial(jlax.cumprod, reverse=True), x)
    y = np.array([-np.inf, 0.0, 1.0, -np.inf, 2.0])
    check_derivatives(lax.cumlogsumexp, jlax.cumlogsumexp, y, order=1)
    big = np.array([-800.0, 0.0, 750.0, 1.0])  # stable where exp would overflow
    check_derivatives(lax.cumlogsumexp, jlax.cumlogsumexp, big)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumsum_transpose_is_reverse_cumsum(x64: None, reverse: bool) -> None:
    x, ct = rand((4, 5), seed=6), rand((4, 5), seed=7)
    (got,) = fgrad.vjp(lambda v: lax.cumsum(v, 1, reverse), x)[1](ct)
    np.testing.assert_allclose(np.asarray(got), np.asarray(lax.cumsum(ct, 1, not reverse)))
    # Dot-product test: <cumsum(t), ct> == <t, cumsum^T(ct)>.
    t = rand((4, 5), seed=8)
    lhs = np.sum(np.asarray(lax.cumsum(t, 1, reverse)) * ct)
    np.testing.assert_allclose(lhs, np.sum(t * np.asarray(got)), rtol=1e-12)
    assert cumsum_p.linear_args == (0,)


def test_nondifferentiable_ops_give_zero_gradients(x64: None) -> None:
    x = rand((3, 4), seed=9)

    def f(v: Any) -> Any:
        index = lax.convert_element_type(lax.argmax(v, 1, np.int32), np.float64)
        flag = lax.convert_element_type(lax.reduce_or(v > 0, (1,)), np.float64)
        return fnp.sum(index * flag * lax.reduce_sum(v, (1,)))

    def jf(v: Any) -> Any:
        index = jlax.convert_element_type(jlax.argmax(v, 1, np.int32), np.float64)
        flag = jlax.convert_element_type(jlax.reduce_or(v > 0, (1,)), np.float64)
        return jnp.sum(index * flag * jlax.reduce_sum(v, (1,)))

    assert_like_jax(fgrad.grad(f)(x), jax.grad(jf)(x))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f))(x))


# --- jit and staging --------------------------------------------------------------------------

def test_jit_matches_eager() -> None:
    x = rand((3, 4), np.float32, seed=10)

    def f(v: Any) -> Any:
        return (lax.reduce_max(v, (1,)), lax.reduce_prod(v, (0,)), lax.argmin(v, 1, np.int32),
                lax.cummax(v, 1, True), lax.cumlogsumexp(v, 0), lax.reduce_and(v > 0, (0, 1)),
                fnp.var(v, axis=0), fnp.argmax(v), fnp.cumsum(v))

    for got, want in zip(fgrad.jit(f)(x), f(x)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    jaxpr = fgrad.make_jaxpr(f)(x)
    typecheck_jaxpr(jaxpr)
    text = str(jaxpr)
    for prim in ("reduce_max", "reduce_prod", "argmin", "cummax", "cumlogsumexp", "reduce_and"):
        assert prim in text


# --- strict errors ----------------------------------------------------------------------------

def test_strict_errors() -> None:
    x = np.ones((2, 3), np.float32)
    with pytest.raises(FgradTypeError, match=r"reduce_max: invalid axes \(-1,\).*f32\[2,3\]"):
        lax.reduce_max(x, (-1,))
    with pytest.raises(FgradTypeError, match=r"reduce_sum: invalid axes \(0, 0\)"):
        lax.reduce_sum(x, (0, 0))
    with pytest.raises(FgradTypeError, match=r"reduce_min: invalid axes \(2,\)"):
        fgrad.jit(lambda v: lax.reduce_min(v, (2,)))(x)
    with pytest.raises(FgradTypeError, match=r"reduce_prod: expected a numeric.*bool\[2\]"):
        lax.reduce_prod(np.array([True, False]), (0,))
    with pytest.raises(FgradTypeError, match=r"reduce_and: expected a integer or boolean"):
        lax.reduce_and(x, (0,))
    with pytest.raises(FgradTypeError, match=r"argmax: needs a non-empty axis.*f32\[0,3\]"):
        lax.argmax(np.ones((0, 3), np.float32), 0, np.int32)
    with pytest.raises(FgradTypeError, match=r"argmin: index_dtype must be an integer"):
        lax.argmin(x, 0, np.float32)
    with pytest.raises(FgradTypeError, match=r"argmax: invalid axes \(2,\)"):
        lax.argmax(x, 2, np.int32)
    with pytest.raises(FgradTypeError, match=r"cumsum: axis 2 is out of bounds.*f32\[2,3\]"):
        lax.cumsum(x, 2)
    with pytest.raises(FgradTypeError, match=r"cummax: axis 0 is out of bounds.*f32\[\]"):
        lax.cummax(np.float32(1.0), 0)
    with pytest.raises(FgradTypeError, match=r"cumprod: expected a numeric"):
        lax.cumprod(np.array([True]), 0)


# --- fgrad.numpy: values against jax.numpy ----------------------------------------------------

# (amax/amin are max/min; nanprod/nanmin are checked with NaNs below)
NP_REDUCTIONS = ["sum", "prod", "max", "min", "mean", "var", "std", "ptp", "all", "any",
                 "count_nonzero", "nansum", "nanmax", "nanmean"]
NO_IDENTITY = {"max", "min", "ptp", "nanmax"}
NP_DTYPES = [np.float32, BF16, np.int8, np.bool_]


def _axis_variants(ndim: int) -> list[tuple[Any, bool]]:
    """(axis, keepdims) pairs: None, every int axis (negative ones with keepdims), tuples."""
    variants = [(None, False), (None, True), *[(a, a < 0) for a in range(-ndim, ndim)]]
    return variants + [((0, -1), True), ((-1, 0), False)] if ndim >= 2 else variants


def compare_many(fgrad_calls: dict[Any, Callable[[Any], Any]],
                 jax_calls: dict[Any, Callable[[Any], Any]], x: Any,
                 rtol: float | None = None) -> None:
    """Run each fgrad call eagerly and all JAX twins under one ``jax.jit``; compare."""
    # JAX sorts dict keys, so they are made strings.
    wants = jax_batch(lambda v: {str(k): f(v) for k, f in jax_calls.items()}, x)
    for key, fn in fgrad_calls.items():
        got, want = fn(x), wants[str(key)]
        for g, w in zip(got, want) if isinstance(got, tuple) else [(got, want)]:
            assert_like_jax(g, w, rtol)


@pytest.mark.parametrize("dtype", NP_DTYPES)
def test_numpy_reductions_values(dtype: Any) -> None:
    for shape in [(), (4,), (2, 3, 2), (0, 3)]:
        x = rand(shape, dtype, seed=11, lo=0.5, hi=1.5)
        ours, theirs = {}, {}
        for name in NP_REDUCTIONS:
            if name == "ptp" and dtype == np.bool_:
                continue  # JAX and fgrad: TypeError (no subtraction of bools), tested below
            for axis, keepdims in _axis_variants(len(shape)):
                reduced = range(len(shape)) if axis is None else np.atleast_1d(axis)
                if name in NO_IDENTITY and any(shape[d] == 0 for d in reduced):
                    with pytest.raises(ValueError, match="zero-size array to reduction"):
                        getattr(fnp, name)(x, axis=axis, keepdims=keepdims)
                    continue
                key = (name, str(axis), keepdims)
                ours[key] = functools.partial(getattr(fnp, name), axis=axis, keepdims=keepdims)
                theirs[key] = functools.partial(getattr(jnp, name), axis=axis,
                                                keepdims=keepdims)
        compare_many(ours, theirs, x, rtol=2e-2 if np.dtype(dtype).itemsize <= 2 else 1e-5)
    with pytest.raises(TypeError, match="sub"):
        fnp.ptp(np.array([True, False]))


NP_ALL = ["sum", "max", "mean", "prod", "all", "var", "argmax", "cumsum", "count_nonzero",
          "average", "ptp", "std", "nanmax"]


@pytest.mark.parametrize("value", [2.0, 3, True])
def test_numpy_results_are_strong(value: Any) -> None:
    names = [n for n in NP_ALL if not (n == "ptp" and value is True)]
    wants = jax_batch(lambda: {n: getattr(jnp, n)(value) for n in names})
    for name in names:
        assert_like_jax(getattr(fnp, name)(value), wants[name])
    if value is True:
        return  # a bool is never weakly typed
    ours, theirs = weak_pair(np.full((2, 2), value, np.float32 if value == 2.0 else np.int32))
    wants = jax_batch(lambda v: {n: getattr(jnp, n)(v) for n in names}, theirs)
    for name in names:
        assert_like_jax(getattr(fnp, name)(ours), wants[name])


def test_numpy_dtype_argument_and_x64(x64: None) -> None:
    x = rand((3, 4), np.int16, seed=12)
    cases = [("sum", np.float32), ("sum", np.int8), ("sum", bool), ("prod", np.int64),
             ("mean", np.float16), ("mean", np.int32), ("var", np.float32),
             ("std", np.float64), ("cumsum", np.float32), ("cumsum", bool),
             ("cumprod", np.uint8), ("nansum", np.float64)]
    compare_many({c: functools.partial(getattr(fnp, c[0]), axis=1, dtype=c[1]) for c in cases},
                 {c: functools.partial(getattr(jnp, c[0]), axis=1, dtype=c[1]) for c in cases},
                 x, rtol=1e-2)
    names = ("sum", "mean", "var", "prod", "cumsum", "cumulative_sum", "argmax")
    for dtype in (np.int8, np.uint8, np.uint16, np.int64, np.float16, np.float64, np.bool_):
        x = rand((2, 3), dtype, seed=13, lo=0.5, hi=1.5)
        compare_many({n: functools.partial(getattr(fnp, n), axis=1) for n in names},
                     {n: functools.partial(getattr(jnp, n), axis=1) for n in names}, x,
                     rtol=1e-2)


def test_numpy_where_and_initial() -> None:
    x = rand((3, 4), np.float32, seed=14)
    masks = {"mask": x > 0, "row": np.array([True, False, True, True])}
    ours, theirs = {}, {}
    for name in ("sum", "prod", "mean", "var", "std", "all", "any", "nansum", "nanmean"):
        for key, where in masks.items():
            ours[name, key] = functools.partial(getattr(fnp, name), axis=1, where=where)
            theirs[name, key] = functools.partial(getattr(jnp, name), axis=1, where=where)
    for name in ("sum", "prod", "max", "min", "nanmax", "nanmin"):
        kwargs = dict(axis=0, initial=0.5, where=masks["mask"], keepdims=True)
        ours[name, "initial"] = functools.partial(getattr(fnp, name), **kwargs)
        theirs[name, "initial"] = functools.partial(getattr(jnp, name), **kwargs)
    compare_many(ours, theirs, x, rtol=1e-5)
    empty = np.zeros((0, 2), np.int32)
    compare_many({0: lambda v: fnp.max(v, axis=0, initial=3), 1: lambda v: fnp.min(v, initial=-1)},
                 {0: lambda v: jnp.max(v, axis=0, initial=3), 1: lambda v: jnp.min(v, initial=-1)},
                 empty)


def test_numpy_var_std_ddof_and_nan() -> None:
    x = rand((3, 4), np.float32, seed=15)
    cases = [dict(ddof=1), dict(ddof=4, axis=1), dict(ddof=3, axis=0),
             dict(correction=0.5, axis=0), dict(axis=(0, 1), ddof=2, keepdims=True)]
    ours, theirs = {}, {}
    for i, kwargs in enumerate(cases):
        for name in ("var", "std"):
            ours[name, i] = functools.partial(getattr(fnp, name), **kwargs)
            theirs[name, i] = functools.partial(getattr(jnp, name), **kwargs)
    m = np.asarray(fnp.mean(x, axis=1, keepdims=True))
    ours["mean"], theirs["mean"] = (lambda v: fnp.var(v, axis=1, mean=m),
                                    lambda v: jnp.var(v, axis=1, mean=m))
    compare_many(ours, theirs, x)
    empty = np.zeros((0, 3), np.float32)
    compare_many({0: lambda v: fnp.mean(v, axis=0)}, {0: lambda v: jnp.mean(v, axis=0)}, empty)
    y = np.array([[1.0, np.nan, 3.0], [np.nan, np.nan, np.nan]], np.float32)
    names = ("nansum", "nanprod", "nanmax", "nanmin", "nanmean", "max", "sum", "amax", "amin")
    compare_many({n: functools.partial(getattr(fnp, n), axis=1) for n in names},
                 {n: functools.partial(getattr(jnp, n), axis=1) for n in names}, y)


def test_numpy_argmax_argmin() -> None:
    for shape in [(), (5,), (3, 4), (2, 1, 3)]:
        x = rand(shape, np.float32, seed=16)
        ours, theirs = {}, {}
        for name in ("argmax", "argmin"):
            for axis in [None, *range(-len(shape), len(shape))]:
                for keepdims in (False, True):
                    key = (name, axis, keepdims)
                    ours[key] = functools.partial(getattr(fnp, name), axis=axis,
                                                  keepdims=keepdims)
                    theirs[key] = functools.partial(getattr(jnp, name), axis=axis,
                                                    keepdims=keepdims)
        compare_many(ours, theirs, x)
    ties = np.array([[1.0, 4.0, 4.0], [np.nan, 0.0, np.nan]], np.float32)
    compare_many({n: functools.partial(getattr(fnp, n), axis=1) for n in ("argmax", "argmin")},
                 {n: functools.partial(getattr(jnp, n), axis=1) for n in ("argmax", "argmin")},
                 ties)


@pytest.mark.parametrize("dtype", [np.float32, np.int8, np.uint8, np.bool_, np.float16])
def test_numpy_cumulative(dtype: Any) -> None:
    for shape in [(), (0,), (5,), (3, 4), (2, 0, 3)]:
        x = rand(shape, dtype, seed=17, lo=0.5, hi=1.5)
        ours, theirs = {}, {}
        for name in ("cumsum", "cumprod"):
            for axis in [None, *range(-len(shape), len(shape))]:
                ours[name, axis] = functools.partial(getattr(fnp, name), axis=axis)
                theirs[name, axis] = functools.partial(getattr(jnp, name), axis=axis)
        if len(shape) == 2:
            for name in ("cumulative_sum", "cumulative_prod"):
                for axis, initial in [(0, False), (1, True), (-1, True)]:
                    kwargs = dict(axis=axis, include_initial=initial)
                    ours[name, axis] = functools.partial(getattr(fnp, name), **kwargs)
                    theirs[name, axis] = functools.partial(getattr(jnp, name), **kwargs)
        if len(shape) == 1:
            for name in ("cumulative_sum", "cumulative_prod"):
                ours[name], theirs[name] = getattr(fnp, name), getattr(jnp, name)
        compare_many(ours, theirs, x, rtol=1e-2)


def test_numpy_average() -> None:
    x = rand((3, 4, 2), np.float32, seed=19)
    w = rand((3, 4, 2), np.float32, seed=20, lo=0.1, hi=1.0)
    cases = [dict(), dict(axis=1), dict(axis=(0, 2), keepdims=True), dict(weights=w),
             dict(weights=w, axis=-1), dict(weights=w[:, 0, 0], axis=0),
             dict(weights=w[0, :, :].T, axis=(2, 1)), dict(weights=w[0], axis=(1, 2)),
             dict(weights=w[:, :, 0], axis=(0, 1), keepdims=True)]
    ours, theirs = {}, {}
    for i, kwargs in enumerate(cases):
        for returned in (False, True):
            ours[i, returned] = functools.partial(fnp.average, returned=returned, **kwargs)
            theirs[i, returned] = functools.partial(jnp.average, returned=returned, **kwargs)
    compare_many(ours, theirs, x, rtol=1e-5)
    ints, weights = np.arange(6, dtype=np.int8).reshape(2, 3), np.array([1, 2, 3])
    compare_many({0: lambda v: fnp.average(v, axis=1, weights=weights)},
                 {0: lambda v: jnp.average(v, axis=1, weights=weights)}, ints)


@settings(max_examples=10, deadline=None)
@given(st.data())
def test_numpy_reductions_hypothesis(data: st.DataObject) -> None:
    shape = data.draw(shapes(min_dims=0, max_dims=3))
    x = data.draw(arrays(np.float32, shape))
    ndim = len(shape)
    axis = data.draw(st.one_of(st.none(), st.integers(-ndim, ndim - 1) if ndim else st.none(),
                               st.lists(st.integers(0, max(ndim - 1, 0)), unique=True,
                                        max_size=ndim).map(tuple)))
    keepdims = data.draw(st.booleans())
    names = ["sum", "mean", "var", "prod", "any"]
    axes = range(ndim) if axis is None else np.atleast_1d(np.asarray(axis, dtype=int))
    if all(shape[a] > 0 for a in axes) and (x.size > 0 or axis is not None):
        names.append("max")
    compare_many({n: functools.partial(getattr(fnp, n), axis=axis, keepdims=keepdims)
                  for n in names},
                 {n: functools.partial(getattr(jnp, n), axis=axis, keepdims=keepdims)
                  for n in names}, x, rtol=1e-4)


# --- fgrad.numpy: derivatives against JAX -----------------------------------------------------

NP_GRAD_CASES: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
    "mean": (lambda x: fnp.mean(x, axis=1), lambda x: jnp.mean(x, axis=1)),
    "var": (lambda x: fnp.var(x, axis=0, ddof=1), lambda x: jnp.var(x, axis=0, ddof=1)),
    "std": (lambda x: fnp.std(x, axis=-1, keepdims=True),
            lambda x: jnp.std(x, axis=-1, keepdims=True)),
    "max_ties": (lambda x: fnp.max(x, axis=1), lambda x: jnp.max(x, axis=1)),
    "min_ties_all": (lambda x: fnp.min(x), lambda x: jnp.min(x)),
    "ptp": (lambda x: fnp.ptp(x, axis=0), lambda x: jnp.ptp(x, axis=0)),
    "prod_zeros": (lambda x: fnp.prod(x * (x > 0.9), axis=1),
                   lambda x: jnp.prod(x * (x > 0.9), axis=1)),
    "max_where": (lambda x: fnp.max(x, axis=1, where=x < 2.5, initial=-10.0),
                  lambda x: jnp.max(x, axis=1, where=x < 2.5, initial=-10.0)),
    "sum_where": (lambda x: fnp.sum(x ** 2, axis=0, where=x > 0.6),
                  lambda x: jnp.sum(x ** 2, axis=0, where=x > 0.6)),
    "mean_where": (lambda x: fnp.mean(x, axis=1, where=x > 0.6),
                   lambda x: jnp.mean(x, axis=1, where=x > 0.6)),
    "average": (lambda x: fnp.average(x, axis=1, weights=x ** 2),
                lambda x: jnp.average(x, axis=1, weights=x ** 2)),
    "cumprod": (lambda x: fnp.cumprod(x, axis=1), lambda x: jnp.cumprod(x, axis=1)),
    "cumsum": (lambda x: fnp.cumsum(x), lambda x: jnp.cumsum(x)),
    "nanmean": (lambda x: fnp.nanmean(fnp.log(x - 0.7), axis=1),
                lambda x: jnp.nanmean(jnp.log(x - 0.7), axis=1)),
    "nanmax": (lambda x: fnp.nanmax(fnp.log(x - 0.7)), lambda x: jnp.nanmax(jnp.log(x - 0.7))),
}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(<0) and sqrt'(0) on purpose
@pytest.mark.parametrize("case", list(NP_GRAD_CASES))
def test_numpy_derivatives(x64: None, case: str) -> None:
    f, jf = NP_GRAD_CASES[case]
    x = np.array([[1.0, 3.0, 3.0, 0.5], [2.0, 2.0, 2.0, 2.0], [0.8, 1.5, 0.8, 2.5]])
    check_derivatives(f, jf, x)


# --- fgrad.numpy: errors ----------------------------------------------------------------------

def test_numpy_errors() -> None:
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match="zero-size array to reduction operation max which "
                                         "has no identity"):
        fnp.max(np.zeros((0, 3), np.float32), axis=0)
    with pytest.raises(ValueError, match="zero-size array to reduction operation min"):
        fnp.min(np.zeros((0,), np.float32))
    with pytest.raises(ValueError, match="reduction operation max does not have an identity, "
                                         "so to use a where mask one has to specify 'initial'"):
        fnp.max(x, where=x > 0)
    with pytest.raises(ValueError, match=r"sum: where must be None or a boolean array"):
        fnp.sum(x, where=x)
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of bounds for array of "
                                         r"dimension 2"):
        fnp.sum(x, axis=2)
    with pytest.raises(ValueError, match=r"mean: axis -3 is out of bounds"):
        fnp.mean(x, axis=-3)
    with pytest.raises(ValueError, match=r"max: axis 0 is out of bounds for array of "
                                         r"dimension 0"):
        fnp.max(1.0, axis=0)
    with pytest.raises(ValueError, match=r"prod: duplicate value in 'axis'"):
        fnp.prod(x, axis=(0, -2))
    with pytest.raises(ValueError, match="attempt to get argmax of an empty sequence"):
        fnp.argmax(np.zeros((0, 3)), axis=0)
    with pytest.raises(ValueError, match="attempt to get argmin of an empty sequence"):
        fnp.argmin(np.zeros((0,)))
    with pytest.raises(ValueError, match="initial value must be a scalar"):
        fnp.max(x, initial=np.zeros(2))
    with pytest.raises(ValueError, match="dtype argument to fnp.std must be inexact"):
        fnp.std(x, dtype=np.int32)
    with pytest.raises(ValueError, match="ddof and correction can't be provided"):
        fnp.var(x, ddof=1, correction=1)
    with pytest.raises(ValueError, match="Axis must be specified when shapes of a and weights"):
        fnp.average(x, weights=np.ones(3))
    with pytest.raises(ValueError, match="Shape of weights must be consistent"):
        fnp.average(x, axis=1, weights=np.ones(2))
    with pytest.raises(ValueError, match="axis was not set to an explicit value"):
        fnp.cumulative_sum(x)
    with pytest.raises(ValueError, match="must be non-scalar"):
        fnp.cumulative_prod(np.float32(2.0))
    with pytest.raises(ValueError, match=r"cumsum: axis 2 is out of bounds"):
        fnp.cumsum(x, axis=2)
    with pytest.raises(NotImplementedError, match="'out' argument to fnp.sum"):
        fnp.sum(x, out=x)
    with pytest.raises(TypeError, match="does not support dtype"):
        fnp.sum(x, dtype=np.complex64)
