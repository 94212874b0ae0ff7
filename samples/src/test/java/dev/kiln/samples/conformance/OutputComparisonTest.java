package dev.kiln.samples.conformance;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static dev.kiln.samples.conformance.CaseWriter.tensor;
import static dev.kiln.samples.conformance.OutputComparison.mismatch;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

class OutputComparisonTest {
    private static final double NAN = Double.NaN, INF = Double.POSITIVE_INFINITY;

    private static Tensor f32(double... v) { return tensor(DType.FLOAT32, v, v.length); }
    private static Tensor f64(double... v) { return tensor(DType.FLOAT64, v, v.length); }

    @Test
    void float32ToleranceIsAtolPlusRtolTimesExpected() {
        // |a - e| <= 1e-5 + 1e-3 * |e|: for e = 100 the bound is 0.10001.
        assertNull(mismatch(f64(100.1), f64(100)));
        assertNotNull(mismatch(f64(100.1002), f64(100)));
        assertNull(mismatch(f64(-100.1), f64(-100)));
        // Around zero only atol remains.
        assertNull(mismatch(f64(0.9e-5), f64(0)));
        assertNotNull(mismatch(f64(1.1e-5), f64(0)));
        // The relative part uses the expected value, not the actual one.
        assertNotNull(mismatch(f64(200), f64(100)));
        assertNotNull(mismatch(f64(100), f64(200)));
    }

    @Test
    void halfTypesUseLooserTolerances() {
        double e = 10, within = 10.09, beyond = 10.2;
        assertNull(mismatch(tensor(DType.FLOAT16, new double[] {within}, 1), tensor(DType.FLOAT16, new double[] {e}, 1)));
        assertNotNull(mismatch(tensor(DType.FLOAT16, new double[] {beyond}, 1), tensor(DType.FLOAT16, new double[] {e}, 1)));
        // The same difference in float32 is far outside rtol 1e-3.
        assertNotNull(mismatch(f32(within), f32(e)));
    }

    @Test
    void nanMatchesNanAndNothingElse() {
        assertNull(mismatch(f32(NAN, 1), f32(NAN, 1)));
        assertEquals("got 1.0 at [0], expected NaN; 1 of 2 elements outside rtol 1.0e-3 atol 1.0e-5",
                mismatch(f32(1, 1), f32(NAN, 1)));
        assertEquals("got NaN at [1], expected 1.0; 1 of 2 elements outside rtol 1.0e-3 atol 1.0e-5",
                mismatch(f32(1, NAN), f32(1, 1)));
    }

    @Test
    void infinitiesMustMatchExactly() {
        assertNull(mismatch(f32(INF, -INF), f32(INF, -INF)));
        assertNotNull(mismatch(f32(-INF), f32(INF)));
        assertNotNull(mismatch(f32(NAN), f32(INF)));
        // A huge finite value is not infinity, whatever the relative tolerance would allow.
        assertNotNull(mismatch(f64(Double.MAX_VALUE), f64(INF)));
        assertNotNull(mismatch(f64(INF), f64(Double.MAX_VALUE)));
    }

    @Test
    void reportsTheWorstElementWithItsIndex() {
        Tensor expected = tensor(DType.FLOAT32, new double[] {0, 1, 2, 3, 4, 5}, 2, 3);
        Tensor actual = tensor(DType.FLOAT32, new double[] {0, 1.01, 2, 3, 4, 5.5}, 2, 3);
        assertEquals("max abs err 5.0e-1 at [1,2] (got 5.5, expected 5.0); 2 of 6 elements outside rtol 1.0e-3 atol 1.0e-5",
                mismatch(actual, expected));
    }

    @Test
    void integersAndBoolsCompareExactly() {
        Tensor e = tensor(DType.INT64, new double[] {1, 2, 3}, 3);
        assertNull(mismatch(tensor(DType.INT64, new double[] {1, 2, 3}, 3), e));
        assertEquals("got 4 at [2], expected 3; 1 of 3 elements differ", mismatch(tensor(DType.INT64, new double[] {1, 2, 4}, 3), e));
        // Values beyond 2^53 must not be compared through doubles.
        assertNotNull(mismatch(Tensor.of(new long[] {(1L << 60) + 1}, 1), Tensor.of(new long[] {1L << 60}, 1)));
        assertEquals("got true at [1], expected false; 1 of 2 elements differ",
                mismatch(Tensor.of(new boolean[] {true, true}, 2), Tensor.of(new boolean[] {true, false}, 2)));
    }

    @Test
    void shapeAndDtypeMustMatch() {
        assertEquals("shape [3], expected [1,3]", mismatch(f32(1, 2, 3), tensor(DType.FLOAT32, new double[] {1, 2, 3}, 1, 3)));
        assertEquals("dtype float64, expected float32", mismatch(f64(1), f32(1)));
        assertEquals("dtype int32, expected int64",
                mismatch(tensor(DType.INT32, new double[] {1}, 1), tensor(DType.INT64, new double[] {1}, 1)));
    }

    @Test
    void emptyTensorsOfTheSameShapeMatch() {
        assertNull(mismatch(tensor(DType.FLOAT32, new double[0], 2, 0), tensor(DType.FLOAT32, new double[0], 2, 0)));
    }

    @Test
    void readsNonContiguousViewsByLogicalIndex() {
        Tensor base = tensor(DType.FLOAT32, new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
        Tensor transposed = base.transpose(0, 1);
        assertNull(mismatch(transposed, tensor(DType.FLOAT32, new double[] {1, 4, 2, 5, 3, 6}, 3, 2)));
    }

    @Test
    void scientificNotationIsShort() {
        assertEquals("3.1e-2", OutputComparison.scientific(0.0312));
        assertEquals("1.0e0", OutputComparison.scientific(0.99999));
        assertEquals("2.5e3", OutputComparison.scientific(2500));
        assertEquals("1.0e-2", OutputComparison.scientific(9.96e-3));
        assertEquals("-4.2e-7", OutputComparison.scientific(-4.2e-7));
    }
}
