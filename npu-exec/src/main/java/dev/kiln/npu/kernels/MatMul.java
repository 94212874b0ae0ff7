package dev.kiln.npu.kernels;

import dev.kiln.tensor.Tensor;

/** Matrix multiplication. (Skeleton: implemented by the matmul work package.) */
public final class MatMul {
    private MatMul() {}
    public static void matmul(Tensor a, Tensor b, Tensor out) { throw new UnsupportedOperationException("matmul"); }
}
