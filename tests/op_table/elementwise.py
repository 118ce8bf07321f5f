"""Op-table records for ``fgrad/primitives/elementwise.py``.

Every unary and binary primitive, with domains that keep derivative checks
away from singularities (``log`` > 0, ``asin`` in (-1, 1), ``acosh`` > 1,
``pow`` with a positive base) and ``avoid`` points that keep them off kinks
and jumps (0 for ``abs`` and ``sign``, the integers for ``floor``, the
half-integers for ``round``). Values are tested in float32, float16 and
bfloat16 against ``jax.lax``; integer and boolean variants where the
primitive accepts them; a few records use weakly typed Python scalars.
"""

from __future__ import annotations

import functools

import jax
import ml_dtypes
import numpy as np

from fgrad import lax
from op_table import Arg, Rec

jlax = jax.lax

F16S = (np.float32, np.float16, ml_dtypes.bfloat16)  # value-test dtypes for float ops
S = (2, 3)  # the default shape: small, with an odd axis
INTS = (-2.0, -1.0, 0.0, 1.0, 2.0)
HALVES = (-1.5, -0.5, 0.5, 1.5)


def _unary(name: str, domain: tuple[float, float] = (-2.0, 2.0), avoid: tuple[float, ...] = (),
           shape: tuple[int, ...] = S, suffix: str = "", **kw: object) -> Rec:
    kw.setdefault("dtypes", F16S)
    return Rec(name + suffix, getattr(lax, name), [Arg(shape, domain=domain, avoid=avoid)],
               getattr(jlax, name), prims=(name,), **kw)  # type: ignore[arg-type]


def _binary(name: str, x: Arg | None = None, y: Arg | None = None, suffix: str = "",
            prim: str | None = None, **kw: object) -> Rec:
    kw.setdefault("dtypes", F16S)
    fn_name = {"not": "bitwise_not", "and": "bitwise_and", "or": "bitwise_or",
               "xor": "bitwise_xor"}.get(name, name)
    return Rec(name + suffix, getattr(lax, fn_name), [x or Arg(S), y or Arg(S)],
               getattr(jlax, fn_name), prims=(prim or name,), **kw)  # type: ignore[arg-type]


def _int(shape: tuple[int, ...] = S, domain: tuple[float, float] = (-5, 6),
         dtype: object = None) -> Arg:
    return Arg(shape, kind="int", domain=domain, dtype=dtype)


def _bool(shape: tuple[int, ...] = S) -> Arg:
    return Arg(shape, kind="bool")


def _apart(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Break ties between max/min operands (a tie is a kink: no second derivative)."""
    close = np.abs(x - y) < 0.1
    return x, np.where(close, x + np.where(x > 0, -0.5, 0.5), y)


def _rem_away_from_jumps(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put x / y in the middle of an integer interval: rem jumps where x / y is an integer."""
    q = x / y
    whole = np.floor(q)
    return y * (whole + 0.25 + 0.5 * (q - whole)), y


# --- unary float ops -----------------------------------------------------------------------
# fmt: off
UNARY = [
    _unary("neg", linear=True),
    _unary("sign", avoid=(0.0,)),
    _unary("floor", avoid=INTS),
    _unary("ceil", avoid=INTS),
    _unary("is_finite"),
    _unary("exp"),
    _unary("exp2"),
    _unary("log", domain=(0.1, 3.0)),
    _unary("log1p", domain=(-0.5, 2.0)),
    _unary("expm1"),
    _unary("tanh"),
    _unary("logistic"),
    _unary("sin"),
    _unary("cos"),
    _unary("tan", domain=(-1.2, 1.2)),
    _unary("asin", domain=(-0.9, 0.9)),
    _unary("acos", domain=(-0.9, 0.9)),
    _unary("atan"),
    _unary("sinh"),
    _unary("cosh"),
    _unary("asinh"),
    _unary("acosh", domain=(1.3, 3.0)),
    _unary("atanh", domain=(-0.8, 0.8)),  # near ±1 second differences lose digits
    _unary("sqrt", domain=(0.1, 3.0)),
    _unary("rsqrt", domain=(0.25, 3.0)),
    _unary("cbrt", domain=(0.2, 3.0)),
    _unary("cbrt", domain=(-3.0, -0.2), suffix="_negative"),
    _unary("abs", avoid=(0.0,)),
    _unary("erf"),
    _unary("erfc"),
    _unary("erf_inv", domain=(-0.9, 0.9)),
    _unary("lgamma", domain=(0.5, 3.0), order=1),  # digamma has no jvp yet
    _unary("digamma", domain=(0.5, 3.0), diff=False),  # no jvp (needs polygamma)
    _unary("square"),
    # edge shapes: 0-d, size-0 and size-1 axes
    _unary("sin", shape=(), suffix="_0d"),
    _unary("exp", shape=(0, 3), suffix="_size0"),
    _unary("tanh", shape=(1, 5, 1), suffix="_size1_axes"),
]
# fmt: on

ROUND = [
    Rec(f"round_method{m}", functools.partial(lax.round, rounding_method=m),
        [Arg(S, domain=(-3.0, 3.0), avoid=HALVES + (-2.5, 2.5))],
        functools.partial(jlax.round, rounding_method=m), prims=("round",), dtypes=F16S)
    for m in (0, 1)
]
# Exact halves are where the two methods differ: away from zero vs to even (no derivatives).
ROUND += [
    Rec(f"round_method{m}_halves", functools.partial(lax.round, rounding_method=m),
        [Arg((8,), kind="const", value=np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.0],
                                                np.float32))],
        functools.partial(jlax.round, rounding_method=m), prims=("round",), diff=False)
    for m in (0, 1)
]

INTEGER_POW = [
    Rec(f"integer_pow_{y}".replace("-", "m"), functools.partial(lax.integer_pow, y=y),
        [Arg(S, domain=(0.7, 2.0) if y < 0 else (-2.0, 2.0))],
        functools.partial(jlax.integer_pow, y=y), prims=("integer_pow",), dtypes=F16S)
    for y in (-3, -2, -1, 0, 1, 2, 3, 5)
] + [
    Rec("integer_pow_m3_negative_base", functools.partial(lax.integer_pow, y=-3),
        [Arg(S, domain=(-2.0, -0.7))], functools.partial(jlax.integer_pow, y=-3),
        prims=("integer_pow",)),
    Rec("integer_pow_3_int", functools.partial(lax.integer_pow, y=3), [_int()],
        functools.partial(jlax.integer_pow, y=3), prims=("integer_pow",)),
    Rec("integer_pow_0_int", functools.partial(lax.integer_pow, y=0), [_int()],
        functools.partial(jlax.integer_pow, y=0), prims=("integer_pow",)),
]

INT_UNARY = [
    Rec("neg_int", lax.neg, [_int()], jlax.neg, prims=("neg",)),
    Rec("sign_int", lax.sign, [_int()], jlax.sign, prims=("sign",)),
    Rec("abs_int", lax.abs, [_int()], jlax.abs, prims=("abs",)),
    Rec("square_int", lax.square, [_int()], jlax.square, prims=("square",)),
    Rec("not_int", lax.bitwise_not, [_int()], jlax.bitwise_not, prims=("not",)),
    Rec("not_bool", lax.bitwise_not, [_bool()], jlax.bitwise_not, prims=("not",)),
    Rec("not_uint8", lax.bitwise_not, [_int(domain=(0, 256), dtype=np.uint8)],
        jlax.bitwise_not, prims=("not",)),
]

# --- binary ops ---------------------------------------------------------------------------
POSITIVE = Arg(S, domain=(0.5, 2.0))
# fmt: off
BINARY = [
    _binary("add", linear=True),
    _binary("sub", linear=True),
    _binary("mul"),
    _binary("div", y=POSITIVE),
    _binary("div", y=Arg(S, domain=(-2.0, -0.5)), suffix="_negative_denominator"),
    _binary("rem", x=Arg(S, domain=(-3.0, 3.0)), y=POSITIVE, prepare=_rem_away_from_jumps),
    _binary("pow", x=POSITIVE),
    _binary("max", prepare=_apart),
    _binary("min", prepare=_apart),
    _binary("atan2", y=POSITIVE),
    _binary("atan2", x=POSITIVE, y=Arg(S, domain=(-2.0, -0.5)), suffix="_left_half_plane"),
    _binary("nextafter", diff=False),  # derivative zero by declaration (JAX defines none)
]
# Ties are legal inputs for values (and for first derivatives: the gradient is split).
BINARY += [
    Rec("max_ties", lax.max, [Arg((4,), kind="const", value=np.array([1, 2, 3, 4], np.float32)),
                              Arg((4,), kind="const", value=np.array([1, 0, 3, 5], np.float32))],
        jlax.max, prims=("max",), diff=False),
    Rec("max_ties_grad", lambda x: lax.max(x, lax.neg(lax.neg(x))),
        [Arg(S)], lambda x: jlax.max(x, jlax.neg(jlax.neg(x))), prims=("max",), order=1),
    Rec("min_ties_grad", lambda x: lax.min(x, lax.neg(lax.neg(x))),
        [Arg(S)], lambda x: jlax.min(x, jlax.neg(jlax.neg(x))), prims=("min",), order=1),
]
COMPARISONS = [
    _binary(op, suffix=suffix, x=make(), y=make(), dtypes=dts)
    for op in ("eq", "ne", "lt", "le", "gt", "ge")
    for suffix, make, dts in [("", lambda: Arg(S, domain=(-1.0, 1.0)), F16S),
                              ("_int", lambda: _int(domain=(-2, 3)), (np.float32,)),
                              ("_bool", _bool, (np.float32,))]
]
INT_BINARY = [
    _binary("add", x=_int(), y=_int(), suffix="_int"),
    _binary("sub", x=_int(), y=_int(), suffix="_int"),
    _binary("mul", x=_int(), y=_int(), suffix="_int"),
    # integer division rounds toward zero; x / 0 is -1 and x % 0 is x (XLA's conventions)
    _binary("div", x=_int(domain=(-9, 10)), y=_int(domain=(-4, 5)), suffix="_int"),
    _binary("rem", x=_int(domain=(-9, 10)), y=_int(domain=(-4, 5)), suffix="_int"),
    _binary("max", x=_int(), y=_int(), suffix="_int"),
    _binary("min", x=_int(), y=_int(), suffix="_int"),
    _binary("max", x=_bool(), y=_bool(), suffix="_bool"),
    _binary("min", x=_bool(), y=_bool(), suffix="_bool"),
    _binary("and", x=_int(), y=_int(), suffix="_int"),
    _binary("or", x=_int(), y=_int(), suffix="_int"),
    _binary("xor", x=_int(), y=_int(), suffix="_int"),
    _binary("and", x=_bool(), y=_bool(), suffix="_bool"),
    _binary("or", x=_bool(), y=_bool(), suffix="_bool"),
    _binary("xor", x=_bool(), y=_bool(), suffix="_bool"),
    _binary("add", x=_int(domain=(0, 256), dtype=np.uint8),
            y=_int(domain=(0, 256), dtype=np.uint8), suffix="_uint8_wraps"),
]
# fmt: on

# Weak types: Python scalars are weak; a strict op on a weak and a strong operand is strong.
WEAK = [
    Rec("add_weak_scalar", lambda x: lax.add(x, 2.0), [Arg(())],
        lambda x: jlax.add(x, 2.0), prims=("add",)),
    Rec("mul_weak_both", lambda c: lax.mul(c, 3.0), [Arg((), kind="const", value=2.0)],
        lambda c: jlax.mul(c, 3.0), prims=("mul",), diff=False),
    Rec("neg_weak", lax.neg, [Arg((), kind="const", value=2.0)], jlax.neg, prims=("neg",),
        diff=False),
    Rec("exp_weak", lax.exp, [Arg((), kind="const", value=0.5)], jlax.exp, prims=("exp",),
        diff=False),
]

# Linear in x for a fixed other operand: the transpose rules of mul and div.
_FIXED = np.array([[0.5, -1.5, 2.0], [1.25, 0.75, -0.5]], np.float32)
LINEAR = [
    Rec("mul_by_const", lambda x: lax.mul(x, lax.convert_element_type(_FIXED, x.dtype)),
        [Arg(S)], lambda x: jlax.mul(x, jlax.convert_element_type(_FIXED, x.dtype)),
        prims=("mul",), linear=True),
    Rec("mul_const_by_x", lambda x: lax.mul(lax.convert_element_type(_FIXED, x.dtype), x),
        [Arg(S)], lambda x: jlax.mul(jlax.convert_element_type(_FIXED, x.dtype), x),
        prims=("mul",), linear=True),
    Rec("div_by_const", lambda x: lax.div(x, lax.convert_element_type(_FIXED, x.dtype)),
        [Arg(S)], lambda x: jlax.div(x, jlax.convert_element_type(_FIXED, x.dtype)),
        prims=("div",), linear=True),
]

# --- select_n ------------------------------------------------------------------------------
SELECT = [
    Rec("select_n_bool", lax.select_n, [_bool(), Arg(S), Arg(S)], jlax.select_n,
        prims=("select_n",), dtypes=F16S, linear=True),
    Rec("select_n_int32_3cases", lax.select_n, [_int(domain=(0, 3)), Arg(S), Arg(S), Arg(S)],
        jlax.select_n, prims=("select_n",), dtypes=F16S, linear=True),
    Rec("select_n_int32_1case", lax.select_n, [_int(domain=(0, 1)), Arg(S)], jlax.select_n,
        prims=("select_n",), linear=True),
    Rec("select_n_int_cases", lax.select_n, [_bool(), _int(), _int()], jlax.select_n,
        prims=("select_n",)),
    Rec("select", lax.select, [_bool(), Arg(S), Arg(S)], jlax.select, prims=("select_n",),
        linear=True),
    Rec("select_n_0d", lax.select_n, [_bool(()), Arg(()), Arg(())], jlax.select_n,
        prims=("select_n",), linear=True),
]


# --- convert_element_type ------------------------------------------------------------------
def _convert(name: str, new_dtype: object, arg: Arg, **kw: object) -> Rec:
    return Rec(name, functools.partial(lax.convert_element_type, new_dtype=new_dtype), [arg],
               functools.partial(jlax.convert_element_type, new_dtype=new_dtype),
               prims=("convert_element_type",), **kw)  # type: ignore[arg-type]


CONVERT = [
    # float -> float is linear (in float64 derivative tests: f64 -> the target dtype).
    # Rounding makes the map linear only up to rounding errors: a large step keeps the
    # finite differences' rounding error (ulp / eps) small, the tolerance allows for it.
    _convert("convert_to_f32", np.float32, Arg(S), dtypes=F16S, linear=True, eps=0.1),
    _convert("convert_to_f64", np.float64, Arg(S), linear=True),
    _convert("convert_to_f16", np.float16, Arg(S), linear=True, eps=0.5, grad_tol=5e-3),
    _convert("convert_to_bf16", ml_dtypes.bfloat16, Arg(S), linear=True, eps=0.5,
             grad_tol=2e-2),
    _convert("convert_f16_to_bf16", ml_dtypes.bfloat16, Arg(S, dtype=np.float16), diff=False),
    # float -> int truncates toward zero and saturates; float -> bool is x != 0.
    _convert("convert_to_i32", np.int32, Arg(S, domain=(-50.0, 50.0))),
    _convert("convert_to_i32_saturates", np.int32, Arg(S, domain=(-5e9, 5e9))),
    _convert("convert_to_uint8", np.uint8, Arg(S, domain=(0.0, 255.0))),
    _convert("convert_to_bool", np.bool_, Arg(S, domain=(-1.0, 1.0))),
    _convert("convert_i32_to_f32", np.float32, _int()),
    _convert("convert_bool_to_f32", np.float32, _bool()),
    _convert("convert_bool_to_i32", np.int32, _bool()),
    _convert("convert_i32_to_int8", np.int8, _int(domain=(-300, 300))),
]

RECORDS: list[Rec] = [*UNARY, *ROUND, *INTEGER_POW, *INT_UNARY, *BINARY, *COMPARISONS,
                      *INT_BINARY, *WEAK, *LINEAR, *SELECT, *CONVERT]
