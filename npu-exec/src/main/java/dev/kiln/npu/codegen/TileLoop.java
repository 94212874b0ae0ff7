package dev.kiln.npu.codegen;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A tile program compiled by {@link TileLoopCompiler}: one pass over a tile that runs the
 * whole instruction list per vector, values in registers. Slot {@code j} (a tile input, an
 * output, or a value carried between stages; see {@link TileLoopCompiler.Compiled}) starts
 * at byte {@code offsets[j]} of {@code slots[j]}: one SRAM segment for a fused kernel, or a
 * matmul's result and operands in place for an epilogue.
 */
public interface TileLoop {
    /**
     * Computes the first {@code n} elements of every output slot from the input slots;
     * {@code n} is a multiple of the vector length, {@code scalars[k]} the value of 0-d input k.
     * An output slot may be the memory of an input slot: in a single-stage loop each vector of
     * the inputs is read before the same vector of the output is written.
     */
    void run(MemorySegment[] slots, long[] offsets, float[] scalars, int n);

    /** The segments of {@code count} slots that all lie in {@code sram} (see {@link #spaced} for their offsets). */
    static MemorySegment[] sameSegment(MemorySegment sram, int count) {
        MemorySegment[] s = new MemorySegment[count];
        Arrays.fill(s, sram);
        return s;
    }

    /** The offsets of {@code count} slots one every {@code slotBytes}. */
    static long[] spaced(long slotBytes, int count) {
        long[] o = new long[count];
        for (int j = 0; j < count; j++) o[j] = j * slotBytes;
        return o;
    }
}
