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

import java.util.Arrays;
import java.util.Comparator;
import java.util.SplittableRandom;
import java.util.stream.IntStream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/** topk against a full stable sort of each line: order, ties by index, NaN largest. */
class TopKProperties {

    @Provide
    Arbitrary<int[]> shapes() { return Arbitraries.oneOf(TestTensors.shapes(0, 4, 6), TestTensors.shapes(1, 2, 70)); }

    @Provide
    Arbitrary<DType> types() {
        return Arbitraries.of(DType.FLOAT32, DType.FLOAT64, DType.FLOAT16, DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.INT32,
                DType.UINT32, DType.INT64, DType.UINT64, DType.BOOL);
    }

    @Property(tries = 200)
    void topkMatchesSortedLines(@ForAll("shapes") int[] shape, @ForAll long seed, @ForAll boolean largest,
                                @ForAll boolean sorted, @ForAll Presentation p, @ForAll("types") DType t,
                                @ForAll boolean nonFinite) {
        SplittableRandom r = new SplittableRandom(seed);
        int dim = shape.length == 0 ? 0 : r.nextInt(shape.length);
        int size = shape.length == 0 ? 1 : shape[dim];
        int k = r.nextInt(size + 1);
        double[] data = ArgReduceProperties.tiedData(Refs.numel(shape), seed, t, nonFinite);
        Tensor[] out = TestTensors.tensor(data, t, p, shape).topk(k, dim, largest, sorted);
        String what = "topk k=" + k + " dim " + dim + " largest=" + largest + " of " + t + Shape.of(shape) + " " + p;
        int[] outShape = shape.length == 0 ? shape : Refs.withDim(shape, dim, k);
        Refs.assertShape(what, outShape, out[0]);
        Refs.assertShape(what, outShape, out[1]);
        assertEquals(t, out[0].dtype());
        assertEquals(DType.INT64, out[1].dtype());
        double[] values = TestTensors.values(out[0]);
        long[] indices = Refs.longs(out[1]);
        int[][] in = Refs.lines(shape, dim), outLines = Refs.lines(outShape, dim);
        for (int l = 0; l < in.length; l++) {
            int[] line = in[l];
            Comparator<Integer> rank = (i, j) -> compare(data[line[i]], data[line[j]]);
            if (largest) rank = rank.reversed();
            Integer[] order = IntStream.range(0, line.length).boxed().sorted(rank).toArray(Integer[]::new); // stable: ties by index
            for (int j = 0; j < k; j++) {
                int o = outLines[l][j];
                double e = data[line[order[j]]];
                assertEquals(order[j].longValue(), indices[o], what + ": index at line " + l + " position " + j);
                assertEquals(Double.doubleToLongBits(e), Double.doubleToLongBits(values[o]), what + ": value bits at " + o);
            }
        }
    }

    /** NaN ranks above +inf; -0.0 equals 0.0. */
    private static int compare(double a, double b) {
        if (Double.isNaN(a) || Double.isNaN(b)) return Boolean.compare(Double.isNaN(a), Double.isNaN(b));
        return a < b ? -1 : a > b ? 1 : 0;
    }

    @Test
    void nanIsLargestAndTiesKeepIndexOrder() {
        Tensor x = Tensor.of(new float[] {2, Float.NaN, 5, 2, Float.NEGATIVE_INFINITY, 5}, 6);
        Tensor[] top = x.topk(4);
        assertArrayEquals(new long[] {1, 2, 5, 0}, Refs.longs(top[1]));
        assertArrayEquals(new double[] {Double.NaN, 5, 5, 2}, TestTensors.values(top[0]));
        Tensor[] bottom = x.topk(3, 0, false, true);
        assertArrayEquals(new long[] {4, 0, 3}, Refs.longs(bottom[1]));
    }

    @Test
    void int64ValuesKeepEveryBit() {
        long a = (1L << 62) + 3, b = (1L << 62) + 1;
        Tensor[] top = Tensor.of(new long[] {b, a, -a}, 3).topk(2);
        assertArrayEquals(new long[] {a, b}, Refs.longs(top[0]));
        assertArrayEquals(new long[] {1, 0}, Refs.longs(top[1]));
    }

    @Test
    void largeRowSmallK() {
        int n = 50_000;
        float[] f = new float[n];
        for (int i = 0; i < n; i++) f[i] = (float) Math.sin(i * 0.37);
        Tensor[] top = Tensor.of(f, n).topk(5);
        Integer[] order = IntStream.range(0, n).boxed().sorted((i, j) -> Float.compare(f[j], f[i])).toArray(Integer[]::new);
        assertArrayEquals(Arrays.stream(order, 0, 5).mapToLong(Integer::longValue).toArray(), Refs.longs(top[1]));
    }
}
