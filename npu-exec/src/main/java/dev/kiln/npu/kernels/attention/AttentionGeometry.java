package dev.kiln.npu.kernels.attention;

import dev.kiln.npu.StridedIndex;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.Arrays;

/**
 * Where each attention slice (one combination of the broadcast batch dimensions, the
 * last of them being the query head) of q, k, v and the mask starts, and the row and
 * column strides within a slice. Work is split into units of one slice and one block
 * of query rows.
 */
final class AttentionGeometry {
    final Tensor query, key, value, mask, out;
    final boolean causal;
    /** Under {@link #causal}, query row i sees key j when {@code j <= i + causalOffset}. */
    final long causalOffset;
    /** Multiplies q.k; {@link #softcap} (0: none) then bounds the scaled score to (-softcap, softcap). */
    final double scale, softcap;
    final int partitionSize;
    final int slices, queries, keys, headDim, valueDim;
    final long queryRowStride, queryColStride, keyRowStride, keyColStride, valueRowStride, valueColStride;
    final long maskRowStride, maskColStride;
    final int queryBlock, queryBlocks;

    private final int[] batch;
    private final long[] queryBatchStrides, keyBatchStrides, valueBatchStrides, maskBatchStrides, outBatchStrides;
    private final long outRowStride;
    /** Divides the head index before it meets the key/value head stride: query heads per KV head under GQA, else 1. */
    private final int headGroup;

    AttentionGeometry(AttentionSpec spec, Tensor[] in, Tensor out, int queryBlock) {
        this.query = in[0];
        this.key = in[1];
        this.value = in[2];
        this.mask = spec.hasMask() ? in[3] : null;
        this.out = out;
        this.causal = spec.causal();
        this.scale = spec.scale();
        this.softcap = spec.softcap();
        this.partitionSize = spec.partitionSize();

        int[] outDims = out.shape().dims();
        this.batch = Arrays.copyOf(outDims, outDims.length - 2);
        this.queries = query.size(-2);
        this.keys = key.size(-2);
        this.headDim = query.size(-1);
        this.valueDim = value.size(-1);
        // Offsets beyond these bounds see the same keys (all, or none for every row): clamped, row + offset never overflows.
        this.causalOffset = Math.clamp(spec.causalOffset(), -(long) queries - 1, keys);
        this.slices = Math.toIntExact(Shape.of(batch).numel());

        Shape batchShape = Shape.of(batch);
        boolean gqa = spec.enableGqa() && query.rank() >= 3 && key.rank() >= 3;
        this.headGroup = gqa ? query.size(-3) / key.size(-3) : 1;
        this.queryBatchStrides = batchStrides(query, batchShape, false);
        this.keyBatchStrides = batchStrides(key, batchShape, gqa);
        this.valueBatchStrides = batchStrides(value, batchShape, gqa);
        this.queryRowStride = query.layout().strides()[query.rank() - 2];
        this.queryColStride = query.layout().strides()[query.rank() - 1];
        this.keyRowStride = key.layout().strides()[key.rank() - 2];
        this.keyColStride = key.layout().strides()[key.rank() - 1];
        this.valueRowStride = value.layout().strides()[value.rank() - 2];
        this.valueColStride = value.layout().strides()[value.rank() - 1];
        if (mask != null) {
            int[] scoreDims = Arrays.copyOf(batch, batch.length + 2);
            scoreDims[batch.length] = queries;
            scoreDims[batch.length + 1] = keys;
            long[] st = StridedIndex.broadcastStrides(mask.layout(), Shape.of(scoreDims));
            this.maskBatchStrides = Arrays.copyOf(st, batch.length);
            this.maskRowStride = st[batch.length];
            this.maskColStride = st[batch.length + 1];
        } else {
            this.maskBatchStrides = null;
            this.maskRowStride = 0;
            this.maskColStride = 0;
        }
        // The output may be a view whose rows run contiguously (a transposed output, Op.Attention): rows and slices at its strides.
        long[] outStrides = out.layout().strides();
        if (outStrides[outStrides.length - 1] != 1 && valueDim > 1) {
            throw new IllegalArgumentException("attention writes output rows contiguously, got an output of strides " + Arrays.toString(outStrides));
        }
        this.outBatchStrides = Arrays.copyOf(outStrides, outStrides.length - 2);
        this.outRowStride = outStrides[outStrides.length - 2];
        this.queryBlock = queryBlock;
        this.queryBlocks = (queries + queryBlock - 1) / queryBlock;
    }

    /**
     * Strides of t's batch dimensions broadcast to {@code batchShape}. Under GQA the head
     * dimension keeps its real stride even where it has size 1, because the head index is
     * divided by {@link #headGroup} first (which maps every query head to KV head 0 then).
     */
    private static long[] batchStrides(Tensor t, Shape batchShape, boolean gqaHead) {
        int rank = batchShape.rank(), tRank = t.rank() - 2, lead = rank - tRank;
        long[] st = new long[rank];
        for (int i = Math.max(lead, 0); i < rank; i++) {
            boolean broadcast = t.size(i - lead) == 1 && !(gqaHead && i == rank - 1);
            st[i] = broadcast ? 0 : t.layout().strides()[i - lead];
        }
        return st;
    }

    long units() { return (long) slices * queryBlocks; }

    int sliceOf(long unit) { return (int) (unit / queryBlocks); }

    /**
     * First query row of a unit. Under a causal mask later blocks cost more, so blocks of
     * one slice are visited as first, last, second, second to last...: contiguous ranges
     * of units, as {@code Parallel.forRange} hands them out, then carry similar work.
     */
    int queryStartOf(long unit) {
        int t = (int) (unit % queryBlocks);
        if (!causal) return t * queryBlock;
        int block = t % 2 == 0 ? t / 2 : queryBlocks - 1 - t / 2;
        return block * queryBlock;
    }

    /** Query heads per key/value head under GQA (1 without). */
    int headGroup() { return headGroup; }

    /**
     * For one query row under GQA (decode): the same attention with the query heads that
     * share a key/value head packed as the rows of one slice, so each key/value head is read
     * once for all of them and its query heads fill vector lanes. Slices become
     * (batch, KV head), rows the group's query heads: q's head stride becomes the row
     * stride, as do the mask's and the output's ([..., Hq, 1, Ev] read as [..., Hkv, G, Ev]).
     * A single row's causal rule is a key limit, {@code offset + 1}.
     */
    AttentionGeometry packHeads() {
        int last = batch.length - 1, g = headGroup;
        int[] packedBatch = batch.clone();
        packedBatch[last] /= g;
        long[] q = queryBatchStrides.clone(), m = maskBatchStrides == null ? null : maskBatchStrides.clone(), o = outBatchStrides.clone();
        q[last] *= g;
        if (m != null) m[last] *= g;
        o[last] *= g;
        int visible = visibleKeys(0);
        return new AttentionGeometry(query, key, value, mask, out, false, 0, scale, softcap, partitionSize,
                slices / g, g, visible, headDim, valueDim, queryBatchStrides[last], queryColStride, keyRowStride, keyColStride,
                valueRowStride, valueColStride, mask == null ? 0 : maskBatchStrides[last], maskColStride, queryBlock,
                packedBatch, q, keyBatchStrides, valueBatchStrides, m, o, outBatchStrides[last], 1);
    }

    private AttentionGeometry(Tensor query, Tensor key, Tensor value, Tensor mask, Tensor out, boolean causal, long causalOffset,
                              double scale, double softcap, int partitionSize, int slices, int queries, int keys, int headDim,
                              int valueDim, long queryRowStride, long queryColStride, long keyRowStride, long keyColStride,
                              long valueRowStride, long valueColStride, long maskRowStride, long maskColStride, int queryBlock,
                              int[] batch, long[] queryBatchStrides, long[] keyBatchStrides, long[] valueBatchStrides,
                              long[] maskBatchStrides, long[] outBatchStrides, long outRowStride, int headGroup) {
        this.query = query;
        this.key = key;
        this.value = value;
        this.mask = mask;
        this.out = out;
        this.causal = causal;
        this.causalOffset = causalOffset;
        this.scale = scale;
        this.softcap = softcap;
        this.partitionSize = partitionSize;
        this.slices = slices;
        this.queries = queries;
        this.keys = keys;
        this.headDim = headDim;
        this.valueDim = valueDim;
        this.queryRowStride = queryRowStride;
        this.queryColStride = queryColStride;
        this.keyRowStride = keyRowStride;
        this.keyColStride = keyColStride;
        this.valueRowStride = valueRowStride;
        this.valueColStride = valueColStride;
        this.maskRowStride = maskRowStride;
        this.maskColStride = maskColStride;
        this.queryBlock = queryBlock;
        this.queryBlocks = (queries + queryBlock - 1) / queryBlock;
        this.batch = batch;
        this.queryBatchStrides = queryBatchStrides;
        this.keyBatchStrides = keyBatchStrides;
        this.valueBatchStrides = valueBatchStrides;
        this.maskBatchStrides = maskBatchStrides;
        this.outBatchStrides = outBatchStrides;
        this.outRowStride = outRowStride;
        this.headGroup = headGroup;
    }

    /** Rough count of multiply-adds, for {@link dev.kiln.npu.Parallel#forRange}. */
    long cost() {
        long pairs = (long) slices * queries * keys;
        if (causal) pairs /= 2;
        return pairs * (headDim + valueDim);
    }

    /** Query block {@code t} of a slice in visiting order: under causal masking, first, last, second, second to last... */
    int interleaved(int t, int blocks) {
        if (!causal) return t;
        return t % 2 == 0 ? t / 2 : blocks - 1 - t / 2;
    }

    long queryOffset(int slice) { return offset(slice, queryBatchStrides, 1, query.layout().offset()); }

    long keyOffset(int slice) { return offset(slice, keyBatchStrides, headGroup, key.layout().offset()); }

    long valueOffset(int slice) { return offset(slice, valueBatchStrides, headGroup, value.layout().offset()); }

    long maskOffset(int slice) { return offset(slice, maskBatchStrides, 1, mask.layout().offset()); }

    /** Element offset of the first output element of a slice's query row (its elements follow contiguously). */
    long outOffset(int slice, int row) { return offset(slice, outBatchStrides, 1, out.layout().offset()) + row * outRowStride; }

    /** Number of keys query row {@code row} may see: all of them, or the first {@code row + causalOffset + 1} under the causal mask. */
    int visibleKeys(int row) {
        if (!causal) return keys;
        long n = row + causalOffset + 1;
        return (int) Math.clamp(n, 0, keys);
    }

    private long offset(int slice, long[] strides, int lastDivisor, long base) {
        long off = base;
        int rest = slice;
        for (int i = batch.length - 1; i >= 0 && rest != 0; i--) {
            int index = rest % batch[i];
            rest /= batch[i];
            off += (long) (i == batch.length - 1 ? index / lastDivisor : index) * strides[i];
        }
        return off;
    }
}
