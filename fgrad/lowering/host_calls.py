"""Host calls: a few primitives run their numpy implementation, called from native code.

The LAPACK factorizations (``cholesky``, ``lu``, ``triangular_solve``) and the
stable ``argsort`` spend their time inside LAPACK or numpy's sort, so the
compiled program does not re-implement them: its entry point calls back into
Python through a ctypes function pointer, which wraps the buffers as numpy
arrays (no copy), runs the primitive's ``impl`` and writes the results into
the output buffers. The call is visible in the program (``host_call``) and
costs a few microseconds; everything around it stays native.

A Python exception inside a callback cannot cross the native frames, so it
is stored and re-raised by the runtime as soon as the entry point returns.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Sequence

import numpy as np

from fgrad.lowering.kernel_ir import Param
from fgrad.lowering.schedule import Buffer, Lazy, LibraryCall, Scheduler, buffer_value

CALLBACK = ctypes.CFUNCTYPE(None, ctypes.POINTER(ctypes.c_void_p))
_callbacks: dict[str, Any] = {}     # symbol -> ctypes callback (kept alive)
_errors = threading.local()         # the exception a callback raised, for the runtime


def view(address: int, buf: Buffer | Param, shape: Sequence[int]) -> np.ndarray:
    """The buffer at ``address`` as a numpy array (no copy)."""
    dtype = np.dtype(buf.dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes == 0:
        return np.zeros(shape, dtype)
    raw = (ctypes.c_char * nbytes).from_address(address)
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def run_impl(call: LibraryCall, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The primitive's numpy ``impl`` on the input arrays; its outputs as a list."""
    from fgrad.core.primitive import all_primitives
    prim = all_primitives()[call.param("primitive")]
    n_in = call.param("n_inputs")
    out = prim.impl(*arrays[:n_in], **dict(call.param("params")))
    return list(out) if prim.multiple_results else [out]


def make_callback(call: LibraryCall, buffers: dict[str, Buffer]) -> tuple[str, int]:
    """A native-callable function running ``call``; returns (symbol, address)."""
    bufs = [buffers[name] for name in call.args]
    shapes = call.param("shapes")
    n_in = call.param("n_inputs")

    def callback(pointers: Any) -> None:
        try:
            arrays = [view(pointers[i], b, shape)
                      for i, (b, shape) in enumerate(zip(bufs, shapes))]
            results = run_impl(call, arrays[:n_in])
            for target, result in zip(arrays[n_in:], results):
                target[...] = np.asarray(result, dtype=target.dtype)
        except BaseException as e:  # noqa: BLE001  (re-raised by the runtime after the call)
            _errors.error = e

    symbol = f"fgrad_host_{len(_callbacks)}"
    fn = CALLBACK(callback)
    _callbacks[symbol] = fn
    return symbol, ctypes.cast(fn, ctypes.c_void_p).value or 0


def raise_pending() -> None:
    """Re-raise the exception a host call stored during the last native call, if any."""
    error = getattr(_errors, "error", None)
    if error is not None:
        _errors.error = None
        raise error


def host_rule(name: str) -> Any:
    """A lowering rule: materialize the operands and emit a ``host_call`` of ``name``."""
    def rule(s: Scheduler, *operands: Lazy, **params: Any) -> Any:
        from fgrad.core.avals import ShapedArray
        from fgrad.core.primitive import all_primitives
        prim = all_primitives()[name]
        ins = [s.materialize(x, name=f"{name}_operand") for x in operands]
        in_avals = [ShapedArray(x.shape, x.dtype) for x in operands]
        out_avals = prim.abstract_eval(*in_avals, **params)
        out_avals = list(out_avals) if prim.multiple_results else [out_avals]
        outs = [s.new_buffer(a.shape, a.dtype) for a in out_avals]
        names = [x.buffer.name for x in ins] + [o.name for o in outs]  # type: ignore[union-attr]
        shapes = tuple(x.shape for x in ins) + tuple(o.shape for o in outs)
        s.steps.append(LibraryCall("host_call", tuple(names), (
            ("primitive", name), ("n_inputs", len(ins)), ("params", tuple(params.items())),
            ("shapes", shapes))))
        values = [buffer_value(o) for o in outs]
        return values if prim.multiple_results else values[0]
    return rule


RULES = {name: host_rule(name) for name in ("cholesky", "lu", "triangular_solve", "argsort")}

__all__ = ["RULES", "make_callback", "raise_pending", "run_impl", "view"]
