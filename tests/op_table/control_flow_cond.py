"""Op-table records for ``cond``/``switch`` (primitive ``cond``) and ``while_loop`` (``while``).

The predicate, index and trip count are drawn like any other argument (bool
or int), so the generic suites run every branch, clamp out-of-range switch
indices, and, under ``vmap`` with random axes, batch the predicate (the
select path) as well as the operands.

The cond records are differentiable: the generic suite checks JVP and VJP
to second order with the predicate held fixed. ``while_loop`` is forward-
differentiable only (reverse mode raises JAX's error, by design), and the
generic derivative suite needs reverse mode, so its records set
``diff=False``; ``tests/control_flow/test_while_loop.py`` checks its JVP,
``jacfwd`` and ``linearize`` against JAX, and the reverse-mode error.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import fgrad.numpy as fnp
from fgrad.primitives.control_flow.conditionals import cond, switch
from fgrad.primitives.control_flow.loops import while_loop
from op_table import Arg, Rec

W = np.array([[0.5, -1.0], [0.25, 2.0], [-0.75, 0.1]], np.float32)  # closed over (a const)


def _cond_pytree(lib: Any, c: Any) -> Any:
    def f(p: Any, x: Any, y: Any) -> Any:
        def true_fun(ops: Any) -> Any:
            a, b = ops["a"], ops["b"]
            return lib.sin(a) * b, lib.sum(lib.exp(a * 0.5)) + b[0]

        def false_fun(ops: Any) -> Any:
            a, b = ops["a"], ops["b"]
            return lib.cos(a * b), lib.sum(a * a)
        return c(p, true_fun, false_fun, {"a": x, "b": y})
    return f


def _cond_int_pred(lib: Any, c: Any) -> Any:
    return lambda n, x: c(n, lambda v: lib.tanh(v) @ W, lambda v: (v * v) @ W, x)


def _cond_closure(lib: Any, c: Any) -> Any:
    # the branches read x and w from the enclosing scope (no operands at all)
    def f(p: Any, x: Any, w: Any) -> Any:
        return c(p, lambda: lib.sin(x) * w, lambda: x / (1.5 + w * w))
    return f


def _cond_linear(lib: Any, c: Any) -> Any:
    # linear in (x, y) for a fixed predicate: the generic suite checks the transpose rule
    def f(p: Any, x: Any, y: Any) -> Any:
        return c(p, lambda a, b: (a * 2.0 + b, lib.sum(b) - a[0]),
                 lambda a, b: (a - b * 3.0, a[1] * 0.5), x, y)
    return f


def _switch(lib: Any, s: Any) -> Any:
    branches = [lambda x, y: x * y, lambda x, y: lib.sin(x) + y, lambda x, y: lib.exp(-x * x) * y,
                lambda x, y: x]
    return lambda i, x, y: s(i, branches, x, y)


def _while_counter(lib: Any, wl: Any) -> Any:
    def f(n: Any, x: Any) -> Any:
        out = wl(lambda c: c[0] < n,
                 lambda c: (c[0] + 1, lib.sin(c[1]) * 0.9 + c[1] * 0.5), (0, x))
        return out[1], out[0]
    return f


def _while_float_pred(lib: Any, wl: Any) -> Any:
    # the predicate depends on a float carry: under vmap each lane stops on its own
    def f(x: Any, y: Any) -> Any:
        return wl(lambda c: lib.sum(c[0]) < 6.0, lambda c: (c[0] * 1.5 + 0.1, c[1] + c[0]),
                  (x, y))
    return f


RECORDS = [
    Rec("cond_pytree", _cond_pytree(fnp, cond), [Arg((), "bool"), Arg((3,)), Arg((3,))],
        _cond_pytree(jnp, jax.lax.cond), prims=("cond",), dtypes=(np.float32, np.float16)),
    Rec("cond_int_predicate", _cond_int_pred(fnp, cond),
        [Arg((), "int", domain=(-1, 2)), Arg((2, 3))], _cond_int_pred(jnp, jax.lax.cond),
        prims=("cond",)),
    Rec("cond_closure_no_operands", _cond_closure(fnp, cond),
        [Arg((), "bool"), Arg((4,)), Arg(())], _cond_closure(jnp, jax.lax.cond),
        prims=("cond",)),
    Rec("cond_linear", _cond_linear(fnp, cond), [Arg((), "bool"), Arg((2,)), Arg((2,))],
        _cond_linear(jnp, jax.lax.cond), prims=("cond",), linear=True),
    Rec("switch_clamped_index", _switch(fnp, switch),
        [Arg((), "int", domain=(-2, 6)), Arg((2, 2)), Arg((2, 2))], _switch(jnp, jax.lax.switch),
        prims=("cond",)),
    Rec("while_loop_counter", _while_counter(fnp, while_loop),
        [Arg((), "int", domain=(-1, 6)), Arg((3,))], _while_counter(jnp, jax.lax.while_loop),
        prims=("while",), diff=False),
    Rec("while_loop_float_predicate", _while_float_pred(fnp, while_loop),
        [Arg((2,), domain=(0.5, 2.0)), Arg((2,))], _while_float_pred(jnp, jax.lax.while_loop),
        prims=("while",), diff=False),
]
