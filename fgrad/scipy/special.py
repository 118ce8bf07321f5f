"""``fgrad.scipy.special``: special functions with ``jax.scipy.special``'s semantics.

All are compositions of ``fgrad.lax`` primitives after numpy-style promotion
(integers become the default float). Three carry custom derivative rules,
exactly as in JAX, because the plain composition is not differentiable where
users need it: ``logit`` (a cheaper rule), ``xlogy`` and ``xlog1py`` (defined
as 0 at ``x = 0`` even where ``log y`` is infinite, with a finite derivative).

``logsumexp`` subtracts the maximum before exponentiating (so logits like
``1e4`` do not overflow); that maximum is wrapped in ``stop_gradient``: the
result does not depend on it mathematically, and its derivative would only
add terms that cancel. Rows that are all ``-inf`` give ``-inf``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgrad.core.avals import get_aval
from fgrad.numpy._ufuncs import _const, _strong  # JAX's lax._const / _constant_like
from fgrad.numpy._util import asarray_arg, normalize_axes, promote_and_broadcast
from fgrad.primitives import elementwise as lax
from fgrad.primitives import shape as lax_shape
from fgrad.primitives.custom_derivatives import custom_jvp, stop_gradient


def _inexact(*args: Any, op: str) -> list[Any]:
    return promote_and_broadcast(*args, op=op, inexact=True)


def _c(x: Any, value: float) -> Any:
    return lax_shape.full_like(x, value)  # weak if x is, like a Python scalar in JAX


def _fnp() -> Any:
    import fgrad.numpy as fnp
    return fnp


def logsumexp(a: Any, axis: Any = None, b: Any = None, keepdims: bool = False,
              return_sign: bool = False, where: Any = None) -> Any:
    """``log(sum(b * exp(a)))`` over ``axis``, computed without overflow.

    With ``b`` the sum may be negative: ``return_sign=True`` returns
    ``(log|sum|, sign(sum))``, otherwise a negative sum gives NaN.

    >>> import fgrad.numpy as fnp
    >>> logsumexp(fnp.array([1e4, 1e4]))
    Array(10000.693, dtype=float32)
    """
    fnp = _fnp()
    if where is not None:
        a = fnp.where(where, a, 0)
    if b is not None:
        a, b = _inexact(a, b, op="logsumexp")
        a = fnp.where(lax.ne(b, _c(b, 0)), a, -np.inf)
    else:
        (a,) = _inexact(a, op="logsumexp")
    ndim = get_aval(a).ndim
    dims = normalize_axes(axis, ndim, "logsumexp")
    amax = fnp.max(a, axis=dims, keepdims=keepdims, where=where, initial=-np.inf)
    # A non-finite maximum (an all -inf row, or inf) would make a - amax NaN: shift by 0.
    amax = stop_gradient(lax.select(lax.is_finite(amax), amax, _c(amax, 0)))
    amax_with_dims = amax if keepdims else lax_shape.expand_dims(amax, dims)
    exp_a = lax.exp(lax.sub(a, lax_shape.broadcast_in_dim(
        amax_with_dims, get_aval(a).shape, tuple(range(ndim)))))
    if b is not None:
        exp_a = lax.mul(exp_a, b)
    sumexp = fnp.sum(exp_a, axis=dims, keepdims=keepdims, where=where)
    sign = lax.sign(sumexp)
    out = lax.add(lax.log(lax.abs(sumexp)), amax)
    if return_sign:
        return out, sign
    if b is not None:
        out = lax.select(lax.lt(sign, _c(sign, 0)), _strong(out, np.nan), out)
    return out


def expit(x: Any) -> Any:
    """The logistic sigmoid ``1 / (1 + exp(-x))``."""
    (x,) = _inexact(x, op="expit")
    return lax.logistic(x)


def _logit(x: Any) -> Any:
    (x,) = _inexact(x, op="logit")
    return lax.log(lax.div(x, lax.sub(_const(x, 1), x)))


logit = custom_jvp(_logit)
logit.__doc__ = """``log(x / (1 - x))``, the inverse of ``expit``."""
logit.defjvps(lambda t, ans, x: lax.div(t, lax.mul(x, lax.sub(_c(x, 1), x))))


def erf(x: Any) -> Any:
    """The error function."""
    (x,) = _inexact(x, op="erf")
    return lax.erf(x)


def erfc(x: Any) -> Any:
    """``1 - erf(x)``, accurate for large ``x``."""
    (x,) = _inexact(x, op="erfc")
    return lax.erfc(x)


def erfinv(x: Any) -> Any:
    """The inverse of ``erf`` on (-1, 1)."""
    (x,) = _inexact(x, op="erfinv")
    return lax.erf_inv(x)


def gammaln(x: Any) -> Any:
    """``log|Gamma(x)|``."""
    (x,) = _inexact(x, op="gammaln")
    return lax.lgamma(x)


def digamma(x: Any) -> Any:
    """The logarithmic derivative of Gamma (no derivative rule yet: needs polygamma)."""
    (x,) = _inexact(x, op="digamma")
    return lax.digamma(x)


def _x_log_fn(name: str, log_name: str, shift: float) -> Any:
    def fn(x: Any, y: Any) -> Any:
        x, y = _inexact(x, y, op=name)
        x_ok = lax.bitwise_or(lax.ne(x, _c(x, 0)), lax.ne(y, y))
        return lax.select(x_ok, lax.mul(x, getattr(lax, log_name)(y)), _c(x, 0))

    f = custom_jvp(fn)

    @f.defjvp
    def _jvp(primals: Any, tangents: Any) -> Any:
        # JAX's rule: d/dx = log(shift + y), d/dy = x / (shift + y); finite at x = 0.
        (x, y), (tx, ty) = primals, tangents
        out = f(x, y)
        fnp = _fnp()
        t = fnp.add(fnp.multiply(tx, getattr(fnp, log_name)(y)),
                    fnp.divide(fnp.multiply(ty, x), fnp.add(shift, y) if shift else y))
        return out, fnp.astype(t, out.dtype)

    f.__name__ = f.__qualname__ = name
    return f


xlogy = _x_log_fn("xlogy", "log", 0.0)
xlogy.__doc__ = """``x * log(y)``, defined as 0 where ``x == 0`` (unless ``y`` is NaN)."""
xlog1py = _x_log_fn("xlog1py", "log1p", 1.0)
xlog1py.__doc__ = """``x * log1p(y)``, defined as 0 where ``x == 0`` (unless ``y`` is NaN)."""


def _xlogx_fn(x: Any) -> Any:
    return xlogy(x, x)


_xlogx = custom_jvp(_xlogx_fn)
_xlogx.defjvps(lambda t, ans, x: lax.mul(t, lax.add(lax.log(x), _c(x, 1))))


def entr(x: Any) -> Any:
    """The entropy term ``-x log x`` (0 at 0, ``-inf`` for negative ``x``)."""
    (x,) = _inexact(x, op="entr")
    return lax.select(lax.lt(x, _c(x, 0)), _c(x, -np.inf), lax.neg(_xlogx(x)))


def ndtr(x: Any) -> Any:
    """The standard normal CDF, through ``erf`` near 0 and ``erfc`` in the tails."""
    x = asarray_arg(x, "ndtr")
    if get_aval(x).dtype not in (np.float32, np.float64):
        raise TypeError(f"ndtr: x.dtype={get_aval(x).dtype} is not supported (float32 or "
                        "float64 only, as in JAX)")
    # (numpy-scalar constants, as in JAX: the result is strongly typed)
    half_sqrt_2 = 0.5 * np.sqrt(2.0)
    w = lax.mul(x, _strong(x, half_sqrt_2))
    z = lax.abs(w)
    tail = lax.select(lax.gt(w, _c(w, 0)), lax.sub(_strong(z, 2), lax.erfc(z)), lax.erfc(z))
    y = lax.select(lax.lt(z, _c(z, half_sqrt_2)), lax.add(_strong(w, 1), lax.erf(w)), tail)
    return lax.mul(_strong(y, 0.5), y)


__all__ = ["logsumexp", "expit", "logit", "erf", "erfc", "erfinv", "gammaln", "digamma",
           "xlogy", "xlog1py", "entr", "ndtr"]
