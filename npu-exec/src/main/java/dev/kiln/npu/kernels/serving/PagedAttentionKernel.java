package dev.kiln.npu.kernels.serving;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.kernels.Lanes;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.ops.ServingKernels.AttentionParams;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * Attention of query rows over keys addressed through a block table at run time: key
 * {@code j} of a row's sequence lives in physical block {@code table.block(seq, j / BS)}
 * at slot {@code j % BS}. Each row sees one inclusive range of key positions (causal,
 * window and context bounds all reduce to a range), so keys outside it, including every
 * unreferenced cache slot, are never read. Softmax is online: tiles of scores raise the
 * running maximum, and the accumulators are rescaled only when it grows.
 *
 * <p>Work units are (query row, KV head): the G = H / Hkv query heads that share a KV head
 * read each key and value row while it is in cache.
 */
final class PagedAttentionKernel {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = S.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    /** Keys scored before one softmax update: bounds the scratch for ring buffers of any width. */
    private static final int TILE = 64;

    private PagedAttentionKernel() {}

    /** The physical block holding logical block {@code logicalBlock} of sequence {@code sequence}. */
    @FunctionalInterface
    interface BlockTable {
        int block(int sequence, int logicalBlock);
    }

    /**
     * Query row {@code r} belongs to sequence {@code rowSequence[r]} and sees key positions
     * {@code rowFirst[r] .. rowLast[r]} (empty when first > last: the row outputs zeros).
     */
    record Rows(int[] rowSequence, int[] rowFirst, int[] rowLast) {}

    static void run(Tensor query, Tensor keyCache, Tensor valueCache, BlockTable table, Rows rows, AttentionParams p,
                    Tensor out) {
        int tokens = query.size(0), heads = query.size(1), dim = query.size(2), kvHeads = keyCache.size(2);
        if (out.numel() == 0) return;
        int group = heads / kvHeads;
        long visible = 0;
        for (int r = 0; r < tokens; r++) visible += Math.max(0, rows.rowLast[r] - rows.rowFirst[r] + 1);
        long cost = visible * heads * dim * 4 + (long) tokens * heads * dim;
        Job job = new Job(CacheView.of(query), CacheView.of(keyCache), CacheView.of(valueCache), CacheView.of(out),
                table, rows, keyCache.size(1), kvHeads, group, dim, (float) p.scale(), p.softcap());
        Parallel.forRange((long) tokens * kvHeads, cost, (u0, u1) -> {
            Worker w = new Worker(job);
            for (long u = u0; u < u1; u++) w.unit((int) (u / kvHeads), (int) (u % kvHeads));
        });
    }

    private record Job(CacheView query, CacheView keys, CacheView values, CacheView out, BlockTable table, Rows rows,
                       int blockSize, int kvHeads, int group, int dim, float scale, double softcap) {}

    /** One thread's scratch; units run one after another on it. */
    private static final class Worker {
        private final Job job;
        private final int dim, group;
        private final float[] q, acc, scores, max, sum, keyRow, valueRow;
        /** Physical block and slot in it of each key of the current tile. */
        private final int[] blocks = new int[TILE], slots = new int[TILE];

        Worker(Job job) {
            this.job = job;
            this.dim = job.dim;
            this.group = job.group;
            q = new float[group * dim];
            acc = new float[group * dim];
            scores = new float[group * TILE];
            max = new float[group];
            sum = new float[group];
            keyRow = new float[dim];
            valueRow = new float[dim];
        }

        void unit(int row, int kvHead) {
            int first = job.rows.rowFirst[row], last = job.rows.rowLast[row], seq = job.rows.rowSequence[row];
            int headBase = kvHead * group;
            Arrays.fill(acc, 0);
            if (first <= last) {
                for (int g = 0; g < group; g++) job.query.load(job.query.row(row, headBase + g), dim, q, g * dim);
                Arrays.fill(max, Float.NEGATIVE_INFINITY);
                Arrays.fill(sum, 0);
                for (int j = first; j <= last; j += TILE) tile(seq, j, Math.min(TILE, last + 1 - j), kvHead);
                for (int g = 0; g < group; g++) {
                    float inv = 1 / sum[g];
                    for (int d = 0; d < dim; d++) acc[g * dim + d] *= inv;
                }
            }
            for (int g = 0; g < group; g++) job.out.store(job.out.row(row, headBase + g), dim, acc, g * dim);
        }

        /**
         * Keys {@code j0 .. j0+n-1} of sequence {@code seq}, wherever their blocks lie: each
         * row's address comes from the block table, so a tile spans block boundaries and
         * small blocks cost no extra softmax updates.
         */
        private void tile(int seq, int j0, int n, int kvHead) {
            CacheView keys = job.keys, values = job.values;
            int bs = job.blockSize;
            for (int k = 0; k < n; k++) {
                blocks[k] = job.table.block(seq, (j0 + k) / bs);
                slots[k] = (j0 + k) % bs;
            }
            for (int k = 0; k < n; k++) {
                long at = keys.row(blocks[k], slots[k], kvHead);
                if (keys.fast()) {
                    for (int g = 0; g < group; g++) scores[g * TILE + k] = dot(q, g * dim, keys.segment(), at * Float.BYTES, dim);
                } else {
                    keys.load(at, dim, keyRow, 0);
                    for (int g = 0; g < group; g++) scores[g * TILE + k] = dot(q, g * dim, keyRow, dim);
                }
            }
            for (int g = 0; g < group; g++) {
                int base = g * TILE;
                float tileMax = Float.NEGATIVE_INFINITY;
                for (int k = 0; k < n; k++) {
                    float s = scores[base + k] * job.scale;
                    if (job.softcap > 0) s = (float) (job.softcap * Math.tanh(s / job.softcap));
                    scores[base + k] = s;
                    tileMax = Math.max(tileMax, s);
                }
                if (tileMax > max[g]) {
                    float alpha = (float) Math.exp(max[g] - tileMax);
                    sum[g] *= alpha;
                    scale(acc, g * dim, dim, alpha);
                    max[g] = tileMax;
                }
                sum[g] += exponentiate(scores, base, n, max[g]);
            }
            for (int k = 0; k < n; k++) {
                long at = values.row(blocks[k], slots[k], kvHead);
                if (values.fast()) {
                    for (int g = 0; g < group; g++) axpy(scores[g * TILE + k], values.segment(), at * Float.BYTES, acc, g * dim, dim);
                } else {
                    values.load(at, dim, valueRow, 0);
                    for (int g = 0; g < group; g++) axpy(scores[g * TILE + k], valueRow, acc, g * dim, dim);
                }
            }
        }
    }

    // ---------------------------------------------------------------- vector primitives

    private static float dot(float[] a, int aAt, MemorySegment b, long bByte, int n) {
        FloatVector s = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            s = FloatVector.fromArray(S, a, aAt + i).fma(FloatVector.fromMemorySegment(S, b, bByte + (long) i * Float.BYTES, ORDER), s);
        }
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            s = FloatVector.fromArray(S, a, aAt + i, m).fma(FloatVector.fromMemorySegment(S, b, bByte + (long) i * Float.BYTES, ORDER, m), s);
        }
        return Lanes.sum(s);
    }

    private static float dot(float[] a, int aAt, float[] b, int n) {
        FloatVector s = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            s = FloatVector.fromArray(S, a, aAt + i).fma(FloatVector.fromArray(S, b, i), s);
        }
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            s = FloatVector.fromArray(S, a, aAt + i, m).fma(FloatVector.fromArray(S, b, i, m), s);
        }
        return Lanes.sum(s);
    }

    /** {@code acc[at..at+n) += w * b[..]} with b read from a segment. */
    private static void axpy(float w, MemorySegment b, long bByte, float[] acc, int at, int n) {
        FloatVector wv = FloatVector.broadcast(S, w);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            FloatVector.fromMemorySegment(S, b, bByte + (long) i * Float.BYTES, ORDER)
                    .fma(wv, FloatVector.fromArray(S, acc, at + i)).intoArray(acc, at + i);
        }
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector.fromMemorySegment(S, b, bByte + (long) i * Float.BYTES, ORDER, m)
                    .fma(wv, FloatVector.fromArray(S, acc, at + i, m)).intoArray(acc, at + i, m);
        }
    }

    private static void axpy(float w, float[] b, float[] acc, int at, int n) {
        FloatVector wv = FloatVector.broadcast(S, w);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            FloatVector.fromArray(S, b, i).fma(wv, FloatVector.fromArray(S, acc, at + i)).intoArray(acc, at + i);
        }
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector.fromArray(S, b, i, m).fma(wv, FloatVector.fromArray(S, acc, at + i, m)).intoArray(acc, at + i, m);
        }
    }

    /** Replaces {@code s[at..at+n)} by exp(s - shift) and returns their sum. */
    private static float exponentiate(float[] s, int at, int n, float shift) {
        FloatVector shiftV = FloatVector.broadcast(S, shift), total = FloatVector.zero(S);
        int i = 0;
        for (int bound = S.loopBound(n); i < bound; i += LANES) {
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, s, at + i).sub(shiftV));
            e.intoArray(s, at + i);
            total = total.add(e);
        }
        float sum = Lanes.sum(total);
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, s, at + i, m).sub(shiftV));
            e.intoArray(s, at + i, m);
            sum += Lanes.sum(e, m);
        }
        return sum;
    }

    private static void scale(float[] a, int at, int n, float factor) {
        for (int i = 0; i < n; i++) a[at + i] *= factor;
    }
}
