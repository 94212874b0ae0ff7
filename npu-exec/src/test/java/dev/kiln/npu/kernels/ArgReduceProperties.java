package dev.kiln.npu.kernels;

import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
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

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** argmax / argmin against a scan written here: ties, NaN, select_last_index. */
class ArgReduceProperties {

    @Provide
    Arbitrary<int[]> shapes() {
        return Arbitraries.oneOf(TestTensors.shapes(0, 4, 5), TestTensors.shapes(1, 2, 80))
                .filter(s -> s.length == 0 || java.util.Arrays.stream(s).allMatch(d -> d > 0));
    }

    @Provide
    Arbitrary<DType> types() {
        return Arbitraries.of(DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.INT32,
                DType.UINT32, DType.INT64, DType.UINT64, DType.BOOL);
    }

    @Property(tries = 200)
    void argReduceMatchesScan(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll boolean max,
                              @ForAll boolean keepdim, @ForAll boolean lastIndex, @ForAll Presentation p,
                              @ForAll("types") DType t, @ForAll boolean nonFinite) {
        SplittableRandom r = new SplittableRandom(seed);
        int dim = shape.length == 0 ? 0 : r.nextInt(shape.length);
        double[] data = tiedData(Refs.numel(shape), seed, t, nonFinite);
        Tensor x = TestTensors.tensor(data, t, p, shape);
        Tensor y = Dispatch.apply1(new Op.ArgReduce(max, dim, keepdim, lastIndex), x);
        String what = (max ? "argmax" : "argmin") + " dim " + dim + " last=" + lastIndex + " of " + t + Shape.of(shape) + " " + p;
        int[] outShape = shape.length == 0 ? shape : keepdim ? Refs.withDim(shape, dim, 1) : remove(shape, dim);
        Refs.assertShape(what, outShape, y);
        assertEquals(DType.INT64, y.dtype());
        int[][] lines = Refs.lines(shape, dim);
        long[] expected = new long[lines.length];
        for (int l = 0; l < lines.length; l++) expected[l] = scan(data, lines[l], max, lastIndex);
        assertArrayEquals(expected, Refs.longs(y), what);
    }

    /** Few distinct values so ties are common; NaN and infinities when asked. */
    static double[] tiedData(long n, long seed, DType t, boolean nonFinite) {
        if (!t.isFloatingPoint()) return Refs.intData(n, seed, -3, 3, t);
        SplittableRandom r = new SplittableRandom(seed);
        double[] d = new double[Math.toIntExact(n)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (r.nextInt(9) - 4) * 0.5;
            if (d[i] == 0 && r.nextBoolean()) d[i] = -0.0;
            if (nonFinite && r.nextInt(12) == 0) {
                d[i] = new double[] {Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY}[r.nextInt(3)];
            }
        }
        return d;
    }

    private static long scan(double[] data, int[] line, boolean max, boolean last) {
        int best = 0;
        for (int i = 1; i < line.length; i++) {
            double v = data[line[i]], b = data[line[best]];
            boolean better;
            if (Double.isNaN(b)) better = last && Double.isNaN(v);
            else if (Double.isNaN(v)) better = true;
            else better = max ? v > b || (last && v == b) : v < b || (last && v == b);
            if (better) best = i;
        }
        return best;
    }

    private static int[] remove(int[] shape, int dim) {
        int[] out = new int[shape.length - 1];
        for (int i = 0, j = 0; i < shape.length; i++) if (i != dim) out[j++] = shape[i];
        return out;
    }

    @Test
    void firstNaNWinsAndTiesTakeTheFirstIndex() {
        Tensor x = Tensor.of(new float[] {1, 3, Float.NaN, 3, Float.NaN}, 5);
        assertEquals(2, Refs.longs(x.argmax(0, false))[0]);
        assertEquals(2, Refs.longs(x.argmin(0, false))[0]);
        assertEquals(4, Refs.longs(x.argmax(0, false, true))[0], "select_last_index: the last NaN");
        Tensor ties = Tensor.of(new float[] {3, 1, 3, 1}, 4);
        assertEquals(0, Refs.longs(ties.argmax(0, false))[0]);
        assertEquals(2, Refs.longs(ties.argmax(0, false, true))[0]);
        assertEquals(1, Refs.longs(ties.argmin(0, false))[0]);
    }

    @Test
    void longRowsFindTheExtremeInAnyLane() {
        int n = 1000;
        float[] f = new float[2 * n];
        for (int i = 0; i < f.length; i++) f[i] = (i * 37) % 101;
        f[777] = 500;
        f[n + 999] = 500;
        f[n + 3] = 500;
        assertArrayEquals(new long[] {777, 3}, Refs.longs(Tensor.of(f, 2, n).argmax(1, false)));
        assertArrayEquals(new long[] {777, 999}, Refs.longs(Tensor.of(f, 2, n).argmax(1, false, true)));
        // The flattened argmax of the whole tensor.
        assertEquals(777, Refs.longs(Tensor.of(f, 2, n).argmax())[0]);
    }

    @Test
    void int64ComparesExactlyBeyondDoublePrecision() {
        long a = (1L << 60) + 1, b = (1L << 60) + 2; // equal as doubles
        assertEquals(1, Refs.longs(Tensor.of(new long[] {a, b, a}, 3).argmax(0, false))[0]);
        assertEquals(0, Refs.longs(Tensor.of(new long[] {a, b, a}, 3).argmin(0, false))[0]);
        assertEquals(2, Refs.longs(Dispatch.apply1(new Op.ArgReduce(false, 0, false, true), Tensor.of(new long[] {a, b, a}, 3)))[0]);
    }
}
