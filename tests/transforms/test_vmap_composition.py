"""``vmap`` composed with ``grad``, ``jit``, Jacobians and custom derivatives, against JAX.

* hypothesis stacks: a random tower of ``vmap`` (random in/out axes, negative
  too, batch sizes 1-3), ``grad`` (of the summed output), ``jit``, ``jacfwd``
  and ``jacrev`` around a base function (smooth elementwise, a small
  network with a matmul, custom_jvp, custom_vjp, checkpoint), compared with
  JAX applying the same tower; every jaxpr the tower stages must typecheck;
* the orders the issue names: ``jit(vmap(grad(f)))``, ``vmap(jacrev(f))``,
  ``grad(vmap(f))`` summed, ``vmap(vmap(f))`` with different axes,
  ``vmap(jit(f))``;
* ``jacfwd``/``jacrev``/``hessian`` of pytree functions (argnums, has_aux,
  keyword arguments, mixed dtypes);
* per-example gradients ``vmap(grad(loss), in_axes=(None, 0, 0))`` of a small
  MLP, against JAX and against a Python loop of gradients;
* custom_jvp/custom_vjp/checkpoint under vmap: the custom rule (deliberately
  different from the true derivative) is used in both ``grad(vmap(f))`` and
  ``vmap(grad(f))``; ``custom_lin``'s batch rule; stop_gradient.

All comparisons in float64 (the ``x64`` fixture).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import hypothesis
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
import jax_compare
from fgrad.core.jaxpr import typecheck_jaxpr

assert_tree_close = functools.partial(jax_compare.assert_tree_close, rtol=1e-9, atol=1e-9)


def oracle(fun: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """JAX's result, jitted: one XLA compile is much faster here than op-by-op dispatch."""
    return jax.jit(fun)(*args, **kwargs)


def rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape)


class Lib:
    """One namespace per library, so a test builds the same function for fgrad and JAX."""

    def __init__(self, T: Any, np_: Any) -> None:
        self.T, self.np = T, np_


FG, JX = Lib(fgrad, fnp), Lib(jax, jnp)


# --- base functions of x: f64[3] ------------------------------------------------------------

W1, B1, W2 = rand(4, 3, seed=1), rand(4, seed=2), rand(2, 4, seed=3)


def _smooth(L: Lib) -> Callable[[Any], Any]:
    n = L.np
    return lambda x: n.sin(x) * n.tanh(x * x) + n.exp(n.cos(x)) * x


def _net(L: Lib) -> Callable[[Any], Any]:
    n = L.np
    return lambda x: W2 @ n.tanh(W1 @ x + B1)


def _custom_jvp(L: Lib) -> Callable[[Any], Any]:
    n = L.np

    @L.T.custom_jvp
    def f(x: Any) -> Any:
        return n.sin(x) * x

    @f.defjvp
    def f_jvp(primals: Any, tangents: Any) -> Any:  # deliberately not the true derivative
        (x,), (t,) = primals, tangents
        return f(x), n.cos(x) * t * 3.0 + x * t

    return lambda x: f(x) * n.sum(x)


def _custom_vjp(L: Lib) -> Callable[[Any], Any]:
    n = L.np

    @L.T.custom_vjp
    def f(x: Any, w: Any) -> Any:
        return n.tanh(w @ x)

    def fwd(x: Any, w: Any) -> Any:
        y = f(x, w)
        return y, (x, w, y)

    def bwd(res: Any, ct: Any) -> Any:  # deliberately scaled
        x, w, y = res
        g = ct * (1.0 - y * y) * 2.0
        return (w.T @ g, n.outer(g, x))

    f.defvjp(fwd, bwd)
    return lambda x: f(x, W1) * 1.5


def _checkpointed(L: Lib) -> Callable[[Any], Any]:
    n = L.np
    inner = L.T.checkpoint(lambda x: n.sin(n.cos(x)) * x)
    return lambda x: inner(x) + n.sum(inner(x * 2.0))


BASES = {"smooth": _smooth, "net": _net, "custom_jvp": _custom_jvp, "custom_vjp": _custom_vjp,
         "checkpoint": _checkpointed}
BASE_OUT_SHAPE = {"smooth": (3,), "net": (2,), "custom_jvp": (3,), "custom_vjp": (4,),
                  "checkpoint": (3,)}
FORWARD_MODE_OK = {"smooth", "net", "custom_jvp", "checkpoint"}  # custom_vjp has no JVP


# --- random towers of transforms ----------------------------------------------------------------

@st.composite
def towers(draw: st.DrawFn) -> tuple[str, list[tuple[Any, ...]], tuple[int, ...]]:
    """A base name, wrappers from the inside out, and the input shape the tower expects."""
    base = draw(st.sampled_from(sorted(BASES)))
    in_shape, out_shape = [3], list(BASE_OUT_SHAPE[base])
    layers: list[tuple[Any, ...]] = []
    used_jac = False
    for _ in range(draw(st.integers(1, 3))):
        choices = ["vmap", "vmap", "jit", "grad"]
        if not used_jac:
            choices += ["jacrev"] + (["jacfwd"] if base in FORWARD_MODE_OK else [])
        kind = draw(st.sampled_from(choices))
        if kind == "vmap":
            size = draw(st.integers(1, 3))
            in_axis = draw(st.integers(-len(in_shape) - 1, len(in_shape)))
            out_axis = draw(st.integers(-len(out_shape) - 1, len(out_shape)))
            in_shape.insert(in_axis % (len(in_shape) + 1), size)
            out_shape.insert(out_axis % (len(out_shape) + 1), size)
            layers.append(("vmap", in_axis, out_axis))
        elif kind == "grad":
            out_shape = list(in_shape)
            layers.append(("grad",))
        elif kind in ("jacfwd", "jacrev"):
            used_jac = True
            out_shape = out_shape + in_shape
            layers.append((kind,))
        else:
            layers.append(("jit",))
    return base, layers, tuple(in_shape)


def build(L: Lib, base: str, layers: list[tuple[Any, ...]]) -> Callable[[Any], Any]:
    f = BASES[base](L)
    for layer in layers:
        if layer[0] == "vmap":
            f = L.T.vmap(f, in_axes=layer[1], out_axes=layer[2])
        elif layer[0] == "grad":
            f = L.T.grad(lambda x, g=f: L.np.sum(g(x)))
        elif layer[0] == "jit":
            f = L.T.jit(f)
        else:
            f = getattr(L.T, layer[0])(f)
    return f


@hypothesis.settings(max_examples=15)
@given(towers(), st.integers(0, 1000))
def test_random_towers_match_jax(x64: None, tower: Any, seed: int) -> None:
    base, layers, in_shape = tower
    note(f"base={base} layers={layers} in_shape={in_shape}")
    x = rand(*in_shape, seed=seed)
    got = build(FG, base, layers)(x)
    want = oracle(build(JX, base, layers), x)
    assert_tree_close(got, want)
    typecheck_jaxpr(fgrad.make_jaxpr(build(FG, base, layers))(x))


# --- the named orders ---------------------------------------------------------------------

def _loss(L: Lib) -> Callable[[Any], Any]:
    n = L.np
    return lambda x: n.sum(n.sin(x) * n.tanh(W1 @ x)[:3]) + n.sum(x ** 3)


NAMED = {
    "jit(vmap(grad(f)))": lambda L: L.T.jit(L.T.vmap(L.T.grad(_loss(L)))),
    "vmap(jacrev(f))": lambda L: L.T.vmap(L.T.jacrev(_net(L))),
    "vmap(jacfwd(f)) axis 1": lambda L: L.T.vmap(L.T.jacfwd(_smooth(L)), in_axes=1, out_axes=2),
    "grad(vmap(f)) summed": lambda L: L.T.grad(lambda xs: L.np.sum(L.T.vmap(_loss(L))(xs))),
    "grad(vmap(f, in_axes=1))": lambda L: L.T.grad(
        lambda xs: L.np.sum(L.T.vmap(_net(L), in_axes=1, out_axes=1)(xs.T) ** 2)),
    "vmap(vmap(f)) different axes": lambda L: L.T.vmap(
        L.T.vmap(_net(L), in_axes=-1, out_axes=0), in_axes=0, out_axes=-1),
    "vmap(jit(f))": lambda L: L.T.vmap(L.T.jit(_net(L))),
    "vmap(jit(grad(f)))": lambda L: L.T.vmap(L.T.jit(L.T.grad(_loss(L)))),
    "jacrev(vmap(f))": lambda L: L.T.jacrev(L.T.vmap(_smooth(L))),
    "hessian(vmap summed)": lambda L: L.T.hessian(lambda xs: L.np.sum(L.T.vmap(_loss(L))(xs))),
    "vmap(hessian(f))": lambda L: L.T.vmap(L.T.hessian(_loss(L))),
}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_compositions_match_jax(x64: None, name: str) -> None:
    x = rand(2, 3, 3, seed=5) if "vmap(vmap" in name else rand(4, 3, seed=5)
    if "axis 1" in name:
        x = rand(3, 4, seed=5)
    got = NAMED[name](FG)(x)
    assert_tree_close(got, oracle(NAMED[name](JX), x))
    typecheck_jaxpr(fgrad.make_jaxpr(NAMED[name](FG))(x))


# --- Jacobians of pytree functions ----------------------------------------------------------

def _tree_fun(L: Lib) -> Callable[..., Any]:
    n = L.np

    def f(params: Any, x: Any, scale: float = 1.0) -> Any:
        h = n.tanh(params["w"] @ x + params["b"])
        return {"out": h * scale, "parts": (n.sum(h ** 2), params["b"] * x[0])}
    return f


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev", "hessian"])
@pytest.mark.parametrize("argnums", [0, 1, (0, 1)])
def test_jacobians_of_pytree_functions(x64: None, jac: str, argnums: Any) -> None:
    params = {"w": rand(2, 3, seed=7), "b": rand(2, seed=8)}
    x = rand(3, seed=9)
    got = getattr(fgrad, jac)(_tree_fun(FG), argnums=argnums)(params, x, scale=2.0)
    want = oracle(getattr(jax, jac)(_tree_fun(JX), argnums=argnums), params, x, scale=2.0)
    assert_tree_close(got, want)
    if jac == "jacrev" and argnums == 0:
        assert got["out"]["w"].shape == (2, 2, 3) and got["parts"][0]["b"].shape == (2,)


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_jacobian_dtypes_and_weak_types_follow_jax(x64: None, jac: str) -> None:
    # jacfwd blocks take the output's dtype, jacrev blocks the input's.
    f = lambda t: (t[0] * fnp.sum(t[1]).astype(np.float32), fnp.sin(t[1]))
    jf = lambda t: (t[0] * jnp.sum(t[1]).astype(np.float32), jnp.sin(t[1]))
    t = (np.float32(1.5), rand(2))
    got = getattr(fgrad, jac)(f)(t)
    want = oracle(getattr(jax, jac)(jf), t)
    jax_compare.assert_matches(got, want, jac, rtol=1e-6)


def test_jacobian_has_aux_and_holomorphic_errors(x64: None) -> None:
    f = lambda x: (fnp.sin(x) * x, {"aux": fnp.cos(x)})
    jf = lambda x: (jnp.sin(x) * x, {"aux": jnp.cos(x)})
    for jac in ("jacfwd", "jacrev", "hessian"):
        assert_tree_close(getattr(fgrad, jac)(f, has_aux=True)(rand(3)),
                          oracle(getattr(jax, jac)(jf, has_aux=True), rand(3)))
    with pytest.raises(TypeError, match="holomorphic=True requires inputs with complex dtype"):
        fgrad.jacfwd(fnp.sin, holomorphic=True)(rand(3))
    with pytest.raises(TypeError, match="jacrev requires real-valued outputs"):
        fgrad.jacrev(lambda x: (x > 0).astype(np.int32))(rand(3))
    with pytest.raises(TypeError, match="jacrev requires real- or complex-valued inputs"):
        fgrad.jacrev(lambda x: x * 1.0)(np.arange(3))
    assert fgrad.jacrev(lambda x: x * 1.0, allow_int=True)(np.arange(3)).shape == (3, 3)


# --- per-example gradients -------------------------------------------------------------------

def _mlp_loss(L: Lib) -> Callable[..., Any]:
    n = L.np

    def loss(params: Any, x: Any, y: Any) -> Any:
        h = x
        for w, b in params[:-1]:
            h = n.tanh(h @ w + b)
        w, b = params[-1]
        logits = h @ w + b
        shifted = logits - n.max(logits)
        log_probs = shifted - n.log(n.sum(n.exp(shifted)))
        return -n.sum(log_probs * y)
    return loss


def _mlp_data(batch: int) -> tuple[Any, Any, Any]:
    sizes = [6, 5, 3]
    params = [(rand(a, b, seed=10 + i) * 0.5, rand(b, seed=20 + i) * 0.1)
              for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    xs = rand(batch, sizes[0], seed=30)
    ys = np.eye(sizes[-1])[np.arange(batch) % sizes[-1]]
    return params, xs, ys


@pytest.mark.parametrize("jit", [False, True])
def test_per_example_gradients_of_an_mlp(x64: None, jit: bool) -> None:
    params, xs, ys = _mlp_data(5)
    per_example = fgrad.vmap(fgrad.grad(_mlp_loss(FG)), in_axes=(None, 0, 0))
    if jit:
        per_example = fgrad.jit(per_example)
    got = per_example(params, xs, ys)
    want = oracle(jax.vmap(jax.grad(_mlp_loss(JX)), in_axes=(None, 0, 0)), params, xs, ys)
    assert_tree_close(got, want)
    assert got[0][0].shape == (5, 6, 5)
    # the same as a Python loop of gradients, and their mean is the batch gradient
    loop = [fgrad.grad(_mlp_loss(FG))(params, xs[i], ys[i]) for i in range(5)]
    for i in range(5):
        for g, l in zip(fgrad.tree_util.tree_leaves(got), fgrad.tree_util.tree_leaves(loop[i])):
            np.testing.assert_allclose(np.asarray(g)[i], np.asarray(l), rtol=1e-12, atol=1e-12)
    batch_grad = fgrad.grad(lambda p: fnp.sum(fgrad.vmap(_mlp_loss(FG), in_axes=(None, 0, 0))(
        p, xs, ys)))(params)
    for g, b in zip(fgrad.tree_util.tree_leaves(got), fgrad.tree_util.tree_leaves(batch_grad)):
        np.testing.assert_allclose(np.asarray(g).sum(0), np.asarray(b), rtol=1e-12, atol=1e-12)


def test_per_example_gradients_keep_the_weights_unbatched(x64: None) -> None:
    params, xs, ys = _mlp_data(4)
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(fgrad.grad(_mlp_loss(FG)), in_axes=(None, 0, 0)))(
        params, xs, ys)
    typecheck_jaxpr(jaxpr)
    weights = {id(v) for v in jaxpr.jaxpr.invars[:4:2]}  # w of each layer
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "broadcast_in_dim":
            assert id(eqn.invars[0]) not in weights, f"a weight matrix was broadcast: {eqn}"


# --- custom derivatives under vmap ------------------------------------------------------------

@pytest.mark.parametrize("order", ["grad(vmap)", "vmap(grad)", "vmap(grad) axis 1",
                                   "grad(vmap(jit))", "jit(vmap(grad))", "vmap(vmap(grad))"])
@pytest.mark.parametrize("kind", ["custom_jvp", "custom_vjp"])
def test_custom_rules_are_used_under_vmap(x64: None, kind: str, order: str) -> None:
    def make(L: Lib) -> Callable[[Any], Any]:
        f = BASES[kind](L)
        scalar = lambda x: L.np.sum(f(x))
        T = L.T
        if order == "grad(vmap)":
            return T.grad(lambda xs: L.np.sum(T.vmap(scalar)(xs)))
        if order == "grad(vmap(jit))":
            return T.grad(lambda xs: L.np.sum(T.vmap(T.jit(scalar))(xs)))
        if order == "jit(vmap(grad))":
            return T.jit(T.vmap(T.grad(scalar)))
        if order == "vmap(vmap(grad))":
            return T.vmap(T.vmap(T.grad(scalar), in_axes=1), in_axes=0)
        return T.vmap(T.grad(scalar), in_axes=1 if "axis 1" in order else 0)

    x = rand(2, 3, 3, seed=3) if "vmap(vmap" in order else rand(4, 3, seed=3)
    if "axis 1" in order:
        x = rand(3, 4, seed=3)
    got = make(FG)(x)
    assert_tree_close(got, oracle(make(JX), x))
    # ... and that the custom rule made a difference: the true derivative differs
    true_fun = (lambda x: fnp.sum(fnp.sin(x) * x * fnp.sum(x))) if kind == "custom_jvp" else (
        lambda x: fnp.sum(fnp.tanh(W1 @ x) * 1.5))
    true_grad = fgrad.vmap(fgrad.grad(true_fun))(rand(4, 3, seed=3))
    if order in ("grad(vmap)", "vmap(grad)", "grad(vmap(jit))", "jit(vmap(grad))"):
        assert not np.allclose(np.asarray(got), np.asarray(true_grad))


def test_custom_jvp_vmap_primal_jvp_and_nested(x64: None) -> None:
    xs = rand(2, 4, 3, seed=4)
    f, jf = _custom_jvp(FG), _custom_jvp(JX)
    assert_tree_close(fgrad.vmap(fgrad.vmap(f), in_axes=2, out_axes=1)(xs),
                      oracle(jax.vmap(jax.vmap(jf), in_axes=2, out_axes=1), xs))
    t = rand(2, 4, 3, seed=5)
    assert_tree_close(fgrad.jvp(fgrad.vmap(fgrad.vmap(f)), (xs,), (t,)),
                      oracle(lambda x, t: jax.jvp(jax.vmap(jax.vmap(jf)), (x,), (t,)), xs, t))
    jaxpr = fgrad.make_jaxpr(fgrad.grad(lambda x: fnp.sum(fgrad.vmap(f)(x))))(xs[0])
    typecheck_jaxpr(jaxpr)


def test_custom_vjp_with_unbatched_and_batched_arguments(x64: None) -> None:
    # bwd's cotangent for an unbatched argument is summed over the batch
    def make(L: Lib, in_axes: Any) -> Callable[..., Any]:
        @L.T.custom_vjp
        def f(x: Any, w: Any) -> Any:
            return L.np.sin(x) * w

        f.defvjp(lambda x, w: (f(x, w), (x, w)),
                 lambda res, ct: (5.0 * ct * res[1], 7.0 * ct * res[0]))
        loss = lambda x, w: L.np.sum(L.T.vmap(f, in_axes=in_axes)(x, w) ** 2)
        return L.T.grad(loss, argnums=(0, 1))

    cases = {(0, None): (rand(3, 4), rand(4)), (None, 0): (rand(4), rand(3, 4)),
             (1, 0): (rand(4, 3), rand(3, 4)), (0, 0): (rand(3, 4), rand(3, 4))}
    for in_axes, args in cases.items():
        assert_tree_close(make(FG, in_axes)(*args), oracle(make(JX, in_axes), *args))


def test_custom_function_closing_over_a_batched_value(x64: None) -> None:
    def g(x: Any, y: Any) -> Any:
        @fgrad.custom_jvp
        def f(a: Any) -> Any:
            return a * y

        f.defjvp(lambda p, t: (f(p[0]), t[0] * y))
        return f(x)

    xs, ys = rand(3, 2), rand(3, 2, seed=1)
    np.testing.assert_allclose(np.asarray(fgrad.vmap(g)(xs, ys)), xs * ys)  # primal: fine
    with pytest.raises(NotImplementedError, match="closes over a value batched by an enclosing"):
        fgrad.grad(lambda xs: fnp.sum(fgrad.vmap(g)(xs, ys)))(xs)
    # the other order sees ordinary batched values
    got = fgrad.vmap(fgrad.grad(lambda x, y: fnp.sum(g(x, y))))(xs, ys)
    np.testing.assert_allclose(np.asarray(got), ys)


def test_checkpoint_stays_a_checkpoint_under_vmap(x64: None) -> None:
    f, jf = _checkpointed(FG), _checkpointed(JX)
    xs = rand(4, 3)
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(f))(xs)
    (eqn, *_) = [e for e in jaxpr.eqns if e.primitive.name == "checkpoint"]
    assert eqn.params["jaxpr"].in_avals[0].shape == (4, 3)
    for order in ("grad(vmap)", "vmap(grad)"):
        def make(L: Lib, fun: Any) -> Any:
            s = lambda x: L.np.sum(fun(x))
            if order == "grad(vmap)":
                return L.T.grad(lambda xs: L.np.sum(L.T.vmap(s)(xs)))
            return L.T.vmap(L.T.grad(s))
        assert_tree_close(make(FG, f)(xs), oracle(make(JX, jf), xs))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(lambda xs: fnp.sum(fgrad.vmap(f)(xs))))(xs))


def test_custom_lin_batch_rule(x64: None) -> None:
    # custom_lin (custom_vjp's linear part) appears in linearized jaxprs; batching such a
    # jaxpr batches bwd: its transpose must equal the per-example transposes.
    from fgrad.transforms.partial_eval import linearize_flat
    from fgrad.transforms.transpose import transpose_jaxpr
    from fgrad.transforms.vmap import batch_jaxpr
    f = _custom_vjp(FG)
    _, lin = linearize_flat(lambda x: [f(x)], [rand(3)])
    assert any(e.primitive.name == "custom_lin" for e in lin.eqns)
    batched, out_dims = batch_jaxpr(lin, [0], 5)
    typecheck_jaxpr(batched)
    assert out_dims == [0]
    t_batched = transpose_jaxpr(batched, [True])
    t_single = transpose_jaxpr(lin, [True])
    cts = rand(5, 4, seed=2)
    got = fgrad.core.jaxpr.eval_closed_jaxpr(t_batched, cts)[0]
    for i in range(5):
        want = fgrad.core.jaxpr.eval_closed_jaxpr(t_single, cts[i])[0]
        np.testing.assert_allclose(np.asarray(got)[i], np.asarray(want), rtol=1e-12)


def test_stop_gradient_under_vmap(x64: None) -> None:
    fg = lambda x: fnp.sum(fgrad.stop_gradient(x) * x)
    jg = lambda x: jnp.sum(jax.lax.stop_gradient(x) * x)
    xs = rand(4, 3)
    assert_tree_close(fgrad.vmap(fgrad.grad(fg))(xs), oracle(jax.vmap(jax.grad(jg)), xs))
    assert_tree_close(fgrad.grad(lambda x: fnp.sum(fgrad.vmap(fg)(x)))(xs),
                      oracle(jax.grad(lambda x: jnp.sum(jax.vmap(jg)(x))), xs))
