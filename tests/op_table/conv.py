"""Op-table records for the conv family: ``conv_general_dilated`` and its wrappers,
``reduce_window`` (sum, max, min, average pooling) and the max-pooling derivative
pair ``select_and_gather_add`` / ``select_and_scatter_add``.

Convolution is bilinear: the records with both operands drawn check values and
derivatives; the ``*_lhs`` / ``*_rhs`` records fix the other operand (a "const"
argument), so the generic suite's dot-product test checks each transpose rule.
Max/min pooling records draw operands without ties (``_distinct``): at a tie the
derivative jumps and finite differences are meaningless; the focused tests in
``tests/primitives/test_conv.py`` check JAX's tie convention.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax as jlax

from fgrad import lax
from op_table import Arg, Rec

F16 = (np.float32, np.float16)
_rng = np.random.default_rng(0)


def _distinct(*values: np.ndarray) -> list[np.ndarray]:
    """Each float array's values replaced by a shuffled grid 0.05 apart: no ties."""
    out = []
    for v in values:
        ranks = np.argsort(np.argsort(v.ravel()))
        out.append((ranks * 0.05 - 0.025 * v.size).reshape(v.shape))
    return out


# (name, lhs shape, rhs shape, params): every geometry feature at least once.
_CONVS: list[tuple[str, tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ("2d_valid", (2, 3, 5, 5), (4, 3, 3, 3), dict(window_strides=(1, 1), padding="VALID")),
    ("2d_same_strided", (2, 3, 6, 5), (4, 3, 3, 2), dict(window_strides=(2, 1), padding="SAME")),
    ("2d_same_lower", (1, 2, 5, 4), (3, 2, 2, 2),
     dict(window_strides=(2, 2), padding="SAME_LOWER")),
    ("2d_nhwc", (2, 5, 4, 3), (3, 2, 3, 4),
     dict(window_strides=(1, 2), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ("2d_mixed_layouts", (3, 5, 2, 4), (2, 3, 3, 2),
     dict(window_strides=(1, 1), padding=((1, 0), (0, 1)),
          dimension_numbers=("HNCW", "OHWI", "WCNH"))),
    ("1d_dilated_negpad", (2, 2, 9), (3, 2, 3),
     dict(window_strides=(2,), padding=((2, -1),), lhs_dilation=(2,), rhs_dilation=(2,))),
    ("3d", (1, 2, 4, 3, 5), (2, 2, 2, 2, 3),
     dict(window_strides=(1, 2, 1), padding=((1, 0), (0, 0), (1, 1)), rhs_dilation=(1, 1, 2))),
    ("2d_groups", (2, 6, 5, 4), (4, 3, 2, 3),
     dict(window_strides=(1, 2), padding="SAME", feature_group_count=2)),
    ("2d_depthwise", (1, 3, 5, 5), (6, 1, 3, 3),
     dict(window_strides=(1, 1), padding=((1, 1), (2, 0)), feature_group_count=3)),
    ("1d_batch_groups", (4, 3, 6), (4, 3, 2),
     dict(window_strides=(1,), padding=((0, 1),), batch_group_count=2)),
]

# The geometries whose transposes the generic dot-product test checks separately.
_LINEAR_CHECKED = ("2d_mixed_layouts", "1d_dilated_negpad", "3d", "2d_groups",
                   "1d_batch_groups")


def _conv_records() -> list[Rec]:
    recs: list[Rec] = []
    for name, lhs_shape, rhs_shape, params in _CONVS:
        f = functools.partial(lax.conv_general_dilated, **params)
        jf = functools.partial(jlax.conv_general_dilated, **params)
        recs.append(Rec(name=f"conv_{name}", fn=f, jax_fn=jf,
                        args=[Arg(lhs_shape), Arg(rhs_shape)], prims=("conv_general_dilated",),
                        dtypes=F16 if name == "2d_valid" else (np.float32,), rtol=1e-4))
        if name not in _LINEAR_CHECKED:
            continue
        # Linear in one operand with the other fixed: exercises one transpose rule each.
        w = _rng.standard_normal(rhs_shape)
        x = _rng.standard_normal(lhs_shape)
        recs.append(Rec(name=f"conv_{name}_lhs", linear=True,
                        fn=lambda x, w, f=f: f(x, np.asarray(w, x.dtype)),
                        jax_fn=lambda x, w, f=jf: f(x, np.asarray(w, x.dtype)),
                        args=[Arg(lhs_shape), Arg(rhs_shape, "const", value=w)],
                        prims=("conv_general_dilated",), rtol=1e-4, diff=False))
        recs.append(Rec(name=f"conv_{name}_rhs", linear=True,
                        fn=lambda x, w, f=f: f(np.asarray(x, w.dtype), w),
                        jax_fn=lambda x, w, f=jf: f(np.asarray(x, w.dtype), w),
                        args=[Arg(lhs_shape, "const", value=x), Arg(rhs_shape)],
                        prims=("conv_general_dilated",), rtol=1e-4, diff=False))
    recs += [
        Rec(name="conv_preferred_f32", args=[Arg((1, 2, 4, 4)), Arg((2, 2, 2, 2))],
            fn=lambda x, w: lax.conv(x, w, (1, 1), "VALID", preferred_element_type=np.float32),
            jax_fn=lambda x, w: jlax.conv(x, w, (1, 1), "VALID",
                                          preferred_element_type=np.float32),
            prims=("conv_general_dilated",), dtypes=F16, diff=False),
        Rec(name="conv_int", args=[Arg((1, 2, 4, 4), "int", (-5, 5)),
                                   Arg((3, 2, 2, 2), "int", (-5, 5))],
            fn=lambda x, w: lax.conv(x, w, (1, 1), "SAME"),
            jax_fn=lambda x, w: jlax.conv(x, w, (1, 1), "SAME"),
            prims=("conv_general_dilated",), diff=False),
        Rec(name="conv_wrapper", args=[Arg((2, 3, 5, 6)), Arg((2, 3, 3, 2))],
            fn=lambda x, w: lax.conv(x, w, (2, 1), "SAME"),
            jax_fn=lambda x, w: jlax.conv(x, w, (2, 1), "SAME"),
            prims=("conv_general_dilated",), rtol=1e-4),
        Rec(name="conv_with_general_padding", args=[Arg((1, 2, 5, 4)), Arg((3, 2, 2, 3))],
            fn=lambda x, w: lax.conv_with_general_padding(x, w, (1, 2), ((1, 2), (0, -1)),
                                                          (2, 1), (1, 2)),
            jax_fn=lambda x, w: jlax.conv_with_general_padding(x, w, (1, 2), ((1, 2), (0, -1)),
                                                               (2, 1), (1, 2)),
            prims=("conv_general_dilated",), rtol=1e-4),
    ]
    for padding, kernel_t in [("SAME", False), ("VALID", True), (((1, 2), (0, 1)), False),
                              (((1, 2), (0, 1)), True)]:
        tag = padding if isinstance(padding, str) else "explicit"
        recs.append(Rec(
            name=f"conv_transpose_{tag}{'_kernel_t' if kernel_t else ''}",
            args=[Arg((2, 4, 3, 3)), Arg((3, 2, 5, 3) if kernel_t else (3, 2, 3, 5))],
            fn=lambda x, w, p=padding, t=kernel_t: lax.conv_transpose(
                x, w, (2, 1), p, transpose_kernel=t),
            jax_fn=lambda x, w, p=padding, t=kernel_t: jlax.conv_transpose(
                x, w, (2, 1), p, transpose_kernel=t),
            prims=("conv_general_dilated", "rev"), rtol=1e-4))
    return recs


# (name, operand shape, window_dimensions, strides, padding, base_dilation, window_dilation)
_WINDOWS = [
    ("pool2x2", (2, 6, 6, 3), (1, 2, 2, 1), (1, 2, 2, 1), "VALID", None, None),
    ("same_overlap", (2, 3, 5, 5), (1, 1, 3, 3), (1, 1, 2, 2), "SAME", None, None),
    ("explicit_negpad", (4, 7), (2, 3), (1, 2), ((1, -1), (2, 0)), None, None),
    ("dilations", (5, 6), (2, 2), (1, 1), ((1, 0), (0, 1)), (1, 2), (2, 1)),
    ("1d", (7,), (3,), (2,), "SAME", None, None),
]
_REDUCERS = [("sum", lax.add, jlax.add, 0.0), ("max", lax.max, jlax.max, -np.inf),
             ("min", lax.min, jlax.min, np.inf)]


def _window_records() -> list[Rec]:
    recs: list[Rec] = []
    for rname, op, jop, init in _REDUCERS:
        for wname, shape, window, strides, padding, base, wdil in _WINDOWS:
            if rname != "sum" and (base is not None or wname == "explicit_negpad"):
                continue  # JAX's own max-pool VJP fails here; test_conv.py checks these
            kw = dict(window_dimensions=window, window_strides=strides, padding=padding,
                      base_dilation=base, window_dilation=wdil)
            recs.append(Rec(
                name=f"reduce_window_{rname}_{wname}",
                fn=lambda x, o=op, i=init, k=kw: lax.reduce_window(x, i, o, **k),
                jax_fn=lambda x, o=jop, i=init, k=kw: jlax.reduce_window(x, i, o, **k),
                args=[Arg(shape)], prims=(f"reduce_window_{rname}",), dtypes=F16,
                linear=rname == "sum", prepare=None if rname == "sum" else _distinct))
    recs += [
        # A non-identity init: JAX then uses its generic reduce_window, which it cannot
        # differentiate in reverse mode, so the twin is the equivalent "init ⊕ reduction"
        # (test_conv.py checks that equivalence against JAX's own values).
        Rec(name="reduce_window_sum_init", args=[Arg((3, 5))],
            fn=lambda x: lax.reduce_window(x, 1.5, lax.add, (2, 2), (1, 1), "SAME"),
            jax_fn=lambda x: jlax.reduce_window(x, 0.0, jlax.add, (2, 2), (1, 1), "SAME") + 1.5,
            prims=("reduce_window_sum",)),
        Rec(name="reduce_window_max_init", args=[Arg((3, 5))], prepare=_distinct,
            fn=lambda x: lax.reduce_window(x, 0.0, lax.max, (2, 2), (1, 2), "SAME"),
            jax_fn=lambda x: jnp.maximum(
                jlax.reduce_window(x, -jnp.inf, jlax.max, (2, 2), (1, 2), "SAME"), 0.0),
            prims=("reduce_window_max",)),
        Rec(name="reduce_window_max_int", args=[Arg((3, 5), "int", (-9, 9))],
            fn=lambda x: lax.reduce_window(x, np.int32(-2**31), lax.max, (2, 2), (1, 1), "SAME"),
            jax_fn=lambda x: jlax.reduce_window(x, np.int32(-2**31), jlax.max, (2, 2), (1, 1),
                                                "SAME"),
            prims=("reduce_window_max",), diff=False),
        Rec(name="avg_pool_same", args=[Arg((2, 5, 5, 2))],
            fn=lambda x: lax.div(lax.reduce_window(x, 0.0, lax.add, (1, 3, 3, 1), (1, 2, 2, 1),
                                                   "SAME"),
                                 lax.reduce_window(lax.full_like(x, 1), 0.0, lax.add,
                                                   (1, 3, 3, 1), (1, 2, 2, 1), "SAME")),
            jax_fn=lambda x: jlax.reduce_window(x, 0.0, jlax.add, (1, 3, 3, 1), (1, 2, 2, 1),
                                                "SAME")
            / jlax.reduce_window(jnp.ones_like(x), 0.0, jlax.add, (1, 3, 3, 1), (1, 2, 2, 1),
                                 "SAME"),
            prims=("reduce_window_sum", "div"), dtypes=F16),
    ]
    return recs


# select_and_gather_add(t, x) is the JVP of max pooling at x along t, and
# select_and_scatter_add(s, x) its VJP with cotangent s: JAX's public twins.
_POOL = dict(window_dimensions=(2, 3), window_strides=(2, 1), padding=((1, 0), (1, 1)),
             base_dilation=(1, 1), window_dilation=(1, 1))
_POOL_X = _distinct(_rng.standard_normal((5, 6)))[0]


def _jax_pool(x: Any) -> Any:
    return jlax.reduce_window(x, -jnp.inf, jlax.max, (2, 3), (2, 1), ((1, 0), (1, 1)))


def _pair_records() -> list[Rec]:
    from fgrad.primitives import conv, elementwise, windowed

    out_shape = conv.reduce_window_shape_tuple((5, 6), (2, 3), (2, 1), ((1, 0), (1, 1)))
    return [
        Rec(name="select_and_gather_add", linear=True,
            args=[Arg((5, 6)), Arg((5, 6), "const", value=_POOL_X)],
            fn=lambda t, x: windowed.select_and_gather_add_p.bind(
                t, np.asarray(x, t.dtype), select_prim=elementwise.ge_p, **_POOL),
            jax_fn=lambda t, x: jax.jvp(_jax_pool, (jnp.asarray(x, t.dtype),), (t,))[1],
            prims=("select_and_gather_add",)),
        Rec(name="select_and_scatter_add", linear=True,
            args=[Arg(out_shape), Arg((5, 6), "const", value=_POOL_X)],
            fn=lambda s, x: windowed.select_and_scatter_add_p.bind(
                s, np.asarray(x, s.dtype), select_prim=elementwise.ge_p, **_POOL),
            jax_fn=lambda s, x: jax.vjp(_jax_pool, jnp.asarray(x, s.dtype))[1](s)[0],
            prims=("select_and_scatter_add",)),
    ]


RECORDS: list[Rec] = _conv_records() + _window_records() + _pair_records()
