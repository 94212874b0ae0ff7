package dev.kiln.npu;

import java.util.concurrent.ForkJoinPool;

/**
 * The virtual NPU's worker cores (default: every CPU core). Kernels split large work into
 * ranges, several per core, which the calling thread and a {@link Team} of workers (or a
 * pool, when the team is busy) take in turn; small work runs on the calling thread, where
 * forking costs more than it saves.
 */
public final class Parallel {
    /** Below this many units of work (elements, or flops/16 for matmul), stay on one thread. */
    public static final long SERIAL_THRESHOLD = 1 << 15;
    /**
     * Large work is cut into up to this many chunks per worker, each of cost at least
     * {@link #MIN_CHUNK_COST}. A thread slowed by whatever else shares its core then takes
     * fewer of them, where with one chunk per worker the others waited for its one: W1's
     * compiled kernel on 2 cores waited 0.3 to 0.8 ms per 3 ms call for the slower half; cut
     * 8 per worker, 40 to 120 us.
     */
    static final int CHUNKS_PER_WORKER = 8;
    static final long MIN_CHUNK_COST = 4 * SERIAL_THRESHOLD;

    private static final int WORKERS = Integer.getInteger("kiln.npu.workers", Runtime.getRuntime().availableProcessors());
    private static final ForkJoinPool POOL = new ForkJoinPool(WORKERS);
    /** The JIT's load; null where the JVM reports no compilation time. */
    private static final CompilerLoad JIT = CompilerLoad.ofThisJvm();
    /** Null when chunks always go to the workers ({@code kiln.npu.yieldToCompiler=false}, or no compilation time reported). */
    private static final CompilerLoad COMPILER = "false".equals(System.getProperty("kiln.npu.yieldToCompiler")) ? null : JIT;
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
     * Runs {@code body} over [0, n), split into contiguous chunks ({@link #chunks}) when
     * {@code cost} (a rough count of elementary operations) is large.
     *
     * <p>While the JIT's compiler threads take a large share of the machine (a fresh JVM, see
     * {@link CompilerLoad}), the chunks run one after another on the calling thread, leaving
     * the other cores to the compilers: a kernel still waiting for C2 gains more from that
     * than from a second worker (the W4 block's first forward on 2 cores: 1030 to 1062 ms on
     * one worker, 1087 to 1286 ms on two). The chunks are the same either way, so are the results.
     */
    public static void forRange(long n, long cost, RangeBody body) {
        if (n <= 0) return;
        int chunks = chunks(n, cost);
        if (chunks == 1 || inWorker()) {
            body.run(0, n);
            return;
        }
        if (inOrder()) {
            runInOrder(n, chunks, body);
            return;
        }
        runOnWorkers(n, chunks, body);
    }

    /** How many chunks {@link #forRange} cuts {@code n} units of total cost {@code cost} into. */
    static int chunks(long n, long cost) {
        if (WORKERS == 1 || cost < SERIAL_THRESHOLD) return 1;
        return (int) Math.min(n, Math.clamp(cost / MIN_CHUNK_COST, WORKERS, (long) WORKERS * CHUNKS_PER_WORKER));
    }

    /**
     * The chunks of [0, n) on the calling thread and the workers; returns (or throws a
     * chunk's failure) once every chunk has ended. The {@link Team} takes the launch unless
     * another holds it; then the caller and the pool take the chunks in turn. The caller
     * works too: handing all of them to the pool made it wait for a worker to wake and then
     * for it to wake another (two 100 us chunks took 270 to 300 us when the workers had
     * parked between a block's kernels, 170 to 180 us with the caller working).
     *
     * <p>The team's path stays in {@link Team#tryRun}, apart from the pool's. With both paths
     * merged into one call of {@link ChunkJob#work} here (the same steps in the same order),
     * the caller's chunks of a matmul ran 1.7 times slower than the worker's, on the CPU, in
     * about two JVMs of three from start to end: W2 compiled 12.9 ms instead of 7.3. Why was
     * not found (see docs/PERFORMANCE.md, W2); this shape never showed it in 12 JVMs.
     */
    static void runOnWorkers(long n, int chunks, RangeBody body) {
        if (TEAM != null && TEAM.tryRun(n, chunks, body)) return;
        ChunkJob job = new ChunkJob(n, chunks, body, Thread.currentThread());
        for (int i = Math.min(chunks, WORKERS) - 1; i > 0; i--) POOL.execute(job::work);
        job.work();
        job.awaitDone(Team.SPIN_NANOS);
        job.rethrow();
    }

    /** The chunks the workers would take, one after another on this thread. */
    static void runInOrder(long n, int chunks, RangeBody body) {
        for (int c = 0; c < chunks; c++) body.run(n * c / chunks, n * (c + 1) / chunks);
    }

    /**
     * Whether a launch made now runs its chunks one after another on the calling thread: the
     * JIT's compilers take a large share of the machine (see {@link #forRange}).
     */
    public static boolean inOrder() { return COMPILER != null && COMPILER.busy(); }

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

    /**
     * Whether the JVM counts as warmed up for good: its compilers have been quiet for a while
     * in all (see {@link CompilerLoad}). False where the JVM reports no compilation time.
     */
    public static boolean jitWarmedUp() {
        if (JIT == null) return false;
        JIT.busy();
        return JIT.settled();
    }
}
