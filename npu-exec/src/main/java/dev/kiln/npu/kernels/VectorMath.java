package dev.kiln.npu.kernels;

import dev.kiln.ops.UnaryFn;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Float32 transcendental functions on whole vectors of the preferred species, for
 * elementwise and fused kernels. {@code FloatVector.lanewise(EXP)} and friends are
 * correct but platform-dependent library calls; these are straight-line polynomial code
 * the JIT keeps in registers.
 *
 * <p>Each method states its maximum error against the exact result (measured by
 * {@code VectorMathTest} with dense sweeps against double precision; an ulp is that
 * of the float32 result). All handle NaN (NaN in, NaN out), infinities and overflow
 * as the double-precision reference rounded to float32 does, and produce subnormal
 * results with gradual underflow where the exact result is subnormal.
 *
 * <h2>Why every function is one flat method</h2>
 * A vector stays in registers only if every method it passes through is inlined into
 * the compiled loop; a call left out of line boxes it (a heap allocation per vector, ten
 * times slower). C2 refuses such a call in three cases, which shape this class:
 * <ul>
 * <li>a hot callee larger than {@code FreqInlineSize} (325 bytes of bytecode), so every
 *     function here fits in 325 bytes ({@code VectorMathTest} checks);
 * <li>any call made after the compilation has parsed {@code NodeCountInliningCutoff}
 *     (18000) IR nodes. Vector API operations are inlined from library code and cost
 *     300-900 nodes each while parsing, so the budget is roughly 40 operations; the
 *     library's own methods are exempt (force-inlined later), user methods are not. Hence
 *     no helper methods: a helper called near the end of a long function would be over
 *     budget. Constants are pre-broadcast vectors ({@code getstatic} costs about half the
 *     nodes of {@code fma(float, float)}, which broadcasts on every use);
 * <li>a callee already compiled on its own into more than {@code InlineSmallCode} (2500
 *     bytes of machine code); flat functions without boxing stay well below that.
 * </ul>
 * So a loop body may call two of these functions and stay allocation-free, provided the
 * first is small (exp, sigmoid, silu: under 200 bytes of bytecode) and little comes before
 * the second: W1's {@code gelu(x a + b) * sigmoid(x) + x} is one loop when sigmoid comes
 * first ({@code VectorMathAllocationTest}); with gelu first, sigmoid is parsed past the
 * budget and boxes (measured in a generated loop). A third call can fall beyond the budget
 * too. A fused chain with more transcendental steps splits into stages (see
 * {@code dev.kiln.npu.codegen.TileLoopCompiler}): loops over one L1-sized tile that pass
 * intermediates through SRAM, each loop its own compilation with its own budget.
 *
 * <p>Clamps against a constant are a comparison and a blend, never {@code max} or {@code min}:
 * those keep Java's NaN and signed-zero rules, which C2 builds from six instructions on
 * AVX-512, against two. With a constant that is neither NaN nor zero the results are the
 * same bits (NaN compares false, so it passes through). In W1's chain this took a fifth of
 * gelu's and sigmoid's time.
 *
 * <p>The exponential's range reduction (n = round(a log2 e), r = a - n ln 2 in two
 * Cody-Waite steps, e^r by a degree-6 polynomial, 2^n built in the exponent bits) is
 * therefore written out in each function that needs it, each time specialised: where
 * results can be subnormal, 2^n is built scaled up by 2^b so it stays normal, and the
 * scale is removed in the final multiplication, rounding a subnormal result once.
 *
 * <p>Coefficients are weighted minimax fits against mpmath at 30-40 digits (Remez exchange
 * for polynomials, iteratively reweighted least squares for GELU's rational), rounded to
 * float one at a time, highest degree first, refitting the rest.
 */
public final class VectorMath {
    public static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> INTS = VectorSpecies.of(int.class, SPECIES.vectorShape());

    private VectorMath() {}

    private static FloatVector v(float c) { return FloatVector.broadcast(SPECIES, c); }

    private static IntVector v(int c) { return IntVector.broadcast(INTS, c); }

    private static final float ZERO_S = 0f, ONE_S = 1f, HALF_S = 0.5f, NEG_HALF_S = -0.5f;
    private static final FloatVector ZERO = v(ZERO_S), ONE = v(ONE_S), HALF = v(HALF_S), NEG_HALF = v(NEG_HALF_S);
    private static final float INFINITY_S = Float.POSITIVE_INFINITY;
    private static final FloatVector INFINITY = v(INFINITY_S);

    // ---------------------------------------------------------------- exp

    // Scalar values first (the scalar exp below uses them), then as vectors.
    private static final float LOG2E_S = 1.44269504088896341f;
    // ln 2 split so that n * LN2_HI is exact for |n| < 2^15 (Cody and Waite); negated for fma.
    private static final float NEG_LN2_HI_S = -0.693359375f, NEG_LN2_LO_S = 2.12194440e-4f;
    // Adding 1.5 * 2^23 rounds a float below 2^22 in magnitude to an integer n, kept in the low
    // mantissa bits: shifted left by 23 those bits are n in the exponent field (modulo 2^32).
    private static final float ROUNDER_S = 12582912f;
    private static final int ROUNDER_BITS_S = 0x4B400000, EXPONENT_BIAS_S = 127;
    /** e^r = 1 + r + r^2 (E2 + E3 r + ... + E6 r^4) on |r| <= ln2 / 2: relative error 3.7e-9. */
    private static final float E2_S = 4.999999404e-01f, E3_S = 1.666652113e-01f, E4_S = 4.166838899e-02f, E5_S = 8.368731476e-03f,
            E6_S = 1.381456852e-03f;
    // Beyond these the result is certainly +inf or 0: clamping keeps the exponent arithmetic in range.
    private static final float EXP_MIN_S = -104f, EXP_MAX_S = 89f;

    private static final FloatVector LOG2E = v(LOG2E_S), NEG_LN2_HI = v(NEG_LN2_HI_S), NEG_LN2_LO = v(NEG_LN2_LO_S);
    private static final FloatVector ROUNDER = v(ROUNDER_S);
    private static final IntVector ROUNDER_BITS = v(ROUNDER_BITS_S), EXPONENT_BIAS = v(EXPONENT_BIAS_S);
    private static final FloatVector E2 = v(E2_S), E3 = v(E3_S), E4 = v(E4_S), E5 = v(E5_S), E6 = v(E6_S);
    private static final FloatVector EXP_MIN = v(EXP_MIN_S), EXP_MAX = v(EXP_MAX_S);

    /**
     * e<sup>x</sup>. Maximum error 1.5 ulp for normal results; subnormal results (x below
     * -87.34) are within one subnormal step. exp(x) = +inf above 88.72, 0 below -103.97;
     * exp(-100) is the subnormal 3.78e-44 that float32 gives.
     */
    public static FloatVector exp(FloatVector x) {
        // NaN compares false, so it passes the clamps and flows through the arithmetic.
        FloatVector low = x.blend(EXP_MIN, x.lt(EXP_MIN));
        FloatVector a = low.blend(EXP_MAX, low.compare(VectorOperators.GT, EXP_MAX));
        FloatVector k = a.fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        FloatVector r = n.fma(NEG_LN2_LO, n.fma(NEG_LN2_HI, a));
        FloatVector p = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE).fma(r, ONE);
        // 2^n for n in [-150, 128] as 2^(n/2) 2^(n - n/2), both normal, so a subnormal result
        // is rounded once, by the second multiplication.
        IntVector ni = k.reinterpretAsInts().sub(ROUNDER_BITS);
        IntVector half = ni.lanewise(VectorOperators.ASHR, 1);
        return p.mul(half.add(EXPONENT_BIAS).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats())
                .mul(ni.sub(half).add(EXPONENT_BIAS).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
    }

    /**
     * {@link #exp(FloatVector)}'s scalar twin: the same operations in the same order, so the
     * same bits lane by lane, for kernels' scalar twins (see {@link ScalarTwin}).
     */
    public static float exp(float x) {
        float a = Math.min(Math.max(x, EXP_MIN_S), EXP_MAX_S);
        float k = Math.fma(a, LOG2E_S, ROUNDER_S);
        float p = expPolynomial(reduced(a, k));
        int ni = Float.floatToRawIntBits(k) - ROUNDER_BITS_S;
        int half = ni >> 1;
        return p * Float.intBitsToFloat((half + EXPONENT_BIAS_S) << 23) * Float.intBitsToFloat((ni - half + EXPONENT_BIAS_S) << 23);
    }

    // ---------------------------------------------------------------- sigmoid, silu, tanh

    /** (127 + 24) << 23: adding it to n << 23 gives the bits of 2^(n + 24), normal for n >= -150. */
    private static final int POW2_SCALED_24_S = (127 + 24) << 23;
    private static final IntVector POW2_SCALED_24 = v(POW2_SCALED_24_S);
    private static final float UNSCALE_24_S = 0x1p-24f;
    private static final FloatVector UNSCALE_24 = v(UNSCALE_24_S);

    /**
     * The logistic function 1 / (1 + e<sup>-x</sup>). Maximum error 2.5 ulp, including the far
     * negative tail, where it follows e<sup>x</sup> into the subnormals instead of flushing to
     * 0; exactly 1 above 16.7, 0 below -103.97.
     */
    public static FloatVector sigmoid(FloatVector x) {
        FloatVector na = x.abs().neg();
        FloatVector a = na.blend(EXP_MIN, na.lt(EXP_MIN));
        FloatVector k = a.fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        FloatVector r = n.fma(NEG_LN2_LO, n.fma(NEG_LN2_HI, a));
        // e = e^-|x|, built as e^r 2^(n + 24) (normal) times 2^-24: a subnormal e is rounded once.
        FloatVector e = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE).fma(r, ONE)
                .mul(k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(POW2_SCALED_24).reinterpretAsFloats())
                .mul(UNSCALE_24);
        // 1/(1+e) for x >= 0 and e/(1+e) for x < 0: neither cancels.
        return ONE.blend(e, x.lt(ZERO)).div(e.add(ONE));
    }

    /** silu needs e^-|x| to -110 (x e^x underflows only there), so 2^n is scaled by 2^32. */
    private static final float SILU_MIN_S = -110f;
    /** At the clamp n = -159 and this makes the exponent field exactly 0: e^-|x| is 0, so silu(-inf) = -inf * 0 = NaN. */
    private static final int POW2_SCALED_32_S = (127 + 32) << 23;
    private static final float UNSCALE_32_S = 0x1p-32f;
    private static final FloatVector SILU_MIN = v(SILU_MIN_S);
    private static final IntVector POW2_SCALED_32 = v(POW2_SCALED_32_S);
    private static final FloatVector UNSCALE_32 = v(UNSCALE_32_S);

    /** x * sigmoid(x). Maximum error 3 ulp. silu(-inf) is NaN, like the reference. */
    public static FloatVector silu(FloatVector x) {
        FloatVector na = x.abs().neg();
        FloatVector a = na.blend(SILU_MIN, na.lt(SILU_MIN));
        FloatVector k = a.fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        FloatVector r = n.fma(NEG_LN2_LO, n.fma(NEG_LN2_HI, a));
        FloatVector c = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE);
        FloatVector pow = k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(POW2_SCALED_32).reinterpretAsFloats();
        // x/(1+e), or for x < 0 (x e 2^32)/(1+e) 2^-32, the scale removed last so a subnormal result
        // is rounded once. x e^r is formed as x' + (x' c) r with x' = x 2^n, scaled first (exactly):
        // x c overflowed near -MAX_VALUE, and -inf times the 0 of 2^n at the clamp made NaN.
        VectorMask<Float> negative = x.lt(ZERO);
        FloatVector xp = x.mul(pow);
        return x.blend(xp.mul(c).fma(r, xp), negative).div(c.fma(r, ONE).mul(pow).fma(UNSCALE_32, ONE))
                .mul(ONE.blend(UNSCALE_32, negative));
    }

    /** {@link #silu(FloatVector)}'s scalar twin: the same operations in the same order, so the same bits lane by lane. */
    public static float silu(float x) {
        float a = Math.max(-Math.abs(x), SILU_MIN_S);
        float k = Math.fma(a, LOG2E_S, ROUNDER_S);
        float r = reduced(a, k);
        float c = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(E6_S, r, E5_S), r, E4_S), r, E3_S), r, E2_S), r, 1f);
        float pow = pow2(k, POW2_SCALED_32_S);
        boolean negative = x < 0f;
        float xp = x * pow;
        float numerator = negative ? Math.fma(xp * c, r, xp) : x;
        return numerator / Math.fma(Math.fma(c, r, 1f) * pow, UNSCALE_32_S, 1f) * (negative ? UNSCALE_32_S : 1f);
    }

    private static final float NEG_TWO_S = -2f, TANH_MIN_S = -20f;
    private static final FloatVector NEG_TWO = v(NEG_TWO_S), TANH_MIN = v(TANH_MIN_S);
    /** (127 << 23) plus n << 23 gives the bits of 2^n. */
    private static final int POW2_SCALED_0_S = 127 << 23;
    private static final IntVector POW2_SCALED_0 = v(POW2_SCALED_0_S);
    /** Below this |x|, tanh uses its odd polynomial; above, 1 - 2e/(1+e) with e = e^-2|x| below 0.23. */
    private static final float TANH_SMALL_S = 0.75f;
    private static final FloatVector TANH_SMALL = v(TANH_SMALL_S);
    /** tanh(x) = x + x^3 (T0 + T1 s + ... + T5 s^5), s = x^2, on [0, 0.75]: relative error 1e-8. */
    private static final float T0_S = -3.333331645e-01f, T1_S = 1.333269328e-01f, T2_S = -5.389265716e-02f, T3_S = 2.145176753e-02f,
            T4_S = -7.656781003e-03f, T5_S = 1.736624516e-03f;
    private static final FloatVector T0 = v(T0_S), T1 = v(T1_S), T2 = v(T2_S), T3 = v(T3_S), T4 = v(T4_S), T5 = v(T5_S);

    /** Hyperbolic tangent. Maximum error 1.5 ulp; odd (tanh(-0) = -0); ±1 beyond |x| = 9.01. */
    public static FloatVector tanh(FloatVector x) {
        FloatVector ax = x.abs();
        FloatVector a2 = ax.mul(NEG_TWO);
        FloatVector a = a2.blend(TANH_MIN, a2.lt(TANH_MIN));
        FloatVector k = a.fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        FloatVector r = n.fma(NEG_LN2_LO, n.fma(NEG_LN2_HI, a));
        FloatVector e = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE).fma(r, ONE)
                .mul(k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(POW2_SCALED_0).reinterpretAsFloats());
        FloatVector s = ax.mul(ax);
        FloatVector small = ax.mul(s).fma(T5.fma(s, T4).fma(s, T3).fma(s, T2).fma(s, T1).fma(s, T0), ax);
        FloatVector large = ONE.sub(e.add(e).div(e.add(ONE)));
        // Computed on |x|, then negated where x's sign bit is set (so -0 gives -0).
        return small.blend(large, ax.compare(VectorOperators.GE, TANH_SMALL)).lanewise(VectorOperators.NEG,
                x.test(VectorOperators.IS_NEGATIVE));
    }

    // ---------------------------------------------------------------- log, log1p, softplus

    private static final float MIN_NORMAL_S = Float.MIN_NORMAL, TWO_POW_23_S = 0x1p23f, TWENTY_THREE_S = 23f;
    private static final FloatVector MIN_NORMAL = v(MIN_NORMAL_S), TWO_POW_23 = v(TWO_POW_23_S), TWENTY_THREE = v(TWENTY_THREE_S);
    /** Bits of 0.75: x = 2^k m with m in [0.75, 1.5), so f = m - 1 is in [-0.25, 0.5). */
    private static final int LOG_OFFSET_S = 0x3f400000, EXPONENT_MASK_S = 0xff800000;
    private static final IntVector LOG_OFFSET = v(LOG_OFFSET_S), EXPONENT_MASK = v(EXPONENT_MASK_S);
    private static final float LN2_HI_S = 0.693359375f, LN2_LO_S = -2.12194440e-4f;
    private static final FloatVector LN2_HI = v(LN2_HI_S), LN2_LO = v(LN2_LO_S);
    /** log(1 + f) = f + f^2 (-1/2 + Q1 f + ... + Q8 f^8) on [-0.25, 0.5]: relative error 6.1e-9. */
    private static final float Q1_S = 3.333346248e-01f, Q2_S = -2.500019372e-01f, Q3_S = 1.999032050e-01f, Q4_S = -1.664238870e-01f,
            Q5_S = 1.447615921e-01f, Q6_S = -1.321340799e-01f, Q7_S = 1.059783623e-01f, Q8_S = -4.607332498e-02f;
    private static final FloatVector Q1 = v(Q1_S), Q2 = v(Q2_S), Q3 = v(Q3_S), Q4 = v(Q4_S), Q5 = v(Q5_S), Q6 = v(Q6_S), Q7 = v(Q7_S),
            Q8 = v(Q8_S);

    /**
     * Natural logarithm. Maximum error 1.5 ulp for all positive inputs including subnormals;
     * log(0) = -inf, log(negative) = NaN, log(+inf) = +inf.
     */
    public static FloatVector log(FloatVector x) {
        // Subnormals are scaled into the normal range first (and 23 taken off the exponent).
        VectorMask<Float> subnormal = x.lt(MIN_NORMAL);
        IntVector bits = x.blend(x.mul(TWO_POW_23), subnormal).reinterpretAsInts();
        IntVector offset = bits.sub(LOG_OFFSET);
        FloatVector f = bits.sub(offset.and(EXPONENT_MASK)).reinterpretAsFloats().sub(ONE);
        FloatVector e = ((FloatVector) offset.lanewise(VectorOperators.ASHR, 23).convert(VectorOperators.I2F, 0))
                .sub(ZERO.blend(TWENTY_THREE, subnormal));
        // e ln2 + f + f^2 Q(f), summed smallest first; e LN2_HI is exact.
        FloatVector y = e.fma(LN2_HI, e.fma(LN2_LO, f.mul(f).mul(Q8.fma(f, Q7).fma(f, Q6).fma(f, Q5).fma(f, Q4)
                .fma(f, Q3).fma(f, Q2).fma(f, Q1).fma(f, NEG_HALF))).add(f));
        // +inf and NaN give themselves; zero gives sqrt(±0) - inf = -inf, negatives sqrt(x) - inf = NaN.
        return y.blend(x, x.lt(INFINITY).not()).blend(x.sqrt().sub(INFINITY), x.compare(VectorOperators.LE, 0f));
    }

    private static final float TWO_POW_24_S = 0x1p24f;
    private static final FloatVector TWO_POW_24 = v(TWO_POW_24_S);

    /**
     * log(1 + y), accurate for tiny y. Maximum error 2 ulp; log1p(-1) = -inf, NaN below -1,
     * +inf at +inf.
     */
    public static FloatVector log1p(FloatVector y) {
        FloatVector u = y.add(ONE);
        // The only call in this class, made first, so it is within the inlining budget (see the class comment).
        FloatVector logU = log(u);
        // log(1+y) = log(u) + (y - (u-1))/u restores what rounding 1+y lost; meaningful for u in (0, 2^24).
        FloatVector correction = y.sub(u.sub(ONE)).div(u);
        return logU.add(correction.blend(ZERO, u.compare(VectorOperators.GT, 0f).and(u.lt(TWO_POW_24)).not()));
    }

    /**
     * softplus(x) = log(1 + e<sup>x</sup>) = max(x, 0) + log1p(e<sup>-|x|</sup>), so neither
     * tail overflows or cancels. Maximum error 2 ulp.
     */
    public static FloatVector softplus(FloatVector x) {
        FloatVector na = x.abs().neg();
        FloatVector a = na.blend(EXP_MIN, na.lt(EXP_MIN));
        FloatVector k = a.fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        FloatVector r = n.fma(NEG_LN2_LO, n.fma(NEG_LN2_HI, a));
        FloatVector e = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE).fma(r, ONE)
                .mul(k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(POW2_SCALED_24).reinterpretAsFloats())
                .mul(UNSCALE_24);
        // 1 + e = 2^j (1 + f) with f exact: f = e, or (e - 1)/2 for e > 1/2 (j = 1).
        VectorMask<Float> upper = e.compare(VectorOperators.GT, 0.5f);
        FloatVector f = e.blend(e.fma(HALF, NEG_HALF), upper);
        FloatVector j = ZERO.blend(ONE, upper);
        FloatVector log1p = j.fma(LN2_HI, j.fma(LN2_LO, f.mul(f).mul(Q8.fma(f, Q7).fma(f, Q6).fma(f, Q5).fma(f, Q4)
                .fma(f, Q3).fma(f, Q2).fma(f, Q1).fma(f, NEG_HALF))).add(f));
        // x where x > 0, else 0 (-0 only at x = -0, where log1p is ln 2 and the sum the same).
        return x.blend(ZERO, x.lt(ZERO)).add(log1p);
    }

    // ---------------------------------------------------------------- sin, cos

    private static final float TWO_OVER_PI_S = 0x1.45f306p-1f;
    /** -pi/2 as C1 + C2 + C3, 72 bits (the first below -pi/2, the others positive): r = ax + n C1 + n C2 + n C3. */
    private static final float NEG_PIO2_1_S = -0x1.921fb6p+0f, PIO2_2_S = 0x1.777a5cp-25f, PIO2_3_S = 0x1.ee59dap-50f;
    /**
     * Up to this |x| (n below 2^17) the reduction r = |x| - n pi/2 by three fmas is good to
     * about an ulp of r, also for the floats nearest a multiple of pi/2. Beyond it, and for
     * infinities, each lane takes the JDK's double sin or cos, rounded to float.
     */
    private static final float TRIG_REDUCED_MAX_S = 131072f;
    /** sin r = r + r^3 (S3 + S5 s + ... + S11 s^4), s = r^2, on |r| <= pi/4: Taylor to r^11, truncation 7e-12. */
    private static final float S3_S = -0x1.555556p-3f, S5_S = 0x1.111112p-7f, S7_S = -0x1.a01a02p-13f, S9_S = 0x1.71de3ap-19f,
            S11_S = -0x1.ae6456p-26f;
    /** cos r = 1 - s/2 + s^2 (C4 + C6 s + ... + C12 s^4): Taylor to r^12, truncation 4e-13. */
    private static final float C4_S = 0x1.555556p-5f, C6_S = -0x1.6c16c2p-10f, C8_S = 0x1.a01a02p-16f, C10_S = -0x1.27e4fcp-22f,
            C12_S = 0x1.1eed8ep-29f;
    private static final FloatVector TWO_OVER_PI = v(TWO_OVER_PI_S), NEG_PIO2_1 = v(NEG_PIO2_1_S), PIO2_2 = v(PIO2_2_S),
            PIO2_3 = v(PIO2_3_S), TRIG_REDUCED_MAX = v(TRIG_REDUCED_MAX_S);
    private static final FloatVector S3 = v(S3_S), S5 = v(S5_S), S7 = v(S7_S), S9 = v(S9_S), S11 = v(S11_S);
    private static final FloatVector C4 = v(C4_S), C6 = v(C6_S), C8 = v(C8_S), C10 = v(C10_S), C12 = v(C12_S);
    private static final int SIGN_BIT_S = 0x80000000;
    private static final IntVector THREE = v(3), ONE_BIT = v(1), TWO_BITS = v(2), SIGN_BIT = v(SIGN_BIT_S);

    /** Sine. Maximum error 1.5 ulp; odd (sin(-0) = -0); NaN for infinities. */
    public static FloatVector sin(FloatVector x) {
        return trig(x, false);
    }

    /** Cosine. Maximum error 1.5 ulp; NaN for infinities. */
    public static FloatVector cos(FloatVector x) {
        return trig(x, true);
    }

    /**
     * sin or cos of |x| = n pi/2 + r, from the polynomials of sin r and cos r picked and signed
     * by the quadrant n mod 4; the sign of x is put back for sin (odd), not for cos (even).
     */
    private static FloatVector trig(FloatVector x, boolean cosine) {
        FloatVector ax = x.abs();
        FloatVector k = ax.fma(TWO_OVER_PI, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        // ax - n C1 is exact (the product's bits end where r's do); each later fma rounds relative to r itself.
        FloatVector r = n.fma(PIO2_3, n.fma(PIO2_2, n.fma(NEG_PIO2_1, ax)));
        FloatVector s = r.mul(r);
        FloatVector sinR = r.mul(s).fma(S11.fma(s, S9).fma(s, S7).fma(s, S5).fma(s, S3), r);
        FloatVector hs = s.mul(HALF);
        FloatVector w = ONE.sub(hs);
        // 1 - s/2 rounded, its rounding error added back with the rest (as fdlibm's cos does).
        FloatVector cosR = w.add(ONE.sub(w).sub(hs).add(s.mul(s).mul(C12.fma(s, C10).fma(s, C8).fma(s, C6).fma(s, C4))));
        return pick(x, ax, k, sinR, cosR, cosine);
    }

    /**
     * The result for quadrant n (from {@code k}) of sin r and cos r, signed; lanes past the
     * reduction's range from the JDK. Apart from {@link #trig} so that each stays within what C2
     * inlines into a loop (325 bytes of bytecode).
     */
    private static FloatVector pick(FloatVector x, FloatVector ax, FloatVector k, FloatVector sinR, FloatVector cosR, boolean cosine) {
        IntVector q = k.reinterpretAsInts().sub(ROUNDER_BITS);
        if (cosine) q = q.add(ONE_BIT);
        // Quadrant q (n, or n + 1 for cos): sin r, cos r, -sin r, -cos r.
        FloatVector v = sinR.blend(cosR, q.and(ONE_BIT).compare(VectorOperators.NE, 0).cast(SPECIES));
        IntVector sign = q.and(TWO_BITS).lanewise(VectorOperators.LSHL, 30);
        if (!cosine) sign = sign.lanewise(VectorOperators.XOR, x.reinterpretAsInts().and(SIGN_BIT));
        FloatVector y = v.reinterpretAsInts().lanewise(VectorOperators.XOR, sign).reinterpretAsFloats();
        VectorMask<Float> beyond = ax.compare(VectorOperators.GT, TRIG_REDUCED_MAX);
        return beyond.anyTrue() ? perLane(x, y, beyond, cosine) : y;
    }

    /** {@code y} with the lanes of {@code beyond} replaced by the JDK's double sin or cos of x, rounded to float. */
    private static FloatVector perLane(FloatVector x, FloatVector y, VectorMask<Float> beyond, boolean cosine) {
        float[] xs = x.toArray(), ys = y.toArray();
        for (int i = 0; i < ys.length; i++) if (beyond.laneIsSet(i)) ys[i] = cosine ? (float) Math.cos(xs[i]) : (float) Math.sin(xs[i]);
        return FloatVector.fromArray(SPECIES, ys, 0);
    }

    // ---------------------------------------------------------------- erf, GELU

    /** erf(z) = z + z P(z^2) below this |z|; 1 - e^R(z) above. */
    private static final float ERF_SMALL_S = 0.84375f;
    private static final FloatVector ERF_SMALL = v(ERF_SMALL_S);
    /** erf rounds to ±1 beyond 3.92; clamping keeps R(z) where it was fitted. */
    private static final float ERF_CLAMP_S = 3.95f;
    private static final FloatVector ERF_CLAMP = v(ERF_CLAMP_S);
    /** P(s) = erf(z)/z - 1 with s = z^2, on [0, 0.84375]: relative error 1.4e-8. */
    private static final float ES0_S = 1.283791512e-01f, ES1_S = -3.761257529e-01f, ES2_S = 1.128276661e-01f, ES3_S = -2.680470049e-02f,
            ES4_S = 5.054903682e-03f, ES5_S = -6.338479579e-04f;
    private static final FloatVector ES0 = v(ES0_S), ES1 = v(ES1_S), ES2 = v(ES2_S), ES3 = v(ES3_S), ES4 = v(ES4_S), ES5 = v(ES5_S);
    /** R(z) = log erfc(z) on [0.84375, 3.95], error weighted by erfc(z) (what it adds to erf): 3.1e-9. */
    private static final float EL0_S = -1.068477868e-04f, EL1_S = -1.128049493e+00f, EL2_S = -6.365418434e-01f, EL3_S = -1.045025885e-01f,
            EL4_S = 2.250622958e-02f, EL5_S = -3.114245133e-03f, EL6_S = 2.032697957e-04f;
    private static final FloatVector EL0 = v(EL0_S), EL1 = v(EL1_S), EL2 = v(EL2_S), EL3 = v(EL3_S), EL4 = v(EL4_S), EL5 = v(EL5_S),
            EL6 = v(EL6_S);

    /** The error function. Maximum error 1.5 ulp; odd (erf(-0) = -0); ±1 beyond |x| = 3.92. */
    public static FloatVector erf(FloatVector x) {
        FloatVector ax = x.abs();
        FloatVector z = ax.blend(ERF_CLAMP, ax.compare(VectorOperators.GT, ERF_CLAMP));
        FloatVector s = x.mul(x);
        FloatVector small = x.fma(ES5.fma(s, ES4).fma(s, ES3).fma(s, ES2).fma(s, ES1).fma(s, ES0), x);
        FloatVector l = EL6.fma(z, EL5).fma(z, EL4).fma(z, EL3).fma(z, EL2).fma(z, EL1).fma(z, EL0);
        FloatVector k = l.fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        FloatVector r = n.fma(NEG_LN2_LO, n.fma(NEG_LN2_HI, l));
        FloatVector erfc = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE).fma(r, ONE)
                .mul(k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(POW2_SCALED_0).reinterpretAsFloats());
        FloatVector large = ONE.sub(erfc).lanewise(VectorOperators.NEG, x.lt(ZERO));
        return small.blend(large, z.compare(VectorOperators.GE, ERF_SMALL));
    }

    /** The Gaussian tail is 0 (or its product with x is) beyond this |x|. */
    private static final float GELU_CLAMP_S = 14.5f;
    private static final FloatVector GELU_CLAMP = v(GELU_CLAMP_S);
    /**
     * erfc(|x|/sqrt 2) e^(x^2/2) = 1 / (1 + |x| g(|x|)), g rising from sqrt(2/pi) to 1.19 on
     * [0, 14.5]: g = 1 + P(|x|)/Q(|x|), degrees 4 and 4, error 7.6e-9 relative to
     * (1 + g |x|) / (g |x|) (its effect on the result). Rounding errors in P/Q are relative to
     * the small |P/Q| < 0.2, so g, and the result, carry about a fifth of them. Q(0) is 3/4 (the
     * ratio is scale-free): near x = 0, Q and the values built from it then lie just below 1,
     * where float32 resolves a value twice as finely as just above.
     */
    private static final float GP0_S = -1.515863687e-01f, GP1_S = -3.019500524e-02f, GP2_S = 1.632172987e-02f, GP3_S = 9.241998196e-03f,
            GP4_S = 1.551779220e-03f, GQ0_S = 0.75f, GQ1_S = 6.563431025e-01f, GQ2_S = 2.739969492e-01f, GQ3_S = 6.064932421e-02f,
            GQ4_S = 6.126271561e-03f;
    private static final FloatVector GP0 = v(GP0_S), GP1 = v(GP1_S), GP2 = v(GP2_S), GP3 = v(GP3_S), GP4 = v(GP4_S), GQ0 = v(GQ0_S),
            GQ1 = v(GQ1_S), GQ2 = v(GQ2_S), GQ3 = v(GQ3_S), GQ4 = v(GQ4_S);
    /**
     * 2^(n + 25): the tail Phi(-|x|) = erfc/2 comes out scaled by 2^26, normal down to
     * n = -152, where the clamp puts it exactly at 0 (so gelu(-inf) = -inf * 0 = NaN).
     */
    private static final int POW2_SCALED_25_S = (127 + 25) << 23;
    private static final IntVector POW2_SCALED_25 = v(POW2_SCALED_25_S);
    private static final float UNSCALE_26_S = 0x1p-26f, NEG_UNSCALE_26_S = -0x1p-26f;
    private static final FloatVector UNSCALE_26 = v(UNSCALE_26_S), NEG_UNSCALE_26 = v(NEG_UNSCALE_26_S);

    /**
     * GELU, exact form x/2 (1 + erf(x/sqrt 2)) = x Phi(x). Maximum error 4 ulp over the whole
     * range: the Gaussian tail Phi(-|x|) = erfc(|x|/sqrt 2)/2 is computed directly (never as
     * 1 - something, which would cancel) as e^(-x^2/2) / (1 + |x| g(|x|)), with x^2/2 carried exactly.
     * gelu(+inf) = +inf; gelu(-inf) is NaN (-inf * 0), like the reference.
     */
    public static FloatVector gelu(FloatVector x) {
        FloatVector ax = x.abs();
        FloatVector xc = ax.blend(GELU_CLAMP, ax.compare(VectorOperators.GT, GELU_CLAMP));
        FloatVector h = xc.mul(NEG_HALF);
        FloatVector a = xc.mul(h);
        FloatVector k = a.fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        // r = -x^2/2 - n ln2, including the rounding error of x^2/2 (exact by fma) so the exponent
        // is exact to 1e-8 even where x^2/2 is 100; the small terms are summed first, rounded once into r.
        FloatVector r = n.fma(NEG_LN2_HI, a).add(n.fma(NEG_LN2_LO, xc.fma(h, a.neg())));
        FloatVector c = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE);
        // 1 / (1 + |x| g) = Q / (Q + |x| Q g), Q g = Q + P: one division.
        FloatVector q = GQ4.fma(xc, GQ3).fma(xc, GQ2).fma(xc, GQ1).fma(xc, GQ0);
        FloatVector qg = GP4.fma(xc, GP3).fma(xc, GP2).fma(xc, GP1).fma(xc, GP0).add(q);
        // y e^-x^2/2 Q / (Q + |x| Q g) with y = Q, or x Q for x < 0, and y e^r formed as y + (y c) r: the
        // tail Phi(-|x|) 2^26, or x Phi(x) 2^26 for x < 0. y is taken times 2^(n + 25) as x 2^(n + 25) Q,
        // scaled before any product (exactly): x Q overflowed below x = -6e35, and -inf times the 0 of
        // 2^n at the clamp made NaN where x Phi(x) is -0.
        VectorMask<Float> negative = x.lt(ZERO);
        FloatVector pow = k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(POW2_SCALED_25).reinterpretAsFloats();
        FloatVector yp = pow.blend(x.mul(pow), negative).mul(q);
        FloatVector scaled = yp.mul(c).fma(r, yp).div(xc.fma(qg, q));
        // x (1 - tail) for x >= 0; for x < 0 the scale is removed last (one rounding into the subnormals).
        return x.mul(scaled.fma(NEG_UNSCALE_26, ONE)).blend(scaled.mul(UNSCALE_26), negative);
    }

    // GELU-tanh: v = 2 sqrt(2/pi) (x + 0.044715 x^3) = x (A + B x^2), A and B as float pairs.
    private static final float GT_A_S = 1.5957691669464111f, GT_A_LOW_S = -4.534068054340423e-8f;
    private static final FloatVector GT_A = v(GT_A_S), GT_A_LOW = v(GT_A_LOW_S);
    private static final float GT_B_S = 7.135481387376785e-2f, GT_B_LOW_S = 2.3988324659995897e-9f;
    private static final FloatVector GT_B = v(GT_B_S), GT_B_LOW = v(GT_B_LOW_S);
    /** x e^-|v| underflows beyond this |x|. */
    private static final float GELU_TANH_CLAMP_S = 11f;
    private static final FloatVector GELU_TANH_CLAMP = v(GELU_TANH_CLAMP_S);
    /** At the clamp n = -162 and this makes the exponent field exactly 0 (geluTanh(-inf) = -inf * 0 = NaN). */
    private static final int POW2_SCALED_35_S = (127 + 35) << 23;
    private static final IntVector POW2_SCALED_35 = v(POW2_SCALED_35_S);
    private static final float UNSCALE_35_S = 0x1p-35f;
    private static final FloatVector UNSCALE_35 = v(UNSCALE_35_S);

    /**
     * GELU, tanh approximation x/2 (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))), evaluated as
     * x sigmoid(v) (no cancellation for negative x) with v = x (A + B x^2) carried as a
     * float pair, since far out the result's sensitivity to v grows like |v|. Maximum error
     * 3.5 ulp. geluTanh(+inf) = +inf; geluTanh(-inf) is NaN, like the reference.
     */
    public static FloatVector geluTanh(FloatVector x) {
        FloatVector ax = x.abs();
        FloatVector xc = ax.blend(GELU_TANH_CLAMP, ax.compare(VectorOperators.GT, GELU_TANH_CLAMP));
        FloatVector s = xc.mul(xc);
        FloatVector bs = s.mul(GT_B);
        FloatVector w = bs.add(GT_A);
        // w's rounding error (Fast2Sum, the larger operand first), B s's, and the low parts of s, A and B.
        FloatVector wLow = bs.max(GT_A).sub(w).add(bs.min(GT_A)).add(s.fma(GT_B, bs.neg()))
                .add(xc.fma(xc, s.neg()).fma(GT_B, s.fma(GT_B_LOW, GT_A_LOW)));
        // -|v| = -xc (w + wLow); r = -|v| - n ln2 with the product's rounding absorbed by fma.
        FloatVector u = xc.neg();
        FloatVector k = u.mul(w).fma(LOG2E, ROUNDER);
        FloatVector n = k.sub(ROUNDER);
        FloatVector r = n.fma(NEG_LN2_LO, u.fma(wLow, u.fma(w, n.mul(NEG_LN2_HI))));
        FloatVector es = E6.fma(r, E5).fma(r, E4).fma(r, E3).fma(r, E2).fma(r, ONE).fma(r, ONE)
                .mul(k.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23).add(POW2_SCALED_35).reinterpretAsFloats());
        VectorMask<Float> negative = x.lt(ZERO);
        return x.mul(ONE.blend(es, negative)).div(es.fma(UNSCALE_35, ONE)).mul(ONE.blend(UNSCALE_35, negative));
    }

    // ---------------------------------------------------------------- scalar twins
    // Each the vector function of the same name written for one float: the same operations in
    // the same order, so the same bits lane by lane (VectorMathTest checks), for kernels'
    // scalar twins (see ScalarTwin). A helper here is fine: nothing is boxed in scalar code.

    /** Whether {@code fn} is one of the functions here, with a scalar twin. */
    public static boolean hasScalarTwin(UnaryFn fn) {
        return switch (fn) {
            case EXP, LOG, TANH, SIGMOID, ERF, GELU, GELU_TANH, SILU, SOFTPLUS, SIN, COS -> true;
            default -> false;
        };
    }

    /** {@code v[i] = fn(v[i])} for i < n by the scalar twin of {@code fn} (see {@link #hasScalarTwin}). */
    public static void applyScalar(UnaryFn fn, float[] v, int n) {
        switch (fn) {
            case EXP -> { for (int i = 0; i < n; i++) v[i] = exp(v[i]); }
            case LOG -> { for (int i = 0; i < n; i++) v[i] = log(v[i]); }
            case TANH -> { for (int i = 0; i < n; i++) v[i] = tanh(v[i]); }
            case SIGMOID -> { for (int i = 0; i < n; i++) v[i] = sigmoid(v[i]); }
            case ERF -> { for (int i = 0; i < n; i++) v[i] = erf(v[i]); }
            case GELU -> { for (int i = 0; i < n; i++) v[i] = gelu(v[i]); }
            case GELU_TANH -> { for (int i = 0; i < n; i++) v[i] = geluTanh(v[i]); }
            case SILU -> { for (int i = 0; i < n; i++) v[i] = silu(v[i]); }
            case SOFTPLUS -> { for (int i = 0; i < n; i++) v[i] = softplus(v[i]); }
            case SIN -> { for (int i = 0; i < n; i++) v[i] = sin(v[i]); }
            case COS -> { for (int i = 0; i < n; i++) v[i] = cos(v[i]); }
            default -> throw new IllegalArgumentException(fn + " has no scalar twin here");
        }
    }

    /** e^r for the reduced argument r: the degree-6 polynomial of exp. */
    private static float expPolynomial(float r) {
        return Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(E6_S, r, E5_S), r, E4_S), r, E3_S), r, E2_S), r, 1f), r, 1f);
    }

    /** r = a - n ln2 in two Cody-Waite steps, for n = k - ROUNDER. */
    private static float reduced(float a, float k) {
        float n = k - ROUNDER_S;
        return Math.fma(n, NEG_LN2_LO_S, Math.fma(n, NEG_LN2_HI_S, a));
    }

    /** 2^n (n held in k's low mantissa bits) times 2^scale, given the bits of 2^scale. */
    private static float pow2(float k, int scaledBias) {
        return Float.intBitsToFloat((Float.floatToRawIntBits(k) << 23) + scaledBias);
    }

    /** The twin of {@link #sigmoid(FloatVector)}. */
    public static float sigmoid(float x) {
        float a = Math.max(-Math.abs(x), EXP_MIN_S);
        float k = Math.fma(a, LOG2E_S, ROUNDER_S);
        float e = expPolynomial(reduced(a, k)) * pow2(k, POW2_SCALED_24_S) * UNSCALE_24_S;
        return (x < 0f ? e : 1f) / (e + 1f);
    }

    /** The twin of {@link #sin(FloatVector)}. */
    public static float sin(float x) {
        return trig(x, false);
    }

    /** The twin of {@link #cos(FloatVector)}. */
    public static float cos(float x) {
        return trig(x, true);
    }

    private static float trig(float x, boolean cosine) {
        float ax = Math.abs(x);
        if (ax > TRIG_REDUCED_MAX_S) return cosine ? (float) Math.cos(x) : (float) Math.sin(x);
        float k = Math.fma(ax, TWO_OVER_PI_S, ROUNDER_S);
        float n = k - ROUNDER_S;
        float r = Math.fma(n, PIO2_3_S, Math.fma(n, PIO2_2_S, Math.fma(n, NEG_PIO2_1_S, ax)));
        float s = r * r;
        float sinR = Math.fma(r * s, Math.fma(Math.fma(Math.fma(Math.fma(S11_S, s, S9_S), s, S7_S), s, S5_S), s, S3_S), r);
        float hs = s * HALF_S;
        float w = 1f - hs;
        float cosR = w + (((1f - w) - hs) + s * s * Math.fma(Math.fma(Math.fma(Math.fma(C12_S, s, C10_S), s, C8_S), s, C6_S), s, C4_S));
        int q = Float.floatToRawIntBits(k) - ROUNDER_BITS_S + (cosine ? 1 : 0);
        float v = (q & 1) != 0 ? cosR : sinR;
        int sign = (q & 2) << 30;
        if (!cosine) sign ^= Float.floatToRawIntBits(x) & SIGN_BIT_S;
        return Float.intBitsToFloat(Float.floatToRawIntBits(v) ^ sign);
    }

    /** The twin of {@link #tanh(FloatVector)}. */
    public static float tanh(float x) {
        float ax = Math.abs(x);
        float a = Math.max(ax * NEG_TWO_S, TANH_MIN_S);
        float k = Math.fma(a, LOG2E_S, ROUNDER_S);
        float e = expPolynomial(reduced(a, k)) * pow2(k, POW2_SCALED_0_S);
        float s = ax * ax;
        float y = ax >= TANH_SMALL_S ? 1f - (e + e) / (e + 1f)
                : Math.fma(ax * s, Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(T5_S, s, T4_S), s, T3_S), s, T2_S), s, T1_S), s, T0_S), ax);
        return Float.floatToRawIntBits(x) < 0 ? -y : y;
    }

    /** log(1 + f) - f over f^2, on [-0.25, 0.5]: the polynomial of log and softplus. */
    private static float logPolynomial(float f) {
        return Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Q8_S, f, Q7_S), f, Q6_S), f, Q5_S), f, Q4_S), f,
                Q3_S), f, Q2_S), f, Q1_S), f, NEG_HALF_S);
    }

    /** The twin of {@link #log(FloatVector)}. */
    public static float log(float x) {
        boolean subnormal = x < MIN_NORMAL_S;
        int bits = Float.floatToRawIntBits(subnormal ? x * TWO_POW_23_S : x);
        int offset = bits - LOG_OFFSET_S;
        float f = Float.intBitsToFloat(bits - (offset & EXPONENT_MASK_S)) - 1f;
        float e = (float) (offset >> 23) - (subnormal ? TWENTY_THREE_S : 0f);
        float y = Math.fma(e, LN2_HI_S, Math.fma(e, LN2_LO_S, f * f * logPolynomial(f)) + f);
        if (!(x < INFINITY_S)) y = x;
        return x <= 0f ? (float) Math.sqrt(x) - INFINITY_S : y;
    }

    /** The twin of {@link #softplus(FloatVector)}. */
    public static float softplus(float x) {
        float a = Math.max(-Math.abs(x), EXP_MIN_S);
        float k = Math.fma(a, LOG2E_S, ROUNDER_S);
        float e = expPolynomial(reduced(a, k)) * pow2(k, POW2_SCALED_24_S) * UNSCALE_24_S;
        boolean upper = e > 0.5f;
        float f = upper ? Math.fma(e, HALF_S, NEG_HALF_S) : e;
        float j = upper ? 1f : 0f;
        return Math.max(x, 0f) + Math.fma(j, LN2_HI_S, Math.fma(j, LN2_LO_S, f * f * logPolynomial(f)) + f);
    }

    /** The twin of {@link #erf(FloatVector)}. */
    public static float erf(float x) {
        float z = Math.min(Math.abs(x), ERF_CLAMP_S);
        float s = x * x;
        float small = Math.fma(x, Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(ES5_S, s, ES4_S), s, ES3_S), s, ES2_S), s, ES1_S), s, ES0_S),
                x);
        float l = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(EL6_S, z, EL5_S), z, EL4_S), z, EL3_S), z, EL2_S), z, EL1_S), z,
                EL0_S);
        float k = Math.fma(l, LOG2E_S, ROUNDER_S);
        float erfc = expPolynomial(reduced(l, k)) * pow2(k, POW2_SCALED_0_S);
        float large = x < 0f ? -(1f - erfc) : 1f - erfc;
        return z >= ERF_SMALL_S ? large : small;
    }

    /** The twin of {@link #gelu(FloatVector)}. */
    public static float gelu(float x) {
        float xc = Math.min(Math.abs(x), GELU_CLAMP_S);
        float h = xc * NEG_HALF_S;
        float a = xc * h;
        float k = Math.fma(a, LOG2E_S, ROUNDER_S);
        float n = k - ROUNDER_S;
        float r = Math.fma(n, NEG_LN2_HI_S, a) + Math.fma(n, NEG_LN2_LO_S, Math.fma(xc, h, -a));
        float c = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(E6_S, r, E5_S), r, E4_S), r, E3_S), r, E2_S), r, 1f);
        float q = Math.fma(Math.fma(Math.fma(Math.fma(GQ4_S, xc, GQ3_S), xc, GQ2_S), xc, GQ1_S), xc, GQ0_S);
        float qg = Math.fma(Math.fma(Math.fma(Math.fma(GP4_S, xc, GP3_S), xc, GP2_S), xc, GP1_S), xc, GP0_S) + q;
        boolean negative = x < 0f;
        float pow = pow2(k, POW2_SCALED_25_S);
        float yp = (negative ? x * pow : pow) * q;
        float scaled = Math.fma(yp * c, r, yp) / Math.fma(xc, qg, q);
        return negative ? scaled * UNSCALE_26_S : x * Math.fma(scaled, NEG_UNSCALE_26_S, 1f);
    }

    /** The twin of {@link #geluTanh(FloatVector)}. */
    public static float geluTanh(float x) {
        float xc = Math.min(Math.abs(x), GELU_TANH_CLAMP_S);
        float s = xc * xc;
        float bs = s * GT_B_S;
        float w = bs + GT_A_S;
        float wLow = Math.max(bs, GT_A_S) - w + Math.min(bs, GT_A_S) + Math.fma(s, GT_B_S, -bs)
                + Math.fma(Math.fma(xc, xc, -s), GT_B_S, Math.fma(s, GT_B_LOW_S, GT_A_LOW_S));
        float u = -xc;
        float k = Math.fma(u * w, LOG2E_S, ROUNDER_S);
        float n = k - ROUNDER_S;
        float r = Math.fma(n, NEG_LN2_LO_S, Math.fma(u, wLow, Math.fma(u, w, n * NEG_LN2_HI_S)));
        float es = expPolynomial(r) * pow2(k, POW2_SCALED_35_S);
        boolean negative = x < 0f;
        return x * (negative ? es : 1f) / Math.fma(es, UNSCALE_35_S, 1f) * (negative ? UNSCALE_35_S : 1f);
    }
}
