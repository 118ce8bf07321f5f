"""Convolution: ``conv_general_dilated`` and its wrappers (windowed reductions: ``windowed.py``).

Both slide a *window* over the spatial axes of an array. One geometry serves
all of them (XLA's): the input is first **dilated** (``lhs_dilation`` /
``base_dilation``: ``d - 1`` zeros, or the reduction's identity, between
neighbours), then **padded** (``(low, high)`` per axis; negative pads crop),
and a window of ``window_dimensions`` whose taps are ``rhs_dilation`` /
``window_dilation`` apart steps over it by ``window_strides``.

Primitives (strict, as ``jax.lax``): ``conv_general_dilated`` (bilinear),
``reduce_window_sum`` (linear), ``reduce_window_max`` / ``reduce_window_min``,
and the pair ``select_and_gather_add`` / ``select_and_scatter_add`` that carry
max/min pooling's derivatives (each is the other's transpose). Wrappers turn
string padding (``'SAME'``, ``'VALID'``, ``'SAME_LOWER'``) and string dimension
numbers (``('NHWC', 'HWIO', 'NHWC')``) into explicit tuples, so jaxprs show
exactly what runs.

Conventions (JAX's, on CPU): max/min pooling sends the whole tangent of a
window to ONE element, the first extremum in row-major window order (ties
are not split, unlike ``reduce_max``); ``reduce_window`` with an init value
``v`` returns ``v ⊕ (reduction of the real elements)``: padding never counts.

Under ``vmap`` a convolution never broadcasts an unbatched operand: the vmapped
axis is folded into lhs's batch axis, the kernel's output features, or (both
batched) the feature groups, and unfolded from the output.

The numpy impls build a strided *view* of all windows (no Python loop over
output pixels); convolution then copies it once (im2col) into one matmul
per group. Read next: ``fgrad/nn_stax`` builds Conv and pooling layers on these.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from fgrad.core import dtypes
from fgrad.core.ad_util import Zero, tangent_aval
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import shape as _shape
from fgrad.primitives.rules import defbilinear, standard_primitive

Pads = tuple[tuple[int, int], ...]


# --- window geometry, shared by shape rules and impls ----------------------------------------

def _dilate_dim(d: int, dilation: int) -> int:
    return max(0, 1 + dilation * (d - 1))


def _stride_dim(d: int, window: int, stride: int) -> int:
    return max(0, (d - window) // stride + 1)


def padtype_to_pads(in_shape: Sequence[int], window_shape: Sequence[int],
                    window_strides: Sequence[int], padding: str) -> list[tuple[int, int]]:
    """Explicit ``(low, high)`` pads for ``'VALID'``, ``'SAME'`` or ``'SAME_LOWER'``.

    'SAME' pads so that ``out = ceil(in / stride)``; an odd total puts the extra
    element at the end ('SAME') or at the start ('SAME_LOWER').

    >>> padtype_to_pads((5,), (3,), (2,), "SAME")
    [(1, 1)]
    """
    kind = padding.upper() if isinstance(padding, str) else padding
    if kind == "VALID":
        return [(0, 0)] * len(in_shape)
    if kind not in ("SAME", "SAME_LOWER"):
        raise ValueError(f"Unrecognized padding type: expected 'VALID', 'SAME', or "
                         f"'SAME_LOWER', got {padding!r}.")
    pads = []
    for d, w, s in zip(in_shape, window_shape, window_strides):
        total = max(0, (-(-d // s) - 1) * s + w - d)
        small, big = total // 2, total - total // 2
        pads.append((small, big) if kind == "SAME" else (big, small))
    return pads


def reduce_window_shape_tuple(operand_shape: Sequence[int], window_dimensions: Sequence[int],
                              window_strides: Sequence[int], padding: Sequence[tuple[int, int]],
                              base_dilation: Sequence[int] | None = None,
                              window_dilation: Sequence[int] | None = None) -> tuple[int, ...]:
    """Output shape of a window reduction (also the spatial rule of convolution)."""
    n = len(operand_shape)
    base_dilation = base_dilation or (1,) * n
    window_dilation = window_dilation or (1,) * n
    return tuple(_stride_dim(_dilate_dim(d, bd) + lo + hi, _dilate_dim(w, wd), s)
                 for d, w, s, (lo, hi), bd, wd in zip(operand_shape, window_dimensions,
                                                      window_strides, padding, base_dilation,
                                                      window_dilation))


def _dilate_pad(x: np.ndarray, dilation: Sequence[int], padding: Pads, fill: Any,
                first: int = 0) -> np.ndarray:
    """Dilate then pad (negative pads crop) axes ``first, first + 1, ...`` of ``x``."""
    if all(d == 1 for d in dilation) and all(p == (0, 0) for p in padding):
        return x
    axes = range(first, first + len(dilation))
    shape = list(x.shape)
    for a, d, (lo, hi) in zip(axes, dilation, padding):
        shape[a] = _dilate_dim(x.shape[a], d) + lo + hi
    out = np.full(shape, fill, dtype=x.dtype)
    src, dst = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    for a, d, (lo, _) in zip(axes, dilation, padding):
        # element j lands at j*d + lo; keep those with 0 <= j*d + lo < shape[a]
        j0, j1 = max(0, -(lo // d)), min(x.shape[a], -((lo - shape[a]) // d))
        if j1 <= j0:
            return out
        src[a], dst[a] = slice(j0, j1), slice(j0 * d + lo, (j1 - 1) * d + lo + 1, d)
    out[tuple(dst)] = x[tuple(src)]
    return out


def _windows(x: np.ndarray, window: Sequence[int], strides: Sequence[int],
             dilation: Sequence[int], first: int = 0) -> np.ndarray:
    """A read-only view of every window over axes ``first, ...`` (no copy).

    Shape: ``x.shape[:first] + out_spatial + window + x.shape[first + n:]``.
    """
    n = len(window)
    spatial, st = x.shape[first:first + n], x.strides[first:first + n]
    out = [_stride_dim(d, _dilate_dim(w, r), s)
           for d, w, s, r in zip(spatial, window, strides, dilation)]
    shape = (*x.shape[:first], *out, *window, *x.shape[first + n:])
    view_strides = (*x.strides[:first], *(t * s for t, s in zip(st, strides)),
                    *(t * r for t, r in zip(st, dilation)), *x.strides[first + n:])
    return as_strided(x, shape, view_strides, writeable=False)


def _is_16bit_float(dtype: np.dtype) -> bool:
    return dtypes.is_float(dtype) and dtype.itemsize == 2


# --- dimension numbers ----------------------------------------------------------------------

class ConvDimensionNumbers(NamedTuple):
    """Where batch, feature and spatial axes live, as in ``jax.lax``.

    ``lhs_spec = (batch, feature, *spatial)``, ``rhs_spec = (out feature, in
    feature, *spatial)``, ``out_spec = (batch, feature, *spatial)``: axis numbers
    of each array, spatial axes listed in the kernel's order.
    """

    lhs_spec: tuple[int, ...]
    rhs_spec: tuple[int, ...]
    out_spec: tuple[int, ...]


def conv_dimension_numbers(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                           dimension_numbers: Any) -> ConvDimensionNumbers:
    """Normalize ``None``, a ``ConvDimensionNumbers`` or a triple of strings such as
    ``('NHWC', 'HWIO', 'NHWC')`` to a ``ConvDimensionNumbers`` of axis tuples.

    >>> conv_dimension_numbers((1, 5, 5, 3), (3, 3, 3, 8), ("NHWC", "HWIO", "NHWC"))
    ConvDimensionNumbers(lhs_spec=(0, 3, 1, 2), rhs_spec=(3, 2, 0, 1), out_spec=(0, 3, 1, 2))
    """
    if isinstance(dimension_numbers, ConvDimensionNumbers):
        return ConvDimensionNumbers(*(tuple(int(a) for a in s) for s in dimension_numbers))
    if len(lhs_shape) != len(rhs_shape):
        raise TypeError(f"convolution requires lhs and rhs ndim to be equal, got "
                        f"{len(lhs_shape)} and {len(rhs_shape)}.")
    if dimension_numbers is None:
        iota = tuple(range(len(lhs_shape)))
        return ConvDimensionNumbers(iota, iota, iota)
    if not isinstance(dimension_numbers, (list, tuple)) or len(dimension_numbers) != 3:
        raise TypeError("convolution dimension_numbers must be None, a ConvDimensionNumbers "
                        f"or a triple of strings, got {dimension_numbers!r}.")
    if all(isinstance(s, (list, tuple)) for s in dimension_numbers):  # a plain triple of tuples
        return ConvDimensionNumbers(*(tuple(int(a) for a in s) for s in dimension_numbers))
    if not all(isinstance(s, str) for s in dimension_numbers):
        raise TypeError("convolution dimension_numbers elements must be strings, got "
                        f"{tuple(type(s).__name__ for s in dimension_numbers)}.")
    for i, spec in enumerate(dimension_numbers):
        if len(spec) != len(lhs_shape):
            raise TypeError(f"convolution dimension_numbers[{i}] must have len equal to the "
                            f"ndim of lhs and rhs, got {len(spec)} for lhs and rhs shapes "
                            f"{tuple(lhs_shape)} and {tuple(rhs_shape)}.")
    return ConvDimensionNumbers(*_conv_general_permutations(dimension_numbers))


def _conv_general_permutations(specs: Sequence[str]) -> tuple[tuple[int, ...], ...]:
    lhs_spec, rhs_spec, out_spec = specs
    pairs = (("N", "C"), ("O", "I"), ("N", "C"))
    for i, (spec, (a, b)) in enumerate(zip(specs, pairs)):
        if spec.count(a) != 1 or spec.count(b) != 1:
            raise TypeError(f"convolution dimension_numbers[{i}] must contain the characters "
                            f"'{a}' and '{b}' exactly once, got {spec}.")
        if len(set(spec)) != len(spec):
            raise TypeError(f"convolution dimension_numbers[{i}] cannot have duplicate "
                            f"characters, got {spec}.")
    if not set(lhs_spec) - {"N", "C"} == set(rhs_spec) - {"O", "I"} == set(out_spec) - {"N", "C"}:
        raise TypeError("convolution dimension_numbers elements must each have the same set "
                        f"of spatial characters, got {tuple(specs)}.")

    def perm(spec: str, pair: tuple[str, str]) -> tuple[int, ...]:
        spatial = sorted((i for i, c in enumerate(spec) if c not in pair),
                         key=lambda i: rhs_spec.index(spec[i]))  # kernel order
        return (spec.index(pair[0]), spec.index(pair[1]), *spatial)

    return tuple(perm(s, p) for s, p in zip(specs, pairs))


# --- conv_general_dilated --------------------------------------------------------------------

def conv_general_dilated(lhs: Any, rhs: Any, window_strides: Sequence[int],
                         padding: str | Sequence[tuple[int, int]],
                         lhs_dilation: Sequence[int] | None = None,
                         rhs_dilation: Sequence[int] | None = None,
                         dimension_numbers: Any = None, feature_group_count: int = 1,
                         batch_group_count: int = 1, precision: Any = None,
                         preferred_element_type: Any = None) -> Any:
    """General n-d convolution (cross-correlation, as in ``jax.lax``) with dilations.

    Args:
      lhs: input, rank ``n + 2``; rhs: kernel, rank ``n + 2``.
      window_strides: ``n`` strides. padding: 'SAME', 'SAME_LOWER', 'VALID' or ``n``
        ``(low, high)`` pairs (negative pads crop).
      lhs_dilation / rhs_dilation: ``n`` factors (transposed / atrous convolution).
      dimension_numbers: None (NCHW, OIHW, NCHW), a ``ConvDimensionNumbers`` or
        strings like ``('NHWC', 'HWIO', 'NHWC')``.
      feature_group_count / batch_group_count: grouped convolution (at most one > 1).
      precision: accepted for compatibility; numpy always computes at full precision.
      preferred_element_type: accumulate in and return this dtype.

    Returns:
      The convolution, in ``out_spec`` layout.

    Raises:
      FgradTypeError: mismatched ranks, dtypes or feature counts (the message names shapes).

    >>> import fgrad.numpy as fnp
    >>> conv_general_dilated(fnp.ones((1, 1, 4)), fnp.ones((1, 1, 2)), (1,), "VALID")
    Array([[[2., 2., 2.]]], dtype=float32)
    """
    lhs_shape, rhs_shape = get_aval(lhs).shape, get_aval(rhs).shape
    dnums = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    n = len(lhs_shape) - 2
    lhs_dilation = (1,) * n if lhs_dilation is None else tuple(lhs_dilation)
    rhs_dilation = (1,) * n if rhs_dilation is None else tuple(rhs_dilation)
    if isinstance(padding, str):
        if any(d != 1 for d in lhs_dilation):
            raise ValueError("String padding is not implemented for transposed convolution "
                             "using this op. Please either exactly specify the required "
                             "padding or use conv_transpose.")
        in_spatial = [lhs_shape[a] for a in dnums.lhs_spec[2:]]
        window = [_dilate_dim(rhs_shape[a], d) for a, d in zip(dnums.rhs_spec[2:], rhs_dilation)]
        padding = padtype_to_pads(in_spatial, window, window_strides, padding)
    try:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    except (ValueError, TypeError) as e:
        raise ValueError("padding argument to conv_general_dilated should be a string or a "
                         f"sequence of (low, high) pairs, got {padding}") from e
    if preferred_element_type is not None:
        preferred_element_type = dtypes.canonicalize_dtype(preferred_element_type)
    return conv_general_dilated_p.bind(
        lhs, rhs, window_strides=tuple(int(s) for s in window_strides), padding=pads,
        lhs_dilation=tuple(int(d) for d in lhs_dilation),
        rhs_dilation=tuple(int(d) for d in rhs_dilation), dimension_numbers=dnums,
        feature_group_count=int(feature_group_count), batch_group_count=int(batch_group_count),
        precision=_canonicalize_precision(precision),
        preferred_element_type=preferred_element_type)


def _canonicalize_precision(precision: Any) -> Any:
    if precision is None:
        return None
    if isinstance(precision, (tuple, list)):
        return tuple(str(getattr(p, "name", p)) for p in precision)
    return (str(getattr(precision, "name", precision)),) * 2


def _conv_impl(lhs: np.ndarray, rhs: np.ndarray, *, window_strides: tuple[int, ...],
               padding: Pads, lhs_dilation: tuple[int, ...], rhs_dilation: tuple[int, ...],
               dimension_numbers: ConvDimensionNumbers, feature_group_count: int,
               batch_group_count: int, precision: Any, preferred_element_type: Any
               ) -> np.ndarray:
    out_dtype = np.dtype(preferred_element_type or lhs.dtype)
    work = np.float32 if _is_16bit_float(out_dtype) else out_dtype
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    n_sp = len(window_strides)
    # im2col: a matrix with rows (batch, output pixel) and columns (in channel, window
    # tap), times the kernel as a (columns, out channel) matrix. The column order
    # follows the kernel's memory layout (I before or after its spatial axes), so
    # the kernel matrix is a view, not a copy: in the transposes it is a big array.
    i_major = rhs_spec[1] < min(rhs_spec[2:], default=rhs.ndim)
    first = 2 if i_major else 1  # the first spatial axis of x and w
    x_perm = (lhs_spec[0], lhs_spec[1], *lhs_spec[2:]) if i_major else (
        lhs_spec[0], *lhs_spec[2:], lhs_spec[1])
    w_perm = (rhs_spec[0], rhs_spec[1], *rhs_spec[2:]) if i_major else (
        rhs_spec[0], *rhs_spec[2:], rhs_spec[1])
    x = np.transpose(lhs, x_perm).astype(work, copy=False)
    w = np.transpose(rhs, w_perm).astype(work, copy=False)
    x = _dilate_pad(x, lhs_dilation, padding, 0, first=first)
    window = w.shape[first:first + n_sp]
    patches = _windows(x, window, window_strides, rhs_dilation, first=first)
    if i_major:  # (N, C, *out, *win) -> (N, *out, C, *win)
        patches = np.moveaxis(patches, 1, 1 + n_sp)
    batch, out_sp = patches.shape[0], patches.shape[1:1 + n_sp]
    channel = 1 + n_sp if i_major else patches.ndim - 1
    # Put the group axis first: batch groups split lhs's batch, feature groups its
    # channels; both are group-major, as XLA defines them.
    if batch_group_count > 1:
        groups = batch_group_count
        p = patches.reshape(groups, batch // groups, *patches.shape[1:])
    else:
        groups = feature_group_count
        split = list(patches.shape)
        split[channel:channel + 1] = [groups, split[channel] // groups]
        p = np.moveaxis(patches.reshape(split), channel, 0)
    n_out = w.shape[0]
    n_batch, n_cols = p.shape[1], int(np.prod(p.shape[2 + n_sp:]))
    rows = p.reshape(groups, n_batch * int(np.prod(out_sp)), n_cols)  # the one big copy
    kernel = w.reshape(groups, n_out // groups, n_cols)               # (G, O/G, I * taps)
    res = np.matmul(rows, np.swapaxes(kernel, 1, 2))                 # (G, rows, O/G)
    res = np.moveaxis(res.reshape(groups, n_batch, *out_sp, n_out // groups), 0, -2)
    res = res.reshape(n_batch, *out_sp, n_out)                       # (N', *out, O)
    canonical = (out_spec[0], *out_spec[2:], out_spec[1])
    return np.transpose(res, np.argsort(canonical)).astype(out_dtype, copy=False)


def _conv_shape(lhs: ShapedArray, rhs: ShapedArray, *, window_strides: tuple[int, ...],
                padding: Pads, lhs_dilation: tuple[int, ...], rhs_dilation: tuple[int, ...],
                dimension_numbers: ConvDimensionNumbers, feature_group_count: int,
                batch_group_count: int, **_: Any) -> tuple[int, ...]:
    where = f"(lhs {lhs.str_short()}, rhs {rhs.str_short()})"

    def fail(msg: str) -> FgradTypeError:
        return FgradTypeError(f"conv_general_dilated: {msg} {where}")

    if lhs.ndim != rhs.ndim or lhs.ndim < 2:
        raise fail("lhs and rhs must have the same rank (at least 2)")
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    if any(sorted(s) != list(range(lhs.ndim)) for s in dimension_numbers):
        raise fail(f"dimension_numbers {tuple(dimension_numbers)} are not permutations of "
                   f"the {lhs.ndim} axes")
    n = lhs.ndim - 2
    for name, v in [("window_strides", window_strides), ("padding", padding),
                    ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)]:
        if len(v) != n:
            raise fail(f"{name} {v} must have one entry per spatial dimension ({n})")
    if min((*window_strides, *lhs_dilation, *rhs_dilation), default=1) < 1:
        raise fail(f"strides and dilations must be positive, got window_strides="
                   f"{window_strides}, lhs_dilation={lhs_dilation}, rhs_dilation={rhs_dilation}")
    g, b = feature_group_count, batch_group_count
    if g < 1 or b < 1 or (g > 1 and b > 1):
        raise fail(f"feature_group_count={g} and batch_group_count={b} must be positive, "
                   "and at most one of them > 1")
    in_feat, batch = lhs.shape[lhs_spec[1]], lhs.shape[lhs_spec[0]]
    kernel_in, kernel_out = rhs.shape[rhs_spec[1]], rhs.shape[rhs_spec[0]]
    if in_feat % g or in_feat // g != kernel_in:
        raise fail(f"lhs feature dimension size divided by feature_group_count must equal the "
                   f"rhs input feature dimension size, but {in_feat} // {g} != {kernel_in}")
    if kernel_out % g or kernel_out % b:
        raise fail(f"rhs output feature dimension size {kernel_out} must be a multiple of "
                   f"feature_group_count={g} and batch_group_count={b}")
    if batch % b:
        raise fail(f"batch_group_count={b} must divide the lhs batch dimension size {batch}")
    in_sp = [_dilate_dim(lhs.shape[a], d) for a, d in zip(lhs_spec[2:], lhs_dilation)]
    if any(d + lo + hi < 0 for d, (lo, hi) in zip(in_sp, padding)):
        raise fail(f"negative padding {padding} is larger than the dilated lhs spatial "
                   f"shape {tuple(in_sp)}")
    window = [rhs.shape[a] for a in rhs_spec[2:]]
    out_sp = reduce_window_shape_tuple(in_sp, window, window_strides, padding, None,
                                       rhs_dilation)
    out = (batch // b, kernel_out, *out_sp)
    return tuple(out[i] for i in np.argsort(out_spec))


def _conv_dtype(lhs: ShapedArray, rhs: ShapedArray, *, preferred_element_type: Any,
                **_: Any) -> np.dtype:
    if lhs.dtype != rhs.dtype:
        raise FgradTypeError(f"conv_general_dilated requires arguments to have the same "
                             f"dtypes, got {lhs.str_short()} and {rhs.str_short()}")
    if preferred_element_type is None:
        return lhs.dtype
    pref, x = np.dtype(preferred_element_type), lhs.dtype
    # JAX's rule: same kind (int -> float also allowed), signed ints stay signed, and
    # never narrower than the inputs.
    kind_ok = (dtypes.is_int(x) and dtypes.is_float(pref)) or not (
        (dtypes.is_int(x) and not dtypes.is_int(pref))
        or (dtypes.is_float(x) and not dtypes.is_float(pref))
        or (dtypes.is_int(x) and not dtypes.is_unsigned(x) and (
            not dtypes.is_int(pref) or dtypes.is_unsigned(pref))))
    if not kind_ok or pref.itemsize < x.itemsize:
        raise FgradTypeError(f"conv_general_dilated: preferred_element_type {pref.name} is "
                             f"incompatible with inputs {lhs.str_short()} (it must be of the "
                             "same kind, or float for integer inputs, and not narrower)")
    return pref


# Transpose rules. Ignoring groups and taking one spatial axis, with lhs_pd the
# dilated (by ld) and padded (lo, hi) input, the forward pass is
#     out[n, o, y] = sum_{c, k} lhs_pd[n, c, y*s + k*r] * rhs[o, c, k]
# (s = window stride, r = rhs dilation), i.e. lhs[x] meets out[y] through tap k when
#     x*ld + lo = y*s + k*r.                                                     (*)
#
# w.r.t. lhs: ct_lhs[n, c, x] = sum_{o, y, k with (*)} ct[n, o, y] * rhs[o, c, k].
#   Substitute k = K-1-k' (flip the kernel) and dilate ct by s (ct_d[y*s] = ct[y]):
#   (*) reads ct_d[x*ld + k'*r - ((K-1)*r - lo)], a convolution of ct with the flipped
#   kernel at window stride ld, lhs_dilation s, rhs_dilation r and low padding
#   (K-1)*r - lo; the high padding makes the output length exactly X. Channels swap
#   roles: the kernel's I axis becomes its output axis and O its input axis.
#
# w.r.t. rhs: ct_rhs[o, c, k] = sum_{n, y} lhs_pd[n, c, k*r + y*s] * ct[n, o, y].
#   This is a convolution of lhs (batch <-> feature swapped: c is the "batch", the
#   contracted n the "feature") with ct as the kernel (o out, n in), at window stride
#   r and rhs_dilation s, the same lhs_dilation and low padding; the high padding
#   makes the output length exactly K.
#
# Groups (JAX's scheme): a feature-grouped forward contracts channels within each
# group, so the lhs transpose is again feature-grouped once the group factor of the
# kernel's O axis is moved into its I axis; the rhs transpose contracts over the
# batch *within* each group of channels: batch grouping. Batch groups mirror this.

def _vjp_lhs_padding(in_sp: Sequence[int], window: Sequence[int], strides: Sequence[int],
                     out_sp: Sequence[int], padding: Pads, lhs_dilation: Sequence[int],
                     rhs_dilation: Sequence[int]) -> Pads:
    pads = []
    for x, k, s, y, (lo, _), ld, rd in zip(in_sp, window, strides, out_sp, padding,
                                           lhs_dilation, rhs_dilation):
        before = _dilate_dim(k, rd) - lo - 1
        after = _dilate_dim(x, ld) + _dilate_dim(k, rd) - 1 - _dilate_dim(y, s) - before
        pads.append((before, after))
    return tuple(pads)


def _vjp_rhs_padding(in_sp: Sequence[int], window: Sequence[int], strides: Sequence[int],
                     out_sp: Sequence[int], padding: Pads, lhs_dilation: Sequence[int],
                     rhs_dilation: Sequence[int]) -> Pads:
    return tuple((lo, _dilate_dim(y, s) - _dilate_dim(x, ld) + _dilate_dim(k, rd) - lo - 1)
                 for x, k, s, y, (lo, _), ld, rd in zip(in_sp, window, strides, out_sp,
                                                        padding, lhs_dilation, rhs_dilation))


def _reshape_axis_out_of(src: int, size: int, x: Any) -> Any:
    shape = list(x.shape)
    shape[src:src + 1] = [size, shape[src] // size]
    return _shape.reshape(x, shape)


def _reshape_axis_into(src: int, dst: int, x: Any) -> Any:
    # Merge axis src into axis dst (numbered after src is removed), src as the major part.
    perm = [i for i in range(x.ndim) if i != src]
    perm.insert(dst, src)
    shape = [d for i, d in enumerate(x.shape) if i != src]
    shape[dst] *= x.shape[src]
    return _shape.reshape(_shape.transpose(x, perm), shape)


def _spec_swap(spec: Sequence[int]) -> tuple[int, ...]:
    return (spec[1], spec[0], *spec[2:])


def _conv_transpose_lhs(ct: Any, lhs: Any, rhs: Any, *, window_strides: tuple[int, ...],
                        padding: Pads, lhs_dilation: tuple[int, ...],
                        rhs_dilation: tuple[int, ...], dimension_numbers: ConvDimensionNumbers,
                        feature_group_count: int, batch_group_count: int, precision: Any,
                        preferred_element_type: Any) -> Any:
    lhs_aval = lhs.aval
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    if ct.size == 0 or rhs.size == 0:
        return Zero(tangent_aval(lhs_aval))
    rhs_shape = rhs.shape
    groups = max(feature_group_count, batch_group_count)
    if groups > 1:  # move the group factor of the kernel's O axis into its I axis
        rhs = _reshape_axis_out_of(rhs_spec[0], groups, rhs)
        rhs = _reshape_axis_into(rhs_spec[0], rhs_spec[1], rhs)
    pads = _vjp_lhs_padding([lhs_aval.shape[a] for a in lhs_spec[2:]],
                            [rhs_shape[a] for a in rhs_spec[2:]], window_strides,
                            [ct.shape[a] for a in out_spec[2:]], padding, lhs_dilation,
                            rhs_dilation)
    flipped = _shape.rev(rhs, tuple(rhs_spec[2:]))
    if flipped.dtype != ct.dtype:
        flipped = _ew.convert_element_type(flipped, ct.dtype)
    out = conv_general_dilated_p.bind(
        ct, flipped, window_strides=lhs_dilation, padding=pads, lhs_dilation=window_strides,
        rhs_dilation=rhs_dilation,
        dimension_numbers=ConvDimensionNumbers(out_spec, _spec_swap(rhs_spec), lhs_spec),
        feature_group_count=groups, batch_group_count=1, precision=precision,
        preferred_element_type=preferred_element_type)
    if out.dtype != lhs_aval.dtype:
        out = _ew.convert_element_type(out, lhs_aval.dtype)
    if batch_group_count > 1:  # the groups came out in the feature axis: move them to batch
        out = _reshape_axis_out_of(lhs_spec[1], batch_group_count, out)
        out = _reshape_axis_into(lhs_spec[1], lhs_spec[0], out)
    return out


def _conv_transpose_rhs(ct: Any, lhs: Any, rhs: Any, *, window_strides: tuple[int, ...],
                        padding: Pads, lhs_dilation: tuple[int, ...],
                        rhs_dilation: tuple[int, ...], dimension_numbers: ConvDimensionNumbers,
                        feature_group_count: int, batch_group_count: int, precision: Any,
                        preferred_element_type: Any) -> Any:
    rhs_aval = rhs.aval
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    if ct.size == 0 or lhs.size == 0:
        return Zero(tangent_aval(rhs_aval))
    pads = _vjp_rhs_padding([lhs.shape[a] for a in lhs_spec[2:]],
                            [rhs_aval.shape[a] for a in rhs_spec[2:]], window_strides,
                            [ct.shape[a] for a in out_spec[2:]], padding, lhs_dilation,
                            rhs_dilation)
    if lhs.dtype != ct.dtype:
        lhs = _ew.convert_element_type(lhs, ct.dtype)
    out = conv_general_dilated_p.bind(
        lhs, ct, window_strides=rhs_dilation, padding=pads, lhs_dilation=lhs_dilation,
        rhs_dilation=window_strides,
        dimension_numbers=ConvDimensionNumbers(_spec_swap(lhs_spec), _spec_swap(out_spec),
                                               _spec_swap(rhs_spec)),
        feature_group_count=batch_group_count, batch_group_count=feature_group_count,
        precision=precision, preferred_element_type=preferred_element_type)
    if out.dtype != rhs_aval.dtype:
        out = _ew.convert_element_type(out, rhs_aval.dtype)
    return out


# Batching. A convolution already maps over its batch axis N (lhs) and its output
# features O (rhs), so a vmapped axis of size B is folded into one of those and
# unfolded from the output (as in JAX's rule):
#   lhs only: fold into lhs's N (the output's N becomes B*N);
#   rhs only: fold into rhs's O (the output's features become B*O);
#   both:     B independent convolutions are B feature groups: fold into lhs's C
#             and rhs's O, multiplying feature_group_count by B (or, for a batch-
#             grouped conv, into lhs's N, multiplying batch_group_count by B).
# Groups are group-major along their axis, so an existing group count G stays
# outermost: B goes *inside* each group, (G, rest) -> (G, B, rest), except when
# the folded B itself becomes the outer part of new groups (the "both" case).

def _fold_into(x: Any, bdim: int, axis: int, groups: int) -> Any:
    """Merge batch axis ``bdim`` into ``axis`` (numbered without the batch axis), inside
    its ``groups`` group-major blocks: (G, rest) -> (G, B, rest)."""
    if groups == 1:
        return _reshape_axis_into(bdim, axis, x)
    pos = axis + (bdim <= axis)                     # axis in x, which still has the batch
    x = _reshape_axis_out_of(pos, groups, x)        # ..., G, rest, ...
    x = _reshape_axis_into(bdim + (pos < bdim), axis + 1, x)  # ..., G, B*rest, ...
    return _reshape_axis_into(axis, axis, x)        # ..., G*B*rest, ...


def _unfold_from(x: Any, axis: int, size: int, groups: int) -> Any:
    """Undo ``_fold_into`` on an output axis: (G, B, rest) -> axes (B, G*rest) at ``axis``."""
    if groups == 1:
        return _reshape_axis_out_of(axis, size, x)
    x = _reshape_axis_out_of(axis, groups, x)       # G, B*rest
    x = _reshape_axis_out_of(axis + 1, size, x)     # G, B, rest
    return _reshape_axis_into(axis, axis + 1, x)    # B, G*rest


def _conv_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                feature_group_count: int, batch_group_count: int, **params: Any
                ) -> tuple[Any, int]:
    lhs, rhs = vals
    lhs_bdim, rhs_bdim = dims
    lhs_spec, rhs_spec, out_spec = params["dimension_numbers"]
    fgc, bgc = feature_group_count, batch_group_count
    if axis_size == 0:  # nothing to fold (a group count of 0 is meaningless): zeros
        return _conv_empty_batch(lhs, rhs, lhs_bdim, rhs_bdim, feature_group_count=fgc,
                                 batch_group_count=bgc, **params), 0
    if lhs_bdim is not None and rhs_bdim is not None:
        if bgc > 1:  # batch groups pair lhs's N blocks with O blocks: B more of them
            new_lhs, bgc = _reshape_axis_into(lhs_bdim, lhs_spec[0], lhs), bgc * axis_size
        else:        # B independent convs side by side = B (more) feature groups
            new_lhs, fgc = _reshape_axis_into(lhs_bdim, lhs_spec[1], lhs), fgc * axis_size
        new_rhs = _reshape_axis_into(rhs_bdim, rhs_spec[0], rhs)
        out = conv_general_dilated_p.bind(new_lhs, new_rhs, feature_group_count=fgc,
                                          batch_group_count=bgc, **params)
        return _reshape_axis_out_of(out_spec[1], axis_size, out), out_spec[1]
    if lhs_bdim is not None:  # more images through the same kernel
        new_lhs = _fold_into(lhs, lhs_bdim, lhs_spec[0], bgc)
        out = conv_general_dilated_p.bind(new_lhs, rhs, feature_group_count=fgc,
                                          batch_group_count=bgc, **params)
        return _reshape_axis_out_of(out_spec[0], axis_size, out), out_spec[0]
    assert rhs_bdim is not None  # more output features from the same image
    groups = max(fgc, bgc)
    new_rhs = _fold_into(rhs, rhs_bdim, rhs_spec[0], groups)
    out = conv_general_dilated_p.bind(lhs, new_rhs, feature_group_count=fgc,
                                      batch_group_count=bgc, **params)
    return _unfold_from(out, out_spec[1], axis_size, groups), out_spec[1]


def _conv_empty_batch(lhs: Any, rhs: Any, lhs_bdim: int | None, rhs_bdim: int | None,
                      **params: Any) -> Any:
    def unbatched(x: Any, bdim: int | None) -> ShapedArray:
        aval = get_aval(x)
        shape = aval.shape if bdim is None else aval.shape[:bdim] + aval.shape[bdim + 1:]
        return ShapedArray(shape, aval.dtype, aval.weak_type)

    aval = conv_general_dilated_p.abstract_eval(unbatched(lhs, lhs_bdim),
                                                unbatched(rhs, rhs_bdim), **params)
    zero = Array(np.zeros((), aval.dtype), aval.weak_type)
    return _shape.broadcast_in_dim(zero, (0, *aval.shape), ())


conv_general_dilated_p = standard_primitive("conv_general_dilated", _conv_impl, _conv_shape,
                                            _conv_dtype)
defbilinear(conv_general_dilated_p, _conv_transpose_lhs, _conv_transpose_rhs)
conv_general_dilated_p.def_batch(_conv_batch)


# --- convenience wrappers (jax.lax's) ---------------------------------------------------------

def conv(lhs: Any, rhs: Any, window_strides: Sequence[int], padding: Any,
         precision: Any = None, preferred_element_type: Any = None) -> Any:
    """``conv_general_dilated`` in NCHW/OIHW layout without dilation or groups."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_with_general_padding(lhs: Any, rhs: Any, window_strides: Sequence[int], padding: Any,
                              lhs_dilation: Sequence[int] | None,
                              rhs_dilation: Sequence[int] | None, precision: Any = None,
                              preferred_element_type: Any = None) -> Any:
    """``conv_general_dilated`` in NCHW/OIHW layout with explicit dilations."""
    return conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
                                rhs_dilation=rhs_dilation, precision=precision,
                                preferred_element_type=preferred_element_type)


def _conv_transpose_padding(k: int, s: int, padding: Any) -> tuple[int, int]:
    # (low, high) padding of the fractionally strided conv that undoes a forward conv
    # of kernel size k and stride s with the given padding.
    if padding == "SAME":
        total = k + s - 2
        before = k - 1 if s > k - 1 else -(-total // 2)
    elif padding == "VALID":
        total, before = k + s - 2 + max(k - s, 0), k - 1
    elif isinstance(padding, tuple):
        before, total = k - padding[0] - 1, 2 * k - 2 - padding[0] - padding[1]
    else:
        raise ValueError(f"Invalid padding mode: {padding}")
    return before, total - before


def conv_transpose(lhs: Any, rhs: Any, strides: Sequence[int], padding: Any,
                   rhs_dilation: Sequence[int] | None = None, dimension_numbers: Any = None,
                   transpose_kernel: bool = False, precision: Any = None,
                   preferred_element_type: Any = None,
                   use_consistent_padding: bool = False) -> Any:
    """The "transposed" (fractionally strided) convolution, ``jax.lax.conv_transpose``.

    Default layouts are TensorFlow's (``NHWC``, ``HWIO``). 'SAME'/'VALID' (and any
    padding when ``use_consistent_padding``) describe the forward conv being
    transposed; explicit pairs otherwise pad the dilated input directly.
    ``transpose_kernel=True`` flips the kernel and swaps its I/O axes, giving the
    gradient of ``conv`` (Keras' Conv2DTranspose).
    """
    lhs_shape, rhs_shape = get_aval(lhs).shape, get_aval(rhs).shape
    ndim = len(lhs_shape)
    if dimension_numbers is None:
        defaults = {2: ("NC", "IO", "NC"), 3: ("NHC", "HIO", "NHC"),
                    4: ("NHWC", "HWIO", "NHWC"), 5: ("NHWDC", "HWDIO", "NHWDC")}
        if ndim not in defaults:
            raise ValueError("No 4+ dimensional dimension_number defaults.")
        dimension_numbers = defaults[ndim]
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    rhs_dilation = (1,) * (ndim - 2) if rhs_dilation is None else tuple(rhs_dilation)
    if use_consistent_padding or (isinstance(padding, str) and padding in ("SAME", "VALID")):
        kernel = [_dilate_dim(rhs_shape[a], d) for a, d in zip(dn.rhs_spec[2:], rhs_dilation)]
        per_dim = [padding] * len(strides) if isinstance(padding, str) else list(padding)
        padding = [_conv_transpose_padding(k, s, p if isinstance(p, str) else tuple(p))
                   for k, s, p in zip(kernel, strides, per_dim)]
    if transpose_kernel:
        rhs = _shape.rev(rhs, tuple(dn.rhs_spec[2:]))
        perm = list(range(ndim))
        perm[dn.rhs_spec[0]], perm[dn.rhs_spec[1]] = dn.rhs_spec[1], dn.rhs_spec[0]
        rhs = _shape.transpose(rhs, perm)
    return conv_general_dilated(lhs, rhs, (1,) * (ndim - 2), padding, strides, rhs_dilation,
                                dn, precision=precision,
                                preferred_element_type=preferred_element_type)


def conv_shape_tuple(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                     strides: Sequence[int], pads: Any,
                     batch_group_count: int = 1) -> tuple[int, ...]:
    """Output shape of a conv with operands in canonical (NCHW, OIHW) order."""
    if isinstance(pads, str):
        pads = padtype_to_pads(lhs_shape[2:], rhs_shape[2:], strides, pads)
    space = reduce_window_shape_tuple(lhs_shape[2:], rhs_shape[2:], strides, pads)
    return (lhs_shape[0] // batch_group_count, rhs_shape[0], *space)


def conv_general_shape_tuple(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                             window_strides: Sequence[int], padding: Any,
                             dimension_numbers: Any) -> tuple[int, ...]:
    """Output shape of ``conv_general_dilated`` (no dilation, no groups)."""
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    out = conv_shape_tuple([lhs_shape[a] for a in dn.lhs_spec],
                           [rhs_shape[a] for a in dn.rhs_spec], window_strides, padding)
    return tuple(out[i] for i in np.argsort(dn.out_spec))


def conv_transpose_shape_tuple(lhs_shape: Sequence[int], rhs_shape: Sequence[int],
                               window_strides: Sequence[int], padding: Any,
                               dimension_numbers: Any) -> tuple[int, ...]:
    """Output shape of ``conv_transpose`` (no rhs dilation)."""
    dn = conv_dimension_numbers(lhs_shape, rhs_shape, dimension_numbers)
    lhs_t, rhs_t = [lhs_shape[a] for a in dn.lhs_spec], [rhs_shape[a] for a in dn.rhs_spec]
    if isinstance(padding, str):
        padding = [_conv_transpose_padding(k, s, padding)
                   for k, s in zip(rhs_t[2:], window_strides)]
    space = [(i - 1) * s - k + 2 + lo + hi
             for i, k, s, (lo, hi) in zip(lhs_t[2:], rhs_t[2:], window_strides, padding)]
    out = (lhs_t[0], rhs_t[0], *space)
    return tuple(out[i] for i in np.argsort(dn.out_spec))


__all__ = [
    "ConvDimensionNumbers", "conv_dimension_numbers", "conv_general_dilated", "conv",
    "conv_with_general_padding", "conv_transpose", "conv_shape_tuple",
    "conv_general_shape_tuple", "conv_transpose_shape_tuple", "padtype_to_pads",
    "reduce_window_shape_tuple",
]
