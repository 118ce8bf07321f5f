"""Elementwise functions with numpy semantics: promotion, broadcasting, Python scalars.

Each function promotes its arguments with JAX's lattice (weakly typed Python
scalars yield to arrays: ``x_f16 * 2.0`` stays float16), broadcasts them with
numpy's rules (``_util``), then calls strict ``fgrad.lax`` primitives. Most are
one line, made by the factories ``_unary``/``_binary`` (``inexact=True`` first
moves integers to the default float, as ``sin`` and ``/`` need) and
``_compare``. Eager calls on fgrad Arrays and Python scalars take ``_util``'s
fast path. Composite functions mirror JAX's formulas, down to which constants
are weakly typed, so results carry JAX's weak types.

Conventions follow ``jax.numpy`` where it differs from numpy:

* integer ``//`` and ``%`` follow numpy's floor semantics, but division by
  zero does not raise: it gives XLA's values;
* ``power`` with a concrete integer exponent is ``integer_pow`` (exact, and
  differentiable at ``x = 0``); integer bases with negative integer powers raise;
* derivatives at kinks are those of JAX's formulas: ties of ``maximum`` and
  ``minimum`` (hence ``clip`` at a bound) split the gradient 0.5/0.5, and
  ``logaddexp`` and ``sinc`` carry JAX's custom JVP rules.

fgrad has no complex dtypes, so ``real``/``conj`` are the identity and ``imag`` is zero.
Read next: ``_logic.py`` (``where``, ``clip``, logical ops, shifts), ``_array.py`` (operators).
"""

from __future__ import annotations

import operator
from typing import Any, Callable

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import get_aval
from fgrad.core.trace import Tracer
from fgrad.numpy._util import (
    asarray_arg, broadcast_arrays, cast, eager_binary, eager_unary, promote_and_broadcast,
    promote_dtypes, promote_to_inexact, result_dtype)
from fgrad.primitives import elementwise as lax
from fgrad.primitives import shape as lax_shape
from fgrad.primitives.custom_derivatives import custom_jvp

# --- promotion helpers and factories ----------------------------------------------------------


def _promote(*args: Any, op: str) -> list[Any]:
    """JAX's ``promote_args``: common dtype (weak types respected), common shape."""
    return promote_and_broadcast(*args, op=op)


def _promote_inexact(*args: Any, op: str) -> list[Any]:
    """``promote_args_inexact``: as ``_promote``, then ints and bools become the default float."""
    return promote_and_broadcast(*args, op=op, inexact=True)


def _promote_numeric(*args: Any, op: str) -> list[Any]:
    """``promote_args_numeric``: as ``_promote``, then bools become the default int."""
    arrays = promote_and_broadcast(*args, op=op)
    if dtypes.is_bool(result_dtype(*arrays)[0]):
        return [cast(x, dtypes.default_int_dtype(), False) for x in arrays]
    return arrays


# Three kinds of constants, because JAX's weak-type results depend on which one its own
# implementation uses (a Python scalar, ``lax._const``, ``_constant_like``):
def _c(x: Any, value: Any) -> Any:
    """``value`` shaped and typed like ``x``, weak if ``x`` is (JAX: a Python scalar)."""
    return lax_shape.full_like(x, value)


def _strong(x: Any, value: Any) -> Any:
    """``value`` shaped like ``x``, of its dtype, strongly typed (JAX: ``_constant_like``)."""
    aval = get_aval(x)
    return lax_shape.full(aval.shape, value, aval.dtype)


def _const(x: Any, value: Any) -> Any:
    """Weak only when ``x`` is a weak 0-d value (JAX: ``lax._const``)."""
    aval = get_aval(x)
    return _c(x, value) if aval.weak_type and aval.ndim == 0 else _strong(x, value)


def _bools(x: Any, value: bool) -> Any:
    return lax_shape.full(get_aval(x).shape, value, np.bool_)


def _weak_bool(out: Any, weak: bool) -> Any:
    # JAX's comparisons of weakly typed operands give weakly typed bools; fgrad's comparison
    # primitives always give strong ones, so mark them here (a no-op once the primitives agree).
    return cast(out, np.dtype(np.bool_), True) if weak else out


def _to_bool(x: Any) -> Any:
    aval = get_aval(x)
    if dtypes.is_bool(aval.dtype):
        return x
    return _weak_bool(lax.ne(x, _const(x, 0)), aval.weak_type and aval.ndim == 0)


def _kind(x: Any) -> np.dtype:
    return get_aval(x).dtype


def _unary(name: str, prim_fn: Callable[[Any], Any], inexact: bool) -> Callable[[Any], Any]:
    prim = getattr(lax, f"{prim_fn.__name__}_p")  # the strict wrapper is named after it

    def fn(x: Any, /) -> Any:
        out = eager_unary(prim, inexact, x)
        if out is not None:
            return out
        (x,) = promote_to_inexact(x, op=name) if inexact else promote_dtypes(x, op=name)
        return prim_fn(x)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = (f"Elementwise ``{name}``" + (" (integer inputs become the default float)."
                                              if inexact else "; keeps the input dtype."))
    return fn


def _binary(name: str, prim_fn: Callable[[Any, Any], Any],
            inexact: bool = False) -> Callable[[Any, Any], Any]:
    prim = getattr(lax, f"{prim_fn.__name__}_p")

    def fn(x: Any, y: Any, /) -> Any:
        out = eager_binary(prim, inexact, x, y)
        if out is not None:
            return out
        return prim_fn(*promote_and_broadcast(x, y, op=name, inexact=inexact))

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` with numpy broadcasting and JAX type promotion."
    return fn


def _maybe_weak(x: Any) -> bool:
    # Cheap pre-check: a strongly typed float operand makes the promoted type strong (a weak
    # float with a strong int is still weak, so ints do not settle it).
    aval = getattr(x, "aval", None)
    dtype = x.dtype if aval is None and isinstance(x, np.ndarray) else getattr(aval, "dtype", None)
    return dtype is None or (aval is not None and aval.weak_type) or not dtypes.is_float(dtype)


def _compare(name: str, prim_fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    prim = getattr(lax, f"{prim_fn.__name__}_p")

    def fn(x: Any, y: Any, /) -> Any:
        weak = _maybe_weak(x) and _maybe_weak(y) and result_dtype(x, y)[1]
        out = eager_binary(prim, False, x, y)
        if out is None:
            out = prim_fn(*promote_and_broadcast(x, y, op=name))
        return _weak_bool(out, weak)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` (a bool array) with broadcasting and promotion."
    return fn


# fmt: off
# --- one-liners: floats in, floats out ------------------------------------------------------
exp     = _unary("exp",     lax.exp,    True)
exp2    = _unary("exp2",    lax.exp2,   True)
expm1   = _unary("expm1",   lax.expm1,  True)
log     = _unary("log",     lax.log,    True)
log1p   = _unary("log1p",   lax.log1p,  True)
sqrt    = _unary("sqrt",    lax.sqrt,   True)
cbrt    = _unary("cbrt",    lax.cbrt,   True)
sin     = _unary("sin",     lax.sin,    True)
cos     = _unary("cos",     lax.cos,    True)
tan     = _unary("tan",     lax.tan,    True)
arcsin  = asin  = _unary("arcsin",  lax.asin,  True)
arccos  = acos  = _unary("arccos",  lax.acos,  True)
arctan  = atan  = _unary("arctan",  lax.atan,  True)
sinh    = _unary("sinh",    lax.sinh,   True)
cosh    = _unary("cosh",    lax.cosh,   True)
tanh    = _unary("tanh",    lax.tanh,   True)
arcsinh = asinh = _unary("arcsinh", lax.asinh, True)
arccosh = acosh = _unary("arccosh", lax.acosh, True)
arctanh = atanh = _unary("arctanh", lax.atanh, True)
# --- keep the promoted dtype ----------------------------------------------------------------
negative = _unary("negative", lax.neg,  False)
sign     = _unary("sign",     lax.sign, False)
invert = bitwise_not = bitwise_invert = _unary("invert", lax.bitwise_not, False)
subtract      = _binary("subtract",      lax.sub)
maximum       = _binary("maximum",       lax.max)
minimum       = _binary("minimum",       lax.min)
equal         = _compare("equal",         lax.eq)
not_equal     = _compare("not_equal",     lax.ne)
less          = _compare("less",          lax.lt)
less_equal    = _compare("less_equal",    lax.le)
greater       = _compare("greater",       lax.gt)
greater_equal = _compare("greater_equal", lax.ge)
bitwise_and   = _binary("bitwise_and",   lax.bitwise_and)
bitwise_or    = _binary("bitwise_or",    lax.bitwise_or)
bitwise_xor   = _binary("bitwise_xor",   lax.bitwise_xor)
divide = true_divide = _binary("divide", lax.div, inexact=True)
arctan2 = atan2 = _binary("arctan2",     lax.atan2, inexact=True)
float_power   = _binary("float_power",   lax.pow, inexact=True)
nextafter     = _binary("nextafter",     lax.nextafter, inexact=True)
# fmt: on


def add(x: Any, y: Any, /) -> Any:
    """``x + y``; for booleans it is logical or, as in JAX."""
    out = eager_binary(lax.add_p, False, x, y)
    if out is not None:
        return out
    x, y = _promote(x, y, op="add")
    return lax.bitwise_or(x, y) if dtypes.is_bool(_kind(x)) else lax.add(x, y)


def multiply(x: Any, y: Any, /) -> Any:
    """``x * y``; for booleans it is logical and, as in JAX."""
    out = eager_binary(lax.mul_p, False, x, y)
    if out is not None:
        return out
    x, y = _promote(x, y, op="multiply")
    return lax.bitwise_and(x, y) if dtypes.is_bool(_kind(x)) else lax.mul(x, y)


def positive(x: Any, /) -> Any:
    """``+x`` (the array itself)."""
    return asarray_arg(x, "positive")


def square(x: Any, /) -> Any:
    """``x * x``; booleans become the default int."""
    (x,) = _promote_numeric(x, op="square")
    return lax.square(x)


def reciprocal(x: Any, /) -> Any:
    """``1 / x`` (integers become the default float)."""
    (x,) = promote_to_inexact(x, op="reciprocal")
    return lax.integer_pow(x, -1)


def absolute(x: Any, /) -> Any:
    """``|x|``; its derivative at 0 is 0. Unsigned and boolean inputs are returned as is."""
    out = eager_unary(lax.abs_p, False, x)
    if out is not None and not dtypes.is_unsigned(out.dtype):
        return out
    x = asarray_arg(x, "absolute")
    return x if dtypes.is_unsigned(_kind(x)) or dtypes.is_bool(_kind(x)) else lax.abs(x)


abs = absolute  # noqa: A001


def fabs(x: Any, /) -> Any:
    """``|x|`` as a float."""
    (x,) = promote_to_inexact(x, op="fabs")
    return lax.abs(x)


# --- integer-aware division ------------------------------------------------------------------


def _floor_divide_int(x: Any, y: Any) -> Any:
    # lax.div rounds toward zero; step down where the exact quotient was negative and inexact.
    q = lax.div(x, y)
    fix = lax.bitwise_and(lax.ne(lax.sign(x), lax.sign(y)), lax.ne(lax.rem(x, y), _c(x, 0)))
    return lax.select(fix, lax.sub(q, _c(q, 1)), q)


def _float_divmod(x: Any, y: Any) -> tuple[Any, Any]:
    # CPython's float_divmod: a remainder with the divisor's sign, a rounded quotient.
    mod = lax.rem(x, y)
    div = lax.div(lax.select(lax.eq(y, _c(y, 0)), x, lax.sub(x, mod)), y)
    fix = lax.bitwise_and(lax.ne(mod, _c(mod, 0)), lax.ne(lax.sign(y), lax.sign(mod)))
    mod = lax.select(fix, lax.add(mod, y), mod)
    div = lax.select(fix, lax.sub(div, _c(div, 1)), div)
    return lax.round(div, 1), mod


def floor_divide(x: Any, y: Any, /) -> Any:
    """``x // y``: the quotient rounded toward minus infinity (ints and floats)."""
    x, y = _promote_numeric(x, y, op="floor_divide")
    if dtypes.is_unsigned(_kind(x)):
        return lax.div(x, y)
    if dtypes.is_int(_kind(x)):
        return _floor_divide_int(x, y)
    return _float_divmod(x, y)[0]


def remainder(x: Any, y: Any, /) -> Any:
    """``x % y`` with the sign of the divisor, as in numpy and Python."""
    x, y = _promote_numeric(x, y, op="remainder")
    if dtypes.is_int(_kind(y)):
        y = lax.select(lax.eq(y, _c(y, 0)), _c(y, 1), y)
    zero = _c(x, 0)
    mod = lax.rem(x, y)
    fix = lax.bitwise_and(lax.ne(lax.lt(mod, zero), lax.lt(y, _c(y, 0))), lax.ne(mod, zero))
    return lax.select(fix, lax.add(mod, y), mod)


mod = remainder


def fmod(x: Any, y: Any, /) -> Any:
    """C's ``fmod``: the remainder with the sign of the dividend."""
    x, y = _promote(x, y, op="fmod")
    if dtypes.is_int(_kind(y)):  # (bools are not: True % False is XLA's x % 0 = x, as in JAX)
        y = lax.select(lax.eq(y, _c(y, 0)), _c(y, 1), y)
    return lax.rem(*_promote_numeric(x, y, op="fmod"))


def divmod(x: Any, y: Any, /) -> tuple[Any, Any]:  # noqa: A001
    """``(x // y, x % y)``."""
    x, y = _promote_numeric(x, y, op="divmod")
    if dtypes.is_int(_kind(x)):
        return floor_divide(x, y), remainder(x, y)
    return _float_divmod(x, y)


# --- power -------------------------------------------------------------------------------------


def _static_int(y: Any) -> int | None:
    """``y`` as a Python int if it is a concrete integer scalar (not a tracer), else None."""
    if isinstance(y, Tracer) or isinstance(y, (float, np.floating)):
        return None
    try:
        return operator.index(y)
    except TypeError:
        return None


def _pow_int_int(x: Any, y: Any) -> Any:
    # Binary exponentiation over the low 6 bits of y (more would overflow for any |x| > 1),
    # as JAX does; pow(0, y) is 0 for y != 0. y & 63 >> 1 is y & 63 // 2: no shift needed.
    acc = lax.select(lax.bitwise_and(lax.eq(x, _c(x, 0)), lax.ne(y, _c(y, 0))),
                     _strong(x, 0), _strong(x, 1))
    y = lax.bitwise_and(y, _c(y, 63))
    for _ in range(6):
        acc = lax.select(lax.ne(lax.bitwise_and(y, _c(y, 1)), _c(y, 0)), lax.mul(acc, x), acc)
        x = lax.mul(x, x)
        y = lax.div(y, _c(y, 2))
    return acc


def power(x: Any, y: Any, /) -> Any:
    """``x ** y``.

    A concrete integer exponent (``x ** 2``) uses ``integer_pow``: exact, any
    sign of ``x``, derivative ``2x`` even at 0; integer arrays cannot take
    negative ones (TypeError, as in JAX). Integer bases with integer exponent
    arrays use exact binary exponentiation (wrapping on overflow).

    >>> import fgrad.numpy as fnp
    >>> fnp.power(fnp.array([-2.0, 3.0]), 2)
    Array([4., 9.], dtype=float32)
    >>> fnp.power(2, fnp.array([3, 10]))
    Array([   8, 1024], dtype=int32)
    """
    k = _static_int(y)
    if k is not None:
        (x,) = _promote_numeric(x, op="power")
        return lax.integer_pow(x, k)
    x, y = asarray_arg(x, "power"), asarray_arg(y, "power")
    xn, yn = _promote_numeric(x, y, op="power")
    if not dtypes.is_float(_kind(xn)):
        return _pow_int_int(xn, yn)
    if dtypes.is_float(_kind(x)) and dtypes.is_int(_kind(y)):
        # A float base with integer exponents: JAX's rule takes d/dx (x ** 0) = 0 at x = 0.
        x, y = broadcast_arrays(x, cast(y, _kind(x), get_aval(y).weak_type), op="power")
        return lax.select(lax.eq(y, _c(y, 0)), _c(x, 1), lax.pow(x, y))
    return lax.pow(xn, yn)


pow = power  # noqa: A001


# --- rounding ----------------------------------------------------------------------------------


def _float_or_identity(name: str, prim_fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def fn(x: Any, /) -> Any:
        x = asarray_arg(x, name)
        return prim_fn(x) if dtypes.is_float(_kind(x)) else x
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}``; integer and boolean inputs are returned as they are."
    return fn


floor = _float_or_identity("floor", lax.floor)
ceil = _float_or_identity("ceil", lax.ceil)
trunc = fix = _float_or_identity(
    "trunc", lambda x: lax.select(lax.lt(x, _c(x, 0)), lax.ceil(x), lax.floor(x)))


def rint(x: Any, /) -> Any:
    """Round to the nearest integer, halves to even; integers become the default float."""
    x = asarray_arg(x, "rint")
    if not dtypes.is_float(_kind(x)):
        return cast(x, dtypes.default_float_dtype())
    return lax.round(x, 1)


def round(a: Any, decimals: int = 0, out: None = None) -> Any:  # noqa: A001
    """Round to ``decimals`` decimal places, halves to even (numpy's rule).

    Other than 0 decimals scale by ``10 ** decimals``, round and scale back
    (float16 in float32), as JAX does.
    """
    if out is not None:
        raise NotImplementedError("round: the 'out' argument is not supported")
    a = asarray_arg(a, "round")
    decimals = operator.index(decimals)
    dtype = _kind(a)
    if dtypes.is_bool(dtype):
        raise ValueError("round: boolean arrays cannot be rounded (as in JAX)")
    if not dtypes.is_float(dtype):
        if decimals < 0:
            raise NotImplementedError("round: integer rounding with decimals < 0 is not "
                                      "implemented")
        return a
    if decimals == 0:
        return lax.round(a, 1)
    if decimals > np.log10(float(dtypes.finfo(dtype).max)):
        return a
    x = lax.convert_element_type(a, np.float32) if dtype == np.float16 else a
    factor = _const(x, 10.0**decimals)
    x = lax.div(lax.round(lax.mul(x, factor), 1), factor)
    return lax.convert_element_type(x, dtype) if dtype == np.float16 else x


around = round


# --- logarithms, angles and friends -----------------------------------------------------


def log2(x: Any, /) -> Any:
    """Base-2 logarithm."""
    (x,) = promote_to_inexact(x, op="log2")
    return lax.div(lax.log(x), lax.log(_strong(x, 2)))


def log10(x: Any, /) -> Any:
    """Base-10 logarithm."""
    (x,) = promote_to_inexact(x, op="log10")
    return lax.mul(lax.log(x), _strong(x, 0.4342944819032518))  # 1 / log(10)


def deg2rad(x: Any, /) -> Any:
    """Degrees to radians."""
    (x,) = promote_to_inexact(x, op="deg2rad")
    return lax.mul(x, _const(x, np.pi / 180))


def rad2deg(x: Any, /) -> Any:
    """Radians to degrees."""
    (x,) = promote_to_inexact(x, op="rad2deg")
    return lax.mul(x, _const(x, 180 / np.pi))


radians, degrees = deg2rad, rad2deg


def _replace_posinf(x: Any) -> Any:
    return lax.select(lax.eq(x, _c(x, np.inf)), _c(x, 0), x)


def _logaddexp_fn(base_e: bool) -> Any:
    exp_, log1p_ = (lax.exp, lax.log1p) if base_e else (lax.exp2, lambda v: lax.mul(
        lax.log1p(v), _const(v, 1 / np.log(2))))

    def logaddexp_(x: Any, y: Any) -> Any:
        delta = lax.sub(x, y)
        # NaN delta: NaNs, or infinities of one sign (their sum is then the answer).
        return lax.select(lax.ne(delta, delta), lax.add(x, y),
                          lax.add(lax.max(x, y), log1p_(exp_(lax.neg(lax.abs(delta))))))

    f = custom_jvp(logaddexp_)

    @f.defjvp
    def _jvp(primals: Any, tangents: Any) -> Any:
        # JAX's rule: d/dx = exp(x - out), with +inf replaced by 0 on both sides.
        (x, y), (tx, ty) = primals, tangents
        out = f(x, y)
        dx = exp_(lax.sub(_replace_posinf(x), _replace_posinf(out)))
        dy = exp_(lax.sub(_replace_posinf(y), _replace_posinf(out)))
        return out, lax.add(lax.mul(tx, dx), lax.mul(ty, dy))

    return f


_logaddexp, _logaddexp2 = _logaddexp_fn(True), _logaddexp_fn(False)


def logaddexp(x: Any, y: Any, /) -> Any:
    """``log(exp(x) + exp(y))`` without overflow (JAX's derivative rule at infinities)."""
    return _logaddexp(*_promote_inexact(x, y, op="logaddexp"))


def logaddexp2(x: Any, y: Any, /) -> Any:
    """``log2(2**x + 2**y)`` without overflow."""
    return _logaddexp2(*_promote_inexact(x, y, op="logaddexp2"))


def hypot(x: Any, y: Any, /) -> Any:
    """``sqrt(x**2 + y**2)`` without overflow: ``big * sqrt(1 + (small / big)**2)``."""
    x, y = _promote_inexact(x, y, op="hypot")
    x, y = lax.abs(x), lax.abs(y)
    inf = lax.bitwise_or(lax.eq(x, _c(x, np.inf)), lax.eq(y, _c(y, np.inf)))
    big, small = lax.max(x, y), lax.min(x, y)
    is_zero = lax.eq(big, _c(big, 0))
    ratio = lax.div(small, lax.select(is_zero, _c(big, 1), big))
    out = lax.select(is_zero, big, lax.mul(big, lax.sqrt(lax.add(_c(big, 1), lax.square(ratio)))))
    return lax.select(inf, _const(out, np.inf), out)


def _sinc_maclaurin_fn(k: int, x: Any) -> Any:
    # The k-th derivative of sin(x)/x at 0, as a function of x (so it can be differentiated).
    zero = lax.mul(x, _c(x, 0))
    return zero if k % 2 else lax.add(zero, _const(x, (-1) ** (k // 2) / (k + 1)))


_sinc_maclaurin = custom_jvp(_sinc_maclaurin_fn, nondiff_argnums=(0,))


@_sinc_maclaurin.defjvp
def _sinc_maclaurin_jvp(k: int, primals: Any, tangents: Any) -> Any:
    (x,), (t,) = primals, tangents
    return _sinc_maclaurin(k, x), lax.mul(_sinc_maclaurin(k + 1, x), t)


def sinc(x: Any, /) -> Any:
    """``sin(pi x) / (pi x)``, 1 at 0, with exact derivatives of every order at 0."""
    (x,) = promote_to_inexact(x, op="sinc")
    is_zero = lax.eq(x, _c(x, 0))
    pi_x = lax.mul(_const(x, np.pi), x)
    safe = lax.select(is_zero, _const(x, 1), pi_x)
    return lax.select(is_zero, _sinc_maclaurin(0, pi_x), lax.div(lax.sin(safe), safe))


# --- predicates ---------------------------------------------------------------------------------


def isnan(x: Any, /) -> Any:
    """True where ``x`` is NaN (``x != x``)."""
    x = asarray_arg(x, "isnan")
    return _weak_bool(lax.ne(x, x), get_aval(x).weak_type)


def isfinite(x: Any, /) -> Any:
    """True where ``x`` is neither infinite nor NaN."""
    x = asarray_arg(x, "isfinite")
    if not dtypes.is_float(_kind(x)):
        return _bools(x, True)
    return _weak_bool(lax.is_finite(x), get_aval(x).weak_type)


def _is_inf(name: str, test: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def fn(x: Any, /) -> Any:
        x = asarray_arg(x, name)
        return test(x) if dtypes.is_float(_kind(x)) else _bools(x, False)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``{name}``: always False for integer and boolean inputs."
    return fn


isinf = _is_inf("isinf", lambda x: lax.eq(lax.abs(x), _c(x, np.inf)))
isposinf = _is_inf("isposinf", lambda x: lax.eq(x, _c(x, np.inf)))
isneginf = _is_inf("isneginf", lambda x: lax.eq(x, _c(x, -np.inf)))


def signbit(x: Any, /) -> Any:
    """True where the sign bit is set: ``x < 0``, and ``-0.0`` (found as ``1 / x < 0``).

    NOTE: the sign of a NaN cannot be read without a bitcast primitive, which
    fgrad lacks, so ``signbit(-nan)`` is False here (JAX and numpy say True).
    """
    x = asarray_arg(x, "signbit")
    dtype = _kind(x)
    if dtypes.is_bool(dtype):
        return _bools(x, False)
    negative_ = lax.lt(x, _c(x, 0))
    if dtypes.is_int(dtype):
        return negative_
    negative_zero = lax.bitwise_and(lax.eq(x, _c(x, 0)), lax.lt(lax.div(_c(x, 1), x), _c(x, 0)))
    return lax.bitwise_or(negative_, negative_zero)


def copysign(x: Any, y: Any, /) -> Any:
    """``|x|`` with the sign of ``y``."""
    x, y = _promote_inexact(x, y, op="copysign")
    return lax.select(signbit(y), lax.neg(lax.abs(x)), lax.abs(x))


def heaviside(x: Any, h0: Any, /) -> Any:
    """0 where ``x < 0``, 1 where ``x > 0``, ``h0`` where ``x == 0`` (NaN stays NaN)."""
    # JAX promotes dtypes but not shapes here, so its constants follow x's own shape.
    x, h0 = promote_to_inexact(x, h0, op="heaviside")
    weak_scalar = get_aval(x).weak_type and get_aval(x).ndim == 0
    x, h0 = broadcast_arrays(x, h0, op="heaviside")
    zero, one = (_c(x, v) if weak_scalar else _strong(x, v) for v in (0, 1))
    at_zero = lax.select(lax.ne(x, x), x, h0)
    return lax.select(lax.lt(x, zero), zero, lax.select(lax.gt(x, zero), one, at_zero))


def real(x: Any, /) -> Any:
    """The real part: ``x`` itself (fgrad has no complex dtypes)."""
    return asarray_arg(x, "real")


def imag(x: Any, /) -> Any:
    """The imaginary part: zeros like ``x`` (fgrad has no complex dtypes)."""
    return _c(asarray_arg(x, "imag"), 0)


def conjugate(x: Any, /) -> Any:
    """The complex conjugate: ``x`` itself (fgrad has no complex dtypes)."""
    return asarray_arg(x, "conjugate")


conj = conjugate


__all__ = [
    "exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sqrt", "cbrt", "sin", "cos", "tan",
    "arcsin", "arccos", "arctan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "arcsinh",
    "arccosh", "arctanh", "asinh", "acosh", "atanh", "negative", "positive", "sign", "square",
    "reciprocal", "absolute", "abs", "fabs", "add", "subtract", "multiply", "divide",
    "true_divide", "floor_divide", "remainder", "mod", "fmod", "divmod", "power", "pow",
    "float_power", "maximum", "minimum", "arctan2", "atan2", "hypot", "logaddexp", "logaddexp2",
    "deg2rad", "rad2deg", "radians", "degrees", "floor", "ceil", "trunc", "fix", "rint", "round",
    "around", "isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "copysign",
    "nextafter", "heaviside", "sinc", "real", "imag", "conj", "conjugate", "equal", "not_equal",
    "less", "less_equal", "greater", "greater_equal", "bitwise_and", "bitwise_or", "bitwise_xor",
    "bitwise_not", "bitwise_invert", "invert",
]
