package dev.kiln.ops;

import dev.kiln.tensor.Tensor;

/**
 * Kernels of the serving attention ops ({@link dev.kiln.nn.Serving}), found with
 * {@link java.util.ServiceLoader} like {@link KernelBackend}. They live outside the
 * functional op registry because ReshapeAndCache writes into existing caches in place,
 * while {@link Dispatch} always allocates fresh outputs. Arguments arrive validated:
 * index tensors are already read into arrays and checked against the cache shapes.
 */
public interface ServingKernels {

    /**
     * Copies token {@code t} of {@code key}/{@code value} [T, Hkv, D] into slot {@code slots[t]}
     * (block {@code slot / BS}, offset {@code slot % BS}) of the caches [NB, BS, Hkv, D];
     * a slot of -1 is skipped and a later token wins over an earlier one with the same slot.
     */
    void reshapeAndCache(Tensor key, Tensor value, Tensor keyCache, Tensor valueCache, long[] slots);

    /**
     * Paged attention of query [T, H, D] into the fresh contiguous {@code out} [T, H, D].
     * {@code blockTables} is row-major [S, maxBlocks]; every entry a sequence's context uses
     * is a valid block index.
     */
    void pagedAttention(Tensor query, Tensor keyCache, Tensor valueCache, int[] blockTables, int maxBlocks,
                        int[] contextLens, int[] queryStartLoc, AttentionParams params, Tensor out);

    /**
     * Attention of query rows [T, H, D] over per-sequence ring buffers [B, R, Hkv, D] into
     * {@code out} [T, H, D]: row {@code t} belongs to sequence {@code rowSequence[t]}, sits
     * at absolute position {@code rowPosition[t]} = p and sees positions
     * {@code max(0, p - W + 1) .. p} (W = {@code params.slidingWindow()}, at most R), the key
     * of position j being in slot {@code j % R}.
     */
    void ringAttention(Tensor query, Tensor keyRing, Tensor valueRing, int[] rowSequence, long[] rowPosition,
                       AttentionParams params, Tensor out);

    /**
     * Score scale, causal masking, sliding window (0 = none) and softcap (0 = none).
     */
    record AttentionParams(double scale, boolean causal, int slidingWindow, double softcap) {}
}
