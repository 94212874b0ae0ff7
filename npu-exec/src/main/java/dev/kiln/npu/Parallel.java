package dev.kiln.npu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.RecursiveAction;

/**
 * The virtual NPU's worker cores. Kernels split large work into ranges, one per core
 * (default: every CPU core), and run them on the calling thread and a {@link Team} of
 * workers, or a pool when the team is busy; small work runs on the calling thread, where
 * forking costs more than it saves.
 */
public final class Parallel {
    /** Below this many units of work (elements, or flops/16 for matmul), stay on one thread. */
    public static final long SERIAL_THRESHOLD = 1 << 15;

    private static final int WORKERS = Integer.getInteger("kiln.npu.workers", Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = new ForkJoinPool(WORKERS);
    /** Null when chunks always go to the workers ({@code kiln.npu.yieldToCompiler=false}, or no compilation time reported). */
    private static final CompilerLoad COMPILER = "false".equals(System.getProperty("kiln.npu.yieldToCompiler")) ? null : CompilerLoad.ofThisJvm();
    /** The caller and these workers run a launch; the pool serves launches that find them busy. */
    private static final Team TEAM = WORKERS > 1 ? new Team(WORKERS - 1, Parallel::warmedUp) : null;

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
     *
     * <p>While the JIT's compiler threads take a large share of the machine (a fresh JVM, see
     * {@link CompilerLoad}), the chunks run one after another on the calling thread, leaving
     * the other cores to the compilers: a kernel still waiting for C2 gains more from that
     * than from a second worker (the W4 block's first forward on 2 cores: 1030 to 1062 ms on
     * one worker, 1087 to 1286 ms on two). The chunks are the same either way, so are the results.
     */
    public static void forRange(long n, long cost, RangeBody body) {
        if (n <= 0) return;
        int chunks = (int) Math.min(n, cost < SERIAL_THRESHOLD || WORKERS == 1 ? 1 : WORKERS);
        if (chunks == 1 || inWorker()) {
            body.run(0, n);
            return;
        }
        if (COMPILER != null && COMPILER.busy()) {
            runInOrder(n, chunks, body);
            return;
        }
        runOnWorkers(n, chunks, body);
    }

    /**
     * The chunks of [0, n) on the calling thread and the workers; returns (or throws a
     * chunk's failure) once every chunk has ended. The {@link Team} takes the launch unless
     * another holds it; then the caller runs the first chunk and the pool the others. Handing
     * all of them to the pool made the caller wait for a worker to wake and then for it to wake
     * another: two 100 us chunks took 270 to 300 us when the workers had parked between a
     * block's kernels, 170 to 180 us with the caller taking the first.
     */
    static void runOnWorkers(long n, int chunks, RangeBody body) {
        if (TEAM != null && TEAM.tryRun(n, chunks, body)) return;
        ForkJoinTask<Void> rest = POOL.submit(new Chunks(n, chunks, body, 1, chunks));
        try {
            body.run(0, n / chunks);
        } finally {
            try {
                rest.join();
            } catch (RuntimeException e) {
                throw thrownInTheChunk(e);
            }
        }
    }

    /**
     * The exception a chunk threw on a worker: joining re-creates it on the caller's thread,
     * with the original as its cause and the original's {@code toString} as its message, which
     * would put "java.lang.IllegalStateException: " before a kernel's own message.
     */
    private static RuntimeException thrownInTheChunk(RuntimeException joined) {
        RuntimeException e = joined;
        // Once per thread it crossed: a chunk two splits away is re-created twice.
        while (e.getCause() instanceof RuntimeException original && original.getClass() == e.getClass()
                && String.valueOf(original).equals(e.getMessage())) {
            e = original;
        }
        return e;
    }

    /** The chunks {@link Chunks} would run, one after another on this thread. */
    static void runInOrder(long n, int chunks, RangeBody body) {
        for (int c = 0; c < chunks; c++) body.run(n * c / chunks, n * (c + 1) / chunks);
    }

    /** Same as {@link #forRange} with the cost equal to n. */
    public static void forRange(long n, RangeBody body) { forRange(n, n, body); }

    private static boolean inWorker() {
        Thread t = Thread.currentThread();
        return t instanceof java.util.concurrent.ForkJoinWorkerThread w && w.getPool() == POOL || TEAM != null && TEAM.isWorker(t);
    }

    /** Whether the JIT no longer needs the cores: workers may then spin between launches. */
    private static boolean warmedUp() {
        return COMPILER == null || COMPILER.settled();
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
