package dev.kiln.opt.npu;

import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.nn.Serving;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The serving attention ops trace into compiled graphs; their index tensors are read on every call. */
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

    /** A decode step of two sequences: project, write the new keys and values into the paged caches, attend. */
    private static Tensor step(Object... a) {
        Tensor x = (Tensor) a[0], wq = (Tensor) a[1], wk = (Tensor) a[2], keys = (Tensor) a[3], values = (Tensor) a[4];
        Tensor k = x.matmul(wk).reshape(2, 2, 16);
        Serving.reshapeAndCache(k, k.tanh(), keys, values, (Tensor) a[5]);
        Tensor q = x.matmul(wq).reshape(2, 4, 16);
        return Serving.pagedAttention(q, keys, values, (Tensor) a[6], (Tensor) a[7], (Tensor) a[8], 0.25, true, 0, 0).add(1.0);
    }

    @Test
    void aStepThatWritesTheCachesInPlaceBreaksTheGraphThereAndWritesOnEveryCall() {
        FnN<Tensor> compiled = Kiln.compileN(CompiledServingOpsTest::step, NpuBackendTest.NPU);
        Tensor wq = Tensor.randn(1, 32, 64).mul(0.2), wk = Tensor.randn(2, 32, 32).mul(0.2);
        Tensor eagerKeys = Tensor.zeros(8, 4, 2, 16), eagerValues = Tensor.zeros(8, 4, 2, 16);
        Tensor keys = Tensor.zeros(8, 4, 2, 16), values = Tensor.zeros(8, 4, 2, 16);
        Tensor tables = Tensor.of(new int[] {0, 1, 2, 3, 4, 5, 6, 7}, 2, 4), starts = Tensor.of(new int[] {0, 1, 2}, 3);
        for (int t = 0; t < 5; t++) {
            Tensor x = Tensor.randn(10 + t, 2, 32);
            Tensor slots = Tensor.of(new long[] {t, 16 + t}, 2), lengths = Tensor.of(new int[] {t + 1, t + 1}, 2);
            Tensor expected = step(x, wq, wk, eagerKeys, eagerValues, slots, tables, lengths, starts);
            Tensor got = compiled.apply(x, wq, wk, keys, values, slots, tables, lengths, starts);
            assertArrayEquals(expected.toFloatArray(), got.toFloatArray(), 1e-6f, "step " + t);
            assertArrayEquals(eagerKeys.toFloatArray(), keys.toFloatArray(), "keys after step " + t);
            assertArrayEquals(eagerValues.toFloatArray(), values.toFloatArray(), "values after step " + t);
        }
        Object[] args = {Tensor.randn(20, 2, 32), wq, wk, keys, values, Tensor.of(new long[] {5, 21}, 2), tables,
                Tensor.of(new int[] {6, 6}, 2), starts};
        String explained = Kiln.explain(compiled, args).toString();
        assertTrue(explained.contains("graph break: reshapeAndCache writes the KV caches in place"), explained);

        FnN<Tensor> whole = Kiln.compileN(CompiledServingOpsTest::step, NpuBackendTest.NPU.fullGraph(true));
        var e = assertThrows(dev.kiln.KilnGraphBreakException.class, () -> whole.apply(args));
        assertTrue(e.getMessage().startsWith("graph break in a fullGraph compile: reshapeAndCache writes the KV caches in place"),
                e.getMessage());
    }
}
