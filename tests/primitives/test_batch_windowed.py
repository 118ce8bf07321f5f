"""Batching rules of the windowed family (``fgrad/primitives/windowed.py``).

``reduce_window_sum/max/min`` (through the public ``reduce_window``, with
identity and other init values, strides, explicit, negative and ``SAME``
padding, base and window dilation, several dtypes) and the max/min-pooling
derivative pair ``select_and_gather_add`` / ``select_and_scatter_add``
(bound directly, each operand batched or not) run through ``vmap`` with random
batch axes (``None``, 0, the last, a middle one) and batch sizes 0, 1 and 3:

* ``vmap`` equals a Python loop over the batch, stacked, also with
  ``out_axes`` other than 0, and equals ``jax.vmap`` of the JAX twin;
* nested ``vmap(vmap(f))``; ``jit(vmap(f))`` equals eager;
* float64: ``vmap(grad(loss))`` and ``grad`` of a loss of ``vmap(f)`` against
  JAX (against the loop where JAX cannot differentiate: its max-pool VJP has
  no window dilation), and a batched Hessian-vector product of max pooling;
* the rules: one primitive with a trivial window for the batch axis, the
  batch axis left where it is, broadcasting only what the shape rules need,
  and error messages naming the unbatched shapes.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from batch_util import (
    check_vmap,
    loop_and_stack,
    nonlinear_sum,
    random_in_axes,
    seeded_rng,
    with_batch_axis,
)
from jax import lax as jlax
from jax_compare import assert_matches
from jit_compare import assert_matches_eager

import fgrad
import fgrad.lax as lax
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.primitives import elementwise, windowed
from fgrad.primitives.conv import reduce_window_shape_tuple

Shape = tuple[int, ...]
BF16 = jnp.bfloat16


@dataclasses.dataclass
class Case:
    name: str
    fn: Callable[..., Any]        # fgrad function of positional arrays
    jax_fn: Callable[..., Any] | None  # its JAX twin (None: JAX has none; the loop checks)
    shapes: Sequence[Shape]       # one (unbatched) shape per argument
    dtype: Any = np.float32
    diff: bool = True             # float and differentiable: run the gradient tests
    jax_grad: bool = True         # JAX can differentiate the twin in reverse mode

    def __str__(self) -> str:
        return self.name


REDUCERS = {"sum": (lax.add, jlax.add, 0.0), "max": (lax.max, jlax.max, -np.inf),
            "min": (lax.min, jlax.min, np.inf)}

# name, shape, window, strides, padding, base_dilation, window_dilation
WINDOWS = [
    ("same_2d", (4, 5), (2, 2), (1, 2), "SAME", None, None),
    ("valid_1d", (7,), (3,), (2,), "VALID", None, None),
    ("explicit_3d", (2, 3, 4), (1, 2, 2), (1, 1, 2), ((0, 0), (1, 0), (0, 1)), None, None),
    ("negpad", (4, 7), (2, 3), (1, 2), ((1, -1), (2, 0)), None, None),
    ("dilations", (5, 6), (2, 2), (1, 1), ((1, 0), (0, 1)), (1, 2), (2, 1)),
    ("empty", (0, 3), (1, 2), (1, 1), "VALID", None, None),
]


def _window_case(reducer: str, wname: str, shape: Shape, window: Shape, strides: Shape,
                 padding: Any, base: Any, wdil: Any) -> Case:
    op, jop, init = REDUCERS[reducer]
    kw = dict(window_dimensions=window, window_strides=strides, padding=padding,
              base_dilation=base, window_dilation=wdil)
    # JAX's max-pool VJP has no window dilation; its transpose of negative padding fails too
    jax_grad = reducer == "sum" or (base is None and wdil is None and wname != "negpad")
    return Case(f"reduce_window_{reducer}_{wname}",
                lambda x: lax.reduce_window(x, init, op, **kw),
                lambda x: jlax.reduce_window(x, init, jop, **kw), [shape], jax_grad=jax_grad)


POOL = dict(window_dimensions=(2, 3), window_strides=(2, 1), padding=((1, 0), (1, 1)),
            base_dilation=(1, 1), window_dilation=(1, 1))
POOL_DILATED = dict(window_dimensions=(2, 2), window_strides=(1, 2), padding=((0, 1), (1, 0)),
                    base_dilation=(2, 1), window_dilation=(1, 2))


def _pair_cases(name: str, params: dict[str, Any], select_max: bool,
                dilated: bool = False) -> list[Case]:
    select_prim = elementwise.ge_p if select_max else elementwise.le_p
    init, jop = (-np.inf, jlax.max) if select_max else (np.inf, jlax.min)

    def pool(x: Any) -> Any:
        return jlax.reduce_window(x, init, jop, params["window_dimensions"],
                                  params["window_strides"], params["padding"],
                                  params["base_dilation"], params["window_dilation"])

    shape = (5, 6)
    out_shape = reduce_window_shape_tuple(shape, *params.values())
    kind = "max" if select_max else "min"
    return [
        Case(f"select_and_gather_add_{kind}_{name}",
             lambda t, x: windowed.select_and_gather_add_p.bind(t, x, select_prim=select_prim,
                                                                 **params),
             lambda t, x: jax.jvp(pool, (x,), (t,))[1], [shape, shape], jax_grad=not dilated),
        Case(f"select_and_scatter_add_{kind}_{name}",
             lambda s, x: windowed.select_and_scatter_add_p.bind(s, x, select_prim=select_prim,
                                                                  **params),
             # JAX's max-pool VJP has no window dilation
             None if dilated else lambda s, x: jax.vjp(pool, x)[1](s)[0], [out_shape, shape],
             jax_grad=False),
    ]


CASES = [
    *[_window_case(r, *w) for r in ("sum", "max", "min") for w in WINDOWS],
    Case("reduce_window_sum_init", lambda x: lax.reduce_window(x, 1.5, lax.add, (2, 2),
                                                               (1, 1), "SAME"),
         lambda x: jlax.reduce_window(x, 0.0, jlax.add, (2, 2), (1, 1), "SAME") + 1.5,
         [(3, 5)]),
    Case("reduce_window_max_init", lambda x: lax.reduce_window(x, 0.0, lax.max, (2, 2),
                                                               (1, 2), "SAME"),
         lambda x: jnp.maximum(jlax.reduce_window(x, -jnp.inf, jlax.max, (2, 2), (1, 2),
                                                  "SAME"), 0.0), [(3, 5)]),
    # a traced (batched or not) init value; given as a (1,) array, since batch_util's loop
    # cannot slice 0-d examples out of a batch yet
    Case("reduce_window_traced_init",
         lambda x, i: lax.reduce_window(x, lax.reshape(i, ()), lax.min, (2,), (1,), "VALID"),
         lambda x, i: jnp.minimum(jlax.reduce_window(x, jnp.inf, jlax.min, (2,), (1,),
                                                     "VALID"), i[0]), [(5,), (1,)]),
    Case("reduce_window_scalar", lambda x: lax.reduce_window(x, 0.0, lax.add, (), (), "VALID"),
         lambda x: x, [()]),
    Case("reduce_window_max_int",
         lambda x: lax.reduce_window(x, np.int32(-2**31), lax.max, (2, 2), (1, 1), "SAME"),
         lambda x: jlax.reduce_window(x, np.int32(-2**31), jlax.max, (2, 2), (1, 1), "SAME"),
         [(3, 5)], np.int32, False),
    Case("reduce_window_sum_int",
         lambda x: lax.reduce_window(x, np.int32(0), lax.add, (1, 3), (1, 2), "VALID"),
         lambda x: jlax.reduce_window(x, np.int32(0), jlax.add, (1, 3), (1, 2), "VALID"),
         [(3, 5)], np.int32, False),
    Case("reduce_window_min_bf16",
         lambda x: lax.reduce_window(x, np.inf, lax.min, (2,), (2,), "SAME"),
         lambda x: jlax.reduce_window(x, np.inf, jlax.min, (2,), (2,), "SAME"),
         [(5,)], BF16, False),
    Case("avg_pool", lambda x: lax.reduce_window(x, 0.0, lax.add, (1, 3, 3), (1, 2, 2),
                                                 "SAME") / 9.0,
         lambda x: jlax.reduce_window(x, 0.0, jlax.add, (1, 3, 3), (1, 2, 2), "SAME") / 9.0,
         [(2, 5, 5)]),
    *_pair_cases("pool", POOL, True),
    *_pair_cases("pool", POOL, False),
    *_pair_cases("dilated", POOL_DILATED, True, dilated=True),
]
DIFF_CASES = [c for c in CASES if c.diff]
JAX_CASES = [c for c in CASES if c.jax_fn is not None]


# --- argument helpers ------------------------------------------------------------------------


def _values(rng: np.random.Generator, shape: Shape, dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-9, 9, size=shape).astype(dtype)
    # distinct values (no ties), so max/min pooling derivatives are well defined
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * 0.25 - size / 8 + rng.uniform(
        0, 0.1, shape)).astype(dtype)



def _batched(rng: np.random.Generator, case: Case, axes: Sequence[int | None], size: int,
             dtype: Any = None) -> list[np.ndarray]:
    return [_values(rng, with_batch_axis(s, a, size), dtype or case.dtype)
            for s, a in zip(case.shapes, axes)]


def _ndims(case: Case) -> list[int]:
    return [len(s) for s in case.shapes]



# --- vmap against the loop and against jax.vmap ------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=str)
def test_vmap_matches_loop(case: Case) -> None:
    rng = seeded_rng("loop", case.name)
    for trial in range(5):
        axes = random_in_axes(rng, _ndims(case))
        args = _batched(rng, case, axes, size=(1, 3)[trial % 2])
        out_ndim = len(np.shape(case.fn(*[_values(rng, s, case.dtype) for s in case.shapes])))
        for out_axes in sorted({0, -1, int(rng.integers(0, out_ndim + 1))}):
            check_vmap(case.fn, args, axes, out_axes, what=case.name)


@pytest.mark.parametrize("case", JAX_CASES, ids=str)
def test_vmap_matches_jax(case: Case) -> None:
    rng = seeded_rng("jax", case.name)
    for size in (0, 1, 3):
        axes = random_in_axes(rng, _ndims(case))
        args = _batched(rng, case, axes, size)
        out_axes = (0, -1)[int(rng.integers(0, 2))]
        got = fgrad.vmap(case.fn, in_axes=tuple(axes), out_axes=out_axes)(*args)
        want = jnp.asarray(jax.vmap(case.jax_fn, in_axes=tuple(axes), out_axes=out_axes)(*args))
        assert_matches(got, want, f"{case.name} in_axes={axes} out_axes={out_axes}",
                       rtol=1e-2 if case.dtype == BF16 else 1e-6)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_nested_vmap(case: Case) -> None:
    rng = seeded_rng("nested", case.name)
    for trial in range(2):
        inner = random_in_axes(rng, _ndims(case))
        outer = random_in_axes(rng, [n + (a is not None) for n, a in zip(_ndims(case), inner)])
        shapes = [with_batch_axis(with_batch_axis(s, a, 2), b, 3)
                  for s, a, b in zip(case.shapes, inner, outer)]
        args = [_values(rng, s, case.dtype) for s in shapes]
        out_inner = (0, -1)[trial]
        f = fgrad.vmap(case.fn, in_axes=tuple(inner), out_axes=out_inner)
        check_vmap(f, args, outer, -1, what=f"{case.name} inner in_axes={inner}")
        if trial or case.jax_fn is None:
            continue  # the loop checks every trial; JAX (slow to start) the first
        want = jnp.asarray(jax.vmap(jax.vmap(case.jax_fn, tuple(inner), out_inner),
                                    tuple(outer), -1)(*args))
        got = fgrad.vmap(f, in_axes=tuple(outer), out_axes=-1)(*args)
        assert_matches(got, want, f"{case.name} nested in_axes={inner}, {outer}",
                       rtol=1e-2 if case.dtype == BF16 else 1e-6)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_jit_of_vmap_equals_eager(case: Case) -> None:
    rng = seeded_rng("jit", case.name)
    axes = random_in_axes(rng, _ndims(case))
    args = _batched(rng, case, axes, 3)
    f = fgrad.vmap(case.fn, in_axes=tuple(axes), out_axes=-1)
    eager, jitted = f(*args), fgrad.jit(f)(*args)
    assert (eager.shape, eager.dtype, eager.weak_type) == \
        (jitted.shape, jitted.dtype, jitted.weak_type)
    assert_matches_eager(jitted, eager)
    typecheck_jaxpr(fgrad.make_jaxpr(f)(*args))


# --- derivatives (float64: against JAX, or the loop where JAX cannot) --------------------------

@pytest.mark.parametrize("case", DIFF_CASES, ids=str)
def test_vmap_of_grad(case: Case, x64: None) -> None:
    rng = seeded_rng("vmap_grad", case.name)
    argnums = tuple(range(len(case.shapes)))
    g = fgrad.grad(lambda *xs: nonlinear_sum(case.fn(*xs)), argnums)
    jg = jax.grad(lambda *xs: nonlinear_sum(case.jax_fn(*xs)), argnums)
    for size in (1, 3):
        axes = random_in_axes(rng, _ndims(case))
        args = _batched(rng, case, axes, size, np.float64)
        got = fgrad.vmap(g, in_axes=tuple(axes))(*args)
        want = jax.jit(jax.vmap(jg, in_axes=tuple(axes)))(*args) if case.jax_grad else \
            loop_and_stack(g, args, axes)
        assert_matches(got, want, f"{case.name} vmap(grad) in_axes={axes}", rtol=1e-12)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.vmap(g, in_axes=tuple(axes)))(*args))


@pytest.mark.parametrize("case", DIFF_CASES, ids=str)
def test_grad_of_summed_vmap(case: Case, x64: None) -> None:
    rng = seeded_rng("grad_vmap", case.name)
    argnums = tuple(range(len(case.shapes)))
    axes = tuple(random_in_axes(rng, _ndims(case)))
    args = _batched(rng, case, axes, 3, np.float64)
    got = fgrad.grad(lambda *xs: nonlinear_sum(fgrad.vmap(case.fn, axes)(*xs)), argnums)(*args)
    if case.jax_grad:
        want = jax.jit(jax.grad(lambda *xs: nonlinear_sum(jax.vmap(case.jax_fn, axes)(*xs)),
                                argnums))(*args)
    else:  # the gradient of a sum over the batch: per-example gradients, added up
        g = fgrad.grad(lambda *xs: nonlinear_sum(case.fn(*xs)), argnums)
        per_example = loop_and_stack(lambda *xs: g(*xs), args, axes)
        want = tuple(np.sum(np.asarray(p), 0) if a is None else np.moveaxis(np.asarray(p), 0, a)
                     for p, a in zip(per_example, axes))
        want = tuple(jnp.asarray(w) for w in want)
    assert_matches(got, want, f"{case.name} grad(vmap) in_axes={axes}", rtol=1e-12)


def test_max_pool_hessian_vector_products_under_vmap(x64: None) -> None:
    # Second order: the JVP's select_and_gather_add, transposed to select_and_scatter_add,
    # differentiated again, every one of them batched.
    kw = dict(window_dimensions=(2, 2), window_strides=(1, 2), padding="SAME")

    def hvp(lib: Any) -> Callable[..., Any]:
        def f(x: Any) -> Any:
            return nonlinear_sum(lib.lax.reduce_window(x, -np.inf, lib.lax.max, **kw) ** 2)
        grad = lib.grad(f)
        return lambda x, u: lib.jvp(grad, (x,), (u,))[1]

    rng = seeded_rng("hvp")
    x, u = _values(rng, (4, 3, 5), np.float64), _values(rng, (3, 5), np.float64)
    for axes in [(1, None), (-1, None), (0, None)]:
        xb = np.moveaxis(x, 0, axes[0])
        got = fgrad.vmap(hvp(fgrad), in_axes=axes)(xb, u)
        want = jax.jit(jax.vmap(hvp(jax), in_axes=axes))(xb, u)
        assert_matches(got, want, f"vmap(hvp) in_axes={axes}", rtol=1e-12)


# --- the rules themselves ----------------------------------------------------------------------

B = 5


def _rule_eqns(prim: Primitive, vals: Sequence[Any], dims: Sequence[int | None],
               **params: Any) -> tuple[list[str], int | None, Any]:
    """Apply ``prim``'s batch rule under ``make_jaxpr``: (primitives it binds, out dim, jaxpr)."""
    out_dims = []

    def f(*xs: Any) -> Any:
        out, out_dim = prim.batch(list(xs), list(dims), axis_size=B, **params)
        out_dims.append(out_dim)
        return out

    closed = fgrad.make_jaxpr(f)(*vals)
    typecheck_jaxpr(closed)
    return [e.primitive.name for e in closed.jaxpr.eqns], out_dims[0], closed


def _x(*shape: int) -> np.ndarray:
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("prim", [windowed.reduce_window_sum_p, windowed.reduce_window_max_p,
                                  windowed.reduce_window_min_p], ids=str)
@pytest.mark.parametrize("bdim", [0, 1, 2])
def test_reduce_window_rule_adds_a_trivial_window(prim: Primitive, bdim: int) -> None:
    shape = with_batch_axis((5, 6), bdim, B)
    names, out_dim, closed = _rule_eqns(prim, [_x(*shape)], [bdim], **POOL_DILATED)
    assert names == [prim.name] and out_dim == bdim
    params = closed.jaxpr.eqns[0].params
    assert params["window_dimensions"][bdim] == params["window_strides"][bdim] == 1
    assert params["padding"][bdim] == (0, 0)
    assert params["base_dilation"][bdim] == params["window_dilation"][bdim] == 1
    unbatched = reduce_window_shape_tuple((5, 6), *POOL_DILATED.values())
    assert closed.jaxpr.outvars[0].aval.shape == with_batch_axis(unbatched, bdim, B)


@pytest.mark.parametrize("prim", [windowed.select_and_gather_add_p,
                                  windowed.select_and_scatter_add_p], ids=str)
def test_select_and_rules_move_or_broadcast_only_what_they_must(prim: Primitive) -> None:
    out_shape = reduce_window_shape_tuple((5, 6), *POOL.values())
    first = (5, 6) if prim is windowed.select_and_gather_add_p else out_shape
    params = dict(select_prim=elementwise.ge_p, **POOL)
    # both batched at one axis: just the primitive
    names, out_dim, _ = _rule_eqns(prim, [_x(*with_batch_axis(first, 1, B)), _x(5, B, 6)], [1, 1],
                                   **params)
    assert names == [prim.name] and out_dim == 1
    # batched at different axes: the second moves to the first's position
    names, out_dim, _ = _rule_eqns(prim, [_x(*with_batch_axis(first, 2, B)), _x(B, 5, 6)], [2, 0],
                                   **params)
    assert names == ["transpose", prim.name] and out_dim == 2
    # one unbatched: broadcast straight to the batch position, no transpose
    names, out_dim, _ = _rule_eqns(prim, [_x(*first), _x(5, 6, B)], [None, 2], **params)
    assert names == ["broadcast_in_dim", prim.name] and out_dim == 2
    names, out_dim, _ = _rule_eqns(prim, [_x(*with_batch_axis(first, 0, B)), _x(5, 6)], [0, None],
                                   **params)
    assert names == ["broadcast_in_dim", prim.name] and out_dim == 0


def test_reduce_window_errors_under_vmap_name_the_unbatched_operand() -> None:
    x = _x(B, 3, 4)
    with pytest.raises(FgradTypeError, match=r"window_dimensions=\(2,\) must have one entry "
                                             r"per axis of the operand f32\[3,4\]"):
        fgrad.vmap(lambda x: lax.reduce_window(x, 0.0, lax.add, (2,), (1,), "VALID"))(x)
    with pytest.raises(FgradTypeError, match=r"negative padding .* f32\[3,4\]"):
        fgrad.jit(fgrad.vmap(lambda x: lax.reduce_window(x, -np.inf, lax.max, (1, 1), (1, 1),
                                                         ((-2, -2), (0, 0)))))(x)
    with pytest.raises(FgradTypeError, match=r"select_and_gather_add: tangents and operand "
                                             r"must have equal types, got f32\[5,6\] and "
                                             r"f32\[5,5\]"):
        fgrad.vmap(lambda t, x: windowed.select_and_gather_add_p.bind(
            t, x, select_prim=elementwise.ge_p, **POOL), in_axes=(0, None))(_x(B, 5, 6),
                                                                          _x(5, 5))
