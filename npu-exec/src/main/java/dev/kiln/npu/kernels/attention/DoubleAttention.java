package dev.kiln.npu.kernels.attention;

import dev.kiln.npu.Parallel;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * Attention for float64, computed in double one query row at a time: the row's
 * scores (one row, never the whole score matrix), soft-capped when asked, an exact
 * two-pass softmax, and the weighted sum of values. Split-KV does not apply: the
 * two-pass softmax over the whole row is what the float32 kernel's partitions equal. Masking follows the float32 kernel: masked scores are
 * selected to -inf, zero weights are skipped, a row with nothing visible is zero.
 */
public final class DoubleAttention {
    private static final int QUERY_BLOCK = 16;

    private final AttentionGeometry g;
    private final int headDim, valueDim;
    private final double[] keys, values, query, scores, bias, acc;
    private long packedKeys = -1, packedValues = -1;

    private DoubleAttention(AttentionGeometry g) {
        this.g = g;
        this.headDim = g.headDim;
        this.valueDim = g.valueDim;
        this.keys = new double[Math.multiplyExact(g.keys, headDim)];
        this.values = new double[Math.multiplyExact(g.keys, valueDim)];
        this.query = new double[headDim];
        this.scores = new double[g.keys];
        this.bias = g.mask != null ? new double[g.keys] : null;
        this.acc = new double[valueDim];
    }

    /** Attention of float64 inputs into {@code out} (fresh memory whose rows run contiguously). */
    public static void run(AttentionSpec spec, Tensor[] in, Tensor out) {
        AttentionGeometry g = new AttentionGeometry(spec, in, out, QUERY_BLOCK);
        Parallel.forRange(g.units(), g.cost(), (from, to) -> {
            DoubleAttention worker = new DoubleAttention(g);
            for (long u = from; u < to; u++) worker.unit(g.sliceOf(u), g.queryStartOf(u));
        });
    }

    private void unit(int slice, int firstRow) {
        pack(slice);
        for (int i = firstRow, end = Math.min(firstRow + QUERY_BLOCK, g.queries); i < end; i++) row(slice, i);
    }

    private void row(int slice, int i) {
        MemorySegment q = g.query.storage().segment();
        Rows.loadDoubles(q, g.queryOffset(slice) + i * g.queryRowStride, g.queryColStride, headDim, query, 0, 1, g.scale);
        int visible = g.visibleKeys(i);
        if (bias != null) {
            Rows.loadBias(g.mask.dtype(), g.mask.storage().segment(), g.maskOffset(slice) + i * g.maskRowStride,
                    g.maskColStride, visible, bias, 0);
        }
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < visible; j++) {
            double s = 0;
            for (int e = 0, k = j * headDim; e < headDim; e++, k++) s += query[e] * keys[k];
            if (g.softcap > 0) s = g.softcap * Math.tanh(s / g.softcap);
            if (bias != null) s = bias[j] == Double.NEGATIVE_INFINITY ? Double.NEGATIVE_INFINITY : s + bias[j];
            scores[j] = s;
            max = Math.max(max, s);
        }
        Arrays.fill(acc, 0);
        if (max != Double.NEGATIVE_INFINITY) {
            double sum = 0;
            for (int j = 0; j < visible; j++) {
                double p = Math.exp(scores[j] - max);
                sum += p;
                if (p == 0) continue;
                for (int c = 0, v = j * valueDim; c < valueDim; c++, v++) acc[c] += p * values[v];
            }
            for (int c = 0; c < valueDim; c++) acc[c] /= sum;
        }
        MemorySegment.copy(acc, 0, g.out.storage().segment(), ValueLayout.JAVA_DOUBLE, g.outOffset(slice, i) * 8, valueDim);
    }

    private void pack(int slice) {
        long keyOffset = g.keyOffset(slice), valueOffset = g.valueOffset(slice);
        if (keyOffset != packedKeys) {
            MemorySegment k = g.key.storage().segment();
            for (int j = 0; j < g.keys; j++) {
                Rows.loadDoubles(k, keyOffset + j * g.keyRowStride, g.keyColStride, headDim, keys, j * headDim, 1, 1);
            }
            packedKeys = keyOffset;
        }
        if (valueOffset != packedValues) {
            MemorySegment v = g.value.storage().segment();
            for (int j = 0; j < g.keys; j++) {
                Rows.loadDoubles(v, valueOffset + j * g.valueRowStride, g.valueColStride, valueDim, values, j * valueDim, 1, 1);
            }
            packedValues = valueOffset;
        }
    }
}
