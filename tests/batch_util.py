"""Checking batching rules: ``vmap(f)`` must equal a Python loop over the batch, stacked.

``check_vmap(f, batched_args, in_axes, out_axes=0)`` runs ``f`` once per batch
element (slicing each mapped argument along its axis, passing unmapped ones
whole), stacks the results along ``out_axes`` and compares with
``fgrad.vmap(f, in_axes, out_axes)`` leaf by leaf: same shape, same dtype,
same weak type, values equal (floats: close). ``batch_args`` builds the
batched arguments from per-example ones by stacking them along random axes.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Sequence

import numpy as np

import fgrad
from fgrad.core.avals import get_aval
from fgrad.tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten


def stack_along(arrays: Sequence[Any], axis: int) -> np.ndarray:
    return np.stack([np.asarray(a) for a in arrays], axis=axis)


def batch_args(examples: Sequence[Sequence[Any]], in_axes: Sequence[int | None]) -> list[Any]:
    """Batched arguments from ``examples[b][i]`` (argument i of example b).

    An argument with axis ``None`` takes example 0's value (it is shared by
    the whole batch); others are stacked along their axis (negative allowed).
    """
    out = []
    for i, ax in enumerate(in_axes):
        if ax is None:
            out.append(examples[0][i])
        else:
            ndim = np.ndim(examples[0][i])
            out.append(stack_along([ex[i] for ex in examples], ax % (ndim + 1)))
    return out


def loop_and_stack(f: Callable[..., Any], args: Sequence[Any], in_axes: Sequence[int | None],
                   out_axes: int = 0, axis_size: int | None = None) -> Any:
    """The reference: ``f`` on each batch element, results stacked along ``out_axes``."""
    sizes = {np.shape(a)[ax] for a, ax in zip(args, in_axes) if ax is not None}
    size = axis_size if not sizes else sizes.pop()
    results = []
    for b in range(size):
        sliced = [a if ax is None else np.asarray(np.take(np.asarray(a), b, axis=ax))
                  for a, ax in zip(args, in_axes)]
        # keep the argument's dtype *and* weak type: slice the fgrad array, not numpy's copy
        sliced = [s if ax is None else fgrad.Array(s, getattr(a, "weak_type", False))
                  for s, a, ax in zip(sliced, args, in_axes)]
        results.append(f(*sliced))
    leaves0, tree = tree_flatten(results[0])
    per_leaf = [tree_leaves(r) for r in results]
    stacked = [stack_along([r[j] for r in per_leaf], out_axes % (np.ndim(leaves0[j]) + 1))
               for j in range(len(leaves0))]
    weak = [bool(get_aval(x).weak_type) for x in leaves0]
    return tree_unflatten(tree, [fgrad.Array(s, w) for s, w in zip(stacked, weak)])


def check_vmap(f: Callable[..., Any], args: Sequence[Any], in_axes: Sequence[int | None],
               out_axes: int = 0, rtol: float = 1e-6, atol: float | None = None,
               check_weak_type: bool = True, what: str = "") -> None:
    """Assert ``vmap(f, in_axes, out_axes)(*args)`` equals the loop-and-stack reference."""
    want = loop_and_stack(f, args, in_axes, out_axes)
    got = fgrad.vmap(f, in_axes=tuple(in_axes), out_axes=out_axes)(*args)
    got_leaves, got_tree = tree_flatten(got)
    want_leaves, want_tree = tree_flatten(want)
    assert got_tree == want_tree, f"{what}: output structure {got_tree} != {want_tree}"
    for j, (g, w) in enumerate(zip(got_leaves, want_leaves)):
        g_aval, w_aval = get_aval(g), get_aval(w)
        label = f"{what} (in_axes={tuple(in_axes)}, out_axes={out_axes}, output {j})"
        assert (g_aval.shape, g_aval.dtype) == (w_aval.shape, w_aval.dtype), (
            f"{label}: vmap gave {g_aval.str_short()}, the loop {w_aval.str_short()}")
        if check_weak_type:
            assert g_aval.weak_type == w_aval.weak_type, f"{label}: weak type differs"
        g_np, w_np = np.asarray(g), np.asarray(w)
        if np.issubdtype(w_np.dtype, np.inexact) or w_np.dtype.kind == "V":
            np.testing.assert_allclose(g_np.astype(np.float64), w_np.astype(np.float64),
                                       rtol=rtol, atol=rtol if atol is None else atol,
                                       equal_nan=True, err_msg=label)
        else:
            np.testing.assert_array_equal(g_np, w_np, err_msg=label)


def random_in_axes(rng: np.random.Generator, ndims: Sequence[int],
                   allow_none: bool = True) -> list[int | None]:
    """One axis per argument: None (if allowed), 0, the last (as -1), or a middle one;
    at least one argument is mapped."""
    while True:
        axes: list[int | None] = []
        for nd in ndims:
            choices: list[int | None] = [0, -1, int(rng.integers(0, nd + 1))]
            if allow_none:
                choices.append(None)
            axes.append(choices[int(rng.integers(len(choices)))])
        if any(a is not None for a in axes):
            return axes


__all__ = ["batch_args", "loop_and_stack", "check_vmap", "random_in_axes", "tree_map"]


def with_batch_axis(shape: tuple[int, ...], axis: int | None, size: int) -> tuple[int, ...]:
    """``shape`` with a batch axis of ``size`` inserted at ``axis`` (None: unbatched)."""
    if axis is None:
        return shape
    axis %= len(shape) + 1
    return (*shape[:axis], size, *shape[axis:])


def nonlinear_sum(y: Any) -> Any:
    """A nonlinear scalar of ``y`` (fgrad or JAX array), so gradients depend on its values."""
    import jax
    import jax.numpy as jnp

    import fgrad.numpy as fnp
    lib = jnp if isinstance(y, jax.Array) else fnp
    return (lib.sin(y) * y).sum()


def seeded_rng(*names: Any) -> np.random.Generator:
    """A generator seeded by the test's parameters (stable across runs, unlike ``hash``)."""
    return np.random.default_rng(zlib.crc32(repr(names).encode()))


def random_values(rng: np.random.Generator, shape: Sequence[int], dtype: Any,
                  domain: tuple[float, float] = (-2.0, 2.0), int_bound: int = 5) -> np.ndarray:
    """Random values of ``dtype``: floats in ``domain``, ints in [-int_bound, int_bound]."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        return rng.integers(-int_bound, int_bound + 1, shape).astype(dtype)
    return rng.uniform(*domain, shape).astype(dtype)
