package dev.kiln.npu.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float32 transcendental functions on whole vectors of the preferred species, for
 * elementwise and fused kernels. {@code FloatVector.lanewise(EXP)} and friends are
 * correct but call out of line and are an order of magnitude too slow for a kernel;
 * these are straight-line polynomial code the JIT keeps in registers.
 *
 * <p>Each method states its maximum error against the exact result (measured by
 * {@code VectorMathTest} with dense sweeps against double precision; an ulp is that
 * of the float32 result). All handle NaN (NaN in, NaN out), infinities and overflow
 * as the double-precision reference rounded to float32 does, and produce subnormal
 * results with gradual underflow where the exact result is subnormal.
 *
 * <p>Polynomial coefficients are least-squares-refined minimax fits computed offline
 * (mpmath, 40 digits) and rounded to float one at a time, refitting the rest.
 */
public final class VectorMath {
    public static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    private VectorMath() {}

    // ---------------------------------------------------------------- exp

    private static final float LOG2E = 1.44269504088896341f;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^15 (Cody and Waite).
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    // Adding 1.5 * 2^23 rounds a float of magnitude below 2^22 to an integer, kept in the low mantissa bits.
    private static final float ROUNDER = 12582912f;
    private static final int ROUNDER_BITS = 0x4B400000;
    // Beyond these the result is certainly +inf or 0; clamping keeps the exponent arithmetic in range.
    private static final float EXP_MAX_ARG = 89f;
    private static final float EXP_MIN_ARG = -104f;

    /**
     * e<sup>x</sup>. Maximum error 1.5 ulp (relative 1.8e-7) for normal results; subnormal
     * results (x below -87.34) are within one subnormal step. exp(x) = +inf above 88.72,
     * 0 below -103.97; exp(-100) is the subnormal 3.78e-44 that float32 gives.
     */
    public static FloatVector exp(FloatVector x) {
        return exp(x, 0);
    }

    /**
     * e^x * 2^scale for scale in [0, 24] and x <= 0: a result that would be subnormal is
     * returned with full precision, for products the caller rounds to subnormal only once.
     */
    static FloatVector exp(FloatVector x, int scale) {
        // Min/max propagate NaN, so NaN flows through to the polynomial and out.
        float minArg = EXP_MIN_ARG - scale * LN2_HI;
        FloatVector xc = x.max(minArg).min(EXP_MAX_ARG);
        FloatVector t = xc.fma(LOG2E, ROUNDER);
        FloatVector n = t.sub(ROUNDER);
        FloatVector r = mulAdd(n, -LN2_HI, xc);
        r = mulAdd(n, -LN2_LO, r);
        FloatVector q = r.broadcast(1.390615594573319e-3f);
        q = mad(q, r, 8.362951688468456e-3f);
        q = mad(q, r, 4.166675731539726e-2f);
        q = mad(q, r, 1.6666579246520996e-1f);
        q = mad(q, r, 0.5f);
        FloatVector p = r.mul(r).fma(q, r).add(1f);
        // 2^n as two factors 2^(n/2) * 2^(n - n/2), each a normal float for n in [-150, 128],
        // so results in the subnormal range are rounded once, in the last multiplication.
        IntVector ni = t.reinterpretAsInts().sub(ROUNDER_BITS);
        IntVector n1 = ni.lanewise(VectorOperators.ASHR, 1);
        IntVector n2 = ni.sub(n1).add(scale);
        return p.mul(pow2(n1)).mul(pow2(n2)).blend(0f, x.lt(minArg));
    }

    /** 2^n for integer n in the normal exponent range. */
    private static FloatVector pow2(IntVector n) {
        return n.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
    }

    // ---------------------------------------------------------------- log

    private static final float SQRT_HALF = 0.70710678118654752f;
    private static final float MIN_NORMAL = Float.MIN_NORMAL;
    private static final float TWO_POW_23 = 8388608f;

    /**
     * Natural logarithm. Maximum error 1.5 ulp (relative 1.8e-7) for all positive inputs
     * including subnormals; log(0) = -inf, log(negative) = NaN, log(+inf) = +inf.
     */
    public static FloatVector log(FloatVector x) {
        FloatVector f = logReduce(x);
        return logCombine(x, f, logTail(f));
    }

    // log runs in three stages (reduce, polynomial, combine) so that a kernel can give each
    // its own loop: in one loop the whole function exceeds what the JIT will inline.

    /** Normal x (subnormals scaled up by 2^23) as m * 2^e, m in [0.5, 1). */
    private static IntVector logBits(FloatVector x) {
        return x.blend(x.mul(TWO_POW_23), x.lt(MIN_NORMAL)).reinterpretAsInts();
    }

    private static FloatVector logMantissa(IntVector bits) {
        return bits.and(0x007fffff).or(0x3f000000).reinterpretAsFloats();
    }

    /** Stage 1: f = m - 1 with the mantissa m moved into [sqrt(1/2), sqrt(2)), so f is small. */
    static FloatVector logReduce(FloatVector x) {
        FloatVector m = logMantissa(logBits(x));
        return m.blend(m.add(m), m.lt(SQRT_HALF)).sub(1f);
    }

    /** Stage 2: f^3 P(f), the part of log(1+f) beyond f - f^2/2. */
    static FloatVector logTail(FloatVector f) {
        return f.mul(f).mul(f).mul(logPolynomial(f));
    }

    /** Stage 3: e ln 2 + f - f^2/2 + tail, with the special cases (0, negative, +inf, NaN). */
    static FloatVector logCombine(FloatVector x, FloatVector f, FloatVector tail) {
        IntVector bits = logBits(x);
        IntVector e = bits.lanewise(VectorOperators.LSHR, 23).and(0xff).sub(126);
        FloatVector zero = x.broadcast(0f);
        // int to float by the rounder's bit pattern: exact for |e| < 2^22, and cheaper for the JIT than a lane conversion.
        FloatVector ef = e.add(ROUNDER_BITS).reinterpretAsFloats().sub(ROUNDER)
                .sub(zero.blend(1f, logMantissa(bits).lt(SQRT_HALF)))
                .sub(zero.blend(23f, x.lt(MIN_NORMAL)));
        FloatVector y = mulAdd(ef, LN2_LO, tail);
        y = mulAdd(f.mul(f), -0.5f, y);
        FloatVector result = mulAdd(ef, LN2_HI, f.add(y));
        result = result.blend(Float.POSITIVE_INFINITY, x.eq(Float.POSITIVE_INFINITY));
        result = result.blend(Float.NEGATIVE_INFINITY, x.eq(0f));
        return result.blend(Float.NaN, x.lt(0f).or(x.test(VectorOperators.IS_NAN)));
    }

    /** (log(1+f) - f + f^2/2) / f^3 on [sqrt(1/2)-1, sqrt(2)-1]. */
    private static FloatVector logPolynomial(FloatVector f) {
        FloatVector p = f.broadcast(-7.964175194501877e-2f);
        p = mad(p, f, 1.2644460797309875e-1f);
        p = mad(p, f, -1.2988333404064178e-1f);
        p = mad(p, f, 1.4211741089820862e-1f);
        p = mad(p, f, -1.664183884859085e-1f);
        p = mad(p, f, 2.0001110434532166e-1f);
        p = mad(p, f, -2.500029504299164e-1f);
        return mad(p, f, 3.333333134651184e-1f);
    }

    private static final float TWO_POW_24 = 16777216f;

    /**
     * log(1 + y), accurate for tiny y. Maximum error 2 ulp (relative 2.4e-7);
     * log1p(-1) = -inf, NaN below -1, +inf at +inf.
     */
    public static FloatVector log1p(FloatVector y) {
        FloatVector u = y.add(1f);
        return log(u).add(log1pCorrection(y, u));
    }

    /**
     * (y - (u-1))/u for u = 1 + y rounded: log(1+y) = log(u) + this restores what rounding
     * 1+y lost. It is only meaningful (and finite) for u in (0, 2^24), else 0.
     */
    static FloatVector log1pCorrection(FloatVector y, FloatVector u) {
        FloatVector correction = y.sub(u.sub(1f)).div(u);
        return correction.blend(0f, u.compare(VectorOperators.GT, 0f).and(u.lt(TWO_POW_24)).not());
    }

    // ---------------------------------------------------------------- tanh, sigmoid

    private static final float TANH_SMALL = 0.625f;

    /**
     * Hyperbolic tangent. Maximum error 2 ulp (relative 2.4e-7); odd (tanh(-0) = -0);
     * ±1 beyond |x| = 9.01.
     */
    public static FloatVector tanh(FloatVector x) {
        return tanhFromExp(x, exp(x.abs().mul(2f)));
    }

    /** tanh(x) given e = exp(2|x|) (a kernel computes that in its own loop). */
    static FloatVector tanhFromExp(FloatVector x, FloatVector e) {
        FloatVector a = x.abs();
        FloatVector s = a.mul(a);
        // Small |x|: x + x^3 P(x^2), no cancellation.
        FloatVector p = s.broadcast(-6.087600253522396e-3f);
        p = mad(p, s, 2.0989324897527695e-2f);
        p = mad(p, s, -5.384868010878563e-2f);
        p = mad(p, s, 1.3332746922969818e-1f);
        p = mad(p, s, -3.33333283662796e-1f);
        FloatVector small = a.mul(s).fma(p, a);
        // Larger |x|: 1 - 2 / (e^{2|x|} + 1); exp overflows to +inf, giving exactly 1.
        FloatVector large = x.broadcast(1f).sub(x.broadcast(2f).div(e.add(1f)));
        return copySign(large.blend(small, a.lt(TANH_SMALL)), x);
    }

    /**
     * The logistic function 1 / (1 + e<sup>-x</sup>). Maximum error 2.5 ulp (relative 3e-7),
     * including the far negative tail, where it follows e<sup>x</sup> into the subnormals
     * instead of flushing to 0; exactly 1 above 16.7, 0 below -103.97.
     */
    public static FloatVector sigmoid(FloatVector x) {
        return sigmoidFromExp(x, exp(x.abs().neg()));
    }

    /** sigmoid(x) given e = exp(-|x|). */
    static FloatVector sigmoidFromExp(FloatVector x, FloatVector e) {
        FloatVector one = e.broadcast(1f);
        // 1/(1+e) for x >= 0 and e/(1+e) for x < 0: neither cancels.
        return one.blend(e, x.lt(0f)).div(one.add(e));
    }

    /** x * sigmoid(x). Maximum error 3 ulp (relative 3.6e-7). silu(-inf) is NaN, like the reference. */
    public static FloatVector silu(FloatVector x) {
        return timesSigmoid(x, exp(x.abs().neg(), SUBNORMAL_GUARD), x.lt(0f));
    }

    /** Scale (2^24) that keeps intermediate tails normal until a product's final rounding. */
    static final int SUBNORMAL_GUARD = 24;
    private static final float UNSCALE = 0x1p-24f;

    /**
     * x * sigmoid(v), given eScaled = exp(-|v|) * 2^24 and the lanes where v < 0. The
     * negative side's small sigmoid stays scaled up through the product, so a result in
     * the subnormal range is rounded once rather than inherited from a subnormal factor.
     */
    static FloatVector timesSigmoid(FloatVector x, FloatVector eScaled, VectorMask<Float> negative) {
        FloatVector one = x.broadcast(1f);
        FloatVector denominator = one.add(eScaled.mul(UNSCALE));
        FloatVector s = one.blend(eScaled, negative).div(denominator);
        return x.mul(s).mul(one.blend(UNSCALE, negative));
    }

    /**
     * softplus(x) = log(1 + e<sup>x</sup>), computed as max(x, 0) + log1p(e<sup>-|x|</sup>)
     * so neither tail overflows or cancels. Maximum error 2.5 ulp (relative 3e-7).
     */
    public static FloatVector softplus(FloatVector x) {
        return x.max(0f).add(log1p(exp(x.abs().neg())));
    }

    /** softplus(x) given e = exp(-|x|), f = logReduce(1 + e) and tail = logTail(f). */
    static FloatVector softplusCombine(FloatVector x, FloatVector e, FloatVector f, FloatVector tail) {
        FloatVector u = e.add(1f);
        return x.max(0f).add(logCombine(u, f, tail).add(log1pCorrection(e, u)));
    }

    // ---------------------------------------------------------------- erf, GELU

    /** Below this |x|, erf uses its Taylor-like polynomial; above, 1 - erfc. */
    private static final float ERF_SMALL = 0.92f;
    /** erf(x) rounds to ±1 in float32 beyond 3.92; clamping here keeps erfc's exponent in range. */
    private static final float ERF_CLAMP = 10f;
    private static final float INV_SQRT2 = 0.70710678118654752f;
    /** GELU's Gaussian CDF is 1 (or its product with x is 0 or NaN) well before this. */
    private static final float GELU_CLAMP = 20f;

    /**
     * The error function. Maximum error 2 ulp (relative 2.4e-7 below |x| = 0.92, absolute
     * 1.2e-7 above, where |erf| > 0.8); odd; ±1 beyond |x| = 3.92.
     */
    public static FloatVector erf(FloatVector x) {
        FloatVector z = erfZ(x);
        FloatVector z2 = z.mul(z);
        FloatVector small = erfSmall(z, z2);
        if (!z.compare(VectorOperators.GE, ERF_SMALL).anyTrue()) return copySign(small, x);
        FloatVector q = erfcPolynomial(z);
        FloatVector z2Low = z.fma(z, z2.neg());
        FloatVector e = exp(erfcExponent(q, z2), 0);
        return erfCombine(x, small, erfcFromParts(z, e, erfcExponentError(q, z2, z2Low)));
    }

    /**
     * GELU, exact form x/2 (1 + erf(x/sqrt 2)). Maximum error 6 ulp (relative 7.2e-7) over the whole
     * range: for negative x the Gaussian tail is computed as erfc directly (with x^2/2 carried
     * exactly), not as 1 + erf, which would cancel. gelu(+inf) = +inf; gelu(-inf) is NaN
     * (-inf * 0), like the reference.
     */
    public static FloatVector gelu(FloatVector x) {
        FloatVector z = geluZ(x), z2 = geluZ2(x);
        FloatVector tail = geluSmallTail(z, z2);
        FloatVector erfcScaled = tail;
        if (z.compare(VectorOperators.GE, ERF_SMALL).anyTrue()) {
            FloatVector q = erfcPolynomial(z);
            FloatVector e = exp(erfcExponent(q, z2), SUBNORMAL_GUARD);
            erfcScaled = erfcFromParts(z, e, erfcExponentError(q, z2, geluZ2Low(x)));
        }
        return geluCombine(x, tail, erfcScaled);
    }

    // erf and GELU run in stages (small branch, erfc polynomial, exponent pair, exp, combine)
    // so a kernel can give each its own loop; in one loop they exceed what the JIT inlines.

    /** erf's argument z = |x|, clamped where erf is already ±1. */
    static FloatVector erfZ(FloatVector x) { return x.abs().min(ERF_CLAMP); }

    private static FloatVector geluClamp(FloatVector x) { return x.max(-GELU_CLAMP).min(GELU_CLAMP); }

    /** GELU's erf argument z = |x|/sqrt 2. */
    static FloatVector geluZ(FloatVector x) { return geluClamp(x).abs().mul(INV_SQRT2); }

    /**
     * z^2 = x^2/2 and its rounding error, an exact pair (squaring the rounded z would cost
     * relative accuracy in erfc(z) ~ exp(-z^2) far out in the tail).
     */
    static FloatVector geluZ2(FloatVector x) {
        FloatVector xc = geluClamp(x);
        return xc.mul(xc).mul(0.5f);
    }

    static FloatVector geluZ2Low(FloatVector x) {
        FloatVector xc = geluClamp(x);
        return xc.fma(xc, xc.mul(xc).neg()).mul(0.5f);
    }

    /** erf(z) for z in [0, 0.92] as z + z P(z^2) (the constant 2/sqrt(pi) - 1 keeps P's leading term exact enough). */
    static FloatVector erfSmall(FloatVector z, FloatVector z2) {
        FloatVector p = z2.broadcast(8.42001973069273e-5f);
        p = mad(p, z2, -8.150800131261349e-4f);
        p = mad(p, z2, 5.201257765293121e-3f);
        p = mad(p, z2, -2.6859188452363014e-2f);
        p = mad(p, z2, 1.1283683031797409e-1f);
        p = mad(p, z2, -3.7612631916999817e-1f);
        p = mad(p, z2, 1.2837916612625122e-1f);
        return z.fma(p, z);
    }

    /**
     * GELU's small branch: Phi(-|x|) = (1 - erf(z))/2, the smaller side of the Gaussian CDF,
     * scaled by 2^24 so that x * Phi(x) is rounded to subnormal at most once.
     */
    static FloatVector geluSmallTail(FloatVector z, FloatVector z2) {
        return z.broadcast(0.5f).sub(erfSmall(z, z2).mul(0.5f)).mul(1 << SUBNORMAL_GUARD);
    }

    /**
     * erfc(z) for z >= 0.92 is t exp(-z^2 + Q(t)), t = 2/(2+z) (the form of Numerical Recipes'
     * erfcc, refitted). This is Q(t).
     */
    static FloatVector erfcPolynomial(FloatVector z) {
        FloatVector t = z.broadcast(2f).div(z.add(2f));
        FloatVector q = t.broadcast(-2.2686445713043213e-1f);
        q = mad(q, t, 6.022428870201111e-1f);
        q = mad(q, t, -3.946579098701477e-1f);
        q = mad(q, t, -1.0604965686798096e-1f);
        q = mad(q, t, -5.5428020656108856e-2f);
        q = mad(q, t, 6.703674048185349e-2f);
        q = mad(q, t, 3.7854745984077454e-1f);
        q = mad(q, t, 9.996231794357300e-1f);
        return mad(q, t, -1.2654961347579956f);
    }

    /** The exponent q - z^2, rounded; with {@link #erfcExponentError} it is exact, so its rounding does not grow with z^2. */
    static FloatVector erfcExponent(FloatVector q, FloatVector z2) {
        return q.sub(z2);
    }

    /** What {@link #erfcExponent} lost (Knuth's two-sum), less z^2's own low part. */
    static FloatVector erfcExponentError(FloatVector q, FloatVector z2, FloatVector z2Low) {
        FloatVector negZ2 = z2.neg();
        FloatVector sum = q.add(negZ2);
        FloatVector bv = sum.sub(q);
        return q.sub(sum.sub(bv)).add(negZ2.sub(bv)).sub(z2Low);
    }

    /** erfc(z) = t exp(sum) (1 + error), given e = exp(sum) (scaled as the caller chose). */
    static FloatVector erfcFromParts(FloatVector z, FloatVector e, FloatVector error) {
        FloatVector t = z.broadcast(2f).div(z.add(2f));
        return t.mul(e.fma(error, e));
    }

    /** erf(x) from its small branch and erfc(|x|) (unscaled). */
    static FloatVector erfCombine(FloatVector x, FloatVector small, FloatVector erfc) {
        VectorMask<Float> large = erfZ(x).compare(VectorOperators.GE, ERF_SMALL);
        return copySign(small.blend(x.broadcast(1f).sub(erfc), large), x);
    }

    /** gelu(x) from its scaled small-branch tail and scaled erfc(|x|/sqrt 2). */
    static FloatVector geluCombine(FloatVector x, FloatVector smallTail, FloatVector erfcScaled) {
        VectorMask<Float> large = geluZ(x).compare(VectorOperators.GE, ERF_SMALL);
        FloatVector tail = smallTail.blend(erfcScaled.mul(0.5f), large);
        VectorMask<Float> negative = x.lt(0f);
        FloatVector one = x.broadcast(1f);
        FloatVector cdf = one.sub(tail.mul(UNSCALE)).blend(tail, negative);
        return x.mul(cdf).mul(one.blend(UNSCALE, negative));
    }

    // GELU-tanh: v = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (A + B x^2), A and B as float pairs.
    private static final float GT_A = 1.5957691669464111f;
    private static final float GT_A_LOW = -4.534068054340423e-8f;
    private static final float GT_B = 7.135481387376785e-2f;
    private static final float GT_B_LOW = 2.3988324659995897e-9f;

    /**
     * GELU, tanh approximation x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))), evaluated as
     * x sigmoid(2u) (no cancellation for negative x) with the cubic argument carried as a
     * float pair, since far out the result's sensitivity to it grows like |2u|. Maximum
     * error 4.5 ulp (relative 5.4e-7). geluTanh(+inf) = +inf; geluTanh(-inf) is NaN, like the reference.
     */
    public static FloatVector geluTanh(FloatVector x) {
        FloatVector w = geluTanhW(x);
        FloatVector e = exp(geluTanhExponent(x, w), SUBNORMAL_GUARD);
        return geluTanhCombine(x, e, geluTanhCorrection(x, w));
    }

    /** Stage 1: w = A + B x^2, rounded. */
    static FloatVector geluTanhW(FloatVector x) {
        FloatVector xc = geluClamp(x);
        return xc.mul(xc).mul(GT_B).add(GT_A);
    }

    /** Stage 2a: -|v| for v = x w, the argument of exp. */
    static FloatVector geluTanhExponent(FloatVector x, FloatVector w) {
        return geluClamp(x).mul(w).abs().neg();
    }

    /** Stage 2b: the low part of -|v| (from w's and the product's rounding errors). */
    static FloatVector geluTanhCorrection(FloatVector x, FloatVector w) {
        FloatVector xc = geluClamp(x);
        FloatVector s = xc.mul(xc);
        FloatVector sLow = xc.fma(xc, s.neg());
        FloatVector bs = s.mul(GT_B);
        FloatVector bv = w.sub(bs);
        FloatVector wLow = bs.sub(w.sub(bv)).add(x.broadcast(GT_A).sub(bv))
                .add(mulAdd(s, GT_B, bs.neg())).add(sLow.mul(GT_B)).add(s.mul(GT_B_LOW)).add(GT_A_LOW);
        FloatVector v = xc.mul(w);
        FloatVector vLow = xc.fma(w, v.neg()).add(xc.mul(wLow));
        // -|v + vLow| = -|v| -+ vLow.
        return vLow.neg().blend(vLow, x.lt(0f));
    }

    /** Stage 4: x sigmoid(v) from e = exp(-|v|) 2^24 and the correction. */
    static FloatVector geluTanhCombine(FloatVector x, FloatVector eScaled, FloatVector correction) {
        return timesSigmoid(x, eScaled.fma(correction, eScaled), x.lt(0f));
    }

    // ---------------------------------------------------------------- helpers

    /** a * b + c, rounded once. */
    private static FloatVector mad(FloatVector a, FloatVector b, float c) {
        return a.fma(b, a.broadcast(c));
    }

    /** a * b + c, rounded once. */
    private static FloatVector mulAdd(FloatVector a, float b, FloatVector c) {
        return a.fma(a.broadcast(b), c);
    }

    /** |magnitude| with the sign of {@code sign}; magnitude must be non-negative or NaN. */
    private static FloatVector copySign(FloatVector magnitude, FloatVector sign) {
        return magnitude.reinterpretAsInts()
                .or(sign.reinterpretAsInts().and(0x80000000))
                .reinterpretAsFloats();
    }
}
