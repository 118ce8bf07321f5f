"""Comparing a jitted result with the eager one.

On the reference backend (``"interpret"``) ``jit`` runs the same numpy
impls as eager execution, so results are bit-identical. A compiled backend
(``"cpu"``, the default; ``"cuda"``) fuses operations, sums with several
accumulators and uses its own math functions, so floats may differ in their
last bits: they are compared within a few ulps of the dtype, scaled by the
magnitude of the result (cancellation in a sum loses bits relative to its
terms, not to its value). Integers and booleans are always exact.
"""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

from fgrad.transforms.jit import default_backend
from fgrad.tree_util import tree_leaves

# Relative tolerance per float dtype on compiled backends.
FLOAT_TOL = {np.dtype(np.float16): 4e-3, np.dtype(ml_dtypes.bfloat16): 3e-2,
             np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


def assert_matches_eager(got: Any, want: Any, err_msg: str = "",
                         backend: str | None = None) -> None:
    """Same leaves, shapes and dtypes; values exact on ``"interpret"``, else within tolerance."""
    backend = backend or default_backend()
    got_leaves, want_leaves = tree_leaves(got), tree_leaves(want)
    assert len(got_leaves) == len(want_leaves), err_msg
    for g, w in zip(got_leaves, want_leaves):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.shape, g.dtype) == (w.shape, w.dtype), (err_msg, g.shape, g.dtype, w.shape,
                                                          w.dtype)
        tol = FLOAT_TOL.get(w.dtype)
        if backend == "interpret" or tol is None:
            np.testing.assert_array_equal(g, w, err_msg=err_msg)
            continue
        g64, w64 = g.astype(np.float64), w.astype(np.float64)
        finite = np.abs(w64[np.isfinite(w64)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(g64, w64, rtol=tol, atol=tol * scale, equal_nan=True,
                                   err_msg=f"{err_msg} (jit on {backend!r} vs eager)")
