package dev.kiln.npu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.RecursiveAction;

/**
 * The virtual NPU's worker cores. Kernels split large work into ranges and run
 * them on a dedicated pool sized to the device (default: every CPU core); small
 * work runs on the calling thread, where forking costs more than it saves.
 */
public final class Parallel {
    /** Below this many units of work (elements, or flops/16 for matmul), stay on one thread. */
    public static final long SERIAL_THRESHOLD = 1 << 15;

    private static final int WORKERS = Integer.getInteger("kiln.npu.workers", Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = new ForkJoinPool(WORKERS);

    private Parallel() {}

    public static int workers() { return WORKERS; }

    /** A body over the half-open range [from, to). */
    @FunctionalInterface
    public interface RangeBody {
        void run(long from, long to);
    }

    /**
     * Runs {@code body} over [0, n), split into at most {@code workers()} contiguous
     * chunks when {@code cost} (a rough count of elementary operations) is large.
     */
    public static void forRange(long n, long cost, RangeBody body) {
        if (n <= 0) return;
        int chunks = (int) Math.min(n, cost < SERIAL_THRESHOLD || WORKERS == 1 ? 1 : WORKERS);
        if (chunks == 1 || inWorker()) {
            body.run(0, n);
            return;
        }
        POOL.invoke(new Chunks(n, chunks, body, 0, chunks));
    }

    /** Same as {@link #forRange} with the cost equal to n. */
    public static void forRange(long n, RangeBody body) { forRange(n, n, body); }

    private static boolean inWorker() {
        return Thread.currentThread() instanceof java.util.concurrent.ForkJoinWorkerThread w && w.getPool() == POOL;
    }

    private static final class Chunks extends RecursiveAction {
        private final long n;
        private final int chunks, lo, hi;
        private final RangeBody body;

        Chunks(long n, int chunks, RangeBody body, int lo, int hi) {
            this.n = n;
            this.chunks = chunks;
            this.body = body;
            this.lo = lo;
            this.hi = hi;
        }

        @Override
        protected void compute() {
            if (hi - lo == 1) {
                body.run(n * lo / chunks, n * (lo + 1) / chunks);
                return;
            }
            int mid = (lo + hi) >>> 1;
            invokeAll(new Chunks(n, chunks, body, lo, mid), new Chunks(n, chunks, body, mid, hi));
        }
    }
}
