"""Checking derivatives against finite differences (``jax.test_util``'s checks, fgrad style).

``check_grads(f, args, order)`` is the workhorse of fgrad's test suite. It
never looks at a whole Jacobian: it picks one random direction and checks

* **forward mode** (``check_jvp``): ``jvp(f)(x; v)`` against the central
  difference ``(f(x + eps v) - f(x - eps v)) / (2 eps)``;
* **reverse mode** (``check_vjp``): the inner-product identity
  ``<u, J v> == <J^T u, v>``, with ``J v`` by central differences and
  ``J^T u`` from ``vjp``, for a random cotangent ``u``;

and then recurses: the JVP (resp. VJP) of ``f`` is itself a function, whose
derivatives are checked the same way, up to ``order``. Second order thus
tests that the derivative *rules* are themselves differentiable.

Conventions (those of JAX's ``public_test_util``, where fgrad differs it says so):

* arguments and outputs are pytrees; the random direction is drawn from
  ``numpy.random.RandomState(0)``, so a check is deterministic;
* tolerances are per dtype (``GRADIENT_TOLERANCE``) and, as in JAX, scaled
  by the number of elements compared; ``eps`` defaults to ``1e-4``, so use
  float64 inputs (``enable_x64``) for tight checks;
* integer and boolean leaves cannot be perturbed: fgrad gives them a zero
  direction (JAX would need ``float0``), and the finite difference of an
  integer or boolean output is taken to be zero (such outputs are piecewise
  constant; a difference straddling a jump would be meaningless);
* differences and inner products are computed in float64, and an inner
  product is compared with the tolerance of the least precise float dtype
  that went into it.

Failures raise ``AssertionError`` naming the order, the mode (e.g. ``VJP of
JVP``), the quantity, and the largest absolute and relative errors.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import ml_dtypes
import numpy as np

from fgrad.core import dtypes
from fgrad.core.array import Array
from fgrad.tree_util import tree_flatten, tree_map, tree_structure
from fgrad.transforms.grad import jvp as _jvp
from fgrad.transforms.grad import linearize as _linearize
from fgrad.transforms.grad import vjp as _vjp

EPS = 1e-4

Tolerance = float | dict[Any, float] | None

# Value comparisons (check_close with no tolerance given): JAX's default_tolerance.
DEFAULT_TOLERANCE: dict[np.dtype, float] = {
    np.dtype(ml_dtypes.bfloat16): 1e-2, np.dtype(np.float16): 1e-3,
    np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-15,
}  # fmt: skip
# Derivative comparisons (check_jvp / check_vjp / check_grads): JAX's default_gradient_tolerance.
GRADIENT_TOLERANCE: dict[np.dtype, float] = {
    np.dtype(ml_dtypes.bfloat16): 1e-1, np.dtype(np.float16): 1e-2,
    np.dtype(np.float32): 2e-3, np.dtype(np.float64): 1e-5,
}  # fmt: skip


# --- tolerances and comparisons -------------------------------------------------------------

def tolerance(dtype: Any, tol: Tolerance = None,
              defaults: dict[np.dtype, float] = DEFAULT_TOLERANCE) -> float:
    """The tolerance for ``dtype``: ``tol`` if a number, else looked up (integers: 0).

    >>> tolerance(np.float32, {np.float32: 1e-3})
    0.001
    """
    if tol is not None and not isinstance(tol, dict):
        return float(tol)
    table = dict(defaults)
    table.update({np.dtype(k): v for k, v in (tol or {}).items()})
    return table.get(np.dtype(dtype), 0.0)


def _float_dtype(x: Any) -> np.dtype | None:
    """The (canonical) float dtype of a leaf, or None for integer and boolean leaves."""
    dtype = dtypes.dtype_and_weak_type(x)[0]
    return dtype if dtypes.is_float(dtype) else None


def _errors(a: np.ndarray, b: np.ndarray) -> tuple[float, float, tuple[int, ...] | None]:
    """Largest absolute error, largest relative error and where the former is (None if 0)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        # inf - inf counts as equal, as does nan vs nan (like assert_allclose).
        same = (a64 == b64) | (np.isnan(a64) & np.isnan(b64))
        abs_err = np.where(same, 0.0, np.abs(a64 - b64))
    abs_err = np.where(np.isnan(abs_err), np.inf, abs_err)
    if abs_err.size == 0 or not abs_err.any():
        return 0.0, 0.0, None
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(abs_err == 0, 0.0, abs_err / np.abs(b64))
    where = np.unravel_index(int(np.argmax(abs_err)), abs_err.shape)
    return float(abs_err.max()), float(np.nanmax(rel_err)), tuple(int(i) for i in where)


def _assert_leaf_close(a: Any, b: Any, atol: float, rtol: float, what: str) -> None:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise AssertionError(f"{what}: shapes differ: got {a.shape}, expected {b.shape}")
    if a.dtype == np.bool_ or b.dtype == np.bool_:
        a, b = a.astype(np.int8), b.astype(np.int8)
    # NOTE: as in JAX, the tolerances grow with the number of elements compared.
    atol, rtol = atol * max(a.size, 1), rtol * max(b.size, 1)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        ok = (np.abs(a64 - b64) <= atol + rtol * np.abs(b64)) | (a64 == b64) \
            | (np.isnan(a64) & np.isnan(b64))
    if ok.all():
        return
    abs_err, rel_err, where = _errors(a, b)
    n_bad = int((~ok).sum())
    raise AssertionError(
        f"{what}: not close: {n_bad} of {a.size} elements differ; max abs error "
        f"{abs_err:.3g} (at index {where}), max rel error {rel_err:.3g}; tolerance "
        f"atol={atol:.3g}, rtol={rtol:.3g} (already scaled by the size, as JAX does)\n"
        f"  got:      {np.array2string(a, threshold=20, precision=6)}\n"
        f"  expected: {np.array2string(b, threshold=20, precision=6)}")


def check_close(xs: Any, ys: Any, atol: Tolerance = None, rtol: Tolerance = None,
                err_msg: str = "") -> None:
    """Assert that two pytrees of arrays have the same structure and close leaves.

    ``atol``/``rtol``: a number, or a dict from dtype to number (defaults
    ``DEFAULT_TOLERANCE``; integers and bools must match exactly).

    >>> check_close((np.float32(1.0), [2.0]), (np.float32(1.0 + 1e-7), [2.0]))
    """
    x_leaves, x_tree = tree_flatten(xs)
    y_leaves, y_tree = tree_flatten(ys)
    what = err_msg or "check_close"
    if x_tree != y_tree:
        raise AssertionError(f"{what}: tree structures differ: {x_tree} vs {y_tree}")
    for i, (x, y) in enumerate(zip(x_leaves, y_leaves)):
        dx, dy = np.asarray(x).dtype, np.asarray(y).dtype
        a = max(tolerance(dx, atol), tolerance(dy, atol))
        r = max(tolerance(dx, rtol), tolerance(dy, rtol))
        leaf = f" (leaf {i} of {len(x_leaves)})" if len(x_leaves) > 1 else ""
        _assert_leaf_close(x, y, a, r, what + leaf)


def _merge(tol: Tolerance, defaults: dict[np.dtype, float]) -> float | dict[Any, float]:
    if tol is None:
        return defaults
    if not isinstance(tol, dict):
        return tol
    return {**defaults, **{np.dtype(k): v for k, v in tol.items()}}


# --- leafwise arithmetic that preserves each leaf's type -------------------------------------

def _like(template: Any, value: np.ndarray) -> Any:
    """``value`` (float64 or any dtype) rounded to ``template``'s dtype and kind of container."""
    dtype, weak = dtypes.dtype_and_weak_type(template)
    value = np.asarray(value).astype(dtype)
    if type(template) in (bool, int, float):
        return type(template)(value.item())
    if isinstance(template, Array):
        return Array(value, weak)
    return value


def _axpy(a: float, x: Any, y: Any) -> Any:
    """``a * x + y`` leafwise, in float64, rounded back to ``y``'s dtype (floats only)."""
    def leaf(x_leaf: Any, y_leaf: Any) -> Any:
        if _float_dtype(y_leaf) is None:
            return y_leaf
        y64 = np.asarray(y_leaf).astype(np.float64)
        return _like(y_leaf, a * np.asarray(x_leaf).astype(np.float64) + y64)
    return tree_map(leaf, x, y)


def _rand_like(rng: np.random.RandomState, x: Any) -> Any:
    """A standard-normal leaf like ``x``; zeros for integer and boolean leaves."""
    dtype = dtypes.dtype_and_weak_type(x)[0]
    shape = np.shape(x)
    if not dtypes.is_float(dtype):
        value = np.zeros(shape, dtype)
    else:
        value = np.asarray(rng.randn(*shape)).astype(dtype)
    return float(value) if type(x) is float else value


def _inner_prod(xs: Any, ys: Any) -> tuple[np.ndarray, np.dtype]:
    """``sum_i <x_i, y_i>`` in float64, and the least precise float dtype involved."""
    total = 0.0
    least: np.dtype = np.dtype(np.float64)
    for x, y in zip(tree_flatten(xs)[0], tree_flatten(ys)[0], strict=True):
        for leaf in (x, y):
            dt = _float_dtype(leaf)
            if dt is not None and dt.itemsize < least.itemsize:
                least = dt
        total += float(np.dot(np.asarray(x).astype(np.float64).ravel(),
                              np.asarray(y).astype(np.float64).ravel()))
    return np.asarray(total), least


def numerical_jvp(f: Callable[..., Any], primals: Sequence[Any], tangents: Sequence[Any],
                  eps: float = EPS) -> Any:
    """The central difference ``(f(x + eps t) - f(x - eps t)) / (2 eps)``.

    ``primals`` and ``tangents`` are sequences of pytrees (``f``'s positional
    arguments). Each output leaf keeps its dtype; integer and boolean
    outputs get a zero tangent (see the module docstring).

    >>> import fgrad.numpy as fnp
    >>> float(numerical_jvp(fnp.sin, (np.float32(0.0),), (np.float32(1.0),)))
    1.0
    """
    f_pos = f(*_axpy(eps, tuple(tangents), tuple(primals)))
    f_neg = f(*_axpy(-eps, tuple(tangents), tuple(primals)))

    def leaf(pos: Any, neg: Any) -> np.ndarray:
        pos, neg = np.asarray(pos), np.asarray(neg)
        if not dtypes.is_float(pos.dtype):
            return np.zeros(pos.shape, pos.dtype)
        pos64, neg64 = pos.astype(np.float64), neg.astype(np.float64)
        with np.errstate(invalid="ignore"):
            diff = np.where(pos64 == neg64, 0.0, pos64 - neg64)  # inf - inf counts as 0
        return (diff * (0.5 / eps)).astype(pos.dtype)

    return tree_map(leaf, f_pos, f_neg)


# --- the checks -------------------------------------------------------------------------

def _check_dtypes_match(primal_out: Any, tangent_out: Any, what: str) -> None:
    p_leaves, t_leaves = tree_flatten(primal_out)[0], tree_flatten(tangent_out)[0]
    for i, (p, t) in enumerate(zip(p_leaves, t_leaves, strict=True)):
        pd, td = dtypes.dtype_and_weak_type(p)[0], dtypes.dtype_and_weak_type(t)[0]
        if pd != td:
            raise AssertionError(f"{what}: output leaf {i} has dtype {pd.name} but its "
                                 f"tangent has dtype {td.name}")


def check_jvp(f: Callable[..., Any], f_jvp: Callable[..., Any], args: Sequence[Any],
              atol: Tolerance = None, rtol: Tolerance = None, eps: float = EPS,
              err_msg: str = "") -> None:
    """Check ``f_jvp(primals, tangents)`` (e.g. ``partial(fgrad.jvp, f)``) at ``args``.

    Compares the primal output with ``f(*args)`` and the tangent output with
    ``numerical_jvp`` along one random direction. Raises AssertionError.

    >>> import functools, fgrad, fgrad.numpy as fnp
    >>> check_jvp(fnp.sin, functools.partial(fgrad.jvp, fnp.sin), (np.float32(0.5),))
    """
    atol_, rtol_ = _merge(atol, GRADIENT_TOLERANCE), _merge(rtol, GRADIENT_TOLERANCE)
    what = err_msg or "JVP"
    args = tuple(args)
    rng = np.random.RandomState(0)
    tangent = tree_map(functools.partial(_rand_like, rng), args)
    v_out, t_out = f_jvp(args, tangent)
    v_expected = f(*args)
    _check_dtypes_match(v_out, t_out, f"{what}: tangent")
    _check_dtypes_match(v_out, v_expected, f"{what}: primal")
    check_close(v_out, v_expected, atol_, rtol_, f"{what}: primal output")
    t_expected = numerical_jvp(f, args, tangent, eps=eps)
    check_close(t_out, t_expected, atol_, rtol_,
                f"{what}: tangent output (autodiff = got, finite differences = expected)")


def check_vjp(f: Callable[..., Any], f_vjp: Callable[..., Any], args: Sequence[Any],
              atol: Tolerance = None, rtol: Tolerance = None, eps: float = EPS,
              err_msg: str = "") -> None:
    """Check ``f_vjp(*args) -> (out, vjp_fun)`` (e.g. ``partial(fgrad.vjp, f)``) at ``args``.

    Draws a random direction ``v`` and cotangent ``u`` and checks
    ``<u, J v>`` (``J v`` by finite differences) against ``<J^T u, v>``
    (``J^T u = vjp_fun(u)``). Raises AssertionError.

    >>> import functools, fgrad, fgrad.numpy as fnp
    >>> check_vjp(fnp.sin, functools.partial(fgrad.vjp, fnp.sin), (np.float32(0.5),))
    """
    atol_, rtol_ = _merge(atol, GRADIENT_TOLERANCE), _merge(rtol, GRADIENT_TOLERANCE)
    what = err_msg or "VJP"
    args = tuple(args)
    rng = np.random.RandomState(0)
    v_out, vjp_fun = f_vjp(*args)
    check_close(v_out, f(*args), atol_, rtol_, f"{what}: primal output")
    tangent = tree_map(functools.partial(_rand_like, rng), args)
    tangent_out = numerical_jvp(f, args, tangent, eps=eps)
    cotangent = tree_map(functools.partial(_rand_like, rng), v_out)
    cotangent_out = vjp_fun(cotangent)
    if tree_structure(tuple(cotangent_out)) != tree_structure(args):
        raise AssertionError(f"{what}: the VJP returned cotangents of structure "
                             f"{tree_structure(tuple(cotangent_out))} for arguments of "
                             f"structure {tree_structure(args)}")
    ip, ip_dtype = _inner_prod(tangent, tuple(cotangent_out))
    ip_expected, ip_dtype2 = _inner_prod(tangent_out, cotangent)
    least = min(ip_dtype, ip_dtype2, key=lambda d: d.itemsize)
    a = tolerance(least, atol_, GRADIENT_TOLERANCE)
    r = tolerance(least, rtol_, GRADIENT_TOLERANCE)
    _assert_leaf_close(ip, ip_expected, a, r,
                       f"{what}: cotangent projection <J^T u, v> (got) vs <u, J v> by finite "
                       "differences (expected)")


def check_grads(f: Callable[..., Any], args: Sequence[Any], order: int,
                modes: Sequence[str] = ("fwd", "rev"), atol: Tolerance = None,
                rtol: Tolerance = None, eps: float | None = None) -> None:
    """Check ``f``'s derivatives at ``args`` against finite differences, up to ``order``.

    Args:
      f: a function of the positional pytrees ``args``, returning a pytree.
      args: the point at which to check (float leaves are perturbed).
      order: 1 checks first derivatives; 2 also the derivatives of the JVP and
        VJP functions, and so on.
      modes: any of ``"fwd"`` (JVP), ``"rev"`` (VJP), ``"lin"`` (linearize).
      atol, rtol: a number or a dict from dtype to number (default
        ``GRADIENT_TOLERANCE``, scaled by the number of elements compared).
      eps: finite-difference step (default ``EPS = 1e-4``).

    Raises:
      AssertionError: naming the order and mode (``"order 2, VJP of JVP"``),
        the quantity compared, and the largest absolute and relative errors.

    >>> import fgrad.numpy as fnp
    >>> check_grads(lambda x, y: fnp.sin(x) * y, (np.float32(0.5), np.float32(2.0)), order=2)
    """
    args = tuple(args)
    eps = eps or EPS
    unknown = set(modes) - {"fwd", "rev", "lin"}
    if unknown:
        raise ValueError(f"check_grads: unknown modes {sorted(unknown)}; use 'fwd', 'rev', "
                         "'lin'")
    kw = dict(atol=atol, rtol=rtol, eps=eps)

    def recurse(f: Callable[..., Any], args: tuple[Any, ...], level: int, path: str) -> None:
        def label(mode: str, kind: str) -> tuple[str, str]:
            name = f"{kind} of {path}" if path else kind
            return f"check_grads: order {level}, mode {mode!r} ({name})", name

        if "fwd" in modes:
            msg, name = label("fwd", "JVP")
            check_jvp(f, functools.partial(_jvp, f), args, err_msg=msg, **kw)
            if level < order:
                recurse(functools.partial(_jvp, f), (args, args), level + 1, name)
        if "rev" in modes:
            msg, name = label("rev", "VJP")
            check_vjp(f, functools.partial(_vjp, f), args, err_msg=msg, **kw)
            if level < order:
                def f_vjp(*primals: Any) -> Any:
                    out, vjp_fun = _vjp(f, *primals)
                    return vjp_fun(out)
                recurse(f_vjp, args, level + 1, name)
        if "lin" in modes:
            msg, name = label("lin", "linearized JVP")
            check_jvp(f, functools.partial(_jvp_from_linearize, f), args, err_msg=msg, **kw)
            if level < order:
                recurse(functools.partial(_jvp_from_linearize, f), (args, args), level + 1,
                        name)

    recurse(f, args, 1, "")


def _jvp_from_linearize(f: Callable[..., Any], primals: Sequence[Any],
                        tangents: Sequence[Any]) -> tuple[Any, Any]:
    out, f_jvp = _linearize(f, *primals)
    return out, f_jvp(*tangents)


__all__ = ["EPS", "DEFAULT_TOLERANCE", "GRADIENT_TOLERANCE", "tolerance", "check_close",
           "numerical_jvp", "check_jvp", "check_vjp", "check_grads"]
