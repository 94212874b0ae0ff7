package dev.kiln.npu.kernels;

import dev.kiln.nn.F;
import dev.kiln.ops.BinaryFn;
import dev.kiln.ops.Dispatch;
import dev.kiln.ops.Op;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnException;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Examples: semantics PyTorch users rely on, layouts the properties rarely draw, large (multi-core) runs, errors. */
class PointwiseTest {

    /** exp and silu run scalar twins before the JIT has compiled their vector loops: the same bits (see {@code ScalarTwin}). */
    @Test
    void largeTransposedOperandsGiveTheElementsTheirStridesSay() {
        // [2048, 2050] operands at columns 2048 elements (8 KiB) apart are copied in blocks before the kernel runs.
        int rows = 2048, cols = 2050;
        Tensor base = Tensor.randn(31, cols, rows), y = Tensor.randn(32, rows, cols);
        float[] b = base.toFloatArray(), yv = y.toFloatArray(), sum = new float[rows * cols], cast = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                sum[r * cols + c] = b[c * rows + r] + yv[r * cols + c];
                cast[r * cols + c] = (float) (double) b[c * rows + r];
            }
        }
        Tensor xt = base.transpose(0, 1);
        assertArrayEquals(sum, xt.add(y).toFloatArray(), "binary");
        assertArrayEquals(sum, y.add(xt).toFloatArray(), "binary, the transpose second");
        assertArrayEquals(cast, xt.to(DType.FLOAT64).to(DType.FLOAT32).toFloatArray(), "cast");
    }

    @Test
    void expAndSiluScalarTwinsGiveTheVectorBits() {
        java.util.Random r = new java.util.Random(11);
        float[] values = new float[6000];
        for (int i = 0; i < values.length; i++) values[i] = (float) (r.nextGaussian() * (i % 3 == 0 ? 40 : 3));
        float[] special = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 0f, -0f, Float.MIN_VALUE, -Float.MIN_VALUE,
                -110f, -125f, 88.8f, 100f, -87.5f, -104f};
        System.arraycopy(special, 0, values, 0, special.length);
        Tensor x = Tensor.of(values, 60, 100);
        for (Tensor in : List.of(x, x.mT())) {
            for (java.util.function.UnaryOperator<Tensor> op : List.<java.util.function.UnaryOperator<Tensor>>of(Tensor::exp, Tensor::silu)) {
                float[][] out = new float[2][];
                ScalarTwin.forcing(false, () -> out[0] = op.apply(in).toFloatArray());
                ScalarTwin.forcing(true, () -> out[1] = op.apply(in).toFloatArray());
                for (int i = 0; i < out[0].length; i++) {
                    int at = i;
                    assertEquals(Float.floatToIntBits(out[0][at]), Float.floatToIntBits(out[1][at]), () -> "element " + at);
                }
            }
        }
    }

    @Test
    void nanPropagationAndEdgeSemantics() {
        Tensor a = Tensor.vector(Float.NaN, 1, -0f, 3);
        Tensor b = Tensor.vector(1, Float.NaN, 0f, 2);
        assertArrayEquals(new float[] {Float.NaN, Float.NaN, -0f, 2}, a.minimum(b).toFloatArray());
        assertArrayEquals(new float[] {Float.NaN, Float.NaN, 0f, 3}, a.maximum(b).toFloatArray());
        assertArrayEquals(new float[] {Float.NaN, 1, 0, 3}, a.relu().toFloatArray());
        assertArrayEquals(new float[] {Float.NaN, 1, 1, 2}, a.clamp(1, 2).toFloatArray());
        assertArrayEquals(new float[] {5, 5, 5, 5}, Tensor.vector(-1, 0, 7, 9).clamp(6, 5).toFloatArray(), "min > max gives max");
        assertArrayEquals(new boolean[] {false, false, true, false}, a.eq(b).toBooleanArray());
        assertArrayEquals(new boolean[] {true, true, false, true}, a.ne(b).toBooleanArray());
        assertArrayEquals(new boolean[] {false, false, true, false}, a.logicalNot().toBooleanArray());
    }

    @Test
    void integerArithmeticWrapsAndDividesLikePyTorch() {
        Tensor a = Tensor.of(new int[] {Integer.MAX_VALUE, -7, 7, Integer.MIN_VALUE}, 4);
        Tensor b = Tensor.of(new int[] {1, 2, -2, -1}, 4);
        assertArrayEquals(new int[] {Integer.MIN_VALUE, -5, 5, Integer.MAX_VALUE}, a.add(b).toIntArray());
        assertArrayEquals(new int[] {Integer.MAX_VALUE, -3, -3, Integer.MIN_VALUE}, a.div(b, Tensor.RoundingMode.TRUNC).toIntArray());
        assertArrayEquals(new int[] {Integer.MAX_VALUE, -4, -4, Integer.MIN_VALUE}, a.div(b, Tensor.RoundingMode.FLOOR).toIntArray());
        assertEquals(DType.FLOAT32, a.div(b).dtype(), "true division of integers is float32");
        assertArrayEquals(new float[] {-3.5f, -3.5f}, Tensor.of(new int[] {-7, 7}, 2).div(Tensor.of(new int[] {2, -2}, 2)).toFloatArray());
        assertArrayEquals(new int[] {Integer.MIN_VALUE}, Tensor.of(new int[] {Integer.MIN_VALUE}, 1).abs().toIntArray());
        assertArrayEquals(new long[] {1, -1, 1, 1024}, Tensor.of(new long[] {1, -1, -1, 2}, 4)
                .pow(Tensor.of(new long[] {-5, -3, -4, 10}, 4)).toLongArray());
        Tensor bools = Tensor.of(new boolean[] {true, true, false}, 3);
        assertArrayEquals(new boolean[] {true, true, false}, bools.add(bools).toBooleanArray(), "bool + bool is or");
        assertEquals(DType.INT64, bools.add(5L).dtype());
        assertArrayEquals(new long[] {6, 6, 5}, bools.add(5L).toLongArray());
    }

    @Test
    void scalarOperandsFollowPythonNumberPromotion() {
        Tensor h = Tensor.vector(1, 2, 3).to(DType.FLOAT16);
        Tensor r = h.mul(0.1);
        assertEquals(DType.FLOAT16, r.dtype());
        // The scalar is rounded to float16 first, as both operands are converted to the compute type.
        float tenth = Float.float16ToFloat(Float.floatToFloat16(0.1f));
        for (int i = 0; i < 3; i++) {
            assertEquals(Float.float16ToFloat(Float.floatToFloat16((i + 1) * tenth)), r.toFloatArray()[i]);
        }
        Tensor ints = Tensor.of(new int[] {1, 2, 3}, 3);
        assertEquals(DType.FLOAT32, ints.add(0.5).dtype());
        assertArrayEquals(new float[] {1.5f, 2.5f, 3.5f}, ints.add(0.5).toFloatArray());
        assertArrayEquals(new float[] {2f, 1f, 2f / 3}, ints.rdiv(2).toFloatArray());
        assertArrayEquals(new float[] {9f, 8f, 7f}, Tensor.vector(1, 2, 3).rsub(10).toFloatArray());
        assertArrayEquals(new int[] {1, 4, 9}, ints.pow(2L).toIntArray());
        assertArrayEquals(new boolean[] {true, true, true}, ints.lt(1e10).toBooleanArray());
    }

    @Test
    void broadcastingWithEmptyAndSizeOneDimensions() {
        Tensor empty = Tensor.zeros(3, 0, 2);
        Tensor row = Tensor.ones(1, 1, 2);
        Tensor s = empty.add(row);
        assertEquals(Shape.of(3, 0, 2), s.shape());
        assertEquals(0, s.numel());
        assertEquals(Shape.of(0, 4), Tensor.zeros(0, 1).mul(Tensor.ones(4)).shape());
        Tensor col = Tensor.vector(1, 2, 3).reshape(3, 1);
        Tensor r = Tensor.vector(10, 20).reshape(1, 2);
        assertArrayEquals(new float[] {11, 21, 12, 22, 13, 23}, col.add(r).toFloatArray());
        Tensor scalar = Tensor.scalar(2f);
        assertArrayEquals(new float[] {2, 4, 6}, Tensor.vector(1, 2, 3).mul(scalar).toFloatArray());
        assertEquals(Shape.SCALAR, scalar.exp().shape());
    }

    @Test
    void stridedViewsIncludingNegativeAndZeroStrides() {
        Tensor m = Tensor.arange(0, 24, 1, DType.FLOAT32).reshape(4, 6);
        Tensor flipped = m.slice(1, 5, -7, -2); // columns 5, 3, 1
        assertArrayEquals(new float[] {5, 3, 1, 11, 9, 7, 17, 15, 13, 23, 21, 19}, flipped.contiguous().toFloatArray());
        assertArrayEquals(new float[] {10, 6, 2, 22, 18, 14, 34, 30, 26, 46, 42, 38}, flipped.add(flipped).toFloatArray());
        Tensor expanded = Tensor.vector(1, 2).reshape(2, 1).expand(2, 3);
        assertArrayEquals(new float[] {1, 1, 1, 2, 2, 2}, expanded.exp().log().toFloatArray(), 1e-6f);
        Tensor t = m.transpose(0, 1);
        assertArrayEquals(new float[] {0, 6, 12, 18}, t.slice(0, 0, 1).contiguous().toFloatArray());
        assertArrayEquals(new int[] {0, 6, 12, 18, 1, 7, 13, 19}, t.to(DType.INT32).slice(0, 0, 2).contiguous().toIntArray());
    }

    /** Large enough to run on every core, with a broadcast operand, a transposed one and a float16 one. */
    @Test
    void largeRunsMatchTheReference() {
        int rows = 300, cols = 517;
        double[] xv = TestTensors.randomData((long) rows * cols, 11, 5, false);
        double[] wv = TestTensors.randomData(cols, 12, 5, false);
        Tensor x = TestTensors.tensor(xv, DType.FLOAT32, TestTensors.Presentation.TRANSPOSED, rows, cols);
        Tensor w = TestTensors.tensor(wv, DType.FLOAT16, cols);
        Tensor y = x.mul(w).add(1.5).gelu();
        double[] expected = new double[xv.length];
        for (int i = 0; i < xv.length; i++) {
            float p = (float) ((float) xv[i] * TestTensors.roundTo(DType.FLOAT16, wv[i % cols]));
            expected[i] = VectorMathTest.geluRef((float) (p + 1.5));
        }
        TestTensors.assertClose("gelu(x*w+1.5)", Shape.of(rows, cols), expected, y, 8e-7, 1e-40);
    }

    /** The W1 workload, y = gelu(x*a + b) * sigmoid(x) + x, on enough elements to use both cores. */
    @Test
    void workloadW1() {
        int n = 100_003;
        double[] xv = TestTensors.randomData(n, 5, 6, false);
        Tensor x = TestTensors.tensor(xv, DType.FLOAT32, n);
        Tensor y = x.mul(1.7).add(-0.3).gelu().mul(x.sigmoid()).add(x);
        double[] expected = new double[n];
        for (int i = 0; i < n; i++) {
            float xf = (float) xv[i];
            float g = (float) VectorMathTest.geluRef((float) ((float) (xf * 1.7f) + -0.3f));
            expected[i] = (float) (g * (float) VectorMathTest.sigmoidRef(xf)) + xf;
        }
        TestTensors.assertClose("W1", Shape.of(n), expected, y, 2e-6, 1e-6);
    }

    @Test
    void geluApproximationsAgreeRoughly() {
        Tensor x = Tensor.arange(-4, 4, 0.25, DType.FLOAT32);
        float[] exact = x.gelu().toFloatArray(), tanh = F.gelu(x, "tanh").toFloatArray();
        for (int i = 0; i < exact.length; i++) assertEquals(exact[i], tanh[i], 1e-3, "x = " + (-4 + 0.25 * i));
    }

    // ---------------------------------------------------------------- errors

    @Test
    void boolSubtractionIsRejected() {
        Tensor b = Tensor.of(new boolean[] {true}, 1);
        KilnException e = assertThrows(KilnTypeException.class, () -> b.sub(b));
        assertEquals("sub: not supported for bool tensors; use logical_xor instead", e.getMessage());
        assertThrows(KilnTypeException.class, () -> b.neg());
        assertThrows(KilnTypeException.class, () -> b.clamp(0, 1));
    }

    @Test
    void integerDivisionByZeroNamesOpIndexAndShapes() {
        Tensor a = Tensor.of(new long[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor b = Tensor.of(new long[] {1, 0, 2}, 3);
        KilnException e = assertThrows(KilnException.class, () -> a.div(b, Tensor.RoundingMode.FLOOR));
        assertEquals("floor_div: integer division by zero at index [0,1] of the result [2,3] (operand shapes [2,3] and [3])",
                e.getMessage());
        Tensor divisors = Tensor.of(new int[] {4, 0}, 2);
        KilnException s = assertThrows(KilnException.class,
                () -> Dispatch.apply1(new Op.BinaryScalar(BinaryFn.TRUNC_DIV, 8, true, true), divisors));
        assertTrue(s.getMessage().startsWith("trunc_div: integer division by zero at index [1]"), s.getMessage());
    }

    @Test
    void integerDivisionByZeroIsReportedFromWorkerThreads() {
        int n = 1 << 20;
        long[] d = new long[n];
        java.util.Arrays.fill(d, 3);
        d[n - 10] = 0;
        Tensor a = Tensor.ones(DType.INT64, n);
        KilnException e = assertThrows(KilnException.class, () -> a.div(Tensor.of(d, n), Tensor.RoundingMode.TRUNC));
        assertEquals("trunc_div: integer division by zero at index [" + (n - 10) + "] of the result [" + n
                + "] (operand shapes [" + n + "] and [" + n + "])", e.getMessage());
    }

    @Test
    void integerPowerWithNegativeExponentIsRejected() {
        Tensor a = Tensor.of(new int[] {2, 3}, 2);
        KilnException e = assertThrows(KilnException.class, () -> a.pow(Tensor.of(new int[] {1, -1}, 2)));
        assertEquals("pow: integers cannot be raised to negative integer powers (3 ** -1) at index [1] of the result [2]"
                + " (operand shapes [2] and [2])", e.getMessage());
        assertThrows(KilnException.class, () -> a.pow(-2L));
    }

    @Test
    void integerClampRoundsBoundsInwardAndRejectsNaN() {
        Tensor a = Tensor.of(new int[] {-5, 0, 1, 2, 3, 9}, 6);
        assertArrayEquals(new int[] {1, 1, 1, 2, 2, 2}, a.clamp(0.5, 2.5).toIntArray());
        assertArrayEquals(new int[] {Integer.MAX_VALUE, Integer.MAX_VALUE, Integer.MAX_VALUE, Integer.MAX_VALUE,
                Integer.MAX_VALUE, Integer.MAX_VALUE}, a.clampMin(1e12).toIntArray());
        KilnException e = assertThrows(KilnTypeException.class, () -> a.clamp(Double.NaN, 1));
        assertEquals("clamp: bound NaN cannot clamp the integer tensor int32[6] (min NaN, max 1.0)", e.getMessage());
    }
}
