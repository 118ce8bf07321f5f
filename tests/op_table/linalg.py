"""Op-table records for the linear-algebra family: ``dot_general``, ``cholesky``,
``triangular_solve`` and ``lu`` (``fgrad.lax``), the products and contractions of
``fgrad/numpy/_linalg_ops.py`` and ``fgrad.numpy.linalg``.

``dot_general`` is bilinear, not linear: its records with both operands drawn
check JVP/VJP, and the ``*_linear`` records hold one operand fixed ("const")
so the generic suite can check each transpose rule by the dot-product test.
Factorizations get well-conditioned inputs through ``prepare``: symmetric
positive-definite matrices for Cholesky, triangular matrices with a diagonal
far from zero for the solves, and (row-permuted) diagonally dominant matrices
for LU, so that finite differences never cross a change of pivot.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import fgrad.lax as lax
import fgrad.numpy as fnp
from op_table import Arg, Rec

ALL_FLOATS = (np.float32, np.float16, jnp.bfloat16)
F32 = (np.float32,)
RNG = np.random.RandomState(1234)


def _arg(*shape: int, **kw: Any) -> Arg:
    return Arg(tuple(shape), **kw)


def _const(*shape: int) -> Arg:
    return Arg(tuple(shape), "const", value=RNG.uniform(-2, 2, shape).astype(np.float32))


# --- well-conditioned inputs --------------------------------------------------------------

def _eye_like(a: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.eye(a.shape[-1]), a.shape)


def _spd(a: np.ndarray) -> tuple[np.ndarray]:
    return (a @ np.swapaxes(a, -1, -2) + a.shape[-1] * _eye_like(a),)


def _shifted(a: np.ndarray) -> np.ndarray:
    """a + 2n I: strictly diagonally dominant for entries in (-2, 2), so never singular
    (hypothesis likes matrices of equal entries, which are)."""
    n = a.shape[-1]
    return a + 2 * n * _eye_like(a)


def _distinct(x: np.ndarray) -> tuple[np.ndarray]:
    """Move |x| away from 0 and make all |x| distinct: norms with max/min and abs have
    kinks at ties and at zero, where finite differences are meaningless."""
    offsets = 0.1 + 0.013 * np.arange(x.size).reshape(x.shape)
    return (np.where(x >= 0, 1.0, -1.0) * (np.abs(x) + offsets),)


def _pivoting(a: np.ndarray) -> tuple[np.ndarray]:
    """A strictly column-diagonally-dominant matrix with reversed rows: LU must pivot, and
    each pivot wins by a clear margin (dominance survives elimination)."""
    m, n = a.shape[-2:]
    dominant = a + 3 * max(m, n) * np.broadcast_to(np.eye(m, n), a.shape)
    return (dominant[..., ::-1, :],)


# --- fgrad.lax ---------------------------------------------------------------------------

def _dot(name: str, lhs: Arg, rhs: Arg, dims: Any, **kw: Any) -> Rec:
    if "const" in (lhs.kind, rhs.kind):  # strict: cast the fixed operand to the drawn dtype
        kw.setdefault("linear", True)
        cast = lambda x, y: (x, y.astype(x.dtype)) if rhs.kind == "const" else (  # noqa: E731
            x.astype(y.dtype), y)
    else:
        kw.setdefault("dtypes", ALL_FLOATS)
        cast = lambda x, y: (x, y)  # noqa: E731
    return Rec(f"lax_dot_general_{name}", lambda x, y: lax.dot_general(*cast(x, y), dims),
               [lhs, rhs], lambda x, y: jax.lax.dot_general(*cast(x, y), dims),
               prims=("dot_general",), **kw)


MATMUL_DIMS = (((1,), (0,)), ((), ()))
BATCHED_DIMS = (((1,), (2,)), ((0,), (0,)))         # [2,3,4] x [2,5,3] -> [2,4,5]
MULTI_CONTRACT_DIMS = (((1, 2), (1, 0)), ((), ()))  # [2,3,4] x [4,3,5] -> [2,5]
MIDDLE_BATCH_DIMS = (((2,), (0,)), ((1,), (1,)))    # [3,2,4] x [4,2,5] -> [2,3,5]
NO_DIMS = (((), ()), ((), ()))

# fmt: off
LAX_RECORDS = [
    _dot("matmul", _arg(3, 4), _arg(4, 5), MATMUL_DIMS),
    _dot("batched", _arg(2, 3, 4), _arg(2, 5, 3), BATCHED_DIMS),
    _dot("multi_contract", _arg(2, 3, 4), _arg(4, 3, 5), MULTI_CONTRACT_DIMS),
    _dot("middle_batch", _arg(3, 2, 4), _arg(4, 2, 5), MIDDLE_BATCH_DIMS),
    _dot("outer", _arg(3), _arg(2, 2), NO_DIMS),
    _dot("scalar", _arg(), _arg(3), NO_DIMS),
    _dot("vector", _arg(5), _arg(5), (((0,), (0,)), ((), ()))),
    _dot("size0_contract", _arg(3, 0), _arg(0, 4), MATMUL_DIMS),
    _dot("size0_free", _arg(0, 4), _arg(4, 2), MATMUL_DIMS),
    _dot("lhs_linear", _arg(2, 3, 4), _const(2, 5, 3), BATCHED_DIMS),
    _dot("rhs_linear", _const(3, 2, 4), _arg(4, 2, 5), MIDDLE_BATCH_DIMS),
    _dot("rhs_linear_multi", _const(2, 3, 4), _arg(4, 3, 5), MULTI_CONTRACT_DIMS),
    _dot("int", _arg(3, 4, kind="int", domain=(-5, 5)), _arg(4, 2, kind="int", domain=(-5, 5)),
         MATMUL_DIMS, diff=False, dtypes=F32),
    Rec("lax_dot_general_preferred_f32",
        lambda x, y: lax.dot_general(x, y, MATMUL_DIMS, preferred_element_type=np.float32),
        [_arg(3, 4), _arg(4, 2)],
        lambda x, y: jax.lax.dot_general(x, y, MATMUL_DIMS, preferred_element_type=jnp.float32),
        prims=("dot_general",), dtypes=(np.float16, jnp.bfloat16), diff=False),
    Rec("lax_cholesky", lax.cholesky, [_arg(3, 4, 4)], jax.lax.linalg.cholesky,
        prims=("cholesky",), prepare=_spd, rtol=1e-4),
    Rec("lax_cholesky_1x1", lax.cholesky, [_arg(1, 1)], jax.lax.linalg.cholesky,
        prims=("cholesky",), prepare=_spd),
    Rec("lax_lu", lax.lu, [_arg(2, 4, 4)], jax.lax.linalg.lu, prims=("lu",),
        prepare=_pivoting, rtol=1e-4),
    Rec("lax_lu_factor", lambda x: lax.lu(x)[0], [_arg(2, 4, 4)],
        lambda x: jax.lax.linalg.lu(x)[0], prims=("lu",), prepare=_pivoting, rtol=1e-4),
    Rec("lax_lu_wide", lambda x: lax.lu(x)[0], [_arg(3, 5)],
        lambda x: jax.lax.linalg.lu(x)[0], prims=("lu",), prepare=_pivoting, rtol=1e-4),
    Rec("lax_lu_tall", lambda x: lax.lu(x)[0], [_arg(5, 3)],
        lambda x: jax.lax.linalg.lu(x)[0], prims=("lu",), prepare=_pivoting, rtol=1e-4),
]
# fmt: on

A_TRIANGULAR = _shifted(RNG.uniform(-1, 1, (4, 4))).astype(np.float32)
TRIANGULAR_CONFIGS = [
    dict(left_side=True, lower=True),
    dict(left_side=False, lower=False),
    dict(left_side=True, lower=False, transpose_a=True),
    dict(left_side=False, lower=True, transpose_a=True, unit_diagonal=True),
]
for _i, _kw in enumerate(TRIANGULAR_CONFIGS):
    _b = (2, 4, 3) if _kw["left_side"] else (2, 3, 4)
    LAX_RECORDS.append(Rec(
        f"lax_triangular_solve_{_i}", lambda a, b, kw=_kw: lax.triangular_solve(a, b, **kw),
        [_arg(2, 4, 4), _arg(*_b)],
        lambda a, b, kw=_kw: jax.lax.linalg.triangular_solve(a, b, **kw),
        prims=("triangular_solve",), prepare=lambda a, b: (_shifted(a), b), rtol=1e-4))
LAX_RECORDS += [
    Rec("lax_triangular_solve_linear",
        lambda b: lax.triangular_solve(A_TRIANGULAR.astype(b.dtype), b, left_side=True,
                                       lower=True),
        [_arg(4, 2)],
        lambda b: jax.lax.linalg.triangular_solve(A_TRIANGULAR.astype(b.dtype), b,
                                                  left_side=True, lower=True),
        prims=("triangular_solve",), linear=True, rtol=1e-4),
    Rec("lax_triangular_solve_vector",
        lambda a, b: lax.triangular_solve(a, b, left_side=True, lower=False),
        [_arg(4, 4), _arg(4)],
        lambda a, b: jax.lax.linalg.triangular_solve(a, b, left_side=True, lower=False),
        prims=("triangular_solve",), prepare=lambda a, b: (_shifted(a), b), rtol=1e-4),
]


# --- fgrad.numpy: products and contractions ----------------------------------------------

def _np(name: str, fn: Any, jax_fn: Any, args: list[Arg], **kw: Any) -> Rec:
    kw.setdefault("prims", ("dot_general",))
    return Rec(name, fn, args, jax_fn, **kw)


# fmt: off
MATMUL_SHAPES = [((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
                 ((5, 1, 2, 3), (4, 3, 2)), ((1, 2, 3), (5, 3, 4)), ((2, 3), (4, 3, 2)),
                 ((0, 3), (3, 2))]
NUMPY_RECORDS = [
    _np(f"matmul_{'x'.join(map(str, sa))}_{'x'.join(map(str, sb))}", fnp.matmul, jnp.matmul,
        [_arg(*sa), _arg(*sb)], dtypes=ALL_FLOATS if len(sa) == 2 else F32)
    for sa, sb in MATMUL_SHAPES
] + [
    _np("matmul_linear", lambda x, y: fnp.matmul(x, y), lambda x, y: jnp.matmul(x, y),
        [_arg(2, 2, 3), _const(3, 4)], linear=True),
    _np("dot_matrix", fnp.dot, jnp.dot, [_arg(2, 3), _arg(3, 4)]),
    _np("dot_nd", fnp.dot, jnp.dot, [_arg(2, 3), _arg(4, 3, 2)]),
    _np("dot_vector_matrix", fnp.dot, jnp.dot, [_arg(3), _arg(3, 2)]),
    _np("dot_scalar", fnp.dot, jnp.dot, [_arg(), _arg(2, 3)]),
    _np("dot_python_scalar", lambda x: fnp.dot(x, 2.0), lambda x: jnp.dot(x, 2.0), [_arg(3)]),
    _np("vdot", fnp.vdot, jnp.vdot, [_arg(2, 3), _arg(3, 2)]),
    _np("inner", fnp.inner, jnp.inner, [_arg(2, 3), _arg(4, 3)]),
    _np("outer", fnp.outer, jnp.outer, [_arg(2, 2), _arg(3)]),
    _np("outer_linear", fnp.outer, jnp.outer, [_arg(3), _const(2)], linear=True),
    _np("tensordot_int", lambda x, y: fnp.tensordot(x, y, 2),
        lambda x, y: jnp.tensordot(x, y, 2), [_arg(2, 3, 4), _arg(3, 4, 2)]),
    _np("tensordot_pairs", lambda x, y: fnp.tensordot(x, y, ((0, 2), (2, 1))),
        lambda x, y: jnp.tensordot(x, y, ((0, 2), (2, 1))), [_arg(2, 3, 4), _arg(5, 4, 2)]),
    _np("tensordot_zero", lambda x, y: fnp.tensordot(x, y, 0),
        lambda x, y: jnp.tensordot(x, y, 0), [_arg(2), _arg(3)]),
    _np("kron", fnp.kron, jnp.kron, [_arg(2, 3), _arg(2, 2)], prims=("mul",)),
    _np("diagonal", fnp.diagonal, jnp.diagonal, [_arg(3, 4)], prims=("slice",), linear=True,
        dtypes=ALL_FLOATS),
    _np("diagonal_offset_axes", lambda x: fnp.diagonal(x, -1, 2, 0),
        lambda x: jnp.diagonal(x, -1, 2, 0), [_arg(4, 2, 3)], prims=("slice",), linear=True),
    _np("diagonal_empty", lambda x: fnp.diagonal(x, 5), lambda x: jnp.diagonal(x, 5),
        [_arg(3, 4)], prims=("slice",), linear=True),
    _np("trace", fnp.trace, jnp.trace, [_arg(3, 4)], prims=("select_n", "reduce_sum"),
        linear=True),
    _np("trace_offset_axes", lambda x: fnp.trace(x, 1, -1, 0),
        lambda x: jnp.trace(x, 1, -1, 0), [_arg(3, 2, 4)], prims=("select_n", "reduce_sum"),
        linear=True),
]
# fmt: on

EINSUM_SPECS = [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]), ("ii", [(3, 3)]), ("iij->ji", [(3, 3, 2)]),
    ("...ij,...jk->...ik", [(2, 2, 3), (3, 4)]), ("i,i", [(3,), (3,)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 2)]), ("ij,ij->ij", [(2, 1), (2, 3)]),
    ("abc,cd,de->ae", [(2, 3, 4), (4, 2), (2, 3)]), ("ab,ab->", [(2, 3), (2, 3)]),
    ("...i->i", [(2, 3)]), ("iji->j", [(2, 3, 2)]), ("i,j->ij", [(3,), (2,)]),
]
for _spec, _shapes in EINSUM_SPECS:
    _name = "einsum_" + _spec.replace(",", "_").replace("->", "_to_").replace("...", "E")
    NUMPY_RECORDS.append(_np(
        _name, lambda *xs, s=_spec: fnp.einsum(s, *xs), lambda *xs, s=_spec: jnp.einsum(s, *xs),
        [_arg(*s) for s in _shapes], prims=("dot_general", "reduce_sum", "select_n")))
NUMPY_RECORDS.append(_np(
    "einsum_linear", lambda x, y: fnp.einsum("ij,jk->ki", x, y),
    lambda x, y: jnp.einsum("ij,jk->ki", x, y), [_arg(2, 3), _const(3, 4)], linear=True))


# --- fgrad.numpy.linalg --------------------------------------------------------------------

def _la(name: str, fn: Any, jax_fn: Any, args: list[Arg], prims: tuple[str, ...], **kw: Any
        ) -> Rec:
    kw.setdefault("rtol", 1e-4)
    return Rec(f"linalg_{name}", fn, args, jax_fn, prims=prims, **kw)


LU_SOLVE = ("lu", "triangular_solve", "dot_general")
# fmt: off
LINALG_RECORDS = [
    _la("solve_vector", fnp.linalg.solve, jnp.linalg.solve, [_arg(2, 3, 3), _arg(3)], LU_SOLVE,
        prepare=lambda a, b: (_shifted(a), b)),
    _la("solve_matrix", fnp.linalg.solve, jnp.linalg.solve, [_arg(3, 3), _arg(2, 3, 2)],
        LU_SOLVE, prepare=lambda a, b: (_shifted(a), b)),
    _la("inv", fnp.linalg.inv, jnp.linalg.inv, [_arg(2, 4, 4)], LU_SOLVE, prepare=lambda a: (
        _shifted(a),)),
    _la("cholesky", fnp.linalg.cholesky, jnp.linalg.cholesky, [_arg(3, 3)], ("cholesky",),
        prepare=_spd),
    _la("cholesky_upper", lambda a: fnp.linalg.cholesky(a, upper=True),
        lambda a: jnp.linalg.cholesky(a, upper=True), [_arg(2, 3, 3)], ("cholesky",),
        prepare=_spd),
] + [
    _la(f"det_{n}x{n}", fnp.linalg.det, jnp.linalg.det, [_arg(2, n, n)],
        ("lu",) if n > 3 else ("mul",), prepare=lambda a: (_shifted(a),))
    for n in (1, 2, 3, 4, 5)
] + [
    _la(f"slogdet_{n}x{n}", fnp.linalg.slogdet, jnp.linalg.slogdet, [_arg(n, n)],
        ("lu",) if n > 2 else ("log",),
        prepare=lambda a, n=n: (_shifted(a) * [1, -1][n % 2],))
    for n in (1, 2, 4)
] + [
    _la(f"norm_vector_{name}", lambda x, o=o: fnp.linalg.norm(x, o, axis=-1),
        lambda x, o=o: jnp.linalg.norm(x, o, axis=-1), [_arg(2, 4)], ("reduce_sum",),
        prepare=_distinct)
    for name, o in [("default", None), ("1", 1), ("inf", np.inf), ("neginf", -np.inf),
                    ("3", 3), ("half", 0.5), ("0", 0)]
] + [
    _la(f"norm_matrix_{name}", lambda x, o=o: fnp.linalg.norm(x, o, axis=(1, 0), keepdims=True),
        lambda x, o=o: jnp.linalg.norm(x, o, axis=(1, 0), keepdims=True),
        [_arg(3, 4)], ("reduce_sum",), prepare=_distinct)
    for name, o in [("fro", "fro"), ("1", 1), ("neg1", -1), ("inf", np.inf),
                    ("neginf", -np.inf)]
] + [
    _la("norm_flat", fnp.linalg.norm, jnp.linalg.norm, [_arg(2, 3, 2)], ("reduce_sum",),
        prepare=_distinct),
]
# fmt: on

RECORDS = LAX_RECORDS + NUMPY_RECORDS + LINALG_RECORDS
