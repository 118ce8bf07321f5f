"""Op-table records for the loops with a static trip count: ``scan``, ``fori_loop`` (static
bounds, which lower to scan) and ``map``.

Each record is a whole loop written once per library (``lib`` is ``fgrad.numpy`` with
fgrad's loops, or ``jax.numpy`` with ``jax.lax``'s), so the generic suites compare values,
weak types, JVPs, VJPs and second derivatives of the ``scan`` primitive's rules with JAX.
The bodies cover closed-over consts (weights), pytree carries/xs/ys with ``None`` leaves,
``reverse``, ``unroll``, ``xs=None`` with ``length``, an integer carry next to a float one,
nested scans, and two loops that are linear in their inputs (transpose rule checked by the
dot-product test), one of them starting from a literal ``0.0`` carry.
"""

from __future__ import annotations

import types
from typing import Any

import jax
import jax.numpy as jnp

import fgrad.numpy as fnp
from fgrad.primitives.control_flow.scan import fori_loop, map as fmap, scan
from op_table import Arg, Rec

FG = types.SimpleNamespace(np=fnp, scan=scan, fori_loop=fori_loop, map=fmap)
JX = types.SimpleNamespace(np=jnp, scan=jax.lax.scan, fori_loop=jax.lax.fori_loop,
                           map=jax.lax.map)


def rnn(lib: Any, w: Any, h0: Any, xs: Any, **kw: Any) -> Any:
    def cell(h: Any, x: Any) -> Any:
        h = lib.np.tanh(lib.np.dot(w, h) + x)
        return h, (h, h * x)
    return lib.scan(cell, h0, xs, **kw)


def pytree(lib: Any, a: Any, xa: Any, xb: Any) -> Any:
    def body(carry: Any, x: Any) -> Any:
        s, d = carry
        s2 = lib.np.sin(s) * x["b"][0] + d["m"]
        d2 = {"m": d["m"] * 0.5 + lib.np.sum(x["a"]) * s, "v": d["v"] * x["a"]}
        return (s2, d2), (s2 * a, None, d2["v"])
    init = (a, {"m": 0.5 * a, "v": lib.np.ones(2)})
    return lib.scan(body, init, {"a": xa, "b": (xb, None)}, reverse=True)


def no_xs(lib: Any, a: Any) -> Any:
    return lib.scan(lambda c, _: (lib.np.sin(c) * a, c * a), lib.np.ones(2), None, length=3)


def counter(lib: Any, x0: Any, xs: Any) -> Any:
    def body(c: Any, x: Any) -> Any:
        i, v = c
        return (i + 1, lib.np.cos(v) * x + i), v * i
    return lib.scan(body, (0, x0), xs, unroll=2)


def nested(lib: Any, w: Any, xs: Any) -> Any:
    def outer(c: Any, x: Any) -> Any:
        c2, ys = lib.scan(lambda cc, xx: (lib.np.sin(cc * w + xx), cc * xx), c, x)
        return c2 * 0.9, lib.np.sum(ys)
    return lib.scan(outer, w, xs)


def linear(lib: Any, h0: Any, xs: Any) -> Any:
    return lib.scan(lambda c, x: (0.5 * c + x, 2.0 * c - x), h0, xs, reverse=True)


def cumsum(lib: Any, xs: Any) -> Any:
    return lib.scan(lambda c, x: (c + x, c), 0.0, xs)


def fori(lib: Any, w: Any, x0: Any) -> Any:
    return lib.fori_loop(1, 5, lambda i, x: lib.np.sin(x * w) + 0.1 * i, x0)


def mapped(lib: Any, xs: Any, batch_size: Any = None) -> Any:
    return lib.map(lambda x: (lib.np.sin(x) * lib.np.sum(x), lib.np.sum(x * x)), xs,
                   batch_size=batch_size)


def _rec(name: str, fn: Any, args: list[Arg], prims: tuple[str, ...] = ("scan",),
         **kw: Any) -> Rec:
    kw.setdefault("rtol", 1e-5)  # loops accumulate float32 rounding
    return Rec(name, lambda *a: fn(FG, *a), args, lambda *a: fn(JX, *a), prims=prims, **kw)


RECORDS = [
    _rec("scan_rnn", rnn, [Arg((3, 3), domain=(-1.0, 1.0)), Arg((3,)), Arg((4, 3))],
         prims=("scan", "dot_general", "tanh")),
    _rec("scan_rnn_reverse_unroll", lambda lib, *a: rnn(lib, *a, reverse=True, unroll=3),
         [Arg((2, 2), domain=(-1.0, 1.0)), Arg((2,)), Arg((5, 2))]),
    _rec("scan_pytree_reverse", pytree, [Arg(()), Arg((3, 2)), Arg((3,))]),
    _rec("scan_no_xs_length", no_xs, [Arg(())]),
    _rec("scan_int_counter", counter, [Arg((2,)), Arg((4, 2))]),
    _rec("scan_nested", nested, [Arg(()), Arg((3, 2))]),
    _rec("scan_linear", linear, [Arg((2,)), Arg((4, 2))], linear=True),
    _rec("scan_cumsum_literal_init", cumsum, [Arg((5,))], linear=True),
    _rec("scan_length_one", lambda lib, *a: rnn(lib, *a), [Arg((2, 2), domain=(-1.0, 1.0)),
                                                           Arg((2,)), Arg((1, 2))]),
    _rec("fori_loop_static", fori, [Arg((), domain=(-1.0, 1.0)), Arg((3,))]),
    _rec("map", mapped, [Arg((4, 3))]),
    _rec("map_batch_size", lambda lib, xs: mapped(lib, xs, batch_size=2), [Arg((5, 3))],
         prims=("scan", "reshape", "concatenate")),
]
