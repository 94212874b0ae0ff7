package dev.kiln.opt.npu;

import dev.kiln.CompileOptions;
import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.ir.Graph;
import dev.kiln.nn.Serving;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphInterpreter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A compiled matmul keeps the caller's weight packed between calls: the same bits as the
 * eager product, and never the old panels once another tensor is bound or a write into
 * the weight's memory is marked (as the KV cache writes are).
 */
class KeptWeightPanelsTest {

    private static float[] interpreted(Graph g, Tensor... in) {
        return new GraphInterpreter(g).run(in)[0].toFloatArray();
    }

    /** With planned memory (arenas) and with every launch allocating its outputs. */
    @ParameterizedTest
    @ValueSource(booleans = {true, false})
    void theSecondCallKeepsTheWeightPackedAndAMarkedWriteRepacksIt(boolean planMemory) {
        Graph g = FrozenWeightsTest.linear(64);
        NpuExecutable exe = new NpuExecutable(new NpuGraphCompiler().compile(g).program(), NpuDevice.current(), "compiled", "", planMemory);
        Tensor x = Tensor.randn(1, 64, 32), w = Tensor.randn(2, 40, 32);
        for (int call = 0; call < 3; call++) assertArrayEquals(interpreted(g, x, w), exe.run(new Tensor[] {x, w})[0].toFloatArray());
        // 32 x 40 padded to a 48-column panel.
        assertTrue(exe.describe().contains("from its right operand packed in advance (6.0 KiB)"), exe.describe());

        float[] fresh = Tensor.randn(3, 40, 32).toFloatArray();
        MemorySegment.copy(fresh, 0, w.storage().segment(), ValueLayout.JAVA_FLOAT, 0, fresh.length);
        w.storage().markWritten();
        assertArrayEquals(interpreted(g, x, Tensor.of(fresh, 40, 32)), exe.run(new Tensor[] {x, w})[0].toFloatArray());

        Tensor other = Tensor.randn(4, 40, 32);
        for (Tensor bound : List.of(other, w, other)) {
            assertArrayEquals(interpreted(g, x, bound), exe.run(new Tensor[] {x, bound})[0].toFloatArray());
        }
    }

    @Test
    void aCompiledModuleMatchesEagerBitForBitAcrossCallsAndRebinding() {
        Tensor w = Tensor.randn(5, 96, 64), x = Tensor.randn(6, 2, 40, 64);
        FrozenWeightsTest.Layer eager = new FrozenWeightsTest.Layer(w);
        FrozenWeightsTest.Layer compiled = Kiln.compile(new FrozenWeightsTest.Layer(w));
        for (int call = 0; call < 3; call++) assertArrayEquals(eager.forward(x).toFloatArray(), compiled.forward(x).toFloatArray());
        Tensor other = Tensor.randn(7, 96, 64);
        compiled.weight = other;
        assertArrayEquals(new FrozenWeightsTest.Layer(other).forward(x).toFloatArray(), compiled.forward(x).toFloatArray());
    }

    @Test
    void aKvCacheWrittenBetweenCallsIsReadAnew() {
        // Scores of 20 queries against every slot of a paged key cache [4 blocks, 8 slots, 1 head, 16], read as a matmul's B.
        Tensor keyCache = Tensor.zeros(4, 8, 1, 16), valueCache = Tensor.zeros(4, 8, 1, 16), q = Tensor.randn(8, 20, 16);
        Fn1<Tensor> scores = query -> query.matmul(keyCache.reshape(32, 16).mT());
        Fn1<Tensor> compiled = Kiln.compile(scores, CompileOptions.defaults());
        for (int step = 0; step < 4; step++) {
            Tensor keys = Tensor.randn(10 + step, 3, 1, 16);
            Serving.reshapeAndCache(keys, keys, keyCache, valueCache, Tensor.of(new long[] {3L * step, 3L * step + 1, 3L * step + 2}, 3));
            float[] want = scores.apply(q).toFloatArray(), got = compiled.apply(q).toFloatArray();
            assertArrayEquals(want, got, "step " + step);
            assertFalse(java.util.Arrays.stream(toDoubles(want)).allMatch(v -> v == 0), "step " + step + " sees the written keys");
        }
        assertEquals(4 * 2, keyCache.storage().version() + valueCache.storage().version());
    }

    private static double[] toDoubles(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) d[i] = f[i];
        return d;
    }
}
