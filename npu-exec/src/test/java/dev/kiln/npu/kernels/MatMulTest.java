package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import dev.kiln.testing.TestTensors.Presentation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

class MatMulTest {

    private static Tensor random(DType dtype, Presentation p, long seed, int... shape) {
        double scale = dtype == DType.INT32 ? 3e9 : dtype == DType.INT64 ? 5e9 : 2;
        return TestTensors.tensor(TestTensors.randomData(Shape.of(shape).numel(), seed, scale, false), dtype, p, shape);
    }

    /** Zeros built without kernels (only matmul is under test). */
    private static Tensor zeros(DType dtype, int... shape) {
        return TestTensors.tensor(new double[Math.toIntExact(Shape.of(shape).numel())], dtype, shape);
    }

    private static void check(Tensor a, Tensor b) {
        MatMulReference.assertMatches("matmul " + a.shape() + " @ " + b.shape() + " " + a.dtype(), MatMulReference.of(a, b), a.matmul(b));
    }

    /**
     * Widths whose last panel is partial (one or two vectors of a three-vector panel, or
     * nearly full), large enough to be split between workers at a vector boundary, with B
     * contiguous and as a transposed view; each product against the double reference.
     */
    @Test
    void partialPanelsAndSplitsBetweenWorkersAreExact() {
        for (int n : new int[] {16, 32, 40, 80, 496, 512, 528, 1000}) {
            for (boolean transposed : new boolean[] {false, true}) {
                Tensor a = random(DType.FLOAT32, Presentation.CONTIGUOUS, n, 72, 200);
                Tensor b = transposed ? random(DType.FLOAT32, Presentation.CONTIGUOUS, n + 1, n, 200).mT()
                        : random(DType.FLOAT32, Presentation.CONTIGUOUS, n + 1, 200, n);
                check(a, b);
            }
        }
    }

    /**
     * Operands in heap memory (a segment no byte buffer can view) take the packing's plain
     * segment reads; they give the same bits as the same operands in native memory.
     */
    @Test
    void heapOperandsPackAsNativeOnesDo() {
        for (boolean transposed : new boolean[] {false, true}) {
            Tensor a = random(DType.FLOAT32, Presentation.CONTIGUOUS, 7, 72, 200);
            Tensor b = transposed ? random(DType.FLOAT32, Presentation.CONTIGUOUS, 8, 130, 200).mT()
                    : random(DType.FLOAT32, Presentation.CONTIGUOUS, 8, 200, 130);
            Tensor heapA = onHeap(a), heapB = onHeap(transposed ? b.mT() : b);
            if (transposed) heapB = heapB.mT();
            assertArrayEquals(a.matmul(b).toFloatArray(), heapA.matmul(heapB).toFloatArray());
        }
    }

    private static Tensor onHeap(Tensor contiguous) {
        java.lang.foreign.MemorySegment heap = java.lang.foreign.MemorySegment.ofArray(contiguous.toFloatArray());
        return Tensor.fromStorage(DType.FLOAT32, Layout.contiguous(contiguous.shape()), dev.kiln.tensor.Storage.wrap(heap));
    }

    @Test
    void smallExampleByHand() {
        Tensor a = Tensor.of(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor b = Tensor.of(new float[] {7, 8, 9, 10, 11, 12}, 3, 2);
        Tensor c = a.matmul(b);
        assertEquals(Shape.of(2, 2), c.shape());
        assertArrayEquals(new float[] {58, 64, 139, 154}, c.toFloatArray());
    }

    @Test
    void oneDimensionalOperandsArePromotedAndRemoved() {
        Tensor v = Tensor.vector(1, 2, 3);
        Tensor m = Tensor.of(new float[] {1, 0, 0, 1, 1, 1}, 3, 2);
        Tensor dot = v.matmul(v);
        assertEquals(Shape.SCALAR, dot.shape());
        assertEquals(14f, dot.toFloatArray()[0]);
        Tensor row = v.matmul(m);
        assertEquals(Shape.of(2), row.shape());
        assertArrayEquals(new float[] {4, 5}, row.toFloatArray());
        Tensor col = m.mT().matmul(v);
        assertEquals(Shape.of(2), col.shape());
        assertArrayEquals(new float[] {4, 5}, col.toFloatArray());
        check(random(DType.FLOAT32, Presentation.CONTIGUOUS, 1, 5), random(DType.FLOAT32, Presentation.TRANSPOSED, 2, 3, 5, 4));
        check(random(DType.FLOAT32, Presentation.STRIDED, 3, 2, 3, 7, 5), random(DType.FLOAT32, Presentation.OFFSET, 4, 5));
        check(random(DType.FLOAT32, Presentation.STRIDED, 5, 300), random(DType.FLOAT32, Presentation.STRIDED, 6, 300));
    }

    /**
     * Crosses every blocking boundary of every element type (K past kc, M past mc, ragged
     * mr and nr tiles, several B slabs) with the product split between both workers,
     * along M in the first case and along N in the second.
     */
    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"FLOAT32", "FLOAT64", "FLOAT16", "BFLOAT16", "INT32", "INT64"})
    void largeProductCrossesBlocksAndWorkers(DType dtype) {
        // Blocks are kc 512 deep for every type, mc 192 rows for float32 and the half types, 96 for the others.
        int m = 200, k = 600, n = 100;
        Tensor a = random(dtype, Presentation.CONTIGUOUS, 10, m, k);
        check(a, random(dtype, Presentation.CONTIGUOUS, 11, k, n));
        check(a, random(dtype, Presentation.CONTIGUOUS, 12, n, k).mT());
        check(random(dtype, Presentation.TRANSPOSED, 13, 30, k), random(dtype, Presentation.STRIDED, 14, k, 150));
    }

    @Test
    void wideProductCrossesThePackedColumnSlab() {
        check(random(DType.FLOAT32, Presentation.CONTIGUOUS, 20, 9, 20), random(DType.FLOAT32, Presentation.CONTIGUOUS, 21, 20, 4200));
        check(random(DType.FLOAT32, Presentation.CONTIGUOUS, 24, 200, 20), random(DType.FLOAT32, Presentation.TRANSPOSED, 25, 20, 2100));
        check(random(DType.FLOAT64, Presentation.CONTIGUOUS, 22, 70, 20), random(DType.FLOAT64, Presentation.TRANSPOSED, 23, 20, 1400));
    }

    @Test
    void batchesSplitAcrossWorkers() {
        // Three entries for two workers: each product is cut in two.
        check(random(DType.FLOAT32, Presentation.CONTIGUOUS, 30, 3, 70, 150), random(DType.FLOAT32, Presentation.TRANSPOSED, 31, 3, 150, 90));
        // Many entries, broadcast on both sides.
        check(random(DType.FLOAT32, Presentation.OFFSET, 32, 4, 1, 20, 33), random(DType.FLOAT32, Presentation.CONTIGUOUS, 33, 1, 5, 33, 40));
        // A shared right operand folds the batch into M, also through a transposed left view.
        check(random(DType.FLOAT32, Presentation.CONTIGUOUS, 34, 2, 3, 50, 64), random(DType.FLOAT32, Presentation.CONTIGUOUS, 35, 64, 100).mT().mT());
        check(random(DType.FLOAT32, Presentation.TRANSPOSED, 36, 2, 3, 50, 64), random(DType.FLOAT32, Presentation.CONTIGUOUS, 37, 1, 1, 64, 100));
        check(random(DType.FLOAT16, Presentation.CONTIGUOUS, 38, 5, 17, 64), random(DType.FLOAT16, Presentation.CONTIGUOUS, 39, 100, 64).mT());
    }

    @Test
    void vectorMatrixProductsInEveryLayout() {
        for (Presentation pa : Presentation.values()) {
            for (Presentation pb : Presentation.values()) {
                check(random(DType.FLOAT32, pa, 40, 1, 64), random(DType.FLOAT32, pb, 41, 64, 64));
                check(random(DType.FLOAT32, pa, 42, 1, 1000), random(DType.FLOAT32, pb, 43, 1000, 77));
                check(random(DType.FLOAT32, pa, 44, 77, 1000), random(DType.FLOAT32, pb, 45, 1000, 1));
                check(random(DType.FLOAT32, pa, 46, 4, 1, 70), random(DType.FLOAT32, pb, 47, 4, 70, 3));
            }
        }
        // Decode-step linear layer: x [1, 64] @ w.mT().
        check(random(DType.FLOAT32, Presentation.CONTIGUOUS, 48, 1, 64), random(DType.FLOAT32, Presentation.CONTIGUOUS, 49, 64, 64).mT());
        check(random(DType.FLOAT32, Presentation.CONTIGUOUS, 50, 1, 4096), random(DType.FLOAT32, Presentation.CONTIGUOUS, 51, 1000, 4096).mT());
    }

    /** A view of {@code base}'s storage with the given strides and offset (negative and zero strides allowed). */
    private static Tensor view(Tensor base, long offset, long[] strides, int... shape) {
        return Tensor.fromStorage(base.dtype(), new Layout(Shape.of(shape), strides, offset), base.storage());
    }

    @Test
    void negativeAndZeroStridesAreRead() {
        for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.INT64}) {
            Tensor storage = random(dtype, Presentation.CONTIGUOUS, 70, 40 * 50);
            // Rows and columns both reversed: element (i, p) at 1999 - 50 i - p.
            Tensor reversed = view(storage, 40 * 50 - 1, new long[] {-50, -1}, 40, 50);
            // Transposed and reversed along K.
            Tensor reversedT = view(storage, 49, new long[] {-1, 50}, 50, 30);
            // Broadcast: every row of A the same, every column of B the same.
            Tensor sameRows = view(storage, 7, new long[] {0, 1}, 40, 50);
            Tensor sameColumns = view(storage, 3, new long[] {2, 0}, 50, 30);
            check(reversed, reversedT);
            check(sameRows, sameColumns);
            check(reversed, sameColumns);
            check(view(storage, 1999, new long[] {-50, -1}, 3, 50), reversedT);
            check(view(storage, 100, new long[] {0, -2}, 1, 50), sameColumns);
        }
    }

    @Test
    void emptyInnerDimensionGivesZeros() {
        for (DType dtype : new DType[] {DType.FLOAT32, DType.FLOAT64, DType.BFLOAT16, DType.INT32}) {
            Tensor c = random(dtype, Presentation.CONTIGUOUS, 1, 2, 3, 0).matmul(random(dtype, Presentation.CONTIGUOUS, 2, 0, 4));
            assertEquals(Shape.of(2, 3, 4), c.shape());
            for (double v : TestTensors.values(c)) assertEquals(0.0, v);
        }
        Tensor dot = zeros(DType.FLOAT32, 0).matmul(zeros(DType.FLOAT32, 0));
        assertEquals(Shape.SCALAR, dot.shape());
        assertArrayEquals(new double[] {0.0}, TestTensors.values(dot));
    }

    @Test
    void emptyOuterDimensionsGiveEmptyResults() {
        assertEquals(Shape.of(0, 4), zeros(DType.FLOAT32, 0, 3).matmul(zeros(DType.FLOAT32, 3, 4)).shape());
        assertEquals(Shape.of(2, 0), zeros(DType.FLOAT32, 2, 3).matmul(zeros(DType.FLOAT32, 3, 0)).shape());
        assertEquals(Shape.of(0, 2, 4), zeros(DType.FLOAT32, 0, 2, 3).matmul(zeros(DType.FLOAT32, 3, 4)).shape());
    }

    @Test
    void nonFiniteValuesPropagateWithoutSkippingZeros() {
        float inf = Float.POSITIVE_INFINITY;
        // inf * 0 is NaN: a kernel that skips zero products would give 0.
        Tensor a = Tensor.of(new float[] {inf, 1, 0, 0}, 2, 2);
        Tensor b = Tensor.of(new float[] {0, 1, 0, 1}, 2, 2);
        float[] c = a.matmul(b).toFloatArray();
        assertTrue(Float.isNaN(c[0]));
        assertEquals(inf, c[1]);
        assertEquals(0f, c[2]);
        assertEquals(0f, c[3]);
        float[] row = Tensor.vector(inf, 1).matmul(b).toFloatArray();
        assertTrue(Float.isNaN(row[0]));
        assertTrue(Float.isNaN(Tensor.vector(Float.NaN, 0).matmul(Tensor.vector(0, 0)).toFloatArray()[0]));
        Tensor big = random(DType.FLOAT32, Presentation.CONTIGUOUS, 60, 40, 200);
        check(TestTensors.tensor(TestTensors.randomData(40 * 200, 61, 2, true), DType.FLOAT32, 40, 200),
                TestTensors.tensor(TestTensors.randomData(200 * 70, 62, 2, true), DType.FLOAT32, 200, 70));
        check(big, TestTensors.tensor(TestTensors.randomData(200 * 70, 63, 2, true), DType.FLOAT32, Presentation.TRANSPOSED, 200, 70));
    }

    @Test
    void integersWrapLikeJava() {
        int big = 1 << 30;
        Tensor a = Tensor.of(new int[] {big, big, 3, -4}, 2, 2);
        Tensor b = Tensor.of(new int[] {4, 1, 4, 1}, 2, 2);
        assertArrayEquals(new int[] {big * 4 + big * 4, big + big, 12 - 16, 3 - 4}, a.matmul(b).toIntArray());
        Tensor la = Tensor.of(new long[] {Long.MAX_VALUE, 3}, 1, 2);
        Tensor lb = Tensor.of(new long[] {2, 5}, 2, 1);
        assertArrayEquals(new long[] {Long.MAX_VALUE * 2 + 15}, la.matmul(lb).toLongArray());
    }

    @Test
    void halfTypesRoundTheFloat32Result() {
        // 1 + 2^-11 is not a float16: the exact float32 sum must round to nearest even, once.
        Tensor a = TestTensors.tensor(new double[] {1, 0x1p-11}, DType.FLOAT16, 1, 2);
        Tensor b = TestTensors.tensor(new double[] {1, 1}, DType.FLOAT16, 2, 1);
        assertArrayEquals(new double[] {1.0}, TestTensors.values(a.matmul(b)));
        Tensor c = TestTensors.tensor(new double[] {1, 0x1p-11, 0x1p-11}, DType.FLOAT16, 1, 3);
        Tensor d = TestTensors.tensor(new double[] {1, 1, 1}, DType.FLOAT16, 3, 1);
        assertArrayEquals(new double[] {1 + 0x1p-10}, TestTensors.values(c.matmul(d)));
    }

    @Test
    void mismatchedInnerDimensionsAreRejected() {
        var e = assertThrows(KilnShapeException.class, () -> zeros(DType.FLOAT32, 2, 3).matmul(zeros(DType.FLOAT32, 4, 5)));
        assertEquals("matmul: shapes [2,3] and [4,5] cannot multiply: dimension 1 of the left (3) must equal dimension 0 of the right (4)",
                e.getMessage());
        var e1 = assertThrows(KilnShapeException.class, () -> zeros(DType.FLOAT32, 3).matmul(zeros(DType.FLOAT32, 2, 4, 5)));
        assertEquals("matmul: shapes [3] and [2,4,5] cannot multiply: dimension 0 of the left (3) must equal dimension 1 of the right (4)",
                e1.getMessage());
        var e2 = assertThrows(KilnShapeException.class, () -> zeros(DType.FLOAT32, 2, 3).matmul(zeros(DType.FLOAT32, 4)));
        assertEquals("matmul: shapes [2,3] and [4] cannot multiply: dimension 1 of the left (3) must equal dimension 0 of the right (4)",
                e2.getMessage());
    }

    @Test
    void incompatibleBatchDimensionsAreRejected() {
        var e = assertThrows(KilnShapeException.class, () -> zeros(DType.FLOAT32, 2, 2, 3).matmul(zeros(DType.FLOAT32, 3, 3, 4)));
        assertEquals("matmul: shapes [2] and [3] do not broadcast: dimension -1 is 2 vs 3", e.getMessage());
    }

    @Test
    void scalarsMixedDtypesAndBoolAreRejected() {
        var e = assertThrows(KilnShapeException.class, () -> Tensor.scalar(2f).matmul(zeros(DType.FLOAT32, 2)));
        assertEquals("matmul: both arguments need at least 1 dimension, got shapes [] and [2]", e.getMessage());
        var e1 = assertThrows(KilnTypeException.class, () -> zeros(DType.FLOAT32, 2, 2).matmul(zeros(DType.FLOAT64, 2, 2)));
        assertEquals("matmul: expected both operands to have the same dtype, got float32 and float64", e1.getMessage());
        var e2 = assertThrows(KilnTypeException.class, () -> zeros(DType.BOOL, 2, 2).matmul(zeros(DType.BOOL, 2, 2)));
        assertEquals("matmul: not supported for bool tensors", e2.getMessage());
    }
}
