package dev.kiln.npu.codegen;

import java.lang.foreign.MemorySegment;

/**
 * A tile program compiled by {@link TileLoopCompiler}: one pass over a tile in SRAM that
 * runs the whole instruction list per vector, values in registers. Slot {@code j} (a tile
 * input, an output, or a value carried between stages; see {@link TileLoopCompiler.Compiled})
 * starts at byte {@code j * slotBytes} of {@code sram}.
 */
public interface TileLoop {
    /**
     * Computes the first {@code n} elements of every output slot from the input slots;
     * {@code n} is a multiple of the vector length, {@code scalars[k]} the value of 0-d input k.
     */
    void run(MemorySegment sram, float[] scalars, long slotBytes, int n);
}
