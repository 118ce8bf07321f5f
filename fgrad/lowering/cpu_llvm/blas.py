"""The BLAS that compiled programs call: scipy's, found at run time and named for the JIT.

``scipy.linalg.cython_blas`` exports ``sgemm``/``dgemm`` as PyCapsules holding
function pointers (Fortran ABI: every argument by pointer); ``register``
makes them the symbols ``fgrad_sgemm``/``fgrad_dgemm`` that rendered modules
call. numpy bundles a BLAS too, but exports no pointer to it.

Threads: OpenBLAS splits even a small product across its threads, and its
idle threads then spin for a while, taking a core from whatever runs next;
on a machine with two cores and other work, the calling thread also waits
whenever the second thread is not scheduled. Measured here, the MLP step of
``bench/cpu_jit.py`` (products up to 5e7 multiply-adds) took 3-90 ms with two
threads against 5 ms with one. So products below ``SMALL_GEMM`` multiply-adds
(about 2.5 ms on one core) run on the calling thread alone: when the library
offers ``openblas_set_num_threads_local`` (OpenBLAS >= 0.3.27: a count for
the calling thread only), programs set one thread around them
(``fgrad_blas_threads``). With another BLAS they do not.
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os

import llvmlite.binding as llvm

SMALL_GEMM = 1 << 27  # multiply-adds; larger products amortize a second thread


def _capsule_address(name: str) -> int:
    from scipy.linalg import cython_blas
    capsule = cython_blas.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
    get_pointer = ctypes.pythonapi.PyCapsule_GetPointer
    get_pointer.restype = ctypes.c_void_p
    get_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return int(get_pointer(capsule, get_name(capsule)))


@functools.lru_cache(maxsize=None)
def _threads_address() -> int | None:
    """``openblas_set_num_threads_local`` of the OpenBLAS scipy's wheel bundles, if any."""
    import scipy
    libs = os.path.join(os.path.dirname(scipy.__file__), os.pardir, "scipy.libs")
    for path in glob.glob(os.path.join(libs, "libscipy_openblas*.so*")):
        fn = getattr(ctypes.CDLL(path), "openblas_set_num_threads_local", None)
        if fn is not None:
            return ctypes.cast(fn, ctypes.c_void_p).value
    return None


def has_thread_control() -> bool:
    return _threads_address() is not None


@functools.lru_cache(maxsize=None)
def register() -> None:
    """Make the BLAS entry points known to the JIT under fgrad's names (once)."""
    for name in ("sgemm", "dgemm"):
        llvm.add_symbol(f"fgrad_{name}", _capsule_address(name))
    address = _threads_address()
    if address is not None:
        llvm.add_symbol("fgrad_blas_threads", address)


__all__ = ["register", "has_thread_control", "SMALL_GEMM"]
