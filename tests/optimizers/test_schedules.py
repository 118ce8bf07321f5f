"""Tests for ``fgrad.optimizers`` schedules against JAX's and optax's.

JAX's five schedules and ``make_schedule`` are compared with
``jax.example_libraries.optimizers`` at steps 0..199 given as Python ints (result
types too: some return Python floats), as int32 arrays (values, dtypes, weak types),
as a traced step under ``fgrad.jit``, and in float64 with x64 (tight). The optax-style
additions (``cosine_decay``, ``warmup_cosine``, ``one_cycle``, ``join_schedules``)
are compared with optax the same way, including their edge configurations and
error messages. Hypothesis draws schedule parameters for both families.
"""

from __future__ import annotations

import doctest
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given
from hypothesis import strategies as st
from jax.example_libraries import optimizers as jopt

import fgrad
import fgrad.numpy as fnp
from fgrad import optimizers as fopt
from fgrad.optimizers import schedules as schedules_module

STEPS = list(range(200))

# name -> builder taking the module (fgrad's or JAX's) that provides the schedule
JAX_SCHEDULES: dict[str, Callable[[Any], Any]] = {
    "constant": lambda m: m.constant(0.05),
    "exponential_decay": lambda m: m.exponential_decay(0.05, 7, 0.5),
    "inverse_time_decay": lambda m: m.inverse_time_decay(0.05, 4, 0.7),
    "inverse_time_decay_staircase": lambda m: m.inverse_time_decay(0.05, 4, 0.7, True),
    "polynomial_decay": lambda m: m.polynomial_decay(0.05, 60, 0.001),
    "polynomial_decay_power2": lambda m: m.polynomial_decay(0.05, 60, 0.001, power=2.0),
    "polynomial_decay_power_half": lambda m: m.polynomial_decay(1.0, 33, 0.0, power=0.5),
    "piecewise_constant": lambda m: m.piecewise_constant([3, 80, 150], [0.05, 0.03, 0.01, 1e-3]),
    "piecewise_constant_float_boundaries": lambda m: m.piecewise_constant([2.5, 9.0], [1, 2, 3]),
}

# name -> builder of (fgrad schedule, optax schedule); built inside each test, so x64 applies
OPTAX_SCHEDULES: dict[str, Callable[[], tuple[Any, Any]]] = {
    "cosine_decay": lambda: (fopt.cosine_decay(0.1, 120),
                     optax.cosine_decay_schedule(0.1, 120)),
    "cosine_decay_alpha_exponent": lambda: (fopt.cosine_decay(2.0, 50, alpha=0.2, exponent=2.0),
                                    optax.cosine_decay_schedule(2.0, 50, alpha=0.2,
                                                                exponent=2.0)),
    "warmup_cosine": lambda: (fopt.warmup_cosine(0.0, 0.1, 20, 150),
                      optax.warmup_cosine_decay_schedule(0.0, 0.1, 20, 150)),
    "warmup_cosine_end_value": lambda: (fopt.warmup_cosine(0.01, 1.0, 7, 90, end_value=0.05,
                                                   exponent=1.5),
                                optax.warmup_cosine_decay_schedule(0.01, 1.0, 7, 90,
                                                                   end_value=0.05,
                                                                   exponent=1.5)),
    "warmup_cosine_no_warmup": lambda: (fopt.warmup_cosine(0.3, 0.5, 0, 40),
                                optax.warmup_cosine_decay_schedule(0.3, 0.5, 0, 40)),
    "warmup_cosine_zero_peak": lambda: (fopt.warmup_cosine(0.0, 0.0, 5, 40, end_value=0.1),
                                optax.warmup_cosine_decay_schedule(0.0, 0.0, 5, 40,
                                                                   end_value=0.1)),
    "one_cycle": lambda: (fopt.one_cycle(150, 0.1),
                  optax.cosine_onecycle_schedule(150, 0.1)),
    "one_cycle_custom": lambda: (fopt.one_cycle(77, 2.0, pct_start=0.45, div_factor=10.0,
                                        final_div_factor=100.0),
                         optax.cosine_onecycle_schedule(77, 2.0, pct_start=0.45,
                                                        div_factor=10.0,
                                                        final_div_factor=100.0)),
    "one_cycle_no_warmup": lambda: (fopt.one_cycle(3, 1.0, pct_start=0.1),
                            optax.cosine_onecycle_schedule(3, 1.0, pct_start=0.1)),
    "join_schedules": lambda: (
        fopt.join_schedules([fopt.constant(0.1), fopt.exponential_decay(0.1, 10, 0.5),
                             fopt.polynomial_decay(0.05, 30, 0.0)], [25, 60]),
        optax.join_schedules([jopt.constant(0.1), jopt.exponential_decay(0.1, 10, 0.5),
                              jopt.polynomial_decay(0.05, 30, 0.0)], [25, 60])),
}


def weak(x: Any) -> bool:
    return bool(jax.typeof(x).weak_type) if isinstance(x, jax.Array) else bool(x.weak_type)


def assert_value_matches(got: Any, want: Any, rtol: float, what: str,
                         atol: float | None = None) -> None:
    """Python scalars must stay Python scalars; arrays must agree in dtype and weak type."""
    if isinstance(want, jax.Array):
        assert isinstance(got, fgrad.Array), f"{what}: got {type(got).__name__}"
        assert (got.shape, got.dtype, weak(got)) == (want.shape, want.dtype, weak(want)), (
            f"{what}: got {got.dtype}{list(got.shape)} weak={weak(got)}, "
            f"want {want.dtype}{list(want.shape)} weak={weak(want)}")
    else:
        assert type(got) is type(want), f"{what}: got {type(got).__name__}"
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=rtol, atol=default_atol(rtol, atol), err_msg=what)


def default_atol(rtol: float, atol: float | None) -> float:
    # float32 values near 0 (e.g. 1 - i/T close to T) lose relative accuracy
    return max(rtol * 1e-2, 1e-16) if atol is None else atol


def check_all_steps(f_sched: Any, j_sched: Any, rtol: float, steps: list[int] = STEPS,
                    atol: float | None = None) -> None:
    """Python-int steps, int32-array steps, and a traced step under fgrad.jit.

    The reference for array steps is ``jax.vmap`` of JAX's schedule: one call instead of
    one per step, and run op by op (XLA's fused kernels are no oracle: ``jax.jit`` gives
    NaN for ``polynomial_decay(power=0.5)`` at its last step, which eager JAX gives as 0).
    """
    atol = default_atol(rtol, atol)
    for i in steps[::10] + steps[-1:]:  # Python ints: JAX may return Python floats
        assert_value_matches(f_sched(i), j_sched(i), rtol, f"python step {i}", atol)
    step_dtype = jnp.int64 if fgrad.config.enable_x64 else jnp.int32
    want_all = np.asarray(jax.vmap(j_sched)(jnp.asarray(steps, step_dtype)), np.float64)
    want_aval = jax.eval_shape(j_sched, jnp.asarray(0, step_dtype))
    jit_aval = jax.eval_shape(j_sched, 0)  # a Python int step is weakly typed under jit
    want_type_probe = j_sched(jnp.asarray(0, step_dtype))
    jitted = fgrad.jit(f_sched)
    for i, want in zip(steps, want_all, strict=True):
        for got, aval, how in [(f_sched(fnp.asarray(i, step_dtype)), want_aval, "array"),
                               (jitted(i), jit_aval, "jit")]:
            if how == "array" and not isinstance(want_type_probe, jax.Array):  # constant
                assert type(got) is type(want_type_probe), f"step {i}: got {got!r}"
            else:
                assert isinstance(got, fgrad.Array), f"{how} step {i}: got {got!r}"
                assert (got.shape, got.dtype, weak(got)) == (
                    aval.shape, aval.dtype, aval.weak_type), f"{how} step {i}: got {got!r}"
            np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol,
                                       err_msg=f"{how} step {i}")


# --- JAX's schedules -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(JAX_SCHEDULES))
def test_jax_schedules_match(name: str) -> None:
    check_all_steps(JAX_SCHEDULES[name](fopt), JAX_SCHEDULES[name](jopt), rtol=1e-6)


@pytest.mark.parametrize("name", sorted(JAX_SCHEDULES))
def test_jax_schedules_match_x64(name: str, x64: None) -> None:
    check_all_steps(JAX_SCHEDULES[name](fopt), JAX_SCHEDULES[name](jopt), rtol=1e-13)


@given(step_size=st.floats(1e-4, 10.0), decay_steps=st.integers(1, 50),
       decay_rate=st.floats(0.05, 2.0), power=st.sampled_from([0.5, 1.0, 2.0, 3.0]),
       staircase=st.booleans())
def test_jax_schedules_random_parameters(step_size: float, decay_steps: int,
                                         decay_rate: float, power: float,
                                         staircase: bool) -> None:
    steps = [0, 1, decay_steps - 1, decay_steps, decay_steps + 1, 3 * decay_steps, 517]
    for make in (lambda m: m.exponential_decay(step_size, decay_steps, decay_rate),
                 lambda m: m.inverse_time_decay(step_size, decay_steps, decay_rate, staircase),
                 lambda m: m.polynomial_decay(step_size, decay_steps, step_size / 7, power)):
        f_sched, j_sched = make(fopt), make(jopt)
        for i in steps:
            assert_value_matches(f_sched(i), j_sched(i), 1e-6, f"step {i}")
            assert_value_matches(f_sched(fnp.asarray(i, np.int32)),
                                 j_sched(jnp.asarray(i, jnp.int32)), 1e-5, f"int32 step {i}")


def test_make_schedule() -> None:
    schedule = fopt.exponential_decay(0.1, 5, 0.5)
    assert fopt.make_schedule(schedule) is schedule
    assert fopt.make_schedule(0.25)(123) == 0.25
    zero_d = fnp.asarray(0.5)
    assert fopt.make_schedule(zero_d)(7) is zero_d
    assert fopt.make_schedule(np.float32(2.0))(0) == 2.0
    for bad in ([0.1, 0.2], np.ones(3), fnp.ones((2, 1))):
        with pytest.raises(TypeError) as got:
            fopt.make_schedule(bad)
        assert type(bad).__name__ in str(got.value)
    with pytest.raises(TypeError) as got:
        fopt.make_schedule(np.ones(2))
    with pytest.raises(TypeError) as want:
        jopt.make_schedule(np.ones(2))
    assert str(got.value) == str(want.value)


def test_piecewise_constant_errors_match_jax() -> None:
    cases = [([[1, 2]], [[1, 2, 3]]), (1, [1.0, 2.0]), ([1, 2], [1.0, 2.0]),
             ([1], [1.0, 2.0, 3.0])]
    for boundaries, values in cases:
        with pytest.raises(ValueError) as got:
            fopt.piecewise_constant(boundaries, values)
        with pytest.raises(ValueError) as want:
            jopt.piecewise_constant(boundaries, values)
        assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match="one shorter than values"):
        fopt.piecewise_constant([1, 2], [1.0, 2.0])


def test_piecewise_constant_boundary_is_exclusive() -> None:
    schedule = fopt.piecewise_constant([5, 10], [1.0, 2.0, 3.0])
    assert [float(schedule(i)) for i in (0, 5, 6, 10, 11)] == [1.0, 1.0, 2.0, 2.0, 3.0]


# --- optax-style additions -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OPTAX_SCHEDULES))
def test_optax_schedules_match(name: str) -> None:
    f_sched, o_sched = OPTAX_SCHEDULES[name]()
    check_all_steps(f_sched, o_sched, rtol=2e-6, atol=2e-7)


@pytest.mark.parametrize("name", ["cosine_decay_alpha_exponent", "warmup_cosine_end_value",
                                  "one_cycle_custom", "join_schedules"])
def test_optax_schedules_match_x64(name: str, x64: None) -> None:
    f_sched, o_sched = OPTAX_SCHEDULES[name]()
    assert f_sched(fnp.asarray(3, np.int64)).dtype == np.float64
    check_all_steps(f_sched, o_sched, rtol=1e-13)


@given(init_value=st.floats(1e-3, 5.0), decay_steps=st.integers(1, 100),
       alpha=st.floats(0.0, 0.9), warmup_steps=st.integers(0, 30),
       pct_start=st.floats(0.05, 0.95))
def test_optax_schedules_random_parameters(init_value: float, decay_steps: int, alpha: float,
                                           warmup_steps: int, pct_start: float) -> None:
    pairs = [
        (fopt.cosine_decay(init_value, decay_steps, alpha),
         optax.cosine_decay_schedule(init_value, decay_steps, alpha)),
        (fopt.warmup_cosine(0.0, init_value, warmup_steps, warmup_steps + decay_steps,
                            end_value=alpha * init_value),
         optax.warmup_cosine_decay_schedule(0.0, init_value, warmup_steps,
                                            warmup_steps + decay_steps,
                                            end_value=alpha * init_value)),
        (fopt.one_cycle(decay_steps, init_value, pct_start),
         optax.cosine_onecycle_schedule(decay_steps, init_value, pct_start)),
    ]
    steps = sorted({0, 1, warmup_steps, decay_steps // 2, decay_steps, decay_steps + 1,
                    warmup_steps + decay_steps, 1000})
    for f_sched, o_sched in pairs:
        for i in steps:
            want = o_sched(jnp.asarray(i, jnp.int32))
            got = f_sched(fnp.asarray(i, np.int32))
            np.testing.assert_allclose(np.asarray(got, np.float64),
                                       np.asarray(want, np.float64), rtol=1e-5, atol=1e-8)


def test_cosine_and_warmup_values_written_out() -> None:
    # The formulas themselves, independently of optax.
    schedule = fopt.cosine_decay(1.0, 100, alpha=0.1)
    for t in (0, 25, 50, 100, 250):
        tc = min(t, 100)
        want = 0.9 * 0.5 * (1 + np.cos(np.pi * tc / 100)) + 0.1
        np.testing.assert_allclose(float(schedule(t)), want, rtol=1e-6)
    warm = fopt.warmup_cosine(0.0, 2.0, warmup_steps=10, decay_steps=110, end_value=0.2)
    assert [round(float(warm(t)), 5) for t in (0, 5, 10)] == [0.0, 1.0, 2.0]
    np.testing.assert_allclose(float(warm(60)), 0.2 + (2.0 - 0.2) * 0.5, rtol=1e-6)
    np.testing.assert_allclose(float(warm(500)), 0.2, rtol=1e-6)
    cycle = fopt.one_cycle(100, 1.0)
    assert float(cycle(30)) == 1.0
    np.testing.assert_allclose(float(cycle(0)), 1.0 / 25.0, rtol=1e-5)
    np.testing.assert_allclose(float(cycle(100)), 1.0 / 25.0 / 1e4, rtol=1e-5)
    assert float(cycle(15)) > 0.5 > float(cycle(90))


def test_optax_schedule_errors() -> None:
    with pytest.raises(ValueError) as got:
        fopt.cosine_decay(0.1, 0)
    with pytest.raises(ValueError) as want:
        optax.cosine_decay_schedule(0.1, 0)
    assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match="positive decay_steps"):
        fopt.warmup_cosine(0.0, 1.0, 10, 10)
    with pytest.raises(ValueError) as got:
        fopt.one_cycle(0, 1.0)
    with pytest.raises(ValueError) as want:
        optax.cosine_onecycle_schedule(0, 1.0)
    assert str(got.value) == str(want.value)


def test_join_schedules_counts_from_each_boundary() -> None:
    joined = fopt.join_schedules([lambda t: 100.0 + t, lambda t: 200.0 + t,
                                  lambda t: 300.0 + t], [3, 5])
    got = [float(joined(t)) for t in range(8)]
    assert got == [100.0, 101.0, 102.0, 200.0, 201.0, 300.0, 301.0, 302.0]
    assert float(fopt.join_schedules([lambda t: 7.0 * t], [])(3)) == 21.0


def test_schedules_doctests() -> None:
    result = doctest.testmod(schedules_module)
    assert result.attempted > 5 and result.failed == 0
