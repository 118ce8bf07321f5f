"""Scheduling decisions that make the CPU backend fast, each checked for its values (against
numpy or eager execution) and for the structure it promises (in the printed kernels).

* ``simplify.collapse_loops``: loops that walk memory as one become one loop;
* ``simplify.block_sums``: long float sums are blocked (accurate like a pairwise sum);
* shared values (``Scheduler.share``): a cheap value used twice is fused into both uses,
  and a stored copy is only reused where the steps that wrote it have run;
* column reductions: summing the rows of a matrix reads it in order;
* loop carries: updated in place when no pending update reads them, through
  temporaries otherwise; a loop-invariant operand gemm would transpose is
  transposed once, before the loop;
* lazy reshapes that split an axis index it affinely;
* ``cpu_llvm.program``: small kernels go to the lightly optimized module;
* the runtime's buffer addresses for read-only, empty and non-contiguous inputs.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from conftest import enable_x64
from fgrad.lowering.interpret import run_kernel
from fgrad.lowering.kernel_ir import Kernel, Load, Loop, Param, ScalarOp, Store, alu, var
from fgrad.lowering.simplify import BLOCK, collapse_loops

F32 = np.dtype(np.float32)


def kernels_of(f: Any, *args: Any) -> str:
    return fgrad.jit(f, backend="cpu").lower(*args).as_text("kernels")


def check(f: Any, *args: Any, rtol: float = 1e-5) -> None:
    got = fgrad.tree_util.tree_leaves(fgrad.jit(f, backend="cpu")(*args))
    want = fgrad.tree_util.tree_leaves(f(*args))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=rtol)


# --- collapse_loops ---------------------------------------------------------------------------

def _nest(index_of: Any, shape: tuple[int, int, int]) -> Kernel:
    i, j, k = var("i"), var("j"), var("k")
    n = int(np.prod(shape))
    x = Load("x", index_of(i, j, k), F32)
    store = Store("out", i * (shape[1] * shape[2]) + j * shape[2] + k, alu(ScalarOp.MUL, x, x))
    body = (Loop("i", shape[0], (Loop("j", shape[1], (Loop("k", shape[2], (store,)),)),),
                 parallel=True),)
    return Kernel("k", (Param("x", F32, n), Param("out", F32, n, True)), body)


@pytest.mark.parametrize("transposed", [False, True])
def test_collapse_merges_loops_that_walk_memory_as_one(transposed: bool) -> None:
    shape = (3, 4, 5)
    if transposed:  # x read as x[k, j, i]: no two loops step through it together
        kernel = _nest(lambda i, j, k: k * 12 + j * 3 + i, shape)
    else:
        kernel = _nest(lambda i, j, k: i * 20 + j * 5 + k, shape)
    merged = Kernel(kernel.name, kernel.params, collapse_loops(kernel.body))
    loops = re.findall(r"for \w+ in 0\.\.(\d+)", str(merged))
    assert loops == (["3", "4", "5"] if transposed else ["60"]), str(merged)
    assert "parallel for" in str(merged)
    x = np.random.default_rng(0).normal(size=60).astype(F32)
    outs = [np.zeros(60, F32), np.zeros(60, F32)]
    run_kernel(kernel, {"x": x, "out": outs[0]})
    run_kernel(merged, {"x": x, "out": outs[1]})
    np.testing.assert_array_equal(outs[0], outs[1])


def test_elementwise_kernels_on_contiguous_arrays_are_one_loop() -> None:
    x = np.ones((8, 6, 4), np.float32)
    text = kernels_of(lambda x: fnp.maximum(x * 2.0, 0.0), x)
    assert re.findall(r"for \w+ in 0\.\.(\d+)", text) == ["192"], text


# --- block sums -------------------------------------------------------------------------------

def test_long_sums_are_blocked_and_accurate() -> None:
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=3 * BLOCK + 7).astype(np.float32)
    text = kernels_of(fnp.sum, x)
    assert re.search(r"for r0b in 0\.\.3:", text) and re.search(rf"for r0 in 0\.\.{BLOCK}",
                                                                  text), text
    big = np.random.default_rng(1).uniform(0.5, 1.5, size=2_000_000).astype(np.float32)
    exact = big.astype(np.float64).sum()
    got = float(fgrad.jit(fnp.sum, backend="cpu")(big))
    sequential = float(np.cumsum(big, dtype=np.float32)[-1])  # one running float32 total
    assert abs(got - exact) / exact < 1e-6 < abs(sequential - exact) / exact


# --- shared values ------------------------------------------------------------------------------

def test_a_cheap_value_used_twice_fuses_into_the_reduction() -> None:
    def f(x: Any) -> Any:
        y = fnp.maximum(x * 2.0 + 1.0, 0.0) * x - 0.5 * fnp.abs(x)
        return fnp.sum(y * y + 1.0)
    x = np.random.default_rng(0).normal(size=5000).astype(np.float32)
    assert kernels_of(f, x).count("kernel ") == 1
    check(f, x, rtol=1e-4)


def test_a_shared_value_stored_inside_a_branch_is_not_read_after_it() -> None:
    def f(x: Any, w: Any, p: Any) -> Any:
        y = fnp.tanh(x) + 1.0  # shared: used in a branch (by a matmul) and after the cond
        z = lax.cond(p > 0, lambda y: (y @ w).sum(), lambda y: y.sum() * 0.0, y)
        return z + fnp.sum(y * 3.0)
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(4, 5)).astype(np.float32), rng.normal(size=(5, 3)).astype(np.float32)
    for p in (1.0, -1.0):
        check(f, x, w, np.float32(p), rtol=1e-4)


# --- column reductions --------------------------------------------------------------------------

@pytest.mark.parametrize("reduce", [fnp.sum, fnp.max, lambda x, axis: fnp.sum(
    x.astype(np.float16), axis=axis)])
def test_column_reductions_read_rows_in_order(reduce: Any) -> None:
    x = np.random.default_rng(0).normal(size=(64, 48)).astype(np.float32)
    f = lambda x: reduce(x, axis=0)  # noqa: E731
    text = kernels_of(f, x)
    assert re.search(r"for i0 in 0\.\.64:\n\s+for i1 in 0\.\.48: t\d+\[i1\]", text), text
    check(f, x, rtol=2e-3)


# --- loop carries ---------------------------------------------------------------------------------

def _scan_program(body: Any, init: Any, xs: Any) -> tuple[str, Any]:
    f = lambda init, xs: lax.scan(body, init, xs)  # noqa: E731
    return kernels_of(f, init, xs), f


def test_accumulating_carries_are_updated_in_place() -> None:
    def body(c: Any, x: Any) -> Any:
        return (c[0] + x, c[1] * 0.5 + x.sum()), c[0]
    init = (np.zeros(6, np.float32), np.float32(1.0))
    xs = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    text, f = _scan_program(body, init, xs)
    loop = text[text.index("repeat"):]
    assert "kernel store" not in loop and loop.count("kernel carry") == 2, loop
    check(f, init, xs)


@pytest.mark.parametrize("case", ["swap", "roll", "while_swap"])
def test_carries_that_read_each_other_go_through_temporaries(case: str) -> None:
    a = np.arange(5, dtype=np.float32)
    b = np.arange(5, dtype=np.float32)[::-1] * 10.0
    if case == "swap":
        f = lambda a, b: lax.scan(lambda c, _: ((c[1], c[0] + 1.0), c[0]), (a, b), None,  # noqa
                                  length=3)
    elif case == "roll":
        f = lambda a, b: lax.scan(lambda c, _: (fnp.roll(c, 1) + c, c), a + b, None,  # noqa
                                  length=4)
    else:
        f = lambda a, b: lax.while_loop(lambda c: c[2] < 3,  # noqa: E731
                                        lambda c: (c[1], c[0] * 2.0, c[2] + 1), (a, b, 0))
    check(f, a, b)


def test_a_loop_invariant_operand_is_transposed_once_before_the_loop() -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 8)).astype(np.float32) * 0.3
    f = lambda w, h, xs: lax.scan(lambda h, x: (fnp.tanh(x + h @ w.T),) * 2, h, xs)  # noqa
    h, xs = np.zeros((4, 8), np.float32), rng.normal(size=(6, 4, 8)).astype(np.float32)
    text = kernels_of(f, w, h, xs)
    before, loop = text.split("repeat", 1)
    assert "kernel layout(in0" in before and "trans_b=False" in loop, text
    check(f, w, h, xs)


# --- reshapes of computed values ------------------------------------------------------------------

def test_splitting_a_computed_axis_needs_no_division() -> None:
    x = np.arange(24, dtype=np.float32)
    f = lambda x: fnp.sin(x).reshape(2, 3, 4)[:, ::-1, 1:]  # noqa: E731
    text = kernels_of(f, x)
    assert not re.search(r"[/%]", text.split("\n", 1)[1]), text
    check(f, x)


# --- two modules ----------------------------------------------------------------------------------

def defined_functions(module: Any) -> list[str]:
    """The kernels and entry point defined in ``module`` (not the object entry, which the
    cheap module always holds: objects.py)."""
    return [fn.name for fn in module.functions
            if not fn.is_declaration and not fn.name.endswith("_objects")]


def test_index_conditions_known_while_scheduling_leave_no_trace() -> None:
    # take_along_axis concatenates an iota with the indices: which piece a coordinate
    # comes from is known for each constant coordinate, so the kernel reads just it
    def loss(logits: Any, y: Any) -> Any:
        return -fnp.mean(fnp.take_along_axis(logits, y[:, None], axis=1))
    logits = np.random.default_rng(0).normal(size=(8, 5)).astype(np.float32)
    y = np.array([0, 4, -1, 2, 3, 1, 0, -5], np.int32)
    text = kernels_of(loss, logits, y)
    assert not re.search(r"\(-?\d+ (<|>=|==) -?\d+\)", text), text
    assert len(text) < 1500, text
    check(loss, logits, y)
    check(fgrad.grad(loss), logits, y)


def test_small_kernels_are_compiled_lightly_and_big_ones_fully() -> None:
    from fgrad.lowering.cpu_llvm.program import CHEAP_WORK
    from fgrad.lowering.cpu_llvm.runtime import CpuExecutable
    from fgrad.lowering.schedule import schedule

    def f(x: Any, v: Any) -> Any:
        return fnp.exp(x) * 2.0, fnp.sum(v) + 1.0
    x = np.ones(4 * CHEAP_WORK, np.float32)
    v = np.ones(10, np.float32)
    exe = CpuExecutable(schedule(fgrad.make_jaxpr(f)(x, v)))
    cheap, main = defined_functions(exe.modules.cheap), defined_functions(exe.modules.main)
    # the sum of 10 elements and its scalar output are cheap; exp over x is not
    assert [n.split("_k")[-1] for n in cheap] == ["1_reduce_add", "3_output"], cheap
    assert any(n.endswith("_output") for n in main), main
    for got, want in zip(exe([x, v]), f(x, v)):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6)


def test_a_small_kernel_inside_a_long_loop_is_optimized() -> None:
    from fgrad.lowering.cpu_llvm.runtime import CpuExecutable
    from fgrad.lowering.schedule import schedule
    f = lambda c: lax.scan(lambda c, _: (c * 0.5 + 1.0, None), c, None, length=10_000)[0]  # noqa
    exe = CpuExecutable(schedule(fgrad.make_jaxpr(f)(np.ones(4, np.float32))))
    cheap, main = defined_functions(exe.modules.cheap), defined_functions(exe.modules.main)
    # the carry's first store runs once (cheap), its update 10000 times (optimized)
    assert [n.split("_k")[-1] for n in cheap] == ["1_store"] and any(
        n.endswith("_carry") for n in main), (cheap, main)


# --- the runtime's addresses --------------------------------------------------------------------

def test_read_only_empty_and_strided_inputs() -> None:
    f = fgrad.jit(lambda x, e: (x * 2.0, e + 1.0), backend="cpu")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    x.flags.writeable = False
    strided = np.arange(24, dtype=np.float32).reshape(3, 8)[:, ::2]
    for arg in (x, strided):
        got, empty = f(arg, np.zeros((0, 3), np.float32))
        np.testing.assert_array_equal(np.asarray(got), arg * 2.0)
        assert np.asarray(empty).shape == (0, 3)


def test_small_products_run_on_one_blas_thread() -> None:
    from fgrad.lowering.cpu_llvm import blas
    a = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    f = lambda a: a @ a.T  # noqa: E731
    llvm_ir = fgrad.jit(f, backend="cpu").lower(a).as_text("llvm")
    # the thread count is set to 1 around the call and restored after it
    calls = re.findall(r'= call i32 @"fgrad_blas_threads"\((i32 [^)]*)\)', llvm_ir)
    assert len(calls) == (2 if blas.has_thread_control() else 0), calls
    assert not calls or calls[0] == "i32 1"
    check(f, a)


# --- fold_gemm_updates: p + alpha * (a @ b) as one gemm ---------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("form", ["sgd", "plus", "plus_reversed", "minus", "scaled_plus"])
def test_an_update_of_a_product_is_folded_into_the_gemm(dtype: Any, form: str) -> None:
    from fgrad.lowering.interpret import run_program
    from fgrad.lowering.schedule import schedule
    update = {"sgd": lambda w, p: w - 0.01 * p, "plus": lambda w, p: w + p,
              "plus_reversed": lambda w, p: p + w, "minus": lambda w, p: w - p,
              "scaled_plus": lambda w, p: w + p * 0.5}[form]

    def step(w: Any, x: Any, g: Any) -> Any:
        return update(w, x.T @ g)
    rng = np.random.default_rng(0)
    w, x, g = (rng.normal(size=s).astype(dtype) for s in ((7, 5), (9, 7), (9, 5)))
    with enable_x64(dtype == np.float64):
        program = schedule(fgrad.make_jaxpr(step)(w, x, g))
        text = str(program)
        # one gemm with w as its addend, and no buffer for the product: w, x, g, out
        assert re.search(r"out\d+ = gemm\(in1, in2, in0; .*alpha=", text), text
        assert len(program.buffers) == 4 and "kernel" not in text, text
        want = np.asarray(step(w, x, g))
        for got in (run_program(program, [w, x, g])[0],
                    np.asarray(fgrad.jit(step, backend="cpu")(w, x, g))):
            np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_a_product_used_twice_is_not_folded() -> None:
    def step(w: Any, a: Any, b: Any) -> Any:
        p = a @ b
        return w - 0.1 * p, fnp.sum(p)
    rng = np.random.default_rng(1)
    w, a, b = (rng.normal(size=s).astype(np.float32) for s in ((4, 6), (4, 3), (3, 6)))
    assert "alpha" not in kernels_of(step, w, a, b)
    check(step, w, a, b)


def test_kernels_that_compute_the_same_are_compiled_once() -> None:
    # two layers of the same width: their bias + relu kernels differ only in buffers
    def two_layers(x: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> Any:
        h = fnp.maximum(x @ w1 + b1, 0.0)
        return fnp.maximum(h @ w2 + b2, 0.0)
    rng = np.random.default_rng(0)
    args = [rng.normal(size=s).astype(np.float32)
            for s in ((64, 128), (128, 128), (128,), (128, 128), (128,))]
    lowered = fgrad.jit(two_layers, backend="cpu").lower(*args)
    kernels = [line for line in lowered.as_text("kernels").splitlines()
               if line.strip().startswith("kernel ")]
    defined = re.findall(r'^define .*@"?(k\d+_\w+)"?\(', lowered.as_text("llvm"), re.M)
    assert len(kernels) == 2 and len(defined) == 1, (kernels, defined)
    check(two_layers, *args)
