"""``fgrad.nn_stax`` against ``jax.example_libraries.stax``, export by export.

For every layer: ``init_fun`` with the same key gives JAX's output shape and
JAX's parameters (``fgrad.random`` reproduces JAX's bits; normal draws agree
to a few ulps); ``apply_fun`` on the SAME parameters (converted to JAX
arrays) and inputs gives JAX's outputs; the gradient with respect to params
and inputs is JAX's; ``fgrad.jit(apply_fun)`` equals eager. Then the quirks:
Dropout's keep-probability ``rate`` and its mask, BatchNorm's batch
statistics, ``parallel``'s zip, ``-1`` batch dimensions, pooling ``spec``.
The JAX oracle runs eagerly (op by op), so the file stays fast.
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
from jit_compare import assert_matches_eager

KEY_SEED = 42


@pytest.fixture(autouse=True, scope="module")
def fast_oracle_compiles() -> Iterator[None]:
    """JAX runs op by op here, so XLA compile time dominates; its optimization passes buy
    nothing for such tiny programs, and skipping them halves this file's run time."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


def fkey() -> Any:
    return fgrad.random.PRNGKey(KEY_SEED)


def jkey() -> Any:
    return jax.random.PRNGKey(KEY_SEED)


def to_jax(tree: Any) -> Any:
    return jax.tree_util.tree_map(lambda a: jnp.asarray(np.asarray(a)), tree)


def assert_trees_close(got: Any, want: Any, rtol: float = 2e-5, atol: float = 2e-6,
                       what: str = "") -> None:
    got_leaves, want_leaves = jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves), what
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert g.shape == w.shape and g.dtype == w.dtype, (what, g.shape, g.dtype, w.shape,
                                                           w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=what)


def make_inputs(shape: Any, seed: int = 0, scale: float = 1.0) -> Any:
    """A numpy float32 array for a shape, or a list of arrays for a list of shapes."""
    if isinstance(shape, list):
        return [make_inputs(s, seed + i, scale) for i, s in enumerate(shape)]
    return (scale * np.random.RandomState(seed).randn(*shape)).astype(np.float32)


def init_both(build: Callable[[Any], Any], shape: Any) -> tuple[Any, Any, Any, Any]:
    """``(fgrad_layer, jax_layer, fgrad (shape, params), jax (shape, params))``."""
    f_layer, j_layer = build(fs), build(js)
    f_shape, f_params = f_layer[0](fkey(), shape)
    return f_layer, j_layer, (f_shape, f_params), j_layer[0](jkey(), shape)


def scalarize(out: Any, np_: Any) -> Any:
    """A scalar that weighs every output element differently."""
    total = 0.0
    for leaf in jax.tree_util.tree_leaves(out):
        weights = np.cos(np.arange(leaf.size, dtype=np.float32)).reshape(leaf.shape)
        total = total + np_.sum(leaf * np_.asarray(weights))
    return total


# Each case: (build(stax_module) -> layer, input shape, apply kwargs, input scale).
CASES: dict[str, tuple[Callable[[Any], Any], Any, dict, float]] = {
    "Dense": (lambda s: s.Dense(5), (4, 3), {}, 1.0),
    "Dense_3d_custom_init": (lambda s: s.Dense(2, s.randn(0.3), s.ones), (2, 3, 4), {}, 1.0),
    "Conv": (lambda s: s.Conv(4, (3, 3)), (2, 6, 6, 3), {}, 1.0),
    "Conv_strided_same": (lambda s: s.Conv(3, (2, 3), (2, 1), "SAME"), (2, 7, 6, 2), {}, 1.0),
    "GeneralConv_NCHW": (lambda s: s.GeneralConv(("NCHW", "OIHW", "NHWC"), 3, (2, 2),
                                                 padding=[(1, 0), (0, 1)]), (2, 2, 5, 4), {},
                         1.0),
    "ConvTranspose_same": (lambda s: s.ConvTranspose(3, (3, 3), (2, 2), "SAME"), (2, 4, 4, 2),
                           {}, 1.0),
    "ConvTranspose_valid": (lambda s: s.ConvTranspose(2, (2, 3)), (1, 3, 4, 3), {}, 1.0),
    "Conv1DTranspose": (lambda s: s.Conv1DTranspose(3, (3,), (2,), "SAME"), (2, 5, 2), {},
                        1.0),
    "GeneralConvTranspose_NCHW": (lambda s: s.GeneralConvTranspose(
        ("NCHW", "IOHW", "NCHW"), 2, (3, 2), (1, 2), "VALID"), (2, 3, 4, 4), {}, 1.0),
    "BatchNorm": (lambda s: s.BatchNorm(), (4, 3, 3, 2), {}, 2.0),
    "BatchNorm_NCHW_center_only": (lambda s: s.BatchNorm((0, 2, 3), scale=False),
                                   (4, 2, 3, 3), {}, 2.0),
    "BatchNorm_scalar_axis_scale_only": (lambda s: s.BatchNorm(0, 1e-3, center=False,
                                                               gamma_init=s.randn()),
                                         (6, 5), {}, 2.0),
    "BatchNorm_plain": (lambda s: s.BatchNorm((0, 1), center=False, scale=False),
                        (3, 4, 2), {}, 2.0),
    "elementwise_kwargs": (lambda s: s.elementwise(s.leaky_relu, negative_slope=0.2),
                           (3, 4), {}, 1.0),
    "MaxPool": (lambda s: s.MaxPool((2, 2)), (2, 6, 6, 3), {}, 1.0),
    "MaxPool_strided_same": (lambda s: s.MaxPool((3, 3), (2, 2), "SAME"), (2, 7, 6, 2), {},
                             1.0),
    "MaxPool_NCHW": (lambda s: s.MaxPool((2, 2), (2, 1), spec="NCHW"), (2, 3, 6, 5), {}, 1.0),
    "SumPool_1d_same": (lambda s: s.SumPool((3,), (2,), "SAME"), (2, 7, 3), {}, 1.0),
    "AvgPool": (lambda s: s.AvgPool((2, 2), (2, 2)), (2, 4, 6, 3), {}, 1.0),
    "AvgPool_same_counts_padding": (lambda s: s.AvgPool((3, 3), (2, 2), "SAME"),
                                    (2, 5, 6, 2), {}, 1.0),
    "AvgPool_CHWN_spec": (lambda s: s.AvgPool((2, 3), (1, 2), "SAME", spec="CHWN"),
                          (3, 5, 6, 2), {}, 1.0),
    "Flatten": (lambda s: s.Flatten, (2, 3, 4, 5), {}, 1.0),
    "Identity": (lambda s: s.Identity, (2, 3), {}, 1.0),
    "FanOut": (lambda s: s.FanOut(3), (2, 3), {}, 1.0),
    "FanInSum": (lambda s: s.FanInSum, [(2, 3), (2, 3), (2, 3)], {}, 1.0),
    "FanInConcat": (lambda s: s.FanInConcat(), [(2, 3), (2, 1)], {}, 1.0),
    "FanInConcat_axis0": (lambda s: s.FanInConcat(axis=0), [(2, 3), (4, 3)], {}, 1.0),
    "Dropout": (lambda s: s.Dropout(0.7), (6, 50), {"rng": True}, 1.0),
    "serial_mlp": (lambda s: s.serial(s.Dense(8), s.Relu, s.Dense(8), s.Tanh, s.Dense(3),
                                      s.LogSoftmax), (5, 4), {}, 1.0),
    "serial_with_dropout": (lambda s: s.serial(s.Dense(16), s.Dropout(0.5), s.Relu,
                                               s.Dense(4), s.Dropout(0.8)), (5, 4),
                            {"rng": True}, 1.0),
    "serial_cnn": (lambda s: s.serial(s.Conv(4, (3, 3), padding="SAME"), s.BatchNorm(),
                                      s.Relu, s.MaxPool((2, 2), (2, 2)), s.Flatten,
                                      s.Dense(3), s.Softmax), (2, 6, 6, 1), {}, 1.0),
    "parallel_branches": (lambda s: s.serial(
        s.FanOut(2), s.parallel(s.Dense(3), s.serial(s.Dense(3), s.Sigmoid)), s.FanInSum),
        (4, 5), {}, 1.0),
    "parallel_concat": (lambda s: s.serial(
        s.FanOut(3), s.parallel(s.Identity, s.Dense(2), s.Elu), s.FanInConcat()),
        (4, 5), {}, 1.0),
    "shape_dependent": (lambda s: s.shape_dependent(lambda shape: s.Dense(2 * shape[-1])),
                        (3, 4), {}, 1.0),
}
ELEMENTWISE = ["Tanh", "Relu", "Exp", "LogSoftmax", "Softmax", "Softplus", "Sigmoid", "Elu",
               "LeakyRelu", "Selu", "Gelu"]
for _name in ELEMENTWISE:
    CASES[_name] = ((lambda name: lambda s: getattr(s, name))(_name), (3, 4, 5), {}, 2.0)


def apply_kwargs(kwargs: dict, jax_side: bool) -> dict:
    if kwargs.get("rng"):
        return {**kwargs, "rng": jkey() if jax_side else fkey()}
    return kwargs


# --- exports --------------------------------------------------------------------------------------

def test_every_stax_export_exists() -> None:
    modules = {"functools", "math", "lax", "random", "jnp"}
    exports = {n for n in dir(js) if not n.startswith("_")} - modules
    missing = sorted(n for n in exports if not hasattr(fs, n))
    assert not missing, missing
    assert fs.glorot is fs.glorot_normal and fs.randn is fs.normal
    assert fs.logsoftmax is fs.log_softmax


@pytest.mark.parametrize("name", ["relu", "log_softmax", "softmax", "softplus", "sigmoid", "elu",
                                  "leaky_relu", "selu", "gelu", "standardize"])
def test_reexported_functions_match_jax(name: str) -> None:
    x = make_inputs((3, 4), scale=3.0)
    assert_trees_close(getattr(fs, name)(fnp.asarray(x)), getattr(js, name)(jnp.asarray(x)),
                       what=name)


def test_reexported_initializers_match_jax() -> None:
    for name in ["glorot_normal", "normal"]:
        assert_trees_close(getattr(fs, name)()(fkey(), (4, 3)),
                           getattr(js, name)()(jkey(), (4, 3)), what=name)
    for name in ["ones", "zeros"]:
        assert_trees_close(getattr(fs, name)(fkey(), (2,)), getattr(js, name)(jkey(), (2,)))


# --- init and apply ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(CASES))
def test_init_and_apply_match_jax(name: str) -> None:
    build, shape, kwargs, scale = CASES[name]
    f_layer, j_layer, (f_shape, f_params), (j_shape, j_params) = init_both(build, shape)
    assert f_shape == j_shape and type(f_shape) is type(j_shape), (f_shape, j_shape)
    assert (jax.tree_util.tree_structure(to_jax(f_params))
            == jax.tree_util.tree_structure(j_params))
    assert_trees_close(f_params, j_params, what="params")
    x = make_inputs(shape, scale=scale)
    f_out = f_layer[1](f_params, fgrad.tree_util.tree_map(fnp.asarray, x),
                       **apply_kwargs(kwargs, False))
    j_kwargs = apply_kwargs(kwargs, True)
    j_out = jax.jit(lambda p, v: j_layer[1](p, v, **j_kwargs))(to_jax(f_params), to_jax(x))
    assert_trees_close(f_out, j_out, what="apply")
    # init's shape is the shape apply produces (stax_test.py's check)
    out_shapes = [np.shape(o) for o in jax.tree_util.tree_leaves(f_out)]
    want_shapes = f_shape if isinstance(f_shape, list) else [f_shape]
    assert out_shapes == [tuple(s) for s in want_shapes]


@pytest.mark.parametrize("name", sorted(CASES))
def test_grad_matches_jax(name: str) -> None:
    build, shape, kwargs, scale = CASES[name]
    f_layer, j_layer = build(fs), build(js)
    _, f_params = f_layer[0](fkey(), shape)
    x = make_inputs(shape, seed=1, scale=scale)
    f_kwargs, j_kwargs = apply_kwargs(kwargs, False), apply_kwargs(kwargs, True)

    def f_loss(params: Any, inputs: Any) -> Any:
        return scalarize(f_layer[1](params, inputs, **f_kwargs), fnp)

    def j_loss(params: Any, inputs: Any) -> Any:
        return scalarize(j_layer[1](params, inputs, **j_kwargs), jnp)

    f_inputs = fgrad.tree_util.tree_map(fnp.asarray, x)
    got = fgrad.grad(f_loss, argnums=(0, 1))(f_params, f_inputs)
    want = jax.jit(jax.grad(j_loss, argnums=(0, 1)))(to_jax(f_params), to_jax(x))
    assert_trees_close(got, want, rtol=2e-4, atol=2e-5, what="grad")


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_equals_eager(name: str) -> None:
    build, shape, kwargs, scale = CASES[name]
    layer = build(fs)
    _, params = layer[0](fkey(), shape)
    x = fgrad.tree_util.tree_map(fnp.asarray, make_inputs(shape, scale=scale))
    if kwargs.get("rng"):
        eager = layer[1](params, x, rng=fkey())
        jitted = fgrad.jit(lambda p, v, r: layer[1](p, v, rng=r))(params, x, fkey())
    else:
        eager = layer[1](params, x)
        jitted = fgrad.jit(layer[1])(params, x)
    assert_trees_close(jitted, eager, rtol=1e-6, atol=1e-6)


def test_jit_of_init_equals_eager() -> None:
    init, _ = fs.serial(fs.Conv(3, (2, 2)), fs.Relu, fs.Flatten, fs.Dense(4))
    eager_shape, eager = init(fkey(), (2, 5, 5, 1))
    jitted = fgrad.jit(lambda k: init(k, (2, 5, 5, 1))[1])(fkey())
    assert eager_shape == (2, 4)
    assert_matches_eager(jitted, eager)


# --- quirks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,shape", [
    ("Dense", (-1, 3)), ("Conv_strided_same", (-1, 7, 6, 2)), ("ConvTranspose_same",
                                                                (-1, 4, 4, 2)),
    ("BatchNorm", (-1, 3, 3, 2)), ("MaxPool", (-1, 6, 6, 3)), ("AvgPool_CHWN_spec",
                                                              (3, 5, 6, -1)),
    ("Flatten", (-1, 3, 4)), ("serial_cnn", (-1, 6, 6, 1)), ("parallel_concat", (-1, 5)),
])
def test_unknown_batch_dimension(name: str, shape: tuple) -> None:
    build = CASES[name][0]
    _, _, (f_shape, f_params), (j_shape, j_params) = init_both(build, shape)
    assert f_shape == j_shape
    assert_trees_close(f_params, j_params)


def test_parallel_init_returns_a_zip() -> None:
    init, _ = fs.parallel(fs.Dense(2), fs.Identity)
    result = init(fkey(), [(3, 4), (3, 5)])
    assert isinstance(result, zip)
    shapes, params = result
    assert shapes == ((3, 2), (3, 5)) and params[1] == ()


def test_dropout_rate_is_the_keep_probability() -> None:
    _, apply = fs.Dropout(0.9)
    x = fnp.ones((200, 100))
    out = np.asarray(apply((), x, rng=fkey()))
    kept = out != 0
    assert kept.mean() == pytest.approx(0.9, abs=0.01)  # 90% KEPT, not dropped
    np.testing.assert_allclose(out[kept], 1 / 0.9, rtol=1e-6)
    want = js.Dropout(0.9)[1]((), jnp.ones((200, 100)), rng=jkey())
    np.testing.assert_array_equal(out, np.asarray(want))


def test_dropout_modes_and_missing_key() -> None:
    _, apply = fs.Dropout(0.5)
    x = fnp.asarray(make_inputs((4, 6)))
    with pytest.raises(ValueError, match="Dropout layer requires apply_fun to be called with a "
                                         "PRNG key"):
        apply((), x)
    # fgrad addition: an apply-time mode other than 'train' turns dropout off, no key needed
    np.testing.assert_array_equal(np.asarray(apply((), x, mode="eval")), np.asarray(x))
    # JAX's constructor mode: anything but 'train' passes through (a key is still required)
    _, apply_test = fs.Dropout(0.5, mode="test")
    np.testing.assert_array_equal(np.asarray(apply_test((), x, rng=fkey())), np.asarray(x))
    with pytest.raises(ValueError, match="PRNG key"):
        apply_test((), x)
    # serial forwards mode to the Dropout inside
    _, net = fs.serial(fs.Dense(3), fs.Dropout(0.5))
    _, params = fs.serial(fs.Dense(3), fs.Dropout(0.5))[0](fkey(), (4, 6))
    eval_out = net(params, x, mode="eval")
    np.testing.assert_allclose(np.asarray(eval_out), np.asarray(fs.Dense(3)[1](params[0], x)),
                               rtol=1e-6)


def test_serial_splits_the_key_like_jax() -> None:
    build = lambda s: s.serial(s.Dropout(0.5), s.Dropout(0.5), s.Dropout(0.5))  # noqa: E731
    x = np.ones((8, 8), np.float32)
    got = build(fs)[1]([(), (), ()], fnp.asarray(x), rng=fkey())
    want = build(js)[1]([(), (), ()], jnp.asarray(x), rng=jkey())
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_batchnorm_uses_batch_statistics_in_every_mode() -> None:
    init, apply = fs.BatchNorm(axis=0)
    _, params = init(fkey(), (5, 3))
    x = fnp.asarray(make_inputs((5, 3), scale=4.0) + 10.0)
    out = np.asarray(apply(params, x, mode="eval"))
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-3)
    # one example normalizes to beta whatever its values: no running statistics
    np.testing.assert_allclose(np.asarray(apply(params, x[:1])), 0, atol=1e-6)


def test_flatten_identity_fan_layers_shapes() -> None:
    assert fs.Flatten[0](None, (2, 3, 4)) == ((2, 12), ())
    assert fs.FanOut(2)[0](None, (3, 4)) == ([(3, 4), (3, 4)], ())
    assert fs.FanInSum[0](None, [(3, 4), (3, 4)]) == ((3, 4), ())
    assert fs.FanInConcat(1)[0](None, [(3, 4, 2), (3, 1, 2)]) == ((3, 5, 2), ())
    assert fs.FanInConcat(-2)[0](None, [(3, 4, 2), (3, 1, 2)]) == ((3, 5, 2), ())


def test_serial_layer_is_a_plain_pair() -> None:
    layer = fs.serial(fs.Dense(2), fs.Relu)
    init, apply = layer
    assert isinstance(layer, tuple) and len(layer) == 2 and layer[0] is init
    assert layer.layers[1] is fs.Relu
    assert fs.serial()[0](fkey(), (2, 3)) == ((2, 3), [])
