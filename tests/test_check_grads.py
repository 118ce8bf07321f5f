"""Tests of ``fgrad.test_util``: the checker must pass correct derivatives and catch wrong ones.

A checker that never fails is worse than none, so most tests here feed it a
``custom_jvp`` function whose derivative is deliberately wrong (at first or
only at second order) and assert that ``check_grads`` raises, in forward and
reverse mode, with a message that names the order and the mode.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad import lax
from fgrad.test_util import (
    GRADIENT_TOLERANCE, check_close, check_grads, check_jvp, check_vjp, numerical_jvp)

X = np.array([[0.3, -1.2, 0.7], [1.1, 0.25, -0.6]])


def _with_jvp(fun, jvp_rule):
    """``fun`` as a custom_jvp function whose tangent is ``jvp_rule(x, t)``."""
    f = fgrad.custom_jvp(fun)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), jvp_rule(x, t)

    return f


# sin with derivative 2 cos: wrong at first order.
wrong_first = _with_jvp(lax.sin, lambda x, t: lax.mul(t, lax.mul(lax.full_like(x, 2.0),
                                                                  lax.cos(x))))
# sin with derivative cos(x) computed as the custom_jvp "cos_bad", whose own derivative is
# wrong (+sin instead of -sin): correct at first order, wrong at second.
cos_bad = _with_jvp(lax.cos, lambda x, t: lax.mul(t, lax.sin(x)))
wrong_second = _with_jvp(lax.sin, lambda x, t: lax.mul(t, cos_bad(x)))


# --- correct functions pass ------------------------------------------------------------------

@pytest.mark.parametrize("order", [1, 2, 3])
@pytest.mark.parametrize("modes", [("fwd",), ("rev",), ("fwd", "rev"), ("lin",)])
def test_passes_on_correct_functions(x64, order, modes):
    x = X.copy()
    check_grads(lambda x: fnp.sin(x) * fnp.exp(x), (x,), order=order, modes=modes)
    check_grads(lambda x, y: (x * y, fnp.tanh(x)), (x, x + 1.0), order=order, modes=modes)


def test_passes_on_pytrees_and_scalars(x64):
    def f(params, scale):
        return {"out": fnp.sin(params["w"]) * scale, "aux": [params["b"] ** 2]}

    params = {"w": X.copy(), "b": np.array([0.5, -1.5])}
    check_grads(f, (params, 3.0), order=2)


def test_passes_in_float32_with_default_tolerances():
    x = X.astype(np.float32)
    check_grads(lambda x: fnp.tanh(x) * 2.0, (x,), order=2)


def test_integer_arguments_and_outputs_are_held_fixed(x64):
    # An integer argument gets a zero direction; an integer output a zero tangent.
    def f(x, n):
        return lax.mul(x, lax.convert_element_type(n, x.dtype)), lax.convert_element_type(
            lax.floor(x), np.int32)

    check_grads(f, (X.copy(), np.array([[1, 2, 3], [4, 5, 6]], np.int32)), order=2)


def test_passes_on_the_correct_custom_jvp(x64):
    right = _with_jvp(lax.sin, lambda x, t: lax.mul(t, lax.cos(x)))
    check_grads(right, (X.copy(),), order=2)


# --- wrong derivatives fail ------------------------------------------------------------------

@pytest.mark.parametrize("mode,name", [("fwd", "JVP"), ("rev", "VJP"), ("lin", "linearized")])
def test_fails_on_a_wrong_first_derivative(x64, mode, name):
    with pytest.raises(AssertionError, match=rf"order 1, mode '{mode}' \({name}"):
        check_grads(wrong_first, (X.copy(),), order=1, modes=(mode,))


@pytest.mark.parametrize("mode", ["fwd", "rev"])
def test_fails_on_a_wrong_first_derivative_at_order_2(x64, mode):
    with pytest.raises(AssertionError, match=r"order 1"):
        check_grads(wrong_first, (X.copy(),), order=2, modes=(mode,))


@pytest.mark.parametrize("mode,path", [("fwd", "JVP of JVP"), ("rev", "VJP of VJP")])
def test_fails_on_a_wrong_second_derivative(x64, mode, path):
    check_grads(wrong_second, (X.copy(),), order=1, modes=(mode,))  # first order is right
    with pytest.raises(AssertionError, match=rf"order 2, mode '{mode}' \({path}\)"):
        check_grads(wrong_second, (X.copy(),), order=2, modes=(mode,))


def test_failure_message_reports_errors(x64):
    with pytest.raises(AssertionError) as info:
        check_grads(wrong_first, (X.copy(),), order=1, modes=("fwd",))
    message = str(info.value)
    assert "max abs error" in message and "max rel error" in message
    assert "finite differences" in message


def test_fails_on_a_wrong_derivative_in_one_leaf_of_a_pytree(x64):
    def f(x, y):
        return {"good": fnp.sin(x), "bad": wrong_first(y)}

    for mode in ("fwd", "rev"):
        with pytest.raises(AssertionError):
            check_grads(f, (X.copy(), X.copy()), order=1, modes=(mode,))


def test_fails_on_a_wrong_primal_output(x64):
    # A jvp whose primal output is not f(x) is caught too.
    def bad_jvp(primals, tangents):
        p, t = fgrad.jvp(fnp.sin, primals, tangents)
        return fnp.cos(primals[0]), t

    with pytest.raises(AssertionError, match="primal output"):
        check_jvp(fnp.sin, bad_jvp, (X.copy(),))


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="unknown modes"):
        check_grads(fnp.sin, (X.copy(),), order=1, modes=("backward",))


# --- the pieces ---------------------------------------------------------------------------

def test_numerical_jvp_matches_the_derivative(x64):
    t = np.ones_like(X)
    got = numerical_jvp(fnp.sin, (X,), (t,))
    np.testing.assert_allclose(np.asarray(got), np.cos(X), rtol=1e-7)
    assert np.asarray(got).dtype == np.float64


def test_numerical_jvp_keeps_dtypes_and_zeroes_integer_outputs():
    x = X.astype(np.float32)
    got = numerical_jvp(lambda x: (fnp.sin(x), lax.convert_element_type(x, np.int32)),
                        (x,), (np.ones_like(x),))
    assert got[0].dtype == np.float32 and got[1].dtype == np.int32
    assert not got[1].any()


def test_check_vjp_and_check_jvp_directly(x64):
    check_jvp(fnp.tanh, functools.partial(fgrad.jvp, fnp.tanh), (X.copy(),))
    check_vjp(fnp.tanh, functools.partial(fgrad.vjp, fnp.tanh), (X.copy(),))
    with pytest.raises(AssertionError, match="cotangent projection"):
        check_vjp(wrong_first, functools.partial(fgrad.vjp, wrong_first), (X.copy(),))


def test_check_close():
    check_close({"a": np.float32(1.0)}, {"a": np.float32(1.0 + 1e-7)})
    with pytest.raises(AssertionError, match="max abs error"):
        check_close(np.float32(1.0), np.float32(1.1))
    with pytest.raises(AssertionError, match="tree structures differ"):
        check_close((1.0, 2.0), [1.0, 2.0])
    with pytest.raises(AssertionError, match="shapes differ"):
        check_close(np.zeros(3), np.zeros(4))
    with pytest.raises(AssertionError):  # integers compare exactly
        check_close(np.array([1, 2]), np.array([1, 3]))
    check_close(np.array([np.nan, np.inf]), np.array([np.nan, np.inf]))
    check_close(np.float32(1.0), np.float32(1.05), atol=0.1, rtol=0.0)


def test_gradient_tolerances_are_jax_defaults():
    assert GRADIENT_TOLERANCE[np.dtype(np.float32)] == 2e-3
    assert GRADIENT_TOLERANCE[np.dtype(np.float64)] == 1e-5
