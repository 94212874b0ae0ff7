package dev.kiln.samples.bench;

import java.util.Arrays;

/**
 * Times a body: unmeasured warm-up runs, at least {@code warmup} of them and for at least
 * {@code warmupMillis}, then {@code runs} measured ones. A run count alone does not reach
 * steady state: op-by-op (eager) code has many kernels for the JIT to compile, and three
 * runs left eager W2 at 14-21 ms where it settles at 8 ms after three to five seconds.
 */
public record Timing(int warmup, int runs, long warmupMillis) {

    public Timing {
        if (warmup < 0) throw new IllegalArgumentException("warm-up runs must be >= 0, got " + warmup);
        if (runs < 1) throw new IllegalArgumentException("measured runs must be >= 1, got " + runs);
        if (warmupMillis < 0) throw new IllegalArgumentException("warm-up time must be >= 0 ms, got " + warmupMillis);
    }

    /** Warm-up by run count only. */
    public Timing(int warmup, int runs) { this(warmup, runs, 0); }

    /** Median, minimum and maximum of the measured runs, in milliseconds. */
    public record Stats(double medianMs, double minMs, double maxMs) {
        static Stats of(double[] ms) {
            double[] s = ms.clone();
            Arrays.sort(s);
            int n = s.length;
            double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
            return new Stats(median, s[0], s[n - 1]);
        }
    }

    public Stats measure(Runnable body) {
        long warmupEnd = System.nanoTime() + warmupMillis * 1_000_000;
        for (int i = 0; i < warmup || System.nanoTime() < warmupEnd; i++) body.run();
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            body.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        return Stats.of(ms);
    }
}
