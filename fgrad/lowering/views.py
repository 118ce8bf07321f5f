"""Views: reading an array through a reshaped, broadcast, transposed, sliced, reversed or
padded window without copying it.

A ``View`` describes a logical array of ``shape`` over a flat buffer: element
``(o_0, ..., o_{n-1})`` lives at ``offset + sum(o_k * strides[k])``, and, when
a ``mask`` is given, only exists where ``mask[k][0] <= o_k < mask[k][1]`` for
every axis (elsewhere it reads the pad value). So

* broadcasting is a stride of 0;
* transposing permutes strides;
* slicing moves the offset and multiplies strides;
* reversing negates a stride (and moves the offset to the last element);
* padding shrinks the valid range into a mask (no memory is read there).

A reshape can usually be folded into new strides; when it cannot (e.g.
flattening a transposed array), a ``ShapeTracker`` stacks a second view on
top, and the index of the inner one is recovered with floor-division and
modulo. This is teenygrad's shapetracker idea, kept small.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

from fgrad.lowering.kernel_ir import Idx, all_of, as_idx, const, ge, lt

Range = tuple[int, int]


def row_major_strides(shape: Sequence[int]) -> tuple[int, ...]:
    strides, acc = [], 1
    for d in reversed(shape):
        strides.append(acc if d != 1 else 0)
        acc *= d
    return tuple(reversed(strides))


@dataclasses.dataclass(frozen=True)
class View:
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int = 0
    mask: tuple[Range, ...] | None = None

    @staticmethod
    def contiguous(shape: Sequence[int]) -> View:
        shape = tuple(int(d) for d in shape)
        return View(shape, row_major_strides(shape))

    def is_contiguous(self) -> bool:
        return (self.offset == 0 and self.mask is None
                and self.strides == row_major_strides(self.shape))

    # --- the movement ops --------------------------------------------------------------------
    def broadcast_in_dim(self, shape: Sequence[int], dims: Sequence[int]) -> View:
        """As ``lax.broadcast_in_dim``: axis ``k`` of self becomes axis ``dims[k]``."""
        strides, mask = [0] * len(shape), [(0, int(d)) for d in shape]
        for k, d in enumerate(dims):
            if self.shape[k] == shape[d]:
                strides[d] = self.strides[k]
                if self.mask is not None:
                    mask[d] = self.mask[k]
            elif self.mask is not None and self.mask[k] != (0, 1):
                mask[d] = (0, 0)  # a size-1 axis that is padding everywhere
        return View(tuple(int(d) for d in shape), tuple(strides), self.offset,
                    _norm_mask(mask, shape) if self.mask is not None else None)

    def transpose(self, perm: Sequence[int]) -> View:
        return View(tuple(self.shape[p] for p in perm), tuple(self.strides[p] for p in perm),
                    self.offset, None if self.mask is None else tuple(self.mask[p] for p in perm))

    def slice(self, start: Sequence[int], limit: Sequence[int],
              step: Sequence[int] | None = None) -> View:
        step = step or (1,) * len(start)
        shape = tuple(max(0, -(-(hi - lo) // s)) for lo, hi, s in zip(start, limit, step))
        offset = self.offset + sum(lo * st for lo, st in zip(start, self.strides))
        strides = tuple(st * s for st, s in zip(self.strides, step))
        mask = None
        if self.mask is not None:
            mask = _norm_mask([(max(0, -(-(mlo - lo) // s)), max(0, -(-(mhi - lo) // s)))
                               for (mlo, mhi), lo, s in zip(self.mask, start, step)], shape)
        return View(shape, strides, offset, mask)

    def rev(self, axes: Sequence[int]) -> View:
        strides, offset = list(self.strides), self.offset
        mask = None if self.mask is None else list(self.mask)
        for a in axes:
            n = self.shape[a]
            offset += (n - 1) * strides[a]
            strides[a] = -strides[a]
            if mask is not None:
                mask[a] = (n - mask[a][1], n - mask[a][0])
        return View(self.shape, tuple(strides), offset, None if mask is None else tuple(mask))

    def pad(self, low: Sequence[int], high: Sequence[int]) -> View:
        """Edge padding (negative amounts crop); interior padding is not a view."""
        # Crop first (negative padding), then widen with a mask.
        start = [max(0, -lo) for lo in low]
        limit = [n - max(0, -hi) for n, hi in zip(self.shape, high)]
        v = self.slice(start, limit) if any(start) or limit != list(self.shape) else self
        low, high = [max(0, lo) for lo in low], [max(0, hi) for hi in high]
        if not any(low) and not any(high):
            return v
        shape = tuple(n + lo + hi for n, lo, hi in zip(v.shape, low, high))
        old = v.mask or tuple((0, n) for n in v.shape)
        mask = tuple((lo + mlo, lo + mhi) for (mlo, mhi), lo in zip(old, low))
        offset = v.offset - sum(lo * st for lo, st in zip(low, v.strides))
        return View(shape, v.strides, offset, _norm_mask(mask, shape))

    def reshape(self, shape: Sequence[int]) -> View | None:
        """The same elements as ``shape`` (row-major), or None if strides cannot express it."""
        shape = tuple(int(d) for d in shape)
        if shape == self.shape:
            return self
        if self.mask is not None:
            return None
        if self.is_contiguous() or math.prod(shape) == 0:
            return View.contiguous(shape)
        # numpy's no-copy reshape: match runs of old axes with runs of new axes of the
        # same total size; a run of old axes must be contiguous among itself to be split
        # or merged, and the new strides are laid out row-major inside the run.
        old = [(n, st) for n, st in zip(self.shape, self.strides) if n != 1]
        new = [n for n in shape if n != 1]
        new_strides: list[int] = []
        oi = ni = 0
        while ni < len(new) and oi < len(old):
            oj, nj = oi + 1, ni + 1
            o_size, n_size = old[oi][0], new[ni]
            while o_size != n_size:
                if n_size < o_size:
                    n_size *= new[nj]
                    nj += 1
                else:
                    o_size *= old[oj][0]
                    oj += 1
            if any(old[k][1] != old[k + 1][0] * old[k + 1][1] for k in range(oi, oj - 1)):
                return None
            run = [old[oj - 1][1]]
            for n in reversed(new[ni + 1:nj]):
                run.append(run[-1] * n)
            new_strides.extend(reversed(run))
            oi, ni = oj, nj
        it = iter(new_strides)
        return View(shape, tuple(0 if n == 1 else next(it) for n in shape), self.offset)

    # --- reading -----------------------------------------------------------------------------
    def index(self, idxs: Sequence[Idx]) -> tuple[Idx, Idx | None]:
        """The flat buffer index and the validity mask (None: always valid) for ``idxs``."""
        flat = as_idx(self.offset)
        for i, st in zip(idxs, self.strides):
            flat = flat + i * st
        conds: list[Idx] = []
        if self.mask is not None:
            for i, (lo, hi), n in zip(idxs, self.mask, self.shape):
                if lo > 0:
                    conds.append(ge(i, lo))
                if hi < n:
                    conds.append(lt(i, hi))
        return flat, all_of(conds)


def _norm_mask(mask: Sequence[Range], shape: Sequence[int]) -> tuple[Range, ...] | None:
    clipped = tuple((max(0, min(lo, n)), max(0, min(hi, n))) for (lo, hi), n in zip(mask, shape))
    return None if all(m == (0, n) for m, n in zip(clipped, shape)) else clipped


@dataclasses.dataclass(frozen=True)
class ShapeTracker:
    """A stack of views, innermost first: ``views[-1]`` is what the kernel indexes."""

    views: tuple[View, ...]

    @staticmethod
    def contiguous(shape: Sequence[int]) -> ShapeTracker:
        return ShapeTracker((View.contiguous(shape),))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.views[-1].shape

    def _top(self, view: View) -> ShapeTracker:
        return ShapeTracker(self.views[:-1] + (view,))

    def broadcast_in_dim(self, shape: Sequence[int], dims: Sequence[int]) -> ShapeTracker:
        return self._top(self.views[-1].broadcast_in_dim(shape, dims))

    def transpose(self, perm: Sequence[int]) -> ShapeTracker:
        return self._top(self.views[-1].transpose(perm))

    def slice(self, start: Sequence[int], limit: Sequence[int],
              step: Sequence[int] | None = None) -> ShapeTracker:
        return self._top(self.views[-1].slice(start, limit, step))

    def rev(self, axes: Sequence[int]) -> ShapeTracker:
        return self._top(self.views[-1].rev(axes))

    def pad(self, low: Sequence[int], high: Sequence[int]) -> ShapeTracker:
        return self._top(self.views[-1].pad(low, high))

    def reshape(self, shape: Sequence[int]) -> ShapeTracker:
        folded = self.views[-1].reshape(shape)
        if folded is not None:
            return self._top(folded)
        return ShapeTracker(self.views + (View.contiguous(shape),))

    def index(self, idxs: Sequence[Idx]) -> tuple[Idx, Idx | None]:
        """Flat index into the buffer and the mask, through every view."""
        flat, mask = self.views[-1].index(idxs)
        conds = [mask] if mask is not None else []
        for view in reversed(self.views[:-1]):
            # Unflatten the outer view's row-major position into this view's axes.
            coords, rest = [], flat
            for n in reversed(view.shape):
                coords.append(rest % n if n != 1 else const(0))
                rest = rest // n
            flat, m = view.index(list(reversed(coords)))
            if m is not None:
                conds.append(m)
        return flat, all_of(conds)

    @property
    def size(self) -> int:
        return math.prod(self.shape)


__all__ = ["View", "ShapeTracker", "row_major_strides"]
