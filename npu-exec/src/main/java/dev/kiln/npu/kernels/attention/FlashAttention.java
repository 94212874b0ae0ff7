package dev.kiln.npu.kernels.attention;

import dev.kiln.npu.Parallel;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.kernels.ScalarTwin;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.npu.kernels.VectorMemory;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * FlashAttention in float32 (for float32, float16 and bfloat16 inputs), tiled to the
 * device's SRAM (see {@link Tiling}). A unit of work is one slice (batch and head), one
 * block of query rows and one key/value partition. The unit's queries move DRAM to SRAM
 * once, scaled and transposed so that query rows lie in vector lanes; its keys and values
 * move in tiles ({@code [key][e]}), each once per query block, and only as far as the
 * block's last row can see under causal masking. Scores exist one compute tile at a time
 * in SRAM, never in DRAM. Every copy goes through the {@link Dma} layer, so the launch's
 * DRAM bytes are counted. For one query row under GQA (decode) the query heads of a
 * key/value head are packed as the rows of one slice, so its keys and values are read
 * once for all of them.
 *
 * <p>Units of a few rows (decode: one position, its query heads packed under GQA) with
 * head sizes of whole vectors turn the layout around: rows stay rows, head elements lie in
 * lanes, and both products are {@link RowProducts}' (see {@link #rowsInLanes}). The
 * softmax, masks and NaN rules are the same, a row at a time.
 *
 * <p>The scale multiplies the queries once (PyTorch splits it as its square root over q
 * and k; the results differ by rounding only).
 *
 * <p>With query rows in lanes, the online softmax is vertical: running maximum, sum and
 * output rescaling are whole-vector operations with no horizontal reductions, and both
 * products are outer products (one query-lane vector times broadcast key or value
 * elements). Normalisation is deferred to the end of the unit.
 *
 * <p>Split-KV: with several partitions, each unit writes its normalised output and the
 * log-sum-exp of its rows; a second pass merges the partitions exactly
 * ({@code O = sum_p e^(lse_p - M) O_p / sum_p e^(lse_p - M)}).
 *
 * <p>Masking selects -inf rather than computing with masked scores, so NaN or infinite
 * keys there never reach the softmax; when a value tile holds NaN or infinity, zero
 * weights are skipped instead of multiplied, so those values never reach the output.
 * Padding lanes (query rows past the block's end) compute on zero queries and are never
 * stored.
 */
public final class FlashAttention {
    private static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;
    private static final int LANES = SPECIES.length();
    /** Query lanes of the wide micro-kernels: two vectors. */
    private static final int WIDE = 2 * LANES;
    /** Most keys per compute tile: a group's scores ({@code [key][WIDE]}) and mask bias stay in L1. */
    private static final int MAX_COMPUTE_KEYS = 128;
    /** Most query rows of a unit that puts head elements in lanes (see {@link #rowsInLanes}). */
    private static final int HEAD_LANE_ROWS = Math.max(1, LANES / 2);
    private static final float NEG_INF = Float.NEGATIVE_INFINITY;
    private static final FloatVector IOTA = FloatVector.fromArray(SPECIES, iota(), 0);

    /**
     * The blocking of one launch.
     *
     * @param queryBlock    query rows per unit (a multiple of the vector width, except a single short block)
     * @param keyTile       keys per key/value tile held in SRAM
     * @param computeKeys   keys per compute tile: one group's scores and mask bias, {@code [key][WIDE]} each
     * @param partitionKeys keys per split-KV partition
     * @param queryBlocks   query blocks per slice
     * @param partitions    key/value partitions (1: no split)
     */
    public record Tiling(int queryBlock, int keyTile, int computeKeys, int partitionKeys, int queryBlocks, int partitions) {

        /**
         * Blocks for {@code device}'s SRAM per core: a sixteenth for the compute tile (scores
         * and bias, at most {@value #MAX_COMPUTE_KEYS} keys: L1-sized), then of the rest up to
         * half for the query block's transposed queries, output accumulators and softmax state,
         * and what remains for the key/value tile. Query blocks are evened out over the rows (and made
         * smaller when there are fewer units than workers); without a caller's
         * {@code partitionSize}, keys are split only when there are still fewer units than
         * workers (long decode contexts). At least one key and one vector of query rows, even
         * when head sizes beyond the SRAM leave less.
         */
        public static Tiling plan(NpuDevice device, int slices, int queries, int keys, int headDim, int valueDim,
                                  int partitionSize) {
            long floats = device.sramFloats();
            int computeKeys = (int) Math.clamp(floats / 16 / WIDE, 4, MAX_COMPUTE_KEYS);
            long fixed = 2L * computeKeys * WIDE + computeKeys + Math.max(headDim, valueDim) + 2L * LANES + roundUp(valueDim, LANES)
                    + RowProducts.SCRATCH_FLOATS;
            long budget = Math.max(0, floats - fixed), perRow = (long) headDim + valueDim + 3;
            // Queries take half, at least one lane block; keys and values the rest.
            int maxBlock = (int) Math.clamp(budget / 2 / perRow / WIDE * WIDE, WIDE, Integer.MAX_VALUE / 2);
            long keyFloats = budget - Math.min(budget, (long) roundUp(Math.min(maxBlock, Math.max(queries, 1)), WIDE) * perRow);
            int keyTile = (int) Math.clamp(keyFloats / Math.max(1L, (long) headDim + valueDim), 1, Math.max(1, keys));
            int blocks = Math.max(1, Math.ceilDiv(queries, maxBlock));
            int workers = device.workers();
            if ((long) slices * blocks < workers) {
                blocks = (int) Math.max(blocks, Math.min(Math.ceilDiv(workers, Math.max(1, slices)), Math.ceilDiv(queries, LANES)));
            }
            int rows = Math.ceilDiv(Math.max(queries, 1), blocks);
            int queryBlock = queries <= LANES ? Math.max(queries, 1) : Math.min(roundUp(rows, rows > WIDE ? WIDE : LANES), maxBlock);
            blocks = Math.max(1, Math.ceilDiv(queries, queryBlock));
            int partitionKeys, partitions;
            if (partitionSize > 0) {
                partitionKeys = partitionSize;
                partitions = Math.max(1, Math.ceilDiv(keys, partitionSize));
            } else {
                long units = (long) slices * blocks;
                partitions = units < workers && keys >= 2 * keyTile
                        ? (int) Math.min(Math.ceilDiv(workers, units), Math.ceilDiv(keys, keyTile)) : 1;
                partitionKeys = Math.max(1, Math.ceilDiv(keys, partitions));
            }
            keyTile = Math.min(keyTile, partitionKeys);
            return new Tiling(queryBlock, keyTile, computeKeys, partitionKeys, blocks, partitions);
        }

        /** Floats of one worker's working set (see {@link Workspace}): what must fit in SRAM. */
        public long workspaceFloats(int headDim, int valueDim) {
            long rows = roundUp(queryBlock, WIDE);
            int valuePad = roundUp(valueDim, LANES);
            return rows * headDim + (long) keyTile * headDim + Math.max((long) keyTile * valueDim, valuePad)
                    + 2L * computeKeys * WIDE + computeKeys + Math.max(rows * valueDim, valuePad) + 2 * rows + Math.max(rows, partitions)
                    + Math.max(headDim, valueDim) + 2L * LANES + RowProducts.SCRATCH_FLOATS;
        }
    }

    private final AttentionGeometry g;
    private final Tiling tiling;
    private final Dma.Transfer dma;
    private final Workspace w;
    private final int headDim, valueDim;
    private final float scale, softcap;
    /**
     * Whether this launch's units keep query rows in lanes (the default) or head elements in
     * lanes: with at most {@link #HEAD_LANE_ROWS} rows a unit would fill under half of each
     * vector's lanes, so rows of whole vectors of head elements take the {@link RowProducts}
     * loops instead, in compute tiles of {@link #rowKeys} keys.
     */
    private final boolean rowsInLanes;
    private final int rowKeys;
    /**
     * Without {@link #rowsInLanes}, float32 key and value rows of unit column stride are read
     * where they lie in DRAM (counted as the same bytes): a unit of a few rows uses each once,
     * so copying them into SRAM first would only add a pass.
     */
    private final boolean keysInPlace, valuesInPlace;
    /** Partial outputs [partition][slice][row][valueDim] and log-sum-exps [partition][slice][row], under split-KV. */
    private final MemorySegment partialOut, partialLse;
    private boolean valuesFinite;

    private FlashAttention(AttentionGeometry g, Tiling tiling, Dma.Transfer dma, MemorySegment partialOut, MemorySegment partialLse) {
        this.g = g;
        this.tiling = tiling;
        this.dma = dma;
        this.headDim = g.headDim;
        this.valueDim = g.valueDim;
        this.scale = (float) g.scale;
        this.softcap = (float) g.softcap;
        this.partialOut = partialOut;
        this.partialLse = partialLse;
        this.w = Workspace.local(tiling, headDim, valueDim);
        this.rowKeys = tiling.computeKeys() / LANES * LANES;
        this.rowsInLanes = !(tiling.queryBlock() <= HEAD_LANE_ROWS && headDim % LANES == 0 && valueDim % LANES == 0 && rowKeys > 0);
        this.keysInPlace = !rowsInLanes && g.key.dtype() == DType.FLOAT32 && g.keyColStride == 1;
        this.valuesInPlace = !rowsInLanes && g.value.dtype() == DType.FLOAT32 && g.valueColStride == 1;
    }

    /**
     * Attention of float32, float16 or bfloat16 inputs into {@code out} (fresh memory whose
     * rows run contiguously, in any order of rows and slices), blocked for {@code device}. Returns the launch's DRAM traffic.
     */
    public static LaunchTraffic run(AttentionSpec spec, Tensor[] in, Tensor out, NpuDevice device) {
        AttentionGeometry whole = new AttentionGeometry(spec, in, out, 1);
        // Decode under GQA: the query heads of one KV head share its key and value tiles and fill the lanes.
        AttentionGeometry g = whole.queries == 1 && whole.headGroup() > 1 ? whole.packHeads() : whole;
        Tiling t = Tiling.plan(device, g.slices, g.queries, g.keys, g.headDim, g.valueDim, g.partitionSize);
        Dma.Transfer dma = Dma.begin("flash_attention");
        long units = (long) g.slices * t.queryBlocks() * t.partitions();
        if (t.partitions() == 1) {
            Parallel.forRange(units, g.cost(), (from, to) -> {
                FlashAttention worker = new FlashAttention(g, t, dma, null, null);
                for (long u = from; u < to; u++) worker.unit(u);
            });
            return dma.traffic();
        }
        long rows = (long) g.slices * g.queries;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment partialOut = arena.allocate(t.partitions() * rows * g.valueDim * Float.BYTES, 64);
            MemorySegment partialLse = arena.allocate(t.partitions() * rows * Float.BYTES, 64);
            Parallel.forRange(units, g.cost(), (from, to) -> {
                FlashAttention worker = new FlashAttention(g, t, dma, partialOut, partialLse);
                for (long u = from; u < to; u++) worker.unit(u);
            });
            Parallel.forRange(rows, rows * t.partitions() * g.valueDim, (from, to) -> {
                FlashAttention worker = new FlashAttention(g, t, dma, partialOut, partialLse);
                for (long r = from; r < to; r++) worker.merge(r);
            });
        }
        return dma.traffic();
    }

    // ------------------------------------------------------------------ one unit

    private void unit(long u) {
        int partition = (int) (u % tiling.partitions());
        long sliceBlock = u / tiling.partitions();
        int slice = (int) (sliceBlock / tiling.queryBlocks());
        int block = g.interleaved((int) (sliceBlock % tiling.queryBlocks()), tiling.queryBlocks());
        int firstRow = block * tiling.queryBlock();
        int rows = Math.min(tiling.queryBlock(), g.queries - firstRow);
        int qPad = roundUp(rows, LANES);
        loadQueries(slice, firstRow, rows, qPad);
        Arrays.fill(w.rowMax, 0, qPad, NEG_INF);
        Arrays.fill(w.rowSum, 0, qPad, 0f);
        Arrays.fill(w.acc, 0, valueDim * roundUp(qPad, WIDE), 0f);
        int keyFrom = (int) Math.min(g.keys, (long) partition * tiling.partitionKeys());
        int keyTo = (int) Math.min(g.keys, (long) keyFrom + tiling.partitionKeys());
        int keyEnd = Math.min(keyTo, g.visibleKeys(firstRow + rows - 1));
        for (int tileStart = keyFrom; tileStart < keyEnd; tileStart += tiling.keyTile()) {
            int tileKeys = Math.min(tiling.keyTile(), keyEnd - tileStart);
            loadKeysAndValues(slice, tileStart, tileKeys);
            if (!rowsInLanes) {
                rowsTile(slice, firstRow, rows, tileStart, tileKeys);
                continue;
            }
            for (int lane = 0; lane < qPad; ) {
                int width = qPad - lane >= WIDE ? 2 : 1;
                groupEitherWay(slice, firstRow, rows, lane, width, tileStart, tileKeys);
                lane += width * LANES;
            }
        }
        if (tiling.partitions() == 1) finish(slice, firstRow, rows, qPad);
        else finishPartial(slice, firstRow, rows, qPad, partition);
    }

    /**
     * Queries [rows][e] of the block, scaled, into lane blocks {@code queries[block][e][WIDE]}
     * (see {@link #queryAt}; padding lanes zero), or as rows {@code [rows][e]} when not
     * {@link #rowsInLanes}.
     */
    private void loadQueries(int slice, int firstRow, int rows, int qPad) {
        long offset = g.queryOffset(slice);
        MemorySegment src = g.query.storage().segment();
        float[] q = w.queries, row = w.row;
        Arrays.fill(q, 0, headDim * roundUp(qPad, WIDE), 0f);
        for (int r = 0; r < rows; r++) {
            dma.load(src, g.query.dtype(), offset + (firstRow + r) * g.queryRowStride, g.queryColStride, w.rowSegment, 0, 1, headDim);
            if (rowsInLanes) for (int e = 0, i = queryAt(r); e < headDim; e++, i += WIDE) q[i] = row[e] * scale;
            else for (int e = 0, i = r * headDim; e < headDim; e++, i++) q[i] = row[e] * scale;
        }
    }

    /**
     * Index of lane {@code lane}'s first element in the lane-blocked queries: blocks of
     * {@link #WIDE} lanes, each {@code [e][WIDE]}, so a group's queries are contiguous and
     * its rows of {@code e} do not collide in L1 sets (a row-major [e][rows] layout strides
     * by a power of two).
     */
    private int queryAt(int lane) { return lane / WIDE * headDim * WIDE + lane % WIDE; }

    /** As {@link #queryAt} for the accumulators {@code acc[block][c][WIDE]}. */
    private int accAt(int lane) { return lane / WIDE * valueDim * WIDE + lane % WIDE; }

    private void loadKeysAndValues(int slice, int tileStart, int tileKeys) {
        MemorySegment k = g.key.storage().segment(), v = g.value.storage().segment();
        long keyOffset = g.keyOffset(slice), valueOffset = g.valueOffset(slice);
        // Copies the products read by segment go to native memory (see VectorMemory); lane groups read arrays.
        MemorySegment keyTile = rowsInLanes ? w.keysSegment : w.rowKeys, valueTile = rowsInLanes ? w.valuesSegment : w.rowValues;
        if (keysInPlace) {
            dma.readInPlace((long) tileKeys * headDim);
        } else if (g.keyColStride == 1 && g.keyRowStride == headDim) {
            dma.load(k, g.key.dtype(), keyOffset + (long) tileStart * headDim, 1, keyTile, 0, 1, tileKeys * headDim);
        } else {
            for (int j = 0; j < tileKeys; j++) {
                dma.load(k, g.key.dtype(), keyOffset + (tileStart + j) * g.keyRowStride, g.keyColStride,
                        keyTile, j * headDim, 1, headDim);
            }
        }
        if (valuesInPlace) {
            dma.readInPlace((long) tileKeys * valueDim);
            return;
        }
        if (g.valueColStride == 1 && g.valueRowStride == valueDim) {
            dma.load(v, g.value.dtype(), valueOffset + (long) tileStart * valueDim, 1, valueTile, 0, 1, tileKeys * valueDim);
        } else {
            for (int j = 0; j < tileKeys; j++) {
                dma.load(v, g.value.dtype(), valueOffset + (tileStart + j) * g.valueRowStride, g.valueColStride,
                        valueTile, j * valueDim, 1, valueDim);
            }
        }
        valuesFinite = rowsInLanes ? allFinite(w.values, tileKeys * valueDim) : allFinite(w.rowValues, tileKeys * valueDim);
    }

    private static boolean allFinite(MemorySegment a, int n) {
        FloatVector probe = FloatVector.zero(SPECIES);
        int i = 0;
        for (int bound = SPECIES.loopBound(n); i < bound; i += LANES) {
            probe = probe.add(FloatVector.fromMemorySegment(SPECIES, a, (long) i * Float.BYTES, ByteOrder.nativeOrder()).mul(0f));
        }
        float tail = 0f;
        for (; i < n; i++) tail += a.getAtIndex(ValueLayout.JAVA_FLOAT, i) * 0f;
        return !probe.test(VectorOperators.IS_NAN).anyTrue() && tail == 0f;
    }

    private static boolean allFinite(float[] a, int n) {
        // x * 0 is 0 for finite x and NaN for NaN or infinity.
        FloatVector probe = FloatVector.zero(SPECIES);
        int i = 0;
        for (int bound = SPECIES.loopBound(n); i < bound; i += LANES) probe = probe.add(FloatVector.fromArray(SPECIES, a, i).mul(0f));
        float tail = 0f;
        for (; i < n; i++) tail += a[i] * 0f;
        return !probe.test(VectorOperators.IS_NAN).anyTrue() && tail == 0f;
    }

    /**
     * One group of query lanes ({@code width} vectors from {@code lane}) against a key
     * tile, in compute tiles of {@link Tiling#computeKeys}: scores, soft-cap and masks, the
     * online softmax update, and the weighted values.
     */
    private void group(int slice, int firstRow, int rows, int lane, int width, int tileStart, int tileKeys) {
        int groupFirst = firstRow + lane;
        int groupLast = Math.min(groupFirst + width * LANES, firstRow + rows) - 1;
        int groupKeys = Math.min(tileKeys, g.visibleKeys(groupLast) - tileStart);
        int computeKeys = tiling.computeKeys();
        for (int sub = 0; sub < groupKeys; sub += computeKeys) {
            int keys = Math.min(computeKeys, groupKeys - sub);
            int firstKey = tileStart + sub;
            if (width == 2) scores2(lane, sub, keys);
            else scores1(lane, sub, keys);
            if (g.mask != null) loadBias(slice, groupFirst, Math.min(width * LANES, firstRow + rows - groupFirst), firstKey, keys);
            // Only a tile crossing the diagonal needs the element-wise causal test: the group's first row sees fewer keys.
            boolean diagonal = g.causal && g.visibleKeys(groupFirst) - firstKey < keys;
            for (int v = 0; v < width; v++) softmax(lane + v * LANES, v * LANES, groupFirst + v * LANES, firstKey, keys, diagonal);
            if (!valuesFinite) accumulateSafe(lane, width, sub, keys);
            else if (width == 2) accumulate2(lane, sub, keys);
            else accumulate1(lane, sub, keys);
        }
    }

    /** Groups run their scalar twin while the JIT has not compiled the vector code (see {@link ScalarTwin}). */
    private static final ScalarTwin TWIN = new ScalarTwin();

    /** {@link #group} or, with no soft-cap (rare, and its tanh has no scalar twin), its scalar twin {@link #groupScalar}. */
    private void groupEitherWay(int slice, int firstRow, int rows, int lane, int width, int tileStart, int tileKeys) {
        if (softcap > 0 || TWIN.settled()) {
            group(slice, firstRow, rows, lane, width, tileStart, tileKeys);
            return;
        }
        // The keys the group sees of the tile (fewer near the causal diagonal), for rates comparable between pieces.
        int groupLast = Math.min(firstRow + lane + width * LANES, firstRow + rows) - 1;
        long work = (long) width * LANES * Math.max(1, Math.min(tileKeys, g.visibleKeys(groupLast) - tileStart)) * (headDim + valueDim);
        boolean scalar = TWIN.scalarNext(work);
        long start = System.nanoTime();
        if (scalar) groupScalar(slice, firstRow, rows, lane, width, tileStart, tileKeys);
        else group(slice, firstRow, rows, lane, width, tileStart, tileKeys);
        TWIN.record(scalar, System.nanoTime() - start, work);
    }

    /**
     * {@link #group} as scalar code, a query row at a time: for each row the same
     * operations in the same order as in its lane of the vector code (scores, masks, online
     * softmax, weighted values), so the same bits. Padding lanes are left alone: nothing
     * reads them.
     */
    private void groupScalar(int slice, int firstRow, int rows, int lane, int width, int tileStart, int tileKeys) {
        int groupFirst = firstRow + lane;
        int groupRows = Math.min(width * LANES, rows - lane);
        int groupKeys = Math.min(tileKeys, g.visibleKeys(groupFirst + groupRows - 1) - tileStart);
        int computeKeys = tiling.computeKeys(), d = headDim, dv = valueDim;
        float[] q = w.queries, k = w.keys, v = w.values, acc = w.acc, s = w.rowScores, bias = w.bias;
        boolean masked = g.mask != null;
        for (int sub = 0; sub < groupKeys; sub += computeKeys) {
            int keys = Math.min(computeKeys, groupKeys - sub);
            int firstKey = tileStart + sub;
            if (masked) loadBias(slice, groupFirst, groupRows, firstKey, keys);
            boolean diagonal = g.causal && g.visibleKeys(groupFirst) - firstKey < keys;
            for (int i = 0; i < groupRows; i++) {
                int r = lane + i, qi = queryAt(r);
                // As in mask(): lane i % LANES of the vector whose first row is groupFirst + i / LANES * LANES.
                long firstVisible = Math.clamp(groupFirst + i / LANES * LANES + g.causalOffset + 1 - firstKey, -LANES, keys + 1L);
                float visible = (float) (i % LANES) + (float) firstVisible;
                float max = NEG_INF;
                for (int j = 0; j < keys; j++) {
                    float x = 0f;
                    for (int e = 0, k0 = (sub + j) * d; e < d; e++) x = Math.fma(q[qi + e * WIDE], k[k0 + e], x);
                    if (masked) {
                        float b = bias[j * WIDE + i];
                        x = b == NEG_INF ? NEG_INF : x + b;
                    }
                    if (diagonal && visible <= j) x = NEG_INF;
                    s[j] = x;
                    if (x > max) max = x;
                }
                float previous = w.rowMax[r];
                float next = max > previous ? max : previous;
                float shift = next == NEG_INF ? 0f : next;
                float sum = 0f;
                for (int j = 0; j < keys; j++) {
                    float p = VectorMath.exp(s[j] - shift);
                    s[j] = p;
                    sum += p;
                }
                float correction = VectorMath.exp(previous - shift);
                w.rowMax[r] = Float.isNaN(sum) ? Float.NaN : next;
                w.rowSum[r] = Math.fma(w.rowSum[r], correction, sum);
                int o = accAt(r);
                if (correction != 1f) for (int c = 0; c < dv; c++) acc[o + c * WIDE] *= correction;
                for (int j = 0; j < keys; j++) {
                    float p = s[j];
                    if (!valuesFinite && p == 0f) continue;
                    for (int c = 0, vi = (sub + j) * dv; c < dv; c++) acc[o + c * WIDE] = Math.fma(p, v[vi + c], acc[o + c * WIDE]);
                }
            }
        }
    }

    // ------------------------------------------------------------------ scores: queries in lanes, keys broadcast

    /** scores[j][0, WIDE) = q^T[., lane..lane+WIDE) . k[sub + j] for j in [0, keys). */
    private void scores2(int lane, int sub, int keys) {
        float[] q = w.queries, k = w.keys, s = w.scores;
        int d = headDim, j = 0;
        for (; j + 4 <= keys; j += 4) {
            FloatVector a0 = FloatVector.zero(SPECIES), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, a3 = a0, b3 = a0;
            int k0 = (sub + j) * d;
            for (int e = 0, qi = queryAt(lane); e < d; e++, qi += WIDE) {
                FloatVector lo = FloatVector.fromArray(SPECIES, q, qi), hi = FloatVector.fromArray(SPECIES, q, qi + LANES);
                FloatVector x0 = FloatVector.broadcast(SPECIES, k[k0 + e]);
                a0 = lo.fma(x0, a0);
                b0 = hi.fma(x0, b0);
                FloatVector x1 = FloatVector.broadcast(SPECIES, k[k0 + d + e]);
                a1 = lo.fma(x1, a1);
                b1 = hi.fma(x1, b1);
                FloatVector x2 = FloatVector.broadcast(SPECIES, k[k0 + 2 * d + e]);
                a2 = lo.fma(x2, a2);
                b2 = hi.fma(x2, b2);
                FloatVector x3 = FloatVector.broadcast(SPECIES, k[k0 + 3 * d + e]);
                a3 = lo.fma(x3, a3);
                b3 = hi.fma(x3, b3);
            }
            int o = j * WIDE;
            a0.intoArray(s, o);
            b0.intoArray(s, o + LANES);
            a1.intoArray(s, o + WIDE);
            b1.intoArray(s, o + WIDE + LANES);
            a2.intoArray(s, o + 2 * WIDE);
            b2.intoArray(s, o + 2 * WIDE + LANES);
            a3.intoArray(s, o + 3 * WIDE);
            b3.intoArray(s, o + 3 * WIDE + LANES);
        }
        for (; j < keys; j++) {
            FloatVector a = FloatVector.zero(SPECIES), b = a;
            int k0 = (sub + j) * d;
            for (int e = 0, qi = queryAt(lane); e < d; e++, qi += WIDE) {
                FloatVector x = FloatVector.broadcast(SPECIES, k[k0 + e]);
                a = FloatVector.fromArray(SPECIES, q, qi).fma(x, a);
                b = FloatVector.fromArray(SPECIES, q, qi + LANES).fma(x, b);
            }
            a.intoArray(s, j * WIDE);
            b.intoArray(s, j * WIDE + LANES);
        }
    }

    /** As {@link #scores2} for one vector of query lanes. */
    private void scores1(int lane, int sub, int keys) {
        float[] q = w.queries, k = w.keys, s = w.scores;
        int d = headDim, j = 0;
        for (; j + 4 <= keys; j += 4) {
            FloatVector a0 = FloatVector.zero(SPECIES), a1 = a0, a2 = a0, a3 = a0;
            int k0 = (sub + j) * d;
            for (int e = 0, qi = queryAt(lane); e < d; e++, qi += WIDE) {
                FloatVector x = FloatVector.fromArray(SPECIES, q, qi);
                a0 = x.fma(FloatVector.broadcast(SPECIES, k[k0 + e]), a0);
                a1 = x.fma(FloatVector.broadcast(SPECIES, k[k0 + d + e]), a1);
                a2 = x.fma(FloatVector.broadcast(SPECIES, k[k0 + 2 * d + e]), a2);
                a3 = x.fma(FloatVector.broadcast(SPECIES, k[k0 + 3 * d + e]), a3);
            }
            a0.intoArray(s, j * WIDE);
            a1.intoArray(s, (j + 1) * WIDE);
            a2.intoArray(s, (j + 2) * WIDE);
            a3.intoArray(s, (j + 3) * WIDE);
        }
        for (; j < keys; j++) {
            FloatVector a = FloatVector.zero(SPECIES);
            int k0 = (sub + j) * d;
            for (int e = 0, qi = queryAt(lane); e < d; e++, qi += WIDE) {
                a = FloatVector.fromArray(SPECIES, q, qi).fma(FloatVector.broadcast(SPECIES, k[k0 + e]), a);
            }
            a.intoArray(s, j * WIDE);
        }
    }

    // ------------------------------------------------------------------ masks

    /**
     * The mask of the group's rows for keys [firstKey, firstKey + keys) into
     * {@code bias[j][lane]} as additive bias (bool: 0 or -inf). A mask broadcast over
     * query rows (a padding mask) is read once and copied across the lanes.
     */
    private void loadBias(int slice, int firstRow, int rows, int firstKey, int keys) {
        long offset = g.maskOffset(slice) + firstKey * g.maskColStride;
        MemorySegment src = g.mask.storage().segment();
        float[] b = w.bias;
        int distinct = g.maskRowStride == 0 ? 1 : rows;
        for (int r = 0; r < distinct; r++) {
            dma.load(src, g.mask.dtype(), offset + (firstRow + r) * g.maskRowStride, g.maskColStride, w.biasSegment, r, WIDE, keys);
        }
        boolean bool = g.mask.dtype() == DType.BOOL;
        for (int j = 0; j < keys; j++) {
            int o = j * WIDE;
            if (distinct == 1) Arrays.fill(b, o + 1, o + WIDE, b[o]);
            if (bool) {
                for (int c = 0; c < WIDE; c += LANES) {
                    FloatVector x = FloatVector.fromArray(SPECIES, b, o + c);
                    FloatVector.zero(SPECIES).blend(NEG_INF, x.eq(0f)).intoArray(b, o + c);
                }
            }
        }
    }

    // ------------------------------------------------------------------ online softmax, query lanes at a time

    /**
     * Soft-caps and masks the scores of one vector of query lanes (column {@code col} of
     * the score tile, lanes {@code lane} of the block), folds them into the running maximum
     * and sum, rescales the accumulators, and leaves the unnormalised weights in the tile.
     * Each transcendental function gets its own method: C2 keeps only about two of them
     * per compilation free of vector boxing (see {@link VectorMath}).
     */
    private void softmax(int lane, int col, int firstRow, int firstKey, int keys, boolean diagonal) {
        if (softcap > 0) softcap(col, keys);
        mask(col, firstRow, firstKey, keys, diagonal);
        FloatVector max = FloatVector.fromArray(SPECIES, w.laneMax, 0);
        FloatVector previous = FloatVector.fromArray(SPECIES, w.rowMax, lane);
        FloatVector next = greater(previous, max);
        // Lanes that have seen nothing visible shift by 0: their scores are -inf, their weights exp(-inf) = 0.
        FloatVector shift = next.blend(0f, next.eq(NEG_INF));
        exponentiate(col, keys, shift);
        FloatVector sum = FloatVector.fromArray(SPECIES, w.laneSum, 0);
        FloatVector correction = VectorMath.exp(previous.sub(shift));
        // The compare-and-blend maximum skips NaN scores; their weights are NaN, so a NaN sum marks the lane NaN for good.
        next.blend(Float.NaN, sum.test(VectorOperators.IS_NAN)).intoArray(w.rowMax, lane);
        FloatVector.fromArray(SPECIES, w.rowSum, lane).fma(correction, sum).intoArray(w.rowSum, lane);
        if (correction.compare(VectorOperators.NE, 1f).anyTrue()) {
            float[] acc = w.acc;
            for (int c = 0, o = accAt(lane); c < valueDim; c++, o += WIDE) {
                FloatVector.fromArray(SPECIES, acc, o).mul(correction).intoArray(acc, o);
            }
        }
    }

    /** {@code softcap * tanh(s / softcap)} on the scaled scores, before any mask. */
    private void softcap(int col, int keys) {
        float[] s = w.scores;
        FloatVector cap = FloatVector.broadcast(SPECIES, softcap), invCap = FloatVector.broadcast(SPECIES, 1f / softcap);
        for (int j = 0, o = col; j < keys; j++, o += WIDE) {
            VectorMath.tanh(FloatVector.fromArray(SPECIES, s, o).mul(invCap)).mul(cap).intoArray(s, o);
        }
    }

    /**
     * Adds the bias, selects -inf where the mask or the causal rule excludes a key; leaves
     * the lanes' maxima in {@code laneMax}. Vectors leave loops through arrays, not return
     * values: a returned loop-carried vector is boxed on every iteration.
     */
    private void mask(int col, int firstRow, int firstKey, int keys, boolean diagonal) {
        float[] s = w.scores, b = w.bias;
        boolean masked = g.mask != null;
        FloatVector negInf = FloatVector.broadcast(SPECIES, NEG_INF);
        // Lane r sees key firstKey + j when j < visible[r] = firstRow + r + offset + 1 - firstKey; clamped so that it
        // is exact in float and every lane keeps its answer (at -LANES no lane sees a key, at keys + 1 each sees all).
        long firstVisible = Math.clamp(firstRow + g.causalOffset + 1 - firstKey, -LANES, keys + 1L);
        FloatVector visible = IOTA.add((float) firstVisible);
        FloatVector max = negInf;
        if (!masked && !diagonal) {
            for (int j = 0, o = col; j < keys; j++, o += WIDE) max = greater(max, FloatVector.fromArray(SPECIES, s, o));
            max.intoArray(w.laneMax, 0);
            return;
        }
        for (int j = 0, o = col; j < keys; j++, o += WIDE) {
            FloatVector x = FloatVector.fromArray(SPECIES, s, o);
            if (masked) {
                FloatVector bias = FloatVector.fromArray(SPECIES, b, o);
                x = x.add(bias).blend(negInf, bias.eq(NEG_INF));
            }
            if (diagonal) x = x.blend(negInf, visible.compare(VectorOperators.LE, (float) j));
            x.intoArray(s, o);
            max = greater(max, x);
        }
        max.intoArray(w.laneMax, 0);
    }

    /**
     * The lane-wise maximum by compare and blend: C2 does not compile {@code FloatVector.max}
     * to vector code on every x86 (it falls back to boxed Java code there). A NaN is not
     * propagated, but needs not be: the weight exp(NaN - max) is NaN and carries it on.
     */
    private static FloatVector greater(FloatVector a, FloatVector b) {
        return a.blend(b, b.compare(VectorOperators.GT, a));
    }

    /** Weights {@code exp(s - shift)} in place; their sums per lane into {@code laneSum}. */
    private void exponentiate(int col, int keys, FloatVector shift) {
        float[] s = w.scores;
        FloatVector sum = FloatVector.zero(SPECIES);
        for (int j = 0, o = col; j < keys; j++, o += WIDE) {
            // VectorMath.exp, not lanewise(EXP): the library's EXP differs between the interpreter and C2.
            FloatVector p = VectorMath.exp(FloatVector.fromArray(SPECIES, s, o).sub(shift));
            p.intoArray(s, o);
            sum = sum.add(p);
        }
        sum.intoArray(w.laneSum, 0);
    }

    // ------------------------------------------------------------------ weights times values

    /** acc[c][lane..lane+WIDE) += sum_j weights[j][.] v[sub + j][c]. */
    private void accumulate2(int lane, int sub, int keys) {
        float[] acc = w.acc, v = w.values, s = w.scores;
        int dv = valueDim, c = 0;
        for (; c + 4 <= dv; c += 4) {
            int o = accAt(lane) + c * WIDE;
            FloatVector a0 = FloatVector.fromArray(SPECIES, acc, o), b0 = FloatVector.fromArray(SPECIES, acc, o + LANES);
            FloatVector a1 = FloatVector.fromArray(SPECIES, acc, o + WIDE), b1 = FloatVector.fromArray(SPECIES, acc, o + WIDE + LANES);
            FloatVector a2 = FloatVector.fromArray(SPECIES, acc, o + 2 * WIDE), b2 = FloatVector.fromArray(SPECIES, acc, o + 2 * WIDE + LANES);
            FloatVector a3 = FloatVector.fromArray(SPECIES, acc, o + 3 * WIDE), b3 = FloatVector.fromArray(SPECIES, acc, o + 3 * WIDE + LANES);
            for (int j = 0, vi = sub * dv + c, si = 0; j < keys; j++, vi += dv, si += WIDE) {
                FloatVector lo = FloatVector.fromArray(SPECIES, s, si), hi = FloatVector.fromArray(SPECIES, s, si + LANES);
                FloatVector x0 = FloatVector.broadcast(SPECIES, v[vi]);
                a0 = lo.fma(x0, a0);
                b0 = hi.fma(x0, b0);
                FloatVector x1 = FloatVector.broadcast(SPECIES, v[vi + 1]);
                a1 = lo.fma(x1, a1);
                b1 = hi.fma(x1, b1);
                FloatVector x2 = FloatVector.broadcast(SPECIES, v[vi + 2]);
                a2 = lo.fma(x2, a2);
                b2 = hi.fma(x2, b2);
                FloatVector x3 = FloatVector.broadcast(SPECIES, v[vi + 3]);
                a3 = lo.fma(x3, a3);
                b3 = hi.fma(x3, b3);
            }
            a0.intoArray(acc, o);
            b0.intoArray(acc, o + LANES);
            a1.intoArray(acc, o + WIDE);
            b1.intoArray(acc, o + WIDE + LANES);
            a2.intoArray(acc, o + 2 * WIDE);
            b2.intoArray(acc, o + 2 * WIDE + LANES);
            a3.intoArray(acc, o + 3 * WIDE);
            b3.intoArray(acc, o + 3 * WIDE + LANES);
        }
        for (; c < dv; c++) {
            int o = accAt(lane) + c * WIDE;
            FloatVector a = FloatVector.fromArray(SPECIES, acc, o), b = FloatVector.fromArray(SPECIES, acc, o + LANES);
            for (int j = 0, vi = sub * dv + c, si = 0; j < keys; j++, vi += dv, si += WIDE) {
                FloatVector x = FloatVector.broadcast(SPECIES, v[vi]);
                a = FloatVector.fromArray(SPECIES, s, si).fma(x, a);
                b = FloatVector.fromArray(SPECIES, s, si + LANES).fma(x, b);
            }
            a.intoArray(acc, o);
            b.intoArray(acc, o + LANES);
        }
    }

    /** As {@link #accumulate2} for one vector of query lanes. */
    private void accumulate1(int lane, int sub, int keys) {
        float[] acc = w.acc, v = w.values, s = w.scores;
        int dv = valueDim, c = 0;
        for (; c + 4 <= dv; c += 4) {
            int o = accAt(lane) + c * WIDE;
            FloatVector a0 = FloatVector.fromArray(SPECIES, acc, o), a1 = FloatVector.fromArray(SPECIES, acc, o + WIDE);
            FloatVector a2 = FloatVector.fromArray(SPECIES, acc, o + 2 * WIDE), a3 = FloatVector.fromArray(SPECIES, acc, o + 3 * WIDE);
            for (int j = 0, vi = sub * dv + c, si = 0; j < keys; j++, vi += dv, si += WIDE) {
                FloatVector p = FloatVector.fromArray(SPECIES, s, si);
                a0 = p.fma(FloatVector.broadcast(SPECIES, v[vi]), a0);
                a1 = p.fma(FloatVector.broadcast(SPECIES, v[vi + 1]), a1);
                a2 = p.fma(FloatVector.broadcast(SPECIES, v[vi + 2]), a2);
                a3 = p.fma(FloatVector.broadcast(SPECIES, v[vi + 3]), a3);
            }
            a0.intoArray(acc, o);
            a1.intoArray(acc, o + WIDE);
            a2.intoArray(acc, o + 2 * WIDE);
            a3.intoArray(acc, o + 3 * WIDE);
        }
        for (; c < dv; c++) {
            int o = accAt(lane) + c * WIDE;
            FloatVector a = FloatVector.fromArray(SPECIES, acc, o);
            for (int j = 0, vi = sub * dv + c, si = 0; j < keys; j++, vi += dv, si += WIDE) {
                a = FloatVector.fromArray(SPECIES, s, si).fma(FloatVector.broadcast(SPECIES, v[vi]), a);
            }
            a.intoArray(acc, o);
        }
    }

    /** For value tiles holding NaN or infinity: lanes whose weight is exactly zero keep their accumulator. */
    private void accumulateSafe(int lane, int width, int sub, int keys) {
        float[] acc = w.acc, v = w.values, s = w.scores;
        for (int h = 0; h < width; h++) {
            for (int c = 0; c < valueDim; c++) {
                int o = accAt(lane + h * LANES) + c * WIDE;
                FloatVector a = FloatVector.fromArray(SPECIES, acc, o);
                for (int j = 0, vi = sub * valueDim + c, si = h * LANES; j < keys; j++, vi += valueDim, si += WIDE) {
                    FloatVector p = FloatVector.fromArray(SPECIES, s, si);
                    a = p.fma(FloatVector.broadcast(SPECIES, v[vi]), a).blend(a, p.eq(0f));
                }
                a.intoArray(acc, o);
            }
        }
    }

    // ------------------------------------------------------------------ few rows: head elements in lanes

    /**
     * The block's rows against a key tile when not {@link #rowsInLanes}, in compute tiles of
     * {@link #rowKeys}: scores of rows {@code [r][key]} in {@code scores}, then per row the
     * same soft-cap, masks and online softmax as {@link #softmax} gives a lane, then the
     * weighted values into accumulator rows {@code [r][c]}.
     */
    private void rowsTile(int slice, int firstRow, int rows, int tileStart, int tileKeys) {
        int seen = Math.min(tileKeys, g.visibleKeys(firstRow + rows - 1) - tileStart);
        if (seen <= 0) return;
        long work = (long) rows * seen * (headDim + valueDim);
        boolean scalar = ROWS_TWIN.scalarNext(work);
        long start = System.nanoTime();
        long[] rowByte = w.rowByte;
        RowProducts products = w.products;
        MemorySegment keys = keysInPlace ? g.key.storage().segment() : w.rowKeys;
        MemorySegment values = valuesInPlace ? g.value.storage().segment() : w.rowValues;
        // Element offsets of the tile's first key and value rows, and their strides, where the products read them.
        long keyBase = keysInPlace ? g.keyOffset(slice) + tileStart * g.keyRowStride : 0, keyStride = keysInPlace ? g.keyRowStride : headDim;
        long valueBase = valuesInPlace ? g.valueOffset(slice) + tileStart * g.valueRowStride : 0;
        long valueStride = valuesInPlace ? g.valueRowStride : valueDim;
        for (int sub = 0; sub < seen; sub += rowKeys) {
            int n = Math.min(rowKeys, seen - sub), firstKey = tileStart + sub;
            for (int j = 0; j < n; j++) rowByte[j] = (keyBase + (sub + j) * keyStride) * Float.BYTES;
            if (scalar) products.scoresScalar(w.queries, 0, rows, headDim, keys, rowByte, n, w.scores, 0, rowKeys);
            else products.scores(w.queries, 0, rows, headDim, keys, rowByte, n, w.scores, 0, rowKeys);
            if (g.mask != null) loadBias(slice, firstRow, rows, firstKey, n);
            for (int r = 0; r < rows; r++) softmaxRow(r, firstRow + r, firstKey, n, scalar);
            for (int j = 0; j < n; j++) rowByte[j] = (valueBase + (sub + j) * valueStride) * Float.BYTES;
            // Values read in place are not scanned for NaN or infinity first (a second pass): zero weights are always skipped.
            boolean skipZeros = valuesInPlace || !valuesFinite;
            if (scalar) RowProducts.accumulateScalar(w.acc, 0, rows, valueDim, values, rowByte, n, w.scores, 0, rowKeys, skipZeros);
            else products.accumulate(w.acc, 0, rows, valueDim, values, rowByte, n, w.scores, 0, rowKeys, skipZeros);
        }
        ROWS_TWIN.record(scalar, System.nanoTime() - start, work);
    }

    /** Rows tiles run their scalar twin while the JIT has not compiled the vector code (see {@link ScalarTwin}). */
    private static final ScalarTwin ROWS_TWIN = new ScalarTwin();

    /** {@link #softmax}, {@link #softcap}, {@link #mask} and {@link #exponentiate} for row r of a rows tile, with the lanes' rules. */
    private void softmaxRow(int r, int row, int firstKey, int keys, boolean scalar) {
        float[] s = w.scores, b = w.bias;
        int o = r * rowKeys;
        boolean masked = g.mask != null;
        // Keys from `visible` on lie past the causal diagonal (never, without the causal mask).
        long visible = g.visibleKeys(row) - (long) firstKey;
        float max = NEG_INF, invCap = 1f / softcap;
        for (int j = 0; j < keys; j++) {
            float x = s[o + j];
            if (softcap > 0) x = VectorMath.tanh(x * invCap) * softcap;
            if (masked) {
                float bias = b[j * WIDE + r];
                x = bias == NEG_INF ? NEG_INF : x + bias;
            }
            if (j >= visible) x = NEG_INF;
            s[o + j] = x;
            if (x > max) max = x;
        }
        float previous = w.rowMax[r];
        float next = max > previous ? max : previous;
        float shift = next == NEG_INF ? 0f : next;
        float sum = scalar ? w.products.exponentiateScalar(s, o, keys, shift) : RowProducts.exponentiate(s, o, keys, shift);
        float correction = VectorMath.exp(previous - shift);
        w.rowMax[r] = Float.isNaN(sum) ? Float.NaN : next;
        w.rowSum[r] = Math.fma(w.rowSum[r], correction, sum);
        if (correction != 1f) for (int c = r * valueDim, end = c + valueDim; c < end; c++) w.acc[c] *= correction;
    }

    // ------------------------------------------------------------------ output

    /**
     * Divides each lane's accumulators by its sum in place; lanes that saw no key (all
     * masked) become zero, as PyTorch's safe softmax gives.
     */
    private void normalise(int qPad) {
        float[] acc = w.acc;
        if (!rowsInLanes) {
            for (int r = 0; r < qPad; r++) {
                float sum = w.rowSum[r];
                boolean empty = w.rowMax[r] == NEG_INF;
                for (int c = 0, o = r * valueDim; c < valueDim; c++, o++) acc[o] = empty ? 0f : acc[o] / sum;
            }
            return;
        }
        for (int lane = 0; lane < qPad; lane += LANES) {
            FloatVector sum = FloatVector.fromArray(SPECIES, w.rowSum, lane);
            VectorMask<Float> empty = FloatVector.fromArray(SPECIES, w.rowMax, lane).eq(NEG_INF);
            for (int c = 0, o = accAt(lane); c < valueDim; c++, o += WIDE) {
                FloatVector.fromArray(SPECIES, acc, o).div(sum).blend(0f, empty).intoArray(acc, o);
            }
        }
    }

    private void finish(int slice, int firstRow, int rows, int qPad) {
        normalise(qPad);
        MemorySegment out = g.out.storage().segment();
        for (int r = 0; r < rows; r++) {
            gatherRow(r);
            dma.store(w.rowSegment, 0, 1, out, g.out.dtype(), g.outOffset(slice, firstRow + r), valueDim);
        }
    }

    /** Lane r's accumulators (or row r's, when not {@link #rowsInLanes}) into {@code row}, for a contiguous store. */
    private void gatherRow(int r) {
        float[] acc = w.acc, row = w.row;
        if (!rowsInLanes) {
            System.arraycopy(acc, r * valueDim, row, 0, valueDim);
            return;
        }
        for (int c = 0, i = accAt(r); c < valueDim; c++, i += WIDE) row[c] = acc[i];
    }

    /** A partition's normalised rows and their log-sum-exps, for {@link #merge}. */
    private void finishPartial(int slice, int firstRow, int rows, int qPad, int partition) {
        normalise(qPad);
        long rowBase = (long) partition * g.slices * g.queries + (long) slice * g.queries + firstRow;
        for (int r = 0; r < rows; r++) {
            gatherRow(r);
            dma.store(w.rowSegment, 0, 1, partialOut, DType.FLOAT32, (rowBase + r) * valueDim, valueDim);
            float m = w.rowMax[r];
            w.lse[r] = m == NEG_INF ? NEG_INF : m + (float) Math.log(w.rowSum[r]);
        }
        dma.store(w.lseSegment, 0, 1, partialLse, DType.FLOAT32, rowBase, rows);
    }

    /** Output row {@code row} (of all slices' rows) as the log-sum-exp weighted mean of the partitions' rows. */
    private void merge(long row) {
        int parts = tiling.partitions();
        long rowsPerPartition = (long) g.slices * g.queries;
        float[] lse = w.lse, acc = w.acc, part = w.values;
        float max = NEG_INF;
        for (int p = 0; p < parts; p++) {
            dma.load(partialLse, DType.FLOAT32, p * rowsPerPartition + row, 1, w.lseSegment, p, 1, 1);
            max = Float.isNaN(lse[p]) || Float.isNaN(max) ? Float.NaN : Math.max(max, lse[p]);
        }
        int padded = roundUp(valueDim, LANES);
        Arrays.fill(acc, 0, padded, 0f);
        if (max != NEG_INF) {
            float total = 0f;
            for (int p = 0; p < parts; p++) {
                float weight = (float) Math.exp(lse[p] - max);
                if (Float.isNaN(max)) weight = Float.NaN;
                total += weight;
                // A partition whose rows saw nothing has weight 0 and zero rows: skipped, never multiplied.
                if (weight == 0f) continue;
                dma.load(partialOut, DType.FLOAT32, (p * rowsPerPartition + row) * valueDim, 1, w.valuesSegment, 0, 1, valueDim);
                Arrays.fill(part, valueDim, padded, 0f);
                FloatVector f = FloatVector.broadcast(SPECIES, weight);
                for (int c = 0; c < padded; c += LANES) {
                    FloatVector.fromArray(SPECIES, part, c).fma(f, FloatVector.fromArray(SPECIES, acc, c)).intoArray(acc, c);
                }
            }
            FloatVector t = FloatVector.broadcast(SPECIES, total);
            for (int c = 0; c < padded; c += LANES) FloatVector.fromArray(SPECIES, acc, c).div(t).intoArray(acc, c);
        }
        int slice = (int) (row / g.queries), r = (int) (row % g.queries);
        dma.store(w.accSegment, 0, 1, g.out.storage().segment(), g.out.dtype(), g.outOffset(slice, r), valueDim);
    }

    // ------------------------------------------------------------------ per-worker SRAM

    /**
     * One worker's SRAM working set, sized by the {@link Tiling} (so within the device's
     * SRAM per core, see {@link Tiling#workspaceFloats}) and kept across launches. Heap
     * arrays behind heap segments: the DMA copies into the segments, the micro-kernels read
     * the arrays. The merge pass of split-KV reuses {@code values} for a partition's row and
     * {@code acc} for the merged row.
     */
    private static final class Workspace {
        private static final ThreadLocal<Workspace> LOCAL = new ThreadLocal<>();

        final float[] queries, keys, values, scores, bias, acc, rowMax, rowSum, lse;
        /** One query row's scores, for the scalar twin. */
        final float[] rowScores;
        final float[] laneMax = new float[LANES], laneSum = new float[LANES];
        /** Where each key's row of a compute tile starts in the key or value tile, for {@link RowProducts}. */
        final long[] rowByte;
        final RowProducts products = new RowProducts();
        /** One query or output row in the caller's layout. */
        final float[] row;
        final MemorySegment queriesSegment, keysSegment, valuesSegment, biasSegment, accSegment, lseSegment, rowSegment;
        /** The key and value tiles copied for few-row units, which {@link RowProducts} reads by segment: native ({@link VectorMemory}). */
        final MemorySegment rowKeys, rowValues;

        private Workspace(Tiling t, int headDim, int valueDim) {
            int rows = roundUp(t.queryBlock(), WIDE), valuePad = roundUp(valueDim, LANES);
            queries = new float[Math.multiplyExact(rows, headDim)];
            keys = new float[Math.multiplyExact(t.keyTile(), headDim)];
            values = new float[Math.max(Math.multiplyExact(t.keyTile(), valueDim), valuePad)];
            scores = new float[t.computeKeys() * WIDE];
            rowScores = new float[t.computeKeys()];
            rowByte = new long[t.computeKeys()];
            bias = new float[t.computeKeys() * WIDE];
            acc = new float[Math.max(Math.multiplyExact(rows, valueDim), valuePad)];
            rowMax = new float[rows];
            rowSum = new float[rows];
            lse = new float[Math.max(rows, t.partitions())];
            row = new float[Math.max(headDim, valueDim)];
            queriesSegment = MemorySegment.ofArray(queries);
            keysSegment = MemorySegment.ofArray(keys);
            valuesSegment = MemorySegment.ofArray(values);
            biasSegment = MemorySegment.ofArray(bias);
            accSegment = MemorySegment.ofArray(acc);
            lseSegment = MemorySegment.ofArray(lse);
            rowSegment = MemorySegment.ofArray(row);
            rowKeys = VectorMemory.floats(keys.length);
            rowValues = VectorMemory.floats(values.length);
        }

        private boolean fits(Tiling t, int headDim, int valueDim) {
            int rows = roundUp(t.queryBlock(), WIDE), valuePad = roundUp(valueDim, LANES);
            return queries.length >= (long) rows * headDim && keys.length >= (long) t.keyTile() * headDim
                    && values.length >= Math.max((long) t.keyTile() * valueDim, valuePad)
                    && scores.length >= t.computeKeys() * WIDE && rowScores.length >= t.computeKeys() && rowByte.length >= t.computeKeys()
                    && acc.length >= Math.max((long) rows * valueDim, valuePad)
                    && rowMax.length >= rows && lse.length >= Math.max(rows, t.partitions()) && row.length >= Math.max(headDim, valueDim);
        }

        static Workspace local(Tiling t, int headDim, int valueDim) {
            Workspace ws = LOCAL.get();
            if (ws == null || !ws.fits(t, headDim, valueDim)) {
                ws = new Workspace(t, headDim, valueDim);
                LOCAL.set(ws);
            }
            return ws;
        }
    }

    private static int roundUp(int n, int multiple) { return Math.ceilDiv(n, multiple) * multiple; }

    private static float[] iota() {
        float[] a = new float[LANES];
        for (int i = 0; i < LANES; i++) a[i] = i;
        return a;
    }
}
