package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Tensor;
import dev.kiln.testing.TestTensors;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Casts between every pair of dtypes, including the out-of-range and non-finite cases. */
class CastTest {
    private static final double[] EDGES = {0, -0.0, 1, -1, 0.5, -0.5, 2.5, -2.5, 0.1, 255.75, -7.9, 65504, 65520, 1e5,
            3e9, -3e9, 2147483647, -2147483648, 2147483648.0, 1e19, -1e19, 16777217, 9007199254740993.0, 1e-8, 1e-40,
            3.4e38, 1e300, Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY};

    /**
     * The documented cast: to bool non-zero (NaN is true); floating to integer truncates toward
     * zero, saturates at the target's range and sends NaN to 0; int64 to int32 wraps; to
     * floating types rounds to nearest even. {@code v} is already a value of {@code from}.
     */
    static double castRef(DType from, DType to, double v) {
        if (to == DType.BOOL) return v != 0 ? 1 : 0;
        if (to.isInteger()) {
            // From floats: toward zero, saturating at the target's range; between integers: the low bits.
            if (from.isFloatingPoint()) {
                return Double.isNaN(v) ? 0 : Math.clamp(v < 0 ? Math.ceil(v) : Math.floor(v), TestTensors.lowest(to), TestTensors.highest(to));
            }
            // (The largest uint64, saturated from an edge value, reads as the double 2^64.)
            long bits = from != DType.UINT64 ? (long) v : v >= 0x1p64 ? -1L : new java.math.BigDecimal(v).toBigInteger().longValue();
            return TestTensors.wrap(to, bits);
        }
        return TestTensors.roundTo(to, v);
    }

    @Test
    void everyPairOnEdgeValues() {
        for (DType from : DType.values()) {
            double[] v = new double[EDGES.length];
            for (int i = 0; i < v.length; i++) v[i] = TestTensors.roundTo(from, from == DType.INT32 || from == DType.INT64
                    ? saturate(from, EDGES[i]) : EDGES[i]);
            Tensor x = TestTensors.tensor(v, from, v.length);
            for (DType to : DType.values()) {
                double[] expected = new double[v.length];
                for (int i = 0; i < v.length; i++) expected[i] = castRef(from, to, v[i]);
                TestTensors.assertClose(from + " -> " + to, Shape.of(v.length), expected, x.to(to), 0, 0);
            }
        }
    }

    /** Integer sources hold in-range integers: the test data is made so first. */
    private static double saturate(DType t, double v) {
        if (Double.isNaN(v)) return 0;
        return t == DType.INT32 ? (int) v : (long) v;
    }

    @Test
    void documentedConversions() {
        Tensor f = Tensor.vector(Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 3e9f, -2.9f, 2.9f);
        assertArrayEquals(new int[] {0, Integer.MAX_VALUE, Integer.MIN_VALUE, Integer.MAX_VALUE, -2, 2}, f.to(DType.INT32).toIntArray());
        assertArrayEquals(new long[] {0, Long.MAX_VALUE, Long.MIN_VALUE, 3000000000L, -2, 2}, f.to(DType.INT64).toLongArray());
        assertArrayEquals(new boolean[] {true, true, true, true, true, true}, f.to(DType.BOOL).toBooleanArray());
        // int64 -> int32 keeps the low 32 bits, as PyTorch does.
        Tensor big = Tensor.of(new long[] {(1L << 32) + 5, -(1L << 31) - 1, Long.MIN_VALUE}, 3);
        assertArrayEquals(new int[] {5, Integer.MAX_VALUE, 0}, big.to(DType.INT32).toIntArray());
        // int64 beyond 2^53 rounds once to float64 and float32.
        Tensor odd = Tensor.of(new long[] {(1L << 53) + 1, (1L << 24) + 1}, 2);
        assertArrayEquals(new double[] {0x1p53, 16777217}, odd.to(DType.FLOAT64).toDoubleArray());
        assertArrayEquals(new float[] {0x1p53f, 16777216f}, odd.to(DType.FLOAT32).toFloatArray());
        // Half types round to nearest even and overflow to infinity.
        Tensor h = Tensor.vector(65504f, 65520f, 1.0009766f, 1e-8f).to(DType.FLOAT16);
        assertArrayEquals(new float[] {65504f, Float.POSITIVE_INFINITY, 1.0009766f, 0f}, h.toFloatArray());
        Tensor b = Tensor.vector(1.00390625f, 1.01171875f, Float.NaN).to(DType.BFLOAT16);
        float[] bv = b.toFloatArray();
        assertEquals(1f, bv[0]);
        assertEquals(1.015625f, bv[1]);
        assertEquals(Float.NaN, bv[2]);
    }

    @Test
    void fillAndArangeConvertLikeACast() {
        assertArrayEquals(new int[] {-7, -7}, Tensor.full(-7.9, DType.INT32, 2).toIntArray());
        assertArrayEquals(new boolean[] {true}, Tensor.full(Double.NaN, DType.BOOL, 1).toBooleanArray());
        assertArrayEquals(new float[] {Float.NEGATIVE_INFINITY}, Tensor.full(Double.NEGATIVE_INFINITY, DType.FLOAT16, 1).toFloatArray());
        assertArrayEquals(new float[] {0.099975586f}, Tensor.full(0.1, DType.FLOAT16, 1).toFloatArray());
        assertArrayEquals(new long[] {5, 2, -1, -4}, Tensor.arange(5, -5, -3).toLongArray());
        assertArrayEquals(new float[] {0f, 0.1f, 0.2f, 0.3f, 0.4f}, Tensor.arange(0, 0.45, 0.1, DType.FLOAT32).toFloatArray());
    }

    @Test
    void aFillValueTheDtypeCannotHoldIsAnErrorAsInPyTorch() {
        for (Object[] c : new Object[][] {{300.0, DType.INT8}, {-1.0, DType.UINT8}, {1e10, DType.INT32}, {Double.NaN, DType.INT64},
                {Double.POSITIVE_INFINITY, DType.UINT64}, {65520.0, DType.FLOAT16}, {1e39, DType.FLOAT32}}) {
            var e = assertThrows(KilnTypeException.class, () -> Tensor.full((double) c[0], (DType) c[1], 2));
            assertEquals("full: value " + c[0] + " cannot be converted to " + c[1] + " without overflow", e.getMessage());
        }
    }
}
