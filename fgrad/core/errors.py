"""Error types, with JAX's names, and helpers that build their messages.

Every message names the operation, the shapes and dtypes involved and, for
tracer errors, what to write instead. Shape and dtype errors are raised by
shape rules (``abstract_eval``), so eager code, ``jit`` and every transform
report the same text.
"""

from __future__ import annotations

from typing import Any


class FgradTypeError(TypeError):
    """Base class of fgrad's type errors (wrong dtype or shape for an operation)."""


class ConcretizationTypeError(FgradTypeError):
    """A concrete Python value was needed, but only an abstract tracer was available."""


class TracerBoolConversionError(ConcretizationTypeError):
    """``bool(tracer)``, e.g. a Python ``if`` on a traced value."""


class TracerIntegerConversionError(ConcretizationTypeError):
    """``int(tracer)`` or ``tracer.__index__()``, e.g. ``range(tracer)``."""


class TracerArrayConversionError(FgradTypeError):
    """``numpy.asarray(tracer)``: numpy cannot compute on traced values."""


class NonConcreteBooleanIndexError(FgradTypeError):
    """Boolean-mask indexing with a traced mask: the result shape would depend on data."""


class UnexpectedTracerError(Exception):
    """A tracer escaped the transform that created it (a "leaked" tracer)."""


class JaxprTypeError(TypeError):
    """A jaxpr failed ``typecheck_jaxpr``: an internal invariant was broken."""


def describe(x: Any) -> str:
    """``f32[3,4]`` for anything with an aval, else the Python type name."""
    from fgrad.core.avals import get_aval

    try:
        return get_aval(x).str_short()
    except Exception:
        return type(x).__name__


def shapes_message(op: str, what: str, *avals: Any) -> str:
    """``add: incompatible shapes f32[3] and f32[4]``-style message body."""
    return f"{op}: {what} " + " and ".join(str(a) for a in avals)


_CONCRETIZATION_FIX = (
    "This happens when Python control flow or a numpy conversion sees a value that is "
    "being traced (under jit, make_jaxpr, vmap, or a staged transform): its value is not "
    "known yet, only its shape and dtype.\n"
    "Fixes:\n"
    "  - for a branch on a traced value, use fgrad.lax.cond (or fgrad.numpy.where);\n"
    "  - for a loop bounded by a traced value, use fgrad.lax.while_loop or fori_loop;\n"
    "  - if the value is really a compile-time constant, mark the argument static: "
    "jit(f, static_argnums=...) or static_argnames=...;\n"
    "  - for shapes, read x.shape (always concrete) instead of computing them from values."
)


def concretization_message(what: str, aval_str: str, context: str = "") -> str:
    ctx = f" ({context})" if context else ""
    return (f"{what} was called on an abstract tracer{ctx} of type {aval_str}.\n"
            + _CONCRETIZATION_FIX)


# --- traceback filtering ------------------------------------------------------------------
# An error raised deep inside a transform would show dozens of fgrad-internal frames
# between the user's call and the user's line that caused it. Like JAX, the public
# transforms hide those frames (set FGRAD_TRACEBACK_FILTERING=off to see everything).

import functools as _functools  # noqa: E402
import os as _os  # noqa: E402
from types import TracebackType as _TracebackType  # noqa: E402
from typing import Callable as _Callable, TypeVar as _TypeVar  # noqa: E402

_FGRAD_DIR = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
_F = _TypeVar("_F", bound=_Callable[..., Any])


def _is_internal(tb: _TracebackType) -> bool:
    return tb.tb_frame.f_code.co_filename.startswith(_FGRAD_DIR)


def filter_traceback(tb: _TracebackType | None) -> _TracebackType | None:
    """``tb`` without fgrad's own frames (the raising frame is kept if all are internal)."""
    kept = []
    last = None
    while tb is not None:
        if not _is_internal(tb):
            kept.append(tb)
        last = tb
        tb = tb.tb_next
    if not kept:
        return last
    for a, b in zip(kept, kept[1:]):
        a.tb_next = b
    kept[-1].tb_next = None
    return kept[0]


def api_boundary(fun: _F) -> _F:
    """Decorator for public entry points: hide fgrad-internal frames from tracebacks."""
    @_functools.wraps(fun)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fun(*args, **kwargs)
        except Exception as e:
            if _os.environ.get("FGRAD_TRACEBACK_FILTERING", "on") == "off":
                raise
            if not getattr(e, "_fgrad_filtered", False):
                try:
                    e._fgrad_filtered = True  # type: ignore[attr-defined]
                    e.add_note("(fgrad-internal stack frames are hidden; set "
                               "FGRAD_TRACEBACK_FILTERING=off to show them)")
                except (AttributeError, TypeError):
                    pass
            raise e.with_traceback(filter_traceback(e.__traceback__))
    return wrapper  # type: ignore[return-value]
