package dev.kiln.npu.device;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * One core's on-chip SRAM: the device's SRAM size of native memory. Each worker thread
 * owns one (a core does not share its SRAM), made on first use.
 *
 * <p>Native, not a Java array, because the vector primitives are shared with the eager
 * kernels, which work on native DRAM: given one kind of segment only, C2 keeps their
 * loads and stores intrinsic; fed both heap and native segments, it falls back to scalar
 * code (about ten times slower, measured on the fused W1 kernel).
 */
public final class Sram {
    private static final ThreadLocal<Sram> LOCAL = new ThreadLocal<>();

    private final MemorySegment segment;
    private final int floats;

    private Sram(int floats) {
        this.floats = floats;
        this.segment = Arena.ofAuto().allocate((long) floats * Float.BYTES, 64);
    }

    /** The calling worker's SRAM for {@code device}. */
    public static Sram local(NpuDevice device) {
        Sram s = LOCAL.get();
        if (s == null || s.floats != device.sramFloats()) {
            s = new Sram(device.sramFloats());
            LOCAL.set(s);
        }
        return s;
    }

    public MemorySegment segment() { return segment; }

    /** Sets {@code n} floats from float index {@code at} to {@code value}. */
    public void fill(int at, int n, float value) {
        for (int i = 0; i < n; i++) segment.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, at + i, value);
    }
}
