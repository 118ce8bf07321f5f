"""The nine optimizers of ``jax.example_libraries.optimizers``, with identical numerics.

Each is written for ONE parameter array as an ``(init, update, get_params)`` triple and
lifted to pytrees by ``@optimizer`` (``base.py``). ``step_size`` is a scalar or a
schedule (``schedules.py``); ``i`` is the 0-based step index, a Python int or a traced
int32 under ``fgrad.jit``. Conventions worth knowing (all JAX's):

* ``rmsprop`` puts ``eps`` INSIDE the square root: ``g / sqrt(avg_sq + eps)``; ``adam``
  and ``adamax`` put it outside.
* ``adam`` and ``adamax`` bias-correct with ``1 - b ** (i + 1)``, where ``b`` is first
  cast to the moment's dtype (so float32 state stays float32).
* ``rmsprop_momentum`` folds the step size into the momentum buffer, so changing the
  schedule changes the buffer's meaning.
* ``adagrad`` and ``sm3`` use ``0`` instead of ``1/sqrt(0)`` for coordinates that never
  saw a gradient.
* ``sm3`` stores parameters at least 1-D and keeps their original shape (a tuple of
  ints) in its state; ``get_params`` reshapes back (also inside ``jit``, unlike JAX's).

Read next: ``modern.py`` (adamw, lamb, lion).
"""

from __future__ import annotations

import functools
from typing import Any

import fgrad.numpy as fnp
from fgrad.optimizers.base import Optimizer, optimizer, zero_slots
from fgrad.optimizers.schedules import make_schedule

__all__ = [
    "adagrad", "adam", "adamax", "momentum", "nesterov", "rmsprop", "rmsprop_momentum", "sgd",
    "sm3",
]


@optimizer
def sgd(step_size: Any) -> Optimizer:
    """Stochastic gradient descent: ``x <- x - lr * g``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)

    def init(x0: Any) -> Any:
        return x0

    def update(i: Any, g: Any, x: Any) -> Any:
        return x - step_size(i) * g

    def get_params(x: Any) -> Any:
        return x

    return Optimizer(init, update, get_params)


@optimizer
def momentum(step_size: Any, mass: float) -> Optimizer:
    """SGD with (heavy-ball) momentum: ``v <- mass * v + g``; ``x <- x - lr * v``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      mass: the momentum coefficient.

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(1)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, velocity = state
        velocity = mass * velocity + g
        return x - step_size(i) * velocity, velocity

    return Optimizer(init, update, get_params)


@optimizer
def nesterov(step_size: Any, mass: float) -> Optimizer:
    """SGD with Nesterov momentum: ``v <- mass * v + g``; ``x <- x - lr * (mass * v + g)``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      mass: the momentum coefficient.

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(1)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, velocity = state
        velocity = mass * velocity + g
        return x - step_size(i) * (mass * velocity + g), velocity

    return Optimizer(init, update, get_params)


@optimizer
def adagrad(step_size: Any, momentum: float = 0.9) -> Optimizer:
    """Adagrad (Duchi et al. 2011) with momentum on the scaled gradient.

    ``g_sq <- g_sq + g**2``; ``m <- (1 - momentum) * g / sqrt(g_sq) + momentum * m``
    (``0`` where ``g_sq == 0``); ``x <- x - lr * m``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      momentum: momentum coefficient (default 0.9).

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(2)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, g_sq, m = state
        g_sq = g_sq + fnp.square(g)
        g_sq_inv_sqrt = fnp.where(g_sq > 0, 1.0 / fnp.sqrt(g_sq), 0.0)
        m = (1.0 - momentum) * (g * g_sq_inv_sqrt) + momentum * m
        return x - step_size(i) * m, g_sq, m

    return Optimizer(init, update, get_params)


@optimizer
def rmsprop(step_size: Any, gamma: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSProp: ``a <- gamma * a + (1 - gamma) * g**2``; ``x <- x - lr * g / sqrt(a + eps)``.

    NOTE: ``eps`` is inside the square root, as in JAX.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      gamma: decay of the running average of squared gradients.
      eps: added to the average before the square root.

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(1)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, avg_sq_grad = state
        avg_sq_grad = avg_sq_grad * gamma + fnp.square(g) * (1.0 - gamma)
        return x - step_size(i) * g / fnp.sqrt(avg_sq_grad + eps), avg_sq_grad

    return Optimizer(init, update, get_params)


@optimizer
def rmsprop_momentum(step_size: Any, gamma: float = 0.9, eps: float = 1e-8,
                     momentum: float = 0.9) -> Optimizer:  # fmt: skip
    """RMSProp with momentum: ``mom <- momentum * mom + lr * g / sqrt(a + eps)``; ``x -= mom``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      gamma: decay of the running average of squared gradients.
      eps: added to the average before the square root.
      momentum: momentum coefficient.

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(2)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, avg_sq_grad, mom = state
        avg_sq_grad = avg_sq_grad * gamma + fnp.square(g) * (1.0 - gamma)
        mom = momentum * mom + step_size(i) * g / fnp.sqrt(avg_sq_grad + eps)
        return x - mom, avg_sq_grad, mom

    return Optimizer(init, update, get_params)


@optimizer
def adam(step_size: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba 2015).

    ``m <- (1 - b1) g + b1 m``; ``v <- (1 - b2) g**2 + b2 v``;
    ``x <- x - lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - b1**(i+1))``,
    ``v_hat = v / (1 - b2**(i+1))``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      b1: decay rate of the first moment estimate (default 0.9).
      b2: decay rate of the second moment estimate (default 0.999).
      eps: added to ``sqrt(v_hat)`` for stability (default 1e-8).

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(2)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, m, v = state
        m, v = _adam_moments(g, m, v, b1, b2)
        mhat = m / (1 - fnp.asarray(b1, m.dtype) ** (i + 1))
        vhat = v / (1 - fnp.asarray(b2, m.dtype) ** (i + 1))
        return x - step_size(i) * mhat / (fnp.sqrt(vhat) + eps), m, v

    return Optimizer(init, update, get_params)


@optimizer
def adamax(step_size: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8
           ) -> Optimizer:  # fmt: skip
    """AdaMax, Adam's infinity-norm variant (Kingma & Ba 2015, section 7).

    ``m`` as Adam; ``u <- max(b2 * u, |g|)``; ``x <- x - lr / (1 - b1**(i+1)) * m / (u + eps)``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      b1: decay rate of the first moment estimate (default 0.9).
      b2: decay rate of the infinity norm (default 0.999).
      eps: added to ``u`` for stability (default 1e-8).

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(2)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, m, u = state
        m = (1 - b1) * g + b1 * m
        u = fnp.maximum(b2 * u, fnp.abs(g))
        x = x - (step_size(i) / (1 - fnp.asarray(b1, m.dtype) ** (i + 1))) * m / (u + eps)
        return x, m, u

    return Optimizer(init, update, get_params)


@optimizer
def sm3(step_size: Any, momentum: float = 0.9) -> Optimizer:
    """SM3 (Anil et al. 2019): Adagrad with one accumulator vector per axis.

    For a parameter of shape ``(n_0, ..., n_k)`` the state keeps vectors ``vs[j]`` of
    length ``n_j`` instead of a full ``g_sq``: ``accum = min_j vs[j] (broadcast) + g**2``,
    ``m <- (1 - momentum) * g / sqrt(accum) + momentum * m`` (0 where ``accum == 0``),
    ``x <- x - lr * m`` and ``vs[j] = max of accum over every axis but j``.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      momentum: momentum coefficient (default 0.9).

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)

    def init(x0: Any) -> Any:
        x_shape = fnp.shape(x0)
        x0 = fnp.atleast_1d(x0)
        vs = [fnp.zeros(size, dtype=x0.dtype) for size in x0.shape]
        return x0, fnp.zeros_like(x0), vs, x_shape

    def update(i: Any, g: Any, state: Any) -> Any:
        x, m, vs, x_shape = state
        vs = [_along_axis(g.ndim, v, axis) for axis, v in enumerate(vs)]
        accum = functools.reduce(fnp.minimum, vs) + fnp.square(g)
        accum_inv_sqrt = fnp.where(accum > 0, 1.0 / fnp.sqrt(accum), 0)
        m = (1.0 - momentum) * (g * accum_inv_sqrt) + momentum * m
        x = x - step_size(i) * m
        vs = [accum.max(tuple(_splice(range(x.ndim), j, []))) for j in range(x.ndim)]
        return x, m, vs, x_shape

    def get_params(state: Any) -> Any:
        x, _, _, x_shape = state
        # NOTE: JAX reshapes to x_shape, whose ints are traced under jit (so JAX's
        # get_params fails inside jit). Only a 0-d parameter changed shape, and len() of
        # the shape tuple is static, so fgrad's works in jit too, with the same values.
        return x.reshape(()) if len(x_shape) == 0 else x

    return Optimizer(init, update, get_params)


# --- helpers -----------------------------------------------------------------------------


def _adam_moments(g: Any, m: Any, v: Any, b1: float, b2: float) -> tuple[Any, Any]:
    # Adam's moment updates, shared with adamw and lamb (same operation order as JAX).
    m = (1 - b1) * g + b1 * m  # first moment estimate
    v = (1 - b2) * fnp.square(g) + b2 * v  # second moment estimate
    return m, v


def _splice(seq: Any, index: int, items: list[Any]) -> list[Any]:
    # seq with the element at `index` replaced by `items` (a 0-d seq just gains them)
    out = list(seq)
    out[index:index + 1] = items
    return out


def _along_axis(ndim: int, v: Any, axis: int) -> Any:
    # The 1-D vector v reshaped to lie along `axis` of an ndim-d array (1s elsewhere),
    # so it broadcasts against it; ndim 0 (a scalar gradient) leaves v as it is.
    return v.reshape(tuple(_splice([1] * ndim, axis, [v.shape[0]])))
