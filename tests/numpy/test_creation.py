"""Focused tests for ``fgrad.numpy``'s array creation (``_creation.py``), against ``jax.numpy``.

Dtype inference (int32/float32 by default, float64 only with x64), weak types
(Python scalars make weak arrays; lists and numpy values strong), ``*_like``
overrides, ranges and grids including empty and single-element ones,
triangles of traced arrays, derivatives through ``linspace``/``diag``/``tril``,
``jit`` and the dtype helpers.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core.jaxpr import typecheck_jaxpr

BF16 = ml_dtypes.bfloat16


from jax_compare import assert_matches, weak  # noqa: E402,F401


def same(call: Callable[[Any], Any], what: str = "", rtol: float = 1e-6) -> None:
    """``call(fnp)`` matches ``call(jnp)``."""
    assert_matches(call(fnp), call(jnp), what=what, rtol=rtol)


# --- array, asarray -----------------------------------------------------------------------------

ARRAY_INPUTS: list[Any] = [
    1, 2.5, True, np.float64(1.5), np.int8(3), np.array([1, 2]), np.array([1.0, 2.0]),
    [1, 2], [1, 2.5], [True, False], [[1, 2], [3, 4]], [np.int8(1), 2], [True, 2],
    [np.float16(1), 2.0], (1.0, 2.0), [], [[1.0], [2.0]], np.arange(6).reshape(2, 3).T,
]


@pytest.mark.parametrize("value", ARRAY_INPUTS, ids=[repr(v)[:30] for v in ARRAY_INPUTS])
def test_array_like_jax(value: Any) -> None:
    same(lambda np_: np_.array(value), f"array({value!r})")
    same(lambda np_: np_.asarray(value), f"asarray({value!r})")
    same(lambda np_: np_.array(value, dtype=np.float16), f"array({value!r}, float16)")
    same(lambda np_: np_.array(value, ndmin=3), f"array({value!r}, ndmin=3)")


def test_array_of_arrays_and_tracers() -> None:
    x = fnp.array([1.0, 2.0])
    assert_matches(fnp.array([x, x * 2]), jnp.array([jnp.array([1.0, 2.0]),
                                                      jnp.array([2.0, 4.0])]))
    assert_matches(fnp.array(fnp.array(2.5)), jnp.array(jnp.array(2.5)))  # stays weak
    assert_matches(fnp.array(fnp.array(2.5), dtype=np.float32),
                   jnp.array(jnp.array(2.5), dtype=np.float32))

    def f(a: Any, b: Any) -> Any:
        return fnp.sum(fnp.array([[a, b], [b * a, 1.0]]) ** 2)

    def jf(a: Any, b: Any) -> Any:
        return jnp.sum(jnp.array([[a, b], [b * a, 1.0]]) ** 2)

    assert_matches(fgrad.jit(f)(1.5, -0.5), jax.jit(jf)(1.5, -0.5))
    for g, w in zip(fgrad.grad(f, (0, 1))(1.5, -0.5), jax.grad(jf, (0, 1))(1.5, -0.5)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)


def test_array_float64_needs_x64(x64: None) -> None:
    for value in (1.5, np.float64(1.5), [1.0, 2.0], np.arange(3), 3):
        same(lambda np_: np_.array(value), f"x64 array({value!r})")
    same(lambda np_: np_.zeros(2))
    same(lambda np_: np_.arange(3.0))


def test_array_errors() -> None:
    with pytest.raises(ValueError, match="None is not a valid"):
        fnp.array([1.0, None])
    with pytest.raises(TypeError, match="cannot make an fgrad array from str"):
        fnp.array("abc")
    with pytest.raises(TypeError, match="does not support dtype complex"):
        fnp.array([1 + 2j])
    with pytest.raises(OverflowError):
        fnp.array(2**40)
    with pytest.raises(ValueError, match="same shape"):
        fnp.array([fnp.ones(2), fnp.ones(3)])


# --- filled arrays -------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda np_: np_.zeros(3), lambda np_: np_.zeros((2, 0)), lambda np_: np_.ones((2, 3), int),
    lambda np_: np_.empty(4, np.float16), lambda np_: np_.full((2,), 1.0),
    lambda np_: np_.full((2,), 1), lambda np_: np_.full(3, True), lambda np_: np_.full((), 7),
    lambda np_: np_.full((2, 2), 2.5, np.int8), lambda np_: np_.full((2, 3), np.float16(1.5)),
    lambda np_: np_.full((2, 3), np.array([1.0, 2.0, 3.0])),
    lambda np_: np_.zeros(np.int64(2), BF16),
    lambda np_: np_.ones([]), lambda np_: np_.identity(3, int),
], ids=range(14))
def test_filled_like_jax(call: Callable[[Any], Any]) -> None:
    same(call)


@pytest.mark.parametrize("name", ["zeros_like", "ones_like", "empty_like"])
def test_like_functions(name: str) -> None:
    for base in (1.0, 2, np.arange(3, dtype=np.int8), np.ones((2, 3), np.float16),
                 jnp.array(2.5)):
        fbase = fnp.array(base) if isinstance(base, jax.Array) else base
        assert_matches(getattr(fnp, name)(fbase), getattr(jnp, name)(base), f"{name}({base})")
        assert_matches(getattr(fnp, name)(fbase, dtype=np.int32, shape=(2, 1)),
                       getattr(jnp, name)(base, dtype=np.int32, shape=(2, 1)))
    for fill in (2.5, 3, np.float32(1.5), np.array([1.0, 2.0, 3.0])):
        same(lambda np_: np_.full_like(np.ones(3, np.int16), fill), f"full_like fill={fill}")
        same(lambda np_: np_.full_like(2.0, fill, shape=(3,)), f"full_like weak fill={fill}")


def test_like_functions_are_constants_under_jit() -> None:
    def f(x: Any) -> Any:
        return fnp.zeros_like(x) + fnp.ones_like(x, dtype=np.int32) + fnp.full_like(x, 2.0)

    closed = fgrad.make_jaxpr(f)(np.ones(3, np.float32))
    invar = closed.jaxpr.invars[0]
    assert all(invar not in eqn.invars for eqn in closed.jaxpr.eqns), str(closed)
    np.testing.assert_array_equal(fgrad.jit(f)(np.ones(3, np.float32)), [3.0, 3.0, 3.0])
    assert fgrad.grad(lambda x: fnp.sum(fnp.ones_like(x) * x))(np.ones(2, np.float32)).tolist() \
        == [1.0, 1.0]
    # A traced fill value is not a constant: full is differentiable in it.
    assert fgrad.grad(lambda v: fnp.sum(fnp.full((2, 3), v)))(1.5) == 6.0


def test_filled_errors() -> None:
    with pytest.raises(ValueError, match="negative dimensions"):
        fnp.zeros((2, -1))
    with pytest.raises(TypeError, match="shape must be an int or a sequence of ints"):
        fnp.ones((2.5, 1))
    with pytest.raises(ValueError, match="cannot broadcast"):
        fnp.full((2, 2), [1.0, 2.0, 3.0])


# --- ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args,kwargs", [
    ((5,), {}), ((5.0,), {}), ((0,), {}), ((-3,), {}), ((2, 11, 3), {}), ((10, 2, -3), {}),
    ((0.5, 3.0, 0.25), {}), ((1, 2, 0.1), {}), ((0.5, 3), {}), ((3, 1), {}),
    ((np.int8(5),), {}), ((0, 1, 0.1), {"dtype": np.float16}), ((0, 5), {"dtype": float}),
    ((1.5, 7.2, 1.1), {"dtype": int}), ((np.float32(0.1), 1, 0.3), {}), ((2.5,), {}),
    ((0, 10, 2.5), {"dtype": BF16}),
], ids=str)
def test_arange_like_jax(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    same(lambda np_: np_.arange(*args, **kwargs), f"arange{args}{kwargs}")


def test_arange_x64_and_concreteness(x64: None) -> None:
    same(lambda np_: np_.arange(4))
    same(lambda np_: np_.arange(0.0, 1.0, 0.1))
    with pytest.raises(fgrad.ConcretizationTypeError, match="arange.*'stop'"):
        fgrad.jit(lambda n: fnp.arange(n))(3)
    with pytest.raises(ValueError, match="arange: arguments must be scalars"):
        fnp.arange(np.arange(3))
    # Under grad the bounds are concrete (JVP tracers know their values), as in JAX.
    assert fgrad.grad(lambda x: fnp.sum(fnp.arange(x) * x))(3.0) == 3.0


@pytest.mark.parametrize("kwargs", [
    {"num": 5}, {"num": 1}, {"num": 0}, {"num": 2, "endpoint": False}, {"num": 7, "retstep": True},
    {"num": 1, "retstep": True}, {"num": 1, "endpoint": False, "retstep": True},
    {"num": 0, "retstep": True}, {"num": 4, "dtype": int}, {"num": 6, "dtype": np.float16},
    {"num": 50},
], ids=str)
def test_linspace_like_jax(kwargs: dict[str, Any]) -> None:
    # (float16: XLA keeps intermediates in float32, fgrad rounds each step: 1 ulp apart)
    rtol = 2e-3 if kwargs.get("dtype") is np.float16 else 1e-6
    same(lambda np_: np_.linspace(-1.5, 2, **kwargs), f"linspace {kwargs}", rtol)
    same(lambda np_: np_.linspace(0, 10, **kwargs), f"linspace ints {kwargs}", rtol)


def test_linspace_array_bounds_and_axis() -> None:
    lo, hi = np.array([0.0, 1.0]), np.array([[2.0], [3.0], [4.0]])
    for axis in (0, 1, 2, -1, -2):
        same(lambda np_: np_.linspace(lo, hi, 4, axis=axis), f"axis={axis}")
    same(lambda np_: np_.linspace(lo, hi, 4, axis=-1, retstep=True, endpoint=False))
    same(lambda np_: np_.linspace(lo, hi, 1, axis=1, endpoint=False, retstep=True))
    with pytest.raises(ValueError, match="non-negative"):
        fnp.linspace(0, 1, -1)


def test_linspace_derivatives(x64: None) -> None:
    def f(a: Any, b: Any) -> Any:
        return fnp.sum(fnp.sin(fnp.linspace(a, b, 7, endpoint=False)))

    def jf(a: Any, b: Any) -> Any:
        return jnp.sum(jnp.sin(jnp.linspace(a, b, 7, endpoint=False)))

    for g, w in zip(fgrad.grad(f, (0, 1))(0.3, 2.0), jax.grad(jf, (0, 1))(0.3, 2.0)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)
    hess = fgrad.hessian(f)(0.3, 2.0)
    np.testing.assert_allclose(np.asarray(hess), np.asarray(jax.hessian(jf)(0.3, 2.0)),
                               rtol=1e-12)
    assert_matches(fgrad.jit(lambda a, b: fnp.linspace(a, b, 5))(0.0, 1.0),
                   jax.jit(lambda a, b: jnp.linspace(a, b, 5))(0.0, 1.0))


def test_logspace_like_jax() -> None:
    same(lambda np_: np_.logspace(0, 2, 3))
    same(lambda np_: np_.logspace(0, 3, 4, base=2.0, endpoint=False))
    same(lambda np_: np_.logspace(1, 2, 3, dtype=np.float16), rtol=1e-3)
    same(lambda np_: np_.logspace(np.array([0.0, 1.0]), 2, 3, axis=1))


# --- matrices -------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda np_: np_.eye(3), lambda np_: np_.eye(3, 5, k=2), lambda np_: np_.eye(4, 2, k=-1),
    lambda np_: np_.eye(2, dtype=bool), lambda np_: np_.eye(0), lambda np_: np_.eye(3, k=5),
    lambda np_: np_.identity(2, dtype=np.float16), lambda np_: np_.tri(3),
    lambda np_: np_.tri(3, 5, k=1, dtype=int), lambda np_: np_.tri(4, 2, k=-2, dtype=bool),
], ids=range(10))
def test_matrices_like_jax(call: Callable[[Any], Any]) -> None:
    same(call)


def test_triangles_like_jax() -> None:
    m = np.arange(24, dtype=np.float32).reshape(2, 3, 4) + 1
    for k in (-2, -1, 0, 1, 3, 10):
        same(lambda np_: np_.tril(m, k), f"tril k={k}")
        same(lambda np_: np_.triu(m[0], k), f"triu k={k}")
    same(lambda np_: np_.tril(np.ones((3, 3), np.int8)))
    same(lambda np_: np_.tril(fnp.full((2, 2), 2.0) if np_ is fnp else jnp.full((2, 2), 2.0)))
    with pytest.raises(ValueError, match="tril: the argument must be at least 2-D"):
        fnp.tril(np.ones(3))


def test_triangles_of_traced_arrays(x64: None) -> None:
    def f(m: Any) -> Any:
        return fnp.sum(fnp.tril(m) ** 2 + fnp.triu(m, 1) * 3.0)

    def jf(m: Any) -> Any:
        return jnp.sum(jnp.tril(m) ** 2 + jnp.triu(m, 1) * 3.0)

    m = np.random.RandomState(0).randn(3, 4)
    np.testing.assert_allclose(np.asarray(fgrad.grad(f)(m)), np.asarray(jax.grad(jf)(m)),
                               rtol=1e-12)
    np.testing.assert_allclose(np.asarray(fgrad.jit(f)(m)), np.asarray(jf(m)), rtol=1e-12)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f))(m).jaxpr)


def test_diag_diagflat_meshgrid_like_jax() -> None:
    v = np.array([1.0, -2.0, 3.0], np.float32)
    m = np.arange(12, dtype=np.float32).reshape(3, 4)
    for k in (-3, -1, 0, 2):
        same(lambda np_: np_.diag(v, k), f"diag 1-d k={k}")
        same(lambda np_: np_.diag(m, k), f"diag 2-d k={k}")
    same(lambda np_: np_.diag(np.arange(3)))
    same(lambda np_: np_.diag(np.zeros(0)))
    same(lambda np_: np_.diagflat(m[:2, :2], 1))
    same(lambda np_: np_.diagflat(np.array([True, False])))
    with pytest.raises(ValueError, match="diag: the input must be 1-D or 2-D"):
        fnp.diag(np.ones((2, 2, 2)))
    a, b, c = np.arange(3), np.array([0.5, 1.5]), np.array([1.0, 2.0, 3.0, 4.0], np.float16)
    for kwargs in ({}, {"indexing": "ij"}, {"sparse": True}, {"indexing": "ij", "sparse": True}):
        same(lambda np_: np_.meshgrid(a, b, c, **kwargs), f"meshgrid {kwargs}")
        same(lambda np_: np_.meshgrid(a, b, **kwargs), f"meshgrid 2 {kwargs}")
    same(lambda np_: np_.meshgrid(a))
    assert fnp.meshgrid() == [] and jnp.meshgrid() == []
    with pytest.raises(ValueError, match="indexing must be 'xy' or 'ij'"):
        fnp.meshgrid(a, indexing="ji")
    with pytest.raises(ValueError, match="must be 1-D"):
        fnp.meshgrid(m)


def test_diag_derivatives(x64: None) -> None:
    v = np.array([0.5, -1.0, 2.0])
    g = fgrad.grad(lambda v: fnp.sum(fnp.diag(v, 1) @ fnp.diag(v, 1).T * 2.0))(v)
    w = jax.grad(lambda v: jnp.sum(jnp.diag(v, 1) @ jnp.diag(v, 1).T * 2.0))(v)
    np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)


# --- copy, astype, dtype helpers ----------------------------------------------------------

def test_copy_and_astype() -> None:
    same(lambda np_: np_.copy(2.0))
    same(lambda np_: np_.copy(np.arange(3)))
    for dtype in (np.float16, np.int8, bool, np.uint8, None, BF16, float, int):
        same(lambda np_: np_.astype(np.array([1.7, -2.2, 0.0], np.float32), dtype),
             f"astype {dtype}")
        same(lambda np_: np_.astype(fnp.array(2.5) if np_ is fnp else jnp.array(2.5), dtype))
    x = fnp.array([1.0, 2.0])
    assert fnp.copy(x).tolist() == [1.0, 2.0]
    assert fgrad.grad(lambda x: fnp.astype(x, np.float32) * 2.0)(1.0) == 2.0


ALL_DTYPES = [np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
              np.uint64, np.float16, BF16, np.float32, np.float64]


@pytest.mark.parametrize("x64_on", [False, True])
def test_promote_types_and_can_cast_tables(x64_on: bool) -> None:
    from conftest import enable_x64

    with enable_x64(x64_on):
        for a, b in itertools.product(ALL_DTYPES, ALL_DTYPES):
            assert fnp.promote_types(a, b) == jnp.promote_types(a, b), (a, b)
            assert fnp.can_cast(a, b) == jnp.can_cast(a, b), (a, b)


def test_dtype_helpers() -> None:
    for args in [(np.int8, 1.0), (np.float16, 2), (np.arange(3), np.float16(1)), (int, float),
                 (np.int8, int), (True, 1), (np.ones(2, np.float32), fnp.array(1.0)),
                 (np.uint8, np.int8), (float,), (bool, bool)]:
        jargs = [jnp.array(1.0) if isinstance(a, fgrad.Array) else a for a in args]
        assert fnp.result_type(*args) == jnp.result_type(*jargs), args
    assert fnp.can_cast(fnp.ones(2), np.float64)
    assert fnp.finfo(BF16).eps == jnp.finfo(BF16).eps
    assert fnp.finfo(fnp.ones(2, np.float16)).max == jnp.finfo(np.float16).max
    assert fnp.iinfo(np.int8).min == -128 and fnp.iinfo(fnp.arange(2)).bits == 32
    with pytest.raises(TypeError, match="finfo needs a float dtype"):
        fnp.finfo(np.int32)
