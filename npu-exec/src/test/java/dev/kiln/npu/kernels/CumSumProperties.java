package dev.kiln.npu.kernels;

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

/** cumsum (inclusive/exclusive, forward/reverse) against running sums written here. */
class CumSumProperties {

    @Provide
    Arbitrary<int[]> shapes() { return Arbitraries.oneOf(TestTensors.shapes(0, 4, 5), TestTensors.shapes(1, 2, 60)); }

    @Provide
    Arbitrary<DType> floatTypes() { return Arbitraries.of(DType.FLOAT32, DType.FLOAT64, DType.FLOAT16); }

    @Provide
    Arbitrary<DType> intTypes() {
        return Arbitraries.of(DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.INT32, DType.UINT32, DType.INT64, DType.BOOL);
    }

    @Property(tries = 150)
    void floatCumsumMatchesRunningSum(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll boolean exclusive,
                                      @ForAll boolean reverse, @ForAll Presentation p, @ForAll("floatTypes") DType t,
                                      @ForAll boolean nonFinite) {
        int dim = pickDim(shape, seed);
        double[] data = Refs.rounded(TestTensors.randomData(Refs.numel(shape), seed, 10, nonFinite), t);
        Tensor y = TestTensors.tensor(data, t, p, shape).cumsum(dim, exclusive, reverse);
        String what = "cumsum dim " + dim + " exclusive=" + exclusive + " reverse=" + reverse + " of " + t + Shape.of(shape);
        Refs.assertShape(what, shape, y);
        assertEquals(t, y.dtype());
        double[] got = TestTensors.values(y);
        double u = Refs.unitRoundoff(t);
        for (int[] line : Refs.lines(shape, Refs.dim(dim, shape.length))) {
            double acc = 0, abs = 0;
            for (int step = 0; step < line.length; step++) {
                int i = line[reverse ? line.length - 1 - step : step];
                double before = acc;
                acc += data[i];
                if (Double.isFinite(data[i])) abs += Math.abs(data[i]);
                double e = exclusive ? before : acc;
                Refs.assertNear(what, i, e, got[i], 2 * u * Math.abs(e) + 1e-12 * abs, t);
            }
        }
    }

    @Property(tries = 120)
    void integerCumsumIsExactInt64(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll boolean exclusive,
                                   @ForAll boolean reverse, @ForAll Presentation p, @ForAll("intTypes") DType t) {
        int dim = pickDim(shape, seed);
        double[] data = Refs.intData(Refs.numel(shape), seed, -50, 50, t);
        Tensor y = TestTensors.tensor(data, t, p, shape).cumsum(dim, exclusive, reverse);
        assertEquals(DType.INT64, y.dtype());
        long[] expected = new long[data.length];
        for (int[] line : Refs.lines(shape, Refs.dim(dim, shape.length))) {
            long acc = 0;
            for (int step = 0; step < line.length; step++) {
                int i = line[reverse ? line.length - 1 - step : step];
                expected[i] = exclusive ? acc : acc + (long) data[i];
                acc += (long) data[i];
            }
        }
        assertArrayEquals(expected, Refs.longs(y), "cumsum dim " + dim + " of " + t + Shape.of(shape));
    }

    private static int pickDim(int[] shape, long seed) {
        int rank = shape.length;
        return rank == 0 ? 0 : new SplittableRandom(seed).nextInt(rank) - (seed % 2 == 0 ? 0 : rank);
    }

    @Test
    void onnxCumSumExamples() {
        Tensor x = Tensor.of(new double[] {1, 2, 3, 4, 5}, 5);
        assertArrayEquals(new double[] {1, 3, 6, 10, 15}, TestTensors.values(x.cumsum(0)));
        assertArrayEquals(new double[] {0, 1, 3, 6, 10}, TestTensors.values(x.cumsum(0, true, false)));
        assertArrayEquals(new double[] {15, 14, 12, 9, 5}, TestTensors.values(x.cumsum(0, false, true)));
        assertArrayEquals(new double[] {14, 12, 9, 5, 0}, TestTensors.values(x.cumsum(0, true, true)));
        Tensor m = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        assertArrayEquals(new double[] {1, 2, 3, 5, 7, 9}, TestTensors.values(m.cumsum(0)));
        assertArrayEquals(new double[] {1, 3, 6, 4, 9, 15}, TestTensors.values(m.cumsum(-1)));
    }

    @Test
    void float32AccumulatesInDouble() {
        // 2^24 + 1 is not a float: a float accumulator would stall at 2^24.
        float[] f = new float[3];
        f[0] = 1 << 24;
        f[1] = 1;
        f[2] = 1;
        assertEquals((1 << 24) + 2, Tensor.of(f, 3).cumsum(0).getDouble(2));
    }

    @Test
    void boolCountsTrueValues() {
        Tensor b = Tensor.of(new boolean[] {true, false, true, true}, 4);
        assertArrayEquals(new long[] {1, 1, 2, 3}, Refs.longs(b.cumsum(0)));
    }
}
