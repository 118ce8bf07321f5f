"""What each ``ScalarOp`` means, in numpy: the reference for every renderer.

Conventions (matching the primitives' numpy impls, hence JAX on CPU):
``MAX``/``MIN`` propagate NaN (numpy's ``maximum``, not ``fmax``); integer
``DIV`` rounds toward zero and ``REM`` takes the dividend's sign (C and XLA,
not Python), with XLA's answers where C has none (``x / 0 == -1``,
``x % 0 == x``, ``INT_MIN / -1 == INT_MIN``); ``ROUND`` rounds half away
from zero; ``NOT``, ``AND``, ``OR``, ``XOR`` are bitwise (logical for bool).
A float-to-integer ``Cast`` saturates and sends NaN to 0 (``cast``).
``identity`` gives each reduction op the value an accumulator starts from.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.special

from fgrad.lowering.kernel_ir import ScalarOp


def _int_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer division as XLA: round toward zero; ``x / 0`` has all bits set (-1, or the
    unsigned maximum); ``INT_MIN / -1`` wraps to ``INT_MIN``. Exact for 64-bit values."""
    if x.dtype.kind == "u":
        safe = np.where(y == 0, 1, y).astype(x.dtype)
        return np.where(y == 0, np.iinfo(x.dtype).max, x // safe).astype(x.dtype)
    if x.dtype.kind == "i":
        minus_one = y == -1
        safe = np.where((y == 0) | minus_one, 1, y).astype(x.dtype)
        # x - fmod(x, y) is an exact multiple of y (no overflow: same sign as x, smaller)
        q = (x - np.fmod(x, safe)) // safe
        with np.errstate(over="ignore"):
            q = np.where(minus_one, np.negative(x), q)  # wraps for INT_MIN, as XLA does
        return np.where(y == 0, -1, q).astype(x.dtype)
    return np.true_divide(x, y)


def _lgamma(x: np.ndarray) -> np.ndarray:
    """log|Gamma(x)|, with lgamma(-inf) = +inf as libm, CUDA and XLA give (scipy: -inf)."""
    return np.where(np.isneginf(x), np.inf, scipy.special.gammaln(x))


def _rem(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind in "iu":
        # XLA: the sign of the dividend; x % 0 == x; INT_MIN % -1 == 0
        safe = np.where((y == 0) | (y == -1 if x.dtype.kind == "i" else False), 1, y)
        r = np.fmod(x, safe)
        return np.where(y == 0, x, r).astype(x.dtype)
    return np.fmod(x, y)


def _round(x: np.ndarray) -> np.ndarray:
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


_ERRSTATE = dict(divide="ignore", invalid="ignore", over="ignore", under="ignore")

NUMPY: dict[ScalarOp, Callable[..., Any]] = {
    ScalarOp.NEG: np.negative, ScalarOp.ABS: np.abs, ScalarOp.EXP: np.exp,
    ScalarOp.LOG: np.log, ScalarOp.LOG1P: np.log1p, ScalarOp.EXPM1: np.expm1,
    ScalarOp.SIN: np.sin, ScalarOp.COS: np.cos, ScalarOp.TANH: np.tanh,
    ScalarOp.SQRT: np.sqrt, ScalarOp.RSQRT: lambda x: 1 / np.sqrt(x),
    ScalarOp.FLOOR: np.floor, ScalarOp.CEIL: np.ceil, ScalarOp.ROUND: _round,
    ScalarOp.NOT: np.invert,
    ScalarOp.ADD: np.add, ScalarOp.SUB: np.subtract, ScalarOp.MUL: np.multiply,
    ScalarOp.DIV: _int_div, ScalarOp.REM: _rem, ScalarOp.POW: np.power,
    ScalarOp.MAX: np.maximum, ScalarOp.MIN: np.minimum, ScalarOp.ATAN2: np.arctan2,
    ScalarOp.AND: np.bitwise_and, ScalarOp.OR: np.bitwise_or, ScalarOp.XOR: np.bitwise_xor,
    ScalarOp.CMPLT: np.less, ScalarOp.CMPLE: np.less_equal, ScalarOp.CMPEQ: np.equal,
    ScalarOp.CMPNE: np.not_equal, ScalarOp.WHERE: np.where,
    ScalarOp.ERF: scipy.special.erf, ScalarOp.ERFC: scipy.special.erfc,
    ScalarOp.LGAMMA: _lgamma, ScalarOp.NEXTAFTER: np.nextafter,
    ScalarOp.LOGADDEXP: np.logaddexp, ScalarOp.SHL: lambda x, y: _shift(x, y, np.left_shift),
    ScalarOp.SHR: lambda x, y: _shift(x, y, np.right_shift), ScalarOp.FMA: lambda x, y, z: _fma(
        x, y, z),
}


def _shift(x: np.ndarray, y: np.ndarray, fn: object) -> np.ndarray:
    """Logical shifts, 0 when the amount is negative or at least the bit width (XLA)."""
    x = np.asarray(x)
    bits = 8 * x.dtype.itemsize
    unsigned = np.dtype(f"u{x.dtype.itemsize}")
    amount = np.asarray(y).astype(np.int64)
    ok = (amount >= 0) & (amount < bits)
    shifted = fn(x.astype(unsigned), np.where(ok, amount, 0).astype(unsigned))  # type: ignore
    return np.where(ok, shifted, 0).astype(unsigned).astype(x.dtype)


def _fma(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    from fgrad.primitives.random import fma_p  # the primitive's (correctly rounded) impl
    return fma_p.impl(*np.broadcast_arrays(x, y, z))


def apply(op: ScalarOp, dtype: np.dtype, *args: np.ndarray) -> np.ndarray:
    """``op`` on numpy arrays, result cast to ``dtype`` (the IR node's dtype)."""
    if op is ScalarOp.BITCAST:
        return np.ascontiguousarray(args[0]).view(dtype)
    with np.errstate(**_ERRSTATE):
        out = NUMPY[op](*args)
    return np.asarray(out).astype(dtype, copy=False)


def identity(op: ScalarOp, dtype: np.dtype) -> Any:
    """The value an accumulator for ``op`` starts from."""
    dtype = np.dtype(dtype)
    if op is ScalarOp.ADD or op is ScalarOp.OR:
        return np.zeros((), dtype)[()]
    if op is ScalarOp.MUL:
        return np.ones((), dtype)[()]
    if op is ScalarOp.AND:  # all bits set
        return np.True_ if dtype.kind == "b" else np.array(-1).astype(dtype)[()]
    if op is ScalarOp.LOGADDEXP:
        return dtype.type(-np.inf)
    if op is ScalarOp.MAX:
        if dtype.kind == "f":
            return dtype.type(-np.inf)
        return np.iinfo(dtype).min if dtype.kind in "iu" else np.False_
    if op is ScalarOp.MIN:
        if dtype.kind == "f":
            return dtype.type(np.inf)
        return np.iinfo(dtype).max if dtype.kind in "iu" else np.True_
    raise ValueError(f"kernel IR: {op.name} is not a reduction op")


def cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert ``x`` to ``dtype`` as XLA does: float to int saturates, NaN becomes 0."""
    x, dtype = np.asarray(x), np.dtype(dtype)
    if x.dtype.kind == "f" and dtype.kind in "iu":
        info = np.iinfo(dtype)
        with np.errstate(invalid="ignore"):
            clipped = np.clip(np.nan_to_num(x.astype(np.float64), nan=0.0), info.min, info.max)
            # float(info.max) rounds up for 64-bit ints (2**63): saturate those in integers
            too_big = x >= float(info.max)
            return np.where(too_big, np.asarray(info.max, dtype),
                            np.where(too_big, 0, clipped).astype(dtype))
    if dtype.kind == "b":
        return x != 0
    return x.astype(dtype)


__all__ = ["NUMPY", "apply", "identity", "cast"]
