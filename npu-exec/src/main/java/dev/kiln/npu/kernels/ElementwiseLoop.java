package dev.kiln.npu.kernels;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.StridedIndex;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;

/**
 * Walks a contiguous output and its strided, broadcast inputs in runs ("blocks") of at
 * most {@link #BLOCK} elements, each lying within one innermost row, so a kernel sees
 * every input as a start offset plus a fixed inner stride (1, 0 for broadcast, or
 * anything else for views it must gather).
 *
 * <p>Dimensions of size 1 are dropped and neighbouring dimensions that every input
 * walks as one (stride of the outer = stride of the inner times its size) are merged,
 * so a contiguous or simply broadcast operation becomes one long row. The output is
 * split into ranges of elements (several per worker when it is large); each range gets its own
 * {@link Blocks} (with its own scratch memory) from the factory.
 */
public final class ElementwiseLoop {
    /** Elements per block: a multiple of every vector length, and small enough that a few operands stay in L1. */
    public static final int BLOCK = 2048;

    private ElementwiseLoop() {}

    /** Receives the blocks of one range, in order. */
    @FunctionalInterface
    public interface Blocks {
        /**
         * Output elements [outIndex, outIndex + n) (row-major); input i's first element is at
         * storage element offset {@code inOffsets[i]}, the rest follow at its inner stride.
         * The array is reused between calls.
         */
        void run(long outIndex, long[] inOffsets, int n);
    }

    /** Makes the {@link Blocks} of one range, given each input's inner stride (in elements). */
    @FunctionalInterface
    public interface BlocksFactory {
        Blocks create(long[] innerStrides);
    }

    /**
     * Visits every element of {@code shape} (the output's, which inputs broadcast to).
     * {@code costPerElement} is a rough count of operations per element, deciding whether
     * to use more than one core.
     */
    public static void run(Shape shape, Layout[] inputs, int costPerElement, BlocksFactory factory) {
        long numel = shape.numel();
        if (numel == 0) return;
        Plan plan = Plan.of(shape, inputs);
        Parallel.forRange(numel, numel * costPerElement, (from, to) -> plan.walk(from, to, factory.create(plan.innerStrides())));
    }

    /** Merged dimensions and each input's strides and base offset over them. */
    private record Plan(long[] dims, long[][] strides, long[] bases) {

        static Plan of(Shape shape, Layout[] inputs) {
            int[] d = shape.dims();
            int k = inputs.length;
            long[][] st = new long[k][];
            for (int i = 0; i < k; i++) st[i] = StridedIndex.broadcastStrides(inputs[i], shape);
            // Merge from the innermost dimension outwards, skipping size-1 dimensions.
            long[] dims = new long[d.length + 1];
            long[][] merged = new long[k][d.length + 1];
            int r = 0;
            for (int j = d.length - 1; j >= 0; j--) {
                if (d[j] == 1) continue;
                if (r > 0 && mergeable(st, j, merged, r - 1, dims[r - 1])) {
                    dims[r - 1] *= d[j];
                    continue;
                }
                dims[r] = d[j];
                for (int i = 0; i < k; i++) merged[i][r] = st[i][j];
                r++;
            }
            if (r == 0) {
                dims[0] = 1;
                r = 1;
            }
            // Reverse into row-major order.
            long[] outDims = new long[r];
            long[][] outStrides = new long[k][r];
            for (int j = 0; j < r; j++) {
                outDims[j] = dims[r - 1 - j];
                for (int i = 0; i < k; i++) outStrides[i][j] = merged[i][r - 1 - j];
            }
            long[] bases = new long[k];
            for (int i = 0; i < k; i++) bases[i] = inputs[i].offset();
            return new Plan(outDims, outStrides, bases);
        }

        /** Whether original dimension j can be folded into merged dimension m (of size size) for every input. */
        private static boolean mergeable(long[][] st, int j, long[][] merged, int m, long size) {
            for (int i = 0; i < st.length; i++) {
                if (st[i][j] != merged[i][m] * size) return false;
            }
            return true;
        }

        long[] innerStrides() {
            long[] s = new long[strides.length];
            for (int i = 0; i < s.length; i++) s[i] = strides[i][dims.length - 1];
            return s;
        }

        /** Visits output elements [from, to) row by row, advancing the outer index like an odometer. */
        void walk(long from, long to, Blocks blocks) {
            int k = bases.length, outer = dims.length - 1;
            long inner = dims[outer];
            long[] inner0 = innerStrides();
            long[] idx = new long[outer];
            long[] rowOffset = bases.clone();
            long row = from / inner;
            for (int d = outer - 1; d >= 0 && row != 0; d--) {
                idx[d] = row % dims[d];
                row /= dims[d];
                for (int i = 0; i < k; i++) rowOffset[i] += idx[d] * strides[i][d];
            }
            long[] offsets = new long[k];
            long col = from % inner, pos = from;
            while (pos < to) {
                long end = Math.min(inner, col + (to - pos));
                for (long c = col; c < end; c += BLOCK) {
                    int n = (int) Math.min(BLOCK, end - c);
                    for (int i = 0; i < k; i++) offsets[i] = rowOffset[i] + c * inner0[i];
                    blocks.run(pos + (c - col), offsets, n);
                }
                pos += end - col;
                col = 0;
                for (int d = outer - 1; d >= 0; d--) {
                    for (int i = 0; i < k; i++) rowOffset[i] += strides[i][d];
                    if (++idx[d] < dims[d]) break;
                    for (int i = 0; i < k; i++) rowOffset[i] -= strides[i][d] * dims[d];
                    idx[d] = 0;
                }
            }
        }
    }
}
