"""The primitives of ``fgrad/primitives/random.py``: threefry2x32, the shifts,
bitcast_convert_type, fma and argsort.

Values against known-answer vectors and against JAX (bit for bit), the
key-level helpers (seed, split, fold_in, random_bits) against JAX's threefry
implementation, error messages, derivatives (zero by declaration, or exact
for ``fma``) and batching: every primitive through ``vmap`` with random batch
axes against a loop, nested, under ``jit``, with ``out_axes``.
"""

from __future__ import annotations

import zlib
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.extend.random import threefry2x32_p as jax_threefry2x32_p

import fgrad
import fgrad.numpy as fnp
from fgrad import lax
from batch_util import batch_args, check_vmap, random_in_axes
from conftest import enable_x64
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.primitives import random as prng

U32 = np.uint32


def rng_for(*names: Any) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(repr(names).encode()))


def words(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.integers(0, 2**32, shape, dtype=U32)


def assert_same(got: Any, want: Any) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.dtype, want.dtype,
                                                                 got.shape, want.shape)
    np.testing.assert_array_equal(got, want)


# --- threefry2x32 --------------------------------------------------------------------------

# Known-answer vectors of Threefry-2x32 with 20 rounds (Random123's kat_vectors, also in
# JAX's tests): (key words, counter words) -> output words.
KNOWN_ANSWERS = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,count,expected", KNOWN_ANSWERS)
def test_threefry_known_answers(key: Any, count: Any, expected: Any) -> None:
    y1, y2 = prng.threefry2x32(*(U32(v) for v in (*key, *count)))
    assert (int(y1), int(y2)) == expected
    assert y1.dtype == np.uint32 and y1.shape == ()


@pytest.mark.parametrize("shape", [(), (1,), (5,), (3, 4), (0, 2), (2, 1, 3)])
def test_threefry_matches_jax(shape: tuple[int, ...]) -> None:
    args = [words(rng_for("tf", shape, i), shape) for i in range(4)]
    got = prng.threefry2x32(*args)
    want = jax_threefry2x32_p.bind(*args)
    for g, w in zip(got, want):
        assert_same(g, w)
    jitted = fgrad.jit(lambda *a: prng.threefry2x32(*a))(*args)
    for g, j in zip(got, jitted):
        assert_same(j, g)


def test_threefry_errors() -> None:
    k = np.zeros(3, U32)
    with pytest.raises(FgradTypeError,
                       match=r"threefry2x32: .*uint32 arrays of one shape.*i32\[3\]"):
        prng.threefry2x32(k, k, k, np.zeros(3, np.int32))
    with pytest.raises(FgradTypeError,
                       match=r"threefry2x32: .*u32\[3\], u32\[3\], u32\[3\], u32\[2\]"):
        prng.threefry2x32(k, k, k, np.zeros(2, U32))
    with pytest.raises(FgradTypeError, match="threefry2x32"):  # under jit too
        fgrad.jit(lambda a: prng.threefry2x32(a, a, a, a))(np.zeros(3, np.float32))


def test_threefry_is_nondifferentiable() -> None:
    prim = prng.threefry2x32_p
    assert prim.nondifferentiable and prim.multiple_results and prim.batch is not None

    def f(x: Any) -> Any:  # bits that depend on x's value, times x: derivative is the bits
        k = lax.convert_element_type(x, np.uint32)
        y1, _ = prng.threefry2x32(k, k, k, k)
        return fnp.sum(x * lax.convert_element_type(y1, np.float32))

    x = np.array([1.0, 2.0], np.float32)
    k = x.astype(U32)
    bits = np.asarray(jax_threefry2x32_p.bind(k, k, k, k)[0]).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(fgrad.grad(f)(x)), bits)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f))(x))


@pytest.mark.parametrize("case", range(8))
def test_threefry_batching_random_axes(case: int) -> None:
    rng = rng_for("tf-batch", case)
    shape = [(), (3,), (2, 3)][case % 3]
    axes = random_in_axes(rng, [len(shape)] * 4)
    batch = [1, 3][case % 2]
    args = batch_args([[words(rng, shape) for _ in range(4)] for _ in range(batch)], axes)
    check_vmap(lambda *a: list(prng.threefry2x32(*a)), args, axes, what="threefry2x32")
    check_vmap(lambda *a: list(prng.threefry2x32(*a)), args, axes, out_axes=-1,
               what="threefry2x32 out_axes=-1")
    vmapped = fgrad.vmap(lambda *a: list(prng.threefry2x32(*a)), in_axes=tuple(axes))
    for g, j in zip(vmapped(*args), fgrad.jit(vmapped)(*args)):
        assert_same(j, g)


def test_threefry_nested_vmap_matches_jax() -> None:
    rng = rng_for("tf-nested")
    # outer batch of 3 (k1's axis 1, k2's axis 0), inner batch of 4 (k1, x1 and x2's axis 0)
    k1, k2 = words(rng, (4, 3)), words(rng, (3,))
    x1, x2 = words(rng, (4,)), words(rng, (4,))
    f = fgrad.vmap(fgrad.vmap(lambda *a: list(prng.threefry2x32(*a)), in_axes=(0, None, 0, 0)),
                   in_axes=(1, 0, None, None))
    # JAX's own nested vmap of threefry2x32_p trips over these mixed shapes; broadcast by hand
    full = [k1.T, np.broadcast_to(k2[:, None], (3, 4)), np.broadcast_to(x1, (3, 4)),
            np.broadcast_to(x2, (3, 4))]
    for g, w in zip(f(k1, k2, x1, x2), jax_threefry2x32_p.bind(*map(np.ascontiguousarray, full))):
        assert_same(g, w)


# --- shifts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32])
def test_shifts_match_jax(dtype: Any) -> None:
    rng = rng_for("shift", dtype)
    info = np.iinfo(dtype)
    bits = info.bits
    x = rng.integers(int(info.min), int(info.max) + 1, 200).astype(dtype)
    low = -3 if info.min < 0 else 0
    y = rng.integers(low, bits + 4, 200).astype(dtype)  # includes amounts >= the width
    for name in ("shift_left", "shift_right_logical"):
        assert_same(getattr(prng, name)(x, y), getattr(jax.lax, name)(x, y))
        assert_same(fgrad.jit(getattr(prng, name))(x, y), getattr(jax.lax, name)(x, y))


def test_shifts_int64_match_jax(x64: None) -> None:
    rng = rng_for("shift64")
    for dtype in (np.int64, np.uint64):
        info = np.iinfo(dtype)
        x = rng.integers(int(info.min), int(info.max), 100, dtype=dtype, endpoint=True)
        y = rng.integers(0, 70, 100).astype(dtype)
        for name in ("shift_left", "shift_right_logical"):
            assert_same(getattr(prng, name)(x, y), getattr(jax.lax, name)(x, y))


def test_shift_errors_and_weak_types() -> None:
    with pytest.raises(FgradTypeError, match=r"shift_left: .*integer.*f32\[2\]"):
        prng.shift_left(np.ones(2, np.float32), np.ones(2, np.float32))
    with pytest.raises(FgradTypeError, match=r"shift_right_logical: operands must have equal"):
        prng.shift_right_logical(np.ones(2, np.int32), np.ones(3, np.int32))
    with pytest.raises(FgradTypeError, match=r"shift_left: operands must have equal dtypes"):
        prng.shift_left(np.ones(2, np.int32), np.ones(2, np.uint32))
    out = prng.shift_left(3, 2)  # two weak ints: a weak int, as lax.shift_left gives
    assert int(out) == 12 and out.weak_type
    assert prng.shift_left_p.nondifferentiable and prng.shift_right_logical_p.nondifferentiable


@pytest.mark.parametrize("case", range(6))
def test_shift_batching(case: int) -> None:
    rng = rng_for("shift-batch", case)
    axes = random_in_axes(rng, [2, 2])
    exs = [[words(rng, (2, 3)), rng.integers(0, 36, (2, 3)).astype(U32)] for _ in range(3)]
    args = batch_args(exs, axes)
    for f in (prng.shift_left, prng.shift_right_logical):
        check_vmap(f, args, axes, what=f.__name__)
        check_vmap(f, args, axes, out_axes=1, what=f.__name__)


# --- bitcast_convert_type -------------------------------------------------------------------

@pytest.mark.parametrize("src,dst", [(np.uint32, np.float32), (np.float32, np.uint32),
                                     (np.int32, np.float32), (np.int32, np.uint32),
                                     (np.uint16, np.float16), (np.int8, np.uint8)])
def test_bitcast_matches_jax(src: Any, dst: Any) -> None:
    rng = rng_for("bitcast", src, dst)
    raw = rng.integers(0, 256, (3, 4) + (np.dtype(src).itemsize,), dtype=np.uint8)
    x = raw.view(src).reshape(3, 4)
    if np.dtype(src).kind == "f":
        x = rng.standard_normal((3, 4)).astype(src)
    got, want = prng.bitcast_convert_type(x, dst), jax.lax.bitcast_convert_type(x, dst)
    np.testing.assert_array_equal(np.asarray(got).view(np.uint8), np.asarray(want).view(np.uint8))
    assert got.dtype == np.dtype(dst) and got.shape == (3, 4) and not got.weak_type
    # 0-d and non-contiguous operands keep their shape
    assert prng.bitcast_convert_type(U32(0x3F800000), np.float32).shape == ()
    assert float(prng.bitcast_convert_type(U32(0x3F800000), np.float32)) == 1.0
    t = np.arange(6, dtype=np.int32).reshape(2, 3).T
    np.testing.assert_array_equal(np.asarray(prng.bitcast_convert_type(t, np.float32)),
                                  t.astype(np.int32).view(np.float32))


def test_bitcast_errors_and_derivative() -> None:
    with pytest.raises(FgradTypeError, match=r"bitcast_convert_type: f32\[2\] -> float16 "
                                             r"changes the bit width \(32 -> 16\)"):
        prng.bitcast_convert_type(np.ones(2, np.float32), np.float16)
    with pytest.raises(FgradTypeError, match="bitcast_convert_type: bool"):
        prng.bitcast_convert_type(np.ones(2, bool), np.uint8)

    def f(x: Any) -> Any:
        return fnp.sum(prng.bitcast_convert_type(
            prng.bitcast_convert_type(x, np.int32), np.float32))

    x = np.array([1.5, -2.0], np.float32)
    jf = lambda x: jnp.sum(jax.lax.bitcast_convert_type(  # noqa: E731
        jax.lax.bitcast_convert_type(x, np.int32), np.float32))
    np.testing.assert_array_equal(np.asarray(fgrad.grad(f)(x)), np.asarray(jax.grad(jf)(x)))
    check_vmap(lambda v: prng.bitcast_convert_type(v, np.float32),
               [words(rng_for("bc"), (2, 3, 4))], [1], what="bitcast")


# --- fma --------------------------------------------------------------------------------

def test_fma_rounds_once_like_xla() -> None:
    rng = rng_for("fma")
    xs = [rng.standard_normal(20000).astype(np.float32) for _ in range(3)]
    fused = np.asarray(prng.fma(*xs))
    xla = np.asarray(jax.jit(lambda x, y, z: x * y + z)(*xs))  # XLA fuses this on CPU
    np.testing.assert_array_equal(fused, xla)
    exact = (xs[0].astype(np.float64) * xs[1] + xs[2]).astype(np.float32)
    np.testing.assert_array_equal(fused, exact)  # one rounding of the exact result
    assert not np.array_equal(xs[0] * xs[1] + xs[2], fused)  # two roundings differ somewhere
    # a product that cancels the addend exactly: only the fused form keeps the low bits
    a = np.float32(1 + 2**-12)
    c = -np.float32(a * a)
    assert float(prng.fma(a, a, c)) == 2.0**-24
    # a*a = 1 + 2**-11 + 2**-24 is a float32 tie; a tiny addend decides the side. Rounding
    # a*a + tiny in float64 first would land on the tie and round to even both times.
    xla_fma = jax.jit(lambda x, y, z: x * y + z)
    for tiny, want in ((2.0**-80, 1 + 2**-11 + 2**-23), (-(2.0**-80), 1 + 2**-11),
                       (0.0, 1 + 2**-11)):
        got = prng.fma(a, a, np.float32(tiny))
        assert float(got) == want, tiny
        assert float(xla_fma(a, a, np.float32(tiny))) == want, tiny
    # the same for bfloat16, where numpy's float64 -> bfloat16 cast itself rounds twice
    b = ml_dtypes.bfloat16(1 + 2**-4)  # b*b = 1 + 2**-3 + 2**-8: a bfloat16 tie
    for tiny, want in ((2.0**-40, 1 + 2**-3 + 2**-7), (-(2.0**-40), 1.125), (0.0, 1.125)):
        assert float(prng.fma(b, b, ml_dtypes.bfloat16(tiny))) == want, tiny


def test_fma_float64_matches_xla(x64: None) -> None:
    rng = rng_for("fma64")
    xs = [rng.standard_normal(20000) for _ in range(3)]
    np.testing.assert_array_equal(np.asarray(prng.fma(*xs)),
                                  np.asarray(jax.jit(lambda x, y, z: x * y + z)(*xs)))
    big = np.array([1e300, np.inf, np.nan]), np.array([1e10, 1.0, 1.0]), np.array([0.0, 1, 1])
    np.testing.assert_array_equal(np.asarray(prng.fma(*big)), [np.inf, np.inf, np.nan])


def test_fma_derivatives_match_jax(x64: None) -> None:
    rng = rng_for("fma-grad")
    x, y, z = (rng.standard_normal((2, 3)) for _ in range(3))

    def f(x: Any, y: Any, z: Any) -> Any:
        return fnp.sum(fnp.sin(prng.fma(x, y, z)) * x)

    def jf(x: Any, y: Any, z: Any) -> Any:
        return jnp.sum(jnp.sin(x * y + z) * x)

    for argnums in (0, 1, 2, (0, 1, 2)):
        got = fgrad.grad(f, argnums)(x, y, z)
        want = jax.jit(jax.grad(jf, argnums))(x, y, z)
        for g, w in zip(fgrad.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-12)
    hess = fgrad.hessian(lambda v: f(v, y, z))(x)
    want_hess = jax.jit(jax.hessian(lambda v: jf(v, y, z)))(x)
    np.testing.assert_allclose(np.asarray(hess), np.asarray(want_hess), rtol=1e-10, atol=1e-12)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f))(x, y, z))
    # vmap of grad, with y unbatched
    vg = fgrad.vmap(fgrad.grad(f), in_axes=(0, None, 1))(x, y[0], z.T)
    jvg = jax.jit(jax.vmap(jax.grad(jf), in_axes=(0, None, 1)))(x, y[0], z.T)
    np.testing.assert_allclose(np.asarray(vg), np.asarray(jvg), rtol=1e-12)


def test_fma_errors_and_batching() -> None:
    with pytest.raises(FgradTypeError, match=r"fma: .*floating-point.*i32\[2\]"):
        prng.fma(*[np.ones(2, np.int32)] * 3)
    with pytest.raises(FgradTypeError, match=r"fma: operands must have equal shapes"):
        prng.fma(np.ones(2, np.float32), np.ones(2, np.float32), np.ones(3, np.float32))
    rng = rng_for("fma-batch")
    for case in range(4):
        axes = random_in_axes(rng, [2, 2, 2])
        exs = [[rng.standard_normal((2, 3)).astype(np.float32) for _ in range(3)]
               for _ in range(3)]
        check_vmap(prng.fma, batch_args(exs, axes), axes, what="fma")


# --- argsort ------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,dimension", [((7,), 0), ((3, 5), 1), ((4, 3), 0), ((2, 0), 1),
                                             ((2, 3, 4), 1)])
def test_argsort_matches_jax(shape: tuple[int, ...], dimension: int) -> None:
    rng = rng_for("argsort", shape, dimension)
    for x in (rng.integers(0, 3, shape).astype(np.int32),  # ties: stable order
              rng.standard_normal(shape).astype(np.float32), words(rng, shape)):
        got = prng.argsort(x, dimension)
        assert_same(got, jnp.argsort(x, axis=dimension, stable=True).astype(np.int32))


def test_argsort_errors_and_batching() -> None:
    with pytest.raises(FgradTypeError, match=r"argsort: dimension 2 is not an axis of f32\[3,4\]"):
        prng.argsort(np.ones((3, 4), np.float32), 2)
    assert prng.argsort_p.nondifferentiable
    rng = rng_for("argsort-batch")
    for dimension in (0, 1):
        for bdim in (0, 1, 2):
            exs = [[rng.integers(0, 4, (3, 4)).astype(np.int32)] for _ in range(3)]
            check_vmap(lambda v: prng.argsort(v, dimension), batch_args(exs, [bdim]), [bdim],
                       what=f"argsort dim {dimension} bdim {bdim}")


# --- key-level helpers -----------------------------------------------------------------------

# a few shapes only: JAX compiles its side once per shape
@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.sampled_from([(), (0,), (1,), (5,), (2, 3)]))
def test_split_and_bits_match_jax(k1: int, k2: int, shape_t: tuple[int, ...]) -> None:
    key = np.array([k1, k2], U32)
    assert_same(prng.threefry_split(key, shape_t), jax.random.split(key, shape_t))
    assert_same(prng.random_bits(key, 32, shape_t), jax.random.bits(key, shape_t))
    for width, dtype in ((8, np.uint8), (16, np.uint16)):
        assert_same(prng.random_bits(key, width, shape_t), jax.random.bits(key, shape_t, dtype))


def test_random_bits_64_and_errors() -> None:
    key = np.array([1, 2], U32)
    with pytest.raises(ValueError, match="random_bits: 64-bit values need"):
        prng.random_bits(key, 64, (2,))
    with pytest.raises(ValueError, match="random_bits: bit_width must be 8, 16, 32 or 64"):
        prng.random_bits(key, 12, (2,))
    with enable_x64():
        assert_same(prng.random_bits(key, 64, (2, 3)), jax.random.bits(key, (2, 3), np.uint64))


def test_seed_and_fold_in_helpers_match_jax() -> None:
    for seed in (np.int32(-5), np.uint32(4000000000), np.int8(-3), np.uint8(200)):
        assert_same(prng.threefry_seed(seed), jax.random.PRNGKey(seed))
    key = np.array([3, 4], U32)
    for data in (0, 7, 2**32 - 1):
        assert_same(prng.threefry_fold_in(key, U32(data)), jax.random.fold_in(key, data))
