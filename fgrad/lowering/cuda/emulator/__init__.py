"""Run CUDA C kernels on the CPU: how fgrad checks its generated GPU code without a GPU.

The CUDA backend prints kernels as CUDA C source; on a GPU, NVRTC compiles
that text. This emulator compiles *the same text* with the host C++
compiler against a shim header (``cuda_shim.h``: the CUDA qualifiers,
built-in variables, math library, atomics, barriers) and runs every thread
of the grid on the CPU, so the numerics of the generated code can be
compared with numpy on any machine. The API mirrors ``cupy.RawModule``::

    mod = RawModule(code=source)
    kernel = mod.get_function("axpy")
    kernel((blocks,), (256,), (x, y, np.float32(2.0), np.int32(n)))

Numpy arrays stand in for device memory. What it guards against:

* **argument types**: every argument is checked against the kernel's C
  parameter types (reported by the compiled code itself), so a float64
  array for a ``float*`` or a Python int (passed as ``long long``, as CuPy
  does) for an ``int`` raises ``TypeError``, where a real launch would
  silently misread memory;
* **out-of-bounds indices** (``checked=True``, the default): each pointer
  parameter knows its array's size, and ``x[i]`` outside the array raises
  ``LaunchError`` naming the kernel, the buffer and the index, before the
  access happens;
* **barriers**: threads that use ``__syncthreads()`` run as fibers that
  really wait for each other; a divergent barrier, ``__trap()`` or a
  deadlocked warp collective raise ``LaunchError`` instead of hanging;
* **uninitialized shared memory**: static and dynamic ``__shared__`` arrays
  are filled with 0xff bytes (NaN as floats) at the start of each block.

Kernels without barriers run their threads as plain calls (fast); the
rest as fibers (see ``runtime.cpp``). ``order="reverse"`` or ``"shuffle"``
changes the order threads run between barriers, which exposes a missing
``__syncthreads()``. What it does not model: floating point is libm's, not
the GPU's fast intrinsics (a few ulps apart; no flush-to-zero), and races
between barriers mostly stay invisible (threads run to completion one at a
time). Linux only (fibers switch stacks by hand on x86-64, with
``ucontext`` elsewhere). Building a module (``build.py``) takes a few
tenths of a second and is cached on disk.
"""

from __future__ import annotations

import ctypes
from typing import Any, Sequence

import numpy as np

from fgrad.lowering.cuda.emulator.build import Built, CompileError, build, cache_dir


class LaunchError(RuntimeError):
    """A launch failed inside the kernel (out of bounds, divergent barrier, ``__trap``)."""


class _LaunchConfig(ctypes.Structure):
    # the layout of fgemu::LaunchConfig in abi.h
    _fields_ = [("grid", ctypes.c_uint * 3), ("block", ctypes.c_uint * 3),
                ("shared_bytes", ctypes.c_size_t), ("fibers", ctypes.c_int),
                ("workers", ctypes.c_int), ("stack_kib", ctypes.c_size_t),
                ("strict", ctypes.c_int), ("order", ctypes.c_int)]


class _CheckedPtr(ctypes.Structure):
    # the layout of fgemu::checked_ptr<T> in cuda_shim.h
    _fields_ = [("base", ctypes.c_void_p), ("offset", ctypes.c_longlong),
                ("size", ctypes.c_longlong), ("name", ctypes.c_char_p)]


_C_NAMES = {"b1": "bool", "f2": "half", "f4": "float", "f8": "double", "i1": "signed char",
            "i2": "short", "i4": "int", "i8": "long long", "u1": "unsigned char",
            "u2": "unsigned short", "u4": "unsigned int", "u8": "unsigned long long"}
_ORDERS = {"forward": 0, "reverse": 1, "shuffle": 2}


def _dtype_code(dtype: np.dtype) -> str:
    """A numpy dtype in the shim's type code: kind (f, i, u, b, or o) and byte size."""
    kind = dtype.kind if dtype.kind in "fiub" else "o"
    return f"{kind}{dtype.itemsize}"


def _c_name(code: str) -> str:
    return _C_NAMES.get(code, f"a {code[1:]}-byte struct" if code != "o0" else "void")


class RawKernel:
    """One ``__global__`` function of a ``RawModule``; call it to launch."""

    def __init__(self, module: RawModule, name: str) -> None:
        lib = module._lib
        self.module, self.name = module, name
        self._thunk = ctypes.cast(getattr(lib, f"fgemu_thunk_{name}"), ctypes.c_void_p)
        signature = getattr(lib, f"fgemu_signature_{name}")
        signature.restype = ctypes.c_char_p
        # per parameter: "p:f4" (pointer to float), "c:f4" (checked pointer) or "i4" (int)
        self.param_codes = tuple(filter(None, signature().decode().split(",")))
        self.param_names = module.built.params[name]
        self.needs_fibers = module.built.needs_fibers[name]

    def __call__(self, grid: int | Sequence[int], block: int | Sequence[int],
                 args: Sequence[Any], *, shared_mem: int = 0, fibers: bool | None = None,
                 order: str | None = None, strict: bool | None = None,
                 workers: int | None = None) -> None:
        """Launch on a ``grid`` of ``block``-sized blocks (each up to 3-D)."""
        if len(args) != len(self.param_codes):
            raise TypeError(f"kernel {self.name}: takes {len(self.param_codes)} arguments "
                            f"({', '.join(self.param_names)}), got {len(args)}")
        keep = [self._convert(i, a) for i, a in enumerate(args)]  # alive until the call returns
        pointers = (ctypes.c_void_p * max(1, len(keep)))(
            *[ctypes.cast(ctypes.pointer(c), ctypes.c_void_p) for c in keep])
        m = self.module
        config = _LaunchConfig(
            (ctypes.c_uint * 3)(*_dims(grid, "grid")), (ctypes.c_uint * 3)(*_dims(block, "block")),
            shared_mem, int(self.needs_fibers if fibers is None else fibers),
            workers or m.workers, m.stack_kib, int(m.strict if strict is None else strict),
            _ORDERS[order or m.order])
        error = ctypes.create_string_buffer(1024)
        if m._launch(self._thunk, pointers, ctypes.byref(config), error, len(error)):
            raise LaunchError(f"kernel {self.name}: {error.value.decode()}")

    def _convert(self, i: int, arg: Any) -> Any:
        """Argument ``i`` as the ctypes value the kernel parameter expects (checked)."""
        code, name = self.param_codes[i], self.param_names[i]
        where = f"kernel {self.name}: argument {i} ({name})"
        if code[1] == ":":  # a pointer parameter
            pointee = code[2:]
            if not isinstance(arg, np.ndarray):
                raise TypeError(f"{where}: the parameter is {_c_name(pointee)}*, which needs a "
                                f"numpy array, got {type(arg).__name__}")
            if not arg.flags.c_contiguous:
                raise TypeError(f"{where}: the array must be C-contiguous")
            if pointee != "o0" and _dtype_code(arg.dtype) != pointee:
                raise TypeError(f"{where}: the parameter is {_c_name(pointee)}*, got a "
                                f"{arg.dtype} array (a real launch would misread it)")
            if code[0] == "c":
                return _CheckedPtr(arg.ctypes.data, 0, arg.size, name.encode())
            return ctypes.c_void_p(arg.ctypes.data)
        if isinstance(arg, np.ndarray):
            raise TypeError(f"{where}: the parameter is {_c_name(code)}, got an array")
        # Python scalars are passed as CuPy passes them: bool, long long, double
        if isinstance(arg, (bool, int, float)):
            arg = np.bool_(arg) if isinstance(arg, bool) else (
                np.int64(arg) if isinstance(arg, int) else np.float64(arg))
        if not isinstance(arg, np.generic):
            raise TypeError(f"{where}: cannot pass a {type(arg).__name__} to a kernel")
        if _dtype_code(arg.dtype) != code:
            raise TypeError(f"{where}: the parameter is {_c_name(code)}, got {arg.dtype} (a "
                            f"real launch would misread it; pass a numpy scalar of that type)")
        return ctypes.create_string_buffer(arg.tobytes(), 8)


def _dims(d: int | Sequence[int], what: str) -> tuple[int, int, int]:
    dims = (d,) if isinstance(d, (int, np.integer)) else tuple(d)
    if not 1 <= len(dims) <= 3 or any(int(x) < 0 for x in dims):
        raise ValueError(f"launch: {what} must be 1 to 3 non-negative sizes, got {d!r}")
    return tuple(int(x) for x in dims) + (1,) * (3 - len(dims))  # type: ignore[return-value]


class RawModule:
    """A CUDA C source compiled for the CPU (the emulator's ``cupy.RawModule``).

    Args:
      code: the CUDA C translation unit (kernels declared ``extern "C" __global__``).
      options: NVRTC-style options; only ``-D`` defines apply here.
      checked: bounds-check every pointer parameter (slower by a compare per access).
      order: thread order between barriers: ``"forward"``, ``"reverse"``, ``"shuffle"``.
      strict: make a barrier reached after some threads of the block exited an error.
      workers: OS threads running blocks in parallel.
      stack_kib: stack size of each fiber.

    Raises:
      CompileError: the host compiler rejected the source (its log is the message).
    """

    def __init__(self, code: str, options: Sequence[str] = (), *, checked: bool = True,
                 order: str = "forward", strict: bool = False, workers: int = 1,
                 stack_kib: int = 64) -> None:
        if order not in _ORDERS:
            raise ValueError(f"RawModule: order must be one of {list(_ORDERS)}, got {order!r}")
        self.code = code
        defines = tuple(o for o in options if o.startswith("-D"))
        self.built: Built = build(code, checked=checked, defines=defines)
        self._lib = ctypes.CDLL(str(self.built.path))
        self._launch = ctypes.CDLL(str(self.built.runtime)).fgemu_launch
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p),
                                 ctypes.POINTER(_LaunchConfig), ctypes.c_char_p, ctypes.c_size_t]
        self.order, self.strict, self.workers, self.stack_kib = order, strict, workers, stack_kib
        self._kernels: dict[str, RawKernel] = {}

    def get_function(self, name: str) -> RawKernel:
        if name not in self._kernels:
            if name not in self.built.kernels:
                raise AttributeError(f"RawModule: no kernel named {name!r}; the source "
                                     f"defines {list(self.built.kernels)}")
            self._kernels[name] = RawKernel(self, name)
        return self._kernels[name]


__all__ = ["CompileError", "LaunchError", "RawKernel", "RawModule", "cache_dir"]
