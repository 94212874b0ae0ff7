package dev.kiln.npu.kernels.serving;

import dev.kiln.nn.Serving;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import static dev.kiln.testing.TestTensors.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class ServingErrorsTest {

    private static final Tensor QUERY = Tensor.zeros(3, 4, 8);             // T=3, H=4, D=8
    private static final Tensor CACHE = Tensor.zeros(5, 4, 2, 8);          // NB=5, BS=4, Hkv=2, D=8
    private static final Tensor TABLE = Tensor.of(new int[] {4, 0, 1, 2}, 2, 2);
    private static final Tensor LENS = Tensor.of(new int[] {6, 2}, 2);
    private static final Tensor STARTS = Tensor.of(new int[] {0, 2, 3}, 3);

    private static <T extends Throwable> void expect(Class<T> type, String message, Executable call) {
        assertEquals(message, assertThrows(type, call).getMessage());
    }

    private static Tensor paged(Tensor q, Tensor kc, Tensor vc, Tensor table, Tensor lens, Tensor starts) {
        return Serving.pagedAttention(q, kc, vc, table, lens, starts);
    }

    @Test
    void pagedAttentionNamesTheOffendingBlockTableEntry() {
        expect(KilnShapeException.class, "pagedAttention: blockTables[1][0] = 5 is out of range for dimension 0 of size 5 "
                + "of keyCache [5,4,2,8]", () -> paged(QUERY, CACHE, CACHE, Tensor.of(new int[] {4, 0, 5, -1}, 2, 2), LENS, STARTS));
        expect(KilnShapeException.class, "pagedAttention: blockTables[0][1] = -1 is out of range for dimension 0 of size 5 "
                + "of keyCache [5,4,2,8]", () -> paged(QUERY, CACHE, CACHE, Tensor.of(new int[] {4, -1, 1, 2}, 2, 2), LENS, STARTS));
    }

    @Test
    void pagedAttentionAcceptsPaddingPastTheContextAndRejectsContextsLongerThanTheTable() {
        assertEquals(QUERY.shape(), paged(QUERY, CACHE, CACHE, Tensor.of(new int[] {4, 0, 1, -1}, 2, 2), LENS, STARTS).shape());
        expect(KilnShapeException.class, "pagedAttention: contextLens[0] = 9 needs 3 blocks of size 4 but blockTables [2,2] holds 2",
                () -> paged(QUERY, CACHE, CACHE, TABLE, Tensor.of(new int[] {9, 2}, 2), STARTS));
        expect(KilnShapeException.class, "pagedAttention: contextLens[1] = -1 is negative",
                () -> paged(QUERY, CACHE, CACHE, TABLE, Tensor.of(new int[] {6, -1}, 2), STARTS));
    }

    @Test
    void pagedAttentionChecksHeadsAndShapes() {
        expect(KilnShapeException.class, "pagedAttention: the query's 4 heads (dimension 1 of [3,4,8]) are not a multiple of "
                + "the cache's 3 KV heads (dimension 2 of [5,4,3,8])",
                () -> paged(QUERY, Tensor.zeros(5, 4, 3, 8), Tensor.zeros(5, 4, 3, 8), TABLE, LENS, STARTS));
        expect(KilnShapeException.class, "pagedAttention: the head size of query [3,4,8] (dimension 2) differs from the cache's "
                + "[5,4,2,6] (dimension 3)", () -> paged(QUERY, Tensor.zeros(5, 4, 2, 6), Tensor.zeros(5, 4, 2, 6), TABLE, LENS, STARTS));
        expect(KilnShapeException.class, "pagedAttention: valueCache [5,4,2,7] must have the shape of keyCache [5,4,2,8]",
                () -> paged(QUERY, CACHE, Tensor.zeros(5, 4, 2, 7), TABLE, LENS, STARTS));
        expect(KilnShapeException.class, "pagedAttention: query must be [T, H, D], got [3,32]",
                () -> paged(Tensor.zeros(3, 32), CACHE, CACHE, TABLE, LENS, STARTS));
        expect(KilnShapeException.class, "pagedAttention: blockTables must be [S, MAXB], got [4]",
                () -> paged(QUERY, CACHE, CACHE, Tensor.of(new int[] {4, 0, 1, 2}, 4), LENS, STARTS));
        expect(KilnShapeException.class, "pagedAttention: contextLens must be [2] (the sequence count S of blockTables [2,2]), got [3]",
                () -> paged(QUERY, CACHE, CACHE, TABLE, Tensor.of(new int[] {6, 2, 1}, 3), STARTS));
        expect(KilnShapeException.class, "pagedAttention: queryStartLoc must run from 0 to the query's token count 3 (query [3,4,8]), got 0 .. 4",
                () -> paged(QUERY, CACHE, CACHE, TABLE, LENS, Tensor.of(new int[] {0, 2, 4}, 3)));
        expect(KilnShapeException.class, "pagedAttention: queryStartLoc decreases at sequence 0 (0 then -1)",
                () -> paged(QUERY, CACHE, CACHE, TABLE, LENS, Tensor.of(new int[] {0, -1, 3}, 3)));
    }

    @Test
    void pagedAttentionChecksDtypesAndAttributes() {
        expect(KilnTypeException.class, "pagedAttention: blockTables must be an int32 or int64 tensor, got float32[2,2]",
                () -> paged(QUERY, CACHE, CACHE, TABLE.to(DType.FLOAT32), LENS, STARTS));
        expect(KilnTypeException.class, "pagedAttention: keyCache must be a floating-point tensor, got int32[5,4,2,8]",
                () -> paged(QUERY, CACHE.to(DType.INT32), CACHE, TABLE, LENS, STARTS));
        expect(KilnException.class, "pagedAttention: softcap must be 0 (none) or a positive finite value, got -1.0",
                () -> Serving.pagedAttention(QUERY, CACHE, CACHE, TABLE, LENS, STARTS, 1, true, 0, -1));
        expect(KilnException.class, "pagedAttention: slidingWindow must be 0 (none) or positive, got -2",
                () -> Serving.pagedAttention(QUERY, CACHE, CACHE, TABLE, LENS, STARTS, 1, true, -2, 0));
        expect(KilnException.class, "pagedAttention: scale must be finite, got NaN",
                () -> Serving.pagedAttention(QUERY, CACHE, CACHE, TABLE, LENS, STARTS, Double.NaN, true, 0, 0));
    }

    @Test
    void reshapeAndCacheRejectsBadSlotsWithoutWritingAnything() {
        Tensor kc = Tensor.zeros(2, 3, 2, 4), vc = Tensor.zeros(2, 3, 2, 4), key = Tensor.ones(2, 2, 4);
        expect(KilnShapeException.class, "reshapeAndCache: slotMapping[1] = 6 is out of range for a cache [2,3,2,4] of 6 slots "
                + "(valid: -1 to skip, or 0..5)", () -> Serving.reshapeAndCache(key, key, kc, vc, Tensor.of(new long[] {0, 6}, 2)));
        expect(KilnShapeException.class, "reshapeAndCache: slotMapping[0] = -2 is out of range for a cache [2,3,2,4] of 6 slots "
                + "(valid: -1 to skip, or 0..5)", () -> Serving.reshapeAndCache(key, key, kc, vc, Tensor.of(new long[] {-2, 1}, 2)));
        assertArrayEquals(new double[48], values(kc));
        assertArrayEquals(new double[48], values(vc));
    }

    @Test
    void reshapeAndCacheChecksShapesAndTypes() {
        Tensor kc = Tensor.zeros(2, 3, 2, 4), key = Tensor.ones(2, 2, 4);
        Tensor slots = Tensor.of(new long[] {0, 1}, 2);
        expect(KilnShapeException.class, "reshapeAndCache: key [2,2,4] and keyCache [2,3,1,4] disagree in the KV head count "
                + "(dimension 1 of key, 2 of the cache)",
                () -> Serving.reshapeAndCache(key, key, Tensor.zeros(2, 3, 1, 4), Tensor.zeros(2, 3, 1, 4), slots));
        expect(KilnShapeException.class, "reshapeAndCache: key [2,2,4] and keyCache [2,3,2,5] disagree in the head size "
                + "(dimension 2 of key, 3 of the cache)",
                () -> Serving.reshapeAndCache(key, key, Tensor.zeros(2, 3, 2, 5), Tensor.zeros(2, 3, 2, 5), slots));
        expect(KilnShapeException.class, "reshapeAndCache: slotMapping must be [2] (the token count T of key [2,2,4]), got [3]",
                () -> Serving.reshapeAndCache(key, key, kc, Tensor.zeros(2, 3, 2, 4), Tensor.of(new long[] {0, 1, 2}, 3)));
        expect(KilnShapeException.class, "reshapeAndCache: value [2,2,3] must have the shape of key [2,2,4]",
                () -> Serving.reshapeAndCache(key, Tensor.ones(2, 2, 3), kc, Tensor.zeros(2, 3, 2, 4), slots));
        expect(KilnTypeException.class, "reshapeAndCache: slotMapping must be an int32 or int64 tensor, got float32[2]",
                () -> Serving.reshapeAndCache(key, key, kc, Tensor.zeros(2, 3, 2, 4), Tensor.of(new float[] {0, 1}, 2)));
        expect(KilnException.class, "reshapeAndCache: keyCache and valueCache are the same tensor; keys and values need separate caches",
                () -> Serving.reshapeAndCache(key, key, kc, kc, slots));
    }

    @Test
    void reshapeAndCacheWritesIntoTwoViewsOfOneCombinedKvBuffer() {
        Tensor kv = Tensor.zeros(2, 2, 3, 1, 2);                          // [K/V, NB, BS, Hkv, D]
        Tensor key = Tensor.of(new float[] {1, 2, 3, 4}, 2, 1, 2), value = Tensor.of(new float[] {5, 6, 7, 8}, 2, 1, 2);
        Serving.reshapeAndCache(key, value, kv.select(0, 0), kv.select(0, 1), Tensor.of(new long[] {4, 0}, 2));
        double[] expected = new double[24];
        expected[8] = 1; expected[9] = 2; expected[0] = 3; expected[1] = 4;
        expected[20] = 5; expected[21] = 6; expected[12] = 7; expected[13] = 8;
        assertArrayEquals(expected, values(kv));
    }

    @Test
    void slidingWindowDecodeChecksItsInputs() {
        Tensor q = Tensor.zeros(2, 4, 8), ring = Tensor.zeros(2, 5, 2, 8);
        expect(KilnShapeException.class, "slidingWindowDecode: positions[1] = -3 is negative",
                () -> Serving.slidingWindowDecode(q, ring, ring, Tensor.of(new long[] {4, -3}, 2)));
        expect(KilnShapeException.class, "slidingWindowDecode: keyRing [3,5,2,8] has 3 sequences in dimension 0, query [2,4,8] has 2",
                () -> Serving.slidingWindowDecode(q, Tensor.zeros(3, 5, 2, 8), Tensor.zeros(3, 5, 2, 8), Tensor.of(new long[] {4, 3}, 2)));
        expect(KilnShapeException.class, "slidingWindowDecode: the window W (dimension 1 of keyRing [2,0,2,8]) is 0",
                () -> Serving.slidingWindowDecode(q, Tensor.zeros(2, 0, 2, 8), Tensor.zeros(2, 0, 2, 8), Tensor.of(new long[] {4, 3}, 2)));
        expect(KilnShapeException.class, "slidingWindowDecode: positions must be [2] (the batch size B of query [2,4,8]), got [1]",
                () -> Serving.slidingWindowDecode(q, ring, ring, Tensor.of(new long[] {4}, 1)));
        expect(KilnShapeException.class, "slidingWindowDecode: the query's 4 heads (dimension 1 of [2,4,8]) are not a multiple of "
                + "the cache's 3 KV heads (dimension 2 of [2,5,3,8])",
                () -> Serving.slidingWindowDecode(q, Tensor.zeros(2, 5, 3, 8), Tensor.zeros(2, 5, 3, 8), Tensor.of(new long[] {4, 3}, 2)));
    }
}
