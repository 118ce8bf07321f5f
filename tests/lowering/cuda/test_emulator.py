"""The CUDA emulator on hand-written kernels: numerics against numpy, and every error it
promises to turn into an exception (argument types, compile errors, out-of-bounds
indices, divergent barriers, a missing barrier under another thread order).

Kernels are grouped into a few modules, since compiling is what these tests wait on
(about 0.3 s per module once the runtime and the precompiled shim exist; both are
cached on disk).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fgrad.lowering.cuda.emulator import CompileError, LaunchError, RawModule, cache_dir
from fgrad.lowering.cuda.emulator.build import needs_fibers

ELEMENTWISE = r"""
extern "C" __global__ void axpy_exp(const float* __restrict__ x, float* __restrict__ y, float a,
                                    int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + __expf(y[i]);
}
// a grid-stride loop: any grid covers any n
extern "C" __global__ void gelu(const float* __restrict__ x, float* __restrict__ y, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
       i += (long long)gridDim.x * blockDim.x) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf(0.7978845608f * (v + 0.044715f * v * v * v)));
  }
}
// writes one element past the end for the last thread: the bug the bounds check catches
extern "C" __global__ void off_by_one(float* __restrict__ y, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i <= n) y[i] = 1.0f;
}
extern "C" __global__ void reads_before(const double* __restrict__ x, double* __restrict__ y) {
  y[threadIdx.x] = x[(int)threadIdx.x - 1];
}
extern "C" __global__ void half_double(const __half* __restrict__ x, __half* __restrict__ y) {
  y[threadIdx.x] = __float2half(2.0f * __half2float(x[threadIdx.x]));
}
"""

REDUCTIONS = r"""
// a block tree reduction in static shared memory: barriers, so fibers
extern "C" __global__ void block_sum(const float* __restrict__ x, float* __restrict__ out,
                                     int n) {
  __shared__ float s[256];
  int t = threadIdx.x, i = blockIdx.x * 256 + t;
  s[t] = i < n ? x[i] : 0.f;
  __syncthreads();
  for (int k = 128; k > 0; k >>= 1) {
    if (t < k) s[t] += s[t + k];
    __syncthreads();
  }
  if (t == 0) out[blockIdx.x] = s[0];
}
__device__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_down_sync(0xffffffffu, v, o);
  return v;
}
// warp shuffles (through a helper: still detected as needing fibers) and atomics
extern "C" __global__ void sum_atomic(const float* __restrict__ x, float* __restrict__ out,
                                      int* __restrict__ count, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  float v = warp_sum(i < n ? x[i] : 0.f);
  if (threadIdx.x % 32 == 0) { atomicAdd(out, v); atomicAdd(count, 1); }
}
// row softmax, one block per row, in dynamic shared memory
extern "C" __global__ void softmax_rows(const float* __restrict__ x, float* __restrict__ y,
                                        int ncols) {
  extern __shared__ float red[];
  const float* xr = x + (long long)blockIdx.x * ncols;
  float m = __int_as_float(0xff800000);
  for (int j = threadIdx.x; j < ncols; j += blockDim.x) m = fmaxf(m, xr[j]);
  red[threadIdx.x] = m;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + k]);
    __syncthreads();
  }
  m = red[0];
  __syncthreads();
  float s = 0.f;
  for (int j = threadIdx.x; j < ncols; j += blockDim.x) s += expf(xr[j] - m);
  red[threadIdx.x] = s;
  __syncthreads();
  for (int k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
    __syncthreads();
  }
  for (int j = threadIdx.x; j < ncols; j += blockDim.x)
    y[(long long)blockIdx.x * ncols + j] = expf(xr[j] - m) / red[0];
}
// a 2-D grid of 16x16 tiles
extern "C" __global__ void matmul(const float* __restrict__ A, const float* __restrict__ B,
                                  float* __restrict__ C, int M, int N, int K) {
  __shared__ float As[16][16], Bs[16][16];
  int row = blockIdx.y * 16 + threadIdx.y, col = blockIdx.x * 16 + threadIdx.x;
  float acc = 0.f;
  for (int k0 = 0; k0 < K; k0 += 16) {
    int ka = k0 + threadIdx.x, kb = k0 + threadIdx.y;
    As[threadIdx.y][threadIdx.x] = row < M && ka < K ? A[row * K + ka] : 0.f;
    Bs[threadIdx.y][threadIdx.x] = col < N && kb < K ? B[kb * N + col] : 0.f;
    __syncthreads();
    for (int k = 0; k < 16; ++k) acc += As[threadIdx.y][k] * Bs[k][threadIdx.x];
    __syncthreads();
  }
  if (row < M && col < N) C[row * N + col] = acc;
}
"""

BUGGY = r"""
extern "C" __global__ void divergent(float* __restrict__ x) {
  __shared__ float s[64];
  s[threadIdx.x] = x[threadIdx.x];
  if (threadIdx.x < 32) { __syncthreads(); x[threadIdx.x] = s[threadIdx.x + 32]; }
  else { __syncthreads(); }
}
// no __syncthreads() between the write and the neighbour's read: a race, which running
// the threads in order (0, 1, 2 ...) happens to hide
extern "C" __global__ void racy_shift(const float* __restrict__ x, float* __restrict__ y) {
  __shared__ float s[128];
  s[threadIdx.x] = x[threadIdx.x];
  y[threadIdx.x] = threadIdx.x > 0 ? s[threadIdx.x - 1] : 0.f;
  __syncthreads();
}
extern "C" __global__ void traps(float* __restrict__ x) {
  if (threadIdx.x == 3) __trap();
  x[threadIdx.x] = 1.f;
}
"""

rng = np.random.default_rng(0)


@pytest.fixture(scope="module")
def elementwise() -> RawModule:
    return RawModule(ELEMENTWISE)


@pytest.fixture(scope="module")
def reductions() -> RawModule:
    return RawModule(REDUCTIONS)


def test_elementwise_and_grid_stride_loop(elementwise: RawModule) -> None:
    n = 10_000
    x = rng.standard_normal(n, dtype=np.float32)
    y = rng.standard_normal(n, dtype=np.float32)
    want = 2.5 * x + np.exp(y)
    elementwise.get_function("axpy_exp")(((n + 255) // 256,), (256,),
                                         (x, y, np.float32(2.5), np.int32(n)))
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    z = np.zeros_like(x)
    # 8 blocks of 128 threads for 10000 elements; a Python int is passed as long long
    elementwise.get_function("gelu")(8, 128, (x, z, n))
    want = 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-6)


def test_half_buffers(elementwise: RawModule) -> None:
    x = rng.standard_normal(64).astype(np.float16)
    y = np.zeros_like(x)
    elementwise.get_function("half_double")(1, 64, (x, y))
    np.testing.assert_array_equal(y, x * np.float16(2))


def test_block_reduction_with_barriers(reductions: RawModule) -> None:
    assert reductions.built.needs_fibers == dict.fromkeys(
        ["block_sum", "sum_atomic", "softmax_rows", "matmul"], True)
    n = 5000
    x = rng.standard_normal(n, dtype=np.float32)
    blocks = (n + 255) // 256
    out = np.zeros(blocks, np.float32)
    reductions.get_function("block_sum")(blocks, 256, (x, out, np.int32(n)))
    want = np.pad(x, (0, blocks * 256 - n)).reshape(blocks, 256).sum(1, dtype=np.float64)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("workers", [1, 2])
def test_warp_shuffles_and_atomics(reductions: RawModule, workers: int) -> None:
    n = 3000
    x = rng.standard_normal(n, dtype=np.float32)
    total, count = np.zeros(1, np.float32), np.zeros(1, np.int32)
    reductions.get_function("sum_atomic")((n + 127) // 128, 128,
                                          (x, total, count, np.int32(n)), workers=workers)
    np.testing.assert_allclose(total[0], x.sum(dtype=np.float64), rtol=1e-4, atol=1e-3)
    assert count[0] == (n + 127) // 128 * 4  # one atomicAdd per warp


def test_dynamic_shared_memory(reductions: RawModule) -> None:
    rows, cols, threads = 7, 300, 64
    x = rng.standard_normal((rows, cols), dtype=np.float32) * 5
    y = np.empty_like(x)
    reductions.get_function("softmax_rows")(rows, threads, (x, y, np.int32(cols)),
                                            shared_mem=threads * 4)
    e = np.exp(x - x.max(1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(1, keepdims=True), rtol=1e-5, atol=1e-7)


def test_two_dimensional_grid(reductions: RawModule) -> None:
    m, n, k = 37, 29, 45
    a = rng.standard_normal((m, k), dtype=np.float32)
    b = rng.standard_normal((k, n), dtype=np.float32)
    c = np.zeros((m, n), np.float32)
    reductions.get_function("matmul")(((n + 15) // 16, (m + 15) // 16), (16, 16),
                                      (a, b, c, np.int32(m), np.int32(n), np.int32(k)))
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-4)


def test_arguments_are_checked_against_the_c_types(elementwise: RawModule) -> None:
    k = elementwise.get_function("axpy_exp")
    x = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=r"argument 0 \(x\): the parameter is float\*, got a "
                                        r"float64 array"):
        k(1, 4, (x.astype(np.float64), x, np.float32(1), np.int32(4)))
    with pytest.raises(TypeError, match=r"argument 3 \(n\): the parameter is int, got int64"):
        k(1, 4, (x, x, np.float32(1), 4))  # a Python int is a long long, as in CuPy
    with pytest.raises(TypeError, match=r"argument 2 \(a\): the parameter is float, got float64"):
        k(1, 4, (x, x, 1.0, np.int32(4)))  # a Python float is a double
    with pytest.raises(TypeError, match="takes 4 arguments"):
        k(1, 4, (x, x))
    with pytest.raises(TypeError, match="C-contiguous"):
        k(1, 4, (np.zeros(8, np.float32)[::2], x, np.float32(1), np.int32(4)))
    with pytest.raises(TypeError, match="needs a numpy array"):
        k(1, 4, ([0.0] * 4, x, np.float32(1), np.int32(4)))
    with pytest.raises(LaunchError, match="invalid launch configuration"):
        k(1, 2048, (x, x, np.float32(1), np.int32(4)))
    with pytest.raises(AttributeError, match="no kernel named 'nope'"):
        elementwise.get_function("nope")


def test_compile_errors_carry_the_compiler_log() -> None:
    with pytest.raises(CompileError, match="undefined_thing"):
        RawModule('extern "C" __global__ void k(float* x) { x[0] = undefined_thing; }')
    with pytest.raises(CompileError, match="no __global__ kernel"):
        RawModule("__device__ float f(float x) { return x; }")


def test_out_of_bounds_store_is_caught_before_it_happens(elementwise: RawModule) -> None:
    # y is a view of the first 100 elements of a larger buffer: an unchecked write past
    # its end would land in `rest`
    memory = np.zeros(104, np.float32)
    y, rest = memory[:100], memory[100:]
    with pytest.raises(LaunchError, match=r"kernel off_by_one: out-of-bounds access "
                                          r"y\[100\] \(the buffer has 100 elements\)"):
        elementwise.get_function("off_by_one")(1, 128, (y, np.int32(100)))
    assert not rest.any()
    with pytest.raises(LaunchError, match=r"reads_before: out-of-bounds access x\[-1\].*"
                                          r"thread 0,0,0"):
        elementwise.get_function("reads_before")(1, 8, (np.ones(8), np.zeros(8)))


def test_unchecked_build_writes_past_the_end() -> None:
    """What the check prevents: without it, the same kernel silently corrupts memory."""
    memory = np.zeros(104, np.float32)
    RawModule(ELEMENTWISE, checked=False).get_function("off_by_one")(
        1, 128, (memory[:100], np.int32(100)))
    assert memory[100] == 1.0


def test_divergent_barrier_and_trap_are_errors() -> None:
    mod = RawModule(BUGGY)
    x = np.arange(64, dtype=np.float32)
    with pytest.raises(LaunchError, match="divergent __syncthreads"):
        mod.get_function("divergent")(1, 64, (x,))
    with pytest.raises(LaunchError, match=r"__trap\(\) called \(block 0,0,0, thread 3,0,0\)"):
        mod.get_function("traps")(1, 8, (x,))
    with pytest.raises(LaunchError, match="loop mode"):
        mod.get_function("divergent")(1, 64, (x,), fibers=False)
    # another thread order exposes the missing barrier that the forward order hides
    x = np.arange(1, 129, dtype=np.float32)
    want = np.concatenate([[0], x[:-1]])
    results = []
    for order in ("forward", "reverse", "shuffle"):
        y = np.zeros(128, np.float32)
        mod.get_function("racy_shift")(1, 128, (x, y), order=order)
        results.append(np.array_equal(y, want))
    assert results == [True, False, False]


def test_fibers_only_for_kernels_that_reach_a_barrier() -> None:
    src = ELEMENTWISE + REDUCTIONS + """
extern "C" __global__ void __launch_bounds__(256) plain(float* x) { /* } __syncthreads() */ }
extern "C" __global__ void __launch_bounds__(256) synced(float* x) { __syncthreads(); }
"""
    found = needs_fibers(src, ("axpy_exp", "gelu", "sum_atomic", "block_sum", "plain", "synced"))
    assert found == {"axpy_exp": False, "gelu": False, "sum_atomic": True, "block_sum": True,
                     "plain": False, "synced": True}


def test_compiled_modules_are_cached_by_source(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = RawModule(ELEMENTWISE).built.path
    assert first.parent == cache_dir() and first.exists()
    assert RawModule(ELEMENTWISE).built.path == first
    assert RawModule(ELEMENTWISE + "\n// changed\n").built.path != first
    assert RawModule(ELEMENTWISE, checked=False).built.path != first
    monkeypatch.setenv("FGRAD_CACHE_DIR", str(tmp_path))
    assert cache_dir() == tmp_path / "cuda_emulator"
