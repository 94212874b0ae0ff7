package dev.kiln.opt.npu;

import dev.kiln.CompileOptions;
import dev.kiln.Dynamic;
import dev.kiln.Fn1;
import dev.kiln.Kiln;
import dev.kiln.cache.CacheConfig;
import dev.kiln.cache.KernelCache;
import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.SizeTemplate;
import dev.kiln.ir.ValueRef;
import dev.kiln.nn.F;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphExecutable;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ProgramFamilyTest {
    private static final long[] BASE = {6, 10};

    /**
     * {@code sum(gelu(x[m,k] @ w[k,32] + b) .reshape(m*32) * 2 + 1)} over rows of 4: a matmul
     * with an epilogue, a reshape whose target is m*32, a fused chain and a reduction.
     */
    static Graph sample(long m, long k) {
        GraphBuilder g = new GraphBuilder();
        ValueRef x = g.input(new TensorMeta(DType.FLOAT32, Shape.of(m, k)));
        ValueRef w = g.input(new TensorMeta(DType.FLOAT32, Shape.of(k, 32)));
        ValueRef b = g.input(new TensorMeta(DType.FLOAT32, Shape.of(32)));
        ValueRef two = g.input(new TensorMeta(DType.FLOAT32, Shape.SCALAR));
        ValueRef t = g.apply(new Op.MatMul(), List.of(x, w)).get(0);
        t = g.apply(new Op.Binary(BinaryFn.ADD), List.of(t, b)).get(0);
        t = g.apply(new Op.Unary(UnaryFn.GELU), List.of(t)).get(0);
        t = g.apply(new Op.Reshape(Shape.of(m * 8, 4)), List.of(t)).get(0);
        t = g.apply(new Op.Binary(BinaryFn.MUL), List.of(t, two)).get(0);
        t = g.apply(new Op.Unary(UnaryFn.SIGMOID), List.of(t)).get(0);
        t = g.apply(new Op.Reduce(ReduceFn.SUM, List.of(1), false), List.of(t)).get(0);
        return g.build(List.of(t));
    }

    private static List<Graph> samples(long[] base) {
        return SizeTemplate.samplePoints(base).stream().map(p -> sample(p[0], p[1])).toList();
    }

    private static NpuGraphCompiler memoryCompiler() {
        return new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.memoryOnly(64 << 20)));
    }

    private static ProgramFamily family(NpuGraphCompiler c) {
        List<Graph> graphs = samples(BASE);
        return ProgramFamily.fit(graphs.stream().map(c::lower).toList(), graphs.stream().map(Graph::inputMetas).toList(), BASE).orElseThrow();
    }

    private static Tensor[] inputs(int m, int k) {
        return new Tensor[] {Tensor.randn(m, m, k), Tensor.randn(k, k, 32), Tensor.randn(3, 32), Tensor.scalar(2f)};
    }

    @Property(tries = 25)
    void theProgramAtAnySizeIsTheProgramCompiledForThatSize(@ForAll @IntRange(min = 1, max = 300) int m,
                                                             @ForAll @IntRange(min = 1, max = 300) int k) {
        NpuGraphCompiler c = memoryCompiler();
        assertEquals(c.lower(sample(m, k)).toText(), family(c).at(new long[] {m, k}).toText());
    }

    @Test
    void symbolsAreBoundFromTheInputsDimensions() {
        ProgramFamily f = family(memoryCompiler());
        assertEquals("s0 = input 0 dim 0, s1 = input 0 dim 1", f.describeBindings());
        assertArrayEquals(new long[] {17, 3}, f.bind(sample(17, 3).inputMetas()));
        assertTrue(f.symbolicSizes() > 0);
    }

    @Test
    void programsThatDifferOtherThanInSizesAreNoFamily() {
        NpuGraphCompiler c = memoryCompiler();
        List<Graph> graphs = new java.util.ArrayList<>(samples(BASE));
        // One sample lowered from another function (no reduction at the end).
        GraphBuilder g = new GraphBuilder();
        ValueRef x = g.input(graphs.get(2).inputMetas().get(0));
        for (int i = 1; i < 4; i++) g.input(graphs.get(2).inputMetas().get(i));
        graphs.set(2, g.build(List.of(g.apply(new Op.Unary(UnaryFn.EXP), List.of(x)).get(0))));
        Optional<ProgramFamily> f = ProgramFamily.fit(graphs.stream().map(c::lower).toList(),
                graphs.stream().map(Graph::inputMetas).toList(), BASE);
        assertTrue(f.isEmpty());
    }

    @Test
    void aFamilyIsCheckedAtDistantSizes() {
        NpuGraphCompiler c = memoryCompiler();
        long[] base = {16, 10};
        List<Graph> graphs = samples(base);
        assertTrue(ProgramFamily.fitChecked(graphs, base, c::lower).isPresent());
        // A lowering that keeps the first 8 * floor(m / 8) results: constant (16) at every
        // sample m = 16..19, so only the distant sizes (37, 53) show it is not a polynomial.
        java.util.function.Function<Graph, KernelProgram> rounding = g -> {
            int m = g.inputMetas().get(0).shape().dim(0);
            KernelProgram p = c.lower(g);
            List<KernelProgram.Launch> launches = new java.util.ArrayList<>(p.launches());
            launches.add(new KernelProgram.Eager(new Op.Slice(0, 0, 1, m / 8 * 8), p.outputs(), List.of(p.slots())));
            return new KernelProgram(p.slots() + 1, p.inputs(), launches, List.of(p.slots()));
        };
        assertTrue(ProgramFamily.fit(graphs.stream().map(rounding).toList(), graphs.stream().map(Graph::inputMetas).toList(), base)
                .isPresent(), "the samples alone cannot tell");
        assertTrue(ProgramFamily.fitChecked(graphs, base, rounding).isEmpty());
    }

    @Test
    void oneExecutableRunsEverySizeAsItsOwnCompiledProgramDoes() {
        NpuGraphCompiler c = memoryCompiler();
        GraphExecutable family = c.compileFamily(samples(BASE), BASE).orElseThrow();
        for (int[] mk : new int[][] {{6, 10}, {1, 1}, {40, 7}, {3, 130}, {6, 10}, {257, 64}}) {
            Tensor[] in = inputs(mk[0], mk[1]);
            float[] expected = c.compile(sample(mk[0], mk[1])).run(in)[0].toFloatArray();
            Tensor out = family.run(in)[0];
            assertEquals(Shape.of(mk[0] * 8L), out.shape());
            assertArrayEquals(expected, out.toFloatArray(), "sizes " + mk[0] + "x" + mk[1]);
        }
        assertTrue(family.describe().contains("one program for every size"), family.describe());
        assertTrue(family.describe().contains("5 sizes run so far"), family.describe());
        assertTrue(family.describe().contains("sizes at run time: ") && family.describe().contains("[8*s0,4]"), family.describe());
    }

    @Test
    void concurrentRunsAtDifferentSizesEachGetTheirOwnProgramAndArena() throws Exception {
        NpuGraphCompiler c = memoryCompiler();
        GraphExecutable family = c.compileFamily(samples(BASE), BASE).orElseThrow();
        int[][] sizes = {{6, 10}, {33, 17}, {128, 64}, {5, 200}};
        Tensor[][] inputs = new Tensor[sizes.length][];
        float[][] expected = new float[sizes.length][];
        for (int i = 0; i < sizes.length; i++) {
            inputs[i] = inputs(sizes[i][0], sizes[i][1]);
            expected[i] = c.compile(sample(sizes[i][0], sizes[i][1])).run(inputs[i])[0].toFloatArray();
        }
        try (var pool = java.util.concurrent.Executors.newFixedThreadPool(4)) {
            List<java.util.concurrent.Future<?>> runs = new java.util.ArrayList<>();
            for (int t = 0; t < 4; t++) {
                int first = t;
                runs.add(pool.submit(() -> {
                    for (int r = 0; r < 25; r++) {
                        int i = (first + r) % sizes.length;
                        assertArrayEquals(expected[i], family.run(inputs[i])[0].toFloatArray(), "sizes " + java.util.Arrays.toString(sizes[i]));
                    }
                }));
            }
            for (var f : runs) f.get();
        }
    }

    @Test
    void inputsTheProgramCannotTakeAreRefusedNamingTheSizes() {
        GraphExecutable family = memoryCompiler().compileFamily(samples(BASE), BASE).orElseThrow();
        Tensor[] bad = {Tensor.randn(1, 9, 10), Tensor.randn(2, 11, 32), Tensor.randn(3, 32), Tensor.scalar(2f)};
        KilnException e = assertThrows(KilnException.class, () -> family.run(bad));
        assertTrue(e.getMessage().contains("[9, 10]") && e.getMessage().contains("matmul"), e.getMessage());
        // The refusal leaves the executable working.
        Tensor[] good = inputs(9, 10);
        assertEquals(Shape.of(72), family.run(good)[0].shape());
    }

    @Test
    void aFamilyOnDiskServesANewJvmWithoutRunningAPass(@TempDir Path dir) {
        Tensor[] in = inputs(23, 5);
        NpuGraphCompiler cold = new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.at(dir)));
        NpuGraphCompiler.Counts before = NpuGraphCompiler.counts();
        float[] first = cold.compileFamily(samples(BASE), BASE).orElseThrow().run(in)[0].toFloatArray();
        NpuGraphCompiler.Counts afterCold = NpuGraphCompiler.counts();
        assertEquals(before.compiles() + 1, afterCold.compiles());

        NpuGraphCompiler warm = new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.at(dir)));
        GraphExecutable loaded = warm.compileFamily(samples(BASE), BASE).orElseThrow();
        float[] second = loaded.run(in)[0].toFloatArray();
        NpuGraphCompiler.Counts afterWarm = NpuGraphCompiler.counts();
        assertEquals(afterCold.compiles(), afterWarm.compiles());
        assertEquals(afterCold.diskHits() + 1, afterWarm.diskHits());
        assertArrayEquals(first, second);
        assertTrue(loaded.describe().contains("disk hit"), loaded.describe());
    }

    @Test
    void aCompiledFunctionCompilesOnceForAllLaterSizes() {
        Tensor w = Tensor.randn(5, 64, 32), b = Tensor.randn(6, 32);
        Fn1<Tensor> body = x -> F.gelu(x.matmul(w).add(b)).reshape(x.size(0) * 16, 2).mul(2.0).sigmoid().sum(1);
        Fn1<Tensor> compiled = Kiln.compile(body, CompileOptions.defaults().dynamic(Dynamic.AUTO));
        compiled.apply(Tensor.randn(1, 5, 64));
        compiled.apply(Tensor.randn(2, 7, 64));
        long compiles = NpuGraphCompiler.counts().compiles();
        for (int n : new int[] {9, 13, 40, 3, 100}) {
            Tensor x = Tensor.randn(n, n, 64);
            Tensor expected = body.apply(x);
            Tensor got = compiled.apply(x);
            assertEquals(expected.shape(), got.shape());
            float[] e = expected.toFloatArray(), g = got.toFloatArray();
            for (int i = 0; i < e.length; i++) assertEquals(e[i], g[i], 1e-5f * Math.max(1, Math.abs(e[i])), "n=" + n + " at " + i);
        }
        assertEquals(compiles, NpuGraphCompiler.counts().compiles(), "no size after the second compiled anything");
        String explain = Kiln.explain(compiled, Tensor.randn(8, 11, 64)).toString();
        assertTrue(explain.contains("one program for every size"), explain);
    }
}
