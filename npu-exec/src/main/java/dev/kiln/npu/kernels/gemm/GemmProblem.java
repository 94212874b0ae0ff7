package dev.kiln.npu.kernels.gemm;

import dev.kiln.npu.StridedIndex;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A matmul reduced to a batch of {@code batch} independent products
 * C[i] (M x N) = A[i] (M x K) * B[i] (K x N), with PyTorch's rules applied: a 1-D
 * left operand is a single row, a 1-D right operand a single column, and batch
 * dimensions broadcast. C is the contiguous output: batch entry i starts at element
 * {@code outOffset + i * M * N}, rows are {@code N} apart.
 *
 * <p>When B is shared by every batch entry and A's batch and row dimensions
 * collapse into one stride (the usual {@code x.matmul(w.mT())} of a linear layer on
 * [batch, seq, in]), the batch is folded into M: one large product packs B once.
 */
public record GemmProblem(int batch, int m, int n, int k, Operand a, Operand b, MemorySegment out, long outOffset) {

    public static GemmProblem of(Tensor a, Tensor b, Tensor out) {
        int[] ad = a.shape().dims(), bd = b.shape().dims();
        long[] as = a.layout().strides(), bs = b.layout().strides();
        int ra = ad.length, rb = bd.length;
        int m = ra >= 2 ? ad[ra - 2] : 1, k = ad[ra - 1], n = rb >= 2 ? bd[rb - 1] : 1;
        long aRow = ra >= 2 ? as[ra - 2] : 0, aCol = as[ra - 1];
        long bRow = rb >= 2 ? bs[rb - 2] : bs[0], bCol = rb >= 2 ? bs[rb - 1] : 0;

        Shape batchA = Shape.of(Arrays.copyOf(ad, Math.max(ra - 2, 0)));
        Shape batchB = Shape.of(Arrays.copyOf(bd, Math.max(rb - 2, 0)));
        Shape batchShape = Shape.broadcast("matmul", batchA, batchB);
        long[] aBatchStrides = StridedIndex.broadcastStrides(batchLayout(a.layout(), batchA), batchShape);
        long[] bBatchStrides = StridedIndex.broadcastStrides(batchLayout(b.layout(), batchB), batchShape);
        int batch = Math.toIntExact(batchShape.numel());
        MemorySegment outSegment = out.storage().segment();

        boolean foldable = batch > 1 && isZero(bBatchStrides) && (long) batch * m <= Integer.MAX_VALUE;
        long foldedRowStride = foldable ? collapsedStride(batchShape.dims(), aBatchStrides, m, aRow) : 0;
        if (foldedRowStride != 0) {
            return new GemmProblem(1, batch * m, n, k,
                    new Operand(a.storage().segment(), a.dtype(), new long[] {a.layout().offset()}, foldedRowStride, aCol),
                    new Operand(b.storage().segment(), b.dtype(), new long[] {b.layout().offset()}, bRow, bCol),
                    outSegment, out.layout().offset());
        }
        int[] batchDims = batchShape.dims();
        long[] aOffsets = new long[batch], bOffsets = new long[batch];
        for (int i = 0; i < batch; i++) {
            aOffsets[i] = StridedIndex.offset(batchDims, aBatchStrides, a.layout().offset(), i);
            bOffsets[i] = StridedIndex.offset(batchDims, bBatchStrides, b.layout().offset(), i);
        }
        return new GemmProblem(batch, m, n, k,
                new Operand(a.storage().segment(), a.dtype(), aOffsets, aRow, aCol),
                new Operand(b.storage().segment(), b.dtype(), bOffsets, bRow, bCol),
                outSegment, out.layout().offset());
    }

    /** Floating-point operations of the whole product, the measure of its cost. */
    public long flops() { return 2L * batch * m * n * k; }

    /** Element index in {@link #out} of C[batch](row, 0). */
    public long outIndex(int batchEntry, long row) { return outOffset + ((long) batchEntry * m + row) * n; }

    private static Layout batchLayout(Layout l, Shape batch) {
        return new Layout(batch, Arrays.copyOf(l.strides(), batch.rank()), l.offset());
    }

    private static boolean isZero(long[] strides) {
        for (long s : strides) if (s != 0) return false;
        return true;
    }

    /**
     * The single stride with which the batch dimensions followed by a row dimension
     * of size {@code rows} and stride {@code rowStride} enumerate rows in order, or 0
     * when they do not (size-1 dimensions may have any stride).
     */
    private static long collapsedStride(int[] batchDims, long[] batchStrides, int rows, long rowStride) {
        long stride = 0, span = 0;
        for (int i = batchDims.length; i >= 0; i--) {
            int size = i == batchDims.length ? rows : batchDims[i];
            long s = i == batchDims.length ? rowStride : batchStrides[i];
            if (size == 1) continue;
            if (stride == 0) {
                if (s == 0) return 0;
                stride = s;
                span = s * size;
            } else if (s == span) {
                span *= size;
            } else {
                return 0;
            }
        }
        return stride;
    }
}
