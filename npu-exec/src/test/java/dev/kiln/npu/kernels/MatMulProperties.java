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
import net.jqwik.api.Tuple;
import net.jqwik.api.constraints.IntRange;

import java.util.Arrays;
import java.util.SplittableRandom;

/** matmul against a naive double-precision reference over random shapes, layouts and dtypes. */
class MatMulProperties {

    @Provide
    Arbitrary<Integer> dims() {
        // Mostly small, sometimes past the micro-kernel tile (8 x 48 floats) and vector width.
        return Arbitraries.frequencyOf(
                Tuple.of(1, Arbitraries.just(0)),
                Tuple.of(3, Arbitraries.just(1)),
                Tuple.of(12, Arbitraries.integers().between(2, 20)),
                Tuple.of(3, Arbitraries.integers().between(21, 70)));
    }

    @Provide
    Arbitrary<DType> dtypes() {
        return Arbitraries.frequencyOf(
                Tuple.of(6, Arbitraries.just(DType.FLOAT32)),
                Tuple.of(2, Arbitraries.just(DType.FLOAT64)),
                Tuple.of(1, Arbitraries.just(DType.FLOAT16)),
                Tuple.of(1, Arbitraries.just(DType.BFLOAT16)),
                Tuple.of(1, Arbitraries.just(DType.INT32)),
                Tuple.of(1, Arbitraries.just(DType.INT64)),
                Tuple.of(1, Arbitraries.of(DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.UINT32, DType.UINT64)));
    }

    @Property(tries = 200)
    void matchesDoubleReference(@ForAll @IntRange(min = 1, max = 4) int rankA, @ForAll @IntRange(min = 1, max = 4) int rankB,
                                @ForAll("dims") int m, @ForAll("dims") int k, @ForAll("dims") int n,
                                @ForAll @IntRange(min = 0, max = 3) int batch0, @ForAll @IntRange(min = 0, max = 3) int batch1,
                                @ForAll("dtypes") DType dtype, @ForAll Presentation pa, @ForAll Presentation pb,
                                @ForAll boolean nonFinite, @ForAll long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] batch = {batch0, batch1};
        if (r.nextInt(4) == 0) batch = new int[] {1 + batch0, 1 + batch1}; // keep most cases non-empty
        int[] aShape = matrixShape(rankA, batch, m, k, true, r);
        int[] bShape = matrixShape(rankB, batch, k, n, false, r);
        checkCase(aShape, bShape, dtype, pa, pb, nonFinite, seed);
    }

    @Property(tries = 60)
    void packedProductsMatchReference(@ForAll @IntRange(min = 17, max = 60) int m, @ForAll("dims") int k, @ForAll("dims") int n,
                                      @ForAll @IntRange(min = 0, max = 3) int batch, @ForAll Presentation pa, @ForAll Presentation pb,
                                      @ForAll boolean nonFinite, @ForAll long seed) {
        // More than FloatGemv.MAX_ROWS rows and more than one column: the packed float32 GEMM.
        int[] aShape = batch == 0 ? new int[] {m, k} : new int[] {batch, m, k};
        checkCase(aShape, new int[] {k, Math.max(n, 2)}, DType.FLOAT32, pa, pb, nonFinite, seed);
    }

    @Property(tries = 60)
    void linearLayerShapes(@ForAll @IntRange(min = 1, max = 3) int lead, @ForAll("dims") int seq, @ForAll("dims") int in,
                           @ForAll("dims") int out, @ForAll Presentation px, @ForAll long seed) {
        // x [lead, seq, in] @ w.mT() with w [out, in]: the batch folds into M when x allows it.
        Tensor x = TestTensors.tensor(TestTensors.randomData((long) lead * seq * in, seed, 2, false), DType.FLOAT32, px, lead, seq, in);
        Tensor w = TestTensors.tensor(TestTensors.randomData((long) out * in, seed + 1, 2, false), DType.FLOAT32, out, in);
        MatMulReference.assertMatches("x @ w.mT()", MatMulReference.of(x, w.mT()), x.matmul(w.mT()));
    }

    @Property(tries = 60)
    void fewRowsAgainstTransposedWeightsOfWholeVectors(@ForAll @IntRange(min = 1, max = 16) int m, @ForAll("wholeVectorK") int k,
                                                       @ForAll @IntRange(min = 1, max = 300) int n, @ForAll @IntRange(min = 0, max = 3) int batch,
                                                       @ForAll boolean batchedWeights, @ForAll Presentation px, @ForAll long seed) {
        // Decode-sized products (M <= 16) with K a multiple of the vector: the unpacked dot form, 16 outputs summed together.
        int[] xShape = batch == 0 ? new int[] {m, k} : new int[] {batch, m, k};
        int[] wShape = batch > 0 && batchedWeights ? new int[] {batch, n, k} : new int[] {n, k};
        Tensor x = TestTensors.tensor(TestTensors.randomData((long) Math.max(1, batch) * m * k, seed, 2, false), DType.FLOAT32, px, xShape);
        long wSize = (long) (wShape.length == 3 ? batch : 1) * n * k;
        Tensor w = TestTensors.tensor(TestTensors.randomData(wSize, seed + 1, 2, false), DType.FLOAT32, wShape);
        MatMulReference.assertMatches("x " + java.util.Arrays.toString(xShape) + " @ w.mT() " + java.util.Arrays.toString(wShape),
                MatMulReference.of(x, w.mT()), x.matmul(w.mT()));
    }

    @Property(tries = 30)
    void manyRowsAgainstOneColumnOfWholeVectorK(@ForAll @IntRange(min = 17, max = 300) int m, @ForAll("wholeVectorK") int k,
                                                @ForAll @IntRange(min = 0, max = 2) int batch, @ForAll Presentation pa, @ForAll long seed) {
        // N == 1: B's column against A's rows, the same dot form with A's rows as the weights.
        int[] aShape = batch == 0 ? new int[] {m, k} : new int[] {batch, m, k};
        checkCase(aShape, new int[] {k, 1}, DType.FLOAT32, pa, Presentation.CONTIGUOUS, false, seed);
    }

    @Provide
    Arbitrary<Integer> wholeVectorK() { return Arbitraries.of(16, 32, 48, 64, 512, 1024); }

    @Property(tries = 25)
    void transposedWeightsPastAVectorAndAKSliceMatchReference(@ForAll @IntRange(min = 17, max = 40) int m,
                                                              @ForAll @IntRange(min = 1, max = 600) int k,
                                                              @ForAll @IntRange(min = 1, max = 150) int n, @ForAll long seed) {
        // B = w.mT() (a linear layer's weights) is packed column by column along K: sizes across vector widths, panels and K slices.
        Tensor x = TestTensors.tensor(TestTensors.randomData((long) m * k, seed, 2, false), DType.FLOAT32, Presentation.CONTIGUOUS, m, k);
        Tensor w = TestTensors.tensor(TestTensors.randomData((long) n * k, seed + 1, 2, false), DType.FLOAT32, Presentation.CONTIGUOUS, n, k);
        MatMulReference.assertMatches("x " + m + "x" + k + " @ w.mT() " + k + "x" + n, MatMulReference.of(x, w.mT()), x.matmul(w.mT()));
    }

    /** Shape of rank {@code rank}: batch dims are a suffix of {@code batch} with some set to 1; 1-D is just the inner dim. */
    private static int[] matrixShape(int rank, int[] batch, int rows, int cols, boolean left, SplittableRandom r) {
        if (rank == 1) return new int[] {left ? cols : rows};
        int[] s = new int[rank];
        for (int i = 0; i < rank - 2; i++) {
            int fromBatch = batch.length - (rank - 2) + i;
            s[i] = fromBatch >= 0 && r.nextInt(3) != 0 ? batch[fromBatch] : 1;
        }
        s[rank - 2] = rows;
        s[rank - 1] = cols;
        return s;
    }

    static void checkCase(int[] aShape, int[] bShape, DType dtype, Presentation pa, Presentation pb, boolean nonFinite, long seed) {
        double scale = switch (dtype) {
            case INT32 -> 3e9;   // products and sums overflow int32: results must wrap like Java
            case INT64, UINT64 -> 5e9;   // products overflow int64
            case INT8, UINT8, INT16, UINT16, UINT32 -> 300; // and the narrow types
            default -> 2;
        };
        boolean floats = dtype.isFloatingPoint();
        Tensor a = TestTensors.tensor(TestTensors.randomData(Shape.of(aShape).numel(), seed, scale, nonFinite && floats), dtype, pa, aShape);
        Tensor b = TestTensors.tensor(TestTensors.randomData(Shape.of(bShape).numel(), seed ^ 0x5bd1e995L, scale, nonFinite && floats), dtype, pb, bShape);
        String what = "matmul " + Arrays.toString(aShape) + " " + pa + " @ " + Arrays.toString(bShape) + " " + pb + " " + dtype;
        MatMulReference.assertMatches(what, MatMulReference.of(a, b), a.matmul(b));
    }
}
