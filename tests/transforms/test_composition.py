"""Transforms composed in every order and depth, against JAX.

Three parts:

* hand-written nestings (``grad(grad(grad(f)))``, ``jvp(grad(f))``,
  ``grad(jit(f))``, ``jit(grad(f))``, ``jacfwd(jacrev(f))``, ...);
* *perturbation confusion* tests: an inner derivative must not pick up the
  outer transform's perturbation (Siskind & Pearlmutter's classic example,
  and the nested-jvp cases from JAX's test suite);
* hypothesis property tests: a random smooth scalar program under a random
  stack of ``grad``, ``jit`` and ``jvp`` (as a directional derivative),
  compared with JAX applying the same stack; every jaxpr the stack produces
  must pass ``typecheck_jaxpr``.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import assume, given, note
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
from fgrad.core.jaxpr import eval_jaxpr, typecheck_jaxpr


import functools  # noqa: E402

import jax_compare  # noqa: E402

assert_tree_close = functools.partial(jax_compare.assert_tree_close, rtol=1e-10, atol=1e-10)


def oracle(fun: Callable[..., Any], *args: Any) -> Any:
    """JAX's result. Its jit is disabled: jit does not change values, and compiling every
    jitted oracle function would dominate the run time of this file."""
    with jax.disable_jit():
        return fun(*args)


def f_lib(lib: Any) -> Callable[[Any], Any]:
    return lambda x: lib.sin(x) * lib.tanh(x * x) + lib.exp(lib.cos(x)) * x


F, JF = f_lib(fnp), f_lib(jnp)


def vec_lib(lib: Any) -> Callable[[Any], Any]:
    return lambda x: lib.sum(lib.sin(x) * lib.tanh(x)) * lib.sum(x * x)


V, JV = vec_lib(fnp), vec_lib(jnp)
XV = np.array([0.3, -0.8, 1.1])


# --- hand-written nestings -----------------------------------------------------------------

NESTINGS: dict[str, Callable[[Any, Any], Any]] = {
    # name: how to build the transformed function from (transform module, f)
    "grad3": lambda T, f: T.grad(T.grad(T.grad(f))),
    "grad4": lambda T, f: T.grad(T.grad(T.grad(T.grad(f)))),
    "jvp_grad": lambda T, f: lambda x: T.jvp(T.grad(f), (x,), (0.7,)),
    "grad_jvp": lambda T, f: T.grad(lambda x: T.jvp(f, (x,), (0.7,))[1]),
    "grad_jit": lambda T, f: T.grad(T.jit(f)),
    "jit_grad": lambda T, f: T.jit(T.grad(f)),
    "grad_grad_jit": lambda T, f: T.grad(T.grad(T.jit(f))),
    "jit_grad_jit": lambda T, f: T.jit(T.grad(T.jit(f))),
    "grad_jit_grad": lambda T, f: T.grad(T.jit(T.grad(f))),
    "jit_jit": lambda T, f: T.jit(T.jit(f)),
    "jit_jvp": lambda T, f: T.jit(lambda x: T.jvp(f, (x,), (1.3,))),
    "jvp_jit": lambda T, f: lambda x: T.jvp(T.jit(f), (x,), (1.3,)),
    "jvp_jvp": lambda T, f: lambda x: T.jvp(lambda y: T.jvp(f, (y,), (0.5,))[1], (x,), (2.0,)),
    "jacfwd_jacrev": lambda T, f: T.jacfwd(T.jacrev(f)),
    "jacrev_jacfwd": lambda T, f: T.jacrev(T.jacfwd(f)),
    "jacfwd_jit_grad": lambda T, f: T.jacfwd(T.jit(T.grad(f))),
    "hessian_jit": lambda T, f: T.hessian(T.jit(f)),
    "jit_hessian": lambda T, f: T.jit(T.hessian(f)),
    "vjp_grad": lambda T, f: lambda x: T.vjp(T.grad(f), x)[1](1.5),
    "linearize_grad": lambda T, f: lambda x: T.linearize(T.grad(f), x)[1](1.5),
    "value_and_grad_jit_grad": lambda T, f: T.value_and_grad(T.jit(T.grad(f))),
}


@pytest.mark.parametrize("name", sorted(NESTINGS))
def test_nesting_scalar(x64: None, name: str) -> None:
    build = NESTINGS[name]
    for x in (0.4, -1.2):
        assert_tree_close(build(fgrad, F)(np.float64(x)), oracle(build(jax, JF), np.float64(x)))


@pytest.mark.parametrize("name", ["jacfwd_jacrev", "jacrev_jacfwd", "hessian_jit",
                                  "jit_hessian", "jacfwd_jit_grad", "grad_jit", "jit_grad"])
def test_nesting_vector(x64: None, name: str) -> None:
    build = NESTINGS[name]
    assert_tree_close(build(fgrad, V)(XV), oracle(build(jax, JV), XV))


@pytest.mark.parametrize("name", sorted(NESTINGS))
def test_nesting_jaxprs_typecheck(name: str) -> None:
    jaxpr = fgrad.make_jaxpr(NESTINGS[name](fgrad, F))(0.4)
    typecheck_jaxpr(jaxpr)
    outs = eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, 0.4)
    want = jax.tree_util.tree_leaves(NESTINGS[name](fgrad, F)(0.4))
    for a, b in zip(outs, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)


def test_grad_of_jit_closing_over_the_differentiated_variable(x64: None) -> None:
    cases = [
        (lambda T: T.grad(lambda x: T.jit(lambda y: x * y)(2.0)), 3.0),
        (lambda T: T.grad(lambda x: T.jit(lambda y: fnp_or_jnp(T).sin(x) * y)(2.0)), 3.0),
        (lambda T: T.grad(T.grad(lambda x: T.jit(lambda y: x * x * x * y)(2.0))), 3.0),
        (lambda T: T.grad(T.jit(lambda x: T.jit(lambda y: x * y)(2.0))), 3.0),
        (lambda T: T.grad(lambda x: T.jit(lambda y: T.jit(lambda z: x * y * z)(y))(2.0)), 3.0),
        (lambda T: lambda x: T.jvp(lambda x: T.jit(lambda y: x * x * y)(2.0), (x,), (1.0,)), 3.0),
    ]
    for build, x in cases:
        assert_tree_close(build(fgrad)(x), oracle(build(jax), x))
    assert float(fgrad.grad(lambda x: fgrad.jit(lambda y: x * y)(2.0))(3.0)) == 2.0


def fnp_or_jnp(T: Any) -> Any:
    return fnp if T is fgrad else jnp


def test_jit_cache_and_transforms_share_nothing_stale(x64: None) -> None:
    # the same jitted function used eagerly, under grad, and under jvp
    jf = fgrad.jit(F)
    assert_tree_close(jf(0.4), JF(0.4))
    assert_tree_close(fgrad.grad(jf)(0.4), jax.grad(JF)(0.4))
    assert_tree_close(fgrad.jvp(jf, (0.4,), (2.0,)), jax.jvp(JF, (0.4,), (2.0,)))
    assert_tree_close(fgrad.grad(fgrad.grad(jf))(0.4), jax.grad(jax.grad(JF))(0.4))
    assert_tree_close(jf(0.5), JF(0.5))


# --- perturbation confusion ---------------------------------------------------------------

def test_perturbation_confusion_grad() -> None:
    # d/dx [ d/dy (x * y) at y=2 ] = d/dx x = 1 (not 2: the perturbations are distinct)
    assert float(fgrad.grad(lambda x: fgrad.grad(lambda y: x * y)(2.0))(3.0)) == 1.0


def test_perturbation_confusion_siskind_pearlmutter() -> None:
    # D(x -> x * D(y -> x + y)(1))(1) = 1; a confused implementation gives 2.
    f = lambda x: x * fgrad.grad(lambda y: x + y)(1.0)
    assert float(fgrad.grad(f)(1.0)) == 1.0
    g = lambda x: x * fgrad.jvp(lambda y: x + y, (1.0,), (1.0,))[1]
    assert float(fgrad.jvp(g, (1.0,), (1.0,))[1]) == 1.0


def test_perturbation_confusion_nested_jvp() -> None:
    # JAX's api_test: the inner jvp's tangent must not see the outer perturbation.
    def f(x: Any) -> Any:
        return fgrad.jvp(lambda y: x * y, (2.0,), (1.0,))[1]          # = x

    primal, tangent = fgrad.jvp(f, (3.0,), (1.0,))
    assert (float(primal), float(tangent)) == (3.0, 1.0)

    def g(x: Any) -> Any:
        inner = lambda y: fgrad.jvp(lambda z: x * y * z, (1.0,), (1.0,))[1]   # = x * y
        return fgrad.jvp(inner, (x,), (1.0,))[1]                              # = x

    assert float(fgrad.jvp(g, (3.0,), (1.0,))[1]) == 1.0
    assert float(fgrad.grad(g)(3.0)) == 1.0


def test_perturbation_confusion_closure_returned_from_transform() -> None:
    # f(x) = grad(y -> x * y)(x) = x; the inner derivative closes over the outer tracer.
    f = lambda x: fgrad.grad(lambda y: x * y)(x)
    assert float(fgrad.grad(f)(3.0)) == 1.0
    h = lambda x: fgrad.vjp(lambda y: x * y, 2.0)[1](1.0)[0]       # = x
    assert float(fgrad.grad(h)(3.0)) == 1.0
    lin = lambda x: fgrad.linearize(lambda y: x * fnp.sin(y), 0.5)[1](1.0)   # = x cos(0.5)
    np.testing.assert_allclose(np.asarray(fgrad.grad(lin)(3.0)), np.cos(0.5), rtol=1e-6)


def test_perturbation_confusion_under_jit() -> None:
    f = fgrad.jit(lambda x: fgrad.grad(lambda y: x * y)(2.0))
    assert float(fgrad.grad(f)(3.0)) == 1.0
    g = lambda x: fgrad.jit(lambda y: fgrad.grad(lambda z: x * z * y)(y))(2.0)   # = 2x
    assert float(fgrad.grad(g)(3.0)) == 2.0
    assert float(fgrad.jit(fgrad.grad(g))(3.0)) == 2.0


def test_higher_order_function_perturbations(x64: None) -> None:
    # A derivative of a function that returns functions (the "closure" case of
    # Manzyuk et al.): each level's tangent stays with its own level.
    def make(T: Any) -> Any:
        shift = lambda u: lambda y: u(y + 1.0)
        deriv = lambda u: lambda y: T.grad(u)(y)
        return lambda x: deriv(shift(lambda y: x * y * y))(x)    # = 2 x (x + 1)

    assert_tree_close(fgrad.grad(make(fgrad))(1.5), jax.grad(make(jax))(1.5))
    np.testing.assert_allclose(np.asarray(fgrad.grad(make(fgrad))(1.5)), 4 * 1.5 + 2)


# --- property tests: random programs under random transform stacks ----------------------------

UNARY = ["sin", "cos", "tanh", "exp"]
BINARY = ["mul_x", "add_x", "mul_c", "add_c"]


def build_program(steps: list[tuple[str, float]], lib: Any) -> Callable[[Any], Any]:
    """A smooth scalar function from a list of (op, constant) steps."""
    def f(x: Any) -> Any:
        v = x
        for op, c in steps:
            if op == "exp":
                v = lib.exp(lib.tanh(v))   # bounded: stacks of exp cannot overflow
            elif op in UNARY:
                v = getattr(lib, op)(v)
            elif op == "mul_x":
                v = v * x
            elif op == "add_x":
                v = v + x
            elif op == "mul_c":
                v = v * c
            else:
                v = v + c
        return v
    return f


def apply_stack(stack: list[tuple[str, float]], f: Callable[[Any], Any], T: Any
                ) -> Callable[[Any], Any]:
    """Apply transforms innermost first; "jvp" is the directional derivative along t."""
    for name, t in stack:
        if name == "grad":
            f = T.grad(f)
        elif name == "jit":
            f = T.jit(f)
        else:
            f = (lambda g, t: lambda x: T.jvp(g, (x,), (t,))[1])(f, t)
    return f


constants = st.floats(-1.5, 1.5, allow_nan=False).map(lambda c: round(c, 3))
programs = st.lists(st.tuples(st.sampled_from(UNARY + BINARY), constants), min_size=1,
                    max_size=6)
stacks = st.lists(st.tuples(st.sampled_from(["grad", "jit", "jvp"]), constants), min_size=1,
                  max_size=4)


@given(steps=programs, stack=stacks, x=st.floats(-1.8, 1.8, allow_nan=False))
def test_random_transform_stacks_match_jax(x64: None, steps: list[tuple[str, float]],
                                           stack: list[tuple[str, float]], x: float) -> None:
    note(f"program={steps} stack={stack} x={x}")
    want = oracle(apply_stack(stack, build_program(steps, jnp), jax), np.float64(x))
    want_np = np.asarray(want)
    assume(np.all(np.isfinite(want_np)) and np.all(np.abs(want_np) < 1e8))
    fun = apply_stack(stack, build_program(steps, fnp), fgrad)
    got = fun(np.float64(x))
    scale = max(1.0, float(np.max(np.abs(want_np))))
    assert_tree_close(got, want, rtol=1e-9, atol=1e-9 * scale)
    jaxpr = fgrad.make_jaxpr(fun)(np.float64(x))
    note(str(jaxpr))
    typecheck_jaxpr(jaxpr)
    (out,) = eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, np.float64(x))
    np.testing.assert_allclose(np.asarray(out), want_np, rtol=1e-9, atol=1e-9 * scale)


@given(steps=programs, x=st.floats(-1.8, 1.8, allow_nan=False),
       order=st.integers(1, 3), jit_at=st.integers(0, 3))
def test_random_higher_order_with_one_jit(x64: None, steps: list[tuple[str, float]], x: float,
                                          order: int, jit_at: int) -> None:
    # grad^order with a jit inserted at depth jit_at, against JAX's grad^order.
    f, jf = build_program(steps, fnp), build_program(steps, jnp)
    for level in range(order + 1):
        if level == jit_at:
            f = fgrad.jit(f)
        if level < order:
            f, jf = fgrad.grad(f), jax.grad(jf)
    want = np.asarray(oracle(jf, np.float64(x)))
    assume(np.isfinite(want) and abs(want) < 1e8)
    got = f(np.float64(x))
    assert_tree_close(got, want, rtol=1e-9, atol=1e-9 * max(1.0, abs(float(want))))
