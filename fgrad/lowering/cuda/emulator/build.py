"""Building CUDA C source as a host shared library: the compile half of the emulator.

Two kinds of libraries are built with the host C++ compiler (g++ by default):

* the **runtime** (``runtime.cpp``: the thread scheduler), once per cache;
* one **module** per CUDA source: ``build(source)`` reads the source, rewrites
  what is not C++ once the shim's macros apply, and compiles it with
  ``-include cuda_shim.h``, linked against the runtime.

Reading the source finds each ``__global__`` kernel, its parameter names,
and whether it needs fibers (it, or a ``__device__`` function it calls, has
a barrier or a warp collective). The rewrites are few:
``extern __shared__ T s[];`` (dynamic shared memory) becomes a pointer to
the block's buffer, and in a checked build each kernel's pointer parameters
``T* __restrict__ x`` become ``fgemu::checked_ptr<T> x`` (bounds-checked, see
cuda_shim.h). Kernel bodies are never touched: ``x[i]`` stays ``x[i]``, so
what runs is the text NVRTC compiles, with only the pointer types changed.
One ``FGEMU_EXPORT(name)`` line per kernel is appended.

Compile time is what the emulator's tests wait on, so: the scheduler lives
in the runtime, not in every module; the shim is precompiled (a ``.gch``
beside a copy of it); ``-O1`` compiles about as fast as ``-O0`` and runs
several times faster than it. A module then takes about 0.1 s of CPU (and
the compiler's process start-up). Everything is cached on disk by a hash of
what affects it (rewritten source, headers, compiler and version, flags),
in ``$FGRAD_CACHE_DIR/cuda_emulator`` (default ``~/.cache/fgrad``; the temp
directory when that is not writable). Files are written under temporary
names and renamed, so concurrent processes (pytest-xdist) share the cache.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
SHIM, ABI, RUNTIME = "cuda_shim.h", "abi.h", "runtime.cpp"
FLAGS = ("-std=c++17", "-O1", "-fPIC", "-fno-fast-math", "-ffp-contract=off", "-w")

_KERNEL_RE = re.compile(
    r"__global__\s+(?:__launch_bounds__\s*\([^)]*\)\s*)?void\s+"
    r"(?:__launch_bounds__\s*\([^)]*\)\s*)?(\w+)\s*\(")
# a function's qualifiers and return type (skipping __launch_bounds__(...)), then its name
_FUNCTION_RE = re.compile(r"(?:__global__|__device__)(?:[^;{}()]|__launch_bounds__\s*\([^)]*\))*?"
                          r"\b(?!__launch_bounds__)(\w+)\s*\(")
_COMMENT_RE = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_EXTERN_SHARED_RE = re.compile(
    r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?([A-Za-z_][\w ]*?)\s+"
    r"(?:__align__\s*\(\s*\d+\s*\)\s*)?(\w+)\s*\[\s*\]\s*;")
_SHARED_RE = re.compile(r"(?<!extern )\b__shared__\s+([^;{}()]*);")
_POINTER_PARAM_RE = re.compile(
    r"^(?P<type>[A-Za-z_][\w ]*?)\s*\*\s*(?:__restrict__\s*|__restrict\s*)?(?P<name>[A-Za-z_]\w*)$")
_BARRIER_RE = re.compile(r"__syncthreads|__syncwarp|__shfl|__ballot_sync|__any_sync|__all_sync")


class CompileError(RuntimeError):
    """The host compiler rejected the CUDA source (the message holds its log)."""


@dataclasses.dataclass(frozen=True)
class Built:
    """A compiled module: the shared library and what was learned from the source."""

    path: Path
    runtime: Path                        # the runtime library the module is linked against
    kernels: tuple[str, ...]
    params: dict[str, tuple[str, ...]]   # kernel -> parameter names, in order
    needs_fibers: dict[str, bool]        # kernel -> has barriers or warp collectives
    checked: bool


# --- reading the source ---------------------------------------------------------------------

def blank_comments(code: str) -> str:
    """``code`` with every comment replaced by spaces (line numbers and offsets kept), so
    that brackets and keywords inside comments do not confuse the reading below."""
    return _COMMENT_RE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), code)


def _matching(code: str, start: int, open_: str, close: str) -> int:
    """Index just past the bracket that closes the one at ``start``."""
    depth = 0
    for k in range(start, len(code)):
        if code[k] == open_:
            depth += 1
        elif code[k] == close:
            depth -= 1
            if depth == 0:
                return k + 1
    raise CompileError(f"unbalanced '{open_}' in the CUDA source at offset {start}")


def _split_params(text: str) -> list[str]:
    """Top-level comma-separated parameters (commas inside brackets do not split)."""
    parts, depth, last = [], 0, 0
    for k, ch in enumerate(text):
        if ch in "(<[":
            depth += 1
        elif ch in ")>]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[last:k])
            last = k + 1
    parts.append(text[last:])
    return [p.strip() for p in parts if p.strip() and p.strip() != "void"]


def _function_bodies(code: str) -> dict[str, str]:
    """Name -> body text of every ``__global__`` / ``__device__`` function defined."""
    bodies: dict[str, str] = {}
    for m in _FUNCTION_RE.finditer(code):
        after_params = _matching(code, m.end() - 1, "(", ")")
        brace = code.find("{", after_params)
        if brace < 0 or ";" in code[after_params:brace]:
            continue  # a declaration, not a definition
        bodies[m.group(1)] = code[brace:_matching(code, brace, "{", "}")]
    return bodies


def needs_fibers(code: str, kernels: tuple[str, ...]) -> dict[str, bool]:
    """Which kernels reach a barrier, directly or through the functions they call."""
    code = blank_comments(code)
    bodies = _function_bodies(code)
    needs = {name: bool(_BARRIER_RE.search(body)) for name, body in bodies.items()}
    changed = True
    while changed:  # propagate through calls until nothing changes
        changed = False
        for name, body in bodies.items():
            if not needs[name] and any(needs[callee] and re.search(rf"\b{callee}\s*\(", body)
                                       for callee in bodies if callee != name):
                needs[name] = changed = True
    # a kernel we could not parse runs in fiber mode if the module has any barrier
    fallback = bool(_BARRIER_RE.search(code))
    return {k: needs.get(k, fallback) for k in kernels}


def _rewrite_signature(code: str, m: re.Match[str], checked: bool) -> tuple[str, list[str]]:
    """The kernel's parameter list (pointers checked if asked) and the parameter names."""
    end = _matching(code, m.end() - 1, "(", ")")
    params, names = [], []
    for p in _split_params(code[m.end():end - 1]):
        ptr = _POINTER_PARAM_RE.match(p)
        names.append(ptr.group("name") if ptr else re.findall(r"\w+", p)[-1])
        if checked and ptr:
            p = f"fgemu::checked_ptr<{ptr.group('type').strip()}> {ptr.group('name')}"
        params.append(p)
    return "(" + ", ".join(params) + ")", names


def _poison_shared(m: re.Match[str]) -> str:
    """A static ``__shared__`` declaration, then a call that poisons each declared array
    once per block (the first thread to pass the declaration does it), so a read before
    any thread of the block wrote shows as NaN (0xff bytes) instead of a stale value."""
    names = [re.findall(r"\w+", re.sub(r"\[.*", "", d))[-1] for d in _split_params(m.group(1))]
    return m.group(0) + "".join(f" fgemu_poison_shared(&{n}, sizeof({n}));" for n in names)


def preprocess(code: str, checked: bool) -> tuple[str, dict[str, tuple[str, ...]]]:
    """The source as host C++ (before the shim's macros) and each kernel's parameter names."""
    code = _EXTERN_SHARED_RE.sub(
        lambda m: f"{m.group(1)}* {m.group(2)} = ({m.group(1)}*)fgemu_dynamic_shared();", code)
    code = _SHARED_RE.sub(_poison_shared, code)
    out, names, pos = [], {}, 0
    for m in _KERNEL_RE.finditer(code):
        signature, params = _rewrite_signature(code, m, checked)
        out.append(code[pos:m.end() - 1] + signature)
        pos = _matching(code, m.end() - 1, "(", ")")
        names[m.group(1)] = tuple(params)
    out.append(code[pos:])
    return "".join(out), names


# --- compiling --------------------------------------------------------------------------------

def cache_dir() -> Path:
    """Where compiled modules are kept (created on first use)."""
    root = os.environ.get("FGRAD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fgrad")
    path = Path(root) / "cuda_emulator"
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    path = Path(tempfile.gettempdir()) / f"fgrad-cuda-emulator-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=None)
def compiler() -> tuple[str, str]:
    """The host C++ compiler (``$CXX``, else g++, else clang++) and its version line."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
    if cxx is None:
        raise CompileError("the CUDA emulator needs a host C++17 compiler: install g++ "
                           "(e.g. apt install g++) or set $CXX")
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    return cxx, version.splitlines()[0] if version else cxx


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _write_atomically(target: Path, produce: Callable[[Path], object]) -> None:
    """Create ``target`` via a process-private temporary name and a rename."""
    tmp = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        produce(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _write_text(target: Path, text: str) -> None:
    _write_atomically(target, lambda p: p.write_text(text))


def _run(cmd: list[str], what: str) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        raise CompileError(f"{what} failed ({' '.join(cmd[:1] + cmd[-3:])}):\n{r.stderr[-8000:]}")


def _runtime(cxx: str, version: str, d: Path) -> Path:
    """The runtime library (runtime.cpp: the thread scheduler), built once per cache."""
    texts = [(HERE / name).read_text() for name in (ABI, RUNTIME)]
    lib = d / f"runtime_{_digest(version, cxx, *FLAGS, *texts)}.so"
    if not lib.exists():
        _write_atomically(lib, lambda p: _run(
            [cxx, *FLAGS, "-O2", "-shared", "-pthread", str(HERE / RUNTIME), "-o", str(p)],
            "building the emulator runtime"))
    return lib


def _precompiled_shim(cxx: str, version: str, flags: list[str], d: Path) -> Path:
    """The shim headers copied into the cache, with a precompiled ``.gch`` beside them
    (g++ uses it for ``-include`` when the flags match: half the time of a compile)."""
    texts = {name: (HERE / name).read_text() for name in (SHIM, ABI)}
    folder = d / f"shim_{_digest(version, cxx, *flags, *texts.values())}"
    if not (folder / f"{SHIM}.gch").exists():
        folder.mkdir(exist_ok=True)
        for name, text in texts.items():
            _write_text(folder / name, text)
        _write_atomically(folder / f"{SHIM}.gch", lambda p: _run(
            [cxx, *flags, "-I", str(folder), "-x", "c++-header", str(folder / SHIM), "-o", str(p)],
            "precompiling the CUDA shim"))
    return folder / SHIM


_lock = threading.Lock()


def build(code: str, *, checked: bool = True, defines: tuple[str, ...] = ()) -> Built:
    """Compile ``code`` (cached); ``defines`` are extra ``-D`` options."""
    code = blank_comments(code)
    kernels = tuple(dict.fromkeys(_KERNEL_RE.findall(code)))
    if not kernels:
        raise CompileError("the CUDA source defines no __global__ kernel")
    body, params = preprocess(code, checked)
    body = '#line 1 "kernel.cu"\n' + body + "\n" + "".join(f"FGEMU_EXPORT({k})\n" for k in kernels)
    cxx, version = compiler()
    flags = [*FLAGS, *defines]
    d = cache_dir()
    with _lock:
        runtime = _runtime(cxx, version, d)
        shim = _precompiled_shim(cxx, version, flags, d)
        so = d / f"k_{_digest(body, shim.parent.name, runtime.name)}.so"
        if not so.exists():
            source = so.with_suffix(".cu")
            _write_text(source, body)
            _write_atomically(so, lambda p: _run(
                [cxx, *flags, "-I", str(shim.parent), "-shared", "-include", str(shim),
                 "-x", "c++", str(source), "-x", "none", str(runtime), "-o", str(p)],
                f"compiling the CUDA source {source}"))
    return Built(so, runtime, kernels, params, needs_fibers(code, kernels), checked)


__all__ = ["Built", "CompileError", "build", "cache_dir", "compiler", "needs_fibers", "preprocess"]
