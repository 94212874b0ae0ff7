package dev.kiln.npu.kernels;

import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.ops.UnaryFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Elementwise ops on random shapes (with size-1 and empty dimensions), random
 * broadcasting, random dtypes (mixed where the op allows) and random memory layouts,
 * against double/long references written here.
 */
class PointwiseProperties {
    private static final DType[] ALL = DType.values();

    @Provide
    Arbitrary<int[]> shape() { return TestTensors.shapes(0, 4, 6); }

    @Provide
    Arbitrary<DType> dtype() { return Arbitraries.of(ALL); }

    @Provide
    Arbitrary<Presentation> presentation() { return Arbitraries.of(Presentation.class); }

    // ---------------------------------------------------------------- references

    /** The double value a tensor of dtype t holds after storing v. */
    static double stored(DType t, double v) { return TestTensors.roundTo(t, v); }

    /** Random values suited to a dtype: fractional and non-finite for floats, small integers otherwise. */
    static double[] data(DType t, long n, long seed, double scale) {
        double[] d = TestTensors.randomData(n, seed, scale, t.isFloatingPoint());
        for (int i = 0; i < d.length; i++) {
            if (t == DType.BOOL) d[i] = d[i] > 0 ? 1 : 0;
            else if (!t.isFloatingPoint()) d[i] = Math.rint(d[i]);
            d[i] = stored(t, d[i]);
        }
        return d;
    }

    static double unaryRef(UnaryFn fn, double x) {
        return switch (fn) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case RELU -> Double.isNaN(x) ? x : Math.max(x, 0);
            case EXP -> Math.exp(x);
            case LOG -> Math.log(x);
            case SQRT -> Math.sqrt(x);
            case RSQRT -> 1 / Math.sqrt(x);
            case SIN -> Math.sin(x);
            case COS -> Math.cos(x);
            case TANH -> Math.tanh(x);
            case SIGMOID -> VectorMathTest.sigmoidRef(x);
            case ERF -> VectorMathTest.erfRef(x);
            case GELU -> VectorMathTest.geluRef(x);
            case GELU_TANH -> VectorMathTest.geluTanhRef(x);
            case SILU -> x * VectorMathTest.sigmoidRef(x);
            case SOFTPLUS -> VectorMathTest.softplusRef(x);
            case LOGICAL_NOT -> x == 0 ? 1 : 0;
            case BITWISE_NOT -> throw new IllegalArgumentException("bitwise_not computes in integers only");
        };
    }

    /** Integer semantics of NEG/ABS/RELU/BITWISE_NOT, wrapped to the dtype. */
    static double unaryIntRef(UnaryFn fn, DType t, long x) {
        long r = switch (fn) {
            case NEG -> -x;
            case ABS -> Math.abs(x);
            case RELU -> Math.max(x, 0);
            case BITWISE_NOT -> ~x;
            default -> throw new IllegalArgumentException(fn.name());
        };
        return TestTensors.wrap(t, r);
    }

    /** Relative tolerance of a float-computed result stored as t: the vector math bound, plus one rounding to a half type. */
    static double tolerance(DType t, UnaryFn fn) {
        boolean exact = switch (fn) {
            case NEG, ABS, RELU, SQRT, LOGICAL_NOT -> true;
            default -> false;
        };
        return switch (t) {
            case FLOAT16 -> exact ? 0 : 0x1p-10;
            case BFLOAT16 -> exact ? 0 : 0x1p-7;
            case FLOAT32 -> exact ? 0 : 8e-7;
            case FLOAT64 -> exact ? 0 : 1e-12;
            default -> 0;
        };
    }

    /**
     * Absolute slack: one subnormal step of the result type (float16's is 6e-8); for float64,
     * 1e-14, because the registry's double GELU (1 + erf) cancels in the far negative tail.
     */
    static double absoluteTolerance(DType t) {
        return switch (t) {
            case FLOAT64 -> 1e-14;
            case FLOAT16 -> 6e-8;
            case FLOAT32, BFLOAT16 -> 1e-40;
            default -> 0;
        };
    }

    // ---------------------------------------------------------------- unary

    @Property(tries = 150)
    void unaryMatchesReference(@ForAll("shape") int[] shape, @ForAll("dtype") DType dtype, @ForAll UnaryFn fn,
                               @ForAll("presentation") Presentation p, @ForAll long seed) {
        double[] values = data(dtype, Shape.of(shape).numel(), seed, fn == UnaryFn.EXP ? 30 : 8);
        Tensor x = TestTensors.tensor(values, dtype, p, shape);
        DType outType;
        try {
            outType = fn.resultType(dtype);
        } catch (KilnException e) {
            assertThrows(KilnException.class, () -> Dispatch.apply1(new Op.Unary(fn), x));
            return;
        }
        Tensor y = Dispatch.apply1(new Op.Unary(fn), x);
        double[] expected = new double[values.length];
        for (int i = 0; i < values.length; i++) {
            double r = outType.isFloatingPoint() || fn == UnaryFn.LOGICAL_NOT
                    ? unaryRef(fn, values[i]) : unaryIntRef(fn, dtype, (long) values[i]);
            expected[i] = stored(outType, r);
        }
        TestTensors.assertClose(fn.opName() + " " + dtype + " " + p, Shape.of(shape), expected, y,
                tolerance(outType, fn), absoluteTolerance(outType));
    }

    // ---------------------------------------------------------------- binary

    /**
     * The op in the compute type: double for floating types, otherwise in long, wrapped to the
     * type (uint64 operands as their bits, a negative long past 2^63, compared and divided unsigned).
     */
    static double binaryRef(BinaryFn fn, DType compute, double a, double b) {
        if (!compute.isFloatingPoint()) {
            long x = (long) a, y = (long) b;
            boolean unsigned = compute == DType.UINT64;
            int order = unsigned ? Long.compareUnsigned(x, y) : Long.compare(x, y);
            long r = switch (fn) {
                case ADD -> x + y;
                case SUB -> x - y;
                case MUL -> x * y;
                case TRUNC_DIV -> unsigned ? Long.divideUnsigned(x, y) : x / y;
                case FLOOR_DIV -> unsigned ? Long.divideUnsigned(x, y) : Math.floorDiv(x, y);
                case MINIMUM -> order <= 0 ? x : y;
                case MAXIMUM -> order >= 0 ? x : y;
                case POW -> {
                    long acc = 1;
                    for (long e = 0; e < y; e++) acc *= x;
                    yield acc;
                }
                case EQ -> x == y ? 1 : 0;
                case NE -> x != y ? 1 : 0;
                case LT -> order < 0 ? 1 : 0;
                case LE -> order <= 0 ? 1 : 0;
                case GT -> order > 0 ? 1 : 0;
                case GE -> order >= 0 ? 1 : 0;
                case LOGICAL_AND -> x != 0 && y != 0 ? 1 : 0;
                case LOGICAL_OR -> x != 0 || y != 0 ? 1 : 0;
                case LOGICAL_XOR -> (x != 0) != (y != 0) ? 1 : 0;
                case BITWISE_AND -> x & y;
                case BITWISE_OR -> x | y;
                case BITWISE_XOR -> x ^ y;
                // Shifts by a negative count or 64 or more: nothing left, or only the sign (uint64 has none).
                case LEFT_SHIFT -> y < 0 || y >= 64 ? 0 : x << y;
                case RIGHT_SHIFT -> unsigned ? (y < 0 || y >= 64 ? 0 : x >>> y) : x >> (y < 0 || y >= 64 ? 63 : y);
                case DIV -> throw new IllegalArgumentException("div is never integral");
            };
            return TestTensors.wrap(compute, r);
        }
        return switch (fn) {
            case ADD -> a + b;
            case SUB -> a - b;
            case MUL -> a * b;
            case DIV -> a / b;
            case TRUNC_DIV -> { double q = a / b; yield q < 0 ? Math.ceil(q) : Math.floor(q); }
            case FLOOR_DIV -> Math.floor(a / b);
            case POW -> Math.pow(a, b);
            case MINIMUM -> Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.min(a, b);
            case MAXIMUM -> Double.isNaN(a) || Double.isNaN(b) ? Double.NaN : Math.max(a, b);
            case EQ -> a == b ? 1 : 0;
            case NE -> a != b ? 1 : 0;
            case LT -> a < b ? 1 : 0;
            case LE -> a <= b ? 1 : 0;
            case GT -> a > b ? 1 : 0;
            case GE -> a >= b ? 1 : 0;
            case LOGICAL_AND -> a != 0 && b != 0 ? 1 : 0;
            case LOGICAL_OR -> a != 0 || b != 0 ? 1 : 0;
            case LOGICAL_XOR -> (a != 0) != (b != 0) ? 1 : 0;
            case BITWISE_AND, BITWISE_OR, BITWISE_XOR, LEFT_SHIFT, RIGHT_SHIFT ->
                    throw new IllegalArgumentException(fn + " computes in integers only");
        };
    }

    /** Integer divisors and exponents are kept legal here; errors are tested separately. */
    static void makeLegal(BinaryFn fn, DType compute, double[] b) {
        if (compute.isFloatingPoint()) return;
        for (int i = 0; i < b.length; i++) {
            if ((fn == BinaryFn.TRUNC_DIV || fn == BinaryFn.FLOOR_DIV) && b[i] == 0) b[i] = 3;
            if (fn == BinaryFn.POW) b[i] = Math.min(Math.abs(b[i]), 5);
        }
    }

    @Property(tries = 200)
    void binaryMatchesReference(@ForAll("shape") int[] shape, @ForAll("dtype") DType ta, @ForAll("dtype") DType tb,
                                @ForAll BinaryFn fn, @ForAll("presentation") Presentation pa,
                                @ForAll("presentation") Presentation pb, @ForAll long seed) {
        int[] partner = TestTensors.broadcastPartner(shape, seed);
        boolean swap = (seed & 1) == 0;
        int[] sa = swap ? partner : shape, sb = swap ? shape : partner;
        Op.Binary op = new Op.Binary(fn);
        DType compute;
        try {
            compute = op.computeType(ta, tb);
        } catch (KilnException e) {
            Tensor a = TestTensors.tensor(data(ta, Shape.of(sa).numel(), seed, 4), ta, sa);
            Tensor b = TestTensors.tensor(data(tb, Shape.of(sb).numel(), seed + 1, 4), tb, sb);
            assertThrows(KilnException.class, () -> Dispatch.apply1(op, a, b));
            return;
        }
        double[] va = data(ta, Shape.of(sa).numel(), seed, 6);
        double[] vb = data(tb, Shape.of(sb).numel(), seed + 1, 6);
        makeLegal(fn, compute, vb);
        for (int i = 0; i < vb.length; i++) vb[i] = stored(tb, vb[i]);
        Tensor a = TestTensors.tensor(va, ta, pa, sa);
        Tensor b = TestTensors.tensor(vb, tb, pb, sb);
        Tensor y = Dispatch.apply1(op, a, b);
        DType outType = fn.resultType(DType.promote(ta, tb));
        Shape s = Shape.broadcast("test", Shape.of(sa), Shape.of(sb));
        double[] expected = new double[Math.toIntExact(s.numel())];
        for (int i = 0; i < expected.length; i++) {
            int[] idx = TestTensors.unravel(i, s.dims());
            double x = stored(compute, va[(int) TestTensors.ravelBroadcast(idx, sa)]);
            double z = stored(compute, vb[(int) TestTensors.ravelBroadcast(idx, sb)]);
            expected[i] = stored(outType, binaryRef(fn, compute, x, z));
        }
        // pow in float32 is Math.pow rounded once, like the reference; everything else is exact.
        TestTensors.assertClose(fn.opName() + " " + ta + "/" + tb + " " + pa + "/" + pb, s, expected, y, 0, 0);
    }

    @Property(tries = 150)
    void binaryScalarMatchesReference(@ForAll("shape") int[] shape, @ForAll("dtype") DType t, @ForAll BinaryFn fn,
                                      @ForAll boolean integral, @ForAll boolean scalarFirst,
                                      @ForAll("presentation") Presentation p, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double scalar = integral ? r.nextInt(-3, 6) : (r.nextDouble() - 0.5) * 7;
        if (integral && r.nextInt(4) == 0) scalar = 2;
        Op.BinaryScalar probe = new Op.BinaryScalar(fn, scalar, integral, scalarFirst);
        double[] v = data(t, Shape.of(shape).numel(), seed, 5);
        DType compute;
        try {
            compute = probe.computeType(t);
        } catch (KilnException e) {
            Tensor x = TestTensors.tensor(v, t, p, shape);
            assertThrows(KilnException.class, () -> Dispatch.apply1(probe, x));
            return;
        }
        if (!compute.isFloatingPoint()) {
            if ((fn == BinaryFn.TRUNC_DIV || fn == BinaryFn.FLOOR_DIV) && scalar == 0 && !scalarFirst) scalar = 2;
            if (fn == BinaryFn.POW && !scalarFirst) scalar = Math.abs(scalar);
            double[] legal = scalarFirst ? v : new double[] {scalar};
            makeLegal(fn, compute, legal);
            if (!scalarFirst) scalar = legal[0];
            for (int i = 0; i < v.length; i++) v[i] = stored(t, v[i]);
        }
        Op.BinaryScalar op = new Op.BinaryScalar(fn, scalar, integral, scalarFirst);
        Tensor x = TestTensors.tensor(v, t, p, shape);
        Tensor y = Dispatch.apply1(op, x);
        DType outType = fn.resultType(op.operandType(t));
        // An integral scalar in integer arithmetic wraps to the type, as PyTorch's uint8 + (-1) gives 255
        // (for uint64, binaryRef takes the bits: -1 stands for 2^64 - 1).
        double s = compute.isFloatingPoint() ? stored(compute, scalar)
                : compute == DType.UINT64 ? (long) scalar : TestTensors.wrap(compute, (long) scalar);
        double[] expected = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            double e = stored(compute, v[i]);
            expected[i] = stored(outType, scalarFirst ? binaryRef(fn, compute, s, e) : binaryRef(fn, compute, e, s));
        }
        TestTensors.assertClose(op + " " + t + " " + p, Shape.of(shape), expected, y, 0, 0);
    }

    // ---------------------------------------------------------------- clamp, where, copy

    @Property(tries = 100)
    void clampMatchesReference(@ForAll("shape") int[] shape, @ForAll("dtype") DType t, @ForAll("presentation") Presentation p,
                               @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double lo = r.nextInt(4) == 0 ? Double.NEGATIVE_INFINITY : (r.nextDouble() - 0.5) * 8;
        double hi = r.nextInt(4) == 0 ? Double.POSITIVE_INFINITY : (r.nextDouble() - 0.5) * 8;
        double[] v = data(t, Shape.of(shape).numel(), seed, 6);
        Tensor x = TestTensors.tensor(v, t, p, shape);
        if (t == DType.BOOL) {
            assertThrows(KilnException.class, () -> x.clamp(lo, hi));
            return;
        }
        Tensor y = x.clamp(lo, hi);
        double[] expected = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            if (t.isFloatingPoint()) {
                double l = t == DType.FLOAT64 ? lo : (float) lo, h = t == DType.FLOAT64 ? hi : (float) hi;
                expected[i] = stored(t, Double.isNaN(v[i]) ? v[i] : Math.min(Math.max(v[i], l), h));
            } else {
                // Integer bounds round inward and saturate at the dtype's range.
                double l = Math.clamp(Math.ceil(lo), TestTensors.lowest(t), TestTensors.highest(t));
                double h = Math.clamp(Math.floor(hi), TestTensors.lowest(t), TestTensors.highest(t));
                expected[i] = Math.min(Math.max(v[i], l), h);
            }
        }
        TestTensors.assertClose("clamp " + t + " [" + lo + ", " + hi + "]", Shape.of(shape), expected, y, 0, 0);
    }

    @Property(tries = 120)
    void whereMatchesReference(@ForAll("shape") int[] shape, @ForAll("dtype") DType tx, @ForAll("dtype") DType ty,
                               @ForAll("presentation") Presentation pc, @ForAll("presentation") Presentation px,
                               @ForAll long seed) {
        int[] sc = TestTensors.broadcastPartner(shape, seed), sx = shape, sy = TestTensors.broadcastPartner(shape, seed + 7);
        double[] c = data(DType.BOOL, Shape.of(sc).numel(), seed, 1);
        double[] vx = data(tx, Shape.of(sx).numel(), seed + 1, 5);
        double[] vy = data(ty, Shape.of(sy).numel(), seed + 2, 5);
        Tensor tc = TestTensors.tensor(c, DType.BOOL, pc, sc), x = TestTensors.tensor(vx, tx, px, sx), yIn = TestTensors.tensor(vy, ty, sy);
        DType out;
        try {
            out = DType.promote(tx, ty);
        } catch (KilnException e) {
            assertThrows(KilnException.class, () -> Tensor.where(tc, x, yIn));
            return;
        }
        Tensor y = Tensor.where(tc, x, yIn);
        Shape s = Shape.broadcast("test", Shape.of(sc), Shape.of(sx), Shape.of(sy));
        double[] expected = new double[Math.toIntExact(s.numel())];
        for (int i = 0; i < expected.length; i++) {
            int[] idx = TestTensors.unravel(i, s.dims());
            boolean cond = c[(int) TestTensors.ravelBroadcast(idx, sc)] != 0;
            double v = cond ? vx[(int) TestTensors.ravelBroadcast(idx, sx)] : vy[(int) TestTensors.ravelBroadcast(idx, sy)];
            expected[i] = stored(out, v);
        }
        TestTensors.assertClose("where " + tx + "/" + ty, s, expected, y, 0, 0);
    }

    @Property(tries = 150)
    void castMatchesReference(@ForAll("shape") int[] shape, @ForAll("dtype") DType from, @ForAll("dtype") DType to,
                              @ForAll("presentation") Presentation p, @ForAll long seed) {
        double[] v = data(from, Shape.of(shape).numel(), seed, 300);
        Tensor y = TestTensors.tensor(v, from, p, shape).to(to);
        double[] expected = new double[v.length];
        for (int i = 0; i < v.length; i++) expected[i] = CastTest.castRef(from, to, v[i]);
        TestTensors.assertClose("cast " + from + " -> " + to + " " + p, Shape.of(shape), expected, y, 0, 0);
    }

    @Property(tries = 100)
    void contiguousCopiesAnyLayout(@ForAll("shape") int[] shape, @ForAll("dtype") DType t,
                                   @ForAll("presentation") Presentation p, @ForAll long seed) {
        double[] v = data(t, Shape.of(shape).numel(), seed, 100);
        Tensor c = TestTensors.tensor(v, t, p, shape).copy();
        // (Layout.isContiguous rejects some empty shapes' strides, so only non-empty copies are checked for it.)
        if (c.numel() > 0 && (!c.isContiguous() || c.layout().offset() != 0)) fail("copy is not contiguous: " + c.layout());
        TestTensors.assertClose("contiguous " + t + " " + p, Shape.of(shape), v, c, 0, 0);
    }
}
