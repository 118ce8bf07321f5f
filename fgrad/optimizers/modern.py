"""Optimizers beyond JAX's examples: ``adamw``, ``lamb`` and ``lion``, in the same triple style.

They follow optax's definitions, defaults and conventions (optax is the oracle in the
tests), written per parameter array and lifted to pytrees by ``@optimizer``:

* **Weight decay is multiplied by the learning rate** (optax's and PyTorch's
  convention): ``x <- x - lr * (direction + weight_decay * x)``. Loshchilov & Hutter's
  paper multiplies it only by the schedule's multiplier, not the base rate; with a
  constant step size the two differ by a rescaling of ``weight_decay``.
* Adam's moments and bias correction are JAX's ``adam``'s (``1 - b ** (i + 1)`` with
  ``b`` cast to the moment's dtype), so ``adamw(..., weight_decay=0)`` IS ``adam``.
* ``lamb``'s trust ratio ``||x|| / ||u||`` is per parameter array (a "layer" is one
  leaf of the parameter tree), and is 1 when either norm is 0, as in optax.

Read next: ``utils.py`` (gradient clipping, state serialization).
"""

from __future__ import annotations

from typing import Any

import fgrad.numpy as fnp
from fgrad.optimizers.base import Optimizer, optimizer, zero_slots
from fgrad.optimizers.classic import _adam_moments
from fgrad.optimizers.schedules import make_schedule

__all__ = ["adamw", "lamb", "lion"]


def _adam_direction(i: Any, g: Any, m: Any, v: Any, b1: float, b2: float, eps: float
                    ) -> tuple[Any, Any, Any]:  # fmt: skip
    # Adam's normalized step m_hat / (sqrt(v_hat) + eps) and the new moments.
    m, v = _adam_moments(g, m, v, b1, b2)
    mhat = m / (1 - fnp.asarray(b1, m.dtype) ** (i + 1))
    vhat = v / (1 - fnp.asarray(b2, m.dtype) ** (i + 1))
    return mhat / (fnp.sqrt(vhat) + eps), m, v


@optimizer
def adamw(step_size: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4) -> Optimizer:  # fmt: skip
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``optax.adamw``.

    ``x <- x - lr * (m_hat / (sqrt(v_hat) + eps) + weight_decay * x)``, with Adam's
    moments. The decay acts on the parameters directly instead of being added to the
    gradient (which Adam's normalization would rescale). NOTE: the decay is multiplied
    by the learning rate, as in optax and PyTorch.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      b1: decay rate of the first moment estimate (default 0.9).
      b2: decay rate of the second moment estimate (default 0.999).
      eps: added to ``sqrt(v_hat)`` for stability (default 1e-8).
      weight_decay: decay coefficient (default 1e-4, optax's).

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(2)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, m, v = state
        direction, m, v = _adam_direction(i, g, m, v, b1, b2, eps)
        return x - step_size(i) * (direction + weight_decay * x), m, v

    return Optimizer(init, update, get_params)


def _safe_norm(x: Any) -> Any:
    # ||x||_2 whose gradient is 0 (not NaN) at x = 0: the sqrt only ever sees a
    # positive argument (optax's numerics.safe_norm with min_norm = 0).
    norm = fnp.sqrt(fnp.sum(fnp.square(x)))
    is_zero = norm <= 0
    masked = fnp.where(is_zero, fnp.ones_like(x), x)
    return fnp.where(is_zero, 0.0, fnp.sqrt(fnp.sum(fnp.square(masked))))


@optimizer
def lamb(step_size: Any, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-6,
         weight_decay: float = 0.0) -> Optimizer:  # fmt: skip
    """LAMB (You et al. 2020): Adam's step rescaled per layer by a trust ratio, as ``optax.lamb``.

    ``u = m_hat / (sqrt(v_hat) + eps) + weight_decay * x``; ``r = ||x|| / ||u||`` (``1``
    when either norm is 0); ``x <- x - lr * r * u``. Each parameter array is a layer.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      b1: decay rate of the first moment estimate (default 0.9).
      b2: decay rate of the second moment estimate (default 0.999).
      eps: added to ``sqrt(v_hat)`` for stability (default 1e-6, optax's).
      weight_decay: decay coefficient (default 0).

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(2)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, m, v = state
        direction, m, v = _adam_direction(i, g, m, v, b1, b2, eps)
        u = direction + weight_decay * x
        param_norm, update_norm = _safe_norm(x), _safe_norm(u)
        trust_ratio = param_norm / update_norm
        zero_norm = (param_norm == 0.0) | (update_norm == 0.0)
        trust_ratio = fnp.where(zero_norm, fnp.asarray(1.0, dtype=x.dtype), trust_ratio)
        return x - step_size(i) * (u * trust_ratio), m, v

    return Optimizer(init, update, get_params)


@optimizer
def lion(step_size: Any, b1: float = 0.9, b2: float = 0.99, weight_decay: float = 1e-3
         ) -> Optimizer:  # fmt: skip
    """Lion (Chen et al. 2023): the sign of an interpolated momentum, as ``optax.lion``.

    ``c = (1 - b1) g + b1 m``; ``x <- x - lr * (sign(c) + weight_decay * x)``;
    ``m <- (1 - b2) g + b2 m``. Every coordinate moves by exactly ``lr`` (plus decay),
    so Lion wants a learning rate 3-10x smaller than AdamW's.

    Args:
      step_size: positive scalar, or a schedule mapping the step index to one.
      b1: interpolation between momentum and gradient for the step (default 0.9).
      b2: decay rate of the momentum (default 0.99).
      weight_decay: decay coefficient (default 1e-3, optax's).

    Returns:
      An ``(init_fun, update_fun, get_params)`` triple.
    """
    step_size = make_schedule(step_size)
    init, get_params = zero_slots(1)

    def update(i: Any, g: Any, state: Any) -> Any:
        x, m = state
        direction = fnp.sign((1.0 - b1) * g + b1 * m)
        x = x - step_size(i) * (direction + weight_decay * x)
        return x, (1 - b2) * g + b2 * m

    return Optimizer(init, update, get_params)
