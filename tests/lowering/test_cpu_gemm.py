"""fgrad's own matrix product on the CPU (fgrad/lowering/cpu_llvm/gemm.py).

The routine is checked directly (through ctypes) against numpy in float64 over
shapes that hit every edge of its tiles and blocks, with padded leading
dimensions whose padding must stay untouched, and with operands that end at an
unreadable page (a read past them would crash the test). Then compiled programs
whose products go to it (``use_for`` widened to everything it can compute) must
agree with the interpreter, split over threads or not."""

from __future__ import annotations

import ctypes
import mmap
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fgrad
from conftest import enable_x64
from fgrad.lowering.cpu_llvm import compile as cpu_compile
from fgrad.lowering.cpu_llvm import gemm, pool

DTYPES = [np.float32, np.float64]


def routine(dtype: Any) -> Any:
    """The compiled routine for ``dtype`` as a ctypes function."""
    gemm.register(dtype)  # (a second time: nothing to do)
    _, engine = cpu_compile._engine()
    scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    return ctypes.CFUNCTYPE(None, i64, i64, i64, i64, scalar, ptr, i64, ptr, i64, ptr, ptr,
                            i64)(engine.get_function_address(gemm.symbol(np.dtype(dtype))))


def tile_edges(dtype: Any) -> list[int]:
    """Sizes around the edges of both tiles and of the blocks."""
    w = gemm.lanes(np.dtype(dtype))
    sizes = {1, 2, gemm.KC - 1, gemm.KC, gemm.KC + 1, gemm.MC + 17}
    for rows, vectors in (gemm.WIDE, gemm.NARROW):
        sizes |= {rows - 1, rows, rows + 1, vectors * w - 1, vectors * w, vectors * w + 1,
                  2 * vectors * w + 3}
    return sorted(sizes)


@st.composite
def products(draw: Any) -> dict[str, Any]:
    dtype = draw(st.sampled_from(DTYPES))
    size = st.one_of(st.integers(1, 40), st.sampled_from(tile_edges(dtype)))
    m, n, k = draw(size), draw(size), draw(size)
    return dict(dtype=dtype, m=m, n=n, k=k, trans_a=draw(st.booleans()),
                addend=draw(st.sampled_from(["none", "separate", "C itself"])),
                alpha=draw(st.sampled_from([1.0, -0.25, 3.0])),
                pad=draw(st.sampled_from([0, 1, 17])), seed=draw(st.integers(0, 2 ** 16)))


@given(products())
def test_routine_equals_numpy(case: dict[str, Any]) -> None:
    dtype, m, n, k, pad = (case[x] for x in ("dtype", "m", "n", "k", "pad"))
    rng = np.random.default_rng(case["seed"])
    rows_a, cols_a = (k, m) if case["trans_a"] else (m, k)
    a = rng.normal(size=(rows_a, cols_a + pad)).astype(dtype)  # padded rows: lda > cols
    b = rng.normal(size=(k, n + pad)).astype(dtype)
    c = rng.normal(size=(m, n + pad)).astype(dtype)
    p = rng.normal(size=(m, n + pad)).astype(dtype)  # (laid out as C)
    before = c.copy()
    addend = {"none": None, "separate": p.ctypes.data, "C itself": c.ctypes.data}[case["addend"]]
    routine(dtype)(case["trans_a"], m, n, k, case["alpha"], a.ctypes.data, a.shape[1],
                   b.ctypes.data, b.shape[1], addend, c.ctypes.data, c.shape[1])
    op_a = a[:, :cols_a].astype(np.float64)
    want = case["alpha"] * ((op_a.T if case["trans_a"] else op_a) @ b[:, :n])
    if case["addend"] != "none":
        want += (p if case["addend"] == "separate" else before)[:, :n]
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(c[:, :n], want, rtol=tol, atol=tol * 10 * np.sqrt(k))
    np.testing.assert_array_equal(c[:, n:], before[:, n:])  # the padding is not written


def before_a_wall(shape: tuple[int, ...], dtype: Any, keep: list[Any]) -> np.ndarray:
    """A C-contiguous array whose last byte is followed by a page that faults when read."""
    page = mmap.PAGESIZE
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    size = -(-nbytes // page) * page
    buf = mmap.mmap(-1, size + page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    assert libc.mprotect(base + size, page, 0) == 0  # PROT_NONE
    keep.append(buf)
    return np.frombuffer(buf, dtype, count=int(np.prod(shape)), offset=size - nbytes
                         ).reshape(shape)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("tile", ["wide", "narrow"])
def test_routine_reads_and_writes_nothing_past_its_operands(dtype: Any, trans_a: bool,
                                                            tile: str) -> None:
    keep: list[Any] = []
    w = gemm.lanes(np.dtype(dtype))
    m, n, k = gemm.NARROW[0] + 3, (2 * gemm.WIDE[1] * w + 5 if tile == "wide" else w - 3), 7
    rng = np.random.default_rng(0)
    a = before_a_wall((k, m) if trans_a else (m, k), dtype, keep)
    b, c = before_a_wall((k, n), dtype, keep), before_a_wall((m, n), dtype, keep)
    p = before_a_wall((m, n), dtype, keep)
    a[...] = rng.normal(size=a.shape)
    b[...] = rng.normal(size=b.shape)
    p[...] = 1.0
    routine(dtype)(trans_a, m, n, k, 2.0, a.ctypes.data, a.shape[1], b.ctypes.data, n,
                   p.ctypes.data, c.ctypes.data, n)
    np.testing.assert_allclose(c, 1.0 + 2.0 * ((a.T if trans_a else a) @ b), rtol=1e-5)


def test_policy_keeps_what_it_would_lose_on_blas(monkeypatch: Any) -> None:
    monkeypatch.setattr(gemm, "host_supported", lambda: True)
    f32 = np.dtype(np.float32)

    def use(m: int, k: int, n: int, trans_a: bool = False, trans_b: bool = False,
            dtype: Any = f32) -> bool:
        return gemm.use_for(dtype, m, n, k, trans_a, trans_b)

    assert use(128, 784, 512) and use(784, 128, 512, trans_a=True)  # the MLP's products
    assert not use(128, 784, 512, trans_b=True)  # B^T: would need packing
    assert use(10816, 9, 16) and use(50176, 144, 32)  # im2col: narrow tile; A read once
    assert use(64, 25088, 10) and use(25088, 64, 10, trans_a=True)  # a 10-way dense layer
    assert not use(512, 2048, 10)  # narrow: 16 rows of A 8 KiB apart share an L1 set
    assert use(2048, 512, 10, trans_a=True)  # (transposed, one row of A^T per step)
    assert not use(1000, 100, 40)  # 40 of 64 lanes
    assert not use(64, 64, 64)  # too little work
    assert not use(2048, 2048, 2048)  # A beyond L2
    assert not use(500, 300, 200)  # rows and k in 2+ blocks
    assert use(20000, 64, 512)  # one k block, B of 128 KiB
    assert not use(4096, 128, 4096)  # A: 2 MiB
    assert not use(128, 784, 512, dtype=np.dtype(np.float64))  # a tie
    assert not use(128, 784, 512, dtype=np.dtype(np.int32))
    monkeypatch.setattr(gemm, "host_supported", lambda: False)  # no AVX-512
    assert not use(128, 784, 512)


@pytest.fixture
def everywhere(monkeypatch: Any) -> None:
    """Send every product the routine can compute to it, however small."""
    monkeypatch.setattr(gemm, "use_for", gemm.can_run)


FORMS: dict[str, tuple[Any, Any]] = {
    "nn": (lambda a, b: a @ b, lambda m, k, n: [(m, k), (k, n)]),
    "tn": (lambda a, b: a.T @ b, lambda m, k, n: [(k, m), (k, n)]),
    "update": (lambda w, a, b: w - 0.5 * (a.T @ b), lambda m, k, n: [(m, n), (k, m), (k, n)]),
    "batched": (lambda a, b: a @ b, lambda m, k, n: [(3, m, k), (3, k, n)]),
}


def interpreted(f: Any, *args: Any) -> Any:
    return np.asarray(fgrad.jit(f, backend="interpret")(*args))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("m, k, n", [(9, 5, 40), (40, 300, 9), (1, 3, 2), (130, 33, 70),
                                     (37, 270, 16)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_products_use_it_and_equal_the_interpreter(
        everywhere: None, monkeypatch: Any, threads: int, form: str, m: int, k: int, n: int,
        dtype: Any) -> None:
    monkeypatch.setenv("FGRAD_NUM_THREADS", str(threads))
    monkeypatch.setattr(pool, "SPLIT_WORK", 1)  # with two threads, split every product
    f, shapes = FORMS[form]
    rng = np.random.default_rng(m * 1000 + n)
    args = [rng.normal(size=s).astype(dtype) for s in shapes(m, k, n)]
    with enable_x64(dtype == np.float64):
        jitted = fgrad.jit(f, backend="cpu")
        llvm_text = jitted.lower(*args).as_text("llvm")
        assert gemm.symbol(np.dtype(dtype)) in llvm_text
        assert ("fgrad_parallel_for" in llvm_text) == (threads == 2)
        for _ in range(2):
            np.testing.assert_allclose(np.asarray(jitted(*args)), interpreted(f, *args),
                                       rtol=1e-5, atol=1e-5)


def test_module_text_is_the_routine() -> None:
    text = gemm.module_text(np.float32)
    assert 'define void @"fgrad_gemm_float32"(i64 %"trans_a"' in text
    assert "llvm.fma.v16f32" in text and "llvm.masked.store.v16f32" in text  # the edge tile


def test_the_mlp_products_go_to_it_by_default() -> None:
    if not gemm.host_supported():
        assert not gemm.use_for(np.dtype(np.float32), 128, 512, 784, False, False)
        return
    x, w = np.ones((128, 784), np.float32), np.ones((784, 512), np.float32)
    text = fgrad.jit(lambda x, w: x @ w).lower(x, w).as_text("llvm")
    assert gemm.symbol(np.dtype(np.float32)) in text and "fgrad_sgemm" not in text
