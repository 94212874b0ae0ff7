package dev.kiln.npu.kernels;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vector primitives on their own: exp's ulp error, the blocked sum's accuracy, NaN handling. */
class FloatRunsTest {

    private static float[] expOf(float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i += FloatRuns.LANES) {
            FloatRuns.exp(FloatVector.fromArray(FloatRuns.SPECIES, x, i)).intoArray(out, i);
        }
        return out;
    }

    /** Distance in units of the last place of the correctly rounded float. */
    private static double ulps(float got, double exact) {
        float rounded = (float) exact;
        return Math.abs(got - exact) / Math.ulp(rounded == 0 ? Float.MIN_VALUE : rounded);
    }

    @Test
    void expIsWithinTwoUlpAcrossTheFloatRange() {
        int n = FloatRuns.LANES * 20_000;
        float[] x = new float[n];
        SplittableRandom r = new SplittableRandom(11);
        for (int i = 0; i < n; i++) x[i] = (float) (r.nextDouble() * 200 - 110); // -110 .. 90: underflow to overflow
        float[] e = expOf(x);
        double worst = 0;
        for (int i = 0; i < n; i++) {
            double exact = Math.exp(x[i]);
            if ((float) exact == Float.POSITIVE_INFINITY) assertEquals(Float.POSITIVE_INFINITY, e[i], "exp(" + x[i] + ")");
            else worst = Math.max(worst, ulps(e[i], exact));
        }
        assertTrue(worst <= 2, "worst error " + worst + " ulp");
    }

    @Test
    void expSpecialValues() {
        float[] x = new float[FloatRuns.LANES];
        float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, 88.72283f, 88.7229f,
                -87.33655f, -103.9720f, -104f, 1e-8f, -1e-8f};
        for (int i = 0; i < x.length; i++) x[i] = special[i % special.length];
        float[] e = expOf(x);
        assertTrue(Float.isNaN(e[0]));
        assertEquals(Float.POSITIVE_INFINITY, e[1]);
        assertEquals(0f, e[2]);
        assertEquals(1f, e[3]);
        assertEquals(1f, e[4]);
        assertTrue(ulps(e[5], Math.exp(88.72283f)) <= 2, "largest finite result");
        assertEquals(Float.POSITIVE_INFINITY, e[6]);
        assertTrue(ulps(e[7], Math.exp(-87.33655f)) <= 2, "near the smallest normal");
        assertEquals((float) Math.exp(-103.9720f), e[8], "subnormal result, rounded once");
        assertEquals(0f, e[9]);
        assertEquals(1f, e[10]);
        assertEquals(1f, e[11]);
    }

    @Test
    void blockedSumOfAMillionIsAccurateAndMomentsAgree() {
        int n = 1_000_003;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4L * n, 64);
            SplittableRandom r = new SplittableRandom(5);
            double exact = 0, squares = 0;
            for (int i = 0; i < n; i++) {
                float v = (float) (r.nextDouble() * 3);
                FloatRuns.set(s, i, v);
                exact += v;
                squares += (double) (v - 1.5f) * (v - 1.5f);
            }
            assertEquals(exact, FloatRuns.sum(s, 0, n), exact * 2e-7);
            double[] m = new double[2];
            FloatRuns.moments(s, 0, n, 1.5f, m);
            assertEquals(exact - 1.5 * n, m[0], exact * 2e-7);
            assertEquals(squares, m[1], squares * 2e-7);
        }
    }

    @Test
    void extremePropagatesNaNFromAnyPosition() {
        int n = 4 * FloatRuns.LANES + 3;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4L * n, 64);
            for (int nan = 0; nan < n; nan++) {
                for (int i = 0; i < n; i++) FloatRuns.set(s, i, i == nan ? Float.NaN : i);
                assertTrue(Float.isNaN(FloatRuns.extreme(s, 0, n, true)), "max, NaN at " + nan);
                assertTrue(Float.isNaN(FloatRuns.extreme(s, 0, n, false)), "min, NaN at " + nan);
                assertEquals(nan, FloatRuns.indexOf(s, 0, n, Float.NaN, false));
                assertEquals(nan, FloatRuns.indexOf(s, 0, n, Float.NaN, true));
            }
            assertEquals(Float.NEGATIVE_INFINITY, FloatRuns.extreme(s, 0, 0, true));
            assertEquals(-1, FloatRuns.indexOf(s, 0, n, -5f, false));
        }
    }
}
