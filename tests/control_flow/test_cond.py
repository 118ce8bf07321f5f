"""``cond`` and ``switch`` (the ``cond`` primitive) against JAX and against Python's ``if``.

Every rule is exercised: impl (values, both branches traced, only one run),
abstract eval (type errors naming the leaves), jvp, partial eval + transpose
(``grad`` to second order, ``linearize``, branches with different residuals),
batching (batched and unbatched predicates and operands, closures over vmap
tracers, NaN safety of the select path), and staging (``jit``, ``make_jaxpr``,
``typecheck_jaxpr`` on every jaxpr produced).
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
from fgrad.primitives.control_flow.conditionals import cond, switch
from fgrad.test_util import check_grads
from fgrad.transforms.partial_eval import linearize_flat, partial_eval_jaxpr

assert_tree_close = functools.partial(jax_compare.assert_tree_close, rtol=1e-12, atol=1e-12)
assert_matches = jax_compare.assert_matches
jjit = jax.jit  # the oracle, compiled once per call site (eager JAX is slow with control flow)




# --- one function per library: a two-branch cond with different residuals -------------------

def make_f(lib: Any, lax: Any) -> Any:
    """Branches with different nonlinearities (so different residuals) and a pytree operand."""
    def f(x: Any, y: Any) -> Any:
        def true_fun(ops: Any) -> Any:
            a, b = ops["a"], ops["b"]
            return lib.sin(a) * b, lib.exp(a * 0.5) + b ** 3
        def false_fun(ops: Any) -> Any:
            a, b = ops["a"], ops["b"]
            return lib.cos(a * b), a * a
        return lax.cond(lib.sum(x) > 0, true_fun, false_fun, {"a": x, "b": y})
    return f


class _Lax:  # the two fgrad control-flow functions under jax.lax's names
    cond = staticmethod(cond)
    switch = staticmethod(switch)


fgrad_f = make_f(fnp, _Lax)
jax_f = make_f(jnp, jax.lax)


def scalar_loss(f: Any) -> Any:
    def loss(x: Any, y: Any) -> Any:
        u, v = f(x, y)
        return (u * v).sum() + (u ** 2).sum()
    return loss


X_POS, X_NEG = np.array([0.3, 0.7, -0.2]), np.array([-0.3, 0.1, -0.5])
Y = np.array([1.1, -0.4, 0.6])


# --- values ---------------------------------------------------------------------------------

@pytest.mark.parametrize("x", [X_POS, X_NEG], ids=["true", "false"])
def test_values_match_jax(x: np.ndarray, x64: None) -> None:
    assert_tree_close(fgrad_f(x, Y), jax_f(x, Y))
    assert_tree_close(fgrad.jit(fgrad_f)(x, Y), jax_f(x, Y))


@pytest.mark.parametrize("pred", [True, False, 0, 3, -2, 0.0, 0.5, np.float32(0.0),
                                  np.int8(1), np.bool_(True)])
def test_predicates_of_every_kind(pred: Any) -> None:
    got = cond(pred, lambda x: x + 1.0, lambda x: x - 1.0, np.float32(2.0))
    want = jax.lax.cond(pred, lambda x: x + 1.0, lambda x: x - 1.0, np.float32(2.0))
    assert_matches(got, want, f"pred={pred!r}")
    assert float(got) == (3.0 if pred else 1.0)  # Python's `if`


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=1, max_size=4), st.floats(-2, 2))
def test_matches_python_if(xs: list[float], t: float) -> None:
    x = np.array(xs, np.float32)

    def true_fun(x: Any, t: Any) -> Any:
        return fnp.tanh(x) * t, fnp.sum(x)

    def false_fun(x: Any, t: Any) -> Any:
        return x - t, fnp.max(x)

    got = cond(np.sum(x) > t, true_fun, false_fun, x, np.float32(t))
    branch = true_fun if np.sum(x) > t else false_fun
    want = branch(fnp.asarray(x), fnp.asarray(np.float32(t)))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_weak_types_follow_jax() -> None:
    # The result has branch 0's types: false_fun's for cond, weak type included (JAX).
    x = np.float32(1.0)
    for fns in [(lambda: 1.0, lambda: fnp.asarray(x)), (lambda: fnp.asarray(x), lambda: 1.0),
                (lambda: 2.0, lambda: 1.0)]:
        jfns = [lambda f=f: jnp.asarray(f()) if not isinstance(f(), float) else f()
                for f in fns]
        for p in (True, False):
            assert_matches(cond(p, *fns), jax.lax.cond(p, *jfns), "cond weak type")
    assert_matches(switch(1, [lambda: 0, lambda: 1, lambda: 2]),
                   jax.lax.switch(1, [lambda: 0, lambda: 1, lambda: 2]))


def test_no_operands_and_no_outputs() -> None:
    assert cond(True, lambda: (), lambda: ()) == ()
    assert float(cond(False, lambda: 1.0, lambda: 2.0)) == 2.0
    out = fgrad.jit(lambda p: cond(p, lambda: None, lambda: None))(True)
    assert out is None


def test_both_branches_traced_only_one_evaluated() -> None:
    traced = []

    def true_fun(x: Any) -> Any:
        traced.append("true")
        return x + 1.0

    def false_fun(x: Any) -> Any:
        traced.append("false")
        return x / 0.0  # would warn/produce inf if it ran on the taken path

    assert float(cond(True, true_fun, false_fun, 1.0)) == 2.0
    assert traced == ["true", "false"]  # JAX traces true_fun, then false_fun

    def bad(x: Any) -> Any:
        raise ValueError("boom in the untaken branch")

    with pytest.raises(ValueError, match="boom in the untaken branch"):
        cond(True, lambda x: x, bad, 1.0)
    with pytest.raises(ValueError, match="boom in the untaken branch"):
        jax.lax.cond(True, lambda x: x, bad, 1.0)  # the oracle agrees


# --- switch -----------------------------------------------------------------------------------

SWITCH_BRANCHES = [lambda x: x * 2.0, lambda x: x + 1.0, lambda x: -x]


@pytest.mark.parametrize("index", [-5, -1, 0, 1, 2, 3, 99, np.uint8(1), np.int64(2)])
def test_switch_clamps_the_index(index: Any) -> None:
    got = switch(index, SWITCH_BRANCHES, np.float32(3.0))
    want = jax.lax.switch(index, SWITCH_BRANCHES, np.float32(3.0))
    assert_matches(got, want, f"index={index!r}")
    assert float(got) == SWITCH_BRANCHES[int(np.clip(index, 0, 2))](3.0)
    jitted = fgrad.jit(lambda i, x: switch(i, SWITCH_BRANCHES, x))
    assert float(jitted(np.int32(index), np.float32(3.0))) == float(want)


def test_switch_single_branch_and_errors() -> None:
    assert float(switch(7, [lambda x: x * 3.0], 2.0)) == 6.0
    with pytest.raises(ValueError, match="Empty branch sequence"):
        switch(0, [], 1.0)
    with pytest.raises(TypeError, match="Index type must be an integer"):
        switch(1.0, SWITCH_BRANCHES, 1.0)
    with pytest.raises(TypeError, match="Index type must be an integer"):
        switch(True, SWITCH_BRANCHES, 1.0)
    with pytest.raises(TypeError, match="must be a scalar"):
        switch(np.array([0, 1]), SWITCH_BRANCHES, 1.0)
    with pytest.raises(TypeError, match="sequence of callables"):
        switch(0, [lambda x: x, 3], 1.0)
    with pytest.raises(TypeError, match=r"branch 0 output and branch 2 output .* differ"):
        switch(0, [lambda x: x, lambda x: x, lambda x: x.astype(np.int32)], 1.0)


def test_switch_grad_and_vmap(x64: None) -> None:
    def f(lib: Any, lax: Any) -> Any:
        branches = [lambda x: lib.sin(x) * x, lambda x: x ** 3, lambda x: lib.exp(-x)]
        return lambda i, x: lax.switch(i, branches, x)

    ff, jf = f(fnp, _Lax), f(jnp, jax.lax)
    jg = jjit(jax.grad(jf, argnums=1))
    jgg = jjit(jax.grad(jax.grad(jf, argnums=1), argnums=1))
    for i in (-1, 0, 1, 2, 5):
        assert_tree_close(fgrad.grad(ff, argnums=1)(i, 0.7), jg(i, 0.7))
        assert_tree_close(fgrad.grad(fgrad.grad(ff, argnums=1), argnums=1)(i, 0.7), jgg(i, 0.7))
    idx, xs = np.array([-1, 0, 1, 2, 7], np.int32), np.linspace(0.1, 1.3, 5)
    assert_tree_close(fgrad.vmap(ff)(idx, xs), jjit(jax.vmap(jf))(idx, xs))
    assert_tree_close(fgrad.vmap(fgrad.grad(ff, argnums=1))(idx, xs),
                      jjit(jax.vmap(jax.grad(jf, argnums=1)))(idx, xs))
    assert_tree_close(fgrad.vmap(ff, in_axes=(None, 0))(2, xs),
                      jjit(jax.vmap(jf, in_axes=(None, 0)))(2, xs))


# --- errors ----------------------------------------------------------------------------------

def test_predicate_errors() -> None:
    with pytest.raises(TypeError, match="Pred must be a scalar"):
        cond(np.array([True, False]), lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="Pred must be a scalar"):
        cond([True], lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="cond predicate is None"):
        cond(None, lambda: 1.0, lambda: 2.0)
    with pytest.raises(TypeError, match="should be callable"):
        cond(True, 1.0, lambda: 2.0)


def test_branch_type_mismatches_name_the_leaves() -> None:
    with pytest.raises(TypeError, match="same pytree structure"):
        cond(True, lambda x: x, lambda x: (x, x), 1.0)
    with pytest.raises(TypeError, match=r"(?s)equal output types.*\['b'\]: f32\[\] vs i32\[\]"):
        cond(True, lambda x: {"a": x, "b": x}, lambda x: {"a": x, "b": x.astype(np.int32)},
             1.0)
    with pytest.raises(TypeError, match=r"\[1\]: f32\[3\] vs f32\[2\]"):
        cond(True, lambda x: (x, fnp.zeros(3)), lambda x: (x, fnp.zeros(2)), 1.0)
    with pytest.raises(TypeError, match=r"true_fun output and false_fun output"):
        fgrad.jit(lambda p: cond(p, lambda: 1, lambda: 1.0))(True)
    # weak types may differ (a Python scalar meets a float32 array)
    assert float(cond(True, lambda: 1.0, lambda: fnp.float32(2.0))) == 1.0


def test_python_if_on_a_tracer_points_to_cond() -> None:
    def f(x: Any) -> Any:
        return x if x > 0 else -x

    with pytest.raises(fgrad.TracerBoolConversionError, match=r"lax\.cond"):
        fgrad.jit(f)(1.0)


def test_disable_jit_runs_the_branch_in_python() -> None:
    traced: list[str] = []

    def branch(name: str) -> Any:
        def fun(x: Any) -> Any:
            traced.append(name)
            return x
        return fun

    prev = fgrad.config.disable_jit
    fgrad.config.update("disable_jit", True)
    try:
        cond(True, branch("t"), branch("f"), 1.0)
        switch(7, [branch("0"), branch("1")], 1.0)
    finally:
        fgrad.config.update("disable_jit", prev)
    assert traced == ["t", "1"]


# --- differentiation ---------------------------------------------------------------------------

_JLOSS = scalar_loss(jax_f)
# JAX's derivatives of jax_f, each compiled once for both parametrizations below
JAX_DERIVATIVES = {
    "jvp": jjit(lambda *p: jax.jvp(jax_f, p[:2], p[2:])),
    "grad": jjit(jax.grad(_JLOSS, (0, 1))),
    "linearize": jjit(lambda *p: jax.linearize(jax_f, *p[:2])[1](*p[2:])),
    "hessian": jjit(jax.hessian(_JLOSS)),
    "jvp_of_grad": jjit(lambda *p: jax.jvp(jax.grad(_JLOSS), p[:2], p[2:])),
}


@pytest.mark.parametrize("x", [X_POS, X_NEG], ids=["true", "false"])
def test_jvp_grad_linearize_match_jax(x: np.ndarray, x64: None) -> None:
    tx, ty = np.array([0.2, -1.0, 0.5]), np.array([1.0, 0.3, -0.7])
    want = JAX_DERIVATIVES
    assert_tree_close(fgrad.jvp(fgrad_f, (x, Y), (tx, ty)), want["jvp"](x, Y, tx, ty))
    loss = scalar_loss(fgrad_f)
    assert_tree_close(fgrad.grad(loss, (0, 1))(x, Y), want["grad"](x, Y))
    assert_tree_close(fgrad.jit(fgrad.grad(loss, (0, 1)))(x, Y), want["grad"](x, Y))
    assert_tree_close(fgrad.grad(fgrad.jit(loss), (0, 1))(x, Y), want["grad"](x, Y))
    out, f_jvp = fgrad.linearize(fgrad_f, x, Y)
    assert_tree_close(out, jax_f(x, Y))
    assert_tree_close(f_jvp(tx, ty), want["linearize"](x, Y, tx, ty))
    # second order: the Hessian (grad of grad through cond), and jvp of grad
    assert_tree_close(fgrad.hessian(loss)(x, Y), want["hessian"](x, Y))
    assert_tree_close(fgrad.jvp(fgrad.grad(loss), (x, Y), (tx, ty)),
                      want["jvp_of_grad"](x, Y, tx, ty))


def test_grad_of_grad_scalar(x64: None) -> None:
    def f(lib: Any, lax: Any) -> Any:
        return lambda x: lax.cond(x > 0.5, lambda y: lib.sin(y) * y ** 2,
                                  lambda y: lib.log1p(y * y), x)

    ff, jf = f(fnp, _Lax), f(jnp, jax.lax)
    g, jg = ff, jf
    for _ in range(3):  # first to third derivatives
        g, jg = fgrad.grad(g), jax.grad(jg)
        jitted = jjit(jg)
        for x in (0.2, 0.9):
            assert_tree_close(g(x), jitted(x))
    for x in (0.2, 0.9):
        check_grads(ff, (x,), order=2, modes=("fwd", "rev"))


def test_integer_outputs_and_operands(x64: None) -> None:
    def f(x: Any, n: Any) -> Any:
        out, k = cond(n > 2, lambda x, n: (x * n, n + 1), lambda x, n: (x - 1.0, n), x,
                      n.astype(np.float64))
        return out.sum() + k

    def jf(x: Any, n: Any) -> Any:
        out, k = jax.lax.cond(n > 2, lambda x, n: (x * n, n + 1), lambda x, n: (x - 1.0, n), x,
                              n.astype(jnp.float64))
        return out.sum() + k

    jg = jjit(jax.grad(jf))
    for n in (1, 5):
        assert_tree_close(fgrad.grad(f)(Y, np.int32(n)), jg(Y, np.int32(n)))


def test_branch_closing_over_a_grad_tracer(x64: None) -> None:
    def f(lib: Any, c: Any) -> Any:
        def g(w: Any, x: Any) -> Any:
            return c(x > 0, lambda: lib.sin(w * x) * w, lambda: w ** 3 + x)
        return g

    ff, jf = f(fnp, cond), f(jnp, jax.lax.cond)
    jg, jgg = jjit(jax.grad(jf)), jjit(jax.grad(jax.grad(jf)))
    for x in (-0.4, 0.6):
        assert_tree_close(fgrad.grad(ff)(1.3, x), jg(1.3, x))
        assert_tree_close(fgrad.grad(fgrad.grad(ff))(1.3, x), jgg(1.3, x))
        assert_tree_close(fgrad.jit(fgrad.grad(ff))(1.3, x), jg(1.3, x))


def test_residuals_of_different_types_are_joined(x64: None) -> None:
    # Branch 0 saves a (3,) residual, branch 1 two scalars and a (2, 3): the unknown
    # branches must take one common residual list.
    w = np.arange(6.0).reshape(2, 3) / 5

    def f(lib: Any, c: Any) -> Any:
        def g(x: Any, s: Any) -> Any:
            return c(s > 0, lambda: lib.sum(lib.sin(x) ** 2) * s,
                     lambda: lib.sum(lib.tanh(w * x)) * lib.exp(s) * lib.cos(s), )
        return g

    ff, jf = f(fnp, cond), f(jnp, jax.lax.cond)
    jg, jh = jjit(jax.grad(jf, (0, 1))), jjit(jax.hessian(jf, (0, 1)))
    for s in (-0.5, 0.5):
        x = np.array([0.1, -0.4, 0.8])
        assert_tree_close(fgrad.grad(ff, (0, 1))(x, s), jg(x, s))
        assert_tree_close(fgrad.hessian(ff, (0, 1))(x, s), jh(x, s))
        jaxpr = fgrad.make_jaxpr(fgrad.grad(ff, (0, 1)))(x, s)
        typecheck_jaxpr(jaxpr)
        assert count_eqns(jaxpr, "cond") == 2  # the known and the linear (transposed) halves


def test_partial_eval_with_an_unknown_index() -> None:
    # An unknown index stages the whole cond (all its outputs become unknown).
    closed = fgrad.make_jaxpr(lambda i, x, y: cond(i > 0, lambda: (x * y, y), lambda: (x, y)))(
        1, 2.0, 3.0)
    known, unknown, out_uk, num_res = partial_eval_jaxpr(closed, [True, False, False])
    assert out_uk == [True, True]
    typecheck_jaxpr(known)
    typecheck_jaxpr(unknown)
    assert count_eqns(unknown, "cond") == 1 and count_eqns(known, "cond") == 0
    # A known index and one unknown operand: the output depending only on y stays known.
    known, unknown, out_uk, num_res = partial_eval_jaxpr(closed, [False, True, False])
    assert out_uk == [True, False]
    assert count_eqns(known, "cond") == 1 and count_eqns(unknown, "cond") == 1


# --- staging -----------------------------------------------------------------------------------

def test_make_jaxpr_shows_the_branches_and_typechecks(x64: None) -> None:
    jaxpr = fgrad.make_jaxpr(fgrad_f)(X_POS, Y)
    text = str(jaxpr)
    assert "cond[" in text and "branches=" in text and text.count("lambda") == 3
    assert "cos" in text and "exp" in text
    loss = scalar_loss(fgrad_f)
    for j in [jaxpr, fgrad.make_jaxpr(fgrad.jit(fgrad_f))(X_POS, Y),
              fgrad.make_jaxpr(fgrad.grad(loss))(X_POS, Y),
              fgrad.make_jaxpr(fgrad.hessian(loss))(X_POS, Y),
              fgrad.make_jaxpr(lambda p, t: fgrad.jvp(fgrad_f, p, t))((X_POS, Y), (Y, Y)),
              fgrad.make_jaxpr(fgrad.vmap(fgrad_f))(np.stack([X_POS, X_NEG]), np.stack([Y, Y])),
              fgrad.make_jaxpr(fgrad.vmap(fgrad.grad(loss)))(np.stack([X_POS, X_NEG]),
                                                              np.stack([Y, Y])),
              linearize_flat(lambda x, y: list(fgrad_f(x, y)),
                             [fnp.asarray(X_POS), fnp.asarray(Y)])[1]]:
        typecheck_jaxpr(j)
        # (under vmap the predicate is batched: the cond became a select)
        assert count_eqns(j, "cond") + count_eqns(j, "select_n") >= 1


def test_jit_traces_each_branch_once() -> None:
    calls = []

    def f(x: Any) -> Any:
        return cond(x > 0, lambda y: (calls.append(1), y * 2.0)[1], lambda y: y, x)

    jitted = fgrad.jit(f)
    for x in (1.0, -1.0, 3.0):
        assert float(jitted(np.float32(x))) == (2 * x if x > 0 else x)
    assert len(calls) == 1


# --- batching ---------------------------------------------------------------------------------

def test_vmap_batched_and_unbatched_predicates(x64: None) -> None:
    xs = np.stack([X_POS, X_NEG, X_POS * -2, X_NEG * 0.5])
    ys = np.stack([Y, -Y, Y * 2, Y])
    # batched predicate (depends on the batched x): every branch runs, then select
    assert_tree_close(fgrad.vmap(fgrad_f)(xs, ys), jjit(jax.vmap(jax_f))(xs, ys))
    assert_tree_close(fgrad.vmap(fgrad_f, in_axes=(None, 0))(X_NEG, ys),
                      jjit(jax.vmap(jax_f, in_axes=(None, 0)))(X_NEG, ys))
    assert_tree_close(fgrad.vmap(fgrad_f, in_axes=(1, 0))(xs.T, ys),
                      jjit(jax.vmap(jax_f, in_axes=(1, 0)))(xs.T, ys))
    # the select path really is taken, and an unbatched predicate keeps one cond
    text = str(fgrad.make_jaxpr(fgrad.vmap(fgrad_f))(xs, ys))
    assert "select_n" in text and "cond[" not in text
    assert "cond[" in str(fgrad.make_jaxpr(fgrad.vmap(fgrad_f, in_axes=(None, 0)))(X_NEG, ys))
    loss, jloss = scalar_loss(fgrad_f), scalar_loss(jax_f)
    assert_tree_close(fgrad.jit(fgrad.vmap(fgrad.grad(loss, (0, 1))))(xs, ys),
                      jax.jit(jax.vmap(jax.grad(jloss, (0, 1))))(xs, ys))
    assert_tree_close(fgrad.grad(lambda x, y: fgrad.vmap(loss)(x, y).sum(), (0, 1))(xs, ys),
                      jjit(jax.grad(lambda x, y: jax.vmap(jloss)(x, y).sum(), (0, 1)))(xs, ys))
    assert_tree_close(fgrad.vmap(fgrad.vmap(fgrad_f), in_axes=(1, None))(np.stack([xs, xs], 1),
                                                                         ys),
                      jjit(jax.vmap(jax.vmap(jax_f), in_axes=(1, None)))(np.stack([xs, xs], 1),
                                                                        ys))


@pytest.mark.parametrize("seed", range(6))
def test_vmap_random_axes_against_a_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)

    def f(p: Any, x: Any, w: Any) -> Any:
        return cond(p, lambda x, w: (x @ w, fnp.sum(x)), lambda x, w: (fnp.sin(x) @ w, 2.0 * x[0]),
                    x, w)

    examples = [[rng.integers(0, 2).astype(bool), rng.normal(size=3).astype(np.float32),
                 rng.normal(size=(3, 2)).astype(np.float32)] for _ in range(4)]
    in_axes = random_in_axes(rng, [0, 1, 2])
    args = batch_args(examples, in_axes)
    for out_axes in (0, -1):
        check_vmap(f, args, in_axes, out_axes, rtol=1e-5, what=f"cond seed {seed}")
    check_vmap(fgrad.jit(f), args, in_axes, rtol=1e-5, what="jit(cond)")


def test_vmap_closure_over_batched_values(x64: None) -> None:
    ws = np.array([0.5, -1.0, 2.0])

    def f(lib: Any, c: Any) -> Any:
        return lambda w: c(w > 0, lambda: lib.sin(w) * 3.0, lambda: w * w)

    ff, jf = f(fnp, cond), f(jnp, jax.lax.cond)
    assert_tree_close(fgrad.vmap(ff)(ws), jjit(jax.vmap(jf))(ws))
    # the closed-over vmap tracer with an unbatched predicate
    g = lambda w: cond(True, lambda: fnp.sin(w) * 3.0, lambda: w * w)  # noqa: E731
    jg = lambda w: jax.lax.cond(True, lambda: jnp.sin(w) * 3.0, lambda: w * w)  # noqa: E731
    assert_tree_close(fgrad.vmap(g)(ws), jjit(jax.vmap(jg))(ws))
    assert_tree_close(fgrad.vmap(fgrad.grad(g))(ws), jjit(jax.vmap(jax.grad(jg)))(ws))


def test_batched_predicate_gradient_ignores_the_untaken_branch(x64: None) -> None:
    # sqrt(x) is NaN (and its derivative too) for x < 0; lanes taking the other branch
    # must still get a finite gradient, as in JAX.
    def f(lib: Any, c: Any) -> Any:
        return lambda x: c(x > 0, lambda y: lib.sqrt(y), lambda y: y * 0.0 + 1.0, x)

    ff, jf = f(fnp, cond), f(jnp, jax.lax.cond)
    xs = np.array([-1.0, 4.0, 0.0, 2.0])
    with np.errstate(invalid="ignore", divide="ignore"):  # sqrt(-1) in the untaken branch
        got = fgrad.vmap(fgrad.grad(ff))(xs)
    assert_tree_close(got, jjit(jax.vmap(jax.grad(jf)))(xs))
    assert np.isfinite(np.asarray(got)).all()


def test_vmap_of_switch_with_batched_index_and_unbatched_operand() -> None:
    branches = [lambda x: x * 2.0, lambda x: x + 1.0, lambda x: -x]

    def f(i: Any, x: Any) -> Any:
        return switch(i, branches, x)

    idx = np.array([-3, 0, 1, 2, 5], np.int32)
    check_vmap(f, [idx, np.float32(3.0)], [0, None])
    check_vmap(f, [idx, np.arange(5, dtype=np.float32)], [0, 0])
    check_vmap(f, [np.int32(1), np.arange(5, dtype=np.float32)], [None, 0])


def test_unbatched_operands_stay_unbatched() -> None:
    # With a shared predicate the cond stays a cond, and the shared weight matrix goes in
    # as it is: no broadcast_in_dim of it anywhere.
    w = np.arange(6, dtype=np.float32).reshape(3, 2)

    def f(p: Any, x: Any, w: Any) -> Any:
        return cond(p, lambda x, w: x @ w, lambda x, w: fnp.sin(x) @ w, x, w)

    xs = np.ones((5, 3), np.float32)
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(None, 0, None)))(True, xs, w)
    (eqn,) = [e for e in jaxpr.jaxpr.eqns if e.primitive.name == "cond"]
    assert [a.aval.shape for a in eqn.invars] == [(), (5, 3), (3, 2)]
    assert count_eqns(jaxpr, "broadcast_in_dim") == 0
    check_vmap(f, [True, xs, w], [None, 0, None])


@pytest.mark.parametrize("size", [0, 1])
def test_batch_of_size_zero_and_one(size: int) -> None:
    def f(lib: Any, c: Any) -> Any:
        return lambda p, x: c(p, lambda x: lib.sin(x) * 2.0, lambda x: x - 1.0, x)

    ff, jf = f(fnp, cond), f(jnp, jax.lax.cond)
    ps, xs = np.arange(size) % 2 == 0, np.ones((size, 2), np.float32)
    assert_matches(fgrad.vmap(ff)(ps, xs), jax.vmap(jf)(ps, xs))
    assert_matches(fgrad.vmap(ff, in_axes=(None, 0))(True, xs),
                   jax.vmap(jf, in_axes=(None, 0))(True, xs))


def test_derivatives_match_the_python_if(x64: None) -> None:
    # The same function written with a Python `if` (fine eagerly: the predicate is concrete).
    def unrolled(x: Any, y: Any) -> Any:
        ops = {"a": x, "b": y}
        if fnp.sum(x) > 0:
            return fnp.sin(ops["a"]) * ops["b"], fnp.exp(ops["a"] * 0.5) + ops["b"] ** 3
        return fnp.cos(ops["a"] * ops["b"]), ops["a"] * ops["a"]

    tx = np.array([0.2, -1.0, 0.5])
    for x in (X_POS, X_NEG):
        assert_tree_close(fgrad_f(x, Y), unrolled(x, Y))
        assert_tree_close(fgrad.jvp(fgrad_f, (x, Y), (tx, Y)), fgrad.jvp(unrolled, (x, Y), (tx, Y)))
        loss, py_loss = scalar_loss(fgrad_f), scalar_loss(unrolled)
        assert_tree_close(fgrad.grad(loss, (0, 1))(x, Y), fgrad.grad(py_loss, (0, 1))(x, Y))
        assert_tree_close(fgrad.hessian(loss)(x, Y), fgrad.hessian(py_loss)(x, Y))
