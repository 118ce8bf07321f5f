"""``fgrad.nn_stax``: neural-network layers as ``(init_fun, apply_fun)`` pairs (JAX's stax).

A drop-in for ``jax.example_libraries.stax``: every name it exports, with the
same signatures, shapes, parameter layouts and numbers (the same key gives the
same initial parameters, the same params and inputs the same outputs), and
its quirks kept on purpose:

* **``Dropout(rate)``: ``rate`` is the KEEP probability** (JAX issue #849).
* **``BatchNorm`` uses the current batch's statistics in training AND
  evaluation** (no running averages; see ``BatchNormRunning``).
* ``parallel``'s ``init_fun`` returns a ``zip``.

Quick start::

    import fgrad, fgrad.numpy as fnp
    from fgrad import nn_stax as stax

    init_fun, apply_fun = stax.serial(stax.Dense(128), stax.Relu, stax.Dense(10),
                                      stax.LogSoftmax)
    out_shape, params = init_fun(fgrad.random.key(0), (-1, 784))
    logits = apply_fun(params, fnp.ones((32, 784)))

Beyond JAX's stax, in the same style:

* normalization (``normalization.py``): ``LayerNorm``, ``GroupNorm``,
  ``InstanceNorm``, and ``BatchNormRunning`` with explicit state
  (``StatefulLayer``, ``stateful``, ``serial_stateful``);
* ``Conv1D`` (``NWC``), ``Embedding``, ``Residual(*layers)``;
* recurrent layers over ``lax.scan`` (``recurrent.py``): ``LSTM``, ``GRU``;
* ``MultiHeadSelfAttention`` with an optional causal mask (``attention.py``);
* ``intermediates(model)``: every layer's output of a ``serial`` stack;
* ``initializers``: ``jax.nn.initializers``' glorot/he/lecun/orthogonal/... .

Read next: ``layers.py`` (the stax core), then ``initializers.py``.
"""

from __future__ import annotations

from fgrad.nn_stax import initializers  # noqa: F401
from fgrad.nn_stax.attention import *  # noqa: F401, F403
from fgrad.nn_stax.attention import __all__ as _attention_all
from fgrad.nn_stax.layers import *  # noqa: F401, F403
from fgrad.nn_stax.layers import __all__ as _layers_all
from fgrad.nn_stax.normalization import *  # noqa: F401, F403
from fgrad.nn_stax.normalization import __all__ as _normalization_all
from fgrad.nn_stax.recurrent import *  # noqa: F401, F403
from fgrad.nn_stax.recurrent import __all__ as _recurrent_all

__all__ = ["initializers", *_layers_all, *_normalization_all, *_recurrent_all,
           *_attention_all]
