"""``fgrad.nn``: activation functions and friends, with ``jax.nn``'s names and semantics.

Everything here is a composition of ``fgrad.numpy`` functions, so it works
eagerly, under ``jit`` and under every derivative transform. Where JAX picks
a derivative that the plain composition would not give, so does fgrad:

* ``relu'(0) = 0`` and ``relu6'(0) = relu6'(6) = 0`` (custom JVPs; plain
  ``maximum(x, 0)`` would split the tie and give 0.5);
* ``softmax`` has a custom JVP, ``y * (x_dot - sum(y * x_dot))``, which is
  cheaper and stays finite where the plain rule would produce ``inf - inf``;
* ``log_softmax`` and ``logsumexp`` subtract the maximum under
  ``stop_gradient`` (it cancels mathematically), so logits of ``1e4`` neither
  overflow nor lose their gradient.

Read next: ``fgrad/scipy/special.py`` (``logsumexp``), ``fgrad/numpy/_ufuncs.py``.
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

import fgrad.numpy as fnp
from fgrad.core import dtypes
from fgrad.core.avals import get_aval
from fgrad.numpy._util import normalize_axis, promote_to_inexact
from fgrad.primitives import elementwise as lax
from fgrad.primitives import shape as lax_shape
from fgrad.primitives.custom_derivatives import custom_jvp, stop_gradient
from fgrad.scipy.special import logsumexp

# --- activations -----------------------------------------------------------------------------


def identity(x: Any) -> Any:
    """The identity activation: ``x``."""
    return fnp.asarray(x)


def _relu(x: Any) -> Any:
    return fnp.maximum(x, 0)


relu = custom_jvp(_relu)
relu.__doc__ = """``max(x, 0)``; its derivative at 0 is taken to be 0, as in JAX."""
relu.defjvps(lambda t, ans, x: lax.select(fnp.greater(x, 0), t, lax_shape.full_like(t, 0)))


def _relu6(x: Any) -> Any:
    return fnp.minimum(fnp.maximum(x, 0), 6.0)


relu6 = custom_jvp(_relu6)
relu6.__doc__ = """``min(max(x, 0), 6)``; derivative 0 at both kinks (0 and 6), as in JAX."""
relu6.defjvps(lambda t, ans, x: lax.select(
    fnp.logical_and(fnp.greater(x, 0), fnp.less(x, 6)), t, lax_shape.full_like(t, 0)))


def sigmoid(x: Any) -> Any:
    """The logistic function ``1 / (1 + exp(-x))``."""
    (x,) = promote_to_inexact(x, op="sigmoid")
    return lax.logistic(x)


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))``, computed as ``logaddexp(x, 0)`` (no overflow)."""
    return fnp.logaddexp(x, 0)


def log_sigmoid(x: Any) -> Any:
    """``log(sigmoid(x)) = -softplus(-x)``."""
    return fnp.negative(softplus(fnp.negative(x)))


def soft_sign(x: Any) -> Any:
    """``x / (|x| + 1)``."""
    x = fnp.asarray(x)
    return fnp.divide(x, fnp.add(fnp.abs(x), 1))


def silu(x: Any) -> Any:
    """SiLU (swish): ``x * sigmoid(x)``."""
    x = fnp.asarray(x)
    return fnp.multiply(x, sigmoid(x))


swish = silu


def mish(x: Any) -> Any:
    """``x * tanh(softplus(x))``."""
    x = fnp.asarray(x)
    return fnp.multiply(x, fnp.tanh(softplus(x)))


def squareplus(x: Any, b: Any = 4) -> Any:
    """``(x + sqrt(x**2 + b)) / 2``, a smooth relu."""
    x = fnp.asarray(x)
    return fnp.divide(fnp.add(x, fnp.sqrt(fnp.add(fnp.square(x), b))), 2)


def gelu(x: Any, approximate: bool = True) -> Any:
    """Gaussian error linear unit: ``x * Phi(x)``, by default with the tanh approximation."""
    (x,) = promote_to_inexact(x, op="gelu")
    dtype = get_aval(x).dtype
    if approximate:
        sqrt_2_over_pi = np.asarray(np.sqrt(2 / np.pi)).astype(dtype)
        inner = fnp.multiply(sqrt_2_over_pi, fnp.add(x, fnp.multiply(0.044715, x ** 3)))
        return fnp.multiply(x, fnp.multiply(0.5, fnp.add(1.0, fnp.tanh(inner))))
    sqrt_half = np.asarray(np.sqrt(0.5)).astype(dtype)
    return fnp.multiply(fnp.multiply(0.5, x), lax.erfc(fnp.multiply(fnp.negative(x), sqrt_half)))


def elu(x: Any, alpha: Any = 1.0) -> Any:
    """``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""
    x = fnp.asarray(x)
    positive = fnp.greater(x, 0)
    # The inner where keeps expm1 away from large x, whose inf would poison the gradient.
    return fnp.where(positive, x, fnp.multiply(alpha, fnp.expm1(fnp.where(positive, 0.0, x))))


def selu(x: Any) -> Any:
    """Scaled ELU with the self-normalizing constants."""
    alpha = 1.6732632423543772848170429916717
    scale = 1.0507009873554804934193349852946
    return fnp.multiply(scale, elu(x, alpha))


def celu(x: Any, alpha: Any = 1.0) -> Any:
    """``max(x, 0) + alpha * expm1(min(x, 0) / alpha)``."""
    return fnp.add(fnp.maximum(x, 0.0),
                   fnp.multiply(alpha, fnp.expm1(fnp.divide(fnp.minimum(x, 0.0), alpha))))


def leaky_relu(x: Any, negative_slope: Any = 1e-2) -> Any:
    """``x`` for ``x >= 0``, else ``negative_slope * x``."""
    x = fnp.asarray(x)
    return fnp.where(fnp.greater_equal(x, 0), x, fnp.multiply(negative_slope, x))


def hard_tanh(x: Any) -> Any:
    """``x`` clipped to ``[-1, 1]`` (derivative 1 at the ends, as in JAX)."""
    x = fnp.asarray(x)
    return fnp.where(fnp.greater(x, 1), 1, fnp.where(fnp.less(x, -1), -1, x))


def hard_sigmoid(x: Any) -> Any:
    """``relu6(x + 3) / 6``."""
    return fnp.divide(relu6(fnp.add(x, 3.0)), 6.0)


def hard_silu(x: Any) -> Any:
    """``x * hard_sigmoid(x)``."""
    x = fnp.asarray(x)
    return fnp.multiply(x, hard_sigmoid(x))


hard_swish = hard_silu


def glu(x: Any, axis: int = -1) -> Any:
    """Gated linear unit: split ``x`` in two halves along ``axis``, ``a * sigmoid(b)``."""
    x = fnp.asarray(x)
    size = x.shape[axis]
    if size % 2:
        raise ValueError(f"glu: the size of axis {axis} must be even, got shape {x.shape}")
    a, b = fnp.split(x, 2, axis)
    return fnp.multiply(a, sigmoid(b))


# --- softmax and friends --------------------------------------------------------------------


def log_softmax(x: Any, axis: Any = -1, where: Any = None) -> Any:
    """``x - logsumexp(x)`` along ``axis`` (an int, a tuple or None); -inf where masked out."""
    x = fnp.asarray(x)
    x_max = fnp.max(x, axis, where=where, initial=-np.inf, keepdims=True)
    x_safe = x if where is None else fnp.where(where, x, -np.inf)
    shifted = fnp.subtract(x_safe, stop_gradient(x_max))
    shifted_logsumexp = fnp.log(fnp.sum(fnp.exp(shifted), axis, where=where, keepdims=True))
    result = fnp.subtract(shifted, shifted_logsumexp)
    return result if where is None else fnp.where(where, result, -np.inf)


def _softmax_fn(x: Any, axis: Any, where: Any) -> Any:
    x_max = fnp.max(x, axis, where=where, initial=-np.inf, keepdims=True)
    x_safe = x if where is None else fnp.where(where, x, -np.inf)
    unnormalized = fnp.exp(fnp.subtract(x_safe, x_max))
    result = fnp.divide(unnormalized, fnp.sum(unnormalized, axis, where=where, keepdims=True))
    return result if where is None else fnp.where(where, result, 0)


_softmax = custom_jvp(_softmax_fn, nondiff_argnums=(1,))


@_softmax.defjvp
def _softmax_jvp(axis: Any, primals: Any, tangents: Any) -> Any:
    (x, where), (x_dot, _) = primals, tangents
    y = _softmax(x, axis, where)
    y_x_dot = fnp.sum(fnp.multiply(y, x_dot), axis, where=where, keepdims=True)
    return y, fnp.multiply(y, fnp.subtract(x_dot, y_x_dot))


def softmax(x: Any, axis: Any = -1, where: Any = None) -> Any:
    """``exp(x) / sum(exp(x))`` along ``axis`` (an int, a tuple or None); 0 where masked out.

    Any ``+inf`` input makes the result NaN (``inf / inf``), as in JAX.

    >>> import fgrad.nn as nn, fgrad.numpy as fnp
    >>> nn.softmax(fnp.array([0.0, 1e4, -1e4]))
    Array([0., 1., 0.], dtype=float32)
    """
    axis = axis if axis is None or isinstance(axis, int) else tuple(axis)
    return _softmax(fnp.asarray(x), axis, where)


def standardize(x: Any, axis: Any = -1, mean: Any = None, variance: Any = None,
                epsilon: Any = 1e-5, where: Any = None) -> Any:
    """``(x - mean) / sqrt(variance + epsilon)``, statistics over ``axis`` unless given.

    The variance is JAX's fast form ``mean(x**2) - mean(x)**2``, clipped at 0.
    """
    if mean is None:
        mean = fnp.mean(x, axis, keepdims=True, where=where)
    if variance is None:
        variance = fnp.subtract(fnp.mean(fnp.square(x), axis, keepdims=True, where=where),
                                fnp.square(mean))
        variance = fnp.clip(variance, 0)
    (denominator,) = promote_to_inexact(fnp.add(variance, epsilon), op="standardize")
    return fnp.multiply(fnp.subtract(x, mean), lax.rsqrt(denominator))


def one_hot(x: Any, num_classes: int, *, dtype: Any = None, axis: int = -1) -> Any:
    """``x``'s integers as one-hot vectors along a new ``axis`` (out of range: all zeros)."""
    num_classes = operator.index(num_classes)
    x = fnp.asarray(x)
    dtype = dtypes.default_float_dtype() if dtype is None else dtypes.canonicalize_dtype(dtype)
    out_axis = normalize_axis(axis, x.ndim + 1, "one_hot")
    shape = [1] * x.ndim
    shape.insert(out_axis, num_classes)
    classes = lax_shape.broadcasted_iota(x.dtype, shape, out_axis)
    return fnp.astype(fnp.equal(fnp.expand_dims(x, out_axis), classes), dtype)


__all__ = [
    "identity", "relu", "relu6", "sigmoid", "softplus", "log_sigmoid", "soft_sign", "silu",
    "swish", "mish", "squareplus", "gelu", "elu", "selu", "celu", "leaky_relu", "hard_tanh",
    "hard_sigmoid", "hard_silu", "hard_swish", "glu", "log_softmax", "softmax", "logsumexp",
    "standardize", "one_hot",
]

# Losses and metrics (fgrad/nn/losses.py imports the activations above, so this comes last).
from fgrad.nn.losses import *  # noqa: E402, F401, F403
from fgrad.nn.losses import __all__ as _losses_all  # noqa: E402

__all__ += _losses_all
