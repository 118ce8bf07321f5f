"""The object entry point (fgrad/lowering/cpu_llvm/objects.py): jit's fast path hands
the arrays themselves to native code, which reads and checks their fields before it
touches their memory. Every array it refuses must take the checked table path and
give the same result (or the same clear error); none may crash or compute wrong."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.config import config
from fgrad.lowering.cpu_llvm import objects
from fgrad.lowering.cpu_llvm.runtime import CpuExecutable
from fgrad.lowering.schedule import schedule


def body(x: Any, y: Any) -> Any:
    # exp(x) is used twice after a reduction: a temporary buffer, so the arena is used
    e = fnp.exp(x)
    return e / fnp.sum(e, axis=1, keepdims=True) + y, fnp.max(x)


X = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
Y = np.arange(3, dtype=np.float32)


@pytest.fixture(scope="module")
def exe() -> CpuExecutable:
    return CpuExecutable(schedule(fgrad.make_jaxpr(body)(X, Y)))


def expected(x: Any, y: Any) -> list[np.ndarray]:
    return [np.asarray(v) for v in fgrad.jit(body, backend="interpret")(x, y)]


def status(exe: CpuExecutable, *args: Any) -> int:
    """What the object entry answers for ``args`` (0: it ran; k: it refused argument k)."""
    outs = [np.empty(shape, dtype) for shape, dtype in exe._out_types]
    assert exe._direct is not None
    return exe._direct(*map(id, args), *map(id, outs), exe._table_address)


def test_the_array_layout_is_confirmed_on_this_build(exe: CpuExecutable) -> None:
    # CPython and numpy's array struct: without this, the fast path would quietly fall
    # back to the slower table of addresses
    assert objects.layout() is not None and exe._direct is not None
    assert exe._arena_bytes > 0  # the program has temporaries: the entry mallocs them


def test_matching_arrays_run_natively_with_the_same_results(exe: CpuExecutable) -> None:
    assert status(exe, X, Y) == 0
    for _ in range(3):  # fresh outputs and a fresh arena every call
        got = exe.run_direct([X, Y])
        for g, w in zip(got, expected(X, Y)):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    a, b = exe.run_direct([X, Y]), exe.run_direct([X, Y])
    assert not np.shares_memory(a[0], b[0])


class Sub(np.ndarray):
    pass


def unaligned(x: np.ndarray) -> np.ndarray:
    raw = np.zeros(x.nbytes + 1, np.uint8)
    out = np.frombuffer(raw.data, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    out[...] = x
    assert not out.flags.aligned
    return out


@pytest.mark.parametrize("make, position", [
    (lambda: (np.asfortranarray(X), Y), 1),                      # not C-contiguous
    (lambda: (X, np.arange(6, dtype=np.float32)[::2]), 2),       # strided
    (lambda: (unaligned(X), Y), 1),                              # misaligned
    (lambda: (X.view(Sub), Y), 1),                               # an ndarray subclass
])
def test_refused_arrays_take_the_checked_path(exe: CpuExecutable, make: Any,
                                              position: int) -> None:
    args = make()
    assert status(exe, *args) == position
    for g, w in zip(exe.run_direct(list(args)), expected(np.asarray(args[0]),
                                                         np.asarray(args[1]))):
        np.testing.assert_allclose(g, w, rtol=1e-6)


@pytest.mark.parametrize("args, position, message", [
    ((X.astype(np.float64), Y), 1, r"in0 must be float32\[2, 3\], got float64\[2, 3\]"),
    ((X, np.arange(4, dtype=np.float32)), 2, r"float32\[3\], got float32\[4\]"),
    ((X.reshape(3, 2), Y), 1, r"float32\[2, 3\], got float32\[3, 2\]"),
    ((X.reshape(-1), Y), 1, r"float32\[2, 3\], got float32\[6\]"),
    (([[1.0, 2.0, 3.0]] * 2, Y), 1, r"float32\[2, 3\], got float64\[2, 3\]"),
])
def test_wrong_types_are_refused_natively_and_reported(exe: CpuExecutable, args: Any,
                                                       position: int, message: str) -> None:
    assert status(exe, *args) == position  # refused before any of its memory is read
    with pytest.raises(TypeError, match=message):
        exe.run_direct(list(args))


def test_jit_fast_path_with_arrays_the_entry_refuses() -> None:
    f = fgrad.jit(body, backend="cpu")
    want = expected(X, Y)
    f(X, Y)
    for x in (X, np.asfortranarray(X), unaligned(X), X.view(Sub), fnp.asarray(X)):
        got = f(x, Y)
        for g, w in zip(got, want):
            assert type(g) is fgrad.Array
            np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6)
    assert f.cache_info().misses == 1


def test_fast_path_respects_disable_jit_and_x64() -> None:
    calls = []

    def traced(x: Any) -> Any:
        calls.append(1)
        return x * 2.0 + fnp.zeros(x.shape)  # float64 zeros under x64

    f = fgrad.jit(traced, backend="cpu")
    f(X)
    f(X)
    assert len(calls) == 1
    config.update("disable_jit", True)
    try:
        np.testing.assert_array_equal(np.asarray(f(X)), X * 2.0)
        assert len(calls) == 2  # ran op by op, not the compiled program
    finally:
        config.update("disable_jit", False)
    x64 = config.enable_x64
    config.update("enable_x64", not x64)
    try:
        out = f(X)
        assert out.dtype == (np.float32 if x64 else np.float64)  # traced again, for x64
        assert len(calls) == 3
    finally:
        config.update("enable_x64", x64)


def test_temporaries_are_kept_between_calls_and_shared_by_nobody() -> None:
    # The object entry keeps its arena in the slot after the table's last (objects.py);
    # calls from several threads each need their own while one is in use.
    import threading
    exe = CpuExecutable(schedule(fgrad.make_jaxpr(body)(X, Y)))
    slot = len(exe.program.buffers)
    assert exe._arena_bytes > 0 and exe._table[slot] == 0
    first = exe.run_direct([X, Y])
    kept = int(exe._table[slot])
    assert kept != 0
    for _ in range(3):  # the same arena again, and the same results (nothing stale read)
        for a, b in zip(exe.run_direct([X, Y]), first):
            np.testing.assert_array_equal(a, b)
        assert int(exe._table[slot]) == kept
    rng = np.random.default_rng(0)
    inputs = [(rng.normal(size=X.shape).astype(np.float32), rng.normal(size=Y.shape)
               .astype(np.float32)) for _ in range(3)]
    wrong: list[int] = []

    def hammer(k: int) -> None:
        x, y = inputs[k]
        want = expected(x, y)
        for _ in range(300):
            got = exe.run_direct([x, y]) if k != 2 else exe([x, y])  # (k = 2: table path)
            if not all(np.allclose(g, w, rtol=1e-5, atol=1e-6) for g, w in zip(got, want)):
                wrong.append(k)
    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not wrong


def test_fast_path_takes_python_and_numpy_scalars() -> None:
    # A training loop passes its step number as a Python int: that call must not fall
    # back to flattening, canonicalizing and binding every leaf (4x slower).
    calls = []

    def step(x: Any, s: Any, lr: Any, flag: Any) -> Any:
        calls.append(1)
        return x * s - lr, flag

    f = fgrad.jit(step, backend="cpu")
    for s in range(4):
        out, flag = f(X, s, 0.5, True)
        assert out.dtype == np.float32 and flag.dtype == np.bool_  # weak int, weak float
        np.testing.assert_allclose(np.asarray(out), X * s - 0.5, rtol=1e-6)
    assert len(calls) == 1 and len(f._fast) == 1  # traced once; later calls took the fast path
    out, _ = f(X, np.int32(3), np.float32(0.5), np.bool_(False))  # strong scalars: a new type
    np.testing.assert_allclose(np.asarray(out), X * 3 - 0.5, rtol=1e-6)
    assert len(calls) == 2
    with pytest.raises(OverflowError):  # as on the general path
        f(X, 2 ** 40 if not config.enable_x64 else 2 ** 70, 0.5, True)


def test_fast_path_keys_pytrees_by_their_structure() -> None:
    calls = []

    def step(state: Any, x: Any) -> Any:
        calls.append(1)
        return fgrad.tree_util.tree_map(lambda a: a * 2, state), x + 1

    f = fgrad.jit(step, backend="cpu")
    a, b = X, Y
    states = [{"w": [a, (b, None)], "n": np.int32(1)}, {"w": [a, [b, None]], "n": np.int32(1)},
              {"v": [a, (b, None)], "n": np.int32(1)}, ([a, (b, None)], np.int32(1))]
    for k, state in enumerate(states):
        for _ in range(2):  # the second call of each takes the fast path
            with warnings.catch_warnings():  # (the recompile warning, from the third on)
                warnings.simplefilter("ignore")
                out, _ = f(state, X)
            want = fgrad.tree_util.tree_map(lambda v: np.asarray(v) * 2, state)
            assert fgrad.tree_util.tree_structure(out) == fgrad.tree_util.tree_structure(want)
            for g, w in zip(fgrad.tree_util.tree_leaves(out), fgrad.tree_util.tree_leaves(want)):
                np.testing.assert_allclose(np.asarray(g), w)
        assert len(calls) == k + 1  # a list for a tuple, another key: a new trace each
    assert len(f._fast) == len(states)
