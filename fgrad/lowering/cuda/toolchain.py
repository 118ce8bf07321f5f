"""Compiling generated CUDA C without a GPU: NVRTC (or ``nvcc``) to PTX, ``ptxas`` to SASS.

No driver and no device are needed for either step, so every CI run can
check that each kernel fgrad generates is valid CUDA and fits the hardware:

* ``compile_ptx(source, arch)``: CUDA C -> PTX text with NVRTC, the
  compiler cupy uses on a GPU machine (same front end, same missing
  headers), loaded with ctypes from the pip package ``nvidia-cuda-nvrtc``
  (or a system ``libnvrtc``); without it, ``nvcc -ptx``.
* ``assemble(ptx, arch)``: ``ptxas -arch=<arch> -v``, parsed into each
  kernel's ``KernelResources`` (registers, shared memory, stack, spills).
* errors raise ``CudaCompileError`` with the compiler's log and the
  numbered source lines around each line it complains about.

Versions: PTX is versioned, and ``ptxas`` rejects PTX newer than itself
("Unsupported .version 9.5"), so NVRTC must not be newer than ``ptxas``
(pin ``nvidia-cuda-nvrtc`` to the local toolkit's major.minor). Where to
find things: ``FGRAD_NVRTC`` (path of libnvrtc), ``FGRAD_PTXAS`` and
``FGRAD_NVCC`` override the search, which looks in the ``nvidia`` pip
packages, then on ``PATH`` and in ``/usr/local/cuda``.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import glob
import os
import re
import shutil
import subprocess
import tempfile
from typing import Any, Sequence

from fgrad.lowering.cuda.render import OPTIONS


class CudaCompileError(RuntimeError):
    """A compiler rejected generated code: its log, then the source lines it points at."""

    def __init__(self, tool: str, log: str, source: str) -> None:
        self.tool, self.log, self.source = tool, log, source
        super().__init__(f"{tool} failed:\n{log.strip()}\n{_context(log, source)}")


def _context(log: str, source: str, around: int = 3) -> str:
    """The numbered source lines around the (first five) lines the log has errors on."""
    lines = source.splitlines()
    pattern = r"\((\d+)\): (?:catastrophic )?error|line (\d+); error"  # NVRTC/nvcc, ptxas
    wanted = sorted({int(x) for pair in re.findall(pattern, log) for x in pair if x})
    shown: list[str] = []
    for n in wanted[:5]:
        lo, hi = max(1, n - around), min(len(lines), n + around)
        shown.append("\n".join(f"{'>' if k == n else ' '}{k:6d} | {lines[k - 1]}"
                               for k in range(lo, hi + 1)))
    return "\n  ...\n".join(shown)


# --- finding the tools ------------------------------------------------------------------------

def _pip_nvidia(pattern: str) -> list[str]:
    """Files matching ``pattern`` in the ``nvidia`` pip packages (cu13/lib, cuda_nvrtc/lib ...)."""
    try:
        import nvidia  # type: ignore[import-untyped,import-not-found]  # the wheels' namespace
    except ImportError:
        return []
    return sorted(f for root in nvidia.__path__ for f in glob.glob(os.path.join(root, pattern)))


@functools.cache
def _nvrtc() -> Any:
    """The loaded libnvrtc (a ``ctypes.CDLL``), or None."""
    candidates = [os.environ.get("FGRAD_NVRTC", "")] + _pip_nvidia("*/lib/libnvrtc.so*") + \
        ["libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so"]
    for path in candidates:
        if not path or "builtins" in path or ".alt." in path:
            continue
        try:
            # libnvrtc dlopens libnvrtc-builtins by name: load it first from the same folder
            for builtins in glob.glob(os.path.join(os.path.dirname(path), "libnvrtc-builtins.so*")):
                if ".alt." not in builtins:
                    ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        return lib
    return None


@functools.cache
def _tool(name: str) -> str | None:
    found = [os.environ.get(f"FGRAD_{name.upper()}", "")] + _pip_nvidia(f"*/bin/{name}") + \
        [shutil.which(name) or "", f"/usr/local/cuda/bin/{name}"]
    return next((p for p in found if p and os.access(p, os.X_OK)), None)


def nvrtc_version() -> tuple[int, int] | None:
    """NVRTC's (major, minor), or None when no libnvrtc can be loaded."""
    lib = _nvrtc()
    if lib is None:
        return None
    major, minor = ctypes.c_int(), ctypes.c_int()
    lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return major.value, minor.value


def ptxas_path() -> str | None:
    return _tool("ptxas")


def nvcc_path() -> str | None:
    return _tool("nvcc")


def available() -> bool:
    """True when CUDA C can be compiled to PTX and assembled here."""
    return (nvrtc_version() is not None or nvcc_path() is not None) and ptxas_path() is not None


def missing() -> str:
    """What is missing for ``available()``, as advice ('' when nothing is)."""
    parts = []
    if nvrtc_version() is None and nvcc_path() is None:
        parts.append("no NVRTC and no nvcc: pip install 'nvidia-cuda-nvrtc==13.0.*' (the "
                     "version of your ptxas), or set FGRAD_NVRTC to a libnvrtc.so")
    if ptxas_path() is None:
        parts.append("no ptxas: install the CUDA toolkit, or pip install "
                     "'nvidia-cuda-nvcc==13.0.*', or set FGRAD_PTXAS")
    return "; ".join(parts)


# --- compiling ----------------------------------------------------------------------------------

def compile_ptx(source: str, arch: str = "sm_80", options: Sequence[str] = OPTIONS) -> str:
    """PTX for ``source`` (one translation unit) targeting ``arch`` ("sm_80", "sm_90", ...)."""
    virtual = arch.replace("sm_", "compute_")
    if _nvrtc() is not None:
        return _nvrtc_ptx(source, [f"--gpu-architecture={virtual}", *options])
    nvcc = nvcc_path()
    if nvcc is None:
        raise RuntimeError(f"cuda toolchain: cannot compile CUDA C: {missing()}")
    with tempfile.TemporaryDirectory() as tmp:
        src, out = os.path.join(tmp, "fgrad.cu"), os.path.join(tmp, "fgrad.ptx")
        with open(src, "w") as f:
            f.write(source)
        done = subprocess.run([nvcc, "-ptx", f"-arch={virtual}", *options, src, "-o", out],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise CudaCompileError("nvcc", done.stderr.replace(src, "fgrad.cu"), source)
        with open(out) as f:
            return f.read()


def _nvrtc_ptx(source: str, options: Sequence[str]) -> str:
    lib = _nvrtc()
    prog = ctypes.c_void_p()

    def check(status: int, what: str) -> None:
        if status != 0:
            raise RuntimeError(f"NVRTC {what}: {lib.nvrtcGetErrorString(status).decode()}")

    check(lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"fgrad.cu", 0, None,
                                 None), "nvrtcCreateProgram")
    try:
        opts = (ctypes.c_char_p * len(options))(*[o.encode() for o in options])
        status = lib.nvrtcCompileProgram(prog, len(options), opts)
        size = ctypes.c_size_t()
        check(lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size)), "nvrtcGetProgramLogSize")
        log = ctypes.create_string_buffer(size.value)
        check(lib.nvrtcGetProgramLog(prog, log), "nvrtcGetProgramLog")
        if status != 0:
            raise CudaCompileError("NVRTC", log.value.decode(errors="replace"), source)
        check(lib.nvrtcGetPTXSize(prog, ctypes.byref(size)), "nvrtcGetPTXSize")
        ptx = ctypes.create_string_buffer(size.value)
        check(lib.nvrtcGetPTX(prog, ptx), "nvrtcGetPTX")
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


# --- assembling ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class KernelResources:
    """What ``ptxas -v`` reports for one kernel (bytes unless said otherwise)."""

    name: str
    registers: int = 0           # per thread
    shared_bytes: int = 0        # static shared memory per block
    stack_bytes: int = 0         # stack frame per thread
    spill_stores: int = 0
    spill_loads: int = 0
    barriers: int = 0            # named barriers used (1 with __syncthreads)


_RESOURCE_FIELDS = [(r"Used (\d+) registers", "registers"), (r"(\d+) bytes smem", "shared_bytes"),
                    (r"(\d+) bytes stack frame", "stack_bytes"),
                    (r"(\d+) bytes spill stores", "spill_stores"),
                    (r"(\d+) bytes spill loads", "spill_loads"),
                    (r"used (\d+) barriers", "barriers")]


def assemble(ptx: str, arch: str = "sm_80") -> dict[str, KernelResources]:
    """Assemble ``ptx`` for ``arch`` with ``ptxas -v``; each entry function's resources."""
    ptxas = ptxas_path()
    if ptxas is None:
        raise RuntimeError(f"cuda toolchain: cannot assemble PTX: {missing()}")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "fgrad.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        done = subprocess.run([ptxas, f"-arch={arch}", "-v", src, "-o",
                               os.path.join(tmp, "fgrad.cubin")], capture_output=True, text=True)
    log = done.stdout + done.stderr
    if done.returncode != 0:
        hint = ""
        if "Unsupported .version" in log:
            hint = (f"\n(NVRTC {nvrtc_version()} emits PTX newer than this ptxas accepts: pin "
                    "nvidia-cuda-nvrtc to the ptxas version, e.g. 'nvidia-cuda-nvrtc==13.0.*')")
        raise CudaCompileError("ptxas", log.replace(src, "fgrad.ptx") + hint, ptx)
    return _parse_resources(log)


def _parse_resources(log: str) -> dict[str, KernelResources]:
    found: dict[str, dict[str, int]] = {}
    current: dict[str, int] | None = None
    for line in log.splitlines():
        entry = re.search(r"Compiling entry function '(\w+)'", line)
        if entry:
            current = found.setdefault(entry.group(1), {})
            continue
        if re.search(r"Function properties for (\w+)", line):
            continue  # the properties lines that follow belong to the current entry
        if re.search(r"Compiling (?!entry)", line):
            current = None  # a non-inlined device function: not a kernel
        for pattern, field in _RESOURCE_FIELDS:
            m = re.search(pattern, line)
            if m and current is not None:
                current[field] = int(m.group(1))
    return {name: KernelResources(name, **fields) for name, fields in found.items()}


def check_module(source: str, archs: Sequence[str] = ("sm_80", "sm_90"),
                 options: Sequence[str] = OPTIONS) -> dict[str, dict[str, KernelResources]]:
    """Compile and assemble ``source`` for each arch: {arch: {kernel: resources}}."""
    return {arch: assemble(compile_ptx(source, arch, options), arch) for arch in archs}


__all__ = ["CudaCompileError", "KernelResources", "compile_ptx", "assemble", "check_module",
           "available", "missing", "nvrtc_version", "ptxas_path", "nvcc_path"]
