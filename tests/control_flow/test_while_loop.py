"""``while_loop`` (the ``while`` primitive) against JAX and against Python's ``while``.

Every rule is exercised: impl (pytree carries, zero trips, weak-type
promotion of the initial value), abstract eval (type errors naming the
leaves), jvp (to second order, closed-over tangents, the fixed point of
nonzero tangent carries), partial eval (``linearize``; the reverse-mode
error), batching (batched and unbatched predicates, a different trip count
per lane, closures over vmap tracers) and staging (``jit``, ``make_jaxpr``,
``typecheck_jaxpr``).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
import jax_compare
from jaxpr_util import count_eqns
from batch_util import batch_args, check_vmap, random_in_axes
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.primitives.control_flow.loops import while_loop
from fgrad.test_util import check_grads
from fgrad.transforms.partial_eval import linearize_flat, partial_eval_jaxpr

assert_tree_close = functools.partial(jax_compare.assert_tree_close, rtol=1e-12, atol=1e-12)
assert_matches = jax_compare.assert_matches
jjit = jax.jit  # the oracle, compiled once per call site (eager JAX is slow with loops)




def python_while(cond_fun: Any, body_fun: Any, init: Any) -> Any:
    """The semantics: Python's own loop."""
    val = init
    while cond_fun(val):
        val = body_fun(val)
    return val


# --- a loop with a pytree carry, one per library ------------------------------------------------

def make_loop(lib: Any, while_loop: Any) -> Any:
    """Newton-like iterations on a dict carry; stops on a tolerance or after `n` steps."""
    def f(x: Any, w: Any, n: Any) -> Any:
        def cond_fun(c: Any) -> Any:
            return (c["i"] < n) & (lib.abs(c["s"]) > 1e-3)

        def body_fun(c: Any) -> Any:
            y, s = c["state"]
            y = lib.sin(y * w) + 0.5 * y
            return {"i": c["i"] + 1, "state": (y, s * 0.7 + lib.sum(y) * 1e-2),
                    "s": c["s"] * 0.5}

        out = while_loop(cond_fun, body_fun, {"i": 0, "state": (x, lib.sum(x)), "s": 1.0})
        return out["state"][0], out["state"][1], out["i"]
    return f


fgrad_loop = make_loop(fnp, while_loop)
jax_loop = make_loop(jnp, jax.lax.while_loop)
X = np.array([0.3, -0.8, 1.2])
W = 1.3


@pytest.mark.parametrize("n", [0, 1, 4, 50])
def test_values_match_jax_and_python(n: int, x64: None) -> None:
    got = fgrad_loop(X, W, n)
    assert_tree_close(got, jjit(jax_loop)(X, W, n))
    assert_tree_close(fgrad.jit(fgrad_loop)(X, W, n), got)
    want = make_loop(fnp, python_while)(fnp.asarray(X), W, n)
    assert_tree_close(got, want)
    assert int(got[2]) == min(n, 10)  # s halves from 1.0: 10 steps to fall below 1e-3


def test_weak_types_and_promotion_follow_jax() -> None:
    cases = [
        (lambda c: c < 3, lambda c: c + 1, 0),             # weak int stays weak int
        (lambda c: c < 3, lambda c: c + 1.5, 0),           # weak int -> float32 (strong)
        (lambda c: c < 3.0, lambda c: c + np.float32(1.5), 0.0),
        (lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * 2.0), (0, 1.0)),
    ]
    for cond_fun, body_fun, init in cases:
        assert_matches(while_loop(cond_fun, body_fun, init),
                       jax.lax.while_loop(cond_fun, body_fun, init), f"init {init}")


def test_promotion_in_x64(x64: None) -> None:
    for body in (lambda c: c + 1.5, lambda c: c + np.float32(1.5)):
        assert_matches(while_loop(lambda c: c < 3, body, 0),
                       jax.lax.while_loop(lambda c: c < 3, body, 0))


@settings(max_examples=25, deadline=None)
@given(st.integers(-3, 12), st.floats(-2, 2))
def test_matches_python_while(n: int, x: float) -> None:
    def cond_fun(c: Any) -> Any:
        return c[0] < n

    def body_fun(c: Any) -> Any:
        return c[0] + 1, c[1] * 0.9 + 0.1, (c[2][0] - 1,)

    init = (np.int32(0), np.float32(x), (np.int32(7),))
    got = while_loop(cond_fun, body_fun, init)
    want = python_while(cond_fun, body_fun, tuple(fnp.asarray(v) if not isinstance(v, tuple)
                                                  else (fnp.asarray(v[0]),) for v in init))
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_disable_jit_runs_the_loop_in_python() -> None:
    seen: list[float] = []

    def body(c: Any) -> Any:
        seen.append(float(c))  # only possible when the loop runs in Python
        return c + 1.0

    prev = fgrad.config.disable_jit
    fgrad.config.update("disable_jit", True)
    try:
        assert float(while_loop(lambda c: c < 3.0, body, 0.0)) == 3.0
        # under vmap the values are abstract: the loop is staged after all
        out = fgrad.vmap(lambda x: while_loop(lambda c: c < 3.0, lambda c: c + 1.0, x))(
            np.array([0.0, 2.5], np.float32))
        np.testing.assert_array_equal(np.asarray(out), [3.0, 3.5])
    finally:
        fgrad.config.update("disable_jit", prev)
    assert seen == [0.0, 1.0, 2.0]


# --- errors --------------------------------------------------------------------------------------

def test_type_errors_name_the_leaves() -> None:
    with pytest.raises(TypeError, match="cond_fun must return a boolean scalar, but got output"):
        while_loop(lambda c: c, lambda c: c, 1.0)
    with pytest.raises(TypeError, match="cond_fun must return a boolean scalar, but got output"):
        while_loop(lambda c: c < fnp.ones(2), lambda c: c, 1.0)
    with pytest.raises(TypeError, match="cond_fun must return a boolean scalar, but got pytree"):
        while_loop(lambda c: (c < 3, c < 4), lambda c: c, 1.0)
    with pytest.raises(TypeError, match=r"(?s)carry input and carry output must have equal "
                                        r"types.*\['b'\]\[1\]: f32\[\] vs i32\[\]"):
        while_loop(lambda c: c["a"] < 3, lambda c: {"a": c["a"] + 1,
                                                    "b": (c["b"][0], c["b"][1].astype(np.int32))},
                   {"a": 0, "b": (1.0, np.float32(2.0))})
    with pytest.raises(TypeError, match=r"\[1\]: f32\[2\] vs f32\[3\]"):
        while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, fnp.zeros(3, np.float32)),
                   (0, fnp.zeros(2, np.float32)))
    with pytest.raises(TypeError, match="same pytree structure"):
        while_loop(lambda c: c[0] < 3, lambda c: [c[0] + 1, c[1]], (0, 1.0))
    with pytest.raises(TypeError, match="should be callable"):
        while_loop(lambda c: True, 3, 1.0)


def test_python_while_on_a_tracer_points_to_while_loop() -> None:
    def f(x: Any) -> Any:
        while x < 10:
            x = x * 2
        return x

    with pytest.raises(fgrad.TracerBoolConversionError, match=r"lax\.while_loop"):
        fgrad.jit(f)(1.0)


@pytest.mark.parametrize("how", ["grad", "vjp", "jacrev", "jit_grad"])
def test_reverse_mode_raises_jax_error(how: str) -> None:
    def f(x: Any) -> Any:
        return while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, fnp.sin(c[1])), (0, x))[1]

    message = (r"Reverse-mode differentiation does not work for lax\.while_loop or "
               r"lax\.fori_loop with dynamic start/stop values\. Try using lax\.scan, or using "
               r"fori_loop with static start/stop\.")
    with pytest.raises(ValueError, match=message):
        if how == "grad":
            fgrad.grad(f)(1.0)
        elif how == "vjp":
            fgrad.vjp(f, 1.0)[1](1.0)
        elif how == "jacrev":
            fgrad.jacrev(f)(np.float32(1.0))
        else:
            fgrad.jit(fgrad.grad(f))(1.0)


# --- forward mode and linearize -------------------------------------------------------------------

def test_jvp_and_linearize_match_jax(x64: None) -> None:
    tx, tw = np.array([0.5, -1.0, 0.25]), 0.3
    for n in (0, 3, 20):
        got = fgrad.jvp(lambda x, w: fgrad_loop(x, w, n)[:2], (X, W), (tx, tw))
        want = jjit(lambda *a: jax.jvp(lambda x, w: jax_loop(x, w, n)[:2], a[:2], a[2:]))(
            X, W, tx, tw)
        assert_tree_close(got, want)
        out, f_jvp = fgrad.linearize(lambda x, w: fgrad_loop(x, w, n)[:2], X, W)
        jout, jf_jvp = jax.linearize(jjit(lambda x, w: jax_loop(x, w, n)[:2]), X, W)
        assert_tree_close(out, jout)
        assert_tree_close(f_jvp(tx, tw), jf_jvp(tx, tw))
        assert_tree_close(fgrad.jit(f_jvp)(tx, tw), jf_jvp(tx, tw))


def test_second_order_forward_mode(x64: None) -> None:
    def f(lib: Any, wl: Any) -> Any:
        return lambda x: wl(lambda c: c[0] < 4, lambda c: (c[0] + 1, lib.sin(c[1]) * c[1]),
                            (0, x))[1]

    ff, jf = f(fnp, while_loop), f(jnp, jax.lax.while_loop)
    for x in (0.4, 1.1):
        g = fgrad.jacfwd(fgrad.jacfwd(ff))
        assert_tree_close(g(x), jjit(jax.jacfwd(jax.jacfwd(jf)))(x))
        assert_tree_close(fgrad.jvp(lambda y: fgrad.jvp(ff, (y,), (1.0,))[1], (x,), (1.0,)),
                          jjit(lambda y: jax.jvp(lambda z: jax.jvp(jf, (z,), (1.0,))[1],
                                                 (y,), (1.0,)))(x))
        check_grads(ff, (x,), order=2, modes=("fwd",))


def test_tangent_fixed_point_and_closed_over_tangents(x64: None) -> None:
    # The tangent of `a` starts zero but becomes nonzero through `b` (and the closed-over
    # `w` adds a tangent of its own): the fixed point must find both.
    def f(lib: Any, wl: Any) -> Any:
        def g(b: Any, w: Any) -> Any:
            return wl(lambda c: c[2] < 5,
                      lambda c: (c[0] + lib.cos(c[1]) * w, c[1] * 0.9, c[2] + 1),
                      (0.0, b, 0))[0]
        return g

    ff, jf = f(fnp, while_loop), f(jnp, jax.lax.while_loop)
    assert_tree_close(fgrad.jvp(ff, (0.7, 1.5), (1.0, 0.0)),
                      jjit(lambda *a: jax.jvp(jf, a[:2], a[2:]))(0.7, 1.5, 1.0, 0.0))
    assert_tree_close(fgrad.jvp(ff, (0.7, 1.5), (0.0, 1.0)),
                      jjit(lambda *a: jax.jvp(jf, a[:2], a[2:]))(0.7, 1.5, 0.0, 1.0))
    assert_tree_close(fgrad.jacfwd(ff, (0, 1))(0.7, 1.5), jjit(jax.jacfwd(jf, (0, 1)))(0.7, 1.5))


def test_partial_eval_splits_known_carries() -> None:
    # A known counter and an unknown float: the counter's loop runs now, the rest is staged.
    closed = fgrad.make_jaxpr(lambda n, x: while_loop(
        lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 2.0), (0, x)))(3, 1.0)
    known, unknown, out_uk, _ = partial_eval_jaxpr(closed, [False, True])
    assert out_uk == [False, True]
    assert count_eqns(known, "while") == 1 and count_eqns(unknown, "while") == 1
    for j in (known, unknown):
        typecheck_jaxpr(j)
    # An unknown predicate: the whole loop is staged, nothing is known.
    closed = fgrad.make_jaxpr(lambda x: while_loop(lambda c: c[1] < 10.0,
                                                   lambda c: (c[0] + 1, c[1] * 2.0), (0, x)))(1.0)
    known, unknown, out_uk, _ = partial_eval_jaxpr(closed, [True])
    assert out_uk == [True, True] and count_eqns(known, "while") == 0


# --- staging ----------------------------------------------------------------------------------

def test_make_jaxpr_shows_the_loop_and_everything_typechecks(x64: None) -> None:
    jaxpr = fgrad.make_jaxpr(lambda x, w: fgrad_loop(x, w, 5))(X, W)
    text = str(jaxpr)
    assert "while[" in text and "body_jaxpr=" in text and "cond_jaxpr=" in text
    assert "sin" in text and "lt" in text
    f = lambda x, w: fgrad_loop(x, w, 5)[:2]  # noqa: E731
    xs = np.stack([X, -X])
    for j in [jaxpr, fgrad.make_jaxpr(fgrad.jit(f))(X, W),
              fgrad.make_jaxpr(lambda p, t: fgrad.jvp(f, p, t))((X, W), (X, W)),
              fgrad.make_jaxpr(fgrad.jacfwd(f))(X, W),
              fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(0, None)))(xs, W),
              fgrad.make_jaxpr(fgrad.vmap(lambda x, n: fgrad_loop(x, W, n)))(
                  xs, np.array([2, 7])),
              linearize_flat(lambda x, w: list(f(x, w)), [fnp.asarray(X), fnp.asarray(W)])[1]]:
        typecheck_jaxpr(j)
        assert count_eqns(j, "while") >= 1


def test_jit_traces_the_body_once() -> None:
    calls = []

    def f(n: Any, x: Any) -> Any:
        def body(c: Any) -> Any:
            calls.append(1)
            return c[0] + 1, c[1] * 2.0
        return while_loop(lambda c: c[0] < n, body, (0, x))[1]

    jitted = fgrad.jit(f)
    for n in (0, 3, 10):
        assert float(jitted(n, np.float32(1.0))) == 2.0 ** n
    assert len(calls) == 1


# --- batching ----------------------------------------------------------------------------------

def test_batched_trip_counts_per_lane(x64: None) -> None:
    ns = np.array([0, 3, 1, 12, 5])
    xs = np.stack([X * k for k in (1.0, -0.5, 2.0, 0.1, 0.7)])
    got = fgrad.vmap(fgrad_loop, in_axes=(0, None, 0))(xs, W, ns)
    assert_tree_close(got, jjit(jax.vmap(jax_loop, in_axes=(0, None, 0)))(xs, W, ns))
    np.testing.assert_array_equal(np.asarray(got[2]), np.minimum(ns, 10))
    check_vmap(lambda x, n: fgrad_loop(x, W, n), [xs, ns], [0, 0], rtol=1e-12)
    check_vmap(lambda x, n: fgrad_loop(x, W, n), [xs.T, ns], [1, 0], out_axes=-1, rtol=1e-12)
    # the batched predicate freezes finished lanes with a select
    text = str(fgrad.make_jaxpr(fgrad.vmap(lambda x, n: fgrad_loop(x, W, n)))(xs, ns))
    assert "select_n" in text and "reduce_or" in text


def test_unbatched_predicate_keeps_consts_unbatched(x64: None) -> None:
    # The trip count is shared: the loop stays one loop with a scalar predicate, and the
    # shared weight is not broadcast.
    ws = np.array([0.5, 1.0, 1.5])
    got = fgrad.vmap(fgrad_loop, in_axes=(None, 0, None))(X, ws, 4)
    assert_tree_close(got, jjit(jax.vmap(jax_loop, in_axes=(None, 0, None)))(X, ws, 4))
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(fgrad_loop, in_axes=(0, None, None)))(
        np.stack([X, X]), W, 4)
    assert "reduce_or" not in str(jaxpr)
    loop = next(e for e in jaxpr.jaxpr.eqns if e.primitive.name == "while")
    assert [a.aval.shape for a in loop.invars].count(()) >= 2  # n and w stay scalars


@pytest.mark.parametrize("seed", range(6))
def test_vmap_random_axes_against_a_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)

    def f(n: Any, x: Any, w: Any) -> Any:
        def body(c: Any) -> Any:
            i, y, acc = c
            return i + 1, fnp.tanh(y @ w), acc + fnp.sum(y)
        return while_loop(lambda c: c[0] < n, body, (0, x, np.float32(0.0)))

    examples = [[np.int32(rng.integers(0, 5)), rng.normal(size=3).astype(np.float32),
                 rng.normal(size=(3, 3)).astype(np.float32)] for _ in range(4)]
    in_axes = random_in_axes(rng, [0, 1, 2])
    args = batch_args(examples, in_axes)
    for out_axes in (0, -1):
        check_vmap(f, args, in_axes, out_axes, rtol=1e-5, what=f"while seed {seed}")
    check_vmap(fgrad.jit(f), args, in_axes, rtol=1e-5, what="jit(while)")


def test_vmap_closure_nested_and_composed(x64: None) -> None:
    def f(lib: Any, wl: Any) -> Any:
        def g(x: Any, t: Any) -> Any:  # closes over the batched threshold t
            return wl(lambda c: c[1] < t, lambda c: (c[0] + 1, c[1] + lib.exp(-c[1]) + x),
                      (0, x))
        return g

    ff, jf = f(fnp, while_loop), f(jnp, jax.lax.while_loop)
    xs, ts = np.array([0.1, 0.5, 1.0]), np.array([1.0, 3.0, 6.0, 0.0])
    assert_tree_close(fgrad.vmap(ff, in_axes=(None, 0))(0.3, ts),
                      jjit(jax.vmap(jf, in_axes=(None, 0)))(0.3, ts))
    nested = fgrad.vmap(fgrad.vmap(ff, in_axes=(0, None)), in_axes=(None, 0))
    assert_tree_close(nested(xs, ts),
                      jjit(jax.vmap(jax.vmap(jf, in_axes=(0, None)), in_axes=(None, 0)))(xs, ts))
    assert_tree_close(fgrad.jit(nested)(xs, ts), nested(xs, ts))
    # forward-mode derivatives of a batched loop (jacfwd is vmap of jvp)
    d = lambda x, t: ff(x, t)[1]  # noqa: E731
    jd = lambda x, t: jf(x, t)[1]  # noqa: E731
    assert_tree_close(fgrad.vmap(fgrad.jacfwd(d), in_axes=(0, None))(xs, 4.0),
                      jjit(jax.vmap(jax.jacfwd(jd), in_axes=(0, None)))(xs, 4.0))
    assert_tree_close(fgrad.jit(fgrad.vmap(fgrad.jacfwd(d)))(xs, ts[:3]),
                      jjit(jax.vmap(jax.jacfwd(jd)))(xs, ts[:3]))


@pytest.mark.parametrize("size", [0, 1])
def test_batch_of_size_zero_and_one(size: int) -> None:
    def f(lib: Any, wl: Any) -> Any:
        return lambda n, x: wl(lambda c: c[0] < n, lambda c: (c[0] + 1, lib.sin(c[1]) + 1.0),
                               (0, x))

    ff, jf = f(fnp, while_loop), f(jnp, jax.lax.while_loop)
    ns, xs = np.arange(size, dtype=np.int32) + 2, np.ones((size, 2), np.float32)
    assert_matches(fgrad.vmap(ff)(ns, xs), jax.vmap(jf)(ns, xs))
    assert_matches(fgrad.vmap(ff, in_axes=(None, 0))(3, xs),
                   jax.vmap(jf, in_axes=(None, 0))(3, xs))


def test_derivatives_match_the_python_loop(x64: None) -> None:
    # Python's `while` works eagerly under jvp (the primal is concrete): the unrolled loop.
    tx, tw = np.array([0.5, -1.0, 0.25]), 0.3
    unrolled = make_loop(fnp, python_while)
    for n in (0, 3, 20):
        got = fgrad.jvp(lambda x, w: fgrad_loop(x, w, n)[:2], (X, W), (tx, tw))
        want = fgrad.jvp(lambda x, w: unrolled(x, w, n)[:2], (X, W), (tx, tw))
        assert_tree_close(got, want)
        assert_tree_close(fgrad.jacfwd(lambda x: fgrad_loop(x, W, n)[0])(X),
                          fgrad.jacfwd(lambda x: unrolled(x, W, n)[0])(X))
