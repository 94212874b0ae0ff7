package dev.kiln.npu;

import java.lang.management.CompilationMXBean;
import java.lang.management.ManagementFactory;
import java.util.function.LongSupplier;

/**
 * Whether the JIT's compiler threads are taking a large share of the machine: the JVM's
 * total compilation time, sampled at most every {@value #WINDOW_MILLIS} ms, grew by more
 * than a tenth of the cores' time over the last window. That is so in a fresh JVM while
 * the kernels wait for C2. After {@value #SETTLE_MILLIS} ms of quiet windows in all, the JVM
 * counts as warmed up for good. Past the first calls the JIT still compiles less frequent code
 * for seconds (the W4 block: 100 to 1000 ms of compiling per 50 calls until 10 s), and each
 * compile is credited whole when it ends, so windows kept looking busy now and then: half of
 * W4's steady-state launches ran on one thread, and a fifth of W1's kernel time. The first
 * forward of a fresh JVM has hardly a quiet window.
 */
final class CompilerLoad {
    static final long WINDOW_MILLIS = 20;
    /** The share of the machine's cores the compiler threads must take to count as busy. */
    static final double BUSY_SHARE = 0.1;
    /** Quiet time, in all, after which the compilers no longer count. */
    static final long SETTLE_MILLIS = 500;
    /**
     * The most quiet time one window adds. A longer window means no launch sampled it: an
     * application idle after its first kernels (reading weights, say) has not shown the JIT
     * done with them, and settling then would also settle every scalar twin before its first
     * real calls.
     */
    static final long MAX_QUIET_PER_WINDOW_MILLIS = 2 * WINDOW_MILLIS;

    private final LongSupplier compileMillis, nanoClock;
    private final int cores;
    private volatile long sampledAt;
    private long sampledMillis;
    /** Until a window has been measured: assumed busy, as in a fresh JVM. */
    private volatile boolean busy = true;
    private volatile boolean settled;
    private long quietNanos;

    CompilerLoad(LongSupplier compileMillis, LongSupplier nanoClock, int cores) {
        this.compileMillis = compileMillis;
        this.nanoClock = nanoClock;
        this.cores = cores;
        this.sampledAt = nanoClock.getAsLong();
        this.sampledMillis = compileMillis.getAsLong();
    }

    /** This JVM's compiler threads; never busy where the JVM does not report compilation time. */
    static CompilerLoad ofThisJvm() {
        CompilationMXBean jit = ManagementFactory.getCompilationMXBean();
        if (jit == null || !jit.isCompilationTimeMonitoringSupported()) return null;
        return new CompilerLoad(jit::getTotalCompilationTime, System::nanoTime, Runtime.getRuntime().availableProcessors());
    }

    /** True once the JVM counts as warmed up for good. */
    boolean settled() { return settled; }

    boolean busy() {
        if (settled) return false;
        long now = nanoClock.getAsLong();
        if (now - sampledAt >= WINDOW_MILLIS * 1_000_000) resample(now);
        return busy;
    }

    private synchronized void resample(long now) {
        long window = now - sampledAt;
        if (window < WINDOW_MILLIS * 1_000_000) return;
        long millis = compileMillis.getAsLong();
        busy = (millis - sampledMillis) * 1e6 > BUSY_SHARE * cores * window;
        if (!busy) quietNanos += Math.min(window, MAX_QUIET_PER_WINDOW_MILLIS * 1_000_000);
        if (quietNanos >= SETTLE_MILLIS * 1_000_000) settled = true;
        sampledMillis = millis;
        sampledAt = now;
    }
}
