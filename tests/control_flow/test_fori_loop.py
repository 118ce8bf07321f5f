"""``fori_loop`` against JAX and a Python ``for`` loop.

Static (concrete) bounds lower to ``scan``, so reverse mode works and is
checked against ``jax.grad`` to second order; traced bounds lower to
``while_loop`` (forward mode only, and reverse mode raises JAX's error).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
import jax_compare
from batch_util import check_vmap
from fgrad.core.jaxpr import ClosedJaxpr, Jaxpr, typecheck_jaxpr
from fgrad.primitives.control_flow.scan import fori_loop

close = functools.partial(jax_compare.assert_tree_close, rtol=1e-11, atol=1e-11)
rng = np.random.RandomState(0)


def primitive_names(jaxpr: Any) -> set[str]:
    """Every primitive in ``jaxpr`` and in the jaxprs nested in its params."""
    jaxpr = jaxpr.jaxpr if isinstance(jaxpr, ClosedJaxpr) else jaxpr
    names = set()
    for eqn in jaxpr.eqns:
        names.add(eqn.primitive.name)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else [value]:
                if isinstance(sub, (Jaxpr, ClosedJaxpr)):
                    names |= primitive_names(sub)
    return names


def python_fori(lower: int, upper: int, body: Callable[[int, Any], Any], init: Any) -> Any:
    val = init
    for i in range(lower, upper):
        val = body(i, val)
    return val


def body_for(lib: Any, w: Any) -> Callable[[Any, Any], Any]:
    """A pytree carry; the loop index enters the arithmetic; w is closed over."""
    def body(i: Any, carry: Any) -> Any:
        x, acc = carry
        x = lib.sin(x * w) + 0.1 * i
        return x, {"sum": acc["sum"] + x, "n": acc["n"] + 1}
    return body


def loop(lib: Any, fori: Any, lower: Any, upper: Any) -> Callable[..., Any]:
    return lambda w, x0: fori(lower, upper, body_for(lib, w),
                              (x0, {"sum": lib.zeros_like(x0), "n": 0}))


@pytest.mark.parametrize("bounds", [(0, 5), (2, 6), (3, 3), (4, 1), (-2, 2)], ids=str)
def test_static_bounds_match_jax_and_python(bounds: tuple[int, int], x64: None) -> None:
    w, x0 = 0.7, rng.randn(3)
    got = loop(fnp, fori_loop, *bounds)(w, x0)
    jax_compare.assert_matches(got, jax.jit(loop(jnp, jax.lax.fori_loop, *bounds))(w, x0),
                               str(bounds), rtol=1e-12)
    close(got, loop(fnp, python_fori, *bounds)(w, x0))
    assert "scan" in primitive_names(fgrad.make_jaxpr(loop(fnp, fori_loop, *bounds))(w, x0))


def test_index_is_a_weak_int_and_unroll_is_accepted() -> None:
    seen = []

    def body(i: Any, x: Any) -> Any:
        seen.append(i.aval)
        return x + i

    for unroll in (None, 1, 2, True):
        out = fori_loop(0, 4, body, 0, unroll=unroll)
        jax_compare.assert_matches(out, jax.lax.fori_loop(0, 4, lambda i, x: x + i, 0,
                                                          unroll=unroll), f"unroll={unroll}")
    assert all(a.weak_type and a.dtype == np.int32 and a.shape == () for a in seen)


def test_concrete_array_bounds_use_scan() -> None:
    lower, upper = fnp.asarray(1), fnp.asarray(np.int32(4))
    f = lambda x: fori_loop(lower, upper, lambda i, c: c * 2.0 + i, x)
    assert "scan" in primitive_names(fgrad.make_jaxpr(f)(1.0))
    jax_compare.assert_matches(f(1.0), jax.lax.fori_loop(1, 4, lambda i, c: c * 2.0 + i, 1.0))


def test_static_bounds_are_reverse_differentiable(x64: None) -> None:
    def loss(lib: Any, fori: Any) -> Callable[..., Any]:
        def f(w: Any, x0: Any) -> Any:
            x, acc = loop(lib, fori, 1, 6)(w, x0)
            return lib.sum(x ** 2) + lib.sum(acc["sum"])
        return f

    w, x0 = 0.7, rng.randn(3)
    f, g = loss(fnp, fori_loop), loss(jnp, jax.lax.fori_loop)
    close(fgrad.grad(f, (0, 1))(w, x0), jax.jit(jax.grad(g, (0, 1)))(w, x0))
    close(fgrad.grad(f, (0, 1))(w, x0), fgrad.grad(loss(fnp, python_fori), (0, 1))(w, x0))
    close(fgrad.grad(fgrad.grad(f))(w, x0), jax.jit(jax.grad(jax.grad(g)))(w, x0))
    close(fgrad.jit(fgrad.grad(f))(w, x0), jax.jit(jax.grad(g))(w, x0))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(fgrad.grad(f)))(w, x0))
    # a body closing over a grad tracer
    h = lambda a: fori_loop(0, 3, lambda i, c: fnp.sin(c * a), 1.0)
    close(fgrad.grad(h)(0.4),
          jax.jit(jax.grad(lambda a: jax.lax.fori_loop(0, 3, lambda i, c: jnp.sin(c * a),
                                                       1.0)))(0.4))


def test_vmap_of_static_fori_loop(x64: None) -> None:
    f = lambda w, x0: loop(fnp, fori_loop, 0, 4)(w, x0)
    check_vmap(f, [rng.randn(5), rng.randn(3)], [0, None], rtol=1e-12)
    check_vmap(f, [0.3, rng.randn(3, 5)], [None, 1], out_axes=-1, rtol=1e-12)
    close(fgrad.vmap(f, in_axes=(0, None))(rng.randn(5) * 0 + 0.3, np.ones(3)),
          jax.vmap(loop(jnp, jax.lax.fori_loop, 0, 4), in_axes=(0, None))(
              np.full(5, 0.3), np.ones(3)))


def test_traced_bounds_use_while_loop_forward_only(x64: None) -> None:
    f = fgrad.jit(lambda n, x: fori_loop(0, n, lambda i, c: fnp.sin(c) + i, x))
    g = jax.jit(lambda n, x: jax.lax.fori_loop(0, n, lambda i, c: jnp.sin(c) + i, x))
    for n in (0, 1, 4):
        close(f(n, 0.3), g(n, 0.3))
    assert "while" in primitive_names(fgrad.make_jaxpr(f)(4, 0.3))
    assert "scan" not in primitive_names(fgrad.make_jaxpr(f)(4, 0.3))
    close(fgrad.jvp(lambda x: f(4, x), (0.3,), (1.0,))[1],
          jax.jvp(lambda x: g(4, x), (0.3,), (1.0,))[1])
    with pytest.raises(ValueError, match=r"Reverse-mode differentiation does not work for "
                       r"lax.while_loop or lax.fori_loop with dynamic start/stop values"):
        fgrad.grad(lambda x: f(4, x))(0.3)
    # mixed: a traced upper bound with a Python lower bound adopts the traced dtype
    h = fgrad.jit(lambda n: fori_loop(1, n, lambda i, c: c + i, np.int32(0)))
    jax_compare.assert_matches(h(np.int32(5)), jax.jit(lambda n: jax.lax.fori_loop(
        1, n, lambda i, c: c + i, np.int32(0)))(np.int32(5)), "mixed bounds")


def test_errors() -> None:
    with pytest.raises(TypeError, match=r"body_fun argument should be callable"):
        fori_loop(0, 3, None, 0.0)
    with pytest.raises(TypeError, match=r"lower and upper arguments to fori_loop must have "
                       r"equal types, got int32 and float32"):
        fori_loop(np.int32(0), np.float32(3), lambda i, c: c, 0.0)
    with pytest.raises(ValueError, match=r"Can only use `unroll` in `fori_loop` if the loop "
                       r"bounds are statically known"):
        fgrad.jit(lambda n: fori_loop(0, n, lambda i, c: c, 1.0, unroll=2))(3)
    with pytest.raises(TypeError, match=r"(?s)carry input and carry output.*\[1\]\[1\]: "
                       r"f32\[2\] vs f32\[1\]"):
        fori_loop(0, 3, lambda i, c: (c[0], c[1][:1]), (1.0, fnp.ones(2)))
