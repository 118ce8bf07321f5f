"""The CPU backend as a whole: random programs against eager execution, the debugging
stages, buffer checks, caching, errors.

The differential test builds random programs from a small grammar (unary
and binary math, broadcasting, transposes, reshapes, slices, reversals,
pads, reductions, matrix products, concatenation, where) over random
shapes, runs them eagerly (each primitive's numpy impl) and through
``jit(..., backend="cpu")`` (scheduled, fused, compiled with LLVM), and
compares. Fusion decisions (what gets materialized, which loads become
masked, which layouts reach gemm) change with every program, so this is
the suite that catches scheduler bugs that per-primitive records cannot.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.lowering.schedule import LoweringError

UNARY: list[Callable[[Any], Any]] = [fnp.tanh, fnp.exp, fnp.sin, fnp.abs, lambda x: x * x,
                                     lambda x: fnp.maximum(x, 0.0), lambda x: -x,
                                     lambda x: fnp.log1p(fnp.abs(x)), fnp.sqrt]
BINARY: list[Callable[[Any, Any], Any]] = [fnp.add, fnp.subtract, fnp.multiply, fnp.maximum,
                                           lambda a, b: fnp.where(a > b, a, b * 2.0)]


@st.composite
def programs(draw: Any) -> tuple[Callable[..., Any], list[np.ndarray]]:
    """A random function of 2 arrays and the arrays; ops are chosen to keep shapes valid."""
    m, n = draw(st.integers(1, 5)), draw(st.integers(1, 6))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    args = [rng.normal(size=(m, n)).astype(np.float32),
            rng.normal(size=(n,)).astype(np.float32)]
    ops = draw(st.lists(st.integers(0, 11), min_size=1, max_size=8))
    picks = draw(st.lists(st.integers(0, 100), min_size=len(ops) * 3, max_size=len(ops) * 3))

    def fn(x: Any, v: Any) -> Any:
        vals = [x, v + 0.5]  # a pool of values; every op appends one
        for k, op in enumerate(ops):
            p = picks[3 * k: 3 * k + 3]
            a = vals[p[0] % len(vals)]
            b = vals[p[1] % len(vals)]
            if op == 0:
                out = UNARY[p[2] % len(UNARY)](a)
            elif op == 1:
                out = BINARY[p[2] % len(BINARY)](a, b) if a.shape == b.shape or \
                    a.ndim != b.ndim else BINARY[p[2] % len(BINARY)](a, a)
            elif op == 2:
                out = a.T
            elif op == 3:
                out = a.reshape(-1)
            elif op == 4:
                out = a[..., ::-1] if p[2] % 2 else a[..., 1:]
            elif op == 5:
                out = fnp.sum(a, axis=-1) if a.ndim else a
            elif op == 6:
                out = fnp.max(a, axis=0) if a.ndim else a
            elif op == 7 and a.ndim == 2:
                out = a @ a.T if p[2] % 2 else a.T @ a
            elif op == 8:
                out = lax.pad(a, 0.0, [(1, p[2] % 2, p[2] % 3 % 2)] * a.ndim)
            elif op == 9:
                out = fnp.concatenate([a, a * 2.0], axis=-1) if a.ndim else a
            elif op == 10 and a.ndim == 2:
                out = fnp.exp(a - fnp.max(a, axis=1, keepdims=True)) / fnp.sum(
                    fnp.exp(a - fnp.max(a, axis=1, keepdims=True)), axis=1, keepdims=True)
            else:
                out = a[None] if a.ndim < 3 else a
            vals.append(out)
        return vals[-1], vals[len(vals) // 2]

    return fn, args


@settings(max_examples=60, deadline=None)
@given(programs())
def test_random_programs_match_eager(case: tuple[Callable[..., Any], list[np.ndarray]]) -> None:
    fn, args = case
    want = fn(*args)
    got = fgrad.jit(fn, backend="cpu")(*args)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=2e-5, atol=2e-5,
                                   equal_nan=True)


@settings(max_examples=25, deadline=None)
@given(programs())
def test_random_program_gradients_match_eager(case: tuple[Callable[..., Any], Any]) -> None:
    fn, args = case

    def loss(x: Any, v: Any) -> Any:
        a, b = fn(x, v)
        return fnp.sum(fnp.tanh(a)) + fnp.sum(b * b) * 0.1

    g = fgrad.grad(loss, argnums=(0, 1))
    for got, want in zip(fgrad.jit(g, backend="cpu")(*args), g(*args)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4,
                                   equal_nan=True)


def test_stages_are_printable() -> None:
    f = fgrad.jit(lambda x: fnp.sum(fnp.exp(x), axis=1), backend="cpu")
    lowered = f.lower(np.ones((3, 4), np.float32))
    assert "reduce_sum" in lowered.as_text("jaxpr")
    kernels = lowered.as_text("kernels")
    assert "acc += exp(in0[i0*4 + r0])" in kernels, kernels
    assert "define" in lowered.as_text("llvm") and "fgrad_entry" in lowered.as_text("llvm")
    optimized = lowered.as_text("llvm-opt")
    assert "define" in optimized and optimized != lowered.as_text("llvm")
    assert "ret" in lowered.as_text("asm")
    with pytest.raises(ValueError, match="unknown stage"):
        lowered.as_text("ptx")


def test_debug_env_prints_stages(capfd: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("FGRAD_DEBUG", "kernels")
    fgrad.jit(lambda x: x * 3.0 + 1.0, backend="cpu")(np.ones(5, np.float32))
    err = capfd.readouterr().err
    assert "--- fgrad: kernels ---" in err and "* 3.0" in err


def test_one_compile_per_signature() -> None:
    from fgrad.lowering import backends
    f = fgrad.jit(lambda x: fnp.sin(x) * 2.0, backend="cpu")
    before = len(backends._cpu_cache)
    f(np.ones(3, np.float32))
    f(np.zeros(3, np.float32))
    assert len(backends._cpu_cache) == before + 1
    f(np.ones(4, np.float32))
    assert len(backends._cpu_cache) == before + 2


def test_dropping_a_jitted_function_frees_its_programs() -> None:
    import gc

    from fgrad.lowering import backends
    from fgrad.lowering.cpu_llvm.compile import _engine
    engine = _engine()[1]
    gc.collect()
    programs, modules = len(backends._cpu_cache), len(engine._modules)
    f = fgrad.jit(lambda x: fnp.cos(x) + 2.0, backend="cpu")
    np.testing.assert_allclose(np.asarray(f(np.ones(3, np.float32))), np.cos(1.0) + 2.0,
                               rtol=1e-6)
    assert len(backends._cpu_cache) == programs + 1
    assert len(engine._modules) == modules + 1  # the program's main module (the cheap one
    # is added as machine code: compile.py)
    del f
    gc.collect()
    assert len(backends._cpu_cache) == programs and len(engine._modules) == modules
    g = fgrad.jit(lambda x: fnp.cos(x) + 3.0, backend="cpu")  # compiling goes on as before
    np.testing.assert_allclose(np.asarray(g(np.ones(3, np.float32))), np.cos(1.0) + 3.0,
                               rtol=1e-6)


def test_arguments_are_checked_before_native_code() -> None:
    from fgrad.lowering.cpu_llvm.runtime import CpuExecutable
    from fgrad.lowering.schedule import schedule
    closed = fgrad.make_jaxpr(lambda x: x + 1.0)(np.ones((2, 3), np.float32))
    exe = CpuExecutable(schedule(closed))
    with pytest.raises(TypeError, match=r"must be float32\[2, 3\], got float64\[2, 3\]"):
        exe([np.ones((2, 3))])
    with pytest.raises(TypeError, match=r"must be float32\[2, 3\], got float32\[3, 2\]"):
        exe([np.ones((3, 2), np.float32)])
    # a non-contiguous argument is copied, not read with the wrong strides
    x = np.arange(12, dtype=np.float32).reshape(3, 4)[:2, :3]
    np.testing.assert_array_equal(exe([x])[0], x + 1)


def test_host_calls_match_eager_and_raise_at_the_call(monkeypatch: Any) -> None:
    a = np.array([[1.0, 2.0], [2.0, 1.0]], np.float32)  # not positive definite: NaN factor
    got = np.asarray(fgrad.jit(fnp.linalg.cholesky, backend="cpu")(a))
    np.testing.assert_array_equal(got, np.asarray(fnp.linalg.cholesky(a)))
    # an exception inside the Python side of a host call cannot unwind native frames: it
    # is stored and raised when the native call returns, never swallowed
    from fgrad.lowering import host_calls

    def broken(call: Any, arrays: Any) -> Any:
        raise RuntimeError("lapack exploded")

    monkeypatch.setattr(host_calls, "run_impl", broken)
    b = np.eye(3, dtype=np.float32) * 2.0
    with pytest.raises(RuntimeError, match="lapack exploded"):
        fgrad.jit(lambda x: fnp.linalg.cholesky(x) + 1.0, backend="cpu")(b)


def test_missing_lowering_is_a_clear_error() -> None:
    from fgrad.core.primitive import all_primitives
    prim = all_primitives()["sin"]
    saved, prim.lower = prim.lower, None
    try:
        with pytest.raises(LoweringError, match="no lowering for primitive 'sin'"):
            fgrad.jit(fnp.sin, backend="cpu")(np.ones(2, np.float32))
    finally:
        prim.lower = saved


def test_integer_and_bool_programs() -> None:
    x = np.array([[-7, 3, 0], [5, -1, 9]], np.int32)
    f = lambda x: (x // 2 + x % 3, x > 0, fnp.argmax(x, axis=1), fnp.cumsum(x, axis=0))  # noqa
    for got, want in zip(fgrad.jit(f, backend="cpu")(x), f(x)):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize("name", ["exp", "tanh"])
def test_vectorized_float32_transcendentals_are_accurate(name: str) -> None:
    """exp/tanh are inline polynomials on the CPU (mathlib.py): within 4 ulps of numpy,
    with numpy's values at 0, -0, ±inf, NaN, overflow and in the subnormal range."""
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 88.7, 89.0, -87.4, -100.0,
                        -103.9, -104.0, -120.0, 1e-30, -1e-30, 0.6249, 0.6251, 9.5], np.float32)
    x = np.concatenate([np.linspace(-110, 90, 100_001, dtype=np.float32), special])
    got = np.asarray(fgrad.jit(getattr(fnp, name), backend="cpu")(x))
    with np.errstate(over="ignore"):
        want = getattr(np, name)(x)
    finite = np.isfinite(want) & (want != 0)
    ulps = np.abs(got[finite] - want[finite]) / np.spacing(np.abs(want[finite]))
    assert ulps.max() <= 4, (name, x[finite][ulps.argmax()])
    np.testing.assert_array_equal(got[~finite], want[~finite])
    assert np.array_equal(np.signbit(got), np.signbit(want) | np.isnan(want) & np.signbit(got))
