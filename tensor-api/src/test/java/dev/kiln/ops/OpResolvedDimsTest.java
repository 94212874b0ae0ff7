package dev.kiln.ops;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.constraints.IntRange;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The registry's one rule for dimension attributes: an op holds them resolved, in [0, rank),
 * so equal computations are equal values; negative ones are resolved by Tensor and F.
 */
class OpResolvedDimsTest {

    private static TensorMeta f32(int... dims) { return new TensorMeta(DType.FLOAT32, Shape.of(dims)); }

    private static void expect(String message, Executable e) {
        KilnShapeException ex = assertThrows(KilnShapeException.class, e);
        assertEquals(message, ex.getMessage());
    }

    @Test
    void negativeDimensionsAreRejectedByEveryDimOp() {
        TensorMeta x = f32(2, 4);
        String tail = " is out of range for shape [2,4] (rank 2): an op holds a resolved dimension in [0, 1]"
                + "; Tensor and F methods resolve negative ones (here 1)";
        expect("softmax: dimension -1" + tail, () -> new Op.Softmax(-1, false).infer(List.of(x)));
        expect("log_softmax: dimension -1" + tail, () -> new Op.Softmax(-1, true).infer(List.of(x)));
        expect("sum: dimension -1" + tail, () -> new Op.Reduce(ReduceFn.SUM, List.of(-1), false).infer(List.of(x)));
        expect("argmax: dimension -1" + tail, () -> new Op.ArgReduce(true, -1, false, false).infer(List.of(x)));
        expect("cumsum: dimension -1" + tail, () -> new Op.CumSum(-1, false, false).infer(List.of(x)));
        expect("topk: dimension -1" + tail, () -> new Op.TopK(1, -1, true, true).infer(List.of(x)));
        expect("concat: dimension -1" + tail, () -> new Op.Concat(-1).infer(List.of(x, x)));
        TensorMeta idx = new TensorMeta(DType.INT64, Shape.of(2, 4));
        expect("gather_elements: dimension -1" + tail, () -> new Op.GatherElements(-1).infer(List.of(x, idx)));
    }

    @Test
    void dimensionsPastTheRankNameOpDimensionAndRank() {
        expect("softmax: dimension 2 is out of range for shape [2,4] (rank 2): an op holds a resolved dimension in [0, 1]",
                () -> new Op.Softmax(2, false).infer(List.of(f32(2, 4))));
        expect("gather_elements: dimension 5 is out of range for shape [2,4] (rank 2): an op holds a resolved dimension in [0, 1]",
                () -> new Op.GatherElements(5).infer(List.of(f32(2, 4), new TensorMeta(DType.INT64, Shape.of(2, 4)))));
        expect("max: dimension -3 is out of range for shape [2,4] (rank 2): an op holds a resolved dimension in [0, 1]",
                () -> new Op.Reduce(ReduceFn.MAX, List.of(-3), true).infer(List.of(f32(2, 4))));
        expect("concat: zero-dimensional tensors cannot be concatenated", () -> new Op.Concat(0).infer(List.of(f32(), f32())));
    }

    @Test
    void reduceDimensionsMustBeSortedAndDistinct() {
        expect("mean: dimensions [1, 0] must be sorted and distinct (resolved form) for shape [2,4]",
                () -> new Op.Reduce(ReduceFn.MEAN, List.of(1, 0), false).infer(List.of(f32(2, 4))));
        expect("sum: dimensions [0, 0] must be sorted and distinct (resolved form) for shape [2,4]",
                () -> new Op.Reduce(ReduceFn.SUM, List.of(0, 0), false).infer(List.of(f32(2, 4))));
    }

    @Property(tries = 100)
    void everyResolvedDimensionIsAccepted(@ForAll @IntRange(min = 0, max = 4) int rank, @ForAll @IntRange(min = 0, max = 4) int dim) {
        int[] dims = new int[rank];
        java.util.Arrays.fill(dims, 3);
        TensorMeta x = f32(dims);
        boolean valid = dim < Math.max(rank, 1);
        List<Executable> ops = List.of(
                () -> new Op.Softmax(dim, false).infer(List.of(x)),
                () -> new Op.ArgReduce(false, dim, true, false).infer(List.of(x)),
                () -> new Op.CumSum(dim, true, false).infer(List.of(x)),
                () -> new Op.TopK(1, dim, true, true).infer(List.of(x)),
                () -> new Op.Reduce(ReduceFn.PROD, List.of(dim), false).infer(List.of(x)));
        for (Executable op : ops) {
            if (valid) {
                try {
                    op.execute();
                } catch (Throwable t) {
                    throw new AssertionError("dimension " + dim + " of rank " + rank + " rejected", t);
                }
            } else {
                assertThrows(KilnShapeException.class, op);
            }
        }
    }

    // ---------------------------------------------------------------- rope tables

    @Test
    void ropeTablesMustBeFloatingPointOfOneDtype() {
        TensorMeta x = f32(2, 3, 8), table = f32(3, 4);
        TensorMeta intTable = new TensorMeta(DType.INT64, Shape.of(3, 4)), f64Table = new TensorMeta(DType.FLOAT64, Shape.of(3, 4));
        KilnTypeException ints = assertThrows(KilnTypeException.class, () -> new Op.Rope(false).infer(List.of(x, intTable, intTable)));
        assertEquals("rope: cos and sin must be floating-point tensors of one dtype (x is float32[2,3,8]), got cos int64[3,4]"
                + " and sin int64[3,4]", ints.getMessage());
        KilnTypeException mixed = assertThrows(KilnTypeException.class, () -> new Op.Rope(true).infer(List.of(x, table, f64Table)));
        assertEquals("rope: cos and sin must be floating-point tensors of one dtype (x is float32[2,3,8]), got cos float32[3,4]"
                + " and sin float64[3,4]", mixed.getMessage());
        // Wider (or x's own) floating tables are accepted; the result keeps x's dtype.
        TensorMeta bf16 = new TensorMeta(DType.BFLOAT16, Shape.of(2, 3, 8));
        assertEquals(List.of(bf16), new Op.Rope(false).infer(List.of(bf16, table, table)));
        assertEquals(List.of(x), new Op.Rope(false).infer(List.of(x, f64Table, f64Table)));
    }

    // ---------------------------------------------------------------- arange

    @Test
    void integerArangeHoldsExactStartAndStep() {
        long start = (1L << 60) + 1;
        Op.Arange exact = Op.Arange.ofLongs(start, 3, 5, DType.INT64);
        assertEquals(start, exact.exactStart());
        assertEquals(3, exact.exactStep());
        assertEquals((double) start, exact.start());
        // Different long starts that round to one double stay different ops.
        assertEquals(false, exact.equals(Op.Arange.ofLongs(start + 1, 3, 5, DType.INT64)));
        // Double bounds give the same canonical value as long bounds where both are exact.
        assertEquals(Op.Arange.ofLongs(-7, 2, 4, DType.INT32), new Op.Arange(-7.0, 2.0, 4, DType.INT32));
        // Float dtypes and fractional bounds compute in double and hold no exact part.
        assertEquals(new Op.Arange(1, 2, 3, DType.FLOAT32, 0, 0), Op.Arange.ofLongs(1, 2, 3, DType.FLOAT32));
        assertEquals(0, new Op.Arange(0.5, 1, 3, DType.INT64).exactStart());
        assertThrows(IllegalArgumentException.class, () -> new Op.Arange(1, 1, 3, DType.INT64, 2, 1));
        assertThrows(IllegalArgumentException.class, () -> new Op.Arange(0.5, 1, 3, DType.FLOAT32, 1, 0));
    }
}
