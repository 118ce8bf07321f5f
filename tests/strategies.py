"""Hypothesis strategies for fgrad's tests: shapes, arrays in a domain, layouts.

* ``shapes``: array shapes that favour the edge cases kernels get wrong:
  0-d, size-0 axes, size-1 (broadcast) axes and odd sizes.
* ``arrays``: numpy arrays of a dtype with values in a domain, kept a
  ``margin`` away from points to ``avoid`` (kinks and jumps such as 0 for
  ``abs`` or the integers for ``floor``), optionally in a non-contiguous
  layout.
* ``broadcastable_shapes``: shapes that broadcast together, numpy style.
* ``layouts`` / ``relayout``: the same values stored transposed, strided or
  reversed, so code that assumes C-contiguous input is caught.

Values are drawn with hypothesis (so failures shrink), in float64 first and
then rounded to the requested dtype (float16 and bfloat16 included).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import ml_dtypes
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

Shape = tuple[int, ...]

# Sizes that exercise the edge cases: empty, broadcastable, odd and even, a prime.
EDGE_SIDES: tuple[int, ...] = (0, 1, 2, 3, 5)
AVOID_MARGIN = 0.05
LAYOUTS = ("contiguous", "fortran", "strided", "reversed")


def shapes(min_dims: int = 0, max_dims: int = 3, sides: Sequence[int] = EDGE_SIDES,
           allow_empty: bool = True) -> st.SearchStrategy[Shape]:
    """Shapes with ``min_dims..max_dims`` axes, each of a size in ``sides``.

    ``allow_empty=False`` drops size-0 axes (for ops that need an element).
    """
    sizes = [s for s in sides if allow_empty or s > 0]
    return st.lists(st.sampled_from(sizes), min_size=min_dims, max_size=max_dims).map(tuple)


def broadcastable_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 3,
                         max_side: int = 5) -> st.SearchStrategy[tuple[list[Shape], Shape]]:
    """``(input_shapes, result_shape)`` for ``num_shapes`` mutually broadcastable shapes.

    Size-0 and size-1 axes are included (``min_side=0``), as numpy allows.
    """
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, min_side=0,
        max_side=max_side).map(lambda bs: (list(bs.input_shapes), bs.result_shape))


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype == np.dtype(ml_dtypes.bfloat16)


def push_away(x: np.ndarray, avoid: Sequence[float], margin: float,
              domain: tuple[float, float]) -> np.ndarray:
    """Move values within ``margin`` of a point in ``avoid`` to ``point +- margin``.

    The side is the one the value was on, unless that leaves ``domain``.
    """
    lo, hi = domain
    x = np.asarray(x, dtype=np.float64)
    for p in avoid:
        d = x - p
        near = np.abs(d) < margin
        if not near.any():
            continue
        side = np.where(d < 0, -1.0, 1.0)
        moved = p + side * margin
        outside = (moved < lo) | (moved > hi)
        moved = np.where(outside, p - side * margin, moved)
        x = np.where(near, moved, x)
    return x


def relayout(x: np.ndarray, layout: str) -> np.ndarray:
    """``x``'s values in a different memory layout (a view into a larger buffer).

    ``"fortran"``: column-major; ``"strided"``: every other element of a
    buffer twice as large in each axis; ``"reversed"``: negative strides.
    """
    if layout == "contiguous" or x.ndim == 0:
        return x.copy()  # (not ascontiguousarray, which makes 0-d arrays 1-d)
    if layout == "fortran":
        return np.asfortranarray(x)
    if layout == "strided":
        buffer = np.zeros(tuple(2 * s for s in x.shape), dtype=x.dtype)
        view = buffer[tuple(slice(None, None, 2) for _ in x.shape)]
        view[...] = x
        return view
    if layout == "reversed":
        flipped = np.ascontiguousarray(x[tuple(slice(None, None, -1) for _ in x.shape)])
        return flipped[tuple(slice(None, None, -1) for _ in x.shape)]
    raise ValueError(f"relayout: unknown layout {layout!r}; expected one of {LAYOUTS}")


def layouts(x: np.ndarray) -> st.SearchStrategy[np.ndarray]:
    """``x`` in one of the ``LAYOUTS`` (values unchanged)."""
    return st.sampled_from(LAYOUTS).map(lambda layout: relayout(x, layout))


def _float_elements(domain: tuple[float, float]) -> st.SearchStrategy[float]:
    lo, hi = float(domain[0]), float(domain[1])
    if lo == hi:
        return st.just(lo)
    # The domain is open, so records can write (0, 2) for log without meaning log(0).
    return st.floats(lo, hi, exclude_min=True, exclude_max=True, allow_nan=False,
                     allow_infinity=False, allow_subnormal=False)


@st.composite
def arrays(draw: st.DrawFn, dtype: Any, shape: Shape,
           domain: tuple[float, float] = (-2.0, 2.0), avoid: Sequence[float] = (),
           margin: float = AVOID_MARGIN, layout: bool = False) -> np.ndarray:
    """A numpy array of ``dtype`` and ``shape`` with values in ``domain``.

    Floats lie in the open interval ``domain`` (then rounded to ``dtype``)
    and at least ``margin`` away from each point of ``avoid``; integers are
    drawn from ``[lo, hi)`` (half-open, like ``range``); bools are any.
    ``layout=True`` also draws a non-contiguous memory layout.
    """
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    if dtype == np.bool_:
        value = draw(hnp.arrays(np.bool_, shape, elements=st.booleans()))
    elif _is_float(dtype):
        raw = draw(hnp.arrays(np.float64, shape, elements=_float_elements(domain)))
        if avoid:
            raw = push_away(raw, avoid, margin, domain)
        value = raw.astype(dtype)
        # NOTE: XLA on CPU flushes subnormals to zero (it treats them as 0 in comparisons
        # and casts), numpy does not; values tiny only after rounding are drawn as 0.
        tiny = float(ml_dtypes.finfo(dtype).tiny)
        value[np.abs(value.astype(np.float64)) < tiny] = 0
    else:
        lo, hi = math.ceil(domain[0]), math.ceil(domain[1]) - 1
        info = np.iinfo(dtype)
        lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
        if lo > hi:
            raise ValueError(f"arrays: empty integer domain {domain} for {dtype}")
        value = draw(hnp.arrays(dtype, shape, elements=st.integers(lo, hi)))
    if layout:
        value = draw(layouts(value))
    return value


__all__ = ["EDGE_SIDES", "AVOID_MARGIN", "LAYOUTS", "shapes", "broadcastable_shapes",
           "push_away", "relayout", "layouts", "arrays"]
