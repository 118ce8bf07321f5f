"""Focused tests for ``fgrad.numpy``'s elementwise functions (``_ufuncs.py``, ``_logic.py``).

The op table (``tests/op_table/numpy_api.py``) runs every function through the
generic suites on random inputs. Here: the dtype/weak-type promotion matrix
against ``jax.numpy`` (Python scalars, bools, ints, 16-bit floats), special
values (inf, NaN, -0.0, huge), integer division and powers, derivatives at
kinks against ``jax.grad``, errors, ``jit``, and broadcasting with hypothesis.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fgrad
import fgrad.numpy as fnp
import strategies
from fgrad.core.jaxpr import typecheck_jaxpr

BF16 = ml_dtypes.bfloat16


from jax_compare import assert_matches, weak  # noqa: E402,F401
from jit_compare import assert_matches_eager


# --- the promotion matrix -----------------------------------------------------------------------

# Operand kinds: (name, fgrad value, JAX value). Python scalars are weak, 0-d arrays made
# from Python scalars too; numpy and fgrad arrays are strong.
KINDS: list[tuple[str, Any, Any]] = [
    ("int", 3, 3),
    ("float", 1.5, 1.5),
    ("bool", True, True),
    ("weak_f32_0d", fnp.array(2.5), jnp.array(2.5)),
    ("bool[3]", np.array([True, False, True]), np.array([True, False, True])),
    ("i8[3]", np.array([-3, 0, 5], np.int8), np.array([-3, 0, 5], np.int8)),
    ("u8[3]", np.array([1, 0, 7], np.uint8), np.array([1, 0, 7], np.uint8)),
    ("i32[3]", np.array([-7, 2, 9], np.int32), np.array([-7, 2, 9], np.int32)),
    ("f16[3]", np.array([0.5, -1.25, 3.0], np.float16), np.array([0.5, -1.25, 3.0], np.float16)),
    ("bf16[3]", np.array([0.5, -2.0, 1.5], BF16), np.array([0.5, -2.0, 1.5], BF16)),
    ("f32[2,1]", np.array([[1.5], [-0.75]], np.float32), np.array([[1.5], [-0.75]], np.float32)),
]
BINARY = ["add", "subtract", "multiply", "divide", "true_divide", "floor_divide", "remainder",
          "mod", "fmod", "power", "float_power", "maximum", "minimum", "fmax", "fmin",
          "arctan2", "hypot", "logaddexp", "logaddexp2", "copysign", "nextafter", "heaviside",
          "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "logical_and",
          "logical_or", "logical_xor", "bitwise_and", "bitwise_or", "bitwise_xor",
          "left_shift", "right_shift", "isclose"]
UNARY = ["exp", "exp2", "expm1", "log", "log1p", "log2", "log10", "sqrt", "cbrt", "sin", "cos",
         "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "arcsinh", "arccosh",
         "arctanh", "negative", "positive", "sign", "square", "reciprocal", "absolute", "abs",
         "fabs", "floor", "ceil", "trunc", "rint", "round", "around", "deg2rad", "rad2deg",
         "isnan", "isinf", "isfinite", "isposinf", "isneginf", "signbit", "sinc", "nan_to_num",
         "real", "imag", "conj", "conjugate", "logical_not", "invert", "bitwise_not"]


def _call(f: Callable[..., Any], *args: Any) -> tuple[Any, BaseException | None]:
    try:
        with np.errstate(all="ignore"):
            return f(*args), None
    except (TypeError, ValueError) as e:
        return None, e


def _check_like_jax(name: str, args: tuple[Any, ...], jargs: tuple[Any, ...],
                    values: bool = False) -> None:
    """fgrad's result has JAX's shape, dtype and weak type (and values, if asked), or both raise.

    Types come from ``jax.eval_shape`` (tracing only, so the matrix stays fast).
    """
    jfn = getattr(jnp, name)
    values = values or name == "power"  # (a concrete integer exponent changes jnp.power's path)
    want, j_error = _call(jfn if values else lambda *a: jax.eval_shape(jfn, *a), *jargs)
    got, f_error = _call(getattr(fnp, name), *args)
    what = f"{name}{tuple(type(a).__name__ if np.ndim(a) == 0 else a.dtype for a in jargs)}"
    if j_error is not None:
        assert f_error is not None, f"{what}: JAX raises {j_error!r}, fgrad returned {got}"
        return
    assert f_error is None, f"{what}: fgrad raised {f_error!r}"
    if values:
        assert_matches(got, want, rtol=2e-2 if "16" in str(np.asarray(want).dtype) else 1e-6,
                       what=what)
        return
    for g, w in zip(fgrad.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                    strict=True):
        assert (g.shape, g.dtype, g.weak_type) == (w.shape, w.dtype, w.weak_type), (
            f"{what}: got {g.dtype}{list(g.shape)} weak={g.weak_type}, "
            f"JAX {w.dtype}{list(w.shape)} weak={w.weak_type}")


@pytest.mark.parametrize("name", BINARY)
def test_binary_promotion_matrix(name: str) -> None:
    for (_, x, jx), (_, y, jy) in itertools.product(KINDS, KINDS):
        _check_like_jax(name, (x, y), (jx, jy))


@pytest.mark.parametrize("name", UNARY)
def test_unary_promotion_matrix(name: str) -> None:
    for _, x, jx in KINDS:
        _check_like_jax(name, (x,), (jx,))


@pytest.mark.parametrize("name", ["add", "divide", "floor_divide", "remainder", "power",
                                  "maximum", "logaddexp", "less", "right_shift"])
def test_mixed_type_values(name: str) -> None:
    arrays = [KINDS[i] for i in (4, 7, 8, 10)]  # bool, int32, float16, float32 (2, 1)
    for (_, x, jx), (_, y, jy) in itertools.product(KINDS[:4] + arrays, arrays):
        _check_like_jax(name, (x, y), (jx, jy), values=True)


def test_weak_types_follow_jax() -> None:
    x16 = fnp.ones(3, np.float16)
    assert fnp.multiply(x16, 2.0).dtype == np.float16 and not fnp.multiply(x16, 2.0).weak_type
    out = fnp.add(1, 2.0)
    assert (out.dtype, out.weak_type) == (np.float32, True)
    assert fnp.add(fnp.array(1), 2).weak_type and fnp.add(fnp.array(1), 2).dtype == np.int32
    assert (x16 * 3).dtype == np.float16  # a weak int never widens a float
    assert fnp.sin(2).weak_type and fnp.sin(2).dtype == np.float32


def test_promotion_under_x64(x64: None) -> None:
    for name, args in [("add", (np.int64(3), 1.5)), ("multiply", (np.float32(2), 2.0)),
                       ("divide", (np.arange(3), 2)), ("power", (np.arange(3), 0.5)),
                       ("maximum", (np.float16(1), np.int64(2))), ("arctan2", (1, 2)),
                       ("floor_divide", (np.arange(-3, 3), np.int8(2)))]:
        _check_like_jax(name, args, args, values=True)
    assert fnp.sin(1.0).dtype == np.float64 and fnp.arange(3).dtype == np.int64


# --- special values ---------------------------------------------------------------------------

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-30, 0.5, -2.0, 3.0],
                   np.float32)


@pytest.mark.parametrize("name", [n for n in UNARY if n not in ("invert", "bitwise_not")])
def test_unary_special_values(name: str) -> None:
    want, j_error = _call(getattr(jnp, name), SPECIAL)
    got = getattr(fnp, name)(SPECIAL)
    if name == "signbit":  # the one known difference: the sign of a NaN needs a bitcast
        want = np.asarray(want).copy()
        want[0] = False
    assert_matches(got, jnp.asarray(want) if name == "signbit" else want, rtol=2e-6, what=name)


@pytest.mark.parametrize("name", ["add", "subtract", "multiply", "divide", "power", "maximum",
                                  "minimum", "fmax", "fmin", "arctan2", "hypot", "logaddexp",
                                  "logaddexp2", "copysign", "heaviside", "floor_divide",
                                  "remainder", "fmod", "float_power", "nextafter", "isclose"])
def test_binary_special_values(name: str) -> None:
    x, y = (a.ravel() for a in np.meshgrid(SPECIAL, SPECIAL))
    want = getattr(jnp, name)(x, y)
    with np.errstate(all="ignore"):
        got = getattr(fnp, name)(x, y)
    assert_matches(got, want, rtol=2e-6, what=name)


def test_signbit_negative_zero_and_copysign() -> None:
    x = np.array([-0.0, 0.0, -1.0, 1.0, -np.inf], np.float32)
    np.testing.assert_array_equal(fnp.signbit(x), [True, False, True, False, True])
    np.testing.assert_array_equal(fnp.copysign(1.0, x), jnp.copysign(1.0, x))
    np.testing.assert_array_equal(fnp.signbit(np.array([-3, 0, 2], np.int8)), [True, False, False])


# --- integers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8, np.uint32])
@pytest.mark.parametrize("name", ["floor_divide", "remainder", "fmod", "divmod"])
def test_integer_division_exhaustive(name: str, dtype: Any) -> None:
    lo = 0 if np.issubdtype(dtype, np.unsignedinteger) else -9
    x, y = (a.ravel().astype(dtype) for a in np.meshgrid(np.arange(lo, 10), np.arange(lo, 5)))
    assert_matches(getattr(fnp, name)(x, y), getattr(jnp, name)(x, y), what=name)


def test_integer_power() -> None:
    x = np.array([0, 1, -1, 2, -2, 3, 7], np.int32)
    for y in [0, 1, 2, 3, 10, 31]:
        assert_matches(fnp.power(x, y), jnp.power(x, y), what=f"x ** {y}")
        assert_matches(fnp.power(x, np.full(7, y, np.int32)), jnp.power(x, np.full(7, y, np.int32)))
    ys = np.array([-1, -2, 0, 40, 63, -64, 5], np.int32)
    assert_matches(fnp.power(x, ys), jnp.power(x, ys), what="int ** int array (wraps)")
    assert_matches(fnp.power(np.uint8(3), np.arange(8, dtype=np.uint8)),
                   jnp.power(np.uint8(3), np.arange(8, dtype=np.uint8)))
    with pytest.raises(TypeError, match="negative powers"):
        fnp.power(x, -1)
    with pytest.raises(TypeError, match="negative powers"):
        fgrad.jit(lambda a: a ** -2)(x)


def test_static_integer_exponents_use_integer_pow() -> None:
    for y in (2, np.int32(3), fnp.array(2), True):
        jaxpr = fgrad.make_jaxpr(lambda a, y=y: fnp.power(a, y))(1.5)
        assert [e.primitive.name for e in jaxpr.jaxpr.eqns] == ["integer_pow"], str(jaxpr)
    jaxpr = fgrad.make_jaxpr(lambda a: a ** 2.0)(1.5)
    assert "pow" in str(jaxpr) and "integer_pow" not in str(jaxpr)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint8, np.uint16])
def test_shifts_match_jax(dtype: Any) -> None:
    info = np.iinfo(dtype)
    x = np.array([info.min, -5 if info.min < 0 else 5, 0, 1, 77, info.max], dtype)
    for y in range(-2 if info.min < 0 else 0, info.bits + 3):
        ys = np.full(x.shape, y, dtype)
        assert_matches(fnp.left_shift(x, ys), jnp.left_shift(x, ys), what=f"<< {y}")
        assert_matches(fnp.right_shift(x, ys), jnp.right_shift(x, ys), what=f">> {y}")


# --- derivatives at kinks and special points, against jax.grad --------------------------------

def _total(f: Callable[..., Any], tree_leaves: Callable[[Any], list[Any]]) -> Callable[..., Any]:
    """``f`` with its outputs summed to one scalar (so it can be differentiated again)."""
    return lambda *a: sum(tree_leaves(f(*a)))


def _grads_match(f: Callable[..., Any], jf: Callable[..., Any], points: list[Any],
                 order: int = 1, argnums: int | tuple[int, ...] = 0, rtol: float = 1e-12) -> None:
    """The ``order``-th derivatives (of the summed lower ones) agree with JAX's, NaNs included."""
    g, jg = f, jf
    for k in range(order):
        if k:
            g = _total(g, fgrad.tree_util.tree_leaves)
            jg = _total(jg, jax.tree_util.tree_leaves)
        g, jg = fgrad.grad(g, argnums), jax.grad(jg, argnums)
    for p in points:
        p = p if isinstance(p, tuple) else (p,)
        with np.errstate(all="ignore"):
            got = g(*p)
        want = jg(*p)
        for a, b in zip(fgrad.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want),
                        strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=rtol,
                                       equal_nan=True, err_msg=f"order {order} at {p}")


# (name, fgrad function, JAX function, points, orders, argnums)
KINKS = [
    ("abs at 0", fnp.abs, jnp.abs, [0.0, -0.0, 1.5], 2, 0),
    ("sign, floor, round", lambda x: fnp.sign(x) + fnp.floor(x) + fnp.round(x) + fnp.trunc(x),
     lambda x: jnp.sign(x) + jnp.floor(x) + jnp.round(x) + jnp.trunc(x), [0.0, 0.5, 1.0], 1, 0),
    ("maximum tie", fnp.maximum, jnp.maximum, [(1.0, 1.0), (2.0, 1.0), (0.0, -0.0)], 1, (0, 1)),
    ("minimum tie", fnp.minimum, jnp.minimum, [(1.0, 1.0), (-2.0, 1.0)], 1, (0, 1)),
    ("fmax tie", fnp.fmax, jnp.fmax, [(1.0, 1.0), (np.nan, 1.0), (1.0, np.nan)], 1, (0, 1)),
    ("fmin tie", fnp.fmin, jnp.fmin, [(1.0, 1.0), (np.nan, 1.0)], 1, (0, 1)),
    ("clip at bounds", lambda x: fnp.clip(x, -1.0, 1.0), lambda x: jnp.clip(x, -1.0, 1.0),
     [-1.0, 1.0, 0.0, 2.0, -3.0], 1, 0),
    ("clip bound gradients", lambda x, lo, hi: fnp.clip(x, lo, hi),
     lambda x, lo, hi: jnp.clip(x, lo, hi), [(1.0, 1.0, 2.0), (2.0, 0.0, 2.0), (3.0, 0.0, 2.0)],
     1, (0, 1, 2)),
    ("where routes", lambda x: fnp.where(x > 0, fnp.sqrt(x), 0.0),
     lambda x: jnp.where(x > 0, jnp.sqrt(x), 0.0), [-1.0, 0.0, 4.0], 1, 0),
    ("double where", lambda x: fnp.where(x > 0, fnp.sqrt(fnp.where(x > 0, x, 1.0)), 0.0),
     lambda x: jnp.where(x > 0, jnp.sqrt(jnp.where(x > 0, x, 1.0)), 0.0), [-1.0, 4.0], 2, 0),
    ("sqrt, cbrt, log at 0", lambda x: fnp.sqrt(x) + fnp.cbrt(x) + fnp.log(x),
     lambda x: jnp.sqrt(x) + jnp.cbrt(x) + jnp.log(x), [0.0], 1, 0),
    ("powers at 0", lambda x: x ** 2 + x ** 0 + x ** 1 + fnp.power(x, 3.0),
     lambda x: x ** 2 + x ** 0 + x ** 1 + jnp.power(x, 3.0), [0.0, -1.5], 2, 0),
    ("power in the exponent", lambda x, y: fnp.power(x, y), lambda x, y: jnp.power(x, y),
     [(0.0, 2.0), (2.0, 0.0), (0.0, 0.5), (1.5, -1.0)], 1, (0, 1)),
    ("logaddexp at infinities", fnp.logaddexp, jnp.logaddexp,
     [(-np.inf, -np.inf), (np.inf, 1.0), (1.0, np.inf), (np.inf, np.inf), (1e4, 0.0),
      (0.0, 0.0), (-1e4, 3.0)], 1, (0, 1)),
    ("logaddexp2 at infinities", fnp.logaddexp2, jnp.logaddexp2,
     [(-np.inf, -np.inf), (np.inf, 1.0), (2.0, 2.0)], 1, (0, 1)),
    ("logaddexp second order", fnp.logaddexp, jnp.logaddexp, [(0.5, -1.0), (2.0, 2.0)], 2, 0),
    ("sinc at 0", fnp.sinc, jnp.sinc, [0.0, 0.5, -0.3], 3, 0),
    ("hypot", fnp.hypot, jnp.hypot, [(3.0, 4.0), (0.0, 2.0), (1.0, 1.0), (0.0, 0.0)], 1, (0, 1)),
    ("arctan2", fnp.arctan2, jnp.arctan2, [(0.0, 1.0), (1.0, -1.0), (0.0, 0.0)], 1, (0, 1)),
    ("copysign", fnp.copysign, jnp.copysign, [(0.0, 1.0), (2.0, -1.0), (-2.0, 0.0)], 1, (0, 1)),
    ("heaviside", fnp.heaviside, jnp.heaviside, [(0.0, 0.5), (1.0, 0.5)], 1, (0, 1)),
    ("remainder", fnp.remainder, jnp.remainder, [(5.5, 2.0), (-5.5, 2.0), (4.0, 2.0)], 1,
     (0, 1)),
    ("fmod", fnp.fmod, jnp.fmod, [(5.5, 2.0), (-5.5, 2.0)], 1, (0, 1)),
    ("floor_divide", fnp.floor_divide, jnp.floor_divide, [(5.5, 2.0)], 1, (0, 1)),
    ("nan_to_num", fnp.nan_to_num, jnp.nan_to_num, [1.5, np.inf, np.nan], 1, 0),
    ("deg2rad, log2, log10", lambda x: fnp.deg2rad(x) * fnp.log2(x) + fnp.log10(x),
     lambda x: jnp.deg2rad(x) * jnp.log2(x) + jnp.log10(x), [0.5, 3.0], 2, 0),
]


@pytest.mark.parametrize("case", KINKS, ids=[c[0] for c in KINKS])
def test_derivatives_at_kinks_match_jax(case: Any, x64: None) -> None:
    _, f, jf, points, order, argnums = case
    for k in range(1, order + 1):
        _grads_match(f, jf, points, order=k, argnums=argnums, rtol=1e-12 if k == 1 else 1e-9)


def test_abs_derivative_away_from_zero_and_hypot_copysign(x64: None) -> None:
    # JAX takes abs'(0) = +1 (``select(x >= 0, t, -t)``): above; here the smooth points.
    _grads_match(fnp.abs, jnp.abs, [1.5, -2.0], order=2)
    _grads_match(fnp.hypot, jnp.hypot, [(3.0, 4.0), (-1.0, 2.0), (0.5, -0.5)], argnums=(0, 1))
    _grads_match(fnp.copysign, jnp.copysign, [(2.0, -1.0), (-2.0, 3.0)], argnums=(0, 1))


def test_zero_dimensional_derivatives(x64: None) -> None:
    def f(x: Any, y: Any) -> Any:
        return fnp.sin(x) * fnp.exp(y) - fnp.arctan2(x, y) + x ** 3 / (1.0 + fnp.square(y))

    def jf(x: Any, y: Any) -> Any:
        return jnp.sin(x) * jnp.exp(y) - jnp.arctan2(x, y) + x ** 3 / (1.0 + jnp.square(y))

    _grads_match(f, jf, [(0.3, -0.7), (1.2, 2.0)], order=2, argnums=(0, 1))
    t, jt = fgrad.jvp(f, (0.3, -0.7), (1.0, 0.5)), jax.jvp(jf, (0.3, -0.7), (1.0, 0.5))
    np.testing.assert_allclose(np.asarray(t[1]), np.asarray(jt[1]), rtol=1e-12)


def test_grad_jaxpr_typechecks() -> None:
    def f(x: Any) -> Any:
        y = fnp.where(x > 0, fnp.logaddexp(x, 1.0), fnp.clip(x, -1, 1) ** 2)
        return fnp.sum(fnp.hypot(y, x) + fnp.sinc(x) + fnp.remainder(x, 0.7))

    x = np.linspace(-2, 2, 7).astype(np.float32)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(f))(x).jaxpr)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(fgrad.grad(lambda a: f(a * 1.0))))(0.3).jaxpr)


# --- jit, eager fast path, broadcasting --------------------------------------------------------

def test_jit_matches_eager_bitwise() -> None:
    def f(x: Any, i: Any) -> Any:
        return (fnp.floor_divide(x, 0.3), fnp.remainder(i, 3), fnp.power(i, i), fnp.sinc(x),
                fnp.logaddexp(x, -x), fnp.where(i > 0, x, -x), fnp.clip(x, -0.5, 0.5),
                fnp.isclose(x, x + 1e-9), fnp.round(x, 1), fnp.right_shift(i, 1))

    x = np.linspace(-3, 3, 13).astype(np.float32)
    i = np.arange(-6, 7).astype(np.int32)
    for e, j in zip(f(x, i), fgrad.jit(f, backend="interpret")(x, i)):
        assert e.aval == j.aval
        np.testing.assert_array_equal(np.asarray(e), np.asarray(j))
    assert_matches_eager(fgrad.jit(f)(x, i), f(x, i))  # the default (compiled) backend


def test_eager_fast_path_agrees_with_general_path() -> None:
    x = fnp.array([0.5, -1.5, 2.0], np.float16)
    for f in (fnp.add, fnp.multiply, fnp.divide, fnp.maximum, fnp.less, fnp.arctan2):
        for other in (2, 2.5, True, fnp.array(3.0), fnp.array([1, 2, 3])):
            fast = f(x, other)  # Arrays and Python scalars: the fast path
            general = fgrad.jit(f)(x, other)  # staged: the general path
            assert fast.aval == general.aval, f.__name__
            np.testing.assert_array_equal(np.asarray(fast), np.asarray(general))


@settings(max_examples=25, deadline=None)
@given(shapes=strategies.broadcastable_shapes(2, max_dims=3, max_side=3),
       name=st.sampled_from(["add", "multiply", "arctan2", "maximum", "logaddexp", "less",
                             "hypot", "remainder", "copysign"]))
def test_broadcasting_matches_jax(shapes: Any, name: str) -> None:
    (sx, sy), result = shapes
    rng = np.random.RandomState(0)
    x = rng.uniform(0.5, 2, sx).astype(np.float32)
    y = rng.uniform(0.5, 2, sy).astype(np.float32)
    got = getattr(fnp, name)(x, y)
    assert got.shape == tuple(result)
    assert_matches(got, getattr(jnp, name)(x, y), rtol=1e-6, what=name)


# --- where, clip, isclose ---------------------------------------------------------------------

def test_where_one_argument_form() -> None:
    c = np.array([[0, 3], [2, 0]], np.int32)
    assert_matches(fnp.where(c), jnp.where(c))
    assert_matches(fnp.where(c, size=3), jnp.where(c, size=3))
    assert_matches(fnp.where(c, size=1, fill_value=-1), jnp.where(c, size=1, fill_value=-1))
    with pytest.raises(fgrad.ConcretizationTypeError, match="three-argument where"):
        fgrad.jit(lambda c: fnp.where(c))(c)
    # A JVP tracer knows its value, so the one-argument form works under grad.
    assert fgrad.grad(lambda x: fnp.sum(x[fnp.where(x > 0)[0]]))(np.array([1.0, -1.0, 2.0]))\
        .tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="both or neither"):
        fnp.where(c, 1.0)
    with pytest.raises(ValueError, match="0-d"):
        fnp.where(True)


def test_where_and_clip_types() -> None:
    cond = np.array([True, False, True])
    assert_matches(fnp.where(cond, 1.0, 0), jnp.where(cond, 1.0, 0))
    assert_matches(fnp.where(True, np.float16(1), 2.0), jnp.where(True, np.float16(1), 2.0))
    assert_matches(fnp.where(np.arange(3), fnp.arange(3), -1), jnp.where(np.arange(3),
                                                                          jnp.arange(3), -1))
    x = np.arange(6, dtype=np.int32)
    assert_matches(fnp.clip(x, 1, 4), jnp.clip(x, 1, 4))
    assert_matches(fnp.clip(x, 0.5, 3), jnp.clip(x, 0.5, 3))
    assert_matches(fnp.clip(x, max=2), jnp.clip(x, max=2))
    assert_matches(fnp.clip(x), jnp.clip(x))
    assert_matches(fnp.clip(x, min=np.array([1, 2, 3, 4, 5, 6])), jnp.clip(x, min=np.arange(
        1, 7)))
    assert_matches(fnp.clip(x, a_min=1, a_max=3), jnp.clip(x, 1, 3))  # numpy's keywords
    with pytest.raises(TypeError, match="clip: give each bound once"):
        fnp.clip(x, 1, min=2)


def test_isclose_allclose_array_equal() -> None:
    a = np.array([1.0, np.nan, np.inf, -np.inf, 1e-9, 2.0], np.float32)
    b = np.array([1.0 + 1e-7, np.nan, np.inf, np.inf, 0.0, 2.1], np.float32)
    for equal_nan in (False, True):
        assert_matches(fnp.isclose(a, b, equal_nan=equal_nan), jnp.isclose(a, b,
                                                                           equal_nan=equal_nan))
        assert_matches(fnp.allclose(a, a, equal_nan=equal_nan), jnp.allclose(a, a,
                                                                              equal_nan=equal_nan))
        assert_matches(fnp.array_equal(a, a, equal_nan=equal_nan),
                       jnp.array_equal(a, a, equal_nan=equal_nan))
    assert_matches(fnp.isclose(a, b, rtol=0.1, atol=0.0), jnp.isclose(a, b, rtol=0.1, atol=0.0))
    assert_matches(fnp.allclose(np.arange(3), [0, 1, 2]), jnp.allclose(np.arange(3), jnp.array(
        [0, 1, 2])))
    assert_matches(fnp.array_equal(np.ones(2), np.ones(3)), jnp.array_equal(np.ones(2),
                                                                            np.ones(3)))
    assert bool(fnp.allclose(1.0, 1.0 + 1e-9)) and not bool(fnp.allclose([1.0], [1.1]))


def test_rounding_conventions() -> None:
    x = np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 1.25, -1.35, 123.456], np.float32)
    for d in (0, 1, 2, -1, -2, 50):
        assert_matches(fnp.round(x, d), jnp.round(x, d), what=f"round(x, {d})")
        assert_matches(fnp.round(x.astype(np.float16), d), jnp.round(x.astype(np.float16), d))
    assert_matches(fnp.rint(x), jnp.rint(x))
    assert_matches(fnp.fix(x), jnp.trunc(x))
    assert_matches(fnp.round(np.arange(5), 1), jnp.round(np.arange(5), 1))
    with pytest.raises(NotImplementedError, match="decimals < 0"):
        fnp.round(np.arange(3), -1)


# --- errors ---------------------------------------------------------------------------------

def test_error_messages() -> None:
    with pytest.raises(ValueError, match=r"add: incompatible shapes.*f32\[3\].*f32\[4\]"):
        fnp.add(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="arctan2: incompatible shapes"):
        fgrad.jit(fnp.arctan2)(np.ones((2, 3)), np.ones((3, 2)))
    with pytest.raises(TypeError, match="and: .*integer or boolean"):
        fnp.bitwise_and(np.ones(3, np.float32), 1)
    with pytest.raises(TypeError, match="sub: .*numeric"):
        fnp.subtract(np.array([True]), np.array([False]))
    with pytest.raises(TypeError, match="expected an array or a Python scalar"):
        fnp.sin("1.0")
    with pytest.raises(TypeError, match="complex"):
        fnp.add(1j, 1.0)
