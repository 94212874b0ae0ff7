package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;

import java.util.Arrays;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * PyTorch matmul computed naively in double (integers in wrapping long) from the
 * operands' values, with an error bound per element for checking a float kernel.
 */
final class MatMulReference {
    private MatMulReference() {}

    /** Expected shape and values; {@code absSums[i]} is sum_k |a_k b_k| of element i, the scale of its rounding error. */
    record Expected(Shape shape, double[] values, double[] absSums, long[] exact, int k) {}

    static Expected of(Tensor a, Tensor b) {
        double[] av = TestTensors.values(a), bv = TestTensors.values(b);
        int[] as = a.shape().dims(), bs = b.shape().dims();
        int[] a2 = as.length == 1 ? new int[] {1, as[0]} : as;
        int[] b2 = bs.length == 1 ? new int[] {bs[0], 1} : bs;
        int m = a2[a2.length - 2], k = a2[a2.length - 1], n = b2[b2.length - 1];
        int[] batchA = Arrays.copyOf(a2, a2.length - 2), batchB = Arrays.copyOf(b2, b2.length - 2);
        int[] batch = broadcast(batchA, batchB);
        int[] outDims = Arrays.copyOf(batch, batch.length + (as.length >= 2 ? 1 : 0) + (bs.length >= 2 ? 1 : 0));
        if (as.length >= 2) outDims[batch.length] = m;
        if (bs.length >= 2) outDims[outDims.length - 1] = n;
        long batchCount = Shape.of(batch).numel();
        int size = Math.toIntExact(batchCount * m * n);
        double[] values = new double[size], absSums = new double[size];
        long[] exact = new long[size];
        for (long bi = 0; bi < batchCount; bi++) {
            int[] idx = TestTensors.unravel(bi, batch);
            long aBase = TestTensors.ravelBroadcast(idx, batchA) * m * k;
            long bBase = TestTensors.ravelBroadcast(idx, batchB) * k * n;
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double sum = 0, abs = 0;
                    long integer = 0;
                    for (int p = 0; p < k; p++) {
                        double x = av[(int) (aBase + (long) i * k + p)], y = bv[(int) (bBase + (long) p * n + j)];
                        sum += x * y;
                        abs += Math.abs(x * y);
                        integer += (long) x * (long) y;
                    }
                    int o = (int) ((bi * m + i) * n + j);
                    values[o] = sum;
                    absSums[o] = abs;
                    exact[o] = integer;
                }
            }
        }
        return new Expected(Shape.of(outDims), values, absSums, exact, k);
    }

    private static int[] broadcast(int[] x, int[] y) {
        int rank = Math.max(x.length, y.length);
        int[] out = new int[rank];
        for (int i = 1; i <= rank; i++) {
            int dx = i <= x.length ? x[x.length - i] : 1, dy = i <= y.length ? y[y.length - i] : 1;
            out[rank - i] = dx == 1 ? dy : dx;
        }
        return out;
    }

    /**
     * Checks {@code actual} against {@code e}. Floats: a sum of K products rounded at
     * each step errs by at most about K u sum|a_k b_k| (u the unit roundoff of the
     * accumulation type; float32 for the half types), whatever the summation order;
     * (K + 2) leaves room for the final rounding. Half types add the rounding of the
     * result to the output type (half an ulp, relative) and, for float16, one
     * subnormal step. NaN must stay NaN and infinities exact. Integers are exact,
     * wrapping like Java.
     */
    static void assertMatches(String what, Expected e, Tensor actual) {
        if (!actual.shape().equals(e.shape())) fail(what + ": shape " + actual.shape() + ", expected " + e.shape());
        DType t = actual.dtype();
        double[] got = TestTensors.values(actual);
        for (int i = 0; i < got.length; i++) {
            double want = e.values()[i], a = got[i];
            boolean ok;
            double tol = 0;
            if (t.isInteger() && t.byteSize() < 8) {
                want = TestTensors.wrap(t, e.exact()[i]);
                ok = a == want;
            } else if (t == DType.INT64 || t == DType.UINT64) {
                want = e.exact()[i];
                ok = actual.storage().segment().getAtIndex(java.lang.foreign.ValueLayout.JAVA_LONG, actual.elementOffset(i)) == e.exact()[i];
            } else if (Double.isNaN(want)) {
                ok = Double.isNaN(a);
            } else if (Double.isInfinite(want)) {
                ok = a == want;
            } else {
                double accumulationUlp = t == DType.FLOAT64 ? 0x1p-53 : 0x1p-24;
                tol = (e.k() + 2) * accumulationUlp * e.absSums()[i];
                if (t == DType.FLOAT16) tol = 2 * tol + 0x1p-11 * Math.abs(want) + 0x1p-24;
                if (t == DType.BFLOAT16) tol = 2 * tol + 0x1p-8 * Math.abs(want);
                ok = Math.abs(a - want) <= tol;
            }
            if (!ok) {
                fail(what + ": element " + i + " (" + Arrays.toString(TestTensors.unravel(i, e.shape().dims())) + ") of "
                        + e.shape() + " is " + a + ", expected " + want + " (tolerance " + tol + ", K " + e.k() + ")");
            }
        }
    }
}
