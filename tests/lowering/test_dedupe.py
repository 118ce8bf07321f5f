"""Merging kernels that compute the same buffer (fgrad/lowering/dedupe.py).

A CNN's weight gradient needs the im2col patches its forward convolution already
wrote; the scheduler lowers the two equations separately, and the pass must keep
one kernel. It must never merge where a value could differ: an output of the
program, a buffer updated in place, an input written again in between."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.lowering.dedupe import merge_duplicate_kernels
from fgrad.lowering.interpret import run_program
from fgrad.lowering.kernel_ir import Kernel, Load, Loop, Param, ScalarOp, Store, alu, var
from fgrad.lowering.schedule import Buffer, Program

F32 = np.dtype(np.float32)


def test_a_convolution_and_its_weight_gradient_share_the_patches() -> None:
    dn = ("NHWC", "HWIO", "NHWC")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 6, 4)).astype(np.float32)
    w1 = rng.normal(size=(3, 3, 4, 5)).astype(np.float32)
    w2 = rng.normal(size=(3, 3, 5, 8)).astype(np.float32)

    def loss(w1: Any, w2: Any, x: Any) -> Any:
        h = fnp.maximum(lax.conv_general_dilated(x, w1, (1, 1), "SAME", dimension_numbers=dn),
                        0.0)
        return fnp.sum(lax.conv_general_dilated(h, w2, (1, 1), "SAME",
                                                dimension_numbers=dn) ** 2)
    grad = fgrad.grad(loss, argnums=(0, 1))
    program = fgrad.jit(grad, backend="cpu").lower(w1, w2, x).as_text("kernels")
    # each convolution's patches: written once, read by its forward product (k = taps x
    # channels in) and by its weight gradient's (m = the same, A transposed)
    for taps_in in (9 * 4, 9 * 5):
        forward = re.search(rf"gemm\((\w+), \w+; batch=1, m=\d+, n=\d+, k={taps_in},", program)
        weight = re.search(rf"gemm\((\w+), \w+; batch=1, m={taps_in}, n=\d+, k=\d+, "
                           r"trans_a=True", program)
        assert forward and weight and forward.group(1) == weight.group(1), program
    assert program.count("kernel im2col(") == 2, program
    for got, want in zip(fgrad.jit(grad, backend="cpu")(w1, w2, x), grad(w1, w2, x)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-3)


def _copy(src: str, dst: str, n: int, order: str = "i + 0") -> Kernel:
    """``dst[i] = exp(src[i])`` over ``n`` elements (``order`` only changes how the index
    is written)."""
    i = var("i")
    index = i + 0 if order == "i + 0" else 0 + i
    return Kernel("copy", (Param(src, F32, n), Param(dst, F32, n, True)),
                  (Loop("i", n, (Store(dst, index, alu(ScalarOp.EXP, Load(src, index, F32))),),
                        parallel=True),))


def _sum_of(a: str, b: str, out: str, n: int) -> Kernel:
    i = var("i")
    return Kernel("add", (Param(a, F32, n), Param(b, F32, n), Param(out, F32, n, True)),
                  (Loop("i", n, (Store(out, i, alu(ScalarOp.ADD, Load(a, i, F32),
                                                   Load(b, i, F32))),), parallel=True),))


def _program(steps: list[Any], outputs: list[str], n: int = 5) -> Program:
    names = {p.name for s in steps for p in s.params}
    buffers = {name: Buffer(name, (n,), F32) for name in sorted(names)}
    return Program(buffers, ["in0"], {}, outputs, steps)


def test_two_equal_kernels_become_one_and_the_reader_reads_the_first() -> None:
    program = _program([_copy("in0", "t1", 5), _copy("in0", "t2", 5, order="0 + i"),
                        _sum_of("t1", "t2", "out0", 5)], ["out0"])
    merged = merge_duplicate_kernels(program)
    assert len(merged.steps) == 2 and "t2" not in merged.buffers, merged
    assert [p.name for p in merged.steps[1].params] == ["t1", "out0"]
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    np.testing.assert_allclose(run_program(merged, [x])[0], 2 * np.exp(x), rtol=1e-6)


@pytest.mark.parametrize("case", ["output", "updated in place", "input written twice"])
def test_nothing_merges_where_a_value_could_differ(case: str) -> None:
    i = var("i")
    steps: list[Any] = [_copy("in0", "t1", 5), _copy("in0", "t2", 5)]
    outputs = ["t2"] if case == "output" else ["out0"]
    if case == "updated in place":  # t1 += in0 after it is written: not t2's value anymore
        steps.insert(1, Kernel("bump", (Param("in0", F32, 5), Param("t1", F32, 5, True)), (
            Loop("i", 5, (Store("t1", i, Load("in0", i, F32), op=ScalarOp.ADD),)),)))
    if case == "input written twice":  # both copy t0, which changes in between
        steps = [_copy("in0", "t0", 5), _copy("t0", "t1", 5),
                 Kernel("bump", (Param("in0", F32, 5), Param("t0", F32, 5, True)), (
                     Loop("i", 5, (Store("t0", i, Load("in0", i, F32), op=ScalarOp.ADD),)),)),
                 _copy("t0", "t2", 5)]
    if case != "output":
        steps.append(_sum_of("t1", "t2", "out0", 5))
    program = _program(steps, outputs)
    assert len(merge_duplicate_kernels(program).steps) == len(steps)
