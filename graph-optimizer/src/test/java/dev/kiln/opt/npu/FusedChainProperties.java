package dev.kiln.opt.npu;

import dev.kiln.Fn2;
import dev.kiln.Fn3;
import dev.kiln.Kiln;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Random pointwise chains over a tensor, a second tensor and a 0-d tensor: NPU-compiled equals eager. */
class FusedChainProperties {
    private static final UnaryFn[] UNARY = {UnaryFn.NEG, UnaryFn.ABS, UnaryFn.RELU, UnaryFn.EXP, UnaryFn.LOG, UnaryFn.SQRT,
            UnaryFn.RSQRT, UnaryFn.SIN, UnaryFn.TANH, UnaryFn.SIGMOID, UnaryFn.ERF, UnaryFn.GELU, UnaryFn.GELU_TANH,
            UnaryFn.SILU, UnaryFn.SOFTPLUS};
    private static final BinaryFn[] BINARY = {BinaryFn.ADD, BinaryFn.SUB, BinaryFn.MUL, BinaryFn.DIV, BinaryFn.MINIMUM,
            BinaryFn.MAXIMUM, BinaryFn.POW};

    /** A random program over values v0 = x, v1 = y, v2 = s (0-d): each step applies an op to earlier values. */
    static Tensor chain(long seed, int steps, Tensor x, Tensor y, Tensor s) {
        SplittableRandom r = new SplittableRandom(seed);
        List<Tensor> v = new ArrayList<>(List.of(x, y, s));
        for (int i = 0; i < steps; i++) {
            Tensor a = pickFull(r, v);
            Tensor t = switch (r.nextInt(6)) {
                case 0, 1 -> Dispatch.apply1(new Op.Unary(UNARY[r.nextInt(UNARY.length)]), a);
                case 2 -> Dispatch.apply1(new Op.Binary(BINARY[r.nextInt(BINARY.length)]), a, v.get(r.nextInt(v.size())));
                case 3 -> r.nextBoolean() ? a.add(r.nextInt(-3, 4) * 0.5) : a.rsub(1.5);
                case 4 -> a.clamp(-r.nextDouble(2), r.nextDouble(2));
                default -> Tensor.where(pickFull(r, v).gt(0.0), a, v.get(r.nextInt(v.size())));
            };
            v.add(t);
        }
        return v.getLast().add(v.get(3 + r.nextInt(v.size() - 3)));
    }

    private static Tensor pickFull(SplittableRandom r, List<Tensor> v) {
        Tensor t;
        do t = v.get(r.nextInt(v.size())); while (t.rank() == 0);
        return t;
    }

    @Property(tries = 60)
    void fusedChainsMatchEager(@ForAll long seed, @ForAll @IntRange(min = 1, max = 8) int steps,
                               @ForAll @IntRange(min = 1, max = 3000) int n) {
        Fn3<Tensor> fn = (x, y, s) -> chain(seed, steps, x, y, s);
        Fn3<Tensor> compiled = Kiln.compile(fn, NpuBackendTest.NPU);
        Tensor x = Tensor.randn(seed, 3, n).mul(2.0), y = Tensor.rand(seed + 1, 3, n).sub(0.25), s = Tensor.scalar(-0.75f);
        float[] want = fn.apply(x, y, s).toFloatArray();
        float[] got = compiled.apply(x, y, s).toFloatArray();
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            boolean same = Float.compare(want[i], got[i]) == 0 || want[i] == got[i]
                    || Math.abs(want[i] - got[i]) <= 1e-6 * Math.abs(want[i]);
            assertTrue(same, "element " + i + ": eager " + want[i] + ", npu " + got[i] + " (seed " + seed + ", steps " + steps + ")");
        }
    }

    /**
     * A per-row value (int64 or float32 positions, cast, a few cheap ops, unsqueezed somewhere
     * along the way) broadcast into a chain over x: the NPU recomputes the cheap ops in the
     * consumer's kernel (MoveUnitReshapeAbovePointwise, FusePointwise); eager runs them once.
     */
    @Property(tries = 40)
    void cheapPerRowValuesRecomputedInTheConsumersKernelMatchEager(@ForAll long seed, @ForAll @IntRange(min = 0, max = 4) int steps,
                                                                   @ForAll @IntRange(min = 1, max = 200) int rows,
                                                                   @ForAll @IntRange(min = 1, max = 200) int cols, @ForAll boolean integerRows) {
        Fn2<Tensor> fn = (x, perRow) -> {
            SplittableRandom r = new SplittableRandom(seed);
            int unsqueezeAt = r.nextInt(steps + 1);
            Tensor v = perRow.to(DType.FLOAT32);
            for (int i = 0; i <= steps; i++) {
                if (i == unsqueezeAt) v = v.reshape(rows, 1);
                if (i == steps) break;
                v = switch (r.nextInt(6)) {
                    case 0 -> v.neg();
                    case 1 -> v.abs();
                    case 2 -> v.relu();
                    case 3 -> v.add(r.nextInt(-3, 4) * 0.25);
                    case 4 -> v.mul(r.nextInt(-3, 4) * 0.5);
                    default -> v.clamp(-r.nextDouble(4), r.nextDouble(4));
                };
            }
            Tensor y = x.mul(v);
            return r.nextBoolean() ? y.tanh().add(v) : y.sub(v);
        };
        Fn2<Tensor> compiled = Kiln.compile(fn, NpuBackendTest.NPU);
        Tensor x = Tensor.randn(seed, rows, cols);
        Tensor perRow = integerRows ? Tensor.arange(rows).sub(rows / 2) : Tensor.randn(seed + 1, rows).mul(3.0);
        float[] want = fn.apply(x, perRow).toFloatArray();
        float[] got = compiled.apply(x, perRow).toFloatArray();
        assertEquals(want.length, got.length);
        for (int i = 0; i < want.length; i++) {
            boolean same = Float.compare(want[i], got[i]) == 0 || Math.abs(want[i] - got[i]) <= 1e-6 * Math.abs(want[i]);
            assertTrue(same, "element " + i + ": eager " + want[i] + ", npu " + got[i] + " (seed " + seed + ", steps " + steps + ")");
        }
    }
}
