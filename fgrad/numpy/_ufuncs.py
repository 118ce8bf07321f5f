"""Elementwise functions with numpy semantics: promotion, broadcasting, Python scalars.

Each is a thin wrapper: promote and broadcast the arguments (``_util``), then
call the strict primitive. Functions of floats (``sin``, ``log``, ``/`` ...)
first move integer arguments to the default float dtype, as numpy and JAX do.
"""

from __future__ import annotations

from typing import Any, Callable

from fgrad.primitives import elementwise as lax
from fgrad.numpy._util import promote_and_broadcast, promote_to_inexact, promote_dtypes


def _unary_float(name: str, prim_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def fn(x: Any) -> Any:
        (x,) = promote_to_inexact(x, op=name)
        return prim_fn(x)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (integer inputs are promoted to float)."
    return fn


def _unary_same(name: str, prim_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def fn(x: Any) -> Any:
        (x,) = promote_dtypes(x, op=name)
        return prim_fn(x)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}``; keeps the input dtype."
    return fn


def _binary(name: str, prim_fn: Callable[[Any, Any], Any],
            inexact: bool = False) -> Callable[[Any, Any], Any]:
    def fn(x: Any, y: Any) -> Any:
        x, y = promote_and_broadcast(x, y, op=name, inexact=inexact)
        return prim_fn(x, y)
    fn.__name__ = name
    fn.__doc__ = f"Elementwise ``{name}`` with numpy broadcasting and JAX type promotion."
    return fn


sin = _unary_float("sin", lax.sin)
cos = _unary_float("cos", lax.cos)
tanh = _unary_float("tanh", lax.tanh)
exp = _unary_float("exp", lax.exp)
log = _unary_float("log", lax.log)
sqrt = _unary_float("sqrt", lax.sqrt)
negative = _unary_same("negative", lax.neg)
add = _binary("add", lax.add)
subtract = _binary("subtract", lax.sub)
multiply = _binary("multiply", lax.mul)
true_divide = divide = _binary("divide", lax.div, inexact=True)
maximum = _binary("maximum", lax.max)
minimum = _binary("minimum", lax.min)
equal = _binary("equal", lax.eq)
not_equal = _binary("not_equal", lax.ne)
less = _binary("less", lax.lt)
less_equal = _binary("less_equal", lax.le)
greater = _binary("greater", lax.gt)
greater_equal = _binary("greater_equal", lax.ge)


def power(x: Any, y: Any) -> Any:
    """``x ** y``; a static Python integer exponent uses ``integer_pow`` (exact, any sign of x)."""
    if isinstance(y, int) and not isinstance(y, bool):
        (x,) = promote_dtypes(x, op="power")
        return lax.integer_pow(x, y)
    x, y = promote_and_broadcast(x, y, op="power", inexact=True)
    return lax.pow(x, y)


__all__ = ["sin", "cos", "tanh", "exp", "log", "sqrt", "negative", "add", "subtract",
           "multiply", "true_divide", "divide", "maximum", "minimum", "equal", "not_equal",
           "less", "less_equal", "greater", "greater_equal", "power"]
