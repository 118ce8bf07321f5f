"""Logic and selection: ``where``, ``clip``, ``fmax``/``fmin``, ``nan_to_num``, the logical
and shift operators, and whole-array comparisons (``isclose``, ``allclose``, ``array_equal``).

``where(c, x, y)`` is the one differentiable way to branch per element: it is
``select``, whose derivative flows to the chosen operand only (so the other
may be NaN or infinite there, as long as its *own* derivative is finite; the
classic trick is ``where(x > 0, f(where(x > 0, x, 1)), 0)``). ``clip`` is
``minimum(max, maximum(min, x))`` and so splits the gradient 0.5/0.5 at a
bound, as JAX does. ``allclose`` and ``array_equal`` return 0-d bool arrays.

fgrad has no shift primitives yet, so ``left_shift``/``right_shift`` are built
from wrapping integer arithmetic (a multiply or divide by ``2 ** y``), with
XLA's results for shifts by negative amounts or by the bit width or more.
"""

from __future__ import annotations

import builtins
from typing import Any, Callable

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import get_aval
from fgrad.core.errors import ConcretizationTypeError, concretization_message
from fgrad.core.trace import Tracer
from fgrad.numpy._ufuncs import (
    _c, _kind, _pow_int_int, _promote, _promote_inexact, _promote_numeric, _strong, _to_bool,
    equal, greater, isfinite, isnan, isneginf, isposinf, less, maximum, minimum)
from fgrad.numpy._util import asarray_arg, broadcast_arrays, cast, promote_dtypes
from fgrad.primitives import elementwise as lax
from fgrad.primitives import shape as lax_shape


# --- logical operators and shifts ----------------------------------------------------------


def _logical(name: str, prim_fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def fn(x: Any, y: Any, /) -> Any:
        return prim_fn(*map(_to_bool, _promote(x, y, op=name)))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"Elementwise ``{name}`` of the truth values (nonzero is True)."
    return fn


logical_and = _logical("logical_and", lax.bitwise_and)
logical_or = _logical("logical_or", lax.bitwise_or)
logical_xor = _logical("logical_xor", lax.bitwise_xor)


def logical_not(x: Any, /) -> Any:
    """Elementwise ``not`` of the truth value (nonzero is True)."""
    return lax.bitwise_not(_to_bool(asarray_arg(x, "logical_not")))


def left_shift(x: Any, y: Any, /) -> Any:
    """``x << y`` (0 for shifts of the bit width or more, as XLA)."""
    x, y = _promote_numeric(x, y, op="left_shift")
    bits = np.dtype(_kind(x)).itemsize * 8
    # Wrapping multiplication by 2**y is the shift; out-of-range shifts give 0.
    bad = lax.bitwise_or(lax.lt(y, _c(y, 0)), lax.ge(y, _c(y, bits)))
    y = lax.select(bad, _c(y, 0), y)
    out = lax.select(bad, _strong(x, 0), lax.mul(x, _pow_int_int(_c(x, 2), y)))
    return cast(out, _kind(x), get_aval(x).weak_type)  # weak in, weak out, as lax.shift_left


def right_shift(x: Any, y: Any, /) -> Any:
    """``x >> y``: arithmetic (sign-filling) for signed ints, logical for unsigned."""
    x, y = _promote_numeric(x, y, op="right_shift")
    bits = np.dtype(_kind(x)).itemsize * 8
    signed = not dtypes.is_unsigned(_kind(x))
    # Shifts by bits - 1 or more leave only the sign fill (and 2**(bits-1) overflows an int).
    limit = bits - 1 if signed else bits
    bad = lax.ge(y, _c(y, limit))
    if signed:
        bad = lax.bitwise_or(bad, lax.lt(y, _c(y, 0)))
    y = lax.select(bad, _c(y, 0), y)
    p = _pow_int_int(_c(x, 2), y)
    if not signed:
        return cast(lax.select(bad, _c(x, 0), lax.div(x, p)), _kind(x), get_aval(x).weak_type)
    # Negative x: shift ~x (= -x - 1 >= 0, no overflow) and flip back: floor semantics.
    negative_ = lax.lt(x, _c(x, 0))
    magnitude = lax.select(negative_, lax.bitwise_not(x), x)
    shifted = lax.select(bad, _c(x, 0), lax.div(magnitude, p))
    out = lax.select(negative_, lax.bitwise_not(shifted), shifted)
    return cast(out, _kind(x), get_aval(x).weak_type)


bitwise_left_shift, bitwise_right_shift = left_shift, right_shift


# --- where, clip and friends -------------------------------------------------------------


def _concrete_value(x: Any, what: str) -> np.ndarray:
    if isinstance(x, Tracer):
        value = x.to_concrete_value()
        if value is None:
            raise ConcretizationTypeError(concretization_message(
                what, x.aval.str_short(), "the result's shape would depend on the values; "
                "use the three-argument where(condition, x, y)"))
        return np.asarray(value)
    return np.asarray(x)


def where(condition: Any, x: Any = None, y: Any = None, /, *, size: int | None = None,
          fill_value: Any = None) -> Any:
    """``x`` where ``condition`` else ``y``, broadcast together (``jnp.where``).

    The derivative flows to whichever of ``x``/``y`` was chosen. With one argument
    it is ``nonzero(condition)``, which needs a concrete (not traced) condition.

    >>> import fgrad.numpy as fnp
    >>> x = fnp.array([-1.0, 2.0])
    >>> fnp.where(x > 0, x, 0.0)
    Array([0., 2.], dtype=float32)
    """
    if x is None and y is None:
        cond = _concrete_value(condition, "where(condition) (one-argument form, nonzero)")
        if cond.ndim == 0:
            raise ValueError("where: the one-argument form (nonzero) needs an array of at "
                             "least one dimension, got a 0-d condition")
        idx = np.nonzero(cond)
        if size is not None:
            fill = fill_value if isinstance(fill_value, tuple) else (
                (0 if fill_value is None else fill_value),) * cond.ndim
            idx = tuple(np.concatenate([i[:size], np.full(builtins.max(size - len(i), 0), f)])
                        for i, f in zip(idx, fill))
        return tuple(asarray_arg(i.astype(dtypes.default_int_dtype())) for i in idx)
    if x is None or y is None:
        raise ValueError("where: either both or neither of x and y must be given")
    if size is not None or fill_value is not None:
        raise ValueError("where: size and fill_value apply only to the one-argument form")
    condition = _to_bool(asarray_arg(condition, "where"))
    x, y = promote_dtypes(x, y, op="where")
    condition, x, y = broadcast_arrays(condition, x, y, op="where")
    return lax.select(condition, x, y)


def clip(a: Any, a_min: Any = None, a_max: Any = None, *, min: Any = None,  # noqa: A002
         max: Any = None) -> Any:  # noqa: A002
    """``a`` limited to ``[min, max]`` (either may be None): ``minimum(max, maximum(min, a))``.

    At a bound the derivative splits 0.5/0.5 between ``a`` and the bound, as in JAX.
    """
    if a_min is not None and min is not None or a_max is not None and max is not None:
        raise TypeError("clip: give each bound once, positionally (a_min, a_max) or as "
                        "min=/max= keywords")
    low = a_min if a_min is not None else min
    high = a_max if a_max is not None else max
    a = asarray_arg(a, "clip")
    if low is not None:
        a = maximum(low, a)
    if high is not None:
        a = minimum(high, a)
    return a


def fmax(x: Any, y: Any, /) -> Any:
    """The larger of ``x`` and ``y``, ignoring a NaN unless both are; ties go to ``y`` (JAX)."""
    return where(logical_or(greater(x, y), isnan(y)), x, y)


def fmin(x: Any, y: Any, /) -> Any:
    """The smaller of ``x`` and ``y``, ignoring a NaN unless both are; ties go to ``y`` (JAX)."""
    return where(logical_or(less(x, y), isnan(y)), x, y)


def isclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> Any:
    """``|a - b| <= atol + rtol * |b|`` elementwise (infinities equal only themselves)."""
    a, b = _promote_inexact(a, b, op="isclose")
    dtype = get_aval(a).dtype
    rtol, atol = (broadcast_arrays(cast(asarray_arg(t, "isclose"), dtype), a, op="isclose")[0]
                  for t in (rtol, atol))
    both_nan = lax.bitwise_and(isnan(a), isnan(b))
    in_range = lax.le(lax.abs(lax.sub(a, b)), lax.add(atol, lax.mul(rtol, lax.abs(b))))
    out = lax.bitwise_or(lax.eq(a, b), lax.bitwise_and(isfinite(b), in_range))
    return lax.bitwise_or(out, both_nan) if equal_nan else out


def _all(x: Any) -> Any:
    import fgrad.numpy as fnp  # the reductions module, at call time
    return fnp.all(x)


def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08,
             equal_nan: bool = False) -> Any:
    """True (a 0-d bool array) if ``isclose`` holds everywhere."""
    return _all(isclose(a, b, rtol, atol, equal_nan))


def array_equal(a1: Any, a2: Any, equal_nan: bool = False) -> Any:
    """True (a 0-d bool array) if the arrays have one shape and equal elements."""
    a1, a2 = asarray_arg(a1, "array_equal"), asarray_arg(a2, "array_equal")
    if get_aval(a1).shape != get_aval(a2).shape:
        return asarray_arg(np.bool_(False))
    eq = equal(a1, a2)
    if equal_nan:
        eq = logical_or(eq, logical_and(isnan(a1), isnan(a2)))
    return _all(eq)


def nan_to_num(x: Any, copy: bool = True, nan: Any = 0.0, posinf: Any = None,
               neginf: Any = None) -> Any:
    """NaN -> ``nan``, +inf -> ``posinf`` (the largest float), -inf -> ``neginf``."""
    x = asarray_arg(x, "nan_to_num")
    dtype = get_aval(x).dtype
    if not dtypes.is_float(dtype):
        return x
    info = dtypes.finfo(dtype)
    posinf = info.max if posinf is None else posinf
    neginf = info.min if neginf is None else neginf

    def const(v: Any) -> Any:  # strongly typed, like JAX's asarray(v, dtype=dtype)
        return lax_shape.full(get_aval(x).shape, v, dtype)

    out = where(isnan(x), const(nan), x)
    out = where(isposinf(out), const(posinf), out)
    return where(isneginf(out), const(neginf), out)


__all__ = ["where", "clip", "fmax", "fmin", "nan_to_num", "isclose", "allclose", "array_equal",
           "logical_and", "logical_or", "logical_xor", "logical_not", "left_shift", "right_shift",
           "bitwise_left_shift", "bitwise_right_shift"]
