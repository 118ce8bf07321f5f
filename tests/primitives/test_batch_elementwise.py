"""Batching rules of the elementwise primitives (``fgrad/primitives/elementwise.py``)
and of ``add_any``.

Every primitive is run through ``vmap`` with random batch axes (``None`` for
each operand, 0, the last axis, a middle one) and compared with a Python loop
over the batch (``batch_util.check_vmap``: shape, dtype, weak type, values),
also with the batch put elsewhere in the output (``out_axes``). Then the
compositions: nested ``vmap`` with different axes against JAX,
``jit(vmap(f))`` against eager, ``vmap(grad(f))`` (first and second order)
and ``grad`` of a summed ``vmap`` against JAX in float64, batch sizes 1 and
0, weak types (``vmap(lambda x: x * 2.0)``), and the jaxprs the rules emit:
operands batched at the same axis are combined as they are, an unbatched
operand costs one ``broadcast_in_dim`` and no transpose.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import numpy as np
import pytest
from batch_util import batch_args, check_vmap, random_in_axes, random_values, seeded_rng
from jax import lax as jlax
from jit_compare import assert_matches_eager

import fgrad
from fgrad import lax
from fgrad.core.ad_util import add_any_p
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.core.primitive import Primitive, all_primitives
from fgrad.primitives import elementwise as ew

B = 3           # batch size of most tests
SHAPE = (2, 3)  # per-example shape: batched operands have 3 axes, so "middle" exists




def examples(rng: np.random.Generator, n: int, specs: Sequence[tuple[Any, tuple[float, float]]],
             shape: Sequence[int] = SHAPE) -> list[list[np.ndarray]]:
    """``n`` per-example argument lists; ``specs`` gives (dtype, domain) per argument."""
    return [[random_values(rng, shape, dt, dom) for dt, dom in specs] for _ in range(n)]


def eqn_names(f: Callable[..., Any], *args: Any) -> list[str]:
    return [e.primitive.name for e in fgrad.make_jaxpr(f)(*args).eqns]


# --- the primitives ---------------------------------------------------------------------------
# name -> (domain, dtypes, differentiable). dtypes are the ones the primitive accepts.
F32, I32, BOOL = np.float32, np.int32, np.bool_
UNARY: dict[str, tuple[tuple[float, float], tuple[Any, ...], bool]] = {
    "neg": ((-2, 2), (F32, I32), True), "sign": ((-2, 2), (F32, I32), False),
    "floor": ((-2, 2), (F32,), False), "ceil": ((-2, 2), (F32,), False),
    "is_finite": ((-2, 2), (F32,), False), "exp": ((-2, 2), (F32,), True),
    "exp2": ((-2, 2), (F32,), True), "log": ((0.1, 3), (F32,), True),
    "log1p": ((-0.5, 2), (F32,), True), "expm1": ((-2, 2), (F32,), True),
    "tanh": ((-2, 2), (F32,), True), "logistic": ((-2, 2), (F32,), True),
    "sin": ((-2, 2), (F32,), True), "cos": ((-2, 2), (F32,), True),
    "tan": ((-1.2, 1.2), (F32,), True), "asin": ((-0.9, 0.9), (F32,), True),
    "acos": ((-0.9, 0.9), (F32,), True), "atan": ((-2, 2), (F32,), True),
    "sinh": ((-2, 2), (F32,), True), "cosh": ((-2, 2), (F32,), True),
    "asinh": ((-2, 2), (F32,), True), "acosh": ((1.1, 3), (F32,), True),
    "atanh": ((-0.9, 0.9), (F32,), True), "sqrt": ((0.1, 3), (F32,), True),
    "rsqrt": ((0.1, 3), (F32,), True), "cbrt": ((0.1, 3), (F32,), True),
    "abs": ((-2, 2), (F32, I32), True), "erf": ((-2, 2), (F32,), True),
    "erfc": ((-2, 2), (F32,), True), "erf_inv": ((-0.9, 0.9), (F32,), True),
    "lgamma": ((0.5, 3), (F32,), True), "digamma": ((0.5, 3), (F32,), False),
    "bitwise_not": ((-2, 2), (I32, BOOL), False), "square": ((-2, 2), (F32, I32), True),
}
BINARY: dict[str, tuple[tuple[float, float], tuple[Any, ...], bool]] = {
    "add": ((-2, 2), (F32, I32), True), "sub": ((-2, 2), (F32, I32), True),
    "mul": ((-2, 2), (F32, I32), True), "div": ((0.5, 2), (F32, I32), True),
    "rem": ((0.5, 2), (F32, I32), False), "pow": ((0.5, 2), (F32,), True),
    "max": ((-2, 2), (F32, I32, BOOL), True), "min": ((-2, 2), (F32, I32, BOOL), True),
    "atan2": ((0.5, 2), (F32,), True), "bitwise_and": ((-2, 2), (I32, BOOL), False),
    "bitwise_or": ((-2, 2), (I32, BOOL), False), "bitwise_xor": ((-2, 2), (I32, BOOL), False),
    "eq": ((-2, 2), (F32, I32, BOOL), False), "ne": ((-2, 2), (F32, I32, BOOL), False),
    "lt": ((-2, 2), (F32, I32, BOOL), False), "le": ((-2, 2), (F32, I32, BOOL), False),
    "gt": ((-2, 2), (F32, I32, BOOL), False), "ge": ((-2, 2), (F32, I32, BOOL), False),
    "nextafter": ((-2, 2), (F32,), False),
}
UNARY_CASES = [(n, np.dtype(d).name) for n, (_, dts, _) in UNARY.items() for d in dts]
BINARY_CASES = [(n, np.dtype(d).name) for n, (_, dts, _) in BINARY.items() for d in dts]
# Differentiable ops that are smooth on their domain (max/min tie only on a null set).
DIFF_UNARY = [n for n, (_, _, d) in UNARY.items() if d]
DIFF_BINARY = [n for n, (_, _, d) in BINARY.items() if d]
OUT_AXES = (0, -1, 1)


def test_every_elementwise_primitive_has_a_batch_rule() -> None:
    names = {p.name for p in vars(ew).values() if isinstance(p, Primitive)}
    assert len(names) >= 57, sorted(names)
    missing = sorted(n for n in names | {"add_any"} if all_primitives()[n].batch is None)
    assert not missing, f"no batching rule: {missing}"


@pytest.mark.parametrize("name,dtype", UNARY_CASES)
def test_unary_matches_loop(name: str, dtype: str) -> None:
    domain = UNARY[name][0]
    fn = getattr(lax, name)
    rng = seeded_rng(name, dtype)
    for trial in range(3):
        in_axes = random_in_axes(rng, [len(SHAPE)])
        batched = batch_args(examples(rng, B, [(dtype, domain)]), in_axes)
        check_vmap(fn, batched, in_axes, OUT_AXES[trial], what=name)


@pytest.mark.parametrize("name,dtype", BINARY_CASES)
def test_binary_matches_loop(name: str, dtype: str) -> None:
    domain = BINARY[name][0]
    fn = getattr(lax, name)
    rng = seeded_rng(name, dtype)
    # every combination of batched / unbatched operands, then random axes
    fixed: list[list[int | None]] = [[0, None], [None, -1], [1, 1], [-1, 0]]
    for trial in range(6):
        in_axes = fixed[trial] if trial < len(fixed) else random_in_axes(rng, [2, 2])
        batched = batch_args(examples(rng, B, [(dtype, domain)] * 2), in_axes)
        check_vmap(fn, batched, in_axes, OUT_AXES[trial % 3], what=name)


@pytest.mark.parametrize("method", [0, 1])
def test_round_matches_loop(method: int) -> None:
    rng = seeded_rng("round", method)
    for trial in range(3):
        in_axes = random_in_axes(rng, [2])
        # halves
        ex = [[np.round(random_values(rng, SHAPE, F32, (-3, 3)) * 2) / 2] for _ in range(B)]
        check_vmap(lambda x: lax.round(x, method), batch_args(ex, in_axes), in_axes,
                   OUT_AXES[trial], what=f"round {method}")


@pytest.mark.parametrize("y,dtype", [(-2, F32), (0, F32), (1, F32), (2, F32), (3, F32),
                                     (3, I32), (0, I32)])
def test_integer_pow_matches_loop(y: int, dtype: Any) -> None:
    rng = seeded_rng("integer_pow", y, dtype)
    for trial in range(3):
        in_axes = random_in_axes(rng, [2])
        ex = examples(rng, B, [(dtype, (0.5, 2))])
        check_vmap(lambda x: lax.integer_pow(x, y), batch_args(ex, in_axes), in_axes,
                   OUT_AXES[trial], what=f"integer_pow {y}")


def test_is_finite_with_nonfinite_values() -> None:
    x = np.array([[0.0, np.inf, -np.inf], [np.nan, 1.0, -2.0]], np.float32)
    batched = np.stack([x, x[:, ::-1], x[::-1]], axis=1)
    check_vmap(lax.is_finite, [batched], [1], -1, what="is_finite")


@pytest.mark.parametrize("src,dst,weak", [
    (F32, I32, False), (F32, BOOL, False), (I32, F32, False), (BOOL, F32, False),
    (F32, np.float16, False), (I32, F32, True), (F32, F32, True)])
def test_convert_element_type_matches_loop(src: Any, dst: Any, weak: bool) -> None:
    rng = seeded_rng("convert", src, dst, weak)
    for trial in range(3):
        in_axes = random_in_axes(rng, [2])
        ex = examples(rng, B, [(src, (-3, 3))])
        check_vmap(lambda x: lax.convert_element_type(x, dst, weak), batch_args(ex, in_axes),
                   in_axes, OUT_AXES[trial], what="convert_element_type")


@pytest.mark.parametrize("pred_axis", [None, 0, -1, 1])
@pytest.mark.parametrize("dtype", [F32, I32, BOOL])
def test_select_n_bool_predicate(pred_axis: int | None, dtype: Any) -> None:
    rng = seeded_rng("select_n", pred_axis, dtype)
    for trial in range(4):
        case_axes = random_in_axes(rng, [2, 2])
        if pred_axis is None and trial == 0:
            case_axes = [1, None]
        in_axes = [pred_axis, *case_axes]
        if all(a is None for a in in_axes):
            in_axes[1] = 0
        ex = examples(rng, B, [(BOOL, (0, 1)), (dtype, (-2, 2)), (dtype, (-2, 2))])
        check_vmap(lax.select_n, batch_args(ex, in_axes), in_axes, OUT_AXES[trial % 3],
                   what="select_n")
        check_vmap(lax.select, batch_args(ex, in_axes), in_axes, what="select")


def test_select_n_int32_predicate_three_cases() -> None:
    rng = seeded_rng("select_n3")
    for trial in range(6):
        in_axes = random_in_axes(rng, [2, 2, 2, 2])
        ex = [[rng.integers(0, 3, SHAPE).astype(np.int32)] + [random_values(rng, SHAPE, F32)
                                                             for _ in range(3)]
              for _ in range(B)]
        check_vmap(lax.select_n, batch_args(ex, in_axes), in_axes, OUT_AXES[trial % 3],
                   what="select_n 3 cases")


def test_add_any_matches_loop() -> None:
    rng = seeded_rng("add_any")
    for in_axes in ([0, 0], [0, None], [None, 2], [2, 1], [-1, 0]):
        batched = batch_args(examples(rng, B, [(F32, (-2, 2))] * 2), in_axes)
        check_vmap(add_any_p.bind, batched, in_axes, what="add_any")


# --- weak types -------------------------------------------------------------------------------

def test_weak_types_preserved() -> None:
    x = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    # a Python scalar meets a batched strong operand: strong float32, like the loop
    check_vmap(lambda a: a * 2.0, [x], [0], what="x * 2.0")
    check_vmap(lambda a: a * 2.0, [x.astype(np.float16)], [1], what="f16 x * 2.0")
    # a batched weak operand: weak results where the loop's are weak
    weak_x = fgrad.Array(x, True)
    check_vmap(lambda a: a * 2.0, [weak_x], [0], what="weak x * 2.0")
    check_vmap(lambda a, b: lax.add(a, b), [weak_x, fgrad.Array(x[0], True)], [0, None],
               what="weak + weak")
    check_vmap(lambda a, b: lax.add(a, b), [weak_x, x[0]], [0, None], what="weak + strong")
    check_vmap(lax.exp, [weak_x], [1], what="exp(weak)")
    check_vmap(lambda p, a, b: lax.select(p, a, b),
               [x > 2, weak_x, fgrad.Array(x[0], True)], [0, 0, None], what="select weak")
    out = fgrad.vmap(lambda a: a * 2.0)(weak_x)
    assert out.dtype == np.float32 and out.weak_type


# --- compositions -----------------------------------------------------------------------------

def nested_shape(shape: tuple[int, ...], inner: int | None, outer: int | None,
                 inner_size: int = 4, outer_size: int = 3) -> tuple[int, ...]:
    """The shape of an operand of ``vmap(vmap(f, inner), outer)`` whose examples are ``shape``."""
    out = list(shape)
    for ax, size in ((inner, inner_size), (outer, outer_size)):
        if ax is not None:
            out.insert(ax % (len(out) + 1), size)
    return tuple(out)


NESTED = [((0, None), (1, 0)), ((1, 1), (None, 2)), ((-1, 0), (0, 0)), ((None, 0), (1, -1))]


@pytest.mark.parametrize("inner,outer", NESTED)
@pytest.mark.parametrize("name", ["add", "atan2", "lt", "max"])
def test_nested_vmap_matches_jax(name: str, inner: tuple[Any, Any],
                                 outer: tuple[Any, Any]) -> None:
    rng = seeded_rng("nested", name, inner, outer)
    x, y = (random_values(rng, nested_shape((5,), i, o), F32, (0.5, 2))
            for i, o in zip(inner, outer))
    f, jf = getattr(lax, name), getattr(jlax, name)
    got = fgrad.vmap(fgrad.vmap(f, in_axes=inner), in_axes=outer)(x, y)
    want = jax.vmap(jax.vmap(jf, in_axes=inner), in_axes=outer)(x, y)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)


def test_nested_vmap_select_and_unary() -> None:
    rng = seeded_rng("nested select")
    inner, outer = (1, 0, 2), (0, None, 1)
    p, a, b = (random_values(rng, nested_shape((2, 5), i, o), dt)
               for i, o, dt in zip(inner, outer, (BOOL, F32, F32)))

    def f(p: Any, a: Any, b: Any) -> Any:
        return lax.select(p, lax.sin(a), lax.integer_pow(b, 2))

    def jf(p: Any, a: Any, b: Any) -> Any:
        return jlax.select(p, jlax.sin(a), jlax.integer_pow(b, 2))

    got = fgrad.vmap(fgrad.vmap(f, inner), outer, out_axes=-1)(p, a, b)
    want = jax.vmap(jax.vmap(jf, inner), outer, out_axes=-1)(p, a, b)
    assert got.shape == want.shape == (4, 2, 5, 3)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)


@pytest.mark.parametrize("name", ["add", "mul", "pow", "eq", "bitwise_xor", "nextafter"])
def test_jit_of_vmap_matches_eager(name: str) -> None:
    rng = seeded_rng("jit", name)
    dtype = I32 if name == "bitwise_xor" else F32
    f = getattr(lax, name)
    for in_axes in ((0, None), (None, 1), (2, 0), (1, 1)):
        x, y = batch_args(examples(rng, B, [(dtype, (0.5, 2))] * 2), in_axes)
        eager = fgrad.vmap(f, in_axes)(x, y)
        jitted = fgrad.jit(fgrad.vmap(f, in_axes, out_axes=-1))(x, y)
        assert_matches_eager(np.moveaxis(np.asarray(jitted), -1, 0), np.asarray(eager))


def test_jit_of_vmap_unary_select_convert() -> None:
    rng = seeded_rng("jit2")
    x, p = random_values(rng, (2, 3, 4), F32), random_values(rng, (3, 4), BOOL)

    def f(p: Any, x: Any) -> Any:
        y = lax.select(p, lax.tanh(x), lax.round(x, 1))
        return lax.convert_element_type(y, np.int32), lax.integer_pow(y, 3)

    eager = fgrad.vmap(f, (None, 0))(p, x)
    jitted = fgrad.jit(fgrad.vmap(f, (None, 0)))(p, x)
    for e, j in zip(eager, jitted):
        assert e.dtype == j.dtype
        assert_matches_eager(j, e)


@pytest.mark.parametrize("name", DIFF_UNARY)
def test_vmap_of_grad_unary_matches_jax(name: str, x64: None) -> None:
    domain = UNARY[name][0]
    rng = seeded_rng("grad", name)
    f, jf = getattr(lax, name), getattr(jlax, name)
    x = random_values(rng, (4, 3, 2), np.float64, domain)
    # one jitted oracle (one compilation); the other batch axes are moved copies of x
    want = np.asarray(jax.jit(jax.vmap(jax.grad(lambda v: jf(v).sum())))(x))
    for ax in (0, 1, -1):
        got = fgrad.vmap(fgrad.grad(lambda v: f(v).sum()), in_axes=ax, out_axes=ax)(
            np.moveaxis(x, 0, ax))
        np.testing.assert_allclose(np.moveaxis(np.asarray(got), ax, 0), want, rtol=1e-10,
                                   atol=1e-12)
    if name == "lgamma":
        return  # its second derivative needs digamma's JVP, which fgrad does not have
    # second order, batch of scalars: vmap(grad(grad(f)))
    s = x[:, 0, 0]
    got2 = fgrad.vmap(fgrad.grad(fgrad.grad(f)))(s)
    want2 = jax.jit(jax.vmap(jax.grad(jax.grad(jf))))(s)
    np.testing.assert_allclose(np.asarray(got2), np.asarray(want2), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", DIFF_BINARY)
def test_vmap_of_grad_binary_matches_jax(name: str, x64: None) -> None:
    domain = BINARY[name][0]
    rng = seeded_rng("grad2", name)
    f, jf = getattr(lax, name), getattr(jlax, name)
    x = random_values(rng, (4, 3), np.float64, domain)
    y = random_values(rng, (3, 4), np.float64, domain)
    for in_axes in ((0, 1), (0, None), (None, 1)):
        xa = x if in_axes[0] is not None else x[0]
        ya = y if in_axes[1] is not None else y[:, 0]
        got = fgrad.vmap(fgrad.grad(lambda a, b: f(a, b).sum(), argnums=(0, 1)), in_axes)(xa, ya)
        want = jax.jit(jax.vmap(jax.grad(lambda a, b: jf(a, b).sum(), argnums=(0, 1)),
                                in_axes))(xa, ya)
        for g, w in zip(got, want):
            assert g.shape == w.shape
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)
    # second order in the first argument, per example
    got2 = fgrad.vmap(fgrad.grad(fgrad.grad(f)), (0, None))(x[:, 0], y[0, 0])
    want2 = jax.jit(jax.vmap(jax.grad(jax.grad(jf)), (0, None)))(x[:, 0], y[0, 0])
    np.testing.assert_allclose(np.asarray(got2), np.asarray(want2), rtol=1e-9, atol=1e-12)


def test_grad_of_summed_vmap_matches_jax(x64: None) -> None:
    rng = seeded_rng("grad of vmap")
    x, y = random_values(rng, (3, 4), np.float64), random_values(rng, (4,), np.float64)
    p = random_values(rng, (4, 3), BOOL)

    def f(x: Any, y: Any, p: Any, lib: Any) -> Any:
        z = lib.mul(lib.sin(x), lib.exp(y))
        w = lib.select(p, lib.max(z, y), lib.integer_pow(z, 3))
        return lib.atan2(w, lib.add(lib.abs(y), lib.full_like(y, 1.0)))

    got = fgrad.grad(lambda x, y: fgrad.vmap(lambda a, b, c: f(a, b, c, lax),
                                             (0, None, 1))(x, y, p).sum(), argnums=(0, 1))(x, y)
    want = jax.jit(jax.grad(lambda x, y: jax.vmap(lambda a, b, c: f(a, b, c, jlax),
                                                  (0, None, 1))(x, y, p).sum(),
                            argnums=(0, 1)))(x, y)
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-12)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(
        lambda x: fgrad.vmap(lambda a: lax.sin(lax.mul(a, a)))(x).sum()))(x))
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.vmap(fgrad.grad(
        lambda a, b: lax.max(lax.sin(a), b).sum()), (0, None)))(x, y))


@pytest.mark.parametrize("size", [1, 0])
def test_batch_sizes_one_and_zero(size: int) -> None:
    rng = seeded_rng("sizes", size)
    x, y = random_values(rng, (size, 2, 3), F32), random_values(rng, (2, 3), F32)
    p = random_values(rng, (2, 3, size), BOOL)

    def f(x: Any, y: Any, p: Any, lib: Any) -> Any:
        return lib.select(p, lib.mul(lib.exp(x), y), lib.sub(x, y))

    got = fgrad.vmap(lambda a, b, c: f(a, b, c, lax), (0, None, 2), out_axes=1)(x, y, p)
    want = jax.vmap(lambda a, b, c: f(a, b, c, jlax), (0, None, 2), out_axes=1)(x, y, p)
    assert got.shape == want.shape == (2, size, 3)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)


# --- what the rules emit ----------------------------------------------------------------------

def test_rules_do_not_move_or_broadcast_needlessly() -> None:
    x = np.zeros((2, 3, 4), np.float32)
    # unary at a middle axis, batch left in place: the primitive alone
    assert eqn_names(fgrad.vmap(lax.sin, 1, out_axes=1), x) == ["sin"]
    # operands batched at the same axis: applied as they are
    assert eqn_names(fgrad.vmap(lax.add, (2, 2), out_axes=2), x, x) == ["add"]
    # an unbatched operand: one broadcast, no transpose
    assert eqn_names(fgrad.vmap(lax.add, (1, None), out_axes=1), x, x[:, 0]) == [
        "broadcast_in_dim", "add"]
    assert eqn_names(fgrad.vmap(add_any_p.bind, (None, 0)), x[0], x) == [
        "broadcast_in_dim", "add_any"]
    # different axes: the second operand moves to the first one's axis, nothing else
    assert eqn_names(fgrad.vmap(lax.mul, (1, 0), out_axes=1), x, np.zeros((3, 2, 4))
                     .astype(np.float32)) == ["transpose", "mul"]
    # select with an unbatched predicate broadcasts only the predicate
    assert eqn_names(fgrad.vmap(lax.select, (None, 0, 0)), x[0] > 0, x, x) == [
        "broadcast_in_dim", "select_n"]


def test_batched_shape_rule_errors_still_name_the_operation() -> None:
    x = np.zeros((3, 2), np.float32)
    with pytest.raises(fgrad.core.errors.FgradTypeError, match="add: operands must have equal"):
        fgrad.vmap(lax.add, (0, None))(x, np.zeros((4,), np.float32))
    with pytest.raises(fgrad.core.errors.FgradTypeError, match="sin: .*floating-point"):
        fgrad.vmap(lax.sin)(x.astype(np.int32))
