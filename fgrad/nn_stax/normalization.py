"""Normalization layers beyond JAX's stax: LayerNorm, GroupNorm, InstanceNorm, and a
BatchNorm with running statistics (plus the small protocol for stateful layers it needs).

All normalize ``x`` to ``(x - mean) / sqrt(var + epsilon)`` and then apply a learned
per-feature scale ``gamma`` and shift ``beta`` (each can be turned off with
``scale=False`` / ``center=False``, which puts ``()`` in its params slot, as
stax's ``BatchNorm`` does). They differ in *which* elements share statistics:

* ``LayerNorm``: each example over its feature axes (default the last axis);
  ``gamma``/``beta`` have the shape of those axes.
* ``GroupNorm``: each example, over the spatial axes and a group of
  channels; inputs are channels-last (``N...C``), ``C`` must be divisible by
  ``num_groups``; ``gamma``/``beta`` have shape ``(C,)``.
* ``InstanceNorm``: each example and channel, over the spatial axes
  (GroupNorm with one channel per group).
* ``BatchNormRunning``: like stax's ``BatchNorm`` in training (the batch's
  statistics) but it also keeps exponential running averages of them, used
  in evaluation mode. See its docstring for the stateful convention.

The variance is the two-pass ``mean((x - mean)**2)`` (biased), which stays
accurate when the mean is large, unlike the ``E[x²] - E[x]²`` that
``standardize`` (and hence stax's ``BatchNorm``) uses.

Read next: ``fgrad/nn_stax/recurrent.py``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

import fgrad.numpy as fnp
from fgrad import lax, random
from fgrad.nn_stax.initializers import ones, zeros
from fgrad.nn_stax.layers import Layer, Shape

# --- shared helpers -------------------------------------------------------------------------------


def _normalize(x: Any, axes: tuple[int, ...], epsilon: float) -> tuple[Any, Any, Any]:
    """``((x - mean) / sqrt(var + eps), mean, var)`` with statistics over ``axes`` (kept)."""
    mean = fnp.mean(x, axes, keepdims=True)
    centred = x - mean
    var = fnp.mean(fnp.square(centred), axes, keepdims=True)
    return centred * lax.rsqrt(var + fnp.asarray(epsilon, var.dtype)), mean, var


def _affine_init(center: bool, scale: bool, beta_init: Callable, gamma_init: Callable,
                 rng: Any, shape: Shape) -> tuple[Any, Any]:
    k1, k2 = random.split(rng)
    return (beta_init(k1, shape) if center else (), gamma_init(k2, shape) if scale else ())


def _affine(z: Any, params: Any, param_shape: Sequence[int]) -> Any:
    """``gamma * z + beta`` with both reshaped to ``param_shape`` (1s at shared axes)."""
    beta, gamma = params
    if not isinstance(gamma, tuple):
        z = z * fnp.reshape(gamma, param_shape)
    if not isinstance(beta, tuple):
        z = z + fnp.reshape(beta, param_shape)
    return z


def _axes(axis: Any, ndim: int, name: str) -> tuple[int, ...]:
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    if not all(-ndim <= a < ndim for a in axes):
        raise ValueError(f"{name}: axis {axis} is out of range for inputs of rank {ndim}")
    return tuple(sorted(a % ndim for a in axes))


# --- layer norm -----------------------------------------------------------------------------------


def LayerNorm(axis: Any = -1, epsilon: float = 1e-5, center: bool = True, scale: bool = True,
              beta_init: Callable = zeros, gamma_init: Callable = ones) -> Layer:
    """Layer normalization (Ba et al. 2016): normalize each example over ``axis``.

    Args:
      axis: the feature axis or axes to normalize over (default the last).
      epsilon: added to the variance.
      center, scale: whether to learn ``beta`` / ``gamma``.
      beta_init, gamma_init: their initializers.

    Params are ``(beta, gamma)`` with the sizes of the ``axis`` dims (``()`` if off).
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        axes = _axes(axis, len(input_shape), "LayerNorm")
        shape = tuple(input_shape[a] for a in axes)
        return input_shape, _affine_init(center, scale, beta_init, gamma_init, rng, shape)

    def apply_fun(params: Any, x: Any, **kwargs: Any) -> Any:
        axes = _axes(axis, x.ndim, "LayerNorm")
        z, _, _ = _normalize(x, axes, epsilon)
        return _affine(z, params, [d if i in axes else 1 for i, d in enumerate(x.shape)])
    return init_fun, apply_fun


# --- group norm and instance norm -----------------------------------------------------------------


def _group_norm(num_groups: int | None, epsilon: float, center: bool, scale: bool,
                beta_init: Callable, gamma_init: Callable, name: str) -> Layer:
    """GroupNorm; ``num_groups=None`` means one group per channel (InstanceNorm)."""
    def check(shape: Shape) -> int:
        if len(shape) < 2 + (num_groups is None):
            raise ValueError(f"{name}: inputs must be channels-last (batch, ..., channels) "
                             f"with {'spatial axes' if num_groups is None else 'rank >= 2'}; "
                             f"got shape {tuple(shape)}")
        channels = shape[-1]
        groups = channels if num_groups is None else num_groups
        if groups <= 0 or channels % groups:
            raise ValueError(f"{name}: the {channels} channels of shape {tuple(shape)} cannot "
                             f"be split into {groups} groups")
        return groups

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        check(input_shape)
        shape = (input_shape[-1],)
        return input_shape, _affine_init(center, scale, beta_init, gamma_init, rng, shape)

    def apply_fun(params: Any, x: Any, **kwargs: Any) -> Any:
        groups = check(x.shape)
        channels = x.shape[-1]
        # (N, ..., C) -> (N, ..., G, C/G); statistics over every axis but N and G.
        grouped = fnp.reshape(x, (*x.shape[:-1], groups, channels // groups))
        axes = (*range(1, x.ndim - 1), x.ndim)
        z, _, _ = _normalize(grouped, axes, epsilon)
        z = fnp.reshape(z, x.shape)
        return _affine(z, params, [1] * (x.ndim - 1) + [channels])
    return init_fun, apply_fun


def GroupNorm(num_groups: int = 32, epsilon: float = 1e-5, center: bool = True,
              scale: bool = True, beta_init: Callable = zeros, gamma_init: Callable = ones
              ) -> Layer:
    """Group normalization (Wu & He 2018) for channels-last inputs ``(N, ..., C)``.

    The ``C`` channels are split into ``num_groups`` consecutive groups; each
    example is normalized over its spatial axes and the channels of a group.
    ``GroupNorm(1)`` is LayerNorm over all non-batch axes; ``GroupNorm(C)`` is
    InstanceNorm. Params are ``(beta, gamma)`` of shape ``(C,)``.

    Raises:
      ValueError: (at init and apply) when ``C`` is not divisible by ``num_groups``.
    """
    return _group_norm(num_groups, epsilon, center, scale, beta_init, gamma_init, "GroupNorm")


def InstanceNorm(epsilon: float = 1e-5, center: bool = True, scale: bool = True,
                 beta_init: Callable = zeros, gamma_init: Callable = ones) -> Layer:
    """Instance normalization (Ulyanov et al. 2016) for channels-last inputs ``(N, ..., C)``.

    Each example and channel is normalized over the spatial axes (so inputs
    need at least one). Params are ``(beta, gamma)`` of shape ``(C,)``.
    """
    return _group_norm(None, epsilon, center, scale, beta_init, gamma_init, "InstanceNorm")


# --- stateful layers and BatchNormRunning ---------------------------------------------------------


class StatefulLayer(NamedTuple):
    """A layer with state that is not trained by gradients (e.g. running statistics).

    * ``init_fun(rng, input_shape) -> (output_shape, params, state)``
    * ``apply_fun(params, state, inputs, **kwargs) -> (outputs, new_state)``

    ``params`` are what the optimizer updates; ``state`` is threaded by hand:
    pass the ``new_state`` of one training step into the next. Compose with
    ``serial_stateful``; ``stateful(layer)`` lifts a plain stax layer.
    """

    init_fun: Callable[[Any, Shape], tuple[Shape, Any, Any]]
    apply_fun: Callable[..., tuple[Any, Any]]


def stateful(layer: Layer) -> StatefulLayer:
    """Lift a plain ``(init_fun, apply_fun)`` layer to the stateful protocol (state ``()``)."""
    if isinstance(layer, StatefulLayer):
        return layer
    init, apply = layer

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any, Any]:
        output_shape, params = init(rng, input_shape)
        return output_shape, params, ()

    def apply_fun(params: Any, state: Any, inputs: Any, **kwargs: Any) -> tuple[Any, Any]:
        return apply(params, inputs, **kwargs), state
    return StatefulLayer(init_fun, apply_fun)


def serial_stateful(*layers: Layer | StatefulLayer) -> StatefulLayer:
    """``serial`` for stateful layers; plain layers are lifted with ``stateful``.

    Params and state are lists with one entry per layer; keys are split as
    ``serial`` splits them, and other kwargs (e.g. ``mode=``) go to every layer.

    >>> import fgrad, fgrad.numpy as fnp
    >>> from fgrad.nn_stax import Dense, Relu
    >>> init, apply = serial_stateful(Dense(8), BatchNormRunning(axis=0), Relu)
    >>> _, params, state = init(fgrad.random.key(0), (4, 3))
    >>> y, state = apply(params, state, fnp.ones((4, 3)), mode="train")
    >>> y, _ = apply(params, state, fnp.ones((4, 3)), mode="eval")
    """
    lifted = [stateful(layer) for layer in layers]

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, list, list]:
        params, states = [], []
        for layer in lifted:
            rng, layer_rng = random.split(rng)
            input_shape, param, state = layer.init_fun(layer_rng, input_shape)
            params.append(param)
            states.append(state)
        return input_shape, params, states

    def apply_fun(params: Any, state: Any, inputs: Any, **kwargs: Any) -> tuple[Any, list]:
        rng = kwargs.pop("rng", None)
        rngs = (None,) * len(lifted) if rng is None else list(random.split(rng, len(lifted)))
        new_states = []
        for layer, param, layer_state, layer_rng in zip(lifted, params, state, rngs):
            inputs, layer_state = layer.apply_fun(param, layer_state, inputs, rng=layer_rng,
                                                  **kwargs)
            new_states.append(layer_state)
        return inputs, new_states
    return StatefulLayer(init_fun, apply_fun)


def BatchNormRunning(axis: Any = (0, 1, 2), momentum: float = 0.9, epsilon: float = 1e-5,
                     center: bool = True, scale: bool = True, beta_init: Callable = zeros,
                     gamma_init: Callable = ones) -> StatefulLayer:
    """Batch normalization with running statistics, its state passed explicitly.

    Convention (a ``StatefulLayer``, see ``serial_stateful``)::

        init_fun, apply_fun = BatchNormRunning(axis=0)
        output_shape, params, state = init_fun(rng, input_shape)
        # training: normalize with the batch's statistics, update the averages
        y, state = apply_fun(params, state, x, mode="train")
        # evaluation: normalize with the running averages; state is returned unchanged
        y, _ = apply_fun(params, state, x, mode="eval")

    ``params = (beta, gamma)`` (as stax's ``BatchNorm``); ``state = (mean, var)``,
    both of the params' shape, initially 0 and 1. In training the state becomes
    ``momentum * old + (1 - momentum) * batch`` (``momentum=0.9`` is PyTorch's
    0.1); the batch variance is the biased one. The state update is under
    ``stop_gradient``, so differentiate ``apply_fun`` with ``has_aux=True``-style
    code that returns the new state alongside the loss. Any mode other than
    ``"train"`` (the default) means evaluation.

    Args:
      axis: the axes whose statistics are shared (batch and spatial axes).
      momentum: the decay of the running averages.
      epsilon, center, scale, beta_init, gamma_init: as for ``BatchNorm``.
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any, Any]:
        axes = _axes(axis, len(input_shape), "BatchNormRunning")
        shape = tuple(d for i, d in enumerate(input_shape) if i not in axes)
        params = _affine_init(center, scale, beta_init, gamma_init, rng, shape)
        return input_shape, params, (zeros(None, shape), ones(None, shape))

    def apply_fun(params: Any, state: Any, x: Any, mode: str = "train", **kwargs: Any
                  ) -> tuple[Any, Any]:
        axes = _axes(axis, x.ndim, "BatchNormRunning")
        param_shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
        running_mean, running_var = state
        if mode == "train":
            z, mean, var = _normalize(x, axes, epsilon)
            mean, var = (lax.stop_gradient(fnp.reshape(s, running_mean.shape))
                         for s in (mean, var))
            state = (momentum * running_mean + (1 - momentum) * mean,
                     momentum * running_var + (1 - momentum) * var)
        else:
            mean, var = (fnp.reshape(s, param_shape) for s in state)
            z = (x - mean) * lax.rsqrt(var + fnp.asarray(epsilon, var.dtype))
        return _affine(z, params, param_shape), state
    return StatefulLayer(init_fun, apply_fun)


__all__ = ["LayerNorm", "GroupNorm", "InstanceNorm", "StatefulLayer", "stateful",
           "serial_stateful", "BatchNormRunning"]
