package dev.kiln.npu.kernels;

import jdk.incubator.vector.FloatVector;

/**
 * Horizontal sums in a fixed order. {@code reduceLanes(ADD)} leaves the order of its
 * additions unspecified, and in practice the interpreter and C2 order them differently,
 * so a kernel using it gives different bits before and after its JIT compilation. Kiln
 * promises bit-identical results for identical inputs (the kernel cache relies on it),
 * so every float sum across lanes goes through here.
 */
public final class Lanes {
    private Lanes() {}

    /** The lanes of {@code v} set in {@code m}, added in lane order. */
    public static float sum(FloatVector v, jdk.incubator.vector.VectorMask<Float> m) {
        return sum(v.blend(0f, m.not()));
    }

    /** The lanes of {@code v} added in lane order. */
    public static float sum(FloatVector v) {
        float[] lanes = v.toArray();
        float s = 0f;
        for (float x : lanes) s += x;
        return s;
    }
}
