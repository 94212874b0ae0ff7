package dev.kiln.npu;

import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;

/**
 * Stride arithmetic shared by kernels: broadcasting a layout to an output shape,
 * and mapping flat row-major indices to storage offsets. Kernels iterate the
 * innermost dimension themselves (vectorised when its stride is 1 or 0) and use
 * this for the outer ones.
 */
public final class StridedIndex {
    private StridedIndex() {}

    /** Strides of {@code l} viewed as {@code target} (NumPy broadcasting: 0 where broadcast). */
    public static long[] broadcastStrides(Layout l, Shape target) {
        int rank = target.rank(), lead = rank - l.shape().rank();
        long[] st = new long[rank];
        for (int i = lead; i < rank; i++) {
            st[i] = l.shape().dim(i - lead) == 1 ? 0 : l.strides()[i - lead];
        }
        return st;
    }

    /** A view's dimensions with those laid out as one run merged and those of size 1 dropped (at least one left). */
    public record Runs(int[] dims, long[] strides) {}

    /** The runs of a view of {@code dims} at {@code strides}: the same elements in the same order, in as few dimensions as its layout allows. */
    public static Runs runs(int[] dims, long[] strides) {
        int[] md = new int[Math.max(1, dims.length)];
        long[] ms = new long[md.length];
        int rank = 0;
        for (int i = 0; i < dims.length; i++) {
            if (dims[i] == 1) continue;
            if (rank > 0 && ms[rank - 1] == strides[i] * dims[i]) {
                md[rank - 1] *= dims[i];
                ms[rank - 1] = strides[i];
            } else {
                md[rank] = dims[i];
                ms[rank++] = strides[i];
            }
        }
        if (rank == 0) return new Runs(new int[] {1}, new long[] {1});
        return new Runs(java.util.Arrays.copyOf(md, rank), java.util.Arrays.copyOf(ms, rank));
    }

    /** Storage offset of flat row-major index {@code flat} in (dims, strides) starting at {@code base}. */
    public static long offset(int[] dims, long[] strides, long base, long flat) {
        long off = base;
        for (int i = dims.length - 1; i >= 0 && flat != 0; i--) {
            int d = dims[i];
            off += (flat % d) * strides[i];
            flat /= d;
        }
        return off;
    }

    /** Offset of the first element of outer row {@code row}, where rows index all dimensions but the last. */
    public static long rowOffset(int[] dims, long[] strides, long base, long row) {
        long off = base;
        for (int i = dims.length - 2; i >= 0 && row != 0; i--) {
            int d = dims[i];
            off += (row % d) * strides[i];
            row /= d;
        }
        return off;
    }
}
