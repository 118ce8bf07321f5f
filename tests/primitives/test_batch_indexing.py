"""Batching rules of the indexing family: ``gather``, the five scatters, ``dynamic_slice``,
``dynamic_update_slice`` (``fgrad/primitives/indexing_batch.py``), and numpy indexing
(``x[i]``, ``x.at[i].set/add``) under ``vmap``.

Every rule is checked against a Python loop over the batch, stacked
(``tests/batch_util.py``: shape, dtype, weak type, values), for

* each batching case by name: operand only, indices only, both, and for the
  scatters the updates alone or with the others; for ``dynamic_slice`` /
  ``dynamic_update_slice`` batched starts (all, some, only ones that cannot
  matter) with and without a batched operand / update;
* random ``in_axes`` (None, 0, last, middle) and ``out_axes``, every mode
  (``clip``/``fill`` with default and explicit fill values; ``drop``/``clip``)
  with out-of-bounds and repeated indices;
* nested ``vmap`` with different axes, ``jit(vmap)`` against eager, batch
  sizes 1 and 0;
* derivatives in float64 against JAX: ``vmap(grad)`` and ``grad`` of a summed
  ``vmap`` (and ``typecheck_jaxpr`` on their jaxprs);
* the jaxprs: an unbatched operand is not broadcast when only the indices (or
  starts) are batched, unbatched indices are passed through untouched.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from batch_util import batch_args, check_vmap, loop_and_stack, random_in_axes, seeded_rng
from op_table.indexing import jax_gather, jax_scatter, jax_scatter_mul_one_by_one

import fgrad
import fgrad.lax as lax
import fgrad.numpy as fnp
from fgrad.core.jaxpr import typecheck_jaxpr
from fgrad.tree_util import tree_leaves

SCATTERS = ["scatter", "scatter_add", "scatter_mul", "scatter_min", "scatter_max"]
GATHER_MODES = [("clip", None), ("fill", None), ("fill", -7.5)]



def _axis_choice(rng: np.random.Generator, ndim: int) -> int:
    """0, the last axis (as -1) or a middle one of an argument with ``ndim`` example dims."""
    return [0, -1, int(rng.integers(0, ndim + 1))][int(rng.integers(3))]


def _axes_for(rng: np.random.Generator, ndims: Sequence[int], batched: Sequence[bool]
              ) -> list[int | None]:
    return [_axis_choice(rng, nd) if b else None for nd, b in zip(ndims, batched)]


def _check_all_out_axes(f: Callable[..., Any], args: Sequence[Any], in_axes: Sequence[Any],
                        out_ndim: int, what: str) -> None:
    """``check_vmap`` with the batch axis of the output first, last and in the middle."""
    for out_axes in sorted({0, -1, out_ndim // 2}):
        check_vmap(f, args, in_axes, out_axes, what=what)


# --- examples: per-element argument lists ----------------------------------------------------

# (operand shape, indexed axes, batch shape of the indices)
GATHER_CASES = [((4, 5, 3), (0, 1), (2,)), ((4, 5, 3), (1,), (2, 3)), ((3, 1), (0,), ()),
                ((2, 3), (), (2,)), ((5,), (0,), (4,)), ((1, 4, 2), (0, 2), (3, 1))]


def gather_example(rng: np.random.Generator, shape: Sequence[int], axes: Sequence[int],
                   batch: Sequence[int]) -> list[Any]:
    x = rng.uniform(-2, 2, size=shape).astype(np.float32)
    hi = np.array([shape[a] for a in axes], dtype=np.int64)
    i = rng.integers(-2, hi + 2, size=(*batch, len(axes))).astype(np.int32)  # out of bounds too
    return [x, i]


def scatter_example(rng: np.random.Generator, shape: Sequence[int], axes: Sequence[int],
                    batch: Sequence[int]) -> list[Any]:
    x, i = gather_example(rng, shape, axes, batch)
    rest = [d for a, d in enumerate(shape) if a not in axes]
    u = rng.uniform(-2, 2, size=(*batch, *rest)).astype(np.float32)
    return [x, i, u]


def examples_of(make: Callable[..., list[Any]], rng: np.random.Generator, size: int,
                *params: Any) -> list[list[Any]]:
    return [make(rng, *params) for _ in range(size)]


def gather_fn(axes: Sequence[int], mode: str, fill: Any) -> Callable[..., Any]:
    return lambda x, i: lax.gather(x, i, axes=axes, mode=mode, fill_value=fill)


def scatter_fn(name: str, axes: Sequence[int], mode: str) -> Callable[..., Any]:
    op = getattr(lax, name)
    return lambda x, i, u: op(x, i, u, axes=axes, mode=mode)


# --- gather --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", GATHER_CASES, ids=str)
@pytest.mark.parametrize("mode,fill", GATHER_MODES)
@pytest.mark.parametrize("pattern", ["operand", "indices", "both"])
def test_gather_cases(case: Any, mode: str, fill: Any, pattern: str) -> None:
    shape, axes, batch = case
    rng = seeded_rng("gather", case, mode, fill, pattern)
    exs = examples_of(gather_example, rng, 3, shape, axes, batch)
    batched = {"operand": (True, False), "indices": (False, True), "both": (True, True)}[pattern]
    for _ in range(3):
        in_axes = _axes_for(rng, [len(shape), len(batch) + 1], batched)
        _check_all_out_axes(gather_fn(axes, mode, fill), batch_args(exs, in_axes), in_axes,
                            len(batch) + len(shape) - len(axes), f"gather {pattern}")


@pytest.mark.parametrize("in_axes", [a for a in itertools.product([None, 0, 1, -1], repeat=2)
                                     if a != (None, None)])
def test_gather_every_axis_pair_int_operand(in_axes: tuple[Any, Any]) -> None:
    # an int operand: "fill" gives the dtype's minimum out of bounds
    rng = seeded_rng("gather_int", in_axes)
    exs = [[rng.integers(-9, 9, size=(3, 4)).astype(np.int32),
            rng.integers(-2, 6, size=(2, 1)).astype(np.int32)] for _ in range(2)]
    for mode in ("clip", "fill"):
        check_vmap(gather_fn((1,), mode, None), batch_args(exs, in_axes), in_axes, -1,
                   what="gather int")


def test_gather_weak_operand_keeps_weak_type() -> None:
    x = fgrad.Array(np.arange(12.0, dtype=np.float32).reshape(3, 4), weak_type=True)
    i = np.array([[[0], [3]], [[9], [1]]], np.int32)
    for in_axes in [(None, 0), (0, 0), (1, None)]:
        args = [x if in_axes[0] is None else fgrad.Array(np.stack([np.asarray(x)] * 2,
                                                                  in_axes[0]), True),
                i if in_axes[1] is not None else i[0]]
        check_vmap(gather_fn((1,), "fill", None), args, in_axes, what="weak gather")
        assert fgrad.vmap(gather_fn((1,), "clip", None), in_axes)(*args).weak_type


@pytest.mark.parametrize("seed", range(8))
def test_gather_random_in_axes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape, axes, batch = GATHER_CASES[seed % len(GATHER_CASES)]
    mode, fill = GATHER_MODES[seed % 3]
    exs = examples_of(gather_example, rng, int(rng.integers(1, 4)), shape, axes, batch)
    in_axes = random_in_axes(rng, [len(shape), len(batch) + 1])
    check_vmap(gather_fn(axes, mode, fill), batch_args(exs, in_axes), in_axes,
               int(rng.integers(-1, 1)), what="gather")


# --- scatters --------------------------------------------------------------------------------

SCATTER_CASES = [((4, 5, 3), (0, 1), (3,)), ((3, 2), (1,), (2, 2)), ((2,), (0,), (5,)),
                 ((2, 3), (), (2,)), ((3, 1, 2), (0, 2), ())]
PATTERNS = [p for p in itertools.product([False, True], repeat=3) if any(p)]


def _pattern_id(p: Sequence[bool]) -> str:
    return "+".join(n for n, b in zip(("operand", "indices", "updates"), p) if b)


@pytest.mark.parametrize("name", SCATTERS)
@pytest.mark.parametrize("mode", ["drop", "clip"])
@pytest.mark.parametrize("pattern", PATTERNS, ids=_pattern_id)
def test_scatter_cases(name: str, mode: str, pattern: tuple[bool, bool, bool]) -> None:
    rng = seeded_rng(name, mode, pattern)
    for shape, axes, batch in SCATTER_CASES:
        # few targets, so indices repeat: "last update wins" and the combiners are exercised
        exs = examples_of(scatter_example, rng, 3, shape, axes, batch)
        in_axes = _axes_for(rng, [len(shape), len(batch) + 1, len(batch) + len(shape)
                                  - len(axes)], pattern)
        _check_all_out_axes(scatter_fn(name, axes, mode), batch_args(exs, in_axes), in_axes,
                            len(shape), f"{name} {_pattern_id(pattern)} {shape} {axes}")


@pytest.mark.parametrize("seed", range(10))
def test_scatter_random_in_axes(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    name, mode = SCATTERS[seed % 5], ["drop", "clip"][seed % 2]
    shape, axes, batch = SCATTER_CASES[seed % len(SCATTER_CASES)]
    exs = examples_of(scatter_example, rng, int(rng.integers(1, 4)), shape, axes, batch)
    in_axes = random_in_axes(rng, [len(shape), len(batch) + 1, len(batch) + len(shape)
                                   - len(axes)])
    check_vmap(scatter_fn(name, axes, mode), batch_args(exs, in_axes), in_axes,
               int(rng.integers(-1, 1)), what=name)


def test_scatter_set_last_update_wins_per_batch_element() -> None:
    # every element writes the same position three times; the last write of *each element*
    i = np.array([[[1], [1], [1]], [[0], [0], [0]]], np.int32)  # batch of 2
    u = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    out = fgrad.vmap(scatter_fn("scatter", (0,), "drop"), in_axes=(None, 0, 0))(
        np.zeros(2, np.float32), i, u)
    np.testing.assert_array_equal(np.asarray(out), [[0.0, 3.0], [6.0, 0.0]])


def test_scatter_small_index_dtype_with_large_batch() -> None:
    # the batch coordinate does not fit int8: the indices are widened, not wrapped
    rng = np.random.default_rng(7)
    x = rng.uniform(size=(200, 3)).astype(np.float32)
    i = rng.integers(0, 3, size=(200, 2, 1)).astype(np.int8)
    u = rng.uniform(size=(200, 2)).astype(np.float32)
    check_vmap(scatter_fn("scatter_add", (0,), "drop"), [x, i, u], [0, 0, 0], what="int8")
    check_vmap(gather_fn((0,), "clip", None), [x, i], [0, 0], what="int8 gather")


# --- dynamic_slice / dynamic_update_slice ------------------------------------------------------

DS_CASES = [((4, 5, 3), (2, 5, 1)), ((4, 5, 3), (4, 2, 3)), ((4, 5, 3), (4, 5, 3)),
            ((3, 4), (0, 2)), ((6,), (3,)), ((), ())]


def ds_example(rng: np.random.Generator, shape: Sequence[int]) -> list[Any]:
    starts = [np.int32(s) for s in rng.integers(-8, 8, size=len(shape))]  # negative, too big
    return [rng.uniform(-2, 2, size=shape).astype(np.float32), *starts]


def ds_fn(sizes: Sequence[int]) -> Callable[..., Any]:
    return lambda x, *s: lax.dynamic_slice(x, s, sizes)


def dus_fn() -> Callable[..., Any]:
    return lambda x, u, *s: lax.dynamic_update_slice(x, u, s)


def _start_patterns(n: int) -> list[tuple[bool, ...]]:
    pats = {(False,) * n, (True,) * n}
    pats |= {tuple(k == j for k in range(n)) for j in range(n)}
    return sorted(pats)


@pytest.mark.parametrize("case", DS_CASES, ids=str)
@pytest.mark.parametrize("operand_batched", [False, True])
def test_dynamic_slice_cases(case: Any, operand_batched: bool) -> None:
    shape, sizes = case
    rng = seeded_rng("ds", case, operand_batched)
    for starts in _start_patterns(len(shape)):
        if not (operand_batched or any(starts)):
            continue
        exs = examples_of(ds_example, rng, 3, shape)
        in_axes = _axes_for(rng, [len(shape)] + [0] * len(shape), (operand_batched, *starts))
        _check_all_out_axes(ds_fn(sizes), batch_args(exs, in_axes), in_axes, len(shape),
                            f"dynamic_slice {sizes} starts {starts}")


@pytest.mark.parametrize("case", DS_CASES, ids=str)
@pytest.mark.parametrize("operand_batched,update_batched",
                         [(False, False), (True, False), (False, True), (True, True)])
def test_dynamic_update_slice_cases(case: Any, operand_batched: bool,
                                    update_batched: bool) -> None:
    shape, sizes = case
    rng = seeded_rng("dus", case, operand_batched, update_batched)
    for starts in _start_patterns(len(shape)):
        if not (operand_batched or update_batched or any(starts)):
            continue
        exs = [[x, rng.uniform(-2, 2, size=sizes).astype(np.float32), *s]
               for x, *s in examples_of(ds_example, rng, 3, shape)]
        in_axes = _axes_for(rng, [len(shape)] * 2 + [0] * len(shape),
                            (operand_batched, update_batched, *starts))
        _check_all_out_axes(dus_fn(), batch_args(exs, in_axes), in_axes, len(shape),
                            f"dynamic_update_slice {sizes} starts {starts}")


def test_dynamic_update_slice_weak_types() -> None:
    # the result is weak only when operand and update both are (also on the scatter path)
    x = fgrad.Array(np.zeros((2, 4), np.float32), True)
    s = np.array([3, -1, 0], np.int32)
    for u_weak in (False, True):
        u = fgrad.Array(np.ones((2, 2), np.float32), u_weak)
        for in_axes in [(None, None, None, 0), (None, None, 0, 0), (None, 0, None, 0)]:
            args = [x, u if in_axes[1] is None else fgrad.Array(np.stack([np.asarray(u)] * 3),
                                                                u_weak), np.int32(1), s]
            args[2] = args[2] if in_axes[2] is None else s
            check_vmap(dus_fn(), args, in_axes, what=f"weak update={u_weak}")


@pytest.mark.parametrize("seed", range(8))
def test_dynamic_slices_random_in_axes(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    shape, sizes = DS_CASES[seed % len(DS_CASES)]
    exs = examples_of(ds_example, rng, int(rng.integers(1, 4)), shape)
    in_axes = random_in_axes(rng, [len(shape)] + [0] * len(shape))
    check_vmap(ds_fn(sizes), batch_args(exs, in_axes), in_axes, what="dynamic_slice")
    exs = [[x, rng.uniform(size=sizes).astype(np.float32), *s] for x, *s in exs]
    in_axes = random_in_axes(rng, [len(shape)] * 2 + [0] * len(shape))
    check_vmap(dus_fn(), batch_args(exs, in_axes), in_axes, -1, what="dynamic_update_slice")


# --- nested vmap, jit, batch sizes 1 and 0 ----------------------------------------------------

def _nested_args(rng: np.random.Generator, make: Callable[[], list[Any]], ndims: Sequence[int],
                 sizes: tuple[int, int]) -> tuple[list[Any], list[Any], list[Any]]:
    """Doubly batched args; inner axes are for the per-outer-element arrays."""
    inner = random_in_axes(rng, ndims)
    outer = random_in_axes(rng, [n + (a is not None) for n, a in zip(ndims, inner)])
    per_outer = [batch_args([make() for _ in range(sizes[1])], inner) for _ in range(sizes[0])]
    return batch_args(per_outer, outer), inner, outer


NESTED = [
    ("gather", lambda rng: gather_example(rng, (4, 3, 2), (0, 2), (2,)), [3, 2],
     gather_fn((0, 2), "fill", 1.5)),
    ("scatter", lambda rng: scatter_example(rng, (4, 3), (0,), (3,)), [2, 2, 2],
     scatter_fn("scatter", (0,), "drop")),
    ("scatter_add", lambda rng: scatter_example(rng, (2, 3, 2), (1,), (2, 2)), [3, 3, 4],
     scatter_fn("scatter_add", (1,), "clip")),
    ("scatter_max", lambda rng: scatter_example(rng, (3, 2), (0, 1), (4,)), [2, 2, 1],
     scatter_fn("scatter_max", (0, 1), "drop")),
    ("dynamic_slice", lambda rng: ds_example(rng, (5, 4)), [2, 0, 0], ds_fn((2, 3))),
    ("dynamic_update_slice", lambda rng: [*ds_example(rng, (5, 4))[:1],
                                          rng.uniform(size=(2, 4)).astype(np.float32),
                                          *ds_example(rng, (5, 4))[1:]], [2, 2, 0, 0],
     dus_fn()),
]


@pytest.mark.parametrize("name,make,ndims,f", NESTED, ids=[n[0] for n in NESTED])
@pytest.mark.parametrize("seed", range(4))
def test_nested_vmap(name: str, make: Any, ndims: list[int], f: Any, seed: int) -> None:
    rng = np.random.default_rng(300 + seed)
    args, inner, outer = _nested_args(rng, lambda: make(rng), ndims, (3, 2))
    got = fgrad.vmap(fgrad.vmap(f, in_axes=tuple(inner)), in_axes=tuple(outer), out_axes=-1)(
        *args)
    want = loop_and_stack(lambda *a: loop_and_stack(f, a, inner), args, outer, -1)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, want.shape)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want),
                                  err_msg=f"{name} inner={inner} outer={outer}")


@pytest.mark.parametrize("name,make,ndims,f", NESTED, ids=[n[0] for n in NESTED])
def test_jit_of_vmap_equals_eager(name: str, make: Any, ndims: list[int], f: Any) -> None:
    rng = np.random.default_rng(400)
    for _ in range(3):
        in_axes = tuple(random_in_axes(rng, ndims))
        args = batch_args([make(rng) for _ in range(3)], in_axes)
        eager = fgrad.vmap(f, in_axes=in_axes)(*args)
        jitted = fgrad.jit(fgrad.vmap(f, in_axes=in_axes))(*args)
        assert (jitted.shape, jitted.dtype) == (eager.shape, eager.dtype)
        np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager),
                                      err_msg=f"{name} in_axes={in_axes}")


@pytest.mark.parametrize("name,make,ndims,f", NESTED, ids=[n[0] for n in NESTED])
def test_batch_of_one_and_zero(name: str, make: Any, ndims: list[int], f: Any) -> None:
    rng = np.random.default_rng(500)
    for in_axes in ([0] * len(ndims), [0] + [None] * (len(ndims) - 1),
                    [None] * (len(ndims) - 1) + [-1]):
        ex = make(rng)
        check_vmap(f, batch_args([ex], in_axes), in_axes, what=f"{name} batch of 1")
        empty = [np.moveaxis(np.zeros((0, *np.shape(a)), np.asarray(a).dtype), 0, ax)
                 if ax is not None else a for a, ax in zip(ex, in_axes)]
        out = fgrad.vmap(f, in_axes=tuple(in_axes))(*empty)
        want_shape = (0, *np.shape(f(*ex)))
        assert out.shape == want_shape, f"{name} batch of 0: {out.shape} != {want_shape}"


# --- derivatives against JAX (float64) -------------------------------------------------------

def _jax_twin(name: str, axes: Sequence[int], mode: str) -> Any:
    if name == "gather":
        return lambda x, i: jax_gather(x, i, axes, mode, 1.5 if mode == "fill" else None)
    return lambda x, i, u: jax_scatter(name, x, i, u, axes, mode)


def _fgrad_op(name: str, axes: Sequence[int], mode: str) -> Any:
    if name == "gather":
        return gather_fn(axes, mode, 1.5 if mode == "fill" else None)
    return scatter_fn(name, axes, mode)


def _assert_trees_close(got: Any, want: Any, what: str) -> None:
    got, want = tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert g.shape == w.shape, f"{what}: {g.shape} != {w.shape}"
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-10, atol=1e-10,
                                   err_msg=what)


def _weights(shape: Sequence[int]) -> np.ndarray:
    """Fixed weights of ``shape``: they break the symmetry between the outputs of a loss."""
    return np.random.default_rng(5).uniform(0.5, 1.5, size=shape)


DERIV_CASES = [("gather", "clip"), ("gather", "fill")] + [
    (n, m) for n in SCATTERS for m in ("drop", "clip")]


def _deriv_args(rng: np.random.Generator, name: str, shape: Sequence[int],
                axes: Sequence[int], batch: Sequence[int], in_axes: Sequence[Any] | None = None,
                in_bounds: bool = False) -> tuple[list[Any], list[Any]]:
    """Batched float64 args (and their in_axes) for the derivative tests of ``name``."""
    ex = [scatter_example(rng, shape, axes, batch) for _ in range(3)]
    for e in ex:
        e[0], e[2] = e[0].astype(np.float64), e[2].astype(np.float64)
        if in_bounds:
            e[1] = np.clip(e[1], 0, [shape[a] - 1 for a in axes]).astype(np.int32)
        if name == "scatter_mul":  # JAX differentiates it with unbatched indices only
            e[1] = ex[0][1]
    ex = [e[:2] for e in ex] if name == "gather" else ex
    if in_axes is None:
        in_axes = random_in_axes(rng, [np.ndim(a) for a in ex[0]])
        in_axes[1] = None if name == "scatter_mul" else in_axes[1]
        if all(a is None for a in in_axes):
            in_axes[0] = 0
    return batch_args(ex, in_axes), list(in_axes)


def _jax_loss(name: str, axes: Sequence[int], mode: str) -> Any:
    """JAX's ``sum(sin(op(x, i, ...)) * weights)`` (for scatter_mul ``i`` must be concrete)."""
    def loss(x: Any, i: Any, *u: Any) -> Any:
        if name == "scatter_mul":  # one update at a time: JAX needs unique indices
            out = jax_scatter_mul_one_by_one(x, i, *u, axes, mode)
        else:
            out = _jax_twin(name, axes, mode)(x, i, *u)
        return jnp.sum(jnp.sin(out) * _weights(out.shape))
    return loss


def _fgrad_loss(name: str, axes: Sequence[int], mode: str) -> Any:
    def loss(x: Any, i: Any, *u: Any) -> Any:
        out = _fgrad_op(name, axes, mode)(x, i, *u)
        return fnp.sum(fnp.sin(out) * _weights(out.shape))
    return loss


@pytest.mark.parametrize("name,mode", DERIV_CASES)
def test_vmap_of_grad(name: str, mode: str, x64: None) -> None:
    # against JAX (in bounds: JAX's clip-mode scatter_min/max derivative is wrong out of
    # bounds) and, with out-of-bounds indices, against the loop of fgrad's own grad
    rng = np.random.default_rng(600)
    shape, axes, batch = (4, 3), (0,), (3,)
    argnums = (0,) if name == "gather" else (0, 2)
    g = fgrad.grad(_fgrad_loss(name, axes, mode), argnums=argnums)
    for in_bounds in (True, False):
        args, in_axes = _deriv_args(rng, name, shape, axes, batch, in_bounds=in_bounds)
        got = fgrad.vmap(g, in_axes=tuple(in_axes))(*args)
        what = f"vmap(grad({name})) mode={mode} in_axes={in_axes}"
        if in_bounds:
            want = jax.vmap(jax.grad(_jax_loss(name, axes, mode), argnums=argnums),
                            in_axes=tuple(in_axes))(*args)
            _assert_trees_close(got, want, what)
        else:
            _assert_trees_close(got, loop_and_stack(g, args, in_axes), what + " (loop)")
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.vmap(g, in_axes=tuple(in_axes)))(*args))


@pytest.mark.parametrize("name,mode", DERIV_CASES)
def test_grad_of_summed_vmap_against_jax(name: str, mode: str, x64: None) -> None:
    rng = np.random.default_rng(700)
    shape, axes, batch = (3, 2, 2), (0, 2), (2,)
    in_axes = {"gather": [-1, 1], "scatter_mul": [0, None, None]}.get(name, [-1, 1, 1])
    clip_minmax = mode == "clip" and name in ("scatter_min", "scatter_max")
    args, _ = _deriv_args(rng, name, shape, axes, batch, in_axes, in_bounds=clip_minmax)
    i, floats = args[1], [args[0], *args[2:]]
    argnums = tuple(range(len(floats)))

    def summed(*fl: Any) -> Any:
        return fnp.sum(fgrad.vmap(_fgrad_loss(name, axes, mode), in_axes=tuple(in_axes))(
            fl[0], i, *fl[1:]))

    def jax_summed(*fl: Any) -> Any:
        return jnp.sum(jax.vmap(_jax_loss(name, axes, mode), in_axes=tuple(in_axes))(
            fl[0], i, *fl[1:]))

    got = fgrad.grad(summed, argnums=argnums)(*floats)
    want = jax.grad(jax_summed, argnums=argnums)(*floats)
    _assert_trees_close(got, want, f"grad(sum(vmap({name}))) mode={mode}")
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.grad(summed, argnums=argnums))(*floats))


@pytest.mark.parametrize("in_axes", [(0, None, None), (None, 0, None), (1, 0, 0),
                                     (None, None, 0)])
def test_dynamic_slices_derivatives_against_jax(in_axes: tuple[Any, ...], x64: None) -> None:
    rng = np.random.default_rng(800)
    xs = rng.uniform(-2, 2, size=(3, 5, 4))
    s0, s1 = np.array([-1, 2, 7], np.int32), np.array([1, 3, -9], np.int32)
    x = xs if in_axes[0] == 0 else (np.moveaxis(xs, 0, 1) if in_axes[0] == 1 else xs[0])
    a0 = s0 if in_axes[1] is not None else s0[1]
    a1 = s1 if in_axes[2] is not None else s1[2]

    def f(x: Any, a: Any, b: Any) -> Any:
        return fnp.sum(fnp.sin(lax.dynamic_slice(x, (a, b), (3, 2))) ** 2)

    def g(x: Any, a: Any, b: Any) -> Any:
        y = lax.dynamic_update_slice(x, fnp.cos(lax.dynamic_slice(x, (b, a), (2, 2))), (a, b))
        return fnp.sum(fnp.sin(y) * x)

    jf = lambda x, a, b: jnp.sum(jnp.sin(jax.lax.dynamic_slice(x, (a, b), (3, 2))) ** 2)  # noqa
    jg = lambda x, a, b: jnp.sum(jnp.sin(jax.lax.dynamic_update_slice(  # noqa: E731
        x, jnp.cos(jax.lax.dynamic_slice(x, (b, a), (2, 2))), (a, b))) * x)
    got = fgrad.vmap(fgrad.grad(f), in_axes=in_axes)(x, a0, a1)
    want = jax.vmap(jax.grad(jf), in_axes=in_axes)(x, a0, a1)
    _assert_trees_close(got, want, f"vmap(grad(dynamic_slice)) in_axes={in_axes}")
    got = fgrad.vmap(fgrad.grad(g), in_axes=in_axes)(x, a0, a1)
    want = jax.vmap(jax.grad(jg), in_axes=in_axes)(x, a0, a1)
    _assert_trees_close(got, want, f"vmap(grad(dynamic_update_slice)) in_axes={in_axes}")
    got = fgrad.grad(lambda x: fnp.sum(fgrad.vmap(g, in_axes=in_axes)(x, a0, a1)))(x)
    want = jax.grad(lambda x: jnp.sum(jax.vmap(jg, in_axes=in_axes)(x, a0, a1)))(x)
    _assert_trees_close(got, want, f"grad(sum(vmap)) in_axes={in_axes}")
    typecheck_jaxpr(fgrad.make_jaxpr(fgrad.vmap(fgrad.grad(g), in_axes=in_axes))(x, a0, a1))


# --- numpy indexing under vmap ---------------------------------------------------------------

def _assert_like_jax(got: Any, want: Any, what: str) -> None:
    assert (got.shape, got.dtype) == (want.shape, want.dtype), (
        f"{what}: {got.dtype}{list(got.shape)} != JAX's {want.dtype}{list(want.shape)}")
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6, err_msg=what)


def fgrad_and_jax(f: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``f(xp, x, ...)`` for fgrad.numpy and for jax.numpy (``x`` made an array of each)."""
    return (lambda x, *a: f(fnp, fnp.asarray(x), *a), lambda x, *a: f(jnp, jnp.asarray(x), *a))


NUMPY_CASES = [
    ("x[i]", lambda xp, x, i: x[i]),
    ("x[:, i]", lambda xp, x, i: x[:, i]),
    ("x[i, 1:3]", lambda xp, x, i: x[i, 1:3]),
    ("x[i, i]", lambda xp, x, i: x[i, ::-1][i]),
    ("x.at[i].get(fill)", lambda xp, x, i: x.at[i].get(mode="fill", fill_value=-1.0)),
    ("take", lambda xp, x, i: xp.take(x, i, axis=1, mode="clip")),
]


GETITEM_AXES = [(None, 0), (0, 0), (1, None), (-1, 0)]


@pytest.mark.parametrize("name,f", NUMPY_CASES, ids=[c[0] for c in NUMPY_CASES])
@pytest.mark.parametrize("in_axes", GETITEM_AXES)
def test_numpy_getitem_under_vmap(name: str, f: Any, in_axes: tuple[Any, Any]) -> None:
    rng = np.random.default_rng(900)
    f, jf = fgrad_and_jax(f)
    for k, index_shape in enumerate([(), (2, 3)]):
        x = rng.uniform(-2, 2, size=(4, 4, 3)).astype(np.float32)  # batch 3 along axis -1
        x = np.moveaxis(x, -1, in_axes[0]) if in_axes[0] is not None else x[..., 0]
        i = rng.integers(-4, 4, size=(3, *index_shape)).astype(np.int32)  # negatives too
        i = i if in_axes[1] is not None else i[0]
        check_vmap(f, [x, i], in_axes, what=name)
        got = fgrad.vmap(f, in_axes=in_axes)(x, i)
        if k == GETITEM_AXES.index(in_axes) % 2:  # JAX is slow: one index shape each
            want = jax.vmap(jf, in_axes=in_axes)(jnp.asarray(x), jnp.asarray(i))
            _assert_like_jax(got, want, f"{name} in_axes={in_axes}")
        got_jit = fgrad.jit(fgrad.vmap(f, in_axes=in_axes))(x, i)
        np.testing.assert_array_equal(np.asarray(got_jit), np.asarray(got))


UPDATE_CASES = [
    ("set", lambda xp, x, i, v: x.at[i].set(v)),
    ("add", lambda xp, x, i, v: x.at[i].add(v)),
    ("set 2-d", lambda xp, x, i, v: x.at[i, 1:].set(v[..., None])),
    ("add rows", lambda xp, x, i, v: x.at[:, i].add(v[None])),
    ("multiply", lambda xp, x, i, v: x.at[i, 0].multiply(v)),
    ("max", lambda xp, x, i, v: x.at[1:, i].max(v)),
]


@pytest.mark.parametrize("name,f", UPDATE_CASES, ids=[c[0] for c in UPDATE_CASES])
@pytest.mark.parametrize("in_axes", [(None, 0, None), (None, 0, 0), (0, None, None),
                                     (None, None, 0), (1, 0, 0), (-1, None, -1)])
def test_numpy_at_update_under_vmap(name: str, f: Any, in_axes: tuple[Any, ...]) -> None:
    rng = np.random.default_rng(1000)
    x = rng.uniform(-2, 2, size=(4, 3, 3)).astype(np.float32)  # batch 3 along axis -1
    x = np.moveaxis(x, -1, in_axes[0]) if in_axes[0] is not None else x[..., 0]
    i = np.array([[0, 2, 0], [3, -1, 1], [1, 1, 2]], np.int32)  # repeats; batch first
    i = i if in_axes[1] is not None else i[0]
    v = rng.uniform(-2, 2, size=(3, 3)).astype(np.float32)
    v = v if in_axes[2] is not None else v[0]
    f, jf = fgrad_and_jax(f)
    got = fgrad.vmap(f, in_axes=in_axes)(x, i, v)
    want = jax.vmap(jf, in_axes=in_axes)(jnp.asarray(x), jnp.asarray(i), jnp.asarray(v))
    if name.startswith("set"):  # JAX leaves the winner of repeats open; fgrad: the last
        loop = loop_and_stack(f, [x, i, v], in_axes)
        np.testing.assert_array_equal(np.asarray(got), np.asarray(loop))
        assert got.shape == want.shape
    else:
        _assert_like_jax(got, want, f"{name} in_axes={in_axes}")


def test_numpy_out_of_bounds_under_vmap_matches_loop() -> None:
    rng = np.random.default_rng(1100)
    x = rng.uniform(-2, 2, size=(3, 5)).astype(np.float32)
    i = np.array([[7, -9], [2, 11], [-1, 5]], np.int32)
    for f in (lambda x, i: fnp.asarray(x)[i], lambda x, i: fnp.asarray(x).at[i].set(1.0),
              lambda x, i: fnp.asarray(x).at[i].add(1.0),
              lambda x, i: fnp.asarray(x).at[i].get(mode="fill")):
        for in_axes in [(None, 0), (0, 0), (1, None)]:
            xx = x if in_axes[0] != 1 else x.T
            args = [xx if in_axes[0] is not None else x[0], i if in_axes[1] is not None else i[0]]
            check_vmap(f, args, in_axes, what="numpy out of bounds")


# --- jaxprs: unbatched operands are not broadcast, unbatched indices untouched ---------------

def _eqns(jaxpr: Any, name: str) -> list[Any]:
    return [e for e in jaxpr.jaxpr.eqns if e.primitive.name == name]


def _assert_never_broadcast(jaxpr: Any, operand: Any, batch: int) -> None:
    """No value in the jaxpr has the operand's dtype and its shape with a batch axis added."""
    aval = fgrad.core.avals.get_aval(operand)
    for eqn in jaxpr.jaxpr.eqns:
        for v in eqn.outvars:
            shape = v.aval.shape
            assert not (v.aval.dtype == aval.dtype and len(shape) == aval.ndim + 1
                        and batch in shape and int(np.prod(shape)) == batch * aval.size), (
                f"the unbatched operand {aval.str_short()} was broadcast: {eqn}")


def test_jaxpr_gather_indices_only_does_not_broadcast_operand() -> None:
    x, i = np.ones((4, 5), np.float32), np.zeros((3, 2, 1), np.int32)
    for idx_axis in (0, 1, 2):
        jaxpr = fgrad.make_jaxpr(fgrad.vmap(gather_fn((1,), "clip", None),
                                            in_axes=(None, idx_axis)))(x, np.moveaxis(i, 0,
                                                                                     idx_axis))
        (eqn,) = _eqns(jaxpr, "gather")
        assert eqn.invars[0] is jaxpr.jaxpr.invars[0], "the operand must go in as it is"
        assert not _eqns(jaxpr, "broadcast_in_dim")
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(gather_fn((1,), "fill", None), in_axes=(1, None)))(
        np.ones((4, 3, 5), np.float32), i[0])
    (eqn,) = _eqns(jaxpr, "gather")
    assert eqn.invars[1] is jaxpr.jaxpr.invars[1], "unbatched indices must go in as they are"
    assert {e.primitive.name for e in jaxpr.jaxpr.eqns} == {"gather", "transpose"}  # out_axes


def test_jaxpr_scatter_unbatched_indices_untouched() -> None:
    x, i, u = np.ones((3, 4, 5), np.float32), np.zeros((2, 1), np.int32), np.ones((3, 2, 4),
                                                                                  np.float32)
    for name in SCATTERS:
        jaxpr = fgrad.make_jaxpr(fgrad.vmap(scatter_fn(name, (1,), "drop"),
                                            in_axes=(0, None, 0)))(x, i, u)
        (eqn,) = _eqns(jaxpr, name)
        assert eqn.invars[1] is jaxpr.jaxpr.invars[1]
        assert not _eqns(jaxpr, "broadcast_in_dim") and not _eqns(jaxpr, "concatenate")


def test_jaxpr_dynamic_slice_batched_starts_do_not_broadcast_operand() -> None:
    x, s = np.ones((6, 5), np.float32), np.arange(3, dtype=np.int32)
    for f in (lambda x, s: lax.dynamic_slice(x, (s, 1), (2, 3)),
              lambda x, s: lax.dynamic_slice(x, (2, s), (6, 2))):
        jaxpr = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(None, 0)))(x, s)
        (eqn,) = _eqns(jaxpr, "gather")
        assert eqn.invars[0] is jaxpr.jaxpr.invars[0]
        _assert_never_broadcast(jaxpr, x, 3)
    # shared starts keep the simple form: one dynamic_slice, no gather
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(lambda x: lax.dynamic_slice(x, (1, 2), (2, 3))))(
        np.ones((3, 6, 5), np.float32))
    assert _eqns(jaxpr, "dynamic_slice") and not _eqns(jaxpr, "gather")
    jaxpr = fgrad.make_jaxpr(fgrad.vmap(lambda x, u: lax.dynamic_update_slice(x, u, (1, 2)),
                                        in_axes=(0, 0)))(np.ones((3, 6, 5), np.float32),
                                                         np.ones((3, 2, 2), np.float32))
    assert _eqns(jaxpr, "dynamic_update_slice") and not _eqns(jaxpr, "scatter")


def test_jaxpr_numpy_getitem_batched_index_does_not_broadcast_operand() -> None:
    x = np.ones((6, 5, 4), np.float32)
    for f in (lambda x, i: fnp.asarray(x)[i], lambda x, i: fnp.asarray(x)[:, i],
              lambda x, i: fnp.asarray(x)[i, 1:3, ::2]):
        for shape in [(3,), (3, 2)]:
            jaxpr = fgrad.make_jaxpr(fgrad.vmap(f, in_axes=(None, 0)))(
                x, np.zeros(shape, np.int32))
            assert _eqns(jaxpr, "gather")
            _assert_never_broadcast(jaxpr, x, 3)
