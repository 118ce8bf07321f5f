"""Tests for ``fgrad.nn.losses`` against optax's formulas written with ``jax.nn``.

Values and gradients on ordinary logits (float32 and float64), at extreme
logits (``±1e4``: finite losses, exact gradients ``softmax - labels`` and
``sigmoid - labels``, finite second derivatives), integer vs one-hot vs soft
labels, label smoothing, batch shapes, ``jit``, jaxpr typechecks and errors.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.nn import losses as L


@pytest.fixture(autouse=True, scope="module")
def fast_oracle_compiles() -> Iterator[None]:
    """JAX runs op by op here, so XLA compile time dominates; its optimization passes buy
    nothing for such tiny programs, and skipping them halves this file's run time."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


def close(got: Any, want: Any, rtol: float = 1e-6, atol: float = 1e-6) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                 want.shape, want.dtype)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# --- optax's formulas, in JAX --------------------------------------------------------------------

def jax_ce(logits: Any, labels: Any, smoothing: float = 0.0) -> Any:
    if jnp.issubdtype(labels.dtype, jnp.integer):
        labels = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
    if smoothing:
        labels = (1 - smoothing) * labels + smoothing / logits.shape[-1]
    return -jnp.sum(labels * jax.nn.log_softmax(logits, axis=-1), axis=-1)


def jax_ce_integer(logits: Any, labels: Any) -> Any:
    """optax.softmax_cross_entropy_with_integer_labels: logsumexp minus the label's logit."""
    label_logits = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
    return jax.nn.logsumexp(logits, axis=-1) - label_logits


def jax_bce(logits: Any, labels: Any) -> Any:
    return -labels * jax.nn.log_sigmoid(logits) - (1 - labels) * jax.nn.log_sigmoid(-logits)


def both(fun: Callable, jfun: Callable, *args: Any, rtol: float = 1e-6,
         atol: float = 1e-6) -> None:
    """Values and the gradient wrt the first argument equal JAX's; jit equals eager."""
    fargs = [fnp.asarray(a) for a in args]
    jargs = [jnp.asarray(a) for a in args]
    close(fun(*fargs), jfun(*jargs), rtol, atol)
    close(fgrad.jit(fun)(*fargs), fun(*fargs), 1e-6, 1e-6)

    def weighted(f: Callable, np_: Any) -> Callable:
        def scalar(x: Any, *rest: Any) -> Any:
            out = f(x, *rest)
            return np_.sum(out * np_.cos(np_.arange(out.size, dtype=out.dtype).reshape(
                out.shape)))
        return scalar

    close(fgrad.grad(weighted(fun, fnp))(*fargs), jax.grad(weighted(jfun, jnp))(*jargs),
          rtol, atol)


def rand(*shape: int, seed: int = 0, scale: float = 1.0, dtype: Any = np.float32) -> Any:
    return (scale * np.random.RandomState(seed).randn(*shape)).astype(dtype)


def soft_labels(*shape: int, seed: int = 1) -> np.ndarray:
    p = np.random.RandomState(seed).rand(*shape).astype(np.float32)
    return p / p.sum(-1, keepdims=True)


# --- softmax cross-entropy -----------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 7), (3, 1)])
def test_softmax_cross_entropy_integer_labels(shape: tuple) -> None:
    logits = rand(*shape, scale=3.0)
    labels = np.random.RandomState(2).randint(0, shape[-1], shape[:-1]).astype(np.int32)
    both(L.softmax_cross_entropy, jax_ce, logits, labels, rtol=2e-6)
    both(L.softmax_cross_entropy, jax_ce_integer, logits, labels, rtol=2e-6)
    both(L.softmax_cross_entropy_with_integer_labels, jax_ce_integer, logits, labels, rtol=2e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.5])
def test_softmax_cross_entropy_probability_labels(smoothing: float) -> None:
    logits = rand(6, 4, scale=2.0)
    one_hot = np.eye(4, dtype=np.float32)[np.arange(6) % 4]
    for labels in (one_hot, soft_labels(6, 4)):
        both(lambda x, y: L.softmax_cross_entropy(x, y, smoothing),
             lambda x, y: jax_ce(x, y, smoothing), logits, labels, rtol=2e-6)
    ints = (np.arange(6) % 4).astype(np.int32)
    both(lambda x, y: L.softmax_cross_entropy(x, y, smoothing),
         lambda x, y: jax_ce(x, y, smoothing), logits, ints, rtol=2e-6)
    # integer labels and their one-hot vectors are the same loss
    close(L.softmax_cross_entropy(logits, ints, smoothing),
          L.softmax_cross_entropy(logits, one_hot, smoothing))


def test_softmax_cross_entropy_float64(x64: None) -> None:
    logits = rand(5, 6, scale=4.0, dtype=np.float64)
    labels = np.arange(5) % 6
    both(L.softmax_cross_entropy, jax_ce, logits, labels, rtol=1e-13, atol=1e-13)
    both(L.softmax_cross_entropy, jax_ce, logits, soft_labels(5, 6).astype(np.float64),
         rtol=1e-13, atol=1e-13)
    x = fnp.asarray(logits)
    hess = fgrad.hessian(lambda v: fnp.sum(L.softmax_cross_entropy(v, fnp.asarray(labels))))(x)
    jhess = jax.hessian(lambda v: jnp.sum(jax_ce(v, jnp.asarray(labels))))(jnp.asarray(logits))
    close(hess, jhess, 1e-12, 1e-12)


def test_softmax_cross_entropy_extreme_logits() -> None:
    logits = np.array([[1e4, 0.0, -1e4], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4],
                       [-1e4, -1e4, -1e4]], np.float32)
    labels = np.array([1, 2, 0, 2], np.int32)
    both(L.softmax_cross_entropy, jax_ce, logits, labels)
    loss = np.asarray(L.softmax_cross_entropy(logits, labels))
    np.testing.assert_allclose(loss, [1e4, 0.0, np.log(2), np.log(3)], rtol=1e-6)
    # the gradient is exactly softmax(logits) - one_hot(labels)
    g = fgrad.grad(lambda x: fnp.sum(L.softmax_cross_entropy(x, fnp.asarray(labels))))(
        fnp.asarray(logits))
    want = np.array(jax.nn.softmax(logits)) - np.eye(3)[labels]
    np.testing.assert_allclose(np.asarray(g), want, atol=1e-7)
    # soft labels and smoothing at the extremes, and a second derivative that stays finite
    both(lambda x, y: L.softmax_cross_entropy(x, y, 0.2), lambda x, y: jax_ce(x, y, 0.2),
         logits, soft_labels(4, 3))
    hess = fgrad.hessian(lambda x: fnp.sum(L.softmax_cross_entropy(x, fnp.asarray(labels))))(
        fnp.asarray(logits))
    assert np.isfinite(np.asarray(hess)).all()


def test_softmax_cross_entropy_errors() -> None:
    logits = fnp.zeros((4, 3))
    with pytest.raises(ValueError, match=r"integer labels are class indices and must have "
                                         r"shape logits.shape\[:-1\] = \(4,\), got \(4, 3\)"):
        L.softmax_cross_entropy(logits, fnp.zeros((4, 3), np.int32))
    with pytest.raises(ValueError, match=r"float labels are probabilities and must have the "
                                         r"logits' shape \(4, 3\), got \(4,\)"):
        L.softmax_cross_entropy(logits, fnp.zeros((4,)))
    with pytest.raises(TypeError, match="labels must be integers, got f32"):
        L.softmax_cross_entropy_with_integer_labels(logits, fnp.zeros((4,)))


def test_out_of_range_integer_labels_give_zero_loss() -> None:
    loss = L.softmax_cross_entropy(fnp.asarray(rand(2, 3)), fnp.asarray([3, -1]))
    np.testing.assert_array_equal(np.asarray(loss), 0)


# --- binary cross-entropy ------------------------------------------------------------------------

def test_binary_cross_entropy_values_and_grads() -> None:
    logits = rand(3, 5, scale=3.0)
    labels = np.random.RandomState(4).rand(3, 5).astype(np.float32)
    both(L.binary_cross_entropy_with_logits, jax_bce, logits, labels)
    assert L.sigmoid_binary_cross_entropy is L.binary_cross_entropy_with_logits
    # int and bool labels are converted; labels broadcast against logits
    hard = (labels > 0.5)
    close(L.binary_cross_entropy_with_logits(logits, hard),
          jax_bce(jnp.asarray(logits), jnp.asarray(hard, jnp.float32)))
    close(L.binary_cross_entropy_with_logits(logits, 1), jax_bce(jnp.asarray(logits), 1.0))


def test_binary_cross_entropy_extreme_logits() -> None:
    logits = np.array([1e4, -1e4, 1e4, -1e4, 1e4, -1e4, 0.0], np.float32)
    labels = np.array([1.0, 0.0, 0.0, 1.0, 0.3, 0.3, 1.0], np.float32)
    both(L.binary_cross_entropy_with_logits, jax_bce, logits, labels)
    loss = np.asarray(L.binary_cross_entropy_with_logits(logits, labels))
    np.testing.assert_allclose(loss, [0, 0, 1e4, 1e4, 7e3, 3e3, np.log(2)], rtol=1e-6)
    g = fgrad.grad(lambda x: fnp.sum(L.binary_cross_entropy_with_logits(
        x, fnp.asarray(labels))))(fnp.asarray(logits))
    np.testing.assert_allclose(np.asarray(g), np.asarray(jax.nn.sigmoid(logits)) - labels,
                               atol=1e-7)
    first = fgrad.grad(lambda x: fnp.sum(L.binary_cross_entropy_with_logits(
        x, fnp.asarray(labels))))
    second = fgrad.grad(lambda x: fnp.sum(first(x)))(fnp.asarray(logits))  # sigmoid'(x)
    np.testing.assert_allclose(np.asarray(second), [0, 0, 0, 0, 0, 0, 0.25], atol=1e-7)


def test_binary_cross_entropy_float64(x64: None) -> None:
    logits = rand(4, 3, scale=5.0, dtype=np.float64)
    labels = np.random.RandomState(3).rand(4, 3)
    both(L.binary_cross_entropy_with_logits, jax_bce, logits, labels, rtol=1e-13, atol=1e-13)


# --- regression losses ---------------------------------------------------------------------------

def test_regression_losses() -> None:
    predictions, targets = rand(3, 4, seed=1), rand(3, 4, seed=2)
    both(L.squared_error, lambda p, t: (p - t) ** 2, predictions, targets)
    both(L.l2_loss, lambda p, t: 0.5 * (p - t) ** 2, predictions, targets)
    both(lambda p, t: L.mse(p, t)[None], lambda p, t: jnp.mean((p - t) ** 2)[None],
         predictions, targets)
    assert L.mean_squared_error is L.mse
    close(L.l2_loss(fnp.asarray(predictions)), 0.5 * predictions ** 2)
    assert L.mse(predictions, targets).shape == ()


# --- accuracy ------------------------------------------------------------------------------------

def test_accuracy() -> None:
    scores = np.array([[0.1, 2.0, 0.3], [3.0, 0.0, 1.0], [0.0, 0.5, 4.0], [1.0, 2.0, 0.0]],
                      np.float32)
    labels = np.array([1, 1, 2, 0])
    acc = L.accuracy(scores, labels)
    assert np.asarray(acc).dtype == np.float32 and acc.shape == ()
    assert float(acc) == 0.5
    assert float(L.accuracy(scores, np.eye(3, dtype=np.float32)[labels])) == 0.5
    assert float(fgrad.jit(L.accuracy)(fnp.asarray(scores), fnp.asarray(labels))) == 0.5
    # batch dimensions, probabilities as scores
    probs = np.asarray(jax.nn.softmax(rand(2, 5, 4, scale=3.0)))
    labels2 = np.random.RandomState(0).randint(0, 4, (2, 5))
    want = (probs.argmax(-1) == labels2).mean()
    assert float(L.accuracy(probs, labels2)) == pytest.approx(want)
    with pytest.raises(ValueError, match="accuracy: integer labels are class indices"):
        L.accuracy(scores, labels[:2])


def test_losses_typecheck_under_grad() -> None:
    logits, labels = fnp.asarray(rand(4, 3)), fnp.asarray([0, 1, 2, 1])

    def loss(x: Any) -> Any:
        return (fnp.mean(L.softmax_cross_entropy(x, labels, 0.1))
                + fnp.mean(L.binary_cross_entropy_with_logits(x, 0.5)) + L.mse(x, 1.0))

    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(loss))(logits))
