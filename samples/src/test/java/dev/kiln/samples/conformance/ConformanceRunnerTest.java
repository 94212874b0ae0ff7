package dev.kiln.samples.conformance;

import dev.kiln.samples.conformance.ConformanceRunner.Mode;
import dev.kiln.samples.conformance.ConformanceRunner.Summary;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static dev.kiln.samples.conformance.CaseWriter.tensor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class ConformanceRunnerTest {

    @TempDir
    Path root;

    private record Run(Summary summary, List<String> lines) {}

    private Run run(Mode... modes) throws IOException {
        StringWriter text = new StringWriter();
        Summary s = new ConformanceRunner(List.of(modes)).run(List.of(root), new PrintWriter(text));
        return new Run(s, Arrays.asList(text.toString().split("\n")));
    }

    private static double[] range(int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = i * 0.5 - 1;
        return d;
    }

    /** The transpose of a row-major [rows, cols] array, computed here as the reference. */
    private static double[] transposed(double[] v, int rows, int cols) {
        double[] t = new double[v.length];
        for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) t[c * rows + r] = v[r * cols + c];
        return t;
    }

    @Test
    void aKnownDataDefectThatFailsIsASkipNamingTheDefectAndPassesOnceCorrected() throws IOException {
        double[] v = range(24);
        // The shipped case's perm attribute is empty (reverse), but its expected output is the identity.
        CaseWriter.write(root, "transpose_all_permutations_0", "Transpose", Map.of("perm", List.of()),
                List.of(tensor(DType.FLOAT32, v, 2, 3, 4)), List.of(tensor(DType.FLOAT32, v, 2, 3, 4)));
        Run r = run(Mode.EAGER);
        assertTrue(r.lines().get(0).startsWith("SKIP transpose_all_permutations_0 eager - known defect in the case data: "
                + "case.json has perm []"), r.lines().get(0));
        assertEquals(0, r.summary().exitCode());

        Path fixed = root.resolve("fixed");
        CaseWriter.write(fixed, "transpose_all_permutations_0", "Transpose", Map.of("perm", List.of(0, 1, 2)),
                List.of(tensor(DType.FLOAT32, v, 2, 3, 4)), List.of(tensor(DType.FLOAT32, v, 2, 3, 4)));
        StringWriter text = new StringWriter();
        new ConformanceRunner(List.of(Mode.EAGER, Mode.COMPILED)).run(List.of(fixed), new PrintWriter(text));
        assertEquals(List.of("PASS transpose_all_permutations_0 eager", "PASS transpose_all_permutations_0 compiled",
                "2 passed, 0 failed, 0 skipped"), Arrays.asList(text.toString().split("\n")));
    }

    @Test
    void reportsPassFailAndSkipSortedByCaseNameThenTheCounts() throws IOException {
        double[] x = range(10);
        Tensor input = tensor(DType.FLOAT32, x, 5, 2);
        double[] wrong = transposed(x, 5, 2);
        wrong[9] += 0.031;
        // Written out of order, one of them nested: the runner searches recursively and sorts by case name.
        CaseWriter.write(root, "d_unknown_op", "Frobnicate", Map.of(), List.of(input), List.of(input));
        CaseWriter.write(root.resolve("nested/deeper"), "b_transpose", "Transpose", Map.of("perm", List.of(1, 0)),
                List.of(input), List.of(tensor(DType.FLOAT32, transposed(x, 5, 2), 2, 5)));
        CaseWriter.write(root, "a_transpose_wrong", "Transpose", Map.of(), List.of(input),
                List.of(tensor(DType.FLOAT32, wrong, 2, 5)));
        Path complex = CaseWriter.write(root, "c_add_complex64", "Add", Map.of(), List.of(input, input), List.of(input));
        CaseWriter.writeComplex64Npy(complex.resolve("input_0.npy"), 1, 0, 2, 0, 3, 0);

        Run r = run(Mode.EAGER, Mode.COMPILED);

        assertEquals(9, r.lines().size(), String.join("\n", r.lines()));
        assertEquals("FAIL a_transpose_wrong eager - max abs err 3.1e-2 at [1,4] (got 3.5, expected 3.531);"
                + " 1 of 10 elements outside rtol 1.0e-3 atol 1.0e-5", r.lines().get(0));
        assertEquals("FAIL a_transpose_wrong compiled - max abs err 3.1e-2 at [1,4] (got 3.5, expected 3.531);"
                + " 1 of 10 elements outside rtol 1.0e-3 atol 1.0e-5", r.lines().get(1));
        assertEquals("PASS b_transpose eager", r.lines().get(2));
        assertEquals("PASS b_transpose compiled", r.lines().get(3));
        assertEquals("SKIP c_add_complex64 eager - npy: dtype '<c8' (complex64) is not supported by Kiln", r.lines().get(4));
        assertEquals("SKIP c_add_complex64 compiled - npy: dtype '<c8' (complex64) is not supported by Kiln", r.lines().get(5));
        assertEquals("SKIP d_unknown_op eager - op 'Frobnicate' has no Kiln mapping", r.lines().get(6));
        assertEquals("SKIP d_unknown_op compiled - op 'Frobnicate' has no Kiln mapping", r.lines().get(7));
        assertEquals("2 passed, 2 failed, 4 skipped", r.lines().get(8));
        assertEquals(new Summary(2, 2, 4), r.summary());
        assertEquals(1, r.summary().exitCode());
    }

    @Test
    void exitStatusIsZeroWhenNothingFailed() throws IOException {
        Tensor x = tensor(DType.FLOAT64, range(6), 2, 3);
        // 0 copies the input's dimension, -1 takes what is left.
        CaseWriter.write(root, "reshape", "Reshape", Map.of(), List.of(x, Tensor.of(new long[] {0, 3, -1}, 3)),
                List.of(tensor(DType.FLOAT64, range(6), 2, 3, 1)));
        CaseWriter.write(root, "unknown", "NotAnOp", Map.of(), List.of(x), List.of(x));

        Run r = run(Mode.EAGER);

        assertEquals(List.of("PASS reshape eager", "SKIP unknown eager - op 'NotAnOp' has no Kiln mapping",
                "1 passed, 0 failed, 1 skipped"), r.lines());
        assertEquals(0, r.summary().exitCode());
    }

    @Test
    void nanMatchesNanAndInfinitiesMustMatchExactly() throws IOException {
        double nan = Double.NaN, inf = Double.POSITIVE_INFINITY;
        Tensor x = tensor(DType.FLOAT32, new double[] {nan, inf, -inf, 1.5}, 4);
        CaseWriter.write(root, "same", "Transpose", Map.of(), List.of(x),
                List.of(tensor(DType.FLOAT32, new double[] {nan, inf, -inf, 1.5}, 4)));
        CaseWriter.write(root, "wrong_sign", "Transpose", Map.of(), List.of(x),
                List.of(tensor(DType.FLOAT32, new double[] {nan, inf, inf, 1.5}, 4)));
        CaseWriter.write(root, "nan_for_number", "Transpose", Map.of(), List.of(x),
                List.of(tensor(DType.FLOAT32, new double[] {0, inf, -inf, 1.5}, 4)));
        CaseWriter.write(root, "number_for_infinity", "Transpose", Map.of(), List.of(x),
                List.of(tensor(DType.FLOAT32, new double[] {nan, Float.MAX_VALUE, -inf, 1.5}, 4)));

        Run r = run(Mode.EAGER);

        String outside = "; 1 of 4 elements outside rtol 1.0e-3 atol 1.0e-5";
        assertEquals(List.of(
                "FAIL nan_for_number eager - got NaN at [0], expected 0.0" + outside,
                "FAIL number_for_infinity eager - got Infinity at [1], expected 3.4028235E38" + outside,
                "PASS same eager",
                "FAIL wrong_sign eager - got -Infinity at [2], expected Infinity" + outside,
                "1 passed, 3 failed, 0 skipped"), r.lines());
    }

    @Test
    void anExceptionInsideASupportedCaseIsAFailWithItsMessage() throws IOException {
        Tensor a = tensor(DType.FLOAT32, range(6), 2, 3);
        CaseWriter.write(root, "matmul_bad_shapes", "MatMul", Map.of(), List.of(a, a), List.of(a));

        Run r = run(Mode.EAGER);

        assertEquals("FAIL matmul_bad_shapes eager - KilnShapeException: matmul: shapes [2,3] and [2,3] cannot multiply:"
                + " dimension 1 of the left (3) must equal dimension 0 of the right (2)", r.lines().get(0));
    }

    @Test
    void outputDtypeMustMatchExactly() throws IOException {
        Tensor x = tensor(DType.FLOAT32, range(4), 4);
        CaseWriter.write(root, "reshape_f64", "Reshape", Map.of(), List.of(x, Tensor.of(new long[] {2, 2}, 2)),
                List.of(tensor(DType.FLOAT64, range(4), 2, 2)));

        assertEquals("FAIL reshape_f64 eager - dtype float32, expected float64", run(Mode.EAGER).lines().get(0));
    }

    @Test
    void anAttributeWithoutMappingIsASkip() throws IOException {
        Tensor x = tensor(DType.FLOAT32, range(4), 4);
        CaseWriter.write(root, "transpose_extra", "Transpose", Map.of("conjugate", 1), List.of(x), List.of(x));

        assertEquals("SKIP transpose_extra eager - attribute 'conjugate' of Transpose is not supported",
                run(Mode.EAGER).lines().get(0));
    }

    @Test
    void brokenCasesAreFailuresNotCrashes() throws IOException {
        Files.createDirectories(root.resolve("bad_json"));
        Files.writeString(root.resolve("bad_json/case.json"), "{\"op\": ");
        Files.createDirectories(root.resolve("no_op"));
        Files.writeString(root.resolve("no_op/case.json"), "{\"inputs\": [], \"outputs\": []}");
        Path missing = CaseWriter.write(root, "missing_input", "Neg", Map.of(), List.of(tensor(DType.FLOAT32, range(2), 2)),
                List.of(tensor(DType.FLOAT32, range(2), 2)));
        Files.delete(missing.resolve("input_0.npy"));

        Run r = run(Mode.EAGER);

        assertTrue(r.lines().get(0).startsWith("FAIL bad_json eager - case.json is not valid JSON"), r.lines().get(0));
        assertEquals("FAIL missing_input eager - input_0.npy: no such file", r.lines().get(1));
        assertEquals("FAIL no_op eager - case.json: \"op\" must be a non-empty string", r.lines().get(2));
        assertEquals("0 passed, 3 failed, 0 skipped", r.lines().get(3));
    }

    @Test
    void leftOutOptionalInputsAreNull() throws IOException {
        Tensor x = tensor(DType.FLOAT32, new double[] {-2, 0.5, 7}, 3);
        CaseWriter.write(root, "clip_max_only", "Clip", Map.of(), Arrays.asList(x, null, Tensor.scalar(1f)),
                List.of(tensor(DType.FLOAT32, new double[] {-2, 0.5, 1}, 3)));

        assertEquals("PASS clip_max_only eager", run(Mode.EAGER).lines().get(0));
    }

    @Test
    void casesThatNeedKernelsRunThroughThePublicApi() throws IOException {
        Tensor a = tensor(DType.FLOAT32, range(6), 2, 3);
        Tensor b = tensor(DType.FLOAT32, new double[] {10, 20, 30}, 3);
        double[] sum = range(6);
        for (int i = 0; i < 6; i++) sum[i] += 10 * (i % 3 + 1);
        CaseWriter.write(root, "add_bcast", "Add", Map.of(), List.of(a, b), List.of(tensor(DType.FLOAT32, sum, 2, 3)));

        assertEquals("PASS add_bcast eager", run(Mode.EAGER).lines().get(0));
    }
}
