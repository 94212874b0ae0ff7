package dev.kiln.npu.kernels;

import dev.kiln.ops.Op;
import dev.kiln.tensor.Tensor;

/** gather, gather_elements, concat, tril/triu, rope. (Skeleton: implemented by the attention/indexing work package.) */
public final class Indexing {
    private Indexing() {}
    public static void rope(Op.Rope op, Tensor x, Tensor cos, Tensor sin, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void gather(Op.Gather op, Tensor data, Tensor idx, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void gatherElements(Op.GatherElements op, Tensor data, Tensor idx, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void concat(Op.Concat op, Tensor[] in, Tensor out) { throw new UnsupportedOperationException(op.name()); }
    public static void triangle(Op.Triangle op, Tensor x, Tensor out) { throw new UnsupportedOperationException(op.name()); }
}
