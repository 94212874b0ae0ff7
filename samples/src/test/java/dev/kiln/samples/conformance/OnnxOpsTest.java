package dev.kiln.samples.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static dev.kiln.samples.conformance.CaseWriter.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** The ONNX-to-Kiln translations, against values worked out here from the ONNX specification. */
class OnnxOpsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static List<Tensor> run(String op, Map<String, ?> attributes, Tensor... inputs) throws UnsupportedCaseException {
        Map<String, JsonNode> values = new LinkedHashMap<>();
        attributes.forEach((k, v) -> values.put(k, JSON.valueToTree(v)));
        return OnnxOps.run(new OnnxNode(op, new Attributes(values), Arrays.asList(inputs)));
    }

    private static Tensor run1(String op, Map<String, ?> attributes, Tensor... inputs) throws UnsupportedCaseException {
        return run(op, attributes, inputs).get(0);
    }

    private static void assertMatches(Tensor expected, Tensor actual) {
        assertNull(OutputComparison.mismatch(actual, expected));
    }

    private static Tensor f32(double[] v, int... shape) { return tensor(DType.FLOAT32, v, shape); }
    private static Tensor i64(long... v) { return Tensor.of(v, v.length); }

    private static double[] iota(int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = i;
        return d;
    }

    // ---------------------------------------------------------------- logical and bitwise

    @Test
    void bitwiseAndLogicalOpsFollowTheSpecification() throws UnsupportedCaseException {
        Tensor a = u8(0b1100, 0b1010, 255), b = u8(0b1010, 0b0110, 1);
        assertEquals(List.of(8L, 2L, 1L), boxed(run1("BitwiseAnd", Map.of(), a, b)));
        assertEquals(List.of(14L, 14L, 255L), boxed(run1("BitwiseOr", Map.of(), a, b)));
        assertEquals(List.of(6L, 12L, 254L), boxed(run1("BitwiseXor", Map.of(), a, b)));
        assertEquals(List.of(243L, 245L, 0L), boxed(run1("BitwiseNot", Map.of(), a)));
        // uint8: bits shifted out of the left are gone; right shifts of unsigned types bring in zeros.
        assertEquals(List.of(192L, 40L, 254L), boxed(run1("BitShift", Map.of("direction", "LEFT"), a, u8(4, 2, 1))));
        assertEquals(List.of(3L, 2L, 127L), boxed(run1("BitShift", Map.of("direction", "RIGHT"), a, u8(2, 2, 1))));
        assertThrows(UnsupportedCaseException.class, () -> run1("BitShift", Map.of(), a, b));
        Tensor p = Tensor.of(new boolean[] {true, true, false}, 3), q = Tensor.of(new boolean[] {true, false, false}, 3);
        assertEquals(List.of(true, false, false), booleans(run1("And", Map.of(), p, q)));
        assertEquals(List.of(true, true, false), booleans(run1("Or", Map.of(), p, q)));
        assertEquals(List.of(false, true, false), booleans(run1("Xor", Map.of(), p, q)));
        assertEquals(List.of(false, false, true), booleans(run1("Not", Map.of(), p)));
    }

    private static Tensor u8(long... v) { return i64(v).to(DType.UINT8); }

    private static List<Long> boxed(Tensor t) { return Arrays.stream(t.toLongArray()).boxed().toList(); }

    private static List<Boolean> booleans(Tensor t) {
        boolean[] b = t.toBooleanArray();
        Boolean[] out = new Boolean[b.length];
        for (int i = 0; i < b.length; i++) out[i] = b[i];
        return List.of(out);
    }

    // ---------------------------------------------------------------- views (no kernels)

    @Test
    void sliceClampsAsOnnxSpecifies() throws UnsupportedCaseException {
        Tensor x = f32(iota(10), 10);
        // Stepping backwards from a start before the beginning: ONNX clamps it to 0, so element 0 remains.
        assertMatches(f32(new double[] {0}, 1), run1("Slice", Map.of(), x, i64(-100), i64(Long.MIN_VALUE), i64(0), i64(-1)));
        // A start past the end clamps to the last element when stepping backwards.
        assertMatches(f32(new double[] {9, 6, 3, 0}, 4), run1("Slice", Map.of(), x, i64(20), i64(-1000), i64(0), i64(-3)));
        // Forwards: ends past the end clamp to the size; negative indices count from the end.
        assertMatches(f32(new double[] {7, 8, 9}, 3), run1("Slice", Map.of(), x, i64(-3), i64(Long.MAX_VALUE)));
        assertMatches(f32(new double[0], 0), run1("Slice", Map.of(), x, i64(12), i64(20)));
    }

    @Test
    void sliceWithNegativeAxesAndSteps() throws UnsupportedCaseException {
        Tensor x = f32(iota(12), 3, 4);
        // Rows 2..0 backwards, columns 1 and 3.
        Tensor y = run1("Slice", Map.of(), x, i64(-1, 1), i64(-4, 4), i64(0, -1), i64(-1, 2));
        assertMatches(f32(new double[] {9, 11, 5, 7, 1, 3}, 3, 2), y);
    }

    @Test
    void reshapeCopiesZerosUnlessAllowzero() throws UnsupportedCaseException {
        Tensor x = f32(iota(24), 2, 3, 4);
        assertEquals("[2,3,2,2]", run1("Reshape", Map.of(), x, i64(0, 0, 2, -1)).shape().toString());
        Tensor empty = f32(new double[0], 0, 3, 4);
        assertEquals("[3,4,0]", run1("Reshape", Map.of("allowzero", 1), empty, i64(3, 4, 0)).shape().toString());
        KilnShapeException e = assertThrows(KilnShapeException.class, () -> run1("Reshape", Map.of(), f32(iota(6), 6), i64(2, 0)));
        assertEquals("Reshape: shape [2, 0] has 0 at position 1, but the input [6] has no dimension 1 to copy", e.getMessage());
    }

    @Test
    void transposeReversesByDefault() throws UnsupportedCaseException {
        Tensor x = f32(iota(24), 2, 3, 4);
        assertEquals("[4,3,2]", run1("Transpose", Map.of(), x).shape().toString());
        assertEquals("[3,4,2]", run1("Transpose", Map.of("perm", List.of(1, 2, 0)), x).shape().toString());
    }

    @Test
    void expandBroadcastsBothWays() throws UnsupportedCaseException {
        Tensor x = f32(new double[] {1, 2, 3}, 3, 1);
        assertMatches(f32(new double[] {1, 1, 2, 2, 3, 3}, 3, 2), run1("Expand", Map.of(), x, i64(1, 2)));
        // The requested shape may be smaller than the input's: ONNX broadcasts the two.
        assertEquals("[2,3,4]", run1("Expand", Map.of(), x, i64(2, 1, 4)).shape().toString());
        assertEquals("[3,1]", run1("Expand", Map.of(), x, i64(1)).shape().toString());
    }

    // ---------------------------------------------------------------- unsupported

    @Test
    void unmappedOpsAttributesAndStashTypesAreUnsupported() {
        Tensor x = f32(iota(4), 4);
        assertEquals("op 'Cos' has no Kiln mapping",
                assertThrows(UnsupportedCaseException.class, () -> run("Cos", Map.of(), x)).getMessage());
        assertEquals("attribute 'exclusive' of Softmax is not supported",
                assertThrows(UnsupportedCaseException.class, () -> run("Softmax", Map.of("exclusive", 1), x)).getMessage());
        assertEquals("LayerNormalization: stash_type 7 is not a floating-point type Kiln has",
                assertThrows(UnsupportedCaseException.class,
                        () -> run("LayerNormalization", Map.of("stash_type", 7), x, x)).getMessage());
    }

    // ---------------------------------------------------------------- through kernels

    @Test
    void gemmAppliesTransposesAlphaBetaAndBroadcastsC() throws UnsupportedCaseException {
        // A is given transposed ([K=2, M=3]), B too ([N=2, K=2]); C is a row broadcast over M.
        double[] at = {1, 2, 3, 4, 5, 6}, bt = {1, 0, 2, 1}, c = {10, 20};
        double alpha = 0.5, beta = 2;
        double[] y = new double[6];
        for (int m = 0; m < 3; m++) {
            for (int n = 0; n < 2; n++) {
                double s = 0;
                for (int k = 0; k < 2; k++) s += at[k * 3 + m] * bt[n * 2 + k];
                y[m * 2 + n] = alpha * s + beta * c[n];
            }
        }
        Tensor out = run1("Gemm", Map.of("alpha", alpha, "beta", beta, "transA", 1, "transB", 1),
                f32(at, 2, 3), f32(bt, 2, 2), f32(c, 1, 2));
        assertMatches(f32(y, 3, 2), out);
        // Without C, beta plays no part.
        Tensor noC = run1("Gemm", Map.of("beta", 5.0), f32(new double[] {1, 2}, 1, 2), f32(new double[] {3, 4}, 2, 1));
        assertMatches(f32(new double[] {11}, 1, 1), noC);
    }

    @Test
    void reductionsFollowOnnxAxesKeepdimsAndNoop() throws UnsupportedCaseException {
        Tensor x = f32(iota(6), 2, 3);
        Tensor noAxes = Tensor.of(new long[0], 0);
        assertMatches(f32(new double[] {15}, 1, 1), run1("ReduceSum", Map.of(), x, noAxes));
        assertMatches(x, run1("ReduceSum", Map.of("noop_with_empty_axes", 1), x, noAxes));
        assertMatches(f32(new double[] {3, 12}, 2), run1("ReduceSum", Map.of("keepdims", 0), x, i64(-1)));
        assertMatches(f32(new double[] {1.5, 2.5, 3.5}, 1, 3), run1("ReduceMean", Map.of(), x, i64(0)));
        assertMatches(f32(new double[] {2, 5}, 2, 1), run1("ReduceMax", Map.of(), x, i64(1)));
        assertMatches(f32(new double[] {0 + 1 + 4, 9 + 16 + 25}, 2, 1), run1("ReduceSumSquare", Map.of(), x, i64(1)));
        // Older opsets give axes as an attribute.
        assertMatches(f32(new double[] {3, 5, 7}, 3), run1("ReduceSum", Map.of("axes", List.of(0), "keepdims", 0), x));
        // Integer inputs keep their type.
        Tensor ints = tensor(DType.INT32, iota(6), 2, 3);
        assertMatches(tensor(DType.INT32, new double[] {3, 12}, 2), run1("ReduceSum", Map.of("keepdims", 0), ints, i64(1)));
        // Over an empty set: the identity.
        Tensor empty = f32(new double[0], 2, 0);
        double ninf = Double.NEGATIVE_INFINITY;
        assertMatches(f32(new double[] {ninf, ninf}, 2, 1), run1("ReduceMax", Map.of(), empty, i64(1)));
        assertMatches(f32(new double[] {0, 0}, 2, 1), run1("ReduceSumSquare", Map.of(), empty, i64(1)));
    }

    @Test
    void integerDivisionTruncatesAndPowKeepsTheBaseType() throws UnsupportedCaseException {
        Tensor a = tensor(DType.INT32, new double[] {-7, 7, -7, 7}, 4), b = tensor(DType.INT32, new double[] {2, 2, -2, -2}, 4);
        assertMatches(tensor(DType.INT32, new double[] {-3, 3, 3, -3}, 4), run1("Div", Map.of(), a, b));
        Tensor base = tensor(DType.INT64, new double[] {1, 2, 3}, 3), exponent = f32(new double[] {4, 5, 6}, 3);
        assertMatches(tensor(DType.INT64, new double[] {1, 32, 729}, 3), run1("Pow", Map.of(), base, exponent));
        Tensor fbase = f32(new double[] {2, 4}, 2), iexp = tensor(DType.INT64, new double[] {3, -1}, 2);
        assertMatches(f32(new double[] {8, 0.25}, 2), run1("Pow", Map.of(), fbase, iexp));
    }

    @Test
    void cumsumTakesTheAxisInputAndKeepsIntegerTypes() throws UnsupportedCaseException {
        Tensor x = tensor(DType.INT32, new double[] {1, 2, 3, 4}, 4);
        Tensor axis = Tensor.of(new int[] {0});
        assertMatches(tensor(DType.INT32, new double[] {9, 7, 4, 0}, 4),
                run1("CumSum", Map.of("exclusive", 1, "reverse", 1), x, axis));
        Tensor m = f32(iota(6), 2, 3);
        assertMatches(f32(new double[] {0, 1, 3, 3, 7, 12}, 2, 3), run1("CumSum", Map.of(), m, Tensor.of(new long[] {-1})));
    }

    @Test
    void swishUsesAlpha() throws UnsupportedCaseException {
        double[] x = {-2, 0, 1.5};
        double alpha = 0.5;
        double[] y = new double[3];
        for (int i = 0; i < 3; i++) y[i] = x[i] / (1 + Math.exp(-alpha * x[i]));
        assertMatches(f32(y, 3), run1("Swish", Map.of("alpha", alpha), f32(x, 3)));
        double[] silu = new double[3];
        for (int i = 0; i < 3; i++) silu[i] = x[i] / (1 + Math.exp(-x[i]));
        assertMatches(f32(silu, 3), run1("Swish", Map.of(), f32(x, 3)));
    }

    @Test
    void clipBoundsAreOptionalAndMinAboveMaxGivesMax() throws UnsupportedCaseException {
        Tensor x = f32(new double[] {-2, 0, 6}, 3);
        assertMatches(f32(new double[] {-1, 0, 6}, 3), run1("Clip", Map.of(), x, Tensor.scalar(-1f)));
        assertMatches(f32(new double[] {-2, 0, 3}, 3), run1("Clip", Map.of(), x, null, Tensor.scalar(3f)));
        assertMatches(f32(new double[] {1, 1, 1}, 3), run1("Clip", Map.of(), x, Tensor.scalar(2f), Tensor.scalar(1f)));
        assertMatches(x, run1("Clip", Map.of(), x));
    }

    @Test
    void layerNormalizationGivesStatisticsInTheStashType() throws UnsupportedCaseException {
        double[] v = {1, 2, 3, 4, 10, 20};
        Tensor x = tensor(DType.FLOAT64, v, 2, 3);
        Tensor scale = tensor(DType.FLOAT64, new double[] {1, 2, 3}, 3), bias = tensor(DType.FLOAT64, new double[] {0, 1, 0}, 3);
        double eps = 1e-5;
        double[] y = new double[6], mean = new double[2], inv = new double[2];
        for (int r = 0; r < 2; r++) {
            double m = (v[3 * r] + v[3 * r + 1] + v[3 * r + 2]) / 3, var = 0;
            for (int c = 0; c < 3; c++) var += (v[3 * r + c] - m) * (v[3 * r + c] - m) / 3;
            mean[r] = m;
            inv[r] = 1 / Math.sqrt(var + eps);
            for (int c = 0; c < 3; c++) y[3 * r + c] = (v[3 * r + c] - m) * inv[r] * (c + 1) + (c == 1 ? 1 : 0);
        }
        List<Tensor> out = run("LayerNormalization", Map.of("epsilon", eps), x, scale, bias);
        assertEquals(3, out.size());
        // Default stash_type 1: statistics in float32, Y in the input's float64.
        assertMatches(tensor(DType.FLOAT64, y, 2, 3), out.get(0));
        assertMatches(f32(mean, 2, 1), out.get(1));
        assertMatches(f32(inv, 2, 1), out.get(2));
        List<Tensor> wide = run("LayerNormalization", Map.of("epsilon", eps, "stash_type", 11), x, scale);
        assertEquals(DType.FLOAT64, wide.get(1).dtype());
    }

    @Test
    void rmsNormalizationOverTrailingAxes() throws UnsupportedCaseException {
        double[] v = {3, 4, 0, 0, 1, 1};
        Tensor x = f32(v, 3, 2);
        double eps = 1e-5;
        double[] y = new double[6];
        for (int i = 0; i < 6; i++) {
            double ms = 0;
            for (double e : v) ms += e * e / 6;
            y[i] = v[i] / Math.sqrt(ms + eps) * 2;
        }
        // axis 0 normalises over every element; the scale broadcasts over the normalised shape.
        assertMatches(f32(y, 3, 2), run1("RMSNormalization", Map.of("axis", 0), x, f32(new double[] {2}, 1)));
    }

    @Test
    void triluTakesTheOptionalK() throws UnsupportedCaseException {
        Tensor x = tensor(DType.INT64, iota(6), 2, 3);
        assertMatches(tensor(DType.INT64, new double[] {0, 1, 2, 0, 4, 5}, 2, 3), run1("Trilu", Map.of(), x));
        assertMatches(tensor(DType.INT64, new double[] {0, 0, 0, 3, 0, 0}, 2, 3),
                run1("Trilu", Map.of("upper", 0), x, Tensor.of(new long[] {-1})));
    }

    @Test
    void gatherAcceptsNegativeIndices() throws UnsupportedCaseException {
        Tensor x = f32(iota(6), 3, 2);
        assertMatches(f32(new double[] {4, 5, 0, 1}, 2, 2), run1("Gather", Map.of(), x, i64(-1, 0)));
        assertMatches(f32(new double[] {4, 1}, 1, 2), run1("GatherElements", Map.of(), x, Tensor.of(new long[] {-1, 0}, 1, 2)));
    }
}
