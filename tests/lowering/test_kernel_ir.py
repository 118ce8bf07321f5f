"""The kernel IR and its numpy interpreter: printing, ops, reductions, masks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fgrad.lowering import semantics
from fgrad.lowering.interpret import run_kernel
from fgrad.lowering.kernel_ir import (
    AccRef, Accumulate, Cast, Const, DefineAcc, IndexValue, Kernel, Load, Loop, Param,
    ScalarOp, Store, all_of, alu, const, ge, lt, masked_load, select, var)

F32, I32 = np.dtype(np.float32), np.dtype(np.int32)


def row_reduce_kernel(op: ScalarOp, m: int, n: int) -> Kernel:
    i, j = var("i"), var("j")
    x = Load("x", i * n + j, F32)
    body = (Loop("i", m, (DefineAcc("acc", op, F32),
                          Loop("j", n, (Accumulate("acc", alu(ScalarOp.EXP, x)),)),
                          Store("out", i, AccRef("acc", F32))), parallel=True),)
    return Kernel("exp_reduce", (Param("x", F32, m * n), Param("out", F32, m, True)), body)


def test_printer_reads_like_pseudo_c() -> None:
    text = str(row_reduce_kernel(ScalarOp.ADD, 64, 128))
    assert text == ("kernel exp_reduce(x: f32[8192], out: f32[64] (out)):\n"
                    "  parallel for i in 0..64:\n"
                    "    f32 acc = identity(ADD)\n"
                    "    for j in 0..128: acc += exp(x[i*128 + j])\n"
                    "    out[i] = acc")


@pytest.mark.parametrize("op,np_reduce", [(ScalarOp.ADD, np.sum), (ScalarOp.MAX, np.max),
                                          (ScalarOp.MIN, np.min), (ScalarOp.MUL, np.prod)])
@pytest.mark.parametrize("m,n", [(3, 5), (1, 1), (4, 0)])
def test_reductions(op: ScalarOp, np_reduce: object, m: int, n: int) -> None:
    x = np.random.default_rng(0).normal(size=(m, n)).astype(F32) * 0.3
    out = np.full(m, 123.0, F32)
    run_kernel(row_reduce_kernel(op, m, n), {"x": x.ravel(), "out": out})
    want = np_reduce(np.exp(x), axis=1, initial=semantics.identity(op, F32))  # type: ignore
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_max_reduction_propagates_nan() -> None:
    x = np.array([0.0, np.nan, 1.0], F32)
    out = np.zeros(1, F32)
    run_kernel(row_reduce_kernel(ScalarOp.MAX, 1, 3), {"x": x, "out": out})
    assert np.isnan(out[0])


def test_masked_load_where_cast_and_iota() -> None:
    i = var("i")
    guard = Load("x", i + (-1), F32, mask=lt(0, i), fill=-5.0)
    value = alu(ScalarOp.WHERE, alu(ScalarOp.CMPLT, guard, Const(0.0, F32)),
                Cast(IndexValue(i, I32), F32), guard)
    k = Kernel("k", (Param("x", F32, 4), Param("out", F32, 5, True)),
               (Loop("i", 5, (Store("out", i, value),)),))
    out = np.zeros(5, F32)
    # x is only 4 long: i = 0 must read the fill value, never x[-1]
    run_kernel(k, {"x": np.array([1.0, -2.0, 3.0, 4.0], F32), "out": out})
    np.testing.assert_array_equal(out, [0.0, 1.0, 2.0, 3.0, 4.0])


def test_integer_division_follows_xla() -> None:
    """Toward zero; x / 0 == -1, x % 0 == x, INT_MIN / -1 == INT_MIN (as lax.div/rem)."""
    imin = np.iinfo(np.int32).min
    x = np.array([7, -7, 7, -7, 5, imin, imin], I32)
    y = np.array([2, 2, -2, -2, 0, -1, 1], I32)
    got = semantics.apply(ScalarOp.DIV, I32, x, y)
    np.testing.assert_array_equal(got, [3, -3, -3, 3, -1, imin, imin])
    np.testing.assert_array_equal(semantics.apply(ScalarOp.REM, I32, x, y),
                                  [1, -1, 1, -1, 5, 0, 0])
    from fgrad import lax
    np.testing.assert_array_equal(got, np.asarray(lax.div(x, y)))
    np.testing.assert_array_equal(semantics.apply(ScalarOp.REM, I32, x, y),
                                  np.asarray(lax.rem(x, y)))


def test_wrong_arity_is_rejected() -> None:
    with pytest.raises(ValueError, match="ADD takes 2 operands"):
        alu(ScalarOp.ADD, Const(1.0, F32))


def test_conditions_known_while_scheduling_are_decided_then() -> None:
    i = var("i")
    assert lt(0, 1) == const(1) and ge(0, 1) == const(0)
    assert all_of([None, lt(0, 1), lt(i, 4)]) == lt(i, 4)  # always-true terms drop out
    assert all_of([lt(i, 4), ge(0, 1)]) == const(0) and all_of([lt(0, 1)]) is None
    a, b = Load("a", i, F32), Const(np.float32(2.0), F32)
    assert select(const(1), a, b) is a and select(None, a, b) is a
    assert select(const(0), a, b) is b
    assert str(select(lt(i, 4), a, b)) == "((bool)(i64)((i < 4)) ? a[i] : 2.0)"
    assert masked_load("a", i, F32, const(1)) == Load("a", i, F32)
    never = masked_load("a", i, F32, const(0), fill=-1)
    assert isinstance(never, Const) and never.value == -1 and never.dtype == F32


def evaluate(e: Any, env: dict[str, int], trunc: bool) -> int:
    """An index expression's value, with floor (the IR's) or truncating division."""
    op, a = e.op, e.args
    if op == "var":
        return env[a[0]]
    if op == "const":
        return a[0]
    x, y = evaluate(a[0], env, trunc), evaluate(a[1], env, trunc)
    if op == "add":
        return x + y
    if op == "mul":
        return x * y
    q = int(x / y) if trunc else x // y
    return q if op == "div" else x - q * y


@pytest.mark.parametrize("trunc", [False, True])
@given(st.integers(1, 40), st.integers(1, 40), st.integers(0, 10 ** 6), st.integers(-500, 500))
def test_neighbouring_digits_merge_and_keep_their_value(trunc: bool, b: int, n: int,
                                                        outer: int, x: int) -> None:
    i, j = var("i"), var("j")
    env = {"i": x, "j": outer}
    written = j * 7 + (i // (b * n)) * (b * n) + (i // b % n) * b + i % b  # a reshape's digits
    assert str(written) == "j*7 + i" and evaluate(written, env, trunc) == outer * 7 + x
    middle = (i // b % n) * b + j + i % b  # x%(b*n), wherever the digits sit in the sum
    assert evaluate(middle, env, trunc) == evaluate(j + i % (b * n), env, trunc)
    assert "/" not in str(middle)
    unrelated = (i // 32 % 28) * 33 + i % 32  # not neighbouring digits: kept as written
    assert str(unrelated) == "(i/32)%28*33 + i%32"
