"""Batching rules of the linear-algebra family (``fgrad/primitives/linalg.py``).

* ``dot_general`` over random dimension numbers (hypothesis picks the batch,
  contracting and free axes and their order) and random ``in_axes`` (None, 0,
  last, middle) and ``out_axes``, against a Python loop + stack; integer
  operands with ``preferred_element_type``; weak-typed operands; batch sizes
  1 and 0.
* ``cholesky``, ``triangular_solve`` (every ``left_side``/``lower``/
  ``transpose_a``/``unit_diagonal`` combination, operands with their own
  leading batch axes, JAX's single-vector ``b``) and ``lu`` (three results).
* Composition: nested ``vmap`` with different axes against a double loop,
  ``jit(vmap)`` against eager, ``vmap(grad)`` and ``grad`` of a summed
  ``vmap`` against JAX in float64.
* No needless broadcasting: the jaxpr of ``vmap(f, in_axes=(0, None))`` (and
  ``(None, 0)``) has no ``broadcast_in_dim`` and feeds the unbatched operand
  to the primitive as it is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from batch_util import batch_args, check_vmap, loop_and_stack, random_in_axes
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
from fgrad import lax
from fgrad.core.avals import get_aval
from fgrad.core.jaxpr import typecheck_jaxpr

DN = Any


# --- helpers -----------------------------------------------------------------------------

def examples(make: Callable[[np.random.Generator], Sequence[np.ndarray]], size: int,
             seed: int = 0) -> list[Sequence[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [make(rng) for _ in range(size)]


def random_out_axis(rng: np.random.Generator, out_ndim: int) -> int:
    """0, the last axis (-1) or a middle one of the batched output."""
    return [0, -1, int(rng.integers(0, out_ndim + 1))][int(rng.integers(3))]


def check_nested(f: Callable[..., Any], make: Callable[[np.random.Generator], Sequence[Any]],
                 inner: Sequence[int | None], outer: Sequence[int | None], rtol: float = 1e-5,
                 sizes: tuple[int, int] = (3, 2)) -> None:
    """``vmap(vmap(f, inner), outer)`` against a double Python loop."""
    rng = np.random.default_rng(1)
    n_in, n_out = sizes
    per_outer = [batch_args([make(rng) for _ in range(n_in)], inner) for _ in range(n_out)]
    # an argument unmapped by the inner vmap but mapped by the outer one varies per outer step
    args = batch_args(per_outer, outer)
    got = fgrad.vmap(fgrad.vmap(f, in_axes=tuple(inner)), in_axes=tuple(outer))(*args)
    want = loop_and_stack(lambda *a: loop_and_stack(f, a, inner), args, outer)
    for g, w in zip(fgrad.tree_util.tree_leaves(got), fgrad.tree_util.tree_leaves(want)):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=rtol, atol=rtol, equal_nan=True)


def eqn_names(closed: Any) -> list[str]:
    return [e.primitive.name for e in closed.jaxpr.eqns]


def assert_not_broadcast(f: Callable[..., Any], args: Sequence[Any], in_axes: tuple[Any, ...],
                         prim: str) -> None:
    """The unbatched argument reaches ``prim`` untouched: no broadcast, same variable."""
    closed = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=in_axes))(*args)
    assert "broadcast_in_dim" not in eqn_names(closed), str(closed)
    unbatched = [v for v, ax in zip(closed.jaxpr.invars, in_axes) if ax is None]
    eqn = next(e for e in closed.jaxpr.eqns if e.primitive.name == prim)
    for v in unbatched:
        assert any(x is v for x in eqn.invars), f"{prim} does not read the unbatched input\n" \
            f"{closed}"


def spd(rng: np.random.Generator, n: int, lead: tuple[int, ...] = ()) -> np.ndarray:
    a = rng.standard_normal(lead + (n, n))
    return (a @ np.swapaxes(a, -1, -2) + n * np.eye(n)).astype(np.float32)


def triangular(rng: np.random.Generator, m: int, lead: tuple[int, ...] = ()) -> np.ndarray:
    # Well conditioned in both triangles: a strong diagonal.
    return (0.3 * rng.standard_normal(lead + (m, m)) + 3 * np.eye(m)).astype(np.float32)


# --- dot_general -------------------------------------------------------------------------

@st.composite
def dot_configs(draw: Any) -> tuple[tuple[int, ...], tuple[int, ...], DN]:
    """Operand shapes and dimension numbers with axes of each role at random positions."""
    nb, nc = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    nlf, nrf = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    size = st.integers(1, 3)
    b = [draw(size) for _ in range(nb)]
    c = [draw(size) for _ in range(nc)]
    lf, rf = [draw(size) for _ in range(nlf)], [draw(size) for _ in range(nrf)]
    lhs_roles = [("b", i) for i in range(nb)] + [("c", i) for i in range(nc)] + \
        [("f", i) for i in range(nlf)]
    rhs_roles = [("b", i) for i in range(nb)] + [("c", i) for i in range(nc)] + \
        [("f", i) for i in range(nrf)]
    lhs_roles = draw(st.permutations(lhs_roles))
    rhs_roles = draw(st.permutations(rhs_roles))
    sizes = {"b": b, "c": c}
    lhs_shape = tuple(sizes[r][i] if r != "f" else lf[i] for r, i in lhs_roles)
    rhs_shape = tuple(sizes[r][i] if r != "f" else rf[i] for r, i in rhs_roles)

    def where(roles: list[tuple[str, int]], kind: str, n: int) -> tuple[int, ...]:
        return tuple(roles.index((kind, i)) for i in range(n))

    dn = ((where(lhs_roles, "c", nc), where(rhs_roles, "c", nc)),
          (where(lhs_roles, "b", nb), where(rhs_roles, "b", nb)))
    return lhs_shape, rhs_shape, dn


@settings(max_examples=25, deadline=None)
@given(cfg=dot_configs(), seed=st.integers(0, 2**16), batch=st.sampled_from([1, 3]))
def test_dot_general_random_axes(cfg: Any, seed: int, batch: int) -> None:
    lhs_shape, rhs_shape, dn = cfg
    rng = np.random.default_rng(seed)
    exs = examples(lambda r: (r.standard_normal(lhs_shape).astype(np.float32),
                              r.standard_normal(rhs_shape).astype(np.float32)), batch, seed)
    f = lambda x, y: lax.dot_general(x, y, dn)  # noqa: E731
    out_ndim = np.ndim(f(*exs[0])) + 1
    for _ in range(3):
        in_axes = random_in_axes(rng, [len(lhs_shape), len(rhs_shape)])
        out_axes = random_out_axis(rng, out_ndim - 1)
        check_vmap(f, batch_args(exs, in_axes), in_axes, out_axes, rtol=1e-5,
                   what=f"dot_general {lhs_shape} {rhs_shape} {dn}")


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (1, 1), (None, -1), (2, None)])
def test_dot_general_preferred_element_type_and_ints(in_axes: tuple[Any, ...]) -> None:
    dn = (((1,), (0,)), ((), ()))
    exs = examples(lambda r: (r.integers(-5, 5, (2, 3)).astype(np.int8),
                              r.integers(-5, 5, (3, 4)).astype(np.int8)), 3)
    for pet in (None, np.int32, np.float32):
        f = lambda x, y: lax.dot_general(x, y, dn, preferred_element_type=pet)  # noqa: E731
        check_vmap(f, batch_args(exs, in_axes), in_axes, what=f"int8 dot pet={pet}")
    got = fgrad.vmap(lambda x, y: lax.dot_general(x, y, dn, preferred_element_type=np.int32),
                     in_axes=in_axes)(*batch_args(exs, in_axes))
    assert got.dtype == np.int32


def test_dot_general_weak_types_follow_the_loop() -> None:
    dn = (((0,), (0,)), ((), ()))
    x = fgrad.Array(np.arange(6.0, dtype=np.float32).reshape(2, 3), True)
    y = fgrad.Array(np.ones(3, np.float32), True)
    check_vmap(lambda a, b: lax.dot_general(a, b, dn), [x, y], (0, None))
    assert fgrad.vmap(lambda a, b: lax.dot_general(a, b, dn), (0, None))(x, y).weak_type


@pytest.mark.parametrize("in_axes", [(0, None), (None, 1), (1, 0)])
def test_dot_general_batch_size_zero(in_axes: tuple[Any, ...]) -> None:
    dn = (((1,), (0,)), ((), ()))
    x, y = np.ones((2, 3), np.float32), np.ones((3, 4), np.float32)
    args = [a if ax is None else np.zeros(np.insert(a.shape, ax, 0), np.float32)
            for a, ax in zip((x, y), in_axes)]
    got = fgrad.vmap(lambda a, b: lax.dot_general(a, b, dn), in_axes=in_axes)(*args)
    want = jax.vmap(lambda a, b: jax.lax.dot_general(a, b, dn), in_axes=in_axes)(*args)
    assert got.shape == want.shape == (0, 2, 4) and got.dtype == want.dtype


@pytest.mark.parametrize("in_axes,prim_axes", [((0, None), (None, 0)), ((None, 0), (0, None))])
def test_dot_general_nested(in_axes: tuple[Any, ...], prim_axes: tuple[Any, ...]) -> None:
    dn = (((2,), (0,)), ((0,), (2,)))
    make = lambda r: (r.standard_normal((2, 3, 4)).astype(np.float32),  # noqa: E731
                      r.standard_normal((4, 5, 2)).astype(np.float32))
    f = lambda x, y: lax.dot_general(x, y, dn)  # noqa: E731
    check_nested(f, make, in_axes, prim_axes)
    check_nested(f, make, (1, -1), (None, 2))
    check_nested(f, make, (-1, 1), (0, 0))


def test_dot_general_unbatched_operand_is_not_broadcast() -> None:
    dn = (((1,), (0,)), ((), ()))
    f = lambda x, y: lax.dot_general(x, y, dn)  # noqa: E731
    x, y = np.ones((5, 2, 3), np.float32), np.ones((3, 4), np.float32)
    assert_not_broadcast(f, (x, y), (0, None), "dot_general")
    assert_not_broadcast(f, (np.ones((2, 3), np.float32), np.ones((3, 5, 4), np.float32)),
                         (None, 1), "dot_general")
    # and no transpose at all: the batch axis is just one more free axis, and comes out
    # after the lhs free axes before it
    closed = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(1, None), out_axes=1))(
        np.ones((2, 5, 3)), y)
    assert eqn_names(closed) == ["dot_general"]


def test_dot_general_jit_of_vmap_matches_eager() -> None:
    dn = (((1,), (1,)), ((0,), (0,)))
    exs = examples(lambda r: (r.standard_normal((2, 3)).astype(np.float32),
                              r.standard_normal((2, 3, 4)).astype(np.float32)), 4)
    for in_axes in [(0, None), (None, 3), (1, 2)]:
        args = batch_args(exs, in_axes)
        f = fgrad.vmap(lambda x, y: lax.dot_general(x, y, dn), in_axes=in_axes, out_axes=1)
        np.testing.assert_allclose(np.asarray(fgrad.jit(f)(*args)), np.asarray(f(*args)),
                                   rtol=1e-6)


def test_dot_general_vmap_grad_against_jax(x64: None) -> None:
    dn = (((1,), (0,)), ((), ()))
    rng = np.random.default_rng(3)
    xs, y = rng.standard_normal((4, 2, 3)), rng.standard_normal((3, 5))

    def loss(dot: Callable[..., Any], np_: Any) -> Callable[..., Any]:
        return lambda x, y: np_.sum(np_.sin(dot(x, y, dn)))

    for argnums in (0, 1, (0, 1)):
        got = fgrad.vmap(fgrad.grad(loss(lax.dot_general, fnp), argnums), (0, None))(xs, y)
        want = jax.vmap(jax.grad(loss(jax.lax.dot_general, jnp), argnums), (0, None))(xs, y)
        for g, w in zip(fgrad.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)
    # grad of a summed vmap (the batch axis of y in the middle)
    y3 = rng.standard_normal((3, 6, 5))

    def summed(dot: Callable[..., Any], vmap: Callable[..., Any], np_: Any) -> Any:
        return lambda x, y: np_.sum(np_.tanh(vmap(lambda a, b: dot(a, b, dn), (None, 1))(x, y)))

    g_got = fgrad.grad(summed(lax.dot_general, fgrad.vmap, fnp), (0, 1))(xs[0], y3)
    g_want = jax.grad(summed(jax.lax.dot_general, jax.vmap, jnp), (0, 1))(xs[0], y3)
    for g, w in zip(g_got, g_want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(summed(lax.dot_general, fgrad.vmap, fnp)))(
        xs[0], y3).jaxpr)


# --- cholesky ----------------------------------------------------------------------------

@pytest.mark.parametrize("lead", [(), (2,)])
def test_cholesky_random_axes(lead: tuple[int, ...]) -> None:
    rng = np.random.default_rng(4)
    exs = examples(lambda r: (spd(r, 3, lead),), 3)
    exs[1] = (-exs[1][0],)  # not positive definite: NaN factor, batched like the rest
    seen = set()
    for _ in range(8):
        (ax,) = random_in_axes(rng, [len(lead) + 2], allow_none=False)
        seen.add(ax)
        out_axes = random_out_axis(rng, len(lead) + 2)
        check_vmap(lax.cholesky, batch_args(exs, [ax]), [ax], out_axes, rtol=1e-5,
                   what="cholesky")
    check_vmap(lambda x: lax.cholesky(x, symmetrize_input=False), batch_args(exs, [-1]), [-1])
    assert len(seen) > 1


def test_cholesky_batch_axis_stays_leading() -> None:
    x = np.stack([spd(np.random.default_rng(i), 3, (2,)) for i in range(4)], axis=1)
    closed = fgrad.make_jaxpr(fgrad.vmap(lax.cholesky, in_axes=1, out_axes=1))(x)
    # symmetrize (transpose of the matrix axes, add, mul) and cholesky: the batch axis
    # is not moved around the factorization
    assert [n for n in eqn_names(closed) if n == "transpose"] == ["transpose"], str(closed)


def test_cholesky_nested_jit_and_sizes() -> None:
    make = lambda r: (spd(r, 3),)  # noqa: E731
    check_nested(lax.cholesky, make, (0,), (-1,))
    check_nested(lax.cholesky, make, (2,), (1,))
    x = np.stack([spd(np.random.default_rng(i), 2) for i in range(3)], axis=2)
    f = fgrad.vmap(lax.cholesky, in_axes=2, out_axes=-1)
    np.testing.assert_allclose(np.asarray(fgrad.jit(f)(x)), np.asarray(f(x)), rtol=1e-6)
    check_vmap(lax.cholesky, [x[:, :, :1]], [2])  # batch size 1
    assert fgrad.vmap(lax.cholesky)(np.zeros((0, 3, 3), np.float32)).shape == (0, 3, 3)


def test_cholesky_vmap_grad_against_jax(x64: None) -> None:
    xs = np.stack([spd(np.random.default_rng(i), 3).astype(np.float64) for i in range(4)], -1)
    f_loss = lambda chol, np_: lambda x: np_.sum(np_.sin(chol(x)))  # noqa: E731
    got = fgrad.vmap(fgrad.grad(f_loss(lax.cholesky, fnp)), in_axes=2, out_axes=0)(xs)
    want = jax.vmap(jax.grad(f_loss(jax.lax.linalg.cholesky, jnp)), in_axes=2, out_axes=0)(xs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-10)
    summed = lambda chol, vm, np_: lambda x: np_.sum(vm(chol, 2)(x) ** 2)  # noqa: E731
    got = fgrad.grad(summed(lax.cholesky, fgrad.vmap, fnp))(xs)
    want = jax.grad(summed(jax.lax.linalg.cholesky, jax.vmap, jnp))(xs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-10)


# --- triangular_solve --------------------------------------------------------------------

SOLVE_FLAGS = [dict(left_side=ls, lower=lo, transpose_a=t, unit_diagonal=u)
               for ls in (True, False) for lo in (True, False) for t in (False, True)
               for u in (False, True)]


def _solve_example(lead: tuple[int, ...], left_side: bool, vector: bool = False
                   ) -> Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]]:
    m, n = 3, 2
    b_shape = lead + ((m,) if vector else (m, n) if left_side else (n, m))
    return lambda r: (triangular(r, m, lead), r.standard_normal(b_shape).astype(np.float32))


@pytest.mark.parametrize("flags", SOLVE_FLAGS, ids=lambda f: "-".join(
    k for k, v in f.items() if v) or "right-upper")
def test_triangular_solve_random_axes(flags: dict[str, bool]) -> None:
    rng = np.random.default_rng(sum(flags.values()) + 8 * flags["left_side"])
    f = lambda a, b: lax.triangular_solve(a, b, **flags)  # noqa: E731
    for lead in [(), (2,)]:
        exs = examples(_solve_example(lead, flags["left_side"]), 3)
        for in_axes in [(None, 0), (None, -1), (0, None), (-1, -1)] + [
                random_in_axes(rng, [len(lead) + 2] * 2) for _ in range(3)]:
            out_axes = random_out_axis(rng, len(lead) + 2)
            check_vmap(f, batch_args(exs, in_axes), in_axes, out_axes, rtol=1e-4,
                       what=f"triangular_solve {flags} lead={lead}")


@pytest.mark.parametrize("left_side", [True, False])
def test_triangular_solve_vector_b_and_conjugate(left_side: bool) -> None:
    f = lambda a, b: lax.triangular_solve(a, b, left_side=left_side, lower=True,  # noqa
                                          conjugate_a=True)
    exs = examples(_solve_example((), left_side, vector=True), 3)
    for in_axes in [(None, 0), (None, 1), (2, None), (0, 1)]:
        check_vmap(f, batch_args(exs, in_axes), in_axes, rtol=1e-4)


@pytest.mark.parametrize("left_side", [True, False])
def test_triangular_solve_unbatched_a_is_not_broadcast(left_side: bool) -> None:
    f = lambda a, b: lax.triangular_solve(a, b, left_side=left_side)  # noqa: E731
    for lead in [(), (2,)]:
        a, b = _solve_example(lead, left_side)(np.random.default_rng(0))
        for ax in range(b.ndim + 1):
            bs = np.stack([b, 2 * b, -b], axis=ax)
            assert_not_broadcast(f, (a, bs), (None, ax), "triangular_solve")
            check_vmap(f, [a, bs], (None, ax), rtol=1e-4)
    # a batch next to b's right-hand-side axis is folded without any transpose
    a, b = _solve_example((), left_side)(np.random.default_rng(0))
    bs = np.stack([b, b], axis=2 if left_side else 0)
    ax = 2 if left_side else 0
    closed = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(None, ax), out_axes=ax))(a, bs)
    assert "transpose" not in eqn_names(closed), str(closed)


def test_triangular_solve_nested_jit_and_size_zero() -> None:
    flags = dict(left_side=True, lower=True)
    f = lambda a, b: lax.triangular_solve(a, b, **flags)  # noqa: E731
    make = _solve_example((), True)
    check_nested(f, make, (None, 1), (0, None), rtol=1e-4)
    check_nested(f, make, (0, -1), (None, 0), rtol=1e-4)
    check_nested(f, make, (2, None), (1, 2), rtol=1e-4)
    exs = examples(make, 3)
    for in_axes in [(None, 2), (1, 0)]:
        g = fgrad.vmap(f, in_axes=in_axes)
        args = batch_args(exs, in_axes)
        np.testing.assert_allclose(np.asarray(fgrad.jit(g)(*args)), np.asarray(g(*args)),
                                   rtol=1e-6)
    a, b = exs[0]
    assert fgrad.vmap(f, (None, 0))(a, np.zeros((0, 3, 2), np.float32)).shape == (0, 3, 2)
    assert fgrad.vmap(f, (0, 0))(np.zeros((0, 3, 3), np.float32),
                                 np.zeros((0, 3, 2), np.float32)).shape == (0, 3, 2)


@pytest.mark.parametrize("in_axes", [(None, 0), (0, None), (2, 1)])
def test_triangular_solve_vmap_grad_against_jax(x64: None, in_axes: tuple[Any, ...]) -> None:
    exs = [(a.astype(np.float64), b.astype(np.float64))
           for a, b in examples(_solve_example((), False), 4)]
    args = batch_args(exs, in_axes)

    def loss(solve: Callable[..., Any], np_: Any) -> Callable[..., Any]:
        return lambda a, b: np_.sum(np_.sin(solve(a, b, left_side=False, lower=True,
                                                  transpose_a=True)))

    got = fgrad.vmap(fgrad.grad(loss(lax.triangular_solve, fnp), (0, 1)), in_axes)(*args)
    want = jax.vmap(jax.grad(loss(jax.lax.linalg.triangular_solve, jnp), (0, 1)),
                    in_axes)(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-9, atol=1e-10)

    def summed(solve: Callable[..., Any], vm: Callable[..., Any], np_: Any) -> Any:
        return lambda a, b: np_.sum(vm(lambda x, y: solve(x, y, left_side=True), in_axes)(a, b))

    got = fgrad.grad(summed(lax.triangular_solve, fgrad.vmap, fnp), (0, 1))(
        *batch_args([(a, b.T) for a, b in exs], in_axes))
    want = jax.grad(summed(jax.lax.linalg.triangular_solve, jax.vmap, jnp), (0, 1))(
        *batch_args([(a, b.T) for a, b in exs], in_axes))
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-9, atol=1e-10)


# --- lu ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(3, 3), (4, 2), (2, 4), (2, 3, 3), (1, 1)])
def test_lu_random_axes(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shape) + shape[-1])
    exs = examples(lambda r: (r.standard_normal(shape).astype(np.float32),), 3)
    for _ in range(5):
        in_axes = random_in_axes(rng, [len(shape)], allow_none=False)
        # one out_axes for all three results: 0 or -1 fit each of them
        out_axes = [0, -1][int(rng.integers(2))]
        check_vmap(lax.lu, batch_args(exs, in_axes), in_axes, out_axes, rtol=1e-5,
                   what=f"lu {shape}")


def test_lu_nested_jit_and_grad(x64: None) -> None:
    make = lambda r: (r.standard_normal((3, 3)),)  # noqa: E731
    check_nested(lax.lu, make, (1,), (0,))
    check_nested(lax.lu, make, (-1,), (2,))
    xs = np.random.default_rng(5).standard_normal((3, 4, 3))
    f = fgrad.vmap(lax.lu, in_axes=1)
    for g, w in zip(fgrad.jit(f)(xs), f(xs)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))
    loss = lambda lu_, np_: lambda x: np_.sum(np_.sin(lu_(x)[0]))  # noqa: E731
    got = fgrad.vmap(fgrad.grad(loss(lax.lu, fnp)), in_axes=1)(xs)
    want = jax.vmap(jax.grad(loss(jax.lax.linalg.lu, jnp)), in_axes=1)(xs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-10)
    summed = lambda lu_, vm, np_: lambda x: np_.sum(vm(lu_, 2)(x)[0] ** 2)  # noqa: E731
    got = fgrad.grad(summed(lax.lu, fgrad.vmap, fnp))(xs)
    want = jax.grad(summed(jax.lax.linalg.lu, jax.vmap, jnp))(xs)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-10)
    lu0, piv0, perm0 = fgrad.vmap(lax.lu)(np.zeros((0, 3, 2)))
    assert (lu0.shape, piv0.shape, perm0.shape) == ((0, 3, 2), (0, 2), (0, 3))
    assert get_aval(piv0).dtype == np.int32
