"""Multi-head self-attention in stax style (Vaswani et al. 2017).

For inputs ``x`` of shape ``(batch, time, d_model)``, each of ``H`` heads
projects ``x`` to queries, keys and values of size ``head_dim``, and every
position takes a softmax-weighted average of the values::

    q, k, v = x @ W_q + b_q, x @ W_k + b_k, x @ W_v + b_v      # split into H heads
    weights = softmax(q k^T / sqrt(head_dim))                  # (batch, H, time, time)
    out = concat_heads(weights @ v) @ W_o + b_o                # (batch, time, out_dim)

Masking: ``causal=True`` lets position ``t`` attend only to positions
``<= t`` (autoregressive models); an apply-time ``mask=`` (booleans, True =
may attend, broadcastable to ``(batch, H, time, time)``) is combined with it.
Masked logits are replaced by the dtype's most negative finite number, not
``-inf``, so a fully masked row gives uniform weights instead of NaN.

Read next: ``fgrad/nn/__init__.py`` (``softmax``).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

import fgrad.numpy as fnp
from fgrad import random
from fgrad.nn import softmax
from fgrad.nn_stax.initializers import glorot_normal, zeros
from fgrad.nn_stax.layers import Layer, Shape


def MultiHeadSelfAttention(num_heads: int, head_dim: int | None = None,
                           out_dim: int | None = None, causal: bool = False,
                           W_init: Callable = glorot_normal(), b_init: Callable = zeros
                           ) -> Layer:
    """Multi-head self-attention over inputs ``(batch, time, d_model)``.

    Args:
      num_heads: the number of heads ``H``.
      head_dim: the size of each head's queries, keys and values (default
        ``d_model // num_heads``; then ``d_model`` must be divisible by ``H``).
      out_dim: the output features (default ``d_model``).
      causal: mask out attention to later positions.
      W_init, b_init: initializers of the projection weights and biases.

    Params are ``((W_q, b_q), (W_k, b_k), (W_v, b_v), (W_o, b_o))`` with
    ``W_q, W_k, W_v`` of shape ``(d_model, H * head_dim)`` and ``W_o`` of shape
    ``(H * head_dim, out_dim)``. ``apply_fun(params, x, mask=None)`` returns
    ``(batch, time, out_dim)``.
    """
    def sizes(input_shape: Shape) -> tuple[int, int]:
        if len(input_shape) != 3:
            raise ValueError("MultiHeadSelfAttention: inputs must be (batch, time, d_model), "
                             f"got shape {tuple(input_shape)}")
        d_model = input_shape[-1]
        if head_dim is None and d_model % num_heads:
            raise ValueError(f"MultiHeadSelfAttention: d_model={d_model} is not divisible by "
                             f"num_heads={num_heads}; pass head_dim explicitly")
        return d_model, head_dim or d_model // num_heads

    def init_fun(rng: Any, input_shape: Shape) -> tuple[Shape, Any]:
        d_model, dh = sizes(input_shape)
        d_out = out_dim or d_model
        keys = random.split(rng, 8)
        shapes = [(d_model, num_heads * dh)] * 3 + [(num_heads * dh, d_out)]
        params = tuple((W_init(keys[2 * i], w_shape), b_init(keys[2 * i + 1], w_shape[-1:]))
                       for i, w_shape in enumerate(shapes))
        return (*input_shape[:-1], d_out), params

    def apply_fun(params: Any, x: Any, mask: Any = None, **kwargs: Any) -> Any:
        _, dh = sizes(x.shape)
        batch, time, _ = x.shape
        (W_q, b_q), (W_k, b_k), (W_v, b_v), (W_o, b_o) = params

        def heads(W: Any, b: Any) -> Any:  # (batch, time, H * dh) -> (batch, H, time, dh)
            y = fnp.reshape(fnp.dot(x, W) + b, (batch, time, num_heads, dh))
            return fnp.transpose(y, (0, 2, 1, 3))

        q, k, v = heads(W_q, b_q), heads(W_k, b_k), heads(W_v, b_v)
        logits = fnp.matmul(q, fnp.swapaxes(k, -1, -2)) / np.sqrt(dh).astype(q.dtype)
        allowed = None
        if causal:
            allowed = fnp.tril(fnp.ones((time, time), bool))
        if mask is not None:
            allowed = mask if allowed is None else fnp.logical_and(allowed, mask)
        if allowed is not None:
            logits = fnp.where(allowed, logits, fnp.finfo(logits.dtype).min)
        out = fnp.matmul(softmax(logits, axis=-1), v)  # (batch, H, time, dh)
        out = fnp.reshape(fnp.transpose(out, (0, 2, 1, 3)), (batch, time, num_heads * dh))
        return fnp.dot(out, W_o) + b_o
    return init_fun, apply_fun


__all__ = ["MultiHeadSelfAttention"]
