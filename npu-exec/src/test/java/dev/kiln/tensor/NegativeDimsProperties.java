package dev.kiln.tensor;

import dev.kiln.testing.TestTensors;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every Tensor method taking a dimension accepts [-rank, rank) as PyTorch does and resolves
 * it before building the op: a negative dimension gives exactly its positive counterpart.
 */
class NegativeDimsProperties {

    @Provide
    Arbitrary<int[]> shapes() { return TestTensors.shapes(1, 4, 4); }

    private static void assertSame(String what, Tensor expected, Tensor actual) {
        assertEquals(expected.shape(), actual.shape(), what);
        assertEquals(expected.dtype(), actual.dtype(), what);
        assertArrayEquals(expected.to(DType.FLOAT64).toDoubleArray(), actual.to(DType.FLOAT64).toDoubleArray(), what);
    }

    @Property(tries = 80)
    void negativeDimensionsEqualTheirPositiveCounterparts(@ForAll("shapes") int[] shape, @ForAll boolean keepdim, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int rank = shape.length, dim = r.nextInt(rank), neg = dim - rank;
        Tensor x = TestTensors.tensor(TestTensors.randomData(Shape.of(shape).numel(), seed, 3, false), DType.FLOAT32, shape);
        String at = " dim " + neg + " vs " + dim + " of " + Shape.of(shape);
        BiFunction<Tensor, Integer, Tensor>[] ops = ops(keepdim);
        String[] names = {"softmax", "log_softmax", "sum", "mean", "max", "min", "prod", "argmax", "argmin", "cumsum", "topk",
                "cat", "index_select", "gather", "transpose", "unsqueeze"};
        for (int i = 0; i < ops.length; i++) {
            if (shape[dim] == 0 && (names[i].equals("argmax") || names[i].equals("argmin"))) continue;
            assertSame(names[i] + at, ops[i].apply(x, dim), ops[i].apply(x, neg));
        }
    }

    @SuppressWarnings("unchecked")
    private static BiFunction<Tensor, Integer, Tensor>[] ops(boolean keepdim) {
        return new BiFunction[] {
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.softmax(d),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.logSoftmax(d),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.sum(d, keepdim),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.mean(d, keepdim),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.max(d, keepdim),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.min(d, keepdim),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.prod(new int[] {d}, keepdim),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.argmax(d, keepdim),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.argmin(d, keepdim),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.cumsum(d),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.topk(Math.min(1, t.size(d)), d, true, true)[1],
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> Tensor.cat(d, t, t),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.indexSelect(d, Tensor.arange(t.size(d) - 1, -1, -1)),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.gather(d, Tensor.full(t.size(d) - 1, DType.INT64, t.shape().with(d, Math.min(1, t.size(d))).dims())),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.transpose(d, 0).contiguous(),
                (BiFunction<Tensor, Integer, Tensor>) (t, d) -> t.unsqueeze(d < 0 ? d - 1 : d),
        };
    }

    @Test
    void outOfRangeDimensionsNameTheOpTheDimensionAndTheValidRange() {
        Tensor x = Tensor.zeros(2, 3);
        String[][] cases = {
                {"softmax", "3"}, {"log_softmax", "-3"}, {"sum", "2"}, {"mean", "-3"}, {"max", "2"}, {"argmax", "-3"},
                {"cumsum", "2"}, {"topk", "-3"}, {"cat", "2"}};
        for (String[] c : cases) {
            int d = Integer.parseInt(c[1]);
            Runnable op = switch (c[0]) {
                case "softmax" -> () -> x.softmax(d);
                case "log_softmax" -> () -> x.logSoftmax(d);
                case "sum" -> () -> x.sum(d);
                case "mean" -> () -> x.mean(d);
                case "max" -> () -> x.max(d);
                case "argmax" -> () -> x.argmax(d, false);
                case "cumsum" -> () -> x.cumsum(d);
                case "topk" -> () -> x.topk(1, d, true, true);
                default -> () -> Tensor.cat(d, x, x);
            };
            KilnShapeException e = assertThrows(KilnShapeException.class, op::run, c[0]);
            assertEquals(c[0] + ": dimension " + d + " is out of range for shape [2,3] (expected in [-2, 1])", e.getMessage());
        }
    }
}
