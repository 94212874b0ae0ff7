package dev.kiln.npu.kernels.attention;

import dev.kiln.npu.kernels.Lanes;
import dev.kiln.npu.kernels.VectorMath;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * The two products of attention for a few query rows (decode: one position's query heads)
 * with head elements in vector lanes: scores of query rows against key rows, and weighted
 * sums of value rows. Query and accumulator rows are float arrays; key and value rows are
 * read from a segment at given byte offsets, wherever they lie (a block table's slots or an
 * SRAM tile). Rows hold a whole number of vectors ({@code width}, a multiple of
 * {@link #LANES}), so no load is masked. Query-in-lanes kernels waste most lanes on so few
 * rows; here every lane works, and the lanes of a score are added for 16 keys together.
 *
 * <p>Each product's additions are in a fixed order (per lane across the row, then the
 * lanes by a fixed tree), the same interpreted and compiled. One instance per thread: it
 * holds scratch.
 */
public final class RowProducts {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Floats per vector: row widths are multiples of it. */
    public static final int LANES = S.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT.withOrder(ORDER);

    /** Floats of an instance's scratch, for SRAM budgets. */
    public static final int SCRATCH_FLOATS = 4 * LANES * LANES;

    /** Four query rows' per-key lane partials of their scores, {@code [row][key][LANES]}, summed by {@link Lanes#transposedSums}. */
    private final float[] partials = new float[SCRATCH_FLOATS];

    /**
     * {@code scores[scoresAt + r * stride + k] = q[qAt + r * width ..] . key k} for query rows
     * {@code r < rows} and keys {@code k < n} at {@code rowByte[k]} in {@code keys}. Writes
     * whole vectors of keys: {@code stride} is at least {@code n} rounded up to {@link #LANES}.
     */
    public void scores(float[] q, int qAt, int rows, int width, MemorySegment keys, long[] rowByte, int n, float[] scores,
                       int scoresAt, int stride) {
        for (int k0 = 0; k0 < n; k0 += LANES) {
            int nk = Math.min(LANES, n - k0), r = 0;
            for (; r + 4 <= rows; r += 4) {
                int k = 0;
                for (; k + 4 <= nk; k += 4) dots4x4(q, qAt + r * width, width, keys, rowByte, k0, k);
                for (; k < nk; k++) dots4(q, qAt + r * width, width, keys, rowByte[k0 + k], k);
                for (int i = 0; i < 4; i++) {
                    int p = i * LANES * LANES;
                    Arrays.fill(partials, p + nk * LANES, p + LANES * LANES, 0f);
                    Lanes.transposedSums(partials, p).intoArray(scores, scoresAt + (r + i) * stride + k0);
                }
            }
            for (; r < rows; r++) {
                int k = 0;
                for (; k + 4 <= nk; k += 4) dots1x4(q, qAt + r * width, width, keys, rowByte, k0, k);
                for (; k < nk; k++) dot(q, qAt + r * width, width, keys, rowByte[k0 + k], k);
                Arrays.fill(partials, nk * LANES, LANES * LANES, 0f);
                Lanes.transposedSums(partials, 0).intoArray(scores, scoresAt + r * stride + k0);
            }
        }
    }

    /**
     * The lane partials of four query rows (from q0, width apart) against keys k .. k+3 of the
     * group starting at {@code k0}: sixteen accumulators, each query and key vector loaded once
     * for four products.
     */
    private void dots4x4(float[] q, int q0, int width, MemorySegment keys, long[] rowByte, int k0, int k) {
        FloatVector s00 = FloatVector.zero(S), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
        FloatVector s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
        long b0 = rowByte[k0 + k], b1 = rowByte[k0 + k + 1], b2 = rowByte[k0 + k + 2], b3 = rowByte[k0 + k + 3];
        int q1 = q0 + width, q2 = q1 + width, q3 = q2 + width;
        for (int i = 0; i < width; i += LANES) {
            long lane = (long) i * Float.BYTES;
            FloatVector k0v = FloatVector.fromMemorySegment(S, keys, b0 + lane, ORDER), k1v = FloatVector.fromMemorySegment(S, keys, b1 + lane, ORDER);
            FloatVector k2v = FloatVector.fromMemorySegment(S, keys, b2 + lane, ORDER), k3v = FloatVector.fromMemorySegment(S, keys, b3 + lane, ORDER);
            FloatVector x = FloatVector.fromArray(S, q, q0 + i);
            s00 = x.fma(k0v, s00);
            s01 = x.fma(k1v, s01);
            s02 = x.fma(k2v, s02);
            s03 = x.fma(k3v, s03);
            x = FloatVector.fromArray(S, q, q1 + i);
            s10 = x.fma(k0v, s10);
            s11 = x.fma(k1v, s11);
            s12 = x.fma(k2v, s12);
            s13 = x.fma(k3v, s13);
            x = FloatVector.fromArray(S, q, q2 + i);
            s20 = x.fma(k0v, s20);
            s21 = x.fma(k1v, s21);
            s22 = x.fma(k2v, s22);
            s23 = x.fma(k3v, s23);
            x = FloatVector.fromArray(S, q, q3 + i);
            s30 = x.fma(k0v, s30);
            s31 = x.fma(k1v, s31);
            s32 = x.fma(k2v, s32);
            s33 = x.fma(k3v, s33);
        }
        int at = k * LANES, row = LANES * LANES;
        s00.intoArray(partials, at);
        s01.intoArray(partials, at + LANES);
        s02.intoArray(partials, at + 2 * LANES);
        s03.intoArray(partials, at + 3 * LANES);
        s10.intoArray(partials, row + at);
        s11.intoArray(partials, row + at + LANES);
        s12.intoArray(partials, row + at + 2 * LANES);
        s13.intoArray(partials, row + at + 3 * LANES);
        s20.intoArray(partials, 2 * row + at);
        s21.intoArray(partials, 2 * row + at + LANES);
        s22.intoArray(partials, 2 * row + at + 2 * LANES);
        s23.intoArray(partials, 2 * row + at + 3 * LANES);
        s30.intoArray(partials, 3 * row + at);
        s31.intoArray(partials, 3 * row + at + LANES);
        s32.intoArray(partials, 3 * row + at + 2 * LANES);
        s33.intoArray(partials, 3 * row + at + 3 * LANES);
    }

    /** The lane partials of query rows at q0, q0 + width, ... (four) against the key row at {@code byteAt}, each key vector loaded once. */
    private void dots4(float[] q, int q0, int width, MemorySegment key, long byteAt, int k) {
        FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
        int q1 = q0 + width, q2 = q1 + width, q3 = q2 + width;
        for (int i = 0; i < width; i += LANES) {
            FloatVector kv = FloatVector.fromMemorySegment(S, key, byteAt + (long) i * Float.BYTES, ORDER);
            s0 = FloatVector.fromArray(S, q, q0 + i).fma(kv, s0);
            s1 = FloatVector.fromArray(S, q, q1 + i).fma(kv, s1);
            s2 = FloatVector.fromArray(S, q, q2 + i).fma(kv, s2);
            s3 = FloatVector.fromArray(S, q, q3 + i).fma(kv, s3);
        }
        int at = k * LANES, row = LANES * LANES;
        s0.intoArray(partials, at);
        s1.intoArray(partials, at + row);
        s2.intoArray(partials, at + 2 * row);
        s3.intoArray(partials, at + 3 * row);
    }

    /** As {@link #dots4x4} for one query row: each of its vectors loaded once for four keys. */
    private void dots1x4(float[] q, int qAt, int width, MemorySegment keys, long[] rowByte, int k0, int k) {
        FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
        long b0 = rowByte[k0 + k], b1 = rowByte[k0 + k + 1], b2 = rowByte[k0 + k + 2], b3 = rowByte[k0 + k + 3];
        for (int i = 0; i < width; i += LANES) {
            long lane = (long) i * Float.BYTES;
            FloatVector x = FloatVector.fromArray(S, q, qAt + i);
            s0 = x.fma(FloatVector.fromMemorySegment(S, keys, b0 + lane, ORDER), s0);
            s1 = x.fma(FloatVector.fromMemorySegment(S, keys, b1 + lane, ORDER), s1);
            s2 = x.fma(FloatVector.fromMemorySegment(S, keys, b2 + lane, ORDER), s2);
            s3 = x.fma(FloatVector.fromMemorySegment(S, keys, b3 + lane, ORDER), s3);
        }
        int at = k * LANES;
        s0.intoArray(partials, at);
        s1.intoArray(partials, at + LANES);
        s2.intoArray(partials, at + 2 * LANES);
        s3.intoArray(partials, at + 3 * LANES);
    }

    /** As {@link #dots4} for one query row. Vectors leave through the scratch, not a return value, which would box them if not inlined. */
    private void dot(float[] q, int qAt, int width, MemorySegment key, long byteAt, int k) {
        FloatVector s = FloatVector.zero(S);
        for (int i = 0; i < width; i += LANES) {
            s = FloatVector.fromArray(S, q, qAt + i).fma(FloatVector.fromMemorySegment(S, key, byteAt + (long) i * Float.BYTES, ORDER), s);
        }
        s.intoArray(partials, k * LANES);
    }

    /**
     * {@code acc[accAt + r * width ..] += sum over k < n of weights[weightsAt + r * stride + k]
     * times value row k} (at {@code rowByte[k]} in {@code values}), for rows {@code r < rows}.
     * A vector of four rows' accumulators stays in registers across the keys, each value
     * vector loaded once. With {@code skipZeros}, a zero weight adds nothing instead of
     * multiplying its value, so a NaN or infinite value behind it never reaches the row.
     */
    public void accumulate(float[] acc, int accAt, int rows, int width, MemorySegment values, long[] rowByte, int n, float[] weights,
                           int weightsAt, int stride, boolean skipZeros) {
        int r = 0;
        for (; r + 4 <= rows; r += 4) {
            accumulate4(acc, accAt + r * width, width, values, rowByte, n, weights, weightsAt + r * stride, stride, skipZeros);
        }
        for (; r < rows; r++) accumulate1(acc, accAt + r * width, width, values, rowByte, n, weights, weightsAt + r * stride, skipZeros);
    }

    private static void accumulate4(float[] acc, int a0, int width, MemorySegment values, long[] rowByte, int n, float[] weights, int w0,
                                    int stride, boolean skipZeros) {
        int a1 = a0 + width, a2 = a1 + width, a3 = a2 + width, w1 = w0 + stride, w2 = w1 + stride, w3 = w2 + stride;
        for (int i = 0; i < width; i += LANES) {
            FloatVector c0 = FloatVector.fromArray(S, acc, a0 + i), c1 = FloatVector.fromArray(S, acc, a1 + i);
            FloatVector c2 = FloatVector.fromArray(S, acc, a2 + i), c3 = FloatVector.fromArray(S, acc, a3 + i);
            long lane = (long) i * Float.BYTES;
            for (int k = 0; k < n; k++) {
                FloatVector v = FloatVector.fromMemorySegment(S, values, rowByte[k] + lane, ORDER);
                float p0 = weights[w0 + k], p1 = weights[w1 + k], p2 = weights[w2 + k], p3 = weights[w3 + k];
                if (!skipZeros || p0 != 0f) c0 = v.fma(FloatVector.broadcast(S, p0), c0);
                if (!skipZeros || p1 != 0f) c1 = v.fma(FloatVector.broadcast(S, p1), c1);
                if (!skipZeros || p2 != 0f) c2 = v.fma(FloatVector.broadcast(S, p2), c2);
                if (!skipZeros || p3 != 0f) c3 = v.fma(FloatVector.broadcast(S, p3), c3);
            }
            c0.intoArray(acc, a0 + i);
            c1.intoArray(acc, a1 + i);
            c2.intoArray(acc, a2 + i);
            c3.intoArray(acc, a3 + i);
        }
    }

    private static void accumulate1(float[] acc, int a, int width, MemorySegment values, long[] rowByte, int n, float[] weights, int w,
                                    boolean skipZeros) {
        for (int i = 0; i < width; i += LANES) {
            FloatVector c = FloatVector.fromArray(S, acc, a + i);
            long lane = (long) i * Float.BYTES;
            for (int k = 0; k < n; k++) {
                float p = weights[w + k];
                if (!skipZeros || p != 0f) c = FloatVector.fromMemorySegment(S, values, rowByte[k] + lane, ORDER).fma(FloatVector.broadcast(S, p), c);
            }
            c.intoArray(acc, a + i);
        }
    }

    /** Replaces {@code s[at..at+n)} by the softmax weights exp(s - shift) and returns their sum (added as {@link Lanes#treeSum} does). */
    public static float exponentiate(float[] s, int at, int n, float shift) {
        FloatVector shiftV = FloatVector.broadcast(S, shift), total = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, s, at + i).sub(shiftV));
            e.intoArray(s, at + i);
            total = total.add(e);
        }
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, s, at + i, m).sub(shiftV));
            e.intoArray(s, at + i, m);
            total = total.add(e.blend(0f, m.not()));
        }
        return Lanes.treeSum(total);
    }

    // ---------------------------------------------------------------- scalar twins
    // Each the vector method of the same name a float at a time: the same operations in the same
    // order for every result, so the same bits (RowProductsProperties checks), for the first calls
    // of a fresh JVM, where the vector code runs interpreted (see ScalarTwin).

    /** {@link #scores}' twin: each lane's fma chain across the row, then the lanes added as {@link Lanes#transposedSums} does. */
    public void scoresScalar(float[] q, int qAt, int rows, int width, MemorySegment keys, long[] rowByte, int n, float[] scores,
                             int scoresAt, int stride) {
        float[] lanes = partials;
        for (int r = 0; r < rows; r++) {
            for (int k = 0; k < n; k++) {
                for (int l = 0; l < LANES; l++) {
                    float p = 0f;
                    for (int i = l; i < width; i += LANES) p = Math.fma(q[qAt + r * width + i], keys.get(FLOAT, rowByte[k] + (long) i * Float.BYTES), p);
                    lanes[l] = p;
                }
                scores[scoresAt + r * stride + k] = Lanes.transposedSumOf(lanes);
            }
        }
    }

    /** {@link #accumulate}'s twin: each accumulator's fma chain across the keys. */
    public static void accumulateScalar(float[] acc, int accAt, int rows, int width, MemorySegment values, long[] rowByte, int n,
                                        float[] weights, int weightsAt, int stride, boolean skipZeros) {
        for (int r = 0; r < rows; r++) {
            int a = accAt + r * width, w = weightsAt + r * stride;
            for (int i = 0; i < width; i++) {
                float c = acc[a + i];
                for (int k = 0; k < n; k++) {
                    float p = weights[w + k];
                    if (!skipZeros || p != 0f) c = Math.fma(values.get(FLOAT, rowByte[k] + (long) i * Float.BYTES), p, c);
                }
                acc[a + i] = c;
            }
        }
    }

    /** {@link #exponentiate}'s twin: lane sums in key order, then the lanes added as {@link Lanes#treeSum} does. */
    public float exponentiateScalar(float[] s, int at, int n, float shift) {
        float[] total = partials;
        Arrays.fill(total, 0, LANES, 0f);
        for (int j = 0; j < n; j++) {
            float e = VectorMath.exp(s[at + j] - shift);
            s[at + j] = e;
            total[j % LANES] += e;
        }
        return Lanes.treeSumOf(total);
    }
}
