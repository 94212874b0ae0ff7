package dev.kiln.npu.kernels.serving;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.kernels.Lanes;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.ops.ServingKernels.AttentionParams;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShuffle;
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
 * <p>A unit of work is one query row and one partition of its keys (at most
 * {@value #PARTITION} of them), for all heads: a cache slot holds the rows of every KV
 * head side by side, so reading them together streams through each block instead of
 * striding across it a head at a time, and the G = H / Hkv query heads of a KV head use
 * each key and value row while it is in cache. A row with several partitions has them
 * merged exactly by their log-sum-exps afterwards. Partitions depend only on the row's own
 * key range, so a row gives the same bits whatever else is in the batch.
 *
 * <p>Head elements lie in vector lanes (rows padded to whole vectors); the lanes of 16 keys'
 * scores are added together by a fixed tree ({@link #transposedSums}), the same order
 * interpreted and compiled, and a value vector updates four heads' accumulators held in
 * registers across a tile's keys.
 */
final class PagedAttentionKernel {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = S.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    /** Keys scored before one softmax update (whole vectors of them): bounds the scratch for ring buffers of any width. */
    private static final int TILE = Math.max(32, LANES);
    /** Most keys of one unit: long contexts split into units the workers share, merged afterwards. */
    static final int PARTITION = 512;

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
    record Rows(int[] rowSequence, int[] rowFirst, int[] rowLast) {
        int keys(int r) { return Math.max(0, rowLast[r] - rowFirst[r] + 1); }

        int partitions(int r) { return Math.max(1, Math.ceilDiv(keys(r), PARTITION)); }
    }

    static void run(Tensor query, Tensor keyCache, Tensor valueCache, BlockTable table, Rows rows, AttentionParams p,
                    Tensor out) {
        run(query, keyCache, valueCache, table, rows, p, out, WAVE_FLOATS);
    }

    /** As above, with split rows taken in waves of at most {@code waveFloats} floats of partial results. */
    static void run(Tensor query, Tensor keyCache, Tensor valueCache, BlockTable table, Rows rows, AttentionParams p,
                    Tensor out, int waveFloats) {
        int tokens = query.size(0), heads = query.size(1), dim = query.size(2), kvHeads = keyCache.size(2);
        if (out.numel() == 0) return;
        Job job = new Job(CacheView.of(query), CacheView.of(keyCache), CacheView.of(valueCache), CacheView.of(out),
                table, rows, keyCache.size(1), heads, kvHeads, heads / kvHeads, dim, Math.ceilDiv(dim, LANES) * LANES, (float) p.scale(),
                p.softcap());
        // Row r's partitions are units rowUnit[r] .. rowUnit[r + 1] - 1.
        int[] rowUnit = new int[tokens + 1];
        for (int r = 0; r < tokens; r++) rowUnit[r + 1] = rowUnit[r] + rows.partitions(r);
        if (rowUnit[tokens] == tokens) {
            Parallel.forRange(tokens, work(job, 0, tokens), (r0, r1) -> {
                Worker w = new Worker(job);
                for (long r = r0; r < r1; r++) w.unit((int) r, rows.rowFirst[(int) r], rows.rowLast[(int) r], null, 0);
            });
            return;
        }
        // Rows in waves whose partial results stay within waveFloats (always at least one row).
        int stride = heads * (job.width + 2);
        for (int from = 0, to; from < tokens; from = to) {
            to = from + 1;
            while (to < tokens && (long) (rowUnit[to + 1] - rowUnit[from]) * stride <= waveFloats) to++;
            wave(job, rowUnit, from, to, stride);
        }
    }

    /** Partial results of the rows of one wave, kept until they are merged: 16 MiB. */
    private static final int WAVE_FLOATS = 1 << 22;

    /** Rows {@code from .. to-1}: a row of one partition straight into the output, the others through partials merged afterwards. */
    private static void wave(Job job, int[] rowUnit, int from, int to, int stride) {
        Rows rows = job.rows;
        int first = rowUnit[from], units = rowUnit[to] - first;
        int[] unitRow = new int[units];
        for (int r = from; r < to; r++) Arrays.fill(unitRow, rowUnit[r] - first, rowUnit[r + 1] - first, r);
        float[] partials = new float[units * stride];
        Parallel.forRange(units, work(job, from, to), (u0, u1) -> {
            Worker w = new Worker(job);
            for (int u = (int) u0; u < u1; u++) {
                int r = unitRow[u], part = u + first - rowUnit[r], n = rows.partitions(r), keys = rows.keys(r);
                int lo = rows.rowFirst[r] + (int) ((long) keys * part / n), hi = rows.rowFirst[r] + (int) ((long) keys * (part + 1) / n) - 1;
                if (n == 1) w.unit(r, lo, hi, null, 0);
                else w.unit(r, lo, hi, partials, u * stride);
            }
        });
        Parallel.forRange(to - from, (long) units * stride, (r0, r1) -> {
            float[] row = new float[job.dim];
            for (int r = from + (int) r0; r < from + r1; r++) {
                if (rows.partitions(r) > 1) merge(job, r, rowUnit[r] - first, rowUnit[r + 1] - first, partials, stride, row);
            }
        });
    }

    /** The cost of rows {@code from .. to-1}, for {@link Parallel#forRange}: their keys times the heads' products. */
    private static long work(Job job, int from, int to) {
        long keys = 0;
        for (int r = from; r < to; r++) keys += job.rows.keys(r) + 1;
        return keys * job.heads * job.dim * 4;
    }

    /**
     * Row {@code r}'s output from its partitions' unnormalised accumulators, maxima and sums
     * ({@code [heads][width]}, then {@code [heads]} twice, per unit): each rescaled to the
     * largest maximum, added in partition order, divided by the rescaled sums.
     */
    private static void merge(Job job, int r, int unitFrom, int unitTo, float[] partials, int stride, float[] row) {
        int heads = job.heads, dim = job.dim, maxAt = heads * job.width, sumAt = maxAt + heads;
        for (int h = 0; h < heads; h++) {
            float max = Float.NEGATIVE_INFINITY;
            for (int u = unitFrom; u < unitTo; u++) max = Math.max(max, partials[u * stride + maxAt + h]);
            Arrays.fill(row, 0);
            float sum = 0;
            for (int u = unitFrom; u < unitTo; u++) {
                int base = u * stride;
                float m = partials[base + maxAt + h];
                if (m == Float.NEGATIVE_INFINITY) continue;
                float alpha = VectorMath.exp(m - max);
                sum += alpha * partials[base + sumAt + h];
                for (int d = 0; d < dim; d++) row[d] += alpha * partials[base + h * job.width + d];
            }
            float inv = sum > 0 ? 1 / sum : 0;
            for (int d = 0; d < dim; d++) row[d] *= inv;
            job.out.store(job.out.row(r, h), dim, row, 0);
        }
    }

    private record Job(CacheView query, CacheView keys, CacheView values, CacheView out, BlockTable table, Rows rows,
                       int blockSize, int heads, int kvHeads, int group, int dim, int width, float scale, double softcap) {}

    /** One thread's scratch; units run one after another on it. */
    private static final class Worker {
        private final Job job;
        /** Head elements, and the vector lanes that hold them: rows are padded with zeros to a whole number of vectors. */
        private final int dim, width;
        private final int group, heads, kvHeads;
        private final long keyHeadStride, valueHeadStride;
        /** Queries and accumulators {@code [head][width]}; scores {@code [head][TILE]}. */
        private final float[] q, acc, scores, max, sum;
        /** Four query heads' per-key lane partials of a score, {@code [head][key][LANES]}, summed across lanes by {@link #transposedSums}. */
        private final float[] partials = new float[4 * LANES * LANES];
        /** A tile's rows of one head as float32, when the cache is not float32 rows read in place. */
        private final float[] rowTile;
        /** Element offset of head 0's key and value rows of each key of the current tile. */
        private final long[] keyAt = new long[TILE], valueAt = new long[TILE];
        /** Byte offset of each key's row of the current head in the segment its rows are read from. */
        private final long[] rowByte = new long[TILE];

        Worker(Job job) {
            this.job = job;
            this.dim = job.dim;
            this.width = job.width;
            this.group = job.group;
            this.heads = job.heads;
            this.kvHeads = job.kvHeads;
            this.keyHeadStride = job.keys.strides()[2];
            this.valueHeadStride = job.values.strides()[2];
            q = new float[heads * width];
            acc = new float[heads * width];
            scores = new float[heads * TILE];
            max = new float[heads];
            sum = new float[heads];
            rowTile = inPlace(job.keys) && inPlace(job.values) ? null : new float[TILE * width];
        }

        /**
         * Keys {@code first..last} of row {@code row}: into the output rows when {@code partials}
         * is null, else unnormalised, with the maxima and sums, into {@code partials[at..]}.
         */
        void unit(int row, int first, int last, float[] partials, int at) {
            int seq = job.rows.rowSequence[row];
            Arrays.fill(acc, 0);
            Arrays.fill(max, Float.NEGATIVE_INFINITY);
            Arrays.fill(sum, 0);
            if (first <= last) {
                for (int h = 0; h < heads; h++) job.query.load(job.query.row(row, h), dim, q, h * width);
                for (int j = first; j <= last; j += TILE) tile(seq, j, Math.min(TILE, last + 1 - j));
            }
            if (partials != null) {
                System.arraycopy(acc, 0, partials, at, acc.length);
                System.arraycopy(max, 0, partials, at + acc.length, heads);
                System.arraycopy(sum, 0, partials, at + acc.length + heads, heads);
                return;
            }
            for (int h = 0; h < heads; h++) {
                float inv = sum[h] > 0 ? 1 / sum[h] : 0;
                for (int d = 0; d < dim; d++) acc[h * width + d] *= inv;
                job.out.store(job.out.row(row, h), dim, acc, h * width);
            }
        }

        /**
         * Keys {@code j0 .. j0+n-1} of sequence {@code seq}, wherever their blocks lie: each
         * row's address comes from the block table, so a tile spans block boundaries and
         * small blocks cost no extra softmax updates.
         */
        private void tile(int seq, int j0, int n) {
            int bs = job.blockSize;
            for (int k = 0; k < n; k++) {
                int block = job.table.block(seq, (j0 + k) / bs), slot = (j0 + k) % bs;
                keyAt[k] = job.keys.row(block, slot, 0);
                valueAt[k] = job.values.row(block, slot, 0);
            }
            for (int kv = 0; kv < kvHeads; kv++) {
                MemorySegment keys = rows(job.keys, keyAt, kv * keyHeadStride, n);
                for (int k0 = 0; k0 < n; k0 += LANES) score(keys, kv * group, k0, Math.min(LANES, n - k0));
            }
            for (int h = 0; h < heads; h++) softmax(h, n);
            for (int kv = 0; kv < kvHeads; kv++) {
                MemorySegment values = rows(job.values, valueAt, kv * valueHeadStride, n);
                int h = kv * group, end = h + group;
                for (; h + 4 <= end; h += 4) accumulate4(values, h, n);
                for (; h < end; h++) accumulate(values, h, n);
            }
        }

        /**
         * The segment holding the tile's rows of one head and, in {@link #rowByte}, where each
         * starts: the cache itself for float32 rows, else the rows converted into {@link #rowTile}.
         */
        private MemorySegment rows(CacheView view, long[] at, long headOffset, int n) {
            if (inPlace(view)) {
                for (int k = 0; k < n; k++) rowByte[k] = (at[k] + headOffset) * Float.BYTES;
                return view.segment();
            }
            for (int k = 0; k < n; k++) {
                view.load(at[k] + headOffset, dim, rowTile, k * width);
                rowByte[k] = (long) k * width * Float.BYTES;
            }
            return MemorySegment.ofArray(rowTile);
        }

        /** Whether the view's head rows are read where they lie: float32, unit stride, a whole number of vectors. */
        private boolean inPlace(CacheView view) { return view.fast() && dim == width; }

        /** scores[h][k0 ..] for keys k0 .. k0+nk-1 and the group's query heads from h0. */
        private void score(MemorySegment keys, int h0, int k0, int nk) {
            int h = h0, end = h0 + group;
            for (; h + 4 <= end; h += 4) {
                for (int k = 0; k < nk; k++) dots4(keys, rowByte[k0 + k], h, k);
                for (int g = 0; g < 4; g++) {
                    int p = g * LANES * LANES;
                    Arrays.fill(partials, p + nk * LANES, p + LANES * LANES, 0f);
                    transposedSums(partials, p).intoArray(scores, (h + g) * TILE + k0);
                }
            }
            for (; h < end; h++) {
                for (int k = 0; k < nk; k++) dot(keys, rowByte[k0 + k], h * width).intoArray(partials, k * LANES);
                Arrays.fill(partials, nk * LANES, LANES * LANES, 0f);
                transposedSums(partials, 0).intoArray(scores, h * TILE + k0);
            }
        }

        /** The lane partials of query heads h .. h+3 against the key row at {@code byteAt}, each key vector loaded once. */
        private void dots4(MemorySegment key, long byteAt, int h, int k) {
            FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
            int q0 = h * width, q1 = q0 + width, q2 = q1 + width, q3 = q2 + width;
            for (int i = 0; i < width; i += LANES) {
                FloatVector kv = FloatVector.fromMemorySegment(S, key, byteAt + (long) i * Float.BYTES, ORDER);
                s0 = FloatVector.fromArray(S, q, q0 + i).fma(kv, s0);
                s1 = FloatVector.fromArray(S, q, q1 + i).fma(kv, s1);
                s2 = FloatVector.fromArray(S, q, q2 + i).fma(kv, s2);
                s3 = FloatVector.fromArray(S, q, q3 + i).fma(kv, s3);
            }
            int at = k * LANES, head = LANES * LANES;
            s0.intoArray(partials, at);
            s1.intoArray(partials, at + head);
            s2.intoArray(partials, at + 2 * head);
            s3.intoArray(partials, at + 3 * head);
        }

        private FloatVector dot(MemorySegment key, long byteAt, int qAt) {
            FloatVector s = FloatVector.zero(S);
            for (int i = 0; i < width; i += LANES) {
                s = FloatVector.fromArray(S, q, qAt + i).fma(FloatVector.fromMemorySegment(S, key, byteAt + (long) i * Float.BYTES, ORDER), s);
            }
            return s;
        }

        /** Head h's scores of the tile scaled (and soft-capped) into softmax weights, its state updated. */
        private void softmax(int h, int n) {
            int base = h * TILE;
            float tileMax = Float.NEGATIVE_INFINITY;
            for (int k = 0; k < n; k++) {
                float s = scores[base + k] * job.scale;
                if (job.softcap > 0) s = (float) (job.softcap * Math.tanh(s / job.softcap));
                scores[base + k] = s;
                tileMax = Math.max(tileMax, s);
            }
            if (tileMax > max[h]) {
                float alpha = VectorMath.exp(max[h] - tileMax);
                sum[h] *= alpha;
                for (int d = h * width, end = d + width; d < end; d++) acc[d] *= alpha;
                max[h] = tileMax;
            }
            sum[h] += exponentiate(scores, base, n, max[h]);
        }

        /**
         * acc[h .. h+3] += the tile's weights times its value rows: a vector of each head's
         * accumulator stays in a register across the tile's keys, each value vector loaded once.
         */
        private void accumulate4(MemorySegment values, int h, int n) {
            int w0 = h * TILE, w1 = w0 + TILE, w2 = w1 + TILE, w3 = w2 + TILE;
            int a0 = h * width, a1 = a0 + width, a2 = a1 + width, a3 = a2 + width;
            for (int i = 0; i < width; i += LANES) {
                FloatVector c0 = FloatVector.fromArray(S, acc, a0 + i), c1 = FloatVector.fromArray(S, acc, a1 + i);
                FloatVector c2 = FloatVector.fromArray(S, acc, a2 + i), c3 = FloatVector.fromArray(S, acc, a3 + i);
                long lane = (long) i * Float.BYTES;
                for (int k = 0; k < n; k++) {
                    FloatVector v = FloatVector.fromMemorySegment(S, values, rowByte[k] + lane, ORDER);
                    c0 = v.fma(FloatVector.broadcast(S, scores[w0 + k]), c0);
                    c1 = v.fma(FloatVector.broadcast(S, scores[w1 + k]), c1);
                    c2 = v.fma(FloatVector.broadcast(S, scores[w2 + k]), c2);
                    c3 = v.fma(FloatVector.broadcast(S, scores[w3 + k]), c3);
                }
                c0.intoArray(acc, a0 + i);
                c1.intoArray(acc, a1 + i);
                c2.intoArray(acc, a2 + i);
                c3.intoArray(acc, a3 + i);
            }
        }

        private void accumulate(MemorySegment values, int h, int n) {
            int w = h * TILE, a = h * width;
            for (int i = 0; i < width; i += LANES) {
                FloatVector c = FloatVector.fromArray(S, acc, a + i);
                long lane = (long) i * Float.BYTES;
                for (int k = 0; k < n; k++) {
                    c = FloatVector.fromMemorySegment(S, values, rowByte[k] + lane, ORDER).fma(FloatVector.broadcast(S, scores[w + k]), c);
                }
                c.intoArray(acc, a + i);
            }
        }
    }

    // ---------------------------------------------------------------- lane sums

    /** Lane i and lane i ^ span, for each span of the trees in {@link #sum} and {@link #transposedSums}. */
    private static final VectorShuffle<Float> SWAP_8 = swap(8), SWAP_4 = swap(4), SWAP_2 = swap(2), SWAP_1 = swap(1);

    private static VectorShuffle<Float> swap(int span) {
        return VectorShuffle.fromOp(S, i -> span < LANES ? i ^ span : i);
    }

    /**
     * The lanes of {@code v} added as a tree: halves, then quarters, and so on (four
     * permutes and adds for 16 lanes, against fifteen dependent scalar additions in lane
     * order). Up to 16 lanes, the widest float species on x86 and most SVE hardware; wider
     * vectors finish in lane order.
     */
    private static float sum(FloatVector v) {
        if (LANES > 16) return Lanes.sum(v);
        if (LANES > 8) v = v.add(v.rearrange(SWAP_8));
        if (LANES > 4) v = v.add(v.rearrange(SWAP_4));
        if (LANES > 2) v = v.add(v.rearrange(SWAP_2));
        if (LANES > 1) v = v.add(v.rearrange(SWAP_1));
        return v.lane(0);
    }

    /** Lanes whose index has bit {@code span} set, for each span of the tree in {@link #transposedSums}. */
    private static final VectorMask<Float> HIGH_8 = high(8), HIGH_4 = high(4), HIGH_2 = high(2), HIGH_1 = high(1);

    private static VectorMask<Float> high(int span) {
        boolean[] bits = new boolean[LANES];
        for (int i = 0; i < LANES; i++) bits[i] = (i & span) != 0;
        return VectorMask.fromArray(S, bits, 0);
    }

    /**
     * Lane k of the result is the sum of the lanes of vector k of {@code p[at ..]}
     * ({@code LANES} vectors one after another), added as a fixed tree: pairs of vectors
     * combine into one holding both halves' sums (a's in the lanes without bit {@code span},
     * b's in those with it), for span 1, 2, 4 and 8. Four operations per pair, so 16 keys'
     * scores cost 60 operations, against 16 lane sums of 8 to 30 each.
     */
    private static FloatVector transposedSums(float[] p, int at) {
        if (LANES > 16) {
            float[] sums = new float[LANES];
            for (int k = 0; k < LANES; k++) sums[k] = sum(FloatVector.fromArray(S, p, at + k * LANES));
            return FloatVector.fromArray(S, sums, 0);
        }
        int count = LANES;
        if (LANES > 1) count = combine(p, at, count, HIGH_1, SWAP_1);
        if (LANES > 2) count = combine(p, at, count, HIGH_2, SWAP_2);
        if (LANES > 4) count = combine(p, at, count, HIGH_4, SWAP_4);
        if (LANES > 8) combine(p, at, count, HIGH_8, SWAP_8);
        return FloatVector.fromArray(S, p, at);
    }

    /** One level of {@link #transposedSums}: {@code count} vectors at {@code p[at ..]} into half as many, in place. */
    private static int combine(float[] p, int at, int count, VectorMask<Float> high, VectorShuffle<Float> swap) {
        for (int i = 0; i < count / 2; i++) {
            FloatVector a = FloatVector.fromArray(S, p, at + 2 * i * LANES), b = FloatVector.fromArray(S, p, at + (2 * i + 1) * LANES);
            a.blend(b, high).add(b.blend(a, high).rearrange(swap)).intoArray(p, at + i * LANES);
        }
        return count / 2;
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
        if (i < n) {
            VectorMask<Float> m = S.indexInRange(i, n);
            FloatVector e = VectorMath.exp(FloatVector.fromArray(S, s, at + i, m).sub(shiftV));
            e.intoArray(s, at + i, m);
            total = total.add(e.blend(0f, m.not()));
        }
        return sum(total);
    }
}
