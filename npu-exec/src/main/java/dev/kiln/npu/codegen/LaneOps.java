package dev.kiln.npu.codegen;

import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.ops.BinaryFn;
import jdk.incubator.vector.FloatVector;

/**
 * The few functions generated tile loops compute lane by lane, in double as their
 * reference defines them (pow, trunc_div, floor_div), exactly as the eager kernels do:
 * rare in models, and not worth a vector version of their own.
 */
public final class LaneOps {
    private LaneOps() {}

    public static FloatVector binary(BinaryFn fn, FloatVector x, FloatVector y) {
        float[] a = x.toArray(), b = y.toArray();
        for (int i = 0; i < a.length; i++) a[i] = (float) fn.apply(a[i], b[i]);
        return FloatVector.fromArray(VectorMath.SPECIES, a, 0);
    }
}
