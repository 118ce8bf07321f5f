"""Convolutions on the CPU backend (``lower_conv.py``): values and gradients against eager
execution, and the structure of the generated kernels.

The training step of a CNN runs three kinds of convolution: the forward one,
the gradient with respect to the input (a *transposed* convolution: lhs
dilation = the forward strides, lowered as gemm + col2im) and the gradient
with respect to the kernel (operands swapped: batch and features trade
places, the forward strides become the kernel dilation). The gradient tests
below run all three under ``jit`` for several layouts, strides, paddings and
groups; the structure tests check what makes them fast: the im2col and
col2im loop nests index with affine expressions only (no ``/`` or ``%``),
and a transposed convolution never writes the dilation's zeros.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp

# (lhs shape, rhs shape, params): forward geometry; the gradient tests derive the others.
CASES: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((2, 9, 9, 3), (3, 3, 3, 4),
     dict(window_strides=(2, 2), padding="SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((2, 8, 7, 1), (3, 3, 1, 5),
     dict(window_strides=(2, 1), padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))),
    ((2, 3, 7, 6), (4, 3, 3, 2), dict(window_strides=(1, 2), padding=((1, 0), (2, 1)))),
    ((1, 4, 9), (6, 2, 3), dict(window_strides=(3,), padding=((1, 1),), feature_group_count=2)),
    ((5, 2, 2, 4), (3, 3, 2, 2),
     dict(window_strides=(2, 2), padding="SAME", rhs_dilation=(2, 1),
          dimension_numbers=("HNCW", "OHWI", "WCNH"))),
]


def _args(lhs_shape: tuple[int, ...], rhs_shape: tuple[int, ...]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=lhs_shape).astype(np.float32),
            rng.normal(size=rhs_shape).astype(np.float32)]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_conv_and_both_gradients_match_eager(case: int) -> None:
    lhs_shape, rhs_shape, params = CASES[case]
    x, w = _args(lhs_shape, rhs_shape)
    out_shape = np.shape(lax.conv_general_dilated(x, w, **params))
    r = np.random.default_rng(1).normal(size=out_shape).astype(np.float32)

    def loss(x: Any, w: Any) -> Any:
        y = lax.conv_general_dilated(x, w, **params)
        return fnp.sum(fnp.tanh(y) * r)

    f = fgrad.value_and_grad(loss, argnums=(0, 1))
    want_value, want_grads = f(x, w)
    got_value, got_grads = fgrad.jit(f, backend="cpu")(x, w)
    np.testing.assert_allclose(np.asarray(got_value), np.asarray(want_value), rtol=1e-4)
    for got, want in zip(got_grads, want_grads):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("strides,padding", [((2, 2), ((1, 1), (1, 2))), ((3, 2), "SAME")])
def test_transposed_conv_matches_eager(strides: tuple[int, int], padding: Any) -> None:
    x, w = _args((2, 5, 4, 3), (3, 3, 3, 6))
    f = lambda x, w: lax.conv_transpose(x, w, strides, padding,  # noqa: E731
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(np.asarray(fgrad.jit(f, backend="cpu")(x, w)),
                               np.asarray(f(x, w)), rtol=1e-4, atol=1e-4)


def _kernels(text: str) -> dict[str, str]:
    """``kernel name(...)`` blocks of a printed program, by name (first of each name)."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=  kernel |  \S+ = gemm)", text):
        m = re.match(r"\s*kernel (\w+)\(", block)
        if m:
            blocks.setdefault(m.group(1), block)
    return blocks


def _cnn_step_program() -> str:
    dn = ("NHWC", "HWIO", "NHWC")
    x, w = _args((4, 12, 12, 8), (3, 3, 8, 16))

    def loss(x: Any, w: Any) -> Any:
        return fnp.sum(lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dn)
                       ** 2)
    return fgrad.jit(fgrad.grad(loss, argnums=(0, 1)), backend="cpu").lower(x, w).as_text(
        "kernels")


def test_im2col_and_col2im_index_math_is_affine() -> None:
    program = _cnn_step_program()
    kernels = _kernels(program)
    assert "im2col" in kernels and "col2im" in kernels, program
    for name in ("im2col", "col2im"):
        body = kernels[name].split("\n", 1)[1]
        assert not re.search(r"[/%]", body), kernels[name]


def test_transposed_conv_skips_the_dilation_zeros() -> None:
    """The input gradient of a stride-2 convolution multiplies the undilated gradient: its
    gemm's inner dimension is the channel count, not channels x taps."""
    program = _cnn_step_program()
    gemms = re.findall(r"gemm\([^)]*k=(\d+)", program)
    assert "16" in gemms, program  # Z = dy[(n, i, j), 16] @ w[16, (taps, 8)]
    assert "col2im" in program and "zeros" in program
    # the forward convolution reads an HWIO kernel in place: no relayout of w for it
    assert program.count("kernel layout") <= 1, program


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((2, 0), (1, 1))])
def test_unit_stride_input_gradient_multiplies_first_when_it_pays(padding: Any) -> None:
    """A layer that widens its channels (8 -> 16): its input gradient, a convolution from
    16 channels to 8 with at most as many input positions as output ones, multiplies
    first (one gemm with k = 16) and each output position gathers its taps; the weight
    gradient (whose "input" is the whole image) keeps im2col. Both match eager."""
    dn = ("NHWC", "HWIO", "NHWC")
    x, w = _args((3, 9, 8, 8), (3, 3, 8, 16))
    r = np.random.default_rng(2).normal(
        size=np.shape(lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=dn))
    ).astype(np.float32)

    def loss(x: Any, w: Any) -> Any:
        return fnp.sum(lax.conv_general_dilated(x, w, (1, 1), padding,
                                                dimension_numbers=dn) * r)
    grad = fgrad.grad(loss, argnums=(0, 1))
    program = fgrad.jit(grad, backend="cpu").lower(x, w).as_text("kernels")
    gemm_ks = re.findall(r"gemm\([^)]*k=(\d+)", program)
    assert "16" in gemm_ks and "col2im" in program, program  # Z = dy[., 16] @ w[16, .]
    # only the input gradient: the weight gradient would multiply 3x too much that way
    assert program.count("kernel col2im(") == 1 and "kernel im2col(" in program, program
    kernels = _kernels(program)
    assert "zeros" not in kernels and not re.search(r"[/%]", kernels["col2im"].split("\n", 1)[1])
    for got, want in zip(fgrad.jit(grad, backend="cpu")(x, w), grad(x, w)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-4)


def test_weight_gradient_keeps_im2col() -> None:
    """MNIST-1D's second convolution (25 -> 25 channels, width 3, stride 2, batch 100): its
    weight gradient is a convolution of the input by the output gradient whose 'input'
    (the whole sequence) is longer than its output (the kernel's width); multiplying
    first would multiply 10/3 as much (and made that example's step 10% slower)."""
    dn = ("NWC", "WIO", "NWC")
    x, w = _args((100, 10, 25), (3, 25, 25))

    def loss(x: Any, w: Any) -> Any:
        return fnp.sum(lax.conv_general_dilated(x, w, (2,), ((1, 1),),
                                                dimension_numbers=dn) ** 2)
    grad = fgrad.grad(loss, argnums=(0, 1))
    program = fgrad.jit(grad, backend="cpu").lower(x, w).as_text("kernels")
    assert program.count("kernel col2im(") == 1, program  # the input gradient's only
    for got, want in zip(fgrad.jit(grad, backend="cpu")(x, w), grad(x, w)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-3)
