"""The layers fgrad adds to stax: Conv1D, normalization, BatchNormRunning and the
stateful protocol, Embedding, Residual, LSTM/GRU, multi-head self-attention,
``intermediates``; and tiny MLP/CNN/GRU models that must learn under
``fgrad.jit(fgrad.grad(...))``.

References: numpy formulas (float64) for values; for gradients, the same
formulas written with ``jax.numpy`` (a Python loop of the cell for the
recurrent layers) and differentiated by ``jax.grad``, on the same params.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.example_libraries import stax as js

import fgrad
import fgrad.numpy as fnp
import fgrad.random
from fgrad import nn_stax as fs
from fgrad.nn import losses


@pytest.fixture(autouse=True, scope="module")
def fast_oracle_compiles() -> Iterator[None]:
    """JAX runs op by op here, so XLA compile time dominates; its optimization passes buy
    nothing for such tiny programs, and skipping them halves this file's run time."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


def key(seed: int = 0) -> Any:
    return fgrad.random.PRNGKey(seed)


def rand(*shape: int, seed: int = 0, scale: float = 1.0) -> np.ndarray:
    return (scale * np.random.RandomState(seed).randn(*shape)).astype(np.float32)


def np64(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), tree)


def to_jax(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), tree)


def close(got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves)
    for g, w in zip(got_leaves, want_leaves):
        assert np.shape(g) == np.shape(w), (np.shape(g), np.shape(w))
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                   rtol=rtol, atol=atol)


def weighted_sum(out: Any, np_: Any) -> Any:
    weights = np.cos(np.arange(out.size, dtype=np.float32)).reshape(out.shape)
    return np_.sum(out * np_.asarray(weights))


def grads_match(apply: Callable, jax_apply: Callable, params: Any, x: np.ndarray,
                rtol: float = 2e-4, atol: float = 2e-5) -> None:
    """grad of a weighted sum of the outputs, wrt params and inputs, fgrad vs JAX."""
    got = fgrad.grad(lambda p, v: weighted_sum(apply(p, v), fnp), (0, 1))(params,
                                                                           fnp.asarray(x))
    want = jax.grad(lambda p, v: weighted_sum(jax_apply(p, v), jnp), (0, 1))(to_jax(params),
                                                                             jnp.asarray(x))
    close(got, want, rtol, atol)


# --- Conv1D ---------------------------------------------------------------------------------------

def test_conv1d_matches_jax_general_conv() -> None:
    shape = (2, 9, 3)
    init, apply = fs.Conv1D(4, (3,), (2,), "SAME")
    j_init, j_apply = js.GeneralConv(("NWC", "WIO", "NWC"), 4, (3,), (2,), "SAME")
    out_shape, params = init(key(), shape)
    j_shape, j_params = j_init(jax.random.PRNGKey(0), shape)
    assert out_shape == j_shape == (2, 5, 4)
    close(params, j_params, atol=1e-6)
    x = rand(*shape)
    close(apply(params, fnp.asarray(x)), j_apply(to_jax(params), jnp.asarray(x)))
    grads_match(apply, j_apply, params, x)


# --- normalization --------------------------------------------------------------------------------

def np_normalize(x: np.ndarray, axes: tuple[int, ...], eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axes, keepdims=True)
    return (x - mean) / np.sqrt(((x - mean) ** 2).mean(axes, keepdims=True) + eps)


def jnp_normalize(x: Any, axes: tuple[int, ...], eps: float = 1e-5) -> Any:
    mean = x.mean(axes, keepdims=True)
    return (x - mean) / jnp.sqrt(((x - mean) ** 2).mean(axes, keepdims=True) + eps)


def random_affine(params: Any) -> Any:
    """Replace beta/gamma (zeros and ones at init) by random values, keeping ``()`` slots."""
    return tuple(() if isinstance(p, tuple) else fnp.asarray(rand(*p.shape, seed=i + 5))
                 for i, p in enumerate(params))


@pytest.mark.parametrize("axis,center,scale", [(-1, True, True), ((1, 2), True, True),
                                               (-1, False, True), (1, True, False)])
def test_layer_norm(axis: Any, center: bool, scale: bool) -> None:
    shape = (3, 4, 5)
    init, apply = fs.LayerNorm(axis, center=center, scale=scale)
    out_shape, params = init(key(), shape)
    axes = tuple(a % 3 for a in ((axis,) if isinstance(axis, int) else axis))
    param_shape = tuple(shape[a] for a in axes)
    assert out_shape == shape
    assert [() if isinstance(p, tuple) else np.shape(p) for p in params] == [
        param_shape if center else (), param_shape if scale else ()]
    params = random_affine(params)
    bshape = [d if i in axes else 1 for i, d in enumerate(shape)]
    x = rand(*shape, scale=3.0) + 5.0

    def reference(p: Any, v: Any, np_: Any, normalize: Callable) -> Any:
        z = normalize(v, axes)
        if scale:
            z = z * np_.reshape(p[1], bshape)
        if center:
            z = z + np_.reshape(p[0], bshape)
        return z

    close(apply(params, fnp.asarray(x)), reference(np64(params), np.float64(x), np,
                                                   np_normalize))
    grads_match(apply, lambda p, v: reference(p, v, jnp, jnp_normalize), params, x)
    close(fgrad.jit(apply)(params, fnp.asarray(x)), apply(params, fnp.asarray(x)), 1e-6, 1e-6)


@pytest.mark.parametrize("groups,shape", [(2, (2, 3, 4, 6)), (1, (3, 8)), (4, (2, 5, 4))])
def test_group_norm(groups: int, shape: tuple) -> None:
    init, apply = fs.GroupNorm(groups)
    out_shape, params = init(key(), shape)
    assert out_shape == shape and params[0].shape == params[1].shape == (shape[-1],)
    params = random_affine(params)
    x = rand(*shape, scale=2.0) - 3.0
    C = shape[-1]

    def reference(p: Any, v: Any, np_: Any, normalize: Callable) -> Any:
        grouped = np_.reshape(v, (*shape[:-1], groups, C // groups))
        z = np_.reshape(normalize(grouped, (*range(1, len(shape) - 1), len(shape))), shape)
        return z * p[1] + p[0]

    close(apply(params, fnp.asarray(x)), reference(np64(params), np.float64(x), np,
                                                   np_normalize))
    grads_match(apply, lambda p, v: reference(p, v, jnp, jnp_normalize), params, x)


def test_group_norm_special_cases_and_errors() -> None:
    x = fnp.asarray(rand(2, 3, 4, 6, scale=2.0))
    _, params = fs.GroupNorm(6)[0](key(), (2, 3, 4, 6))
    params = random_affine(params)
    close(fs.GroupNorm(6)[1](params, x), fs.InstanceNorm()[1](params, x), 1e-6, 1e-6)
    close(fs.InstanceNorm()[1](params, x),
          np_normalize(np.float64(x), (1, 2)) * np64(params[1]) + np64(params[0]))
    # GroupNorm(1) on (N, C) inputs is LayerNorm over the features
    y = fnp.asarray(rand(4, 6))
    close(fs.GroupNorm(1)[1](params, y), fs.LayerNorm()[1](params, y), 1e-6, 1e-6)
    with pytest.raises(ValueError, match=r"GroupNorm: the 6 channels of shape \(2, 3, 4, 6\) "
                                         "cannot be split into 4 groups"):
        fs.GroupNorm(4)[0](key(), (2, 3, 4, 6))
    with pytest.raises(ValueError, match="InstanceNorm: inputs must be channels-last"):
        fs.InstanceNorm()[0](key(), (2, 6))
    with pytest.raises(ValueError, match="LayerNorm: axis 3 is out of range"):
        fs.LayerNorm(3)[0](key(), (2, 6))


def test_batch_norm_running_train_eval_and_state() -> None:
    shape = (8, 3, 3, 2)
    init, apply = fs.BatchNormRunning(momentum=0.8)
    out_shape, params, state = init(key(), shape)
    assert out_shape == shape and [s.shape for s in state] == [(2,), (2,)]
    close(state, (np.zeros(2), np.ones(2)), 0, 0)
    params = random_affine(params)
    x = rand(*shape, scale=3.0) + 2.0
    y, new_state = apply(params, state, fnp.asarray(x), mode="train")
    # training output: the batch statistics, as stax's BatchNorm (up to its variance formula)
    close(y, js.BatchNorm()[1](to_jax(params), jnp.asarray(x)), 1e-4, 1e-4)
    batch_mean, batch_var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    close(new_state, (0.2 * batch_mean, 0.8 + 0.2 * batch_var))
    # evaluation: the running statistics, state unchanged
    y_eval, same_state = apply(params, new_state, fnp.asarray(x), mode="eval")
    assert same_state is new_state
    mean, var = np64(new_state)
    close(y_eval, (np.float64(x) - mean) / np.sqrt(var + 1e-5) * np64(params[1])
          + np64(params[0]))
    # the state carries no gradient
    g = fgrad.grad(lambda v: fnp.sum(apply(params, state, v)[1][1]))(fnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(g), 0)
    # gradient of the training output vs JAX's two-pass formula
    grads_match(lambda p, v: apply(p, state, v)[0],
                lambda p, v: jnp_normalize(v, (0, 1, 2)) * p[1] + p[0], params, x)


def test_serial_stateful_trains_and_evaluates() -> None:
    model = fs.serial_stateful(fs.Dense(6), fs.BatchNormRunning(axis=0), fs.Relu, fs.Dense(3))
    out_shape, params, state = model.init_fun(key(1), (-1, 4))
    assert out_shape == (-1, 3) and state[0] == () and len(state[1]) == 2
    x, labels = fnp.asarray(rand(16, 4)), fnp.asarray(np.arange(16) % 3)

    def loss(p: Any, s: Any) -> Any:
        logits, new_state = model.apply_fun(p, s, x, mode="train")
        return fnp.mean(losses.softmax_cross_entropy(logits, labels)), new_state

    step = fgrad.jit(fgrad.value_and_grad(loss, has_aux=True))
    first = None
    for _ in range(30):
        (value, state), grads = step(params, state)
        params = fgrad.tree_util.tree_map(lambda p, g: p - 0.3 * g, params, grads)
        first = value if first is None else first
    assert float(value) < 0.7 * float(first)
    assert not np.allclose(np.asarray(state[1][0]), 0)  # running mean moved
    eval_logits, _ = model.apply_fun(params, state, x, mode="eval")
    assert eval_logits.shape == (16, 3) and np.isfinite(np.asarray(eval_logits)).all()


# --- Embedding and Residual -----------------------------------------------------------------------

def test_embedding() -> None:
    init, apply = fs.Embedding(7, 3)
    out_shape, W = init(key(), (2, 4))
    assert out_shape == (2, 4, 3) and W.shape == (7, 3)
    close(W, jax.nn.initializers.normal(1.0)(jax.random.PRNGKey(0), (7, 3)), atol=1e-6)
    ids = np.array([[0, 6, 2, 2], [5, 5, 5, 1]])
    close(apply(W, fnp.asarray(ids)), np.asarray(W)[ids], 0, 0)
    g = fgrad.grad(lambda w: weighted_sum(apply(w, fnp.asarray(ids)), fnp))(W)
    jg = jax.grad(lambda w: weighted_sum(jnp.take(w, ids, axis=0), jnp))(to_jax(W))
    close(g, jg, 1e-6, 1e-6)


def test_residual() -> None:
    init, apply = fs.Residual(fs.Dense(5), fs.Tanh, fs.Dense(5))
    out_shape, params = init(key(), (-1, 5))
    assert out_shape == (-1, 5) and len(params) == 3
    x = rand(3, 5)
    inner = fs.serial(fs.Dense(5), fs.Tanh, fs.Dense(5))[1]
    close(apply(params, fnp.asarray(x)), x + np.asarray(inner(params, fnp.asarray(x))), 1e-6,
          1e-6)
    j_inner = js.serial(js.Dense(5), js.Tanh, js.Dense(5))[1]
    grads_match(apply, lambda p, v: v + j_inner(p, v), params, x)
    with pytest.raises(ValueError, match=r"Residual: the inner layers map shape \(-1, 5\) to "
                                         r"\(-1, 4\)"):
        fs.Residual(fs.Dense(4))[0](key(), (-1, 5))


# --- recurrent layers -----------------------------------------------------------------------------

def sigmoid(x: Any) -> Any:
    return 1 / (1 + np.exp(-x))


def lstm_loop(params: Any, x: Any, np_: Any, sig: Callable) -> Any:
    W, U, b = params
    H = U.shape[0]
    h = c = np_.zeros((x.shape[0], H))
    hs = []
    for t in range(x.shape[1]):
        z = x[:, t] @ W + h @ U + b
        i, f, g, o = z[:, :H], z[:, H:2 * H], z[:, 2 * H:3 * H], z[:, 3 * H:]
        c = sig(f) * c + sig(i) * np_.tanh(g)
        h = sig(o) * np_.tanh(c)
        hs.append(h)
    return np_.stack(hs, 1)


def gru_loop(params: Any, x: Any, np_: Any, sig: Callable) -> Any:
    W, U, b_in, b_h = params
    H = U.shape[0]
    h = np_.zeros((x.shape[0], H))
    hs = []
    for t in range(x.shape[1]):
        xp, hp = x[:, t] @ W + b_in, h @ U + b_h
        r = sig(xp[:, :H] + hp[:, :H])
        z = sig(xp[:, H:2 * H] + hp[:, H:2 * H])
        n = np_.tanh(xp[:, 2 * H:] + r * hp[:, 2 * H:])
        h = (1 - z) * n + z * h
        hs.append(h)
    return np_.stack(hs, 1)


@pytest.mark.parametrize("layer,loop,n_gates", [(fs.LSTM, lstm_loop, 4), (fs.GRU, gru_loop, 3)])
def test_recurrent_layers_match_a_python_loop(layer: Callable, loop: Callable,
                                              n_gates: int) -> None:
    B, T, F, H = 3, 5, 4, 6
    init, apply = layer(H)
    out_shape, params = init(key(2), (B, T, F))
    assert out_shape == (B, T, H)
    assert params[0].shape == (F, n_gates * H) and params[1].shape == (H, n_gates * H)
    U = np.asarray(params[1])  # orthogonal rows (H < n_gates * H)
    np.testing.assert_allclose(U @ U.T, np.eye(H), atol=1e-5)
    # nonzero biases, so every bias is exercised
    params = (*params[:2], *(fnp.asarray(rand(*p.shape, seed=i, scale=0.5))
                             for i, p in enumerate(params[2:])))
    x = rand(B, T, F)
    want = loop(np64(params), np.float64(x), np, sigmoid)
    close(apply(params, fnp.asarray(x)), want)
    close(fgrad.jit(apply)(params, fnp.asarray(x)), want)
    last_init, last_apply = layer(H, return_sequences=False)
    assert last_init(key(2), (B, T, F))[0] == (B, H)
    close(last_apply(params, fnp.asarray(x)), want[:, -1])
    grads_match(apply, lambda p, v: loop(p, v, jnp, jax.nn.sigmoid), params, x)
    with pytest.raises(ValueError, match=r"inputs must be \(batch, time, features\)"):
        init(key(), (T, F))


# --- attention ------------------------------------------------------------------------------------

def attention_reference(params: Any, x: Any, num_heads: int, causal: bool, mask: Any,
                        np_: Any, softmax: Callable) -> Any:
    (Wq, bq), (Wk, bk), (Wv, bv), (Wo, bo) = params
    B, T, _ = x.shape
    dh = Wq.shape[1] // num_heads
    split = lambda y: np_.reshape(y, (B, T, num_heads, dh)).transpose(0, 2, 1, 3)  # noqa: E731
    q, k, v = split(x @ Wq + bq), split(x @ Wk + bk), split(x @ Wv + bv)
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(dh)
    allowed = np.ones((T, T), bool)
    if causal:
        allowed = np.tril(allowed)
    if mask is not None:
        allowed = allowed & mask
    logits = np_.where(allowed, logits, -1e30)
    out = softmax(logits) @ v
    return out.transpose(0, 2, 1, 3).reshape(B, T, num_heads * dh) @ Wo + bo


def np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("causal,with_mask,head_dim,out_dim", [
    (False, False, None, None), (True, False, None, 7), (True, True, 3, None)])
def test_multi_head_self_attention(causal: bool, with_mask: bool, head_dim: Any,
                                   out_dim: Any) -> None:
    B, T, D, H = 2, 5, 8, 2
    init, apply = fs.MultiHeadSelfAttention(H, head_dim, out_dim, causal)
    out_shape, params = init(key(3), (B, T, D))
    dh, do = head_dim or D // H, out_dim or D
    assert out_shape == (B, T, do)
    assert [w.shape for w, _ in params] == [(D, H * dh)] * 3 + [(H * dh, do)]
    params = tuple((w, fnp.asarray(rand(*b.shape, seed=i))) for i, (w, b) in enumerate(params))
    x = rand(B, T, D)
    mask = np.random.RandomState(1).rand(B, 1, T, T) > 0.3 if with_mask else None
    if mask is not None:
        mask[..., 0] = True  # every query may attend somewhere
    kwargs = {} if mask is None else {"mask": fnp.asarray(mask)}
    want = attention_reference(np64(params), np.float64(x), H, causal, mask, np, np_softmax)
    close(apply(params, fnp.asarray(x), **kwargs), want)
    close(fgrad.jit(lambda p, v: apply(p, v, **kwargs))(params, fnp.asarray(x)), want)
    grads_match(lambda p, v: apply(p, v, **kwargs),
                lambda p, v: attention_reference(p, v, H, causal, mask, jnp, jax.nn.softmax),
                params, x)
    if causal:  # the first position sees only itself: changing later inputs cannot move it
        x2 = x.copy()
        x2[:, 1:] += 1.0
        first = np.asarray(apply(params, fnp.asarray(x2), **kwargs))[:, 0]
        close(first, want[:, 0])


def test_attention_errors() -> None:
    with pytest.raises(ValueError, match="d_model=7 is not divisible by num_heads=2"):
        fs.MultiHeadSelfAttention(2)[0](key(), (1, 3, 7))
    with pytest.raises(ValueError, match=r"inputs must be \(batch, time, d_model\)"):
        fs.MultiHeadSelfAttention(2)[0](key(), (3, 8))


# --- intermediates --------------------------------------------------------------------------------

def test_intermediates_returns_every_layer_output() -> None:
    layers = (fs.Dense(6), fs.Relu, fs.Dropout(0.5), fs.Dense(2))
    model = fs.serial(*layers)
    _, params = model[0](key(), (4, 3))
    x = fnp.asarray(rand(4, 3))
    outs = fs.intermediates(model)(params, x, rng=key(9))
    assert [o.shape for o in outs] == [(4, 6), (4, 6), (4, 6), (4, 2)]
    close(outs[-1], model[1](params, x, rng=key(9)), 0, 0)
    close(outs[0], layers[0][1](params[0], x), 0, 0)
    close(outs[1], np.maximum(np.asarray(outs[0]), 0), 0, 0)
    # the same layers given as a sequence; jit and eval mode
    outs_seq = fgrad.jit(lambda p, v: fs.intermediates(layers)(p, v, mode="eval"))(params, x)
    close(outs_seq[2], outs_seq[1], 0, 0)
    with pytest.raises(TypeError, match="intermediates: expected a layer built by serial"):
        fs.intermediates([fs.Relu, 3])


# --- tiny models learn ----------------------------------------------------------------------------

def sgd_train(model: Any, input_shape: tuple, x: Any, y: Any, lr: float, steps: int) -> tuple:
    init, apply = model
    _, params = init(key(7), input_shape)

    def loss(p: Any) -> Any:
        return fnp.mean(losses.softmax_cross_entropy(apply(p, x), y))

    step = fgrad.jit(fgrad.value_and_grad(loss))
    history = []
    for _ in range(steps):
        value, grads = step(params)
        params = fgrad.tree_util.tree_map(lambda p, g: p - lr * g, params, grads)
        history.append(float(value))
    return history, float(losses.accuracy(apply(params, x), y))


def blobs(n: int, dim: int, classes: int, seed: int = 0) -> tuple[Any, Any]:
    rs = np.random.RandomState(seed)
    centres = 2.0 * rs.randn(classes, dim)
    y = rs.randint(0, classes, n)
    return fnp.asarray((centres[y] + rs.randn(n, dim)).astype(np.float32)), fnp.asarray(y)


def test_tiny_mlp_learns() -> None:
    x, y = blobs(64, 5, 3)
    model = fs.serial(fs.Dense(16), fs.Relu, fs.Dense(3))
    history, acc = sgd_train(model, (-1, 5), x, y, lr=0.2, steps=40)
    assert history[-1] < 0.3 * history[0] and acc > 0.9


def test_tiny_cnn_learns() -> None:
    rs = np.random.RandomState(0)
    y = rs.randint(0, 2, 32)
    images = rs.randn(32, 6, 6, 1).astype(np.float32) * 0.3
    images[y == 1, 1:5, 2:4, 0] += 1.5  # class 1 has a vertical bar
    model = fs.serial(fs.Conv(4, (3, 3), padding="SAME"), fs.Relu, fs.MaxPool((2, 2), (2, 2)),
                      fs.Flatten, fs.Dense(2))
    history, acc = sgd_train(model, (-1, 6, 6, 1), fnp.asarray(images), fnp.asarray(y),
                             lr=0.1, steps=30)
    assert history[-1] < 0.5 * history[0] and acc > 0.9


def test_tiny_gru_learns() -> None:
    rs = np.random.RandomState(1)
    x = rs.randn(24, 6, 2).astype(np.float32)
    y = (x[:, :, 0].sum(1) > 0).astype(np.int32)  # the sign of a running sum
    model = fs.serial(fs.GRU(8, return_sequences=False), fs.Dense(2))
    history, _ = sgd_train(model, (-1, 6, 2), fnp.asarray(x), fnp.asarray(y), lr=0.5,
                           steps=25)
    assert history[-1] < 0.6 * history[0]


def test_per_example_gradients_with_vmap() -> None:
    init, apply = fs.serial(fs.Dense(8), fs.Dropout(0.5), fs.Relu, fs.Dense(3))
    _, params = init(key(), (-1, 4))
    x, y = fnp.asarray(rand(5, 4)), fnp.asarray([0, 1, 2, 0, 1])

    def loss(p: Any, xi: Any, yi: Any) -> Any:
        return losses.softmax_cross_entropy(apply(p, xi[None], mode="eval"), yi[None])[0]

    batched = fgrad.vmap(fgrad.grad(loss), in_axes=(None, 0, 0))(params, x, y)
    for i in range(5):
        close(jax.tree_util.tree_map(lambda g: g[i], batched), fgrad.grad(loss)(params, x[i],
                                                                              y[i]), 1e-6, 1e-6)
    # a whole sequence model under vmap equals the batched call
    init, apply = fs.serial(fs.LSTM(4), fs.MultiHeadSelfAttention(2, causal=True),
                            fs.LayerNorm(), fs.GRU(3, return_sequences=False))
    _, params = init(key(1), (-1, 6, 2))
    xs = fnp.asarray(rand(3, 6, 2))
    close(fgrad.vmap(lambda xi: apply(params, xi[None])[0])(xs), apply(params, xs))
