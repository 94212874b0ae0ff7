package dev.kiln.npu.kernels;

import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vector primitives on their own: the blocked sum's accuracy, NaN handling, the scalar twins' bits. */
class FloatRunsTest {

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

    /** Rows long enough for several flushes, of every length around the vector and flush sizes, with NaN and infinities at times. */
    @Property(tries = 200)
    void momentsAndNormalizeHaveScalarTwinsOfTheSameBits(@ForAll @IntRange(max = 5000) int n, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n], w = new float[n], b = new float[n];
        boolean special = r.nextInt(8) == 0;
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(7) - 3));
            if (special && r.nextInt(50) == 0) x[i] = new float[] {Float.NaN, Float.POSITIVE_INFINITY, -0f, Float.MIN_VALUE}[r.nextInt(4)];
            w[i] = (float) r.nextGaussian();
            b[i] = (float) r.nextGaussian();
        }
        float shift = r.nextBoolean() ? 0f : (float) r.nextGaussian(), lo = (float) (r.nextGaussian() * 1e-4), factor = (float) r.nextDouble();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4L * Math.max(n, 1), 64), out = arena.allocate(4L * Math.max(n, 1), 64);
            MemorySegment.copy(x, 0, s, Staging.F32, 0, n);
            double[] vector = new double[2], scalar = new double[2];
            FloatRuns.moments(s, 0, n, shift, vector);
            FloatRuns.momentsScalar(x, n, shift, scalar);
            assertEquals(Double.doubleToRawLongBits(vector[0]), Double.doubleToRawLongBits(scalar[0]), "sum of deviations, n=" + n);
            assertEquals(Double.doubleToRawLongBits(vector[1]), Double.doubleToRawLongBits(scalar[1]), "sum of squares, n=" + n);
            FloatRuns.normalize(s, 0, out, 0, n, shift, lo, factor, w, b);
            float[] twin = new float[n];
            FloatRuns.normalizeScalar(x, twin, n, shift, lo, factor, w, b);
            float[] got = new float[n];
            MemorySegment.copy(out, Staging.F32, 0, got, 0, n);
            assertArrayEquals(got, twin, "normalize, n=" + n);
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
