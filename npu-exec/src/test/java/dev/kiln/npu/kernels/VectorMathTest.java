package dev.kiln.npu.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.ClassModel;
import java.lang.classfile.MethodModel;
import java.lang.classfile.attribute.CodeAttribute;
import java.lang.reflect.AccessFlag;
import java.util.function.DoubleUnaryOperator;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Sweeps each VectorMath function densely (every binade by bit pattern, plus a linear
 * grid) against a double-precision reference written here, and checks the maximum
 * error each method documents, in ulps of the float32 result.
 */
public class VectorMathTest {
    private static final VectorSpecies<Float> S = VectorMath.SPECIES;

    // ---------------------------------------------------------------- double references (shared with the generated-kernel tests)

    private static final double SQRT_PI = Math.sqrt(Math.PI);

    /** erfc in double: 1 - Taylor series below 2 (losing at most 3 digits), Lentz's continued fraction above. */
    public static double erfcRef(double z) {
        if (Double.isNaN(z)) return z;
        if (z < 0) return 2 - erfcRef(-z);
        if (z < 2) return 1 - erfSeries(z);
        if (z > 27) return 0;
        double tiny = 1e-300, f = z, c = z, d = 0;
        for (int n = 1; n < 2000; n++) {
            double an = n * 0.5;
            d = z + an * d;
            if (Math.abs(d) < tiny) d = tiny;
            c = z + an / c;
            if (Math.abs(c) < tiny) c = tiny;
            d = 1 / d;
            double delta = c * d;
            f *= delta;
            if (Math.abs(delta - 1) < 1e-16) break;
        }
        return Math.exp(-z * z) / SQRT_PI / f;
    }

    private static double erfSeries(double z) {
        double z2 = z * z, term = z, sum = z;
        for (int n = 1; n < 300; n++) {
            term *= -z2 / n;
            double t = term / (2 * n + 1);
            sum += t;
            if (Math.abs(t) < 1e-18 * Math.abs(sum)) break;
        }
        return 2 / SQRT_PI * sum;
    }

    public static double erfRef(double x) {
        if (Double.isNaN(x)) return x;
        double a = Math.abs(x);
        double r = a < 2 ? erfSeries(a) : 1 - erfcRef(a);
        return Math.copySign(r, x);
    }

    public static double sigmoidRef(double x) {
        return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
    }

    /** x Phi(x) with the Gaussian CDF from erfc, so the negative tail does not cancel. */
    public static double geluRef(double x) {
        if (x == Double.NEGATIVE_INFINITY) return Double.NaN;
        if (x == Double.POSITIVE_INFINITY) return x;
        return x * 0.5 * erfcRef(-x / Math.sqrt(2));
    }

    public static double geluTanhRef(double x) {
        if (Double.isInfinite(x)) return x > 0 ? x : Double.NaN;
        double v = 2 * 0.7978845608028654 * (x + 0.044715 * x * x * x);
        return x * sigmoidRef(v);
    }

    public static double softplusRef(double x) {
        return x > 20 ? x : Math.log1p(Math.exp(x));
    }

    @Test
    void referencesAgreeWithHighPrecisionValues() {
        // Values from mpmath at 30 digits.
        double[][] erfc = {{0.5, 0.47950012218695346}, {1, 0.15729920705028513}, {2, 0.0046777349810472658},
                {3, 2.2090496998585441e-5}, {5, 1.5374597944280349e-12}, {7.5, 2.7766493860305691e-26},
                {10, 2.0884875837625448e-45}};
        for (double[] p : erfc) assertEquals(p[1], erfcRef(p[0]), 1e-14 * p[1], "erfc(" + p[0] + ")");
        assertEquals(0.32862675945912742, erfRef(0.3), 1e-16);
        assertEquals(0.84270079294971487, erfRef(1), 3e-16);
        assertEquals(0.99959304798255504, erfRef(2.5), 1e-16);
        assertEquals(-1.4332578593959696e-6, geluRef(-5), 1e-14 * 1.5e-6);
        assertEquals(-7.6198530241605261e-23, geluRef(-10), 1e-13 * 7.7e-23);
        assertEquals(-7.9523137194148436e-38, geluRef(-13), 1e-13 * 8e-38);
        assertEquals(-0.0036373920817730188, geluTanhRef(-3), 1e-15);
        assertEquals(-2.291796196629506e-7, geluTanhRef(-5), 1e-14 * 2.3e-7);
        assertEquals(-3.1077829375011112e-21, geluTanhRef(-8), 1e-12 * 3.1e-21);
    }

    // ---------------------------------------------------------------- sweeps

    @Test
    void exp() {
        sweep("exp", VectorMath::exp, Math::exp, -110, 95, 1.5);
    }

    @Test
    void log() {
        sweep("log", VectorMath::log, Math::log, 0, Float.MAX_VALUE, 1.5);
        sweep("log near 1", VectorMath::log, Math::log, 0.5, 2, 1.5);
    }

    @Test
    void log1p() {
        sweep("log1p", VectorMath::log1p, Math::log1p, -1, Float.MAX_VALUE, 2);
        sweep("log1p small", VectorMath::log1p, Math::log1p, -1e-3, 1e-3, 2);
    }

    @Test
    void tanh() {
        sweep("tanh", VectorMath::tanh, Math::tanh, -30, 30, 1.5);
    }

    @Test
    void sigmoid() {
        sweep("sigmoid", VectorMath::sigmoid, VectorMathTest::sigmoidRef, -120, 120, 2.5);
    }

    @Test
    void silu() {
        sweep("silu", VectorMath::silu, x -> x * sigmoidRef(x), -120, 120, 3);
    }

    @Test
    void softplus() {
        sweep("softplus", VectorMath::softplus, VectorMathTest::softplusRef, -120, 120, 2);
    }

    @Test
    void erf() {
        sweep("erf", VectorMath::erf, VectorMathTest::erfRef, -12, 12, 1.5);
    }

    @Test
    void gelu() {
        sweep("gelu", VectorMath::gelu, VectorMathTest::geluRef, -25, 25, 4);
    }

    @Test
    void geluTanh() {
        sweep("gelu_tanh", VectorMath::geluTanh, VectorMathTest::geluTanhRef, -25, 25, 3.5);
    }

    @Test
    void sin() {
        sweep("sin", VectorMath::sin, Math::sin, -200, 200, 1.5);
        // Up to the reduction's limit, and past it (the JDK's sin per lane).
        sweep("sin far out", VectorMath::sin, Math::sin, -131072, 131072, 1.5);
        sweep("sin beyond", VectorMath::sin, Math::sin, -1e7, 1e7, 1.5);
    }

    @Test
    void cos() {
        sweep("cos", VectorMath::cos, Math::cos, -200, 200, 1.5);
        sweep("cos far out", VectorMath::cos, Math::cos, -131072, 131072, 1.5);
        sweep("cos beyond", VectorMath::cos, Math::cos, -1e7, 1e7, 1.5);
    }

    /** The floats nearest the multiples of pi/2 up to the reduction's limit, where sin or cos is smallest. */
    @Test
    void sinAndCosNearTheirZeros() {
        float[] xs = new float[7 * 83_500 + S.length()];
        int n = 0;
        for (int k = 1; k <= 83_440; k++) {
            float x = (float) (k * Math.PI / 2);
            for (int d = 0; d < 3; d++) x = Math.nextDown(x);
            for (int d = 0; d < 7; d++, x = Math.nextUp(x)) xs[n++] = x;
        }
        n = (n + S.length() - 1) / S.length() * S.length();
        float[] s = new float[n], c = new float[n];
        for (int i = 0; i < n; i += S.length()) {
            VectorMath.sin(FloatVector.fromArray(S, xs, i)).intoArray(s, i);
            VectorMath.cos(FloatVector.fromArray(S, xs, i)).intoArray(c, i);
        }
        for (int i = 0; i < n; i++) {
            float x = xs[i];
            assertTrue(ulpError(s[i], Math.sin(x)) <= 1.5, "sin(" + x + ") = " + s[i] + ", reference " + Math.sin(x));
            assertTrue(ulpError(c[i], Math.cos(x)) <= 1.5, "cos(" + x + ") = " + c[i] + ", reference " + Math.cos(x));
        }
    }

    /**
     * C2 inlines a hot callee only up to FreqInlineSize (325) bytes of bytecode; a VectorMath
     * function over that would be called out of line from every loop, boxing its vectors.
     */
    @Test
    void everyFunctionIsSmallEnoughToInline() throws IOException {
        ClassModel model;
        try (InputStream in = VectorMath.class.getResourceAsStream("VectorMath.class")) {
            model = ClassFile.of().parse(in.readAllBytes());
        }
        int functions = 0;
        for (MethodModel m : model.methods()) {
            // The vector functions and their helpers (the scalar twins have no vectors to box).
            if (!m.methodType().stringValue().startsWith("(Ljdk/incubator/vector/FloatVector;")) continue;
            int size = m.findAttribute(java.lang.classfile.Attributes.code()).map(CodeAttribute::codeLength).orElseThrow();
            assertTrue(size <= 325, m.methodName() + " is " + size + " bytes of bytecode, over C2's FreqInlineSize of 325");
            functions++;
        }
        assertEquals(15, functions, "vector functions and helpers checked");
    }

    @Test
    void scalarExpGivesTheVectorBits() {
        assertScalarTwin("exp", VectorMath::exp, VectorMath::exp);
    }

    @Test
    void scalarTwinsGiveTheVectorBits() {
        assertScalarTwin("silu", VectorMath::silu, VectorMath::silu);
        assertScalarTwin("sigmoid", VectorMath::sigmoid, VectorMath::sigmoid);
        assertScalarTwin("tanh", VectorMath::tanh, VectorMath::tanh);
        assertScalarTwin("log", VectorMath::log, VectorMath::log);
        assertScalarTwin("softplus", VectorMath::softplus, VectorMath::softplus);
        assertScalarTwin("erf", VectorMath::erf, VectorMath::erf);
        assertScalarTwin("gelu", VectorMath::gelu, VectorMath::gelu);
        assertScalarTwin("gelu_tanh", VectorMath::geluTanh, VectorMath::geluTanh);
        assertScalarTwin("sin", VectorMath::sin, VectorMath::sin);
        assertScalarTwin("cos", VectorMath::cos, VectorMath::cos);
    }

    /** A scalar twin gives the vector function's bits for every 2^8th float, both signs, and the special values. */
    private static void assertScalarTwin(String name, UnaryOperator<FloatVector> vector, java.util.function.Function<Float, Float> scalar) {
        float[] xs = new float[2 * (1 << 23) + 16];
        int n = 0;
        for (float x : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, -104f, -103.97f, 89f, 88.72f,
                -87.34f, -110f, -109.9f, 0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE, Float.MIN_NORMAL, 0.75f, 0.84375f, 3.95f, 14.5f,
                11f, -11f, -14.5f, 131072f, -131072f, Math.nextUp(131072f), 0.7853982f, 2.3561945f, Float.MAX_VALUE, -Float.MAX_VALUE,
                Float.intBitsToFloat(0xffc00000)}) {
            xs[n++] = x;
        }
        for (int bits = 0; bits < 0x7f800000; bits += 1 << 8) {
            xs[n++] = Float.intBitsToFloat(bits);
            xs[n++] = -Float.intBitsToFloat(bits);
        }
        // Whole vectors only; the sweep's last few patterns may be left out.
        n = n / S.length() * S.length();
        float[] ys = new float[n];
        for (int i = 0; i < n; i += S.length()) vector.apply(FloatVector.fromArray(S, xs, i)).intoArray(ys, i);
        for (int i = 0; i < n; i++) {
            float x = xs[i];
            assertEquals(Float.floatToIntBits(ys[i]), Float.floatToIntBits(scalar.apply(x)), () -> name + "(" + x + ")");
        }
    }

    @Test
    void specialValues() {
        assertEquals(Float.POSITIVE_INFINITY, one(VectorMath::exp, 100));
        assertEquals(Float.POSITIVE_INFINITY, one(VectorMath::exp, 88.73f));
        assertEquals((float) Math.exp(-100), one(VectorMath::exp, -100), "exp(-100) is subnormal, not flushed");
        assertEquals(0f, one(VectorMath::exp, -104));
        assertEquals(0f, one(VectorMath::exp, Float.NEGATIVE_INFINITY));
        assertEquals(1f, one(VectorMath::exp, 0));
        assertEquals(1f, one(VectorMath::tanh, 20));
        assertEquals(-1f, one(VectorMath::tanh, -20));
        assertEquals(-0f, one(VectorMath::tanh, -0f));
        assertEquals(0f, one(VectorMath::tanh, 0f));
        assertEquals(0f, one(VectorMath::erf, 0f));
        assertEquals(-0f, one(VectorMath::gelu, -0f));
        assertEquals(-0f, one(VectorMath::gelu, -20f), "the Gaussian tail underflows to zero");
        // Far out the products x q and x e^r must not overflow into -inf * 0 = NaN.
        for (float x : new float[] {-1e37f, -Float.MAX_VALUE}) {
            assertEquals(-0f, one(VectorMath::gelu, x), "gelu(" + x + ")");
            assertEquals(-0f, one(VectorMath::silu, x), "silu(" + x + ")");
            assertEquals(-0f, one(VectorMath::geluTanh, x), "gelu_tanh(" + x + ")");
        }
        assertEquals(1f, one(VectorMath::erf, 6));
        assertEquals(-1f, one(VectorMath::erf, -6));
        assertEquals(-0f, one(VectorMath::erf, -0f));
        assertEquals(1f, one(VectorMath::sigmoid, 100));
        assertEquals((float) Math.exp(-100), one(VectorMath::sigmoid, -100));
        assertEquals(0f, one(VectorMath::sigmoid, -200));
        assertEquals(Float.NEGATIVE_INFINITY, one(VectorMath::log, 0));
        assertEquals(Float.NEGATIVE_INFINITY, one(VectorMath::log, -0f));
        assertEquals(Float.POSITIVE_INFINITY, one(VectorMath::log, Float.POSITIVE_INFINITY));
        assertEquals((float) Math.log(Float.MIN_VALUE), one(VectorMath::log, Float.MIN_VALUE));
        assertEquals(Float.NEGATIVE_INFINITY, one(VectorMath::log1p, -1));
        assertEquals(1e-30f, one(VectorMath::log1p, 1e-30f));
        assertEquals(100f, one(VectorMath::softplus, 100));
        assertEquals(Float.POSITIVE_INFINITY, one(VectorMath::softplus, Float.POSITIVE_INFINITY));
        assertEquals(0f, one(VectorMath::softplus, Float.NEGATIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, one(VectorMath::gelu, Float.POSITIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, one(VectorMath::geluTanh, Float.POSITIVE_INFINITY));
        assertEquals(Float.POSITIVE_INFINITY, one(VectorMath::silu, Float.POSITIVE_INFINITY));
        // -inf * Phi(-inf) = -inf * 0: NaN, as the reference formulas and PyTorch give.
        assertTrue(Float.isNaN(one(VectorMath::gelu, Float.NEGATIVE_INFINITY)));
        assertTrue(Float.isNaN(one(VectorMath::geluTanh, Float.NEGATIVE_INFINITY)));
        assertTrue(Float.isNaN(one(VectorMath::silu, Float.NEGATIVE_INFINITY)));
        assertEquals(-0f, one(VectorMath::sin, -0f));
        assertEquals(0f, one(VectorMath::sin, 0f));
        assertEquals(1f, one(VectorMath::cos, -0f));
        assertEquals(-Float.MIN_VALUE, one(VectorMath::sin, -Float.MIN_VALUE));
        for (float inf : new float[] {Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
            assertTrue(Float.isNaN(one(VectorMath::sin, inf)));
            assertTrue(Float.isNaN(one(VectorMath::cos, inf)));
        }
        for (UnaryOperator<FloatVector> f : java.util.List.<UnaryOperator<FloatVector>>of(VectorMath::exp, VectorMath::log,
                VectorMath::log1p, VectorMath::tanh, VectorMath::sigmoid, VectorMath::silu, VectorMath::softplus,
                VectorMath::erf, VectorMath::gelu, VectorMath::geluTanh, VectorMath::sin, VectorMath::cos)) {
            assertTrue(Float.isNaN(one(f, Float.NaN)));
        }
    }

    private static float one(UnaryOperator<FloatVector> f, float x) {
        return f.apply(FloatVector.broadcast(S, x)).lane(0);
    }

    /**
     * Evaluates f on every 2^k-th float bit pattern of [lo, hi] (both signs where the range
     * spans zero) and on a uniform grid, and fails if any result is further than
     * {@code ulpBound} ulps from the reference rounded to float. Non-finite references must
     * match exactly; results whose reference overflows float are held to the largest
     * float's ulp.
     */
    private static void sweep(String name, UnaryOperator<FloatVector> f, DoubleUnaryOperator ref,
                              double lo, double hi, double ulpBound) {
        float[] xs = points((float) lo, (float) hi);
        float[] ys = new float[xs.length];
        for (int i = 0; i < xs.length; i += S.length()) {
            f.apply(FloatVector.fromArray(S, xs, i)).intoArray(ys, i);
        }
        double worst = 0;
        float worstX = 0;
        for (int i = 0; i < xs.length; i++) {
            double r = ref.applyAsDouble(xs[i]);
            float y = ys[i];
            double err = ulpError(y, r);
            if (Double.isNaN(err)) fail(name + "(" + xs[i] + ") = " + y + ", expected " + r);
            if (err > worst) {
                worst = err;
                worstX = xs[i];
            }
        }
        if (worst > ulpBound) {
            fail(name + ": " + worst + " ulp at x = " + worstX + " (got " + one(f, worstX) + ", reference "
                    + ref.applyAsDouble(worstX) + "); documented bound " + ulpBound);
        }
    }

    /** Error in ulps of the float result; NaN for a mismatch of NaN or infinity. */
    static double ulpError(float got, double ref) {
        if (Double.isNaN(ref)) return Float.isNaN(got) ? 0 : Double.NaN;
        float rounded = (float) ref;
        if (Double.isInfinite(ref)) return got == rounded ? 0 : Double.NaN;
        if (Float.isNaN(got)) return Double.NaN;
        double ulp = Float.isInfinite(rounded) ? Math.ulp(Float.MAX_VALUE) : Math.ulp(rounded);
        if (Float.isInfinite(got)) return Float.isInfinite(rounded) && Math.signum(got) == Math.signum(ref) ? 0 : Double.NaN;
        return Math.abs(got - ref) / ulp;
    }

    /** Bit-pattern sweep of each sign's magnitudes in range, a linear grid, and the exact endpoints; padded to whole vectors. */
    private static float[] points(float lo, float hi) {
        int perPart = 1 << 19;
        float[] out = new float[3 * perPart + S.length()];
        int n = 0;
        for (int sign = 0; sign < 2; sign++) {
            float a = sign == 0 ? Math.max(lo, 0) : Math.max(-hi, 0);
            float b = sign == 0 ? Math.max(hi, 0) : Math.max(-lo, 0);
            if (b <= a && !(a == 0 && b == 0 && (sign == 0 ? hi >= 0 : lo <= 0))) continue;
            int ba = Float.floatToIntBits(a), bb = Float.floatToIntBits(b);
            long step = Math.max(1, ((long) bb - ba) / perPart);
            for (long bits = ba; bits <= bb && n < 2 * perPart; bits += step) {
                float m = Float.intBitsToFloat((int) bits);
                out[n++] = sign == 0 ? m : -m;
            }
        }
        for (int i = 0; i < perPart; i++) out[n++] = (float) (lo + (hi - lo) * i / (perPart - 1.0));
        out[n++] = lo;
        out[n++] = hi;
        int padded = (n + S.length() - 1) / S.length() * S.length();
        for (int i = n; i < padded; i++) out[i] = hi;
        return java.util.Arrays.copyOf(out, padded);
    }
}
