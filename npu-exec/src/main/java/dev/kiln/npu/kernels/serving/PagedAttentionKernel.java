package dev.kiln.npu.kernels.serving;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.kernels.ScalarTwin;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.npu.kernels.VectorMemory;
import dev.kiln.npu.kernels.attention.RowProducts;
import dev.kiln.ops.ServingKernels.AttentionParams;
import dev.kiln.tensor.Tensor;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;

/**
 * Attention of query rows over keys addressed through a block table at run time: key
 * {@code j} of a row's sequence lives in physical block {@code table.block(seq, j / BS)}
 * at slot {@code j % BS}. Each row sees one inclusive range of key positions (causal,
 * window and context bounds all reduce to a range), so keys outside it, including every
 * unreferenced cache slot, are never read. Softmax is online: tiles of scores raise the
 * running maximum, and the accumulators are rescaled only when it grows.
 *
 * <p>A unit of work is one query row and one partition of its keys ({@value #PARTITION} of
 * them at most, up to {@value #MAX_PARTITIONS} partitions), for all heads: a cache slot holds
 * the rows of every KV head side by side, so reading them together streams through each block instead of
 * striding across it a head at a time, and the G = H / Hkv query heads of a KV head use
 * each key and value row while it is in cache. A row with several partitions has them
 * merged exactly by their log-sum-exps afterwards. Partitions depend only on the row's own
 * key range, so a row gives the same bits whatever else is in the batch.
 *
 * <p>Head elements lie in vector lanes, rows padded to whole vectors: both products are
 * {@link RowProducts}'.
 */
final class PagedAttentionKernel {
    private static final int LANES = RowProducts.LANES;
    /** Keys scored before one softmax update (whole vectors of them): bounds the scratch for ring buffers of any width. */
    private static final int TILE = Math.max(32, LANES);
    /** Most keys of one unit: long contexts split into units the workers share, merged afterwards. */
    static final int PARTITION = 512;
    /** Most partitions of one row (beyond 32K keys they grow instead), which bounds its partial results. */
    static final int MAX_PARTITIONS = 64;

    /** Tiles run their scalar twin while the JIT has not compiled the vector code (see {@link ScalarTwin}). */
    private static final ScalarTwin TWIN = new ScalarTwin();

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

        int partitions(int r) { return Math.clamp(Math.ceilDiv(keys(r), PARTITION), 1, MAX_PARTITIONS); }
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
        private final RowProducts products = new RowProducts();
        /** A tile's rows of one head as float32, when the cache is not float32 rows read in place. */
        private final MemorySegment rowTile;
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
            rowTile = inPlace(job.keys) && inPlace(job.values) ? null : VectorMemory.floats((long) TILE * width);
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
            long work = (long) n * heads * width * 2;
            boolean scalar = TWIN.scalarNext(work);
            long start = System.nanoTime();
            for (int kv = 0; kv < kvHeads; kv++) {
                MemorySegment keys = rows(job.keys, keyAt, kv * keyHeadStride, n);
                int at = kv * group * width, scoresAt = kv * group * TILE;
                if (scalar) products.scoresScalar(q, at, group, width, keys, rowByte, n, scores, scoresAt, TILE);
                else products.scores(q, at, group, width, keys, rowByte, n, scores, scoresAt, TILE);
            }
            for (int h = 0; h < heads; h++) softmax(h, n, scalar);
            for (int kv = 0; kv < kvHeads; kv++) {
                MemorySegment values = rows(job.values, valueAt, kv * valueHeadStride, n);
                int at = kv * group * width, scoresAt = kv * group * TILE;
                if (scalar) RowProducts.accumulateScalar(acc, at, group, width, values, rowByte, n, scores, scoresAt, TILE, false);
                else products.accumulate(acc, at, group, width, values, rowByte, n, scores, scoresAt, TILE, false);
            }
            TWIN.record(scalar, System.nanoTime() - start, work);
        }

        /**
         * The segment holding the tile's rows of one head and, in {@link #rowByte}, where each
         * starts: the cache itself (see {@link #inPlace}), else the rows converted into
         * {@link #rowTile}, whose padding lanes stay zero.
         */
        private MemorySegment rows(CacheView view, long[] at, long headOffset, int n) {
            if (inPlace(view)) {
                for (int k = 0; k < n; k++) rowByte[k] = (at[k] + headOffset) * Float.BYTES;
                return view.segment();
            }
            for (int k = 0; k < n; k++) {
                rowByte[k] = (long) k * width * Float.BYTES;
                view.load(at[k] + headOffset, dim, rowTile, rowByte[k]);
            }
            return rowTile;
        }

        /** Whether the view's head rows are read where they lie: float32, unit stride, a whole number of vectors. */
        private boolean inPlace(CacheView view) { return view.fast() && dim == width; }

        /** Head h's scores of the tile scaled (and soft-capped) into softmax weights, its state updated. */
        private void softmax(int h, int n, boolean scalar) {
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
            sum[h] += scalar ? products.exponentiateScalar(scores, base, n, max[h]) : RowProducts.exponentiate(scores, base, n, max[h]);
        }
    }
}
