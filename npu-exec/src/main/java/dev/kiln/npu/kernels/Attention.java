package dev.kiln.npu.kernels;

import dev.kiln.npu.kernels.attention.DoubleAttention;
import dev.kiln.npu.kernels.attention.FloatAttention;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;

/**
 * scaled_dot_product_attention with PyTorch's semantics (see {@link Op.ScaledDotProductAttention}):
 * float64 computes in double, the other float types in float32 with an online softmax.
 */
public final class Attention {
    private Attention() {}

    public static void sdpa(Op.ScaledDotProductAttention op, Tensor[] in, Tensor out) {
        if (out.numel() == 0) return;
        if (out.dtype() == DType.FLOAT64) DoubleAttention.run(op, in, out);
        else FloatAttention.run(op, in, out);
    }
}
