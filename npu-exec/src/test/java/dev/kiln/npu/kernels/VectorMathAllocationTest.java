package dev.kiln.npu.kernels;

import dev.kiln.ops.UnaryFn;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Once compiled, the vector loops keep every vector in registers: a loop that boxed its
 * vectors (a VectorMath call C2 did not inline) allocates on the heap for each one. Each
 * check warms the loop until C2 has compiled it, then requires calls that allocate nothing
 * on the calling thread.
 */
class VectorMathAllocationTest {
    private static final VectorSpecies<Float> S = VectorMath.SPECIES;
    private static final ByteOrder NATIVE = ByteOrder.nativeOrder();
    private static final int BLOCK = 2048;
    /** The fused block size a pipeline of stages would use: small enough for L1. */
    private static final int FUSED_BLOCK = 512;
    private static final UnaryFn[] TRANSCENDENTAL = {UnaryFn.EXP, UnaryFn.LOG, UnaryFn.TANH, UnaryFn.SIGMOID, UnaryFn.SILU,
            UnaryFn.SOFTPLUS, UnaryFn.ERF, UnaryFn.GELU, UnaryFn.GELU_TANH};
    /** How long C2 may take to compile a loop on a loaded machine before the check gives up. */
    private static final long PATIENCE_NANOS = 8_000_000_000L;

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    @BeforeAll
    static void needsAllocationCountingAndC2() {
        assumeTrue(THREADS.isThreadAllocatedMemorySupported() && THREADS.isThreadAllocatedMemoryEnabled(),
                "this JVM does not count allocation per thread");
        var compiler = ManagementFactory.getCompilationMXBean();
        assumeTrue(compiler != null && compiler.getName().contains("Tiered"), "needs HotSpot's C2");
    }

    /**
     * Every unary kernel, warmed together (as a model uses them) so they share one dispatcher;
     * the vector loops, not their scalar twins (which copy each run to the heap while the JIT
     * warms the loops up).
     */
    @Test
    void unaryKernelsAllocateNothing() {
        ScalarTwin.forcing(false, this::unaryVectorLoopsAllocateNothing);
    }

    private void unaryVectorLoopsAllocateNothing() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = randomFloats(arena, BLOCK, 1), out = arena.allocate((long) BLOCK * Float.BYTES, 64);
            List<String> boxing = new ArrayList<>();
            for (UnaryFn fn : TRANSCENDENTAL) {
                long bytes = bytesPerCallOnceCompiled(() -> {
                    for (UnaryFn each : TRANSCENDENTAL) FloatKernels.unary(each, in, 0, out, 0, BLOCK);
                }, () -> FloatKernels.unary(fn, in, 0, out, 0, BLOCK));
                if (bytes != 0) boxing.add(fn + " allocates " + bytes + " bytes per call");
            }
            assertTrue(boxing.isEmpty(), String.join("; ", boxing));
        }
    }

    /** The W1 chain gelu(x*a + b) * sigmoid(x) + x as one loop over an L1-sized block. */
    @Test
    void fusedGeluSigmoidLoopAllocatesNothing() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment in = randomFloats(arena, FUSED_BLOCK, 2), out = arena.allocate((long) FUSED_BLOCK * Float.BYTES, 64);
            Runnable fused = () -> w1(in, out, 1.7f, -0.3f);
            assertEquals(0, bytesPerCallOnceCompiled(fused, fused), "bytes allocated per fused call");
            // And it computes the chain, against double-precision references.
            for (int i = 0; i < FUSED_BLOCK; i++) {
                float x = in.getAtIndex(Staging.F32, i), y = out.getAtIndex(Staging.F32, i);
                double g = VectorMathTest.geluRef(Math.fma(x, 1.7f, -0.3f)), s = VectorMathTest.sigmoidRef(x);
                double expected = g * s + x;
                assertTrue(Math.abs(y - expected) <= 1e-6 * (Math.abs(g * s) + Math.abs(x)),
                        "element " + i + ": " + y + ", expected " + expected);
            }
        }
    }

    private static void w1(MemorySegment in, MemorySegment out, float a, float b) {
        FloatVector va = FloatVector.broadcast(S, a), vb = FloatVector.broadcast(S, b);
        for (int i = 0; i < FUSED_BLOCK; i += S.length()) {
            long at = (long) i * Float.BYTES;
            FloatVector x = FloatVector.fromMemorySegment(S, in, at, NATIVE);
            FloatVector s = VectorMath.sigmoid(x);
            VectorMath.gelu(x.fma(va, vb)).fma(s, x).intoMemorySegment(out, at, NATIVE);
        }
    }

    /**
     * Runs {@code warm} until {@code measured} has allocated nothing over a batch of calls,
     * or the patience runs out; returns the bytes per call of the last batch.
     */
    private static long bytesPerCallOnceCompiled(Runnable warm, Runnable measured) {
        long deadline = System.nanoTime() + PATIENCE_NANOS;
        long perCall;
        do {
            for (int i = 0; i < 2000; i++) warm.run();
            long before = THREADS.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 200; i++) measured.run();
            perCall = (THREADS.getCurrentThreadAllocatedBytes() - before) / 200;
        } while (perCall != 0 && System.nanoTime() < deadline);
        return perCall;
    }

    private static MemorySegment randomFloats(Arena arena, int n, long seed) {
        MemorySegment s = arena.allocate((long) n * Float.BYTES, 64);
        Random r = new Random(seed);
        for (int i = 0; i < n; i++) s.setAtIndex(Staging.F32, i, (float) (r.nextGaussian() * 4));
        return s;
    }
}
