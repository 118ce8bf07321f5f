"""Shared helpers for comparing fgrad results with JAX's (the oracle) in tests."""

from __future__ import annotations

from typing import Any

import jax
import ml_dtypes
import numpy as np

import fgrad
from fgrad.core.trace import Tracer

BF16 = np.dtype(ml_dtypes.bfloat16)


def weak(x: Any) -> bool:
    """The weak-type bit of an fgrad or a JAX array."""
    return bool(jax.typeof(x).weak_type) if isinstance(x, jax.Array) else bool(x.weak_type)


def assert_matches(got: Any, want: Any, what: str = "", rtol: float = 1e-6) -> None:
    """Same shape, dtype and weak type; values equal (floats: close, NaNs in the same places)."""
    got_leaves, want_leaves = fgrad.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)
    assert len(got_leaves) == len(want_leaves), what
    for g, w in zip(got_leaves, want_leaves):
        assert isinstance(g, fgrad.Array), f"{what}: got a {type(g).__name__}"
        assert (g.shape, g.dtype, weak(g)) == (w.shape, w.dtype, weak(w)), (
            f"{what}: got {g.dtype}{list(g.shape)} weak={weak(g)}, "
            f"JAX {w.dtype}{list(w.shape)} weak={weak(w)}")
        if np.issubdtype(np.asarray(w).dtype, np.inexact) or w.dtype == BF16:
            np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64),
                                       rtol=rtol, atol=rtol, equal_nan=True, err_msg=what)
        else:
            np.testing.assert_array_equal(np.asarray(g), np.asarray(w), err_msg=what)


def assert_tree_close(got: Any, want: Any, rtol: float = 1e-10, atol: float = 1e-10) -> None:
    """Same tree structure, shapes and dtypes, no leaked tracers; values close."""
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert not isinstance(a, Tracer), f"a tracer leaked into the result: {a!r}"
        a_np, b_np = np.asarray(a), np.asarray(b)
        assert a_np.shape == b_np.shape and a_np.dtype == b_np.dtype, (a, b)
        np.testing.assert_allclose(a_np, b_np, rtol=rtol, atol=atol)
