"""``fgrad.numpy.linalg``: ``norm``, ``solve``, ``inv``, ``det``, ``slogdet``, ``cholesky``.

Everything here is built from three primitives (``fgrad/primitives/linalg.py``):
``lu``, ``triangular_solve`` and ``dot_general``, so derivatives of every
order come from their rules. The conventions follow ``jax.numpy.linalg``:

* ``solve(a, b)`` treats a 1-D ``b`` as one vector (for every matrix in the
  batch ``a``) and any other ``b`` as a batch of [m, k] matrices whose
  leading axes broadcast against ``a``'s. ``inv(a)`` is ``solve(a, I)``.
  Singular matrices give inf/nan, not an error.
* ``det`` uses closed forms for 2x2 and 3x3 matrices and the LU
  factorization otherwise. For n >= 4 its derivative is a custom rule,
  ``trace(adj(a) ȧ)`` computed by a *cofactor solve*, which (as in JAX)
  stays finite for singular matrices, where ``det(a) * inv(a)`` would not.
* ``slogdet`` returns ``(sign, logabsdet)``; the sign has zero derivative.
* ``norm``'s derivative at zero follows from its formula, as in JAX: the
  2-norm's gradient at the zero vector is NaN (``sqrt``'s slope is infinite).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fgrad.numpy._linalg_ops import diagonal, trace
from fgrad.numpy._util import broadcast_shapes, normalize_axis, promote_to_inexact
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import linalg as _lin
from fgrad.primitives import reductions as _red
from fgrad.primitives import shape as _shape
from fgrad.primitives.custom_derivatives import custom_jvp


class SlogdetResult(NamedTuple):
    """``slogdet``'s result: ``det = sign * exp(logabsdet)``."""

    sign: Any
    logabsdet: Any


def _check_square(op: str, a: Any) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{op}: argument must have shape [..., n, n], got "
                         f"{a.aval.str_short()}")


def _broadcast_to(x: Any, shape: tuple[int, ...]) -> Any:
    if x.shape == shape:
        return x
    return _shape.broadcast_in_dim(x, shape, tuple(range(len(shape) - x.ndim, len(shape))))


def _const(x: Any, value: float) -> Any:
    return _shape.full_like(x, value)


# --- cholesky -----------------------------------------------------------------------------------

def cholesky(a: Any, *, upper: bool = False, symmetrize_input: bool = True) -> Any:
    """Cholesky factor of positive-definite matrices: ``a = L Lᵀ`` (or ``Uᵀ U`` if ``upper``).

    Non-positive-definite matrices give NaN.
    """
    (a,) = promote_to_inexact(a, op="linalg.cholesky")
    _check_square("linalg.cholesky", a)
    L = _lin.cholesky(a, symmetrize_input=symmetrize_input)
    return _lin._T(L) if upper else L


# --- solve, inv ---------------------------------------------------------------------------------

def _lu_solve(lu: Any, permutation: Any, b: Any) -> Any:
    """Solve ``a x = b`` from ``a``'s LU factors; b is [..., m, k] with lu's batch axes."""
    x = _lin._matmul(_lin._permutation_matrix(permutation, b.dtype), b)  # rows of b, permuted
    x = _lin.triangular_solve(lu, x, left_side=True, lower=True, unit_diagonal=True)
    return _lin.triangular_solve(lu, x, left_side=True, lower=False)


def solve(a: Any, b: Any) -> Any:
    """Solve ``a @ x = b`` for x; ``a`` is [..., m, m], ``b`` is [m] or [..., m, k].

    >>> import fgrad.numpy as fnp
    >>> solve(fnp.array([[2.0, 0.0], [0.0, 4.0]]), fnp.array([2.0, 2.0]))
    Array([1. , 0.5], dtype=float32)
    """
    a, b = promote_to_inexact(a, b, op="linalg.solve")
    if a.ndim < 2:
        raise ValueError(f"linalg.solve: left hand array must be at least two dimensional; "
                         f"got {a.aval.str_short()}")
    _check_square("linalg.solve", a)
    m = a.shape[-1]
    if b.ndim > 1 and a.ndim == b.ndim + 1 and m == b.shape[-1] and m != b.shape[-2]:
        raise ValueError(f"linalg.solve: invalid shapes {a.aval.str_short()} and "
                         f"{b.aval.str_short()}: a batch of vectors b needs a trailing axis "
                         "(solve(a, b[..., None])[..., 0]), as in JAX")
    vector = b.ndim == 1
    if b.ndim == 0 or b.shape[0 if vector else -2] != m:
        raise ValueError(f"linalg.solve: shapes {a.aval.str_short()} and "
                         f"{b.aval.str_short()} are incompatible: b must be [{m}] or "
                         f"[..., {m}, k]")
    batch = a.shape[:-2] if vector else broadcast_shapes(a.shape[:-2], b.shape[:-2],
                                                          op="linalg.solve")
    if vector:
        b = _shape.broadcast_in_dim(b, (*batch, m, 1), (len(batch),))
    a = _broadcast_to(a, (*batch, m, m))
    b = _broadcast_to(b, (*batch, *b.shape[-2:]))
    lu, _, permutation = _lin.lu(a)
    x = _lu_solve(lu, permutation, b)
    return _shape.squeeze(x, (x.ndim - 1,)) if vector else x


def inv(a: Any) -> Any:
    """Inverse of each matrix in ``a`` ([..., n, n]), as ``solve(a, I)``."""
    (a,) = promote_to_inexact(a, op="linalg.inv")
    _check_square("linalg.inv", a)
    n = a.shape[-1]
    eye = _lin._const_like(np.eye(n, dtype=a.dtype), a)
    return solve(a, eye)


# --- determinants ------------------------------------------------------------------------------

def _entry(a: Any, i: int, j: int) -> Any:
    """``a[..., i, j]``."""
    nb = a.ndim - 2
    out = _shape.slice(a, (0,) * nb + (i, j), (*a.shape[:-2], i + 1, j + 1))
    return _shape.reshape(out, a.shape[:-2])


def _det_2x2(a: Any) -> Any:
    e = lambda i, j: _entry(a, i, j)  # noqa: E731
    return _ew.sub(_ew.mul(e(0, 0), e(1, 1)), _ew.mul(e(0, 1), e(1, 0)))


def _det_3x3(a: Any) -> Any:
    e = lambda i, j: _entry(a, i, j)  # noqa: E731
    m3 = lambda x, y, z: _ew.mul(_ew.mul(x, y), z)  # noqa: E731
    out = _ew.add(_ew.add(m3(e(0, 0), e(1, 1), e(2, 2)), m3(e(0, 1), e(1, 2), e(2, 0))),
                  m3(e(0, 2), e(1, 0), e(2, 1)))
    out = _ew.sub(out, m3(e(0, 2), e(1, 1), e(2, 0)))
    out = _ew.sub(out, m3(e(0, 0), e(1, 2), e(2, 1)))
    return _ew.sub(out, m3(e(0, 1), e(1, 0), e(2, 2)))


def _pivot_parity(pivots: Any) -> Any:
    """Number of actual row swaps (int32) in LAPACK's pivot sequence."""
    iota = _shape.broadcasted_iota(np.int32, pivots.shape, pivots.ndim - 1)
    swaps = _ew.convert_element_type(_ew.ne(pivots, iota), np.int32)
    return _red.reduce_sum(swaps, (pivots.ndim - 1,))


def _slogdet_lu(a: Any) -> tuple[Any, Any]:
    lu, pivots, _ = _lin.lu(a)
    diag = diagonal(lu, 0, -2, -1)
    last = (diag.ndim - 1,)
    is_zero = _red.reduce_or(_ew.eq(diag, _const(diag, 0)), last)
    negatives = _red.reduce_sum(_ew.convert_element_type(_ew.lt(diag, _const(diag, 0)),
                                                         np.int32), last)
    parity = _ew.add(_pivot_parity(pivots), negatives)
    odd = _ew.eq(_ew.rem(parity, _shape.full_like(parity, 2)), _shape.full_like(parity, 1))
    ones = _shape.full(is_zero.shape, 1, a.dtype)
    sign = _ew.select_n(odd, ones, _ew.neg(ones))
    sign = _ew.select_n(is_zero, sign, _shape.full(is_zero.shape, 0, a.dtype))
    logdet = _red.reduce_sum(_ew.log(_ew.abs(diag)), last)
    logdet = _ew.select_n(is_zero, logdet, _shape.full(is_zero.shape, -np.inf, a.dtype))
    return sign, logdet


def slogdet(a: Any) -> SlogdetResult:
    """Sign and natural log of the absolute determinant, ``SlogdetResult(sign, logabsdet)``.

    >>> import fgrad.numpy as fnp
    >>> slogdet(fnp.array([[1.0, 2.0], [3.0, 4.0]])).sign
    Array(-1., dtype=float32)
    """
    (a,) = promote_to_inexact(a, op="linalg.slogdet")
    _check_square("linalg.slogdet", a)
    n = a.shape[-1]
    if n in (1, 2):  # closed forms, as JAX
        det = _entry(a, 0, 0) if n == 1 else _det_2x2(a)
        return SlogdetResult(_ew.sign(det), _ew.log(_ew.abs(det)))
    return SlogdetResult(*_slogdet_lu(a))


def _cofactor_solve(a: Any, b: Any) -> tuple[Any, Any]:
    """``(det(a), adj(a) @ b)``, finite even where ``a`` is singular (JAX's algorithm).

    With ``P a = L U``, ``det(a) a⁻¹ b = ±prod(diag U) U⁻¹ L⁻¹ P b``. If ``a``
    has rank n-1, only ``U``'s last diagonal entry is 0: replacing it by
    ``1 / prod(other diagonal entries)`` and scaling all but the last row of
    ``L⁻¹ P b`` by ``det(a)`` gives the adjugate product without dividing by
    zero. For rank < n-1 the adjugate is 0: such matrices are detected by the
    modified solve producing non-finite values, and zeroed.
    """
    n = a.shape[-1]
    if n == 0:  # the empty product: det = 1, adj = the empty matrix
        return _shape.full(a.shape[:-2], 1, a.dtype), b
    if n == 1:
        return _entry(a, 0, 0), b
    lu, pivots, permutation = _lin.lu(a)
    diag = diagonal(lu, 0, -2, -1)
    last = diag.ndim - 1
    parity = _ew.rem(_pivot_parity(pivots), _shape.full(pivots.shape[:-1], 2, np.int32))
    sign = _ew.convert_element_type(_ew.sub(_shape.full(parity.shape, 1, np.int32),
                                            _ew.add(parity, parity)), a.dtype)
    leading = _shape.slice_in_dim(diag, 0, n - 1, axis=last)
    partial_det = _ew.mul(_red.reduce_prod(leading, (last,)), sign)   # det(a) / U[n-1, n-1]
    full_det = _ew.mul(partial_det, _shape.reshape(_shape.slice_in_dim(diag, n - 1, n,
                                                                      axis=last), sign.shape))
    corner = np.zeros((n, n), bool)
    corner[-1, -1] = True
    inv_partial = _ew.div(_shape.full_like(partial_det, 1), partial_det)
    lu = _ew.select_n(_lin._const_like(corner, lu), lu,
                      _shape.broadcast_in_dim(inv_partial, lu.shape, tuple(range(last))))
    probe = _lin.triangular_solve(lu, _shape.full(lu.shape[:-1], 1, a.dtype), left_side=True,
                                  lower=False)
    degenerate = _red.reduce_or(_ew.bitwise_not(_ew.is_finite(probe)), (last,))
    degenerate = _shape.broadcast_in_dim(degenerate, b.shape, tuple(range(last)))
    zeros = _shape.full_like(b, 0)
    x = _ew.select_n(degenerate, b, zeros)
    x = _lin._matmul(_lin._permutation_matrix(permutation, a.dtype), x)
    x = _lin.triangular_solve(lu, x, left_side=True, lower=True, unit_diagonal=True)
    last_row = np.zeros((n, b.shape[-1]), bool)
    last_row[-1, :] = True
    scale = _ew.select_n(_lin._const_like(last_row, x),
                         _shape.broadcast_in_dim(full_det, x.shape, tuple(range(last))),
                         _shape.full_like(x, 1))
    x = _lin.triangular_solve(lu, _ew.mul(x, scale), left_side=True, lower=False)
    return full_det, _ew.select_n(degenerate, x, zeros)


@custom_jvp
def _det_lu(a: Any) -> Any:
    sign, logdet = _slogdet_lu(a)
    return _ew.mul(sign, _ew.exp(logdet))


@_det_lu.defjvp
def _det_lu_jvp(primals: Any, tangents: Any) -> Any:
    (a,), (a_dot,) = primals, tangents
    det, adj_a_dot = _cofactor_solve(a, a_dot)
    return det, trace(adj_a_dot, 0, -2, -1)  # d det = trace(adj(a) ȧ)


def det(a: Any) -> Any:
    """Determinant of each matrix in ``a`` ([..., n, n]).

    >>> import fgrad.numpy as fnp
    >>> det(fnp.array([[1.0, 2.0], [3.0, 4.0]]))
    Array(-2., dtype=float32)
    """
    (a,) = promote_to_inexact(a, op="linalg.det")
    _check_square("linalg.det", a)
    n = a.shape[-1]
    if n == 2:
        return _det_2x2(a)
    if n == 3:
        return _det_3x3(a)
    return _det_lu(a)


# --- norm --------------------------------------------------------------------------------------

def _reduce(x: Any, op: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """Strict reduction ``op`` over ``axes`` with numpy's ``keepdims``."""
    out = op(x, axes)
    if keepdims:
        out = _shape.reshape(out, tuple(1 if i in axes else d for i, d in enumerate(x.shape)))
    return out


def _sum(x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    return _reduce(x, _red.reduce_sum, axes, keepdims)


def _amax0(x: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """max over ``axes`` with ``initial=0`` (so an empty reduction gives 0), as JAX's norm."""
    out = _reduce(x, _red.reduce_max, axes, keepdims)
    return _ew.max(out, _const(out, 0))


def _vector_norm(x: Any, ord: Any, axes: tuple[int, ...], keepdims: bool) -> Any:  # noqa: A002
    if ord is None or ord == 2:
        return _ew.sqrt(_sum(_ew.mul(x, x), axes, keepdims))
    if isinstance(ord, str):
        raise ValueError(f"linalg.norm: invalid order {ord!r} for a vector norm (use "
                         "fgrad.numpy.inf for the max-norm)")
    abs_x = _ew.abs(x)
    if ord == np.inf:
        return _amax0(abs_x, axes, keepdims)
    if ord == -np.inf:
        return _reduce(abs_x, _red.reduce_min, axes, keepdims)
    if ord == 0:
        return _sum(_ew.convert_element_type(_ew.ne(x, _const(x, 0)), x.dtype), axes, keepdims)
    if ord == 1:
        return _sum(abs_x, axes, keepdims)
    # NOTE: pow with a float exponent (not integer_pow), as JAX's norm does.
    total = _sum(_ew.pow(abs_x, _const(abs_x, float(ord))), axes, keepdims)
    return _ew.pow(total, _const(total, 1.0 / float(ord)))


def _matrix_norm(x: Any, ord: Any, row: int, col: int, keepdims: bool) -> Any:  # noqa: A002
    if ord is None or ord in ("f", "fro"):
        return _ew.sqrt(_sum(_ew.mul(x, x), tuple(sorted((row, col))), keepdims))
    if ord == "nuc" or (not isinstance(ord, str) and ord in (2, -2)):
        raise NotImplementedError(f"linalg.norm: ord={ord!r} needs singular values (svd), "
                                  "which fgrad does not provide yet")
    if ord in (1, -1):      # max / min over columns of the column sums
        summed, other = row, col
    elif ord in (np.inf, -np.inf):  # max / min over rows of the row sums
        summed, other = col, row
    else:
        raise ValueError(f"linalg.norm: invalid order {ord!r} for a matrix norm")
    sums = _sum(_ew.abs(x), (summed,), keepdims)
    if not keepdims and other > summed:
        other -= 1
    if ord > 0:
        return _amax0(sums, (other,), keepdims)
    return _reduce(sums, _red.reduce_min, (other,), keepdims)


def norm(x: Any, ord: Any = None, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A002
    """Vector or matrix norm (``numpy.linalg.norm``).

    One axis: vector norms (``ord`` None/2, 1, inf, -inf, 0, or any p).
    Two axes: matrix norms (``ord`` None/'fro', 1, -1, inf, -inf). With
    ``axis=None`` and ``ord=None``, the 2-norm of the flattened array.

    >>> import fgrad.numpy as fnp
    >>> norm(fnp.array([3.0, 4.0]))
    Array(5., dtype=float32)
    """
    (x,) = promote_to_inexact(x, op="linalg.norm")
    if axis is None:
        if ord is None:
            return _ew.sqrt(_sum(_ew.mul(x, x), tuple(range(x.ndim)), keepdims))
        axes = tuple(range(x.ndim))
    elif isinstance(axis, (tuple, list)):
        axes = tuple(normalize_axis(a, x.ndim, "linalg.norm") for a in axis)
    else:
        axes = (normalize_axis(axis, x.ndim, "linalg.norm"),)
    if len(axes) == 1:
        return _vector_norm(x, ord, axes, keepdims)
    if len(axes) == 2:
        if axes[0] == axes[1]:
            raise ValueError(f"linalg.norm: duplicate axes {axis}")
        return _matrix_norm(x, ord, axes[0], axes[1], keepdims)
    raise ValueError(f"linalg.norm: improper number of axes {axis} for "
                     f"{x.aval.str_short()}: pass one axis for a vector norm or two for a "
                     "matrix norm")


__all__ = ["norm", "solve", "inv", "det", "slogdet", "cholesky", "SlogdetResult"]
