"""The CUDA C renderer: what the generated source looks like, and that it covers the IR.

These tests read the source text (compiling it is ``test_ptx.py``'s job, running
it the emulator's): grid-stride loops, ``__restrict__`` pointers, no headers or
host macros, shared memory only in block reductions, atomics only in scatters,
exact literals, 16-bit floats as bits in memory, and a rendering for every
operation at every dtype the kernel IR gives a meaning to.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import pytest

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.core.dtypes import SUPPORTED_DTYPES, is_float
from fgrad.lowering import semantics
from fgrad.lowering.cuda import dialect, render
from fgrad.lowering.cuda import plan as planning
from fgrad.lowering.kernel_ir import (
    ARITY, COMPARE, AccRef, Accumulate, Alu, Const, DefineAcc, IndexValue, Kernel, Load,
    Loop, Param, ScalarOp, Store, const, from_value, lt, var)
from fgrad.lowering.schedule import Branch, Repeat, WhileLoop, schedule

F32, F16, I32 = np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.int32)
GRID_STRIDE = "blockIdx.x * (long long)blockDim.x + threadIdx.x"


def _module(fn: Any, *args: Any) -> render.CudaModule:
    return render.render_program(schedule(fgrad.make_jaxpr(fn)(*args)))


def _self_contained(source: str) -> None:
    for banned in ("#include", "INFINITY", "NAN", "std::", "CUDART_"):
        assert banned not in source, banned


def test_elementwise_views_and_padding_are_one_grid_stride_loop() -> None:
    x = np.ones((64, 128), np.float32)
    m = _module(lambda x: lax.pad(fnp.exp(x)[:, ::-1].T * 2.0, 0.0, [(1, 1, 0), (0, 0, 0)]), x)
    (k,) = m.kernels
    text = m.source[m.source.index(f"void __launch_bounds__(256) {k.name}("):]
    _self_contained(m.source)
    assert f"const float* __restrict__ {k.params[0].name}" in text
    assert f"float* __restrict__ {k.params[1].name}" in text
    assert GRID_STRIDE in text and "(long long)gridDim.x * blockDim.x" in text
    assert " ? " in text and ": 0.0f" in text  # the padding: a masked load with its fill
    assert "__shared__" not in text and "__syncthreads" not in text and "atomic" not in text
    n = 130 * 64
    assert (k.mode, k.grid, k.block) == ("thread", -(-n // 256), 256)


def test_perfectly_nested_loops_join_the_grid_only_when_their_stores_cannot_collide() -> None:
    i, j = var("i"), var("j")
    x = Load("x", j * 4 + i, F32)
    params = (Param("x", F32, 24), Param("out", F32, 24, True))
    transpose = Kernel("t", params, (Loop("i", 4, (Loop("j", 6, (
        Store("out", i * 6 + j, x),)),), parallel=True),))
    p = planning.plan(transpose)
    assert [lp.var for lp in p.run] == ["i", "j"] and p.grid * p.block >= 24
    text = render.render_kernel(transpose)
    assert "fg_i1 < 24LL" in text and "const long long i = fg_i1 / 6LL;" in text
    assert "const long long j = fg_i1 % 6LL;" in text
    # out[i] written for every j: the last j wins, so j must stay a loop in one thread
    last_wins = Kernel("l", params, (Loop("i", 4, (Loop("j", 6, (
        Store("out", i, x),)),), parallel=True),))
    assert [lp.var for lp in planning.plan(last_wins).run] == ["i"]
    assert "for (long long j = 0; j < 6LL; ++j)" in render.render_kernel(last_wins)


def test_short_reductions_take_one_thread_per_output() -> None:
    m = _module(lambda x: fnp.sum(fnp.exp(x), axis=1), np.ones((3, 4), np.float32))
    k = m.kernels[0]
    assert (k.mode, k.grid, k.block) == ("thread", 1, 32)
    assert "for (long long r0 = 0; r0 < 4LL; ++r0)" in m.source
    assert "__shared__" not in m.source


def test_long_reductions_share_a_block_through_shared_memory() -> None:
    full = _module(lambda x: fnp.max(x * 2.0), np.ones(100_000, np.float32))
    k = full.kernels[0]
    assert (k.mode, k.grid, k.block) == ("block", 1, planning.BLOCK)
    assert "__shared__ float fg_s_acc[256];" in full.source
    assert full.source.count("__syncthreads();") == 2
    assert "fg_r1 = threadIdx.x; fg_r1 < 100000LL; fg_r1 += blockDim.x" in full.source
    assert "if (threadIdx.x == 0)" in full.source
    rows = _module(lambda x: fnp.sum(x, axis=1), np.ones((3, 5000), np.float32))
    k = rows.kernels[0]
    assert (k.mode, k.grid, k.block) == ("block", 3, planning.BLOCK)
    assert "fg_i1 = (long long)blockIdx.x; fg_i1 < 3LL; fg_i1 += gridDim.x" in rows.source


def test_grouped_partial_sums_are_spread_over_all_their_elements() -> None:
    """``acc += (part = sum of a block)`` is the same sum regrouped: the block of threads
    takes all 4096 elements, not the 4 groups."""
    rb, r = var("rb"), var("r")
    kernel = Kernel("sum", (Param("x", F32, 4096), Param("out", F32, 1, True)), (
        DefineAcc("acc", ScalarOp.ADD, F32),
        Loop("rb", 4, (DefineAcc("part", ScalarOp.ADD, F32),
                       Loop("r", 1024, (Accumulate("part", Load("x", rb * 1024 + r, F32)),)),
                       Accumulate("acc", AccRef("part", F32)))),
        Store("out", const(0), AccRef("acc", F32))))
    text = render.render_kernel(kernel)
    assert planning.plan(kernel).mode == "block" and "fg_r1 < 4096LL" in text
    assert "part" not in text


def _scatter(dtype: Any, op: ScalarOp | None) -> Kernel:
    j, dtype = var("j"), np.dtype(dtype)
    return Kernel("scatter", (Param("idx", I32, 6), Param("u", dtype, 6),
                              Param("out", dtype, 3, True)), (Loop("j", 6, (Store(
                                  "out", from_value(Load("idx", j, I32)), Load("u", j, dtype),
                                  op=op),)),))


def test_scatters_update_atomically_or_run_in_one_thread() -> None:
    add = render.render_module([_scatter(np.float32, ScalarOp.ADD)])
    assert add.kernels[0].mode == "atomic" and "atomicAdd(&out[(long long)v" in add.source
    assert GRID_STRIDE in add.source
    maximum = render.render_kernel(_scatter(np.int32, ScalarOp.MAX))
    assert "fg_atomic<unsigned int>(&out[" in maximum and "fg_max<int>(a, b)" in maximum
    product = render.render_kernel(_scatter(np.float64, ScalarOp.MUL))
    assert "fg_atomic<unsigned long long>(&out[" in product
    # no 16-bit atomics; an overwrite keeps the last update: both in order, in one thread
    for kernel in (_scatter(np.float16, ScalarOp.ADD), _scatter(np.float32, None)):
        (k,) = render.render_module([kernel]).kernels
        assert (k.mode, k.grid, k.block) == ("serial", 1, 1)
        assert "atomic" not in render.render_kernel(kernel)


def _samples(dtype: np.dtype, op: ScalarOp) -> list[np.ndarray]:
    if dtype == np.bool_:
        x = np.array([True, False, True, False])
    else:
        x = np.array([1, 2, 3, 5]).astype(dtype)
    y = np.array([1, 1, 2, 3]).astype(dtype)
    args = [x, y, x][:ARITY[op]]
    return [np.array([True, False, True, True]), x, y] if op is ScalarOp.WHERE else args


def _ir_meaning(op: ScalarOp, dtype: np.dtype) -> bool:
    """Whether ``semantics`` gives ``op`` a meaning at ``dtype``: numpy maps ``dtype``
    operands to a ``dtype`` (or, comparing, a bool) result. (Shifts act on integer bits:
    ``semantics`` would convert float operands to integers first.)"""
    if op in (ScalarOp.SHL, ScalarOp.SHR) and is_float(dtype):
        return False
    try:
        with np.errstate(all="ignore"):
            out = np.asarray(semantics.NUMPY[op](*_samples(dtype, op)))
    except Exception:  # numpy (or the fma impl) rejects these operands
        return False
    return out.dtype == (np.dtype(bool) if op in COMPARE else dtype)


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES, ids=lambda d: d.name)
def test_every_op_with_a_meaning_at_a_dtype_renders(dtype: np.dtype) -> None:
    ops = [op for op in ScalarOp if op is not ScalarOp.BITCAST and _ir_meaning(op, dtype)]
    assert ScalarOp.CMPLT in ops and ScalarOp.WHERE in ops  # the oracle is not vacuous
    args = ["a", "b", "c"]
    for op in ops:
        out = np.dtype(bool) if op in COMPARE else dtype
        expr = render.alu_expr(op, dtype, out, args[:ARITY[op]])
        assert expr and "{" not in expr and all(a in expr for a in args[:ARITY[op]]), op
    for dst in SUPPORTED_DTYPES:
        assert "a" in dialect.cast_expr("a", dtype, dst)
        if dst.itemsize == dtype.itemsize:
            assert "a" in render.alu_expr(ScalarOp.BITCAST, dtype, dst, ["a"])


def test_ops_without_a_meaning_are_a_clear_error() -> None:
    assert not _ir_meaning(ScalarOp.EXP, I32)
    with pytest.raises(NotImplementedError, match="no int32 rendering for EXP"):
        render.alu_expr(ScalarOp.EXP, I32, I32, ["a"])
    with pytest.raises(NotImplementedError, match="no float32 rendering for SHL"):
        render.alu_expr(ScalarOp.SHL, F32, F32, ["a", "b"])


def test_semantic_choices_are_spelled_out() -> None:
    # NaN-propagating max; XLA's integer division; saturating float -> int; C's != is
    # unordered (NaN != NaN), like numpy
    assert render.alu_expr(ScalarOp.MAX, F32, F32, ["a", "b"]) == "fg_max<float>(a, b)"
    assert render.alu_expr(ScalarOp.DIV, I32, I32, ["a", "b"]) == "fg_div<int>(a, b)"
    assert dialect.cast_expr("a", F32, np.dtype(np.uint8)) == "fg_to_int<unsigned char>(a)"
    assert dialect.cast_expr("a", F32, np.dtype(bool)) == "(a != 0)"
    # signed integer arithmetic wraps through unsigned (overflow is undefined in C)
    assert render.alu_expr(ScalarOp.ADD, I32, I32, ["a", "b"]) == \
        "(int)((unsigned int)a + (unsigned int)b)"
    # 16-bit floats: computed in float, rounded once; a double rounds without double rounding
    assert render.alu_expr(ScalarOp.EXP, F16, F16, ["a"]) == "fg_rh(expf(a))"
    assert dialect.cast_expr("a", np.float64, F16) == "fg_rh((double)a)"
    assert dialect.cast_expr("a", F16, F32) == "a"


@pytest.mark.parametrize("value, dtype, text", [
    (0.1, np.float32, "0.1f"), (-2.5, np.float32, "(-2.5f)"), (-0.0, np.float32, "(-0.0f)"),
    (np.inf, np.float32, "__uint_as_float(0x7f800000u)"),
    (-np.inf, np.float32, "__uint_as_float(0xff800000u)"),
    (np.nan, np.float32, "__uint_as_float(0x7fc00000u)"),
    (-np.inf, np.float64, "__longlong_as_double((long long)0xfff0000000000000ull)"),
    (1e-300, np.float64, "1e-300"), (65504.0, np.float16, "65504.0f"),
    (1.0, ml_dtypes.bfloat16, "1.0f"), (7, np.int32, "7"), (-7, np.int32, "((int)-7)"),
    (-2**63, np.int64, "(-9223372036854775807LL - 1)"),
    (2**64 - 1, np.uint64, "18446744073709551615ull"), (-5, np.int8, "((signed char)-5)"),
    (True, np.bool_, "true")])
def test_literals_are_exact(value: Any, dtype: Any, text: str) -> None:
    assert dialect.literal(value, dtype) == text
    if np.dtype(dtype) == np.float32 and np.isfinite(value):  # reads back as the same float
        assert np.float32(text.strip("()f")) == np.float32(value)


def test_16_bit_floats_are_bits_in_memory_and_floats_in_registers() -> None:
    m = _module(lambda x: fnp.sin(x) * x, np.ones(10, np.float16))
    text = m.source[len(dialect.PRELUDE):]
    assert "const unsigned short* __restrict__ in0" in text
    assert "fg_h2f(in0[" in text and "fg_f2h(" in text  # loads and stores convert
    assert "fg_rh(" in text and "const float v" in text and "half" not in text


def test_data_dependent_indices_and_index_values() -> None:
    m = _module(lambda x, i: x[i] + fnp.arange(3.0), np.ones((5, 3), np.float32),
                np.array([4, 0, 9], np.int32))
    assert "(long long)v" in m.source  # an index read from the indices buffer
    assert "fg_min<long long>(" in m.source and "fg_max<long long>(" in m.source  # clamped
    i = var("i")
    iota = Kernel("iota", (Param("out", F16, 4, True),), (Loop("i", 4, (Store(
        "out", i, IndexValue(i, F16)),), parallel=True),))
    assert "fg_rh((float)i)" in render.render_kernel(iota)


def test_masked_stores_are_guarded() -> None:
    i = var("i")
    kernel = Kernel("masked", (Param("out", F32, 8, True),), (Loop("i", 8, (Store(
        "out", i, Const(np.float32(1), F32), mask=lt(i, 3)),), parallel=True),))
    assert "if (i < 3) {" in render.render_kernel(kernel)


def _count_kernels(steps: Any) -> int:
    n = 0
    for s in steps:
        if isinstance(s, Kernel):
            n += 1
        elif isinstance(s, Branch):
            n += sum(_count_kernels(b) for b in s.branches)
        elif isinstance(s, Repeat):
            n += _count_kernels(s.body)
        elif isinstance(s, WhileLoop):
            n += _count_kernels(s.cond) + _count_kernels(s.body)
    return n


def test_every_kernel_of_a_program_with_control_flow_is_in_the_module() -> None:
    def f(x: Any) -> Any:
        y = lax.cond(x[0] > 0, lambda v: v * 2.0, lambda v: fnp.exp(v), x)
        y = lax.while_loop(lambda c: c[0] < 10.0, lambda c: c + 3.0, y)
        return lax.scan(lambda c, a: (c + a, c * a), 0.0, y)

    program = schedule(fgrad.make_jaxpr(f)(np.ones(4, np.float32)))
    kinds = {type(s) for s in program.steps}
    assert {Branch, WhileLoop, Repeat} <= kinds, kinds
    m = render.render_program(program)
    assert len(m.kernels) == _count_kernels(program.steps)
    assert len({k.name for k in m.kernels}) == len(m.kernels)
    assert [k.ir for k in m.kernels] == render.program_kernels(program.steps)
    for k in m.kernels:
        assert f'extern "C" __global__ void __launch_bounds__({k.block}) {k.name}(' in m.source
    _self_contained(m.source)
    assert m.source.startswith(dialect.PRELUDE) and "--fmad=false" in m.options


def test_kernel_names_are_c_identifiers_and_unique() -> None:
    i = var("i")
    body = (Loop("i", 2, (Store("o", i, Const(np.float32(0), F32)),), parallel=True),)
    same = [Kernel("copy-x.1", (Param("o", F32, 2, True),), body)] * 2
    assert [k.name for k in render.render_module(same).kernels] == ["k0_copy_x_1",
                                                                      "k1_copy_x_1"]
    assert render.c_name("3d") == "k_3d"
    assert "void __launch_bounds__(32) k_3d(" in render.render_kernel(same[0], "3d")


def test_names_that_would_shadow_the_renderers_are_refused() -> None:
    i = var("i")
    for bad in ("v3", "fg_i1", "a-b"):
        kernel = Kernel("k", (Param("o", F32, 2, True),), (Loop(bad, 2, (
            Store("o", i, Const(np.float32(0), F32)),), parallel=True),))
        with pytest.raises(ValueError, match=f"names \\['{bad}'\\]"):
            render.render_kernel(kernel)


def test_empty_loops_render_and_launch_one_block() -> None:
    i, j = var("i"), var("j")
    kernel = Kernel("empty", (Param("x", F32, 0), Param("o", F32, 0, True)), (Loop("i", 0, (
        Loop("j", 3, (Store("o", i * 3 + j, Load("x", i * 3 + j, F32, lt(j, 2))),)),),
        parallel=True),))
    (k,) = render.render_module([kernel]).kernels
    assert k.grid >= 1 and k.block >= 1  # a launch needs a block; the loop does nothing
    text = render.render_kernel(kernel)
    assert "fg_i1 < 0LL" in text
    assert "const float v0 = 0.0f;" in text and "x[" not in text  # empty: all padding


def test_a_store_converts_to_the_buffer_dtype() -> None:
    i = var("i")
    kernel = Kernel("c", (Param("x", F32, 4), Param("o", np.dtype(np.int8), 4, True)), (
        Loop("i", 4, (Store("o", i, Alu(ScalarOp.FLOOR, (Load("x", i, F32),), F32)),),
             parallel=True),))
    assert "o[i] = fg_to_int<signed char>(v1);" in render.render_kernel(kernel)
