package dev.kiln.nn;

import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.ServingKernels;
import dev.kiln.ops.ServingShapes;
import dev.kiln.ops.ServingKernels.AttentionParams;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;

import java.util.ServiceLoader;

/**
 * Attention ops for LLM serving over a paged KV cache (vLLM's flash layout
 * {@code [blocks, block_size, kv_heads, head_dim]}) and over per-sequence ring buffers.
 * {@link #pagedAttention} and {@link #slidingWindowDecode} are ops of the registry
 * ({@link Op.PagedAttention}, {@link Op.SlidingWindowDecode}, {@link Op.SlidingWindowAttention}):
 * they trace into compiled graphs like any op, their index tensors read when the op runs. So
 * does {@link #reshapeAndCache} ({@link Op.ReshapeAndCache}), which updates the caches in place.
 *
 * <p>Float tensors may be float32, float16, bfloat16 or float64 (computed in float32);
 * index tensors int32 or int64.
 */
public final class Serving {
    private Serving() {}

    private static final class KernelsHolder {
        static final ServingKernels KERNELS = ServiceLoader.load(ServingKernels.class).findFirst().orElseThrow(() ->
                new KilnException("no Kiln serving kernels on the class path: add the dev.kiln:npu-exec dependency"));
    }

    // ================================================================ ReshapeAndCache

    /**
     * Writes token {@code t} of {@code key}/{@code value} [T, Hkv, D] into the caches
     * [NB, BS, Hkv, D] at slot {@code slotMapping[t]} (block {@code slot / BS}, offset
     * {@code slot % BS}), in place; a slot of -1 is skipped. Nothing is written when any
     * argument is invalid. An op of the registry ({@link Op.ReshapeAndCache}) that updates its
     * caches in place: traced, it joins the graph, which writes the caller's caches when it runs.
     */
    public static void reshapeAndCache(Tensor key, Tensor value, Tensor keyCache, Tensor valueCache, Tensor slotMapping) {
        Dispatch.apply(new Op.ReshapeAndCache(), key, value, keyCache, valueCache, slotMapping);
    }

    /**
     * Runs {@code op} over inputs whose shapes its {@link Op#infer} accepted, writing the caches
     * {@code out} (inputs 2 and 3 themselves: the op runs in place). Checks the slots against
     * the caches before writing anything.
     */
    public static void execute(Op.ReshapeAndCache op, Tensor[] in, Tensor[] out) {
        String name = "reshapeAndCache";
        Tensor keyCache = out[0], valueCache = out[1];
        if (keyCache.storage() != in[2].storage() || valueCache.storage() != in[3].storage()) {
            throw new IllegalArgumentException(name + " updates its caches in place: its outputs must be inputs 2 and 3");
        }
        long[] slots = longs(in[4]);
        long capacity = (long) keyCache.size(0) * keyCache.size(1);
        for (int t = 0; t < slots.length; t++) {
            if (slots[t] < -1 || slots[t] >= capacity) {
                throw new KilnShapeException(name + ": slotMapping[" + t + "] = " + slots[t] + " is out of range for a cache "
                        + keyCache.shape() + " of " + capacity + " slots (valid: -1 to skip, or 0.." + (capacity - 1) + ")");
            }
        }
        // Views of one combined KV buffer are fine; the very same view would overwrite keys with values.
        if (keyCache.storage() == valueCache.storage() && keyCache.layout().equals(valueCache.layout())) {
            throw new KilnException(name + ": keyCache and valueCache are the same tensor; keys and values need separate caches");
        }
        try {
            KernelsHolder.KERNELS.reshapeAndCache(in[0], in[1], keyCache, valueCache, slots);
        } finally {
            keyCache.storage().markWritten();
            valueCache.storage().markWritten();
        }
    }

    // ================================================================ PagedAttention

    /** {@link #pagedAttention(Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, double, boolean, int, double)} with scale 1/sqrt(D), causal, no window and no softcap. */
    public static Tensor pagedAttention(Tensor query, Tensor keyCache, Tensor valueCache, Tensor blockTables,
                                       Tensor contextLens, Tensor queryStartLoc) {
        return pagedAttention(query, keyCache, valueCache, blockTables, contextLens, queryStartLoc,
                defaultScale(query), true, 0, 0);
    }

    /**
     * Attention of packed variable-length queries [T, H, D] against a paged KV cache
     * [NB, BS, Hkv, D]. Sequence {@code s} owns query rows {@code queryStartLoc[s] ..
     * queryStartLoc[s+1]-1} and has {@code contextLens[s]} tokens cached (its new ones
     * included); key {@code j} lives in block {@code blockTables[s][j / BS]} at offset
     * {@code j % BS}. Query rows are aligned to the end of the context (row {@code i} of
     * {@code q_len} sits at position {@code ctx - q_len + i}, negative when the context is
     * shorter than the rows, and then sees no key if causal). Query head {@code h} reads KV
     * head {@code h / (H / Hkv)}.
     *
     * @param scale         multiplies q.k
     * @param causal        a row sees only keys at or before its position
     * @param slidingWindow a row at {@code p} sees only keys after {@code p - slidingWindow} (0: no window)
     * @param softcap       scores become {@code softcap * tanh(score / softcap)} (0: none)
     * @return [T, H, D] in the query's dtype; rows that see no key are zero
     */
    public static Tensor pagedAttention(Tensor query, Tensor keyCache, Tensor valueCache, Tensor blockTables,
                                        Tensor contextLens, Tensor queryStartLoc, double scale, boolean causal,
                                        int slidingWindow, double softcap) {
        return Dispatch.apply1(new Op.PagedAttention(scale, causal, slidingWindow, softcap),
                query, keyCache, valueCache, blockTables, contextLens, queryStartLoc);
    }

    /**
     * Runs {@code op} over inputs whose shapes its {@link Op#infer} accepted: checks the
     * index values against the cache, then fills {@code out}. For kernel backends; the
     * values are checked before anything is computed, so bad indices fail with a message
     * naming the entry, never read outside the cache.
     */
    public static void execute(Op.PagedAttention op, Tensor[] in, Tensor out) {
        String name = "pagedAttention";
        Tensor query = in[0], keyCache = in[1], blockTables = in[3];
        int sequences = blockTables.size(0), maxBlocks = blockTables.size(1);
        int[] table = ints(name, "blockTables", blockTables);
        int[] ctx = ints(name, "contextLens", in[4]);
        int[] start = ints(name, "queryStartLoc", in[5]);
        int tokens = query.size(0), blockSize = keyCache.size(1), blocks = keyCache.size(0);
        if (start[0] != 0 || start[sequences] != tokens) {
            throw new KilnShapeException(name + ": queryStartLoc must run from 0 to the query's token count " + tokens
                    + " (query " + query.shape() + "), got " + start[0] + " .. " + start[sequences]);
        }
        for (int s = 0; s < sequences; s++) {
            int qLen = start[s + 1] - start[s];
            if (qLen < 0) {
                throw new KilnShapeException(name + ": queryStartLoc decreases at sequence " + s + " ("
                        + start[s] + " then " + start[s + 1] + ")");
            }
            if (ctx[s] < 0) throw new KilnShapeException(name + ": contextLens[" + s + "] = " + ctx[s] + " is negative");
            int used = ceilDiv(ctx[s], blockSize);
            if (used > maxBlocks) {
                throw new KilnShapeException(name + ": contextLens[" + s + "] = " + ctx[s] + " needs " + used
                        + " blocks of size " + blockSize + " but blockTables " + blockTables.shape() + " holds " + maxBlocks);
            }
            for (int b = 0; b < used; b++) {
                int block = table[s * maxBlocks + b];
                if (block < 0 || block >= blocks) {
                    throw new KilnShapeException(name + ": blockTables[" + s + "][" + b + "] = " + block
                            + " is out of range for dimension 0 of size " + blocks + " of keyCache " + keyCache.shape());
                }
            }
        }
        KernelsHolder.KERNELS.pagedAttention(query, keyCache, in[2], table, maxBlocks, ctx, start,
                new AttentionParams(op.scale(), op.causal(), op.slidingWindow(), op.softcap()), out);
    }

    // ================================================================ SlidingWindowDecode

    /** {@link #slidingWindowDecode(Tensor, Tensor, Tensor, Tensor, double, double)} with scale 1/sqrt(D) and no softcap. */
    public static Tensor slidingWindowDecode(Tensor query, Tensor keyRing, Tensor valueRing, Tensor positions) {
        return slidingWindowDecode(query, keyRing, valueRing, positions, defaultScale(query), 0);
    }

    /**
     * One decode step of query [B, H, D] over per-sequence ring buffers [B, W, Hkv, D]
     * holding the last W keys: the key of absolute position {@code j} is in slot
     * {@code j % W}, and the query at {@code positions[b]} = p attends to positions
     * {@code max(0, p - W + 1) .. p}. GQA, scale and softcap as in {@link #pagedAttention}.
     */
    public static Tensor slidingWindowDecode(Tensor query, Tensor keyRing, Tensor valueRing, Tensor positions,
                                             double scale, double softcap) {
        return Dispatch.apply1(new Op.SlidingWindowDecode(scale, softcap), query, keyRing, valueRing, positions);
    }

    /** Runs {@code op} over inputs whose shapes its {@link Op#infer} accepted, as {@link #execute(Op.PagedAttention, Tensor[], Tensor)}. */
    public static void execute(Op.SlidingWindowDecode op, Tensor[] in, Tensor out) {
        Tensor query = in[0], keyRing = in[1];
        long[] p = nonNegative("slidingWindowDecode", "positions", longs(in[3]));
        int[] sequence = java.util.stream.IntStream.range(0, query.size(0)).toArray();
        KernelsHolder.KERNELS.ringAttention(query, keyRing, in[2], sequence, p,
                new AttentionParams(op.scale(), true, keyRing.size(1), op.softcap()), out);
    }

    /**
     * Sliding-window attention of query rows [T, H, D] over per-sequence rings [B, R, Hkv, D]:
     * row {@code t} belongs to sequence {@code rowSequence[t]}, sits at absolute position
     * {@code positions[t]} = p and attends to positions {@code max(0, p - window + 1) .. p},
     * the key of position j being in slot {@code j % R}. With {@code window < R} a ring holds
     * the keys a prefill chunk of up to {@code R - window + 1} rows needs after its own keys
     * were written (see {@link SlidingWindowCache}). GQA, scale and softcap as in
     * {@link #pagedAttention}.
     */
    public static Tensor slidingWindowAttention(Tensor query, Tensor keyRing, Tensor valueRing, Tensor rowSequence,
                                                Tensor positions, int window, double scale, double softcap) {
        return Dispatch.apply1(new Op.SlidingWindowAttention(window, scale, softcap), query, keyRing, valueRing, rowSequence, positions);
    }

    /** Runs {@code op} over inputs whose shapes its {@link Op#infer} accepted, as {@link #execute(Op.PagedAttention, Tensor[], Tensor)}. */
    public static void execute(Op.SlidingWindowAttention op, Tensor[] in, Tensor out) {
        String name = "slidingWindowAttention";
        Tensor keyRing = in[1];
        int[] sequence = ints(name, "rowSequence", in[3]);
        for (int t = 0; t < sequence.length; t++) {
            if (sequence[t] < 0 || sequence[t] >= keyRing.size(0)) {
                throw new KilnShapeException(name + ": rowSequence[" + t + "] = " + sequence[t] + " is not a sequence of keyRing "
                        + keyRing.shape() + " (dimension 0)");
            }
        }
        long[] p = nonNegative(name, "positions", longs(in[4]));
        KernelsHolder.KERNELS.ringAttention(in[0], keyRing, in[2], sequence, p, new AttentionParams(op.scale(), true, op.window(), op.softcap()),
                out);
    }

    private static long[] nonNegative(String op, String name, long[] values) {
        for (int i = 0; i < values.length; i++) {
            if (values[i] < 0) throw new KilnShapeException(op + ": " + name + "[" + i + "] = " + values[i] + " is negative");
        }
        return values;
    }

    // ================================================================ validation

    private static double defaultScale(Tensor query) {
        return query.rank() == 3 ? 1 / Math.sqrt(query.size(2)) : 1;
    }

    private static int ceilDiv(int a, int b) { return (a + b - 1) / b; }

    /** Reads an index tensor on the host (no kernels: validation must see the values before any work). */
    private static long[] longs(Tensor t) {
        long[] out = new long[Math.toIntExact(t.numel())];
        for (int i = 0; i < out.length; i++) out[i] = Elements.readLong(t.dtype(), t.storage().segment(), t.elementOffset(i));
        return out;
    }

    private static int[] ints(String op, String name, Tensor t) {
        long[] v = longs(t);
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            if (v[i] != (int) v[i]) throw new KilnShapeException(op + ": " + name + " holds " + v[i] + ", beyond the int range");
            out[i] = (int) v[i];
        }
        return out;
    }
}
