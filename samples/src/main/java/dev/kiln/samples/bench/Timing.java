package dev.kiln.samples.bench;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

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
        public static Stats of(double[] ms) {
            double[] s = ms.clone();
            Arrays.sort(s);
            int n = s.length;
            double median = n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
            return new Stats(median, s[0], s[n - 1]);
        }
    }

    /**
     * Times several bodies side by side: warm-up and measured runs take turns, one run of
     * each body per round, so that a change in the machine's load falls on all of them
     * alike. {@code runs} measured runs each; the statistics in the bodies' order.
     */
    public List<Stats> measureInterleaved(List<Runnable> bodies) {
        long warmupEnd = System.nanoTime() + warmupMillis * 1_000_000;
        for (int i = 0; i < warmup || System.nanoTime() < warmupEnd; i++) for (Runnable b : bodies) b.run();
        double[][] ms = new double[bodies.size()][runs];
        for (int i = 0; i < runs; i++) {
            for (int k = 0; k < bodies.size(); k++) {
                long t0 = System.nanoTime();
                bodies.get(k).run();
                ms[k][i] = (System.nanoTime() - t0) / 1e6;
            }
        }
        List<Stats> out = new ArrayList<>();
        for (double[] m : ms) out.add(Stats.of(m));
        return out;
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
