package dev.kiln.npu.codegen;

import dev.kiln.npu.fused.TileInstr;
import dev.kiln.npu.fused.TileProgram;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Random tile programs over every unary function and every float32 binary function, with
 * 0-d inputs, constants, clamp, where (on a bool input or any register), reused registers
 * and several outputs; and random operands for them, special values included.
 */
final class RandomTilePrograms {
    /** The functions a float32 tile program can hold (not the integer-only bitwise ones). */
    static final UnaryFn[] UNARY = Arrays.stream(UnaryFn.values()).filter(RandomTilePrograms::ofFloats).toArray(UnaryFn[]::new);
    static final BinaryFn[] BINARY = Arrays.stream(BinaryFn.values())
            .filter(f -> f.kind() != BinaryFn.Kind.BITWISE && f.resultType(DType.FLOAT32) == DType.FLOAT32).toArray(BinaryFn[]::new);

    static boolean ofFloats(UnaryFn fn) {
        try {
            fn.resultType(DType.FLOAT32);
            return true;
        } catch (dev.kiln.tensor.KilnTypeException e) {
            return false;
        }
    }

    private RandomTilePrograms() {}

    /**
     * A random program. With {@code storeEveryResult}, every computed value is stored right
     * after it is made (output k is the k-th computing instruction), so a test can check
     * each instruction on its own.
     */
    static TileProgram program(long seed, boolean storeEveryResult) {
        return program(seed, storeEveryResult, UNARY, BINARY);
    }

    /** As {@link #program(long, boolean)}, drawing functions from {@code unary} and {@code binary} only. */
    static TileProgram program(long seed, boolean storeEveryResult, UnaryFn[] unary, BinaryFn[] binary) {
        SplittableRandom r = new SplittableRandom(seed);
        List<TileProgram.InputSpec> inputs = new ArrayList<>();
        int tiles = 1 + r.nextInt(3), scalars = r.nextInt(3);
        boolean boolInput = r.nextInt(3) == 0;
        for (int i = 0; i < tiles; i++) inputs.add(new TileProgram.InputSpec(DType.FLOAT32, false));
        if (boolInput) inputs.add(new TileProgram.InputSpec(DType.BOOL, false));
        for (int i = 0; i < scalars; i++) inputs.add(new TileProgram.InputSpec(DType.FLOAT32, true));
        boolean constant = r.nextBoolean();
        int setupRegisters = scalars + (constant ? 1 : 0);
        int loaded = inputs.size() - scalars;
        int registers = setupRegisters + loaded + 1 + r.nextInt(3);
        List<TileInstr> code = new ArrayList<>();
        List<Integer> written = new ArrayList<>();
        int reg = 0;
        for (int i = 0; i < scalars; i++) {
            code.add(new TileInstr.Broadcast(loaded + i, reg));
            written.add(reg++);
        }
        if (constant) {
            code.add(new TileInstr.Constant(special(r), reg));
            written.add(reg++);
        }
        int boolRegister = reg + tiles;
        for (int i = 0; i < loaded; i++) {
            code.add(new TileInstr.Load(i, reg));
            written.add(reg++);
        }
        int steps = 1 + r.nextInt(9), outputs = 0;
        for (int s = 0; s < steps; s++) {
            // Any register, a broadcast's or a constant's included: their next tile must see them filled again.
            int dst = r.nextInt(registers);
            int a = written.get(r.nextInt(written.size())), b = written.get(r.nextInt(written.size()));
            TileInstr ins = switch (r.nextInt(10)) {
                case 0 -> new TileInstr.Clamp(special(r), special(r), a, dst);
                case 1 -> new TileInstr.Where(boolInput && r.nextBoolean() ? boolRegister : a, b,
                        written.get(r.nextInt(written.size())), dst);
                case 2, 3, 4 -> new TileInstr.Binary(binary[r.nextInt(binary.length)], a, b, dst);
                default -> new TileInstr.Unary(unary[r.nextInt(unary.length)], a, dst);
            };
            code.add(ins);
            if (!written.contains(dst)) written.add(dst);
            if (storeEveryResult) code.add(new TileInstr.Store(dst, outputs++));
        }
        if (!storeEveryResult) {
            outputs = 1 + r.nextInt(2);
            for (int o = 0; o < outputs; o++) code.add(new TileInstr.Store(written.get(r.nextInt(written.size())), o));
        }
        return new TileProgram(inputs, outputs, registers, code);
    }

    /** Mostly ordinary values, sometimes zeros, infinities, NaN, tiny and huge ones. */
    static float special(SplittableRandom r) {
        return switch (r.nextInt(12)) {
            case 0 -> 0f;
            case 1 -> -0f;
            case 2 -> Float.NaN;
            case 3 -> r.nextBoolean() ? Float.POSITIVE_INFINITY : Float.NEGATIVE_INFINITY;
            case 4 -> (float) (r.nextGaussian() * 1e-40);
            case 5 -> (float) (r.nextGaussian() * 1e30);
            case 6 -> (float) (r.nextGaussian() * 40);
            default -> (float) (r.nextGaussian() * 3);
        };
    }

    /** Operands for {@code p} with n elements (0-d inputs a single element). */
    static Tensor[] operands(TileProgram p, int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        Tensor[] t = new Tensor[p.inputs().size()];
        for (int i = 0; i < t.length; i++) {
            TileProgram.InputSpec spec = p.inputs().get(i);
            int count = spec.scalar() ? 1 : n;
            Shape shape = spec.scalar() ? Shape.of() : Shape.of(n);
            if (spec.dtype() == DType.BOOL) {
                boolean[] b = new boolean[count];
                for (int k = 0; k < count; k++) b[k] = r.nextBoolean();
                t[i] = Tensor.of(b, shape.dims());
            } else {
                float[] f = new float[count];
                for (int k = 0; k < count; k++) f[k] = special(r);
                t[i] = Tensor.of(f, shape.dims());
            }
        }
        return t;
    }

    static Tensor[] outputs(TileProgram p, int n) {
        Tensor[] out = new Tensor[p.outputs()];
        for (int o = 0; o < out.length; o++) out[o] = Tensor.empty(DType.FLOAT32, Shape.of(n));
        return out;
    }
}
