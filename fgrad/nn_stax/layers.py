"""JAX's ``stax`` layers and combinators, rebuilt on fgrad (``jax.example_libraries.stax``).

A **layer** is a pair ``(init_fun, apply_fun)``:

* ``init_fun(rng, input_shape) -> (output_shape, params)``: draws the
  parameters from a PRNG key for inputs of ``input_shape`` (a tuple; the
  batch dimension may be ``-1`` for "unknown", and ``output_shape`` keeps it);
* ``apply_fun(params, inputs, **kwargs) -> outputs``: a pure function, so it
  can be differentiated, jitted and vmapped. The kwarg stax uses is ``rng``
  (a PRNG key, for ``Dropout``); ``serial`` splits it among its layers.

Constructors are CamelCase (``Dense(10)``); some layers are already-built pairs
(``Relu``, ``Tanh``, ``Flatten``, ``Identity``, ``FanInSum``, ...), used
without a call. Params are nested tuples and lists of arrays: a pytree.

Everything here behaves exactly as JAX's stax, quirks included:

* ``Dropout(rate)``: **``rate`` is the probability of KEEPING a unit**, not of
  dropping it (JAX issue #849). Kept units are scaled by ``1 / rate``.
* ``BatchNorm`` has **no running statistics**: it normalizes with the
  statistics of the current batch in training *and* evaluation. Use
  ``BatchNormRunning`` (``fgrad.nn_stax.normalization``) for the usual kind.
* ``parallel``'s ``init_fun`` returns a ``zip`` object, which unpacks as
  ``output_shapes, params = init_fun(rng, shapes)``.
* Pooling a ``-1`` batch dimension gives ``0`` in the output shape (as JAX's
  ``lax.reduce_window_shape_tuple`` does); Dense, conv and the rest keep ``-1``.

One addition: ``Dropout`` also reads an apply-time ``mode=`` kwarg (JAX's
ignores it); ``apply_fun(params, x, mode="eval")`` turns dropout off without
rebuilding the model and then needs no ``rng``. And ``serial`` returns a
``SerialLayer`` (a tuple subclass that remembers its layers), so that
``intermediates(model)`` can return every layer's output.

Read next: ``fgrad/nn_stax/initializers.py``, ``normalization.py``, ``recurrent.py``.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import numpy as np

import fgrad.numpy as fnp
from fgrad import lax, random
from fgrad.nn import (elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, softmax, softplus,
                      standardize)
from fgrad.nn_stax.initializers import glorot_normal, normal, ones, zeros

# Backward-compatible aliases that JAX's stax exports.
glorot = glorot_normal
randn = normal
logsoftmax = log_softmax

Layer = tuple  # (init_fun, apply_fun)
Shape = tuple


# --- dense and convolutional layers -------------------------------------------------------------


def Dense(out_dim: int, W_init: Callable = glorot_normal(), b_init: Callable = normal()
          ) -> Layer:
    """A fully connected layer: ``inputs @ W + b``.

    Args:
      out_dim: the number of output features.
      W_init: the initializer of ``W``, shape ``(in_dim, out_dim)``.
      b_init: the initializer of ``b``, shape ``(out_dim,)`` (default: normal,
        stddev 0.01, as in JAX).

    Params are ``(W, b)``; the output shape is ``input_shape[:-1] + (out_dim,)``.
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        output_shape = tuple(input_shape[:-1]) + (out_dim,)
        k1, k2 = random.split(rng)
        return output_shape, (W_init(k1, (input_shape[-1], out_dim)), b_init(k2, (out_dim,)))

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        W, b = params
        return fnp.dot(inputs, W) + b
    return init_fun, apply_fun


def _kernel_shape(dimension_numbers: Sequence[str], out_chan: int, filter_shape: Sequence[int],
                  input_shape: Shape) -> list[int]:
    lhs_spec, rhs_spec, _ = dimension_numbers
    spatial = iter(filter_shape)
    return [out_chan if c == "O" else input_shape[lhs_spec.index("C")] if c == "I"
            else next(spatial) for c in rhs_spec]


def _conv_layer(transpose: bool, dimension_numbers: Sequence[str], out_chan: int,
                filter_shape: Sequence[int], strides: Sequence[int] | None, padding: Any,
                W_init: Callable | None, b_init: Callable) -> Layer:
    """``GeneralConv`` (``transpose=False``) and ``GeneralConvTranspose``, which differ only
    in the lax function and its shape rule."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    one = (1,) * len(filter_shape)
    strides = strides or one
    W_init = W_init or glorot_normal(rhs_spec.index("I"), rhs_spec.index("O"))
    shape_tuple = lax.conv_transpose_shape_tuple if transpose else lax.conv_general_shape_tuple

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        kernel_shape = _kernel_shape(dimension_numbers, out_chan, filter_shape, input_shape)
        output_shape = tuple(shape_tuple(input_shape, kernel_shape, strides, padding,
                                         dimension_numbers))
        bias_shape = [out_chan if c == "C" else 1 for c in out_spec]
        k1, k2 = random.split(rng)
        return output_shape, (W_init(k1, kernel_shape), b_init(k2, bias_shape))

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        W, b = params
        if transpose:
            out = lax.conv_transpose(inputs, W, strides, padding,
                                     dimension_numbers=dimension_numbers)
        else:
            out = lax.conv_general_dilated(inputs, W, strides, padding, one, one,
                                           dimension_numbers=dimension_numbers)
        return out + b
    return init_fun, apply_fun


def GeneralConv(dimension_numbers: Sequence[str], out_chan: int, filter_shape: Sequence[int],
                strides: Sequence[int] | None = None, padding: Any = "VALID",
                W_init: Callable | None = None, b_init: Callable = normal(1e-6)) -> Layer:
    """A convolution layer with any layout: ``conv_general_dilated(inputs, W) + b``.

    Args:
      dimension_numbers: ``(lhs_spec, rhs_spec, out_spec)`` strings such as
        ``('NHWC', 'HWIO', 'NHWC')`` (N batch, C channels, O/I kernel out/in).
      out_chan: the number of output channels.
      filter_shape: the kernel's spatial sizes, in ``rhs_spec``'s order.
      strides: spatial strides (default all 1).
      padding: ``'VALID'``, ``'SAME'`` or explicit ``(low, high)`` pairs.
      W_init: default ``glorot_normal`` with the fans at the kernel's I and O axes.
      b_init: default normal with stddev ``1e-6``; the bias has ``out_chan`` at
        the output's C axis and 1 elsewhere.
    """
    return _conv_layer(False, dimension_numbers, out_chan, filter_shape, strides, padding,
                       W_init, b_init)


def GeneralConvTranspose(dimension_numbers: Sequence[str], out_chan: int,
                         filter_shape: Sequence[int], strides: Sequence[int] | None = None,
                         padding: Any = "VALID", W_init: Callable | None = None,
                         b_init: Callable = normal(1e-6)) -> Layer:
    """A transposed convolution layer: ``lax.conv_transpose(inputs, W) + b``.

    Arguments as for ``GeneralConv``; ``padding`` describes the forward
    convolution being transposed (``'SAME'`` with stride ``s`` multiplies the
    spatial sizes by ``s``).
    """
    return _conv_layer(True, dimension_numbers, out_chan, filter_shape, strides, padding,
                       W_init, b_init)


Conv = functools.partial(GeneralConv, ("NHWC", "HWIO", "NHWC"))
Conv.__doc__ = "A 2-D convolution layer, inputs ``NHWC``, kernel ``HWIO`` (see ``GeneralConv``)."
Conv1D = functools.partial(GeneralConv, ("NWC", "WIO", "NWC"))
Conv1D.__doc__ = """A 1-D convolution layer, inputs ``NWC`` = (batch, length, channels),
kernel ``WIO``; not in JAX's stax (which only has ``Conv1DTranspose``)."""
Conv1DTranspose = functools.partial(GeneralConvTranspose, ("NHC", "HIO", "NHC"))
Conv1DTranspose.__doc__ = "A 1-D transposed convolution, inputs ``NHC``, kernel ``HIO``."
ConvTranspose = functools.partial(GeneralConvTranspose, ("NHWC", "HWIO", "NHWC"))
ConvTranspose.__doc__ = "A 2-D transposed convolution, inputs ``NHWC``, kernel ``HWIO``."


# --- batch normalization (JAX's: batch statistics only) -----------------------------------------


def BatchNorm(axis: Any = (0, 1, 2), epsilon: float = 1e-5, center: bool = True,
              scale: bool = True, beta_init: Callable = zeros, gamma_init: Callable = ones
              ) -> Layer:
    """Batch normalization, **exactly as JAX's stax: with NO running statistics**.

    WARNING: the output is always ``standardize(x, axis, epsilon=epsilon)``
    computed from the *current* batch, in training and at test time alike, so
    a model's predictions depend on the rest of its batch (and a batch of one
    example is normalized to ``beta``). For running averages used at test
    time, see ``BatchNormRunning``.

    Args:
      axis: the axes to normalize over (the batch and spatial axes; an int is
        accepted); default ``(0, 1, 2)`` for NHWC images.
      epsilon: added to the variance.
      center, scale: whether to add ``beta`` / multiply by ``gamma``.
      beta_init, gamma_init: their initializers.

    Params are ``(beta, gamma)``, each with the input shape minus the ``axis``
    dims, or ``()`` when disabled.
    """
    axis = (axis,) if np.isscalar(axis) else tuple(axis)

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        shape = tuple(d for i, d in enumerate(input_shape) if i not in axis)
        k1, k2 = random.split(rng)
        beta = beta_init(k1, shape) if center else ()
        gamma = gamma_init(k2, shape) if scale else ()
        return input_shape, (beta, gamma)

    def apply_fun(params: Any, x: Any, **kwargs: Any) -> Any:
        beta, gamma = params
        expand = tuple(None if i in axis else slice(None) for i in range(fnp.ndim(x)))
        z = standardize(x, axis, epsilon=epsilon)
        if center and scale:
            return gamma[expand] * z + beta[expand]
        if center:
            return z + beta[expand]
        if scale:
            return gamma[expand] * z
        return z
    return init_fun, apply_fun


# --- elementwise layers -------------------------------------------------------------------------


def elementwise(fun: Callable, **fun_kwargs: Any) -> Layer:
    """A parameterless layer applying ``fun(inputs, **fun_kwargs)``; shape unchanged."""
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        return input_shape, ()

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        return fun(inputs, **fun_kwargs)
    return init_fun, apply_fun


Tanh = elementwise(fnp.tanh)
Relu = elementwise(relu)
Exp = elementwise(fnp.exp)
LogSoftmax = elementwise(log_softmax, axis=-1)
Softmax = elementwise(softmax, axis=-1)
Softplus = elementwise(softplus)
Sigmoid = elementwise(sigmoid)
Elu = elementwise(elu)
LeakyRelu = elementwise(leaky_relu)  # negative slope 0.01
Selu = elementwise(selu)
Gelu = elementwise(gelu)  # the tanh approximation, jax.nn.gelu's default


# --- pooling ------------------------------------------------------------------------------------


def _window_sizes(inputs: Any, dims: Sequence[int], strides: Sequence[int], padding: Any,
                  spec: str | None) -> Any:
    """How many real (unpadded) elements each pooling window covers, broadcastable."""
    non_spatial = (0, inputs.ndim - 1) if spec is None else (spec.index("N"), spec.index("C"))
    spatial_shape = tuple(d for i, d in enumerate(inputs.shape) if i not in non_spatial)
    counts = lax.reduce_window(fnp.ones(spatial_shape, inputs.dtype), 0.0, lax.add, dims,
                               strides, padding)
    for i in sorted(non_spatial):
        counts = fnp.expand_dims(counts, i)
    return counts


def _pooling_layer(reducer: Callable, init_val: float, average: bool = False) -> Callable:
    def PoolingLayer(window_shape: Sequence[int], strides: Sequence[int] | None = None,
                     padding: Any = "VALID", spec: str | None = None) -> Layer:
        window_shape = tuple(window_shape)
        strides = tuple(strides or (1,) * len(window_shape))
        spatial_window, spatial_strides = window_shape, strides
        # The window and strides get 1s at the batch and channel axes: N first and C
        # last by default, wherever ``spec`` (e.g. 'NCHW') puts them otherwise.
        non_spatial = (0, len(window_shape) + 1) if spec is None else (spec.index("N"),
                                                                        spec.index("C"))
        for i in sorted(non_spatial):
            window_shape = window_shape[:i] + (1,) + window_shape[i:]
            strides = strides[:i] + (1,) + strides[i:]

        def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
            pads = lax.padtype_to_pads(input_shape, window_shape, strides, padding)
            ones_ = (1,) * len(window_shape)
            return tuple(lax.reduce_window_shape_tuple(input_shape, window_shape, strides, pads,
                                                       ones_, ones_)), ()

        def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
            out = lax.reduce_window(inputs, init_val, reducer, window_shape, strides, padding)
            if average:
                out = out / _window_sizes(inputs, spatial_window, spatial_strides, padding, spec)
            return out
        return init_fun, apply_fun
    return PoolingLayer


MaxPool = _pooling_layer(lax.max, -np.inf)
MaxPool.__doc__ = """Max pooling: ``MaxPool(window_shape, strides=None, padding='VALID',
spec=None)``.

``window_shape`` and ``strides`` are spatial; ``spec`` (e.g. ``'NCHW'``) says where
the batch and channel axes are (default: N first, C last). Padding never wins.
"""
SumPool = _pooling_layer(lax.add, 0.0)
SumPool.__doc__ = "Sum pooling; arguments as for ``MaxPool``."
AvgPool = _pooling_layer(lax.add, 0.0, average=True)
AvgPool.__doc__ = """Average pooling; arguments as for ``MaxPool``. Each window's sum is
divided by its number of real (unpadded) elements."""


# --- shape plumbing -----------------------------------------------------------------------------


def _flatten() -> Layer:
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        return (input_shape[0], math.prod(input_shape[1:])), ()

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        return fnp.reshape(inputs, (inputs.shape[0], -1))
    return init_fun, apply_fun


Flatten = _flatten()  # keeps the leading (batch) axis, flattens the rest


def _identity() -> Layer:
    return (lambda rng, input_shape: (input_shape, ()),
            lambda params, inputs, **kwargs: inputs)


Identity = _identity()


def FanOut(num: int) -> Layer:
    """Copies its input into a list of ``num`` (for ``parallel`` branches)."""
    return (lambda rng, input_shape: ([input_shape] * num, ()),
            lambda params, inputs, **kwargs: [inputs] * num)


def _fan_in_sum() -> Layer:
    return (lambda rng, input_shape: (input_shape[0], ()),
            lambda params, inputs, **kwargs: sum(inputs))


FanInSum = _fan_in_sum()  # sums a list of inputs; output shape = the first input's


def FanInConcat(axis: int = -1) -> Layer:
    """Concatenates a list of inputs along ``axis``."""
    def init_fun(rng: Any, input_shape: Sequence[Shape]) -> tuple[Shape, Any]:
        ax = axis % len(input_shape[0])
        size = sum(shape[ax] for shape in input_shape)
        return tuple(input_shape[0][:ax]) + (size,) + tuple(input_shape[0][ax + 1:]), ()

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        return fnp.concatenate(inputs, axis)
    return init_fun, apply_fun


# --- dropout ------------------------------------------------------------------------------------


def Dropout(rate: float, mode: str = "train") -> Layer:
    """Dropout, exactly as JAX's stax: **``rate`` is the KEEP probability**.

    WARNING (JAX issue #849): ``Dropout(0.9)`` keeps 90% of the units and
    drops 10%; it does not drop 90%. In ``'train'`` mode each unit is kept
    with probability ``rate`` (``fgrad.random.bernoulli(rng, rate, shape)``,
    the same mask as JAX's for the same key) and kept units are divided by
    ``rate``; in any other mode the inputs pass through unchanged.

    The apply function needs ``rng=`` (``ValueError`` otherwise, as in JAX).
    fgrad addition: an apply-time ``mode=`` kwarg overrides the constructor's
    mode; ``mode="eval"`` (or anything but ``"train"``) at apply time needs no
    key. ``serial`` forwards both kwargs to every layer.
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        return input_shape, ()

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        rng = kwargs.get("rng", None)
        apply_mode = kwargs.get("mode", None)
        if apply_mode is not None and apply_mode != "train":
            return inputs
        if rng is None:
            raise ValueError(
                "Dropout layer requires apply_fun to be called with a PRNG key argument. "
                "That is, instead of `apply_fun(params, inputs)`, call it like "
                "`apply_fun(params, inputs, rng=rng)` where `rng` is a PRNG key (e.g. from "
                "`fgrad.random.key`), or pass mode='eval' to turn dropout off.")
        if (apply_mode or mode) == "train":
            keep = random.bernoulli(rng, rate, inputs.shape)
            return fnp.where(keep, inputs / rate, 0)
        return inputs
    return init_fun, apply_fun


# --- combinators --------------------------------------------------------------------------------


class SerialLayer(tuple):
    """The ``(init_fun, apply_fun)`` pair built by ``serial``; it also keeps ``.layers``.

    It unpacks, indexes and compares like the plain pair JAX returns.
    """

    layers: tuple

    def __new__(cls, init_fun: Callable, apply_fun: Callable, layers: Sequence[Layer]
                ) -> SerialLayer:
        self = super().__new__(cls, (init_fun, apply_fun))
        self.layers = tuple(layers)
        return self


def _layer_rngs(rng: Any, n: int) -> Sequence[Any]:
    return (None,) * n if rng is None else [r for r in random.split(rng, n)]


def serial(*layers: Layer) -> SerialLayer:
    """Compose layers one after the other.

    ``init_fun`` splits its key once per layer (``rng, layer_rng = split(rng)``)
    and threads the shapes; params are a list with one entry per layer.
    ``apply_fun(params, inputs, rng=None, **kwargs)`` splits ``rng`` into one
    key per layer and forwards the other kwargs to every layer.

    >>> import fgrad
    >>> init, apply = serial(Dense(4), Relu, Dense(2))
    >>> shape, params = init(fgrad.random.key(0), (-1, 3))
    >>> shape, [len(p) for p in params]
    ((-1, 2), [2, 0, 2])
    """
    nlayers = len(layers)
    init_funs, apply_funs = zip(*layers) if layers else ((), ())

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, list]:
        params = []
        for init in init_funs:
            rng, layer_rng = random.split(rng)
            input_shape, param = init(layer_rng, input_shape)
            params.append(param)
        return input_shape, params

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        rngs = _layer_rngs(kwargs.pop("rng", None), nlayers)
        for fun, param, rng in zip(apply_funs, params, rngs):
            inputs = fun(param, inputs, rng=rng, **kwargs)
        return inputs
    return SerialLayer(init_fun, apply_fun, layers)


def intermediates(layer: SerialLayer | Sequence[Layer]) -> Callable[..., list]:
    """An apply function that returns the output of EVERY layer of a ``serial`` stack.

    ``intermediates(model)(params, inputs, **kwargs)`` takes the same params
    and kwargs as ``model``'s ``apply_fun`` (keys are split identically, so
    Dropout masks agree) and returns a list whose ``i``-th entry is layer
    ``i``'s output; the last entry is the model's output. Use it to look inside
    a network, e.g. to plot each layer's activation mean and std. Only the
    top level is unrolled: a nested ``serial`` contributes its final output.

    Args:
      layer: a layer built by ``serial``, or the sequence of its layers.

    >>> import fgrad, fgrad.numpy as fnp
    >>> model = serial(Dense(4), Relu, Dense(2))
    >>> _, params = model[0](fgrad.random.key(0), (5, 3))
    >>> [o.shape for o in intermediates(model)(params, fnp.ones((5, 3)))]
    [(5, 4), (5, 4), (5, 2)]
    """
    layers = layer.layers if isinstance(layer, SerialLayer) else tuple(layer)
    if layers and not all(isinstance(entry, tuple) and len(entry) == 2 for entry in layers):
        raise TypeError("intermediates: expected a layer built by serial(...) or a sequence of "
                        f"(init_fun, apply_fun) pairs, got {type(layer).__name__}")

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> list:
        rngs = _layer_rngs(kwargs.pop("rng", None), len(layers))
        outputs = []
        for (_, fun), param, rng in zip(layers, params, rngs):
            inputs = fun(param, inputs, rng=rng, **kwargs)
            outputs.append(inputs)
        return outputs
    return apply_fun


def parallel(*layers: Layer) -> Layer:
    """Apply layer ``i`` to input ``i`` of a sequence (often between ``FanOut`` and a fan-in).

    Quirk kept from JAX: ``init_fun(rng, input_shapes)`` returns a ``zip`` of
    ``(output_shape, params)`` pairs, i.e. an iterator that unpacks once as
    ``output_shapes, params``.
    """
    nlayers = len(layers)
    init_funs, apply_funs = zip(*layers) if layers else ((), ())

    def init_fun(rng: Any, input_shape: Sequence[Shape]) -> Any:
        rngs = random.split(rng, nlayers)
        return zip(*[init(r, shape) for init, r, shape in zip(init_funs, rngs, input_shape)])

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> list:
        rngs = _layer_rngs(kwargs.pop("rng", None), nlayers)
        return [f(p, x, rng=r, **kwargs)
                for f, p, x, r in zip(apply_funs, params, inputs, rngs)]
    return init_fun, apply_fun


def shape_dependent(make_layer: Callable[[Shape], Layer]) -> Layer:
    """Delay building a layer until the input shape is known.

    ``make_layer(shape)`` returns an ``(init_fun, apply_fun)`` pair; it is
    called with ``input_shape`` at init and with ``inputs.shape`` at apply.
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        return make_layer(input_shape)[0](rng, input_shape)

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        return make_layer(inputs.shape)[1](params, inputs, **kwargs)
    return init_fun, apply_fun


# --- residual blocks ----------------------------------------------------------------------------


def Residual(*layers: Layer) -> Layer:
    """A residual block: ``inputs + serial(*layers)(inputs)`` (params: ``serial``'s list).

    The inner stack must preserve the shape (``ValueError`` at init otherwise);
    ``rng`` and other kwargs are forwarded to it as ``serial`` does.
    """
    inner_init, inner_apply = serial(*layers)

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        output_shape, params = inner_init(rng, input_shape)
        if tuple(output_shape) != tuple(input_shape):
            raise ValueError(f"Residual: the inner layers map shape {tuple(input_shape)} to "
                             f"{tuple(output_shape)}; a residual block must keep the shape")
        return input_shape, params

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        return inputs + inner_apply(params, inputs, **kwargs)
    return init_fun, apply_fun


# --- embedding ----------------------------------------------------------------------------------


def Embedding(vocab_size: int, features: int, W_init: Callable = normal(1.0)) -> Layer:
    """A lookup table: integer ids of any shape -> ``W[ids]``, shape ``ids.shape + (features,)``.

    Params are the table ``W`` of shape ``(vocab_size, features)`` (default
    initializer: standard normal, as PyTorch's ``nn.Embedding``). Ids must lie
    in ``[0, vocab_size)``; out-of-range ids give NaN rows (``fnp.take``'s
    default fill mode, as in JAX).
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        return tuple(input_shape) + (features,), W_init(rng, (vocab_size, features))

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        return fnp.take(params, inputs, axis=0)
    return init_fun, apply_fun


__all__ = [
    "Dense", "GeneralConv", "Conv", "Conv1D", "GeneralConvTranspose", "Conv1DTranspose",
    "ConvTranspose", "BatchNorm", "elementwise", "Tanh", "Relu", "Exp", "LogSoftmax", "Softmax",
    "Softplus", "Sigmoid", "Elu", "LeakyRelu", "Selu", "Gelu", "MaxPool", "SumPool", "AvgPool",
    "Flatten", "Identity", "FanOut", "FanInSum", "FanInConcat", "Dropout", "serial",
    "parallel", "shape_dependent", "SerialLayer", "intermediates", "Residual", "Embedding",
    "relu", "log_softmax", "softmax", "softplus", "sigmoid", "elu", "leaky_relu", "selu",
    "gelu", "standardize", "glorot_normal", "normal", "ones", "zeros", "glorot", "randn",
    "logsoftmax",
]
