package dev.kiln.opt.npu;

import dev.kiln.CompileOptions;
import dev.kiln.Fn1;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.cache.CacheConfig;
import dev.kiln.cache.KernelCache;
import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.nn.F;
import dev.kiln.nn.Module;
import dev.kiln.nn.Serving;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

class FrozenWeightsTest {
    private static final NpuDevice DEVICE = NpuDevice.current();

    /** {@code x @ w.T} for x [6, 32] and w [40, 32]: a linear layer's product. */
    private static Graph linear() { return linear(6); }

    /** {@code x @ w.T} for x [rows, 32] and w [40, 32]. */
    static Graph linear(int rows) {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, Shape.of(rows, 32)));
        ValueRef w = b.input(new TensorMeta(DType.FLOAT32, Shape.of(40, 32)));
        ValueRef wt = b.apply(new Op.Permute(List.of(1, 0)), List.of(w)).get(0);
        return b.build(List.of(b.apply(new Op.MatMul(), List.of(x, wt)).get(0)));
    }

    @Test
    void aFrozenWeightsTransposeIsGatheredOnceForTheMatmul() {
        KernelProgram plain = Lowering.lower(linear(), DEVICE);
        assertEquals(0, plain.transfers(), plain.toText());
        assertEquals(List.of(), plain.weights());

        KernelProgram frozen = Lowering.lower(linear(), DEVICE, Set.of(1));
        assertEquals(1, frozen.transfers(), frozen.toText());
        assertEquals(List.of(frozen.inputs().get(1)), frozen.weights());
        assertEquals(frozen, KernelProgram.parse(frozen.toText()));
        // The activation is no weight: a transposed x is read in place either way.
        assertEquals(0, Lowering.lower(linear(), DEVICE, Set.of(0)).transfers());
    }

    /**
     * Equal to rounding: with the weight contiguous, a small product may take another GEMM
     * path that sums in another order (the decoder block's products come out bit-identical).
     */
    private static void assertClose(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], actual[i], 1e-5f * (1 + Math.abs(expected[i])), "element " + i);
    }

    @Test
    void frozenAndUnfrozenProgramsAgreeAndKeyApart() {
        NpuGraphCompiler c = new NpuGraphCompiler(DEVICE, KernelCache.open(CacheConfig.memoryOnly(16 << 20)));
        Tensor[] in = {Tensor.randn(1, 6, 32), Tensor.randn(2, 40, 32)};
        NpuExecutable plain = c.compile(linear()), frozen = c.compile(linear(), Set.of(1));
        assertClose(plain.run(in)[0].toFloatArray(), frozen.run(in)[0].toFloatArray());
        assertNotEquals(c.key(linear()), c.key(linear(), Set.of(1)));
        assertTrue(frozen.describe().contains("constants and frozen weights: 2 launches run once"), frozen.describe());
        assertTrue(frozen.program().launches().size() > plain.program().launches().size());
    }

    /**
     * {@code x * exp(arange(8) * -0.5)} and {@code arange(0, 16, 2)} returned: the constant chain
     * runs once, the returned constant at every call, into memory of its own.
     */
    @Test
    void constantsRunOnceAndAReturnedConstantIsFreshAtEveryCall() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(new TensorMeta(DType.FLOAT32, Shape.of(4, 8)));
        ValueRef steps = b.apply(new Op.Arange(0, 1, 8, DType.FLOAT32), List.of()).get(0);
        ValueRef decay = b.apply(new Op.Unary(dev.kiln.ops.UnaryFn.EXP),
                List.of(b.apply(new Op.BinaryScalar(dev.kiln.ops.BinaryFn.MUL, -0.5, false, false), List.of(steps)).get(0))).get(0);
        ValueRef returned = b.apply(new Op.Arange(0, 2, 8, DType.FLOAT32), List.of()).get(0);
        Graph g = b.build(List.of(b.apply(new Op.Binary(dev.kiln.ops.BinaryFn.MUL), List.of(x, decay)).get(0), returned));
        NpuExecutable exe = new NpuGraphCompiler(DEVICE, KernelCache.open(CacheConfig.memoryOnly(16 << 20))).compile(g);
        Tensor[] first = null;
        for (int call = 0; call < 3; call++) {
            Tensor in = Tensor.randn(call, 4, 8);
            Tensor[] want = new dev.kiln.trace.GraphInterpreter(g).run(new Tensor[] {in}), got = exe.run(new Tensor[] {in});
            assertClose(want[0].toFloatArray(), got[0].toFloatArray());
            assertArrayEquals(want[1].toFloatArray(), got[1].toFloatArray());
            if (first == null) first = got;
            else assertNotSame(first[1].storage(), got[1].storage(), "a returned constant is the caller's own memory");
        }
        String explain = exe.describe();
        assertTrue(explain.contains("constants: 2 launches run once"), explain);
    }

    /** A layer whose weight is a field, so that tests can bind another tensor. */
    static class Layer extends Module {
        Tensor weight;

        Layer(Tensor weight) { this.weight = weight; }

        Tensor forward(Tensor x) { return F.gelu(F.linear(x, weight, null)); }
    }

    @Test
    void derivedWeightsAreReusedUntilAnotherTensorIsBound() {
        Tensor w = Tensor.randn(3, 24, 16), x = Tensor.randn(4, 5, 16);
        Layer frozen = Kiln.compile(new Layer(w), CompileOptions.defaults().freezeWeights(true));
        float[] first = frozen.forward(x).toFloatArray();
        assertClose(new Layer(w).forward(x).toFloatArray(), first);

        // Writing into the bound weight is not seen: its transposed copy was made once.
        float[] original = w.toFloatArray();
        w.storage().segment().setAtIndex(ValueLayout.JAVA_FLOAT, w.layout().offset(), original[0] + 100f);
        assertArrayEquals(first, frozen.forward(x).toFloatArray());

        // Binding another tensor is.
        Tensor other = Tensor.randn(9, 24, 16);
        frozen.weight = other;
        assertClose(new Layer(other).forward(x).toFloatArray(), frozen.forward(x).toFloatArray());
        frozen.weight = w;
        assertFalse(java.util.Arrays.equals(first, frozen.forward(x).toFloatArray()), "rebinding w picks up its new contents");
    }

    @Test
    void capturedTensorsAreWeightsOfAFunction() {
        Tensor w = Tensor.randn(5, 48, 32), b = Tensor.randn(6, 48);
        Fn1<Tensor> body = x -> F.linear(x, w, b).relu();
        Fn1<Tensor> frozen = Kiln.compile(body, CompileOptions.defaults().freezeWeights(true));
        Tensor x = Tensor.randn(7, 3, 10, 32);
        assertClose(body.apply(x).toFloatArray(), frozen.apply(x).toFloatArray());
        String explain = Kiln.explain(frozen, x).toString();
        assertTrue(explain.contains("frozen weights:"), explain);
        // Another batch size: the rows become symbolic and the family keeps the frozen weights.
        Tensor y = Tensor.randn(8, 3, 17, 32);
        assertClose(body.apply(y).toFloatArray(), frozen.apply(y).toFloatArray());
    }

    @Test
    void aCacheWrittenInPlaceDoesNotRecomputeWhatWasDerivedFromOtherWeights() {
        Tensor w = Tensor.randn(3, 24, 16), keys = Tensor.zeros(4, 2, 1, 16), values = Tensor.zeros(4, 2, 1, 16);
        FnN<Tensor[]> step = Kiln.compileN(a -> {
            Tensor x = (Tensor) a[0];
            Serving.reshapeAndCache(x.reshape(1, 1, 16), x.reshape(1, 1, 16), keys, values, (Tensor) a[1]);
            return new Tensor[] {F.linear(x, w, null), keys.sum()};
        }, CompileOptions.defaults().freezeWeights(true));
        Tensor x = Tensor.randn(4, 1, 16);
        Tensor[] first = step.apply(x, Tensor.of(new long[] {0}, 1));
        // An unmarked write into w is not seen while w's derived forms are reused; the cache, a captured
        // tensor and so a weight too, is written (and marked) by every call without making them again.
        w.storage().segment().setAtIndex(ValueLayout.JAVA_FLOAT, w.layout().offset(), 100f);
        Tensor[] second = step.apply(x, Tensor.of(new long[] {1}, 1));
        assertArrayEquals(first[0].toFloatArray(), second[0].toFloatArray());
        assertEquals(2 * x.sum().item(), second[1].item(), 1e-5, "the cache holds both calls' keys");
    }

    @Test
    void aCacheReadBeforeItsUpdateIsReadAfreshOnEveryCallWithoutMakingOtherWeightsFormsAgain() {
        Tensor w = Tensor.randn(3, 24, 16), keys = Tensor.zeros(4, 2, 1, 16), values = Tensor.zeros(4, 2, 1, 16);
        Tensor eagerKeys = Tensor.zeros(4, 2, 1, 16), eagerValues = Tensor.zeros(4, 2, 1, 16);
        java.util.function.BiFunction<Tensor[], Tensor[], Tensor[]> body = (c, a) -> {
            Tensor before = c[0].sum();
            Serving.reshapeAndCache(a[0].reshape(1, 1, 16), a[0].reshape(1, 1, 16), c[0], c[1], a[1]);
            return new Tensor[] {before.add(c[0].sum().mul(10.0)), F.linear(a[0], w, null)};
        };
        FnN<Tensor[]> step = Kiln.compileN(a -> body.apply(new Tensor[] {keys, values}, new Tensor[] {(Tensor) a[0], (Tensor) a[1]}),
                CompileOptions.defaults().freezeWeights(true).fullGraph(true));
        Tensor x = Tensor.randn(40, 1, 16);
        float[] product = null;
        for (int call = 0; call < 4; call++) {
            Tensor[] args = {x, Tensor.of(new long[] {call}, 1)};
            Tensor[] got = step.apply((Object[]) args);
            assertEquals(body.apply(new Tensor[] {eagerKeys, eagerValues}, args)[0].item(), got[0].item(), 1e-4, "call " + call);
            if (product == null) {
                product = got[1].toFloatArray();
                // Unmarked, so not seen while w's transposed form is reused: the cache's updates must not make it again.
                w.storage().segment().setAtIndex(ValueLayout.JAVA_FLOAT, w.layout().offset(), 100f);
            } else {
                assertArrayEquals(product, got[1].toFloatArray(), "call " + call);
            }
        }
    }
}
