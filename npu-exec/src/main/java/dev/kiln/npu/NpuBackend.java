package dev.kiln.npu;

import dev.kiln.npu.kernels.Attention;
import dev.kiln.npu.kernels.Indexing;
import dev.kiln.npu.kernels.MatMul;
import dev.kiln.npu.kernels.Normalization;
import dev.kiln.npu.kernels.Pointwise;
import dev.kiln.npu.kernels.Reductions;
import dev.kiln.ops.KernelBackend;
import dev.kiln.ops.Op;
import dev.kiln.tensor.Tensor;

/** The eager kernel backend of the virtual NPU: one kernel per op, chosen by the op's type. */
public final class NpuBackend implements KernelBackend {

    @Override
    public String name() { return "npu"; }

    @Override
    public void execute(Op op, Tensor[] in, Tensor[] out) {
        // Pointwise kernels walk their operands along the output's last dimension: large transposes are copied in blocks first.
        if (op instanceof Op.Unary || op instanceof Op.Binary || op instanceof Op.BinaryScalar || op instanceof Op.Clamp
                || op instanceof Op.Where || op instanceof Op.Cast) {
            in = TransposedCopy.untangled(in, out[0].shape(), null);
        }
        switch (op) {
            case Op.Unary u -> Pointwise.unary(u.fn(), in[0], out[0]);
            case Op.Binary b -> Pointwise.binary(b, in[0], in[1], out[0]);
            case Op.BinaryScalar s -> Pointwise.binaryScalar(s, in[0], out[0]);
            case Op.Clamp c -> Pointwise.clamp(c, in[0], out[0]);
            case Op.Where w -> Pointwise.where(in[0], in[1], in[2], out[0]);
            case Op.Cast c -> Pointwise.copy(in[0], out[0]);
            case Op.Contiguous c -> Pointwise.copy(in[0], out[0]);
            case Op.Full f -> Pointwise.fill(f.value(), out[0]);
            case Op.Arange a -> Pointwise.arange(a, out[0]);
            case Op.Reduce r -> Reductions.reduce(r, in[0], out[0]);
            case Op.ArgReduce a -> Reductions.argReduce(a, in[0], out[0]);
            case Op.CumSum c -> Reductions.cumsum(c, in[0], out[0]);
            case Op.TopK t -> Reductions.topk(t, in[0], out[0], out[1]);
            case Op.Softmax s -> Normalization.softmax(s, in[0], out[0]);
            case Op.LayerNorm l -> Normalization.layerNorm(l, in, out);
            case Op.RmsNorm r -> Normalization.rmsNorm(r, in, out[0]);
            case Op.MatMul m -> MatMul.matmul(in[0], in[1], out[0]);
            case Op.ScaledDotProductAttention a -> Attention.sdpa(a, in, out[0]);
            case Op.Attention a -> Attention.attention(a, in, out[0]);
            case Op.Rope r -> Indexing.rope(r, in[0], in[1], in[2], out[0]);
            case Op.Gather g -> Indexing.gather(g, in[0], in[1], out[0]);
            case Op.GatherElements g -> Indexing.gatherElements(g, in[0], in[1], out[0]);
            case Op.Concat c -> Indexing.concat(c, in, out[0]);
            case Op.Triangle t -> Indexing.triangle(t, in[0], out[0]);
            case Op.PagedAttention p -> dev.kiln.nn.Serving.execute(p, in, out[0]);
            case Op.SlidingWindowDecode w -> dev.kiln.nn.Serving.execute(w, in, out[0]);
            case Op.ReshapeAndCache r -> dev.kiln.nn.Serving.execute(r, in, out);
            case Op.SlidingWindowAttention w -> dev.kiln.nn.Serving.execute(w, in, out[0]);
            case Op.ViewOp v -> throw new IllegalArgumentException(v.name() + " is a view and has no kernel");
        }
    }
}
