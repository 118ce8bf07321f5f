"""Traces and tracers: how one Python function can mean many things.

fgrad follows JAX's *stackless* design (Autodidax2). There is always exactly
one **current trace** (thread-local). ``prim.bind(*args)`` asks it to process
the primitive. A trace is an interpreter:

* ``EvalTrace`` (the default) computes with numpy: eager execution;
* ``JVPTrace`` (``transforms/jvp.py``) carries tangents along;
* ``StagingTrace`` (``staging.py``) records equations into a jaxpr;
* ``PartialEvalTrace`` (``transforms/partial_eval.py``) computes what it
  can and records the rest (the engine of ``linearize`` and ``grad``).

A transform wraps its inputs in its own **tracers**, makes its trace current
while the user's function runs, and sees every primitive the function binds.
Each non-eval trace has a **parent**: the trace that was current when the
transform started. When a rule needs to compute something "for real" it binds
primitives with the parent made current. Nested transforms therefore form a
linked list of traces, the stack of older designs without the level numbers.

A trace recognises its own tracers by identity (``x._trace is self``);
anything else (a constant, or a tracer of an outer transform) is treated as a
constant, which is what makes ``grad(grad(f))`` work without special cases.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from fgrad.core import dtypes, errors
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray

if TYPE_CHECKING:
    from fgrad.core.primitive import Primitive


class Trace:
    """An interpreter for primitives. Subclasses override ``process_primitive``."""

    parent: Trace | None = None
    _alive = True
    name = "trace"
    # Does this trace, or one of its ancestors, *record* operations on constants?
    # Only staging traces do. Every other trace (jvp, partial eval, vmap) hands an
    # operation whose inputs are all constants to its parent unchanged, so when no
    # ancestor records, ``Primitive.bind`` sends such operations straight to eager
    # evaluation instead of through each trace in turn.
    records_constants = True

    def process_primitive(self, prim: Primitive, args: tuple[Any, ...],
                          params: dict[str, Any]) -> Any:
        raise NotImplementedError

    def invalidate(self) -> None:
        """Called when the transform that owns this trace returns: its tracers are dead."""
        self._alive = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}"


class Tracer:
    """Stands for an array inside a transform. Knows its trace and its aval."""

    __slots__ = ("_trace",)
    __array_priority__ = 1000

    _trace: Trace

    @property
    def aval(self) -> ShapedArray:
        raise NotImplementedError

    # --- array attributes, all static: reading them never needs a value ---
    @property
    def shape(self) -> tuple[int, ...]:
        return self.aval.shape

    @property
    def dtype(self) -> np.dtype:
        return self.aval.dtype

    @property
    def ndim(self) -> int:
        return self.aval.ndim

    @property
    def size(self) -> int:
        return self.aval.size

    @property
    def weak_type(self) -> bool:
        return self.aval.weak_type

    def __len__(self) -> int:
        if not self.aval.shape:
            raise TypeError("len() of unsized object (a 0-d traced array)")
        return self.aval.shape[0]

    # --- conversions to Python values: only possible when a concrete value is known ---
    def to_concrete_value(self) -> Any:
        """The concrete value behind this tracer, or None if it is truly abstract.

        A JVP tracer of an eager computation knows its primal value, so a
        Python ``if x > 0:`` works under ``grad`` (as in JAX); a staging tracer
        knows nothing and raises instead.
        """
        return None

    def _concrete(self, what: str, error: type[Exception]) -> Any:
        value = self.to_concrete_value()
        if value is None:
            raise error(errors.concretization_message(what, self.aval.str_short(),
                                                      f"in {self._trace.name}"))
        return value

    def __bool__(self) -> bool:
        return bool(self._concrete("bool() (a Python `if`, `while`, `and`, `or` or `not`)",
                                   errors.TracerBoolConversionError))

    def __int__(self) -> int:
        return int(self._concrete("int()", errors.TracerIntegerConversionError))

    def __index__(self) -> int:
        return int(self._concrete("__index__() (using a value as an index or in range())",
                                  errors.TracerIntegerConversionError))

    # NOTE: float() and complex() raise even when a value is known (as in JAX): a
    # Python float silently cuts the value off from differentiation.
    def __float__(self) -> float:
        raise errors.ConcretizationTypeError(errors.concretization_message(
            "float()", self.aval.str_short(), f"in {self._trace.name}"))

    def __complex__(self) -> complex:
        raise errors.ConcretizationTypeError(errors.concretization_message(
            "complex()", self.aval.str_short(), f"in {self._trace.name}"))

    def item(self) -> Any:
        return np.asarray(self._concrete(".item()", errors.ConcretizationTypeError)).item()

    def tolist(self) -> Any:
        return np.asarray(self._concrete(".tolist()", errors.ConcretizationTypeError)).tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        # NOTE: unlike bool()/float(), this raises even when a concrete value is known
        # (as in JAX): numpy code would silently cut the value off from the transform.
        raise errors.TracerArrayConversionError(
            f"numpy.asarray() was called on a traced array {self.aval.str_short()} "
            f"(in {self._trace.name}). numpy cannot compute on traced values: use "
            "fgrad.numpy (imported as fnp) instead of numpy inside transformed functions.")

    def __hash__(self) -> int:
        raise TypeError(f"unhashable type: traced array {self.aval.str_short()}")

    def __repr__(self) -> str:
        return f"Traced<{self.aval.str_short()}>with<{self._trace!r}>"


# --- the current trace -------------------------------------------------------

class _TraceContext(threading.local):
    def __init__(self) -> None:
        self.trace: Trace = eval_trace


def current_trace() -> Trace:
    return _context.trace


class set_current_trace:
    """``with set_current_trace(t): ...`` makes ``t`` current inside the block."""

    __slots__ = ("trace", "prev")

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __enter__(self) -> Trace:
        self.prev = _context.trace
        _context.trace = self.trace
        return self.trace

    def __exit__(self, *exc: Any) -> None:
        _context.trace = self.prev


def check_alive(x: Tracer) -> None:
    """Raise ``UnexpectedTracerError`` if ``x`` belongs to a transform that has returned."""
    if not x._trace._alive:
        raise errors.UnexpectedTracerError(
            f"Encountered an unexpected tracer {x.aval.str_short()} from {x._trace.name} "
            "that has already finished. A value computed inside a transformed function "
            "(jit, grad, vmap, ...) escaped it, for example by being stored in a global, a "
            "list outside the function, or an attribute (`self.x = ...`). Return such values "
            "from the function instead.")


# --- eager evaluation ----------------------------------------------------------

class EvalTrace(Trace):
    """The default trace: applies each primitive's numpy ``impl`` right away.

    Abstract evaluation still runs (and is cached by input types), so eager
    code gets the same shape/dtype errors and weak types as traced code.
    """

    name = "eager evaluation"
    records_constants = False

    def __init__(self) -> None:
        self._aval_cache: dict[Any, Any] = {}

    def process_primitive(self, prim: Primitive, args: tuple[Any, ...],
                          params: dict[str, Any]) -> Any:
        values: list[Any] = []
        key: list[Any] = [prim]  # the argument types, for the abstract-eval cache
        for x in args:
            if type(x) is Array:
                value = x._value
                values.append(value)
                key.append(value.shape)
                key.append(value.dtype)
                key.append(x.weak_type)
            elif isinstance(x, Tracer):
                check_alive(x)
                raise errors.UnexpectedTracerError(
                    f"{prim.name}: got a tracer {x.aval.str_short()} from {x._trace.name} "
                    "outside of that transform. A traced value leaked out of the function "
                    "being transformed.")
            else:
                dtype, weak = dtypes.dtype_and_weak_type(x)
                value = np.asarray(x, dtype=dtype)
                values.append(value)
                key += (value.shape, dtype, weak)
        out_avals = self._out_avals(prim, key, params)
        out = prim.impl(*values, **params)
        if prim.multiple_results:
            return [wrap_result(o, a) for o, a in zip(out, out_avals)]
        if type(out) is np.ndarray and out.dtype == out_avals.dtype:  # wrap_result, inlined
            return Array(out, out_avals.weak_type)
        return wrap_result(out, out_avals)

    def _out_avals(self, prim: Primitive, key: list[Any], params: dict[str, Any]) -> Any:
        if not prim.cache_abstract_eval:
            return prim.abstract_eval(*_avals_from_key(key), **params)
        try:
            if params:
                key.append(tuple(params.items()))
            cache_key: Any = tuple(key)
            return self._aval_cache[cache_key]
        except KeyError:
            pass
        except TypeError:  # an unhashable param: no caching, just compute
            cache_key = None
        out_avals = prim.abstract_eval(*_avals_from_key(key), **params)
        if cache_key is not None and len(self._aval_cache) < 100_000:
            self._aval_cache[cache_key] = out_avals
        return out_avals


def abstract_eval_cached(prim: Primitive, avals: Sequence[ShapedArray],
                         params: dict[str, Any]) -> Any:
    """``prim.abstract_eval(*avals, **params)``, memoized like eager evaluation's.

    Staging traces (``jit``, ``linearize``) call this for every equation they
    record; most equations repeat types already seen (the same layer, the same
    JVP rule), so the shape rule runs once per distinct signature.
    """
    key: list[Any] = [prim]
    for a in avals:
        key.append(a.shape)
        key.append(a.dtype)
        key.append(a.weak_type)
    return eval_trace._out_avals(prim, key, params)


def _avals_from_key(key: list[Any]) -> list[ShapedArray]:
    types = key[1:1 + 3 * ((len(key) - 1) // 3)]  # (shape, dtype, weak) triples after prim
    return [ShapedArray(*types[i:i + 3]) for i in range(0, len(types), 3)]


def wrap_result(value: Any, aval: ShapedArray) -> Array:
    """A primitive's concrete result as an fgrad ``Array`` of the promised type."""
    if type(value) is not np.ndarray or value.dtype != aval.dtype:
        value = np.asarray(value, dtype=aval.dtype)
    return Array(value, aval.weak_type)


eval_trace = EvalTrace()
_context = _TraceContext()
