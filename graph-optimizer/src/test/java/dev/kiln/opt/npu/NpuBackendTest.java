package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Fn1;
import dev.kiln.Fn3;
import dev.kiln.Kiln;
import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.device.Dma;
import dev.kiln.npu.device.LaunchTraffic;
import dev.kiln.cache.CacheConfig;
import dev.kiln.cache.KernelCache;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class NpuBackendTest {
    static final CompileOptions NPU = CompileOptions.defaults().backend(Backend.NPU);

    static Tensor w1(Tensor x, Tensor a, Tensor b) { return x.mul(a).add(b).gelu().mul(x.sigmoid()).add(x); }

    private static ValueRef input(GraphBuilder b, DType dtype, int... dims) { return b.input(new TensorMeta(dtype, Shape.of(dims))); }

    private static ValueRef unary(GraphBuilder b, UnaryFn fn, ValueRef x) { return b.apply(new Op.Unary(fn), List.of(x)).get(0); }

    private static ValueRef binary(GraphBuilder b, BinaryFn fn, ValueRef x, ValueRef y) { return b.apply(new Op.Binary(fn), List.of(x, y)).get(0); }

    private static ValueRef toFloat32(GraphBuilder b, ValueRef x) { return b.apply(new Op.Cast(DType.FLOAT32), List.of(x)).get(0); }

    @Test
    void w1CompiledForTheNpuIsBitIdenticalToEagerAndMovesEightBytesPerElement() {
        Fn3<Tensor> fused = Kiln.compile(NpuBackendTest::w1, NPU);
        for (int n : new int[] {1, 33, 10_000, 100_003}) {
            Tensor x = Tensor.randn(n, n).mul(4.0), a = Tensor.scalar(1.25f), b = Tensor.scalar(-0.375f);
            Tensor expected = w1(x, a, b);
            fused.apply(x, a, b); // the first call traces
            long before = Dma.totalBytes();
            Tensor got = fused.apply(x, a, b);
            long moved = Dma.totalBytes() - before;
            assertArrayEquals(expected.toFloatArray(), got.toFloatArray(), "n=" + n);
            // One read of x, one write of the result, and the two 0-d operands once each.
            assertEquals(8L * n + 8, moved, "n=" + n);
        }
    }

    @Test
    void w1LowersToOneFusedLaunchAndItsTrafficIsCountedPerLaunch() {
        int n = 5000;
        Graph g = w1Graph(n);
        NpuGraphCompiler compiler = new NpuGraphCompiler();
        NpuExecutable exe = compiler.compile(g);
        assertEquals(1, exe.program().launches().size());
        assertEquals(1, exe.program().fusedLaunches());
        Tensor x = Tensor.randn(3, n);
        exe.run(new Tensor[] {x, Tensor.scalar(0.5f), Tensor.scalar(2f)});
        List<LaunchTraffic> traffic = exe.lastRunTraffic();
        assertEquals(1, traffic.size());
        assertEquals(4L * n + 8, traffic.get(0).bytesRead());
        assertEquals(4L * n, traffic.get(0).bytesWritten());
    }

    static Graph w1Graph(int n) {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = input(b, DType.FLOAT32, n), a = input(b, DType.FLOAT32), c = input(b, DType.FLOAT32);
        ValueRef t = unary(b, UnaryFn.GELU, binary(b, BinaryFn.ADD, binary(b, BinaryFn.MUL, x, a), c));
        t = binary(b, BinaryFn.MUL, t, unary(b, UnaryFn.SIGMOID, x));
        return b.build(List.of(binary(b, BinaryFn.ADD, t, x)));
    }

    @Test
    void aScaleAndShiftPerColumnIsOneKernelThatReadsItsVectorsBroadcast() {
        int rows = 64, cols = 48;
        long n = (long) rows * cols;
        GraphBuilder b = new GraphBuilder();
        ValueRef x = input(b, DType.FLOAT32, rows, cols), gamma = input(b, DType.FLOAT32, cols), beta = input(b, DType.FLOAT32, cols);
        ValueRef t = unary(b, UnaryFn.TANH, binary(b, BinaryFn.ADD, binary(b, BinaryFn.MUL, x, gamma), beta));
        NpuExecutable exe = new NpuGraphCompiler().compile(b.build(List.of(t)));
        assertEquals(1, exe.program().launches().size(), exe.program().toText());
        Tensor xs = Tensor.randn(31, rows, cols), gs = Tensor.randn(32, cols), bs = Tensor.randn(33, cols);
        Tensor got = exe.run(new Tensor[] {xs, gs, bs})[0];
        assertArrayEquals(xs.mul(gs).add(bs).tanh().toFloatArray(), got.toFloatArray());
        // x once; gamma and beta element by element into every tile (from cache, on this CPU); one write.
        LaunchTraffic traffic = exe.lastRunTraffic().getFirst();
        assertEquals(3 * 4 * n, traffic.bytesRead());
        assertEquals(4 * n, traffic.bytesWritten());
    }

    @Test
    void rotaryTablesComputeTheirAnglesOnceForBothOutputs() {
        // angles = position [S, 1] * inverse frequency [32]; cos and sin of them are one kernel with two outputs,
        // which also converts the int64 positions (the cast recomputed for every element, not a launch of its own).
        Fn1<Tensor[]> tables = positions -> dev.kiln.nn.F.rotaryTables(positions, 64, 10_000);
        Fn1<Tensor[]> compiled = Kiln.compile(tables, NPU);
        for (int s : new int[] {1, 7, 256, 300}) {
            Tensor positions = Tensor.arange(s);
            Tensor[] want = tables.apply(positions), got = compiled.apply(positions);
            assertArrayEquals(want[0].toFloatArray(), got[0].toFloatArray(), "cos, " + s + " positions");
            assertArrayEquals(want[1].toFloatArray(), got[1].toFloatArray(), "sin, " + s + " positions");
        }
        String explain = Kiln.explain(compiled, Tensor.arange(256)).toString();
        assertTrue(explain.contains("fused fused_tofloat32_mul_cos_sin"), explain);
        assertFalse(java.util.regex.Pattern.compile("fused fused_tofloat32_\\d+ ").matcher(explain).find(), "no kernel of the cast alone\n" + explain);
    }

    @Test
    void castsToFloat32AreReadConvertedByTheKernelsDma() {
        // x * mask + index + wide, the three of other dtypes converted as they are loaded: one kernel.
        int rows = 40, cols = 70;
        long n = (long) rows * cols;
        GraphBuilder b = new GraphBuilder();
        ValueRef x = input(b, DType.FLOAT32, rows, cols), mask = input(b, DType.BOOL, rows, cols);
        ValueRef index = input(b, DType.INT64, rows, cols), wide = input(b, DType.FLOAT64, rows, cols);
        ValueRef t = binary(b, BinaryFn.MUL, x, toFloat32(b, mask));
        t = binary(b, BinaryFn.ADD, binary(b, BinaryFn.ADD, t, toFloat32(b, index)), toFloat32(b, wide));
        NpuExecutable exe = new NpuGraphCompiler().compile(b.build(List.of(t)));
        assertEquals(1, exe.program().launches().size(), exe.program().toText());
        assertEquals(exe.program(), KernelProgram.parse(exe.program().toText()), "the kernel cache's text form keeps the input dtypes");
        // Integers past 2^24 and doubles between floats round as the eager cast rounds them; NaN and infinities pass.
        long[] longs = new long[(int) n];
        double[] doubles = new double[(int) n];
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        for (int i = 0; i < n; i++) {
            longs[i] = r.nextLong() >> r.nextInt(64);
            doubles[i] = i % 97 == 0 ? new double[] {Double.NaN, Double.POSITIVE_INFINITY, 1e300, -0.0}[i / 97 % 4] : r.nextGaussian() * 1e6;
        }
        Tensor xs = Tensor.randn(41, rows, cols), ms = Tensor.randn(42, rows, cols).gt(0.0);
        Tensor is = Tensor.of(longs, rows, cols), ds = Tensor.of(doubles, rows, cols);
        Tensor want = xs.mul(ms.to(DType.FLOAT32)).add(is.to(DType.FLOAT32)).add(ds.to(DType.FLOAT32));
        assertArrayEquals(want.toFloatArray(), exe.run(new Tensor[] {xs, ms, is, ds})[0].toFloatArray());
        LaunchTraffic traffic = exe.lastRunTraffic().getFirst();
        assertEquals((4 + 1 + 8 + 8) * n, traffic.bytesRead(), "each input once, in its own dtype");
        assertEquals(4 * n, traffic.bytesWritten());
    }

    @Test
    void nonFusibleOpsBetweenPointwiseChainsStillGiveEagerResults() {
        Fn3<Tensor> fn = (x, w, bias) -> {
            Tensor h = x.matmul(w).add(bias).gelu().mul(0.5).clamp(-2, 2);    // fused after the matmul
            Tensor p = h.reshape(6, 4).softmax(1).mul(3.0).sub(h.reshape(6, 4).tanh()); // softmax breaks the chain
            Tensor q = p.permute(1, 0).exp().add(1.0);                           // a transposed view feeds a fused group
            return Tensor.where(q.gt(2.0), q, q.neg());                          // comparison stays eager, where fuses
        };
        Fn3<Tensor> compiled = Kiln.compile(fn, NPU);
        Tensor x = Tensor.randn(1, 4, 5), w = Tensor.randn(2, 5, 6), bias = Tensor.randn(3, 6);
        float[] expected = fn.apply(x, w, bias).toFloatArray();
        assertArrayEquals(expected, compiled.apply(x, w, bias).toFloatArray());
        assertArrayEquals(expected, compiled.apply(x, w, bias).toFloatArray());
    }

    @Test
    void outputsThatAreAlsoUsedInsideTheGroupAreStored() {
        Fn1<Tensor[]> fn = x -> {
            Tensor e = x.exp();
            Tensor y = e.mul(2.0).add(x);
            return new Tensor[] {e, y, x.to(DType.FLOAT32)};
        };
        Fn1<Tensor[]> compiled = Kiln.compile(fn, NPU);
        Tensor x = Tensor.randn(7, 3, 11);
        Tensor[] want = fn.apply(x), got = compiled.apply(x);
        for (int i = 0; i < want.length; i++) assertArrayEquals(want[i].toFloatArray(), got[i].toFloatArray(), "output " + i);
    }

    @Test
    void kernelProgramRoundTripsThroughText() {
        Graph g = w1Graph(64);
        GraphBuilder b = new GraphBuilder();
        ValueRef x = input(b, DType.FLOAT32, 4, 8), w = input(b, DType.FLOAT32, 8, 8);
        ValueRef m = b.apply(new Op.MatMul(), List.of(x, w)).get(0);
        ValueRef s = b.apply(new Op.BinaryScalar(BinaryFn.SUB, 0.1, false, true), List.of(m)).get(0);
        ValueRef c = b.apply(new Op.Clamp(-0.0, Double.POSITIVE_INFINITY), List.of(s)).get(0);
        ValueRef sm = b.apply(new Op.Softmax(1, false), List.of(c)).get(0);
        ValueRef r = b.apply(new Op.Reshape(Shape.of(32)), List.of(sm)).get(0);
        ValueRef e = unary(b, UnaryFn.ERF, r);
        Graph mixed = b.build(List.of(e, c));
        NpuGraphCompiler compiler = new NpuGraphCompiler();
        for (Graph graph : List.of(g, mixed)) {
            KernelProgram p = compiler.lower(graph);
            String text = p.toText();
            assertTrue(text.startsWith(KernelProgram.FORMAT + "\n"), text);
            KernelProgram back = KernelProgram.parse(text);
            assertEquals(p, back);
            assertEquals(text, back.toText());
        }
        KernelProgram p = compiler.lower(mixed);
        // The subtraction and clamp after the matmul become its epilogue.
        assertEquals(1, p.fusedLaunches(), p.toText());
        assertEquals(List.of("MatMulFused", "Eager", "Eager", "Fused"),
                p.launches().stream().map(l -> l.getClass().getSimpleName()).toList(), p.toText());
    }

    @Test
    void aSmallSramGivesManySmallTilesAndTheSameResult() {
        NpuDevice tiny = new NpuDevice(64 * 1024, NpuDevice.current().vectorBits(), 1, 1e10);
        KernelProgram p = new NpuGraphCompiler(tiny, KernelCache.open(CacheConfig.memoryOnly(1 << 20))).lower(w1Graph(100));
        assertEquals(1, p.fusedLaunches());
        Tensor x = Tensor.randn(9, 100);
        Tensor got = new NpuGraphCompiler(tiny, KernelCache.open(CacheConfig.memoryOnly(1 << 20))).compile(w1Graph(100)).run(new Tensor[] {x, Tensor.scalar(3f), Tensor.scalar(1f)})[0];
        assertArrayEquals(w1(x, Tensor.scalar(3f), Tensor.scalar(1f)).toFloatArray(), got.toFloatArray());
    }

    @Test
    void aResultTheCodeComputedIsNeverTheMemoryOfAnInputThoughThePassesMadeItOne() {
        Fn1<Tensor> twiceNegated = Kiln.compile((Tensor x) -> x.neg().neg(), NPU);
        Fn1<Tensor> transposed = Kiln.compile((Tensor x) -> x.mT(), NPU);
        Tensor x = Tensor.randn(3, 4, 5);
        for (int call = 0; call < 2; call++) {
            Tensor y = twiceNegated.apply(x);
            assertArrayEquals(x.toFloatArray(), y.toFloatArray());
            assertFalse(y.storage() == x.storage(), "neg(neg(x)) is a new tensor, as eagerly");
            // A view the code returns stays a view, as eagerly.
            assertTrue(transposed.apply(x).storage() == x.storage());
        }
    }

    @Test
    void anInputReadBesideItsInPlaceUpdateIsReadFromACopyMadeFirst() {
        GraphBuilder b = new GraphBuilder();
        List<ValueRef> in = NpuKernelCacheTest.cacheWriteInputs(b);
        List<ValueRef> updated = b.apply(new Op.ReshapeAndCache(), List.of(in.get(0), in.get(0), in.get(1), in.get(2), in.get(3)));
        // Read after the update in the graph's order, the exp still reads the cache as it was.
        ValueRef before = b.apply(new Op.Unary(UnaryFn.EXP), List.of(in.get(1))).getFirst();
        Graph g = b.build(List.of(before, updated.get(0), updated.get(1)));
        KernelProgram p = Lowering.lower(g, NpuDevice.current());
        assertTrue(p.launches().getFirst() instanceof KernelProgram.Transfer t && t.in().equals(List.of(p.inputs().get(1))), p.toText());

        Tensor keys = Tensor.randn(7, 3, 2, 1, 4), values = Tensor.zeros(3, 2, 1, 4), k = Tensor.randn(8, 2, 1, 4);
        float[] old = keys.toFloatArray();
        Tensor[] out = new NpuExecutable(p, NpuDevice.current()).run(new Tensor[] {k, keys, values, Tensor.of(new long[] {0, 5}, 2)});
        assertArrayEquals(Tensor.of(old, 3, 2, 1, 4).exp().toFloatArray(), out[0].toFloatArray(), 1e-6f);
        assertTrue(out[1].storage() == keys.storage(), "the update ran in the caller's memory");
        assertArrayEquals(java.util.Arrays.copyOfRange(k.toFloatArray(), 0, 4), java.util.Arrays.copyOfRange(keys.toFloatArray(), 0, 4));

        // A value the graph computed has no copy: the tracer never records such an update.
        GraphBuilder c = new GraphBuilder();
        List<ValueRef> ci = NpuKernelCacheTest.cacheWriteInputs(c);
        ValueRef made = c.apply(new Op.Unary(UnaryFn.NEG), List.of(ci.get(1))).getFirst();
        ValueRef read = c.apply(new Op.Unary(UnaryFn.EXP), List.of(made)).getFirst();
        List<ValueRef> written = c.apply(new Op.ReshapeAndCache(), List.of(ci.get(0), ci.get(0), made, ci.get(2), ci.get(3)));
        Graph h = c.build(List.of(read, written.get(0)));
        var e = assertThrows(IllegalStateException.class, () -> Lowering.lower(h, NpuDevice.current()));
        assertEquals("%6 (reshape_and_cache) updates %4 in place, which other nodes read too", e.getMessage());
    }
}
