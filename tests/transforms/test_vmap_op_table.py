"""The generic batching suite: every op-table record through ``vmap``.

For each record (``tests/op_table``), hypothesis draws a batch of argument
lists and, for every array argument, a batch axis: ``None`` (shared by the
whole batch), 0, the last axis or one in the middle. Then:

(a) ``vmap(fn, in_axes)`` equals a Python loop over the batch, stacked
    (shape, dtype, weak type, values), also with the batch put at the end of
    the outputs (``out_axes=-1``);
(b) ``jit(vmap(fn))`` equals ``vmap(fn)``;
(c) for differentiable records, in float64: ``vmap(grad(loss))`` equals the
    loop of ``grad(loss)``, where ``loss`` sums the record's float outputs,
    so the batching rules of every primitive that a JVP or transpose rule
    emits are exercised too.

Per-primitive suites (``tests/primitives/test_batch_*.py``) add focused cases:
unbatched operands that must not be broadcast, nested vmaps, JAX comparisons.
"""

from __future__ import annotations

from typing import Any, Sequence

import hypothesis
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fgrad
import op_table
from batch_util import batch_args, check_vmap, loop_and_stack
from fgrad.core.dtypes import is_float
from fgrad.tree_util import tree_leaves
from op_table import Rec, args_strategy

RECORDS = op_table.all_records()
DIFF_RECORDS = [r for r in RECORDS if r.diff and r.float_args()]
# Two drawn batches per record in CI (the profile's max_examples / 10), more in nightly:
# the per-primitive batch suites already test each rule in depth.
EXAMPLES = max(1, hypothesis.settings.default.max_examples // 10)
examples = hypothesis.settings(max_examples=EXAMPLES)
VALUE_TOL = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 2e-5,
             np.dtype(np.float64): 1e-11}


def _ids(records: Sequence[Rec]) -> list[str]:
    return [r.name for r in records]


def _dynamic(rec: Rec, values: Sequence[Any], keep: Any) -> tuple[Any, list[int]]:
    """``rec.fn`` as a function of the arguments ``keep`` selects, the others fixed."""
    positions = [i for i, a in enumerate(rec.args) if keep(a)]

    def f(*dyn: Any) -> Any:
        full = list(values)
        for i, x in zip(positions, dyn):
            full[i] = x
        return rec.fn(*full)

    return f, positions


@st.composite
def batched_case(draw: Any, rec: Rec, float_dtype: Any, keep: Any
                 ) -> tuple[list[Any], list[int], list[int | None], list[Any]]:
    """(full values of example 0, kept positions, in_axes, batched kept args)."""
    size = draw(st.integers(1, 3))
    examples_ = [draw(args_strategy(rec, float_dtype)) for _ in range(size)]
    positions = [i for i, a in enumerate(rec.args) if keep(a)]
    axes: list[int | None] = []
    for i in positions:
        nd = np.ndim(examples_[0][i])
        axes.append(draw(st.sampled_from([None, 0, -1, nd // 2])))
    if all(a is None for a in axes) and positions:
        axes[0] = 0
    per_example = [[ex[i] for i in positions] for ex in examples_]
    return examples_[0], positions, axes, batch_args(per_example, axes)


@pytest.mark.parametrize("rec", RECORDS, ids=_ids(RECORDS))
@examples
@given(data=st.data())
def test_vmap_matches_loop(rec: Rec, data: Any) -> None:
    dtype = np.dtype(rec.dtypes[0])
    values, positions, axes, batched = data.draw(
        batched_case(rec, dtype, lambda a: a.kind != "const"))
    if not positions:
        return  # a record of constants only has nothing to batch
    f, _ = _dynamic(rec, values, lambda a: a.kind != "const")
    tol = VALUE_TOL.get(dtype, 1e-5) if rec.rtol is None else max(rec.rtol, VALUE_TOL.get(
        dtype, 1e-5))
    check_vmap(f, batched, axes, 0, rtol=tol, check_weak_type=rec.check_weak_type,
               what=rec.name)
    check_vmap(f, batched, axes, -1, rtol=tol, check_weak_type=rec.check_weak_type,
               what=rec.name)
    eager = fgrad.vmap(f, in_axes=tuple(axes))(*batched)
    jitted = fgrad.jit(fgrad.vmap(f, in_axes=tuple(axes)))(*batched)
    for e, j in zip(tree_leaves(eager), tree_leaves(jitted)):
        np.testing.assert_allclose(np.asarray(j, np.float64), np.asarray(e, np.float64),
                                   rtol=tol, atol=tol, equal_nan=True,
                                   err_msg=f"{rec.name}: jit(vmap) differs from vmap")


def _loss(f: Any) -> Any:
    """Sum of ``f``'s float outputs: a scalar whose gradient touches every output."""
    def loss(*xs: Any) -> Any:
        total = 0.0
        for leaf in tree_leaves(f(*xs)):
            if is_float(leaf.dtype):
                total = total + leaf.sum()
        return total
    return loss


@pytest.mark.parametrize("rec", DIFF_RECORDS, ids=_ids(DIFF_RECORDS))
@hypothesis.settings(max_examples=max(1, EXAMPLES // 2))  # 1 in CI
@given(data=st.data())
def test_vmap_of_grad_matches_loop(rec: Rec, data: Any, x64: None) -> None:
    values, positions, axes, batched = data.draw(
        batched_case(rec, np.float64, lambda a: a.kind == "float"))
    f, _ = _dynamic(rec, values, lambda a: a.kind == "float")
    tol = 1e-9 if rec.grad_tol is None else rec.grad_tol
    g = fgrad.grad(_loss(f), argnums=tuple(range(len(positions))))
    want = loop_and_stack(g, batched, axes)
    got = fgrad.vmap(g, in_axes=tuple(axes))(*batched)
    for j, (a, b) in enumerate(zip(tree_leaves(got), tree_leaves(want))):
        assert a.shape == b.shape, f"{rec.name}: gradient {j} shape {a.shape} != {b.shape}"
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol,
                                   err_msg=f"{rec.name}: vmap(grad) gradient {j}, "
                                           f"in_axes={axes}")
