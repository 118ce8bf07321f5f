"""Devices: where arrays live and compiled programs run.

Three kinds, named as JAX names them:

* ``CpuDevice(id=0)``: host memory; arrays are ``fgrad.Array`` (numpy inside).
  It always exists.
* ``CudaDevice(id=k)``: an NVIDIA GPU driven through cupy: buffers are cupy
  arrays, kernels are compiled by NVRTC (``cupy.RawModule``), matrix products
  run in cuBLAS (``cupy.matmul``). Listed only when cupy is installed and
  finds a GPU; cupy is imported the first time a CUDA device is needed, never
  by ``import fgrad``.
* ``EmulatedDevice(id=0)``: the same generated CUDA C, run on the CPU by the
  emulator (``emulator/``), with numpy arrays as device memory. It is how
  the CUDA backend is tested on machines without a GPU
  (``jit(f, backend="cuda_emulator")``).

``CudaDevice`` and ``EmulatedDevice`` share one interface, ``KernelDevice``,
which is all ``runtime.py`` needs to run a scheduled program: compile a
module, allocate and copy flat buffers, launch a kernel, multiply matrices.

``devices(backend=None)`` lists the devices of a backend (the default one:
``"cuda"`` when a GPU is usable, else ``"cpu"``, as ``jax.devices()``), and
``device_put(x, device)`` moves a pytree of arrays to a device.
"""

from __future__ import annotations

import abc
from typing import Any, Sequence

import numpy as np

from fgrad.core.pytree import tree_map

INSTALL_HINT = ('install cupy for your CUDA version: pip install "fgrad[cuda]" (cupy-cuda12x), '
                "or pip install cupy-cuda13x for a CUDA 13 driver")


class Device:
    """A place where arrays live; equal when of the same kind and id."""

    platform = "?"

    def __init__(self, id: int = 0) -> None:  # noqa: A002  (JAX's name)
        self.id = id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Device) and type(other) is type(self) and other.id == self.id

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.id))


class CpuDevice(Device):
    platform = "cpu"


class KernelDevice(Device, abc.ABC):
    """A device that runs generated CUDA C: what ``runtime.CudaExecutable`` drives.

    Buffers are flat device arrays. A dtype the device cannot hold as itself
    (``native(dtype)`` false: bfloat16 on cupy) is held as its bits
    (``uint16``); ``to_device`` and ``to_host`` convert.
    """

    @abc.abstractmethod
    def compile(self, source: str, options: Sequence[str]) -> Any:
        """A loaded module (``get_function(name)`` gives a launchable kernel)."""

    @abc.abstractmethod
    def launch(self, module: Any, name: str, grid: int, block: int, shared_bytes: int,
               buffers: Sequence[Any]) -> None:
        """Run kernel ``name`` of ``module`` on a 1-D grid with the buffers as arguments."""

    @abc.abstractmethod
    def empty(self, size: int, dtype: np.dtype) -> Any:
        """An uninitialized flat buffer."""

    @abc.abstractmethod
    def to_device(self, x: np.ndarray) -> Any:
        """A flat device copy of the host array ``x``."""

    @abc.abstractmethod
    def to_host(self, buffer: Any, dtype: np.dtype) -> np.ndarray:
        """A host copy of ``buffer``, as ``dtype``."""

    @abc.abstractmethod
    def write(self, buffer: Any, x: np.ndarray) -> None:
        """Copy the host array ``x`` (the buffer's size and dtype) into ``buffer``."""

    @abc.abstractmethod
    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` on stacks of matrices, as ``numpy.matmul``."""

    def native(self, dtype: np.dtype) -> bool:
        return True


# --- the emulator ----------------------------------------------------------------------------

def _poison(size: int, dtype: np.dtype) -> np.ndarray:
    """A buffer full of values a correct program never reads before writing: NaN for
    floats, ``0x5a`` bytes for integers, True for bools (so a missing write shows in the
    results; an index read from it goes out of bounds)."""
    if dtype.kind == "f" or dtype.name == "bfloat16":
        return np.full(size, np.nan, dtype)
    out = np.empty(size, dtype)
    if dtype != np.bool_:
        out.view(np.uint8).fill(0x5A)
    else:
        out.fill(True)
    return out


class EmulatedDevice(KernelDevice):
    """Generated CUDA C run on the CPU by the emulator; numpy arrays are device memory.

    Fresh buffers are poisoned (``_poison``), and the emulator bounds-checks
    every kernel's pointers, so a kernel that reads memory nobody wrote or
    writes outside a buffer shows up as a wrong result or an error here
    instead of as a silent difference on a GPU. ``order`` is the order in
    which the threads of a block run between barriers (``"forward"``,
    ``"reverse"``, ``"shuffle"``): a kernel that is right in every order
    does not depend on a barrier it lacks.
    """

    platform = "cuda_emulator"

    def __init__(self, id: int = 0, order: str = "forward") -> None:  # noqa: A002
        super().__init__(id)
        self.order = order

    def compile(self, source: str, options: Sequence[str]) -> Any:
        from fgrad.lowering.cuda.emulator import RawModule
        return RawModule(source, options, order=self.order)

    def launch(self, module: Any, name: str, grid: int, block: int, shared_bytes: int,
               buffers: Sequence[Any]) -> None:
        # 16-bit floats are `unsigned short` bits in the kernels' signatures
        args = [b.view(np.uint16) if b.dtype.name in ("float16", "bfloat16") else b
                for b in buffers]
        module.get_function(name)((grid,), (block,), args, shared_mem=shared_bytes)

    def empty(self, size: int, dtype: np.dtype) -> Any:
        return _poison(size, np.dtype(dtype))

    def to_device(self, x: np.ndarray) -> Any:
        return np.array(x, order="C").reshape(-1)

    def to_host(self, buffer: Any, dtype: np.dtype) -> np.ndarray:
        return np.array(buffer, copy=True)

    def write(self, buffer: Any, x: np.ndarray) -> None:
        buffer[...] = np.asarray(x).reshape(-1)

    def matmul(self, a: Any, b: Any) -> Any:
        return np.matmul(a, b)


# --- a GPU through cupy --------------------------------------------------------------------------

def _cupy() -> Any:
    import cupy  # noqa: PLC0415  (imported on first use only: cupy is an optional extra)
    return cupy


def gpu_status() -> str | None:
    """None when cupy is installed and sees a GPU, else what is missing (for messages)."""
    try:
        cupy = _cupy()
    except ImportError as e:
        return f"cupy is not installed ({e})"
    except Exception as e:  # noqa: BLE001  (a broken install: report it, do not crash)
        return f"importing cupy failed: {type(e).__name__}: {e}"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # noqa: BLE001  (no driver: cupy raises CUDARuntimeError)
        return f"cupy {getattr(cupy, '__version__', '?')} is installed but found no usable " \
               f"GPU: {type(e).__name__}: {e}"
    return None if count > 0 else \
        f"cupy {getattr(cupy, '__version__', '?')} is installed but reports 0 GPUs"


def gpu_available() -> bool:
    """True when cupy is importable and ``cupy.cuda.runtime.getDeviceCount() > 0``."""
    return gpu_status() is None


class _CupyModule:
    """A compiled ``cupy.RawModule`` that looks each kernel up once."""

    def __init__(self, module: Any) -> None:
        self.module, self.functions = module, dict[str, Any]()

    def get_function(self, name: str) -> Any:
        if name not in self.functions:
            self.functions[name] = self.module.get_function(name)
        return self.functions[name]


class CudaDevice(KernelDevice):
    """GPU ``id`` through cupy (NVRTC, cuBLAS). cupy has no bfloat16: those buffers are
    held as ``uint16`` bits, and a matrix product of them goes through the host."""

    platform = "cuda"

    def __init__(self, id: int = 0) -> None:  # noqa: A002
        super().__init__(id)
        self._cp = _cupy()
        self._device = self._cp.cuda.Device(id)

    def native(self, dtype: np.dtype) -> bool:
        return np.dtype(dtype).name != "bfloat16"

    def _storage(self, dtype: np.dtype) -> np.dtype:
        return np.dtype(dtype) if self.native(dtype) else np.dtype(np.uint16)

    def compile(self, source: str, options: Sequence[str]) -> Any:
        with self._device:
            module = self._cp.RawModule(code=source, options=tuple(options))
            module.compile()  # now, not lazily at the first launch: errors surface here
        return _CupyModule(module)

    def launch(self, module: Any, name: str, grid: int, block: int, shared_bytes: int,
               buffers: Sequence[Any]) -> None:
        with self._device:
            module.get_function(name)((grid,), (block,), tuple(buffers),
                                      shared_mem=shared_bytes)

    def empty(self, size: int, dtype: np.dtype) -> Any:
        with self._device:
            return self._cp.empty(size, self._storage(dtype))

    def to_device(self, x: np.ndarray) -> Any:
        x = np.ascontiguousarray(x).reshape(-1)
        with self._device:
            return self._cp.asarray(x.view(self._storage(x.dtype)))

    def to_host(self, buffer: Any, dtype: np.dtype) -> np.ndarray:
        with self._device:
            host: np.ndarray = self._cp.asnumpy(buffer)
        return host.view(dtype)

    def write(self, buffer: Any, x: np.ndarray) -> None:
        with self._device:
            buffer.set(np.ascontiguousarray(x).reshape(-1).view(buffer.dtype))

    def matmul(self, a: Any, b: Any) -> Any:
        with self._device:
            return self._cp.matmul(a, b)


# --- the public API ---------------------------------------------------------------------------

def devices(backend: str | None = None) -> list[Device]:
    """The devices of ``backend`` (``"cpu"``, ``"cuda"``, ``"cuda_emulator"``).

    Without a backend: the GPUs when cupy finds one, else the CPU (as
    ``jax.devices()`` lists the default backend's devices).

    Raises:
      RuntimeError: ``backend="cuda"`` on a machine where cupy finds no GPU
        (the message says what is missing and what to install).

    >>> devices("cpu")
    [CpuDevice(id=0)]
    """
    if backend is None:
        backend = "cuda" if gpu_available() else "cpu"
    if backend == "cpu":
        return [CpuDevice(0)]
    if backend == "cuda_emulator":
        return [EmulatedDevice(0)]
    if backend == "cuda":
        status = gpu_status()
        if status is not None:
            raise RuntimeError(f"devices('cuda'): no CUDA GPU available: {status}. To use one, "
                               f"{INSTALL_HINT}.")
        return [CudaDevice(k) for k in range(_cupy().cuda.runtime.getDeviceCount())]
    raise ValueError(f"devices: unknown backend {backend!r}; expected 'cpu', 'cuda' or "
                     "'cuda_emulator'")


def _host_value(x: Any) -> Any:
    """A leaf as something numpy can read (a cupy array is copied to the host)."""
    return x.get() if hasattr(x, "__cuda_array_interface__") else x


def device_put(x: Any, device: Device | None = None) -> Any:
    """Copy every array leaf of the pytree ``x`` to ``device`` (default: ``devices()[0]``).

    On the CPU (and the emulator, whose memory is the host's) the leaves
    become ``fgrad.Array``; on a CUDA device, cupy arrays.

    >>> device_put({"w": [1.0, 2.0]}, CpuDevice(0))["w"].shape
    (2,)
    """
    device = device if device is not None else devices()[0]
    if isinstance(device, CudaDevice):
        def put(leaf: Any) -> Any:
            with device._device:
                return device._cp.asarray(np.asarray(_host_value(leaf)))
        return tree_map(put, x)
    if isinstance(device, (CpuDevice, EmulatedDevice)):
        import fgrad.numpy as fnp  # noqa: PLC0415  (the numpy layer imports this package)
        return tree_map(lambda leaf: fnp.asarray(_host_value(leaf)), x)
    raise TypeError(f"device_put: expected an fgrad device, got {device!r}")


__all__ = ["Device", "CpuDevice", "KernelDevice", "CudaDevice", "EmulatedDevice", "devices",
           "device_put", "gpu_available", "gpu_status", "INSTALL_HINT"]
