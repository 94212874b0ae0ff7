package dev.kiln.npu.kernels;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Scratch for kernels that the Vector API reads and writes by segment: native memory, never
 * a heap array's segment.
 *
 * <p>Why: C2 compiles a vector load or store from a segment by inlining JDK code whose calls
 * on the segment ({@code unsafeGetBase}, {@code sessionImpl}, ...) are dispatched by one type
 * profile shared by every load (and one by every store) in the JVM. While only native
 * segments have been seen, the calls fold away and the liveness checks leave the loop; once
 * a heap segment has passed through, every kernel compiled afterwards pays for both cases on
 * each access. Measured on one thread (28 November 2026): a triad over 4M floats 1.76 → 5.5
 * ms, dot products of 8192 rows of 512 floats 0.57 → 1.9 ms; W5's decode GEMVs 4 → 9.5 ms a
 * token after a single prefill had read a heap tile. Kernels therefore keep float arrays for
 * {@code fromArray}/{@code intoArray} and native memory, from here, for segment access.
 * The JDK itself stores vectors into a heap segment when it runs a reinterpreting cast
 * ({@code reinterpretAsInts}, which {@link VectorMath} uses) before C2 has compiled it, so
 * the stores' profile sees heap memory in practice: {@link #typed} lets a loop store at
 * native speed anyway. The generated fused-stage loops use it; the eager kernels' loops do
 * not yet.
 */
public final class VectorMemory {
    /** The JDK's class of native segments (not exported): a constant, so a cast to it types a segment for C2. */
    private static final Class<? extends MemorySegment> NATIVE = MemorySegment.ofAddress(0).getClass().asSubclass(MemorySegment.class);

    private VectorMemory() {}

    /**
     * {@code segment}, which must be native memory, typed as such for the JIT: vector loads and
     * stores on the result compile as native accesses whatever the shared profiles have seen
     * (the JDK's own heap stores included). Its effect reaches only loops in the same compiled
     * method, so a kernel calls it where its loop is. Throws {@link ClassCastException} for a
     * heap segment.
     */
    public static MemorySegment typed(MemorySegment segment) {
        return NATIVE.cast(segment);
    }

    /** {@code floats} zeroed float32 elements of native memory, 64-byte aligned, freed once unreachable. */
    public static MemorySegment floats(long floats) {
        return Arena.ofAuto().allocate(Math.max(1, floats) * Float.BYTES, 64);
    }
}
