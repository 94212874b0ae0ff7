package dev.kiln.npu.kernels.gemm;

import dev.kiln.npu.kernels.Lanes;
import dev.kiln.npu.kernels.attention.RowProducts;
import dev.kiln.npu.Parallel;
import dev.kiln.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static dev.kiln.npu.kernels.gemm.FloatKernels.S;
import static dev.kiln.npu.kernels.gemm.FloatKernels.V;

/**
 * float32 products with few rows (M <= {@value #MAX_ROWS}, as in decoding a few
 * tokens) or a single column (N == 1). Each matrix element is then used only a few
 * times, so packing it would cost more than it saves: the matrix is read in place, a
 * vector at a time along whichever of its dimensions is contiguous, and each block of
 * it is reused from cache by every row before moving on.
 *
 * <p>The product is out(r, j) = sum_k x_r[k] * mat(k, j): x_r are the rows of A and mat
 * is B, or (N == 1) x_0 is B's column and mat is A transposed. Several rows need mat
 * contiguous along j or k; otherwise the packed GEMM takes them. Contiguous along k with K
 * a whole number of vectors (a linear layer's weights), the dots are decode attention's
 * scores ({@link RowProducts}).
 */
public final class FloatGemv {
    /** Up to this many rows the unpacked kernels beat packing the matrix (measured: [M,1024] x [1024,4096], both layouts). */
    static final int MAX_ROWS = 16;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    /** Most outputs per unit of parallel work in the dot form: its matrix rows (4 KiB each at K = 1024) stay in L2. */
    private static final int DOT_BLOCK = 256;
    /** Most outputs (of all rows together) per unit in the column form: 16 KiB, which stay in L1 while matrix rows stream by. */
    private static final int COLUMN_BLOCK = 4096;

    private FloatGemv() {}

    /** Computes {@code p} if it is a float32 product with few rows or one column and returns true; false leaves it untouched. */
    public static boolean tryCompute(GemmProblem p) {
        boolean fewRows = p.m() <= MAX_ROWS;
        if (p.a().dtype() != DType.FLOAT32 || (!fewRows && p.n() != 1)) return false;
        Operand x = fewRows ? p.a() : p.b(), mat = fewRows ? p.b() : p.a();
        int rows = fewRows ? p.m() : 1, outputs = fewRows ? p.n() : p.m(), k = p.k();
        long xStride = fewRows ? x.colStride() : x.rowStride();
        long kStride = fewRows ? mat.rowStride() : mat.colStride();
        // With one output the stride along j is never used: call it contiguous.
        long jStride = outputs == 1 ? 1 : fewRows ? mat.colStride() : mat.rowStride();
        boolean dots = kStride == 1 && (jStride != 1 || outputs == 1), columns = !dots && jStride == 1;
        // Neither dimension of the matrix is contiguous: packing it pays off unless there is a single row.
        if (!dots && !columns && rows > 1) return false;
        long xRowStride = fewRows ? x.rowStride() : 0;
        if (dots && k % V == 0) {
            rowDots(p, x, xRowStride, xStride, rows, mat, jStride, k, outputs);
            return true;
        }
        if (dots && xStride != 1) {
            // The dot form loads x a vector at a time: gather it once (it is the small operand).
            x = contiguousRows(x, p.batch(), rows, k, xRowStride, xStride);
            xRowStride = k;
            xStride = 1;
        }
        Operand xs = x;
        long xStep = xStride, xRows = xRowStride;
        // Blocks small enough that every worker gets one, and a multiple of the vector length.
        int perWorker = (outputs + Parallel.workers() - 1) / Parallel.workers();
        int width = Blocking.roundUp(Math.max(1, Math.min(columns ? COLUMN_BLOCK / rows : DOT_BLOCK, perWorker)), V);
        long blocks = (outputs + width - 1) / width;
        Parallel.forRange(p.batch() * blocks, p.flops() / 16, (from, to) -> {
            for (long u = from; u < to; u++) {
                int batch = (int) (u / blocks), j0 = (int) (u % blocks) * width, j1 = Math.min(outputs, j0 + width);
                long xAt = xs.offsets()[batch], matAt = mat.offsets()[batch], outAt = p.outIndex(batch, 0);
                if (columns) {
                    columns(xs.segment(), xAt, xRows, xStep, rows, mat.segment(), matAt, kStride, k, j0, j1, p.out(), outAt, p.n());
                    continue;
                }
                // Every row runs over this block of mat while it is in cache.
                for (int r = 0; r < rows; r++) {
                    long xr = xAt + r * xRows, outR = outAt + (long) r * p.n();
                    if (dots) dots(xs.segment(), xr, mat.segment(), matAt, jStride, k, j0, j1, p.out(), outR);
                    else scalar(xs.segment(), xr, xStep, mat.segment(), matAt, kStride, jStride, k, j0, j1, p.out(), outR);
                }
            }
        });
        return true;
    }

    /**
     * The dot form for K of whole vectors: {@link RowProducts#scores}, x's rows as the query rows
     * and mat's rows as the keys, so the lanes of 16 outputs are summed together (a lane sum per
     * output cost more than its multiply-adds here) and each vector of mat is loaded once for
     * four rows of x.
     */
    private static void rowDots(GemmProblem p, Operand x, long xRowStride, long xStride, int rows, Operand mat, long jStride, int k,
                                int outputs) {
        // x's rows gathered once into the contiguous float rows the products take.
        int batches = p.batch();
        float[] xRowsOf = new float[batches * rows * k];
        for (int b = 0; b < batches; b++) {
            for (int r = 0; r < rows; r++) {
                long from = x.offsets()[b] + r * xRowStride;
                int to = (b * rows + r) * k;
                if (xStride == 1) MemorySegment.copy(x.segment(), F32, from * Float.BYTES, xRowsOf, to, k);
                else for (int i = 0; i < k; i++) xRowsOf[to + i] = x.segment().getAtIndex(F32, from + i * xStride);
            }
        }
        int perWorker = (outputs + Parallel.workers() - 1) / Parallel.workers();
        int width = Blocking.roundUp(Math.max(1, Math.min(DOT_BLOCK, perWorker)), V);
        long blocks = (outputs + width - 1) / width;
        Parallel.forRange(batches * blocks, p.flops() / 16, (from, to) -> {
            RowProducts products = new RowProducts();
            long[] rowByte = new long[width];
            float[] block = new float[rows * width];
            for (long u = from; u < to; u++) {
                int batch = (int) (u / blocks), j0 = (int) (u % blocks) * width, n = Math.min(outputs, j0 + width) - j0;
                long matAt = mat.offsets()[batch], outAt = p.outIndex(batch, 0);
                for (int j = 0; j < n; j++) rowByte[j] = (matAt + (j0 + j) * jStride) * Float.BYTES;
                products.scores(xRowsOf, batch * rows * k, rows, k, mat.segment(), rowByte, n, block, 0, width);
                for (int r = 0; r < rows; r++) MemorySegment.copy(block, r * width, p.out(), F32, (outAt + (long) r * p.n() + j0) * Float.BYTES, n);
            }
        });
    }

    /** The vectors of every batch entry copied to fresh memory, contiguous along k, rows k apart. */
    private static Operand contiguousRows(Operand x, int batch, int rows, int k, long rowStride, long stride) {
        MemorySegment copy = Arena.ofAuto().allocate((long) batch * rows * k * Float.BYTES, 64);
        long[] offsets = new long[batch];
        for (int b = 0; b < batch; b++) {
            offsets[b] = (long) b * rows * k;
            for (int r = 0; r < rows; r++) {
                long from = x.offsets()[b] + r * rowStride, to = offsets[b] + (long) r * k;
                for (int p = 0; p < k; p++) copy.setAtIndex(F32, to + p, x.segment().getAtIndex(F32, from + p * stride));
            }
        }
        return new Operand(copy, DType.FLOAT32, offsets, k, 1);
    }

    /**
     * mat is contiguous along j: out_r += x_r[k] * row k of mat, four rows of mat at a
     * time, streaming them in memory order while the block of outputs stays in L1.
     */
    private static void columns(MemorySegment xs, long xAt, long xRowStride, long xStride, int rows,
                                MemorySegment ms, long matAt, long kStride, int k, int j0, int j1,
                                MemorySegment out, long outAt, long outRowStride) {
        for (int r = 0; r < rows; r++) {
            out.asSlice((outAt + r * outRowStride + j0) * Float.BYTES, (long) (j1 - j0) * Float.BYTES).fill((byte) 0);
        }
        int p = 0;
        for (; p + 4 <= k; p += 4) {
            long m0 = (matAt + p * kStride) * Float.BYTES, m1 = m0 + kStride * Float.BYTES,
                    m2 = m1 + kStride * Float.BYTES, m3 = m2 + kStride * Float.BYTES;
            for (int r = 0; r < rows; r++) {
                long xp = xAt + r * xRowStride + p * xStride;
                FloatVector x0 = FloatVector.broadcast(S, xs.getAtIndex(F32, xp)),
                        x1 = FloatVector.broadcast(S, xs.getAtIndex(F32, xp + xStride)),
                        x2 = FloatVector.broadcast(S, xs.getAtIndex(F32, xp + 2 * xStride)),
                        x3 = FloatVector.broadcast(S, xs.getAtIndex(F32, xp + 3 * xStride));
                long o = (outAt + r * outRowStride) * Float.BYTES;
                int j = j0;
                for (; j + V <= j1; j += V) {
                    long jb = (long) j * Float.BYTES;
                    FloatVector acc = FloatVector.fromMemorySegment(S, out, o + jb, ORDER);
                    acc = x0.fma(FloatVector.fromMemorySegment(S, ms, m0 + jb, ORDER), acc);
                    acc = x1.fma(FloatVector.fromMemorySegment(S, ms, m1 + jb, ORDER), acc);
                    acc = x2.fma(FloatVector.fromMemorySegment(S, ms, m2 + jb, ORDER), acc);
                    acc = x3.fma(FloatVector.fromMemorySegment(S, ms, m3 + jb, ORDER), acc);
                    acc.intoMemorySegment(out, o + jb, ORDER);
                }
                if (j < j1) {
                    VectorMask<Float> m = S.indexInRange(j, j1);
                    long jb = (long) j * Float.BYTES;
                    FloatVector acc = FloatVector.fromMemorySegment(S, out, o + jb, ORDER, m);
                    acc = x0.fma(FloatVector.fromMemorySegment(S, ms, m0 + jb, ORDER, m), acc);
                    acc = x1.fma(FloatVector.fromMemorySegment(S, ms, m1 + jb, ORDER, m), acc);
                    acc = x2.fma(FloatVector.fromMemorySegment(S, ms, m2 + jb, ORDER, m), acc);
                    acc = x3.fma(FloatVector.fromMemorySegment(S, ms, m3 + jb, ORDER, m), acc);
                    acc.intoMemorySegment(out, o + jb, ORDER, m);
                }
            }
        }
        for (; p < k; p++) {
            long mp = (matAt + p * kStride) * Float.BYTES;
            for (int r = 0; r < rows; r++) {
                FloatVector xp = FloatVector.broadcast(S, xs.getAtIndex(F32, xAt + r * xRowStride + p * xStride));
                long o = (outAt + r * outRowStride) * Float.BYTES;
                for (int j = j0; j < j1; j += V) {
                    VectorMask<Float> m = S.indexInRange(j, j1);
                    long jb = (long) j * Float.BYTES;
                    FloatVector acc = FloatVector.fromMemorySegment(S, out, o + jb, ORDER, m);
                    xp.fma(FloatVector.fromMemorySegment(S, ms, mp + jb, ORDER, m), acc).intoMemorySegment(out, o + jb, ORDER, m);
                }
            }
        }
    }

    /** mat and x are contiguous along k (mat is a transposed view, as in a linear layer): dot products, four at a time. */
    private static void dots(MemorySegment xs, long xAt, MemorySegment ms, long matAt, long jStride,
                             int k, int j0, int j1, MemorySegment out, long outAt) {
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
            long r0 = matAt + j * jStride, r1 = r0 + jStride, r2 = r1 + jStride, r3 = r2 + jStride;
            FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0;
            int p = 0;
            for (; p + V <= k; p += V) {
                FloatVector xv = FloatVector.fromMemorySegment(S, xs, (xAt + p) * Float.BYTES, ORDER);
                c0 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r0 + p) * Float.BYTES, ORDER), c0);
                c1 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r1 + p) * Float.BYTES, ORDER), c1);
                c2 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r2 + p) * Float.BYTES, ORDER), c2);
                c3 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r3 + p) * Float.BYTES, ORDER), c3);
            }
            if (p < k) {
                VectorMask<Float> m = S.indexInRange(p, k);
                FloatVector xv = FloatVector.fromMemorySegment(S, xs, (xAt + p) * Float.BYTES, ORDER, m);
                c0 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r0 + p) * Float.BYTES, ORDER, m), c0);
                c1 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r1 + p) * Float.BYTES, ORDER, m), c1);
                c2 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r2 + p) * Float.BYTES, ORDER, m), c2);
                c3 = xv.fma(FloatVector.fromMemorySegment(S, ms, (r3 + p) * Float.BYTES, ORDER, m), c3);
            }
            out.setAtIndex(F32, outAt + j, Lanes.sum(c0));
            out.setAtIndex(F32, outAt + j + 1, Lanes.sum(c1));
            out.setAtIndex(F32, outAt + j + 2, Lanes.sum(c2));
            out.setAtIndex(F32, outAt + j + 3, Lanes.sum(c3));
        }
        for (; j < j1; j++) {
            long r = matAt + j * jStride;
            FloatVector c = FloatVector.zero(S);
            for (int p = 0; p < k; p += V) {
                VectorMask<Float> m = S.indexInRange(p, k);
                FloatVector xv = FloatVector.fromMemorySegment(S, xs, (xAt + p) * Float.BYTES, ORDER, m);
                c = xv.fma(FloatVector.fromMemorySegment(S, ms, (r + p) * Float.BYTES, ORDER, m), c);
            }
            out.setAtIndex(F32, outAt + j, Lanes.sum(c));
        }
    }

    /** A single row against a matrix strided both ways (or broadcast): one fused multiply-add per element. */
    private static void scalar(MemorySegment xs, long xAt, long xStride, MemorySegment ms, long matAt, long kStride,
                               long jStride, int k, int j0, int j1, MemorySegment out, long outAt) {
        for (int j = j0; j < j1; j++) {
            float sum = 0;
            for (int p = 0; p < k; p++) {
                sum = Math.fma(xs.getAtIndex(F32, xAt + p * xStride), ms.getAtIndex(F32, matAt + p * kStride + j * jStride), sum);
            }
            out.setAtIndex(F32, outAt + j, sum);
        }
    }
}
