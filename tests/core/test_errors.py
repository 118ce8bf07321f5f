"""User-facing errors: their types (JAX's names and base classes) and messages.

Shape errors must name the operation and both shapes; tracer errors must say
what to do instead (``lax.cond``, ``static_argnums``); a leaked tracer must be
reported as such, not as an obscure failure later. Where JAX *allows* Python
control flow (under ``grad``, whose primal values are concrete) fgrad must
allow it too and give the right derivative.
"""

from __future__ import annotations

import re
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.core.errors import FgradTypeError


def shape_pattern(*dims: int) -> str:
    """A regex for a shape written "(3, 4)" (numpy style) or "f32[3,4]" (fgrad's avals)."""
    return r"(\(" + r",\s*".join(map(str, dims)) + r",?\)|\[" + ",".join(map(str, dims)) + r"\])"


def raises_with(exc: Any, fun: Callable[[], Any], *patterns: str) -> str:
    """Call ``fun``; it must raise ``exc`` whose message matches every pattern."""
    with pytest.raises(exc) as info:
        fun()
    message = str(info.value)
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not found in message:\n{message}"
    return message


# --- shape errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("wrap", ["eager", "jit", "grad"])
def test_add_shape_mismatch_names_both_shapes(wrap: str) -> None:
    a, b = fnp.ones((3, 4)), fnp.ones((2, 5))
    fun = {"eager": lambda: a + b,
           "jit": lambda: fgrad.jit(lambda x, y: x + y)(a, b),
           "grad": lambda: fgrad.grad(lambda x: fnp.sum(x + b))(a)}[wrap]
    # jax.numpy raises TypeError, numpy ValueError; either is acceptable here.
    raises_with((TypeError, ValueError), fun, "add", shape_pattern(3, 4), shape_pattern(2, 5))


def test_binary_ufunc_shape_mismatch_messages() -> None:
    for op in (fnp.multiply, fnp.subtract, fnp.divide, fnp.maximum, fnp.power):
        raises_with((TypeError, ValueError), lambda: op(fnp.ones(3), fnp.ones(4)),
                    shape_pattern(3), shape_pattern(4))


def test_strict_lax_shape_and_dtype_errors() -> None:
    msg = raises_with(FgradTypeError, lambda: lax.add(fnp.ones(3), fnp.ones(4)),
                      "add", r"f32\[3\]", r"f32\[4\]")
    # the same message eagerly and under jit (raised by the shape rule)
    msg_jit = raises_with(FgradTypeError, lambda: fgrad.jit(lax.add)(fnp.ones(3), fnp.ones(4)))
    assert msg_jit.splitlines()[0] == msg.splitlines()[0]
    raises_with(FgradTypeError, lambda: lax.mul(fnp.ones(3), fnp.ones(3, dtype=np.int32)),
                "mul", "f32", "i32")
    assert issubclass(FgradTypeError, TypeError)


def test_matmul_shape_mismatch_names_both_shapes() -> None:
    a, b = fnp.ones((2, 3)), fnp.ones((4, 5))
    raises_with((TypeError, ValueError), lambda: a @ b, shape_pattern(2, 3), shape_pattern(4, 5))
    raises_with((TypeError, ValueError), lambda: fgrad.jit(lambda x, y: x @ y)(a, b),
                shape_pattern(2, 3), shape_pattern(4, 5))


# --- differentiation errors ---------------------------------------------------------------------

def test_grad_of_non_scalar_output() -> None:
    raises_with(TypeError, lambda: fgrad.grad(fnp.sin)(fnp.ones(3)),
                "Gradient only defined for scalar-output functions", r"\(3,\)")
    raises_with(TypeError, lambda: fgrad.grad(fnp.sin)(fnp.ones((2, 1))),
                "Gradient only defined for scalar-output functions", r"\(2, 1\)")


def test_grad_with_respect_to_int_input() -> None:
    # JAX: "grad requires real- or complex-valued inputs ... but got int32 ... allow_int"
    raises_with(TypeError, lambda: fgrad.grad(lambda x: x * 2.0)(3), "grad requires real",
                "int32", "allow_int")
    raises_with(TypeError, lambda: fgrad.grad(lambda x, y: x * y, argnums=1)(2.0, 3),
                "grad requires real", "int32")


def test_differentiation_rule_missing_is_reported() -> None:
    # custom_vjp's linear part has no JVP, like JAX: forward mode over it is an error.
    @fgrad.custom_vjp
    def f(x: Any) -> Any:
        return fnp.sin(x)

    f.defvjp(lambda x: (fnp.sin(x), x), lambda x, ct: (ct,))
    raises_with(TypeError, lambda: fgrad.jvp(f, (1.0,), (1.0,)), "forward-mode", "custom_vjp")


# --- tracer conversion errors ----------------------------------------------------------------

def branchy(x: Any) -> Any:
    if x > 0:
        return x * x
    return -x


def test_python_if_under_jit() -> None:
    raises_with(fgrad.TracerBoolConversionError, lambda: fgrad.jit(branchy)(2.0),
                "lax.cond", "static_argnums", r"bool\[\]")
    assert issubclass(fgrad.TracerBoolConversionError, fgrad.ConcretizationTypeError)
    assert issubclass(fgrad.ConcretizationTypeError, TypeError)
    raises_with(fgrad.TracerBoolConversionError, lambda: fgrad.make_jaxpr(branchy)(2.0),
                "lax.cond")
    raises_with(fgrad.TracerBoolConversionError, lambda: fgrad.grad(fgrad.jit(branchy))(2.0),
                "lax.cond")


def test_python_while_and_boolean_ops_under_jit() -> None:
    def loop(x: Any) -> Any:
        while x < 10.0:
            x = x * 2.0
        return x

    raises_with(fgrad.TracerBoolConversionError, lambda: fgrad.jit(loop)(1.0), "while_loop")
    raises_with(fgrad.TracerBoolConversionError,
                lambda: fgrad.jit(lambda x: (x > 0) and (x < 1))(0.5))
    raises_with(fgrad.TracerBoolConversionError, lambda: fgrad.jit(lambda x: not x)(0.5))


def test_int_of_tracer() -> None:
    raises_with(fgrad.TracerIntegerConversionError, lambda: fgrad.jit(lambda x: int(x))(3.0),
                "int", "static_argnums")
    raises_with(fgrad.TracerIntegerConversionError,
                lambda: fgrad.jit(lambda n: fnp.ones(3) * sum(range(n)))(3))
    raises_with(fgrad.TracerIntegerConversionError,
                lambda: fgrad.jit(lambda i: [1.0, 2.0, 3.0][i])(1))
    assert issubclass(fgrad.TracerIntegerConversionError, fgrad.ConcretizationTypeError)


def test_float_and_item_of_tracer_under_jit() -> None:
    raises_with(fgrad.ConcretizationTypeError, lambda: fgrad.jit(lambda x: float(x))(3.0))
    raises_with(fgrad.ConcretizationTypeError, lambda: fgrad.jit(lambda x: x.item())(3.0))


def test_numpy_conversion_of_tracer_under_jit() -> None:
    raises_with(fgrad.TracerArrayConversionError, lambda: fgrad.jit(np.asarray)(fnp.ones(3)),
                r"f32\[3\]", "fgrad.numpy")
    raises_with(fgrad.TracerArrayConversionError,
                lambda: fgrad.jit(lambda x: np.sin(x))(fnp.ones(3)))
    assert issubclass(fgrad.TracerArrayConversionError, TypeError)


def test_numpy_conversion_of_tracer_under_grad_raises() -> None:
    # JAX raises here too: converting a JVP tracer to numpy would silently drop its
    # derivative (np.sin(x) would have gradient 0 instead of cos(x)).
    with pytest.raises(jax.errors.TracerArrayConversionError):
        jax.grad(lambda x: np.sin(x))(1.0)
    raises_with(fgrad.TracerArrayConversionError, lambda: fgrad.grad(lambda x: np.sin(x))(1.0))
    raises_with(fgrad.TracerArrayConversionError,
                lambda: fgrad.grad(lambda x: fnp.sum(np.asarray(x) * x))(fnp.ones(2)))
    raises_with(fgrad.TracerArrayConversionError,
                lambda: fgrad.jvp(lambda x: np.asarray(x) * x, (1.0,), (1.0,)))


def test_float_of_tracer_under_grad_raises() -> None:
    # JAX: float() of a JVP tracer is a ConcretizationTypeError (it would drop the tangent),
    # while bool(), int() and .item() are allowed on concrete primals.
    with pytest.raises(jax.errors.ConcretizationTypeError):
        jax.grad(lambda x: float(x) * x)(1.0)
    raises_with(fgrad.ConcretizationTypeError, lambda: fgrad.grad(lambda x: float(x) * x)(1.0))


def test_tracer_is_unhashable() -> None:
    raises_with(TypeError, lambda: fgrad.jit(lambda x: {x: 1} and x)(1.0), "unhashable")


# --- Python control flow on concrete values under grad works (as in JAX) -----------------------

@pytest.mark.parametrize("x", [2.0, -3.0])
def test_python_if_under_grad_works(x: float) -> None:
    got = fgrad.grad(branchy)(x)
    want = jax.grad(branchy)(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want))
    assert float(got) == (2 * x if x > 0 else -1.0)


def test_python_control_flow_under_nested_grad_and_jvp() -> None:
    def f(x: Any) -> Any:
        n = 0
        while x * n < 3.0:        # bool() of a concrete JVP tracer
            n += 1
        for _ in range(int(x)):   # int() too
            x = fnp.sin(x) * 1.5
        return x * n

    for x in (1.2, 2.5):
        for trans in (lambda T: T.grad, lambda T: lambda f: T.grad(T.grad(f)),
                      lambda T: lambda f: lambda x: T.jvp(f, (x,), (1.0,))):
            got = trans(fgrad)(f)(x)
            want = trans(jax)(_jax_twin_of_f)(x)
            np.testing.assert_allclose(np.asarray(jax.tree_util.tree_leaves(got)),
                                       np.asarray(jax.tree_util.tree_leaves(want)), rtol=1e-5)


def _jax_twin_of_f(x: Any) -> Any:
    n = 0
    while x * n < 3.0:
        n += 1
    for _ in range(int(x)):
        x = jnp.sin(x) * 1.5
    return x * n


# --- leaked tracers ---------------------------------------------------------------------------

def test_leaked_tracer_from_jit() -> None:
    leaked: list[Any] = []

    @fgrad.jit
    def f(x: Any) -> Any:
        leaked.append(x * 2.0)
        return x

    f(1.0)
    (tracer,) = leaked
    for use in (lambda: tracer + 1.0, lambda: fnp.sin(tracer),
                lambda: fgrad.jit(lambda y: y + tracer)(1.0),
                lambda: fgrad.grad(lambda y: y * tracer)(1.0)):
        msg = raises_with(fgrad.UnexpectedTracerError, use, "tracer")
        assert " a a " not in msg, msg


def test_leaked_tracer_from_grad() -> None:
    leaked: list[Any] = []

    def f(x: Any) -> Any:
        leaked.append(fnp.sin(x))
        return x * 2.0

    fgrad.grad(f)(1.0)
    raises_with(fgrad.UnexpectedTracerError, lambda: leaked[0] * 3.0)
    raises_with(fgrad.UnexpectedTracerError, lambda: fgrad.jit(lambda y: y * leaked[0])(1.0))


def test_leaked_tracer_reported_even_inside_a_new_transform() -> None:
    leaked: list[Any] = []
    fgrad.make_jaxpr(lambda x: leaked.append(x) or x)(1.0)
    raises_with(fgrad.UnexpectedTracerError,
                lambda: fgrad.jvp(lambda y: y * leaked[0], (1.0,), (1.0,)))
