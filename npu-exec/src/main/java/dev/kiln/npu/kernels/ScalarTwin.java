package dev.kiln.npu.kernels;

import dev.kiln.npu.Parallel;

import java.util.concurrent.atomic.LongAdder;
import java.util.function.BooleanSupplier;

/**
 * Chooses, piece by piece, between a kernel's Vector API code and its scalar twin: the same
 * float operations in the same order for every output element, so the results are
 * bit-identical whichever runs, and the choice may follow timings.
 *
 * <p>Why: in a fresh JVM the vector code runs in the interpreter and in C1, where every
 * Vector API operation is a call into boxed Java fallbacks, many times slower than a plain
 * scalar loop at the same tier; once C2 has compiled it, it is the faster by far. The W4
 * block's attention took 390 to 440 ms on its first call in a fresh JVM, a naive scalar
 * attention 44 ms.
 *
 * <p>So pieces run scalar while vector pieces measure slower. Vector pieces get a share of
 * the time ({@value #EXPLORATION} of the scalar pieces') so that the JIT sees them hot and
 * compiles them, one at a time and paced by the last vector piece's rate: one interpreted
 * piece can cost as much as dozens of scalar ones. When vector pieces
 * measure faster per unit of work than the scalar ones {@value #WINS_TO_SETTLE} times in a
 * row, the vector code runs for good and nothing is timed any more. It does too once the
 * JVM counts as warmed up ({@link Parallel#jitWarmedUp}): the share starves the vector code
 * of the runs C2 needs once the scalar code is compiled, and a slow early vector piece, timed
 * in the interpreter, held it back for thousands of pieces. In the W4 block, ten seconds in,
 * the rope tables' fused cos and sin launches still ran scalar at three times their vector
 * time. With the compilers idle, the vector code's few slow calls before C2 are soon over;
 * that holds for a kernel first used after the warm-up too, which starts on its vector code
 * (W1's chain compiled after 10 s of the W4 block: its second call 88 to 107 ms instead of 19
 * to 70, its later calls as before).
 * The system property {@code kiln.scalarTwins=false} settles every kernel on its vector code
 * from the start.
 *
 * <p>A kernel gains from a twin only when its vector code's warm-up is a large part of its
 * first calls and can wait: the GEMM micro-kernel was tried and gave nothing, since every
 * later product paid the same interpreted and C1 calls (up to 8 ms a tile against 0.2 ms
 * scalar) before C2 took it, and products are most of a model's work.
 */
public final class ScalarTwin {
    /** Vector pieces may take this share of the scalar pieces' time while they are slower. */
    static final double EXPLORATION = 0.25;
    /** Until a vector piece has been timed, it is expected to run this many times slower than scalar ones. */
    static final int FIRST_VECTOR_PIECE = 8;
    /** Consecutive faster vector pieces before the vector code runs for good (one may be lucky). */
    static final int WINS_TO_SETTLE = 3;
    private static final boolean ENABLED = !"false".equals(System.getProperty("kiln.scalarTwins"));

    /** Pieces that twins in this JVM chose to run scalar, by timings (forced ones not counted). */
    private static final LongAdder SCALAR_PIECES = new LongAdder();

    /** A variant every {@link ScalarTwin} runs regardless of timings, for tests; null normally. */
    private static volatile Boolean forcedScalar;

    private final BooleanSupplier jitWarmedUp;
    private final LongAdder scalarPieces;
    private volatile boolean settled;
    private long scalarNanos, vectorNanos;
    /** Nanoseconds per unit of work: of recent scalar pieces (smoothed) and of the last vector piece; NaN before the first. */
    private double scalarRate = Double.NaN, vectorRate = Double.NaN;
    private boolean vectorRunning;
    private int wins;

    /** A twin that chooses unless {@code kiln.scalarTwins=false}. */
    public ScalarTwin() {
        this(ENABLED, Parallel::jitWarmedUp);
    }

    ScalarTwin(boolean enabled, BooleanSupplier jitWarmedUp) {
        this(enabled, jitWarmedUp, SCALAR_PIECES);
    }

    /** A twin that counts the pieces it runs scalar in {@code scalarPieces} (tests give their own). */
    ScalarTwin(boolean enabled, BooleanSupplier jitWarmedUp, LongAdder scalarPieces) {
        this.settled = !enabled;
        this.jitWarmedUp = jitWarmedUp;
        this.scalarPieces = scalarPieces;
    }

    /**
     * Pieces that twins in this JVM have run scalar so far, by their timings. For benchmarks:
     * one that counts some during its measured runs was not timing the vector kernels alone.
     */
    public static long scalarPieces() { return SCALAR_PIECES.sum(); }

    /** True when the vector code runs for good (or is forced): no choice, no timing. */
    public boolean settled() {
        Boolean f = forcedScalar;
        return f != null ? !f : settled;
    }

    /**
     * Whether the next piece, of {@code work} units, runs scalar; unless forced or settled,
     * time it and {@link #record} it.
     */
    public boolean scalarNext(long work) {
        Boolean f = forcedScalar;
        if (f != null) return f;
        if (settled) return false;
        if (jitWarmedUp.getAsBoolean()) {
            settled = true;
            return false;
        }
        synchronized (this) {
            // A vector piece runs when the share has room for it at the last vector piece's rate (at
            // first, FIRST_VECTOR_PIECE times the scalar rate), one at a time: an interpreted vector
            // piece can take as long as dozens of scalar ones, and a first call should not pay for one.
            double rate = Double.isNaN(vectorRate) ? FIRST_VECTOR_PIECE * scalarRate : vectorRate;
            if (vectorRunning || Double.isNaN(scalarRate) || vectorNanos + rate * work > EXPLORATION * scalarNanos) {
                scalarPieces.increment();
                return true;
            }
            vectorRunning = true;
            return false;
        }
    }

    /** A piece of {@code work} units (comparable between the two variants) took {@code nanos}. */
    public void record(boolean scalar, long nanos, long work) {
        if (forcedScalar != null || settled || work <= 0) return;
        double rate = (double) nanos / work;
        synchronized (this) {
            if (scalar) {
                scalarNanos += nanos;
                scalarRate = Double.isNaN(scalarRate) ? rate : 0.75 * scalarRate + 0.25 * rate;
            } else {
                vectorNanos += nanos;
                vectorRate = rate;
                vectorRunning = false;
                wins = rate < scalarRate ? wins + 1 : 0;
                if (wins >= WINS_TO_SETTLE) settled = true;
            }
        }
    }

    /**
     * Runs {@code body} with every twin forced onto one variant (scalar when
     * {@code scalar}), for tests that compare the two; not for concurrent use.
     */
    public static void forcing(boolean scalar, Runnable body) {
        forcedScalar = scalar;
        try {
            body.run();
        } finally {
            forcedScalar = null;
        }
    }
}
