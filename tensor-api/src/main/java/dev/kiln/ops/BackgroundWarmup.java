package dev.kiln.ops;

import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Warms Kiln up on a background thread as soon as the first tensor op runs.
 *
 * <p>In a fresh JVM, Kiln's first results are dominated by the JVM's own start-up work:
 * loading and linking Byte Buddy, the tracer and the compiler, and above all compiling the
 * Vector API kernels, which run one to two orders of magnitude slower until C2 has
 * compiled them. While the application is still starting (loading classes, initialising
 * weights), a daemon thread runs every {@link Warmup} on the class path, in their order,
 * so that this work overlaps with the application's instead of following it. Kernels
 * compute the same bits in every JIT tier, so warming up never changes a result.
 *
 * <p>On by default; {@code -Dkiln.warmup=false} turns it off, and
 * {@code kiln.warmup.millis} bounds its time (default {@value #DEFAULT_BUDGET_MILLIS} ms).
 */
public final class BackgroundWarmup {
    static final long DEFAULT_BUDGET_MILLIS = 3000;

    private static final AtomicBoolean STARTED = new AtomicBoolean();
    private static volatile Thread thread;

    private BackgroundWarmup() {}

    /** Starts the warm-up once per JVM unless {@code kiln.warmup} is false. */
    public static void start() {
        if (!Boolean.parseBoolean(System.getProperty("kiln.warmup", "true")) || !STARTED.compareAndSet(false, true)) return;
        long budget = Long.getLong("kiln.warmup.millis", DEFAULT_BUDGET_MILLIS);
        Thread t = new Thread(() -> run(load(), budget), "kiln-warmup");
        t.setDaemon(true);
        t.setPriority(Thread.MIN_PRIORITY);
        thread = t;
        t.start();
    }

    /** The warm-up thread once started, else null; callers may join it. */
    public static Thread thread() { return thread; }

    /** The warm-ups on the class path, in their order. */
    public static List<Warmup> load() {
        return ServiceLoader.load(Warmup.class, BackgroundWarmup.class.getClassLoader()).stream().map(ServiceLoader.Provider::get)
                .sorted(Comparator.comparingInt(Warmup::order)).toList();
    }

    /**
     * Runs each warm-up's rounds in order until {@code budgetMillis} have passed; returns the
     * rounds run. A failure ends that warm-up quietly: warming up only ever costs time, and
     * the same failure surfaces, with its message, where the application calls.
     */
    public static int run(List<Warmup> warmups, long budgetMillis) {
        long deadline = System.nanoTime() + budgetMillis * 1_000_000;
        int done = 0;
        for (Warmup w : warmups) {
            try {
                for (int r = 0; r < w.rounds() && System.nanoTime() < deadline; r++) {
                    w.round();
                    done++;
                }
            } catch (RuntimeException | LinkageError e) {
                System.getLogger("dev.kiln").log(System.Logger.Level.DEBUG, "warm-up " + w.getClass().getName() + " stopped", e);
            }
        }
        return done;
    }
}
