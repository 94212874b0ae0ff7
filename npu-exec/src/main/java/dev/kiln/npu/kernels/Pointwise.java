package dev.kiln.npu.kernels;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.Tensor;

/** Elementwise kernels. (Skeleton: implemented by the pointwise work package.) */
public final class Pointwise {
    private Pointwise() {}
    public static void unary(UnaryFn fn, Tensor x, Tensor out) { throw new UnsupportedOperationException(fn.opName()); }
    public static void binary(Op.Binary op, Tensor a, Tensor b, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void binaryScalar(Op.BinaryScalar op, Tensor a, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void clamp(Op.Clamp op, Tensor x, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void where(Tensor c, Tensor x, Tensor y, Tensor out) { throw new UnsupportedOperationException("where"); }
    /** Copies x into out, converting dtype as a cast does. */
    public static void copy(Tensor x, Tensor out) { throw new UnsupportedOperationException("copy"); }
    public static void fill(double value, Tensor out) { throw new UnsupportedOperationException("fill"); }
    public static void arange(double start, double step, Tensor out) { throw new UnsupportedOperationException("arange"); }
}
