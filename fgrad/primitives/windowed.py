"""Windowed reductions: ``reduce_window`` (sum, max, min pooling) and its derivatives.

The window geometry (dilate, pad, stride; see ``conv.py``) is shared with
convolution. Primitives (strict, as ``jax.lax``): ``reduce_window_sum``
(linear; its transpose is itself with strides turned into a base
dilation), ``reduce_window_max`` / ``reduce_window_min``, and the pair
``select_and_gather_add`` / ``select_and_scatter_add`` that carry max/min
pooling's derivatives (each is the other's transpose).

Conventions (JAX's, on CPU): max/min pooling sends the whole tangent of a
window to ONE element, the first extremum in row-major window order (ties
are not split, unlike ``reduce_max``); ``reduce_window`` with an init value
``v`` returns ``v ⊕ (reduction of the real elements)``: padding never counts.

Batching: the batch axis becomes one more window axis with a trivial window
(size 1, stride 1, no padding, no dilation), so it stays where it is; the
two-operand primitives first give both operands the batch axis at one
position (broadcasting an unbatched one: the shape rules need equal shapes).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive
from fgrad.core.trace import Tracer
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import shape as _shape
from fgrad.primitives.rules import defjvp, deflinear, standard_primitive
from fgrad.transforms.vmap import moveaxis

from fgrad.primitives.conv import (  # the window geometry shared with convolution
    Pads, _dilate_dim, _dilate_pad, _is_16bit_float, _vjp_lhs_padding, _windows, padtype_to_pads,
    reduce_window_shape_tuple)


# --- windowed reductions: reduce_window_{sum,max,min} ---------------------------------------
# Params of every windowed primitive below: window_dimensions, window_strides, padding,
# base_dilation, window_dilation (explicit tuples, one entry per operand axis).

def _window_shape_rule(op: str) -> Callable[..., tuple[int, ...]]:
    def rule(x: ShapedArray, *, window_dimensions: tuple[int, ...],
             window_strides: tuple[int, ...], padding: Pads, base_dilation: tuple[int, ...],
             window_dilation: tuple[int, ...], **_: Any) -> tuple[int, ...]:
        params = dict(window_dimensions=window_dimensions, window_strides=window_strides,
                      padding=padding, base_dilation=base_dilation,
                      window_dilation=window_dilation)
        for name, v in params.items():
            if len(v) != x.ndim:
                raise FgradTypeError(f"{op}: {name}={v} must have one entry per axis of the "
                                     f"operand {x.str_short()}")
            if name != "padding" and min(v, default=1) < 1:
                raise FgradTypeError(f"{op}: {name}={v} must be positive (operand "
                                     f"{x.str_short()})")
        if any(_dilate_dim(d, b) + lo + hi < 0
               for d, b, (lo, hi) in zip(x.shape, base_dilation, padding)):
            raise FgradTypeError(f"{op}: negative padding {padding} is larger than the "
                                 f"(dilated) operand {x.str_short()}")
        return reduce_window_shape_tuple(x.shape, window_dimensions, window_strides, padding,
                                         base_dilation, window_dilation)
    return rule


def _batch_window(bdim: int, window_dimensions: tuple[int, ...],
                  window_strides: tuple[int, ...], padding: Pads, base_dilation: tuple[int, ...],
                  window_dilation: tuple[int, ...], **others: Any) -> dict[str, Any]:
    """The window params with a trivial window (1, stride 1, no padding) for the batch axis."""
    def add(params: Sequence[Any], entry: Any) -> tuple[Any, ...]:
        return (*params[:bdim], entry, *params[bdim:])
    return dict(window_dimensions=add(window_dimensions, 1),
                window_strides=add(window_strides, 1), padding=add(padding, (0, 0)),
                base_dilation=add(base_dilation, 1), window_dilation=add(window_dilation, 1),
                **others)


def _reducer_batch(prim: Primitive) -> Callable[..., tuple[Any, int]]:
    def rule(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
             **params: Any) -> tuple[Any, int]:
        _shape._check_element(prim, vals, dims, **params)  # errors name unbatched shapes
        (x,), (bdim,) = vals, dims
        return prim.bind(x, **_batch_window(bdim, **params)), bdim
    return rule


def _window_view(x: np.ndarray, fill: Any, window_dimensions: tuple[int, ...],
                 window_strides: tuple[int, ...], padding: Pads, base_dilation: tuple[int, ...],
                 window_dilation: tuple[int, ...]) -> np.ndarray:
    xp = _dilate_pad(x, base_dilation, padding, fill)
    return _windows(xp, window_dimensions, window_strides, window_dilation)


def _identity(dtype: np.dtype, select_max: bool) -> Any:
    """The padding value of max (lowest) or min (highest) for ``dtype``."""
    if dtypes.is_bool(dtype):
        return not select_max
    if dtypes.is_int(dtype):
        info = np.iinfo(dtype)
        return info.min if select_max else info.max
    return -np.inf if select_max else np.inf


def _reducer_impl(reduce: Callable[..., np.ndarray],
                  fill: Callable[[np.dtype], Any]) -> Callable[..., np.ndarray]:
    def impl(x: np.ndarray, **params: Any) -> np.ndarray:
        work = x.astype(np.float32) if _is_16bit_float(x.dtype) else x
        view = _window_view(work, fill(x.dtype), **params)
        return np.asarray(reduce(view, x.ndim, x.dtype)).astype(x.dtype, copy=False)
    return impl


def _sum_windows(view: np.ndarray, ndim: int, dtype: np.dtype) -> np.ndarray:
    # NOTE: tap by tap in row-major window order, rounding to the dtype after each add:
    # XLA's CPU order without padding, so even float16/bfloat16 sums agree bit for bit
    # (with padding XLA orders the taps differently: within an ulp there).
    acc = np.zeros(view.shape[:ndim], dtype)
    for tap in np.ndindex(*view.shape[ndim:]):
        acc = (acc + view[(Ellipsis, *tap)]).astype(dtype, copy=False)
    return acc


def _number_shape(x: ShapedArray, **params: Any) -> tuple[int, ...]:
    if not (dtypes.is_float(x.dtype) or dtypes.is_int(x.dtype)):
        raise FgradTypeError(f"reduce_window_sum: operand must have a number dtype, got "
                             f"{x.str_short()}")
    return _window_shape_rule("reduce_window_sum")(x, **params)


# reduce_window_sum is linear. Its transpose is the lhs transpose of a depthwise conv
# with an all-ones (so flip-invariant) kernel: sum the cotangent over the windows of
# the transposed geometry, the forward's strides becoming a base dilation of ct.
def _reduce_window_sum_transpose(ct: Any, x: Any, *, window_dimensions: tuple[int, ...],
                                 window_strides: tuple[int, ...], padding: Pads,
                                 base_dilation: tuple[int, ...],
                                 window_dilation: tuple[int, ...]) -> list[Any]:
    pads = _vjp_lhs_padding(x.aval.shape, window_dimensions, window_strides, ct.shape, padding,
                            base_dilation, window_dilation)
    return [reduce_window_sum_p.bind(ct, window_dimensions=window_dimensions,
                                     window_strides=base_dilation, padding=pads,
                                     base_dilation=window_strides,
                                     window_dilation=window_dilation)]


reduce_window_sum_p = standard_primitive("reduce_window_sum",
                                         _reducer_impl(_sum_windows, lambda dt: 0),
                                         _number_shape, lambda x, **_: x.dtype)
deflinear(reduce_window_sum_p, _reduce_window_sum_transpose)

reduce_window_max_p = standard_primitive(
    "reduce_window_max", _reducer_impl(
        lambda v, n, dt: np.max(v, axis=tuple(range(n, 2 * n))), lambda dt: _identity(dt, True)),
    _window_shape_rule("reduce_window_max"), lambda x, **_: x.dtype)
reduce_window_min_p = standard_primitive(
    "reduce_window_min", _reducer_impl(
        lambda v, n, dt: np.min(v, axis=tuple(range(n, 2 * n))), lambda dt: _identity(dt, False)),
    _window_shape_rule("reduce_window_min"), lambda x, **_: x.dtype)
reduce_window_sum_p.def_batch(_reducer_batch(reduce_window_sum_p))
reduce_window_max_p.def_batch(_reducer_batch(reduce_window_max_p))
reduce_window_min_p.def_batch(_reducer_batch(reduce_window_min_p))
# d(max over a window) = the tangent at the window's (first) maximum.
defjvp(reduce_window_max_p, lambda t, x, **p: select_and_gather_add_p.bind(
    t, x, select_prim=_ew.ge_p, **p))
defjvp(reduce_window_min_p, lambda t, x, **p: select_and_gather_add_p.bind(
    t, x, select_prim=_ew.le_p, **p))


# --- select_and_gather_add / select_and_scatter_add -------------------------------------------
# gather(t, x)[w]  = t[i_w]                  (one value per window w)
# scatter(s, x)[i] = sum_{w : i_w = i} s[w]  (one value per element of x)
# where i_w is the position of the first maximum (select_prim=ge) or minimum (le) of
# x in window w. Both are linear in their first argument and piecewise constant in x
# (zero derivative), and each is the other's transpose, so derivatives of max pooling
# of every order stay within this pair.

def _selected_positions(x: np.ndarray, select_prim: Any, window_dimensions: tuple[int, ...],
                        window_strides: tuple[int, ...], padding: Pads,
                        base_dilation: tuple[int, ...], window_dilation: tuple[int, ...]
                        ) -> np.ndarray:
    """Flat index into ``x`` of each window's chosen element (-1: only padding there)."""
    select_max = select_prim is _ew.ge_p
    work = x.astype(np.float32) if _is_16bit_float(x.dtype) else x
    padded = _dilate_pad(work, base_dilation, padding, _identity(work.dtype, select_max))
    values = _windows(padded, window_dimensions, window_strides, window_dilation)
    out_shape = values.shape[:x.ndim]
    values = values.reshape(*out_shape, int(np.prod(window_dimensions)))
    # NOTE: argmax/argmin return the FIRST extremum in row-major window order, which is
    # the element XLA's `ge`/`le` selection keeps; a NaN counts as the extremum.
    tap = np.argmax(values, -1) if select_max else np.argmin(values, -1)
    # Row-major index into `padded`: the window's corner plus the tap's offset.
    strides = np.cumprod((1, *padded.shape[:0:-1]))[::-1]
    corner: Any = 0
    for axis, (s, t) in enumerate(zip(window_strides, strides)):
        shape = [-1 if a == axis else 1 for a in range(x.ndim)]
        corner = corner + (np.arange(out_shape[axis]) * (s * t)).reshape(shape)
    n_taps = values.shape[-1]
    offsets = np.zeros(n_taps, np.int64)
    for k, r, t in zip(np.indices(window_dimensions).reshape(x.ndim, n_taps), window_dilation,
                       strides):
        offsets += k * (r * t)
    chosen = corner + offsets[tap]
    if padded is work:
        return chosen
    # Padding and dilation holes map to -1, real elements to their index in x.
    to_x = _dilate_pad(np.arange(x.size).reshape(x.shape), base_dilation, padding, -1)
    return to_x.ravel()[chosen]


def _gather_impl(t: np.ndarray, x: np.ndarray, **params: Any) -> np.ndarray:
    out_shape = reduce_window_shape_tuple(x.shape, params["window_dimensions"],
                                          params["window_strides"], params["padding"],
                                          params["base_dilation"], params["window_dilation"])
    if 0 in out_shape or x.size == 0:
        return np.zeros(out_shape, t.dtype)
    chosen = _selected_positions(x, **params)
    return np.append(t.ravel(), np.zeros(1, t.dtype))[chosen]  # index -1 reads the zero


def _scatter_impl(s: np.ndarray, x: np.ndarray, **params: Any) -> np.ndarray:
    if s.size == 0 or x.size == 0:
        return np.zeros(x.shape, s.dtype)
    chosen = _selected_positions(x, **params).ravel() + 1  # bin 0 collects padding
    if dtypes.is_float(s.dtype):
        sums = np.bincount(chosen, weights=s.ravel().astype(np.float64), minlength=x.size + 1)
    else:
        sums = np.zeros(x.size + 1, s.dtype)
        np.add.at(sums, chosen, s.ravel())
    return sums[1:].astype(s.dtype).reshape(x.shape)


def _gather_shape(t: ShapedArray, x: ShapedArray, **params: Any) -> tuple[int, ...]:
    if t.shape != x.shape or t.dtype != x.dtype:
        raise FgradTypeError(f"select_and_gather_add: tangents and operand must have equal "
                             f"types, got {t.str_short()} and {x.str_short()}")
    return _window_shape_rule("select_and_gather_add")(x, **params)


def _scatter_shape(s: ShapedArray, x: ShapedArray, **params: Any) -> tuple[int, ...]:
    expected = _window_shape_rule("select_and_scatter_add")(x, **params)
    if s.shape != expected or s.dtype != x.dtype:
        raise FgradTypeError(f"select_and_scatter_add: source {s.str_short()} must have the "
                             f"dtype of the operand {x.str_short()} and its windowed shape "
                             f"{expected}")
    return x.shape


def _select_and_batch(prim: Primitive) -> Callable[..., tuple[Any, int]]:
    # Both operands get the batch axis at one position (the first batched operand's): the
    # windowed operand and its result have equal ranks, so the same axis number works for
    # both. An unbatched operand is broadcast: the shape rules need equal shapes.
    def rule(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
             **params: Any) -> tuple[Any, int]:
        _shape._check_element(prim, vals, dims, **params)  # errors name unbatched shapes
        bdim = next(d for d in dims if d is not None)
        a, b = (_shape._add_batch_axis(v, axis_size, bdim) if d is None else moveaxis(v, d, bdim)
                for v, d in zip(vals, dims))
        return prim.bind(a, b, **_batch_window(bdim, **params)), bdim
    return rule


select_and_gather_add_p = standard_primitive("select_and_gather_add", _gather_impl,
                                             _gather_shape, lambda t, x, **_: t.dtype,
                                             lambda t, x, **_: t.weak_type)
select_and_scatter_add_p = standard_primitive("select_and_scatter_add", _scatter_impl,
                                              _scatter_shape, lambda s, x, **_: s.dtype,
                                              lambda s, x, **_: s.weak_type)
select_and_gather_add_p.def_batch(_select_and_batch(select_and_gather_add_p))
select_and_scatter_add_p.def_batch(_select_and_batch(select_and_scatter_add_p))
deflinear(select_and_gather_add_p, lambda ct, t, x, **p: [
    select_and_scatter_add_p.bind(ct, x, **p), None])
deflinear(select_and_scatter_add_p, lambda ct, s, x, **p: [
    select_and_gather_add_p.bind(ct, x, **p), None])


# --- reduce_window (public) -----------------------------------------------------------------

def reduce_window(operand: Any, init_value: Any, computation: Any,
                  window_dimensions: Sequence[int], window_strides: Sequence[int] | None = None,
                  padding: str | Sequence[tuple[int, int]] = "VALID",
                  base_dilation: Sequence[int] | None = None,
                  window_dilation: Sequence[int] | None = None) -> Any:
    """Reduce every window of ``operand`` with ``computation`` (``jax.lax.reduce_window``).

    ``computation`` must be ``fgrad.lax.add``, ``max`` or ``min``; the result is
    ``init_value ⊕ (reduction of the window's real elements)`` (padding and dilation
    holes do not count), so the identity init (0, -inf, inf) gives the plain
    ``reduce_window_sum/max/min`` primitive.

    >>> import fgrad.numpy as fnp
    >>> from fgrad.lax import add
    >>> reduce_window(fnp.arange(4.0), 0.0, add, (2,), (2,))
    Array([1., 5.], dtype=float32)
    """
    aval = get_aval(operand)
    n = aval.ndim
    window_dimensions = tuple(int(w) for w in window_dimensions)
    strides = (1,) * n if window_strides is None else tuple(int(s) for s in window_strides)
    base = (1,) * n if base_dilation is None else tuple(int(d) for d in base_dilation)
    wdil = (1,) * n if window_dilation is None else tuple(int(d) for d in window_dilation)
    if isinstance(padding, str):
        window = [_dilate_dim(w, d) for w, d in zip(window_dimensions, wdil)]
        padding = padtype_to_pads(aval.shape, window, strides, padding)
    pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    params = dict(window_dimensions=window_dimensions, window_strides=strides, padding=pads,
                  base_dilation=base, window_dilation=wdil)
    if computation is _ew.add:
        prim, identity = reduce_window_sum_p, 0
    elif computation is _ew.max:
        prim, identity = reduce_window_max_p, _identity(aval.dtype, True)
    elif computation is _ew.min:
        prim, identity = reduce_window_min_p, _identity(aval.dtype, False)
    else:
        raise NotImplementedError(
            f"reduce_window: computation {getattr(computation, '__name__', computation)!r} is "
            "not supported; use fgrad.lax.add, fgrad.lax.max or fgrad.lax.min")
    is_identity = False
    if not isinstance(init_value, Tracer):
        if np.ndim(init_value) != 0:
            raise TypeError(f"reduce_window expected init_value to be a scalar, got shape "
                            f"{np.shape(init_value)}")
        is_identity = bool(np.asarray(init_value) == identity)
    init_aval = get_aval(init_value)
    if not is_identity and init_aval.dtype != aval.dtype and not (init_aval.weak_type and (
            dtypes.is_float(aval.dtype) or not dtypes.is_float(init_aval.dtype))):
        raise TypeError(f"reduce_window got inconsistent dtypes for operand and init_value: "
                        f"{aval.str_short()} and {init_aval.str_short()}")
    out = prim.bind(operand, **params)
    if is_identity:
        return out
    return computation(out, _shape.full(out.shape, init_value, aval.dtype))


__all__ = ["reduce_window"]
