"""Random-number primitives: the threefry2x32 hash and the bit operations that
turn its output into numbers.

fgrad's random numbers are *counter based* (Salmon et al., "Parallel random
numbers: as easy as 1, 2, 3", SC 2011): a key is two uint32 words, and the
i-th random word of a stream is a hash of (key, i). There is no hidden state,
so the same key gives the same numbers eagerly, under ``jit`` and under
``vmap``; new keys are hashes of old ones (``threefry_split``,
``threefry_fold_in``). The hash, its counter layout and the derived key
operations reproduce JAX's ``threefry2x32`` bit for bit, in JAX's default
``jax_threefry_partitionable=True`` mode (the counter of element i of an
output is the 64-bit index i, as two uint32 words).

Primitives (strict, like all of ``fgrad.lax``):

* ``threefry2x32(k1, k2, x1, x2) -> (y1, y2)``: the Threefry-2x32 block
  cipher (20 rounds), elementwise over four uint32 arrays of one shape;
* ``shift_left``, ``shift_right_logical``: integer shifts with XLA's
  semantics (a shift by the bit width or more gives 0);
* ``bitcast_convert_type``: reinterpret the bits of an array as another
  dtype of the same width (uint32 -> float32 is how uniform floats are made);
* ``fma(x, y, z)``: ``x * y + z`` rounded once. XLA contracts ``a * b + c``
  into a fused multiply-add on CPU and GPU for float32/float64, and
  ``jax.random.uniform``'s final affine map is exactly that, so matching its
  bits needs the fused operation;
* ``argsort``: a stable argsort along one axis (the sort behind
  ``permutation`` and the top-k of sampling without replacement).

All but ``fma`` are non-differentiable (integer outputs or bit patterns).
Below the primitives: strict key-level helpers (``threefry_seed``,
``threefry_split``, ``threefry_fold_in``, ``random_bits``) on raw keys,
uint32 arrays of shape ``(2,)``; the user-facing API is ``fgrad/random.py``.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from fgrad.core import dtypes
from fgrad.core.avals import ShapedArray, get_aval
from fgrad.core.errors import FgradTypeError
from fgrad.core.primitive import Primitive
from fgrad.primitives import elementwise as _ew
from fgrad.primitives import shape as _shape
from fgrad.primitives.rules import (
    FLOAT, INT, binop, check_kind, check_same_types, defbroadcasting, defjvp, defjvp_zero,
    defvectorized, standard_primitive)

_U32 = np.dtype(np.uint32)


# --- threefry2x32 ------------------------------------------------------------------------

def threefry2x32(k1: Any, k2: Any, x1: Any, x2: Any) -> tuple[Any, Any]:
    """The Threefry-2x32 hash of the counters ``(x1, x2)`` under the key ``(k1, k2)``.

    All four operands are uint32 arrays of one shape (strict: no broadcasting);
    returns two uint32 arrays of that shape. ``jax.extend.random.threefry2x32_p``.
    """
    y1, y2 = threefry2x32_p.bind(k1, k2, x1, x2)
    return y1, y2


# Rotation distances of the 8 mixing rounds, used in turns of four; 0x1BD11BDA is the
# key-schedule parity constant of the Threefish cipher.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _threefry2x32_impl(k1: np.ndarray, k2: np.ndarray, x1: np.ndarray,
                       x2: np.ndarray) -> list[np.ndarray]:
    # Threefry-2x32 with 20 rounds: 5 groups of 4 rounds, a key injection after each.
    # uint32 arithmetic wraps modulo 2**32, which is what the cipher wants.
    # (errstate: 0-d operands compute with numpy scalars, which warn when they wrap.)
    with np.errstate(over="ignore"):
        ks = (k1, k2, k1 ^ k2 ^ _PARITY)
        a, b = x1 + ks[0], x2 + ks[1]
        for group in range(5):
            for r in _ROTATIONS[group % 2]:
                a = a + b
                b = (b << np.uint32(r)) | (b >> np.uint32(32 - r))  # rotate left by r
                b = a ^ b
            a = a + ks[(group + 1) % 3]
            b = b + ks[(group + 2) % 3] + np.uint32(group + 1)
    return [np.asarray(a, _U32), np.asarray(b, _U32)]


def _threefry2x32_abstract_eval(*avals: ShapedArray) -> list[ShapedArray]:
    if len(avals) != 4:
        raise FgradTypeError(f"threefry2x32: expected 4 operands (k1, k2, x1, x2), got "
                             f"{len(avals)}")
    if any(a.dtype != _U32 for a in avals) or len({a.shape for a in avals}) != 1:
        raise FgradTypeError("threefry2x32: operands must be uint32 arrays of one shape, got "
                             + ", ".join(a.str_short() for a in avals))
    return [ShapedArray(avals[0].shape, _U32)] * 2


def _threefry2x32_batch(vals: Sequence[Any], dims: Sequence[int | None], *,
                        axis_size: int) -> tuple[list[Any], list[int]]:
    # Elementwise over four equal-shaped operands: line the batch axes up where the first
    # batched operand has it; unbatched operands (typically the counters) are broadcast.
    out_dim = next(d for d in dims if d is not None)
    lined_up = [_batch_axis_to(v, d, out_dim, axis_size) for v, d in zip(vals, dims)]
    return list(threefry2x32_p.bind(*lined_up)), [out_dim, out_dim]


def _batch_axis_to(x: Any, dim: int | None, dst: int, axis_size: int) -> Any:
    """``x`` with its batch axis at ``dst``: moved there, or (unbatched) broadcast into it."""
    from fgrad.transforms.vmap import moveaxis  # transforms import primitives, not vice versa
    if dim is not None:
        return moveaxis(x, dim, dst)
    shape = get_aval(x).shape
    out_shape = (*shape[:dst], axis_size, *shape[dst:])
    return _shape.broadcast_in_dim(x, out_shape, [i for i in range(len(out_shape)) if i != dst])


threefry2x32_p = Primitive("threefry2x32", multiple_results=True)
threefry2x32_p.def_impl(_threefry2x32_impl)
threefry2x32_p.def_abstract_eval(_threefry2x32_abstract_eval)
defjvp_zero(threefry2x32_p)
threefry2x32_p.def_batch(_threefry2x32_batch)


# --- shift_left, shift_right_logical --------------------------------------------------------

def _shift_amounts(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(out-of-range mask, safe shift amounts): XLA reads the amount as unsigned, so a
    negative amount is huge, and any amount >= the bit width shifts everything out."""
    bits = x.dtype.itemsize * 8
    unsigned = np.dtype(f"u{x.dtype.itemsize}")
    amount = y.astype(unsigned)
    out_of_range = amount >= bits
    return out_of_range, np.where(out_of_range, 0, amount).astype(unsigned)


def _shift_left_impl(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out_of_range, amount = _shift_amounts(x, y)
    unsigned = amount.dtype
    shifted = np.left_shift(x.astype(unsigned), amount)
    return np.where(out_of_range, 0, shifted).astype(unsigned).astype(x.dtype)


def _shift_right_logical_impl(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    # Logical: zeros come in from the left, also for signed types (shift the unsigned view).
    out_of_range, amount = _shift_amounts(x, y)
    unsigned = amount.dtype
    shifted = np.right_shift(x.astype(unsigned), amount)
    return np.where(out_of_range, 0, shifted).astype(unsigned).astype(x.dtype)


def shift_left(x: Any, y: Any) -> Any:
    """``x << y`` elementwise on integers of equal shape and dtype; 0 when ``y`` is
    negative or at least the bit width (XLA's semantics). ``lax.shift_left``."""
    return shift_left_p.bind(x, y)


def shift_right_logical(x: Any, y: Any) -> Any:
    """``x >> y`` filling with zeros (also for signed ``x``); 0 when ``y`` is negative or
    at least the bit width. ``lax.shift_right_logical``."""
    return shift_right_logical_p.bind(x, y)


shift_left_p = binop("shift_left", _shift_left_impl, INT)  # binop installs defbroadcasting
shift_right_logical_p = binop("shift_right_logical", _shift_right_logical_impl, INT)
defjvp_zero(shift_left_p)
defjvp_zero(shift_right_logical_p)


# --- bitcast_convert_type ----------------------------------------------------------------

def bitcast_convert_type(operand: Any, new_dtype: Any) -> Any:
    """Reinterpret the bits of ``operand`` as ``new_dtype`` (same bit width only).

    ``lax.bitcast_convert_type``; unlike XLA's, fgrad's does not change the
    shape, so widths must match (uint32 <-> float32/int32, uint16 <-> float16 ...).
    """
    return bitcast_convert_type_p.bind(operand, new_dtype=dtypes.canonicalize_dtype(new_dtype))


def _bitcast_shape(x: ShapedArray, new_dtype: np.dtype) -> tuple[int, ...]:
    if dtypes.is_bool(x.dtype) or dtypes.is_bool(new_dtype):
        raise FgradTypeError(f"bitcast_convert_type: bool has no bit layout to reinterpret, "
                             f"got {x.str_short()} -> {np.dtype(new_dtype)}")
    if x.dtype.itemsize != np.dtype(new_dtype).itemsize:
        raise FgradTypeError(
            f"bitcast_convert_type: {x.str_short()} -> {np.dtype(new_dtype)} changes the bit "
            f"width ({x.dtype.itemsize * 8} -> {np.dtype(new_dtype).itemsize * 8}); fgrad "
            "supports equal widths only")
    return x.shape


bitcast_convert_type_p = standard_primitive(
    "bitcast_convert_type", lambda x, new_dtype: np.asarray(x).view(new_dtype),
    _bitcast_shape, lambda x, new_dtype: np.dtype(new_dtype),
    weak_type_rule=lambda x, new_dtype: False)
defjvp_zero(bitcast_convert_type_p)
defvectorized(bitcast_convert_type_p)


# --- fma -----------------------------------------------------------------------------------

def fma(x: Any, y: Any, z: Any) -> Any:
    """``x * y + z`` with one rounding (a fused multiply-add), for floats of one shape and dtype.

    XLA fuses ``a * b + c`` this way on CPU and GPU (float32, float64), so
    code that must reproduce an XLA computation bit for bit needs it. The
    numpy impl is exact for 16- and 32-bit floats (float64 arithmetic plus an
    error term); for float64 it uses error-free transformations (Dekker's
    product, Knuth's sum), correctly rounded but for vanishingly rare near-ties.
    """
    return fma_p.bind(x, y, z)


def _round_to(exact_hi: np.ndarray, exact_lo: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round ``exact_hi + exact_lo`` (a float64 pair, ``|lo| <= ulp(hi) / 2``) to ``dtype``
    (at most 32 bits) once: to nearest, ties to even.

    ``hi.astype(dtype)`` alone can be one ulp off: it ignores ``lo`` (which
    decides the side when ``hi`` sits on a midpoint), and ml_dtypes rounds
    float64 to bfloat16 through float32. So compare the exact value with the
    midpoints around that first guess: midpoints of ``dtype`` values are
    float64 numbers, ``hi - midpoint`` is exact, and adding ``lo`` keeps the sign.
    """
    guess = np.asarray(exact_hi.astype(dtype))
    uint = np.dtype(f"u{np.dtype(dtype).itemsize}")
    below = np.asarray(np.nextafter(guess, np.array(-np.inf, dtype)))
    above = np.asarray(np.nextafter(guess, np.array(np.inf, dtype)))
    guess64 = guess.astype(np.float64)
    side_low = (exact_hi - (below.astype(np.float64) + guess64) / 2) + exact_lo
    side_high = (exact_hi - (guess64 + above.astype(np.float64)) / 2) + exact_lo

    def even(v: np.ndarray) -> np.ndarray:
        return (v.view(uint) & 1) == 0

    out = np.where(side_low < 0, below, guess)
    out = np.where(side_low == 0, np.where(even(below), below, guess), out)
    out = np.where(side_high > 0, above, out)
    out = np.where(side_high == 0, np.where(even(above), above, guess), out)
    # infinities and NaN (and overflow past the largest finite value) stay as cast
    return np.where(np.isfinite(guess), out, guess).astype(dtype)


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = a + b  # Knuth's TwoSum: s + e == a + b exactly
    b_virtual = s - a
    return s, (a - (s - b_virtual)) + (b - b_virtual)


def _two_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    p = a * b  # Dekker's TwoProduct: p + e == a * b exactly (barring overflow)

    def split(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = 134217729.0 * v  # 2**27 + 1 splits a double into two 26-bit halves
        hi = t - (t - v)
        return hi, v - hi

    a_hi, a_lo = split(a)
    b_hi, b_lo = split(b)
    return p, ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo


def _fma_impl(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    dtype = x.dtype
    with np.errstate(all="ignore"):
        if dtype.itemsize < 8:
            # The product of two floats of <= 24 bits is exact in float64; TwoSum keeps
            # the sum's rounding error, and _round_to rounds the pair once.
            x64, y64, z64 = (v.astype(np.float64) for v in (x, y, z))
            s, e = _two_sum(x64 * y64, z64)
            return np.asarray(_round_to(s, e, dtype))
        p, e = _two_product(x, y)
        s, t = _two_sum(p, z)
        out = s + (t + e)  # correctly rounded but for (vanishingly rare) near-ties
        return np.where(np.isfinite(out), out, x * y + z)


def _fma_shape(x: ShapedArray, y: ShapedArray, z: ShapedArray) -> tuple[int, ...]:
    check_same_types("fma", x, y, z)
    check_kind("fma", FLOAT, x, y, z)
    return x.shape


fma_p = standard_primitive("fma", _fma_impl, _fma_shape, lambda x, y, z: x.dtype)
# d(xy + z) = y dx + x dy + dz (the tangent is not fused: only values must match XLA's bits)
defjvp(fma_p, lambda t, x, y, z: _ew.mul(t, y), lambda t, x, y, z: _ew.mul(x, t),
       lambda t, x, y, z: t)
defbroadcasting(fma_p)


# --- argsort -------------------------------------------------------------------------------

def argsort(operand: Any, dimension: int, index_dtype: Any = np.int32) -> Any:
    """Indices that sort ``operand`` along ``dimension`` ascending, stably (ties keep order).

    ``dimension`` is a non-negative axis. NaNs sort last; -0.0 and 0.0 are
    equal (so they keep their order). ``jnp.argsort(x, axis, stable=True)``.
    """
    return argsort_p.bind(operand, dimension=int(dimension),
                          index_dtype=dtypes.canonicalize_dtype(index_dtype))


def _argsort_impl(x: np.ndarray, dimension: int, index_dtype: np.dtype) -> np.ndarray:
    if x.dtype.kind == "V":  # bfloat16: sort its float32 values (exact)
        x = x.astype(np.float32)
    return np.argsort(x, axis=dimension, kind="stable").astype(index_dtype)


def _argsort_shape(x: ShapedArray, dimension: int, index_dtype: np.dtype) -> tuple[int, ...]:
    if not 0 <= dimension < x.ndim:
        raise FgradTypeError(f"argsort: dimension {dimension} is not an axis of "
                             f"{x.str_short()}")
    if not dtypes.is_int(index_dtype):
        raise FgradTypeError(f"argsort: index_dtype must be an integer dtype, got "
                             f"{np.dtype(index_dtype)}")
    return x.shape


def _argsort_batch(vals: Sequence[Any], dims: Sequence[int | None], *, axis_size: int,
                   dimension: int, index_dtype: np.dtype) -> tuple[Any, int]:
    (x,), (dim,) = vals, dims
    assert dim is not None
    return argsort(x, dimension + 1 if dim <= dimension else dimension, index_dtype), dim


argsort_p = standard_primitive("argsort", _argsort_impl, _argsort_shape,
                               lambda x, dimension, index_dtype: np.dtype(index_dtype),
                               weak_type_rule=lambda x, **_: False)
defjvp_zero(argsort_p)  # an integer output: nothing to differentiate
argsort_p.def_batch(_argsort_batch)


# --- key-level helpers (strict; keys are uint32[2]) ------------------------------------------

def _constant(value: Any, dtype: Any, shape: Sequence[int] = ()) -> Any:
    return _shape.full(tuple(shape), value, np.dtype(dtype))


def key_halves(key: Any) -> tuple[Any, Any]:
    """The two words ``(k1, k2)`` of a raw key ``uint32[2]``, as 0-d arrays."""
    k1 = _shape.reshape(_shape.slice(key, (0,), (1,)), ())
    k2 = _shape.reshape(_shape.slice(key, (1,), (2,)), ())
    return k1, k2


def _counters(shape: tuple[int, ...]) -> tuple[Any, Any]:
    """The 64-bit row-major index of each element of ``shape``, as (high, low) uint32 words."""
    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(f"random: cannot draw {size} values at once (at most 2**32 - 1)")
    low = _shape.iota(_U32, size)
    if shape != (size,):
        low = _shape.reshape(low, shape)
    return _constant(0, _U32, shape), low


def _hash_counters(key: Any, shape: tuple[int, ...]) -> tuple[Any, Any]:
    k1, k2 = key_halves(key)
    k1, k2 = (_shape.broadcast_in_dim(k, shape, ()) for k in (k1, k2))
    return threefry2x32(k1, k2, *_counters(shape))


def threefry_seed(seed: Any) -> Any:
    """The raw key of an integer (or bool) 0-d ``seed``: its 64-bit pattern as two words.

    Seeds of 32 bits or fewer have high word 0 and, if signed, their sign
    extended into the low word (``int8(-1)`` -> ``[0, 0xFFFFFFFF]``), as in JAX.
    """
    aval = get_aval(seed)
    low = _ew.convert_element_type(seed, _U32)  # wraps modulo 2**32 (sign-extends first)
    if aval.dtype.itemsize == 8:
        high = shift_right_logical(seed, _constant(32, aval.dtype))
        high = _ew.convert_element_type(high, _U32)
    else:
        high = _constant(0, _U32)
    return _shape.concatenate([_shape.reshape(high, (1,)), _shape.reshape(low, (1,))], 0)


def threefry_split(key: Any, shape: tuple[int, ...]) -> Any:
    """``shape`` new keys (an array ``shape + (2,)``): the hashes of the counters 0, 1, ...

    Both output words are kept (JAX's partitionable split).
    """
    y1, y2 = _hash_counters(key, shape)
    column = (*shape, 1)
    return _shape.concatenate([_shape.reshape(y1, column), _shape.reshape(y2, column)],
                              len(shape))


def threefry_fold_in(key: Any, data: Any) -> Any:
    """A new key from ``key`` and a 0-d uint32 ``data``: the hash of the counter (0, data)."""
    k1, k2 = key_halves(key)
    y1, y2 = threefry2x32(k1, k2, _constant(0, _U32), data)
    return _shape.concatenate([_shape.reshape(y1, (1,)), _shape.reshape(y2, (1,))], 0)


_UINT_OF_WIDTH = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: _U32,
                  64: np.dtype(np.uint64)}


def random_bits(key: Any, bit_width: int, shape: Sequence[int]) -> Any:
    """Uniform random unsigned integers of ``bit_width`` (8, 16, 32, 64) bits and ``shape``.

    Element i hashes the counter i: 32 bits are the xor of the two hash
    words, 8 and 16 bits its low bits, 64 bits the two words side by side
    (needs ``enable_x64``). JAX's ``threefry_random_bits``, partitionable mode.
    """
    shape = tuple(int(d) for d in shape)
    if bit_width not in _UINT_OF_WIDTH:
        raise ValueError(f"random_bits: bit_width must be 8, 16, 32 or 64, got {bit_width}")
    y1, y2 = _hash_counters(key, shape)
    if bit_width == 64:
        dtype = _UINT_OF_WIDTH[64]
        if dtypes.canonicalize_dtype(dtype) != dtype:
            raise ValueError("random_bits: 64-bit values need fgrad.config.enable_x64")
        high, low = (_ew.convert_element_type(y, dtype) for y in (y1, y2))
        return _ew.bitwise_or(shift_left(high, _constant(32, dtype, shape)), low)
    bits = _ew.bitwise_xor(y1, y2)
    if bit_width == 32:
        return bits
    return _ew.convert_element_type(bits, _UINT_OF_WIDTH[bit_width])  # keeps the low bits


__all__ = ["threefry2x32", "shift_left", "shift_right_logical", "bitcast_convert_type", "fma",
           "argsort"]
