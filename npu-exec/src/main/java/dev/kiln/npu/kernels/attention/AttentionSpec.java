package dev.kiln.npu.kernels.attention;

import dev.kiln.ops.Op;

/**
 * What an attention launch computes, whichever op asked for it: scaled_dot_product_attention
 * is the kernel with causal offset 0, no softcap and device-chosen partitions.
 *
 * @param partitionSize keys per split-KV partition, 0 for the device's choice
 */
public record AttentionSpec(boolean causal, long causalOffset, double scale, double softcap, boolean enableGqa,
                            boolean hasMask, int partitionSize) {

    public static AttentionSpec of(Op.ScaledDotProductAttention op) {
        return new AttentionSpec(op.causal(), 0, op.scale(), 0, op.enableGqa(), op.hasMask(), 0);
    }

    public static AttentionSpec of(Op.Attention op) {
        return new AttentionSpec(op.causal(), op.causalOffset(), op.scale(), op.softcap(), op.enableGqa(), op.hasMask(),
                op.partitionSize());
    }
}
