"""``fgrad.random``: the public API against ``jax.random`` and against statistics.

* Bit-equality with JAX (default threefry2x32, partitionable mode) for
  ``key``, ``PRNGKey``, ``split``, ``fold_in``, ``bits``, ``uniform``,
  ``bernoulli``, ``randint``, ``permutation``, ``choice`` and
  ``categorical``, with x64 off and on; ``normal``, ``truncated_normal``
  and ``gumbel`` agree to a few ulps (numpy's erf_inv/erf/log are not XLA's).
* Statistics on large samples (deterministic keys, so no flakiness): moments,
  rates, ranges (extreme bounds too), frequencies against softmax(logits),
  permutation validity, independence of split and folded-in streams.
* The same numbers eagerly, under ``jit`` (traced keys) and under ``vmap``
  (a batch of keys equals a loop over them; nested; out_axes; jit of vmap).
* Gradients through ``uniform``'s bounds, ``truncated_normal``'s bounds and
  ``permutation`` against JAX; error messages naming the function.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
import fgrad.random as fr
from conftest import enable_x64
from fgrad.core.jaxpr import typecheck_jaxpr
from jit_compare import assert_matches_eager

U32 = np.uint32
BF16 = ml_dtypes.bfloat16
jr = jax.random


def assert_same(got: Any, want: Any, what: str = "") -> None:
    """Same shape and dtype, identical values (bit for bit)."""
    got_np, want_np = np.asarray(got), np.asarray(want)
    assert (got_np.shape, got_np.dtype) == (want_np.shape, want_np.dtype), (
        f"{what}: got {got_np.dtype}{list(got_np.shape)}, want {want_np.dtype}"
        f"{list(want_np.shape)}")
    assert not getattr(got, "weak_type", False), f"{what}: weakly typed result"
    if got_np.dtype.kind == "f" or got_np.dtype == BF16:  # compare bit patterns
        got_np = got_np.view(f"u{got_np.dtype.itemsize}")
        want_np = want_np.view(f"u{want_np.dtype.itemsize}")
    np.testing.assert_array_equal(got_np, want_np, err_msg=what)


def assert_close(got: Any, want: Any, rtol: float, atol: float, what: str = "") -> None:
    got_np, want_np = np.asarray(got), np.asarray(want)
    assert (got_np.shape, got_np.dtype) == (want_np.shape, want_np.dtype), what
    np.testing.assert_allclose(got_np.astype(np.float64), want_np.astype(np.float64),
                               rtol=rtol, atol=atol, err_msg=what)


KEYS = [0, 1, 42, 2**31 + 7]
Case = tuple[str, Callable[[Any], Any], Callable[[Any], Any]]  # (label, fgrad fn, JAX fn)


def check_cases(cases: list[Case], seeds: list[int] = KEYS[:2], exact: bool = True,
                rtol: float = 0.0, atol: float = 0.0) -> None:
    """Each case's fgrad function of a key against its JAX twin, for each seed.

    The JAX twins run as one jitted program of the key (compiled once per test:
    compiling, not running, is what costs time in the oracle).
    """
    oracle = jax.jit(lambda k: [jax_fn(k) for _, _, jax_fn in cases])
    for seed in seeds:
        wants = oracle(jr.PRNGKey(seed))
        for (label, fn, _), want in zip(cases, wants):
            got = fn(fr.key(seed))
            if exact:
                assert_same(got, want, f"{label} (seed {seed})")
            else:
                assert_close(got, want, rtol, atol, f"{label} (seed {seed})")


# --- keys ---------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(st.integers(-(2**63), 2**63 - 1), st.booleans())
def test_key_from_python_int_matches_jax(seed: int, x64: bool) -> None:
    with enable_x64(x64):
        got = fr.key(seed)
        assert_same(got, jr.key_data(jr.key(seed)), f"key({seed}) x64={x64}")
        assert_same(fr.PRNGKey(seed), jr.PRNGKey(seed), f"PRNGKey({seed}) x64={x64}")


@pytest.mark.parametrize("x64", [False, True])
def test_key_from_numpy_seeds_matches_jax(x64: bool) -> None:
    seeds = [np.int8(-3), np.uint8(200), np.int16(-2), np.uint16(60000), np.int32(-5),
             np.uint32(4000000000), np.int64(2**40 + 7), np.int64(-2**40),
             np.uint64(2**63 + 5), True, np.array(12, np.int32)]
    with enable_x64(x64):
        for seed in seeds:
            assert_same(fr.PRNGKey(seed), jr.PRNGKey(seed), f"PRNGKey({seed!r})")
            assert_same(fr.key(seed), jr.key_data(jr.key(seed)), f"key({seed!r})")


def test_key_traced_seed_jit_and_vmap() -> None:
    seeds = np.array([0, 1, -1, 2**31 - 1, -(2**31)], np.int32)
    want = np.stack([np.asarray(jr.PRNGKey(s)) for s in seeds])
    assert_same(fgrad.vmap(fr.key)(seeds), want, "vmap(key)")
    assert_same(fgrad.jit(fgrad.vmap(fr.PRNGKey))(seeds), want, "jit(vmap(PRNGKey))")
    for s, w in zip(seeds, want):
        assert_same(fgrad.jit(fr.key)(s), w, "jit(key)")
    with enable_x64():
        big = np.array([2**40 + 7, -3], np.int64)
        assert_same(fgrad.jit(fgrad.vmap(fr.key))(big),
                    np.stack([np.asarray(jr.PRNGKey(s)) for s in big]), "vmap(key) int64")


def test_key_errors() -> None:
    with pytest.raises(TypeError, match=r"key: PRNG key seed must be an integer; got f32\[\]"):
        fr.key(np.float32(1.0))
    with pytest.raises(TypeError, match=r"PRNGKey: PRNG key seed must be an integer"):
        fr.PRNGKey(1.5)
    with pytest.raises(TypeError, match=r"key accepts a scalar seed, but was given an array "
                                        r"of shape \(2,\)"):
        fr.key(np.array([1, 2]))
    with pytest.raises(OverflowError, match="PRNGKey: seed 18446744073709551616 does not fit"):
        fr.PRNGKey(2**64)
    with pytest.raises(TypeError, match="key: PRNG key seed must be an integer"):
        fr.key(np.bool_(True))


def test_key_data_and_wrap_key_data() -> None:
    keys = fr.split(fr.key(3), 4)
    assert fr.key_data(keys) is keys and fr.wrap_key_data(keys) is keys
    assert_same(fr.key_data(np.array([1, 2], U32)), np.array([1, 2], U32))
    with pytest.raises(TypeError, match=r"key_data: expected a PRNG key.*got i32\[2\]"):
        fr.key_data(np.array([1, 2], np.int32))


# --- split and fold_in ------------------------------------------------------------------

@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.sampled_from([2, 1, 0, 5, (2, 3), (), (1, 0, 2)]))
def test_split_matches_jax(k1: int, k2: int, num: Any) -> None:
    key = np.array([k1, k2], U32)
    got = fr.split(key, num) if num != 2 else fr.split(key)
    assert_same(got, jr.split(key, num), f"split({key}, {num})")


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_fold_in_matches_jax(k1: int, k2: int, data: int) -> None:
    key = np.array([k1, k2], U32)
    want = jr.fold_in(key, data)
    assert_same(fr.fold_in(key, data), want, f"fold_in({key}, {data})")
    assert_same(fr.fold_in(key, np.uint32(data)), want, "fold_in uint32 data")


def test_fold_in_array_data_jit_and_vmap() -> None:
    key = fr.key(7)
    for data in (np.int32(-2), np.uint32(7), np.int8(-1), True):
        assert_same(fr.fold_in(key, data), jr.fold_in(jr.PRNGKey(7), data), f"{data!r}")
    steps = np.arange(6, dtype=np.int32)
    want = np.stack([np.asarray(jr.fold_in(jr.PRNGKey(7), int(s))) for s in steps])
    assert_same(fgrad.vmap(lambda d: fr.fold_in(key, d))(steps), want, "vmap over data")
    assert_same(fgrad.jit(fr.fold_in)(key, np.int32(3)), want[3], "jit(fold_in)")
    with enable_x64():  # int64 data is taken modulo 2**32
        assert_same(fr.fold_in(key, np.int64(2**33 + 5)), jr.fold_in(jr.PRNGKey(7), 5))


def test_split_and_fold_in_errors() -> None:
    key = fr.key(0)
    with pytest.raises(ValueError, match=r"split accepts a single key, but was given a key "
                                         r"array of shape \(3, 2\)"):
        fr.split(fr.split(key, 3))
    with pytest.raises(TypeError, match=r"split: expected a PRNG key.*got u32\[3\]"):
        fr.split(np.zeros(3, U32))
    with pytest.raises(TypeError, match=r"fold_in: expected a PRNG key.*got f32\[2\]"):
        fr.fold_in(np.zeros(2, np.float32), 1)
    with pytest.raises(OverflowError, match="fold_in: Python integer -1 out of bounds"):
        fr.fold_in(key, -1)
    with pytest.raises(TypeError, match=r"fold_in accepts a scalar, but was given an array "
                                        r"of shape \(2,\)"):
        fr.fold_in(key, np.array([1, 2]))
    with pytest.raises(TypeError, match=r"fold_in: data must be an integer, got f32\[\]"):
        fr.fold_in(key, np.float32(1.5))
    with pytest.raises(ValueError, match=r"split: shape \(-1,\) has a negative dimension"):
        fr.split(key, -1)


# --- bits and uniform -------------------------------------------------------------------

def _bits_cases(dtypes_: list[Any]) -> list[Case]:
    return [(f"bits {dtype} {shape}",
             lambda k, s=shape, d=dtype: fr.bits(k, s, d),
             lambda k, s=shape, d=dtype: jr.bits(k, s, d))
            for dtype in dtypes_ for shape in [(), (0,), (7,), (3, 5)]]


def test_bits_match_jax() -> None:
    check_cases(_bits_cases([np.uint8, np.uint16, np.uint32, None]))


def test_bits_x64(x64: None) -> None:
    assert fr.bits(fr.key(5)).dtype == np.uint64  # the default unsigned dtype with x64
    check_cases(_bits_cases([np.uint64, np.uint32, None]))


def test_bits_errors() -> None:
    with pytest.raises(ValueError, match=r"dtype argument to `bits` must be an unsigned int "
                                         r"dtype, got int32"):
        fr.bits(fr.key(0), (2,), np.int32)
    with pytest.raises(TypeError, match=r"bits: shape must be a sequence of integers"):
        fr.bits(fr.key(0), (2.5,))


UNIFORM_CASES = [
    ((1000,), 0.0, 1.0), ((3, 4), -2.5, 3.7), ((), -1.0, 1.0), ((0, 3), 0.0, 1.0),
    ((2, 3), np.array([0.0, 1.0, -5.0]), np.array([1.0, 10.0, -4.0])),
    ((200,), 0.1, 0.2),
]


def _uniform_cases(dtypes_: list[Any]) -> list[Case]:
    return [(f"uniform {dtype} {shape} [{lo}, {hi})",
             lambda k, c=(shape, dtype, lo, hi): fr.uniform(k, *c),
             lambda k, c=(shape, dtype, lo, hi): jr.uniform(k, *c))
            for dtype in dtypes_ for shape, lo, hi in UNIFORM_CASES]


def test_uniform_matches_jax() -> None:
    check_cases(_uniform_cases([np.float32, np.float16, BF16]), KEYS[:3])


def test_uniform_float64_matches_jax(x64: None) -> None:
    assert fr.uniform(fr.key(0)).dtype == np.float64
    check_cases(_uniform_cases([None, np.float32]), KEYS[:3])


def test_uniform_statistics() -> None:
    n = 200_000
    u = np.asarray(fr.uniform(fr.key(11), (n,), minval=-1.0, maxval=3.0), np.float64)
    assert u.min() >= -1.0 and u.max() < 3.0
    # mean 1, variance 16/12; 5 standard errors
    assert abs(u.mean() - 1.0) < 5 * math.sqrt(16 / 12 / n)
    assert abs(u.var() - 16 / 12) < 5 * math.sqrt((256 / 80 - (16 / 12) ** 2) / n)
    counts = np.histogram(u, bins=20, range=(-1, 3))[0]
    assert scipy.stats.chisquare(counts).pvalue > 1e-4


def test_uniform_errors() -> None:
    key = fr.key(0)
    with pytest.raises(ValueError, match=r"dtype argument to `uniform` must be a float dtype, "
                                         r"got int32"):
        fr.uniform(key, (3,), np.int32)
    with pytest.raises(ValueError, match=r"uniform: parameter shapes \[\(4,\), \(\)\] must be "
                                         r"broadcast-compatible with the shape argument \(3,\)"):
        fr.uniform(key, (3,), minval=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"uniform accepts a single key"):
        fr.uniform(fr.split(key, 2), (3,))
    with pytest.raises(TypeError, match=r"uniform: expected a PRNG key, a uint32 array of "
                                        r"shape \(2,\).*got u32\[3\]"):
        fr.uniform(np.zeros(3, U32), (3,))
    with pytest.raises(TypeError, match=r"uniform: expected a PRNG key.*got i32\[2\]"):
        fgrad.jit(lambda k: fr.uniform(k, (3,)))(np.zeros(2, np.int32))


def test_uniform_gradients_match_jax(x64: None) -> None:
    lo, hi = np.array([-1.0, 0.5, 2.0]), np.array([1.0, 3.0, 2.5])

    def f(lo: Any, hi: Any) -> Any:
        return fnp.sum(fnp.sin(fr.uniform(fr.key(3), (4, 3), minval=lo, maxval=hi)))

    def jf(lo: Any, hi: Any) -> Any:
        return jnp.sum(jnp.sin(jr.uniform(jr.PRNGKey(3), (4, 3), minval=lo, maxval=hi)))

    got = fgrad.grad(f, (0, 1))(lo, hi)
    want = jax.grad(jf, (0, 1))(lo, hi)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f))(lo, hi))


# --- normal, truncated_normal, gumbel ------------------------------------------------------

@pytest.mark.parametrize("dtype,rtol,atol", [(np.float32, 2e-5, 1e-6), (np.float16, 2e-3, 2e-3),
                                             (BF16, 1e-2, 1e-2)])
def test_normal_close_to_jax(dtype: Any, rtol: float, atol: float) -> None:
    check_cases([(f"normal {dtype}", lambda k: fr.normal(k, (500,), dtype),
                  lambda k: jr.normal(k, (500,), dtype))], KEYS, exact=False, rtol=rtol,
                atol=atol)


def test_normal_float64_close_to_jax(x64: None) -> None:
    assert fr.normal(fr.key(4), (3,)).dtype == np.float64
    check_cases([("normal f64", lambda k: fr.normal(k, (3, 500)),
                  lambda k: jr.normal(k, (3, 500)))], KEYS[:2], exact=False, rtol=1e-12,
                atol=1e-14)


def test_normal_moments() -> None:
    n = 400_000
    z = np.asarray(fr.normal(fr.key(21), (n,)), np.float64)
    se = 1 / math.sqrt(n)
    assert abs(z.mean()) < 5 * se
    assert abs(z.var() - 1) < 5 * math.sqrt(2) * se
    assert abs(scipy.stats.skew(z)) < 5 * math.sqrt(6) * se
    assert abs(scipy.stats.kurtosis(z)) < 5 * math.sqrt(24) * se
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-4


def test_truncated_normal_close_to_jax_and_in_bounds() -> None:
    lo, hi = np.array([-1.5, 0.0, -3.0], np.float32), np.float32(2.5)
    check_cases([("truncated_normal", lambda k: fr.truncated_normal(k, lo, hi, (400, 3)),
                  lambda k: jr.truncated_normal(k, lo, hi, (400, 3)))], KEYS, exact=False,
                rtol=2e-4, atol=2e-5)
    for seed in KEYS:
        g = np.asarray(fr.truncated_normal(fr.key(seed), lo, hi, (400, 3)))
        assert np.all(g > lo) and np.all(g < hi)  # the open interval
    assert fr.truncated_normal(fr.key(0), -1.0, np.zeros((2, 3))).shape == (2, 3)  # default shape
    with enable_x64():
        check_cases([("truncated_normal f64", lambda k: fr.truncated_normal(k, -0.5, 1.5, (300,)),
                      lambda k: jr.truncated_normal(k, -0.5, 1.5, (300,)))], KEYS[:2],
                    exact=False, rtol=1e-12, atol=1e-14)


def test_truncated_normal_moments() -> None:
    n, a, b = 200_000, -0.5, 1.5
    x = np.asarray(fr.truncated_normal(fr.key(8), a, b, (n,)), np.float64)
    dist = scipy.stats.truncnorm(a, b)
    assert abs(x.mean() - dist.mean()) < 5 * dist.std() / math.sqrt(n)
    assert abs(x.std() - dist.std()) < 0.01
    assert scipy.stats.kstest(x, dist.cdf).pvalue > 1e-4


def test_truncated_normal_gradients_match_jax(x64: None) -> None:
    def f(lo: Any, hi: Any) -> Any:
        return fnp.sum(fr.truncated_normal(fr.key(2), lo, hi, (5,)) ** 2)

    def jf(lo: Any, hi: Any) -> Any:
        return jnp.sum(jr.truncated_normal(jr.PRNGKey(2), lo, hi, (5,)) ** 2)

    got = fgrad.grad(f, (0, 1))(-1.0, 2.0)
    want = jax.grad(jf, (0, 1))(-1.0, 2.0)
    for g, w in zip(got, want):
        np.testing.assert_allclose(float(g), float(w), rtol=1e-9)


def test_gumbel() -> None:
    check_cases([(f"gumbel {mode}", lambda k, m=mode: fr.gumbel(k, (300,), mode=m),
                  lambda k, m=mode: jr.gumbel(k, (300,), mode=m)) for mode in ("low", "high")],
                KEYS[:2], exact=False, rtol=2e-4, atol=2e-5)
    n = 200_000
    g = np.asarray(fr.gumbel(fr.key(9), (n,)), np.float64)
    assert abs(g.mean() - np.euler_gamma) < 5 * (math.pi / math.sqrt(6)) / math.sqrt(n)
    with pytest.raises(ValueError, match="gumbel: mode must be 'low' or 'high'"):
        fr.gumbel(fr.key(0), mode="highest")


# --- bernoulli and randint -----------------------------------------------------------------

def test_bernoulli_matches_jax_and_rates() -> None:
    p = np.array([[0.1, 0.5, 0.9]], np.float32)
    check_cases([("p=0.3", lambda k: fr.bernoulli(k, 0.3, (100,)),
                  lambda k: jr.bernoulli(k, 0.3, (100,))),
                 ("p array", lambda k: fr.bernoulli(k, p), lambda k: jr.bernoulli(k, p)),
                 ("p array, shape", lambda k: fr.bernoulli(k, p, (4, 3)),
                  lambda k: jr.bernoulli(k, p, (4, 3)))], KEYS)
    n = 100_000
    for p in (0.01, 0.3, 0.5, 0.97):
        rate = np.asarray(fr.bernoulli(fr.key(4), p, (n,))).mean()
        assert abs(rate - p) < 5 * math.sqrt(p * (1 - p) / n), p
    assert not np.asarray(fr.bernoulli(fr.key(0), 0.0, (1000,))).any()
    assert np.asarray(fr.bernoulli(fr.key(0), 1.0, (1000,))).all()
    with pytest.raises(TypeError, match="bernoulli probability `p` must have a floating dtype"):
        fr.bernoulli(fr.key(0), np.int32(1))
    with pytest.raises(ValueError, match="bernoulli: parameter shapes"):
        fr.bernoulli(fr.key(0), np.ones(3, np.float32) / 2, (2,))


RANDINT_CASES = [
    ((4, 5), -3, 3, None), ((50,), -(2**31), 2**31 - 1, None), ((50,), 0, 256, np.uint8),
    ((50,), -128, 128, np.int8), ((50,), -10, 10, np.int8), ((20,), 5, 3, None),
    ((50,), 0, 2**31 - 1, np.uint32),
    ((3, 3), np.array([0, 10, 100]), np.array([[5], [50], [1000]]), None),
    ((40,), 300, 70000, np.uint16), ((), 2.7, 9.9, None),
]


def _randint_cases(cases: list[tuple[Any, ...]]) -> list[Case]:
    return [(f"randint {c}", lambda k, c=c: fr.randint(k, *c), lambda k, c=c: jr.randint(k, *c))
            for c in cases]


def test_randint_matches_jax() -> None:
    check_cases(_randint_cases(RANDINT_CASES), KEYS[:3])


def test_randint_x64_matches_jax(x64: None) -> None:
    check_cases(_randint_cases([
        ((50,), -(2**63), 2**63 - 1, None), ((50,), 0, 2**32, np.uint32),
        ((50,), 0, 2**40, None), ((50,), 0, 2**63 - 1, np.uint64), ((30,), -5, 5, np.int8)]))


def test_randint_ranges_and_uniformity() -> None:
    n = 100_000
    x = np.asarray(fr.randint(fr.key(5), (n,), -3, 4))
    assert x.min() == -3 and x.max() == 3
    assert scipy.stats.chisquare(np.bincount(x + 3)).pvalue > 1e-4
    # extreme bounds: the whole int32 range but the top value
    x = np.asarray(fr.randint(fr.key(6), (n,), -(2**31), 2**31 - 1), np.int64)
    assert x.max() < 2**31 - 1 and x.min() >= -(2**31)
    assert abs(x.mean() / 2**31) < 5 * math.sqrt(1 / 3 / n)
    assert abs(np.mean(x < 0) - 0.5) < 5 * math.sqrt(0.25 / n)
    # bounds past the dtype's range are clamped: [0, 256) for uint8 covers every byte
    x = np.asarray(fr.randint(fr.key(7), (n,), -50, 1000, np.uint8))
    assert x.dtype == np.uint8 and set(np.unique(x)) == set(range(256))
    assert (np.asarray(fr.randint(fr.key(7), (100,), 9, 2)) == 9).all()  # empty range: minval


def test_randint_errors() -> None:
    with pytest.raises(TypeError, match="randint only accepts integer dtypes, got float32"):
        fr.randint(fr.key(0), (3,), 0, 5, np.float32)
    with pytest.raises(ValueError, match=r"randint: parameter shapes \[\(4,\), \(\)\]"):
        fr.randint(fr.key(0), (3,), np.zeros(4, np.int32), 5)


# --- permutation, choice, categorical --------------------------------------------------------

def test_permutation_matches_jax() -> None:
    x = np.arange(24.0, dtype=np.float32).reshape(4, 6)
    cases: list[tuple[Any, dict[str, Any]]] = [
        (10, {}), (np.int32(7), {}), (x, {}), (x, dict(axis=-1)),
        (x, dict(axis=1, independent=True)), (x[0], {}),
        (3000, {}),  # more than 1625 elements: two sorting rounds
        (1, {}), (0, {})]
    check_cases([(f"permutation({np.shape(a)}, {kw})",
                  lambda k, a=a, kw=kw: fr.permutation(k, a, **kw),
                  lambda k, a=a, kw=kw: jr.permutation(k, a, **kw)) for a, kw in cases], KEYS)
    with enable_x64():
        assert_same(fr.permutation(fr.key(2), 9), jr.permutation(jr.PRNGKey(2), 9), "x64")


def test_permutation_validity_and_uniformity() -> None:
    p = np.asarray(fr.permutation(fr.key(3), 1000))
    assert sorted(p.tolist()) == list(range(1000))
    x = np.asarray(fr.permutation(fr.key(4), np.arange(60).reshape(6, 10), 1, independent=True))
    assert all(sorted(row) == list(range(10 * i, 10 * i + 10)) for i, row in enumerate(x))
    # where element 0 lands, over many keys: uniform over the 5 places
    keys = fr.split(fr.key(5), 5000)
    perms = np.asarray(fgrad.vmap(lambda k: fr.permutation(k, 5))(keys))
    assert scipy.stats.chisquare(np.bincount(np.argmax(perms == 0, axis=1))).pvalue > 1e-4
    with pytest.raises(TypeError, match=r"permutation: x must be an integer or at least "
                                        r"1-dimensional, got f32\[\]"):
        fr.permutation(fr.key(0), np.float32(3))
    with pytest.raises(ValueError, match="permutation: axis 2 is out of bounds"):
        fr.permutation(fr.key(0), np.zeros((2, 2)), axis=2)


def test_permutation_gradient_matches_jax(x64: None) -> None:
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    w = np.arange(12.0).reshape(3, 4)
    for kw in ({"axis": 1}, {"axis": 1, "independent": True}):
        got = fgrad.grad(lambda x: fnp.sum(fr.permutation(fr.key(1), x, **kw) * w))(x)
        want = jax.jit(jax.grad(lambda x: jnp.sum(jr.permutation(jr.PRNGKey(1), x, **kw) * w)))(x)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_choice_matches_jax() -> None:
    x = np.arange(30).reshape(5, 6)
    p5 = np.array([0.1, 0.2, 0.3, 0.15, 0.25], np.float32)
    cases: list[tuple[Any, dict[str, Any]]] = [
        (10, dict(shape=(3,))), (10, dict(shape=(2, 3), replace=False)),
        (5, dict(shape=(40,), p=p5)), (5, dict(shape=(3,), replace=False, p=p5)),
        (x, dict(shape=(2, 2))), (x, dict(shape=(4,), axis=1, replace=False)),
        (x, dict(shape=(3,), p=p5)), (x, dict(shape=(0,))),
    ]
    check_cases([(f"choice({np.shape(a)}, {kw})", lambda k, a=a, kw=kw: fr.choice(k, a, **kw),
                  lambda k, a=a, kw=kw: jr.choice(k, a, **kw)) for a, kw in cases], KEYS[:3])


def test_choice_statistics() -> None:
    n = 100_000
    p = np.array([0.1, 0.2, 0.3, 0.15, 0.25])
    draws = np.asarray(fr.choice(fr.key(1), 5, (n,), p=p))
    assert scipy.stats.chisquare(np.bincount(draws, minlength=5), n * p).pvalue > 1e-4
    keys = fr.split(fr.key(2), 2000)
    samples = np.asarray(fgrad.vmap(lambda k: fr.choice(k, 8, (5,), replace=False))(keys))
    assert all(len(set(s)) == 5 for s in samples.tolist())  # no repeats without replacement
    assert scipy.stats.chisquare(np.bincount(samples.ravel(), minlength=8)).pvalue > 1e-4


def test_choice_errors() -> None:
    key = fr.key(0)
    with pytest.raises(ValueError, match=r"choice: cannot take a larger sample \(size 6\) than "
                                         r"the population \(size 5\)"):
        fr.choice(key, 5, (6,), replace=False)
    with pytest.raises(ValueError, match=r"choice: p must be None or a 1D vector.*p has shape "
                                         r"\(4,\)"):
        fr.choice(key, 5, (2,), p=np.ones(4) / 4)
    with pytest.raises(TypeError, match="shape argument of fgrad.random.choice must be a "
                                        "sequence"):
        fr.choice(key, 5, 3)
    with pytest.raises(ValueError, match="choice: a must be greater than 0"):
        fr.choice(key, 0, (2,))


def test_categorical_matches_jax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((20, 6)).astype(np.float32)
    cases: list[tuple[Any, dict[str, Any]]] = [
        (logits, {}), (logits, dict(axis=0, shape=(3, 6))),  # 3 samples per distribution
        (logits[:, :1], dict(axis=0, shape=(4, 1))),  # broadcasting the batch shape
        (logits, dict(shape=(2, 20), replace=False))]
    check_cases([(f"categorical({lg.shape}, {kw})",
                  lambda k, lg=lg, kw=kw: fr.categorical(k, lg, **kw),
                  lambda k, lg=lg, kw=kw: jr.categorical(k, lg, **kw)) for lg, kw in cases], KEYS)


def test_categorical_frequencies_match_softmax() -> None:
    logits = np.array([1.0, -0.5, 0.0, 2.0, -3.0], np.float32)
    probs = np.exp(logits.astype(np.float64))
    probs /= probs.sum()
    n = 100_000
    draws = np.asarray(fr.categorical(fr.key(12), logits, shape=(n,)))
    counts = np.bincount(draws, minlength=5)
    assert np.all(np.abs(counts / n - probs) < 5 * np.sqrt(probs * (1 - probs) / n))
    assert scipy.stats.chisquare(counts, n * probs).pvalue > 1e-4
    no_repeat = np.asarray(fr.categorical(fr.key(1), logits, shape=(5,), replace=False))
    assert sorted(no_repeat.tolist()) == list(range(5))
    with pytest.raises(ValueError, match=r"categorical: number of samples without replacement "
                                         r"\(6\) cannot exceed the number of categories \(5\)"):
        fr.categorical(fr.key(0), logits, shape=(6,), replace=False)
    with pytest.raises(TypeError, match=r"categorical: logits must be floats, got i32\[3\]"):
        fr.categorical(fr.key(0), np.arange(3, dtype=np.int32))


# --- independence of streams ---------------------------------------------------------------

def test_split_and_fold_in_streams_are_uncorrelated() -> None:
    n = 50_000
    bound = 5 / math.sqrt(n)  # 5 standard errors of a correlation estimate
    key = fr.key(0)
    a, b = fr.split(key)
    # NOTE: as in JAX (partitionable threefry), split(key)[i] is fold_in(key, i)
    assert_same(b, fr.fold_in(key, 1))
    streams = [fr.normal(a, (n,)), fr.normal(b, (n,)), fr.normal(key, (n,)),
               fr.normal(fr.fold_in(key, 7), (n,)), fr.normal(fr.fold_in(key, 8), (n,)),
               fr.normal(fr.split(a)[0], (n,))]
    corr = np.corrcoef(np.stack([np.asarray(s, np.float64) for s in streams]))
    off_diagonal = corr[~np.eye(len(streams), dtype=bool)]
    assert np.all(np.abs(off_diagonal) < bound), corr
    # many sibling keys: their first draws are uniform and uncorrelated with their second
    keys = fr.split(fr.key(1), n)
    first = np.asarray(fgrad.vmap(lambda k: fr.uniform(k, (2,)))(keys), np.float64)
    assert abs(np.corrcoef(first[:, 0], first[:, 1])[0, 1]) < bound
    assert scipy.stats.kstest(first[:, 0], "uniform").pvalue > 1e-4


# --- eager, jit and vmap give the same numbers -------------------------------------------------

P5 = np.array([0.1, 0.2, 0.3, 0.2, 0.2], np.float32)
SAMPLERS: dict[str, Callable[[Any], Any]] = {
    "split": lambda k: fr.split(k, 3),
    "fold_in": lambda k: fr.fold_in(k, 3),
    "bits": lambda k: fr.bits(k, (2, 3)),
    "bits_uint8": lambda k: fr.bits(k, (4,), np.uint8),
    "uniform": lambda k: fr.uniform(k, (5,), minval=-1.0, maxval=2.0),
    "uniform_f16": lambda k: fr.uniform(k, (3,), np.float16),
    "normal": lambda k: fr.normal(k, (2, 3)),
    "truncated_normal": lambda k: fr.truncated_normal(k, -1.0, 1.0, (4,)),
    "gumbel": lambda k: fr.gumbel(k, (3,)),
    "bernoulli": lambda k: fr.bernoulli(k, 0.3, (6,)),
    "randint": lambda k: fr.randint(k, (6,), -3, 9),
    "randint_int8": lambda k: fr.randint(k, (6,), -128, 128, np.int8),
    "permutation": lambda k: fr.permutation(k, 7),
    "permutation_independent": lambda k: fr.permutation(
        k, np.arange(12.0, dtype=np.float32).reshape(3, 4), 1, True),
    "choice": lambda k: fr.choice(k, 5, (4,)),
    "choice_p": lambda k: fr.choice(k, 5, (4,), p=P5),
    "choice_no_replace": lambda k: fr.choice(k, 6, (3,), replace=False),
    "categorical": lambda k: fr.categorical(k, np.zeros((2, 3), np.float32)),
    "categorical_no_replace": lambda k: fr.categorical(k, np.zeros((2, 3), np.float32),
                                                       shape=(2, 2), replace=False),
}


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_eager_jit_vmap_agree(name: str) -> None:
    f = SAMPLERS[name]
    keys = fr.split(fr.key(17), 4)
    eager = np.stack([np.asarray(f(keys[i])) for i in range(4)])
    jitted = np.stack([np.asarray(fgrad.jit(f)(keys[i])) for i in range(4)])
    assert_matches_eager(jitted, eager)
    vmapped = fgrad.vmap(f)(keys)
    assert_same(vmapped, eager, f"vmap {name}")
    assert_matches_eager(fgrad.jit(fgrad.vmap(f))(keys), eager, f"jit(vmap) {name}")
    assert_same(fgrad.vmap(f, out_axes=-1)(keys), np.moveaxis(eager, 0, -1), f"out_axes {name}")
    # keys batched along the last axis, and a nested vmap over a (2, 2) grid of keys
    assert_same(fgrad.vmap(f, in_axes=1)(np.asarray(keys).T.copy()), eager, f"in_axes=1 {name}")
    grid = np.asarray(keys).reshape(2, 2, 2)
    nested = fgrad.vmap(fgrad.vmap(f), in_axes=1)(grid)
    assert_same(nested, np.swapaxes(eager.reshape(2, 2, *eager.shape[1:]), 0, 1),
                f"nested {name}")


def test_vmap_over_bounds_and_probabilities() -> None:
    key = fr.key(5)
    lows = np.array([-1.0, 0.0, 2.0], np.float32)
    got = fgrad.vmap(lambda lo: fr.uniform(key, (4,), minval=lo, maxval=lo + 1))(lows)
    want = np.stack([np.asarray(fr.uniform(key, (4,), minval=lo, maxval=lo + 1)) for lo in lows])
    assert_same(got, want, "vmap over minval")
    ps = np.array([0.1, 0.5, 0.9], np.float32)
    got = fgrad.vmap(lambda p: fr.bernoulli(key, p, (50,)))(ps)
    assert_same(got, np.stack([np.asarray(fr.bernoulli(key, p, (50,))) for p in ps]), "vmap p")
    his = np.array([3, 10, 1000], np.int32)
    got = fgrad.vmap(lambda hi: fr.randint(key, (5,), 0, hi))(his)
    assert_same(got, np.stack([np.asarray(fr.randint(key, (5,), 0, hi)) for hi in his]), "hi")


def test_random_inside_jit_with_split_loop() -> None:
    """A training-loop pattern: keys are traced jit arguments, split every step."""
    @fgrad.jit
    def step(key: Any, w: Any) -> tuple[Any, Any]:
        key, sub = fr.split(key)
        noise = fr.normal(sub, w.shape)
        return key, w + 0.1 * noise

    key, w = fr.key(0), fnp.zeros(3)
    jkey, jw = jr.PRNGKey(0), jnp.zeros(3)
    for _ in range(4):
        key, w = step(key, w)
        jkey, jsub = jr.split(jkey)
        jw = jw + 0.1 * jr.normal(jsub, (3,))
    assert_same(key, jkey)
    np.testing.assert_allclose(np.asarray(w), np.asarray(jw), rtol=1e-5, atol=1e-6)
