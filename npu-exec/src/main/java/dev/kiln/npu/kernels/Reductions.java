package dev.kiln.npu.kernels;

import dev.kiln.ops.Op;
import dev.kiln.tensor.Tensor;

/** Reductions and scans. (Skeleton: implemented by the reductions work package.) */
public final class Reductions {
    private Reductions() {}
    public static void reduce(Op.Reduce op, Tensor x, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void argReduce(Op.ArgReduce op, Tensor x, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void cumsum(Op.CumSum op, Tensor x, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void topk(Op.TopK op, Tensor x, Tensor values, Tensor indices) { throw new UnsupportedOperationException(op.name()); }
}
