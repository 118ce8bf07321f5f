"""Recurrent layers in stax style: ``LSTM`` and ``GRU``, each one ``fgrad.lax.scan``.

Inputs are batch-major, ``(batch, time, features)``. The input projection
``x_t @ W + b`` of every step is computed at once (one big matmul), then a
``scan`` over time carries the hidden state and applies only the recurrent
part ``h @ U`` per step, so the loop body stays small and ``grad`` of the
layer is the scan's transpose (backpropagation through time). The initial
state is zero.

Output: with ``return_sequences=True`` (the default) the hidden state of
every step, ``(batch, time, hidden)``; otherwise only the last one,
``(batch, hidden)`` (e.g. to feed a classifier).

Gate layouts (the columns of ``W``, ``U`` and ``b``), PyTorch's:

* LSTM: ``[i, f, g, o]`` (input, forget, cell candidate, output)::

      c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(c')

* GRU: ``[r, z, n]`` (reset, update, candidate), with the reset gate applied
  to the recurrent projection *including its bias*::

      n = tanh(x W_n + b_in + sigmoid(r) * (h U_n + b_hn));   h' = (1 - z) * n + z * h

Read next: ``fgrad/primitives/control_flow/scan.py``.
"""

from __future__ import annotations

from typing import Any, Callable

import fgrad.numpy as fnp
from fgrad import lax, random
from fgrad.nn import sigmoid
from fgrad.nn_stax.initializers import glorot_normal, orthogonal, zeros
from fgrad.nn_stax.layers import Layer, Shape


def _check_input(name: str, shape: Shape) -> None:
    if len(shape) != 3:
        raise ValueError(f"{name}: inputs must be (batch, time, features), got shape "
                         f"{tuple(shape)}")


def _output_shape(input_shape: Shape, hidden: int, return_sequences: bool) -> Shape:
    batch, time, _ = input_shape
    return (batch, time, hidden) if return_sequences else (batch, hidden)


def _run(step: Callable, carry: Any, projected: Any, return_sequences: bool) -> Any:
    """Scan ``step`` over the time axis of batch-major ``projected``; hidden states out."""
    _, hs = lax.scan(step, carry, fnp.swapaxes(projected, 0, 1))
    # NOTE: the last hidden state is read from ``hs`` rather than the final carry, so that
    # a zero-length sequence fails loudly instead of returning the zero initial state.
    return fnp.swapaxes(hs, 0, 1) if return_sequences else hs[-1]


def LSTM(hidden_size: int, W_init: Callable = glorot_normal(), U_init: Callable = orthogonal(),
         b_init: Callable = zeros, return_sequences: bool = True) -> Layer:
    """A long short-term memory layer (Hochreiter & Schmidhuber 1997) over ``lax.scan``.

    Args:
      hidden_size: the size ``H`` of the hidden and cell states.
      W_init: initializer of the input weights ``W``, shape ``(features, 4H)``.
      U_init: initializer of the recurrent weights ``U``, shape ``(H, 4H)``
        (default orthogonal, which needs a concrete key: initialize outside jit).
      b_init: initializer of the bias ``b``, shape ``(4H,)``.
      return_sequences: return every step's hidden state ``(batch, time, H)``
        (default) or only the last one ``(batch, H)``.

    Params are ``(W, U, b)``, gates ordered ``[i, f, g, o]`` (see the module docstring).
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        _check_input("LSTM", input_shape)
        k1, k2, k3 = random.split(rng, 3)
        params = (W_init(k1, (input_shape[-1], 4 * hidden_size)),
                  U_init(k2, (hidden_size, 4 * hidden_size)), b_init(k3, (4 * hidden_size,)))
        return _output_shape(input_shape, hidden_size, return_sequences), params

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        _check_input("LSTM", inputs.shape)
        W, U, b = params
        projected = fnp.dot(inputs, W) + b

        def step(carry: Any, x_proj: Any) -> tuple[Any, Any]:
            h, c = carry
            i, f, g, o = fnp.split(x_proj + fnp.dot(h, U), 4, axis=-1)
            c = sigmoid(f) * c + sigmoid(i) * fnp.tanh(g)
            h = sigmoid(o) * fnp.tanh(c)
            return (h, c), h

        zero = fnp.zeros((inputs.shape[0], hidden_size), projected.dtype)
        return _run(step, (zero, zero), projected, return_sequences)
    return init_fun, apply_fun


def GRU(hidden_size: int, W_init: Callable = glorot_normal(), U_init: Callable = orthogonal(),
        b_init: Callable = zeros, return_sequences: bool = True) -> Layer:
    """A gated recurrent unit layer (Cho et al. 2014) over ``lax.scan``.

    Args:
      hidden_size: the size ``H`` of the hidden state.
      W_init: initializer of the input weights ``W``, shape ``(features, 3H)``.
      U_init: initializer of the recurrent weights ``U``, shape ``(H, 3H)``
        (default orthogonal: initialize outside jit).
      b_init: initializer of both biases ``b_in`` and ``b_h``, shape ``(3H,)``.
      return_sequences: as for ``LSTM``.

    Params are ``(W, U, b_in, b_h)``, gates ordered ``[r, z, n]``.
    """
    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        _check_input("GRU", input_shape)
        k1, k2, k3, k4 = random.split(rng, 4)
        H3 = 3 * hidden_size
        params = (W_init(k1, (input_shape[-1], H3)), U_init(k2, (hidden_size, H3)),
                  b_init(k3, (H3,)), b_init(k4, (H3,)))
        return _output_shape(input_shape, hidden_size, return_sequences), params

    def apply_fun(params: Any, inputs: Any, **kwargs: Any) -> Any:
        _check_input("GRU", inputs.shape)
        W, U, b_in, b_h = params
        projected = fnp.dot(inputs, W) + b_in

        def step(h: Any, x_proj: Any) -> tuple[Any, Any]:
            x_r, x_z, x_n = fnp.split(x_proj, 3, axis=-1)
            h_r, h_z, h_n = fnp.split(fnp.dot(h, U) + b_h, 3, axis=-1)
            r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
            n = fnp.tanh(x_n + r * h_n)
            h = (1 - z) * n + z * h
            return h, h

        zero = fnp.zeros((inputs.shape[0], hidden_size), projected.dtype)
        return _run(step, zero, projected, return_sequences)
    return init_fun, apply_fun


__all__ = ["LSTM", "GRU"]
