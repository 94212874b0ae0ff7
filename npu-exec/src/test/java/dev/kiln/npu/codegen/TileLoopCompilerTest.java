package dev.kiln.npu.codegen;

import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.FusedKernel;
import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.VectorMath;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.management.ManagementFactory;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class TileLoopCompilerTest {
    private static final TileProgram.InputSpec TILE = new TileProgram.InputSpec(DType.FLOAT32, false);
    private static final TileProgram.InputSpec SCALAR = new TileProgram.InputSpec(DType.FLOAT32, true);

    /** W1: gelu(x*a+b)*sigmoid(x)+x with 0-d a and b, as lowering emits it. */
    static TileProgram w1() { return dev.kiln.npu.fused.FusedKernelTest.w1(); }

    /** exp, tanh and erf in a chain, then a value made in the first stage used in the last. */
    static TileProgram threeCalls() {
        return new TileProgram(List.of(TILE), 1, 4, List.of(
                new TileInstr.Load(0, 0),
                new TileInstr.Binary(BinaryFn.MUL, 0, 0, 1),
                new TileInstr.Unary(UnaryFn.EXP, 1, 2),
                new TileInstr.Unary(UnaryFn.TANH, 2, 2),
                new TileInstr.Unary(UnaryFn.ERF, 2, 3),
                new TileInstr.Binary(BinaryFn.SUB, 3, 1, 3),
                new TileInstr.Store(3, 0)));
    }

    /** silu, then as many other operations as a stage allows before a second call, then the largest function. */
    static TileProgram largestPairAllowed() {
        List<TileInstr> code = new java.util.ArrayList<>(List.of(new TileInstr.Load(0, 0), new TileInstr.Unary(UnaryFn.SILU, 0, 1)));
        for (int i = 0; i < TilePlan.OPS_BEFORE_CALL - 1; i++) code.add(new TileInstr.Binary(BinaryFn.ADD, i == 0 ? 0 : 2, 1, 2));
        code.add(new TileInstr.Unary(UnaryFn.GELU, 2, 2));
        code.add(new TileInstr.Binary(BinaryFn.MUL, 2, 1, 2));
        code.add(new TileInstr.Store(2, 0));
        return new TileProgram(List.of(TILE), 1, 3, code);
    }

    @Test
    void callsAreScheduledEarlyAndStagesHoldWhatC2Inlines() {
        TileLoopCompiler.Compiled w1 = TileLoopCompiler.load(w1());
        // sigmoid(x) moves before x*a + b and gelu: one stage, and only x and y in SRAM.
        assertEquals(List.of("Load", "Unary SIGMOID", "Binary MUL", "Binary ADD", "Unary GELU", "Binary MUL", "Binary ADD", "Store"),
                TilePlan.schedule(w1().instructions().subList(2, 10)).stream().map(TileLoopCompilerTest::describe).toList());
        assertEquals(1, w1.stages());
        assertEquals(2, w1.slots());
        assertArrayEquals(new int[] {0, -1, -1}, w1.inputSlot());
        assertArrayEquals(new int[] {1}, w1.outputSlot());
        // exp then tanh in one stage; erf after tanh (not small) starts another, reading x*x and tanh's result from SRAM.
        TileLoopCompiler.Compiled three = TileLoopCompiler.load(threeCalls());
        assertEquals(2, three.stages());
        assertEquals(4, three.slots());
        assertEquals(1, TileLoopCompiler.load(largestPairAllowed()).stages());
        // A value written into a register a call reads must wait for the call: no move past a reader of its old value.
        TileProgram war = new TileProgram(List.of(TILE), 1, 2, List.of(new TileInstr.Load(0, 0), new TileInstr.Unary(UnaryFn.GELU, 0, 1),
                new TileInstr.Unary(UnaryFn.EXP, 1, 0), new TileInstr.Unary(UnaryFn.SIGMOID, 0, 1), new TileInstr.Store(1, 0)));
        assertEquals(war.instructions(), TilePlan.schedule(war.instructions()));
        // gelu (not small) ends its stage; exp (small) and sigmoid share the next.
        assertEquals(2, TileLoopCompiler.load(war).stages());
    }

    @Test
    void aConstantRegisterOverwrittenInOneStageIsReadBackInTheNext() {
        // gelu overwrites the constant's r1 and ends stage 0; the add in stage 1 must see gelu's value, not the constant.
        TileProgram p = new TileProgram(List.of(TILE), 1, 3, List.of(
                new TileInstr.Constant(5f, 1),
                new TileInstr.Load(0, 0),
                new TileInstr.Unary(UnaryFn.GELU, 0, 1),
                new TileInstr.Unary(UnaryFn.ERF, 0, 2),
                new TileInstr.Binary(BinaryFn.ADD, 1, 2, 2),
                new TileInstr.Store(2, 0)));
        assertEquals(2, TileLoopCompiler.load(p).stages());
        int n = 3000;
        Tensor x = Tensor.randn(11, n);
        Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(n));
        new FusedKernel("overwrite", p, NpuDevice.current(), FusedKernel.Strategy.GENERATED).launch(new Tensor[] {x}, new Tensor[] {out});
        assertArrayEquals(x.gelu().add(x.erf()).toFloatArray(), out.toFloatArray());
    }

    @Test
    void aLongChainIsCutIntoStagesOfBoundedSize() {
        List<TileInstr> code = new java.util.ArrayList<>(List.of(new TileInstr.Constant(0.25f, 1), new TileInstr.Load(0, 0)));
        for (int i = 0; i < 100; i++) code.add(new TileInstr.Binary(i % 2 == 0 ? BinaryFn.ADD : BinaryFn.MUL, 0, 1, 0));
        code.add(new TileInstr.Store(0, 0));
        TileProgram p = new TileProgram(List.of(TILE), 1, 2, code);
        assertEquals(3, TileLoopCompiler.load(p).stages());
        int n = 5000;
        Tensor x = Tensor.randn(12, n);
        Tensor generated = Tensor.empty(DType.FLOAT32, Shape.of(n)), primitives = Tensor.empty(DType.FLOAT32, Shape.of(n));
        new FusedKernel("long", p, NpuDevice.current(), FusedKernel.Strategy.GENERATED).launch(new Tensor[] {x}, new Tensor[] {generated});
        new FusedKernel("long", p, NpuDevice.current(), FusedKernel.Strategy.PRIMITIVES).launch(new Tensor[] {x}, new Tensor[] {primitives});
        assertArrayEquals(primitives.toFloatArray(), generated.toFloatArray());
    }

    private static String describe(TileInstr ins) {
        return switch (ins) {
            case TileInstr.Unary u -> "Unary " + u.fn();
            case TileInstr.Binary b -> "Binary " + b.fn();
            default -> ins.getClass().getSimpleName();
        };
    }

    @Test
    void classBytesAreDeterministicAndLoadBackWithoutRegenerating() {
        TileProgram p = threeCalls();
        byte[] bytes = TileLoopCompiler.generate(p);
        assertArrayEquals(bytes, TileLoopCompiler.generate(TileProgram.parse(p.toText())), "same program, same bytes");
        assertArrayEquals(bytes, TileLoopCompiler.load(p).classBytes());
        // A loop defined from the bytes computes what the generated one does.
        MemorySegment sram = Arena.ofAuto().allocate(4L * 256 * Float.BYTES, 64);
        for (int i = 0; i < 256; i++) sram.setAtIndex(ValueLayout.JAVA_FLOAT, i, (i - 128) / 40f);
        TileLoop fresh = TileLoopCompiler.instantiate(p, bytes).loop();
        assertNotSame(TileLoopCompiler.load(p).loop(), fresh);
        int count = TileLoopCompiler.load(p).slots();
        MemorySegment[] slots = TileLoop.sameSegment(sram, count);
        long[] offsets = TileLoop.spaced(256L * Float.BYTES, count);
        fresh.run(slots, offsets, new float[1], 256);
        float[] fromBytes = sram.asSlice(256L * Float.BYTES, 256L * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT);
        sram.asSlice(256L * Float.BYTES).fill((byte) 0);
        TileLoopCompiler.load(p).loop().run(slots, offsets, new float[1], 256);
        assertArrayEquals(sram.asSlice(256L * Float.BYTES, 256L * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT), fromBytes);
        // Defining bytes for a program already loaded shares the loaded loop.
        assertSame(TileLoopCompiler.load(p), TileLoopCompiler.define(p, bytes));
    }

    /** Programs whose every function has a scalar twin get one, of one stage or several; others run their generated loop alone. */
    @Test
    void programsOfTwinnedFunctionsHaveAScalarTwin() {
        TileProgram gated = new TileProgram(List.of(TILE, TILE), 1, 3, List.of(new TileInstr.Load(0, 0), new TileInstr.Load(1, 1),
                new TileInstr.Unary(UnaryFn.SILU, 0, 2), new TileInstr.Binary(BinaryFn.MUL, 2, 1, 2), new TileInstr.Store(2, 0)));
        TileProgram pow = new TileProgram(List.of(TILE), 1, 1, List.of(new TileInstr.Load(0, 0),
                new TileInstr.Binary(BinaryFn.POW, 0, 0, 0), new TileInstr.Store(0, 0)));
        assertTrue(TileLoopCompiler.load(gated).loop() instanceof ScalarTileLoop);
        assertFalse(TileLoopCompiler.load(pow).loop() instanceof ScalarTileLoop, "pow has no scalar twin");
        assertTrue(TileLoopCompiler.load(threeCalls()).stages() > 1);
        assertTrue(TileLoopCompiler.load(threeCalls()).loop() instanceof ScalarTileLoop, "several stages: the twin computes the outputs alone");
    }

    /** Slots in separate segments at any offsets, the output over an input (as a matmul epilogue runs in place). */
    @Test
    void slotsMayLieAnywhereAndTheOutputMayOverwriteAnInput() {
        // out = silu(x) * y, one stage.
        TileProgram p = new TileProgram(List.of(TILE, TILE), 1, 3, List.of(new TileInstr.Load(0, 0), new TileInstr.Load(1, 1),
                new TileInstr.Unary(UnaryFn.SILU, 0, 2), new TileInstr.Binary(BinaryFn.MUL, 2, 1, 2), new TileInstr.Store(2, 0)));
        TileLoopCompiler.Compiled c = TileLoopCompiler.load(p);
        assertEquals(1, c.stages());
        int n = 64;
        Random r = new Random(5);
        float[] x = new float[n], y = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextGaussian() * 4);
            y[i] = (float) r.nextGaussian();
        }
        // Reference: every slot in one SRAM segment.
        MemorySegment sram = Arena.ofAuto().allocate((long) c.slots() * n * Float.BYTES, 64);
        MemorySegment.copy(x, 0, sram, ValueLayout.JAVA_FLOAT, (long) c.inputSlot()[0] * n * Float.BYTES, n);
        MemorySegment.copy(y, 0, sram, ValueLayout.JAVA_FLOAT, (long) c.inputSlot()[1] * n * Float.BYTES, n);
        c.loop().run(TileLoop.sameSegment(sram, c.slots()), TileLoop.spaced((long) n * Float.BYTES, c.slots()), new float[2], n);
        float[] expected = sram.asSlice((long) c.outputSlot()[0] * n * Float.BYTES, (long) n * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT);
        // In place: x at an odd offset of one segment, overwritten by the output; y in another.
        MemorySegment xs = Arena.ofAuto().allocate((n + 7) * Float.BYTES, 64), ys = Arena.ofAuto().allocate((long) n * Float.BYTES, 4);
        MemorySegment.copy(y, 0, ys, ValueLayout.JAVA_FLOAT, 0, n);
        MemorySegment.copy(x, 0, xs, ValueLayout.JAVA_FLOAT, 7 * Float.BYTES, n);
        MemorySegment[] slots = new MemorySegment[c.slots()];
        long[] offsets = new long[c.slots()];
        slots[c.inputSlot()[0]] = xs;
        offsets[c.inputSlot()[0]] = 7 * Float.BYTES;
        slots[c.inputSlot()[1]] = ys;
        slots[c.outputSlot()[0]] = xs;
        offsets[c.outputSlot()[0]] = 7 * Float.BYTES;
        c.loop().run(slots, offsets, new float[2], n);
        assertArrayEquals(expected, xs.asSlice(7 * Float.BYTES, (long) n * Float.BYTES).toArray(ValueLayout.JAVA_FLOAT));
    }

    @Test
    void bytesOfAnotherProgramOrDamagedBytesAreRejected() {
        TileProgram p = new TileProgram(List.of(TILE), 1, 1, List.of(new TileInstr.Load(0, 0),
                new TileInstr.Unary(UnaryFn.SOFTPLUS, 0, 0), new TileInstr.Store(0, 0)));
        var e = assertThrows(IllegalArgumentException.class, () -> TileLoopCompiler.define(p, TileLoopCompiler.generate(w1())));
        assertEquals("class bytes of " + TileLoopCompiler.className(w1()) + " are not the tile loop " + TileLoopCompiler.className(p)
                + " of this program", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TileLoopCompiler.define(p, new byte[] {1, 2, 3}));
        assertTrue(e.getMessage().startsWith("class bytes of the tile loop " + TileLoopCompiler.className(p) + " cannot be read"),
                e.getMessage());
        byte[] damaged = TileLoopCompiler.generate(p);
        Arrays.fill(damaged, damaged.length / 2, damaged.length, (byte) 0x7f);
        e = assertThrows(IllegalArgumentException.class, () -> TileLoopCompiler.instantiate(p, damaged));
        assertTrue(e.getMessage().startsWith("class bytes of the tile loop do not load"), e.getMessage());
    }

    @Test
    void resultsAreBitIdenticalAcrossFortyCallsWhileTheJitRecompiles() {
        int n = 40_000;
        Tensor x = Tensor.randn(7, n).mul(4.0);
        Tensor a = Tensor.scalar(0.75f), b = Tensor.scalar(-0.25f);
        FusedKernel k = new FusedKernel("w1", w1(), NpuDevice.current(), FusedKernel.Strategy.GENERATED);
        float[] first = null;
        for (int call = 0; call < 40; call++) {
            Tensor out = Tensor.empty(DType.FLOAT32, Shape.of(n));
            var traffic = k.launch(new Tensor[] {x, a, b}, new Tensor[] {out});
            assertEquals(4L * n + 8, traffic.bytesRead());
            assertEquals(4L * n, traffic.bytesWritten());
            float[] got = out.toFloatArray();
            if (first == null) {
                first = got;
                assertArrayEquals(x.mul(a).add(b).gelu().mul(x.sigmoid()).add(x).toFloatArray(), got, "the eager ops' bits");
            } else {
                assertArrayEquals(first, got, "call " + call);
            }
        }
    }

    @Test
    void compiledStagesKeepTheirVectorsInRegisters() {
        assumeTrue(THREADS.isThreadAllocatedMemorySupported() && THREADS.isThreadAllocatedMemoryEnabled(),
                "this JVM does not count allocation per thread");
        var compiler = ManagementFactory.getCompilationMXBean();
        assumeTrue(compiler != null && compiler.getName().contains("Tiered"), "needs HotSpot's C2");
        int n = 512;
        for (TileProgram p : List.of(w1(), threeCalls(), largestPairAllowed())) {
            TileLoopCompiler.Compiled c = TileLoopCompiler.load(p);
            MemorySegment sram = Arena.ofAuto().allocate((long) c.slots() * n * Float.BYTES, 64);
            Random r = new Random(3);
            for (int i = 0; i < n; i++) sram.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) (r.nextGaussian() * 4));
            float[] scalars = {0, 0.75f, -0.25f};
            MemorySegment[] slots = TileLoop.sameSegment(sram, c.slots());
            long[] offsets = TileLoop.spaced((long) n * Float.BYTES, c.slots());
            Runnable call = () -> c.loop().run(slots, offsets, scalars, n);
            assertEquals(0, bytesPerCallOnceCompiled(call), "bytes allocated per call of\n" + p.toText());
        }
    }

    @Test
    void theRandomProgramsDrawFromEveryFunction() {
        assertEquals(List.of(UnaryFn.BITWISE_NOT), java.util.Arrays.stream(UnaryFn.values())
                .filter(f -> !List.of(RandomTilePrograms.UNARY).contains(f)).toList(), "all but the integer-only functions");
        for (BinaryFn fn : BinaryFn.values()) {
            boolean floatResult = fn.kind() != BinaryFn.Kind.BITWISE && fn.resultType(DType.FLOAT32) == DType.FLOAT32;
            assertEquals(floatResult, List.of(RandomTilePrograms.BINARY).contains(fn), fn.toString());
        }
        assertEquals(VectorMath.SPECIES.length(), TileLoopCompiler.LANES);
    }

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    /** Calls until a batch allocates nothing, or C2 has had 8 s; returns the bytes per call of the last batch. */
    private static long bytesPerCallOnceCompiled(Runnable call) {
        long deadline = System.nanoTime() + 8_000_000_000L;
        long perCall;
        do {
            for (int i = 0; i < 2000; i++) call.run();
            long before = THREADS.getCurrentThreadAllocatedBytes();
            for (int i = 0; i < 200; i++) call.run();
            perCall = (THREADS.getCurrentThreadAllocatedBytes() - before) / 200;
        } while (perCall != 0 && System.nanoTime() < deadline);
        return perCall;
    }
}
