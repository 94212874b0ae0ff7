package dev.kiln.npu.device;

import java.lang.foreign.MemorySegment;

/**
 * One core's on-chip SRAM: a float array of the device's SRAM size, viewed as a memory
 * segment for the vector primitives. Each worker thread owns one (a core does not share
 * its SRAM), made on first use.
 */
public final class Sram {
    private static final ThreadLocal<Sram> LOCAL = new ThreadLocal<>();

    private final float[] data;
    private final MemorySegment segment;

    private Sram(int floats) {
        this.data = new float[floats];
        this.segment = MemorySegment.ofArray(data);
    }

    /** The calling worker's SRAM for {@code device}. */
    public static Sram local(NpuDevice device) {
        Sram s = LOCAL.get();
        if (s == null || s.data.length != device.sramFloats()) {
            s = new Sram(device.sramFloats());
            LOCAL.set(s);
        }
        return s;
    }

    public float[] data() { return data; }

    public MemorySegment segment() { return segment; }
}
