package dev.kiln.npu.codegen;

import dev.kiln.npu.device.NpuDevice;
import dev.kiln.npu.fused.FusedKernel;
import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.npu.kernels.ScalarTwin;
import dev.kiln.npu.kernels.VectorMathTest;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Generated tile loops on random programs ({@link RandomTilePrograms}) over ragged sizes,
 * with a small SRAM so that most runs span several tiles.
 */
class GeneratedTileLoopProperties {
    private static final NpuDevice SMALL = new NpuDevice(64 * 1024, NpuDevice.current().vectorBits(), 2, 1e10);

    /** Each instruction, given the values the kernel computed for its operands, against its double reference. */
    @Property(tries = 300)
    void everyInstructionIsWithinItsBoundOfTheDoubleReference(@ForAll long seed, @ForAll @IntRange(max = 3000) int n) {
        TileProgram p = RandomTilePrograms.program(seed, true);
        Tensor[] in = RandomTilePrograms.operands(p, n, seed + 1);
        Tensor[] out = RandomTilePrograms.outputs(p, n);
        new FusedKernel("random", p, SMALL, FusedKernel.Strategy.GENERATED).launch(in, out);
        float[][] inputs = new float[in.length][], results = new float[out.length][];
        for (int i = 0; i < in.length; i++) inputs[i] = in[i].toFloatArray();
        for (int o = 0; o < out.length; o++) results[o] = out[o].toFloatArray();
        for (int e = 0; e < n; e++) {
            Map<Integer, Float> reg = new HashMap<>();
            int output = 0;
            for (TileInstr ins : p.instructions()) {
                switch (ins) {
                    case TileInstr.Broadcast b -> reg.put(b.dst(), inputs[b.input()][0]);
                    case TileInstr.Constant c -> reg.put(c.dst(), c.value());
                    case TileInstr.Load l -> reg.put(l.dst(), inputs[l.input()][e]);
                    case TileInstr.Store s -> { }
                    default -> {
                        float got = results[output++][e];
                        check(ins, reg, got, e, p);
                        reg.put(TilePlan.dst(ins), got);
                    }
                }
            }
        }
    }

    private static void check(TileInstr ins, Map<Integer, Float> reg, float got, int element, TileProgram p) {
        double expected;
        double ulps = 0;
        switch (ins) {
            case TileInstr.Unary u -> {
                expected = reference(u.fn(), reg.get(u.src()));
                ulps = ulpBound(u.fn());
            }
            case TileInstr.Binary b -> expected = b.fn().apply(reg.get(b.a()), reg.get(b.b()));
            case TileInstr.Clamp c -> expected = Math.min(Math.max(reg.get(c.src()), c.min()), c.max());
            case TileInstr.Where w -> expected = reg.get(w.cond()) != 0 ? reg.get(w.x()) : reg.get(w.y());
            default -> throw new IllegalStateException(ins.toString());
        }
        float want = (float) expected;
        boolean ok = ulps == 0 || Float.isNaN(want) || Float.isInfinite(want)
                ? Float.floatToIntBits(got) == Float.floatToIntBits(want)
                : Math.abs(got - expected) <= ulps * Math.ulp(want);
        if (!ok) {
            fail("element " + element + ", " + ins + ": got " + got + ", expected " + expected + " (" + want + ") in\n" + p.toText());
        }
    }

    /** UnaryFn.apply, except where its double formula cancels in a tail: VectorMathTest's accurate references there. */
    private static double reference(UnaryFn fn, double x) {
        return switch (fn) {
            case ERF -> VectorMathTest.erfRef(x);
            case SIGMOID -> VectorMathTest.sigmoidRef(x);
            case SILU -> x * VectorMathTest.sigmoidRef(x);
            case GELU -> VectorMathTest.geluRef(x);
            case GELU_TANH -> VectorMathTest.geluTanhRef(x);
            default -> fn.apply(x);
        };
    }

    /** The documented maximum errors (VectorMath); 0 for the ops computed exactly as their reference. */
    private static double ulpBound(UnaryFn fn) {
        return switch (fn) {
            // Two correctly rounded steps, sqrt then 1/s: their errors add to just over 1 ulp.
            case RSQRT -> 1.5;
            case EXP, LOG, TANH, ERF, SIN, COS -> 1.5;
            case SOFTPLUS -> 2;
            case SIGMOID -> 2.5;
            case SILU -> 3;
            case GELU_TANH -> 3.5;
            case GELU -> 4;
            default -> 0;
        };
    }

    /** Generated and primitive kernels agree bit for bit, stale padding lanes and many tiles included. */
    @Property(tries = 300)
    void generatedLoopsMatchThePrimitivesBitForBit(@ForAll long seed, @ForAll @IntRange(max = 3000) int n) {
        TileProgram p = RandomTilePrograms.program(seed, false);
        Tensor[] in = RandomTilePrograms.operands(p, n, seed ^ 0x5eed);
        Tensor[] generated = RandomTilePrograms.outputs(p, n), primitives = RandomTilePrograms.outputs(p, n);
        var a = new FusedKernel("g", p, SMALL, FusedKernel.Strategy.GENERATED).launch(in, generated);
        var b = new FusedKernel("p", p, SMALL, FusedKernel.Strategy.PRIMITIVES).launch(in, primitives);
        for (int o = 0; o < generated.length; o++) {
            float[] x = generated[o].toFloatArray(), y = primitives[o].toFloatArray();
            for (int e = 0; e < n; e++) {
                if (Float.floatToIntBits(x[e]) != Float.floatToIntBits(y[e])) {
                    fail("output " + o + " element " + e + ": generated " + x[e] + ", primitives " + y[e] + " in\n" + p.toText());
                }
            }
        }
        assertEquals(b.bytesRead(), a.bytesRead(), "both read each input once");
        assertEquals(b.bytesWritten(), a.bytesWritten(), "both write each output once");
    }

    /**
     * The scalar twin a program runs before the JIT has compiled its generated loop gives the
     * loop's bits (see {@code ScalarTileLoop}), over programs of the functions that have a twin,
     * of one stage or several.
     */
    @Property(tries = 300)
    void scalarTwinsGiveTheGeneratedLoopsBits(@ForAll long seed, @ForAll @IntRange(max = 3000) int n) {
        UnaryFn[] unary = java.util.Arrays.stream(UnaryFn.values())
                .filter(f -> java.util.Set.of(UnaryFn.NEG, UnaryFn.ABS, UnaryFn.RELU, UnaryFn.SQRT, UnaryFn.RSQRT,
                        UnaryFn.LOGICAL_NOT).contains(f) || dev.kiln.npu.kernels.VectorMath.hasScalarTwin(f))
                .toArray(UnaryFn[]::new);
        BinaryFn[] binary = {BinaryFn.ADD, BinaryFn.SUB, BinaryFn.MUL, BinaryFn.DIV, BinaryFn.MINIMUM, BinaryFn.MAXIMUM};
        TileProgram p = RandomTilePrograms.program(seed, false, unary, binary);
        Tensor[] in = RandomTilePrograms.operands(p, n, seed ^ 0x5eed);
        Tensor[] vector = RandomTilePrograms.outputs(p, n), scalar = RandomTilePrograms.outputs(p, n);
        FusedKernel k = new FusedKernel("g", p, SMALL, FusedKernel.Strategy.GENERATED);
        ScalarTwin.forcing(false, () -> k.launch(in, vector));
        ScalarTwin.forcing(true, () -> k.launch(in, scalar));
        for (int o = 0; o < vector.length; o++) {
            float[] x = vector[o].toFloatArray(), y = scalar[o].toFloatArray();
            for (int e = 0; e < n; e++) {
                if (Float.floatToIntBits(x[e]) != Float.floatToIntBits(y[e])) {
                    fail("output " + o + " element " + e + ": generated " + x[e] + ", scalar twin " + y[e] + " in\n" + p.toText());
                }
            }
        }
    }
}
