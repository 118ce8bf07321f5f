"""Focused tests for convolution and windowed reductions (``fgrad/primitives/conv.py``).

JAX is the oracle throughout: random convolution geometries (hypothesis over
1-3 spatial dims, strides, string/explicit/negative padding, both dilations,
feature and batch groups, and arbitrary layouts) are compared with
``jax.lax.conv_general_dilated`` in value and, in float64, in first and second
derivatives w.r.t. both operands. The transpose rules are also checked on
their own by the dot-product test. ``reduce_window`` is compared with JAX for
sum/max/min, including JAX's tie convention for max pooling's derivative.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax import lax as jlax

import fgrad
import fgrad.numpy as fnp
from fgrad import lax
from fgrad.core.ad_util import UndefPrimal, Zero
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import typecheck_jaxpr
from jit_compare import assert_matches_eager

SPATIAL = "HWD"


# --- random convolution geometries ----------------------------------------------------------

@st.composite
def conv_configs(draw: Any, max_dims: int = 3) -> dict[str, Any]:
    """Shapes and params of a valid ``conv_general_dilated`` call, in a random layout."""
    n = draw(st.integers(0, max_dims))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    batch_groups = 1 if groups > 1 else draw(st.sampled_from([1, 1, 2]))
    batch = batch_groups * draw(st.integers(1, 2))
    in_per_group = draw(st.integers(1, 2))
    out_feat = groups * batch_groups * draw(st.integers(1, 2))
    sizes = [draw(st.integers(1, 6 if n < 3 else 4)) for _ in range(n)]
    window = [draw(st.integers(1, 3)) for _ in range(n)]
    strides = tuple(draw(st.integers(1, 3)) for _ in range(n))
    lhs_dil = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n))
    rhs_dil = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n))
    if all(d == 1 for d in lhs_dil) and draw(st.booleans()):
        padding: Any = draw(st.sampled_from(["VALID", "SAME", "SAME_LOWER"]))
    else:
        padding = []
        for size, d in zip(sizes, lhs_dil):
            dilated = (size - 1) * d + 1
            lo = draw(st.integers(-min(2, dilated - 1), 3))
            hi = draw(st.integers(-min(2, dilated - 1 + lo), 3))
            padding.append((lo, hi))
    sp = SPATIAL[:n]
    lhs_spec = "".join(draw(st.permutations("NC" + sp)))
    rhs_spec = "".join(draw(st.permutations("OI" + sp)))
    out_spec = "".join(draw(st.permutations("NC" + sp)))
    dims = dict(zip(sp, sizes))
    lhs_dims = {"N": batch, "C": groups * in_per_group, **dims}
    lhs_shape = tuple(lhs_dims[c] for c in lhs_spec)
    rhs_dims = {"O": out_feat, "I": in_per_group, **dict(zip(sp, window))}
    rhs_shape = tuple(rhs_dims[c] for c in rhs_spec)
    params = dict(window_strides=strides, padding=padding, lhs_dilation=lhs_dil,
                  rhs_dilation=rhs_dil, dimension_numbers=(lhs_spec, rhs_spec, out_spec),
                  feature_group_count=groups, batch_group_count=batch_groups)
    return dict(lhs_shape=lhs_shape, rhs_shape=rhs_shape, params=params)


def _draw_operands(cfg: dict[str, Any], seed: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(cfg["lhs_shape"]).astype(dtype),
            rng.standard_normal(cfg["rhs_shape"]).astype(dtype))


def _close(got: Any, want: Any, tol: float) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                  want.shape, want.dtype)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol,
                               atol=tol)


@settings(max_examples=25, deadline=None)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_values_match_jax(cfg: dict[str, Any], seed: int) -> None:
    x, w = _draw_operands(cfg, seed, np.float32)
    got = lax.conv_general_dilated(x, w, **cfg["params"])
    want = jlax.conv_general_dilated(x, w, **cfg["params"])
    _close(got, want, 1e-4)


@settings(max_examples=10, deadline=None)
@given(cfg=conv_configs(max_dims=2), seed=st.integers(0, 2**16))
def test_conv_derivatives_match_jax(cfg: dict[str, Any], seed: int, x64: None) -> None:
    x, w = _draw_operands(cfg, seed, np.float64)
    rng = np.random.default_rng(seed + 1)
    f = functools.partial(lax.conv_general_dilated, **cfg["params"])
    jf = functools.partial(jlax.conv_general_dilated, **cfg["params"])
    out, pullback = fgrad.vjp(f, x, w)
    jout, jpullback = jax.vjp(jf, x, w)
    ct = rng.standard_normal(jout.shape)
    for got, want in zip(pullback(ct), jpullback(ct)):
        _close(got, want, 1e-10)
    tx, tw = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    _close(fgrad.jvp(f, (x, w), (tx, tw))[1], jax.jvp(jf, (x, w), (tx, tw))[1], 1e-10)

    # Second order: the JVP of the VJP exercises the JVPs of both transpose rules.
    def hvp(grad_api: Any, fun: Any) -> Any:
        return grad_api.jvp(lambda a, b: grad_api.vjp(fun, a, b)[1](ct), (x, w), (tx, tw))[1]
    for got, want in zip(hvp(fgrad, f), hvp(jax, jf)):
        _close(got, want, 1e-10)


@settings(max_examples=20, deadline=None)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16))
def test_conv_transpose_rules_dot_product(cfg: dict[str, Any], seed: int, x64: None) -> None:
    # <ct, conv(x, w)> == <T_lhs(ct), x> == <T_rhs(ct), w>, calling the rules directly.
    x, w = _draw_operands(cfg, seed, np.float64)
    f = functools.partial(lax.conv_general_dilated, **cfg["params"])
    eqn = fgrad.make_jaxpr(f)(x, w).eqns[0]
    prim, params = eqn.primitive, eqn.params
    out = np.asarray(f(x, w))
    ct = np.random.default_rng(seed).standard_normal(out.shape)
    ct_x, _ = prim.transpose(ct, UndefPrimal(ShapedArray(x.shape, x.dtype)), w, **params)
    _, ct_w = prim.transpose(ct, x, UndefPrimal(ShapedArray(w.shape, w.dtype)), **params)
    want = np.vdot(ct, out)
    for ct_in, primal in [(ct_x, x), (ct_w, w)]:
        got = 0.0 if type(ct_in) is Zero else np.vdot(np.asarray(ct_in), primal)
        assert abs(got - want) <= 1e-9 * (1 + abs(want) + np.abs(ct).sum()), (got, want)


def test_conv_grad_second_order_jit_and_typecheck(x64: None) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 4, 5, 4)), rng.standard_normal((4, 2, 3, 2))
    kw = dict(window_strides=(2, 1), padding="SAME", rhs_dilation=(1, 2), feature_group_count=2)

    def loss(fl: Any, fnp_: Any) -> Any:
        return lambda x, w: fnp_.sum(fnp_.tanh(fl.conv_general_dilated(x, w, **kw)) ** 2)

    f, jf = loss(lax, fnp), loss(jlax, jnp)
    for argnums, primal in [(0, x), (1, w)]:
        # fgrad's full Hessian against JAX's Hessian-vector product (cheaper than
        # jax.hessian, whose batched convolutions take long to compile).
        hess = np.asarray(fgrad.hessian(f, argnums)(x, w))
        v = rng.standard_normal(primal.shape)
        hvp = jax.jvp(lambda p: jax.grad(jf, argnums)(*((p, w) if argnums == 0 else (x, p))),
                      (primal,), (v,))[1]
        axes = list(range(primal.ndim, 2 * primal.ndim))
        _close(np.tensordot(hess, v, axes=(axes, list(range(primal.ndim)))), hvp, 1e-9)
    grads = fgrad.grad(f, (0, 1))(x, w)
    for g, jg, gj in zip(grads, jax.grad(jf, (0, 1))(x, w), fgrad.jit(fgrad.grad(f, (0, 1)))(x, w)):
        _close(g, jg, 1e-10)
        assert_matches_eager(gj, g)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f, (0, 1)))(x, w))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(lambda x, w: fnp.sum(fgrad.grad(f)(x, w))))(x, w))


def test_conv_jaxpr_params_are_explicit() -> None:
    x, w = np.ones((1, 5, 5, 3), np.float32), np.ones((3, 3, 3, 4), np.float32)
    text = str(fgrad.make_jaxpr(lambda x, w: lax.conv_general_dilated(
        x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))(x, w))
    assert "padding=((1, 1), (1, 1))" in text
    assert ("dimension_numbers=ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), "
            "rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))") in text
    assert "f32[1,3,3,4]" in text


@pytest.mark.parametrize("lhs_shape,rhs_shape,kw", [
    ((0, 2, 4, 4), (3, 2, 2, 2), dict(padding="VALID")),            # empty batch
    ((2, 2, 0, 3), (3, 2, 2, 2), dict(padding=((1, 1), (0, 0)))),   # empty spatial, padded
    ((1, 2, 2, 2), (3, 2, 3, 3), dict(padding="VALID")),            # kernel > input: 0 out
    ((1, 1, 1, 1), (1, 1, 1, 1), dict(padding="SAME")),             # all size 1
    ((2, 3, 4, 4), (0, 3, 2, 2), dict(padding="SAME")),             # no output features
])
def test_conv_edge_shapes(lhs_shape: Any, rhs_shape: Any, kw: dict[str, Any], x64: None) -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(lhs_shape), rng.standard_normal(rhs_shape)
    f = functools.partial(lax.conv_general_dilated, window_strides=(1, 1), **kw)
    jf = functools.partial(jlax.conv_general_dilated, window_strides=(1, 1), **kw)
    _close(f(x, w), jf(x, w), 1e-12)
    out, pullback = fgrad.vjp(f, x, w)
    ct = rng.standard_normal(out.shape)
    for got, want in zip(pullback(ct), jax.vjp(jf, x, w)[1](ct)):
        _close(got, want, 1e-12)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16])
def test_conv_16bit_and_preferred_element_type(dtype: Any) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 6, 6)).astype(dtype)
    w = rng.standard_normal((3, 4, 3, 3)).astype(dtype)
    tol = 2e-3 if dtype == np.float16 else 1.6e-2
    np.testing.assert_allclose(
        np.asarray(lax.conv(x, w, (1, 1), "SAME")).astype(np.float32),
        np.asarray(jlax.conv(x, w, (1, 1), "SAME")).astype(np.float32), rtol=tol, atol=tol)
    f = functools.partial(lax.conv, window_strides=(1, 1), padding="SAME",
                          preferred_element_type=np.float32)
    jf = functools.partial(jlax.conv, window_strides=(1, 1), padding="SAME",
                           preferred_element_type=np.float32)
    _close(f(x, w), jf(x, w), 1e-5)
    # Gradients come back in the operands' dtype, through the f32 transposes.
    grads = fgrad.grad(lambda x, w: fnp.sum(f(x, w)), (0, 1))(x, w)
    jgrads = jax.grad(lambda x, w: jnp.sum(jf(x, w)), (0, 1))(x, w)
    for g, jg in zip(grads, jgrads):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(np.asarray(g).astype(np.float32),
                                   np.asarray(jg).astype(np.float32), rtol=tol, atol=tol)


def test_conv_integer_operands() -> None:
    x = np.full((1, 2, 3, 3), 100, np.int8)
    w = np.ones((1, 2, 2, 2), np.int8)
    _close(lax.conv(x, w, (1, 1), "VALID"), jlax.conv(x, w, (1, 1), "VALID"), 0)  # wraps
    got = lax.conv(x, w, (1, 1), "VALID", preferred_element_type=np.int32)
    _close(got, jlax.conv(x, w, (1, 1), "VALID", preferred_element_type=np.int32), 0)


# --- convenience wrappers and helpers ---------------------------------------------------------

@pytest.mark.parametrize("padding", ["SAME", "VALID", ((2, 1), (0, 1)), ((0, 0), (1, 1))])
@pytest.mark.parametrize("transpose_kernel", [False, True])
@pytest.mark.parametrize("consistent", [False, True])
def test_conv_transpose_matches_jax(padding: Any, transpose_kernel: bool,
                                    consistent: bool) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 4, 3)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3) if transpose_kernel else (3, 2, 3, 4)).astype(np.float32)
    kw = dict(strides=(2, 3), padding=padding, rhs_dilation=(1, 2),
              transpose_kernel=transpose_kernel, use_consistent_padding=consistent)
    _close(lax.conv_transpose(x, w, **kw), jlax.conv_transpose(x, w, **kw), 1e-4)


def test_conv_transpose_with_transpose_kernel_is_the_gradient_of_conv() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 8, 8, 2)).astype(np.float32)
    w = rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    dn = ("NHWC", "HWIO", "NHWC")
    y, pullback = fgrad.vjp(lambda x: lax.conv_general_dilated(x, w, (2, 2), "SAME",
                                                               dimension_numbers=dn), x)
    ct = rng.standard_normal(y.shape).astype(np.float32)
    direct = lax.conv_transpose(ct, w, (2, 2), "SAME", dimension_numbers=dn,
                                transpose_kernel=True)
    _close(direct, pullback(ct)[0], 1e-4)


def test_conv_wrappers_and_shape_helpers_match_jax() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    _close(lax.conv(x, w, (2, 1), "SAME"), jlax.conv(x, w, (2, 1), "SAME"), 1e-4)
    args = (x, w, (1, 2), ((1, -1), (2, 0)), (2, 1), (1, 2))
    _close(lax.conv_with_general_padding(*args), jlax.conv_with_general_padding(*args), 1e-4)
    for specs in [None, ("NCHW", "OIHW", "NCHW"), ("NHWC", "HWIO", "NHWC"),
                  ("HNCW", "WOHI", "CWNH")]:
        got = lax.conv_dimension_numbers((1, 2, 3, 4), (5, 6, 7, 8), specs)
        want = jlax.conv_dimension_numbers((1, 2, 3, 4), (5, 6, 7, 8), specs)
        assert tuple(got) == tuple(tuple(s) for s in want)
    for padding in ["SAME", "VALID", ((1, 2), (0, 0))]:
        assert lax.conv_general_shape_tuple((2, 9, 8, 3), (3, 3, 3, 5), (2, 3), padding,
                                            ("NHWC", "HWIO", "NHWC")) == tuple(
            jlax.conv_general_shape_tuple((2, 9, 8, 3), (3, 3, 3, 5), (2, 3), padding,
                                          ("NHWC", "HWIO", "NHWC")))
        assert lax.conv_transpose_shape_tuple((2, 4, 5, 3), (3, 3, 3, 5), (2, 3), padding,
                                              ("NHWC", "HWIO", "NHWC")) == tuple(
            jlax.conv_transpose_shape_tuple((2, 4, 5, 3), (3, 3, 3, 5), (2, 3), padding,
                                            ("NHWC", "HWIO", "NHWC")))
    for padding in ["SAME", "VALID", "SAME_LOWER"]:
        assert lax.padtype_to_pads((7, 6, 1), (3, 2, 4), (2, 4, 1), padding) == list(
            jlax.padtype_to_pads((7, 6, 1), (3, 2, 4), (2, 4, 1), padding))
    assert lax.reduce_window_shape_tuple((7, 6), (3, 2), (2, 1), ((1, 0), (0, 2)), (2, 1),
                                         (1, 2)) == tuple(jlax.reduce_window_shape_tuple(
                                             (7, 6), (3, 2), (2, 1), ((1, 0), (0, 2)), (2, 1),
                                             (1, 2)))


def test_conv_errors_name_the_shapes() -> None:
    x, w = np.ones((1, 6, 5, 5), np.float32), np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(FgradTypeError, match=r"6 // 1 != 3 \(lhs f32\[1,6,5,5\], "
                                             r"rhs f32\[4,3,3,3\]\)"):
        lax.conv_general_dilated(x, w, (1, 1), "VALID")
    with pytest.raises(FgradTypeError, match=r"6 // 3 != 3"):
        lax.conv_general_dilated(x, w, (1, 1), "VALID", feature_group_count=3)
    with pytest.raises(FgradTypeError, match=r"size 3 must be a multiple of "
                                             r"feature_group_count=2.*f32\[3,3,3,3\]"):
        lax.conv_general_dilated(x, np.ones((3, 3, 3, 3), np.float32), (1, 1), "VALID",
                                 feature_group_count=2)
    with pytest.raises(FgradTypeError, match=r"same dtypes, got f32\[1,6,5,5\] and f16"):
        lax.conv_general_dilated(x, np.ones((4, 6, 3, 3), np.float16), (1, 1), "VALID")
    with pytest.raises(TypeError, match="ndim to be equal, got 4 and 3"):
        lax.conv_general_dilated(x, np.ones((4, 6, 3), np.float32), (1, 1), "VALID")
    with pytest.raises(FgradTypeError, match=r"window_strides \(1,\) must have one entry"):
        lax.conv_general_dilated(x, np.ones((4, 6, 3, 3), np.float32), (1,), "VALID")
    with pytest.raises(FgradTypeError, match=r"negative padding .* larger"):
        lax.conv_general_dilated(x, np.ones((4, 6, 1, 1), np.float32), (1, 1),
                                 ((-4, -2), (0, 0)))
    with pytest.raises(ValueError, match="String padding is not implemented"):
        lax.conv_general_dilated(x, w, (1, 1), "SAME", lhs_dilation=(2, 2))
    with pytest.raises(TypeError, match="must contain the characters 'N' and 'C'"):
        lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=("NHWX", "OIHW",
                                                                           "NCHW"))
    with pytest.raises(FgradTypeError, match="preferred_element_type float16 is incompatible"):
        lax.conv(x, np.ones((4, 6, 3, 3), np.float32), (1, 1), "VALID",
                 preferred_element_type=np.float16)
    with pytest.raises(FgradTypeError, match="batch_group_count=2 must divide"):
        lax.conv_general_dilated(np.ones((3, 3, 5, 5), np.float32), np.ones((4, 3, 3, 3),
                                 np.float32), (1, 1), "VALID", batch_group_count=2)


# --- reduce_window ------------------------------------------------------------------------------

@st.composite
def window_configs(draw: Any, dilations: bool = True) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 6)) for _ in range(n))
    window = tuple(draw(st.integers(1, 3)) for _ in range(n))
    strides = tuple(draw(st.integers(1, 3)) for _ in range(n))
    base = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n)) if dilations else None
    wdil = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n)) if dilations else None
    if draw(st.booleans()):
        padding: Any = draw(st.sampled_from(["VALID", "SAME"]))
    else:
        padding = []
        for size, b in zip(shape, base or (1,) * n):
            dilated = (size - 1) * b + 1
            lo = draw(st.integers(-min(2, dilated - 1) if dilations else 0, 2))
            padding.append((lo, draw(st.integers(-min(2, dilated - 1 + lo) if dilations
                                                 else 0, 2))))
    return dict(shape=shape, kw=dict(window_dimensions=window, window_strides=strides,
                                     padding=padding, base_dilation=base,
                                     window_dilation=wdil))


REDUCERS = {"sum": (lax.add, jlax.add, 0.0), "max": (lax.max, jlax.max, -np.inf),
            "min": (lax.min, jlax.min, np.inf)}


def _distinct(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values without ties (a shuffled grid), so max/min derivatives are well defined."""
    size = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(size).reshape(shape) * 0.25 - size / 8


@settings(max_examples=25, deadline=None)
@given(cfg=window_configs(), seed=st.integers(0, 2**16),
       reducer=st.sampled_from(sorted(REDUCERS)))
def test_reduce_window_values_match_jax(cfg: dict[str, Any], seed: int, reducer: str) -> None:
    op, jop, init = REDUCERS[reducer]
    x = np.random.default_rng(seed).standard_normal(cfg["shape"]).astype(np.float32)
    _close(lax.reduce_window(x, init, op, **cfg["kw"]),
           jlax.reduce_window(x, init, jop, **cfg["kw"]), 1e-5)


@settings(max_examples=12, deadline=None)
@given(cfg=window_configs(dilations=False), seed=st.integers(0, 2**16),
       reducer=st.sampled_from(sorted(REDUCERS)))
def test_reduce_window_derivatives_match_jax(cfg: dict[str, Any], seed: int, reducer: str,
                                             x64: None) -> None:
    op, jop, init = REDUCERS[reducer]
    x = _distinct(cfg["shape"], seed)

    def f(api: Any, o: Any) -> Any:
        return lambda x: api.reduce_window(x, init, o, **cfg["kw"]) ** 3
    ff, jf = f(lax, op), f(jlax, jop)
    rng = np.random.default_rng(seed)
    t = rng.standard_normal(x.shape)
    _close(fgrad.jvp(ff, (x,), (t,))[1], jax.jvp(jf, (x,), (t,))[1], 1e-10)
    out = jf(x)
    ct = rng.standard_normal(out.shape)
    _close(fgrad.vjp(ff, x)[1](ct)[0], jax.vjp(jf, x)[1](ct)[0], 1e-10)
    hvp = fgrad.jvp(lambda x: fgrad.vjp(ff, x)[1](ct)[0], (x,), (t,))[1]
    jhvp = jax.jvp(lambda x: jax.vjp(jf, x)[1](ct)[0], (x,), (t,))[1]
    _close(hvp, jhvp, 1e-10)


@settings(max_examples=25, deadline=None)
@given(cfg=window_configs(), seed=st.integers(0, 2**16),
       reducer=st.sampled_from(sorted(REDUCERS)))
def test_reduce_window_transposes_dot_product(cfg: dict[str, Any], seed: int,
                                              reducer: str, x64: None) -> None:
    # With base and window dilation too (beyond what JAX's max-pool VJP supports):
    # forward and reverse derivatives must be transposes of each other.
    op, _, init = REDUCERS[reducer]
    x = _distinct(cfg["shape"], seed)
    f = lambda x: lax.reduce_window(x, init, op, **cfg["kw"])  # noqa: E731
    out, pullback = fgrad.vjp(f, x)
    rng = np.random.default_rng(seed)
    t, ct = rng.standard_normal(x.shape), rng.standard_normal(out.shape)
    lhs = np.vdot(ct, np.asarray(fgrad.jvp(f, (x,), (t,))[1]))
    rhs = np.vdot(np.asarray(pullback(ct)[0]), t)
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(lhs)), (lhs, rhs)


def test_max_pool_ties_go_to_the_first_maximum_like_jax() -> None:
    x = np.array([[1.0, 1.0, 0.0, 2.0, 2.0, 2.0]], np.float32)
    t = np.arange(1.0, 7.0, dtype=np.float32)[None]
    for window, stride in [((1, 2), (1, 2)), ((1, 3), (1, 1))]:
        f = lambda x, m=lax: m.reduce_window(x, -np.inf, m.max, window, stride, "VALID")  # noqa
        jf = functools.partial(f, m=jlax)
        _close(fgrad.grad(lambda x: fnp.sum(f(x)))(x), jax.grad(lambda x: jnp.sum(jf(x)))(x), 0)
        _close(fgrad.jvp(f, (x,), (t,))[1], jax.jvp(jf, (x,), (t,))[1], 0)
    # min pooling picks the first minimum too
    g = lambda x, m=lax: m.reduce_window(x, np.inf, m.min, (1, 3), (1, 3), "VALID")  # noqa
    _close(fgrad.grad(lambda x: fnp.sum(g(x)))(x),
           jax.grad(lambda x: jnp.sum(g(x, m=jlax)))(x), 0)


def test_avg_pool_is_sum_over_window_size(x64: None) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5, 3))
    kw = dict(window_dimensions=(1, 2, 3, 1), window_strides=(1, 2, 2, 1), padding="VALID")
    avg = lambda x: lax.reduce_window(x, 0.0, lax.add, **kw) / 6  # noqa: E731
    javg = lambda x: jlax.reduce_window(x, 0.0, jlax.add, **kw) / 6  # noqa: E731
    _close(avg(x), javg(x), 1e-12)
    _close(fgrad.grad(lambda x: fnp.sum(avg(x) ** 2))(x),
           jax.grad(lambda x: jnp.sum(javg(x) ** 2))(x), 1e-12)
    # and the mean over each window, by hand
    manual = np.stack([x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 3].mean(axis=(1, 2))
                       for i in range(3) for j in range(2)], axis=1).reshape(2, 3, 2, 3)
    _close(avg(x), manual, 1e-12)


@pytest.mark.parametrize("dtype", [np.float16, ml_dtypes.bfloat16, np.int8, np.int32])
@pytest.mark.parametrize("reducer", sorted(REDUCERS))
def test_reduce_window_dtypes_match_jax_exactly(dtype: Any, reducer: str) -> None:
    op, jop, init = REDUCERS[reducer]
    if np.dtype(dtype).kind == "i":
        info = np.iinfo(dtype)
        init = {"sum": 0, "max": info.min, "min": info.max}[reducer]
        x = np.random.default_rng(0).integers(-100, 100, (2, 7, 6)).astype(dtype)
    else:
        x = np.random.default_rng(0).standard_normal((2, 7, 6)).astype(dtype)
    init_value = dtype(init) if np.dtype(dtype).kind == "i" else init
    for padding in ["VALID", "SAME"]:
        kw = dict(window_dimensions=(1, 3, 2), window_strides=(1, 2, 1), padding=padding)
        got = lax.reduce_window(x, init_value, op, **kw)
        want = jlax.reduce_window(x, init_value, jop, **kw)
        assert got.dtype == want.dtype
        if reducer == "sum" and padding == "SAME" and np.dtype(dtype).kind != "i":
            # NOTE: with padding XLA adds the taps in another order: within an ulp.
            np.testing.assert_allclose(np.asarray(got, np.float32), np.asarray(want, np.float32),
                                       rtol=1e-2, atol=5e-2)
        else:
            # Sums add tap by tap in the dtype, in XLA's order (int8 wraps around).
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


def test_reduce_window_init_values_and_jit() -> None:
    x = np.random.default_rng(4).standard_normal((4, 5)).astype(np.float32)
    kw = dict(window_dimensions=(2, 2), window_strides=(1, 2), padding="SAME")
    for op, jop, init in [(lax.add, jlax.add, 1.5), (lax.max, jlax.max, 0.0),
                          (lax.min, jlax.min, 0.25)]:
        _close(lax.reduce_window(x, init, op, **kw), jlax.reduce_window(x, init, jop, **kw), 1e-6)
        # a traced init value
        jitted = fgrad.jit(lambda x, i, o=op: lax.reduce_window(x, i, o, **kw))
        _close(jitted(x, np.float32(init)), jlax.reduce_window(x, init, jop, **kw), 1e-6)
    # 0-d operand, size-0 axes
    assert float(lax.reduce_window(np.float32(2.0), 0.0, lax.add, (), (), "VALID")) == 2.0
    empty = lax.reduce_window(np.ones((0, 3), np.float32), -np.inf, lax.max, (1, 2), (1, 1),
                              "VALID")
    assert empty.shape == (0, 2)
    g = fgrad.grad(lambda x: fnp.sum(lax.reduce_window(x, -np.inf, lax.max, (2, 2), (2, 2),
                                                       "VALID")))(x)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(lambda x: fnp.sum(fgrad.grad(
        lambda x: fnp.sum(lax.reduce_window(x, -np.inf, lax.max, (2, 2), (2, 2), "VALID")
                          ** 2))(x))))(x))
    assert np.asarray(g).sum() == 4.0  # one 1 per window: 2x2 windows over the 4x4 corner


def test_reduce_window_errors() -> None:
    x = np.ones((3, 4), np.float32)
    with pytest.raises(FgradTypeError, match=r"window_dimensions=\(2,\) must have one entry "
                                             r"per axis of the operand f32\[3,4\]"):
        lax.reduce_window(x, 0.0, lax.add, (2,), (1,), "VALID")
    with pytest.raises(FgradTypeError, match=r"window_strides=\(0, 1\) must be positive"):
        lax.reduce_window(x, 0.0, lax.add, (2, 2), (0, 1), "VALID")
    with pytest.raises(FgradTypeError, match="negative padding"):
        lax.reduce_window(x, 0.0, lax.max, (1, 1), (1, 1), ((-2, -2), (0, 0)))
    with pytest.raises(NotImplementedError, match="computation 'mul' is not supported"):
        lax.reduce_window(x, 1.0, lax.mul, (2, 2), (1, 1), "VALID")
    with pytest.raises(FgradTypeError, match=r"must have a number dtype, got bool\[3,4\]"):
        lax.reduce_window(x > 0, False, lax.add, (2, 2), (1, 1), "VALID")
    with pytest.raises(TypeError, match="inconsistent dtypes"):
        lax.reduce_window(x, np.int32(3), lax.add, (2, 2), (1, 1), "VALID")
