"""Op-table records for ``fgrad.nn`` and ``fgrad.scipy.special``, against ``jax.nn`` and
``jax.scipy.special``.

Activations are drawn away from their kinks (``relu`` at 0, ``hard_tanh`` at
+-1, ...); the kinks, extreme logits (``1e4``, ``inf``) and masked softmaxes
are tested against ``jax.grad`` in ``tests/nn/test_nn.py``.
"""

from __future__ import annotations

import jax
import jax.scipy.special as jsp
import ml_dtypes
import numpy as np

import fgrad.nn as nn
import fgrad.scipy.special as sp
from op_table import Arg, Rec

F16S = (np.float32, np.float16, ml_dtypes.bfloat16)
F16 = (np.float32, np.float16)
S = (2, 3)


def _act(name: str, avoid: tuple[float, ...] = (), domain: tuple[float, float] = (-4.0, 4.0),
         **kw: object) -> Rec:
    kw.setdefault("dtypes", F16)
    return Rec(f"nn_{name}", getattr(nn, name), [Arg(S, domain=domain, avoid=avoid)],
               getattr(jax.nn, name), **kw)  # type: ignore[arg-type]


def _special(name: str, domain: tuple[float, float] = (-2.0, 2.0), **kw: object) -> Rec:
    kw.setdefault("dtypes", F16)
    return Rec(f"special_{name}", getattr(sp, name), [Arg(S, domain=domain)],
               getattr(jsp, name), **kw)  # type: ignore[arg-type]


# fmt: off
ACTIVATIONS = [
    _act("relu", avoid=(0.0,), dtypes=F16S), _act("relu6", avoid=(0.0, 6.0), domain=(-2.0, 8.0)),
    _act("sigmoid", dtypes=F16S), _act("softplus"), _act("log_sigmoid"),
    _act("soft_sign", avoid=(0.0,)), _act("silu"), _act("swish"), _act("mish"),
    _act("squareplus"), _act("gelu"), _act("elu", avoid=(0.0,)), _act("selu", avoid=(0.0,)),
    _act("celu", avoid=(0.0,)), _act("leaky_relu", avoid=(0.0,)),
    _act("hard_tanh", avoid=(-1.0, 1.0)), _act("hard_sigmoid", avoid=(-3.0, 3.0)),
    _act("hard_silu", avoid=(-3.0, 3.0)), _act("hard_swish", avoid=(-3.0, 3.0)),
    _act("identity", linear=True),
    Rec("nn_gelu_exact", lambda x: nn.gelu(x, approximate=False), [Arg(S)],
        lambda x: jax.nn.gelu(x, approximate=False), dtypes=F16),
    Rec("nn_elu_alpha", lambda x: nn.elu(x, 0.5), [Arg(S, avoid=(0.0,))],
        lambda x: jax.nn.elu(x, 0.5)),
    Rec("nn_leaky_relu_slope", lambda x: nn.leaky_relu(x, 0.2), [Arg(S, avoid=(0.0,))],
        lambda x: jax.nn.leaky_relu(x, 0.2)),
    Rec("nn_celu_alpha", lambda x: nn.celu(x, 2.0), [Arg(S, avoid=(0.0,))],
        lambda x: jax.nn.celu(x, 2.0)),
    Rec("nn_glu", nn.glu, [Arg((3, 4))], jax.nn.glu, dtypes=F16),
    Rec("nn_glu_axis0", lambda x: nn.glu(x, 0), [Arg((2, 3))], lambda x: jax.nn.glu(x, 0)),
    Rec("nn_relu_int", nn.relu, [Arg(S, kind="int", domain=(-3, 4))], jax.nn.relu),
]
SOFTMAX = [
    Rec("nn_softmax", nn.softmax, [Arg((3, 4))], jax.nn.softmax, dtypes=F16S),
    Rec("nn_softmax_axis0", lambda x: nn.softmax(x, axis=0), [Arg((3, 4))],
        lambda x: jax.nn.softmax(x, axis=0)),
    Rec("nn_softmax_axes", lambda x: nn.softmax(x, axis=(0, 2)), [Arg((2, 3, 2))],
        lambda x: jax.nn.softmax(x, axis=(0, 2))),
    Rec("nn_softmax_all", lambda x: nn.softmax(x, axis=None), [Arg((2, 3))],
        lambda x: jax.nn.softmax(x, axis=None)),
    Rec("nn_softmax_where", lambda x, m: nn.softmax(x, where=m), [Arg((3, 4)),
                                                                  Arg((3, 4), kind="bool")],
        lambda x, m: jax.nn.softmax(x, where=m)),
    Rec("nn_softmax_wide", nn.softmax, [Arg((2, 5), domain=(-50.0, 50.0))], jax.nn.softmax,
        grad_tol=1e-5),
    Rec("nn_log_softmax", nn.log_softmax, [Arg((3, 4))], jax.nn.log_softmax, dtypes=F16S),
    Rec("nn_log_softmax_axis0", lambda x: nn.log_softmax(x, axis=0), [Arg((3, 4))],
        lambda x: jax.nn.log_softmax(x, axis=0)),
    Rec("nn_log_softmax_where", lambda x, m: nn.log_softmax(x, where=m),
        [Arg((3, 4)), Arg((3, 4), kind="bool")], lambda x, m: jax.nn.log_softmax(x, where=m),
        diff=False),  # -inf where masked: no finite differences there
    Rec("nn_logsumexp", nn.logsumexp, [Arg((3, 4))], jax.nn.logsumexp, dtypes=F16),
    # (a ramp keeps the variance away from 0, where rsqrt(var + 1e-5) is very curved)
    Rec("nn_standardize", nn.standardize, [Arg((3, 4))], jax.nn.standardize, dtypes=F16,
        prepare=lambda x: (x + 0.7 * np.arange(4),)),
    Rec("nn_standardize_given", lambda x, m, v: nn.standardize(x, 0, m, v),
        [Arg((3, 4)), Arg((4,)), Arg((4,), domain=(0.5, 2.0))],
        lambda x, m, v: jax.nn.standardize(x, 0, m, v)),
    Rec("nn_one_hot", lambda x: nn.one_hot(x, 4), [Arg((2, 3), kind="int", domain=(-1, 5))],
        lambda x: jax.nn.one_hot(x, 4)),
    Rec("nn_one_hot_axis0_int", lambda x: nn.one_hot(x, 3, dtype=np.int32, axis=0),
        [Arg((4,), kind="int", domain=(0, 3))],
        lambda x: jax.nn.one_hot(x, 3, dtype=np.int32, axis=0)),
]
SPECIAL = [
    Rec("special_logsumexp", sp.logsumexp, [Arg((3, 4))], jsp.logsumexp, dtypes=F16),
    Rec("special_logsumexp_axis_keepdims", lambda a: sp.logsumexp(a, axis=1, keepdims=True),
        [Arg((3, 4))], lambda a: jsp.logsumexp(a, axis=1, keepdims=True)),
    Rec("special_logsumexp_axes", lambda a: sp.logsumexp(a, axis=(0, 2)), [Arg((2, 3, 2))],
        lambda a: jsp.logsumexp(a, axis=(0, 2))),
    Rec("special_logsumexp_b", lambda a, b: sp.logsumexp(a, axis=-1, b=b),
        [Arg((3, 4)), Arg((4,), domain=(0.5, 2.0))],
        lambda a, b: jsp.logsumexp(a, axis=-1, b=b)),
    Rec("special_logsumexp_sign", lambda a, b: sp.logsumexp(a, axis=0, b=b, return_sign=True),
        [Arg((3, 4)), Arg((3, 4), domain=(-2.0, 2.0), avoid=(0.0,))],
        lambda a, b: jsp.logsumexp(a, axis=0, b=b, return_sign=True),
        diff=False),  # the sum of b * exp(a) may cross 0: log|.| has a pole there
    Rec("special_logsumexp_where", lambda a, m: sp.logsumexp(a, axis=1, where=m),
        [Arg((3, 4)), Arg((3, 4), kind="bool")], lambda a, m: jsp.logsumexp(a, axis=1, where=m),
        diff=False),  # an all-False row gives -inf
    _special("expit", dtypes=F16S), _special("logit", domain=(0.2, 0.8)),
    _special("erf"), _special("erfc"), _special("erfinv", domain=(-0.7, 0.7)),
    # (gammaln: first order only, digamma: none, since digamma has no JVP rule yet)
    _special("gammaln", domain=(0.5, 3.0), order=1),
    _special("digamma", domain=(0.5, 3.0), diff=False),
    _special("entr", domain=(0.1, 2.0)), _special("ndtr", dtypes=(np.float32,)),
    Rec("special_xlogy", sp.xlogy, [Arg(S), Arg(S, domain=(0.5, 2.0))], jsp.xlogy, dtypes=F16),
    Rec("special_xlog1py", sp.xlog1py, [Arg(S), Arg(S, domain=(-0.5, 2.0))], jsp.xlog1py,
        dtypes=F16),
    Rec("special_xlogy_zeros", sp.xlogy,
        [Arg((3,), kind="const", value=np.array([0.0, 0.0, 1.0], np.float32)),
         Arg((3,), kind="const", value=np.array([0.0, 2.0, 0.0], np.float32))], jsp.xlogy),
]
# fmt: on

RECORDS: list[Rec] = ACTIVATIONS + SOFTMAX + SPECIAL
