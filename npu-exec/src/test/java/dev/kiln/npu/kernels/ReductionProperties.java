package dev.kiln.npu.kernels;

import dev.kiln.ops.ReduceFn;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** sum, mean, prod, max, min against double (or exact int64) references. */
class ReductionProperties {

    @Provide
    Arbitrary<int[]> smallShapes() { return TestTensors.shapes(0, 4, 5); }

    /** Long enough rows and columns to run the vector loops, their tails and the column path. */
    @Provide
    Arbitrary<int[]> wideShapes() {
        return TestTensors.shapes(1, 3, 90).filter(s -> Refs.numel(s) <= 40_000);
    }

    @Provide
    Arbitrary<DType> floatTypes() { return Arbitraries.of(DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.BFLOAT16); }

    @Provide
    Arbitrary<DType> intTypes() {
        return Arbitraries.of(DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.INT32, DType.UINT32, DType.INT64, DType.UINT64,
                DType.BOOL);
    }

    @Provide
    Arbitrary<ReduceFn> intFns() { return Arbitraries.of(ReduceFn.SUM, ReduceFn.PROD, ReduceFn.MAX, ReduceFn.MIN); }

    @Property(tries = 200)
    void floatReductionsMatchReference(@ForAll("smallShapes") int[] shape, @ForAll long seed, @ForAll ReduceFn fn,
                                       @ForAll boolean keepdim, @ForAll Presentation p, @ForAll("floatTypes") DType t,
                                       @ForAll boolean nonFinite) {
        checkFloat(shape, seed, fn, keepdim, p, t, nonFinite);
    }

    @Property(tries = 80)
    void wideFloatReductionsMatchReference(@ForAll("wideShapes") int[] shape, @ForAll long seed, @ForAll ReduceFn fn,
                                           @ForAll boolean keepdim, @ForAll Presentation p, @ForAll boolean nonFinite) {
        checkFloat(shape, seed, fn, keepdim, p, DType.FLOAT32, nonFinite);
    }

    @Provide
    Arbitrary<int[]> columnShapes() {
        Arbitrary<Integer> lead = Arbitraries.integers().between(1, 120), inner = Arbitraries.integers().between(1, 300);
        return Arbitraries.oneOf(
                net.jqwik.api.Combinators.combine(lead, inner).as((a, b) -> new int[] {a, b}),
                net.jqwik.api.Combinators.combine(lead, lead, inner).as((a, b, c) -> new int[] {a, b % 9 + 1, c}));
    }

    /** Leading dimensions reduced, the contiguous last one kept: the float32 column path (vectorised across outputs). */
    @Property(tries = 60)
    void columnReductionsMatchReference(@ForAll("columnShapes") int[] shape, @ForAll long seed, @ForAll ReduceFn fn,
                                        @ForAll boolean keepdim, @ForAll boolean nonFinite, @ForAll boolean offset) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] dims = shape.length == 2 ? new int[] {0} : r.nextBoolean() ? new int[] {0, 1} : new int[] {r.nextInt(2)};
        double[] data = TestTensors.randomData(Refs.numel(shape), seed, fn == ReduceFn.PROD ? 1.6 : 10, nonFinite);
        Tensor x = TestTensors.tensor(Refs.rounded(data, DType.FLOAT32), DType.FLOAT32,
                offset ? Presentation.OFFSET : Presentation.CONTIGUOUS, shape);
        checkFloat(shape, x, dims, fn, keepdim, DType.FLOAT32);
    }

    private static void checkFloat(int[] shape, long seed, ReduceFn fn, boolean keepdim, Presentation p, DType t, boolean nonFinite) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] dims = Refs.randomDims(shape.length, r);
        // Products of values near 1 stay in range; sums use a larger scale.
        double scale = fn == ReduceFn.PROD ? 1.6 : 10;
        double[] data = Refs.rounded(TestTensors.randomData(Refs.numel(shape), seed, scale, nonFinite), t);
        checkFloat(shape, TestTensors.tensor(data, t, p, shape), dims, fn, keepdim, t);
    }

    private static void checkFloat(int[] shape, Tensor x, int[] dims, ReduceFn fn, boolean keepdim, DType t) {
        double[] data = TestTensors.values(x);
        Tensor y = apply(fn, x, dims, keepdim);
        Reference ref = reference(fn, fn.resultType(t), shape, data, dims, keepdim);
        String what = fn.opName() + " " + Arrays.toString(dims) + " keepdim=" + keepdim + " of " + t + Shape.of(shape)
                + " strides " + Arrays.toString(x.strides());
        Refs.assertShape(what, ref.shape, y);
        assertEquals(fn.resultType(t), y.dtype(), what + ": dtype");
        double[] got = TestTensors.values(y);
        double u = Refs.unitRoundoff(t);
        // float32 sums accumulate in float blocks (see FloatRuns); other types in double.
        double accumulation = t == DType.FLOAT32 ? 8e-6 : 1e-12;
        for (int i = 0; i < got.length; i++) {
            double e = ref.values[i];
            double tol = switch (fn) {
                case MAX, MIN -> 0;
                case SUM -> 2 * u * Math.abs(e) + accumulation * ref.absSums[i];
                case MEAN -> 2 * u * Math.abs(e) + accumulation * ref.absSums[i] / ref.count;
                case PROD -> (2 * u + 1e-13 * ref.count) * Math.abs(e) + Refs.tiny(t);
            };
            Refs.assertNear(what, i, e, got[i], tol, t);
        }
    }

    @Property(tries = 150)
    void integerReductionsAreExact(@ForAll("smallShapes") int[] shape, @ForAll long seed, @ForAll("intFns") ReduceFn fn,
                                   @ForAll boolean keepdim, @ForAll Presentation p, @ForAll("intTypes") DType t) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] dims = Refs.randomDims(shape.length, r);
        double[] data = Refs.intData(Refs.numel(shape), seed, -9, 9, t);
        Tensor y = apply(fn, TestTensors.tensor(data, t, p, shape), dims, keepdim);
        String what = fn.opName() + " " + Arrays.toString(dims) + " of " + t + Shape.of(shape);
        Reference ref = reference(fn, fn.resultType(t), shape, data, dims, keepdim);
        Refs.assertShape(what, ref.shape, y);
        assertEquals(fn.resultType(t), y.dtype(), what + ": dtype");
        assertArrayEquals(ref.exact, Refs.longs(y), what);
    }

    private static Tensor apply(ReduceFn fn, Tensor x, int[] dims, boolean keepdim) {
        return switch (fn) {
            case SUM -> x.sum(dims, keepdim);
            case MEAN -> x.mean(dims, keepdim);
            case PROD -> x.prod(dims, keepdim);
            case MAX -> x.max(dims, keepdim);
            case MIN -> x.min(dims, keepdim);
        };
    }

    /** Expected outputs (double and exact int64), the sum of |x| per output and the reduced count. */
    private record Reference(int[] shape, double[] values, long[] exact, double[] absSums, long count) {}

    private static Reference reference(ReduceFn fn, DType resultType, int[] shape, double[] data, int[] dims, boolean keepdim) {
        boolean[] reduced = new boolean[shape.length];
        for (int d : dims) reduced[Refs.dim(d, shape.length)] = true;
        int[] outFull = shape.clone();
        long count = 1;
        for (int i = 0; i < shape.length; i++) {
            if (reduced[i]) {
                count *= shape[i];
                outFull[i] = 1;
            }
        }
        int outN = (int) Refs.numel(outFull);
        double[] v = new double[outN], abs = new double[outN];
        long[] exact = new long[outN];
        double init = switch (fn) {
            case SUM, MEAN -> 0;
            case PROD -> 1;
            case MAX -> Double.NEGATIVE_INFINITY;
            case MIN -> Double.POSITIVE_INFINITY;
        };
        Arrays.fill(v, init);
        // Integer results have no infinities: the identity within the result dtype.
        long exactInit = switch (fn) {
            case SUM, MEAN -> 0;
            case PROD -> 1;
            // The type's least and greatest values, as the identities of max and min (unused for floats).
            case MAX -> resultType.isInteger() ? (long) TestTensors.lowest(resultType) : 0;
            case MIN -> switch (resultType) {
                case INT64 -> Long.MAX_VALUE;
                case UINT64 -> -1L; // 2^64 - 1's bits
                default -> resultType.isInteger() ? (long) TestTensors.highest(resultType) : 1;
            };
        };
        Arrays.fill(exact, exactInit);
        for (int i = 0; i < data.length; i++) {
            int[] idx = TestTensors.unravel(i, shape);
            int o = (int) TestTensors.ravelBroadcast(idx, outFull);
            double x = data[i];
            long lx = (long) x;
            boolean unsigned = resultType == DType.UINT64;
            if (Double.isFinite(x)) abs[o] += Math.abs(x);
            switch (fn) {
                case SUM, MEAN -> { v[o] += x; exact[o] += lx; }
                case PROD -> { v[o] *= x; exact[o] *= lx; }
                // uint64 compares its bits unsigned (its identity for min is all ones).
                case MAX -> { v[o] = Math.max(v[o], x); exact[o] = unsigned ? unsignedMax(exact[o], lx) : Math.max(exact[o], lx); }
                case MIN -> { v[o] = Math.min(v[o], x); exact[o] = unsigned ? unsignedMin(exact[o], lx) : Math.min(exact[o], lx); }
            }
        }
        if (fn == ReduceFn.MEAN) for (int o = 0; o < outN; o++) v[o] /= count;
        int[] outShape = keepdim ? outFull : java.util.stream.IntStream.range(0, shape.length)
                .filter(i -> !reduced[i]).map(i -> shape[i]).toArray();
        return new Reference(outShape, v, exact, abs, count);
    }

    private static long unsignedMax(long a, long b) { return Long.compareUnsigned(a, b) >= 0 ? a : b; }

    private static long unsignedMin(long a, long b) { return Long.compareUnsigned(a, b) <= 0 ? a : b; }

    // ---------------------------------------------------------------- examples

    @Test
    void millionElementFloat32SumIsAccurate() {
        int n = 1 << 20;
        SplittableRandom r = new SplittableRandom(7);
        float[] f = new float[n];
        double exact = 0;
        for (int i = 0; i < n; i++) {
            f[i] = (float) r.nextDouble();
            exact += f[i];
        }
        Tensor x = Tensor.of(f, n);
        assertEquals(exact, x.sum().getDouble(0), exact * 1e-6, "sum");
        assertEquals(exact / n, x.mean().getDouble(0), exact / n * 1e-6, "mean");
        // The same data as columns: the column path, split across workers.
        Tensor cols = Tensor.of(f, n / 16, 16).sum(0);
        double[] colExact = new double[16];
        for (int i = 0; i < n; i++) colExact[i % 16] += f[i];
        double[] got = TestTensors.values(cols);
        for (int j = 0; j < 16; j++) assertEquals(colExact[j], got[j], colExact[j] * 1e-6, "column " + j);
    }

    @Test
    void fewOutputsOverManyElementsSplitAcrossWorkers() {
        // 17 columns of 20000: one column-path group, split; and one row of 340000: one output, split.
        int rows = 20_000, cols = 17, n = rows * cols;
        double[] data = TestTensors.randomData(n, 99, 2, false);
        data[12_345 * cols + 4] = Double.NaN;
        data[777] = 50;
        Tensor x = TestTensors.tensor(Refs.rounded(data, DType.FLOAT32), DType.FLOAT32, rows, cols);
        double[] v = TestTensors.values(x);
        for (ReduceFn fn : new ReduceFn[] {ReduceFn.SUM, ReduceFn.MEAN, ReduceFn.MAX, ReduceFn.MIN}) {
            checkFloat(new int[] {rows, cols}, x, new int[] {0}, fn, false, DType.FLOAT32);
            assertTrue(Double.isNaN(apply(fn, x, new int[] {0, 1}, false).getDouble(0)), fn + " of all propagates the NaN");
        }
        v[12_345 * cols + 4] = 0;
        Tensor finite = TestTensors.tensor(v, DType.FLOAT32, rows, cols);
        assertEquals(Arrays.stream(v).sum(), apply(ReduceFn.SUM, finite, new int[] {0, 1}, false).getDouble(0), 1e-6 * n);
        assertEquals(50, apply(ReduceFn.MAX, finite, new int[] {0, 1}, false).getDouble(0));
        assertEquals(Arrays.stream(v).min().orElseThrow(), apply(ReduceFn.MIN, finite, new int[] {0, 1}, false).getDouble(0));
    }

    @Test
    void largeRowsFindNaNAndExtremesAnywhere() {
        int n = 70_001;
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) Math.sin(i);
        f[12_345] = 5f;
        f[n - 1] = -7f;
        assertEquals(5.0, Tensor.of(f, n).max().getDouble(0));
        assertEquals(-7.0, Tensor.of(f, n).min().getDouble(0));
        f[n - 2] = Float.NaN;
        assertTrue(Double.isNaN(Tensor.of(f, n).max().getDouble(0)));
        float[] g = Arrays.copyOf(f, 70_000);
        g[3 * 10_000 + 5_000] = Float.NaN;
        Tensor strided = Tensor.of(g, 7, 10_000).slice(1, 0, 10_000, 2); // stride 2: the scalar path
        assertTrue(Double.isNaN(strided.min(new int[] {0, 1}, false).getDouble(0)));
        double oddMin = Double.POSITIVE_INFINITY;
        for (int i = 1; i < g.length; i += 2) oddMin = Math.min(oddMin, g[i]);
        assertEquals(oddMin, Tensor.of(g, 7, 10_000).slice(1, 1, 10_000, 2).min().getDouble(0), "the half without the NaN");
    }

    @Test
    void reversedAndBroadcastViewsReduceLikeTheirValues() {
        float[] f = new float[6 * 50];
        for (int i = 0; i < f.length; i++) f[i] = i * 0.25f;
        Tensor x = Tensor.of(f, 6, 50);
        Tensor reversed = x.slice(1, 49, -51, -1); // negative stride along dim 1
        double[] rows = TestTensors.values(reversed.sum(1));
        for (int i = 0; i < 6; i++) {
            double e = 0;
            for (int j = 0; j < 50; j++) e += f[i * 50 + j];
            assertEquals(e, rows[i], 1e-9);
        }
        Tensor broadcast = Tensor.of(new float[] {1.5f, -2f, 3f}, 3, 1).expand(3, 1000); // stride 0 along dim 1
        assertArrayEquals(new double[] {1500, -2000, 3000}, TestTensors.values(broadcast.sum(1)));
        assertArrayEquals(new double[] {2.5, 2.5}, TestTensors.values(broadcast.sum(new int[] {0}, false).slice(0, 0, 2)));
        assertArrayEquals(new double[] {3}, TestTensors.values(broadcast.max()));
    }

    @Test
    void emptyReductionsGiveTheIdentity() {
        Tensor f = TestTensors.tensor(new double[0], DType.FLOAT32, 2, 0);
        assertArrayEquals(new double[] {0, 0}, TestTensors.values(f.sum(1)));
        assertArrayEquals(new double[] {1, 1}, TestTensors.values(f.prod(new int[] {1}, false)));
        assertArrayEquals(new double[] {Double.NEGATIVE_INFINITY, Double.NEGATIVE_INFINITY}, TestTensors.values(f.max(1)));
        assertArrayEquals(new double[] {Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY}, TestTensors.values(f.min(1)));
        assertTrue(Double.isNaN(f.mean(1).getDouble(0)));
        assertEquals(Shape.of(0), f.sum(0).shape());

        Tensor i32 = TestTensors.tensor(new double[0], DType.INT32, 0, 3);
        assertArrayEquals(new long[] {Integer.MIN_VALUE, Integer.MIN_VALUE, Integer.MIN_VALUE}, Refs.longs(i32.max(0)));
        assertArrayEquals(new long[] {Integer.MAX_VALUE, Integer.MAX_VALUE, Integer.MAX_VALUE}, Refs.longs(i32.min(0)));
        assertEquals(DType.INT64, i32.sum(0).dtype());
        Tensor i64 = TestTensors.tensor(new double[0], DType.INT64, 0);
        assertEquals(Long.MIN_VALUE, Refs.longs(i64.max())[0]);
        Tensor b = TestTensors.tensor(new double[0], DType.BOOL, 0);
        assertEquals(0, b.max().getDouble(0), "any of nothing");
        assertEquals(1, b.min().getDouble(0), "all of nothing");
    }

    @Test
    void reducingNoDimensionsConvertsEachElement() {
        Tensor x = Tensor.of(new int[] {1, -2, 3, 4}, 2, 2);
        Tensor s = x.sum(new int[0], false);
        assertEquals(DType.INT64, s.dtype());
        assertEquals(Shape.of(2, 2), s.shape());
        assertArrayEquals(new long[] {1, -2, 3, 4}, Refs.longs(s));
        Tensor neg = Tensor.of(new float[] {-0.0f}, 1).sum(new int[0], false);
        assertEquals(Double.doubleToRawLongBits(-0.0), Double.doubleToRawLongBits(neg.getDouble(0)), "keeps -0.0");
    }

    @Test
    void integerSumsAreExactAndWrapLikeInt64() {
        long big = 1L << 62;
        Tensor x = Tensor.of(new long[] {big, big, big, 1}, 4);
        assertEquals(big * 3 + 1, Refs.longs(x.sum())[0]); // wraps to a negative value, as int64 does
        Tensor precise = Tensor.of(new long[] {(1L << 53) + 1, 1}, 2);
        assertEquals((1L << 53) + 2, Refs.longs(precise.sum())[0], "beyond double precision");
        Tensor flags = Tensor.of(new boolean[] {true, false, true}, 3);
        assertEquals(2, Refs.longs(flags.sum())[0]);
        assertEquals(DType.BOOL, flags.max().dtype());
        assertEquals(1, flags.max().getDouble(0));
        assertEquals(0, flags.min().getDouble(0));
    }

    @Test
    void float32ProductAccumulatesInDouble() {
        // In float the running product would overflow at 1e20 * 1e20 before coming back.
        Tensor x = Tensor.of(new float[] {1e20f, 1e20f, 1e-20f, 1e-20f}, 4);
        assertEquals(1.0, x.prod(new int[] {0}, false).getDouble(0), 1e-6);
    }

    @Test
    void outputLayoutIsContiguousForAnyViewAndKeepdim() {
        Tensor x = TestTensors.tensor(TestTensors.randomData(24, 3, 1, false), DType.FLOAT32, Presentation.TRANSPOSED, 2, 3, 4);
        Tensor y = x.sum(new int[] {1}, true);
        assertEquals(Shape.of(2, 1, 4), y.shape());
        assertTrue(y.isContiguous());
        assertEquals(new Layout(Shape.of(2, 1, 4), new long[] {4, 4, 1}, 0), y.layout());
    }
}
