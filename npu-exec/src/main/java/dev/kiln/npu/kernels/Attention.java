package dev.kiln.npu.kernels;

import dev.kiln.ops.Op;
import dev.kiln.tensor.Tensor;

/** scaled_dot_product_attention. (Skeleton: implemented by the attention work package.) */
public final class Attention {
    private Attention() {}
    public static void sdpa(Op.ScaledDotProductAttention op, Tensor[] in, Tensor out) { throw new UnsupportedOperationException(op.name()); }
}
