package dev.kiln.samples.bench;

import dev.kiln.npu.kernels.ScalarTwin;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.function.LongSupplier;

/**
 * Times a body: unmeasured warm-up runs, at least {@code warmup} of them and for at least
 * {@code warmupMillis}, then {@code runs} measured ones. A run count alone does not reach
 * steady state: op-by-op (eager) code has many kernels for the JIT to compile, and three
 * runs left eager W2 at 14-21 ms where it settles at 8 ms after three to five seconds.
 *
 * <p>With a warm-up time, warming up then goes on while the JIT is still busy: until a
 * second passes in which {@code compileMillis} (the JVM's total compilation time) grew by
 * less than {@value #QUIET_COMPILE_MILLIS} ms, for at most {@value #MAX_WARMUP_MILLIS} ms
 * in all. A fresh JVM running the W4 block in a loop still compiles 100 to 1000 ms of code
 * per 50 calls until about 12 s, and on 2 cores that takes a core from the measured runs:
 * 14 to 16 ms with 5 s of warm-up, 12.3 ms with 15 s.
 */
public record Timing(int warmup, int runs, long warmupMillis, LongSupplier compileMillis, LongSupplier scalarPieces) {
    static final long QUIET_COMPILE_MILLIS = 20;
    static final long MAX_WARMUP_MILLIS = 30_000;
    private static final long QUIET_WINDOW_NANOS = 1_000_000_000L;

    public Timing {
        if (warmup < 0) throw new IllegalArgumentException("warm-up runs must be >= 0, got " + warmup);
        if (runs < 1) throw new IllegalArgumentException("measured runs must be >= 1, got " + runs);
        if (warmupMillis < 0) throw new IllegalArgumentException("warm-up time must be >= 0 ms, got " + warmupMillis);
        Objects.requireNonNull(compileMillis, "compileMillis");
        Objects.requireNonNull(scalarPieces, "scalarPieces");
    }

    /** Warm-up by run count and time, then until this JVM's JIT is quiet. */
    public Timing(int warmup, int runs, long warmupMillis) { this(warmup, runs, warmupMillis, jvmCompileMillis(), ScalarTwin::scalarPieces); }

    /** Warm-up by run count only. */
    public Timing(int warmup, int runs) { this(warmup, runs, 0); }

    /** This JVM's total compilation time in ms; a constant where the JVM does not report it (warm-up then waits one quiet second). */
    private static LongSupplier jvmCompileMillis() {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        if (jit == null || !jit.isCompilationTimeMonitoringSupported()) return () -> 0;
        return jit::getTotalCompilationTime;
    }

    /** Runs {@code round} for the warm-up the class describes. */
    private void warmUp(Runnable round) {
        long start = System.nanoTime();
        for (int i = 0; i < warmup || System.nanoTime() - start < warmupMillis * 1_000_000; i++) round.run();
        if (warmupMillis == 0) return;
        long windowStart = System.nanoTime(), compiledBefore = compileMillis.getAsLong();
        while (System.nanoTime() - start < MAX_WARMUP_MILLIS * 1_000_000) {
            round.run();
            if (System.nanoTime() - windowStart >= QUIET_WINDOW_NANOS) {
                long compiled = compileMillis.getAsLong();
                if (compiled - compiledBefore < QUIET_COMPILE_MILLIS) return;
                windowStart = System.nanoTime();
                compiledBefore = compiled;
            }
        }
    }

    /** Median, minimum and maximum of the measured runs, in milliseconds. */
    public record Stats(double medianMs, double minMs, double maxMs) {
        public static Stats of(double[] ms) {
            double[] s = ms.clone();
            Arrays.sort(s);
            return new Stats(medianOfSorted(s), s[0], s[s.length - 1]);
        }

        static double median(double[] values) {
            double[] s = values.clone();
            Arrays.sort(s);
            return medianOfSorted(s);
        }

        private static double medianOfSorted(double[] s) {
            int n = s.length;
            return n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
        }
    }

    /**
     * The measured runs of bodies timed side by side: {@code ms[k][i]} is body k's time in
     * round i; {@code jitMillis}, how long the JIT compiled during them, and {@code scalarPieces},
     * how many pieces kernels ran on their scalar twins ({@link ScalarTwin#scalarPieces}).
     */
    public record Rounds(double[][] ms, long jitMillis, long scalarPieces) {
        public Stats stats(int body) { return Stats.of(ms[body]); }

        /**
         * The median over rounds of body {@code slower}'s time divided by body {@code faster}'s
         * in the same round. A machine that slows down for a while slows both runs of a round,
         * which the ratio cancels; the ratio of the two medians takes them from different rounds.
         */
        public double pairedRatio(int slower, int faster) {
            double[] r = new double[ms[slower].length];
            for (int i = 0; i < r.length; i++) r[i] = ms[slower][i] / ms[faster][i];
            return Stats.median(r);
        }
    }

    /**
     * Times several bodies side by side: warm-up and measured runs take turns, one run of
     * each body per round, so that a change in the machine's load falls on all of them
     * alike. {@code runs} measured runs each, in the bodies' order.
     */
    public Rounds measureInterleaved(List<Runnable> bodies) {
        warmUp(() -> {
            for (Runnable b : bodies) b.run();
        });
        double[][] ms = new double[bodies.size()][runs];
        long compiledBefore = compileMillis.getAsLong(), scalarBefore = scalarPieces.getAsLong();
        for (int i = 0; i < runs; i++) {
            for (int k = 0; k < bodies.size(); k++) {
                long t0 = System.nanoTime();
                bodies.get(k).run();
                ms[k][i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        return new Rounds(ms, compileMillis.getAsLong() - compiledBefore, scalarPieces.getAsLong() - scalarBefore);
    }

    public Stats measure(Runnable body) {
        warmUp(body);
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            body.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        return Stats.of(ms);
    }
}
