package dev.kiln.npu.kernels;

import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.kernels.attention.AttentionSpec;
import dev.kiln.npu.kernels.attention.DoubleAttention;
import dev.kiln.npu.kernels.attention.FlashAttention;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;

/**
 * Attention kernels: scaled_dot_product_attention with PyTorch's semantics (see
 * {@link Op.ScaledDotProductAttention}) and the kernel-level {@link Op.Attention} (mask with
 * causal masking, causal offset, softcap, partition size). float64 computes in double;
 * the other float types run {@link FlashAttention} in float32, tiled to the device's SRAM.
 */
public final class Attention {
    private Attention() {}

    public static void sdpa(Op.ScaledDotProductAttention op, Tensor[] in, Tensor out) {
        run(AttentionSpec.of(op), in, out);
    }

    /** With {@code op.transposedOutput()}, {@code out} is [..., L, H, Ev]: the kernel writes it through the view that swaps them back. */
    public static void attention(Op.Attention op, Tensor[] in, Tensor out) {
        run(AttentionSpec.of(op), in, op.transposedOutput() ? out.transpose(out.rank() - 3, out.rank() - 2) : out);
    }

    private static void run(AttentionSpec spec, Tensor[] in, Tensor out) {
        if (out.numel() == 0) return;
        if (out.dtype() == DType.FLOAT64) DoubleAttention.run(spec, in, out);
        else FlashAttention.run(spec, in, out, NpuDevice.current());
    }
}
