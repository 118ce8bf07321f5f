"""Elementwise primitives: unary and binary math, comparisons, select, casts.

All are strict: binary operands have equal shapes and equal dtypes (the
``fgrad.numpy`` layer broadcasts and promotes before calling them). The
derivative conventions follow JAX:

* ``max``/``min`` split the gradient evenly between tied operands;
* ``abs``' derivative at 0 is 1 (the side of x >= 0); ``sqrt``'s at 0 is inf;
* comparisons, ``sign``, ``floor``, ``ceil``, ``round`` have zero derivative;
* ``pow(x, y)``'s derivative in ``y`` is taken as 0 where ``x == 0``.

16-bit floats are computed in float32 and rounded back, as XLA does on CPU.

Batching: every primitive here is elementwise, so ``vmap`` needs no per-op
thought. ``unop``/``binop`` install the generic rules themselves; the other
primitives (``is_finite``, ``round``, ``integer_pow``, ``select_n``,
``convert_element_type``) name theirs in their block: ``defvectorized``
(the batch axis just rides along) or ``defbroadcasting`` (batch axes lined
up, unbatched operands broadcast, since the operands must have equal shapes).
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import scipy.special

from fgrad.core import dtypes
from fgrad.core.ad_util import Zero
from fgrad.core.avals import ShapedArray
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive
from fgrad.primitives import shape as _shape
from fgrad.primitives.rules import (
    ANY, FLOAT, INT_OR_BOOL, NUMBER, binop, check_kind, defbilinear, defbroadcasting, defjvp,
    defjvp2, defjvp_zero, deflinear, defvectorized, standard_primitive, unop)


def _via_f32(f: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Run a numpy float function in float32 for float16/bfloat16 inputs."""
    def impl(*args: np.ndarray, **params: Any) -> np.ndarray:
        dtype = args[0].dtype
        if dtype.itemsize == 2 and dtypes.is_float(dtype):
            out = f(*(a.astype(np.float32) for a in args), **params)
            return np.asarray(out).astype(dtype)
        return f(*args, **params)
    impl.__name__ = getattr(f, "__name__", "impl")
    return impl


# NOTE: like XLA, fgrad computes log(-1) = nan and 1/0 = inf silently. numpy would
# warn; the warnings it raises from this module's impls are filtered here (cheaper
# than an errstate context around every call, which matters for eager speed).
# (The filter names every fgrad module: numpy attributes the warning of a ufunc
# called directly as an impl to the Python frame that called it.)
warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"fgrad(\.|$)")


def _c(x: Any, value: float) -> Any:
    """A constant array shaped and typed like ``x`` (rules stay in strict fgrad ops)."""
    return _shape.full_like(x, value)


# fmt: off
# --- unary math: one line each (impl + shape/dtype rule), then the JVP --------------
neg_p      = unop("neg",      np.negative,                     NUMBER)
sign_p     = unop("sign",     np.sign,                         NUMBER)
floor_p    = unop("floor",    _via_f32(np.floor),              FLOAT)
ceil_p     = unop("ceil",     _via_f32(np.ceil),               FLOAT)
is_finite_p = standard_primitive("is_finite", np.isfinite,
                                 lambda x: check_kind("is_finite", FLOAT, x) or x.shape,
                                 lambda x: np.dtype(bool), lambda x: False)
exp_p      = unop("exp",      _via_f32(np.exp),                FLOAT)
exp2_p     = unop("exp2",     _via_f32(np.exp2),               FLOAT)
log_p      = unop("log",      _via_f32(np.log),                FLOAT)
log1p_p    = unop("log1p",    _via_f32(np.log1p),              FLOAT)
expm1_p    = unop("expm1",    _via_f32(np.expm1),              FLOAT)
tanh_p     = unop("tanh",     _via_f32(np.tanh),               FLOAT)
logistic_p = unop("logistic", _via_f32(scipy.special.expit),   FLOAT)
sin_p      = unop("sin",      _via_f32(np.sin),                FLOAT)
cos_p      = unop("cos",      _via_f32(np.cos),                FLOAT)
tan_p      = unop("tan",      _via_f32(np.tan),                FLOAT)
asin_p     = unop("asin",     _via_f32(np.arcsin),             FLOAT)
acos_p     = unop("acos",     _via_f32(np.arccos),             FLOAT)
atan_p     = unop("atan",     _via_f32(np.arctan),             FLOAT)
sinh_p     = unop("sinh",     _via_f32(np.sinh),               FLOAT)
cosh_p     = unop("cosh",     _via_f32(np.cosh),               FLOAT)
asinh_p    = unop("asinh",    _via_f32(np.arcsinh),            FLOAT)
acosh_p    = unop("acosh",    _via_f32(np.arccosh),            FLOAT)
atanh_p    = unop("atanh",    _via_f32(np.arctanh),            FLOAT)
sqrt_p     = unop("sqrt",     _via_f32(np.sqrt),               FLOAT)
rsqrt_p    = unop("rsqrt",    _via_f32(lambda x: 1 / np.sqrt(x)), FLOAT)
cbrt_p     = unop("cbrt",     _via_f32(np.cbrt),               FLOAT)
abs_p      = unop("abs",      np.abs,                          NUMBER)
erf_p      = unop("erf",      _via_f32(scipy.special.erf),     FLOAT)
erfc_p     = unop("erfc",     _via_f32(scipy.special.erfc),    FLOAT)
erf_inv_p  = unop("erf_inv",  _via_f32(scipy.special.erfinv),  FLOAT)
lgamma_p   = unop("lgamma",   _via_f32(scipy.special.gammaln), FLOAT)
digamma_p  = unop("digamma",  _via_f32(scipy.special.psi),     FLOAT)
not_p      = unop("not",      lambda x: np.invert(x),          INT_OR_BOOL)
# fmt: on
defvectorized(is_finite_p)


def _round_impl(x: np.ndarray, rounding_method: int) -> np.ndarray:
    # 0: half away from zero (lax.round's default), 1: half to even (numpy's, jnp.round's)
    if rounding_method == 1:
        return np.round(x)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


round_p = unop("round", _via_f32(_round_impl), FLOAT)  # batched by unop (param passed through)


def _integer_pow_impl(x: np.ndarray, y: int) -> np.ndarray:
    if y < 0:
        return 1 / np.power(x, -y, dtype=x.dtype)
    return np.power(x, y, dtype=x.dtype)


def _integer_pow_shape(x: ShapedArray, y: int) -> tuple[int, ...]:
    check_kind("integer_pow", NUMBER, x)
    if y < 0 and dtypes.is_int(x.dtype):
        raise FgradTypeError(f"integer_pow: integers cannot be raised to negative powers, got "
                             f"integer_pow({x.str_short()}, {y})")
    return x.shape


integer_pow_p = standard_primitive("integer_pow", _via_f32(_integer_pow_impl),
                                   _integer_pow_shape, lambda x, y: x.dtype)
defvectorized(integer_pow_p)
square_p = unop("square", _via_f32(np.square), NUMBER)


# fmt: off
for _p in (sign_p, floor_p, ceil_p, round_p, is_finite_p, not_p):
    defjvp_zero(_p)
deflinear(neg_p, lambda ct, x: [neg(ct)])
defjvp2(exp_p,      lambda t, ans, x: mul(t, ans))
defjvp2(exp2_p,     lambda t, ans, x: mul(t, mul(ans, _c(x, np.log(2)))))
defjvp(log_p,       lambda t, x: div(t, x))
defjvp(log1p_p,     lambda t, x: div(t, add(x, _c(x, 1))))
defjvp2(expm1_p,    lambda t, ans, x: mul(t, add(ans, _c(x, 1))))
defjvp2(tanh_p,     lambda t, ans, x: mul(t, sub(_c(x, 1), square(ans))))
defjvp2(logistic_p, lambda t, ans, x: mul(t, mul(ans, sub(_c(x, 1), ans))))
defjvp(sin_p,       lambda t, x: mul(t, cos(x)))
defjvp(cos_p,       lambda t, x: neg(mul(t, sin(x))))
defjvp2(tan_p,      lambda t, ans, x: mul(t, add(_c(x, 1), square(ans))))
defjvp(asin_p,      lambda t, x: mul(t, rsqrt(sub(_c(x, 1), square(x)))))
defjvp(acos_p,      lambda t, x: neg(mul(t, rsqrt(sub(_c(x, 1), square(x))))))
defjvp(atan_p,      lambda t, x: div(t, add(_c(x, 1), square(x))))
defjvp(sinh_p,      lambda t, x: mul(t, cosh(x)))
defjvp(cosh_p,      lambda t, x: mul(t, sinh(x)))
defjvp(asinh_p,     lambda t, x: mul(t, rsqrt(add(square(x), _c(x, 1)))))
defjvp(acosh_p,     lambda t, x: mul(t, rsqrt(mul(sub(x, _c(x, 1)), add(x, _c(x, 1))))))
defjvp(atanh_p,     lambda t, x: div(t, sub(_c(x, 1), square(x))))
defjvp2(sqrt_p,     lambda t, ans, x: div(t, mul(_c(x, 2), ans)))
defjvp2(rsqrt_p,    lambda t, ans, x: mul(t, mul(_c(x, -0.5), div(ans, x))))
defjvp2(cbrt_p,     lambda t, ans, x: mul(t, mul(_c(x, 1 / 3), integer_pow(ans, -2))))
defjvp(abs_p,       lambda t, x: select(ge(x, _c(x, 0)), t, neg(t)))
defjvp(erf_p,       lambda t, x: mul(t, mul(_c(x, 2 / np.sqrt(np.pi)), exp(neg(square(x))))))
defjvp(erfc_p,      lambda t, x: mul(t, mul(_c(x, -2 / np.sqrt(np.pi)), exp(neg(square(x))))))
defjvp2(erf_inv_p,  lambda t, ans, x: mul(t, mul(_c(x, np.sqrt(np.pi) / 2), exp(square(ans)))))
defjvp(lgamma_p,    lambda t, x: mul(t, digamma(x)))
defjvp(square_p,    lambda t, x: mul(t, mul(_c(x, 2), x)))
# fmt: on
digamma_p.declare_missing("jvp", "needs polygamma(1, x), which fgrad does not have yet")


def _integer_pow_jvp(t: Any, x: Any, y: int) -> Any:
    if y == 0:
        return _shape.full_like(t, 0)
    if y == 1:
        return t
    pow_y_minus_1 = x if y == 2 else integer_pow(x, y - 1)
    return mul(t, mul(_c(x, y), pow_y_minus_1))


defjvp(integer_pow_p, _integer_pow_jvp)


# --- binary arithmetic -------------------------------------------------------------

def _int_div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero (C and XLA semantics, not numpy's floor)."""
    with np.errstate(all="ignore"):
        if dtypes.is_int(x.dtype):
            y_safe = np.where(y == 0, 1, y).astype(x.dtype)
            # x - fmod(x, y) is an exact multiple of y, so floor division of it is
            # truncating division, with no abs() to overflow at the smallest integer.
            q = (x - np.fmod(x, y_safe)) // y_safe
            return np.where(y == 0, -1, q).astype(x.dtype)
        return np.divide(x, y)


def _rem(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        if dtypes.is_int(x.dtype):
            return np.where(y == 0, x, np.fmod(x, np.where(y == 0, 1, y))).astype(x.dtype)
        return np.fmod(x, y)


def _nan_max(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.maximum(x, y)  # propagates NaN, like XLA


# fmt: off
add_p   = binop("add",   np.add,                 NUMBER)
sub_p   = binop("sub",   np.subtract,            NUMBER)
mul_p   = binop("mul",   np.multiply,            NUMBER)
div_p   = binop("div",   _via_f32(_int_div),     NUMBER)
rem_p   = binop("rem",   _via_f32(_rem),         NUMBER)
pow_p   = binop("pow",   _via_f32(np.power),     FLOAT)
max_p   = binop("max",   _nan_max,               ANY)
min_p   = binop("min",   np.minimum,             ANY)
atan2_p = binop("atan2", _via_f32(np.arctan2),   FLOAT)
and_p   = binop("and",   np.bitwise_and,         INT_OR_BOOL)
or_p    = binop("or",    np.bitwise_or,          INT_OR_BOOL)
xor_p   = binop("xor",   np.bitwise_xor,         INT_OR_BOOL)
eq_p    = binop("eq",    np.equal,               ANY, result_dtype=bool)
ne_p    = binop("ne",    np.not_equal,           ANY, result_dtype=bool)
lt_p    = binop("lt",    np.less,                ANY, result_dtype=bool)
le_p    = binop("le",    np.less_equal,          ANY, result_dtype=bool)
gt_p    = binop("gt",    np.greater,             ANY, result_dtype=bool)
ge_p    = binop("ge",    np.greater_equal,       ANY, result_dtype=bool)
nextafter_p = binop("nextafter", np.nextafter,   FLOAT)

for _p in (and_p, or_p, xor_p, eq_p, ne_p, lt_p, le_p, gt_p, ge_p, nextafter_p):
    defjvp_zero(_p)
deflinear(add_p, lambda ct, x, y: [ct, ct], linear_args=(0, 1))
deflinear(sub_p, lambda ct, x, y: [ct, neg(ct)], linear_args=(0, 1))
add_p.def_jvp(lambda primals, tangents: _add_sub_jvp(add_p, primals, tangents))
sub_p.def_jvp(lambda primals, tangents: _add_sub_jvp(sub_p, primals, tangents))
defbilinear(mul_p, lambda ct, x, y: mul(ct, y), lambda ct, x, y: mul(x, ct))
defjvp2(div_p,   lambda t, ans, x, y: div(t, y),
                 lambda t, ans, x, y: neg(mul(t, div(ans, y))))
defjvp(rem_p,    lambda t, x, y: t,
                 lambda t, x, y: neg(mul(t, mul(sign(div(x, y)), floor(abs(div(x, y)))))))
defjvp2(pow_p,   lambda t, ans, x, y: mul(t, mul(y, pow(x, sub(y, _c(y, 1))))),
                 lambda t, ans, x, y: mul(t, mul(log(_replace_zero(x)), ans)))
defjvp2(max_p,   lambda t, ans, x, y: mul(t, _balanced_eq(x, ans, y)),
                 lambda t, ans, x, y: mul(t, _balanced_eq(y, ans, x)))
defjvp2(min_p,   lambda t, ans, x, y: mul(t, _balanced_eq(x, ans, y)),
                 lambda t, ans, x, y: mul(t, _balanced_eq(y, ans, x)))
defjvp(atan2_p,  lambda t, x, y: mul(t, div(y, add(square(x), square(y)))),
                 lambda t, x, y: neg(mul(t, div(x, add(square(x), square(y))))))
# fmt: on
div_p.linear_args = (0,)
div_p.def_transpose(lambda ct, x, y: [div(ct, y), None])


def _add_sub_jvp(prim: Primitive, primals: Any, tangents: Any) -> tuple[Any, Any]:
    """``x ± y`` is linear, and a symbolic zero stays symbolic: ``(x + c)' = x'`` and
    ``(c - y)' = -y'``, with no zeros materialised and no ``add t 0`` recorded."""
    x_dot, y_dot = tangents
    out = prim.bind(*primals)
    if type(y_dot) is Zero:
        return out, x_dot
    if type(x_dot) is Zero:
        return out, y_dot if prim is add_p else neg(y_dot)
    return out, prim.bind(x_dot, y_dot)


def _replace_zero(x: Any) -> Any:
    return select_n(eq(x, _c(x, 0)), x, _c(x, 1))


def _balanced_eq(x: Any, z: Any, y: Any) -> Any:
    """1 where x == z (halved where also y == z), else 0: the share of max/min's gradient."""
    ones, zeros = _c(z, 1), _c(z, 0)
    return div(select_n(eq(x, z), zeros, ones), select_n(eq(y, z), ones, _c(z, 2)))


# --- select_n: out[i] = cases[which[i]] ----------------------------------------------

def _select_n_impl(which: np.ndarray, *cases: np.ndarray) -> np.ndarray:
    if len(cases) == 2 and which.dtype == np.bool_:
        return np.where(which, cases[1], cases[0])
    return np.choose(which.astype(np.int64), cases, mode="clip")


def _select_n_shape(which: ShapedArray, *cases: ShapedArray) -> tuple[int, ...]:
    if not cases:
        raise FgradTypeError("select_n: needs at least one case")
    from fgrad.primitives.rules import check_same_types
    check_same_types("select_n", *cases)
    if which.shape != cases[0].shape:
        raise FgradTypeError(f"select_n: predicate shape {which.str_short()} must equal the "
                             f"case shape {cases[0].str_short()}")
    if dtypes.is_bool(which.dtype):
        if len(cases) > 2:
            raise FgradTypeError("select_n: a boolean predicate selects between 2 cases, "
                                 f"got {len(cases)}")
    elif which.dtype != np.int32:
        raise FgradTypeError(f"select_n: predicate must be bool or int32, got "
                             f"{which.str_short()}")
    return cases[0].shape


select_n_p = standard_primitive(
    "select_n", _select_n_impl, _select_n_shape, lambda which, *cases: cases[0].dtype,
    weak_type_rule=lambda which, *cases: all(c.weak_type for c in cases))


def _select_n_jvp(primals: Any, tangents: Any) -> Any:
    from fgrad.transforms.jvp import instantiate_zeros
    which, *cases = primals
    out = select_n(which, *cases)
    case_tangents = tangents[1:]
    if all(type(t) is Zero for t in case_tangents):
        return out, Zero(case_tangents[0].aval)
    return out, select_n(which, *map(instantiate_zeros, case_tangents))


def _select_n_transpose(ct: Any, which: Any, *cases: Any) -> list[Any]:
    from fgrad.core.ad_util import is_undefined_primal
    zeros = _shape.full_like(ct, 0)
    cts: list[Any] = [None]
    for i, case in enumerate(cases):
        if is_undefined_primal(case):
            branches = [zeros] * len(cases)
            branches[i] = ct
            cts.append(select_n(which, *branches))
        else:
            cts.append(None)
    return cts


select_n_p.def_jvp(_select_n_jvp)
select_n_p.def_transpose(_select_n_transpose)
# The predicate has the cases' shape, so it is lined up like any other operand: a batched
# predicate with unbatched cases broadcasts the cases, and vice versa.
defbroadcasting(select_n_p)
select_n_p.linear_args = "all cases"  # linear in every case, not in the predicate


# --- convert_element_type ---------------------------------------------------------------

def _convert_impl(x: np.ndarray, new_dtype: np.dtype, weak_type: bool) -> np.ndarray:
    if dtypes.is_int(new_dtype) and dtypes.is_float(x.dtype):
        with np.errstate(all="ignore"):  # XLA: truncate toward zero; NaN -> 0; saturate
            info = np.iinfo(new_dtype)
            clipped = np.clip(np.nan_to_num(np.trunc(x.astype(np.float64)), nan=0.0),
                              info.min, info.max)
            return clipped.astype(new_dtype)
    if dtypes.is_bool(new_dtype):
        return x != 0
    return x.astype(new_dtype)


def _convert_shape(x: ShapedArray, new_dtype: np.dtype, weak_type: bool) -> tuple[int, ...]:
    return x.shape


convert_element_type_p = standard_primitive(
    "convert_element_type", _convert_impl, _convert_shape,
    lambda x, new_dtype, weak_type: np.dtype(new_dtype),
    weak_type_rule=lambda x, new_dtype, weak_type: weak_type)


def _convert_jvp(primals: Any, tangents: Any, new_dtype: np.dtype, weak_type: bool) -> Any:
    (x,), (t,) = primals, tangents
    out = convert_element_type(x, new_dtype, weak_type)
    if type(t) is Zero or not (dtypes.is_float(new_dtype) and dtypes.is_float(x.dtype)):
        return out, Zero(ShapedArray(x.shape, new_dtype))
    return out, convert_element_type(t, new_dtype, False)


def _convert_transpose(ct: Any, x: Any, new_dtype: np.dtype, weak_type: bool) -> list[Any]:
    return [convert_element_type(ct, x.aval.dtype, False)]


convert_element_type_p.def_jvp(_convert_jvp)
convert_element_type_p.def_transpose(_convert_transpose)
defvectorized(convert_element_type_p)
convert_element_type_p.linear_args = (0,)


# --- strict wrappers (the fgrad.lax functions) ---------------------------------------

def _unary(prim: Primitive) -> Callable[[Any], Any]:
    def wrapper(x: Any) -> Any:
        return prim.bind(x)
    wrapper.__name__ = wrapper.__qualname__ = prim.name
    wrapper.__doc__ = f"Elementwise ``{prim.name}`` (strict: see ``fgrad.lax``)."
    return wrapper


def _binary(prim: Primitive) -> Callable[[Any, Any], Any]:
    def wrapper(x: Any, y: Any) -> Any:
        return prim.bind(x, y)
    wrapper.__name__ = wrapper.__qualname__ = prim.name
    wrapper.__doc__ = f"Elementwise ``{prim.name}`` of two arrays of equal shape and dtype."
    return wrapper


# fmt: off
neg, sign, floor, ceil, is_finite = map(_unary, (neg_p, sign_p, floor_p, ceil_p, is_finite_p))
exp, exp2, log, log1p, expm1 = map(_unary, (exp_p, exp2_p, log_p, log1p_p, expm1_p))
tanh, logistic, sin, cos, tan = map(_unary, (tanh_p, logistic_p, sin_p, cos_p, tan_p))
asin, acos, atan, sinh, cosh = map(_unary, (asin_p, acos_p, atan_p, sinh_p, cosh_p))
asinh, acosh, atanh, sqrt, rsqrt = map(_unary, (asinh_p, acosh_p, atanh_p, sqrt_p, rsqrt_p))
cbrt, abs, erf, erfc, erf_inv = map(_unary, (cbrt_p, abs_p, erf_p, erfc_p, erf_inv_p))  # noqa: A001
lgamma, digamma, bitwise_not, square = map(_unary, (lgamma_p, digamma_p, not_p, square_p))
add, sub, mul, div, rem = map(_binary, (add_p, sub_p, mul_p, div_p, rem_p))
pow, max, min, atan2 = map(_binary, (pow_p, max_p, min_p, atan2_p))  # noqa: A001
bitwise_and, bitwise_or, bitwise_xor = map(_binary, (and_p, or_p, xor_p))
eq, ne, lt, le, gt, ge = map(_binary, (eq_p, ne_p, lt_p, le_p, gt_p, ge_p))
nextafter = _binary(nextafter_p)
# fmt: on


def round(x: Any, rounding_method: int = 0) -> Any:  # noqa: A001
    """Round to integral values: 0 = half away from zero (default), 1 = half to even."""
    return round_p.bind(x, rounding_method=int(rounding_method))


def integer_pow(x: Any, y: int) -> Any:
    """``x ** y`` for a static Python integer ``y``."""
    return integer_pow_p.bind(x, y=int(y))


def select_n(which: Any, *cases: Any) -> Any:
    """``cases[which]`` elementwise; ``which`` is bool (2 cases) or int32."""
    return select_n_p.bind(which, *cases)


def select(pred: Any, on_true: Any, on_false: Any) -> Any:
    """``on_true`` where ``pred`` else ``on_false`` (``lax.select``)."""
    return select_n_p.bind(pred, on_false, on_true)


def convert_element_type(x: Any, new_dtype: Any, weak_type: bool = False) -> Any:
    """Cast ``x`` to ``new_dtype`` (canonicalized: float64 needs ``enable_x64``)."""
    new_dtype = dtypes.canonicalize_dtype(new_dtype)
    return convert_element_type_p.bind(x, new_dtype=new_dtype, weak_type=bool(weak_type))


__all__ = [
    "neg", "sign", "floor", "ceil", "is_finite", "exp", "exp2", "log", "log1p", "expm1", "tanh",
    "logistic", "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh",
    "atanh", "sqrt", "rsqrt", "cbrt", "abs", "erf", "erfc", "erf_inv", "lgamma", "digamma",
    "bitwise_not", "square", "add", "sub", "mul", "div", "rem", "pow", "max", "min", "atan2",
    "bitwise_and", "bitwise_or", "bitwise_xor", "eq", "ne", "lt", "le", "gt", "ge", "nextafter",
    "round", "integer_pow", "select_n", "select", "convert_element_type",
]
