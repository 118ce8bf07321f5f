"""Batching rule of ``conv_general_dilated`` (``fgrad/primitives/conv.py``).

The rule folds the vmapped axis into lhs's batch axis (lhs batched), the
kernel's output features (rhs batched) or the feature/batch groups (both),
so every combination of ``feature_group_count``/``batch_group_count`` and
layout is exercised:

* hypothesis over 1-D and 2-D geometries (random layouts such as NCHW, NHWC,
  OIHW, HWIO and scrambled ones; strides; explicit, negative and string
  padding; both dilations; feature and batch groups) with random ``in_axes``
  (None, 0, last, middle) and ``out_axes``, against a Python loop + stack;
* named cases (``NCHW``/``OIHW``, ``NHWC``/``HWIO``) for each batched/unbatched
  combination, batch sizes 1 and 0, and ``preferred_element_type``;
* nested ``vmap``, ``jit(vmap)`` against eager, ``vmap(grad)`` and ``grad`` of
  a summed ``vmap`` against JAX in float64;
* the jaxpr of ``vmap(conv, in_axes=(0, None))`` (and ``(None, 0)``) holds no
  ``broadcast_in_dim``: the unbatched operand is used as it is.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from batch_util import batch_args, check_vmap, loop_and_stack, random_in_axes
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
from fgrad import lax
from fgrad.core.jaxpr import typecheck_jaxpr

SPATIAL = "HW"


# --- geometries ---------------------------------------------------------------------------

@st.composite
def conv_configs(draw: Any) -> dict[str, Any]:
    """Shapes and params of a valid 1-D or 2-D ``conv_general_dilated`` in a random layout."""
    n = draw(st.integers(1, 2))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    batch_groups = 1 if groups > 1 else draw(st.sampled_from([1, 1, 2]))
    batch = batch_groups * draw(st.integers(1, 2))
    in_per_group = draw(st.integers(1, 2))
    out_feat = groups * batch_groups * draw(st.integers(1, 2))
    sizes = [draw(st.integers(1, 5)) for _ in range(n)]
    window = [draw(st.integers(1, 3)) for _ in range(n)]
    strides = tuple(draw(st.integers(1, 2)) for _ in range(n))
    lhs_dil = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n))
    rhs_dil = tuple(draw(st.sampled_from([1, 1, 2])) for _ in range(n))
    if all(d == 1 for d in lhs_dil) and draw(st.booleans()):
        padding: Any = draw(st.sampled_from(["VALID", "SAME", "SAME_LOWER"]))
    else:
        padding = []
        for size, d in zip(sizes, lhs_dil):
            dilated = (size - 1) * d + 1
            lo = draw(st.integers(-min(1, dilated - 1), 2))
            hi = draw(st.integers(-min(1, dilated - 1 + lo), 2))
            padding.append((lo, hi))
    sp = SPATIAL[:n]
    specs = tuple("".join(draw(st.permutations(letters + sp))) for letters in ("NC", "OI", "NC"))
    dims = dict(zip(sp, sizes))
    lhs_dims = {"N": batch, "C": groups * in_per_group, **dims}
    rhs_dims = {"O": out_feat, "I": in_per_group, **dict(zip(sp, window))}
    params = dict(window_strides=strides, padding=padding, lhs_dilation=lhs_dil,
                  rhs_dilation=rhs_dil, dimension_numbers=specs,
                  feature_group_count=groups, batch_group_count=batch_groups)
    return dict(lhs_shape=tuple(lhs_dims[c] for c in specs[0]),
                rhs_shape=tuple(rhs_dims[c] for c in specs[1]), params=params)


def conv_fn(params: dict[str, Any], conv: Callable[..., Any] = lax.conv_general_dilated
            ) -> Callable[[Any, Any], Any]:
    return lambda lhs, rhs: conv(lhs, rhs, **params)


def operand_examples(cfg: dict[str, Any], size: int, seed: int = 0, dtype: Any = np.float32
                     ) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(cfg["lhs_shape"]).astype(dtype),
             rng.standard_normal(cfg["rhs_shape"]).astype(dtype)) for _ in range(size)]


def named(lhs_spec: str, rhs_spec: str, out_spec: str, groups: int = 1, batch_groups: int = 1,
          n_sp: int = 2, **params: Any) -> dict[str, Any]:
    """A config in the given layout: N = 2*bg, C = 2*g, O = 2*g*bg, spatial 5 (x4), window 3."""
    dims = {"N": 2 * batch_groups, "C": 2 * groups, "H": 5, "W": 4}
    kdims = {"O": 2 * groups * batch_groups, "I": 2, "H": 3, "W": 2}
    base = dict(window_strides=(1,) * n_sp, padding="SAME" if n_sp == 2 else [(1, 0)],
                dimension_numbers=(lhs_spec, rhs_spec, out_spec),
                feature_group_count=groups, batch_group_count=batch_groups)
    return dict(lhs_shape=tuple(dims[c] for c in lhs_spec),
                rhs_shape=tuple(kdims[c] for c in rhs_spec), params={**base, **params})


NAMED = {
    "NCHW-OIHW": named("NCHW", "OIHW", "NCHW"),
    "NHWC-HWIO": named("NHWC", "HWIO", "NHWC", window_strides=(2, 1)),
    "NHWC-HWIO-groups": named("NHWC", "HWIO", "NHWC", groups=2, rhs_dilation=(2, 1)),
    "NCHW-OIHW-batch-groups": named("NCHW", "OIHW", "NHWC", batch_groups=2,
                                    padding=[(1, 2), (-1, 0)]),
    "NCH-OIH-1d-groups": named("NCH", "OIH", "NCH", groups=3, n_sp=1, lhs_dilation=(2,)),
    "NHC-HIO-1d-batch-groups": named("NHC", "HIO", "NHC", batch_groups=2, n_sp=1,
                                     window_strides=(2,)),
    "HCN-IHO-1d": named("HCN", "IHO", "CNH", n_sp=1),
}
COMBOS = [(0, None), (None, 0), (0, 0), (-1, None), (None, -1), (2, 1), (None, 2), (1, -1)]


# --- values against a loop -----------------------------------------------------------------

@settings(max_examples=25, deadline=None)
@given(cfg=conv_configs(), seed=st.integers(0, 2**16), batch=st.sampled_from([1, 2, 3]))
def test_conv_random_geometry_and_axes(cfg: dict[str, Any], seed: int, batch: int) -> None:
    rng = np.random.default_rng(seed)
    exs = operand_examples(cfg, batch, seed)
    f = conv_fn(cfg["params"])
    out_ndim = len(cfg["lhs_shape"])
    for _ in range(3):
        in_axes = random_in_axes(rng, [out_ndim, out_ndim])
        out_axes = [0, -1, int(rng.integers(0, out_ndim + 1))][int(rng.integers(3))]
        check_vmap(f, batch_args(exs, in_axes), in_axes, out_axes, rtol=1e-4,
                   what=f"conv {cfg}")


@pytest.mark.parametrize("name", list(NAMED))
def test_conv_each_batched_combination(name: str) -> None:
    cfg = NAMED[name]
    exs = operand_examples(cfg, 3)
    f = conv_fn(cfg["params"])
    for in_axes in COMBOS:
        check_vmap(f, batch_args(exs, in_axes), in_axes, rtol=1e-4, what=name)
        check_vmap(f, batch_args(exs[:1], in_axes), in_axes, out_axes=-1, rtol=1e-4,
                   what=f"{name} batch size 1")


@pytest.mark.parametrize("name", ["NCHW-OIHW", "NHWC-HWIO-groups", "NCHW-OIHW-batch-groups"])
@pytest.mark.parametrize("in_axes", [(0, None), (None, 1), (1, 0)])
def test_conv_batch_size_zero_matches_jax(name: str, in_axes: tuple[Any, ...]) -> None:
    cfg = NAMED[name]
    lhs, rhs = operand_examples(cfg, 1)[0]
    args = [a if ax is None else np.zeros(np.insert(a.shape, ax, 0), np.float32)
            for a, ax in zip((lhs, rhs), in_axes)]
    got = fgrad.vmap(conv_fn(cfg["params"]), in_axes=in_axes)(*args)
    want = jax.vmap(conv_fn(cfg["params"], jax.lax.conv_general_dilated), in_axes=in_axes)(*args)
    assert got.shape == want.shape and got.shape[0] == 0 and got.dtype == want.dtype


def test_conv_preferred_element_type_and_ints() -> None:
    cfg = NAMED["NHWC-HWIO-groups"]
    exs = operand_examples(cfg, 3, dtype=np.float16)
    f = conv_fn({**cfg["params"], "preferred_element_type": np.float32})
    for in_axes in [(0, None), (None, 0), (0, 0)]:
        out = fgrad.vmap(f, in_axes=in_axes)(*batch_args(exs, in_axes))
        assert out.dtype == np.float32
        check_vmap(f, batch_args(exs, in_axes), in_axes, rtol=1e-3)
    ints = [(np.round(a * 3).astype(np.int32), np.round(b * 3).astype(np.int32)) for a, b in exs]
    for in_axes in [(0, None), (None, 0), (0, 0)]:
        check_vmap(conv_fn(cfg["params"]), batch_args(ints, in_axes), in_axes)


# --- composition ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["NCHW-OIHW", "NHWC-HWIO-groups", "NHC-HIO-1d-batch-groups"])
@pytest.mark.parametrize("inner,outer", [((0, None), (None, 0)), ((None, 0), (0, None)),
                                         ((0, 0), (-1, 1)), ((1, None), (0, 0))])
def test_conv_nested_vmap(name: str, inner: tuple[Any, ...], outer: tuple[Any, ...]) -> None:
    cfg = NAMED[name]
    f = conv_fn(cfg["params"])
    rng = np.random.default_rng(2)
    per_outer = [batch_args(operand_examples(cfg, 3, int(rng.integers(1000))), inner)
                 for _ in range(2)]
    args = batch_args(per_outer, outer)
    got = fgrad.vmap(fgrad.vmap(f, in_axes=inner), in_axes=outer)(*args)
    want = loop_and_stack(lambda *a: loop_and_stack(f, a, inner), args, outer)
    assert got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["NCHW-OIHW", "NCH-OIH-1d-groups", "NCHW-OIHW-batch-groups"])
def test_conv_jit_of_vmap_matches_eager(name: str) -> None:
    cfg = NAMED[name]
    exs = operand_examples(cfg, 3)
    for in_axes in [(0, None), (None, -1), (1, 0)]:
        g = fgrad.vmap(conv_fn(cfg["params"]), in_axes=in_axes, out_axes=1)
        args = batch_args(exs, in_axes)
        np.testing.assert_allclose(np.asarray(fgrad.jit(g)(*args)), np.asarray(g(*args)),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["NHWC-HWIO-groups", "NCHW-OIHW-batch-groups",
                                  "NCH-OIH-1d-groups"])
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (1, -1)])
def test_conv_vmap_grad_against_jax(x64: None, name: str, in_axes: tuple[Any, ...]) -> None:
    cfg = NAMED[name]
    args = batch_args(operand_examples(cfg, 3, dtype=np.float64), in_axes)

    def loss(conv: Callable[..., Any], np_: Any) -> Callable[..., Any]:
        return lambda lhs, rhs: np_.sum(np_.sin(conv_fn(cfg["params"], conv)(lhs, rhs)))

    got = fgrad.vmap(fgrad.grad(loss(lax.conv_general_dilated, fnp), (0, 1)), in_axes)(*args)
    want = jax.vmap(jax.grad(loss(jax.lax.conv_general_dilated, jnp), (0, 1)), in_axes)(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-9, atol=1e-10)

    def summed(conv: Callable[..., Any], vmap: Callable[..., Any], np_: Any) -> Any:
        return lambda lhs, rhs: np_.sum(np_.tanh(vmap(conv_fn(cfg["params"], conv),
                                                      in_axes)(lhs, rhs)))

    got = fgrad.grad(summed(lax.conv_general_dilated, fgrad.vmap, fnp), (0, 1))(*args)
    want = jax.grad(summed(jax.lax.conv_general_dilated, jax.vmap, jnp), (0, 1))(*args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-9, atol=1e-10)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(summed(lax.conv_general_dilated, fgrad.vmap,
                                                        fnp), (0, 1)))(*args))


# --- no needless broadcasting --------------------------------------------------------------

@pytest.mark.parametrize("name", list(NAMED))
@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (-1, 1)])
def test_conv_unbatched_operand_is_not_broadcast(name: str, in_axes: tuple[Any, ...]) -> None:
    cfg = NAMED[name]
    args = batch_args(operand_examples(cfg, 3), in_axes)
    closed = fgrad.make_jaxpr(fgrad.vmap(conv_fn(cfg["params"]), in_axes=in_axes))(*args)
    names = [e.primitive.name for e in closed.jaxpr.eqns]
    assert "broadcast_in_dim" not in names and names.count("conv_general_dilated") == 1, \
        str(closed)
    conv_eqn = next(e for e in closed.jaxpr.eqns if e.primitive.name == "conv_general_dilated")
    for v, ax in zip(closed.jaxpr.invars, in_axes):
        if ax is None:  # the unbatched operand goes into the conv as it is
            assert any(x is v for x in conv_eqn.invars), str(closed)
