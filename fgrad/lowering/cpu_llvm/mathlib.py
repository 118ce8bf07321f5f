"""float32 ``exp`` and ``tanh`` as straight-line LLVM IR, so loops calling them vectorize.

A call to libm's ``expf`` per element keeps LLVM from vectorizing a loop
(it has no vector variant to call), and transcendental-heavy kernels
(softmax, tanh layers) then run at scalar speed. These are the classic
Cephes single-precision algorithms, written with vectorizable instructions
only (``rint``, multiply-adds, integer shifts and bit casts):

* ``exp(x) = 2^k · p(r)`` with ``k = rint(x / ln 2)`` and ``r = x − k ln 2``
  (``ln 2`` split in two constants so ``r`` is exact), ``p`` a degree-7
  polynomial accurate to about 1 ulp on ``|r| ≤ ln(2)/2``; ``2^k`` is built
  from its exponent bits in two halves, so subnormal results and overflow
  to ``inf`` come out right. NaN propagates.
* ``tanh(x)``: an odd polynomial for ``|x| < 0.625`` (where ``1 − 2/(e^{2x}+1)``
  would lose digits), that formula with the ``exp`` above elsewhere, and
  ``±1`` beyond ``|x| > 9``.

The tests hold the compiled results to numpy's within a few ulps.
"""

from __future__ import annotations

from llvmlite import ir

F32 = ir.FloatType()
I32 = ir.IntType(32)

_EXP_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
             1.6666665459e-1, 5.0000001201e-1)
_TANH_POLY = (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
              -3.33332819422e-1)


def _c(v: float) -> ir.Constant:
    return ir.Constant(F32, v)


def _horner(b: ir.IRBuilder, coeffs: tuple[float, ...], x: ir.Value) -> ir.Value:
    p: ir.Value = _c(coeffs[0])
    for c in coeffs[1:]:
        p = b.fadd(b.fmul(p, x), _c(c))
    return p


def _pow2(b: ir.IRBuilder, k: ir.Value) -> ir.Value:
    """2^k for an i32 k in [-126, 127], from the exponent bits."""
    bits = b.shl(b.add(k, ir.Constant(I32, 127)), ir.Constant(I32, 23))
    return b.bitcast(bits, F32)


def exp_f32(b: ir.IRBuilder, x: ir.Value, intrinsic: object) -> ir.Value:
    """``exp(x)`` for float32; ``intrinsic(name, nargs)`` declares an LLVM intrinsic."""
    clamped = b.call(intrinsic("llvm.minimum", 2), [  # type: ignore[operator]
        b.call(intrinsic("llvm.maximum", 2), [x, _c(-150.0)]), _c(150.0)])  # type: ignore
    kf = b.call(intrinsic("llvm.rint", 1), [b.fmul(clamped, _c(1.44269504088896341))])  # type: ignore
    r = b.fsub(b.fsub(clamped, b.fmul(kf, _c(0.693359375))), b.fmul(kf, _c(-2.12194440e-4)))
    r2 = b.fmul(r, r)
    p = b.fadd(b.fadd(b.fmul(_horner(b, _EXP_POLY, r), r2), r), _c(1.0))
    k = b.fptosi(kf, I32)  # |k| <= 217: exact, never poison
    half = b.ashr(k, ir.Constant(I32, 1))
    scaled = b.fmul(b.fmul(p, _pow2(b, half)), _pow2(b, b.sub(k, half)))
    is_nan = b.fcmp_unordered("uno", x, x)
    return b.select(is_nan, x, scaled)


def tanh_f32(b: ir.IRBuilder, x: ir.Value, intrinsic: object) -> ir.Value:
    ax = b.call(intrinsic("llvm.fabs", 1), [x])  # type: ignore[operator]
    z = b.fmul(x, x)
    small = b.fadd(x, b.fmul(b.fmul(x, z), _horner(b, _TANH_POLY, z)))
    e = exp_f32(b, b.fmul(ax, _c(2.0)), intrinsic)
    large = b.fsub(_c(1.0), b.fdiv(_c(2.0), b.fadd(e, _c(1.0))))
    out = b.select(b.fcmp_ordered("<", ax, _c(0.625)), small, large)
    out = b.call(intrinsic("llvm.copysign", 2), [out, x])  # type: ignore[operator]  (-0.0 too)
    return b.select(b.fcmp_unordered("uno", x, x), x, out)


__all__ = ["exp_f32", "tanh_f32"]
