"""Op-table records for ``fgrad.numpy``'s elementwise functions, ``where``/``clip`` and friends,
and the array-creation functions that take array arguments.

Each record pairs an ``fgrad.numpy`` function with its ``jax.numpy`` twin.
Unlike the strict primitives, these promote and broadcast, so records also
mix shapes ((2, 3) with (3,), (2, 1) with (1, 3)), dtypes (int with float) and
weakly typed Python scalars (``const`` arguments). Domains keep derivative
checks off singularities, ``avoid`` keeps them off kinks and jumps; the
kinks themselves (``abs`` at 0, ties of ``maximum``, ``clip`` at a bound)
are tested against ``jax.grad`` in ``tests/numpy/test_ufuncs.py``.
"""

from __future__ import annotations

import jax.numpy as jnp
import ml_dtypes
import numpy as np

import fgrad.numpy as fnp
from op_table import Arg, Rec

F16S = (np.float32, np.float16, ml_dtypes.bfloat16)
F16 = (np.float32, np.float16)
S = (2, 3)
INTS = (-2.0, -1.0, 0.0, 1.0, 2.0)
HALVES = (-1.5, -0.5, 0.5, 1.5)


def _int(shape: tuple[int, ...] = S, domain: tuple[float, float] = (-5, 6),
         dtype: object = None) -> Arg:
    return Arg(shape, kind="int", domain=domain, dtype=dtype)


def _const(value: object) -> Arg:
    return Arg(np.shape(value), kind="const", value=value)


def _unary(name: str, domain: tuple[float, float] = (-2.0, 2.0), avoid: tuple[float, ...] = (),
           shape: tuple[int, ...] = S, suffix: str = "", **kw: object) -> Rec:
    kw.setdefault("dtypes", F16S)
    arg = Arg(shape, domain=domain, avoid=avoid)
    return Rec(f"ufunc_{name}{suffix}", getattr(fnp, name), [arg], getattr(jnp, name),
               **kw)  # type: ignore[arg-type]


def _binary(name: str, x: Arg | None = None, y: Arg | None = None, suffix: str = "",
            **kw: object) -> Rec:
    kw.setdefault("dtypes", F16S)
    return Rec(f"ufunc_{name}{suffix}", getattr(fnp, name), [x or Arg(S), y or Arg(S)],
               getattr(jnp, name), **kw)  # type: ignore[arg-type]


def _apart(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Break ties between max/min operands (a tie is a kink: no second derivative)."""
    y = np.broadcast_to(y, np.broadcast_shapes(np.shape(x), np.shape(y))).copy()
    x_b = np.broadcast_to(x, y.shape)
    close = np.abs(x_b - y) < 0.1
    return x, np.where(close, x_b + np.where(x_b > 0, -0.5, 0.5), y)


def _abs_apart(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep |x| and |y| apart: hypot is computed from max(|x|, |y|), which has a kink there."""
    close = np.abs(np.abs(x) - np.abs(y)) < 0.1
    return x, np.where(close, np.sign(y) * (np.abs(x) + 0.3), y)


def _away_from_jumps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put x / y mid-way between integers: remainder and floor_divide jump at integers."""
    q = x / y
    whole = np.floor(q)
    return y * (whole + 0.25 + 0.5 * (q - whole)), y


POSITIVE = Arg(S, domain=(0.5, 2.0))
NEGATIVE = Arg(S, domain=(-2.0, -0.5))

# fmt: off
UNARY = [
    _unary("exp"), _unary("exp2"), _unary("expm1"),
    _unary("log", domain=(0.1, 3.0)), _unary("log1p", domain=(-0.5, 2.0)),
    _unary("log2", domain=(0.1, 3.0), dtypes=F16), _unary("log10", domain=(0.1, 3.0), dtypes=F16),
    _unary("sqrt", domain=(0.1, 3.0)), _unary("cbrt", domain=(0.2, 3.0)),
    _unary("sin"), _unary("cos"), _unary("tan", domain=(-1.2, 1.2)),
    _unary("arcsin", domain=(-0.9, 0.9)), _unary("arccos", domain=(-0.9, 0.9)), _unary("arctan"),
    _unary("sinh"), _unary("cosh"), _unary("tanh"), _unary("arcsinh"),
    _unary("arccosh", domain=(1.2, 3.0)), _unary("arctanh", domain=(-0.9, 0.9)),
    _unary("deg2rad", dtypes=F16), _unary("rad2deg", dtypes=F16),
    _unary("negative", linear=True), _unary("positive", linear=True),
    _unary("sign", avoid=(0.0,)), _unary("square"), _unary("reciprocal", domain=(0.5, 2.0)),
    _unary("absolute", avoid=(0.0,)), _unary("fabs", avoid=(0.0,)),
    _unary("floor", avoid=INTS), _unary("ceil", avoid=INTS), _unary("trunc", avoid=INTS),
    _unary("rint", avoid=HALVES), _unary("round", avoid=HALVES),
    _unary("sinc", avoid=(0.0,), dtypes=F16), _unary("isnan"), _unary("isinf"), _unary("isfinite"),
    _unary("signbit", avoid=(0.0,)), _unary("real", linear=True), _unary("imag"),
    _unary("conj", linear=True), _unary("nan_to_num"), _unary("logical_not", avoid=(0.0,)),
    # edge shapes: 0-d, size-0 and size-1 axes
    # (0-d records skip the generic derivative checks: its random_like cannot make 0-d
    # tangents yet; tests/numpy/test_ufuncs.py checks 0-d derivatives)
    _unary("sin", shape=(), suffix="_0d", diff=False), _unary("exp", shape=(0, 3), suffix="_size0"),
    _unary("tanh", shape=(1, 5, 1), suffix="_size1_axes"),
]
ROUND = [
    Rec("ufunc_round_decimals_2", lambda x: fnp.round(x, 2), [Arg(S, domain=(-3.0, 3.0))],
        lambda x: jnp.round(x, 2), dtypes=F16, rtol=1e-2, diff=False),
    # round(x, -1) jumps at ±5, ±15, ±25: keep finite differences away from the jumps
    Rec("ufunc_round_decimals_m1", lambda x: fnp.round(x, -1),
        [Arg(S, domain=(-30.0, 30.0), avoid=(-25.0, -15.0, -5.0, 5.0, 15.0, 25.0))],
        lambda x: jnp.round(x, -1), dtypes=(np.float32,)),
    Rec("ufunc_round_halves_to_even", fnp.round,
        [_const(np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], np.float32))], jnp.round),
    Rec("ufunc_rint_int", fnp.rint, [_int()], jnp.rint),
    Rec("ufunc_floor_int", fnp.floor, [_int()], jnp.floor),
    Rec("ufunc_abs_int", fnp.abs, [_int()], jnp.abs),
    Rec("ufunc_abs_uint8", fnp.abs, [_int(domain=(0, 256), dtype=np.uint8)], jnp.abs),
    Rec("ufunc_square_bool", fnp.square, [Arg(S, kind="bool")], jnp.square),
]
BINARY = [
    _binary("add", linear=True), _binary("subtract", linear=True), _binary("multiply"),
    _binary("divide", y=POSITIVE), _binary("true_divide", y=NEGATIVE),
    _binary("floor_divide", x=Arg(S, domain=(-3.0, 3.0)), y=POSITIVE, prepare=_away_from_jumps),
    _binary("remainder", x=Arg(S, domain=(-3.0, 3.0)), y=POSITIVE, prepare=_away_from_jumps),
    _binary("remainder", x=Arg(S, domain=(-3.0, 3.0)), y=NEGATIVE, prepare=_away_from_jumps,
            suffix="_negative_divisor"),
    _binary("fmod", x=Arg(S, domain=(-3.0, 3.0)), y=POSITIVE, prepare=_away_from_jumps),
    _binary("divmod", x=Arg(S, domain=(-3.0, 3.0)), y=NEGATIVE, prepare=_away_from_jumps,
            dtypes=F16),
    _binary("power", x=POSITIVE), _binary("float_power", x=POSITIVE),
    _binary("maximum", prepare=_apart), _binary("minimum", prepare=_apart),
    _binary("fmax", prepare=_apart), _binary("fmin", prepare=_apart),
    _binary("arctan2", y=POSITIVE),
    _binary("hypot", x=Arg(S, avoid=(0.0,)), y=Arg(S, avoid=(0.0,)), dtypes=F16,
            prepare=_abs_apart),
    _binary("logaddexp", dtypes=F16), _binary("logaddexp2", dtypes=F16),
    _binary("copysign", x=Arg(S, avoid=(0.0,)), y=Arg(S, avoid=(0.0,))),
    _binary("heaviside", x=Arg(S, avoid=(0.0,))),
    _binary("nextafter", diff=False),
    _binary("isclose", x=Arg(S, domain=(-1.0, 1.0)), y=Arg(S, domain=(-1.0, 1.0))),
]
COMPARISONS = [
    # NOTE: avoid 0: XLA flushes subnormals to zero, so JAX compares 1e-45 as 0.
    _binary(name, x=Arg(S, domain=(-1.0, 1.0), avoid=(0.0,)),
            y=Arg(S, domain=(-1.0, 1.0), avoid=(0.0,)))
    for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal",
                 "logical_and", "logical_or", "logical_xor")
]
# Broadcasting and promotion: shapes that differ, dtypes that differ, Python scalars.
MIXED = [
    _binary("add", x=Arg((2, 3)), y=Arg((3,)), suffix="_broadcast_row", linear=True),
    _binary("multiply", x=Arg((2, 1)), y=Arg((1, 3)), suffix="_broadcast_outer"),
    _binary("subtract", x=Arg((4,)), y=Arg(()), suffix="_broadcast_0d", diff=False),
    _binary("divide", x=Arg((0, 3)), y=Arg((1, 3), domain=(0.5, 2.0)), suffix="_size0"),
    _binary("add", x=Arg(S), y=_int(), suffix="_int_float"),
    # (a float16 argument: too coarse for finite differences)
    _binary("multiply", x=_int(), y=Arg(S, dtype=np.float16), suffix="_int_f16", dtypes=F16,
            diff=False),
    _binary("maximum", x=Arg(S, dtype=np.float16), y=Arg(S), suffix="_f16_f32", dtypes=F16,
            prepare=_apart, diff=False),
    Rec("ufunc_multiply_weak_scalar", lambda x: fnp.multiply(x, 2.0), [Arg(S)],
        lambda x: jnp.multiply(x, 2.0), dtypes=F16S, linear=True),
    Rec("ufunc_add_weak_int_scalar", lambda x: fnp.add(x, 3), [Arg(S)],
        lambda x: jnp.add(x, 3), dtypes=F16S),
    Rec("ufunc_divide_int_by_weak", lambda x: fnp.divide(x, 2), [_int()],
        lambda x: jnp.divide(x, 2)),
    Rec("ufunc_add_weak_weak", lambda a, b: fnp.add(a, b), [_const(1), _const(2.0)], jnp.add),
    Rec("ufunc_sin_weak", fnp.sin, [_const(0.5)], jnp.sin),
    Rec("ufunc_power_weak_base", lambda y: fnp.power(2.0, y), [Arg(S)],
        lambda y: jnp.power(2.0, y), dtypes=F16),
]
INTEGER = [
    _binary(name, x=_int(domain=(-9, 10)), y=_int(domain=(-4, 5)), suffix="_int")
    for name in ("floor_divide", "remainder", "fmod", "divmod")
] + [
    _binary("floor_divide", x=_int(domain=(0, 256), dtype=np.uint8),
            y=_int(domain=(1, 256), dtype=np.uint8), suffix="_uint8"),
    _binary("power", x=_int(domain=(-4, 5)), y=_int(domain=(0, 9)), suffix="_int"),
    _binary("power", x=_int(domain=(-3, 4)), y=_int(domain=(-70, 70)), suffix="_int_wide"),
    _binary("power", x=_int(domain=(0, 4), dtype=np.uint8), y=_int(domain=(0, 5),
            dtype=np.uint8), suffix="_uint8"),
    _binary("power", x=POSITIVE, y=_int(domain=(-3, 4)), suffix="_float_int_array"),
    _binary("power", x=NEGATIVE, y=_int(domain=(-3, 4)), suffix="_negative_float_int_array"),
    _binary("left_shift", x=_int(domain=(-100, 100)), y=_int(domain=(-2, 40)), suffix="_int"),
    _binary("right_shift", x=_int(domain=(-100, 100)), y=_int(domain=(-2, 40)), suffix="_int"),
    _binary("right_shift", x=_int(domain=(0, 256), dtype=np.uint8),
            y=_int(domain=(0, 10), dtype=np.uint8), suffix="_uint8"),
    _binary("bitwise_and", x=_int(), y=_int(), suffix="_int"),
    _binary("bitwise_or", x=Arg(S, kind="bool"), y=Arg(S, kind="bool"), suffix="_bool"),
    _binary("bitwise_xor", x=_int(), y=_int(), suffix="_int"),
    Rec("ufunc_invert_int", fnp.invert, [_int()], jnp.invert),
    Rec("ufunc_logical_not_int", fnp.logical_not, [_int(domain=(-1, 2))], jnp.logical_not),
    Rec("ufunc_bitwise_not_bool", fnp.bitwise_not, [Arg(S, kind="bool")], jnp.bitwise_not),
    Rec("ufunc_add_bool", fnp.add, [Arg(S, kind="bool"), Arg(S, kind="bool")], jnp.add),
    Rec("ufunc_multiply_bool", fnp.multiply, [Arg(S, kind="bool"), Arg(S, kind="bool")],
        jnp.multiply),
]
POWERS = [
    Rec(f"ufunc_power_static_{k}".replace("-", "m"), lambda x, k=k: fnp.power(x, k),
        [Arg(S, domain=(0.5, 2.0) if k < 0 else (-2.0, 2.0))], lambda x, k=k: jnp.power(x, k),
        dtypes=F16S)
    for k in (-2, 0, 1, 2, 3)
] + [
    Rec("ufunc_power_static_int_base", lambda x: fnp.power(x, 3), [_int()],
        lambda x: jnp.power(x, 3)),
    Rec("ufunc_power_half", lambda x: fnp.power(x, 0.5), [POSITIVE], lambda x: jnp.power(x, 0.5)),
]
SELECTION = [
    Rec("ufunc_where", fnp.where, [Arg(S, kind="bool"), Arg(S), Arg(S)], jnp.where,
        dtypes=F16S, linear=True),
    Rec("ufunc_where_broadcast_scalar", lambda c, x: fnp.where(c, x, 0.0),
        [Arg((3,), kind="bool"), Arg(S)], lambda c, x: jnp.where(c, x, 0.0), linear=True),
    Rec("ufunc_where_int_condition", fnp.where, [_int(domain=(0, 2)), Arg(S), _int()],
        jnp.where),
    Rec("ufunc_clip", lambda x: fnp.clip(x, -1.0, 1.0), [Arg(S, avoid=(-1.0, 1.0))],
        lambda x: jnp.clip(x, -1.0, 1.0), dtypes=F16S),
    Rec("ufunc_clip_arrays", lambda x, lo, hi: fnp.clip(x, lo, hi),
        [Arg(S, domain=(-2.0, 2.0)), Arg((3,), domain=(-1.5, -0.5)), Arg((2, 1),
                                                                        domain=(0.5, 1.5))],
        lambda x, lo, hi: jnp.clip(x, lo, hi), prepare=lambda x, lo, hi: (
            np.where(np.abs(x - lo) < 0.1, x + 0.3, np.where(np.abs(x - hi) < 0.1, x - 0.3, x)),
            lo, hi)),
    Rec("ufunc_clip_max_only", lambda x: fnp.clip(x, max=0.5), [Arg(S, avoid=(0.5,))],
        lambda x: jnp.clip(x, max=0.5)),
    Rec("ufunc_allclose", lambda x, y: fnp.allclose(x, y), [Arg(S), Arg(S)],
        lambda x, y: jnp.allclose(x, y)),
    Rec("ufunc_allclose_self", lambda x: fnp.allclose(x, x), [Arg(S)],
        lambda x: jnp.allclose(x, x)),
    Rec("ufunc_array_equal", lambda x: fnp.array_equal(x, fnp.multiply(x, 1)), [Arg(S)],
        lambda x: jnp.array_equal(x, jnp.multiply(x, 1))),
    Rec("ufunc_array_equal_shapes", lambda x, y: fnp.array_equal(x, y), [Arg(S), Arg((3,))],
        lambda x, y: jnp.array_equal(x, y)),
    Rec("ufunc_special_values", lambda x: (fnp.isnan(x), fnp.isinf(x), fnp.isposinf(x),
                                           fnp.isneginf(x), fnp.isfinite(x), fnp.signbit(x),
                                           fnp.nan_to_num(x), fnp.sign(x)),
        [_const(np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0], np.float32))],
        lambda x: (jnp.isnan(x), jnp.isinf(x), jnp.isposinf(x), jnp.isneginf(x),
                   jnp.isfinite(x), jnp.signbit(x), jnp.nan_to_num(x), jnp.sign(x))),
]
# fmt: on

# --- array creation from array arguments ------------------------------------------------------
# (Arrays of shape (1,) stand in for scalars: the generic derivative checks need >= 1-d.)
CREATION = [
    Rec("create_linspace", lambda a, b: fnp.linspace(a, b, 5), [Arg((1,)), Arg((1,))],
        lambda a, b: jnp.linspace(a, b, 5), linear=True),
    Rec("create_linspace_arrays_axis1", lambda a, b: fnp.linspace(a, b, 4, axis=1,
                                                                  endpoint=False),
        [Arg((2,)), Arg((3, 1))], lambda a, b: jnp.linspace(a, b, 4, axis=1, endpoint=False),
        linear=True),
    Rec("create_linspace_retstep", lambda a, b: fnp.linspace(a, b, 3, retstep=True),
        [Arg((1,)), Arg((1,))], lambda a, b: jnp.linspace(a, b, 3, retstep=True), linear=True),
    Rec("create_linspace_int", lambda: fnp.linspace(0, 10, 4, dtype=int), [],
        lambda: jnp.linspace(0, 10, 4, dtype=int)),
    Rec("create_logspace", lambda a, b: fnp.logspace(a, b, 4), [Arg((1,)), Arg((1,))],
        lambda a, b: jnp.logspace(a, b, 4)),
    Rec("create_tril", fnp.tril, [Arg((3, 4))], jnp.tril, dtypes=F16S, linear=True),
    Rec("create_triu_k1_batched", lambda m: fnp.triu(m, 1), [Arg((2, 3, 3))],
        lambda m: jnp.triu(m, 1), linear=True),
    Rec("create_tril_km1", lambda m: fnp.tril(m, -1), [Arg((4, 3))], lambda m: jnp.tril(m, -1),
        linear=True),
    Rec("create_diag_1d", fnp.diag, [Arg((3,))], jnp.diag, dtypes=F16S, linear=True),
    Rec("create_diag_1d_k2", lambda v: fnp.diag(v, 2), [Arg((3,))], lambda v: jnp.diag(v, 2),
        linear=True),
    Rec("create_diag_1d_km1", lambda v: fnp.diag(v, -1), [Arg((2,))],
        lambda v: jnp.diag(v, -1), linear=True),
    Rec("create_diag_2d", lambda m: fnp.diag(m, 1), [Arg((3, 4))], lambda m: jnp.diag(m, 1),
        linear=True),
    Rec("create_diagflat", fnp.diagflat, [Arg((2, 2))], jnp.diagflat, linear=True),
    Rec("create_meshgrid_xy", lambda a, b: fnp.meshgrid(a, b), [Arg((2,)), Arg((3,))],
        lambda a, b: jnp.meshgrid(a, b), linear=True),
    Rec("create_meshgrid_ij_sparse", lambda a, b, c: fnp.meshgrid(a, b, c, indexing="ij",
                                                                  sparse=True),
        [Arg((2,)), Arg((3,)), Arg((1,))],
        lambda a, b, c: jnp.meshgrid(a, b, c, indexing="ij", sparse=True), linear=True),
    Rec("create_array_of_traced", lambda a, b: fnp.array([[a[0], b[1]], [b[0], a[0]]]),
        [Arg((1,)), Arg((2,))], lambda a, b: jnp.array([[a[0], b[1]], [b[0], a[0]]]),
        linear=True),
    Rec("create_asarray_dtype", lambda x: fnp.asarray(x, dtype=np.float16), [Arg(S)],
        lambda x: jnp.asarray(x, dtype=np.float16), diff=False),  # float16: too coarse for FD
    Rec("create_astype_int", lambda x: fnp.astype(x, np.int32), [Arg(S, domain=(-5.0, 5.0))],
        lambda x: jnp.astype(x, np.int32)),
    Rec("create_full_traced_fill", lambda v: fnp.full((2, 3), v[0]), [Arg((1,))],
        lambda v: jnp.full((2, 3), v[0]), linear=True),
    Rec("create_full_like", lambda x: fnp.full_like(x, 2.5), [Arg(S)],
        lambda x: jnp.full_like(x, 2.5), dtypes=F16S),
    Rec("create_zeros_like_shape_dtype", lambda x: fnp.zeros_like(x, dtype=np.int8, shape=(4,)),
        [Arg(S)], lambda x: jnp.zeros_like(x, dtype=np.int8, shape=(4,))),
    Rec("create_ones_like_weak", fnp.ones_like, [_const(2.0)], jnp.ones_like),
    Rec("create_arange", lambda: fnp.arange(2, 11, 3), [], lambda: jnp.arange(2, 11, 3)),
    Rec("create_arange_float", lambda: fnp.arange(0.5, 3.0, 0.25), [],
        lambda: jnp.arange(0.5, 3.0, 0.25)),
    Rec("create_arange_f16", lambda: fnp.arange(0, 1, 0.1, dtype=np.float16), [],
        lambda: jnp.arange(0, 1, 0.1, dtype=np.float16)),
    Rec("create_eye", lambda: fnp.eye(3, 4, k=-1, dtype=np.int32), [],
        lambda: jnp.eye(3, 4, k=-1, dtype=np.int32)),
    Rec("create_tri", lambda: fnp.tri(3, 2, 1), [], lambda: jnp.tri(3, 2, 1)),
]

RECORDS: list[Rec] = UNARY + ROUND + BINARY + COMPARISONS + MIXED + INTEGER + POWERS + \
    SELECTION + CREATION
