package dev.kiln.npu.kernels;

import dev.kiln.ops.Op;
import dev.kiln.tensor.Tensor;

/** softmax, log_softmax, layer_norm, rms_norm. (Skeleton: implemented by the reductions work package.) */
public final class Normalization {
    private Normalization() {}
    public static void softmax(Op.Softmax op, Tensor x, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void layerNorm(Op.LayerNorm op, Tensor[] in, Tensor[] out) { throw new UnsupportedOperationException(op.name()); }
    public static void rmsNorm(Op.RmsNorm op, Tensor[] in, Tensor out) { throw new UnsupportedOperationException(op.name()); }
}
