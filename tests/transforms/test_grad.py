"""The differentiation API against JAX: grad, value_and_grad, jvp, vjp, linearize,
jacfwd, jacrev, hessian, stop_gradient.

Every test runs the same function through fgrad (``fnp``) and JAX (``jnp``)
and compares values, dtypes and pytree structure. Derivative values are
compared in float64 (the ``x64`` fixture from ``conftest.py``), where both
libraries should agree to rounding; weak types are checked where JAX
defines them (a gradient is weakly typed exactly when its input is).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fgrad
import fgrad.numpy as fnp
from fgrad.core.trace import Tracer

Point = namedtuple("Point", ["x", "y"])


# --- helpers -----------------------------------------------------------------------------

def assert_tree_close(got: Any, want: Any, rtol: float = 1e-12, atol: float = 1e-12,
                      check_weak: bool = False) -> None:
    """Same pytree structure, shapes, dtypes and (close) values as JAX's result."""
    got_tree = jax.tree_util.tree_structure(got)
    want_tree = jax.tree_util.tree_structure(want)
    assert got_tree == want_tree, f"structure {got_tree} != JAX's {want_tree}"
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert not isinstance(a, Tracer), f"a tracer leaked into the result: {a!r}"
        a_np, b_np = np.asarray(a), np.asarray(b)
        assert a_np.shape == b_np.shape, f"shape {a_np.shape} != JAX's {b_np.shape}"
        assert a_np.dtype == b_np.dtype, f"dtype {a_np.dtype} != JAX's {b_np.dtype}"
        np.testing.assert_allclose(a_np, b_np, rtol=rtol, atol=atol)
        if check_weak:
            assert getattr(a, "weak_type", False) == getattr(b, "weak_type", False), (
                f"weak_type {getattr(a, 'weak_type', None)} != JAX's {b.weak_type} for {a!r}")


def rand(*shape: int, seed: int = 0, dtype: Any = np.float64) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1.5, 1.5, size=shape).astype(dtype)


# Scalar functions written twice: fgrad.numpy and jax.numpy twins.
SCALAR_FUNS = {
    "sin": (lambda x: fnp.sin(x), lambda x: jnp.sin(x)),
    "poly": (lambda x: 3.0 * x ** 3 - 2.0 * x + 1.0, lambda x: 3.0 * x ** 3 - 2.0 * x + 1.0),
    "tanh_exp": (lambda x: fnp.tanh(x) * fnp.exp(-x * x),
                 lambda x: jnp.tanh(x) * jnp.exp(-x * x)),
    "log_sqrt": (lambda x: fnp.log(1.0 + x * x) + fnp.sqrt(2.0 + fnp.cos(x)),
                 lambda x: jnp.log(1.0 + x * x) + jnp.sqrt(2.0 + jnp.cos(x))),
    "div_pow": (lambda x: x / (1.0 + x ** 2) + fnp.power(2.0 + fnp.sin(x), 1.5),
                lambda x: x / (1.0 + x ** 2) + jnp.power(2.0 + jnp.sin(x), 1.5)),
    "max_min": (lambda x: fnp.maximum(x, 0.3) * fnp.minimum(x, 2.0),
                lambda x: jnp.maximum(x, 0.3) * jnp.minimum(x, 2.0)),
}


# --- grad / value_and_grad -------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCALAR_FUNS))
@pytest.mark.parametrize("x", [-1.3, 0.7, 1.9])
def test_grad_scalar_functions(x64: None, name: str, x: float) -> None:
    f, jf = SCALAR_FUNS[name]
    assert_tree_close(fgrad.grad(f)(np.float64(x)), jax.grad(jf)(np.float64(x)))
    # second and third order
    assert_tree_close(fgrad.grad(fgrad.grad(f))(np.float64(x)),
                      jax.grad(jax.grad(jf))(np.float64(x)), rtol=1e-10)
    assert_tree_close(fgrad.grad(fgrad.grad(fgrad.grad(f)))(np.float64(x)),
                      jax.grad(jax.grad(jax.grad(jf)))(np.float64(x)), rtol=1e-10)


@pytest.mark.parametrize("shape", [(), (1,), (4,), (2, 3), (0,), (3, 0, 2)])
def test_grad_array_input(x64: None, shape: tuple[int, ...]) -> None:
    x = rand(*shape)
    f = lambda x: fnp.sum(fnp.sin(x) * fnp.tanh(x) + x ** 2)
    jf = lambda x: jnp.sum(jnp.sin(x) * jnp.tanh(x) + x ** 2)
    assert_tree_close(fgrad.grad(f)(x), jax.grad(jf)(x))


def test_grad_float32_default() -> None:
    x = rand(3, dtype=np.float32)
    f = lambda x: fnp.sum(fnp.exp(fnp.sin(x)))
    jf = lambda x: jnp.sum(jnp.exp(jnp.sin(x)))
    assert_tree_close(fgrad.grad(f)(x), jax.grad(jf)(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("argnums", [0, 1, 2, -1, (0,), (1, 0), (0, 2), (2, 1, 0)])
def test_value_and_grad_argnums(x64: None, argnums: Any) -> None:
    f = lambda x, y, z: fnp.sum(fnp.sin(x) * y) + z ** 2 * fnp.sum(y)
    jf = lambda x, y, z: jnp.sum(jnp.sin(x) * y) + z ** 2 * jnp.sum(y)
    args = (rand(3, seed=1), rand(3, seed=2), np.float64(0.3))
    got = fgrad.value_and_grad(f, argnums=argnums)(*args)
    want = jax.value_and_grad(jf, argnums=argnums)(*args)
    assert_tree_close(got, want)
    assert_tree_close(fgrad.grad(f, argnums=argnums)(*args),
                      jax.grad(jf, argnums=argnums)(*args))


def test_grad_argnums_out_of_range() -> None:
    with pytest.raises(ValueError, match="argnums"):
        fgrad.grad(lambda x: x, argnums=1)(1.0)


def test_grad_has_aux(x64: None) -> None:
    f = lambda x: (fnp.sum(fnp.sin(x)), {"double": x * 2.0, "n": 3})
    jf = lambda x: (jnp.sum(jnp.sin(x)), {"double": x * 2.0, "n": 3})
    x = rand(3)
    g, aux = fgrad.grad(f, has_aux=True)(x)
    jg, jaux = jax.grad(jf, has_aux=True)(x)
    assert_tree_close(g, jg)
    # the auxiliary output is a plain value, never a tracer of the finished transform
    assert_tree_close(aux, jaux)


def test_value_and_grad_has_aux(x64: None) -> None:
    f = lambda x, y: (fnp.sin(x) * y, (x, y * 3.0))
    jf = lambda x, y: (jnp.sin(x) * y, (x, y * 3.0))
    got = fgrad.value_and_grad(f, argnums=(0, 1), has_aux=True)(0.4, 1.3)
    want = jax.value_and_grad(jf, argnums=(0, 1), has_aux=True)(0.4, 1.3)
    assert_tree_close(got, want)


def test_has_aux_requires_pair() -> None:
    with pytest.raises(TypeError, match="pair"):
        fgrad.grad(lambda x: fnp.sin(x), has_aux=True)(1.0)


def _tree_fun(lib: Any) -> Any:
    def f(params: dict[str, Any]) -> Any:
        w, (b, c), p, lst = params["w"], params["bc"], params["p"], params["lst"]
        total = lib.sum(lib.sin(w) * b) + c * p.x - p.y ** 2
        for t in lst:
            total = total + lib.sum(lib.tanh(t))
        return total
    return f


def _tree_args() -> dict[str, Any]:
    return {"w": rand(3, seed=3), "bc": (rand(3, seed=4), np.float64(0.5)),
            "p": Point(np.float64(1.5), np.float64(-0.7)),
            "lst": [rand(2, seed=5), rand(1, seed=6)], "none": None}


def test_grad_pytree_args(x64: None) -> None:
    args = _tree_args()
    got = fgrad.grad(_tree_fun(fnp))(args)
    want = jax.grad(_tree_fun(jnp))(args)
    assert_tree_close(got, want)
    assert isinstance(got["p"], Point)
    assert isinstance(got["lst"], list) and isinstance(got["bc"], tuple)
    assert got["none"] is None


def test_grad_pytree_argnums_tuple(x64: None) -> None:
    def f(a: dict[str, Any], scale: Any, pts: list[Point]) -> Any:
        return fnp.sum(a["u"] * scale) + sum(p.x * p.y for p in pts) * scale

    def jf(a: dict[str, Any], scale: Any, pts: list[Point]) -> Any:
        return jnp.sum(a["u"] * scale) + sum(p.x * p.y for p in pts) * scale

    args = ({"u": rand(4)}, np.float64(1.1), [Point(np.float64(2.0), np.float64(3.0))])
    for argnums in [(0, 2), (2,), (1, 2, 0)]:
        assert_tree_close(fgrad.grad(f, argnums=argnums)(*args),
                          jax.grad(jf, argnums=argnums)(*args))


def test_grad_kwargs_are_not_differentiated(x64: None) -> None:
    f = lambda x, scale=1.0: fnp.sin(x) * scale
    jf = lambda x, scale=1.0: jnp.sin(x) * scale
    assert_tree_close(fgrad.grad(f)(0.3, scale=2.5), jax.grad(jf)(0.3, scale=2.5))


def test_grad_result_dtype_follows_input(x64: None) -> None:
    f = lambda x, y: fnp.sum(x * y)
    jf = lambda x, y: jnp.sum(x * y)
    x32, x64_ = rand(2, dtype=np.float32), rand(2, seed=1)
    got = fgrad.grad(f, argnums=(0, 1))(x32, x64_)
    want = jax.grad(jf, argnums=(0, 1))(x32, x64_)
    assert_tree_close(got, want, rtol=1e-6)
    assert got[0].dtype == np.float32 and got[1].dtype == np.float64


def test_grad_weak_type_follows_input() -> None:
    # JAX: the gradient with respect to a Python scalar is weakly typed, with respect
    # to a committed array it is not (the cotangent takes the primal's type).
    f = lambda x: x * 2.0
    jf = lambda x: x * 2.0
    assert_tree_close(fgrad.grad(f)(1.0), jax.grad(jf)(1.0), rtol=0, atol=0, check_weak=True)
    assert_tree_close(fgrad.grad(f)(np.float32(1.0)), jax.grad(jf)(np.float32(1.0)),
                      rtol=0, atol=0, check_weak=True)
    g = lambda x: fnp.sin(fnp.array(2.0, dtype=np.float32) * x)
    jg = lambda x: jnp.sin(jnp.array(2.0, dtype=np.float32) * x)
    assert_tree_close(fgrad.grad(g)(0.5), jax.grad(jg)(0.5), rtol=1e-6, check_weak=True)


def test_grad_of_constant_function(x64: None) -> None:
    assert_tree_close(fgrad.grad(lambda x: 1.0)(rand(3)), jax.grad(lambda x: 1.0)(rand(3)))
    f = lambda x, y: fnp.sin(y)
    assert_tree_close(fgrad.grad(f)(0.1, 0.2), jax.grad(lambda x, y: jnp.sin(y))(0.1, 0.2))


def test_grad_nonscalar_output_raises() -> None:
    with pytest.raises(TypeError, match="Gradient only defined for scalar-output functions"):
        fgrad.grad(lambda x: fnp.sin(x))(fnp.ones(3))
    with pytest.raises(TypeError, match="Gradient only defined for scalar-output functions"):
        fgrad.grad(lambda x: (x, x))(1.0)


def test_grad_integer_output_raises() -> None:
    with pytest.raises(TypeError, match="grad requires"):
        fgrad.grad(lambda x: 1)(2.0)


@pytest.mark.parametrize("arg", [1, np.int32(3), np.arange(3), True])
def test_grad_integer_input_raises(arg: Any) -> None:
    with pytest.raises(TypeError, match=r"grad requires real.*int|grad requires real.*bool"):
        fgrad.grad(lambda x: x * 1.0)(arg)
    with pytest.raises(TypeError, match="allow_int"):
        fgrad.grad(lambda x: fnp.sum(x * 1.0))(arg)


def test_grad_integer_input_inside_pytree_raises() -> None:
    with pytest.raises(TypeError, match="grad requires real"):
        fgrad.grad(lambda d: d["a"] * d["n"])({"a": 1.0, "n": 2})


def test_allow_int(x64: None) -> None:
    f = lambda n, x: n * fnp.sin(x)
    gn, gx = fgrad.grad(f, argnums=(0, 1), allow_int=True)(3, 0.5)
    _, jgx = jax.grad(lambda n, x: n * jnp.sin(x), argnums=(0, 1), allow_int=True)(3, 0.5)
    assert_tree_close(gx, jgx)
    # JAX returns a float0 zero here; fgrad a zero of the input's shape.
    assert np.shape(gn) == () and not np.any(np.asarray(gn))


def test_grad_with_respect_to_int_argument_not_differentiated_is_fine(x64: None) -> None:
    f = lambda x, n: x ** 2 * n
    assert_tree_close(fgrad.grad(f)(1.5, 3), jax.grad(lambda x, n: x ** 2 * n)(1.5, 3))


# --- stop_gradient ------------------------------------------------------------------------

def test_stop_gradient(x64: None) -> None:
    f = lambda x: fgrad.stop_gradient(x * x) * x + fnp.sin(fgrad.stop_gradient(x))
    jf = lambda x: jax.lax.stop_gradient(x * x) * x + jnp.sin(jax.lax.stop_gradient(x))
    assert_tree_close(fgrad.grad(f)(1.3), jax.grad(jf)(1.3))
    assert_tree_close(fgrad.value_and_grad(f)(1.3), jax.value_and_grad(jf)(1.3))
    assert_tree_close(fgrad.jvp(f, (1.3,), (0.5,)), jax.jvp(jf, (1.3,), (0.5,)))
    assert_tree_close(fgrad.grad(fgrad.grad(f))(1.3), jax.grad(jax.grad(jf))(1.3))


def test_stop_gradient_pytree_and_ints(x64: None) -> None:
    tree = {"a": rand(2), "n": np.int32(4)}
    out = fgrad.stop_gradient(tree)
    assert_tree_close(out, jax.lax.stop_gradient(tree))
    g = fgrad.grad(lambda t: fnp.sum(fgrad.stop_gradient(t)["a"] * t["a"]))({"a": rand(2)})
    jg = jax.grad(lambda t: jnp.sum(jax.lax.stop_gradient(t)["a"] * t["a"]))({"a": rand(2)})
    assert_tree_close(g, jg)


# --- jvp -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SCALAR_FUNS))
def test_jvp_scalar(x64: None, name: str) -> None:
    f, jf = SCALAR_FUNS[name]
    got = fgrad.jvp(f, (np.float64(0.8),), (np.float64(-1.7),))
    want = jax.jvp(jf, (np.float64(0.8),), (np.float64(-1.7),))
    assert_tree_close(got, want)


def test_jvp_pytrees(x64: None) -> None:
    def f(d: dict[str, Any], t: tuple[Any, Any]) -> Any:
        return {"s": fnp.sin(d["a"]) * t[0], "l": [t[1] * d["a"], fnp.exp(t[0])]}

    def jf(d: dict[str, Any], t: tuple[Any, Any]) -> Any:
        return {"s": jnp.sin(d["a"]) * t[0], "l": [t[1] * d["a"], jnp.exp(t[0])]}

    primals = ({"a": rand(3)}, (np.float64(0.2), rand(3, seed=9)))
    tangents = ({"a": rand(3, seed=10)}, (np.float64(1.0), rand(3, seed=11)))
    assert_tree_close(fgrad.jvp(f, primals, tangents), jax.jvp(jf, primals, tangents))


def test_jvp_zero_tangent_output_is_instantiated(x64: None) -> None:
    f = lambda x, y: (fnp.sin(x), y * 0 + 2.0, 3.0)
    jf = lambda x, y: (jnp.sin(x), y * 0 + 2.0, 3.0)
    got = fgrad.jvp(lambda x: f(x, 1.0), (0.5,), (1.0,))
    want = jax.jvp(lambda x: jf(x, 1.0), (0.5,), (1.0,))
    assert_tree_close(got, want)


def test_jvp_has_aux(x64: None) -> None:
    f = lambda x: (fnp.sin(x) * x, {"x2": x * 2.0})
    jf = lambda x: (jnp.sin(x) * x, {"x2": x * 2.0})
    got = fgrad.jvp(f, (rand(3),), (rand(3, seed=2),), has_aux=True)
    want = jax.jvp(jf, (rand(3),), (rand(3, seed=2),), has_aux=True)
    assert len(got) == 3
    assert_tree_close(got, want)


def test_jvp_argument_errors() -> None:
    with pytest.raises(TypeError, match="tree structure"):
        fgrad.jvp(lambda a: a[0], ((1.0, 2.0),), ([1.0, 2.0],))
    with pytest.raises((TypeError, ValueError), match=r"f32\[3\].*f32\[2\]|\(3,\).*\(2,\)"):
        fgrad.jvp(fnp.sin, (fnp.ones(3),), (fnp.ones(2),))
    with pytest.raises(TypeError, match="float16|f16"):
        fgrad.jvp(fnp.sin, (np.float32(1.0),), (np.float16(1.0),))
    with pytest.raises(TypeError, match="tuples or lists"):
        fgrad.jvp(fnp.sin, 1.0, 1.0)


# --- vjp -----------------------------------------------------------------------------------

def test_vjp_values_and_called_twice(x64: None) -> None:
    f = lambda x, y: {"a": fnp.sin(x) * y, "b": (x * x, fnp.sum(y))}
    jf = lambda x, y: {"a": jnp.sin(x) * y, "b": (x * x, jnp.sum(y))}
    x, y = rand(3), rand(3, seed=1)
    out, pullback = fgrad.vjp(f, x, y)
    jout, jpullback = jax.vjp(jf, x, y)
    assert_tree_close(out, jout)
    for seed in (2, 3):  # the pullback is reusable
        ct = {"a": rand(3, seed=seed), "b": (rand(3, seed=seed + 10), np.float64(seed))}
        assert_tree_close(pullback(ct), jpullback(ct))


def test_vjp_has_aux(x64: None) -> None:
    f = lambda x: (fnp.tanh(x), [x * 3.0, "tag"])
    jf = lambda x: (jnp.tanh(x), [x * 3.0, "tag"])
    out, pullback, aux = fgrad.vjp(f, rand(2), has_aux=True)
    jout, jpullback, jaux = jax.vjp(jf, rand(2), has_aux=True)
    assert_tree_close(out, jout)
    assert_tree_close(pullback(rand(2, seed=4)), jpullback(rand(2, seed=4)))
    assert aux[1] == "tag"
    assert_tree_close(aux[0], jaux[0])


def test_vjp_cotangent_structure_errors() -> None:
    _, pullback = fgrad.vjp(lambda x: (x, fnp.sin(x)), 1.0)
    # JAX raises ValueError with "unexpected tree structure"; fgrad names both structures.
    with pytest.raises((TypeError, ValueError), match="structure"):
        pullback(1.0)
    with pytest.raises((TypeError, ValueError), match="structure"):
        pullback([1.0, 1.0])
    _, pullback = fgrad.vjp(lambda x: x * 2.0, fnp.ones(3))
    with pytest.raises((TypeError, ValueError), match=r"f32\[2\].*f32\[3\]"):
        pullback(fnp.ones(2))


def test_vjp_integer_primal_gets_zero_cotangent() -> None:
    out, pullback = fgrad.vjp(lambda x, n: x * n, 2.0, 3)
    ct_x, ct_n = pullback(1.0)
    np.testing.assert_allclose(np.asarray(ct_x), 3.0)
    assert np.shape(ct_n) == () and not np.any(np.asarray(ct_n))


# --- linearize -------------------------------------------------------------------------------

def test_linearize_matches_jvp(x64: None) -> None:
    f = lambda x, y: (fnp.sin(x) * y, fnp.exp(x) + y ** 2)
    jf = lambda x, y: (jnp.sin(x) * y, jnp.exp(x) + y ** 2)
    x, y = rand(3), rand(3, seed=1)
    out, f_jvp = fgrad.linearize(f, x, y)
    jout, jf_jvp = jax.linearize(jf, x, y)
    assert_tree_close(out, jout)
    for seed in (5, 6):  # called twice with different tangents
        tx, ty = rand(3, seed=seed), rand(3, seed=seed + 1)
        assert_tree_close(f_jvp(tx, ty), jf_jvp(tx, ty))
        assert_tree_close(f_jvp(tx, ty), fgrad.jvp(f, (x, y), (tx, ty))[1])


def test_linearize_pytree_and_jit(x64: None) -> None:
    f = lambda d: fnp.sum(fnp.tanh(d["w"]) * d["b"])
    jf = lambda d: jnp.sum(jnp.tanh(d["w"]) * d["b"])
    d = {"w": rand(4), "b": rand(4, seed=1)}
    t = {"w": rand(4, seed=2), "b": rand(4, seed=3)}
    out, f_jvp = fgrad.linearize(f, d)
    _, jf_jvp = jax.linearize(jf, d)
    assert_tree_close(f_jvp(t), jf_jvp(t))
    assert_tree_close(fgrad.jit(f_jvp)(t), jf_jvp(t))
    with pytest.raises(TypeError, match="tree structure"):
        f_jvp([t["w"], t["b"]])


def test_linearize_tangent_shape_error() -> None:
    _, f_jvp = fgrad.linearize(fnp.sin, fnp.ones(3))
    with pytest.raises((TypeError, ValueError), match=r"f32\[3\].*f32\[2\]"):
        f_jvp(fnp.ones(2))


# --- Jacobians and Hessians -----------------------------------------------------------------

JAC_CASES = {
    "vec_to_vec": ((lambda x: fnp.sin(x) * fnp.sum(x), lambda x: jnp.sin(x) * jnp.sum(x)),
                   lambda: (rand(3),)),
    "scalar_to_scalar": ((lambda x: fnp.exp(x) * x, lambda x: jnp.exp(x) * x),
                         lambda: (np.float64(0.7),)),
    "vec_to_scalar": ((lambda x: fnp.sum(fnp.tanh(x) ** 2), lambda x: jnp.sum(jnp.tanh(x) ** 2)),
                      lambda: (rand(4),)),
    "scalar_to_mat": ((lambda x: fnp.ones((2, 3)) * fnp.sin(x),
                       lambda x: jnp.ones((2, 3)) * jnp.sin(x)),
                      lambda: (np.float64(0.3),)),
    "mat_to_mat": ((lambda x: fnp.cos(x) * x, lambda x: jnp.cos(x) * x), lambda: (rand(2, 3),)),
}


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
@pytest.mark.parametrize("case", sorted(JAC_CASES))
def test_jacobians(x64: None, jac: str, case: str) -> None:
    (f, jf), make_args = JAC_CASES[case]
    args = make_args()
    got = getattr(fgrad, jac)(f)(*args)
    want = getattr(jax, jac)(jf)(*args)
    assert_tree_close(got, want)


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_jacobian_pytree_inputs_and_outputs(x64: None, jac: str) -> None:
    f = lambda d: {"o": fnp.sin(d["a"]) * d["b"], "p": (d["a"] * 2.0, d["b"] ** 2)}
    jf = lambda d: {"o": jnp.sin(d["a"]) * d["b"], "p": (d["a"] * 2.0, d["b"] ** 2)}
    d = {"a": rand(3), "b": np.float64(1.7)}
    got = getattr(fgrad, jac)(f)(d)
    want = getattr(jax, jac)(jf)(d)
    assert_tree_close(got, want)
    assert got["o"]["a"].shape == (3, 3) and got["p"][0]["b"].shape == (3,)


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1,)])
def test_jacobian_argnums(x64: None, jac: str, argnums: Any) -> None:
    f = lambda x, y: fnp.sin(x) * y + x * x
    jf = lambda x, y: jnp.sin(x) * y + x * x
    args = (rand(3), rand(3, seed=1))
    assert_tree_close(getattr(fgrad, jac)(f, argnums=argnums)(*args),
                      getattr(jax, jac)(jf, argnums=argnums)(*args))


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_jacobian_has_aux(x64: None, jac: str) -> None:
    f = lambda x: (fnp.sin(x), {"x": x, "c": fnp.cos(x)})
    jf = lambda x: (jnp.sin(x), {"x": x, "c": jnp.cos(x)})
    got = getattr(fgrad, jac)(f, has_aux=True)(rand(3))
    want = getattr(jax, jac)(jf, has_aux=True)(rand(3))
    assert_tree_close(got, want)


@pytest.mark.parametrize("jac", ["jacfwd", "jacrev"])
def test_jacobian_size_zero(x64: None, jac: str) -> None:
    x = np.zeros((0,))
    got = getattr(fgrad, jac)(fnp.sin)(x)
    assert np.shape(got) == (0, 0)


def test_jacobian_integer_input_raises() -> None:
    with pytest.raises(TypeError, match="jacfwd requires"):
        fgrad.jacfwd(fnp.sin)(1)
    with pytest.raises(TypeError, match="jacrev requires"):
        fgrad.jacrev(fnp.sin)(1)


def test_hessian(x64: None) -> None:
    f = lambda x: fnp.sum(fnp.sin(x) * x) * fnp.sum(x ** 2)
    jf = lambda x: jnp.sum(jnp.sin(x) * x) * jnp.sum(x ** 2)
    x = rand(3)
    got = fgrad.hessian(f)(x)
    assert got.shape == (3, 3)
    assert_tree_close(got, jax.hessian(jf)(x), rtol=1e-10)
    np.testing.assert_allclose(np.asarray(got), np.asarray(got).T, rtol=1e-12)


def test_hessian_argnums_tuple_and_pytrees(x64: None) -> None:
    f = lambda x, d: fnp.sum(fnp.sin(x) * d["y"]) + d["s"] ** 2 * fnp.sum(x)
    jf = lambda x, d: jnp.sum(jnp.sin(x) * d["y"]) + d["s"] ** 2 * jnp.sum(x)
    args = (rand(2), {"y": rand(2, seed=1), "s": np.float64(0.4)})
    got = fgrad.hessian(f, argnums=(0, 1))(*args)
    want = jax.hessian(jf, argnums=(0, 1))(*args)
    assert_tree_close(got, want, rtol=1e-10)
    # JAX's layout: got[i] is d(grad_i)/d(args), so got[1]["s"][1]["s"] is d2f/ds2.
    assert got[0][1]["y"].shape == (2, 2) and got[1]["s"][1]["s"].shape == ()


def test_hessian_has_aux(x64: None) -> None:
    f = lambda x: (fnp.sum(fnp.sin(x)), x * 2.0)
    jf = lambda x: (jnp.sum(jnp.sin(x)), x * 2.0)
    assert_tree_close(fgrad.hessian(f, has_aux=True)(rand(3)),
                      jax.hessian(jf, has_aux=True)(rand(3)))


def test_jacobians_of_matmul(x64: None) -> None:
    # Uses ``@`` (fgrad.numpy's matmul).
    a = rand(3, 4)
    f = lambda x: fnp.tanh(a @ x)
    jf = lambda x: jnp.tanh(a @ x)
    x = rand(4, seed=7)
    assert_tree_close(fgrad.jacfwd(f)(x), jax.jacfwd(jf)(x))
    assert_tree_close(fgrad.jacrev(f)(x), jax.jacrev(jf)(x))
    assert_tree_close(fgrad.hessian(lambda x: fnp.sum(f(x)))(x),
                      jax.hessian(lambda x: jnp.sum(jf(x)))(x), rtol=1e-10)


@pytest.mark.parametrize("f, negated", [(lambda x: x + 2.0, False), (lambda x: 2.0 - x, True),
                                         (lambda x: x - fnp.ones(3), False),
                                         (lambda x: fnp.ones(3) + x, False)],
                         ids=["x+c", "c-x", "x-C", "C+x"])
def test_constant_operands_add_nothing_to_the_linear_program(f: Any, negated: bool) -> None:
    """A constant's tangent is a symbolic zero: (x + c)' = x', (c - x)' = -x'."""
    x = np.arange(3.0, dtype=np.float32)
    _, f_lin = fgrad.linearize(f, x)
    prims = [e.primitive.name for e in fgrad.make_jaxpr(f_lin)(x).jaxpr.eqns]
    assert prims == (["neg"] if negated else []), prims
    t = np.ones(3, np.float32)
    np.testing.assert_array_equal(f_lin(t), -t if negated else t)
