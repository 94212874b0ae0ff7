package dev.kiln.npu.kernels.attention;

import dev.kiln.npu.kernels.Lanes;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.npu.Parallel;
import dev.kiln.ops.Op;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * Attention computed in float32 (for float32, float16 and bfloat16 inputs) with an
 * online softmax: each unit takes one slice and a block of query rows and walks the
 * keys in blocks, keeping per row a running maximum, a running sum and an output
 * accumulator that is rescaled whenever the maximum grows. Scores exist only for one
 * block at a time, on the heap of the worker.
 *
 * <p>Each worker packs the keys of a slice transposed into panels of {@link #PANEL}
 * keys ({@code [panel][e][lane]}), so scores are outer products over e with no
 * horizontal reductions, and the values row-major padded to whole vectors, so
 * value sizes of any width need no masked tails. Packing is redone only when the
 * slice's keys or values change (consecutive units share them, and under GQA so do
 * consecutive heads).
 *
 * <p>Masked scores are selected to -inf rather than computed with, so NaN or
 * infinite keys there never reach the softmax. Masked weights are exactly zero; when
 * a slice's values hold NaN or infinity, zero weights are skipped instead of
 * multiplied, so those values never reach the output either.
 */
public final class FloatAttention {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = SPECIES.length();
    /** Keys per packed panel: the width, in two vectors, of the score micro-kernel. */
    private static final int PANEL = 2 * LANES;
    /** Query rows per micro-kernel call. */
    private static final int GROUP = 4;
    /** Query rows per unit of work. */
    private static final int QUERY_BLOCK = 64;
    /** Target size in floats of one key block of packed keys, so it stays in L1 while every query row uses it. */
    private static final int KEY_BLOCK_FLOATS = 4096;
    private static final int MAX_KEY_BLOCK_PANELS = 8;
    private static final float NEG_INF = Float.NEGATIVE_INFINITY;

    private final AttentionGeometry g;
    private final int headDim, keyBlock, valuePad;
    private final float queryScale, keyScale;
    private final float[] keysT, values, queries, scores, bias, acc, rowMax, rowSum;
    private long packedKeys = -1, packedValues = -1;
    private boolean valuesFinite;

    private FloatAttention(AttentionGeometry g) {
        this.g = g;
        this.headDim = g.headDim;
        this.keyBlock = PANEL * Math.clamp(KEY_BLOCK_FLOATS / ((long) PANEL * Math.max(headDim, 1)), 1, MAX_KEY_BLOCK_PANELS);
        this.valuePad = roundUp(g.valueDim, LANES);
        this.queryScale = (float) g.queryScale;
        this.keyScale = (float) g.keyScale;
        this.keysT = new float[Math.multiplyExact(roundUp(g.keys, PANEL), headDim)];
        this.values = new float[Math.multiplyExact(g.keys, valuePad)];
        this.queries = new float[QUERY_BLOCK * headDim];
        this.scores = new float[QUERY_BLOCK * keyBlock];
        this.bias = g.mask != null ? new float[QUERY_BLOCK * keyBlock] : null;
        this.acc = new float[QUERY_BLOCK * valuePad];
        this.rowMax = new float[QUERY_BLOCK];
        this.rowSum = new float[QUERY_BLOCK];
    }

    /** Attention of float32, float16 or bfloat16 inputs into the fresh contiguous {@code out}. */
    public static void run(Op.ScaledDotProductAttention op, Tensor[] in, Tensor out) {
        AttentionGeometry g = new AttentionGeometry(op, in, out, QUERY_BLOCK);
        Parallel.forRange(g.units(), g.cost(), (from, to) -> {
            FloatAttention worker = new FloatAttention(g);
            for (long u = from; u < to; u++) worker.unit(g.sliceOf(u), g.queryStartOf(u));
        });
    }

    private void unit(int slice, int firstRow) {
        int rows = Math.min(QUERY_BLOCK, g.queries - firstRow);
        packKeys(slice);
        packValues(slice);
        long queryOffset = g.queryOffset(slice);
        for (int r = 0; r < rows; r++) {
            Rows.loadFloats(g.query.dtype(), g.query.storage().segment(), queryOffset + (firstRow + r) * g.queryRowStride,
                    g.queryColStride, headDim, queries, r * headDim, 1, queryScale);
        }
        Arrays.fill(rowMax, NEG_INF);
        Arrays.fill(rowSum, 0f);
        Arrays.fill(acc, 0f);
        int keyEnd = g.visibleKeys(firstRow + rows - 1);
        for (int firstKey = 0; firstKey < keyEnd; firstKey += keyBlock) {
            int blockKeys = Math.min(keyBlock, keyEnd - firstKey);
            scoreBlock(rows, firstRow, firstKey, blockKeys);
            if (bias != null) loadBias(slice, rows, firstRow, firstKey, blockKeys);
            for (int r = 0; r < rows; r++) softmaxRow(r, visibleInBlock(firstRow + r, firstKey, blockKeys), blockKeys);
            accumulateBlock(rows, firstRow, firstKey, blockKeys);
        }
        finish(slice, rows, firstRow);
    }

    /** Keys of the block [firstKey, firstKey + blockKeys) that query row {@code row} sees (0 when none). */
    private int visibleInBlock(int row, int firstKey, int blockKeys) {
        return Math.clamp(g.visibleKeys(row) - firstKey, 0, blockKeys);
    }

    // ------------------------------------------------------------------ packing

    private void packKeys(int slice) {
        long offset = g.keyOffset(slice);
        if (offset == packedKeys) return;
        for (int j = 0; j < g.keys; j++) {
            int panelBase = (j / PANEL) * headDim * PANEL + j % PANEL;
            Rows.loadFloats(g.key.dtype(), g.key.storage().segment(), offset + j * g.keyRowStride, g.keyColStride,
                    headDim, keysT, panelBase, PANEL, keyScale);
        }
        packedKeys = offset;
    }

    private void packValues(int slice) {
        long offset = g.valueOffset(slice);
        if (offset == packedValues) return;
        for (int j = 0; j < g.keys; j++) {
            Rows.loadFloats(g.value.dtype(), g.value.storage().segment(), offset + j * g.valueRowStride, g.valueColStride,
                    g.valueDim, values, j * valuePad, 1, 1f);
        }
        valuesFinite = true;
        for (float x : values) valuesFinite &= Float.isFinite(x);
        packedValues = offset;
    }

    private void loadBias(int slice, int rows, int firstRow, int firstKey, int blockKeys) {
        long offset = g.maskOffset(slice) + firstKey * g.maskColStride;
        // A mask broadcast over query rows (a padding mask) is read once per block.
        int distinctRows = g.maskRowStride == 0 ? 1 : rows;
        for (int r = 0; r < distinctRows; r++) {
            Rows.loadBias(g.mask.dtype(), g.mask.storage().segment(), offset + (firstRow + r) * g.maskRowStride,
                    g.maskColStride, blockKeys, bias, r * keyBlock);
        }
    }

    // ------------------------------------------------------------------ scores

    private void scoreBlock(int rows, int firstRow, int firstKey, int blockKeys) {
        int firstPanel = firstKey / PANEL;
        int r = 0;
        for (; r + GROUP <= rows; r += GROUP) {
            int panels = panelsFor(visibleInBlock(firstRow + r + GROUP - 1, firstKey, blockKeys));
            for (int p = 0; p < panels; p++) scores4(r, firstPanel + p, p * PANEL);
        }
        for (; r < rows; r++) {
            int panels = panelsFor(visibleInBlock(firstRow + r, firstKey, blockKeys));
            for (int p = 0; p < panels; p++) scores1(r, firstPanel + p, p * PANEL);
        }
    }

    private static int panelsFor(int keys) { return (keys + PANEL - 1) / PANEL; }

    /** Scores of query rows row..row+3 against the PANEL keys of one panel. */
    private void scores4(int row, int panel, int column) {
        FloatVector a0 = FloatVector.zero(SPECIES), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
        int k = panel * headDim * PANEL;
        int q = row * headDim;
        for (int e = 0; e < headDim; e++, k += PANEL, q++) {
            FloatVector lo = FloatVector.fromArray(SPECIES, keysT, k);
            FloatVector hi = FloatVector.fromArray(SPECIES, keysT, k + LANES);
            FloatVector x0 = FloatVector.broadcast(SPECIES, queries[q]);
            a0 = lo.fma(x0, a0);
            b0 = hi.fma(x0, b0);
            FloatVector x1 = FloatVector.broadcast(SPECIES, queries[q + headDim]);
            a1 = lo.fma(x1, a1);
            b1 = hi.fma(x1, b1);
            FloatVector x2 = FloatVector.broadcast(SPECIES, queries[q + 2 * headDim]);
            a2 = lo.fma(x2, a2);
            b2 = hi.fma(x2, b2);
            FloatVector x3 = FloatVector.broadcast(SPECIES, queries[q + 3 * headDim]);
            a3 = lo.fma(x3, a3);
            b3 = hi.fma(x3, b3);
        }
        int s = row * keyBlock + column;
        a0.intoArray(scores, s);
        b0.intoArray(scores, s + LANES);
        a1.intoArray(scores, s + keyBlock);
        b1.intoArray(scores, s + keyBlock + LANES);
        a2.intoArray(scores, s + 2 * keyBlock);
        b2.intoArray(scores, s + 2 * keyBlock + LANES);
        a3.intoArray(scores, s + 3 * keyBlock);
        b3.intoArray(scores, s + 3 * keyBlock + LANES);
    }

    private void scores1(int row, int panel, int column) {
        FloatVector a = FloatVector.zero(SPECIES), b = a;
        int k = panel * headDim * PANEL;
        int q = row * headDim;
        for (int e = 0; e < headDim; e++, k += PANEL) {
            FloatVector x = FloatVector.broadcast(SPECIES, queries[q + e]);
            a = FloatVector.fromArray(SPECIES, keysT, k).fma(x, a);
            b = FloatVector.fromArray(SPECIES, keysT, k + LANES).fma(x, b);
        }
        int s = row * keyBlock + column;
        a.intoArray(scores, s);
        b.intoArray(scores, s + LANES);
    }

    // ------------------------------------------------------------------ online softmax

    /**
     * Masks row r's scores of this block, folds them into the running maximum and sum,
     * rescales the accumulator, and leaves the unnormalised weights in {@code scores}
     * (zero past the visible keys, so the grouped accumulation may read them).
     */
    private void softmaxRow(int r, int visible, int blockKeys) {
        int base = r * keyBlock, width = roundUp(blockKeys, LANES);
        if (visible == 0) {
            Arrays.fill(scores, base, base + width, 0f);
            return;
        }
        int biasBase = g.maskRowStride == 0 ? 0 : base;
        FloatVector negInf = FloatVector.broadcast(SPECIES, NEG_INF);
        FloatVector max = negInf;
        for (int c = 0; c < width; c += LANES) {
            FloatVector x = FloatVector.fromArray(SPECIES, scores, base + c);
            if (bias != null) {
                FloatVector b = FloatVector.fromArray(SPECIES, bias, biasBase + c);
                x = x.add(b).blend(negInf, b.eq(NEG_INF));
            }
            if (c + LANES > visible) x = x.blend(negInf, SPECIES.indexInRange(c, visible).not());
            x.intoArray(scores, base + c);
            max = max.max(x);
        }
        float previous = rowMax[r];
        float next = Math.max(previous, max.reduceLanes(VectorOperators.MAX));
        if (next == NEG_INF) {
            // Nothing visible yet: the weights are all zero and the running state stays as it is.
            Arrays.fill(scores, base, base + width, 0f);
            return;
        }
        FloatVector shift = FloatVector.broadcast(SPECIES, next);
        FloatVector sum = FloatVector.zero(SPECIES);
        for (int c = 0; c < width; c += LANES) {
            // VectorMath.exp, not lanewise(EXP): the library's EXP differs between the interpreter and C2.
            FloatVector p = VectorMath.exp(FloatVector.fromArray(SPECIES, scores, base + c).sub(shift));
            p.intoArray(scores, base + c);
            sum = sum.add(p);
        }
        float correction = (float) Math.exp(previous - next);
        rowMax[r] = next;
        rowSum[r] = rowSum[r] * correction + Lanes.sum(sum);
        if (correction != 1f) {
            FloatVector f = FloatVector.broadcast(SPECIES, correction);
            for (int c = r * valuePad, end = c + valuePad; c < end; c += LANES) {
                FloatVector.fromArray(SPECIES, acc, c).mul(f).intoArray(acc, c);
            }
        }
    }

    // ------------------------------------------------------------------ weights times values

    private void accumulateBlock(int rows, int firstRow, int firstKey, int blockKeys) {
        int r = 0;
        if (valuesFinite) {
            // Zero weights times finite values add exact zeros: four rows can share each value load.
            for (; r + GROUP <= rows; r += GROUP) {
                int keys = visibleInBlock(firstRow + r + GROUP - 1, firstKey, blockKeys);
                int c = 0;
                for (; c + 2 * LANES <= valuePad; c += 2 * LANES) accumulate4Wide(r, firstKey, keys, c);
                if (c < valuePad) accumulate4(r, firstKey, keys, c);
            }
        }
        for (; r < rows; r++) accumulate1(r, firstKey, visibleInBlock(firstRow + r, firstKey, blockKeys));
    }

    /** Rows row..row+3, value columns [column, column + 2 LANES). */
    private void accumulate4Wide(int row, int firstKey, int keys, int column) {
        int o = row * valuePad + column;
        FloatVector a0 = FloatVector.fromArray(SPECIES, acc, o), b0 = FloatVector.fromArray(SPECIES, acc, o + LANES);
        FloatVector a1 = FloatVector.fromArray(SPECIES, acc, o + valuePad), b1 = FloatVector.fromArray(SPECIES, acc, o + valuePad + LANES);
        FloatVector a2 = FloatVector.fromArray(SPECIES, acc, o + 2 * valuePad), b2 = FloatVector.fromArray(SPECIES, acc, o + 2 * valuePad + LANES);
        FloatVector a3 = FloatVector.fromArray(SPECIES, acc, o + 3 * valuePad), b3 = FloatVector.fromArray(SPECIES, acc, o + 3 * valuePad + LANES);
        int w = row * keyBlock;
        int v = firstKey * valuePad + column;
        for (int j = 0; j < keys; j++, v += valuePad) {
            FloatVector lo = FloatVector.fromArray(SPECIES, values, v);
            FloatVector hi = FloatVector.fromArray(SPECIES, values, v + LANES);
            FloatVector p0 = FloatVector.broadcast(SPECIES, scores[w + j]);
            a0 = lo.fma(p0, a0);
            b0 = hi.fma(p0, b0);
            FloatVector p1 = FloatVector.broadcast(SPECIES, scores[w + keyBlock + j]);
            a1 = lo.fma(p1, a1);
            b1 = hi.fma(p1, b1);
            FloatVector p2 = FloatVector.broadcast(SPECIES, scores[w + 2 * keyBlock + j]);
            a2 = lo.fma(p2, a2);
            b2 = hi.fma(p2, b2);
            FloatVector p3 = FloatVector.broadcast(SPECIES, scores[w + 3 * keyBlock + j]);
            a3 = lo.fma(p3, a3);
            b3 = hi.fma(p3, b3);
        }
        a0.intoArray(acc, o);
        b0.intoArray(acc, o + LANES);
        a1.intoArray(acc, o + valuePad);
        b1.intoArray(acc, o + valuePad + LANES);
        a2.intoArray(acc, o + 2 * valuePad);
        b2.intoArray(acc, o + 2 * valuePad + LANES);
        a3.intoArray(acc, o + 3 * valuePad);
        b3.intoArray(acc, o + 3 * valuePad + LANES);
    }

    /** Rows row..row+3, value columns [column, column + LANES). */
    private void accumulate4(int row, int firstKey, int keys, int column) {
        int o = row * valuePad + column;
        FloatVector a0 = FloatVector.fromArray(SPECIES, acc, o);
        FloatVector a1 = FloatVector.fromArray(SPECIES, acc, o + valuePad);
        FloatVector a2 = FloatVector.fromArray(SPECIES, acc, o + 2 * valuePad);
        FloatVector a3 = FloatVector.fromArray(SPECIES, acc, o + 3 * valuePad);
        int w = row * keyBlock;
        int v = firstKey * valuePad + column;
        for (int j = 0; j < keys; j++, v += valuePad) {
            FloatVector x = FloatVector.fromArray(SPECIES, values, v);
            a0 = x.fma(FloatVector.broadcast(SPECIES, scores[w + j]), a0);
            a1 = x.fma(FloatVector.broadcast(SPECIES, scores[w + keyBlock + j]), a1);
            a2 = x.fma(FloatVector.broadcast(SPECIES, scores[w + 2 * keyBlock + j]), a2);
            a3 = x.fma(FloatVector.broadcast(SPECIES, scores[w + 3 * keyBlock + j]), a3);
        }
        a0.intoArray(acc, o);
        a1.intoArray(acc, o + valuePad);
        a2.intoArray(acc, o + 2 * valuePad);
        a3.intoArray(acc, o + 3 * valuePad);
    }

    /** One row; zero weights are skipped, so masked NaN or infinite values never touch the accumulator. */
    private void accumulate1(int row, int firstKey, int keys) {
        int o = row * valuePad, w = row * keyBlock;
        for (int j = 0; j < keys; j++) {
            float p = scores[w + j];
            if (p == 0f) continue;
            FloatVector weight = FloatVector.broadcast(SPECIES, p);
            int v = (firstKey + j) * valuePad;
            for (int c = 0; c < valuePad; c += LANES) {
                FloatVector.fromArray(SPECIES, values, v + c).fma(weight, FloatVector.fromArray(SPECIES, acc, o + c)).intoArray(acc, o + c);
            }
        }
    }

    // ------------------------------------------------------------------ output

    /** Normalises each row by its sum; a row that saw no key (all masked) is zero, as PyTorch's safe softmax gives. */
    private void finish(int slice, int rows, int firstRow) {
        for (int r = 0; r < rows; r++) {
            int o = r * valuePad;
            if (rowMax[r] != NEG_INF) {
                FloatVector sum = FloatVector.broadcast(SPECIES, rowSum[r]);
                for (int c = 0; c < valuePad; c += LANES) FloatVector.fromArray(SPECIES, acc, o + c).div(sum).intoArray(acc, o + c);
            }
            Rows.storeFloats(g.out.dtype(), g.out.storage().segment(), g.outOffset(slice, firstRow + r), acc, o, g.valueDim);
        }
    }

    private static int roundUp(int n, int multiple) { return Math.ceilDiv(n, multiple) * multiple; }
}
