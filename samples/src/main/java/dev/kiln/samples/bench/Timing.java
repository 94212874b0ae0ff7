package dev.kiln.samples.bench;

import java.util.Arrays;

/** Times a body: {@code warmup} unmeasured runs, then {@code runs} measured ones. */
public record Timing(int warmup, int runs) {

    public Timing {
        if (warmup < 0) throw new IllegalArgumentException("warm-up runs must be >= 0, got " + warmup);
        if (runs < 1) throw new IllegalArgumentException("measured runs must be >= 1, got " + runs);
    }

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
        for (int i = 0; i < warmup; i++) body.run();
        double[] ms = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            body.run();
            ms[i] = (System.nanoTime() - t0) / 1e6;
        }
        return Stats.of(ms);
    }
}
