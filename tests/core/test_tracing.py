"""Traces and tracers: the current trace, what tracers know (avals, concrete
values), their lifetime, how nested transforms see each other's tracers, and
eager evaluation (``EvalTrace``) against JAX's dtypes and weak types.
"""

from __future__ import annotations

import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core import trace as trace_mod
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray
from fgrad.core.staging import StagingTrace
from fgrad.core.trace import EvalTrace, Tracer
from fgrad.transforms.jvp import JVPTrace
from fgrad.transforms.partial_eval import PartialEvalTrace


class Spy:
    """A function that records the current trace and its argument each time it runs."""

    def __init__(self, body: Any = lambda x: x * 2.0) -> None:
        self.body = body
        self.traces: list[Any] = []
        self.args: list[Any] = []

    def __call__(self, x: Any) -> Any:
        self.traces.append(trace_mod.current_trace())
        self.args.append(x)
        return self.body(x)


# --- the current trace ---------------------------------------------------------------------

def test_default_trace_is_eval() -> None:
    assert isinstance(trace_mod.current_trace(), EvalTrace)


def test_current_trace_inside_transforms() -> None:
    spy = Spy()
    fgrad.jit(spy)(1.0)
    fgrad.grad(spy)(1.0)
    fgrad.jvp(spy, (1.0,), (1.0,))
    fgrad.make_jaxpr(spy)(1.0)
    jit_t, grad_t, jvp_t, mk_t = spy.traces
    assert isinstance(jit_t, StagingTrace) and isinstance(jit_t.parent, EvalTrace)
    assert isinstance(grad_t, JVPTrace) and isinstance(grad_t.parent, PartialEvalTrace)
    assert isinstance(jvp_t, JVPTrace) and isinstance(jvp_t.parent, EvalTrace)
    assert isinstance(mk_t, StagingTrace)
    assert isinstance(trace_mod.current_trace(), EvalTrace)


def test_nested_traces_form_a_chain() -> None:
    spy = Spy()
    fgrad.jit(fgrad.grad(spy))(1.0)
    t = spy.traces[0]
    chain = []
    while t is not None:
        chain.append(type(t).__name__)
        t = t.parent
    assert chain == ["JVPTrace", "PartialEvalTrace", "StagingTrace", "EvalTrace"]


@pytest.mark.parametrize("transform", [
    lambda f: fgrad.jit(f)(1.0), lambda f: fgrad.grad(f)(1.0),
    lambda f: fgrad.jvp(f, (1.0,), (1.0,)), lambda f: fgrad.vjp(f, 1.0),
    lambda f: fgrad.make_jaxpr(f)(1.0), lambda f: fgrad.grad(fgrad.jit(f))(1.0),
    lambda f: fgrad.checkpoint(f)(1.0), lambda f: fgrad.linearize(f, 1.0),
], ids=["jit", "grad", "jvp", "vjp", "make_jaxpr", "grad_jit", "checkpoint", "linearize"])
def test_trace_restored_after_exception(transform: Any) -> None:
    def boom(x: Any) -> Any:
        fnp.sin(x)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        transform(boom)
    assert isinstance(trace_mod.current_trace(), EvalTrace)
    # and eager code still works afterwards
    assert float(fnp.sin(0.0)) == 0.0


def test_trace_context_is_thread_local() -> None:
    seen: dict[str, Any] = {}

    def worker() -> None:
        seen["trace"] = trace_mod.current_trace()
        seen["value"] = float(fnp.sin(fnp.array(0.5)))

    def f(x: Any) -> Any:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        return x * 2.0

    fgrad.jit(f)(1.0)
    assert isinstance(seen["trace"], EvalTrace)
    np.testing.assert_allclose(seen["value"], np.sin(0.5), rtol=1e-6)


# --- what tracers know ---------------------------------------------------------------------

def test_tracer_static_attributes() -> None:
    spy = Spy(lambda x: x)
    fgrad.jit(spy)(fnp.ones((2, 3)))
    fgrad.grad(lambda x: fnp.sum(spy(x)))(fnp.ones((2, 3)))
    for x in spy.args:
        assert isinstance(x, Tracer)
        assert x.shape == (2, 3) and x.ndim == 2 and x.size == 6 and len(x) == 2
        assert x.dtype == np.float32 and not x.weak_type
        assert x.aval == ShapedArray((2, 3), np.float32)
        assert "f32[2,3]" in repr(x)


def test_tracer_weak_type_and_scalar_len() -> None:
    spy = Spy()
    fgrad.jit(spy)(1.0)
    (x,) = spy.args
    assert x.weak_type and x.aval == ShapedArray((), np.float32, True)
    with pytest.raises(TypeError, match="len"):
        len(x)


def test_tracer_operators() -> None:
    def f(x: Any) -> Any:
        y = -x + 2.0 * x - x / 4.0 + x ** 2 - 1.0
        z = (x > 0.5) * 1.0 + (x <= 0.5) * 2.0 + (x == x) * 1.0 + (x != x) * 5.0
        return (y + z + (x >= 0.0) * 1.0 + (x < 0.0) * 1.0).sum()

    def jf(x: Any) -> Any:
        y = -x + 2.0 * x - x / 4.0 + x ** 2 - 1.0
        z = (x > 0.5) * 1.0 + (x <= 0.5) * 2.0 + (x == x) * 1.0 + (x != x) * 5.0
        return (y + z + (x >= 0.0) * 1.0 + (x < 0.0) * 1.0).sum()

    x = np.array([0.25, 1.5], np.float32)
    np.testing.assert_allclose(np.asarray(fgrad.jit(f)(x)), np.asarray(jax.jit(jf)(x)), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fgrad.grad(f)(x)), np.asarray(jax.grad(jf)(x)),
                               rtol=1e-6)
    # numpy arrays on the left defer to the tracer's reflected operators
    g = lambda x: fnp.sum(np.ones(2, np.float32) * x + np.ones(2, np.float32) - x)
    np.testing.assert_allclose(np.asarray(fgrad.grad(g)(x)), [0.0, 0.0])


def test_concrete_values_under_jvp_but_not_under_jit() -> None:
    seen: list[Any] = []

    def f(x: Any) -> Any:
        seen.append(x.to_concrete_value())
        return x

    fgrad.grad(f)(1.5)
    fgrad.grad(fgrad.grad(lambda x: f(x) * x))(2.5)
    fgrad.jit(f)(1.5)
    assert float(seen[0]) == 1.5 and float(seen[1]) == 2.5
    assert seen[2] is None


def test_tracers_die_when_their_transform_returns() -> None:
    spy = Spy()
    fgrad.jit(spy)(1.0)
    fgrad.grad(spy)(1.0)
    fgrad.jvp(spy, (1.0,), (1.0,))
    for x in spy.args:
        assert not x._trace._alive
        with pytest.raises(fgrad.UnexpectedTracerError):
            fnp.sin(x)


def test_outer_tracers_are_constants_to_inner_transforms() -> None:
    # make_jaxpr of a grad: the jvp/partial-eval tracers never reach the staged jaxpr,
    # only ordinary equations on the staging trace's variables.
    closed = fgrad.make_jaxpr(fgrad.grad(lambda x: fnp.sin(x) * x))(1.0)
    names = {e.primitive.name for e in closed.eqns}
    assert {"sin", "cos", "mul"} <= names
    assert all(not isinstance(c, Tracer) for c in closed.consts)
    # a jitted function closing over an outer tracer gets it as an explicit argument
    closed = fgrad.make_jaxpr(lambda x: fgrad.jit(lambda y: x * y)(2.0))(3.0)
    (jit_eqn,) = closed.eqns
    assert len(jit_eqn.invars) == 2 and not closed.jaxpr.constvars


def test_constants_are_deduplicated_in_staging() -> None:
    c = fnp.ones(3)
    closed = fgrad.make_jaxpr(lambda x: x * c + c)(fnp.ones(3))
    assert len(closed.jaxpr.constvars) == 1


def test_symbolic_zero_tangents_are_instantiated_with_the_right_type() -> None:
    out, tangent = fgrad.jvp(lambda x: (3.0, fnp.ones(2, dtype=np.int32), x * 0.0 + 1.0),
                             (1.0,), (1.0,))
    jout, jtangent = jax.jvp(lambda x: (3.0, jnp.ones(2, dtype=np.int32), x * 0.0 + 1.0),
                             (1.0,), (1.0,))
    for a, b in zip(tangent, jtangent):
        assert np.shape(a) == np.shape(b)
        assert not np.any(np.asarray(a))
    assert np.asarray(tangent[0]).dtype == np.float32


# --- eager evaluation ----------------------------------------------------------------------

@pytest.mark.parametrize("x", [1.0, 2, True, np.float32(1.5), np.int8(3), np.uint8(3),
                               np.float16(0.5), np.ones(2, np.int16)],
                         ids=lambda x: f"{type(x).__name__}")
@pytest.mark.parametrize("op", ["add_int", "mul_float", "sin", "mul_self"])
def test_eager_and_jit_dtypes_match_jax(x: Any, op: str) -> None:
    f, jf = {
        "add_int": (lambda x: x + 1, lambda x: x + 1),
        "mul_float": (lambda x: x * 2.0, lambda x: x * 2.0),
        "sin": (fnp.sin, jnp.sin),
        "mul_self": (lambda x: x * x, lambda x: x * x),
    }[op]
    want = jax.jit(jf)(x)   # jit makes Python scalars weakly typed JAX values
    for got in (_eager(f, x), fgrad.jit(f)(x)):
        assert isinstance(got, Array)
        assert got.dtype == want.dtype and got.weak_type == want.weak_type, (got, want)
        np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                                   rtol=1e-3)


def _eager(f: Any, x: Any) -> Any:
    """Eager fgrad on a Python or numpy scalar, as an fgrad value (weak for Python scalars)."""
    from fgrad.transforms.api_util import canonicalize_arg
    return f(canonicalize_arg(x, "test"))


def test_eager_arrays_are_read_only_views() -> None:
    a = fnp.ones(3)
    view = np.asarray(a)
    assert not view.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 5.0
    assert float(fnp.sum(a)) == 3.0


def test_eager_results_are_arrays_with_weak_types() -> None:
    out = fnp.sin(1.0)
    assert isinstance(out, Array) and out.weak_type and out.dtype == np.float32
    out = fnp.sin(np.float32(1.0))
    assert isinstance(out, Array) and not out.weak_type
