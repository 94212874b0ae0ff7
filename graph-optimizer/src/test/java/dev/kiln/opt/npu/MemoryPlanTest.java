package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Op;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MemoryPlanTest {
    private static final NpuDevice DEVICE = NpuDevice.current();

    private static TensorMeta f32(int... dims) { return new TensorMeta(DType.FLOAT32, Shape.of(dims)); }

    /** x -> exp -> tanh -> neg -> (+ x): three intermediates, at most two alive at once. */
    private static KernelProgram chain() {
        return new KernelProgram(5, List.of(0), List.of(
                new KernelProgram.Eager(new Op.Unary(UnaryFn.EXP), List.of(0), List.of(1)),
                new KernelProgram.Eager(new Op.Unary(UnaryFn.TANH), List.of(1), List.of(2)),
                new KernelProgram.Eager(new Op.Unary(UnaryFn.NEG), List.of(2), List.of(3)),
                new KernelProgram.Eager(new Op.Binary(BinaryFn.ADD), List.of(3, 0), List.of(4))), List.of(4));
    }

    private static int[] bits(Tensor t) {
        float[] f = t.toFloatArray();
        int[] b = new int[f.length];
        for (int i = 0; i < f.length; i++) b[i] = Float.floatToRawIntBits(f[i]);
        return b;
    }

    @Test
    void aChainOfThreeIntermediatesNeedsTwoAlignedBuffers() {
        // 10 floats are 40 bytes, one 64-byte line each: exp's buffer is dead by the time neg writes, so neg reuses it.
        MemoryPlan plan = MemoryPlan.of(chain(), List.of(f32(10)));
        assertEquals(128, plan.arenaBytes(), plan.toString());
        assertEquals(192, plan.naiveBytes());
        assertEquals(128, plan.liveBytes());
        assertEquals(40, plan.resultBytes());
        assertEquals(0, plan.inPlaceCount());
        assertEquals(List.of(0L, 64L, 0L), List.of(plan.offset(1), plan.offset(2), plan.offset(3)));
        assertEquals(MemoryPlan.Placement.INPUT, plan.placement(0));
        assertEquals(MemoryPlan.Placement.RESULT, plan.placement(4));
        assertEquals(-1, plan.offset(4));

        NpuExecutable exe = new NpuExecutable(chain(), DEVICE);
        Tensor x = Tensor.randn(1, 10);
        Tensor expected = x.exp().tanh().neg().add(x);
        for (int run = 0; run < 3; run++) assertArrayEquals(bits(expected), bits(exe.run(new Tensor[] {x})[0]));
        assertEquals(1, exe.arenasCreated(), "runs one after another reuse one arena");
    }

    @Test
    void newInputShapesGetANewPlan() {
        NpuExecutable exe = new NpuExecutable(chain(), DEVICE);
        Tensor small = Tensor.randn(2, 10), large = Tensor.randn(3, 100);
        exe.run(new Tensor[] {small});
        assertEquals(128, exe.memoryPlan().orElseThrow().arenaBytes());
        Tensor got = exe.run(new Tensor[] {large})[0];
        assertEquals(2 * 448, exe.memoryPlan().orElseThrow().arenaBytes());
        assertArrayEquals(bits(large.exp().tanh().neg().add(large)), bits(got));
    }

    @Test
    void planningRejectsTheWrongNumberOfInputs() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> MemoryPlan.of(chain(), List.of(f32(3), f32(3))));
        assertEquals("the program takes 1 inputs, got 2", e.getMessage());
    }

    /**
     * softmax(x), then relu(tanh(.)) fused, then @ x: the fused kernel writes over the softmax
     * result it reads last. (After a matmul the chain would become the matmul's epilogue.)
     */
    private static Graph softmaxTanhMatmul(int n) {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(n, n));
        ValueRef m = b.apply(new Op.Softmax(1, false), List.of(x)).get(0);
        ValueRef t = b.apply(new Op.Unary(UnaryFn.TANH), List.of(m)).get(0);
        t = b.apply(new Op.Unary(UnaryFn.RELU), List.of(t)).get(0);
        ValueRef out = b.apply(new Op.MatMul(), List.of(t, x)).get(0);
        return b.build(List.of(out));
    }

    private static KernelProgram lower(Graph g) {
        return new NpuGraphCompiler(DEVICE, dev.kiln.cache.KernelCache.open(dev.kiln.cache.CacheConfig.memoryOnly(1 << 20))).lower(g);
    }

    @Test
    void aFusedLaunchWritesInPlaceOverTheInputItReadsLast() {
        KernelProgram p = lower(softmaxTanhMatmul(16));
        assertEquals(List.of("Eager", "Fused", "Eager"), p.launches().stream().map(l -> l.getClass().getSimpleName()).toList(), p.toText());
        MemoryPlan plan = MemoryPlan.of(p, List.of(f32(16, 16)));
        int m = p.launches().get(0).out().get(0), t = p.launches().get(1).out().get(0);
        assertEquals(1, plan.inPlaceCount(), plan.toString());
        assertEquals(plan.offset(m), plan.offset(t));
        assertEquals(1024, plan.arenaBytes());
        assertEquals(2048, plan.naiveBytes());

        Tensor x = Tensor.randn(4, 16, 16);
        Tensor planned = new NpuExecutable(p, DEVICE).run(new Tensor[] {x})[0];
        Tensor unplanned = new NpuExecutable(p, DEVICE, "compiled", "", false).run(new Tensor[] {x})[0];
        assertArrayEquals(bits(unplanned), bits(planned));
        assertArrayEquals(x.softmax(1).tanh().relu().matmul(x).toFloatArray(), planned.toFloatArray(), 1e-5f);
    }

    @Test
    void anOutputStoredBeforeAnInputIsLoadedDoesNotTakeThatInputsBuffer() {
        // Per tile: load x, store tanh(x), then load b, store -b. Output 0 over b's buffer would overwrite b's tile before it is read.
        TileProgram twoOutputs = new TileProgram(
                List.of(new TileProgram.InputSpec(DType.FLOAT32, false), new TileProgram.InputSpec(DType.FLOAT32, false)), 2, 4,
                List.of(new TileInstr.Load(0, 0), new TileInstr.Unary(UnaryFn.TANH, 0, 1), new TileInstr.Store(1, 0),
                        new TileInstr.Load(1, 2), new TileInstr.Unary(UnaryFn.NEG, 2, 3), new TileInstr.Store(3, 1)));
        KernelProgram p = new KernelProgram(6, List.of(0, 1), List.of(
                new KernelProgram.Eager(new Op.Unary(UnaryFn.EXP), List.of(1), List.of(2)),
                new KernelProgram.Fused("two_outputs", Shape.of(3000), twoOutputs, List.of(0, 2), List.of(3, 4)),
                new KernelProgram.Eager(new Op.Binary(BinaryFn.ADD), List.of(3, 4), List.of(5))), List.of(5));
        MemoryPlan plan = MemoryPlan.of(p, List.of(f32(3000), f32(3000)));
        assertEquals(1, plan.inPlaceCount(), plan.toString());
        assertEquals(plan.offset(2), plan.offset(4), "-b goes over b, loaded before it is stored: " + plan);
        assertTrue(plan.offset(3) != plan.offset(2), plan.toString());

        Tensor x = Tensor.randn(9, 3000), y = Tensor.randn(10, 3000);
        Tensor got = new NpuExecutable(p, DEVICE).run(new Tensor[] {x, y})[0];
        assertArrayEquals(bits(new NpuExecutable(p, DEVICE, "compiled", "", false).run(new Tensor[] {x, y})[0]), bits(got));
        assertArrayEquals(bits(x.tanh().add(y.exp().neg())), bits(got));
    }

    @Test
    void aViewKeepsItsBaseAliveAndNothingIsWrittenOverAViewedValue() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(8, 8));
        ValueRef m = b.apply(new Op.MatMul(), List.of(x, x)).get(0);
        ValueRef v = b.apply(new Op.Permute(List.of(1, 0)), List.of(m)).get(0);
        ValueRef q = b.apply(new Op.Softmax(1, false), List.of(x)).get(0);
        ValueRef r = b.apply(new Op.MatMul(), List.of(q, v)).get(0);
        KernelProgram p = lower(b.build(List.of(r)));
        MemoryPlan plan = MemoryPlan.of(p, List.of(f32(8, 8)));
        int mSlot = -1, vSlot = -1, qSlot = -1, last = p.launches().size() - 1;
        for (KernelProgram.Launch l : p.launches()) {
            if (!(l instanceof KernelProgram.Eager e)) continue;
            if (e.op() instanceof Op.MatMul && e.in().get(0).equals(e.in().get(1))) mSlot = e.out().get(0);
            if (e.op() instanceof Op.Permute) vSlot = e.out().get(0);
            if (e.op() instanceof Op.Softmax) qSlot = e.out().get(0);
        }
        assertEquals(MemoryPlan.Placement.VIEW, plan.placement(vSlot), p.toText());
        assertEquals(mSlot, plan.base(vSlot));
        int base = mSlot;
        MemoryPlan.Buffer mb = plan.buffers().stream().filter(buf -> buf.slots().contains(base)).findFirst().orElseThrow();
        assertEquals(last, mb.lastLaunch(), "the matmul result lives until its transpose is read: " + plan);
        assertTrue(plan.offset(qSlot) >= plan.offset(mSlot) + 256 || plan.offset(mSlot) >= plan.offset(qSlot) + 256, plan.toString());

        Tensor xs = Tensor.randn(5, 8, 8);
        Tensor got = new NpuExecutable(p, DEVICE).run(new Tensor[] {xs})[0];
        assertArrayEquals(bits(new NpuExecutable(p, DEVICE, "compiled", "", false).run(new Tensor[] {xs})[0]), bits(got));
    }

    @Test
    void resultsGetFreshMemoryEvenWhenTheyViewAnIntermediate() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(4, 4));
        ValueRef m = b.apply(new Op.MatMul(), List.of(x, x)).get(0);
        ValueRef flat = b.apply(new Op.Reshape(Shape.of(16)), List.of(m)).get(0);
        ValueRef s = b.apply(new Op.Softmax(1, false), List.of(m)).get(0);
        KernelProgram p = lower(b.build(List.of(flat, s)));
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        Tensor x1 = Tensor.randn(6, 4, 4), x2 = Tensor.randn(7, 4, 4);
        Tensor[] first = exe.run(new Tensor[] {x1});
        float[] flat1 = first[0].toFloatArray(), soft1 = first[1].toFloatArray();
        Tensor[] second = exe.run(new Tensor[] {x2});
        MemoryPlan plan = exe.memoryPlan().orElseThrow();
        for (int o : p.outputs()) {
            assertEquals(-1, plan.offset(plan.base(o)));
            assertEquals(MemoryPlan.Placement.RESULT, plan.placement(plan.base(o)), plan.toString());
        }
        assertNotSame(first[0].storage(), second[0].storage());
        assertArrayEquals(flat1, first[0].toFloatArray(), "a later run must not write over an earlier run's results");
        assertArrayEquals(soft1, first[1].toFloatArray());
        assertArrayEquals(x2.matmul(x2).reshape(16).toFloatArray(), second[0].toFloatArray(), 1e-5f);
    }

    @Test
    void inputsAreNeverWritten() {
        Graph g = NpuBackendTest.w1Graph(300);
        KernelProgram p = lower(g);
        Tensor x = Tensor.randn(8, 300), a = Tensor.scalar(0.5f), c = Tensor.scalar(2f);
        int[] before = bits(x);
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        exe.run(new Tensor[] {x, a, c});
        MemoryPlan plan = exe.memoryPlan().orElseThrow();
        for (int s : p.inputs()) assertEquals(MemoryPlan.Placement.INPUT, plan.placement(s));
        assertEquals(0, plan.inPlaceCount());
        assertArrayEquals(before, bits(x));
    }

    @Test
    void describeShowsThePeakAndEveryLaunchsTimeAndBytes() {
        GraphBuilder b = new GraphBuilder();
        ValueRef x = b.input(f32(16, 16));
        ValueRef m = b.apply(new Op.Softmax(1, false), List.of(x)).get(0);
        ValueRef t = b.apply(new Op.Unary(UnaryFn.TANH), List.of(m)).get(0);
        ValueRef v = b.apply(new Op.Permute(List.of(1, 0)), List.of(t)).get(0);
        ValueRef out = b.apply(new Op.MatMul(), List.of(v, x)).get(0);
        KernelProgram p = lower(b.build(List.of(out)));
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        assertTrue(exe.describe().contains("memory: planned on the first run"), exe.describe());
        exe.run(new Tensor[] {Tensor.randn(8, 16, 16)});
        String d = exe.describe();
        assertTrue(d.contains("memory: peak arena 1.0 KiB for 2 intermediates (1.0 KiB live at most, 2.0 KiB one buffer each, 1 in place), results 1.0 KiB per run"), d);
        List<String> lines = d.lines().filter(l -> l.startsWith("  launch ")).toList();
        assertEquals(p.launches().size(), lines.size(), d);
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            assertTrue(line.matches("  launch " + i + ": .*, \\d+\\.\\d{3} ms, .*"), line);
            switch (p.launches().get(i)) {
                case KernelProgram.Fused f -> assertTrue(line.endsWith("DRAM read 1024 B, written 1024 B (DMA count)"), line);
                case KernelProgram.Eager e when e.op() instanceof Op.ViewOp -> assertTrue(line.endsWith("no DRAM traffic (a view)"), line);
                case KernelProgram.Eager e -> assertTrue(line.endsWith("DRAM read " + (e.op() instanceof Op.MatMul ? 2048 : 1024)
                        + " B, written 1024 B (operand sizes)"), line);
                case KernelProgram.MatMulFused fused -> throw new AssertionError("this program has no matmul: " + line);
                case KernelProgram.Transfer transfer -> throw new AssertionError("the transposed view feeds a matmul, which reads it in place: " + line);
            }
        }
        long total = exe.lastRunCosts().stream().mapToLong(NpuExecutable.LaunchCost::bytes).sum();
        assertEquals(2048 + 2048 + 3072, total);
        assertTrue(d.contains("last run: ") && d.contains(" ms in launches, " + total + " B of DRAM traffic"), d);
    }

    @Test
    void explainShowsThePeakBytesOfACompiledFunction() {
        dev.kiln.Fn2<Tensor> fn = (x, w) -> x.softmax(1).tanh().matmul(w).softmax(1);
        dev.kiln.Fn2<Tensor> compiled = dev.kiln.Kiln.compile(fn, NpuBackendTest.NPU);
        Tensor x = Tensor.randn(11, 4, 32), w = Tensor.randn(12, 32, 32);
        assertArrayEquals(fn.apply(x, w).toFloatArray(), compiled.apply(x, w).toFloatArray(), 1e-5f);
        String text = dev.kiln.Kiln.explain(compiled, x, w).toString();
        // softmax(x) (512 B) is overwritten by tanh; the matmul's result (512 B) is live with it; the last softmax's is returned.
        assertTrue(text.contains("memory: peak arena 1.0 KiB for 3 intermediates (1.0 KiB live at most, 1.5 KiB one buffer each, 1 in place),"
                + " results 512 B per run"), text);
        assertTrue(text.contains("eager softmax, ") && text.contains("DRAM read 512 B, written 512 B (operand sizes)"), text);
    }

    @Test
    void withoutPlanningDescribeSaysSo() {
        NpuExecutable exe = new NpuExecutable(chain(), DEVICE, "compiled", "", false);
        exe.run(new Tensor[] {Tensor.randn(1, 5)});
        assertTrue(exe.describe().contains("memory: not planned (every launch allocates its outputs)"), exe.describe());
        assertTrue(exe.memoryPlan().isEmpty());
    }

    @Test
    void eightThreadsRunningOneExecutableEachGetTheirOwnArena() throws Exception {
        KernelProgram p = lower(softmaxTanhMatmul(48));
        NpuExecutable exe = new NpuExecutable(p, DEVICE);
        NpuExecutable reference = new NpuExecutable(p, DEVICE, "compiled", "", false);
        int threads = 8, runs = 15;
        List<Tensor> inputs = new ArrayList<>();
        List<int[]> expected = new ArrayList<>();
        for (int i = 0; i < threads * runs; i++) {
            Tensor x = Tensor.randn(100 + i, 48, 48);
            inputs.add(x);
            expected.add(bits(reference.run(new Tensor[] {x})[0]));
        }
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                int first = t * runs;
                done.add(pool.submit(() -> {
                    for (int i = first; i < first + runs; i++) {
                        assertArrayEquals(expected.get(i), bits(exe.run(new Tensor[] {inputs.get(i)})[0]), "run " + i);
                    }
                    return null;
                }));
            }
            for (Future<?> f : done) f.get();
        } finally {
            pool.shutdown();
        }
        assertTrue(exe.arenasCreated() >= 1 && exe.arenasCreated() <= threads, "arenas: " + exe.arenasCreated());
    }
}
