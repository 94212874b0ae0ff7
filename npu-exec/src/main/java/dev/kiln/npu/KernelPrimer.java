package dev.kiln.npu;

import dev.kiln.nn.F;
import dev.kiln.tensor.Tensor;

import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Warms the kernels' hot methods up on a background thread as soon as the backend loads.
 *
 * <p>Vector API code is fast only once C2 has compiled it: interpreted or C1-compiled, a
 * kernel runs one to two orders of magnitude slower, so a fresh JVM's first results are
 * dominated by JIT warm-up rather than by the work. While the application is still
 * starting (loading classes, reading or initialising weights, tracing), a daemon thread
 * runs a small transformer-block-shaped workload through the same kernels, so that their
 * methods reach C2 before the first real call needs them. The kernels compute the same
 * bits in every JIT tier (see {@code Lanes}), so priming never changes a result.
 *
 * <p>On by default; {@code -Dkiln.npu.prime=false} turns it off, and
 * {@code kiln.npu.primeMillis} bounds its time (default {@value #DEFAULT_BUDGET_MILLIS} ms).
 */
public final class KernelPrimer {
    static final long DEFAULT_BUDGET_MILLIS = 2000;
    /** Rounds past which the methods the workload reaches are compiled: more would only burn CPU. */
    static final int MAX_ROUNDS = 60;

    private static final AtomicBoolean STARTED = new AtomicBoolean();
    private static volatile Thread thread;

    private KernelPrimer() {}

    /** Starts priming once per JVM unless {@code kiln.npu.prime} is false. */
    public static void startInBackground() {
        if (!Boolean.parseBoolean(System.getProperty("kiln.npu.prime", "true")) || !STARTED.compareAndSet(false, true)) return;
        long budget = Long.getLong("kiln.npu.primeMillis", DEFAULT_BUDGET_MILLIS);
        Thread t = new Thread(() -> run(MAX_ROUNDS, budget), "kiln-kernel-primer");
        t.setDaemon(true);
        t.setPriority(Thread.MIN_PRIORITY);
        thread = t;
        t.start();
    }

    /** The background thread, once started; for tests and for callers that want to wait for it. */
    public static Thread thread() { return thread; }

    /**
     * Runs the priming workload {@code rounds} times or until {@code budgetMillis} have
     * passed; returns the rounds run. A failure stops priming quietly: it only ever costs
     * speed, and the same failure will surface, with its message, where the user calls.
     */
    public static int run(int rounds, long budgetMillis) {
        long deadline = System.nanoTime() + budgetMillis * 1_000_000;
        Workload w = new Workload();
        int done = 0;
        try {
            while (done < rounds && System.nanoTime() < deadline) {
                w.round();
                done++;
            }
        } catch (RuntimeException | LinkageError e) {
            System.getLogger("dev.kiln.npu").log(System.Logger.Level.DEBUG, "kernel priming stopped", e);
        }
        return done;
    }

    /**
     * A pre-norm decoder block in miniature (batch 1, 64 tokens, model 128, 4 query and 2
     * key/value heads of 32, hidden 256), plus the activations and normalisations blocks
     * of other models use. Sizes are large enough to take the kernels' vectorised,
     * blocked and parallel paths, small enough for a round to take milliseconds.
     */
    private static final class Workload {
        private static final int SEQ = 64, MODEL = 128, HEADS = 4, KV_HEADS = 2, HEAD = 32, HIDDEN = 256;

        final Tensor x = Tensor.randn(1, 1, SEQ, MODEL);
        final Tensor norm = Tensor.ones(MODEL);
        final Tensor wq = Tensor.randn(2, MODEL, MODEL).mul(0.05), wk = Tensor.randn(3, KV_HEADS * HEAD, MODEL).mul(0.05),
                wv = Tensor.randn(4, KV_HEADS * HEAD, MODEL).mul(0.05), wo = Tensor.randn(5, MODEL, MODEL).mul(0.05);
        final Tensor gate = Tensor.randn(6, HIDDEN, MODEL).mul(0.05), up = Tensor.randn(7, HIDDEN, MODEL).mul(0.05),
                down = Tensor.randn(8, MODEL, HIDDEN).mul(0.05);
        final Tensor positions = Tensor.arange(SEQ);

        void round() {
            Tensor[] rope = F.rotaryTables(positions, HEAD, 10_000);
            Tensor h = F.rmsNorm(x, new int[] {MODEL}, norm, 1e-5);
            Tensor q = F.rotaryEmbedding(heads(F.linear(h, wq, null), HEADS), rope[0], rope[1], false);
            Tensor k = F.rotaryEmbedding(heads(F.linear(h, wk, null), KV_HEADS), rope[0], rope[1], false);
            Tensor v = heads(F.linear(h, wv, null), KV_HEADS);
            Tensor a = F.scaledDotProductAttention(q, k, v, null, true, null, true);
            Tensor r = x.add(F.linear(a.transpose(1, 2).reshape(1, SEQ, MODEL), wo, null));
            Tensor m = F.rmsNorm(r, new int[] {MODEL}, norm, 1e-5);
            Tensor y = r.add(F.linear(F.silu(F.linear(m, gate, null)).mul(F.linear(m, up, null)), down, null));
            Tensor g = F.layerNorm(y, new int[] {MODEL}, norm, null, 1e-5).gelu();
            g.softmax(-1).add(g.sigmoid()).mul(g.tanh()).sub(g.erf()).exp().sum(-1).max();
        }

        private static Tensor heads(Tensor t, int n) {
            return t.reshape(1, SEQ, n, HEAD).transpose(1, 2);
        }
    }
}
