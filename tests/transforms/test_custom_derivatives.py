"""``custom_jvp``, ``custom_vjp``, ``checkpoint``/``remat`` against JAX.

Custom rules here are often deliberately *different* from the true
derivative (a factor 10, say): then a correct result proves that the rule,
not automatic differentiation of the body, produced it. The same rule is
registered in JAX, so both must agree exactly.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core.jaxpr import typecheck_jaxpr


import functools  # noqa: E402

import jax_compare  # noqa: E402
from jaxpr_util import count_eqns  # noqa: E402

assert_tree_close = functools.partial(jax_compare.assert_tree_close, rtol=1e-12, atol=1e-12)




# --- custom_jvp: one definition for each library --------------------------------------------

def make_scaled_sin(lib: Any, custom_jvp: Any) -> Any:
    """sin(x) * y whose JVP rule is deliberately 10x the true one in x (and true in y)."""
    @custom_jvp
    def f(x: Any, y: Any) -> Any:
        return lib.sin(x) * y

    @f.defjvp
    def f_jvp(primals: Any, tangents: Any) -> Any:
        (x, y), (tx, ty) = primals, tangents
        return f(x, y), 10.0 * lib.cos(x) * y * tx + lib.sin(x) * ty

    return f


F_SCALED = make_scaled_sin(fnp, fgrad.custom_jvp)
J_SCALED = make_scaled_sin(jnp, jax.custom_jvp)


def test_custom_jvp_primal_value(x64: None) -> None:
    assert_tree_close(F_SCALED(0.3, 1.5), J_SCALED(0.3, 1.5))


def test_custom_jvp_rule_used_by_jvp_and_grad(x64: None) -> None:
    assert_tree_close(fgrad.jvp(F_SCALED, (0.3, 1.5), (1.0, 0.5)),
                      jax.jvp(J_SCALED, (0.3, 1.5), (1.0, 0.5)))
    got = fgrad.grad(F_SCALED, argnums=(0, 1))(0.3, 1.5)
    assert_tree_close(got, jax.grad(J_SCALED, argnums=(0, 1))(0.3, 1.5))
    np.testing.assert_allclose(np.asarray(got[0]), 10.0 * np.cos(0.3) * 1.5)


def test_custom_jvp_nested_grad(x64: None) -> None:
    # The rule is itself differentiable: second derivatives differentiate the rule.
    for order in (2, 3):
        f, jf = F_SCALED, J_SCALED
        for _ in range(order):
            f, jf = fgrad.grad(f), jax.grad(jf)
        assert_tree_close(f(0.3, 1.5), jf(0.3, 1.5), rtol=1e-10)


def test_custom_jvp_under_jit(x64: None) -> None:
    args = (0.3, 1.5)
    assert_tree_close(fgrad.jit(F_SCALED)(*args), jax.jit(J_SCALED)(*args))
    assert_tree_close(fgrad.jit(fgrad.grad(F_SCALED))(*args), jax.jit(jax.grad(J_SCALED))(*args))
    assert_tree_close(fgrad.grad(fgrad.jit(F_SCALED))(*args), jax.grad(jax.jit(J_SCALED))(*args))
    jaxpr = fgrad.make_jaxpr(fgrad.grad(fgrad.jit(F_SCALED)))(*args)
    typecheck_jaxpr(jaxpr)


def test_custom_jvp_jit_inside_rule(x64: None) -> None:
    @fgrad.custom_jvp
    def f(x: Any) -> Any:
        return fgrad.jit(fnp.exp)(x)

    f.defjvp(lambda p, t: (f(p[0]), fgrad.jit(lambda a, b: a * b * 3.0)(f(p[0]), t[0])))
    np.testing.assert_allclose(np.asarray(fgrad.grad(f)(0.5)), 3.0 * np.exp(0.5), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(fgrad.grad(fgrad.grad(f))(0.5)), 9.0 * np.exp(0.5),
                               rtol=1e-14)


def test_custom_jvp_in_make_jaxpr_shows_call() -> None:
    jaxpr = fgrad.make_jaxpr(F_SCALED)(0.3, 1.5)
    assert [e.primitive.name for e in jaxpr.eqns] == ["custom_jvp_call"]
    typecheck_jaxpr(jaxpr)


def test_custom_jvp_defjvps(x64: None) -> None:
    def make(lib: Any, custom_jvp: Any) -> Any:
        @custom_jvp
        def f(x: Any, y: Any) -> Any:
            return lib.exp(x) * y

        f.defjvps(lambda tx, ans, x, y: ans * tx * 2.0, lambda ty, ans, x, y: lib.exp(x) * ty)
        return f

    f, jf = make(fnp, fgrad.custom_jvp), make(jnp, jax.custom_jvp)
    assert_tree_close(fgrad.grad(f, argnums=(0, 1))(0.2, 0.7),
                      jax.grad(jf, argnums=(0, 1))(0.2, 0.7))
    assert_tree_close(fgrad.jvp(f, (0.2, 0.7), (1.0, 1.0)), jax.jvp(jf, (0.2, 0.7), (1.0, 1.0)))
    assert_tree_close(fgrad.grad(fgrad.grad(f))(0.2, 0.7), jax.grad(jax.grad(jf))(0.2, 0.7))


def test_custom_jvp_defjvps_with_none(x64: None) -> None:
    def make(lib: Any, custom_jvp: Any) -> Any:
        @custom_jvp
        def f(x: Any, y: Any) -> Any:
            return lib.sin(x) * y

        f.defjvps(None, lambda ty, ans, x, y: lib.sin(x) * ty)
        return f

    f, jf = make(fnp, fgrad.custom_jvp), make(jnp, jax.custom_jvp)
    assert_tree_close(fgrad.grad(f, argnums=(0, 1))(0.2, 0.7),
                      jax.grad(jf, argnums=(0, 1))(0.2, 0.7))


def test_custom_jvp_nondiff_argnums(x64: None) -> None:
    def make(lib: Any, custom_jvp: Any) -> Any:
        @partial(custom_jvp, nondiff_argnums=(0, 2))
        def apply(fun: Any, x: Any, n: int) -> Any:
            return fun(x) * n

        @apply.defjvp
        def apply_jvp(fun: Any, n: int, primals: Any, tangents: Any) -> Any:
            (x,), (t,) = primals, tangents
            return apply(fun, x, n), 7.0 * n * t

        return apply

    f, jf = make(fnp, fgrad.custom_jvp), make(jnp, jax.custom_jvp)
    g = lambda x: f(fnp.sin, x, 3)
    jg = lambda x: jf(jnp.sin, x, 3)
    assert_tree_close(g(0.4), jg(0.4))
    assert_tree_close(fgrad.grad(g)(0.4), jax.grad(jg)(0.4))
    assert_tree_close(fgrad.jit(fgrad.grad(g))(0.4), jax.jit(jax.grad(jg))(0.4))


def test_custom_jvp_pytree_args_and_outputs(x64: None) -> None:
    def make(lib: Any, custom_jvp: Any) -> Any:
        @custom_jvp
        def f(d: dict[str, Any]) -> Any:
            return {"prod": d["a"] * d["b"], "pair": (lib.sin(d["a"]), d["b"])}

        @f.defjvp
        def f_jvp(primals: Any, tangents: Any) -> Any:
            (d,), (t,) = primals, tangents
            out = f(d)
            t_out = {"prod": 2.0 * (t["a"] * d["b"] + d["a"] * t["b"]),
                     "pair": (lib.cos(d["a"]) * t["a"], t["b"])}
            return out, t_out

        return f

    f, jf = make(fnp, fgrad.custom_jvp), make(jnp, jax.custom_jvp)
    d = {"a": np.array([0.1, 0.2]), "b": np.array([1.5, -0.5])}
    t = {"a": np.array([1.0, 0.0]), "b": np.array([0.3, 2.0])}
    assert_tree_close(fgrad.jvp(f, (d,), (t,)), jax.jvp(jf, (d,), (t,)))
    loss = lambda lib, g: lambda d: lib.sum(g(d)["prod"]) + lib.sum(g(d)["pair"][0])
    assert_tree_close(fgrad.grad(loss(fnp, f))(d), jax.grad(loss(jnp, jf))(d))


def test_custom_jvp_called_with_kwargs(x64: None) -> None:
    assert_tree_close(fgrad.grad(lambda x: F_SCALED(x, y=2.0))(0.3),
                      jax.grad(lambda x: J_SCALED(x, y=2.0))(0.3))


def test_custom_jvp_without_rule_raises() -> None:
    @fgrad.custom_jvp
    def f(x: Any) -> Any:
        return x

    with pytest.raises(AttributeError, match="No JVP defined"):
        f(1.0)


def test_custom_jvp_rule_with_wrong_tangent_shape_raises() -> None:
    @fgrad.custom_jvp
    def f(x: Any) -> Any:
        return fnp.sin(x)

    f.defjvp(lambda p, t: (f(p[0]), fnp.ones(3)))
    with pytest.raises(TypeError, match=r"f32\[3\]"):
        fgrad.jvp(f, (1.0,), (1.0,))


# --- custom_vjp -------------------------------------------------------------------------

def make_vjp_fun(lib: Any, custom_vjp: Any) -> Any:
    """sin(x) * y with residuals in a pytree and a bwd that is 10x the truth in x."""
    @custom_vjp
    def f(x: Any, y: Any) -> Any:
        return lib.sin(x) * y

    def f_fwd(x: Any, y: Any) -> Any:
        return f(x, y), {"cos": lib.cos(x), "pair": (lib.sin(x), y)}

    def f_bwd(res: Any, ct: Any) -> Any:
        return 10.0 * res["cos"] * res["pair"][1] * ct, res["pair"][0] * ct

    f.defvjp(f_fwd, f_bwd)
    return f


FV, JV = make_vjp_fun(fnp, fgrad.custom_vjp), make_vjp_fun(jnp, jax.custom_vjp)


def test_custom_vjp_values_and_grad(x64: None) -> None:
    assert_tree_close(FV(0.3, 1.5), JV(0.3, 1.5))
    assert_tree_close(fgrad.grad(FV, argnums=(0, 1))(0.3, 1.5),
                      jax.grad(JV, argnums=(0, 1))(0.3, 1.5))
    out, pullback = fgrad.vjp(FV, 0.3, 1.5)
    jout, jpullback = jax.vjp(JV, 0.3, 1.5)
    assert_tree_close(pullback(2.0), jpullback(2.0))


def test_custom_vjp_arrays(x64: None) -> None:
    x, y = np.linspace(-1, 1, 4), np.linspace(0.5, 2, 4)
    loss = lambda lib, f: lambda x, y: lib.sum(f(x, y) * x)
    assert_tree_close(fgrad.grad(loss(fnp, FV), argnums=(0, 1))(x, y),
                      jax.grad(loss(jnp, JV), argnums=(0, 1))(x, y))


def test_custom_vjp_under_jit(x64: None) -> None:
    assert_tree_close(fgrad.jit(FV)(0.3, 1.5), jax.jit(JV)(0.3, 1.5))
    assert_tree_close(fgrad.jit(fgrad.grad(FV))(0.3, 1.5), jax.jit(jax.grad(JV))(0.3, 1.5))
    assert_tree_close(fgrad.grad(fgrad.jit(FV))(0.3, 1.5), jax.grad(jax.jit(JV))(0.3, 1.5))
    assert_tree_close(fgrad.jit(fgrad.grad(fgrad.jit(FV)))(0.3, 1.5),
                      jax.jit(jax.grad(jax.jit(JV)))(0.3, 1.5))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(fgrad.jit(FV)))(0.3, 1.5))


def test_custom_vjp_second_order(x64: None) -> None:
    # grad of grad differentiates the (differentiable) bwd rule
    assert_tree_close(fgrad.grad(fgrad.grad(FV))(0.3, 1.5), jax.grad(jax.grad(JV))(0.3, 1.5))


def test_custom_vjp_none_cotangent(x64: None) -> None:
    def make(lib: Any, custom_vjp: Any) -> Any:
        @custom_vjp
        def f(x: Any, y: Any) -> Any:
            return x * y

        f.defvjp(lambda x, y: (f(x, y), y), lambda y, ct: (y * ct, None))
        return f

    f, jf = make(fnp, fgrad.custom_vjp), make(jnp, jax.custom_vjp)
    assert_tree_close(fgrad.grad(f, argnums=(0, 1))(2.0, 3.0),
                      jax.grad(jf, argnums=(0, 1))(2.0, 3.0))


def test_custom_vjp_none_cotangent_for_a_pytree_leaf(x64: None) -> None:
    # JAX accepts None for any subtree of an argument's cotangent (meaning zeros).
    def make(custom_vjp: Any) -> Any:
        @custom_vjp
        def f(d: dict[str, Any]) -> Any:
            return d["a"] * d["b"]

        f.defvjp(lambda d: (f(d), d), lambda d, ct: ({"a": ct * d["b"], "b": None},))
        return f

    f, jf = make(fgrad.custom_vjp), make(jax.custom_vjp)
    d = {"a": 2.0, "b": 3.0}
    assert_tree_close(fgrad.grad(f)(d), jax.grad(jf)(d))


def test_custom_vjp_nondiff_argnums(x64: None) -> None:
    def make(lib: Any, custom_vjp: Any) -> Any:
        @partial(custom_vjp, nondiff_argnums=(1,))
        def power(x: Any, n: int) -> Any:
            return x ** n

        def fwd(x: Any, n: int) -> Any:
            return power(x, n), x

        def bwd(n: int, x: Any, ct: Any) -> Any:
            return (10.0 * n * x ** (n - 1) * ct,)

        power.defvjp(fwd, bwd)
        return power

    f, jf = make(fnp, fgrad.custom_vjp), make(jnp, jax.custom_vjp)
    assert_tree_close(fgrad.grad(f)(2.0, 3), jax.grad(jf)(2.0, 3))
    assert_tree_close(fgrad.jit(fgrad.grad(f), static_argnums=1)(2.0, 3),
                      jax.jit(jax.grad(jf), static_argnums=1)(2.0, 3))


def test_custom_vjp_pytree_output(x64: None) -> None:
    def make(lib: Any, custom_vjp: Any) -> Any:
        @custom_vjp
        def f(x: Any) -> Any:
            return {"s": lib.sin(x), "c": lib.cos(x)}

        f.defvjp(lambda x: (f(x), x),
                 lambda x, ct: (lib.cos(x) * ct["s"] - 3.0 * lib.sin(x) * ct["c"],))
        return f

    f, jf = make(fnp, fgrad.custom_vjp), make(jnp, jax.custom_vjp)
    assert_tree_close(fgrad.grad(lambda x: f(x)["s"] + f(x)["c"])(0.4),
                      jax.grad(lambda x: jf(x)["s"] + jf(x)["c"])(0.4))
    _, pullback = fgrad.vjp(f, 0.4)
    _, jpullback = jax.vjp(jf, 0.4)
    ct = {"s": 1.0, "c": 2.0}
    assert_tree_close(pullback(ct), jpullback(ct))


def test_custom_vjp_jvp_raises() -> None:
    with pytest.raises(TypeError, match=r"can't apply forward-mode autodiff \(jvp\) to a "
                                        "custom_vjp function"):
        fgrad.jvp(FV, (0.3, 1.5), (1.0, 0.0))
    with pytest.raises(TypeError, match="custom_vjp"):
        fgrad.jacfwd(FV)(0.3, 1.5)


def test_custom_vjp_bwd_errors() -> None:
    @fgrad.custom_vjp
    def f(x: Any) -> Any:
        return fnp.sin(x)

    f.defvjp(lambda x: (fnp.sin(x), x), lambda x, ct: (ct, ct))
    with pytest.raises(TypeError, match="one cotangent per"):
        fgrad.grad(f)(1.0)

    @fgrad.custom_vjp
    def g(x: Any) -> Any:
        return fnp.sin(x)

    g.defvjp(lambda x: (fnp.sin(x), x), lambda x, ct: (fnp.ones(3),))
    with pytest.raises(TypeError, match=r"f32\[3\]"):
        fgrad.grad(g)(1.0)


def test_custom_vjp_without_rule_raises() -> None:
    @fgrad.custom_vjp
    def f(x: Any) -> Any:
        return x

    with pytest.raises(AttributeError, match="No VJP defined"):
        f(1.0)


# --- checkpoint / remat ------------------------------------------------------------------------

def chain(lib: Any) -> Any:
    def f(x: Any) -> Any:
        for _ in range(3):
            x = lib.sin(x) * 1.5
        return x
    return f


def test_checkpoint_same_values_and_grads(x64: None) -> None:
    f, jf = chain(fnp), chain(jnp)
    cf, cjf = fgrad.checkpoint(f), jax.checkpoint(jf)
    x = np.linspace(-1, 1, 3)
    assert_tree_close(cf(x), jf(x))
    loss = lambda lib, g: lambda x: lib.sum(g(x))
    assert_tree_close(fgrad.grad(loss(fnp, cf))(x), jax.grad(loss(jnp, jf))(x))
    assert_tree_close(fgrad.grad(loss(fnp, cf))(x), fgrad.grad(loss(fnp, f))(x), rtol=0, atol=0)
    assert_tree_close(fgrad.jvp(cf, (x,), (x,)), jax.jvp(cjf, (x,), (x,)))
    assert_tree_close(fgrad.grad(fgrad.grad(cf))(0.3), jax.grad(jax.grad(cjf))(0.3), rtol=1e-10)


def test_checkpoint_recomputes_in_backward_pass() -> None:
    f = chain(fnp)
    plain = fgrad.make_jaxpr(fgrad.grad(f))(0.5)
    remat = fgrad.make_jaxpr(fgrad.grad(fgrad.checkpoint(f)))(0.5)
    typecheck_jaxpr(remat)
    assert count_eqns(remat, "checkpoint") >= 1
    assert "checkpoint" in str(remat)
    # the forward sines are evaluated again in the backward pass
    assert count_eqns(remat, "sin") > count_eqns(plain, "sin")
    assert count_eqns(plain, "sin") == 3


def test_checkpoint_matches_jax_recomputation_count() -> None:
    # jax.checkpoint recomputes the same primal sines in the backward pass.
    remat = fgrad.make_jaxpr(fgrad.grad(fgrad.checkpoint(chain(fnp))))(0.5)
    jremat = jax.make_jaxpr(jax.grad(jax.checkpoint(chain(jnp))))(0.5)

    def jax_count(jaxpr: Any, name: str) -> int:
        total = 0
        for eqn in jaxpr.eqns:
            total += eqn.primitive.name == name
            for sub in jax.extend.core.jaxprs_in_params(eqn.params):
                total += jax_count(sub, name)
        return total

    assert count_eqns(remat, "sin") == jax_count(jremat.jaxpr, "sin")


def test_checkpoint_pytrees_static_and_closures(x64: None) -> None:
    def f(d: dict[str, Any], n: int) -> Any:
        out = d["x"]
        for _ in range(n):
            out = fnp.tanh(out * d["w"])
        return fnp.sum(out)

    def jf(d: dict[str, Any], n: int) -> Any:
        out = d["x"]
        for _ in range(n):
            out = jnp.tanh(out * d["w"])
        return jnp.sum(out)

    d = {"x": np.linspace(-1, 1, 3), "w": np.float64(0.7)}
    got = fgrad.grad(fgrad.checkpoint(f, static_argnums=(1,)))(d, 3)
    want = jax.grad(jax.checkpoint(jf, static_argnums=(1,)))(d, 3)
    assert_tree_close(got, want)
    # a checkpointed function closing over the differentiated variable
    assert_tree_close(fgrad.grad(lambda x: fgrad.checkpoint(lambda y: fnp.sin(x) * y)(2.0))(3.0),
                      jax.grad(lambda x: jax.checkpoint(lambda y: jnp.sin(x) * y)(2.0))(3.0))


def test_checkpoint_with_jit(x64: None) -> None:
    f, jf = chain(fnp), chain(jnp)
    cases = [
        (fgrad.jit(fgrad.grad(fgrad.checkpoint(f))), jax.jit(jax.grad(jax.checkpoint(jf)))),
        (fgrad.grad(fgrad.checkpoint(fgrad.jit(f))), jax.grad(jax.checkpoint(jax.jit(jf)))),
        (fgrad.grad(fgrad.jit(fgrad.checkpoint(f))), jax.grad(jax.jit(jax.checkpoint(jf)))),
        (fgrad.grad(fgrad.grad(fgrad.jit(fgrad.checkpoint(f)))),
         jax.grad(jax.grad(jax.jit(jax.checkpoint(jf))))),
    ]
    for got_f, want_f in cases:
        assert_tree_close(got_f(0.4), want_f(0.4), rtol=1e-10)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(fgrad.jit(fgrad.checkpoint(f))))(0.4))


def test_remat_is_checkpoint() -> None:
    assert fgrad.remat is fgrad.checkpoint
