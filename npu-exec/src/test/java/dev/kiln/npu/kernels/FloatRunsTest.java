package dev.kiln.npu.kernels;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The vector primitives on their own: the blocked sum's accuracy, NaN handling. */
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
