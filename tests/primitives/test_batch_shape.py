"""Batching rules of the shape family (``fgrad/primitives/shape.py``), one primitive at a time.

Every primitive of the family (``broadcast_in_dim``, ``reshape``, ``transpose``,
``squeeze``, ``slice``, ``pad``, ``concatenate``, ``rev``, ``iota``) and the
wrappers built on them run through ``vmap`` for several parameter settings
and dtypes, with random batch axes (``None`` for each operand, 0, the last
axis, a middle one) and batch sizes 0, 1 and 3:

* ``vmap`` equals a Python loop over the batch, stacked (``batch_util``),
  also with ``out_axes`` other than 0; and equals ``jax.vmap`` of the JAX twin;
* nested ``vmap(vmap(f))`` with different axes; ``jit(vmap(f))`` equals eager;
* float64, against JAX: ``vmap(grad(loss))`` and ``grad`` of a loss of
  ``vmap(f)`` (the rules of the JVP/transpose rules' primitives batched too);
* the rules themselves: which primitives they emit (no needless transposes,
  unbatched operands not broadcast where the primitive does not need it), the
  output batch axis they report, weak types, and error messages under vmap.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from batch_util import check_vmap, nonlinear_sum, random_in_axes, seeded_rng, with_batch_axis
from jax_compare import assert_matches

import fgrad
import fgrad.lax as lax
from fgrad.core.errors import FgradTypeError
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.core.primitive import Primitive
from fgrad.primitives import shape as shape_prims

Shape = tuple[int, ...]
BF16 = jnp.bfloat16


@dataclasses.dataclass
class Case:
    name: str
    fn: Callable[..., Any]        # fgrad function of positional arrays
    jax_fn: Callable[..., Any]    # its JAX twin
    shapes: Sequence[Shape]       # one (unbatched) shape per argument
    dtype: Any = np.float32
    diff: bool = True             # float and differentiable: run the gradient tests

    def __str__(self) -> str:
        return self.name


def _pad(config: Any) -> Case:
    return Case(f"pad_{config}", lambda x, v: lax.pad(x, v, config),
                lambda x, v: jax.lax.pad(x, v, config), [(3, 4), ()])


PAD_CONFIGS = [((1, 2, 0), (0, 1, 0)), ((-1, 2, 1), (1, -2, 2)), ((-2, -1, 3), (0, 0, 0)),
               ((2, -3, 1), (-1, 0, 2))]

CASES = [
    Case("broadcast_in_dim_new_axes", lambda x: lax.broadcast_in_dim(x, (2, 3, 4), (1,)),
         lambda x: jax.lax.broadcast_in_dim(x, (2, 3, 4), (1,)), [(3,)]),
    Case("broadcast_in_dim_stretch", lambda x: lax.broadcast_in_dim(x, (4, 3), (0, 1)),
         lambda x: jax.lax.broadcast_in_dim(x, (4, 3), (0, 1)), [(1, 3)]),
    Case("broadcast_in_dim_scalar", lambda x: lax.broadcast_in_dim(x, (2, 3), ()),
         lambda x: jax.lax.broadcast_in_dim(x, (2, 3), ()), [()]),
    Case("broadcast_in_dim_middle", lambda x: lax.broadcast_in_dim(x, (2, 5, 3), (0, 2)),
         lambda x: jax.lax.broadcast_in_dim(x, (2, 5, 3), (0, 2)), [(2, 3)], np.int32, False),
    Case("reshape_flatten", lambda x: lax.reshape(x, (24,)),
         lambda x: jax.lax.reshape(x, (24,)), [(4, 6)]),
    Case("reshape_split", lambda x: lax.reshape(x, (2, 3, 4)),
         lambda x: jax.lax.reshape(x, (2, 3, 4)), [(4, 6)]),
    Case("reshape_merge", lambda x: lax.reshape(x, (6, 4)),
         lambda x: jax.lax.reshape(x, (6, 4)), [(2, 3, 4)]),
    Case("reshape_units", lambda x: lax.reshape(x, (1, 6, 1)),
         lambda x: jax.lax.reshape(x, (1, 6, 1)), [(6,)]),
    Case("reshape_scalar", lambda x: lax.reshape(x, (1, 1)),
         lambda x: jax.lax.reshape(x, (1, 1)), [()]),
    Case("reshape_empty", lambda x: lax.reshape(x, (3, 0)),
         lambda x: jax.lax.reshape(x, (3, 0)), [(0, 3)]),
    Case("reshape_int", lambda x: lax.reshape(x, (3, 2, 2)),
         lambda x: jax.lax.reshape(x, (3, 2, 2)), [(2, 6)], np.int32, False),
    Case("expand_dims", lambda x: lax.expand_dims(x, (0, -1)),
         lambda x: jax.lax.expand_dims(x, (0, -1)), [(3, 4)]),
    Case("transpose_cycle", lambda x: lax.transpose(x, (2, 0, 1)),
         lambda x: jax.lax.transpose(x, (2, 0, 1)), [(2, 3, 4)]),
    Case("transpose_swap", lambda x: lax.transpose(x, (1, 0, 2)),
         lambda x: jax.lax.transpose(x, (1, 0, 2)), [(2, 3, 4)], np.bool_, False),
    Case("transpose_identity", lambda x: lax.transpose(x, (0,)),
         lambda x: jax.lax.transpose(x, (0,)), [(3,)]),
    Case("squeeze_two", lambda x: lax.squeeze(x, (0, 2)),
         lambda x: jax.lax.squeeze(x, (0, 2)), [(1, 3, 1)]),
    Case("squeeze_last", lambda x: lax.squeeze(x, (1,)),
         lambda x: jax.lax.squeeze(x, (1,)), [(3, 1)], BF16, False),
    Case("squeeze_to_scalar", lambda x: lax.squeeze(x, (0,)),
         lambda x: jax.lax.squeeze(x, (0,)), [(1,)]),
    Case("slice_strided", lambda x: lax.slice(x, (1, 0), (4, 6), (2, 3)),
         lambda x: jax.lax.slice(x, (1, 0), (4, 6), (2, 3)), [(5, 6)]),
    Case("slice_plain", lambda x: lax.slice(x, (1,), (4,)),
         lambda x: jax.lax.slice(x, (1,), (4,)), [(5,)]),
    Case("slice_3d_bool", lambda x: lax.slice(x, (0, 1, 0), (4, 3, 1)),
         lambda x: jax.lax.slice(x, (0, 1, 0), (4, 3, 1)), [(4, 3, 2)], np.bool_, False),
    Case("slice_empty", lambda x: lax.slice(x, (2, 0), (2, 3)),
         lambda x: jax.lax.slice(x, (2, 0), (2, 3)), [(4, 3)]),
    Case("slice_in_dim", lambda x: lax.slice_in_dim(x, 1, -1, 2, axis=1),
         lambda x: jax.lax.slice_in_dim(x, 1, -1, 2, axis=1), [(3, 6)]),
    *[_pad(c) for c in PAD_CONFIGS],
    Case("pad_bf16", lambda x, v: lax.pad(x, v, [(1, -1, 1)]),
         lambda x, v: jax.lax.pad(x, v, [(1, -1, 1)]), [(4,), ()], BF16, False),
    Case("pad_scalar_operand", lambda x, v: lax.pad(x, v, []),
         lambda x, v: jax.lax.pad(x, v, []), [(), ()]),
    Case("concatenate_three", lambda a, b, c: lax.concatenate([a, b, c], 1),
         lambda a, b, c: jax.lax.concatenate([a, b, c], 1), [(2, 3), (2, 1), (2, 4)]),
    Case("concatenate_first_axis", lambda a, b: lax.concatenate([a, b], 0),
         lambda a, b: jax.lax.concatenate([a, b], 0), [(1, 3), (2, 3)], np.int32, False),
    Case("concatenate_one", lambda a: lax.concatenate([a], 0),
         lambda a: jax.lax.concatenate([a], 0), [(3,)]),
    Case("concatenate_with_empty", lambda a, b: lax.concatenate([a, b], 0),
         lambda a, b: jax.lax.concatenate([a, b], 0), [(0, 2), (3, 2)]),
    Case("rev_both", lambda x: lax.rev(x, (0, 1)), lambda x: jax.lax.rev(x, (0, 1)), [(3, 4)]),
    Case("rev_middle", lambda x: lax.rev(x, (1,)), lambda x: jax.lax.rev(x, (1,)),
         [(2, 3, 4)], BF16, False),
    Case("rev_none", lambda x: lax.rev(x, ()), lambda x: jax.lax.rev(x, ()), [(3,)]),
    Case("iota_next_to_batched",
         lambda x: lax.concatenate([x, lax.iota(x.dtype, 3)], 0),
         lambda x: jax.lax.concatenate([x, jax.lax.iota(x.dtype, 3)], 0), [(2,)]),
    Case("chain", lambda x, v: lax.rev(lax.transpose(lax.pad(
        lax.reshape(x, (3, 2)), v, [(1, 0, 1), (0, -1, 0)]), (1, 0)), (0,)),
        lambda x, v: jax.lax.rev(jax.lax.transpose(jax.lax.pad(
            jax.lax.reshape(x, (3, 2)), v, [(1, 0, 1), (0, -1, 0)]), (1, 0)), (0,)),
        [(6,), ()]),
]
DIFF_CASES = [c for c in CASES if c.diff]


# --- argument helpers ------------------------------------------------------------------------


def _values(rng: np.random.Generator, shape: Shape, dtype: Any) -> np.ndarray:
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(bool)
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-9, 9, size=shape).astype(dtype)
    return rng.uniform(-1.5, 1.5, size=shape).astype(dtype)



def _batched(rng: np.random.Generator, case: Case, axes: Sequence[int | None], size: int,
             dtype: Any = None) -> list[np.ndarray]:
    """Random arguments with a batch axis of ``size`` where ``axes`` says (any size, 0 too)."""
    return [_values(rng, with_batch_axis(s, a, size), dtype or case.dtype)
            for s, a in zip(case.shapes, axes)]


def _ndims(case: Case) -> list[int]:
    return [len(s) for s in case.shapes]



# --- vmap against the loop and against jax.vmap ------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=str)
def test_vmap_matches_loop(case: Case) -> None:
    rng = seeded_rng("loop", case.name)
    for trial in range(6):
        axes = random_in_axes(rng, _ndims(case))
        args = _batched(rng, case, axes, size=(1, 3)[trial % 2])
        out_ndim = len(np.shape(case.fn(*[_values(rng, s, case.dtype) for s in case.shapes])))
        for out_axes in sorted({0, -1, int(rng.integers(0, out_ndim + 1))}):
            check_vmap(case.fn, args, axes, out_axes, what=case.name)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_vmap_matches_jax(case: Case) -> None:
    rng = seeded_rng("jax", case.name)
    for size in (0, 1, 3):
        axes = random_in_axes(rng, _ndims(case))
        args = _batched(rng, case, axes, size)
        out_axes = (0, -1)[int(rng.integers(0, 2))]
        got = fgrad.vmap(case.fn, in_axes=tuple(axes), out_axes=out_axes)(*args)
        # jnp.asarray: JAX returns an identity transpose's numpy operand as it is
        want = jnp.asarray(jax.vmap(case.jax_fn, in_axes=tuple(axes), out_axes=out_axes)(*args))
        assert_matches(got, want, f"{case.name} in_axes={axes} out_axes={out_axes}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_nested_vmap(case: Case) -> None:
    rng = seeded_rng("nested", case.name)
    for trial in range(3):
        inner = random_in_axes(rng, _ndims(case))
        outer = random_in_axes(rng, [n + (a is not None) for n, a in zip(_ndims(case), inner)])
        shapes = [with_batch_axis(with_batch_axis(s, a, 2), b, 3)
                  for s, a, b in zip(case.shapes, inner, outer)]
        args = [_values(rng, s, case.dtype) for s in shapes]
        out_inner, out_outer = (0, -1)[int(rng.integers(0, 2))], -1
        f = fgrad.vmap(case.fn, in_axes=tuple(inner), out_axes=out_inner)
        check_vmap(f, args, outer, out_outer, what=f"{case.name} inner in_axes={inner}")
        if trial:
            continue  # the loop checks every trial; JAX (slow to start) the first
        want = jnp.asarray(jax.vmap(jax.vmap(case.jax_fn, tuple(inner), out_inner),
                                    tuple(outer), out_outer)(*args))
        got = fgrad.vmap(f, in_axes=tuple(outer), out_axes=out_outer)(*args)
        assert_matches(got, want, f"{case.name} nested in_axes={inner}, {outer}")


@pytest.mark.parametrize("case", CASES, ids=str)
def test_jit_of_vmap_equals_eager(case: Case) -> None:
    rng = seeded_rng("jit", case.name)
    for _ in range(2):
        axes = random_in_axes(rng, _ndims(case))
        args = _batched(rng, case, axes, 3)
        f = fgrad.vmap(case.fn, in_axes=tuple(axes), out_axes=-1)
        eager, jitted = f(*args), fgrad.jit(f)(*args)
        assert (eager.shape, eager.dtype, eager.weak_type) == \
            (jitted.shape, jitted.dtype, jitted.weak_type)
        np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager))
        typecheck_jaxpr(fgrad.make_jaxpr(f)(*args))


# --- derivatives (float64, against JAX) --------------------------------------------------------

@pytest.mark.parametrize("case", DIFF_CASES, ids=str)
def test_vmap_of_grad_matches_jax(case: Case, x64: None) -> None:
    rng = seeded_rng("vmap_grad", case.name)
    argnums = tuple(range(len(case.shapes)))
    g = fgrad.grad(lambda *xs: nonlinear_sum(case.fn(*xs)), argnums)
    jg = jax.grad(lambda *xs: nonlinear_sum(case.jax_fn(*xs)), argnums)
    for _ in range(2):
        axes = random_in_axes(rng, _ndims(case))
        args = _batched(rng, case, axes, 3, np.float64)
        got = fgrad.vmap(g, in_axes=tuple(axes))(*args)
        want = jax.jit(jax.vmap(jg, in_axes=tuple(axes)))(*args)
        assert_matches(got, want, f"{case.name} vmap(grad) in_axes={axes}", rtol=1e-12)
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.vmap(g, in_axes=tuple(axes)))(*args))


@pytest.mark.parametrize("case", DIFF_CASES, ids=str)
def test_grad_of_summed_vmap_matches_jax(case: Case, x64: None) -> None:
    rng = seeded_rng("grad_vmap", case.name)
    argnums = tuple(range(len(case.shapes)))
    for _ in range(2):
        axes = tuple(random_in_axes(rng, _ndims(case)))
        args = _batched(rng, case, axes, 3, np.float64)
        got = fgrad.grad(lambda *xs: nonlinear_sum(fgrad.vmap(case.fn, axes)(*xs)), argnums)(*args)
        want = jax.jit(jax.grad(lambda *xs: nonlinear_sum(jax.vmap(case.jax_fn, axes)(*xs)),
                                argnums))(*args)
        assert_matches(got, want, f"{case.name} grad(vmap) in_axes={axes}", rtol=1e-12)


def test_second_order_under_vmap_matches_jax(x64: None) -> None:
    # Hessian-vector products batched: the transposes of pad/slice/concatenate rules run on
    # batched cotangents whose own rules are batched again.
    def f(x: Any, v: Any, lib: Any) -> Any:
        y = lib.lax.pad(lib.lax.rev(x, (0,)), v, [(1, -1, 1), (0, 2, 0)])
        y = lib.lax.concatenate([lib.lax.slice(y, (0, 0), (4, 6), (2, 1)), y], 0)
        return nonlinear_sum(lib.lax.reshape(y, (y.shape[0] * y.shape[1],)))

    u = _values(seeded_rng("u"), (3, 4), np.float64)

    def hvp(lib: Any) -> Callable[..., Any]:
        grad = lib.grad(lambda x, v: f(x, v, lib), (0, 1))
        return lib.grad(lambda x, v: (grad(x, v)[0] * u).sum() + grad(x, v)[1], (0, 1))

    rng = seeded_rng("hvp")
    x, v = _values(rng, (3, 4, 5), np.float64), _values(rng, (5,), np.float64)
    got = fgrad.vmap(hvp(fgrad), in_axes=(2, 0))(x, v)
    want = jax.jit(jax.vmap(hvp(jax), in_axes=(2, 0)))(x, v)
    assert_matches(got, want, "vmap(hvp)", rtol=1e-12)


# --- the rules themselves: what they emit, where the batch axis goes ---------------------------

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


@pytest.mark.parametrize("prim,shape,bdim,params,out_dim", [
    (shape_prims.broadcast_in_dim_p, (B, 3), 0, dict(shape=(2, 3, 4), broadcast_dimensions=(1,)),
     0),
    (shape_prims.broadcast_in_dim_p, (3, B), 1, dict(shape=(2, 3, 4), broadcast_dimensions=(1,)),
     2),
    (shape_prims.broadcast_in_dim_p, (2, B, 3), 1,
     dict(shape=(2, 4, 3), broadcast_dimensions=(0, 2)), 1),
    (shape_prims.reshape_p, (B, 4, 6), 0, dict(new_sizes=(24,)), 0),
    (shape_prims.reshape_p, (4, 6, B), 2, dict(new_sizes=(2, 12)), 2),
    (shape_prims.reshape_p, (2, B, 3, 4), 1, dict(new_sizes=(2, 12)), 1),
    (shape_prims.reshape_p, (6, B, 4), 1, dict(new_sizes=(2, 3, 4)), 2),
    (shape_prims.transpose_p, (2, B, 3, 4), 1, dict(permutation=(2, 0, 1)), 1),
    (shape_prims.squeeze_p, (1, 3, B, 1), 2, dict(dimensions=(0, 2)), 1),
    (shape_prims.slice_p, (4, B, 6), 1,
     dict(start_indices=(1, 0), limit_indices=(4, 5), strides=(2, 2)), 1),
    (shape_prims.slice_p, (4, 6, B), 2,
     dict(start_indices=(1, 0), limit_indices=(4, 5), strides=None), 2),
    (shape_prims.rev_p, (3, B, 4), 1, dict(dimensions=(0, 1)), 1),
])
def test_rule_emits_one_primitive(prim: Primitive, shape: Shape, bdim: int,
                                  params: dict[str, Any], out_dim: int) -> None:
    names, got_dim, closed = _rule_eqns(prim, [_x(*shape)], [bdim], **params)
    assert names == [prim.name], f"{prim.name} batch rule emitted {names}"
    assert got_dim == out_dim
    assert closed.jaxpr.outvars[0].aval.shape[out_dim] == B


def test_reshape_moves_the_batch_axis_only_when_it_must() -> None:
    # (2, B, 3) -> (3, 2): no prefix of (3, 2) holds the 2 elements before the batch axis.
    names, out_dim, _ = _rule_eqns(shape_prims.reshape_p, [_x(2, B, 3)], [1], new_sizes=(3, 2))
    assert names == ["transpose", "reshape"] and out_dim == 0
    check_vmap(lambda x: lax.reshape(x, (3, 2)), [_values(seeded_rng("r"), (2, 4, 3), np.float32)],
               [1], 0)


def test_pad_with_unbatched_value_does_not_broadcast_it() -> None:
    for bdim in range(3):
        shape = with_batch_axis((3, 4), bdim, B)
        names, out_dim, closed = _rule_eqns(shape_prims.pad_p, [_x(*shape), np.float32(1)],
                                            [bdim, None], padding_config=((1, -1, 2), (0, 2, 1)))
        assert names == ["pad"] and out_dim == bdim
        assert closed.jaxpr.eqns[0].invars[1].aval.shape == ()


def test_pad_with_batched_value_pads_an_unbatched_operand_unbatched() -> None:
    names, out_dim, closed = _rule_eqns(shape_prims.pad_p, [_x(3, 4), _x(B)], [None, 0],
                                        padding_config=((1, -1, 2), (0, 2, 1)))
    assert out_dim == 0 and "transpose" not in names
    operand_pad = next(e for e in closed.jaxpr.eqns if e.primitive.name == "pad"
                       and e.invars[0] is closed.jaxpr.invars[0])
    assert operand_pad.invars[0].aval.shape == (3, 4)


def test_pad_with_batched_value_keeps_a_batched_operand_in_place() -> None:
    names, out_dim, _ = _rule_eqns(shape_prims.pad_p, [_x(3, B, 4), _x(B)], [1, 0],
                                   padding_config=((1, 0, 0), (0, 0, 1)))
    assert out_dim == 1 and "transpose" not in names


def test_concatenate_rule_keeps_batch_axes_and_broadcasts_only_unbatched() -> None:
    names, out_dim, _ = _rule_eqns(shape_prims.concatenate_p, [_x(2, B, 3), _x(2, B, 1)],
                                   [1, 1], dimension=1)
    assert names == ["concatenate"] and out_dim == 1
    names, out_dim, _ = _rule_eqns(shape_prims.concatenate_p,
                                   [_x(2, 3, B), _x(2, 1), _x(2, 4, B)], [2, None, 2],
                                   dimension=1)
    assert names == ["broadcast_in_dim", "concatenate"] and out_dim == 2
    # The majority position wins: one transpose for the odd one out.
    names, out_dim, _ = _rule_eqns(shape_prims.concatenate_p,
                                   [_x(B, 2, 3), _x(2, B, 1), _x(2, B, 4)], [0, 1, 1],
                                   dimension=1)
    assert names == ["transpose", "concatenate"] and out_dim == 1


def test_iota_is_never_batched() -> None:
    params = dict(dtype=np.dtype(np.int32), shape=(2, 3), dimension=1)
    out, out_dim = shape_prims.iota_p.batch([], [], axis_size=B, **params)
    assert out_dim is None
    np.testing.assert_array_equal(np.asarray(out), np.asarray(jax.lax.broadcasted_iota(
        np.int32, (2, 3), 1)))
    closed = fgrad.make_jaxpr(fgrad.vmap(lambda x: lax.concatenate(
        [x, lax.broadcasted_iota(np.float32, (2,), 0)], 0), in_axes=1, out_axes=1))(_x(2, B))
    iota_eqn = next(e for e in closed.jaxpr.eqns if e.primitive.name == "iota")
    assert iota_eqn.outvars[0].aval.shape == (2,)  # built once, for the whole batch


# --- weak types and errors under vmap ------------------------------------------------------------

@pytest.mark.parametrize("x_weak,v_weak", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("axes", [(0, 0), (None, 0), (1, None), (-1, 0)])
def test_pad_weak_types_under_vmap(x_weak: bool, v_weak: bool, axes: tuple[Any, Any]) -> None:
    rng = seeded_rng("weak", x_weak, v_weak, axes)
    case = CASES[[c.name for c in CASES].index(f"pad_{PAD_CONFIGS[1]}")]
    x, v = _batched(rng, case, axes, 3)
    args = [fgrad.Array(x, x_weak), fgrad.Array(v, v_weak)]
    check_vmap(case.fn, args, axes, 0, what="pad weak types")
    out = fgrad.vmap(case.fn, in_axes=axes)(*args)
    assert out.weak_type == (x_weak and v_weak)


def test_pad_dtype_error_under_vmap_names_pad() -> None:
    config = [(1, 0, 0)]
    f = lambda x, v: lax.pad(x, v, config)
    for axes in [(0, 0), (None, 0), (0, None)]:
        x = np.zeros((3,) if axes[0] is None else (2, 3), np.float32)
        v = np.zeros((2,), np.int32) if axes[1] == 0 else np.int32(0)
        for transform in (lambda g: g, fgrad.jit):
            with pytest.raises(FgradTypeError, match=r"pad: operand f32\[3\], padding_value "
                                                     r"i32\[\]: .*same dtype"):
                transform(fgrad.vmap(f, in_axes=axes))(x, v)


def test_broadcast_in_dim_error_under_vmap_names_the_unbatched_operand() -> None:
    with pytest.raises(FgradTypeError, match=r"broadcast_in_dim: cannot broadcast operand "
                                             r"f32\[2,3\] to shape \(3,\)"):
        fgrad.vmap(lambda x: lax.broadcast_in_dim(x, (3,), ()), in_axes=1)(_x(2, 4, 3))


def test_concatenate_error_under_vmap_names_concatenate() -> None:
    with pytest.raises(FgradTypeError, match="concatenate: operands must have equal dtypes"):
        fgrad.vmap(lambda a, b: lax.concatenate([a, b], 0), in_axes=(0, None))(
            _x(2, 3), np.zeros(3, np.int32))
