package dev.kiln.samples.conformance;

import dev.kiln.samples.conformance.ConformanceRunner.Mode;
import dev.kiln.samples.conformance.ConformanceRunner.Summary;
import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnShapeException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The ONNX Attention cases generated in npu-exec's test resources (a float64 numpy
 * reference of the specification, see generate.py there), run through the conformance
 * runner in both modes.
 */
class OnnxAttentionConformanceTest {
    private static final Path CASES = Path.of("../npu-exec/src/test/resources/conformance/onnx_attention");
    private static final int CASE_COUNT = 21;

    private static List<String> run(Mode mode, Summary[] summary) throws IOException {
        StringWriter text = new StringWriter();
        summary[0] = new ConformanceRunner(List.of(mode)).run(List.of(CASES), new PrintWriter(text));
        return Arrays.asList(text.toString().split("\n"));
    }

    @Test
    void everyAttentionCasePassesEagerly() throws IOException {
        Summary[] s = new Summary[1];
        List<String> lines = run(Mode.EAGER, s);
        assertEquals(CASE_COUNT, s[0].passed(), String.join("\n", lines));
        assertEquals(0, s[0].failed() + s[0].skipped(), String.join("\n", lines));
        for (String name : List.of("attention_3d_causal_past", "attention_4d_past_present", "attention_4d_nonpad_kv_seqlen_causal",
                "attention_4d_past_causal_float_mask_softcap", "attention_4d_fp16_causal_softcap")) {
            assertTrue(lines.contains("PASS " + name + " eager"), name + " missing in\n" + String.join("\n", lines));
        }
    }

    @Test
    void everyAttentionCasePassesCompiled() throws IOException {
        Summary[] s = new Summary[1];
        List<String> lines = run(Mode.COMPILED, s);
        assertEquals(CASE_COUNT, s[0].passed(), String.join("\n", lines));
    }

    private static Tensor random(int... shape) { return Tensor.randn(3, shape); }

    @Test
    void threeDimensionalInputsNeedTheHeadCounts() {
        OnnxNode node = new OnnxNode("Attention", Attributes.none(), List.of(random(1, 2, 8), random(1, 3, 8), random(1, 3, 8)));
        KilnShapeException e = assertThrows(KilnShapeException.class, () -> OnnxOps.run(node));
        assertEquals("Attention: 3-D inputs need the q_num_heads and kv_num_heads attributes", e.getMessage());
    }

    @Test
    void theScoreOutputIsUnsupportedNotWrong() throws Exception {
        OnnxNode node = new OnnxNode("Attention", attributes("{\"qk_matmul_output_mode\": 1}"),
                List.of(random(1, 1, 2, 4), random(1, 1, 3, 4), random(1, 1, 3, 4)));
        UnsupportedCaseException e = assertThrows(UnsupportedCaseException.class, () -> OnnxOps.run(node));
        assertTrue(e.getMessage().startsWith("Attention: qk_matmul_output_mode 1"), e.getMessage());
    }

    @Test
    void aSoftmaxPrecisionAboveTheKernelsIsUnsupported() throws Exception {
        OnnxNode node = new OnnxNode("Attention", attributes("{\"softmax_precision\": 11}"),
                List.of(random(1, 1, 2, 4), random(1, 1, 3, 4), random(1, 1, 3, 4)));
        UnsupportedCaseException e = assertThrows(UnsupportedCaseException.class, () -> OnnxOps.run(node));
        assertEquals("Attention: softmax_precision 11 for float32 inputs: Kiln's softmax runs in float32 (float64 only for"
                + " float64 inputs)", e.getMessage());
        OnnxNode single = new OnnxNode("Attention", attributes("{\"softmax_precision\": 1}"),
                List.of(random(1, 1, 2, 4), random(1, 1, 3, 4), random(1, 1, 3, 4)));
        assertEquals(3, OnnxOps.run(single).size());
    }

    @Test
    void aMaskLongerThanTheKeysIsRejected() {
        Tensor mask = Tensor.ones(DType.BOOL, 2, 5);
        OnnxNode node = new OnnxNode("Attention", Attributes.none(),
                List.of(random(1, 1, 2, 4), random(1, 1, 3, 4), random(1, 1, 3, 4), mask));
        KilnShapeException e = assertThrows(KilnShapeException.class, () -> OnnxOps.run(node));
        assertEquals("Attention: attn_mask of shape [2,5] is longer than the total key length 3", e.getMessage());
    }

    private static Attributes attributes(String json) throws IOException {
        com.fasterxml.jackson.databind.JsonNode node = new com.fasterxml.jackson.databind.ObjectMapper().readTree(json);
        java.util.Map<String, com.fasterxml.jackson.databind.JsonNode> map = new java.util.LinkedHashMap<>();
        node.fields().forEachRemaining(e -> map.put(e.getKey(), e.getValue()));
        return new Attributes(map);
    }
}
