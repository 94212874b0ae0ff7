package dev.kiln.opt.npu;

import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.FnN;
import dev.kiln.Kiln;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Compiled equals eager, bit for bit, over random integer programs: every integer dtype
 * (int8 to uint64), arithmetic that overflows and wraps, division, min/max, comparisons,
 * clamps, casts between widths, bitwise ops and shifts, and scalar operands, on the NPU backend. Constant folding
 * and the kernels must agree on every wrap.
 */
class IntegerProgramProperties {
    private static final DType[] INTEGERS = {DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.INT32, DType.UINT32, DType.INT64,
            DType.UINT64};
    private static final String[] KINDS = {"add", "sub", "mul", "div", "max", "min", "gt", "addScalar", "mulScalar", "clamp", "cast",
            "constant", "and", "or", "xor", "not", "shl", "shr"};

    private record Step(String kind, int a, int b, DType to, long scalar) {}

    private static Tensor apply(Step s, List<Tensor> v) {
        Tensor a = v.get(s.a()), b = v.get(s.b());
        return switch (s.kind()) {
            case "add" -> a.add(b);
            case "sub" -> a.sub(b);
            case "mul" -> a.mul(b);
            // An odd divisor is never zero in any width.
            case "div" -> a.div(b.mul(2L).add(1L).to(b.dtype()), Tensor.RoundingMode.TRUNC);
            case "max" -> a.maximum(b);
            case "min" -> a.minimum(b);
            case "gt" -> Tensor.where(a.gt(b), a, b);
            case "addScalar" -> a.add(s.scalar());
            case "mulScalar" -> a.mul(s.scalar());
            case "clamp" -> a.clamp(-s.scalar(), s.scalar() * 3);
            case "cast" -> a.to(s.to());
            case "and" -> a.bitwiseAnd(b);
            case "or" -> a.bitwiseOr(s.scalar());
            case "xor" -> a.bitwiseXor(b);
            case "not" -> a.bitwiseNot();
            // Shift counts from -8 to 71: negative and past-the-width ones included.
            case "shl" -> a.bitwiseLeftShift(Math.floorMod(s.scalar(), 80) - 8);
            case "shr" -> a.bitwiseRightShift(b.bitwiseAnd(63L).to(b.dtype()));
            // Arithmetic on a constant the program makes itself, which constant folding computes at compile time
            // (a fill in every type's range, then a product that overflows the narrow ones).
            case "constant" -> Tensor.full(s.scalar() % 100, s.to(), 3).mul(s.scalar() * s.scalar() + 1).add(-s.scalar())
                    .add(a.to(s.to()));
            default -> throw new IllegalArgumentException(s.kind());
        };
    }

    private static Object run(List<Step> steps, Object... args) {
        List<Tensor> values = new ArrayList<>();
        for (Object o : args) values.add((Tensor) o);
        for (Step s : steps) values.add(apply(s, values));
        return values.getLast();
    }

    /** A fused float32 chain reading every integer type through the DMA's conversion, extremes included. */
    @net.jqwik.api.Example
    void fusedChainsReadEveryIntegerTypeAsEagerCastsIt() {
        long[] v = {0, 1, -1, 127, -128, 255, 65535, -32769, 4294967295L, Long.MIN_VALUE, Long.MAX_VALUE, 0xf000_0000_0000_0001L};
        for (DType t : INTEGERS) {
            Tensor x = Tensor.of(v, 3, 4).to(t);
            FnN<Object> chain = a -> {
                Tensor f = ((Tensor) a[0]).to(DType.FLOAT32);
                return f.mul(0.5f).add(f.sigmoid());
            };
            Tensor eager = (Tensor) chain.apply(x);
            FnN<Object> compiled = Kiln.compileN(chain, CompileOptions.defaults().backend(Backend.NPU));
            Tensor got = (Tensor) compiled.apply(x);
            assertArrayEquals(eager.toFloatArray(), got.toFloatArray(), t.toString());
            String explained = Kiln.explain(compiled, x).toString();
            org.junit.jupiter.api.Assertions.assertTrue(explained.contains("1 fused"), t + ": " + explained);
        }
    }

    @Property(tries = 80)
    void compiledEqualsEagerBitForBit(@ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        DType[] inputTypes = {INTEGERS[r.nextInt(INTEGERS.length)], INTEGERS[r.nextInt(INTEGERS.length)]};
        List<Step> steps = new ArrayList<>();
        for (int i = 0, n = 2 + r.nextInt(6); i < n; i++) {
            int values = inputTypes.length + i;
            steps.add(new Step(KINDS[r.nextInt(KINDS.length)], r.nextInt(values), r.nextInt(values), INTEGERS[r.nextInt(INTEGERS.length)],
                    r.nextLong(-300, 300)));
        }
        Tensor[] in = new Tensor[inputTypes.length];
        for (int i = 0; i < in.length; i++) {
            long[] v = new long[6];
            for (int j = 0; j < v.length; j++) v[j] = r.nextInt(4) == 0 ? r.nextLong() : r.nextLong(-1000, 1000);
            in[i] = Tensor.of(v, 2, 3).to(inputTypes[i]);
        }
        Object[] args = in.clone();
        Tensor eager;
        try {
            eager = (Tensor) run(steps, args);
        } catch (KilnException e) {
            // uint64 with a signed type has no common type: compiling must refuse the same way.
            FnN<Object> compiled = Kiln.compileN(a -> run(steps, a), CompileOptions.defaults().backend(Backend.NPU));
            KilnException c = assertThrows(KilnException.class, () -> compiled.apply(args));
            assertEquals(e.getMessage(), c.getMessage());
            return;
        }
        FnN<Object> compiled = Kiln.compileN(a -> run(steps, a), CompileOptions.defaults().backend(Backend.NPU));
        Tensor got = (Tensor) compiled.apply(args);
        assertEquals(eager.dtype(), got.dtype(), steps.toString());
        assertEquals(eager.shape(), got.shape(), steps.toString());
        assertArrayEquals(eager.toLongArray(), got.toLongArray(),
                steps + " on " + inputTypes[0] + ", " + inputTypes[1]);
    }
}
