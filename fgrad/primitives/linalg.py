"""Linear-algebra primitives: ``dot_general``, ``cholesky``, ``triangular_solve``, ``lu``.

``dot_general`` is the one contraction primitive: ``matmul``, ``dot``,
``tensordot`` and ``einsum`` in ``fgrad.numpy`` all lower to it. Its
``dimension_numbers = ((lhs_contracting, rhs_contracting), (lhs_batch,
rhs_batch))`` name the axes to sum over and the axes to pair up; the output
axes are the batch axes, then lhs's remaining ("free") axes, then rhs's. It
is bilinear, so its JVP is ``dot(ẋ, y) + dot(x, ẏ)`` and it has one transpose
rule per operand, derived below from the dimension numbers alone.

The factorizations follow ``jax.lax.linalg``: every operand is a batch of
matrices ``[..., m, n]`` (leading batch axes must agree exactly; no
broadcasting here). ``cholesky`` returns the lower factor (NaN where the
matrix is not positive definite), ``triangular_solve`` reads only the
indicated triangle of ``a`` and is linear in ``b``, and ``lu`` is LAPACK's
partially pivoted ``P A = L U`` returning ``(lu, pivots, permutation)``.
Their derivative rules are written with fgrad's own strict ops, so they can
be differentiated again. Strict: operands have equal dtypes; 16-bit floats
are computed in float32 and rounded back, as XLA does on CPU.

Batching (vmap): ``dot_general`` never broadcasts an unbatched operand. With
both operands batched the vmapped axis becomes one more dot_general batch
axis; with one batched it is simply one more *free* axis of that operand
(free axes pass through to the output untouched). The factorizations
already work on leading batch axes, so the vmapped axis is kept where it is
when it is leading, else moved to the front. ``triangular_solve`` with only
``b`` batched folds the batch into b's right-hand-side axis (the columns
when ``left_side``, the rows otherwise): solving for more right-hand sides
at once is the same solve, with ``a`` left unbroadcast.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import scipy.linalg

from fgrad.core import dtypes
from fgrad.core.ad_util import Zero
from fgrad.core.array import Array
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import shape as _shape
from fgrad.primitives.rules import check_kind, defbilinear, defjvp2, FLOAT, standard_primitive
from fgrad.transforms.vmap import moveaxis

DimensionNumbers = tuple[tuple[tuple[int, ...], tuple[int, ...]],
                         tuple[tuple[int, ...], tuple[int, ...]]]


_F32_FOR_16BIT = {np.dtype(np.float16): np.dtype(np.float32),
                  np.dtype(dtypes.bfloat16): np.dtype(np.float32)}


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    """numpy/LAPACK have no (fast) 16-bit float kernels: compute those in float32."""
    return _F32_FOR_16BIT.get(dtype, dtype)


# --- dot_general -------------------------------------------------------------------------

def dot_general(lhs: Any, rhs: Any, dimension_numbers: Any, precision: Any = None,
                preferred_element_type: Any = None) -> Any:
    """General tensor contraction (``jax.lax.dot_general``).

    ``dimension_numbers = ((lhs_contracting, rhs_contracting), (lhs_batch,
    rhs_batch))``. Output axes: batch axes, then lhs's free axes, then rhs's
    free axes (each in their original order). ``lhs`` and ``rhs`` must have
    the same dtype; ``preferred_element_type`` sets the output (and
    accumulation) dtype. ``precision`` is accepted for JAX compatibility and
    ignored (numpy always computes at full precision).

    >>> import numpy as np
    >>> dot_general(np.ones((2, 3), np.float32), np.ones((3, 4), np.float32),
    ...             (((1,), (0,)), ((), ()))).shape
    (2, 4)
    """
    dn = _canonical_dimension_numbers(dimension_numbers)
    pet = None if preferred_element_type is None else dtypes.canonicalize_dtype(
        preferred_element_type)
    return dot_general_p.bind(lhs, rhs, dimension_numbers=dn, precision=_hashable(precision),
                              preferred_element_type=pet)


def _int_tuple(xs: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in (xs if isinstance(xs, (tuple, list, np.ndarray)) else (xs,)))


def _canonicalize_dimension_numbers(dimension_numbers: Any) -> DimensionNumbers:
    (lc, rc), (lb, rb) = dimension_numbers
    return ((_int_tuple(lc), _int_tuple(rc)), (_int_tuple(lb), _int_tuple(rb)))


_canonical_dn_cache: dict[Any, DimensionNumbers] = {}


def _canonical_dimension_numbers(dimension_numbers: Any) -> DimensionNumbers:
    """``_canonicalize_dimension_numbers``, memoized by the given value: a model calls
    dot_general with a handful of distinct dimension numbers, over and over."""
    try:
        dn = _canonical_dn_cache.get(dimension_numbers)
    except TypeError:  # unhashable (lists, arrays): canonicalize every time
        return _canonicalize_dimension_numbers(dimension_numbers)
    if dn is None:
        dn = _canonicalize_dimension_numbers(dimension_numbers)
        if len(_canonical_dn_cache) < 4096:
            _canonical_dn_cache[dimension_numbers] = dn
    return dn


def _hashable(x: Any) -> Any:
    return tuple(x) if isinstance(x, list) else x


def _free_axes(ndim: int, contracting: Sequence[int], batch: Sequence[int]) -> list[int]:
    """The axes that are neither contracted nor batched, in order."""
    return [i for i in range(ndim) if i not in contracting and i not in batch]


def _dot_general_impl(lhs: np.ndarray, rhs: np.ndarray, *, dimension_numbers: DimensionNumbers,
                      precision: Any, preferred_element_type: Any) -> np.ndarray:
    (lc, rc), (lb, rb) = dimension_numbers
    out_dtype = lhs.dtype if preferred_element_type is None else preferred_element_type
    compute = _compute_dtype(out_dtype)
    if lhs.dtype != compute:
        lhs, rhs = lhs.astype(compute), rhs.astype(compute)
    if not lb and len(lc) == 1 and lhs.ndim == 2 and rhs.ndim == 2:
        # A product of two matrices (possibly transposed: the transpose rules below
        # produce those): transposes are views, and no layout work is needed at all.
        out = np.matmul(lhs if lc[0] == 1 else lhs.T, rhs if rc[0] == 0 else rhs.T)
    else:
        out = _contract(lhs, rhs, lc, rc, lb, rb)
    return out if out.dtype == out_dtype else out.astype(out_dtype)


def _contract(lhs: np.ndarray, rhs: np.ndarray, lc: tuple[int, ...], rc: tuple[int, ...],
              lb: tuple[int, ...], rb: tuple[int, ...]) -> np.ndarray:
    # Lay both operands out as stacks of matrices, (B, M, K) @ (B, K, N), and let
    # np.matmul (BLAS for floats) do the work. Transposes are views; the reshapes
    # copy only when the layout demands it (never for plain or batched matmul).
    lf, rf = _free_axes(lhs.ndim, lc, lb), _free_axes(rhs.ndim, rc, rb)
    batch_shape = tuple(lhs.shape[i] for i in lb)
    lf_shape, rf_shape = tuple(lhs.shape[i] for i in lf), tuple(rhs.shape[i] for i in rf)
    k = math.prod(lhs.shape[i] for i in lc)
    m, n = math.prod(lf_shape), math.prod(rf_shape)
    x = lhs.transpose(*lb, *lf, *lc)
    y = rhs.transpose(*rb, *rc, *rf)
    if lb:
        x = x.reshape(math.prod(batch_shape), m, k)
        y = y.reshape(math.prod(batch_shape), k, n)
    else:
        x, y = x.reshape(m, k), y.reshape(k, n)
    # With nothing to contract (k == 1: an outer product, e.g. per-example weight
    # gradients under vmap) a broadcast multiply beats a matmul of inner size 1.
    out = x * y if not lc else np.matmul(x, y)
    return out.reshape(batch_shape + lf_shape + rf_shape)


def _dot_general_shape(lhs: ShapedArray, rhs: ShapedArray, *,
                       dimension_numbers: DimensionNumbers, precision: Any,
                       preferred_element_type: Any) -> tuple[int, ...]:
    (lc, rc), (lb, rb) = dimension_numbers

    def fail(why: str) -> FgradTypeError:
        return FgradTypeError(f"dot_general: {why}, for lhs {lhs.str_short()} and rhs "
                              f"{rhs.str_short()} with dimension_numbers={dimension_numbers}")

    for name, aval, dims in (("lhs", lhs, lc + lb), ("rhs", rhs, rc + rb)):
        if any(not 0 <= d < aval.ndim for d in dims):
            raise fail(f"{name} dimension numbers must be in [0, {aval.ndim})")
        if len(set(dims)) != len(dims):
            raise fail(f"{name} contracting and batch dimensions must be distinct")
    if len(lc) != len(rc) or len(lb) != len(rb):
        raise fail("lhs and rhs must have equally many contracting and batch dimensions")
    if [lhs.shape[i] for i in lb] != [rhs.shape[i] for i in rb]:
        raise fail(f"batch dimensions differ: {[lhs.shape[i] for i in lb]} and "
                   f"{[rhs.shape[i] for i in rb]}")
    if [lhs.shape[i] for i in lc] != [rhs.shape[i] for i in rc]:
        raise fail(f"contracting dimensions differ: {[lhs.shape[i] for i in lc]} and "
                   f"{[rhs.shape[i] for i in rc]}")
    return (tuple(lhs.shape[i] for i in lb)
            + tuple(lhs.shape[i] for i in _free_axes(lhs.ndim, lc, lb))
            + tuple(rhs.shape[i] for i in _free_axes(rhs.ndim, rc, rb)))


def _dot_general_dtype(lhs: ShapedArray, rhs: ShapedArray, *, preferred_element_type: Any,
                       **_: Any) -> np.dtype:
    if lhs.dtype != rhs.dtype:
        raise FgradTypeError(f"dot_general: operands must have equal dtypes, got "
                             f"{lhs.str_short()} and {rhs.str_short()} (fgrad.numpy "
                             "promotes; fgrad.lax is strict)")
    if preferred_element_type is None:
        return lhs.dtype
    pet = np.dtype(preferred_element_type)
    if not dtypes.is_float(lhs.dtype) and pet.itemsize < lhs.dtype.itemsize:
        raise FgradTypeError(f"dot_general: preferred_element_type {pet.name} must not be "
                             f"narrower than the operands' dtype {lhs.dtype.name}")
    return pet


# The transpose rules. Write the contraction as out = dot(x, y) with, for x,
# its batch axes xb, contracting axes xc and free axes xf (likewise yb, yc, yf
# for y). The output's axes are [batch | x free | y free]. The cotangent of x
# pairs each entry of ct with the y entries it was multiplied by:
#
#     ct_x[b, f, c] = sum over y's free axes of  ct[b, f, g] * y[b, c, g]
#
# which is itself one dot_general of (ct, y): batch ct's batch axes with yb,
# contract ct's "y free" axes with yf. Its output axes come out as
# [batch | x free | y's contracting axes, in y's axis order]; a final transpose
# puts them back in x's axis order (the contracting axes of x listed in the
# order of their partners in y).

def _dot_transpose_operand(ct: Any, other: Any, x_aval: ShapedArray, x_contract: tuple[int, ...],
                           x_batch: tuple[int, ...], y_contract: tuple[int, ...],
                           y_batch: tuple[int, ...], x_is_lhs: bool,
                           preferred_element_type: Any, precision: Any) -> Any:
    if preferred_element_type is not None and other.dtype != ct.dtype:
        # ct has the preferred (wider) dtype: lift the other operand to it, as
        # JAX's mixed-dtype dot does, and round the result back to x's dtype.
        other = _ew.convert_element_type(other, ct.dtype)
    swap, dims, perm = _transpose_plan(x_aval.ndim, np.ndim(other), x_contract, x_batch,
                                       y_contract, y_batch, x_is_lhs)
    operands = (other, ct) if swap else (ct, other)
    out = dot_general_p.bind(*operands, dimension_numbers=dims, precision=precision,
                             preferred_element_type=None)
    if perm is not None:
        out = _shape.transpose(out, perm)
    if out.dtype != x_aval.dtype:
        out = _ew.convert_element_type(out, x_aval.dtype)
    return out


@functools.lru_cache(maxsize=4096)
def _transpose_plan(x_ndim: int, y_ndim: int, x_contract: tuple[int, ...],
                    x_batch: tuple[int, ...], y_contract: tuple[int, ...],
                    y_batch: tuple[int, ...], x_is_lhs: bool
                    ) -> tuple[bool, DimensionNumbers, tuple[int, ...] | None]:
    """How to compute ct_x: ``(swap, dims, perm)`` meaning ``dot_general(ct, y, dims)``
    (``(y, ct)`` if ``swap``), then transposed by ``perm`` unless it is None.

    It depends on the axis numbers only, so it is worked out once per signature.
    """
    x_free = _free_axes(x_ndim, x_contract, x_batch)
    y_free = _free_axes(y_ndim, y_contract, y_batch)
    nb = len(x_batch)
    # Where y's free axes sit in ct = [batch | lhs free | rhs free].
    first = nb + (len(x_free) if x_is_lhs else 0)
    ct_y_free = tuple(range(first, first + len(y_free)))
    # Axes of the product, named by the x axis each corresponds to.
    x_contract_by_y = [x_contract[i] for i in sorted(range(len(y_contract)),
                                                     key=y_contract.__getitem__)]
    x_axes_of_out = list(x_batch) + x_free + x_contract_by_y
    swapped_axes = list(x_batch) + x_contract_by_y + x_free
    if sorted(swapped_axes) == swapped_axes and x_axes_of_out != swapped_axes:
        # Multiplying in the other order yields x's axis order directly (e.g. the
        # weight gradient hᵀ·ct of h @ W): no transpose after the product.
        return True, ((tuple(y_free), ct_y_free), (tuple(y_batch), tuple(range(nb)))), None
    dims = ((ct_y_free, tuple(y_free)), (tuple(range(nb)), tuple(y_batch)))
    perm = tuple(sorted(range(len(x_axes_of_out)), key=x_axes_of_out.__getitem__))
    return False, dims, None if perm == tuple(range(len(perm))) else perm


def _dot_general_transpose_lhs(ct: Any, x: Any, y: Any, *, dimension_numbers: DimensionNumbers,
                               precision: Any, preferred_element_type: Any) -> Any:
    (xc, yc), (xb, yb) = dimension_numbers
    return _dot_transpose_operand(ct, y, x.aval, xc, xb, yc, yb, True,
                                  preferred_element_type, precision)


def _dot_general_transpose_rhs(ct: Any, x: Any, y: Any, *, dimension_numbers: DimensionNumbers,
                               precision: Any, preferred_element_type: Any) -> Any:
    (xc, yc), (xb, yb) = dimension_numbers  # the roles swap: y is the unknown operand
    return _dot_transpose_operand(ct, x, y.aval, yc, yb, xc, xb, False,
                                  preferred_element_type, precision)


def _bump(axes: Sequence[int], bdim: int) -> tuple[int, ...]:
    """Axis numbers of an unbatched operand, renumbered for the operand with its batch axis."""
    return tuple(a + (a >= bdim) for a in axes)


def _dot_general_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                       dimension_numbers: DimensionNumbers, precision: Any,
                       preferred_element_type: Any) -> tuple[Any, int]:
    lhs, rhs = vals
    lbd, rbd = dims
    (lc, rc), (lb, rb) = dimension_numbers
    if lbd is not None and rbd is not None:
        # Both vary: pair the two vmapped axes as one more (the first) batch axis.
        dn = ((_bump(lc, lbd), _bump(rc, rbd)), ((lbd, *_bump(lb, lbd)), (rbd, *_bump(rb, rbd))))
        out_dim = 0
    elif lbd is not None:
        # Only lhs varies: its vmapped axis is one more lhs free axis, landing after the
        # batch axes and after the lhs free axes that precede it. rhs is not broadcast.
        free = _free_axes(lhs.ndim - 1, lc, lb)
        dn = ((_bump(lc, lbd), rc), (_bump(lb, lbd), rb))
        out_dim = len(lb) + sum(a < lbd for a in free)
    else:
        assert rbd is not None
        free = _free_axes(rhs.ndim - 1, rc, rb)
        dn = ((lc, _bump(rc, rbd)), (lb, _bump(rb, rbd)))
        out_dim = len(lb) + len(_free_axes(lhs.ndim, lc, lb)) + sum(a < rbd for a in free)
    out = dot_general_p.bind(lhs, rhs, dimension_numbers=dn, precision=precision,
                             preferred_element_type=preferred_element_type)
    return out, out_dim


dot_general_p = standard_primitive("dot_general", _dot_general_impl, _dot_general_shape,
                                   _dot_general_dtype)
defbilinear(dot_general_p, _dot_general_transpose_lhs, _dot_general_transpose_rhs)
dot_general_p.def_batch(_dot_general_batch)


# --- helpers for the factorizations' rules (strict fgrad ops on [..., m, n] batches) ----

def _T(x: Any) -> Any:
    """Swap the last two axes."""
    nd = x.ndim
    return _shape.transpose(x, (*range(nd - 2), nd - 1, nd - 2))


def _matmul(x: Any, y: Any) -> Any:
    """Batched matrix product over equal leading batch axes."""
    nb = x.ndim - 2
    batch = tuple(range(nb))
    return dot_general(x, y, (((nb + 1,), (nb,)), (batch, batch)))


def _const_like(mask: np.ndarray, x: Any) -> Any:
    """A numpy matrix broadcast over x's batch axes (a constant of the computation)."""
    nd = x.ndim
    return _shape.broadcast_in_dim(Array(mask), x.shape[:-2] + mask.shape, (nd - 2, nd - 1))


def _keep(x: Any, mask: np.ndarray) -> Any:
    """x where ``mask`` (an [m, n] bool matrix) is true, else 0 (select, so NaN-safe)."""
    return _ew.select_n(_const_like(mask, x), _shape.full_like(x, 0), x)


def _tril(x: Any, k: int = 0) -> Any:
    m, n = x.shape[-2:]
    return _keep(x, np.tri(m, n, k, dtype=bool))


def _triu(x: Any, k: int = 0) -> Any:
    m, n = x.shape[-2:]
    return _keep(x, ~np.tri(m, n, k - 1, dtype=bool))


def _eye_like(x: Any, m: int, n: int, k: int = 0) -> Any:
    return _const_like(np.eye(m, n, k, dtype=x.dtype), x)


def _check_matrices(op: str, *avals: ShapedArray, square: bool = True) -> None:
    check_kind(op, FLOAT, *avals)
    for aval in avals:
        if aval.ndim < 2 or (square and aval.shape[-1] != aval.shape[-2]):
            what = "a batch of square matrices [..., n, n]" if square else \
                "a batch of matrices [..., m, n]"
            raise FgradTypeError(f"{op}: expected {what}, got {aval.str_short()}")


def _leading_bdim(x: Any, bdim: int) -> tuple[Any, int]:
    """``x`` with its batch axis among the leading (per-matrix batch) axes: kept where it
    is when it already is one, else moved to the front."""
    if bdim < x.ndim - 2:
        return x, bdim
    return moveaxis(x, bdim, 0), 0


def _with_bdim_at(x: Any, bdim: int | None, dst: int, axis_size: int) -> Any:
    """``x`` with its batch axis at ``dst``: moved, or created by broadcasting if unbatched."""
    if bdim is not None:
        return moveaxis(x, bdim, dst)
    shape = (*x.shape[:dst], axis_size, *x.shape[dst:])
    keep = tuple(i for i in range(len(shape)) if i != dst)
    return _shape.broadcast_in_dim(x, shape, keep)


def _per_matrix(x: np.ndarray) -> np.ndarray:
    """View a [..., m, n] array as a stack [B, m, n] (B = product of the batch axes)."""
    return x.reshape((int(np.prod(x.shape[:-2], dtype=np.int64)),) + x.shape[-2:])


# --- cholesky --------------------------------------------------------------------------------

def cholesky(x: Any, symmetrize_input: bool = True) -> Any:
    """Lower Cholesky factor ``L`` of each matrix in ``x`` ([..., n, n]), ``x = L Lᵀ``.

    With ``symmetrize_input`` (the default, as in JAX) ``x`` is first replaced
    by ``(x + xᵀ) / 2``, which makes the derivative symmetric; otherwise only
    the lower triangle is read. Matrices that are not positive definite give
    factors whose lower triangle is all NaN, as in JAX.
    """
    if symmetrize_input:
        x = _ew.mul(_ew.add(x, _T(x)), _shape.full_like(x, 0.5))
    return cholesky_p.bind(x)


def _cholesky_impl(x: np.ndarray) -> np.ndarray:
    mats = _per_matrix(x.astype(_compute_dtype(x.dtype)))
    out = np.zeros_like(mats)
    with np.errstate(all="ignore"):
        for i, mat in enumerate(mats):
            try:
                out[i] = np.linalg.cholesky(mat)
            except np.linalg.LinAlgError:
                # JAX's convention: a failed factorization is NaN (in the lower triangle).
                out[i] = np.tril(np.full(mat.shape, np.nan, mat.dtype))
    return out.reshape(x.shape).astype(x.dtype)


def _cholesky_shape(x: ShapedArray) -> tuple[int, ...]:
    _check_matrices("cholesky", x)
    return x.shape


def _cholesky_jvp(primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    # From x = L Lᵀ: L⁻¹ ẋ L⁻ᵀ = L⁻¹ L̇ + (L⁻¹ L̇)ᵀ, whose lower triangle with a
    # halved diagonal, Φ(·), is L⁻¹ L̇ (Murray 2016, arXiv:1602.07527). So
    # L̇ = L Φ(L⁻¹ ẋ L⁻ᵀ). ẋ is symmetric (the wrapper symmetrizes).
    (x,), (x_dot,) = primals, tangents
    L = cholesky_p.bind(x)
    n = x.shape[-1]
    tmp = triangular_solve(L, x_dot, left_side=False, lower=True, transpose_a=True)
    tmp = triangular_solve(L, tmp, left_side=True, lower=True)
    halve_diagonal = _const_like(np.ones((n, n), x.dtype) - 0.5 * np.eye(n, dtype=x.dtype), x)
    return L, _matmul(L, _ew.mul(_tril(tmp), halve_diagonal))


def _cholesky_batch(vals: Sequence[Any], dims: Sequence[int | None], *,
                    axis_size: int) -> tuple[Any, int]:
    x, bdim = _leading_bdim(vals[0], dims[0])  # type: ignore[arg-type]
    return cholesky_p.bind(x), bdim


cholesky_p = standard_primitive("cholesky", _cholesky_impl, _cholesky_shape,
                                lambda x: x.dtype)
cholesky_p.def_jvp(_cholesky_jvp)
cholesky_p.declare_missing("transpose", "not linear")
cholesky_p.def_batch(_cholesky_batch)


# --- triangular_solve --------------------------------------------------------------------

def triangular_solve(a: Any, b: Any, left_side: bool = False, lower: bool = False,
                     transpose_a: bool = False, conjugate_a: bool = False,
                     unit_diagonal: bool = False) -> Any:
    """Solve ``op(a) x = b`` (``left_side``) or ``x op(a) = b`` for triangular ``a``.

    ``a`` is [..., m, m]; only its ``lower`` (or upper) triangle is read, and
    its diagonal is taken as ones if ``unit_diagonal``. ``op(a)`` is ``aᵀ`` if
    ``transpose_a``. ``b`` is [..., m, n] (left side) or [..., n, m], with the
    same batch axes as ``a``; a ``b`` with one axis fewer than ``a`` is treated
    as a single vector, as in JAX. ``conjugate_a`` has no effect on real arrays.
    """
    singleton = b.ndim == a.ndim - 1
    if singleton:
        b = _shape.expand_dims(b, (b.ndim if left_side else b.ndim - 1,))
    out = triangular_solve_p.bind(a, b, left_side=bool(left_side), lower=bool(lower),
                                  transpose_a=bool(transpose_a),
                                  unit_diagonal=bool(unit_diagonal))
    if singleton:
        out = _shape.squeeze(out, (out.ndim - 1 if left_side else out.ndim - 2,))
    return out


def _triangular_solve_impl(a: np.ndarray, b: np.ndarray, *, left_side: bool, lower: bool,
                           transpose_a: bool, unit_diagonal: bool) -> np.ndarray:
    compute = _compute_dtype(b.dtype)
    out = np.zeros(b.shape, compute)
    if out.size == 0:
        return out.astype(b.dtype)
    # BLAS trsm: exactly the operation XLA's CPU backend performs; like XLA (and
    # unlike scipy's solve_triangular) it divides by a zero diagonal, giving inf/nan.
    trsm = scipy.linalg.blas.get_blas_funcs("trsm", dtype=compute)
    mats, rhss, outs = _per_matrix(a.astype(compute)), _per_matrix(b.astype(compute)), \
        _per_matrix(out)
    with np.errstate(all="ignore"):
        for i in range(len(rhss)):
            outs[i] = trsm(1.0, mats[i], rhss[i], side=0 if left_side else 1, lower=int(lower),
                           trans_a=int(transpose_a), diag=int(unit_diagonal))
    return outs.reshape(b.shape).astype(b.dtype)


def _triangular_solve_shape(a: ShapedArray, b: ShapedArray, *, left_side: bool, **_: Any
                            ) -> tuple[int, ...]:
    _check_matrices("triangular_solve", a, b, square=False)
    m = a.shape[-1]
    common = b.shape[-2] if left_side else b.shape[-1]
    if (a.shape[-2] != m or b.ndim != a.ndim or a.shape[:-2] != b.shape[:-2] or common != m
            or a.dtype != b.dtype):
        side = "[..., m, n] (left_side)" if left_side else "[..., n, m] (right side)"
        raise FgradTypeError(f"triangular_solve: a must be [..., m, m] and b {side} with the "
                             f"same batch axes and dtype, got a {a.str_short()} and b "
                             f"{b.str_short()}")
    return b.shape


def _triangular_solve_jvp_a(a_dot: Any, ans: Any, a: Any, b: Any, *, left_side: bool,
                            lower: bool, transpose_a: bool, unit_diagonal: bool) -> Any:
    # x = op(a)⁻¹ b  =>  ẋ = -op(a)⁻¹ op(ȧ) x  (left side), ẋ = -x op(ȧ) op(a)⁻¹ (right).
    # Only the triangle the solve reads carries a derivative.
    k = 1 if unit_diagonal else 0
    a_dot = _ew.neg(_tril(a_dot, -k) if lower else _triu(a_dot, k))
    a_dot = _T(a_dot) if transpose_a else a_dot
    params = dict(left_side=left_side, lower=lower, transpose_a=transpose_a,
                  unit_diagonal=unit_diagonal)
    m, n = ans.shape[-2:]
    # Both orders give the same result: pick the cheaper one, as JAX does.
    if left_side:
        if m > n:
            return triangular_solve_p.bind(a, _matmul(a_dot, ans), **params)
        return _matmul(triangular_solve_p.bind(a, a_dot, **params), ans)
    if m < n:
        return triangular_solve_p.bind(a, _matmul(ans, a_dot), **params)
    return _matmul(ans, triangular_solve_p.bind(a, a_dot, **params))


def _triangular_solve_transpose(ct: Any, a: Any, b: Any, *, left_side: bool, lower: bool,
                                transpose_a: bool, unit_diagonal: bool) -> list[Any]:
    # b ↦ op(a)⁻¹ b is linear; its transpose is ct ↦ op(a)⁻ᵀ ct.
    ct_b = triangular_solve_p.bind(a, ct, left_side=left_side, lower=lower,
                                   transpose_a=not transpose_a, unit_diagonal=unit_diagonal)
    return [None, ct_b]


def _triangular_solve_batch(vals: Sequence[Any], dims: Sequence[int | None], *,
                            axis_size: int, left_side: bool, **params: Any) -> tuple[Any, int]:
    a, b = vals
    a_bdim, b_bdim = dims
    if a_bdim is None:
        assert b_bdim is not None
        return _triangular_solve_fold_b(a, b, b_bdim, left_side=left_side, **params)
    # a varies: b must vary too (broadcast if it does not), at the same leading position.
    a, bdim = _leading_bdim(a, a_bdim)
    b = _with_bdim_at(b, b_bdim, bdim, axis_size)
    return triangular_solve_p.bind(a, b, left_side=left_side, **params), bdim


def _triangular_solve_fold_b(a: Any, b: Any, bdim: int, *, left_side: bool,
                             **params: Any) -> tuple[Any, int]:
    # op(a)⁻¹ b acts on each column of b ([..., m, n], left side) and x op(a) = b on
    # each row of b ([..., n, m]): more columns (rows) are more independent solves
    # with the same a. So merge the batch into n instead of broadcasting a.
    # In the batched b (ndim nd), the batch and n must be the adjacent pair of axes at
    # (nd - 2, nd - 1) (left: [..., m, *]) or (nd - 3, nd - 2) (right: [..., *, m]), in
    # either order: keep the batch axis if it is already there, else put it before n.
    nd = b.ndim
    n_pos = nd - 2 if left_side else nd - 3
    if bdim not in (n_pos, n_pos + 1):
        b = moveaxis(b, bdim, n_pos)
        bdim = n_pos
    shape = list(b.shape)
    folded = shape[:n_pos] + [shape[n_pos] * shape[n_pos + 1]] + shape[n_pos + 2:]
    out = triangular_solve_p.bind(a, _shape.reshape(b, folded), left_side=left_side, **params)
    return _shape.reshape(out, shape), bdim


triangular_solve_p = standard_primitive(
    "triangular_solve", _triangular_solve_impl, _triangular_solve_shape,
    lambda a, b, **_: b.dtype, weak_type_rule=lambda a, b, **_: a.weak_type and b.weak_type)
defjvp2(triangular_solve_p, _triangular_solve_jvp_a,
        lambda b_dot, ans, a, b, **params: triangular_solve_p.bind(a, b_dot, **params))
triangular_solve_p.def_transpose(_triangular_solve_transpose)
triangular_solve_p.linear_args = (1,)
triangular_solve_p.def_batch(_triangular_solve_batch)


# --- lu --------------------------------------------------------------------------------------

def lu(x: Any) -> tuple[Any, Any, Any]:
    """LU decomposition with partial pivoting, ``P x = L U`` (``jax.lax.linalg.lu``).

    ``x`` is [..., m, n]. Returns ``(lu, pivots, permutation)``: ``lu``
    holds ``U`` in its upper triangle and ``L`` (unit diagonal, not stored)
    strictly below; ``pivots`` (int32, [..., min(m, n)]) are LAPACK's row
    swaps (row i was swapped with row pivots[i]); ``permutation`` (int32,
    [..., m]) is the same reordering as a permutation: ``x[permutation] = L U``.
    """
    return tuple(lu_p.bind(x))  # type: ignore[return-value]


def _lu_impl(x: np.ndarray) -> list[np.ndarray]:
    m, n = x.shape[-2:]
    k = min(m, n)
    batch = x.shape[:-2]
    mats = _per_matrix(x.astype(_compute_dtype(x.dtype)))
    lus = np.array(mats, copy=True)
    pivots = np.zeros((len(mats), k), np.int32)
    perms = np.tile(np.arange(m, dtype=np.int32), (len(mats), 1))
    if k:
        getrf = scipy.linalg.lapack.get_lapack_funcs("getrf", dtype=mats.dtype)
        with np.errstate(all="ignore"):
            for i, mat in enumerate(mats):
                # info > 0 flags an exactly singular U; the factorization is still
                # complete (XLA returns it as is, and so do we).
                lus[i], piv, _ = getrf(mat)
                pivots[i] = piv
                for row, swap in enumerate(piv):  # row swaps -> a permutation
                    perms[i, [row, swap]] = perms[i, [swap, row]]
    return [lus.reshape(x.shape).astype(x.dtype), pivots.reshape(batch + (k,)),
            perms.reshape(batch + (m,))]


def _lu_abstract_eval(x: ShapedArray) -> list[ShapedArray]:
    _check_matrices("lu", x, square=False)
    m, n = x.shape[-2:]
    batch = x.shape[:-2]
    return [ShapedArray(x.shape, x.dtype, x.weak_type),
            ShapedArray(batch + (min(m, n),), np.int32),
            ShapedArray(batch + (m,), np.int32)]


def _permutation_matrix(permutation: Any, dtype: np.dtype) -> Any:
    """P with P[..., i, j] = (permutation[..., i] == j), so (P @ a)[i] = a[permutation[i]].

    NOTE: a one-hot matmul instead of a gather keeps the rules to dot_general
    (exact for finite values; a non-finite entry of ``a`` spreads NaN to its column).
    """
    m = permutation.shape[-1]
    nb = permutation.ndim - 1
    shape = permutation.shape + (m,)
    rows = _shape.broadcast_in_dim(permutation, shape, tuple(range(nb + 1)))
    cols = _shape.broadcasted_iota(np.int32, shape, nb + 1)
    return _ew.convert_element_type(_ew.eq(rows, cols), dtype)


def _lu_jvp(primals: Sequence[Any], tangents: Sequence[Any]) -> Any:
    # De Hoog, Anderssen & Lukas, "Differentiation of matrix functionals using
    # triangular factorization". From P A = L U:
    #     P Ȧ = L̇ U + L U̇  =>  L⁻¹ P Ȧ U⁻¹ = L⁻¹ L̇ + U̇ U⁻¹,
    # a strictly lower (L⁻¹L̇: L has a unit diagonal) plus an upper triangular
    # matrix. So with X = L⁻¹ P Ȧ U⁻¹:  L̇ = L tril(X, -1),  U̇ = triu(X) U, and
    # the packed tangent is L̇ + U̇. For non-square A, L is padded to [m, m] and
    # U to [n, n] with identity blocks.
    (x,), (x_dot,) = primals, tangents
    lu_, pivots, permutation = lu_p.bind(x)
    m, n = x.shape[-2:]
    k = min(m, n)
    if m == n:
        l_strict, u_top = _tril(lu_, -1), _triu(lu_)
    else:  # L is lu[..., :, :k] padded to [m, m]; U is lu[..., :k, :] padded to [n, n]
        nb = x.ndim - 2
        zero = _shape.full((), 0, x.dtype)
        l_strict = _shape.pad(_tril(_shape.slice(lu_, (0,) * x.ndim, (*x.shape[:-1], k)), -1),
                              zero, [(0, 0, 0)] * (nb + 1) + [(0, m - k, 0)])
        u_top = _shape.pad(_triu(_shape.slice(lu_, (0,) * x.ndim, (*x.shape[:-2], k, n))),
                           zero, [(0, 0, 0)] * nb + [(0, n - k, 0), (0, 0, 0)])
    l = _ew.add(l_strict, _eye_like(x, m, m))
    u = _ew.add(u_top, _const_like(np.diag((np.arange(n) >= k).astype(x.dtype)), x))
    pa_dot = _matmul(_permutation_matrix(permutation, x.dtype), x_dot)
    la = triangular_solve(l, pa_dot, left_side=True, lower=True, unit_diagonal=True)
    lau = triangular_solve(u, la, left_side=False, lower=False)
    lu_dot = _ew.add(_matmul(l, _tril(lau, -1)), _matmul(_triu(lau), u))
    return [lu_, pivots, permutation], [lu_dot, Zero(pivots.aval), Zero(permutation.aval)]


def _lu_batch(vals: Sequence[Any], dims: Sequence[int | None], *,
              axis_size: int) -> tuple[list[Any], list[int]]:
    # lu, pivots and permutation all share x's leading batch axes.
    x, bdim = _leading_bdim(vals[0], dims[0])  # type: ignore[arg-type]
    return lu_p.bind(x), [bdim] * 3


lu_p = Primitive("lu", multiple_results=True)
lu_p.def_impl(_lu_impl)
lu_p.def_abstract_eval(_lu_abstract_eval)
lu_p.def_jvp(_lu_jvp)
lu_p.declare_missing("transpose", "not linear")
lu_p.def_batch(_lu_batch)


__all__ = ["dot_general", "cholesky", "triangular_solve", "lu"]
