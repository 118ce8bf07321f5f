"""``fgrad.optimizers``: ``jax.example_libraries.optimizers`` for fgrad, plus a few modern ones.

An optimizer is a triple of pure functions, unpacked as
``opt_init, opt_update, get_params = optimizers.adam(1e-3)``::

    opt_state = opt_init(params)                    # params: any pytree of arrays
    opt_state = opt_update(step, grads, opt_state)  # step: the 0-based index
    params = get_params(opt_state)

``opt_state`` is an ``OptimizerState`` pytree, so a whole training step can be jitted::

    @fgrad.jit
    def train_step(step, opt_state, batch):
        grads = fgrad.grad(loss)(get_params(opt_state), batch)
        return opt_update(step, grads, opt_state)

Everything JAX's module exports is here with the same signatures and numerics
(``base.py``: the machinery; ``classic.py``: sgd, momentum, nesterov, adagrad,
rmsprop, rmsprop_momentum, adam, adamax, sm3; ``schedules.py``; ``utils.py``). Added in
the same style, with optax's semantics: ``adamw``, ``lamb``, ``lion`` (``modern.py``)
and the schedules ``cosine_decay``, ``warmup_cosine``, ``one_cycle``,
``join_schedules``. Step sizes may be scalars or schedules everywhere.
"""

from __future__ import annotations

from fgrad.optimizers.base import (
    Array, InitFn, Optimizer, OptimizerState, Params, ParamsFn, Schedule, State, Step,
    UpdateFn, Updates, optimizer)
from fgrad.optimizers.classic import (
    adagrad, adam, adamax, momentum, nesterov, rmsprop, rmsprop_momentum, sgd, sm3)
from fgrad.optimizers.modern import adamw, lamb, lion
from fgrad.optimizers.schedules import (
    constant, cosine_decay, exponential_decay, inverse_time_decay, join_schedules,
    make_schedule, one_cycle, piecewise_constant, polynomial_decay, warmup_cosine)
from fgrad.optimizers.utils import (
    JoinPoint, clip_grads, l2_norm, pack_optimizer_state, unpack_optimizer_state)

__all__ = [
    # machinery and types (as JAX)
    "Array", "InitFn", "Optimizer", "OptimizerState", "Params", "ParamsFn", "Schedule",
    "State", "Step", "UpdateFn", "Updates", "optimizer",
    # JAX's optimizers
    "adagrad", "adam", "adamax", "momentum", "nesterov", "rmsprop", "rmsprop_momentum", "sgd",
    "sm3",
    # additions
    "adamw", "lamb", "lion",
    # schedules (JAX's, then optax-style additions)
    "constant", "exponential_decay", "inverse_time_decay", "make_schedule",
    "piecewise_constant", "polynomial_decay", "cosine_decay", "join_schedules", "one_cycle",
    "warmup_cosine",
    # utilities
    "JoinPoint", "clip_grads", "l2_norm", "pack_optimizer_state", "unpack_optimizer_state",
]
