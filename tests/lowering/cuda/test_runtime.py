"""The CUDA backend end to end: jaxpr -> kernels -> CUDA C -> run, against eager execution.

Without a GPU everything runs on ``backend="cuda_emulator"``: the generated CUDA C
is compiled by g++ against the emulator's shim and every thread runs on the CPU,
with bounds-checked pointers and poisoned fresh buffers. The same differential
checks run on ``backend="cuda"`` in the tests marked ``gpu`` (skipped unless cupy
finds a GPU).

* random programs and their gradients (the generator of ``test_cpu_backend.py``);
* op-table records: a representative subset by default (the first record of each
  primitive and every ``STRIDE``-th record of each family: each record compiles
  its own module, about 0.3 s), the rest under ``-m slow``;
* matrix products, control flow, host calls, 16-bit floats, random bits;
* what must fail cleanly: bad arguments, a kernel that writes out of bounds,
  ``backend="cuda"`` without a GPU; and ``import fgrad`` never importing cupy.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import types
from collections.abc import Callable
from typing import Any

import hypothesis
import ml_dtypes
import numpy as np
import op_table
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lowering.test_cpu_backend import programs
from lowering.test_cpu_op_table import TOL, _prims
from op_table import Rec, args_strategy

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.lowering.cuda import device as cuda_device
from fgrad.lowering.cuda import runtime
from fgrad.lowering.cuda.emulator import LaunchError
from fgrad.lowering.kernel_ir import Const, Kernel, Loop, Param, Store, var
from fgrad.lowering.schedule import Buffer, LoweringError, Program, schedule
from fgrad.primitives import random as prng
from fgrad.tree_util import tree_leaves

EMULATOR = "cuda_emulator"


def assert_close(got: Any, want: Any, tol: float = 2e-5) -> None:
    got, want = tree_leaves(got), tree_leaves(want)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.shape, g.dtype) == (w.shape, w.dtype)
        if w.dtype.kind == "f" or w.dtype == ml_dtypes.bfloat16:
            np.testing.assert_allclose(g.astype(np.float64), w.astype(np.float64), rtol=tol,
                                       atol=tol, equal_nan=True)
        else:
            np.testing.assert_array_equal(g, w)


def check(fn: Callable[..., Any], *args: Any, backend: str = EMULATOR,
          tol: float = 2e-5) -> None:
    assert_close(fgrad.jit(fn, backend=backend)(*args), fn(*args), tol)


# --- random programs ----------------------------------------------------------------------------

def _random_program(case: tuple[Callable[..., Any], list[np.ndarray]], backend: str) -> None:
    check(case[0], *case[1], backend=backend)


def _random_gradient(case: tuple[Callable[..., Any], list[np.ndarray]], backend: str) -> None:
    fn, args = case

    def loss(x: Any, v: Any) -> Any:
        a, b = fn(x, v)
        return fnp.sum(fnp.tanh(a)) + fnp.sum(b * b) * 0.1

    check(fgrad.grad(loss, argnums=(0, 1)), *args, backend=backend, tol=1e-4)


@settings(max_examples=40, deadline=None)
@given(programs())
def test_random_programs_match_eager(case: Any) -> None:
    _random_program(case, EMULATOR)


@settings(max_examples=15, deadline=None)
@given(programs())
def test_random_program_gradients_match_eager(case: Any) -> None:
    _random_gradient(case, EMULATOR)


# --- op-table records ---------------------------------------------------------------------------

STRIDE = 6


def _subset(records: list[Rec]) -> tuple[list[Rec], list[Rec]]:
    """(representative, rest): the first record of each primitive and every STRIDE-th of
    each family (records of numpy wrappers name no primitives) are representative."""
    seen: set[str] = set()
    count: dict[str, int] = {}
    chosen, rest = [], []
    for rec in records:
        k = count[rec.family] = count.get(rec.family, -1) + 1
        (chosen if set(rec.prims) - seen or k % STRIDE == 0 else rest).append(rec)
        seen |= set(rec.prims)
    return chosen, rest


SUBSET, REST = _subset(op_table.all_records())


def _record_matches_eager(rec: Rec, data: Any, backend: str) -> None:
    dtype = np.dtype(rec.dtypes[0])
    values = data.draw(args_strategy(rec, dtype))
    dyn = [i for i, a in enumerate(rec.args) if a.kind != "const"]

    def f(*xs: Any) -> Any:
        full = list(values)
        for i, x in zip(dyn, xs, strict=True):
            full[i] = x
        return rec.fn(*full)

    args = [values[i] for i in dyn]
    if not all(p.lower is not None for p in _prims(fgrad.make_jaxpr(f)(*args), set())):
        with pytest.raises(LoweringError, match="no lowering for primitive"):
            fgrad.jit(f, backend=backend)(*args)
        return
    got, want = fgrad.jit(f, backend=backend)(*args), f(*args)
    for g, w in zip(tree_leaves(got), tree_leaves(want), strict=True):
        tol = TOL.get(np.asarray(w).dtype, 1e-5)
        assert_close(g, w, tol if rec.rtol is None else max(rec.rtol, tol))


@pytest.mark.parametrize("rec", SUBSET, ids=[r.name for r in SUBSET])
@hypothesis.settings(max_examples=1)
@given(data=st.data())
def test_op_table_subset_matches_eager(rec: Rec, data: Any) -> None:
    _record_matches_eager(rec, data, EMULATOR)


@pytest.mark.slow
@pytest.mark.parametrize("rec", REST, ids=[r.name for r in REST])
@hypothesis.settings(max_examples=1)
@given(data=st.data())
def test_op_table_rest_matches_eager(rec: Rec, data: Any) -> None:
    _record_matches_eager(rec, data, EMULATOR)


# --- library calls, control flow, dtypes ----------------------------------------------------------

rng = np.random.default_rng(0)
X = rng.standard_normal((3, 4)).astype(np.float32)

FEATURES: dict[str, tuple[Callable[..., Any], tuple[Any, ...], float]] = {
    "gemm_batched_transposed": (
        lambda a, b: (fnp.einsum("bij,bkj->bik", a, b), fnp.swapaxes(a, 1, 2) @ a),
        (rng.standard_normal((2, 3, 5)).astype(np.float32),
         rng.standard_normal((2, 4, 5)).astype(np.float32)), 1e-5),
    "long_reduction_uses_a_block": (
        lambda x: (fnp.sum(x), fnp.max(x.reshape(4, -1), axis=1)),
        (rng.standard_normal(40_000).astype(np.float32),), 1e-4),
    "cond": (lambda x: lax.cond(x.sum() > 0, lambda x: x * 2.0, lambda x: x - 1.0, x),
             (X,), 2e-5),
    "switch": (lambda i, x: lax.switch(i, [fnp.sin, fnp.cos, fnp.tanh], x),
               (np.int32(2), X), 2e-5),
    "while_loop": (lambda x: lax.while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, c[1] * 1.5),
                                            (0, x)), (X,), 2e-5),
    "scan": (lambda x: lax.scan(lambda c, r: (c + r, c * r), fnp.zeros(4, np.float32), x),
             (X,), 2e-5),
    "host_calls": (lambda a: (fnp.linalg.cholesky(a @ a.T + 4.0 * fnp.eye(3)),
                              prng.argsort(a, dimension=1)), (X,), 1e-5),
    "float16_and_bfloat16": (lambda x: (fnp.exp(x.astype(np.float16)) * 2,
                                        x.astype(np.float16) @ x.T.astype(np.float16),
                                        fnp.tanh(x.astype(ml_dtypes.bfloat16)) + 1), (X,), 1e-2),
    "integers_and_bools": (lambda x: (x // 2 + x % 3, x > 0, fnp.argmax(x, axis=1),
                                      fnp.cumsum(x, axis=0)),
                           (np.array([[-7, 3, 0], [5, -1, 9]], np.int32),), 0.0),
    "random_bits": (lambda k: (fgrad.random.uniform(k, (1000,)), fgrad.random.bits(k, (7,))),
                    (fgrad.random.PRNGKey(3),), 0.0),
}


@pytest.mark.parametrize("name", list(FEATURES))
def test_features_match_eager(name: str) -> None:
    fn, args, tol = FEATURES[name]
    check(fn, *args, tol=tol)


@pytest.mark.parametrize("order", ["reverse", "shuffle"])
def test_block_reductions_do_not_depend_on_thread_order(order: str) -> None:
    """The renderer's shared-memory reductions are the kernels with barriers: running the
    threads of a block in another order between them gives the same result."""
    fn, (x,), tol = FEATURES["long_reduction_uses_a_block"]
    closed = fgrad.make_jaxpr(fn)(x)
    program = schedule(closed)
    assert "__syncthreads" in runtime.render_program(program).source
    exe = runtime.CudaExecutable(program, cuda_device.EmulatedDevice(order=order))
    assert_close(exe([x]), fn(x), tol)


def test_host_call_errors_raise_at_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(call: Any, arrays: Any) -> Any:
        raise RuntimeError("lapack exploded")

    monkeypatch.setattr(runtime, "run_impl", broken)
    with pytest.raises(RuntimeError, match="lapack exploded"):
        fgrad.jit(lambda x: fnp.linalg.cholesky(x) + 1.0, backend=EMULATOR)(np.eye(2) * 2.0)


# --- errors ------------------------------------------------------------------------------------

def test_arguments_are_checked_before_the_device_sees_them() -> None:
    closed = fgrad.make_jaxpr(lambda x: x + 1.0)(np.ones((2, 3), np.float32))
    exe = runtime.CudaExecutable(schedule(closed), cuda_device.EmulatedDevice())
    with pytest.raises(TypeError, match=r"must be float32\[2, 3\], got float64\[2, 3\]"):
        exe([np.ones((2, 3))])
    with pytest.raises(TypeError, match=r"must be float32\[2, 3\], got float32\[3, 2\]"):
        exe([np.ones((3, 2), np.float32)])
    with pytest.raises(TypeError, match="takes 1 arguments, got 2"):
        exe([X, X])
    x = np.arange(12, dtype=np.float32).reshape(3, 4)[:2, :3]  # non-contiguous: copied
    np.testing.assert_array_equal(exe([x])[0], x + 1)


def test_a_kernel_writing_out_of_bounds_is_caught() -> None:
    """A deliberately broken kernel: its loop runs one element past its output."""
    out = Buffer("out0", (8,), np.dtype(np.float32))
    one = Const(np.float32(1.0), out.dtype)
    broken = Kernel("broken", (Param("out0", out.dtype, 8, True),),
                    (Loop("i", 9, (Store("out0", var("i"), one),), parallel=True),))
    program = Program({"out0": out}, [], {}, ["out0"], [broken])
    exe = runtime.CudaExecutable(program, cuda_device.EmulatedDevice())
    with pytest.raises(LaunchError, match=r"out-of-bounds access out0\[8\] \(the buffer has 8 "):
        exe([])


def test_cuda_without_a_gpu_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # no cupy (on a GPU machine too: a None entry in sys.modules makes the import fail)
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(runtime, "_devices", {})
    with pytest.raises(RuntimeError, match=r'no usable CUDA GPU: .*pip install "fgrad\[cuda\]"'
                                           r'.*backend="cuda_emulator"'):
        fgrad.jit(fnp.sin, backend="cuda")(X)
    with pytest.raises(RuntimeError, match=r"devices\('cuda'\): no CUDA GPU"):
        cuda_device.devices("cuda")
    # cupy installed, no driver: the message says so (a stand-in module plays cupy)
    fake = types.ModuleType("cupy")
    fake.__version__ = "13.9"

    def no_driver() -> int:
        raise RuntimeError("cudaErrorInsufficientDriver")

    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDeviceCount=no_driver))
    monkeypatch.setitem(sys.modules, "cupy", fake)
    with pytest.raises(RuntimeError, match="cupy 13.9 is installed but found no usable GPU: "
                                           "RuntimeError: cudaErrorInsufficientDriver"):
        fgrad.jit(fnp.cos, backend="cuda")(X)
    assert not cuda_device.gpu_available()


def test_import_fgrad_does_not_import_cupy(tmp_path: Any) -> None:
    """In a fresh process whose cupy (a stand-in) records being imported: ``import fgrad``
    leaves it alone, and ``FGRAD_BACKEND=cuda`` without a GPU says what to install."""
    (tmp_path / "cupy").mkdir()
    (tmp_path / "cupy" / "__init__.py").write_text(
        "import os; os.environ['CUPY_WAS_IMPORTED'] = '1'\n")
    code = textwrap.dedent("""
        import os, sys
        import fgrad
        assert 'cupy' not in sys.modules and 'CUPY_WAS_IMPORTED' not in os.environ
        try:
            fgrad.jit(lambda x: x + 1)(1.0)
        except RuntimeError as e:
            print(e)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
           "FGRAD_BACKEND": "cuda"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert 'no usable CUDA GPU' in out.stdout and 'pip install "fgrad[cuda]"' in out.stdout


# --- the cupy code paths, run against a stand-in cupy --------------------------------------------

class _StandInArray(np.ndarray):
    """A cupy.ndarray stand-in: host memory with cupy's transfer methods."""

    __cuda_array_interface__ = property(lambda self: {"shape": self.shape})

    def set(self, x: np.ndarray) -> None:
        self[...] = x

    def get(self) -> np.ndarray:
        return np.array(self)


def _stand_in_cupy() -> types.ModuleType:
    """Just enough of cupy for ``CudaDevice``, with the emulator compiling the kernels (and
    passing 16-bit floats as bits, as a GPU launch passes any pointer)."""
    from fgrad.lowering.cuda.emulator import RawModule

    def wrap(x: Any) -> _StandInArray:
        return np.array(x).view(_StandInArray)

    class StandInModule:
        def __init__(self, code: str, options: tuple[str, ...]) -> None:
            self.module = RawModule(code, options)

        def compile(self) -> None:
            pass

        def get_function(self, name: str) -> Callable[..., None]:
            kernel = self.module.get_function(name)
            return lambda grid, block, args, shared_mem=0: kernel(grid, block, [
                np.asarray(a).view(np.uint16) if a.dtype == np.float16 else np.asarray(a)
                for a in args], shared_mem=shared_mem)

    cp = types.ModuleType("cupy")
    cp.__version__ = "stand-in"
    cp.RawModule, cp.asarray, cp.asnumpy = StandInModule, wrap, np.array
    cp.empty = lambda n, dtype: np.empty(n, dtype).view(_StandInArray)
    cp.matmul = lambda a, b: wrap(np.matmul(a, b))
    cp.cuda = types.SimpleNamespace(Device=lambda k: contextlib.nullcontext(),
                                    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1))
    return cp


def test_cuda_device_with_a_stand_in_cupy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``backend="cuda"`` code paths (cupy buffers, bfloat16 held as bits, device
    inputs, device_put) on the CPU; the gpu tests run them on a real GPU."""
    monkeypatch.setitem(sys.modules, "cupy", _stand_in_cupy())
    monkeypatch.setattr(runtime, "_devices", {})
    assert cuda_device.devices() == [cuda_device.CudaDevice(0)]
    for name in ("gemm_batched_transposed", "host_calls", "while_loop", "float16_and_bfloat16"):
        fn, args, tol = FEATURES[name]
        check(fn, *args, backend="cuda", tol=tol)
    bf16 = lambda x: fnp.tanh(x.astype(ml_dtypes.bfloat16) @ x.T.astype(ml_dtypes.bfloat16))
    assert_close(fgrad.jit(bf16, backend="cuda")(X), fgrad.jit(bf16, backend="interpret")(X),
                 tol=1e-2)
    put = cuda_device.device_put({"x": X}, cuda_device.CudaDevice(0))["x"]
    assert isinstance(put, _StandInArray)
    closed = fgrad.make_jaxpr(lambda x: x * 2.0)(X)
    exe = runtime.CudaExecutable(schedule(closed), runtime.backend_device("cuda"))
    np.testing.assert_array_equal(exe([put])[0], X * 2)  # a device input is not copied up


# --- devices, caching, debugging ----------------------------------------------------------------

def test_devices_and_device_put() -> None:
    from fgrad.lowering.cuda.device import CpuDevice, EmulatedDevice, device_put, devices
    assert devices("cpu") == [CpuDevice(0)] and repr(devices("cpu")[0]) == "CpuDevice(id=0)"
    assert devices(EMULATOR) == [EmulatedDevice(0)]
    assert devices() == (devices("cuda") if cuda_device.gpu_available() else [CpuDevice(0)])
    tree = {"w": np.ones((2, 3), np.float32), "b": [1.0, np.arange(3)]}
    for dev in (CpuDevice(0), EmulatedDevice(0)):
        put = device_put(tree, dev)
        assert isinstance(put["w"], fgrad.Array) and put["w"].shape == (2, 3)
        np.testing.assert_array_equal(np.asarray(put["b"][1]), np.arange(3))
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        devices("tpu")


def test_one_compile_per_signature() -> None:
    f = fgrad.jit(lambda x: fnp.sin(x) * 2.0, backend=EMULATOR)
    before = len(runtime._cache)
    f(np.ones(3, np.float32))
    f(np.zeros(3, np.float32))
    assert len(runtime._cache) == before + 1
    f(np.ones(4, np.float32))
    assert len(runtime._cache) == before + 2


def test_debug_env_prints_the_cuda_source(capfd: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("FGRAD_DEBUG", "cuda")
    fgrad.jit(lambda x: x * 3.0 + 1.0, backend=EMULATOR)(np.ones(5, np.float32))
    err = capfd.readouterr().err
    assert "--- fgrad: cuda ---" in err and '__global__' in err


# --- on a real GPU --------------------------------------------------------------------------------

@pytest.mark.gpu
@settings(max_examples=40, deadline=None)
@given(programs())
def test_gpu_random_programs_match_eager(case: Any) -> None:
    _random_program(case, "cuda")


@pytest.mark.gpu
@settings(max_examples=15, deadline=None)
@given(programs())
def test_gpu_random_program_gradients_match_eager(case: Any) -> None:
    _random_gradient(case, "cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("rec", SUBSET + REST, ids=[r.name for r in SUBSET + REST])
@hypothesis.settings(max_examples=1)
@given(data=st.data())
def test_gpu_op_table_matches_eager(rec: Rec, data: Any) -> None:
    _record_matches_eager(rec, data, "cuda")


@pytest.mark.gpu
@pytest.mark.parametrize("name", list(FEATURES))
def test_gpu_features_match_eager(name: str) -> None:
    fn, args, tol = FEATURES[name]
    check(fn, *args, backend="cuda", tol=tol)
