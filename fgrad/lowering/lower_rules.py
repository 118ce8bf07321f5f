"""Lowering rules: what each primitive is in the kernel IR.

Each rule fills a primitive's ``lower`` slot: ``rule(scheduler, *operands,
**params)`` gets the operands as lazy values (``schedule.Lazy``) and returns
the result's lazy value(s). Four kinds cover the primitives here:

* elementwise: the element of the result is a scalar expression of the
  operands' elements (``_unary(ScalarOp.EXP)``; composite ones such as
  ``logistic`` are written out in scalar ops). 16-bit floats compute in
  float32 and round once at the end: exact for +, -, *, /, sqrt, as in XLA;
* movement: a new indexing of the operand (``reindex``), folded into the
  buffer's strides when the operand is stored;
* reduction: a kernel with an accumulator (``Scheduler.reduce``);
* library call: ``dot_general`` becomes a batched ``gemm`` (``lower_dot.py``),
  a convolution im2col + ``gemm`` (``lower_conv.py``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.lowering.kernel_ir import (
    Alu, Cast, Const, Idx, IndexValue, ScalarOp, Value, all_of, alu, as_idx, const, from_value,
    ge, imax, imin, lt, select)
from fgrad.lowering.schedule import (
    Lazy, Scheduler, buffer_value, elementwise, flat_index, reindex)
from fgrad.lowering.views import row_major_strides

O = ScalarOp
F32 = np.dtype(np.float32)


def _wide(dtype: np.dtype) -> np.dtype:
    """The dtype a computation in ``dtype`` runs in (16-bit floats widen to float32)."""
    return F32 if dtypes.is_float(dtype) and dtype.itemsize == 2 else dtype


def _c(value: float, like: Value) -> Const:
    return Const(np.asarray(value, like.dtype)[()], like.dtype)


def _map(fn: Callable[..., Value], *xs: Lazy, out_dtype: Any = None, weight: int = 1) -> Lazy:
    """``fn`` on the operands' elements, computed in the wide dtype, cast back once."""
    dtype = xs[0].dtype
    wide = _wide(dtype)
    result_dtype = np.dtype(out_dtype) if out_dtype is not None else dtype

    def scalar(*vals: Value) -> Value:
        if wide != dtype:
            vals = tuple(Cast(v, wide) for v in vals)
        out = fn(*vals)
        return out if out.dtype == result_dtype else Cast(out, result_dtype)

    return elementwise(scalar, *xs, dtype=result_dtype, weight=weight)


# Ops that cost several arithmetic instructions (a polynomial, a libm call): recomputing
# them in every consumer of a shared value is worth less (see schedule.RECOMPUTE_LIMIT).
_EXPENSIVE = 4
_CHEAP = frozenset({O.NEG, O.ABS, O.FLOOR, O.CEIL, O.NOT, O.ADD, O.SUB, O.MUL, O.MAX, O.MIN,
                    O.AND, O.OR, O.XOR, O.CMPLT, O.CMPLE, O.CMPEQ, O.CMPNE, O.SHL, O.SHR})


def _unary(op: O) -> Callable[..., Lazy]:
    weight = 1 if op in _CHEAP else _EXPENSIVE
    return lambda s, x, **_: _map(lambda a: alu(op, a), x, weight=weight)


def _binary(op: O, swap: bool = False) -> Callable[..., Lazy]:
    if swap:
        return lambda s, x, y, **_: _map(lambda a, b: alu(op, b, a), x, y,
                                         out_dtype=np.bool_ if op in (O.CMPLT, O.CMPLE) else None)
    is_cmp = op in (O.CMPLT, O.CMPLE, O.CMPEQ, O.CMPNE)
    weight = 1 if op in _CHEAP else _EXPENSIVE
    return lambda s, x, y, **_: _map(lambda a, b: alu(op, a, b), x, y,
                                     out_dtype=np.bool_ if is_cmp else None, weight=weight)


def _composite(fn: Callable[[Value], Value], predicate: bool = False) -> Callable[..., Lazy]:
    return lambda s, x, **_: _map(fn, x, out_dtype=np.bool_ if predicate else None,
                                  weight=_EXPENSIVE)


# --- composite elementwise functions, in scalar ops -------------------------------------------

def _logistic(x: Value) -> Value:
    one = _c(1.0, x)
    return alu(O.DIV, one, alu(O.ADD, one, alu(O.EXP, alu(O.NEG, x))))


def _sign(x: Value) -> Value:
    zero, one = _c(0, x), _c(1, x)
    if x.dtype.kind == "u":
        return alu(O.WHERE, alu(O.CMPLT, zero, x), one, zero)
    return alu(O.WHERE, alu(O.CMPLT, zero, x), one,
               alu(O.WHERE, alu(O.CMPLT, x, zero), _c(-1, x), x))


def _integer_pow(x: Value, y: int) -> Value:
    if y == 0:
        return _c(1, x)
    acc: Value | None = None
    base, n = x, abs(y)
    while n:  # square-and-multiply, as XLA expands integer powers
        if n & 1:
            acc = base if acc is None else alu(O.MUL, acc, base)
        n >>= 1
        if n:
            base = alu(O.MUL, base, base)
    assert acc is not None
    return alu(O.DIV, _c(1, x), acc) if y < 0 else acc


def _round(x: Value, rounding_method: int) -> Value:
    if rounding_method == 0:
        return alu(O.ROUND, x)
    # half to even: round half away, then step back where that landed on an odd number
    # exactly half-way
    r = alu(O.ROUND, x)
    half = alu(O.CMPEQ, alu(O.ABS, alu(O.SUB, r, x)), _c(0.5, x))
    odd = alu(O.CMPNE, alu(O.REM, r, _c(2, x)), _c(0, x))
    step = alu(O.MUL, _sign(alu(O.SUB, r, x)), _c(1, x))
    return alu(O.WHERE, alu(O.AND, half, odd), alu(O.SUB, r, step), r)


_COMPOSITE: dict[str, Callable[[Value], Value]] = {
    "logistic": _logistic,
    "sign": _sign,
    "square": lambda x: alu(O.MUL, x, x),
    "exp2": lambda x: alu(O.POW, _c(2, x), x),
    "tan": lambda x: alu(O.DIV, alu(O.SIN, x), alu(O.COS, x)),
    "is_finite": lambda x: alu(O.CMPEQ, alu(O.SUB, x, x), _c(0, x)),
    "asin": lambda x: alu(O.ATAN2, x, alu(O.SQRT, alu(O.SUB, _c(1, x), alu(O.MUL, x, x)))),
    "acos": lambda x: alu(O.ATAN2, alu(O.SQRT, alu(O.SUB, _c(1, x), alu(O.MUL, x, x))), x),
    "atan": lambda x: alu(O.ATAN2, x, _c(1, x)),
    "sinh": lambda x: alu(O.MUL, _c(0.5, x), alu(O.SUB, alu(O.EXPM1, x),
                                                 alu(O.EXPM1, alu(O.NEG, x)))),
    "cosh": lambda x: alu(O.MUL, _c(0.5, x), alu(O.ADD, alu(O.EXP, x),
                                                 alu(O.EXP, alu(O.NEG, x)))),
    "atanh": lambda x: alu(O.MUL, _c(0.5, x), alu(O.SUB, alu(O.LOG1P, x),
                                                  alu(O.LOG1P, alu(O.NEG, x)))),
    "acosh": lambda x: alu(O.LOG, alu(O.ADD, x, alu(O.SQRT, alu(O.SUB, alu(O.MUL, x, x),
                                                                _c(1, x))))),
    "cbrt": lambda x: alu(O.MUL, _sign(x), alu(O.POW, alu(O.ABS, x), _c(1 / 3, x))),
}


def _asinh(x: Value) -> Value:
    # sign(x) * log1p(|x| + x^2 / (1 + sqrt(1 + x^2))): accurate near 0 and for large |x|
    ax, one = alu(O.ABS, x), _c(1, x)
    x2 = alu(O.MUL, ax, ax)
    mag = alu(O.LOG1P, alu(O.ADD, ax, alu(O.DIV, x2, alu(O.ADD, one, alu(O.SQRT,
                                                                        alu(O.ADD, one, x2))))))
    return alu(O.WHERE, alu(O.CMPLT, x, _c(0, x)), alu(O.NEG, mag), mag)


_COMPOSITE["asinh"] = _asinh


def _poly(coeffs: Sequence[float], w: Value) -> Value:
    """Horner: ``coeffs[0] * w^(n-1) + ... + coeffs[-1]``."""
    p: Value = _c(coeffs[0], w)
    for c in coeffs[1:]:
        p = alu(O.ADD, _c(c, w), alu(O.MUL, p, w))
    return p


# Giles, "Approximating the erfinv function" (GPU Computing Gems, 2011), single precision.
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _erf_inv(y: Value) -> Value:
    """Giles' approximation, then two Newton steps on erf (exact to the last bits in f64)."""
    one = _c(1.0, y)
    w = alu(O.NEG, alu(O.LOG, alu(O.MUL, alu(O.SUB, one, y), alu(O.ADD, one, y))))
    central = _poly(_ERFINV_CENTRAL, alu(O.SUB, w, _c(2.5, y)))
    tail = _poly(_ERFINV_TAIL, alu(O.SUB, alu(O.SQRT, w), _c(3.0, y)))
    x = alu(O.MUL, alu(O.WHERE, alu(O.CMPLT, w, _c(5.0, y)), central, tail), y)
    for _ in range(2):
        slope = alu(O.MUL, _c(2 / np.sqrt(np.pi), y), alu(O.EXP, alu(O.NEG, alu(O.MUL, x, x))))
        x = alu(O.SUB, x, alu(O.DIV, alu(O.SUB, alu(O.ERF, x), y), slope))
    edge = alu(O.CMPEQ, alu(O.ABS, y), one)  # erf_inv(±1) = ±inf
    return alu(O.WHERE, edge, alu(O.MUL, y, _c(np.inf, y)), x)


def _digamma(x: Value) -> Value:
    """Reflection below 1/2, a shift by 6, then the asymptotic series of psi."""
    half, one = _c(0.5, x), _c(1.0, x)
    reflect = alu(O.CMPLT, x, half)
    y = alu(O.WHERE, reflect, alu(O.SUB, one, x), x)
    shift: Value = _c(0.0, x)
    for k in range(6):
        shift = alu(O.ADD, shift, alu(O.DIV, one, alu(O.ADD, y, _c(k, x))))
    z = alu(O.ADD, y, _c(6.0, x))
    inv2 = alu(O.DIV, one, alu(O.MUL, z, z))
    series = alu(O.MUL, inv2, _poly((-691 / 32760, 1 / 132, -1 / 240, 1 / 252, -1 / 120, 1 / 12),
                                    inv2))
    psi = alu(O.SUB, alu(O.SUB, alu(O.SUB, alu(O.LOG, z), alu(O.DIV, half, z)), series), shift)
    pi = _c(np.pi, x)
    reflected = alu(O.SUB, psi, alu(O.DIV, pi, alu(O.DIV, alu(O.SIN, alu(O.MUL, pi, x)),
                                                   alu(O.COS, alu(O.MUL, pi, x)))))
    return alu(O.WHERE, reflect, reflected, psi)


_COMPOSITE["erf_inv"] = _erf_inv
_COMPOSITE["digamma"] = _digamma

_UNARY = {"neg": O.NEG, "abs": O.ABS, "exp": O.EXP, "log": O.LOG, "log1p": O.LOG1P,
          "expm1": O.EXPM1, "sin": O.SIN, "cos": O.COS, "tanh": O.TANH, "sqrt": O.SQRT,
          "rsqrt": O.RSQRT, "floor": O.FLOOR, "ceil": O.CEIL, "not": O.NOT, "erf": O.ERF,
          "erfc": O.ERFC, "lgamma": O.LGAMMA}
_BINARY = {"add": O.ADD, "sub": O.SUB, "mul": O.MUL, "div": O.DIV, "rem": O.REM, "pow": O.POW,
           "max": O.MAX, "min": O.MIN, "atan2": O.ATAN2, "and": O.AND, "or": O.OR,
           "xor": O.XOR, "eq": O.CMPEQ, "ne": O.CMPNE, "lt": O.CMPLT, "le": O.CMPLE,
           "add_any": O.ADD, "nextafter": O.NEXTAFTER, "shift_left": O.SHL,
           "shift_right_logical": O.SHR}
_SWAPPED = {"gt": O.CMPLT, "ge": O.CMPLE}  # x > y is y < x


def _select_n(s: Scheduler, which: Lazy, *cases: Lazy) -> Lazy:
    def fn(w: Value, *vals: Value) -> Value:
        if w.dtype == np.bool_:
            return alu(O.WHERE, w, vals[1], vals[0]) if len(vals) == 2 else vals[0]
        out = vals[-1]
        for k in reversed(range(len(vals) - 1)):
            out = alu(O.WHERE, alu(O.CMPEQ, w, Const(np.asarray(k, w.dtype)[()], w.dtype)),
                      vals[k], out)
        return out
    return elementwise(fn, which, *cases, dtype=cases[0].dtype)


def _convert(s: Scheduler, x: Lazy, *, new_dtype: Any, weak_type: bool) -> Lazy:
    new_dtype = np.dtype(new_dtype)

    def fn(v: Value) -> Value:
        if new_dtype == np.bool_:
            return alu(O.CMPNE, v, _c(0, v))
        return Cast(v, new_dtype)
    return elementwise(fn, x, dtype=new_dtype)


def _bitcast(s: Scheduler, x: Lazy, *, new_dtype: Any) -> Lazy:
    new_dtype = np.dtype(new_dtype)
    return elementwise(lambda v: Alu(O.BITCAST, (v,), new_dtype), x, dtype=new_dtype)


def _fma(s: Scheduler, x: Lazy, y: Lazy, z: Lazy) -> Lazy:
    if x.dtype.itemsize == 2:  # XLA rounds each step for 16-bit floats (so does the impl)
        return _map(lambda a, b, c: alu(O.ADD, alu(O.MUL, a, b), c), x, y, z)
    return elementwise(lambda a, b, c: alu(O.FMA, a, b, c), x, y, z)


_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _threefry2x32(s: Scheduler, k1: Lazy, k2: Lazy, x1: Lazy, x2: Lazy) -> list[Lazy]:
    """Both outputs from one kernel (the compiler shares the 20 rounds between the stores)."""
    from fgrad.lowering.kernel_ir import Store
    from fgrad.lowering.schedule import loop_nest
    u32 = np.dtype(np.uint32)

    def c(v: int) -> Const:
        return Const(np.uint32(v), u32)

    def rounds(idxs: Sequence[Idx]) -> tuple[Value, Value]:
        key1, key2 = k1.read(idxs, None), k2.read(idxs, None)
        ks = (key1, key2, alu(O.XOR, alu(O.XOR, key1, key2), c(0x1BD11BDA)))
        a, b = alu(O.ADD, x1.read(idxs, None), ks[0]), alu(O.ADD, x2.read(idxs, None), ks[1])
        for group in range(5):
            for r in _ROTATIONS[group % 2]:
                a = alu(O.ADD, a, b)
                b = alu(O.OR, alu(O.SHL, b, c(r)), alu(O.SHR, b, c(32 - r)))
                b = alu(O.XOR, a, b)
            a = alu(O.ADD, a, ks[(group + 1) % 3])
            b = alu(O.ADD, alu(O.ADD, b, ks[(group + 2) % 3]), c(group + 1))
        return a, b

    outs = [s.new_buffer(k1.shape, u32), s.new_buffer(k1.shape, u32)]

    def body(idxs: list[Idx]) -> list[Any]:
        a, b = rounds(idxs)
        at = flat_index(idxs, k1.shape)
        return [Store(outs[0].name, at, a), Store(outs[1].name, at, b)]

    s.emit("threefry2x32", loop_nest(k1.shape, body))
    return [buffer_value(o) for o in outs]


# --- movement ---------------------------------------------------------------------------------

def _broadcast_in_dim(s: Scheduler, x: Lazy, *, shape: tuple[int, ...],
                      broadcast_dimensions: tuple[int, ...]) -> Lazy:
    def index_map(idxs: Sequence[Idx]) -> tuple[list[Idx], Idx | None]:
        return [idxs[d] if x.shape[k] == shape[d] else as_idx(0)
                for k, d in enumerate(broadcast_dimensions)], None
    return reindex(x, shape, index_map,
                   lambda t: t.broadcast_in_dim(shape, broadcast_dimensions))


def _unflatten(flat: Idx, shape: Sequence[int]) -> list[Idx]:
    """Row-major coordinates of ``flat`` (< prod(shape)); the outermost needs no ``%``."""
    coords: list[Idx] = []
    outermost = True
    for n, st in zip(shape, row_major_strides(shape)):
        if n == 1:
            coords.append(as_idx(0))
            continue
        coords.append(flat // st if outermost else (flat // st) % n)
        outermost = False
    return coords


def _axis_groups(old: Sequence[int], new: Sequence[int]
                 ) -> list[tuple[list[int], list[int]]] | None:
    """Runs of old and new axes with equal products (size-1 axes left out), in order."""
    a = [d for d, n in enumerate(old) if n != 1]
    b = [d for d, n in enumerate(new) if n != 1]
    groups: list[tuple[list[int], list[int]]] = []
    while a and b:
        ga, gb = [a.pop(0)], [b.pop(0)]
        pa, pb = old[ga[0]], new[gb[0]]
        while pa != pb:
            if pa < pb and a:
                ga.append(a.pop(0))
                pa *= old[ga[-1]]
            elif pb < pa and b:
                gb.append(b.pop(0))
                pb *= new[gb[-1]]
            else:
                return None
        groups.append((ga, gb))
    return None if a or b else groups


def _reshape(s: Scheduler, x: Lazy, *, new_sizes: tuple[int, ...], **_: Any) -> Lazy:
    """A view on a stored value; on a computed one, each run of new axes that splits one
    old axis indexes it affinely (only merged axes need ``/`` and ``%``)."""
    groups = _axis_groups(x.shape, new_sizes) if math.prod(new_sizes) else None

    def index_map(idxs: Sequence[Idx]) -> tuple[list[Idx], Idx | None]:
        if groups is None:
            return _unflatten(flat_index(idxs, new_sizes), x.shape), None
        src: list[Idx] = [as_idx(0)] * len(x.shape)
        for old, new in groups:
            flat = flat_index([idxs[d] for d in new], [new_sizes[d] for d in new])
            for d, i in zip(old, _unflatten(flat, [x.shape[d] for d in old])):
                src[d] = i
        return src, None

    return reindex(x, new_sizes, index_map, lambda t: t.reshape(new_sizes))


def _squeeze(s: Scheduler, x: Lazy, *, dimensions: tuple[int, ...]) -> Lazy:
    shape = tuple(n for d, n in enumerate(x.shape) if d not in dimensions)
    return _reshape(s, x, new_sizes=shape)


def _transpose(s: Scheduler, x: Lazy, *, permutation: tuple[int, ...]) -> Lazy:
    def index_map(idxs: Sequence[Idx]) -> tuple[list[Idx], Idx | None]:
        src: list[Idx] = [as_idx(0)] * x.ndim
        for k, p in enumerate(permutation):
            src[p] = idxs[k]
        return src, None
    shape = tuple(x.shape[p] for p in permutation)
    return reindex(x, shape, index_map, lambda t: t.transpose(permutation))


def _slice(s: Scheduler, x: Lazy, *, start_indices: tuple[int, ...],
           limit_indices: tuple[int, ...], strides: tuple[int, ...] | None) -> Lazy:
    steps = strides or (1,) * x.ndim
    shape = tuple(max(0, -(-(hi - lo) // st))
                  for lo, hi, st in zip(start_indices, limit_indices, steps))
    return reindex(x, shape, lambda idxs: ([i * st + lo for i, lo, st in
                                            zip(idxs, start_indices, steps)], None),
                   lambda t: t.slice(start_indices, limit_indices, steps))


def _rev(s: Scheduler, x: Lazy, *, dimensions: tuple[int, ...]) -> Lazy:
    return reindex(x, x.shape, lambda idxs: ([i * -1 + (n - 1) if d in dimensions else i
                                              for d, (i, n) in enumerate(zip(idxs, x.shape))],
                                             None),
                   lambda t: t.rev(dimensions))


def _pad(s: Scheduler, x: Lazy, fill: Lazy, *,
         padding_config: tuple[tuple[int, int, int], ...]) -> Lazy:
    shape = tuple(lo + hi + n + max(0, n - 1) * interior
                  for n, (lo, hi, interior) in zip(x.shape, padding_config))

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        src, conds = [], []
        for i, n, (lo, _, interior) in zip(idxs, x.shape, padding_config):
            shifted = i + (-lo)
            if interior:
                conds.append(Idx("eq", (shifted % (interior + 1), as_idx(0))))
                shifted = shifted // (interior + 1)
            conds += [ge(i, lo), lt(shifted, n)]
            src.append(shifted)
        cond = all_of(conds)
        return select(cond, x.read(src, all_of([valid, cond])), fill.read([], valid))

    return Lazy(shape, x.dtype, read, cost=x.cost + 1)


def _concatenate(s: Scheduler, *xs: Lazy, dimension: int) -> Lazy:
    offsets = np.cumsum([0] + [x.shape[dimension] for x in xs])
    shape = list(xs[0].shape)
    shape[dimension] = int(offsets[-1])

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        out: Value | None = None
        for x, lo, hi in reversed(list(zip(xs, offsets[:-1], offsets[1:]))):
            i = idxs[dimension]
            inside = all_of([ge(i, int(lo)), lt(i, int(hi))])
            if inside is not None and inside.is_const() and not inside.args[0]:
                continue  # this piece is never read at these indices
            src = list(idxs)
            src[dimension] = i + (-int(lo))
            value = x.read(src, all_of([valid, inside]))
            out = value if out is None else select(lt(i, int(hi)), value, out)
        if out is None:  # an index known to be outside: only read where valid is false
            out = xs[0].read(list(idxs), const(0))
        return out

    return Lazy(shape, xs[0].dtype, read, cost=sum(x.cost for x in xs) + len(xs))


def _iota(s: Scheduler, *, dtype: Any, shape: tuple[int, ...], dimension: int,
          **_: Any) -> Lazy:
    return Lazy(shape, dtype, lambda idxs, valid: IndexValue(idxs[dimension], np.dtype(dtype)))


# --- reductions -------------------------------------------------------------------------------

def _reducer(op: O) -> Callable[..., Lazy]:
    def rule(s: Scheduler, x: Lazy, *, axes: tuple[int, ...]) -> Lazy:
        return s.reduce(x, op, axes, x.dtype, acc_dtype=_wide(x.dtype),
                        name=f"reduce_{op.name.lower()}")
    return rule


def _argminmax(op: O) -> Callable[..., Lazy]:
    """Two passes: the extreme value (NaN-propagating), then the first index holding it."""
    def rule(s: Scheduler, x: Lazy, *, axes: tuple[int, ...], index_dtype: Any) -> Lazy:
        (axis,) = axes
        wide = _wide(x.dtype)
        best = s.reduce(x, op, axes, wide, acc_dtype=wide, name=f"arg{op.name.lower()}_value")
        kept = tuple(d for d in range(x.ndim) if d != axis)
        best_b = _broadcast_in_dim(s, best, shape=x.shape, broadcast_dimensions=kept)
        n = x.shape[axis]

        def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
            v, m = x.read(idxs, valid), best_b.read(idxs, valid)
            v = v if v.dtype == wide else Cast(v, wide)
            hit = alu(O.CMPEQ, v, m)
            if wide.kind == "f":  # NaN is the extreme: the first NaN wins
                hit = alu(O.OR, hit, alu(O.AND, alu(O.CMPNE, v, v), alu(O.CMPNE, m, m)))
            index = IndexValue(idxs[axis], np.dtype(index_dtype))
            return alu(O.WHERE, hit, index, Const(np.asarray(n, index_dtype)[()],
                                                  np.dtype(index_dtype)))

        candidates = Lazy(x.shape, index_dtype, read, cost=x.cost + 4)
        return s.reduce(candidates, O.MIN, axes, index_dtype, name=f"arg{op.name.lower()}")
    return rule


_CUMULATIVE = {"cumsum": O.ADD, "cumprod": O.MUL, "cummax": O.MAX, "cummin": O.MIN,
               "cumlogsumexp": O.LOGADDEXP}


def _cumulative(op: O) -> Callable[..., Lazy]:
    """A sequential loop along ``axis`` storing the running accumulator at every step."""
    def rule(s: Scheduler, x: Lazy, *, axis: int, reverse: bool) -> Lazy:
        from fgrad.lowering.kernel_ir import AccRef, Accumulate, DefineAcc, Loop, Store, var
        from fgrad.lowering.schedule import loop_nest
        wide = _wide(x.dtype)
        out = s.new_buffer(x.shape, x.dtype)
        kept = [d for d in range(x.ndim) if d != axis]
        n = x.shape[axis]

        def body(kept_idxs: list[Idx]) -> list[Any]:
            j = var("j")
            pos = j * -1 + (n - 1) if reverse else j
            full: list[Idx] = [as_idx(0)] * x.ndim
            for d, i in zip(kept, kept_idxs):
                full[d] = i
            full[axis] = pos
            value = x.read(full, None)
            value = value if value.dtype == wide else Cast(value, wide)
            result: Value = AccRef("acc", wide)
            if result.dtype != x.dtype:
                result = Cast(result, x.dtype)
            return [DefineAcc("acc", op, wide),
                    Loop("j", n, (Accumulate("acc", value),
                                  Store(out.name, flat_index(full, x.shape), result)))]

        s.emit(f"{op.name.lower()}_scan", loop_nest([x.shape[d] for d in kept], body))
        return buffer_value(out)
    return rule


# --- indexing: data-dependent indices -----------------------------------------------------------

def _coords(indices: Lazy, batch: Sequence[Idx], axes: Sequence[int], shape: Sequence[int],
            valid: Idx | None) -> tuple[list[Idx], list[Idx]]:
    """Per indexed axis: the raw coordinate read from ``indices`` and its clamped value."""
    raw = [from_value(indices.read([*batch, as_idx(k)], valid)) for k in range(len(axes))]
    clamped = [imin(imax(c, 0), max(shape[a] - 1, 0)) for c, a in zip(raw, axes)]
    return raw, clamped


def _in_bounds(raw: Sequence[Idx], axes: Sequence[int], shape: Sequence[int]) -> Idx | None:
    return all_of([c for r, a in zip(raw, axes) for c in (ge(r, 0), lt(r, shape[a]))])


def _gather(s: Scheduler, operand: Lazy, indices: Lazy, *, axes: tuple[int, ...], mode: str,
            fill_value: Any) -> Lazy:
    from fgrad.primitives.indexing import default_fill_value
    nb = indices.ndim - 1
    rest = [d for d in range(operand.ndim) if d not in axes]
    shape = indices.shape[:-1] + tuple(operand.shape[d] for d in rest)
    fill = default_fill_value(operand.dtype) if fill_value is None else fill_value
    fill_const = Const(np.asarray(fill).astype(operand.dtype)[()], operand.dtype)

    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        raw, clamped = _coords(indices, idxs[:nb], axes, operand.shape, valid)
        src: list[Idx] = [as_idx(0)] * operand.ndim
        for a, c in zip(axes, clamped):
            src[a] = c
        for d, i in zip(rest, idxs[nb:]):
            src[d] = i
        if mode != "fill" or not axes:
            return operand.read(src, valid)
        inside = _in_bounds(raw, axes, operand.shape)
        return select(inside, operand.read(src, all_of([valid, inside])), fill_const)

    return Lazy(shape, operand.dtype, read, cost=operand.cost + indices.cost + 2)


_SCATTER = {"scatter": None, "scatter_add": O.ADD, "scatter_mul": O.MUL,
            "scatter_min": O.MIN, "scatter_max": O.MAX}


def _scatter(op: O | None) -> Callable[..., Lazy]:
    """Copy the operand to a fresh buffer, then one sequential read-modify-write pass."""
    def rule(s: Scheduler, operand: Lazy, indices: Lazy, updates: Lazy, *,
             axes: tuple[int, ...], mode: str) -> Lazy:
        from fgrad.lowering.kernel_ir import Store
        from fgrad.lowering.schedule import loop_nest
        out = s.new_buffer(operand.shape, operand.dtype)
        s.materialize(operand, name="scatter_copy", out=out)
        combine = op
        if operand.dtype == np.bool_ and op in (O.ADD, O.MUL):
            combine = O.OR if op is O.ADD else O.AND  # numpy's add/multiply on bools
        nb = indices.ndim - 1
        rest = [d for d in range(operand.ndim) if d not in axes]

        def body(idxs: list[Idx]) -> list[Any]:
            raw, clamped = _coords(indices, idxs[:nb], axes, operand.shape, None)
            target: list[Idx] = [as_idx(0)] * operand.ndim
            for a, c in zip(axes, clamped):
                target[a] = c
            for d, i in zip(rest, idxs[nb:]):
                target[d] = i
            mask = _in_bounds(raw, axes, operand.shape) if mode == "drop" else None
            return [Store(out.name, flat_index(target, operand.shape),
                          updates.read(idxs, None), op=combine, mask=mask)]

        # sequential: later updates to one position see (or overwrite) earlier ones
        s.emit(f"{'scatter' if op is None else 'scatter_' + op.name.lower()}",
               loop_nest(updates.shape, body, parallel=False))
        return buffer_value(out)
    return rule


def _starts(starts: Sequence[Lazy], shape: Sequence[int], sizes: Sequence[int],
            valid: Idx | None) -> list[Idx]:
    """Start indices clamped so the window stays in bounds (XLA's rule)."""
    return [imin(imax(from_value(st.read([], valid)), 0), n - k)
            for st, n, k in zip(starts, shape, sizes)]


def _dynamic_slice(s: Scheduler, operand: Lazy, *starts: Lazy,
                   slice_sizes: tuple[int, ...]) -> Lazy:
    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        begin = _starts(starts, operand.shape, slice_sizes, valid)
        return operand.read([b + i for b, i in zip(begin, idxs)], valid)
    return Lazy(slice_sizes, operand.dtype, read, cost=operand.cost + 1)


def _dynamic_update_slice(s: Scheduler, operand: Lazy, update: Lazy, *starts: Lazy) -> Lazy:
    def read(idxs: Sequence[Idx], valid: Idx | None) -> Value:
        begin = _starts(starts, operand.shape, update.shape, valid)
        inside = all_of([c for b, i, k in zip(begin, idxs, update.shape)
                         for c in (ge(i, b), lt(i, b + k))])
        new = update.read([i + b * -1 for b, i in zip(begin, idxs)], all_of([valid, inside]))
        return select(inside, new, operand.read(idxs, valid))  # (0-d: always the update)
    return Lazy(operand.shape, operand.dtype, read, cost=operand.cost + update.cost + 2)


# --- the table --------------------------------------------------------------------------------

def install() -> None:
    """Fill the ``lower`` slot of every primitive this module knows."""
    from fgrad.core.primitive import all_primitives
    prims = all_primitives()
    rules: dict[str, Callable[..., Any]] = {}
    rules.update({n: _unary(op) for n, op in _UNARY.items()})
    rules.update({n: _binary(op) for n, op in _BINARY.items()})
    rules.update({n: _binary(op, swap=True) for n, op in _SWAPPED.items()})
    rules.update({n: _composite(fn, predicate=n == "is_finite") for n, fn in _COMPOSITE.items()})
    rules["integer_pow"] = lambda s, x, *, y: _map(lambda v: _integer_pow(v, y), x)
    rules["round"] = lambda s, x, *, rounding_method: _map(
        lambda v: _round(v, rounding_method), x)
    rules["select_n"] = _select_n
    rules["convert_element_type"] = _convert
    rules["stop_gradient"] = lambda s, x, **_: x
    # call primitives: their bodies are inlined (and fuse with their surroundings)
    rules["jit"] = lambda s, *args, jaxpr, **_: s.run_jaxpr(jaxpr, args)
    rules["checkpoint"] = lambda s, *args, jaxpr, **_: s.run_jaxpr(jaxpr, args)
    rules["custom_jvp_call"] = lambda s, *args, call_jaxpr, **_: s.run_jaxpr(call_jaxpr, args)
    rules["custom_vjp_call"] = lambda s, *args, call_jaxpr, **_: s.run_jaxpr(call_jaxpr, args)
    rules.update(broadcast_in_dim=_broadcast_in_dim, reshape=_reshape, squeeze=_squeeze,
                 transpose=_transpose, slice=_slice, rev=_rev, pad=_pad,
                 concatenate=_concatenate, iota=_iota)
    for name, op in (("reduce_sum", O.ADD), ("reduce_max", O.MAX), ("reduce_min", O.MIN),
                     ("reduce_prod", O.MUL), ("reduce_and", O.AND), ("reduce_or", O.OR)):
        rules[name] = _reducer(op)
    rules["argmax"], rules["argmin"] = _argminmax(O.MAX), _argminmax(O.MIN)
    rules.update(bitcast_convert_type=_bitcast, fma=_fma, threefry2x32=_threefry2x32)
    rules.update({n: _scatter(op) for n, op in _SCATTER.items()})
    rules.update(gather=_gather, dynamic_slice=_dynamic_slice,
                 dynamic_update_slice=_dynamic_update_slice)
    rules.update({n: _cumulative(op) for n, op in _CUMULATIVE.items()})
    from fgrad.lowering.lower_control import RULES as control_rules
    from fgrad.lowering.lower_conv import RULES as conv_rules
    from fgrad.lowering.lower_dot import RULES as dot_rules
    from fgrad.lowering.lower_windowed import RULES as windowed_rules
    from fgrad.lowering.host_calls import RULES as host_rules
    rules.update(windowed_rules)
    rules.update(conv_rules)
    rules.update(dot_rules)
    rules.update(control_rules)
    rules.update(host_rules)
    for name, rule in rules.items():
        if name in prims:
            prims[name].lower = rule
    if "custom_lin" in prims:
        prims["custom_lin"].declare_missing(
            "lower", "custom_lin holds a Python backward function; it exists only inside "
            "linearize's linear jaxpr and is transposed away before grad's result is staged")


__all__ = ["install"]
