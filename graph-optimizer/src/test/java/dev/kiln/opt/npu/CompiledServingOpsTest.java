package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.nn.Serving;
import dev.kiln.nn.SlidingWindowCache;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The serving ops trace into compiled graphs, the cache writes too; their index tensors are read on every call. */
class CompiledServingOpsTest {

    private static Tensor decode(Object... a) {
        Tensor q = (Tensor) a[0];
        Tensor attn = Serving.pagedAttention(q, (Tensor) a[1], (Tensor) a[2], (Tensor) a[3], (Tensor) a[4], (Tensor) a[5], 0.25, true, 0, 0);
        return attn.mul(2.0).add(q);
    }

    @Test
    void pagedAttentionInACompiledGraphReadsEachCallsBlockTable() {
        FnN<Tensor> compiled = Kiln.compileN(CompiledServingOpsTest::decode, NpuBackendTest.NPU);
        Tensor q = Tensor.randn(1, 2, 4, 16), keys = Tensor.randn(2, 8, 4, 2, 16), values = Tensor.randn(3, 8, 4, 2, 16);
        Tensor starts = Tensor.of(new int[] {0, 1, 2}, 3);
        int[][] tables = {{3, 5, 0, 1, 2, 4, 6, 7}, {6, 1, 7, 2, 0, 3, 4, 5}};
        int[][] lengths = {{9, 13}, {5, 2}};
        for (int call = 0; call < 2; call++) {
            Object[] args = {q, keys, values, Tensor.of(tables[call], 2, 4), Tensor.of(lengths[call], 2), starts};
            assertArrayEquals(decode(args).toFloatArray(), compiled.apply(args).toFloatArray(), "call " + call);
        }
        Object[] args = {q, keys, values, Tensor.of(tables[0], 2, 4), Tensor.of(lengths[0], 2), starts};
        String explained = Kiln.explain(compiled, args).toString();
        assertTrue(explained.contains("compiled signatures: 1"), explained);
        assertTrue(explained.contains("eager paged_attention"), explained);

        Object[] bad = {q, keys, values, Tensor.of(new int[] {3, 5, 0, 9, 2, 4, 6, 7}, 2, 4), Tensor.of(new int[] {16, 1}, 2), starts};
        var e = assertThrows(KilnShapeException.class, () -> compiled.apply(bad));
        assertEquals("pagedAttention: blockTables[0][3] = 9 is out of range for dimension 0 of size 8 of keyCache [8,4,2,16]", e.getMessage());
    }

    @Test
    void slidingWindowDecodeTracesToo() {
        FnN<Tensor> compiled = Kiln.compileN(a -> Serving.slidingWindowDecode((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3], 0.3, 0),
                NpuBackendTest.NPU);
        Tensor q = Tensor.randn(4, 2, 4, 8), ring = Tensor.randn(5, 2, 6, 2, 8), values = Tensor.randn(6, 2, 6, 2, 8);
        for (long[] positions : new long[][] {{3, 40}, {100, 5}}) {
            Tensor p = Tensor.of(positions, 2);
            assertArrayEquals(Serving.slidingWindowDecode(q, ring, values, p, 0.3, 0).toFloatArray(),
                    compiled.apply(q, ring, values, p).toFloatArray());
        }
    }

    @Test
    void slidingWindowAttentionTracesTooAndChecksItsIndicesWhenItRuns() {
        FnN<Tensor> compiled = Kiln.compileN(a -> Serving.slidingWindowAttention((Tensor) a[0], (Tensor) a[1], (Tensor) a[2], (Tensor) a[3],
                (Tensor) a[4], 5, 0.3, 0), NpuBackendTest.NPU.fullGraph(true));
        Tensor q = Tensor.randn(4, 3, 4, 8), keys = Tensor.randn(5, 2, 7, 2, 8), values = Tensor.randn(6, 2, 7, 2, 8);
        for (long[] positions : new long[][] {{3, 4, 40}, {100, 9, 10}}) {
            Tensor rows = Tensor.of(new long[] {0, 1, 1}, 3), p = Tensor.of(positions, 3);
            assertArrayEquals(Serving.slidingWindowAttention(q, keys, values, rows, p, 5, 0.3, 0).toFloatArray(),
                    compiled.apply(q, keys, values, rows, p).toFloatArray());
        }
        var e = assertThrows(KilnShapeException.class,
                () -> compiled.apply(q, keys, values, Tensor.of(new long[] {0, 2, 1}, 3), Tensor.of(new long[] {1, 2, 3}, 3)));
        assertEquals("slidingWindowAttention: rowSequence[1] = 2 is not a sequence of keyRing [2,7,2,8] (dimension 0)", e.getMessage());
    }

    @Test
    void aSlidingWindowCacheStepIsOneGraphWithItsStepTensorsAsArguments() {
        SlidingWindowCache eager = new SlidingWindowCache(2, 4, 3, 1, 8, dev.kiln.tensor.DType.FLOAT32);
        SlidingWindowCache rings = new SlidingWindowCache(2, 4, 3, 1, 8, dev.kiln.tensor.DType.FLOAT32);
        FnN<Tensor> step = Kiln.compileN(a -> rings.attend((Tensor) a[3], (Tensor) a[4], (Tensor) a[5], (Tensor) a[0], (Tensor) a[1],
                (Tensor) a[2], 0.35, 0), NpuBackendTest.NPU.fullGraph(true));
        // A prefill chunk of three tokens for sequence 1, then decode steps of both sequences past the ring size (6).
        Tensor q = Tensor.randn(1, 3, 2, 8), k = Tensor.randn(2, 3, 1, 8);
        SlidingWindowCache.Step chunk = rings.preparePrefill(1, 3);
        assertArrayEquals(eager.prefill(1, q, k, k.neg(), 0.35, 0).toFloatArray(),
                step.apply(q, k, k.neg(), chunk.slots(), chunk.rows(), chunk.positions()).toFloatArray(), 1e-6f);
        rings.commit(chunk);
        for (int t = 0; t < 8; t++) {
            Tensor qd = Tensor.randn(10 + t, 2, 2, 8), kd = Tensor.randn(20 + t, 2, 1, 8), vd = Tensor.randn(30 + t, 2, 1, 8);
            SlidingWindowCache.Step s = rings.prepareDecode();
            assertArrayEquals(eager.decode(qd, kd, vd, 0.35, 0).toFloatArray(),
                    step.apply(qd, kd, vd, s.slots(), s.rows(), s.positions()).toFloatArray(), 1e-6f, "decode step " + t);
            rings.commit(s);
        }
        assertArrayEquals(eager.keyRing().toFloatArray(), rings.keyRing().toFloatArray());
        assertEquals(eager.length(1), rings.length(1));
        SlidingWindowCache.Step stale = rings.prepareDecode();
        rings.commit(rings.prepareDecode());
        var e = assertThrows(dev.kiln.tensor.KilnException.class, () -> rings.commit(stale));
        assertTrue(e.getMessage().startsWith("SlidingWindowCache.commit: the step was prepared before the cache last changed"), e.getMessage());
    }

    /** A decode step of two sequences: project, write the new keys and values into the paged caches, attend. */
    private static Tensor step(Object... a) {
        Tensor x = (Tensor) a[0], wq = (Tensor) a[1], wk = (Tensor) a[2], keys = (Tensor) a[3], values = (Tensor) a[4];
        Tensor k = x.matmul(wk).reshape(2, 2, 16);
        Serving.reshapeAndCache(k, k.tanh(), keys, values, (Tensor) a[5]);
        Tensor q = x.matmul(wq).reshape(2, 4, 16);
        return Serving.pagedAttention(q, keys, values, (Tensor) a[6], (Tensor) a[7], (Tensor) a[8], 0.25, true, 0, 0).add(1.0);
    }

    @Test
    void aStepThatWritesTheCachesInPlaceIsOneGraphThatWritesOnEveryCall() {
        for (CompileOptions options : List.of(NpuBackendTest.NPU, NpuBackendTest.NPU.fullGraph(true), CompileOptions.defaults().backend(Backend.EAGER))) {
            FnN<Tensor> compiled = Kiln.compileN(CompiledServingOpsTest::step, options);
            Tensor wq = Tensor.randn(1, 32, 64).mul(0.2), wk = Tensor.randn(2, 32, 32).mul(0.2);
            Tensor eagerKeys = Tensor.zeros(8, 4, 2, 16), eagerValues = Tensor.zeros(8, 4, 2, 16);
            Tensor keys = Tensor.zeros(8, 4, 2, 16), values = Tensor.zeros(8, 4, 2, 16);
            Tensor tables = Tensor.of(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, 2, 4), starts = Tensor.of(new int[] {0, 1, 2}, 3);
            for (int t = 0; t < 5; t++) {
                Tensor x = Tensor.randn(10 + t, 2, 32);
                Tensor slots = Tensor.of(new long[] {t, 16 + t}, 2), lengths = Tensor.of(new int[] {t + 1, t + 1}, 2);
                Tensor expected = step(x, wq, wk, eagerKeys, eagerValues, slots, tables, lengths, starts);
                Tensor got = compiled.apply(x, wq, wk, keys, values, slots, tables, lengths, starts);
                assertArrayEquals(expected.toFloatArray(), got.toFloatArray(), 1e-6f, options + " step " + t);
                assertArrayEquals(eagerKeys.toFloatArray(), keys.toFloatArray(), options + " keys after step " + t);
                assertArrayEquals(eagerValues.toFloatArray(), values.toFloatArray(), options + " values after step " + t);
            }
            Object[] args = {Tensor.randn(20, 2, 32), wq, wk, keys, values, Tensor.of(new long[] {5, 21}, 2), tables,
                    Tensor.of(new int[] {6, 6}, 2), starts};
            String explained = Kiln.explain(compiled, args).toString();
            assertTrue(explained.contains("compiled signatures: 1"), explained);
            assertFalse(explained.contains("graph break"), explained);
            assertTrue(explained.contains("input 3 is updated in place: %12 (reshape_and_cache), returned after the function's outputs"),
                    explained);
            assertTrue(explained.contains("input 4 is updated in place: %12.1 (reshape_and_cache)"), explained);
            if (options.backend() == Backend.NPU) assertTrue(explained.contains("eager reshape_and_cache"), explained);
        }
    }

    @Test
    void cachesTheFunctionCapturesAreWrittenInPlaceAndBadSlotsWriteNothing() {
        Tensor keys = Tensor.zeros(4, 2, 1, 8), values = Tensor.zeros(4, 2, 1, 8);
        Tensor eagerKeys = Tensor.zeros(4, 2, 1, 8), eagerValues = Tensor.zeros(4, 2, 1, 8);
        java.util.function.BiFunction<Tensor[], Object[], Tensor> body = (caches, a) -> {
            Tensor k = (Tensor) a[0];
            Serving.reshapeAndCache(k, k.neg(), caches[0], caches[1], (Tensor) a[1]);
            return caches[0].sum().add(caches[1].mul(k.sum()).sum());
        };
        FnN<Tensor> compiled = Kiln.compileN(a -> body.apply(new Tensor[] {keys, values}, a), NpuBackendTest.NPU.fullGraph(true));
        for (int t = 0; t < 4; t++) {
            Tensor k = Tensor.randn(t, 2, 1, 8), slots = Tensor.of(new long[] {2 * t, 2 * t + 1}, 2);
            Tensor expected = body.apply(new Tensor[] {eagerKeys, eagerValues}, new Object[] {k, slots});
            assertArrayEquals(expected.toFloatArray(), compiled.apply(k, slots).toFloatArray(), 1e-5f, "step " + t);
            assertArrayEquals(eagerKeys.toFloatArray(), keys.toFloatArray(), "keys after step " + t);
            assertArrayEquals(eagerValues.toFloatArray(), values.toFloatArray(), "values after step " + t);
        }
        float[] before = keys.toFloatArray();
        var e = assertThrows(KilnShapeException.class, () -> compiled.apply(Tensor.ones(2, 1, 8), Tensor.of(new long[] {3, 8}, 2)));
        assertEquals("reshapeAndCache: slotMapping[1] = 8 is out of range for a cache [4,2,1,8] of 8 slots (valid: -1 to skip, or 0..7)",
                e.getMessage());
        assertArrayEquals(before, keys.toFloatArray());
    }

    @Test
    void readsOfACacheBeforeItsUpdateReadACopyMadeFirstAndItsViewsSeeTheUpdate() {
        // neg(neg(keys)) is simplified to keys: read after the update, it must still be the old cache.
        java.util.function.Function<Object[], Tensor> body = a -> {
            Tensor keys = (Tensor) a[0], values = (Tensor) a[1], k = (Tensor) a[2];
            Tensor before = keys.neg().neg();
            Tensor total = keys.sum();
            Serving.reshapeAndCache(k, k, keys, values, (Tensor) a[3]);
            return before.add(keys).mul(total).add(before.mT().sum());
        };
        FnN<Tensor> compiled = Kiln.compileN(body::apply, NpuBackendTest.NPU.fullGraph(true));
        Tensor keys = Tensor.randn(5, 3, 2, 1, 4), values = Tensor.zeros(3, 2, 1, 4);
        Tensor eagerKeys = keys.copy(), eagerValues = values.copy();
        for (int t = 0; t < 3; t++) {
            Tensor k = Tensor.randn(6 + t, 1, 1, 4), slots = Tensor.of(new long[] {t}, 1);
            Tensor expected = body.apply(new Object[] {eagerKeys, eagerValues, k, slots});
            assertArrayEquals(expected.toFloatArray(), compiled.apply(keys, values, k, slots).toFloatArray(), 1e-5f, "call " + t);
            assertArrayEquals(eagerKeys.toFloatArray(), keys.toFloatArray(), "keys after call " + t);
        }
        // Explain runs the function: on copies, so the caches stay as the eager ones.
        String explained = Kiln.explain(compiled, keys.copy(), values.copy(), Tensor.randn(9, 1, 1, 4), Tensor.of(new long[] {4}, 1)).toString();
        assertTrue(explained.contains("launch 0: transfer view -> contiguous float32[3,2,1,4]"), explained);

        // A view of the cache taken before the update and read after it sees the update, as eagerly.
        java.util.function.Function<Object[], Tensor> viewing = a -> {
            Tensor cache = (Tensor) a[0], k = (Tensor) a[2];
            Tensor flat = cache.reshape(-1);
            Tensor oldTotal = flat.sum();
            Serving.reshapeAndCache(k, k, cache, (Tensor) a[1], (Tensor) a[3]);
            return flat.mul(2.0).add(oldTotal);
        };
        FnN<Tensor> viewed = Kiln.compileN(viewing::apply, NpuBackendTest.NPU.fullGraph(true));
        for (int t = 0; t < 2; t++) {
            Tensor k = Tensor.randn(16 + t, 1, 1, 4), slots = Tensor.of(new long[] {t}, 1);
            assertArrayEquals(viewing.apply(new Object[] {eagerKeys, eagerValues, k, slots}).toFloatArray(),
                    viewed.apply(keys, values, k, slots).toFloatArray(), 1e-5f, "call " + t);
            assertArrayEquals(eagerKeys.toFloatArray(), keys.toFloatArray(), "keys after call " + t);
        }
    }

    @Test
    void aCacheMadeInsideTheFunctionStartsAfreshOnEveryCall() {
        java.util.function.Function<Object[], Tensor> body = a -> {
            Tensor k = (Tensor) a[0], keys = Tensor.zeros(2, 2, 1, 4), values = Tensor.full(1.5, 2, 2, 1, 4);
            Serving.reshapeAndCache(k, k.mul(3.0), keys, values, (Tensor) a[1]);
            return keys.add(values);
        };
        FnN<Tensor> compiled = Kiln.compileN(body::apply, NpuBackendTest.NPU.fullGraph(true));
        for (long slot = 0; slot < 4; slot++) {
            Object[] args = {Tensor.randn(7 + (int) slot, 1, 1, 4), Tensor.of(new long[] {slot}, 1)};
            assertArrayEquals(body.apply(args).toFloatArray(), compiled.apply(args).toFloatArray(), 1e-6f, "slot " + slot);
        }
    }

    @Test
    void updatingAViewOrReadingTheCacheThroughAnotherTensorBreaksTheGraphFirst() {
        // Keys and values as two views of one [2, NB, BS, Hkv, D] buffer: views made in the graph.
        java.util.function.Function<Object[], Tensor> combined = a -> {
            Tensor kv = (Tensor) a[0], k = (Tensor) a[1];
            Serving.reshapeAndCache(k, k.neg(), kv.select(0, 0), kv.select(0, 1), (Tensor) a[2]);
            return kv.sum(new int[] {1, 2, 3, 4}, false);
        };
        Tensor kv = Tensor.zeros(2, 2, 2, 1, 4), eagerKv = Tensor.zeros(2, 2, 2, 1, 4);
        FnN<Tensor> compiled = Kiln.compileN(combined::apply, NpuBackendTest.NPU);
        for (long slot = 0; slot < 3; slot++) {
            Tensor k = Tensor.randn(slot, 1, 1, 4), slots = Tensor.of(new long[] {slot}, 1);
            assertArrayEquals(combined.apply(new Object[] {eagerKv, k, slots}).toFloatArray(), compiled.apply(kv, k, slots).toFloatArray(), 1e-6f);
            assertArrayEquals(eagerKv.toFloatArray(), kv.toFloatArray());
        }
        Object[] args = {kv, Tensor.randn(9, 1, 1, 4), Tensor.of(new long[] {3}, 1)};
        String explained = Kiln.explain(compiled, args).toString();
        assertTrue(explained.contains("graph break: reshape_and_cache updates a view computed in the graph in place"), explained);
        var e = assertThrows(dev.kiln.KilnGraphBreakException.class, () -> Kiln.compileN(combined::apply, NpuBackendTest.NPU.fullGraph(true)).apply(args));
        assertTrue(e.getMessage().startsWith("graph break in a fullGraph compile: reshape_and_cache updates a view"), e.getMessage());

        // A tensor over the cache's memory that the code reads only after the update.
        Tensor keys = Tensor.zeros(2, 2, 1, 4), values = Tensor.zeros(2, 2, 1, 4), flat = keys.reshape(16);
        Tensor eagerKeys = Tensor.zeros(2, 2, 1, 4), eagerValues = Tensor.zeros(2, 2, 1, 4), eagerFlat = eagerKeys.reshape(16);
        java.util.function.BiFunction<Tensor[], Object[], Tensor> body = (c, a) -> {
            Tensor k = (Tensor) a[0];
            Serving.reshapeAndCache(k, k, c[0], c[1], (Tensor) a[1]);
            return c[2].mul(2.0);
        };
        FnN<Tensor> reading = Kiln.compileN(a -> body.apply(new Tensor[] {keys, values, flat}, a), NpuBackendTest.NPU);
        for (long slot = 0; slot < 3; slot++) {
            Object[] step = {Tensor.randn(20 + slot, 1, 1, 4), Tensor.of(new long[] {slot}, 1)};
            assertArrayEquals(body.apply(new Tensor[] {eagerKeys, eagerValues, eagerFlat}, step).toFloatArray(),
                    reading.apply(step).toFloatArray());
        }
        String readExplained = Kiln.explain(reading, Tensor.randn(1, 1, 1, 4), Tensor.of(new long[] {0}, 1)).toString();
        assertTrue(readExplained.contains("graph break: a float32[16] tensor that shares memory with an input updated in place was read"),
                readExplained);

        // The same cache passed twice: the second argument is another graph input over the memory written.
        java.util.function.Function<Object[], Tensor> twice = a -> {
            Tensor k = (Tensor) a[0];
            Serving.reshapeAndCache(k, k, (Tensor) a[1], (Tensor) a[2], (Tensor) a[4]);
            return ((Tensor) a[3]).mul(2.0);
        };
        FnN<Tensor> sameTwice = Kiln.compileN(twice::apply, NpuBackendTest.NPU);
        Tensor cache = Tensor.zeros(2, 2, 1, 4), other = Tensor.zeros(2, 2, 1, 4);
        Tensor eagerCache = Tensor.zeros(2, 2, 1, 4), eagerOther = Tensor.zeros(2, 2, 1, 4);
        for (long slot = 0; slot < 3; slot++) {
            Tensor k = Tensor.randn(30 + slot, 1, 1, 4), slots = Tensor.of(new long[] {slot}, 1);
            assertArrayEquals(twice.apply(new Object[] {k, eagerCache, eagerOther, eagerCache, slots}).toFloatArray(),
                    sameTwice.apply(k, cache, other, cache, slots).toFloatArray());
        }
        String twiceExplained = Kiln.explain(sameTwice, Tensor.randn(1, 1, 1, 4), cache, other, cache, Tensor.of(new long[] {0}, 1)).toString();
        assertTrue(twiceExplained.contains("graph break: reshape_and_cache updates an input whose memory another input shares in place"),
                twiceExplained);
    }
}
