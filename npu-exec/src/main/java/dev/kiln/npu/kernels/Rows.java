package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Layout;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * A tensor seen as independent rows: the "row" dimensions (one dimension for softmax,
 * argmax, cumsum and topk; the trailing dimensions for the normalisations) hold the
 * elements of a row, the remaining "outer" dimensions enumerate rows. Tracks offsets
 * in the input and in the output (whose strides per input dimension the caller gives)
 * and says whether a row is one unit-stride run in each, so kernels can work on it
 * in place or else gather it into a scratch buffer.
 */
final class Rows {
    private final int[] outerSizes;
    private final long[] outerIn, outerOut;
    private final long inBase, outBase;
    private final long count;
    private final int length;
    /** Input offsets of a row's elements relative to its start, for non-dense rows spanning several dimensions. */
    private final long[] inTable;
    private final long inStride, outStride;
    private final boolean inDense, outDense;

    /**
     * @param in        the input layout
     * @param outStrides output strides, one per input dimension (0 where the output has no such dimension);
     *                  a row spanning several dimensions must be dense in the output
     * @param outBase   the output's element offset
     * @param rowDims   which input dimensions form a row
     */
    Rows(Layout in, long[] outStrides, long outBase, boolean[] rowDims) {
        int[] d = in.shape().dims();
        long[] st = in.strides();
        int outer = 0, inner = 0;
        long n = 1, rows = 1;
        for (int i = 0; i < d.length; i++) {
            if (rowDims[i]) {
                n *= d[i];
                if (d[i] != 1) inner++;
            } else {
                rows *= d[i];
                if (d[i] != 1) outer++;
            }
        }
        this.length = Math.toIntExact(n);
        this.count = rows;
        this.inBase = in.offset();
        this.outBase = outBase;
        outerSizes = new int[outer];
        outerIn = new long[outer];
        outerOut = new long[outer];
        int[] rowSizes = new int[inner];
        long[] rowIn = new long[inner], rowOut = new long[inner];
        int o = 0, r = 0;
        for (int i = 0; i < d.length; i++) {
            if (d[i] == 1) continue; // size-1 dimensions never move an offset
            if (rowDims[i]) {
                rowSizes[r] = d[i];
                rowIn[r] = st[i];
                rowOut[r++] = outStrides[i];
            } else {
                outerSizes[o] = d[i];
                outerIn[o] = st[i];
                outerOut[o++] = outStrides[i];
            }
        }
        // An empty row touches no memory: any strides serve.
        inDense = length == 0 || isDense(rowSizes, rowIn);
        outDense = length == 0 || isDense(rowSizes, rowOut);
        inStride = inner == 1 ? rowIn[0] : inDense ? 1 : 0;
        outStride = inner == 1 ? rowOut[0] : 1;
        if (inner > 1 && !outDense) {
            throw new IllegalArgumentException("rows of several dimensions need a dense output row, got strides "
                    + Arrays.toString(rowOut) + " for sizes " + Arrays.toString(rowSizes));
        }
        inTable = inner > 1 && !inDense && length > 0 ? offsets(rowSizes, rowIn) : null;
    }

    /**
     * Rows of single dimension {@code dim}, negative counting from the end as the ops'
     * shape inference accepts it (none for a 0-dimensional tensor, giving one row of one element).
     */
    static Rows along(Layout in, long[] outStrides, long outBase, int dim) {
        boolean[] rowDims = new boolean[in.shape().rank()];
        if (rowDims.length > 0) rowDims[Math.floorMod(dim, rowDims.length)] = true;
        return new Rows(in, outStrides, outBase, rowDims);
    }

    private static boolean isDense(int[] sizes, long[] strides) {
        for (int s : sizes) if (s == 0) return true; // an empty row addresses nothing
        long expected = 1;
        for (int i = sizes.length - 1; i >= 0; i--) {
            if (strides[i] != expected) return false;
            expected *= sizes[i];
        }
        return true;
    }

    private static long[] offsets(int[] sizes, long[] strides) {
        int n = 1;
        for (int s : sizes) n *= s;
        long[] t = new long[n];
        Odometer w = new Odometer(sizes, strides, 0, new long[sizes.length], 0);
        for (int i = 0; i < n; i++, w.next()) t[i] = w.a();
        return t;
    }

    /** Number of rows. */
    long count() { return count; }

    /** Elements per row. */
    int length() { return length; }

    /** True when each input row is one run of consecutive elements. */
    boolean inDense() { return inDense; }

    /** True when each output row is one run of consecutive elements. */
    boolean outDense() { return outDense; }

    /** Input stride between a row's elements; only for rows of at most one dimension. */
    long inStride() { return inStride; }

    /** Output stride between a row's elements; only for rows of at most one dimension. */
    long outStride() { return outStride; }

    /** Walker over rows from row {@code from}: {@code a()} is the input offset of the row's first element, {@code b()} the output's. */
    Odometer walker(long from) {
        return new Odometer(outerSizes, outerIn, inBase, outerOut, outBase).seek(from);
    }

    /**
     * Number of rows lying side by side: the size of the innermost outer dimension when it
     * has unit stride in both input and output (so rows {@code r, r+1, ...} start at
     * consecutive elements), else 1.
     */
    int adjacentRows() {
        int k = outerSizes.length - 1;
        return k >= 0 && outerIn[k] == 1 && outerOut[k] == 1 ? outerSizes[k] : 1;
    }

    /** Walker over groups of {@link #adjacentRows} rows: the outer dimensions but the innermost. */
    Odometer groupWalker(long from) {
        int k = Math.max(outerSizes.length - 1, 0);
        return new Odometer(Arrays.copyOf(outerSizes, k), Arrays.copyOf(outerIn, k), inBase,
                Arrays.copyOf(outerOut, k), outBase).seek(from);
    }

    private long inOffset(int i) { return inTable != null ? inTable[i] : i * inStride; }

    private long outOffset(int i) { return i * outStride; }

    /** Reads the row starting at {@code off} of {@code src} (of {@code dtype}) as float32 into {@code dst}. */
    void gatherFloats(MemorySegment src, DType dtype, long off, MemorySegment dst) {
        for (int i = 0; i < length; i++) FloatRuns.set(dst, i, (float) Elements.read(dtype, src, off + inOffset(i)));
    }

    /** Writes the float32 row in {@code src} to the output row at {@code off} of {@code dst}, rounding to {@code dtype}. */
    void scatterFloats(MemorySegment src, MemorySegment dst, DType dtype, long off) {
        for (int i = 0; i < length; i++) Elements.write(dtype, dst, off + outOffset(i), FloatRuns.get(src, i));
    }

    /** Reads the row starting at {@code off} of {@code src} (of {@code dtype}) into {@code dst}. */
    void gatherDoubles(MemorySegment src, DType dtype, long off, double[] dst) {
        for (int i = 0; i < length; i++) dst[i] = Elements.read(dtype, src, off + inOffset(i));
    }

    /** Writes {@code src} to the output row at {@code off} of {@code dst}, converting to {@code dtype}. */
    void scatterDoubles(double[] src, MemorySegment dst, DType dtype, long off) {
        for (int i = 0; i < length; i++) Elements.write(dtype, dst, off + outOffset(i), src[i]);
    }
}
