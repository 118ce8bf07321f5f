"""How fgrad's scalars are spelled in CUDA C: types, literals, conversions, and the prelude.

NVRTC compiles without headers (no ``<cuda_fp16.h>``, no ``<cmath>``, no
``INFINITY``), so what kernels need beyond the built-in math functions
(``expf``, ``log1pf``, ``erff`` ...) and bit casts (``__float_as_uint`` ...)
is written here as ``PRELUDE``, in plain C++ that the CPU emulator compiles
too. Every helper is ``inline`` (unused ones cost nothing, and draw no warning) and
``fg_``-named:

* ``fg_max``/``fg_min``: numpy's NaN-propagating ``maximum``/``minimum``
  (``fmaxf`` would drop the NaN); on a tie the first operand, as numpy.
* ``fg_div``/``fg_rem``/``fg_ipow``: integer division, remainder and power
  with XLA's answers where C has none (``x / 0 == -1``, ``x % 0 == x``,
  ``INT_MIN / -1 == INT_MIN``): never a trap, never undefined behaviour.
* ``fg_to_int<T>``: float to integer as XLA converts: saturating, NaN to 0.
* 16-bit floats live in memory as ``unsigned short`` bits and in registers
  as ``float`` values exactly representable in the 16-bit format:
  ``fg_h2f``/``fg_f2h`` (float16), ``fg_b2f``/``fg_f2b`` (bfloat16) convert
  (round to nearest even); ``fg_rh``/``fg_rb`` round a float, or a double
  without double rounding, to the format. Every operation on a 16-bit value
  computes in float and rounds once, which is what numpy does.
* ``fg_logaddexp``, ``fg_next16`` (``nextafter`` in a 16-bit format),
  ``fg_bitcast`` and ``fg_atomic`` (an atomic read-modify-write by
  compare-and-swap, for scatters).

Literals are exact: the shortest decimal that reads back as the same value,
and infinities and NaNs as bit patterns. Conversions follow
``semantics.cast``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fgrad.core import dtypes

PRELUDE = r"""// ---- fgrad prelude: helpers for the kernels below (NVRTC has no header files)
template <class T> __device__ __forceinline__ T fg_max(T a, T b) {
  return (a >= b || a != a) ? a : b;
}
template <class T> __device__ __forceinline__ T fg_min(T a, T b) {
  return (a <= b || a != a) ? a : b;
}

// integer division and remainder: C's truncation, XLA's answers where C has none
template <class T> __device__ __forceinline__ T fg_div(T x, T y) {
  if (y == (T)0) return (T)-1;
  // signed T: INT_MIN / -1 wraps to INT_MIN
  if ((T)-1 < (T)0 && y == (T)-1) return (T)(0ull - (unsigned long long)x);
  return (T)(x / y);
}
template <class T> __device__ __forceinline__ T fg_rem(T x, T y) {
  if (y == (T)0) return x;
  if ((T)-1 < (T)0 && y == (T)-1) return (T)0;
  return (T)(x % y);
}
// x**y wrapping around; a negative y gives 0 unless |x| == 1
template <class T> __device__ inline T fg_ipow(T x, T y) {
  if (y < (T)1 && y != (T)0)  // y < 0 (spelled so that unsigned T draws no warning)
    return x == (T)1 ? (T)1 : x == (T)-1 ? ((y & (T)1) ? (T)-1 : (T)1) : (T)0;
  unsigned long long r = 1, b = (unsigned long long)x;
  for (T n = y; n > (T)0; n = (T)(n >> 1)) { if (n & (T)1) r *= b; b *= b; }
  return (T)r;
}

// float -> integer, saturating; NaN -> 0 (a C cast is undefined outside the range)
template <class T, class F> __device__ __forceinline__ T fg_to_int(F x) {
  const bool is_signed = (T)-1 < (T)0;
  const T hi = (T)(~0ull >> (64 - 8 * sizeof(T) + (is_signed ? 1 : 0)));
  const T lo = is_signed ? (T)(-hi - 1) : (T)0;
  if (x != x) return (T)0;
  if (x >= (F)hi) return hi;  // (F)hi rounds up to a power of two for the wide types
  if (x <= (F)lo) return lo;
  return (T)x;
}

template <class To, class From> __device__ __forceinline__ To fg_bitcast(From x) {
  union { From from; To to; } u;
  u.from = x;
  return u.to;
}

// 16-bit floats: bits in memory, float values in registers
__device__ __forceinline__ float fg_h2f(unsigned short h) {
  unsigned sign = (unsigned)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) { float v = (float)m * 5.9604644775390625e-8f; return sign ? -v : v; }  // m * 2^-24
  if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ unsigned short fg_f2h(float f) {  // round to nearest even
  unsigned x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a >= 0x7f800000u) return (unsigned short)(sign | (a > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (a >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (a < 0x38800000u)  // below 2^-14: a subnormal half, a multiple of 2^-24
    return (unsigned short)(sign | (unsigned)rintf(__uint_as_float(a) * 16777216.0f));
  unsigned r = a - 0x38000000u;  // rebias the exponent from 127 to 15
  return (unsigned short)(sign | ((r + 0x0fffu + ((r >> 13) & 1u)) >> 13));
}
__device__ __forceinline__ float fg_b2f(unsigned short b) {
  return __uint_as_float((unsigned)b << 16);
}
__device__ __forceinline__ unsigned short fg_f2b(float f) {  // round to nearest even
  unsigned x = __float_as_uint(f);
  if (f != f) return (unsigned short)((x | 0x400000u) >> 16);  // stays a quiet NaN
  return (unsigned short)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}
// double -> float rounding to odd, so that a second rounding (to 16 bits) is correct
__device__ __forceinline__ float fg_d2f_odd(double d) {
  float r = (float)d;
  if (fabs((double)r) > fabs(d)) r = nextafterf(r, 0.0f);  // toward zero ...
  return (double)r == d || d != d ? r : __uint_as_float(__float_as_uint(r) | 1u);  // ... then odd
}
__device__ __forceinline__ float fg_rh(float x) { return fg_h2f(fg_f2h(x)); }
__device__ __forceinline__ float fg_rh(double x) { return fg_h2f(fg_f2h(fg_d2f_odd(x))); }
__device__ __forceinline__ float fg_rb(float x) { return fg_b2f(fg_f2b(x)); }
__device__ __forceinline__ float fg_rb(double x) { return fg_b2f(fg_f2b(fg_d2f_odd(x))); }
__device__ inline float fg_next16(float x, float y, bool bf16) {  // nextafter in float16 / bfloat16
  if (x != x || y != y) return x + y;
  if (x == y) return y;
  unsigned short h = bf16 ? fg_f2b(x) : fg_f2h(x);
  if (x == 0.0f) h = (unsigned short)(y < 0.0f ? 0x8001u : 0x0001u);
  else h = (unsigned short)(((x < y) == (x > 0.0f)) ? h + 1 : h - 1);
  return bf16 ? fg_b2f(h) : fg_h2f(h);
}

// log(exp(x) + exp(y)) without overflow; equal arguments (incl. infinities) give x + log 2
__device__ __forceinline__ float fg_logaddexp(float x, float y) {
  float hi = fg_max(x, y), lo = fg_min(x, y);
  return x == y ? hi + 0.693147180559945309f : hi + log1pf(expf(lo - hi));
}
__device__ __forceinline__ double fg_logaddexp(double x, double y) {
  double hi = fg_max(x, y), lo = fg_min(x, y);
  return x == y ? hi + 0.693147180559945309 : hi + log1p(exp(lo - hi));
}
// buf[i] = op(buf[i], v) atomically: compare-and-swap on the 32- or 64-bit word W until no
// other thread changed it in between
template <class W, class T, class F> __device__ __forceinline__ void fg_atomic(T* p, T v, F op) {
  W* word = (W*)p;
  W old = *word, seen;
  do {
    seen = old;
    old = atomicCAS(word, seen, fg_bitcast<W>(op(fg_bitcast<T>(seen), v)));
  } while (old != seen);
}
// ---- end of prelude
"""


_C_TYPES = {"bool": "bool", "int8": "signed char", "uint8": "unsigned char", "int16": "short",
            "uint16": "unsigned short", "int32": "int", "uint32": "unsigned int",
            "int64": "long long", "uint64": "unsigned long long", "float32": "float",
            "float64": "double"}
# 16-bit floats: (bits -> float, float -> bits, round a float to the format)
HALF = {"float16": ("fg_h2f", "fg_f2h", "fg_rh"), "bfloat16": ("fg_b2f", "fg_f2b", "fg_rb")}


def ctype(dtype: Any) -> str:
    """The C type holding a ``dtype`` value in registers (16-bit floats: ``float``)."""
    dtype = np.dtype(dtype)
    return "float" if dtype.name in HALF else _C_TYPES[dtype.name]


def mem_type(dtype: Any) -> str:
    """The C type of a ``dtype`` buffer element (16-bit floats: their bits)."""
    dtype = np.dtype(dtype)
    return "unsigned short" if dtype.name in HALF else _C_TYPES[dtype.name]


def from_mem(dtype: np.dtype, x: str) -> str:
    """A buffer element ``x`` as a register value."""
    return f"{HALF[dtype.name][0]}({x})" if dtype.name in HALF else x


def to_mem(dtype: np.dtype, x: str) -> str:
    """A register value ``x`` as a buffer element."""
    return f"{HALF[dtype.name][1]}({x})" if dtype.name in HALF else x


def literal(value: Any, dtype: Any) -> str:
    """A C expression for a constant, exact."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return "true" if value else "false"
    if dtypes.is_float(dtype):
        double = dtype == np.float64
        x = np.float64(float(value)) if double else np.float32(float(value))
        if not np.isfinite(x):
            if double:
                return f"__longlong_as_double((long long){int(x.view(np.uint64)):#x}ull)"
            return f"__uint_as_float({int(x.view(np.uint32)):#x}u)"
        text = repr(float(x)) if double else str(x) + "f"  # str(float32): shortest round trip
        return f"({text})" if text.startswith("-") else text
    v = int(value)
    if dtype == np.int64 and v == -2**63:
        return "(-9223372036854775807LL - 1)"
    suffix = {"int64": "LL", "uint64": "ull", "uint32": "u"}.get(dtype.name, "")
    if dtype.name in ("int32", "int64", "uint32", "uint64") and v >= 0:
        return f"{v}{suffix}"
    return f"(({ctype(dtype)}){v}{suffix})"


def cast_expr(x: str, src: Any, dst: Any) -> str:
    """``x`` converted from ``src`` to ``dst`` as ``semantics.cast`` does."""
    src, dst = np.dtype(src), np.dtype(dst)
    if src == dst:
        return x
    if dst == np.bool_:
        return f"({x} != 0)"
    if dtypes.is_float(src) and dtypes.is_int(dst):
        return f"fg_to_int<{ctype(dst)}>({x})"
    if dst.name in HALF:  # integers and floats round once, to the 16-bit format
        return f"{HALF[dst.name][2]}(({'double' if src == np.float64 else 'float'}){x})"
    if src.name in HALF and dst == np.float32:
        return x  # already a float
    return f"({ctype(dst)}){x}"


__all__ = ["PRELUDE", "HALF", "ctype", "mem_type", "from_mem", "to_mem", "literal", "cast_expr"]
