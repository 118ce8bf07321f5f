"""Batching rules of the reductions (``fgrad/primitives/reductions.py``).

``reduce_sum/max/min/prod/and/or`` over every subset of axes, ``argmax`` /
``argmin`` over each axis (ties, NaN, int32 and int64 indices) and the
cumulative ops over each axis in both directions go through ``vmap`` with
the batch axis first, last and in the middle, and are compared with a
Python loop over the batch (``batch_util.check_vmap``: shape, dtype, weak
type, values), also with the batch put elsewhere in the output. Then the
compositions: nested ``vmap`` against JAX, ``jit(vmap(f))`` against eager,
``vmap(grad(f))`` and ``grad`` of a summed ``vmap`` against JAX in float64,
batch sizes 1 and 0, and the jaxprs: a batched reduction is one equation,
with no transpose to put the batch axis anywhere.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import jax
import numpy as np
import pytest
from batch_util import batch_args, check_vmap, random_in_axes, random_values, seeded_rng
from jax import lax as jlax
from jit_compare import assert_matches_eager

import fgrad
from fgrad import lax
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.primitives import reductions as red

B = 3
SHAPE = (2, 3, 4)  # per-example shape; batched operands have 4 axes
F32, I32, BOOL = np.float32, np.int32, np.bool_
OUT_AXES = (0, -1, 2)




def rand(rng: np.random.Generator, shape: Sequence[int], dtype: Any,
         domain: tuple[float, float] = (-2.0, 2.0)) -> np.ndarray:
    return random_values(rng, shape, dtype, domain, int_bound=3)


def batched_operand(rng: np.random.Generator, dtype: Any, in_axis: int,
                    domain: tuple[float, float] = (-2.0, 2.0),
                    shape: Sequence[int] = SHAPE, size: int = B) -> np.ndarray:
    (x,) = batch_args([[rand(rng, shape, dtype, domain)] for _ in range(size)], [in_axis])
    return x


def subsets(ndim: int) -> list[tuple[int, ...]]:
    return [c for r in range(ndim + 1) for c in itertools.combinations(range(ndim), r)]


def eqn_names(f: Callable[..., Any], *args: Any) -> list[str]:
    return [e.primitive.name for e in fgrad.make_jaxpr(f)(*args).eqns]


REDUCERS: dict[str, tuple[Any, ...]] = {
    "reduce_sum": (F32, I32, BOOL), "reduce_max": (F32, I32, BOOL),
    "reduce_min": (F32, I32, BOOL), "reduce_prod": (F32, I32),
    "reduce_and": (I32, BOOL), "reduce_or": (I32, BOOL),
}
CUMULATIVE: dict[str, tuple[Any, ...]] = {
    "cumsum": (F32, I32), "cumprod": (F32, I32), "cummax": (F32, I32), "cummin": (F32, I32),
    "cumlogsumexp": (F32,),
}
BATCH_AXES = (0, 1, 2, -1)  # first, middle, middle, last of the 4-d batched operand


def test_every_reduction_primitive_has_a_batch_rule() -> None:
    prims = [p for p in vars(red).values() if isinstance(p, Primitive)]
    assert len(prims) == 13, prims
    assert not [p.name for p in prims if p.batch is None]


@pytest.mark.parametrize("name,dtype", [(n, np.dtype(d).name) for n, ds in REDUCERS.items()
                                        for d in ds])
def test_reducers_match_loop(name: str, dtype: str) -> None:
    rng = seeded_rng(name, dtype)
    fn = getattr(lax, name)
    for i, axes in enumerate(subsets(len(SHAPE))):
        in_axis = BATCH_AXES[i % len(BATCH_AXES)]
        # reduce_prod: values near 1 keep products of many elements moderate
        x = batched_operand(rng, dtype, in_axis, (0.5, 1.5) if name == "reduce_prod" else
                            (-2.0, 2.0))
        out_axes = (0, -1, (len(SHAPE) - len(axes)) // 2)[i % 3]
        check_vmap(lambda v: fn(v, axes), [x], [in_axis], out_axes, rtol=1e-5,
                   what=f"{name} axes={axes}")


def test_reducers_with_nan_and_weak_types() -> None:
    rng = seeded_rng("nan")
    x = batched_operand(rng, F32, 1)
    x[0, 0, 1, 2] = np.nan
    for fn in (lax.reduce_max, lax.reduce_min, lax.reduce_sum):
        check_vmap(lambda v: fn(v, (1,)), [x], [1], -1, what=fn.__name__)
    weak_x = fgrad.Array(x, True)
    for fn in (lax.reduce_sum, lax.reduce_max, lax.cumsum):
        check_vmap(lambda v: fn(v, (1,)) if fn is not lax.cumsum else fn(v, 1), [weak_x], [2],
                   what=f"weak {fn.__name__}")
        assert fgrad.vmap(lambda v: fn(v, (0,)) if fn is not lax.cumsum else fn(v, 0),
                          2)(weak_x).weak_type
    check_vmap(lambda v: lax.argmax(v, 0, np.int32), [weak_x], [1], what="weak argmax")


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dtype", [F32, I32, BOOL])
def test_argminmax_match_loop(name: str, dtype: Any) -> None:
    rng = seeded_rng(name, dtype)
    fn = getattr(lax, name)
    for axis in range(len(SHAPE)):
        for j, in_axis in enumerate(BATCH_AXES):
            x = batched_operand(rng, dtype, in_axis)
            if dtype == F32:  # ties (first index wins) and a NaN (counts as the extremum)
                x = np.round(x)
                x.reshape(-1)[5] = np.nan
            check_vmap(lambda v: fn(v, axis, np.int32), [x], [in_axis], OUT_AXES[j % 3],
                       what=f"{name} axis={axis}")


def test_argminmax_int64_index(x64: None) -> None:
    rng = seeded_rng("int64")
    x = batched_operand(rng, np.float64, 2)
    for fn in (lax.argmax, lax.argmin):
        check_vmap(lambda v: fn(v, 2, np.int64), [x], [2], -1, what=fn.__name__)
        assert fgrad.vmap(lambda v: fn(v, 0, np.int64), 2)(x).dtype == np.int64


@pytest.mark.parametrize("name,dtype", [(n, np.dtype(d).name) for n, ds in CUMULATIVE.items()
                                        for d in ds])
@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_match_loop(name: str, dtype: str, reverse: bool) -> None:
    rng = seeded_rng(name, dtype, reverse)
    fn = getattr(lax, name)
    domain = (0.5, 1.5) if name == "cumprod" else (-2.0, 2.0)
    for axis in range(len(SHAPE)):
        for j, in_axis in enumerate(BATCH_AXES):
            x = batched_operand(rng, dtype, in_axis, domain)
            check_vmap(lambda v: fn(v, axis, reverse), [x], [in_axis], OUT_AXES[j % 3],
                       rtol=1e-5, what=f"{name} axis={axis} reverse={reverse}")


# --- compositions -----------------------------------------------------------------------------

NESTED_CASES = [
    ("reduce_sum", lambda lib: lambda v: lib.reduce_sum(v, (0, 2))),
    ("reduce_max", lambda lib: lambda v: lib.reduce_max(v, (1,))),
    ("reduce_prod", lambda lib: lambda v: lib.reduce_prod(v, ())),
    ("reduce_or", lambda lib: lambda v: lib.reduce_or(v > 0, (0, 1, 2))),
    ("argmin", lambda lib: lambda v: lib.argmin(v, 2, np.int32)),
    ("cummax", lambda lib: lambda v: lib.cummax(v, 1, reverse=True)),
    ("cumlogsumexp", lambda lib: lambda v: lib.cumlogsumexp(v, 0)),
]


@pytest.mark.parametrize("name,make", NESTED_CASES, ids=[c[0] for c in NESTED_CASES])
@pytest.mark.parametrize("inner,outer", [(0, 0), (1, -1), (-1, 2), (3, 1)])
def test_nested_vmap_matches_jax(name: str, make: Any, inner: int, outer: int) -> None:
    rng = seeded_rng("nested", name, inner, outer)
    x = rand(rng, (2, 3, 4, 5, 6), F32, (0.5, 1.5))  # examples (.., .., ..) after two vmaps
    got = fgrad.vmap(fgrad.vmap(make(lax), inner), outer, out_axes=-1)(x)
    want = jax.vmap(jax.vmap(make(jlax), inner), outer, out_axes=-1)(x)
    assert (got.shape, got.dtype) == (want.shape, want.dtype)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5)


def test_jit_of_vmap_matches_eager() -> None:
    rng = seeded_rng("jit")
    x = rand(rng, (2, 3, 4, 5), F32)

    def f(v: Any) -> Any:
        return (lax.reduce_sum(v, (0, 2)), lax.reduce_min(v, (1,)), lax.argmax(v, 2, np.int32),
                lax.cumsum(v, 0, True), lax.cumprod(v, 2), lax.reduce_and(v > 0, (0,)))

    for in_axis in (0, 2, -1):
        eager = fgrad.vmap(f, in_axis)(x)
        jitted = fgrad.jit(fgrad.vmap(f, in_axis, out_axes=1))(x)
        for e, j in zip(eager, jitted):
            assert e.dtype == j.dtype
            assert_matches_eager(np.moveaxis(np.asarray(j), 1, 0), np.asarray(e))


GRAD_CASES = [
    ("reduce_sum", lambda lib: lambda v: lib.reduce_sum(v, (0, 2))),
    ("reduce_max", lambda lib: lambda v: lib.reduce_max(v, (1,))),
    ("reduce_min", lambda lib: lambda v: lib.reduce_min(v, (0, 1, 2))),
    ("reduce_prod", lambda lib: lambda v: lib.reduce_prod(v, (1, 2))),
    ("cumsum", lambda lib: lambda v: lib.cumsum(v, 1, reverse=True)),
    ("cumprod", lambda lib: lambda v: lib.cumprod(v, 2)),
    ("cummax", lambda lib: lambda v: lib.cummax(v, 0)),
    ("cummin", lambda lib: lambda v: lib.cummin(v, 2, reverse=True)),
    ("cumlogsumexp", lambda lib: lambda v: lib.cumlogsumexp(v, 1)),
]


def _loss(lib: Any, make: Any) -> Callable[[Any], Any]:
    """sum(sin(f(v))) for one example: a scalar whose gradient weighs outputs unequally."""
    f, axes = make(lib), tuple(range(len(_out_shape(make))))
    return lambda v: lib.reduce_sum(lib.sin(f(v)), axes)


def _out_shape(make: Any) -> tuple[int, ...]:
    return jax.eval_shape(make(jlax), jax.ShapeDtypeStruct(SHAPE, np.float64)).shape


@pytest.mark.parametrize("name,make", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_vmap_of_grad_matches_jax(name: str, make: Any, x64: None) -> None:
    rng = seeded_rng("grad", name)
    x = rand(rng, (5, *SHAPE), np.float64, (0.5, 1.5))
    # one (jitted: JAX's eager vmap of these is slow) oracle; other batch axes are moved copies
    want = np.asarray(jax.jit(jax.vmap(jax.grad(_loss(jlax, make))))(x))
    for in_axis in (0, 2, -1):
        xb = np.moveaxis(x, 0, in_axis)
        got = fgrad.vmap(fgrad.grad(_loss(lax, make)), in_axis, out_axes=in_axis)(xb)
        np.testing.assert_allclose(np.moveaxis(np.asarray(got), in_axis, 0), want, rtol=1e-10,
                                   atol=1e-12)
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(fgrad.grad(_loss(lax, make)), 1))(np.moveaxis(x, 0, 1))
    typecheck_jaxpr(jaxpr)


@pytest.mark.parametrize("name,make", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_grad_of_summed_vmap_matches_jax(name: str, make: Any, x64: None) -> None:
    rng = seeded_rng("grad of vmap", name)
    x = rand(rng, (*SHAPE[:2], 5, SHAPE[2]), np.float64, (0.5, 1.5))
    axes = tuple(range(1 + len(_out_shape(make))))
    got = fgrad.grad(lambda v: lax.reduce_sum(lax.sin(fgrad.vmap(make(lax), 2)(v)), axes))(x)
    want = jax.jit(jax.grad(lambda v: jlax.reduce_sum(jlax.sin(jax.vmap(make(jlax), 2)(v)),
                                                      axes)))(x)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("size", [1, 0])
def test_batch_sizes_one_and_zero(size: int) -> None:
    rng = seeded_rng("sizes", size)
    x = rand(rng, (2, size, 3, 4), F32)

    def f(lib: Any) -> Callable[[Any], Any]:
        return lambda v: (lib.reduce_sum(v, (0, 2)), lib.reduce_max(v, (1,)),
                          lib.argmin(v, 0, np.int32), lib.cumsum(v, 2, reverse=True))

    got = fgrad.vmap(f(lax), 1, out_axes=-1)(x)
    want = jax.vmap(f(jlax), 1, out_axes=-1)(x)
    for g, w in zip(got, want):
        assert (g.shape, g.dtype) == (w.shape, w.dtype)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)


def test_random_batch_axes_over_a_composite() -> None:
    rng = seeded_rng("composite")
    for trial in range(6):
        (in_axis,) = random_in_axes(rng, [len(SHAPE)], allow_none=False)
        x = batched_operand(rng, F32, in_axis)
        check_vmap(lambda v: lax.cumsum(lax.reduce_max(v, (1,)), 1, trial % 2 == 0), [x],
                   [in_axis], OUT_AXES[trial % 3], rtol=1e-5, what="cumsum(reduce_max)")


# --- what the rules emit ----------------------------------------------------------------------

def test_rules_keep_the_batch_axis_in_place() -> None:
    x = np.zeros((2, 3, 5, 4), np.float32)  # batch axis 2 of size 5
    # axes before and after the batch axis; batch axis ends up at 2 - 1 = 1
    assert eqn_names(fgrad.vmap(lambda v: lax.reduce_sum(v, (0, 2)), 2, out_axes=1), x) == [
        "reduce_sum"]
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(lambda v: lax.reduce_sum(v, (0, 2)), 2, out_axes=1))(x)
    assert jaxpr.eqns[0].params["axes"] == (0, 3)
    assert eqn_names(fgrad.vmap(lambda v: lax.argmax(v, 2, np.int32), 2, out_axes=2), x) == [
        "argmax"]
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(lambda v: lax.cumsum(v, 2), 2, out_axes=2))(x)
    assert [e.primitive.name for e in jaxpr.eqns] == ["cumsum"]
    assert jaxpr.eqns[0].params["axis"] == 3
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(lambda v: lax.cumsum(v, 1), 2, out_axes=2))(x)
    assert jaxpr.eqns[0].params["axis"] == 1
