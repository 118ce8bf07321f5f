"""Views against numpy: random chains of movement ops, read through the kernel IR.

Each test builds the same chain of reshapes, broadcasts, transposes, slices,
reversals and pads on a numpy array and on a ``ShapeTracker``, then reads
every element through the tracker's index expression (run by the kernel IR
interpreter) and compares. Reshapes that strides cannot express must still
read correctly (through a second view), and masked (padded) reads must
never touch memory outside the buffer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fgrad.lowering.interpret import run_kernel
from fgrad.lowering.kernel_ir import Const, Kernel, Load, Loop, Param, Store, var
from fgrad.lowering.views import ShapeTracker, View

F32 = np.dtype(np.float32)


def read_through(tracker: ShapeTracker, base: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """Materialise ``tracker`` over the flat ``base`` with one kernel."""
    shape = tracker.shape
    names = [f"i{k}" for k in range(len(shape))]
    idx, mask = tracker.index([var(n) for n in names])
    out_flat = sum(var(n) * st for n, st in zip(names, View.contiguous(shape).strides)) \
        if shape else 0
    from fgrad.lowering.kernel_ir import as_idx
    body: Any = Store("out", as_idx(out_flat), Load("x", idx, F32, mask, fill))
    for n, extent in reversed(list(zip(names, shape))):
        body = Loop(n, extent, (body,))
    kernel = Kernel("read", (Param("x", F32, base.size), Param("out", F32, math.prod(shape),
                                                                True)), (body,))
    out = np.zeros(math.prod(shape), F32)
    run_kernel(kernel, {"x": base.ravel(), "out": out})
    return out.reshape(shape)


@st.composite
def movement_chain(draw: Any) -> tuple[np.ndarray, ShapeTracker, np.ndarray]:
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=ndim, max_size=ndim)))
    base = np.arange(1, math.prod(shape) + 1, dtype=F32)
    arr, tr = base.reshape(shape), ShapeTracker.contiguous(shape)
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["reshape", "transpose", "slice", "rev", "pad", "bcast"]))
        nd = arr.ndim
        if kind == "transpose":
            perm = draw(st.permutations(range(nd)))
            arr, tr = arr.transpose(perm), tr.transpose(perm)
        elif kind == "reshape":
            total = arr.size
            factors = [d for d in range(1, total + 1) if total % d == 0]
            a = draw(st.sampled_from(factors))
            new = (a, total // a) if draw(st.booleans()) else (total,)
            arr, tr = arr.reshape(new), tr.reshape(new)
        elif kind == "slice" and all(n > 0 for n in arr.shape):
            start = [draw(st.integers(0, n - 1)) for n in arr.shape]
            limit = [draw(st.integers(s + 1, n)) for s, n in zip(start, arr.shape)]
            step = [draw(st.integers(1, 2)) for _ in arr.shape]
            arr = arr[tuple(slice(s, e, k) for s, e, k in zip(start, limit, step))]
            tr = tr.slice(start, limit, step)
        elif kind == "rev":
            axes = [a for a in range(nd) if draw(st.booleans())]
            arr, tr = np.flip(arr, axes) if axes else arr, tr.rev(axes)
        elif kind == "pad":
            low = [draw(st.integers(-1, 2)) for _ in range(nd)]
            high = [draw(st.integers(-1, 2)) for _ in range(nd)]
            if any(n + lo + hi < 0 or n + min(lo, 0) + min(hi, 0) < 0
                   for n, lo, hi in zip(arr.shape, low, high)):
                continue
            padded = np.pad(arr, [(max(lo, 0), max(hi, 0)) for lo, hi in zip(low, high)])
            arr = padded[tuple(slice(max(-lo, 0), padded.shape[k] - max(-hi, 0))
                               for k, (lo, hi) in enumerate(zip(low, high)))]
            tr = tr.pad(low, high)
        elif kind == "bcast" and nd < 4:
            new_shape = (draw(st.integers(1, 3)),) + arr.shape
            arr = np.broadcast_to(arr, new_shape)
            tr = tr.broadcast_in_dim(new_shape, tuple(range(1, nd + 1)))
    return base, tr, np.ascontiguousarray(arr)


@settings(max_examples=200, deadline=None)
@given(movement_chain())
def test_views_read_like_numpy(case: tuple[np.ndarray, ShapeTracker, np.ndarray]) -> None:
    base, tracker, want = case
    assert tracker.shape == want.shape
    np.testing.assert_array_equal(read_through(tracker, base), want)


def test_foldable_reshapes_stay_one_view() -> None:
    t = ShapeTracker.contiguous((4, 6)).reshape((2, 2, 3, 2)).reshape((24,))
    assert len(t.views) == 1
    # a transposed matrix split along its rows is still strides only
    t = ShapeTracker.contiguous((4, 6)).transpose((1, 0)).reshape((3, 2, 4))
    assert len(t.views) == 1 and t.views[0].strides == (2, 1, 6)


def test_unfoldable_reshape_stacks_a_view() -> None:
    t = ShapeTracker.contiguous((4, 6)).transpose((1, 0)).reshape((24,))
    assert len(t.views) == 2
    base = np.arange(24, dtype=F32)
    np.testing.assert_array_equal(read_through(t, base), base.reshape(4, 6).T.ravel())


def test_pad_reads_fill_without_touching_memory() -> None:
    t = ShapeTracker.contiguous((3,)).pad([2], [1])
    idx, mask = t.index([var("i")])
    assert str(mask) == "((i >= 2) && (i < 5))" and str(idx) == "i - 2"
    np.testing.assert_array_equal(read_through(t, np.ones(3, F32), fill=7.0),
                                  [7, 7, 1, 1, 1, 7])


def test_index_expressions_print_affinely() -> None:
    t = ShapeTracker.contiguous((8, 16)).transpose((1, 0)).slice((2, 0), (10, 8), (2, 1))
    idx, mask = t.index([var("i"), var("j")])
    assert mask is None and str(idx) == "i*2 + j*16 + 2"


@pytest.mark.parametrize("bad", [{"x": np.zeros(3, np.float64)}, {"x": np.zeros((3, 1), F32)}])
def test_kernel_checks_buffers(bad: dict[str, np.ndarray]) -> None:
    from fgrad.lowering.interpret import KernelArgumentError
    k = Kernel("k", (Param("x", F32, 3), Param("out", F32, 3, True)),
               (Loop("i", 3, (Store("out", var("i"), Const(1.0, F32)),)),))
    with pytest.raises(KernelArgumentError, match="kernel k: buffer 'x'"):
        run_kernel(k, {**bad, "out": np.zeros(3, F32)})
