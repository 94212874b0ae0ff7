package dev.kiln.npu.fused;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;

/**
 * One instruction of a {@link TileProgram}, over tile registers (each a tile of float32
 * in SRAM). {@link Broadcast} and {@link Constant} fill a register once per range of tiles; the
 * others run on every tile.
 */
public sealed interface TileInstr {
    /** DMA of input {@code input}'s current tile into {@code dst}. */
    record Load(int input, int dst) implements TileInstr {}

    /** The value of 0-d input {@code input}, in every lane of {@code dst}. */
    record Broadcast(int input, int dst) implements TileInstr {}

    /** {@code value} in every lane of {@code dst}. */
    record Constant(float value, int dst) implements TileInstr {}

    /** DMA of {@code src} to output {@code output}'s current tile. */
    record Store(int src, int output) implements TileInstr {}

    record Unary(UnaryFn fn, int src, int dst) implements TileInstr {}

    record Binary(BinaryFn fn, int a, int b, int dst) implements TileInstr {}

    /** min(max(src, min), max). */
    record Clamp(float min, float max, int src, int dst) implements TileInstr {}

    /** cond != 0 ? x : y. */
    record Where(int cond, int x, int y, int dst) implements TileInstr {}

    /** True for the instructions that fill a register once per range of tiles rather than per tile. */
    default boolean isSetup() { return this instanceof Broadcast || this instanceof Constant; }
}
