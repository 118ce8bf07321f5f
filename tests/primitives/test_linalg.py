"""Focused tests of the linear-algebra family against JAX.

* ``dot_general`` over random dimension numbers (hypothesis chooses the
  batch, contracting and free axes and their positions): values against
  ``jax.lax.dot_general``, JVP/VJP and a second-order product in float64,
  and both transpose rules by the dot-product test through ``backward_pass``;
  ``preferred_element_type``; the error messages.
* ``fgrad.numpy`` products: ``matmul``'s broadcasting forms, ``dot``,
  ``tensordot``, ``einsum`` specs (diagonals, ellipses, broadcasting, three
  operands), ``trace``/``diagonal``, with gradients against JAX.
* factorizations and ``fgrad.numpy.linalg``: values on batched, size-0 and
  degenerate inputs (non-positive-definite, singular), first and second
  derivatives against JAX, including ``det``'s gradient at singular matrices.
* ``jit`` against eager and ``typecheck_jaxpr`` on gradient jaxprs.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
from fgrad import lax
from fgrad.core.ad_util import UndefPrimal, Zero
from fgrad.core.array import Array
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.transforms.transpose import backward_pass
from jit_compare import assert_matches_eager

BF16 = np.dtype(ml_dtypes.bfloat16)
TOL = {np.dtype(np.float16): 3e-3, BF16: 3e-2, np.dtype(np.float32): 1e-5,
       np.dtype(np.float64): 1e-10}


# --- helpers -----------------------------------------------------------------------------

def assert_like_jax(got: Any, want: Any, tol: float | None = None, check_weak: bool = True
                    ) -> None:
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape, f"shape {g.shape} != JAX's {w.shape}"
    assert g.dtype == w.dtype, f"dtype {g.dtype} != JAX's {w.dtype}"
    if check_weak:
        assert bool(got.weak_type) == bool(jax.typeof(want).weak_type)
    if g.dtype.kind in "biu":
        np.testing.assert_array_equal(g, w)
    else:
        tol = TOL[g.dtype] if tol is None else tol
        np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=tol,
                                   atol=tol, equal_nan=True)


def rand(*shape: int, dtype: Any = np.float64, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).uniform(-2, 2, shape).astype(dtype)


def well_conditioned(*shape: int, seed: int = 0) -> np.ndarray:
    a = rand(*shape, seed=seed)
    return a + 4 * np.broadcast_to(np.eye(shape[-1]), shape)


def spd(*shape: int, seed: int = 0) -> np.ndarray:
    a = rand(*shape, seed=seed)
    return a @ np.swapaxes(a, -1, -2) + shape[-1] * np.broadcast_to(np.eye(shape[-1]), shape)


def scalarize(f: Callable[..., Any], sum_fn: Callable[..., Any]) -> Callable[..., Any]:
    """x -> sum(sin(f(x))) (sin: so second derivatives are not trivially zero)."""
    def g(*xs: Any) -> Any:
        out = f(*xs)
        out = out[-1] if isinstance(out, tuple) else out
        return sum_fn(out)
    return g


def check_grads_like_jax(f: Callable[..., Any], jf: Callable[..., Any], *xs: np.ndarray,
                         tol: float = 1e-8, order: int = 2, jit_oracle: bool = True) -> None:
    """fgrad's gradient of sum(sin(f)), JVP of f, and (order 2) Hessian-vector product of
    sum(sin(f)), against JAX's. JAX's side runs as one jitted function: one compile."""
    g = scalarize(f, lambda o: fnp.sum(fnp.sin(o)))
    jg = scalarize(jf, lambda o: jnp.sum(jnp.sin(o)))
    argnums = tuple(range(len(xs)))
    tangents = tuple(rand(*np.shape(x), seed=7) for x in xs)

    def oracle(*ys: Any) -> Any:
        hvp = jax.jvp(jax.grad(jg, argnums), ys, tangents)[1] if order >= 2 else ()
        return jax.grad(jg, argnums)(*ys), jax.jvp(jf, ys, tangents)[1], hvp

    want_grad, want_jvp, want_hvp = (jax.jit(oracle) if jit_oracle else oracle)(*xs)
    for got, want in zip(fgrad.grad(g, argnums)(*xs), want_grad):
        assert_like_jax(got, want, tol, check_weak=False)
    _, t = fgrad.jvp(f, xs, tangents)
    for got, want in zip(jax.tree_util.tree_leaves(t), jax.tree_util.tree_leaves(want_jvp)):
        assert_like_jax(got, want, tol, check_weak=False)
    if order >= 2:
        _, hvp = fgrad.jvp(fgrad.grad(g, argnums), xs, tangents)
        for got, want in zip(hvp, want_hvp):
            assert_like_jax(got, want, tol * 100, check_weak=False)


def transpose_by_backward_pass(f: Callable[..., Any], x: np.ndarray, ct: np.ndarray
                               ) -> np.ndarray:
    """f's transpose applied to ct, through the primitives' transpose rules only."""
    closed = fgrad.make_jaxpr(f)(x)
    (out,) = backward_pass(closed.jaxpr, closed.consts, [UndefPrimal(closed.in_avals[0])],
                           [Array(ct)])
    return np.zeros(x.shape) if type(out) is Zero else np.asarray(out)


# --- dot_general: random dimension numbers --------------------------------------------------

@st.composite
def dot_general_cases(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...], Any]:
    """Shapes and dimension numbers with 0-2 batch, contracting and free axes per side,
    placed at random positions in each operand."""
    side = st.sampled_from([0, 1, 2, 3])
    batch = draw(st.lists(side, max_size=2))
    contract = draw(st.lists(side, max_size=2))
    lhs_free = draw(st.lists(side, max_size=2))
    rhs_free = draw(st.lists(side, max_size=2))

    def layout(free: list[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        axes = ([("b", i) for i in range(len(batch))] + [("c", i) for i in range(len(contract))]
                + [("f", i) for i in range(len(free))])
        order = draw(st.permutations(axes))
        sizes = {"b": batch, "c": contract, "f": free}
        shape = tuple(sizes[k][i] for k, i in order)
        b = tuple(order.index(("b", i)) for i in range(len(batch)))
        c = tuple(order.index(("c", i)) for i in range(len(contract)))
        return shape, c, b

    lhs_shape, lc, lb = layout(lhs_free)
    rhs_shape, rc, rb = layout(rhs_free)
    return lhs_shape, rhs_shape, ((lc, rc), (lb, rb))


@settings(max_examples=25, deadline=None)
@given(case=dot_general_cases(), dtype=st.sampled_from([np.float32, np.int32, np.float16]))
def test_dot_general_values_match_jax(case: Any, dtype: Any) -> None:
    lhs_shape, rhs_shape, dims = case
    x, y = rand(*lhs_shape, dtype=dtype, seed=1), rand(*rhs_shape, dtype=dtype, seed=2)
    assert_like_jax(lax.dot_general(x, y, dims), jax.lax.dot_general(x, y, dims))


@settings(max_examples=15, deadline=None)
@given(case=dot_general_cases())
def test_dot_general_derivatives_and_transposes(case: Any, x64: None) -> None:
    lhs_shape, rhs_shape, dims = case
    x, y = rand(*lhs_shape, seed=1), rand(*rhs_shape, seed=2)
    f = lambda a, b: lax.dot_general(a, b, dims)  # noqa: E731
    jf = lambda a, b: jax.lax.dot_general(a, b, dims)  # noqa: E731
    check_grads_like_jax(f, jf, x, y)
    # Dot-product test of each transpose rule: <ct, f(x, y)> == <f_x^T ct, x> == <f_y^T ct, y>.
    ct = rand(*np.shape(f(x, y)), seed=3)
    lhs = float(np.vdot(ct, np.asarray(f(x, y))))
    ct_x = transpose_by_backward_pass(lambda a: f(a, y), x, ct)
    ct_y = transpose_by_backward_pass(lambda b: f(x, b), y, ct)
    scale = 1 + abs(lhs) + np.abs(ct).sum() * (np.abs(x).sum() + np.abs(y).sum())
    assert abs(lhs - float(np.vdot(ct_x, x))) <= 1e-12 * scale
    assert abs(lhs - float(np.vdot(ct_y, y))) <= 1e-12 * scale


def test_dot_general_16bit_and_preferred_element_type() -> None:
    dims = (((1,), (0,)), ((), ()))
    for dtype in (np.float16, BF16):
        x, y = rand(5, 7, dtype=dtype, seed=1), rand(7, 3, dtype=dtype, seed=2)
        assert_like_jax(lax.dot_general(x, y, dims), jax.lax.dot_general(x, y, dims))
        assert_like_jax(lax.dot_general(x, y, dims, preferred_element_type=np.float32),
                        jax.lax.dot_general(x, y, dims, preferred_element_type=jnp.float32))
    x8 = np.full((2, 3), 100, np.int8)
    out = lax.dot_general(x8, x8.T.copy(), dims, preferred_element_type=np.int32)
    assert out.dtype == np.int32 and int(np.asarray(out)[0, 0]) == 30000
    wrapped = lax.dot_general(x8, x8.T.copy(), dims)  # accumulates in int8: wraps, as XLA
    assert_like_jax(wrapped, jax.lax.dot_general(x8, x8.T.copy(), dims))


def test_dot_general_preferred_element_type_gradient(x64: None) -> None:
    dims = (((1,), (0,)), ((), ()))
    x, y = rand(3, 4, dtype=np.float32, seed=1), rand(4, 2, dtype=np.float32, seed=2)
    f = lambda a, b: lax.dot_general(a, b, dims, preferred_element_type=np.float64)  # noqa: E731
    jf = lambda a, b: jax.lax.dot_general(a, b, dims,  # noqa: E731
                                          preferred_element_type=jnp.float64)
    g = fgrad.grad(lambda a, b: fnp.sum(f(a, b) ** 2), (0, 1))(x, y)
    jg = jax.grad(lambda a, b: jnp.sum(jf(a, b) ** 2), (0, 1))(x, y)
    for got, want in zip(g, jg):
        assert_like_jax(got, want, 1e-5, check_weak=False)


def test_dot_general_weak_type_and_jit() -> None:
    out = lax.dot_general(2.0, 3.0, (((), ()), ((), ())))
    assert out.weak_type and float(out) == 6.0
    x, y = rand(2, 3, 4, dtype=np.float32), rand(2, 4, 5, dtype=np.float32, seed=1)
    dims = (((2,), (1,)), ((0,), (0,)))
    f = lambda a, b: lax.dot_general(a, b, dims)  # noqa: E731
    np.testing.assert_array_equal(np.asarray(fgrad.jit(f)(x, y)), np.asarray(f(x, y)))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(lambda a, b: fnp.sum(f(a, b)), (0, 1)))(x, y))


@pytest.mark.parametrize("lhs, rhs, dims, match", [
    ((3, 4), (5, 6), (((1,), (0,)), ((), ())), r"dot_general: contracting dimensions differ: "
     r"\[4\] and \[5\], for lhs f32\[3,4\] and rhs f32\[5,6\]"),
    ((2, 3), (4, 3), (((1,), (1,)), ((0,), (0,))), r"batch dimensions differ: \[2\] and \[4\]"),
    ((3, 4), (4,), (((2,), (0,)), ((), ())), r"lhs dimension numbers must be in \[0, 2\)"),
    ((3, 4), (4, 4), (((1, 1), (0, 1)), ((), ())), r"lhs contracting and batch dimensions "
     r"must be distinct"),
    ((3, 4), (4, 4), (((1,), (0, 1)), ((), ())), r"equally many contracting"),
])
def test_dot_general_shape_errors(lhs: Any, rhs: Any, dims: Any, match: str) -> None:
    x, y = np.zeros(lhs, np.float32), np.zeros(rhs, np.float32)
    with pytest.raises(FgradTypeError, match=match):
        lax.dot_general(x, y, dims)
    with pytest.raises(FgradTypeError, match=match):  # the same message under jit
        fgrad.jit(lambda a, b: lax.dot_general(a, b, dims))(x, y)


def test_dot_general_dtype_errors() -> None:
    dims = (((0,), (0,)), ((), ()))
    with pytest.raises(FgradTypeError, match=r"operands must have equal dtypes, got "
                                             r"f32\[3\] and i32\[3\]"):
        lax.dot_general(np.ones(3, np.float32), np.ones(3, np.int32), dims)
    with pytest.raises(FgradTypeError, match="must not be narrower"):
        lax.dot_general(np.ones(3, np.int32), np.ones(3, np.int32), dims,
                        preferred_element_type=np.int8)


# --- fgrad.numpy products -----------------------------------------------------------------

MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                 ((5, 1, 2, 3), (4, 3, 6)), ((2, 3), (4, 3, 5)), ((1, 2, 3), (1, 3, 4)),
                 ((1, 2, 3), (5, 3, 4)), ((2, 1, 2, 3), (1, 3, 3, 4)), ((0, 3), (3, 2)),
                 ((2, 0), (0, 3)), ((3,), (2, 3, 4)), ((2, 2, 3), (3,))]


@pytest.mark.parametrize("sa, sb", MATMUL_SHAPES)
def test_matmul_forms(sa: Any, sb: Any) -> None:
    a, b = rand(*sa, dtype=np.float32), rand(*sb, dtype=np.float32, seed=1)
    assert_like_jax(fnp.matmul(a, b), jnp.matmul(a, b))
    assert_like_jax(fgrad.jit(fnp.matmul)(a, b), jnp.matmul(a, b))


@pytest.mark.parametrize("sa, sb", [MATMUL_SHAPES[i] for i in (0, 1, 2, 4, 8, 11)])
def test_matmul_grads(sa: Any, sb: Any, x64: None) -> None:
    check_grads_like_jax(fnp.matmul, jnp.matmul, rand(*sa), rand(*sb, seed=1))


def test_matmul_dtypes() -> None:
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert_like_jax(fnp.matmul(i, i.T.copy()), jnp.matmul(i, i.T))
    assert_like_jax(fnp.matmul(i, rand(3, 2, dtype=np.float32)),
                    jnp.matmul(i, rand(3, 2, dtype=np.float32)))
    b = rand(3, 3) > 0
    assert_like_jax(fnp.matmul(b, b), jnp.matmul(b, b))
    h = rand(4, 5, dtype=np.float16)
    assert_like_jax(fnp.matmul(h, h.T.copy()), jnp.matmul(h, h.T))
    assert_like_jax(fnp.matmul(h, h.T.copy(), preferred_element_type=np.float32),
                    jnp.matmul(h, h.T, preferred_element_type=jnp.float32))


def test_matmul_errors() -> None:
    with pytest.raises(ValueError, match=r"matmul: shapes f32\[3,4\] and f32\[5\] are "
                                         r"incompatible: contracting dimensions 4 and 5 differ"):
        fnp.matmul(np.ones((3, 4), np.float32), np.ones(5, np.float32))
    with pytest.raises(ValueError, match=r"batch dimensions \(2,\) and \(5,\) cannot be "
                                         "broadcast"):
        fnp.matmul(np.ones((2, 3, 4), np.float32), np.ones((5, 4, 6), np.float32))
    with pytest.raises(ValueError, match="input operand 1 must have ndim at least 1"):
        fnp.matmul(np.ones(3, np.float32), 2.0)


@pytest.mark.parametrize("fn, jfn, shapes", [
    (fnp.dot, jnp.dot, [(2, 3), (3, 4)]), (fnp.dot, jnp.dot, [(2, 3), (5, 3, 2)]),
    (fnp.dot, jnp.dot, [(), (2, 3)]), (fnp.dot, jnp.dot, [(3,), (3,)]),
    (fnp.vdot, jnp.vdot, [(2, 3), (6,)]), (fnp.inner, jnp.inner, [(2, 3), (4, 3)]),
    (fnp.inner, jnp.inner, [(3,), ()]), (fnp.outer, jnp.outer, [(2, 2), (3,)]),
    (fnp.kron, jnp.kron, [(2, 3), (3, 2)]), (fnp.kron, jnp.kron, [(3,), (2, 2)]),
    (lambda a, b: fnp.tensordot(a, b, 1), lambda a, b: jnp.tensordot(a, b, 1),
     [(2, 3), (3, 4)]),
    (lambda a, b: fnp.tensordot(a, b, ([2, 0], [0, 1])),
     lambda a, b: jnp.tensordot(a, b, ([2, 0], [0, 1])), [(2, 3, 4), (4, 2, 5)]),
    (lambda a, b: fnp.tensordot(a, b, (-1, 0)), lambda a, b: jnp.tensordot(a, b, (-1, 0)),
     [(2, 3), (3,)]),
])
def test_products_match_jax(fn: Any, jfn: Any, shapes: Any, x64: None) -> None:
    xs = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    assert_like_jax(fn(*xs), jfn(*xs))
    check_grads_like_jax(fn, jfn, *xs)


def test_products_weak_types_and_errors() -> None:
    assert_like_jax(fnp.dot(2.0, 3.0), jnp.dot(2.0, 3.0))
    x = rand(3, dtype=np.float32)
    assert_like_jax(fnp.dot(x, 2.0), jnp.dot(x, 2.0))
    with pytest.raises(ValueError, match=r"dot: shapes f32\[2,3\] and f32\[4\] are not "
                                         "aligned"):
        fnp.dot(np.ones((2, 3), np.float32), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="tensordot: shape mismatch for sum"):
        fnp.tensordot(np.ones((2, 3)), np.ones((4, 2)), 1)
    with pytest.raises(ValueError, match="number of axes 3 exceeds"):
        fnp.tensordot(np.ones((2, 3)), np.ones((3, 2)), 3)


EINSUM_SPECS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iij->ji", [(3, 3, 2)]), ("iii->i", [(2, 2, 2)]),
    ("...ij,...jk->...ik", [(5, 2, 3), (3, 4)]), ("i,i", [(3,), (3,)]), ("i,j->ij", [(3,), (4,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("ij,ij->ij", [(2, 1), (2, 3)]),
    ("abc,cd,de->ae", [(2, 3, 4), (4, 5), (5, 6)]), ("ij,jk,kl", [(2, 3), (3, 4), (4, 2)]),
    ("ab,ab->", [(2, 3), (2, 3)]), ("...i->i", [(2, 3)]), ("ijk,ikl->", [(2, 3, 4), (2, 4, 3)]),
    ("iji->j", [(2, 3, 2)]), ("Ab,bC->AC", [(2, 3), (3, 4)]), ("i,i,i->i", [(3,), (3,), (3,)]),
    ("ij,k->ijk", [(2, 1), (3,)]), ("i...,i...->...", [(3, 2), (3, 1)]), ("", [()]),
    ("ij,jk->ik", [(0, 3), (3, 2)]), ("a,a->a", [(1,), (4,)]),
]


@pytest.mark.parametrize("spec, shapes", EINSUM_SPECS, ids=[s for s, _ in EINSUM_SPECS])
def test_einsum_specs(spec: str, shapes: Any, x64: None) -> None:
    xs = [rand(*s, seed=i) for i, s in enumerate(shapes)]
    assert_like_jax(fnp.einsum(spec, *xs), jnp.einsum(spec, *xs))
    if all(0 not in s for s in shapes):
        f = lambda *a: fnp.einsum(spec, *a)  # noqa: E731
        check_grads_like_jax(f, lambda *a: jnp.einsum(spec, *a), *xs, order=1)


def test_einsum_dtypes_forms_and_jit() -> None:
    i = np.arange(6, dtype=np.int32).reshape(2, 3)
    assert_like_jax(fnp.einsum("ij,kj", i, i), jnp.einsum("ij,kj", i, i))
    eye = np.eye(3, dtype=bool)
    assert_like_jax(fnp.einsum("ii", eye), jnp.einsum("ii", eye))
    assert_like_jax(fnp.einsum(",", 2.0, 3.0), jnp.einsum(",", 2.0, 3.0))
    a, b = rand(2, 3, dtype=np.float32), rand(3, 4, dtype=np.float32, seed=1)
    assert_like_jax(fnp.einsum(a, [0, 1], b, [1, 2], [2, 0]),
                    jnp.einsum(a, [0, 1], b, [1, 2], [2, 0]))
    assert_like_jax(fnp.einsum(a, [Ellipsis, 1], b, [1, 2]),
                    jnp.einsum(a, [Ellipsis, 1], b, [1, 2]))
    h = a.astype(np.float16)
    assert_like_jax(fnp.einsum("ij,kj", h, h, preferred_element_type=np.float32),
                    jnp.einsum("ij,kj", h, h, preferred_element_type=np.float32))
    f = lambda x, y: fnp.einsum("ij,jk->ki", x, y, optimize=True)  # noqa: E731
    np.testing.assert_array_equal(np.asarray(fgrad.jit(f)(a, b)), np.asarray(f(a, b)))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(lambda x: fnp.einsum("iij->", x)))(
        rand(3, 3, 2, dtype=np.float32)))


@pytest.mark.parametrize("spec, shapes, match", [
    ("ij,jk", [(2, 3), (4, 5)], r"size of label 'j' is 3 in one operand and 4 in another"),
    ("ij", [(2,)], r"subscripts 'ij' in 'ij' name 2 axes, but the operand has 1"),
    ("ij,jk", [(2, 3)], r"name 2 operand\(s\), but 1 were given"),
    ("ij->ii", [(2, 2)], r"output subscript 'i' appears more than once"),
    ("ij->k", [(2, 2)], r"output subscript 'k' .* does not appear in the inputs"),
    ("i1", [(2, 2)], r"invalid subscript '1'"),
    ("ii", [(2, 3)], r"repeated subscript 'i' in 'ii' needs equal sizes, got \[2, 3\]"),
])
def test_einsum_errors(spec: str, shapes: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        fnp.einsum(spec, *[np.ones(s, np.float32) for s in shapes])


@pytest.mark.parametrize("shape, offset, axis1, axis2", [
    ((3, 4), 0, 0, 1), ((3, 4), 1, 0, 1), ((3, 4), -2, 0, 1), ((3, 4), 4, 0, 1),
    ((3, 4), -3, 0, 1), ((2, 3, 4), 1, 2, 0), ((2, 3, 4), -1, -1, -2), ((0, 3), 0, 0, 1),
    ((1, 1), 0, 0, 1), ((4, 2, 3, 3), 0, 2, 3),
])
def test_diagonal_and_trace(shape: Any, offset: int, axis1: int, axis2: int, x64: None) -> None:
    x = rand(*shape)
    for fn, jfn in [(fnp.diagonal, jnp.diagonal), (fnp.trace, jnp.trace)]:
        f = lambda a, fn=fn: fn(a, offset, axis1, axis2)  # noqa: E731
        jf = lambda a, jfn=jfn: jfn(a, offset, axis1, axis2)  # noqa: E731
        assert_like_jax(f(x), jf(x))
        if x.size:
            check_grads_like_jax(f, jf, x, order=1)
            ct = rand(*np.shape(f(x)), seed=5)
            assert np.isclose(float(np.vdot(ct, np.asarray(f(x)))),
                              float(np.vdot(transpose_by_backward_pass(f, x, ct), x)))


def test_trace_dtypes_and_errors() -> None:
    i8 = np.arange(9, dtype=np.int8).reshape(3, 3)
    assert_like_jax(fnp.trace(i8), jnp.trace(i8))
    assert_like_jax(fnp.trace(i8, dtype=np.float32), jnp.trace(i8, dtype=np.float32))
    with pytest.raises(ValueError, match="axis1 and axis2 cannot be the same"):
        fnp.trace(np.ones((2, 2)), 0, 1, -1)
    with pytest.raises(ValueError, match=r"diagonal: requires an array of at least two "
                                         r"dimensions, got f32\[3\]"):
        fnp.diagonal(np.ones(3, np.float32))


# --- factorizations: lax.cholesky, lax.triangular_solve, lax.lu ------------------------------

@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (1, 1), (0, 0), (2, 0, 0)])
def test_cholesky_values_and_derivatives(shape: Any, x64: None) -> None:
    a = spd(*shape) if shape[-1] else np.zeros(shape)
    assert_like_jax(lax.cholesky(a), jax.lax.linalg.cholesky(a))
    if a.size:
        check_grads_like_jax(lax.cholesky, jax.lax.linalg.cholesky, a, tol=1e-7)
        L = np.asarray(lax.cholesky(a))
        np.testing.assert_allclose(L @ np.swapaxes(L, -1, -2), a, atol=1e-10)


def test_cholesky_not_positive_definite_is_nan() -> None:
    bad = np.stack([spd(3, 3), -np.eye(3)]).astype(np.float32)
    out = np.asarray(lax.cholesky(bad))
    assert np.isfinite(out[0]).all()
    assert np.isnan(out[1][np.tril_indices(3)]).all() and not np.triu(out[1], 1).any()
    assert_like_jax(lax.cholesky(bad), jax.lax.linalg.cholesky(bad), 1e-5)
    h = spd(3, 3).astype(np.float16)  # JAX has no float16 Cholesky: float32, rounded
    np.testing.assert_array_equal(np.asarray(lax.cholesky(h)),
                                  np.asarray(lax.cholesky(h.astype(np.float32))).astype(h.dtype))


TRIANGULAR = [dict(left_side=ls, lower=lo, transpose_a=tr, unit_diagonal=False)
              for ls in (True, False) for lo in (True, False) for tr in (True, False)] + [
    dict(left_side=True, lower=True, transpose_a=False, unit_diagonal=True),
    dict(left_side=False, lower=False, transpose_a=True, unit_diagonal=True)]


@pytest.mark.parametrize("kw", TRIANGULAR, ids=lambda kw: "-".join(k for k, v in kw.items() if v))
def test_triangular_solve(kw: dict[str, bool], x64: None) -> None:
    a = well_conditioned(2, 4, 4)
    b = rand(2, 4, 3, seed=1) if kw["left_side"] else rand(2, 3, 4, seed=1)
    f = lambda a, b: lax.triangular_solve(a, b, **kw)  # noqa: E731
    jf = lambda a, b: jax.lax.linalg.triangular_solve(a, b, **kw)  # noqa: E731
    assert_like_jax(f(a, b), jf(a, b))
    check_grads_like_jax(f, jf, a, b, tol=1e-7)
    ct = rand(*b.shape, seed=2)  # the transpose in b, by the dot-product test
    lhs = float(np.vdot(ct, np.asarray(f(a, b))))
    assert np.isclose(lhs, float(np.vdot(transpose_by_backward_pass(lambda v: f(a, v), b, ct),
                                         b)))


def test_triangular_solve_vector_singular_and_errors() -> None:
    a, v = well_conditioned(3, 3).astype(np.float32), rand(3, dtype=np.float32)
    for left in (True, False):
        assert_like_jax(lax.triangular_solve(a, v, left_side=left, lower=True),
                        jax.lax.linalg.triangular_solve(a, v, left_side=left, lower=True))
    singular = np.tril(a)
    singular[1, 1] = 0
    out = np.asarray(lax.triangular_solve(singular, v[:, None], left_side=True, lower=True))
    assert not np.isfinite(out[1:]).any()  # XLA divides by the zero: inf/nan, no error
    with pytest.raises(FgradTypeError, match=r"triangular_solve: a must be \[\.\.\., m, m\] "
                                             r"and b \[\.\.\., m, n\] \(left_side\)"):
        lax.triangular_solve(a, np.ones((4, 2), np.float32), left_side=True)
    with pytest.raises(FgradTypeError, match="expected a floating-point array"):
        lax.triangular_solve(np.eye(2, dtype=np.int32), np.ones((2, 2), np.int32))


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 3), (3, 5), (5, 3), (1, 1), (0, 0), (2, 0, 3)])
def test_lu(shape: Any, x64: None) -> None:
    a = rand(*shape)
    got, want = lax.lu(a), jax.lax.linalg.lu(a)
    for g, w in zip(got, want):
        assert_like_jax(g, w)
    lu, _, perm = (np.asarray(o) for o in got)
    m, n = shape[-2:]
    k = min(m, n)
    L = np.tril(lu, -1)[..., :, :k] + np.eye(m, k)
    U = np.triu(lu)[..., :k, :]
    np.testing.assert_allclose(L @ U, np.take_along_axis(a, perm[..., None], -2), atol=1e-12)
    if a.size:
        f = lambda x: lax.lu(x)[0]  # noqa: E731
        # JAX's own LU derivatives fail under jax.jit for some shapes (its rule indexes
        # with a traced permutation), and are slow eagerly: second order for one shape.
        second = shape == (4, 4)
        check_grads_like_jax(f, lambda x: jax.lax.linalg.lu(x)[0], a, tol=1e-7,
                             order=2 if second else 1, jit_oracle=shape == (2, 3, 3))


def test_lu_singular_and_16bit() -> None:
    a = np.array([[1.0, 2.0], [2.0, 4.0]], np.float32)
    for g, w in zip(lax.lu(a), jax.lax.linalg.lu(a)):
        assert_like_jax(g, w)
    h = rand(3, 3, dtype=np.float16)  # JAX has no float16 LU: computed in float32, rounded
    for g, w in zip(lax.lu(h), lax.lu(h.astype(np.float32))):
        assert g.dtype == (h.dtype if w.dtype == np.float32 else w.dtype)
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w).astype(g.dtype))


# --- fgrad.numpy.linalg ----------------------------------------------------------------------

@pytest.mark.parametrize("a_shape, b_shape", [((3, 3), (3,)), ((2, 3, 3), (3,)),
                                              ((3, 3), (3, 2)), ((2, 3, 3), (2, 3, 1)),
                                              ((3, 3), (4, 3, 2)), ((1, 3, 3), (2, 1, 3, 2))])
def test_solve(a_shape: Any, b_shape: Any, x64: None) -> None:
    a, b = well_conditioned(*a_shape), rand(*b_shape, seed=1)
    assert_like_jax(fnp.linalg.solve(a, b), jnp.linalg.solve(a, b), 1e-12)
    check_grads_like_jax(fnp.linalg.solve, jnp.linalg.solve, a, b, tol=1e-7)


def test_solve_errors_and_singular() -> None:
    with pytest.raises(ValueError, match="must be at least two dimensional"):
        fnp.linalg.solve(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match=r"linalg.solve: argument must have shape "
                                         r"\[\.\.\., n, n\], got f32\[2,3\]"):
        fnp.linalg.solve(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="incompatible"):
        fnp.linalg.solve(np.eye(3), np.ones(4))
    with pytest.raises(ValueError, match="a batch of vectors b needs a trailing axis"):
        fnp.linalg.solve(np.ones((2, 3, 3)), np.ones((4, 3)))
    out = np.asarray(fnp.linalg.solve(np.ones((2, 2), np.float32), np.ones(2, np.float32)))
    assert not np.isfinite(out).all()  # singular: inf/nan, like JAX, not an error


INV_DET_SLOGDET = [(fnp.linalg.inv, jnp.linalg.inv, n) for n in (1, 3)] + [
    (fnp.linalg.det, jnp.linalg.det, n) for n in (1, 2, 3, 5)] + [
    (fnp.linalg.slogdet, jnp.linalg.slogdet, n) for n in (1, 2, 4)]


@pytest.mark.parametrize("fn, jfn, n", INV_DET_SLOGDET,
                         ids=[f"{f.__name__}_{n}" for f, _, n in INV_DET_SLOGDET])
def test_inv_det_slogdet(fn: Any, jfn: Any, n: int, x64: None) -> None:
    a = well_conditioned(2, n, n) * np.array([1, -1])[:, None, None]  # both signs of det
    got, want = fn(a), jfn(a)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert_like_jax(g, w, 1e-10)
    check_grads_like_jax(fn, jfn, a, tol=1e-7)


def test_slogdet_result() -> None:
    a = well_conditioned(2, 3, 3) * np.array([1, -1])[:, None, None]
    result = fnp.linalg.slogdet(a)
    assert isinstance(result, fnp.linalg.SlogdetResult)
    sign, logabsdet = result
    assert result.sign is sign and result.logabsdet is logabsdet
    np.testing.assert_array_equal(np.asarray(sign), [1.0, -1.0])
    np.testing.assert_allclose(np.asarray(sign) * np.exp(np.asarray(logabsdet)),
                               np.linalg.det(a), rtol=1e-5)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # log(0) in slogdet of singular
def test_det_gradient_at_singular_matrices(x64: None) -> None:
    for rank_drop in (1, 2):
        a = rand(5, 5)
        a[:, :rank_drop] = a[:, rank_drop:2 * rank_drop]  # rank 5 - rank_drop
        assert_like_jax(fgrad.grad(fnp.linalg.det)(a), jax.grad(jnp.linalg.det)(a), 1e-8,
                        check_weak=False)
        assert np.isfinite(np.asarray(fgrad.grad(fnp.linalg.det)(a))).all()
    s = np.zeros((2, 2))
    assert_like_jax(fnp.linalg.slogdet(s).sign, jnp.linalg.slogdet(s).sign)
    assert_like_jax(fnp.linalg.slogdet(np.zeros((4, 4))).logabsdet,
                    jnp.linalg.slogdet(np.zeros((4, 4))).logabsdet)
    assert_like_jax(fnp.linalg.det(np.zeros((0, 0))), jnp.linalg.det(np.zeros((0, 0))))


def test_linalg_float32_jit_and_jaxprs() -> None:
    a, b = well_conditioned(4, 4).astype(np.float32), rand(4, 2, dtype=np.float32)
    s = spd(4, 4).astype(np.float32)
    for fn, jfn, args in [(fnp.linalg.solve, jnp.linalg.solve, (a, b)),
                          (fnp.linalg.inv, jnp.linalg.inv, (a,)),
                          (fnp.linalg.det, jnp.linalg.det, (a,)),
                          (fnp.linalg.cholesky, jnp.linalg.cholesky, (s,))]:
        assert_like_jax(fn(*args), jfn(*args), 1e-4)
        assert_matches_eager(fgrad.jit(fn)(*args), fn(*args))
        g = fgrad.grad(lambda x: fnp.sum(fn(x, *args[1:])))
        typecheck_jaxpr(fgrad.make_jaxpr(g)(args[0]))
        np.testing.assert_allclose(np.asarray(fgrad.jit(g)(args[0])), np.asarray(g(args[0])),
                                   rtol=1e-6)


def test_cholesky_upper_and_errors(x64: None) -> None:
    a = spd(2, 3, 3)
    for upper in (False, True):
        f = lambda x: fnp.linalg.cholesky(x, upper=upper)  # noqa: E731
        jf = lambda x: jnp.linalg.cholesky(x, upper=upper)  # noqa: E731
        assert_like_jax(f(a), jf(a))
        check_grads_like_jax(f, jf, a, tol=1e-7)
    for fn in (fnp.linalg.det, fnp.linalg.inv, fnp.linalg.cholesky, fnp.linalg.slogdet):
        with pytest.raises(ValueError, match=r"must have shape \[\.\.\., n, n\], got "
                                             r"f32\[2,3\]"):
            fn(np.ones((2, 3), np.float32))


NORMS = [(None, None), (None, 1), (1, -1), (np.inf, 0), (-np.inf, 1), (0, 1), (3, -1),
         (0.5, 0), (2, 0), ("fro", (0, 1)), (1, (1, 0)), (-1, (0, 1)), (np.inf, (0, 1)),
         (-np.inf, (1, 0)), (None, (0, 1))]


@pytest.mark.parametrize("ord, axis", NORMS)
@pytest.mark.parametrize("keepdims", [False, True])
def test_norm(ord: Any, axis: Any, keepdims: bool, x64: None) -> None:
    x = rand(3, 4)
    x = np.sign(x) * (np.abs(x) + 0.1 + 0.013 * np.arange(12).reshape(3, 4))  # no ties, no 0
    f = lambda v: fnp.linalg.norm(v, ord, axis, keepdims)  # noqa: E731
    jf = lambda v: jnp.linalg.norm(v, ord, axis, keepdims)  # noqa: E731
    assert_like_jax(f(x), jf(x))
    check_grads_like_jax(f, jf, x, tol=1e-7)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the NaN gradient at 0
def test_norm_edge_cases() -> None:
    z = np.zeros(3, np.float32)
    g, jg = fgrad.grad(fnp.linalg.norm)(z), jax.grad(jnp.linalg.norm)(z)
    assert np.isnan(np.asarray(g)).all() and np.isnan(np.asarray(jg)).all()  # as JAX
    i = np.arange(6).reshape(2, 3)
    assert_like_jax(fnp.linalg.norm(i), jnp.linalg.norm(i))
    e = np.zeros((0, 3), np.float32)
    assert_like_jax(fnp.linalg.norm(e, np.inf, 0), jnp.linalg.norm(e, np.inf, 0))
    with pytest.raises(ValueError, match="improper number of axes"):
        fnp.linalg.norm(np.ones((2, 2, 2)), 2)
    with pytest.raises(ValueError, match="invalid order 'bad' for a vector norm"):
        fnp.linalg.norm(np.ones(3), "bad")
    with pytest.raises(NotImplementedError, match="svd"):
        fnp.linalg.norm(np.ones((2, 2)), "nuc")
