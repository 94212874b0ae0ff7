package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.cache.CacheConfig;
import dev.kiln.cache.KernelCache;
import dev.kiln.ir.GraphBuilder;
import dev.kiln.ir.ValueRef;
import dev.kiln.npu.device.NpuDevice;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.ReduceFn;
import dev.kiln.ops.TensorMeta;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Storage;
import dev.kiln.tensor.Tensor;
import dev.kiln.trace.GraphExecutable;
import dev.kiln.trace.RandomProgramProperties;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Memory plans of the tracer's random programs (views, reductions, softmax, matmul,
 * fused chains), checked against lifetimes derived here from the program alone, and
 * planned runs against unplanned runs (bit for bit) and eager (within rounding).
 */
class MemoryPlanProperties {
    private static final CompileOptions NPU = CompileOptions.defaults().backend(Backend.NPU);

    @Property(tries = 60)
    void plannedRunsMatchUnplannedRunsAndNoLiveValuesShareMemory(@ForAll long seed) {
        RandomProgramProperties.Sample sample = RandomProgramProperties.sample(seed);
        FnN<Tensor> compiled = Kiln.compileN(sample.program(), NPU);
        Object[] args = sample.inputs().clone();
        Tensor expected;
        try {
            expected = sample.program().apply(args);
        } catch (KilnException e) {
            return; // the generator's shapes do not fit this program: the tracer's own property covers the error
        }
        compiled.apply(args);
        GraphExecutable g = Kiln.explain(compiled, args).compiles().getFirst().executable();
        NpuExecutable exe = assertInstanceOf(NpuExecutable.class, g, sample.steps());
        KernelProgram p = exe.program();
        MemoryPlan plan = exe.memoryPlan().orElseThrow();
        String why = sample.steps() + "\n" + p.toText() + plan;

        checkPlan(p, plan, why);

        int[][] inputBits = new int[args.length][];
        for (int i = 0; i < args.length; i++) inputBits[i] = bits(sample.inputs()[i]);
        Tensor planned = exe.run(sample.inputs())[0];
        Tensor unplanned = new NpuExecutable(p, NpuDevice.current(), "compiled", "", false).run(sample.inputs())[0];
        assertArrayEquals(bits(unplanned), bits(planned), why);
        assertArrayEquals(expected.toFloatArray(), planned.toFloatArray(), 1e-5f, why);
        for (int i = 0; i < args.length; i++) assertArrayEquals(inputBits[i], bits(sample.inputs()[i]), "input " + i + " was written: " + why);
        // Explain's runs and these all ran one after another: one arena serves them all.
        assertTrue(exe.arenasCreated() <= 1, why);
    }

    /**
     * Longer random graphs than the tracer's, with few dead values: square matmuls,
     * softmax, transposes and flatten-unflatten views, fused pointwise chains, row sums
     * broadcast back, and sometimes an intermediate returned as a second result.
     */
    @Property(tries = 80)
    void randomGraphsWithManyIntermediatesPlanSafely(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int n = 1 + r.nextInt(12);
        Shape square = Shape.of(n, n);
        GraphBuilder b = new GraphBuilder();
        List<ValueRef> values = new ArrayList<>(List.of(b.input(new TensorMeta(DType.FLOAT32, square)), b.input(new TensorMeta(DType.FLOAT32, square))));
        List<Tensor> eager = new ArrayList<>(List.of(Tensor.randn(seed, n, n), Tensor.randn(seed + 1, n, n)));
        StringBuilder steps = new StringBuilder("n=" + n);
        for (int i = 0, count = 4 + r.nextInt(12); i < count; i++) {
            int a = values.size() - 1 - r.nextInt(Math.min(4, values.size())), c = r.nextInt(values.size());
            List<Op> ops = switch (r.nextInt(9)) {
                case 0 -> List.of(new Op.MatMul());
                case 1 -> List.of(new Op.Softmax(1, false));
                case 2 -> List.of(new Op.Permute(List.of(1, 0)));
                case 3 -> List.of(new Op.Reshape(Shape.of(n * n)), new Op.Reshape(square));
                case 4 -> List.of(new Op.Unary(UnaryFn.TANH));
                case 5 -> List.of(new Op.Unary(UnaryFn.RELU), new Op.BinaryScalar(BinaryFn.MUL, 0.5, false, false));
                case 6 -> List.of(new Op.Binary(BinaryFn.ADD));
                case 7 -> List.of(new Op.Reduce(ReduceFn.SUM, List.of(1), true), new Op.Binary(BinaryFn.ADD));
                default -> List.of(new Op.Binary(BinaryFn.MUL));
            };
            ValueRef v = values.get(a);
            Tensor t = eager.get(a);
            for (Op op : ops) {
                boolean binary = op instanceof Op.MatMul || op instanceof Op.Binary;
                v = b.apply(op, binary ? List.of(v, values.get(c)) : List.of(v)).getFirst();
                t = binary ? Dispatch.apply1(op, t, eager.get(c)) : Dispatch.apply1(op, t);
            }
            steps.append("; ").append(ops).append(" of ").append(a).append(ops.stream().anyMatch(o -> o instanceof Op.MatMul || o instanceof Op.Binary) ? ", " + c : "");
            values.add(v);
            eager.add(t);
        }
        List<ValueRef> outs = new ArrayList<>(List.of(values.getLast()));
        List<Tensor> want = new ArrayList<>(List.of(eager.getLast()));
        if (r.nextInt(3) == 0) {
            int extra = 2 + r.nextInt(values.size() - 2);
            outs.add(values.get(extra));
            want.add(eager.get(extra));
        }
        KernelProgram p = new NpuGraphCompiler(NpuDevice.current(), KernelCache.open(CacheConfig.memoryOnly(1 << 20))).lower(b.build(outs));
        Tensor[] in = {eager.get(0), eager.get(1)};
        NpuExecutable exe = new NpuExecutable(p, NpuDevice.current());
        Tensor[] planned = exe.run(in), again = exe.run(in);
        Tensor[] unplanned = new NpuExecutable(p, NpuDevice.current(), "compiled", "", false).run(in);
        MemoryPlan plan = exe.memoryPlan().orElseThrow();
        String why = steps + "\n" + p.toText() + plan;
        checkPlan(p, plan, why);
        for (int k = 0; k < outs.size(); k++) {
            assertArrayEquals(bits(unplanned[k]), bits(planned[k]), why);
            assertArrayEquals(bits(planned[k]), bits(again[k]), why);
            assertArrayEquals(want.get(k).toFloatArray(), planned[k].toFloatArray(), 1e-4f, why);
        }
        assertEquals(plan.buffers().isEmpty() ? 0 : 1, exe.arenasCreated(), why);
    }

    /** The plan's claims, recomputed from the program: placement, aliasing, lifetimes, disjoint memory. */
    private static void checkPlan(KernelProgram p, MemoryPlan plan, String why) {
        int slots = p.slots();
        int[] root = new int[slots], def = new int[slots], lastRead = new int[slots];
        for (int s = 0; s < slots; s++) {
            root[s] = s;
            def[s] = -1;
        }
        List<KernelProgram.Launch> launches = p.launches();
        for (int i = 0; i < launches.size(); i++) {
            KernelProgram.Launch l = launches.get(i);
            for (int s : l.out()) {
                def[s] = i;
                lastRead[s] = i;
                if (l instanceof KernelProgram.Eager e && e.op() instanceof Op.ViewOp) root[s] = root[l.in().getFirst()];
            }
        }
        for (int i = 0; i < launches.size(); i++) for (int s : launches.get(i).in()) lastRead[root[s]] = Math.max(lastRead[root[s]], i);
        for (int s : p.outputs()) lastRead[root[s]] = Integer.MAX_VALUE;

        for (int s : p.inputs()) assertEquals(MemoryPlan.Placement.INPUT, plan.placement(s), why);
        for (int s : p.outputs()) {
            assertEquals(-1, plan.offset(root[s]), "a result lives in the arena: " + why);
            assertTrue(plan.placement(root[s]) == MemoryPlan.Placement.RESULT || plan.placement(root[s]) == MemoryPlan.Placement.INPUT, why);
        }
        for (int s = 0; s < slots; s++) {
            if (root[s] != s) assertEquals(root[s], plan.base(s), why);
            if (plan.offset(s) < 0) continue;
            assertEquals(MemoryPlan.Placement.ARENA, plan.placement(s), why);
            assertEquals(0, plan.offset(s) % Storage.ALIGNMENT, why);
            assertTrue(plan.offset(s) + MemoryPlan.bytesOf(plan.meta(s)) <= plan.arenaBytes(), why);
        }
        long naive = 0, livePeak = 0;
        for (int s = 0; s < slots; s++) if (plan.offset(s) >= 0) naive += MemoryPlan.bytesOf(plan.meta(s));
        for (int a = 0; a < slots; a++) {
            if (plan.offset(a) < 0) continue;
            for (int b = a + 1; b < slots; b++) {
                if (plan.offset(b) < 0) continue;
                boolean together = def[a] <= lastRead[b] && def[b] <= lastRead[a];
                long ea = plan.offset(a) + MemoryPlan.bytesOf(plan.meta(a)), eb = plan.offset(b) + MemoryPlan.bytesOf(plan.meta(b));
                boolean shared = plan.offset(a) < eb && plan.offset(b) < ea;
                if (!together || !shared) continue;
                // The one overlap allowed: a fused launch writing over an input that dies there.
                int first = def[a] < def[b] ? a : b, second = first == a ? b : a;
                KernelProgram.Launch l = launches.get(def[second]);
                assertTrue(l instanceof KernelProgram.Fused && lastRead[first] == def[second] && l.in().contains(first)
                        && plan.offset(first) == plan.offset(second), "slots " + a + " and " + b + " share memory while both live: " + why);
            }
        }
        for (int i = 0; i < launches.size(); i++) {
            long live = 0;
            for (MemoryPlan.Buffer buf : plan.buffers()) if (buf.firstLaunch() <= i && i <= buf.lastLaunch()) live += buf.bytes();
            livePeak = Math.max(livePeak, live);
        }
        for (MemoryPlan.Buffer x : plan.buffers()) {
            for (MemoryPlan.Buffer y : plan.buffers()) {
                assertTrue(x == y || !x.overlapsInTime(y) || !x.overlapsInMemory(y), "buffers " + x + " and " + y + ": " + why);
            }
        }
        assertEquals(livePeak, plan.liveBytes(), why);
        assertTrue(plan.arenaBytes() >= livePeak, why);
        assertTrue(plan.arenaBytes() <= plan.naiveBytes(), why);
        assertTrue(naive <= plan.naiveBytes(), why);
    }

    private static int[] bits(Tensor t) {
        float[] f = t.toFloatArray();
        int[] b = new int[f.length];
        for (int i = 0; i < f.length; i++) b[i] = Float.floatToRawIntBits(f[i]);
        return b;
    }
}
