package dev.kiln.samples.bench;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class TimingTest {

    @Test
    void medianMinAndMax() {
        assertEquals(new Timing.Stats(3, 1, 9), Timing.Stats.of(new double[] {9, 1, 3}));
        assertEquals(new Timing.Stats(2.5, 1, 9), Timing.Stats.of(new double[] {9, 1, 2, 3}));
        assertEquals(new Timing.Stats(4, 4, 4), Timing.Stats.of(new double[] {4}));
    }

    @Test
    void runsTheBodyWarmupPlusMeasuredTimes() {
        AtomicInteger calls = new AtomicInteger();
        Timing.Stats s = new Timing(2, 5).measure(calls::incrementAndGet);
        assertEquals(7, calls.get());
        assertEquals(true, s.minMs() <= s.medianMs() && s.medianMs() <= s.maxMs());
    }

    @Test
    void warmsUpForAtLeastTheGivenTime() {
        AtomicInteger calls = new AtomicInteger();
        long t0 = System.nanoTime();
        // Three calls of 1 ms could not take 50 ms but for the time-based warm-up.
        new Timing(1, 2, 50, () -> 0, () -> 0).measure(() -> {
            calls.incrementAndGet();
            long end = System.nanoTime() + 1_000_000;
            while (System.nanoTime() < end) Thread.onSpinWait();
        });
        assertTrue(System.nanoTime() - t0 >= 50_000_000L);
        assertTrue(calls.get() >= 3, "calls: " + calls.get());
    }

    @Test
    void warmUpGoesOnUntilASecondPassesWithoutCompiling() {
        AtomicInteger calls = new AtomicInteger();
        AtomicLong compiled = new AtomicLong();
        long t0 = System.nanoTime();
        // The fake JIT compiles 100 ms' worth per call for the first 1.2 s of calls.
        new Timing(1, 2, 10, compiled::get, () -> 0).measure(() -> {
            calls.incrementAndGet();
            if (System.nanoTime() - t0 < 1_200_000_000L) compiled.addAndGet(100);
            long end = System.nanoTime() + 1_000_000;
            while (System.nanoTime() < end) Thread.onSpinWait();
        });
        long elapsedMs = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(elapsedMs >= 2000, "a busy second, then a quiet one: " + elapsedMs + " ms");
        assertTrue(elapsedMs < 10_000, "stops once quiet: " + elapsedMs + " ms");
    }

    @Test
    void aCountOnlyWarmUpDoesNotWaitForTheJit() {
        AtomicInteger calls = new AtomicInteger();
        new Timing(2, 3, 0, () -> System.nanoTime(), () -> 0).measure(calls::incrementAndGet);
        assertEquals(5, calls.get());
    }

    @Test
    void interleavedBodiesTakeTurnsInWarmUpAndMeasuredRuns() {
        StringBuilder order = new StringBuilder();
        Timing.Rounds rounds = new Timing(2, 3).measureInterleaved(List.of(() -> order.append('a'), () -> order.append('b')));
        assertEquals("ab".repeat(5), order.toString());
        assertEquals(2, rounds.ms().length);
        assertEquals(3, rounds.ms()[1].length);
    }

    @Test
    void interleavedRoundsReportTheJitTimeAndScalarPiecesOfTheMeasuredRunsOnly() {
        // The JIT's clock advances 7 ms per run of the first body, the scalar pieces 2 per run of the second:
        // two warm-up rounds, then three measured.
        long[] jit = {0}, scalar = {0};
        Timing.Rounds rounds = new Timing(2, 3, 0, () -> jit[0], () -> scalar[0])
                .measureInterleaved(List.of(() -> jit[0] += 7, () -> scalar[0] += 2));
        assertEquals(21, rounds.jitMillis());
        assertEquals(6, rounds.scalarPieces());
        assertEquals(35, jit[0]);
    }

    @Test
    void thePairedRatioComparesRunsOfTheSameRound() {
        // Rounds 2 and 3 ran on a machine twice as slow; the second body is twice as fast in every round.
        Timing.Rounds rounds = new Timing.Rounds(new double[][] {{10, 20, 20}, {5, 10, 10}}, 0, 0);
        assertEquals(2.0, rounds.pairedRatio(0, 1));
        assertEquals(0.5, rounds.pairedRatio(1, 0));
        // The medians' ratio mixes rounds: 20 / 10 here, but 20 / 5 once the fast body's slow rounds differ.
        Timing.Rounds mixed = new Timing.Rounds(new double[][] {{10, 20, 20}, {5, 10, 5}}, 0, 0);
        assertEquals(2.0, mixed.pairedRatio(0, 1));
        assertEquals(new Timing.Stats(20, 10, 20), mixed.stats(0));
        assertEquals(new Timing.Stats(5, 5, 10), mixed.stats(1));
    }

    @Test
    void rejectsMeaninglessCounts() {
        assertEquals("warm-up time must be >= 0 ms, got -1", assertThrows(IllegalArgumentException.class, () -> new Timing(0, 1, -1)).getMessage());
        assertEquals("measured runs must be >= 1, got 0", assertThrows(IllegalArgumentException.class, () -> new Timing(0, 0)).getMessage());
        assertEquals("warm-up runs must be >= 0, got -1", assertThrows(IllegalArgumentException.class, () -> new Timing(-1, 5)).getMessage());
    }

    @Test
    void jsonHasEveryFieldWithNullsWhereAFigureDoesNotApply() {
        BenchResult r = new BenchResult("W1", "pointwise_chain", "eager", new Timing.Stats(1.23456, 1, 2), 0.000123456, null, false, 2);
        assertEquals("{\"workload\":\"W1\",\"name\":\"pointwise_chain\",\"mode\":\"eager\",\"median_ms\":1.235,\"min_ms\":1.0,"
                + "\"max_ms\":2.0,\"gbps\":1.235E-4,\"gflops\":null,\"oob_checks\":false,\"threads\":2,\"first_call_ms\":null}", r.toJson());
    }
}
