"""Focused tests for the shape family: ``fgrad.lax``'s shape primitives and the
numpy-style functions built on them (``fgrad/numpy/_shape.py``), against JAX.

What is checked, beyond the generic op-table suites:

* values, dtypes and weak types against ``jax.lax`` / ``jax.numpy`` for many
  shapes (0-d, size-0 and size-1 axes) and dtypes, with hypothesis drawing
  ``pad`` configurations (negative and interior padding) and strided slices;
* ``grad``, Hessian-vector products, ``jvp`` and ``vjp`` against JAX in
  float64 (the oracle jitted, so it compiles once), and finite-difference
  checks to second order;
* the transpose rules directly (the padding value's cotangent is the sum over
  the padded positions) and by the dot-product test;
* ``jit`` agreeing with eager; ``typecheck_jaxpr`` on differentiated jaxprs;
* error messages, in eager mode and under ``jit``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import strategies
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.core.ad_util import UndefPrimal
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.primitives.shape import concatenate_p, pad_p, slice_p
from fgrad.test_util import check_grads

DTYPES = [np.float32, np.int32, np.bool_, jnp.bfloat16, np.float16]


def rand(*shape: int, seed: int = 0, dtype: Any = np.float64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype) == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(np.dtype(dtype), np.integer):
        return rng.integers(-9, 9, size=shape).astype(dtype)
    return rng.uniform(-1.5, 1.5, size=shape).astype(dtype)


def assert_same(got: Any, want: Any, check_weak: bool = True, exact: bool = True) -> None:
    """Same structure, shapes, dtypes, weak types and values as JAX's result."""
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert isinstance(g, fgrad.Array), f"expected an fgrad Array, got {type(g).__name__}"
        assert g.shape == w.shape, f"shape {g.shape} != JAX's {w.shape}"
        assert g.dtype == w.dtype, f"dtype {g.dtype} != JAX's {w.dtype}"
        if check_weak:
            assert g.weak_type == w.weak_type, f"weak_type {g.weak_type} != JAX's {w.weak_type}"
        g64, w64 = np.asarray(g).astype(np.float64), np.asarray(w).astype(np.float64)
        if exact:
            np.testing.assert_array_equal(g64, w64)
        else:
            np.testing.assert_allclose(g64, w64, rtol=1e-12, atol=1e-12)


def _dot(xs: Any, us: Any) -> Any:
    return sum((x * u).sum() for x, u in zip(xs, us))


def assert_derivatives_match_jax(f: Callable[..., Any], jf: Callable[..., Any],
                                 args: list[Any], argnums: tuple[int, ...] = (0,)) -> None:
    """Gradient and a Hessian-vector product of scalar ``f`` against JAX's (jitted, so the
    oracle compiles once), plus ``typecheck_jaxpr`` on fgrad's second-order jaxpr."""
    us = [rand(*np.shape(args[i]), seed=11 + i) for i in argnums]
    f_grad, jf_grad = fgrad.grad(f, argnums), jax.grad(jf, argnums)
    f_hvp = fgrad.grad(lambda *a: _dot(f_grad(*a), us), argnums)
    jf_hvp = jax.grad(lambda *a: _dot(jf_grad(*a), us), argnums)
    want = jax.jit(lambda *a: (jf_grad(*a), jf_hvp(*a)))(*args)
    assert_same((f_grad(*args), f_hvp(*args)), want, exact=False)
    typecheck_jaxpr(fgrad.make_jaxpr(f_hvp)(*args))


# --- primitives: values against jax.lax ------------------------------------------------------

@st.composite
def pad_cases(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[tuple[int, int, int], ...]]:
    shape = draw(strategies.shapes(max_dims=3))
    config = tuple((draw(st.integers(-3, 3)), draw(st.integers(-3, 3)), draw(st.integers(0, 2)))
                   for _ in shape)
    dilated = [n + (n - 1) * i if n else 0 for n, (_, _, i) in zip(shape, config)]
    assume(all(lo + hi + d >= 0 for (lo, hi, _), d in zip(config, dilated)))
    return shape, config


@settings(max_examples=25, deadline=None)
@given(pad_cases(), st.sampled_from(DTYPES))
def test_pad_matches_jax(case: Any, dtype: Any) -> None:
    shape, config = case
    x, value = rand(*shape, dtype=dtype), rand(dtype=dtype, seed=1)
    want = jax.lax.pad(x, value, config)
    assert_same(lax.pad(x, value, config), want)
    assert_same(fgrad.jit(lambda x, v: lax.pad(x, v, config))(x, value), want)


@st.composite
def slice_cases(draw: st.DrawFn) -> tuple[tuple[int, ...], Any, Any, Any]:
    shape = draw(strategies.shapes(max_dims=3))
    starts, limits, steps = [], [], []
    for n in shape:
        lo = draw(st.integers(0, n))
        starts.append(lo)
        limits.append(draw(st.integers(lo, n)))
        steps.append(draw(st.integers(1, 3)))
    strides = draw(st.sampled_from([None, tuple(steps)]))
    return shape, tuple(starts), tuple(limits), strides


@settings(max_examples=25, deadline=None)
@given(slice_cases(), st.sampled_from(DTYPES))
def test_slice_matches_jax(case: Any, dtype: Any) -> None:
    shape, starts, limits, strides = case
    x = rand(*shape, dtype=dtype)
    want = jax.lax.slice(x, starts, limits, strides)
    assert_same(lax.slice(x, starts, limits, strides), want)
    assert_same(fgrad.jit(lambda x: lax.slice(x, starts, limits, strides))(x), want)


@pytest.mark.parametrize("shapes,dim", [
    ([(2, 3), (1, 3), (0, 3)], 0), ([(2, 0), (2, 4)], 1), ([(1,)], 0), ([(2, 1, 3)] * 3, 2),
])
@pytest.mark.parametrize("dtype", DTYPES)
def test_concatenate_matches_jax(shapes: list[tuple[int, ...]], dim: int, dtype: Any) -> None:
    xs = [rand(*s, dtype=dtype, seed=i) for i, s in enumerate(shapes)]
    assert_same(lax.concatenate(xs, dim), jax.lax.concatenate(xs, dim))


@pytest.mark.parametrize("shape,dims", [((), ()), ((3,), (0,)), ((2, 3, 4), (0, 2)),
                                        ((0, 2), (0, 1)), ((1, 3), (1,))])
@pytest.mark.parametrize("dtype", DTYPES)
def test_rev_matches_jax(shape: tuple[int, ...], dims: tuple[int, ...], dtype: Any) -> None:
    x = rand(*shape, dtype=dtype)
    assert_same(lax.rev(x, dims), jax.lax.rev(x, dims))


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float32, jnp.bfloat16, np.float16])
def test_iota_matches_jax(dtype: Any) -> None:
    assert_same(lax.iota(dtype, 7), jax.lax.iota(dtype, 7))
    assert_same(lax.iota(dtype, 0), jax.lax.iota(dtype, 0))
    for dim in range(3):
        assert_same(lax.broadcasted_iota(dtype, (2, 3, 4), dim),
                    jax.lax.broadcasted_iota(dtype, (2, 3, 4), dim))
    assert_same(fgrad.jit(lambda: lax.broadcasted_iota(dtype, (2, 3), 1))(),
                jax.lax.broadcasted_iota(dtype, (2, 3), 1))


def test_iota_has_no_derivative_and_stages() -> None:
    f = lambda x: x * lax.convert_element_type(lax.iota(np.int32, 3), np.float32)
    np.testing.assert_array_equal(fgrad.grad(lambda x: f(x).sum())(2.0), 3.0)
    jaxpr = fgrad.make_jaxpr(lambda: lax.iota(np.int32, 3))()
    assert "iota[" in str(jaxpr)
    typecheck_jaxpr(jaxpr)


def test_weak_types_follow_jax() -> None:
    weak = lax.broadcast_in_dim(1.0, (2,), ())
    jweak = jax.lax.broadcast_in_dim(1.0, (2,), ())
    strong, jstrong = np.ones(2, np.float32), jnp.ones(2, np.float32)
    assert_same(weak, jweak)
    assert_same(lax.pad(weak, 0.0, [(1, 1, 1)]), jax.lax.pad(jweak, 0.0, [(1, 1, 1)]))
    assert_same(lax.pad(weak, np.float32(0), [(1, 1, 0)]),
                jax.lax.pad(jweak, np.float32(0), [(1, 1, 0)]))
    assert_same(lax.concatenate([weak, weak], 0), jax.lax.concatenate([jweak, jweak], 0))
    assert_same(lax.concatenate([weak, strong], 0), jax.lax.concatenate([jweak, jstrong], 0))
    assert_same(lax.slice(weak, (1,), (2,)), jax.lax.slice(jweak, (1,), (2,)))
    assert_same(lax.rev(weak, (0,)), jax.lax.rev(jweak, (0,)))
    assert_same(lax.full((2,), 3.0), jax.lax.full((2,), 3.0))
    assert_same(lax.full((2,), 3.0, np.float32), jax.lax.full((2,), 3.0, np.float32))
    assert_same(lax.full_like(weak, 2), jax.lax.full_like(jweak, 2))


# --- primitives: derivatives against JAX (float64) ------------------------------------------

PAD_CONFIGS = [((1, 2, 0), (0, 1, 0)), ((-1, 2, 1), (1, -2, 2)), ((-2, -1, 3), (0, 0, 0)),
               ((2, -3, 1), (-1, 0, 2))]


def _nonlinear(y: Any) -> Any:
    return (fnp.sin(y) * y).sum() if isinstance(y, (fgrad.Array, fgrad.core.trace.Tracer)) \
        else (jnp.sin(y) * y).sum()


@pytest.mark.parametrize("config", PAD_CONFIGS)
def test_pad_derivatives_match_jax(x64: None, config: Any) -> None:
    x, v = rand(3, 4), np.float64(0.7)
    f = lambda x, v: _nonlinear(lax.pad(x, v, config))
    jf = lambda x, v: _nonlinear(jax.lax.pad(x, v, config))
    assert_derivatives_match_jax(f, jf, [x, v], (0, 1))
    t = (rand(3, 4, seed=3), np.float64(-0.3))
    assert_same(fgrad.jvp(f, (x, v), t), jax.jit(lambda x, v: jax.jvp(jf, (x, v), t))(x, v),
                exact=False)
    check_grads(lambda x, v: lax.pad(x, v, config), (x, v), order=2)


def test_pad_transpose_rule_directly(x64: None) -> None:
    config = ((-1, 2, 1), (1, -2, 2))
    x = rand(3, 4)
    ct = rand(*lax.pad(x, 0.0, config).shape, seed=5)
    ct_x, ct_v = pad_p.transpose(ct, UndefPrimal(ShapedArray((3, 4), np.float64)),
                                 UndefPrimal(ShapedArray((), np.float64)),
                                 padding_config=config)
    # Where did each operand element land? Pad an index array and read it back.
    index = np.arange(12.0).reshape(3, 4) + 1
    landed = np.asarray(lax.pad(index, 0.0, config))
    expected_x = np.zeros(12)
    for pos, i in np.ndenumerate(landed):
        if i:
            expected_x[int(i) - 1] = ct[pos]
    np.testing.assert_allclose(np.asarray(ct_x), expected_x.reshape(3, 4))
    np.testing.assert_allclose(float(ct_v), ct[landed == 0].sum())
    # Only the padding value unknown: the operand gets no cotangent.
    none_x, ct_v2 = pad_p.transpose(ct, x, UndefPrimal(ShapedArray((), np.float64)),
                                    padding_config=config)
    assert none_x is None
    np.testing.assert_allclose(float(ct_v2), ct[landed == 0].sum())


@pytest.mark.parametrize("starts,limits,strides", [
    ((0, 1), (5, 6), (2, 3)), ((1, 0), (4, 6), None), ((2, 2), (2, 6), (1, 2)),
    ((0, 0), (5, 6), (5, 6)),
])
def test_slice_derivatives_match_jax(x64: None, starts: Any, limits: Any, strides: Any) -> None:
    x = rand(5, 6)
    f = lambda x: _nonlinear(lax.slice(x, starts, limits, strides))
    jf = lambda x: _nonlinear(jax.lax.slice(x, starts, limits, strides))
    assert_derivatives_match_jax(f, jf, [x])
    check_grads(lambda x: lax.slice(x, starts, limits, strides), (x,), order=2)
    # The transpose is a pad with interior padding: its jaxpr says so.
    jaxpr = fgrad.make_jaxpr(fgrad.grad(f))(x)
    typecheck_jaxpr(jaxpr)
    assert "pad[" in str(jaxpr)


def test_slice_transpose_rule_directly() -> None:
    ct = rand(2, 2, dtype=np.float32)
    (out,) = slice_p.transpose(ct, UndefPrimal(ShapedArray((5, 6), np.float32)),
                               start_indices=(0, 1), limit_indices=(5, 6), strides=(3, 4))
    expected = np.zeros((5, 6), np.float32)
    expected[0:5:3, 1:6:4] = ct
    np.testing.assert_array_equal(np.asarray(out), expected)


def test_concatenate_derivatives_match_jax(x64: None) -> None:
    a, b, c = rand(2, 3), rand(1, 3, seed=1), rand(0, 3, seed=2)
    f = lambda a, b, c: _nonlinear(lax.concatenate([a, b, c, a], 0))
    jf = lambda a, b, c: _nonlinear(jax.lax.concatenate([a, b, c, a], 0))
    assert_derivatives_match_jax(f, jf, [a, b, c], (0, 1, 2))
    check_grads(lambda a, b: lax.concatenate([a, b], 1), (rand(2, 3), rand(2, 2)), order=2)
    # Only some operands linear: the others get None from the transpose rule.
    cts = concatenate_p.transpose(rand(3, 3), a, UndefPrimal(ShapedArray((1, 3), np.float64)),
                                  dimension=0)
    assert cts[0] is None and cts[1].shape == (1, 3)


def test_rev_derivatives_match_jax(x64: None) -> None:
    x = rand(3, 4)
    f = lambda x: _nonlinear(lax.rev(x, (0, 1)) * x)
    jf = lambda x: _nonlinear(jax.lax.rev(x, (0, 1)) * x)
    assert_derivatives_match_jax(f, jf, [x])
    check_grads(lambda x: lax.rev(x, (1,)), (x,), order=2)


@pytest.mark.parametrize("fn,jfn,shapes", [
    (lambda x, v: lax.pad(x, v, ((-1, 2, 1), (1, -2, 2))),
     lambda x, v: jax.lax.pad(x, v, ((-1, 2, 1), (1, -2, 2))), [(3, 4), ()]),
    (lambda x: lax.slice(x, (0, 1), (5, 6), (2, 3)),
     lambda x: jax.lax.slice(x, (0, 1), (5, 6), (2, 3)), [(5, 6)]),
    (lambda a, b: lax.concatenate([b, a, b], 1),
     lambda a, b: jax.lax.concatenate([b, a, b], 1), [(2, 3), (2, 1)]),
    (lambda x: lax.rev(x, (0,)), lambda x: jax.lax.rev(x, (0,)), [(4, 2)]),
    (lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (0, 2)),
     lambda x: jax.lax.broadcast_in_dim(x, (2, 3, 4), (0, 2)), [(2, 1)]),
])
def test_vjp_of_linear_ops_is_the_transpose(x64: None, fn: Callable[..., Any],
                                            jfn: Callable[..., Any], shapes: Any) -> None:
    xs = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    out, f_vjp = fgrad.vjp(fn, *xs)
    ct = rand(*out.shape, seed=9)
    cts = f_vjp(ct)
    want = jax.jit(lambda ct, *xs: jax.vjp(jfn, *xs)[1](ct))(ct, *xs)
    assert_same(cts, want, check_weak=False, exact=False)
    # Dot-product test: <f(x), ct> == <x, f^T(ct)> for a linear f.
    lhs = float(np.vdot(np.asarray(fn(*xs)), ct))
    rhs = sum(float(np.vdot(np.asarray(c), x)) for c, x in zip(cts, xs))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12)


def test_jit_matches_eager_for_lax_ops(x64: None) -> None:
    x = rand(4, 5)

    def f(x: Any) -> Any:
        y = lax.pad(x, 1.5, ((1, -1, 1), (-2, 2, 0)))
        z = lax.concatenate([lax.rev(y, (1,)), lax.slice(y, (0, 0), (7, 5), (1, 1))], 1)
        return lax.reshape(lax.transpose(z, (1, 0)), (z.size,))

    assert_same(fgrad.jit(f)(x), f(x))
    assert_same(fgrad.jit(fgrad.grad(lambda x: _nonlinear(f(x))))(x),
                fgrad.grad(lambda x: _nonlinear(f(x)))(x), exact=False)


# --- primitives: errors ---------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda x: lax.pad(x, np.int32(0), ((0, 0, 0), (0, 0, 0))), r"pad: .*same dtype"),
    (lambda x: lax.pad(x, np.zeros(2, np.float32), ((0, 0, 0), (0, 0, 0))), r"pad: .*scalar"),
    (lambda x: lax.pad(x, np.float32(0), ((0, 0, 0),)), r"pad: .*one \(low, high, interior\)"),
    (lambda x: lax.pad(x, np.float32(0), ((0, 0, -1), (0, 0, 0))), r"interior .*non-negative"),
    (lambda x: lax.pad(x, np.float32(0), ((-3, -1, 0), (0, 0, 0))), r"negative shape"),
    (lambda x: lax.slice(x, (0, 0), (4, 3)), r"slice: operand f32\[3,4\].*limit"),
    (lambda x: lax.slice(x, (2, 0), (1, 3)), r"0 <= start <= limit <= size"),
    (lambda x: lax.slice(x, (0,), (1,)), r"one start, limit and stride per axis"),
    (lambda x: lax.slice(x, (0, 0), (3, 4), (0, 1)), r"strides must be positive"),
    (lambda x: lax.concatenate([x, x.astype(np.int32)], 0), r"concatenate: .*equal dtypes"),
    (lambda x: lax.concatenate([x, x[:, :2]], 0), r"equal sizes except along dimension 0"),
    (lambda x: lax.concatenate([x, x[0]], 0), r"concatenate: .*equal ranks"),
    (lambda x: lax.concatenate([x], 2), r"dimension 2 out of range"),
    (lambda x: lax.concatenate([], 0), r"at least one operand"),
    (lambda x: lax.rev(x, (2,)), r"rev: dimensions \(2,\) must be distinct axes of f32\[3,4\]"),
    (lambda x: lax.rev(x, (0, 0)), r"rev: .*distinct"),
    (lambda x: lax.iota(np.bool_, 3), r"iota: dtype must be an integer or float"),
    (lambda x: lax.broadcasted_iota(np.int32, (2, 3), 2), r"iota: invalid shape"),
    (lambda x: lax.reshape(x, (5, 2)), r"reshape: cannot reshape f32\[3,4\]"),
    (lambda x: lax.transpose(x, (0, 0)), r"transpose: permutation"),
    (lambda x: lax.squeeze(x, (0,)), r"squeeze: cannot remove axes"),
    (lambda x: lax.expand_dims(x, (0, 0)), r"expand_dims: repeated"),
])
def test_lax_errors(call: Callable[[Any], Any], match: str) -> None:
    x = np.ones((3, 4), np.float32)
    with pytest.raises(FgradTypeError, match=match):
        call(x)
    with pytest.raises(FgradTypeError, match=match):  # the same message under jit
        fgrad.jit(lambda: call(x))()


# --- the numpy layer: values against jax.numpy ----------------------------------------------

X = rand(2, 3, 4, dtype=np.float32)
NP_CASES: list[tuple[str, Callable[..., Any], Callable[..., Any], list[Any]]] = [
    ("reshape", lambda x: fnp.reshape(x, (4, -1)), lambda x: jnp.reshape(x, (4, -1)), [X]),
    ("reshape_int", lambda x: fnp.reshape(x, -1), lambda x: jnp.reshape(x, -1), [X]),
    ("reshape_scalar", lambda x: fnp.reshape(x, (1, 1)), lambda x: jnp.reshape(x, (1, 1)),
     [np.float32(3)]),
    ("reshape_empty", lambda x: fnp.reshape(x, (-1, 3)),
     lambda x: jnp.reshape(x, (-1, 3)), [np.ones((0, 6), np.float32)]),
    ("ravel", fnp.ravel, jnp.ravel, [X]),
    ("transpose", fnp.transpose, jnp.transpose, [X]),
    ("transpose_axes", lambda x: fnp.transpose(x, (1, -1, 0)),
     lambda x: jnp.transpose(x, (1, -1, 0)), [X]),
    ("transpose_0d", fnp.transpose, jnp.transpose, [np.float32(2)]),
    ("swapaxes", lambda x: fnp.swapaxes(x, -1, 0), lambda x: jnp.swapaxes(x, -1, 0), [X]),
    ("moveaxis", lambda x: fnp.moveaxis(x, -1, 0), lambda x: jnp.moveaxis(x, -1, 0), [X]),
    ("moveaxis_multi", lambda x: fnp.moveaxis(x, (0, 2), (2, 1)),
     lambda x: jnp.moveaxis(x, (0, 2), (2, 1)), [X]),
    ("expand_dims", lambda x: fnp.expand_dims(x, -1), lambda x: jnp.expand_dims(x, -1), [X]),
    ("expand_dims_tuple", lambda x: fnp.expand_dims(x, (0, 3, -1)),
     lambda x: jnp.expand_dims(x, (0, 3, -1)), [X]),
    ("squeeze", fnp.squeeze, jnp.squeeze, [np.ones((1, 3, 1, 1), np.float32)]),
    ("squeeze_axes", lambda x: fnp.squeeze(x, (0, -1)), lambda x: jnp.squeeze(x, (0, -1)),
     [np.ones((1, 3, 1, 1), np.float32)]),
    ("squeeze_nothing", fnp.squeeze, jnp.squeeze, [X]),
    ("broadcast_to", lambda x: fnp.broadcast_to(x, (5, 2, 3, 4)),
     lambda x: jnp.broadcast_to(x, (5, 2, 3, 4)), [X]),
    ("broadcast_to_int", lambda x: fnp.broadcast_to(x, 4), lambda x: jnp.broadcast_to(x, 4),
     [np.float32(1)]),
    ("broadcast_to_empty", lambda x: fnp.broadcast_to(x, (0, 3)),
     lambda x: jnp.broadcast_to(x, (0, 3)), [np.ones((1, 3), np.int32)]),
    ("broadcast_arrays", lambda x, y: fnp.broadcast_arrays(x, y, 2.0),
     lambda x, y: jnp.broadcast_arrays(x, y, 2.0), [X[:, :1], np.ones(4, np.int32)]),
    ("concatenate", lambda x, y: fnp.concatenate([x, y, x], 1),
     lambda x, y: jnp.concatenate([x, y, x], 1), [X, X[:, :1]]),
    ("concatenate_none", lambda x, y: fnp.concatenate((x, y), axis=None),
     lambda x, y: jnp.concatenate((x, y), axis=None), [X, np.float32(2)]),
    ("concatenate_promote", lambda x, y: fnp.concatenate([x, y]),
     lambda x, y: jnp.concatenate([x, y]), [np.ones(2, np.int8), np.ones(3, np.uint8)]),
    ("concatenate_dtype", lambda x, y: fnp.concatenate([x, y], dtype=np.int32),
     lambda x, y: jnp.concatenate([x, y], dtype=np.int32), [X[0, 0], X[1, 1]]),
    ("concatenate_array", lambda x: fnp.concatenate(x, axis=-1),
     lambda x: jnp.concatenate(x, axis=-1), [X]),
    ("concatenate_bool", lambda x, y: fnp.concatenate([x, y]),
     lambda x, y: jnp.concatenate([x, y]), [np.array([True]), np.array([False, True])]),
    ("stack", lambda x, y: fnp.stack([x, y], axis=-1), lambda x, y: jnp.stack([x, y], axis=-1),
     [X, X]),
    ("stack_scalars", lambda x: fnp.stack([x, 2.0, x]), lambda x: jnp.stack([x, 2.0, x]),
     [np.float32(1)]),
    ("stack_weak", lambda: fnp.stack([1.0, 2.0]), lambda: jnp.stack([1.0, 2.0]), []),
    ("stack_array", lambda x: fnp.stack(x, 1), lambda x: jnp.stack(x, 1), [X]),
    ("stack_dtype", lambda x: fnp.stack([x, x], dtype=np.float16),
     lambda x: jnp.stack([x, x], dtype=np.float16), [X]),
    ("hstack", lambda x, y: fnp.hstack([x, y]), lambda x, y: jnp.hstack([x, y]), [X, X]),
    ("hstack_1d", lambda x: fnp.hstack([x, 1.0, x]), lambda x: jnp.hstack([x, 1.0, x]),
     [X[0, 0]]),
    ("vstack", lambda x, y: fnp.vstack([x, y]), lambda x, y: jnp.vstack([x, y]),
     [X[0, 0], X[0]]),
    ("dstack", lambda x, y: fnp.dstack([x, y]), lambda x, y: jnp.dstack([x, y]),
     [X[0], X[1]]),
    ("column_stack", lambda x, y: fnp.column_stack([x, y]),
     lambda x, y: jnp.column_stack([x, y]), [X[0, 0], X[0].T]),
    ("split", lambda x: fnp.split(x, 2, axis=-1), lambda x: jnp.split(x, 2, axis=-1), [X]),
    ("split_indices", lambda x: fnp.split(x, [1, 1, 3]), lambda x: jnp.split(x, [1, 1, 3]),
     [X[0, 0]]),
    ("array_split", lambda x: fnp.array_split(x, 3, axis=2),
     lambda x: jnp.array_split(x, 3, axis=2), [X]),
    ("array_split_many", lambda x: fnp.array_split(x, 6), lambda x: jnp.array_split(x, 6),
     [X[0, 0]]),
    ("tile", lambda x: fnp.tile(x, 2), lambda x: jnp.tile(x, 2), [X]),
    ("tile_grow", lambda x: fnp.tile(x, (2, 1, 1, 3)), lambda x: jnp.tile(x, (2, 1, 1, 3)), [X]),
    ("tile_zero", lambda x: fnp.tile(x, (0, 2)), lambda x: jnp.tile(x, (0, 2)), [X[0]]),
    ("tile_scalar", lambda: fnp.tile(2.0, 3), lambda: jnp.tile(2.0, 3), []),
    ("repeat", lambda x: fnp.repeat(x, 2, axis=-1), lambda x: jnp.repeat(x, 2, axis=-1), [X]),
    ("repeat_flat", lambda x: fnp.repeat(x, 3), lambda x: jnp.repeat(x, 3), [X[0]]),
    ("repeat_counts", lambda x: fnp.repeat(x, [1, 0, 3], axis=1),
     lambda x: jnp.repeat(x, np.array([1, 0, 3]), axis=1), [X]),
    ("repeat_total_cut", lambda x: fnp.repeat(x, [2, 2, 2], 1, total_repeat_length=4),
     lambda x: jnp.repeat(x, np.array([2, 2, 2]), 1, total_repeat_length=4), [X]),
    ("repeat_total_fill", lambda x: fnp.repeat(x, [2, 1, 0], 1, total_repeat_length=6),
     lambda x: jnp.repeat(x, np.array([2, 1, 0]), 1, total_repeat_length=6), [X]),
    ("repeat_zero", lambda x: fnp.repeat(x, 0, axis=0), lambda x: jnp.repeat(x, 0, axis=0), [X]),
    ("repeat_scalar", lambda: fnp.repeat(1.5, 3), lambda: jnp.repeat(1.5, 3), []),
    ("flip", fnp.flip, jnp.flip, [X]),
    ("flip_axis", lambda x: fnp.flip(x, -2), lambda x: jnp.flip(x, -2), [X]),
    ("flip_0d", fnp.flip, jnp.flip, [np.float32(1)]),
    ("fliplr", fnp.fliplr, jnp.fliplr, [X]),
    ("flipud", fnp.flipud, jnp.flipud, [X]),
    ("roll", lambda x: fnp.roll(x, -7, 2), lambda x: jnp.roll(x, -7, 2), [X]),
    ("roll_multi", lambda x: fnp.roll(x, (1, 2), (0, -1)),
     lambda x: jnp.roll(x, (1, 2), (0, -1)), [X]),
    ("roll_same_axis", lambda x: fnp.roll(x, (1, 2), 1), lambda x: jnp.roll(x, (1, 2), 1), [X]),
    ("roll_flat", lambda x: fnp.roll(x, 5), lambda x: jnp.roll(x, 5), [X]),
    ("roll_empty", lambda x: fnp.roll(x, 2, 0), lambda x: jnp.roll(x, 2, 0),
     [np.ones((0, 2), np.float32)]),
    ("rot90", fnp.rot90, jnp.rot90, [X]),
    ("rot90_k2", lambda x: fnp.rot90(x, 2, (1, 2)), lambda x: jnp.rot90(x, 2, (1, 2)), [X]),
    ("rot90_neg", lambda x: fnp.rot90(x, -1, (2, 0)), lambda x: jnp.rot90(x, -1, (2, 0)), [X]),
    ("rot90_k4", lambda x: fnp.rot90(x, 4), lambda x: jnp.rot90(x, 4), [X]),
    ("atleast_1d", lambda x, y: fnp.atleast_1d(x, y), lambda x, y: jnp.atleast_1d(x, y),
     [np.float32(1), X]),
    ("atleast_2d", fnp.atleast_2d, jnp.atleast_2d, [X[0, 0]]),
    ("atleast_3d_1d", fnp.atleast_3d, jnp.atleast_3d, [X[0, 0]]),
    ("atleast_3d_2d", fnp.atleast_3d, jnp.atleast_3d, [X[0]]),
    ("atleast_weak", lambda: fnp.atleast_3d(2.0), lambda: jnp.atleast_3d(2.0), []),
]


@pytest.mark.parametrize("name,fn,jfn,args", NP_CASES, ids=[c[0] for c in NP_CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_, jnp.bfloat16])
def test_numpy_functions_match_jax(name: str, fn: Callable[..., Any], jfn: Callable[..., Any],
                                   args: list[Any], dtype: Any) -> None:
    # Recast float32 inputs to the dtype under test; other dtypes are part of the case.
    args = [a.astype(dtype) if getattr(a, "dtype", None) == np.float32 else a for a in args]
    want = jax.jit(jfn)(*[jnp.asarray(a) for a in args])  # one compile, not one per op
    assert_same(fn(*args), want)
    assert_same(fn(*[fnp.asarray(a) for a in args]), want)
    assert_same(fgrad.jit(fn)(*args), want, check_weak=False)  # jit's args are strong


def test_numpy_functions_accept_lists_and_scalars() -> None:
    assert_same(fnp.reshape([[1, 2], [3, 4]], -1), jnp.reshape(jnp.array([[1, 2], [3, 4]]), -1))
    assert_same(fnp.concatenate([[1.0, 2.0], [3]]), jnp.concatenate(
        [jnp.array([1.0, 2.0]), jnp.array([3])]))
    assert_same(fnp.stack([1, 2.5]), jnp.stack([1, 2.5]))
    assert_same(fnp.pad([1.0, 2.0], 1, constant_values=9), jnp.pad(jnp.array([1.0, 2.0]), 1,
                                                                   constant_values=9))
    assert_same(fnp.expand_dims(3, 0), jnp.expand_dims(3, 0))
    assert_same(fnp.ravel(2.5), jnp.ravel(2.5))
    assert fnp.shape([[1, 2, 3]]) == np.shape([[1, 2, 3]]) == (1, 3)
    assert fnp.shape(fnp.zeros((2, 0))) == (2, 0) and fnp.shape(1.0) == ()
    assert fnp.ndim(X) == 3 and fnp.ndim(fnp.asarray(X)) == 3 and fnp.ndim(2) == 0
    assert fnp.size(X) == 24 and fnp.size(fnp.asarray(X), -1) == 4 and fnp.size(3.0) == 1
    assert fnp.broadcast_shapes((2, 1), (3,), 1) == np.broadcast_shapes((2, 1), (3,), 1)
    assert fnp.broadcast_shapes() == ()

    def traced(x: Any) -> Any:
        assert fnp.shape(x) == (2, 3, 4) and fnp.size(x, 1) == 3 and fnp.ndim(x) == 3
        return fnp.split(x, [1], axis=1)

    assert_same(fgrad.jit(traced)(X), jnp.split(X, [1], axis=1))


@st.composite
def np_pad_cases(draw: st.DrawFn) -> tuple[tuple[int, ...], Any, str, dict[str, Any]]:
    mode = draw(st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]))
    shape = draw(strategies.shapes(max_dims=3, allow_empty=mode == "constant"))
    width_forms = [st.integers(0, 6), st.tuples(st.integers(0, 6), st.integers(0, 6))]
    if shape:  # one (before, after) pair per axis
        width_forms.append(st.tuples(*[st.tuples(st.integers(0, 6), st.integers(0, 6))
                                       for _ in shape]))
    widths = draw(st.one_of(*width_forms))
    kwargs: dict[str, Any] = {}
    if mode == "constant":
        kwargs["constant_values"] = draw(st.sampled_from([0, 2.5, (1, -1), ((3, 4),)]))
    if mode in ("reflect", "symmetric"):
        kwargs["reflect_type"] = draw(st.sampled_from(["even", "odd"]))
    return shape, widths, mode, kwargs


@settings(max_examples=25, deadline=None)
@given(np_pad_cases(), st.sampled_from([np.float32, np.int32]))
def test_numpy_pad_matches_jax(case: Any, dtype: Any) -> None:
    shape, widths, mode, kwargs = case
    x = rand(*shape, dtype=dtype)
    want = jnp.pad(jnp.asarray(x), widths, mode=mode, **kwargs)
    assert_same(fnp.pad(x, widths, mode=mode, **kwargs), want)


@settings(max_examples=25, deadline=None)
@given(strategies.shapes(min_dims=1, max_dims=3), st.integers(-7, 7), st.data())
def test_numpy_roll_and_split_match_numpy(shape: Any, shift: int, data: st.DataObject) -> None:
    x = rand(*shape, dtype=np.float32)
    axis = data.draw(st.sampled_from([None, *range(-len(shape), len(shape))]))
    assert_same(fnp.roll(x, shift, axis), jnp.roll(jnp.asarray(x), shift, axis))
    # numpy's split points behave like slice bounds (negative, unsorted, out of range).
    points = data.draw(st.lists(st.integers(-6, 6), max_size=4))
    got = fnp.split(x, points, axis=0)
    want = np.split(x, points, axis=0)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), w)


# --- the numpy layer: derivatives ---------------------------------------------------------

GRAD_CASES = [
    ("pad_reflect", lambda m: (lambda x: m.pad(x, ((4, 1), (2, 3)), mode="reflect"))),
    ("pad_symmetric_odd",
     lambda m: (lambda x: m.pad(x, 3, mode="symmetric", reflect_type="odd"))),
    ("pad_edge", lambda m: (lambda x: m.pad(x, (2, 1), mode="edge"))),
    ("pad_wrap", lambda m: (lambda x: m.pad(x, ((5, 1), (0, 4)), mode="wrap"))),
    ("pad_constant", lambda m: (lambda x: m.pad(x, 2, constant_values=((1.0, 2.0),)))),
    ("roll", lambda m: (lambda x: m.roll(x, (1, -2), (0, 1)))),
    ("repeat_counts", lambda m: (lambda x: m.repeat(x, np.array([3, 0, 1]), axis=0))),
    ("tile", lambda m: (lambda x: m.tile(x, (2, 1, 2)))),
    ("rot90", lambda m: (lambda x: m.rot90(x, 3))),
    ("split", lambda m: (lambda x: m.split(x, [1], axis=1)[1])),
    ("stack_moveaxis", lambda m: (lambda x: m.moveaxis(m.stack([x, x * x], -1), -1, 0))),
]


@pytest.mark.parametrize("name,make", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_numpy_layer_derivatives_match_jax(x64: None, name: str, make: Any) -> None:
    x = rand(3, 3)
    f = lambda x: (fnp.sin(make(fnp)(x)) * make(fnp)(x)).sum()
    jf = lambda x: (jnp.sin(make(jnp)(x)) * make(jnp)(x)).sum()
    assert_derivatives_match_jax(f, jf, [x])
    check_grads(make(fnp), (x,), order=2)


def test_numpy_pad_is_differentiable_in_constant_values(x64: None) -> None:
    x = rand(2, 3)
    f = lambda x, c: (fnp.pad(x, ((1, 0), (2, 1)), constant_values=c) ** 2).sum()
    jf = lambda x, c: (jnp.pad(x, ((1, 0), (2, 1)), constant_values=c) ** 2).sum()
    assert_derivatives_match_jax(f, jf, [x, np.float64(0.5)], (0, 1))
    # Per-axis (before, after) values: axis 0 is padded first (3-wide rows), then axis 1
    # (4-high columns, corners included), so each value's gradient counts its positions.
    c = rand(2, 2, seed=4)
    g = fgrad.grad(lambda c: fnp.pad(x, 1, constant_values=c).sum())(c)
    np.testing.assert_allclose(np.asarray(g), [[3.0, 3.0], [4.0, 4.0]])
    # NOTE: no JAX comparison here: jax 0.10's pad transpose crashes when only the
    # padding value is being differentiated (it sums the operand's cotangent, None).


# --- the numpy layer: errors ----------------------------------------------------------------

@pytest.mark.parametrize("call,error,match", [
    (lambda x: fnp.reshape(x, (5, -1)), TypeError, r"reshape: cannot reshape .*\(2, 3, 4\)"),
    (lambda x: fnp.reshape(x, (-1, -1)), TypeError, r"at most one -1"),
    (lambda x: fnp.reshape(x, 24, order="F"), NotImplementedError, r"order='C'"),
    (lambda x: fnp.transpose(x, (0, 1)), ValueError, r"transpose: axes \(0, 1\) are not"),
    (lambda x: fnp.transpose(x, (0, 1, 3)), ValueError, r"axis 3 is out of bounds"),
    (lambda x: fnp.swapaxes(x, 0, 3), ValueError, r"swapaxes: axis 3 is out of bounds"),
    (lambda x: fnp.moveaxis(x, (0, 1), 0), ValueError, r"moveaxis: .*same number"),
    (lambda x: fnp.moveaxis(x, (0, 0), (1, 2)), ValueError, r"moveaxis: repeated axis"),
    (lambda x: fnp.expand_dims(x, (0, 0)), ValueError, r"expand_dims: repeated axis"),
    (lambda x: fnp.expand_dims(x, 5), ValueError, r"expand_dims: axis 5 is out of bounds"),
    (lambda x: fnp.squeeze(x, 1), ValueError, r"squeeze: .*size not equal to one.*\(2, 3, 4\)"),
    (lambda x: fnp.squeeze(x, 3), ValueError, r"squeeze: axis 3 is out of bounds"),
    (lambda x: fnp.broadcast_to(x, (3, 4)), ValueError, r"broadcast_to: cannot broadcast"),
    (lambda x: fnp.broadcast_to(x, (-1, 3, 4)), ValueError, r"negative dimensions"),
    (lambda x: fnp.broadcast_arrays(x, np.ones(3)), ValueError, r"broadcast_arrays: incompat"),
    (lambda x: fnp.broadcast_shapes((2, 3), (4, 3)), ValueError, r"broadcast_shapes: incompat"),
    (lambda x: fnp.concatenate([]), ValueError, r"need at least one array"),
    (lambda x: fnp.concatenate([1.0, 2.0]), ValueError, r"zero-dimensional arrays"),
    (lambda x: fnp.concatenate([x, x[0]]), ValueError, r"same number of dimensions.*\(3, 4\)"),
    (lambda x: fnp.concatenate([x, x[:, :1]], 2), TypeError, r"concatenate: .*equal sizes"),
    (lambda x: fnp.concatenate([x, x], 3), ValueError, r"concatenate: axis 3 is out of bounds"),
    (lambda x: fnp.stack([x, x[0]]), ValueError, r"stack: all input arrays must have the same"),
    (lambda x: fnp.stack([]), ValueError, r"stack: need at least one array"),
    (lambda x: fnp.stack([x], out=x), NotImplementedError, r"'out'"),
    (lambda x: fnp.split(x, 3, axis=2), ValueError, r"does not result in an equal division"),
    (lambda x: fnp.array_split(x, 0), ValueError, r"number of sections must be larger than 0"),
    (lambda x: fnp.split(x, 2, axis=3), ValueError, r"split: axis 3 is out of bounds"),
    (lambda x: fnp.tile(x, -1), ValueError, r"tile: reps must be non-negative"),
    (lambda x: fnp.repeat(x, -1), ValueError, r"repeat: repeats must be non-negative"),
    (lambda x: fnp.repeat(x, [1, 2], axis=1), ValueError, r"got 2 repeats for an axis of size 3"),
    (lambda x: fnp.repeat(1.0, [1, 2]), ValueError, r"got 2 repeats for an axis of size 1"),
    (lambda x: fnp.repeat(x[0, 0, 0], [1, 2], axis=0), ValueError, r"a scalar can only be"),
    (lambda x: fnp.pad(x, -1), ValueError, r"pad_width can't contain negative values"),
    (lambda x: fnp.pad(x, 1.5), TypeError, r"pad_width must be of integral type"),
    (lambda x: fnp.pad(x, ((1, 2, 3),)), ValueError, r"pad_width has unsupported shape"),
    (lambda x: fnp.pad(x, 1, mode="median"), NotImplementedError, r"mode 'median' is not"),
    (lambda x: fnp.pad(x, 1, mode="edge", constant_values=1), ValueError,
     r"unsupported keyword arguments for mode 'edge'"),
    (lambda x: fnp.pad(x, 1, mode="reflect", reflect_type="up"), ValueError, r"reflect_type"),
    (lambda x: fnp.pad(np.ones((0, 2)), 1, mode="wrap"), ValueError,
     r"cannot apply 'wrap' padding to the empty axis 0"),
    (lambda x: fnp.pad(x, 1, constant_values=np.ones((2, 3))), ValueError,
     r"constant_values has unsupported shape"),
    (lambda x: fnp.fliplr(x[0, 0]), ValueError, r"fliplr: .*at least 2 dimensions"),
    (lambda x: fnp.flipud(1.0), ValueError, r"flipud: .*at least 1 dimension"),
    (lambda x: fnp.flip(x, 3), ValueError, r"flip: axis 3 is out of bounds"),
    (lambda x: fnp.rot90(x[0, 0]), ValueError, r"rot90: .*at least 2 dimensions"),
    (lambda x: fnp.rot90(x, axes=(1, -2)), ValueError, r"rot90: axes must be different"),
    (lambda x: fnp.roll(x, (1, 2, 3), (0, 1)), ValueError, r"roll: .*broadcastable"),
    (lambda x: fnp.size(x, 4), ValueError, r"size: axis 4 is out of bounds"),
])
def test_numpy_errors(call: Callable[[Any], Any], error: type, match: str) -> None:
    x = np.ones((2, 3, 4), np.float32)
    with pytest.raises(error, match=match):
        call(x)


def test_traced_static_arguments_raise_concretization_errors() -> None:
    x = np.ones((4,), np.float32)
    with pytest.raises(fgrad.ConcretizationTypeError, match="static"):
        fgrad.jit(lambda x, s: fnp.roll(x, s))(x, 1)
    with pytest.raises(fgrad.ConcretizationTypeError):
        fgrad.jit(lambda x, n: fnp.reshape(x, (n, -1)))(x, 2)
