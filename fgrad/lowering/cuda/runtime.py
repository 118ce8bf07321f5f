"""Running a scheduled program on a CUDA device: a GPU through cupy, or the emulator.

``CudaExecutable(program, device)`` renders the program as one CUDA C
module (``render.py``) and compiles it once on the device (NVRTC on a GPU,
g++ in the emulator). Calling it

1. checks every argument against its input buffer (shape and dtype) before
   anything touches device memory;
2. uploads the inputs and allocates the temporaries and outputs (the
   program's constants were uploaded once, at compile time);
3. walks ``program.steps`` on the host, as ``interpret.run_program`` does
   with numpy:

   * a ``Kernel`` is one launch, with its ``CudaKernel``'s grid and block and
     its buffers in parameter order;
   * a ``gemm`` is the device's matrix product (``cupy.matmul``, i.e. cuBLAS;
     numpy in the emulator), on the same layouts as ``interpret._gemm``;
   * a ``host_call`` copies its operands to the host, runs the primitive's
     numpy implementation there (the LAPACK factorizations and ``argsort``
     run on the CPU) and copies the results back;
   * ``Branch``, ``Repeat`` and ``WhileLoop`` are driven from the host: it
     reads the branch index or the loop predicate back from the device (a
     synchronization) and writes the scan counter before each step;
4. downloads the outputs: the backends return numpy arrays for now (results
   that stay on the device are future work).

``install()`` registers the two backends with ``jit``: ``"cuda"`` (the first
GPU; a clear error when there is none) and ``"cuda_emulator"`` (the
generated CUDA C run on the CPU: how the CUDA backend is tested without a
GPU). ``FGRAD_DEBUG=kernels,cuda`` prints the kernel IR and the CUDA source
of each compile.
"""

from __future__ import annotations

import os
import sys
import weakref
from typing import Any, Sequence

import numpy as np

from fgrad.core.array import Array
from fgrad.core.jaxpr import ClosedJaxpr
from fgrad.lowering.cuda.device import (
    INSTALL_HINT,
    CudaDevice,
    EmulatedDevice,
    KernelDevice,
    gpu_status,
)
from fgrad.lowering.cuda.render import CudaKernel, render_program
from fgrad.lowering.host_calls import run_impl
from fgrad.lowering.interpret import gemm_operands, gemm_update
from fgrad.lowering.kernel_ir import Kernel
from fgrad.lowering.schedule import Branch, LibraryCall, Program, Repeat, Step, WhileLoop


class CudaExecutable:
    """A program compiled for one ``KernelDevice``; call it with the input arrays."""

    def __init__(self, program: Program, device: KernelDevice) -> None:
        self.program, self.device = program, device
        self.module = render_program(program)
        # a program of library calls only (a lone matmul) has nothing to compile
        self.compiled = device.compile(self.module.source, self.module.options) \
            if self.module.kernels else None
        self._launches: dict[int, CudaKernel] = {id(k.ir): k for k in self.module.kernels}
        self._consts = {name: device.to_device(np.asarray(c, program.buffers[name].dtype))
                        for name, c in program.consts.items()}

    def __call__(self, args: Sequence[Any]) -> list[np.ndarray]:
        program, device = self.program, self.device
        if len(args) != len(program.inputs):
            raise TypeError(f"compiled program takes {len(program.inputs)} arguments, got "
                            f"{len(args)}")
        buffers = {name: self._upload(name, x)
                   for name, x in zip(program.inputs, args, strict=True)}
        buffers.update(self._consts)
        for name, buf in program.buffers.items():
            if name not in buffers:
                buffers[name] = device.empty(buf.size, buf.dtype)
        self._run(program.steps, buffers)
        return [device.to_host(buffers[n], program.buffers[n].dtype).reshape(
            program.buffers[n].shape) for n in program.outputs]

    def _upload(self, name: str, x: Any) -> Any:
        buf = self.program.buffers[name]
        if not hasattr(x, "__cuda_array_interface__"):
            x = np.asarray(x)
        if x.shape != buf.shape or x.dtype != buf.dtype:
            raise TypeError(f"compiled program: argument {name} must be "
                            f"{buf.dtype}{list(buf.shape)}, got {x.dtype}{list(x.shape)}")
        if isinstance(x, np.ndarray):
            return self.device.to_device(x)
        return x.reshape(-1)  # already a device array (kernels never write their inputs)

    # --- the steps ----------------------------------------------------------------------------
    def _run(self, steps: Sequence[Step], buffers: dict[str, Any]) -> None:
        for step in steps:
            if isinstance(step, Kernel):
                k = self._launches[id(step)]
                self.device.launch(self.compiled, k.name, k.grid, k.block, k.shared_bytes,
                                   [buffers[p.name] for p in k.params])
            elif isinstance(step, Branch):
                self._run(step.branches[int(self._scalar(step.index, buffers))], buffers)
            elif isinstance(step, Repeat):
                counter = self.program.buffers[step.counter]
                for i in range(step.length):
                    self.device.write(buffers[step.counter], np.full(1, i, counter.dtype))
                    self._run(step.body, buffers)
            elif isinstance(step, WhileLoop):
                self._run(step.cond, buffers)
                while bool(self._scalar(step.pred, buffers)):
                    self._run(step.body, buffers)
                    self._run(step.cond, buffers)
            elif step.name == "gemm":
                self._gemm(step, buffers)
            elif step.name == "host_call":
                self._host_call(step, buffers)
            else:
                raise NotImplementedError(f"cuda runtime: no library routine {step.name!r}")

    def _scalar(self, name: str, buffers: dict[str, Any]) -> Any:
        """Element 0 of a buffer, read back to the host (waits for the device)."""
        return self.device.to_host(buffers[name][:1], self.program.buffers[name].dtype)[0]

    def _gemm(self, call: LibraryCall, buffers: dict[str, Any]) -> None:
        dtypes = [self.program.buffers[n].dtype for n in call.args]
        a, b, *addend, out = (buffers[n] for n in call.args)
        if all(self.device.native(d) for d in dtypes):
            product = self.device.matmul(*gemm_operands(call, a, b))
            out[...] = gemm_update(call, product.astype(out.dtype), addend[0] if addend else None)
        else:  # a dtype the device holds as bits (bfloat16 in cupy): multiply on the host
            host = [self.device.to_host(x, d) for x, d in zip((a, b, *addend), dtypes)]
            product = np.matmul(*gemm_operands(call, host[0], host[1])).astype(dtypes[-1])
            self.device.write(out, gemm_update(call, product, host[2] if addend else None))

    def _host_call(self, call: LibraryCall, buffers: dict[str, Any]) -> None:
        n_in, shapes = call.param("n_inputs"), call.param("shapes")
        operands = [self.device.to_host(buffers[n], self.program.buffers[n].dtype).reshape(s)
                    for n, s in zip(call.args[:n_in], shapes[:n_in], strict=True)]
        for name, result in zip(call.args[n_in:], run_impl(call, operands), strict=True):
            self.device.write(buffers[name],
                              np.asarray(result, dtype=self.program.buffers[name].dtype))


# --- the jit backends ----------------------------------------------------------------------------

_devices: dict[str, KernelDevice] = {}
# per jaxpr (for as long as it lives, as the CPU backend's cache), per backend
_cache: weakref.WeakKeyDictionary[ClosedJaxpr, dict[str, CudaExecutable]] = \
    weakref.WeakKeyDictionary()


def backend_device(backend: str) -> KernelDevice:
    """The device a backend runs on: the first GPU (``"cuda"``) or the emulator."""
    if backend not in _devices:
        if backend == "cuda":
            status = gpu_status()
            if status is not None:
                raise RuntimeError(
                    f'jit(backend="cuda"): no usable CUDA GPU: {status}. To run on a GPU, '
                    f'{INSTALL_HINT}. To run the generated CUDA C on the CPU instead, use '
                    f'backend="cuda_emulator".')
            _devices[backend] = CudaDevice(0)
        else:
            _devices[backend] = EmulatedDevice(0)
    return _devices[backend]


def executable(closed: ClosedJaxpr, backend: str) -> CudaExecutable:
    """The compiled program for ``closed`` on ``backend`` (cached on the jaxpr object)."""
    per_backend = _cache.setdefault(closed, {})
    exe = per_backend.get(backend)
    if exe is None:
        from fgrad.lowering.schedule import schedule
        device = backend_device(backend)
        exe = per_backend[backend] = CudaExecutable(schedule(closed), device)
        _debug_print(exe)
    return exe


def _debug_print(exe: CudaExecutable) -> None:
    stages = [s.strip() for s in os.environ.get("FGRAD_DEBUG", "").split(",")]
    for stage, text in (("kernels", str(exe.program)), ("cuda", exe.module.source)):
        if stage in stages:
            print(f"--- fgrad: {stage} ---\n{text}", file=sys.stderr)


def _unwrap(args: Sequence[Any]) -> list[Any]:
    return [x._value if isinstance(x, Array) else x for x in args]


def run_cuda(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """``jit(..., backend="cuda")``: compile once for the first GPU, run there."""
    return executable(closed, "cuda")(_unwrap(args))


def run_emulated(closed: ClosedJaxpr, args: Sequence[Any]) -> list[Any]:
    """``jit(..., backend="cuda_emulator")``: the generated CUDA C, run on the CPU."""
    return executable(closed, "cuda_emulator")(_unwrap(args))


__all__ = ["CudaExecutable", "backend_device", "executable", "run_cuda",
           "run_emulated"]
