package dev.kiln.npu.kernels;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;

import java.lang.foreign.MemorySegment;

/**
 * The vector primitives a fused tile program runs on tiles held in SRAM: the same loops
 * the eager kernels use ({@link FloatKernels}), so a fused chain gives bit for bit the
 * result of running its ops one by one, and the few hot methods are shared (warmed up)
 * by every kernel. Offsets are in bytes; {@code n} must be a multiple of the vector
 * length (tiles are padded), and a destination may coincide with a source.
 */
public final class TileKernels {
    /** Tiles are cut in multiples of this many floats where they can be: a piece that stays in L1. */
    public static final int QUANTUM = 512;
    /** Elements per vector of the preferred species. */
    public static final int LANES = VectorMath.SPECIES.length();

    private TileKernels() {}

    public static void unary(UnaryFn fn, MemorySegment s, long src, long dst, int n) {
        FloatKernels.unary(fn, s, src, s, dst, n);
    }

    public static void binary(BinaryFn fn, MemorySegment s, long a, long b, long dst, int n) {
        FloatKernels.binary(fn, s, a, s, b, s, dst, n);
    }

    public static void clamp(float min, float max, MemorySegment s, long src, long dst, int n) {
        FloatKernels.clamp(min, max, s, src, s, dst, n);
    }

    /** cond != 0 ? x : y. */
    public static void where(MemorySegment s, long cond, long x, long y, long dst, int n) {
        FloatKernels.where(s, cond, s, x, s, y, s, dst, n);
    }
}
