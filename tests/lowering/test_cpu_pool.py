"""The thread pool that shares large matrix products (fgrad/lowering/cpu_llvm/pool.py).

Split products must give the product, whatever the split (columns or rows, with
or without an addend, transposed operands, batches), every time: a piece run
twice would add its block of the product twice to an addend, a piece skipped
would leave garbage; several threads calling compiled programs at once must not
mix their jobs up."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from conftest import enable_x64
from fgrad.lowering.cpu_llvm import pool


@pytest.fixture
def two_threads(monkeypatch: Any) -> None:
    monkeypatch.setenv("FGRAD_NUM_THREADS", "2")
    monkeypatch.setattr(pool, "SPLIT_WORK", 1)  # split even the small test products


def interpreted(f: Any, *args: Any) -> Any:
    return fgrad.tree_util.tree_map(np.asarray, fgrad.jit(f, backend="interpret")(*args))


# each product with the shapes of its operands for (m, k, n), and the gemm it must become
PRODUCTS: dict[str, tuple[Any, Any, str]] = {
    "nn": (lambda a, b: a @ b, lambda m, k, n: [(m, k), (k, n)], "trans_a=False, trans_b=False"),
    "tn": (lambda a, b: a.T @ b, lambda m, k, n: [(k, m), (k, n)], "trans_a=True"),
    "nt": (lambda a, b: a @ b.T, lambda m, k, n: [(m, k), (n, k)], "trans_b=True"),
    "update": (lambda w, a, b: w - 0.5 * (a @ b), lambda m, k, n: [(m, n), (m, k), (k, n)],
               "alpha=-0.5"),
    "batched": (lambda a, b: a @ b, lambda m, k, n: [(3, m, k), (3, k, n)], "batch=3"),
}


@pytest.mark.parametrize("form", sorted(PRODUCTS))
@pytest.mark.parametrize("m, k, n", [(9, 5, 40), (40, 5, 9), (1, 3, 2), (7, 7, 7)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_products_equal_the_product(two_threads: None, form: str, m: int, k: int,
                                          n: int, dtype: Any) -> None:
    f, shapes, flag = PRODUCTS[form]
    rng = np.random.default_rng(m * 100 + n)
    args = [rng.normal(size=s).astype(dtype) for s in shapes(m, k, n)]
    with enable_x64(dtype == np.float64):
        jitted = fgrad.jit(f, backend="cpu")
        if min(m, n) > 1:  # (a vector needs no transposing)
            assert flag in jitted.lower(*args).as_text("kernels")
        assert "fgrad_parallel_for" in jitted.lower(*args).as_text("llvm")
        for _ in range(3):
            np.testing.assert_allclose(np.asarray(jitted(*args)), interpreted(f, *args),
                                       rtol=1e-5, atol=1e-5)


def test_one_thread_or_a_small_product_is_not_split(monkeypatch: Any) -> None:
    a = np.ones((8, 8), np.float32)
    monkeypatch.setenv("FGRAD_NUM_THREADS", "1")
    assert "fgrad_parallel_for" not in fgrad.jit(lambda a: a @ a).lower(a).as_text("llvm")
    monkeypatch.setenv("FGRAD_NUM_THREADS", "2")
    assert pool.parts_for(pool.SPLIT_WORK - 1) == 1 and pool.parts_for(pool.SPLIT_WORK) == 2
    assert "fgrad_parallel_for" not in fgrad.jit(lambda a: a @ a).lower(a).as_text("llvm")


def test_each_piece_runs_exactly_once_call_after_call(two_threads: None) -> None:
    # out = w - 0.5 * a @ b: a piece that ran twice (or not at all) changes the result
    rng = np.random.default_rng(7)
    w, a, b = (rng.normal(size=s).astype(np.float32) for s in ((33, 65), (33, 12), (12, 65)))
    f = fgrad.jit(lambda w, a, b: w - 0.5 * (a @ b), backend="cpu")
    want = np.asarray(f(w, a, b))
    np.testing.assert_allclose(want, w - 0.5 * (a @ b), rtol=1e-5, atol=1e-5)
    for _ in range(300):
        np.testing.assert_array_equal(np.asarray(f(w, a, b)), want)


def test_threads_calling_at_once_do_not_mix_their_jobs(two_threads: None) -> None:
    rng = np.random.default_rng(3)
    cases = [tuple(rng.normal(size=s).astype(np.float32) for s in ((31, 17), (17, 45)))
             for _ in range(3)]
    f = fgrad.jit(lambda a, b: fnp.ones((31, 45), np.float32) + a @ b, backend="cpu")
    wants = [np.asarray(f(a, b)) for a, b in cases]
    errors: list[str] = []

    def hammer(i: int) -> None:
        a, b = cases[i]
        for _ in range(200):
            got = np.asarray(f(a, b))
            if not np.array_equal(got, wants[i]):
                errors.append(f"thread {i}: max error {np.abs(got - wants[i]).max()}")
                return

    workers = [threading.Thread(target=hammer, args=(i,)) for i in range(3)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors, errors


def test_the_pool_starts_once_with_daemon_workers(two_threads: None) -> None:
    a = np.ones((16, 16), np.float32)
    fgrad.jit(lambda a: a @ a, backend="cpu")(a)
    names = [t.name for t in threading.enumerate() if t.name.startswith("fgrad-pool")]
    assert names and len(names) == len(set(names))
    assert all(t.daemon for t in threading.enumerate() if t.name.startswith("fgrad-pool"))
    address = pool.start()
    assert pool.start() == address  # cached: no second runtime, no new workers


# --- kernels: the outermost parallel loop in pieces --------------------------------------------

KERNELS = {
    "elementwise": lambda x: fnp.sin(x) * 2.0 + 1.0,
    "row_sums": lambda x: fnp.sum(fnp.exp(x), axis=1),
    "column_max": lambda x: fnp.max(x, axis=0),
    "transpose": lambda x: fnp.tanh(x).T * 2.0,
    "softmax": lambda x: fgrad.nn.softmax(x, axis=-1),
    "cumsum": lambda x: fnp.cumsum(x, axis=1),
    "in_a_scan": lambda x: fgrad.lax.scan(lambda c, r: (c * 0.5 + r, fnp.cos(c)), x[0], x)[1],
    "gradient": fgrad.grad(lambda x: fnp.sum(fnp.tanh(x) ** 2)),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
@pytest.mark.parametrize("shape", [(7, 7), (1, 5), (3, 1), (31, 33)])
def test_split_kernels_compute_what_whole_ones_do(monkeypatch: Any, name: str,
                                                  shape: tuple[int, int]) -> None:
    monkeypatch.setenv("FGRAD_NUM_THREADS", "3")  # three pieces: uneven blocks too
    monkeypatch.setattr(pool, "SPLIT_KERNEL_WORK", 1)
    f = KERNELS[name]
    x = np.random.default_rng(sum(shape)).normal(size=shape).astype(np.float32)
    jitted = fgrad.jit(f, backend="cpu")
    if min(shape) > 1:
        assert "fgrad_parallel_for" in jitted.lower(x).as_text("llvm")
    for _ in range(2):
        np.testing.assert_allclose(np.asarray(jitted(x)), interpreted(f, x),
                                   rtol=2e-6, atol=2e-6)


def test_a_full_reduction_is_not_split(monkeypatch: Any) -> None:
    monkeypatch.setenv("FGRAD_NUM_THREADS", "2")
    monkeypatch.setattr(pool, "SPLIT_KERNEL_WORK", 1)
    x = np.ones((64, 64), np.float32)
    # one accumulator for the whole array: not a parallel loop, so one piece
    assert "fgrad_parallel_for" not in fgrad.jit(fnp.sum).lower(x).as_text("llvm")


@pytest.mark.parametrize("value", ["two", "0", "-1"])
def test_a_bad_thread_count_is_reported(monkeypatch: Any, value: str) -> None:
    monkeypatch.setenv("FGRAD_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"FGRAD_NUM_THREADS must be a positive integer, "
                                         f"got '{value}'"):
        pool.threads()
