"""Tests for ``fgrad.nn_stax.initializers`` against ``jax.nn.initializers``.

``fgrad.random`` reproduces JAX's threefry bits, so with the same key every
initializer must give JAX's numbers: bit for bit for the uniform-based ones,
to a few ulps for the normal-based ones (numpy's ``erf_inv`` vs XLA's) and
for ``orthogonal`` (numpy's float64 QR vs LAPACK in float32). On top of that:
the distributions' moments on large draws, fans for every axis layout,
dtypes (float16/bfloat16, float64 under x64), ``jit``, and the error messages.
"""

from __future__ import annotations

from typing import Any, Iterator

import jax
import jax.nn.initializers as ji
import ml_dtypes
import numpy as np
import pytest

import fgrad
import fgrad.random
from fgrad.nn_stax import initializers as fi
from jit_compare import assert_matches_eager


@pytest.fixture(autouse=True, scope="module")
def fast_oracle_compiles() -> Iterator[None]:
    """JAX runs op by op here, so XLA compile time dominates; its optimization passes buy
    nothing for such tiny programs, and skipping them halves this file's run time."""
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)


SHAPES_AND_AXES = [
    ((5, 7), {}),
    ((3, 3, 4, 8), {}),  # an HWIO conv kernel: receptive field 9
    ((4, 6, 2), dict(in_axis=0, out_axis=(1, 2))),
    ((2, 5, 7), dict(batch_axis=0)),
    ((6, 3, 5), dict(in_axis=(0, 1), out_axis=-1)),
]
SCALING = ["glorot_uniform", "glorot_normal", "lecun_uniform", "lecun_normal", "he_uniform",
           "he_normal"]


def keys(seed: int) -> tuple[Any, Any]:
    return fgrad.random.PRNGKey(seed), jax.random.PRNGKey(seed)


def assert_like_jax(got: Any, want: Any, exact: bool) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                 want.shape, want.dtype)
    if exact:
        np.testing.assert_array_equal(got, want)
    else:
        scale = max(float(np.abs(want.astype(np.float64)).max(initial=0)), 1e-30)
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64),
                                   rtol=0, atol=16 * float(ml_dtypes.finfo(want.dtype).eps) * scale)


# --- values equal JAX's for the same key ----------------------------------------------------------

@pytest.mark.parametrize("name", SCALING)
@pytest.mark.parametrize("shape,axes", SHAPES_AND_AXES)
def test_variance_scaling_family_matches_jax(name: str, shape: tuple, axes: dict) -> None:
    k, jk = keys(len(shape) + len(axes))
    got = getattr(fi, name)(**axes)(k, shape)
    assert isinstance(got, fgrad.Array)
    assert_like_jax(got, getattr(ji, name)(**axes)(jk, shape), exact="uniform" in name)


def test_aliases() -> None:
    assert fi.xavier_uniform is fi.glorot_uniform and fi.xavier_normal is fi.glorot_normal
    assert fi.kaiming_uniform is fi.he_uniform and fi.kaiming_normal is fi.he_normal
    k, jk = keys(0)
    assert_like_jax(fi.kaiming_normal()(k, (4, 3)), ji.kaiming_normal()(jk, (4, 3)), exact=False)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg", "fan_geo_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "normal", "uniform"])
def test_variance_scaling_matches_jax(mode: str, distribution: str) -> None:
    k, jk = keys(3)
    args = (0.7, mode, distribution)
    got = fi.variance_scaling(*args, in_axis=1, out_axis=0)(k, (6, 4, 3))
    want = ji.variance_scaling(*args, in_axis=1, out_axis=0)(jk, (6, 4, 3))
    assert_like_jax(got, want, exact=distribution == "uniform")


@pytest.mark.parametrize("name,args", [
    ("normal", ()), ("normal", (0.5,)), ("uniform", ()), ("uniform", (3.0,)),
    ("truncated_normal", ()), ("truncated_normal", (2.0, None, -1.0, 0.5)),
])
def test_simple_random_initializers_match_jax(name: str, args: tuple) -> None:
    k, jk = keys(11)
    for shape in [(), (7,), (3, 4, 5)]:
        got, want = getattr(fi, name)(*args)(k, shape), getattr(ji, name)(*args)(jk, shape)
        assert_like_jax(got, want, exact=name == "uniform")


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
@pytest.mark.parametrize("name", ["glorot_uniform", "he_normal", "lecun_normal"])
def test_16bit_dtypes_match_jax(name: str, dtype: Any) -> None:
    k, jk = keys(5)
    got = getattr(fi, name)(dtype=dtype)(k, (16, 8))
    assert_like_jax(got, getattr(ji, name)(dtype=dtype)(jk, (16, 8)), exact="uniform" in name)
    # the init-time dtype overrides the builder's
    got = getattr(fi, name)(dtype=np.float32)(k, (4, 4), dtype)
    assert np.asarray(got).dtype == np.dtype(dtype)


def test_float64_with_x64(x64: None) -> None:
    k, jk = keys(2)
    for name in ["glorot_normal", "he_uniform"]:
        got = getattr(fi, name)()(k, (6, 5), np.float64)
        assert_like_jax(got, getattr(ji, name)()(jk, (6, 5), np.float64), exact="uniform" in name)
    assert np.asarray(fi.zeros(k, (2,))).dtype == np.float64  # the default float is float64
    got = fi.orthogonal()(k, (5, 3), np.float64)
    np.testing.assert_allclose(np.asarray(got), np.asarray(ji.orthogonal()(jk, (5, 3),
                                                                          np.float64)), atol=1e-12)


def test_float64_is_narrowed_without_x64() -> None:
    k, _ = keys(0)
    assert np.asarray(fi.normal()(k, (3,), np.float64)).dtype == np.float32


@pytest.mark.parametrize("shape,column_axis", [((4, 6), -1), ((6, 4), -1), ((3, 4, 5), -1),
                                               ((3, 4, 5), 0), ((3, 3, 4, 8), -1), ((5, 5), 1)])
@pytest.mark.parametrize("traced", [False, True], ids=["eager", "jit"])
def test_orthogonal_matches_jax_and_is_orthogonal(shape: tuple, column_axis: int,
                                                  traced: bool) -> None:
    """Eagerly through LAPACK; under jit (a traced key) through Gram-Schmidt."""
    k, jk = keys(4)
    init = fi.orthogonal(1.5, column_axis)
    got = np.asarray(fgrad.jit(lambda key: init(key, shape))(k) if traced else init(k, shape))
    want = np.asarray(ji.orthogonal(1.5, column_axis)(jk, shape))
    np.testing.assert_allclose(got, want, atol=2e-6)
    matrix = np.moveaxis(got, column_axis, -1).reshape(-1, shape[column_axis]) / 1.5
    small = min(matrix.shape)
    gram = matrix.T @ matrix if matrix.shape[0] >= matrix.shape[1] else matrix @ matrix.T
    np.testing.assert_allclose(gram, np.eye(small), atol=2e-6)


def test_orthogonal_under_vmap_and_for_ill_conditioned_draws() -> None:
    """Reorthogonalization keeps Q orthogonal even when columns are nearly dependent."""
    k, _ = keys(5)
    batch = np.asarray(fgrad.vmap(lambda key: fi.orthogonal()(key, (16, 16)))(fgrad.random.split(k, 3)))
    for b in range(3):
        np.testing.assert_allclose(batch[b] @ batch[b].T, np.eye(16), atol=3e-6)
    z = np.random.default_rng(0).normal(size=(32, 8)).astype(np.float32)
    z[:, 1] = z[:, 0] + 1e-4 * z[:, 1]  # condition number ~1e4: one Gram-Schmidt pass fails
    q = np.asarray(fgrad.jit(fi._gram_schmidt)(z))
    np.testing.assert_allclose(q.T @ q, np.eye(8), atol=2e-6)
    r = q.T @ z
    assert np.all(np.diagonal(r) > 0)
    np.testing.assert_allclose(q @ np.triu(r), z, atol=1e-4)


@pytest.mark.parametrize("shape", [(3, 4, 4), (3, 3, 2, 5), (1, 3, 3, 4, 4)])
def test_delta_orthogonal_matches_jax(shape: tuple) -> None:
    k, jk = keys(8)
    np.testing.assert_allclose(np.asarray(fi.delta_orthogonal()(k, shape)),
                               np.asarray(ji.delta_orthogonal()(jk, shape)), atol=2e-6)


@pytest.mark.parametrize("name,args", [("zeros", None), ("ones", None), ("constant", (-7,))])
def test_constant_initializers(name: str, args: Any) -> None:
    k, jk = keys(0)
    init, jinit = (getattr(fi, name), getattr(ji, name))
    if args is not None:
        init, jinit = init(*args), jinit(*args)
    for shape, dtype in [((2, 3), None), ((4,), np.float16), ((), ml_dtypes.bfloat16)]:
        assert_like_jax(init(k, shape, dtype), jinit(jk, shape, dtype), exact=True)
    assert_like_jax(fi.constant(2.5, np.float16)(k, (3,)),
                    ji.constant(2.5, np.float16)(jk, (3,)), exact=True)


def test_shape_may_be_an_int_or_a_list() -> None:
    k, jk = keys(1)
    assert_like_jax(fi.uniform()(k, 5), ji.uniform()(jk, 5), exact=True)
    assert_like_jax(fi.glorot_uniform()(k, [3, 4]), ji.glorot_uniform()(jk, [3, 4]), exact=True)


# --- distributions --------------------------------------------------------------------------------

@pytest.mark.parametrize("name,scale,fan", [
    ("glorot_normal", 1.0, "avg"), ("glorot_uniform", 1.0, "avg"), ("he_normal", 2.0, "in"),
    ("he_uniform", 2.0, "in"), ("lecun_normal", 1.0, "in"), ("lecun_uniform", 1.0, "in"),
])
def test_variance_and_support(name: str, scale: float, fan: str) -> None:
    shape = (3, 3, 40, 60)  # fan_in = 360, fan_out = 540
    fan_in, fan_out = 9 * 40, 9 * 60
    n = {"in": fan_in, "avg": (fan_in + fan_out) / 2}[fan]
    w = np.asarray(getattr(fi, name)()(fgrad.random.PRNGKey(1), shape), np.float64)
    target = scale / n
    assert abs(w.mean()) < 4 * np.sqrt(target / w.size)
    assert w.var() == pytest.approx(target, rel=0.03)
    bound = np.sqrt(3 * target) if "uniform" in name else 2 * np.sqrt(target) / 0.8796256610342398
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.95 * bound  # the whole support is used


def test_uniform_and_normal_moments() -> None:
    k = fgrad.random.PRNGKey(9)
    u = np.asarray(fi.uniform(4.0)(k, (100_000,)), np.float64)
    assert u.min() >= 0 and u.max() < 4 and u.mean() == pytest.approx(2.0, rel=0.01)
    z = np.asarray(fi.normal(3.0)(k, (100_000,)), np.float64)
    assert z.std() == pytest.approx(3.0, rel=0.01) and abs(z.mean()) < 0.05
    t = np.asarray(fi.truncated_normal(3.0)(k, (100_000,)), np.float64)
    assert np.abs(t).max() < 6.0 and t.std() == pytest.approx(3.0 * 0.8796, rel=0.01)


# --- jit, errors ----------------------------------------------------------------------------------

def test_jit_equals_eager() -> None:
    k, _ = keys(6)
    for init in [fi.glorot_normal(), fi.he_uniform(), fi.normal(), fi.zeros]:
        eager = np.asarray(init(k, (4, 5)))
        jitted = np.asarray(fgrad.jit(lambda key: init(key, (4, 5)))(k))
        assert_matches_eager(jitted, eager)


def test_vmap_over_keys_equals_loop() -> None:
    ks = fgrad.random.split(fgrad.random.PRNGKey(0), 3)
    init = fi.lecun_uniform()
    batched = np.asarray(fgrad.vmap(lambda key: init(key, (4, 2)))(ks))
    for i in range(3):
        np.testing.assert_array_equal(batched[i], np.asarray(init(ks[i], (4, 2))))


def test_errors() -> None:
    k, _ = keys(0)
    with pytest.raises(ValueError, match="1-dimensional weights tensor with default in_axis"):
        fi.glorot_normal()(k, (5,))
    with pytest.raises(ValueError, match="invalid mode for variance scaling initializer: fan"):
        fi.variance_scaling(1.0, "fan", "normal")(k, (2, 2))
    with pytest.raises(ValueError, match="invalid distribution for variance scaling"):
        fi.variance_scaling(1.0, "fan_in", "cauchy")(k, (2, 2))
    with pytest.raises(ValueError, match="orthogonal initializer requires at least a 2D shape"):
        fi.orthogonal()(k, (4,))
    with pytest.raises(ValueError, match="Delta orthogonal initializer requires a 3D, 4D or 5D"):
        fi.delta_orthogonal()(k, (3, 3))
    with pytest.raises(ValueError, match="`fan_in` must be less or equal than `fan_out`"):
        fi.delta_orthogonal()(k, (3, 5, 4))
    with pytest.raises(ValueError, match="out_sharding must be None"):
        fi.normal()(k, (2,), out_sharding="x")
    assert np.asarray(fi.orthogonal()(k, (0, 3))).shape == (0, 3)
