package dev.kiln.ops;

import java.util.Comparator;
import java.util.List;
import java.util.ServiceLoader;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Warms Kiln up on a background thread as soon as the first tensor op runs, when asked to
 * with {@code -Dkiln.warmup=true}.
 *
 * <p>In a fresh JVM, Kiln's first results are dominated by the JVM's own start-up work:
 * loading and linking Byte Buddy, the tracer and the compiler, and above all compiling the
 * Vector API kernels, which run one to two orders of magnitude slower until C2 has
 * compiled them. A daemon thread runs every {@link Warmup} on the class path, in their
 * order, so that this work overlaps with whatever the application does before its first
 * forward pass. Kernels compute the same bits in every JIT tier, so warming up never
 * changes a result.
 *
 * <p>Off by default, because it only pays when the application leaves the cores idle for
 * seconds before its first forward pass (loading weights from disk: the first forward of
 * the W4 block took 192 ms instead of 1415 ms after a 4 s pause). When the first forward
 * follows within a few hundred milliseconds, the warm-up's thread and the compilations it
 * queues compete with the application's on a small machine: on the W4 demo (2 cores),
 * eager's first result came about 300 ms later with it, and compiled first results were
 * no earlier. {@code kiln.warmup.millis} bounds its time (default
 * {@value #DEFAULT_BUDGET_MILLIS} ms).
 */
public final class BackgroundWarmup {
    static final long DEFAULT_BUDGET_MILLIS = 3000;

    private static final AtomicBoolean STARTED = new AtomicBoolean();
    private static volatile Thread thread;

    private BackgroundWarmup() {}

    /** Starts the warm-up once per JVM when {@code kiln.warmup} is true. */
    public static void start() {
        if (!Boolean.getBoolean("kiln.warmup") || !STARTED.compareAndSet(false, true)) return;
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
