package dev.kiln.npu.kernels.gemm;

import dev.kiln.npu.kernels.Lanes;
import dev.kiln.npu.Parallel;
import dev.kiln.tensor.DType;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

import static dev.kiln.npu.kernels.gemm.FloatKernels.S;
import static dev.kiln.npu.kernels.gemm.FloatKernels.V;

/**
 * float32 products where one side is a single vector (M == 1, as in decoding one
 * token, or N == 1). Every matrix element is used once, so packing would only add
 * memory traffic: the matrix is read in place, a vector at a time along whichever of
 * its dimensions is contiguous.
 *
 * <p>The product is out[j] = sum_k x[k] * mat(k, j), with x the vector operand and
 * j running over N (M == 1) or over M (N == 1, where mat is A transposed).
 */
public final class FloatGemv {
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT;
    /** Outputs per unit of parallel work: four vectors, the accumulators of the column form. */
    private static final int BLOCK = 4 * V;

    private FloatGemv() {}

    /** Computes {@code p} if it is a float32 vector-matrix product and returns true; false leaves it untouched. */
    public static boolean tryCompute(GemmProblem p) {
        if (p.a().dtype() != DType.FLOAT32 || (p.m() != 1 && p.n() != 1)) return false;
        boolean rowVector = p.m() == 1;
        Operand x = rowVector ? p.a() : p.b(), mat = rowVector ? p.b() : p.a();
        long xStride = rowVector ? x.colStride() : x.rowStride();
        long kStride = rowVector ? mat.rowStride() : mat.colStride();
        int outputs = rowVector ? p.n() : p.m();
        // With one output the stride along j is never used: call it contiguous.
        long jStride = outputs == 1 ? 1 : rowVector ? mat.colStride() : mat.rowStride();
        int k = p.k();
        long blocks = (outputs + BLOCK - 1) / BLOCK;
        Parallel.forRange(p.batch() * blocks, p.flops() / 16, (from, to) -> {
            for (long u = from; u < to; u++) {
                int batch = (int) (u / blocks), j0 = (int) (u % blocks) * BLOCK, j1 = Math.min(outputs, j0 + BLOCK);
                long xAt = x.offsets()[batch], matAt = mat.offsets()[batch], outAt = p.outIndex(batch, 0);
                if (kStride == 1 && xStride == 1 && (jStride != 1 || outputs == 1)) {
                    dots(x.segment(), xAt, mat.segment(), matAt, jStride, k, j0, j1, p.out(), outAt);
                } else if (jStride == 1) {
                    columns(x.segment(), xAt, xStride, mat.segment(), matAt, kStride, k, j0, j1, p.out(), outAt);
                } else {
                    scalar(x.segment(), xAt, xStride, mat.segment(), matAt, kStride, jStride, k, j0, j1, p.out(), outAt);
                }
            }
        });
        return true;
    }

    /** mat is contiguous along j: accumulate x[k] * row k of mat, a vector of outputs at a time. */
    private static void columns(MemorySegment xs, long xAt, long xStride, MemorySegment ms, long matAt, long kStride,
                                int k, int j0, int j1, MemorySegment out, long outAt) {
        if (j1 - j0 == BLOCK) {
            FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0;
            for (int p = 0; p < k; p++) {
                FloatVector xp = FloatVector.broadcast(S, xs.getAtIndex(F32, xAt + p * xStride));
                long row = (matAt + p * kStride + j0) * Float.BYTES;
                c0 = xp.fma(FloatVector.fromMemorySegment(S, ms, row, ORDER), c0);
                c1 = xp.fma(FloatVector.fromMemorySegment(S, ms, row + V * Float.BYTES, ORDER), c1);
                c2 = xp.fma(FloatVector.fromMemorySegment(S, ms, row + 2L * V * Float.BYTES, ORDER), c2);
                c3 = xp.fma(FloatVector.fromMemorySegment(S, ms, row + 3L * V * Float.BYTES, ORDER), c3);
            }
            long o = (outAt + j0) * Float.BYTES;
            c0.intoMemorySegment(out, o, ORDER);
            c1.intoMemorySegment(out, o + V * Float.BYTES, ORDER);
            c2.intoMemorySegment(out, o + 2L * V * Float.BYTES, ORDER);
            c3.intoMemorySegment(out, o + 3L * V * Float.BYTES, ORDER);
            return;
        }
        for (int j = j0; j < j1; j += V) {
            VectorMask<Float> m = S.indexInRange(j, j1);
            FloatVector c = FloatVector.zero(S);
            for (int p = 0; p < k; p++) {
                FloatVector xp = FloatVector.broadcast(S, xs.getAtIndex(F32, xAt + p * xStride));
                c = xp.fma(FloatVector.fromMemorySegment(S, ms, (matAt + p * kStride + j) * Float.BYTES, ORDER, m), c);
            }
            c.intoMemorySegment(out, (outAt + j) * Float.BYTES, ORDER, m);
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

    /** Any other layout (strided, broadcast): one fused multiply-add per element. */
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
