"""Focused tests for ``fgrad.nn`` and ``fgrad.scipy.special`` against ``jax.nn`` and
``jax.scipy.special``.

The op table (``tests/op_table/nn.py``) covers random inputs away from kinks.
Here: derivatives at the kinks (``relu`` at 0, ``relu6`` at 0 and 6, ...),
extreme logits (``1e4``, ``-1e4``, ``inf``, rows of ``-inf``) for
``softmax``/``log_softmax``/``logsumexp`` with their gradients and Hessians,
masks (``where``), ``logsumexp``'s weights and signs, ``one_hot`` edge cases,
the special functions at their special points, ``jit`` and jaxpr typechecks.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pytest

import fgrad
import fgrad.nn as nn
import fgrad.numpy as fnp
import fgrad.scipy.special as sp
from fgrad.core.jaxpr import typecheck_jaxpr
from jit_compare import assert_matches_eager


def weak(x: Any) -> bool:
    return bool(jax.typeof(x).weak_type) if isinstance(x, jax.Array) else bool(x.weak_type)


def assert_close(got: Any, want: Any, rtol: float = 1e-6, what: str = "") -> None:
    """Same structure, shapes, dtypes and weak types; values close with NaNs and infs in place."""
    got_leaves, want_leaves = fgrad.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves), what
    for g, w in zip(got_leaves, want_leaves):
        assert (g.shape, g.dtype, weak(g)) == (w.shape, w.dtype, weak(w)), (
            f"{what}: got {g.dtype}{list(g.shape)} weak={weak(g)}, "
            f"JAX {w.dtype}{list(w.shape)} weak={weak(w)}")
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=rtol, atol=rtol, equal_nan=True, err_msg=what)


def grads_match(f: Callable[..., Any], jf: Callable[..., Any], *args: Any,
                rtol: float = 1e-12, argnums: int | tuple[int, ...] = 0) -> None:
    with np.errstate(all="ignore"):
        got = fgrad.grad(f, argnums)(*args)
    assert_close(got, jax.grad(jf, argnums)(*args), rtol=rtol, what="grad")


def total(f: Callable[..., Any], np_: Any) -> Callable[..., Any]:
    """A scalar that weighs each output element differently (a generic cotangent)."""
    def scalar(*a: Any) -> Any:
        out = f(*a)
        return np_.sum(out * np_.arange(1.0, 1.0 + out.size).reshape(out.shape))
    return scalar


# --- kinks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,points", [
    ("relu", [0.0, -0.0, 1.0, -1.0]), ("relu6", [0.0, 6.0, 3.0, 7.0, -1.0]),
    ("hard_tanh", [1.0, -1.0, 0.5, 2.0]), ("hard_sigmoid", [-3.0, 3.0, 0.0]),
    ("hard_silu", [-3.0, 3.0, 0.5]), ("leaky_relu", [0.0, -2.0]), ("elu", [0.0, -1.0, 1e3]),
    ("selu", [0.0, -50.0]), ("celu", [0.0, -1.0]), ("soft_sign", [0.0, 1.5, -2.0]),
    ("softplus", [0.0, 50.0, -50.0, 1e4]), ("log_sigmoid", [0.0, -1e4, 1e4]),
    ("silu", [0.0, -1e4]), ("gelu", [0.0, -5.0]), ("sigmoid", [0.0, -100.0]),
    ("mish", [0.0, 30.0]), ("squareplus", [0.0])])
def test_activation_derivatives_at_kinks(name: str, points: list[float], x64: None) -> None:
    f, jf = getattr(nn, name), getattr(jax.nn, name)
    for p in points:
        assert_close(f(p), jf(p), rtol=1e-12, what=f"{name}({p})")
        grads_match(f, jf, p)
        grads_match(fgrad.grad(f), jax.grad(jf), p, rtol=1e-10)


def test_relu_custom_derivative_and_int_input() -> None:
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    np.testing.assert_array_equal(fgrad.grad(lambda x: fnp.sum(nn.relu(x)))(x), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(fgrad.grad(lambda x: fnp.sum(nn.relu6(x)))(np.array(
        [0.0, 6.0, 5.0], np.float32)), [0.0, 0.0, 1.0])
    assert_close(nn.relu(np.arange(-2, 3)), jax.nn.relu(np.arange(-2, 3)))
    assert_close(nn.relu(2), jax.nn.relu(2))  # a weak int stays a weak int
    assert_close(nn.sigmoid(np.arange(3)), jax.nn.sigmoid(np.arange(3).astype(np.float32)))


# --- softmax and friends at extreme logits --------------------------------------------------------

EXTREME = [
    np.array([[1e4, -1e4, 0.0], [1.0, 2.0, 3.0]]),
    np.array([[-np.inf, 1.0, 2.0], [-np.inf, -np.inf, 5.0]]),
    np.array([[-1e4, -1e4, -1e4], [88.0, 89.0, -88.0]]),
    np.array([[np.inf, 1.0, 0.0], [-np.inf, -np.inf, -np.inf]]),
    np.array([[0.0], [3.0]]),
]


@pytest.mark.parametrize("logits", EXTREME, ids=range(len(EXTREME)))
@pytest.mark.parametrize("name,axis", [("softmax", -1), ("softmax", (0, 1)), ("log_softmax", 0),
                                       ("log_softmax", None), ("logsumexp", -1)])
def test_extreme_logits(logits: np.ndarray, name: str, axis: Any, x64: None) -> None:
    f = lambda x: getattr(nn, name)(x, axis=axis)  # noqa: E731
    jf = lambda x: getattr(jax.nn, name)(x, axis=axis)  # noqa: E731
    for dtype in (np.float32, np.float64):
        x = logits.astype(dtype)
        with np.errstate(all="ignore"):
            got = f(x)
        assert_close(got, jf(x), rtol=1e-6 if dtype == np.float32 else 1e-12, what=name)
    with np.errstate(all="ignore"):
        grads_match(total(f, fnp), total(jf, jnp), logits)
    if np.isfinite(logits).all() and logits.shape == (2, 3):
        hess = fgrad.hessian(total(f, fnp))(logits)
        assert_close(hess, jax.hessian(total(jf, jnp))(logits), rtol=1e-10, what="hessian")


def test_softmax_jvp_is_the_custom_rule(x64: None) -> None:
    x = np.array([[0.5, -1.0, 2.0], [1e4, 0.0, -3.0]])
    t = np.array([[1.0, 2.0, -1.0], [0.5, 0.25, 4.0]])
    for axis in (-1, 0, None):
        got = fgrad.jvp(lambda x: nn.softmax(x, axis), (x,), (t,))
        want = jax.jvp(lambda x: jax.nn.softmax(x, axis), (x,), (t,))
        assert_close(got, want, rtol=1e-12, what=f"softmax jvp axis={axis}")
    closed = fgrad.make_jaxpr(lambda x: nn.softmax(x))(x)
    assert "custom_jvp_call" in str(closed)


def test_masked_softmax_and_log_softmax(x64: None) -> None:
    x = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 1e4, 2.0], [1.0, 1.0, 1.0, 1.0]])
    mask = np.array([[True, False, True, True], [True, True, False, True],
                     [False, False, False, False]])
    for name in ("softmax", "log_softmax"):
        f = lambda x, n=name: getattr(nn, n)(x, where=mask)  # noqa: E731
        jf = lambda x, n=name: getattr(jax.nn, n)(x, where=mask)  # noqa: E731
        with np.errstate(all="ignore"):
            assert_close(f(x), jf(x), rtol=1e-12, what=name)
        if name == "softmax":
            grads_match(total(f, fnp), total(jf, jnp), x)


def test_logsumexp_variants(x64: None) -> None:
    a = np.array([[0.5, -1.0, 3.0], [-np.inf, -np.inf, -np.inf], [1e4, 1e4, -2.0]])
    b = np.array([[1.0, -2.0, 0.5], [1.0, 1.0, 1.0], [0.0, 2.0, -1.0]])
    cases: list[tuple[Callable[..., Any], Callable[..., Any]]] = [
        (lambda a: sp.logsumexp(a), lambda a: jsp.logsumexp(a)),
        (lambda a: sp.logsumexp(a, axis=1, keepdims=True),
         lambda a: jsp.logsumexp(a, axis=1, keepdims=True)),
        (lambda a: sp.logsumexp(a, axis=0, b=b), lambda a: jsp.logsumexp(a, axis=0, b=b)),
        (lambda a: sp.logsumexp(a, axis=1, b=b, return_sign=True),
         lambda a: jsp.logsumexp(a, axis=1, b=b, return_sign=True)),
        (lambda a: sp.logsumexp(a, axis=1, b=np.abs(b)), lambda a: jsp.logsumexp(
            a, axis=1, b=np.abs(b))),
        (lambda a: sp.logsumexp(a, axis=-1, where=b > 0),
         lambda a: jsp.logsumexp(a, axis=-1, where=b > 0)),
        (lambda a: nn.logsumexp(a[:, :1], axis=(0, 1)), lambda a: jax.nn.logsumexp(
            a[:, :1], axis=(0, 1))),
    ]
    for f, jf in cases:
        with np.errstate(all="ignore"):
            assert_close(f(a), jf(a), rtol=1e-12)
            assert_close(f(a.astype(np.float32)), jf(a.astype(np.float32)), rtol=1e-6)
        if not isinstance(f(a), tuple):
            grads_match(lambda a: fnp.sum(fnp.nan_to_num(f(a))),
                        lambda a: jnp.sum(jnp.nan_to_num(jf(a))), a)
    assert_close(sp.logsumexp(np.array([1.0, 2.0]), b=np.array([1.0, -3.0])),
                 jsp.logsumexp(np.array([1.0, 2.0]), b=np.array([1.0, -3.0])))  # NaN
    assert_close(sp.logsumexp(3), jsp.logsumexp(3))
    assert_close(sp.logsumexp(np.arange(4)), jsp.logsumexp(np.arange(4)))


def test_logsumexp_max_is_stop_gradient() -> None:
    closed = fgrad.make_jaxpr(fgrad.grad(lambda x: sp.logsumexp(x)))(np.ones(3, np.float32))
    typecheck_jaxpr(closed.jaxpr)
    assert "stop_gradient" in str(fgrad.make_jaxpr(lambda x: sp.logsumexp(x))(np.ones(3)))


# --- other nn functions ------------------------------------------------------------------------

def test_one_hot() -> None:
    x = np.array([[0, 2], [5, -1]], np.int32)
    for kwargs in ({}, {"axis": 0}, {"axis": 1}, {"axis": -2}, {"dtype": np.int8},
                   {"dtype": bool, "axis": -1}):
        assert_close(nn.one_hot(x, 3, **kwargs), jax.nn.one_hot(x, 3, **kwargs), what=str(kwargs))
    assert_close(nn.one_hot(2, 4), jax.nn.one_hot(2, 4))
    assert_close(nn.one_hot(np.zeros(0, np.int32), 2), jax.nn.one_hot(np.zeros(0, np.int32), 2))
    assert_close(fgrad.jit(lambda x: nn.one_hot(x, 3))(x), jax.nn.one_hot(x, 3))
    with pytest.raises(TypeError):
        nn.one_hot(x, 2.5)
    with pytest.raises(ValueError, match="one_hot: axis 3 is out of bounds"):
        nn.one_hot(x, 3, axis=3)


def test_standardize_and_glu(x64: None) -> None:
    x = np.random.RandomState(0).randn(3, 4)
    for kwargs in ({}, {"axis": 0}, {"axis": None}, {"axis": (0, 1), "epsilon": 0.1},
                   {"mean": np.zeros((3, 1)), "variance": np.ones((3, 1))},
                   {"where": x > -0.5}):
        assert_close(nn.standardize(x, **kwargs), jax.nn.standardize(x, **kwargs),
                     rtol=1e-12, what=str(kwargs))
        grads_match(lambda x: fnp.sum(nn.standardize(x, **kwargs) ** 3),
                    lambda x: jnp.sum(jax.nn.standardize(x, **kwargs) ** 3), x, rtol=1e-10)
    assert_close(nn.standardize(np.ones((2, 3))), jax.nn.standardize(np.ones((2, 3))))
    assert_close(nn.glu(x), jax.nn.glu(x), rtol=1e-12)
    grads_match(lambda x: fnp.sum(nn.glu(x, axis=0)[0]), lambda x: jnp.sum(jax.nn.glu(
        x, axis=0)[0]), x[:2])
    with pytest.raises(ValueError, match="glu: the size of axis 0 must be even"):
        nn.glu(x, axis=0)


def test_nn_under_jit_and_typecheck() -> None:
    def loss(w: Any, x: Any, labels: Any) -> Any:
        h = nn.gelu(x @ w)
        logp = nn.log_softmax(h)
        return -fnp.mean(fnp.sum(logp * nn.one_hot(labels, 3), axis=-1)) + fnp.mean(
            nn.softmax(h) ** 2) + fnp.mean(nn.relu(h) + nn.silu(h))

    def jloss(w: Any, x: Any, labels: Any) -> Any:
        h = jax.nn.gelu(x @ w)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.sum(logp * jax.nn.one_hot(labels, 3), axis=-1)) + jnp.mean(
            jax.nn.softmax(h) ** 2) + jnp.mean(jax.nn.relu(h) + jax.nn.silu(h))

    rng = np.random.RandomState(1)
    w, x = rng.randn(4, 3).astype(np.float32), rng.randn(5, 4).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0], np.int32)
    assert_matches_eager(fgrad.jit(loss)(w, x, labels), loss(w, x, labels))
    assert_close(fgrad.jit(fgrad.grad(loss))(w, x, labels), jax.grad(jloss)(w, x, labels),
                 rtol=1e-5)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(loss))(w, x, labels).jaxpr)
    second_order = fgrad.hessian(lambda z: fnp.sum(nn.log_softmax(z) * fnp.arange(3.0)))
    typecheck_jaxpr(fgrad.make_jaxpr(second_order)(w[0]).jaxpr)


# --- scipy.special --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,points", [
    ("expit", [0.0, -1e4, 1e4, 3.5]), ("logit", [0.5, 0.1, 0.9999]), ("erf", [0.0, 3.0, -1e3]),
    ("erfc", [0.0, 5.0, -3.0]), ("erfinv", [0.0, 0.5, -0.99]), ("gammaln", [0.5, 1.0, 10.0]),
    ("entr", [0.0, 0.5, 2.0, -1.0]), ("ndtr", [0.0, -10.0, 10.0, 0.3, -0.7])])
def test_special_functions(name: str, points: list[float], x64: None) -> None:
    f, jf = getattr(sp, name), getattr(jsp, name)
    for p in points:
        with np.errstate(all="ignore"):
            assert_close(f(p), jf(p), rtol=1e-12, what=f"{name}({p})")
            grads_match(f, jf, p, rtol=1e-10)
    x = np.array(points, np.float32)
    assert_close(f(x), jf(x), rtol=2e-6, what=f"{name} float32")


def test_digamma_values_and_missing_derivative() -> None:
    x = np.array([0.5, 1.0, 3.5], np.float32)
    assert_close(sp.digamma(x), jsp.digamma(x), rtol=1e-6)
    with pytest.raises(NotImplementedError, match="polygamma"):
        fgrad.grad(sp.digamma)(1.0)


def test_xlogy_and_xlog1py_at_zero(x64: None) -> None:
    points = [(0.0, 0.0), (0.0, 2.0), (1.5, 0.0), (2.0, 3.0), (0.0, np.nan), (-1.0, 0.5)]
    for f, jf in ((sp.xlogy, jsp.xlogy), (sp.xlog1py, jsp.xlog1py)):
        for x, y in points:
            y = y - 1.0 if f is sp.xlog1py else y
            with np.errstate(all="ignore"):
                assert_close(f(x, y), jf(x, y), rtol=1e-12, what=f"{f.__name__}({x}, {y})")
                grads_match(f, jf, x, y, argnums=(0, 1))
    assert_close(sp.xlogy(np.arange(3), np.arange(3)), jsp.xlogy(np.arange(3), np.arange(3)))
    assert_close(sp.xlogy(np.ones((2, 1)), np.arange(1.0, 4.0)),
                 jsp.xlogy(np.ones((2, 1)), np.arange(1.0, 4.0)))


def test_ndtr_dtypes() -> None:
    with pytest.raises(TypeError, match="ndtr: x.dtype=float16 is not supported"):
        sp.ndtr(np.ones(2, np.float16))
    with pytest.raises(TypeError, match="not supported"):
        sp.ndtr(np.arange(3))
