package dev.kiln.npu.kernels.serving;

import dev.kiln.tensor.Npy;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Generates the kiln.* conformance cases in {@code src/test/resources/conformance/kiln}
 * from {@link PagedReference} (never from the kernels), and checks that the committed
 * files are exactly what the generator writes. Regenerate with
 * {@code -Dkiln.serving.cases.write=true}.
 */
class ServingConformanceCasesTest {
    static final Path COMMITTED = Path.of("src/test/resources/conformance/kiln");

    @TempDir
    Path fresh;

    @Test
    void committedCasesAreTheGeneratorsOutput() throws IOException {
        if (Boolean.getBoolean("kiln.serving.cases.write")) writeAll(COMMITTED);
        writeAll(fresh);
        List<Path> expected = files(fresh), actual = files(COMMITTED);
        assertEquals(expected.stream().map(fresh::relativize).toList(), actual.stream().map(COMMITTED::relativize).toList());
        for (Path f : expected) {
            assertArrayEquals(Files.readAllBytes(f), Files.readAllBytes(COMMITTED.resolve(fresh.relativize(f))), f.toString());
        }
        long bytes = 0;
        for (Path f : actual) bytes += Files.size(f);
        if (bytes > 100_000) throw new AssertionError("the kiln cases hold " + bytes + " bytes; keep them under 100 KB");
    }

    private static List<Path> files(Path root) throws IOException {
        try (Stream<Path> s = Files.walk(root)) {
            return s.filter(Files::isRegularFile).sorted().toList();
        }
    }

    static void writeAll(Path root) throws IOException {
        reshapeAndCache(root.resolve("kiln_reshape_and_cache"), new Random(11));
        paged(root.resolve("kiln_paged_attention_mixed_batch"), new Random(12), 4, 2, 16, 4, Map.of(), 1 / Math.sqrt(16), true, 0, 0);
        paged(root.resolve("kiln_paged_attention_mqa_window_softcap"), new Random(13), 4, 1, 40, 5,
                attributes("scale", 0.2, "causal", 1L, "sliding_window", 5L, "softcap", 8.0), 0.2, true, 5, 8);
        paged(root.resolve("kiln_paged_attention_non_causal_gqa8"), new Random(14), 8, 1, 12, 3,
                attributes("causal", 0L), 1 / Math.sqrt(12), false, 0, 0);
        slidingWindow(root.resolve("kiln_sliding_window_decode"), new Random(15), 6, 4, 2, 16, new long[] {3, 17, 100},
                Map.of(), 1 / Math.sqrt(16), 0);
        slidingWindow(root.resolve("kiln_sliding_window_decode_mqa_softcap"), new Random(16), 4, 2, 1, 9, new long[] {0, 41},
                attributes("scale", 0.5, "softcap", 3.0), 0.5, 3);
    }

    private static Map<String, Object> attributes(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    private static void reshapeAndCache(Path dir, Random r) throws IOException {
        int tokens = 6, kvHeads = 2, dim = 8, blocks = 4, blockSize = 3, row = kvHeads * dim;
        long[] slots = {7, -1, 0, 11, 5, -1};
        double[] key = PagedAttentionProperties.random(r, tokens * row), value = PagedAttentionProperties.random(r, tokens * row);
        double[] keyCache = PagedAttentionProperties.random(r, blocks * blockSize * row);
        double[] valueCache = PagedAttentionProperties.random(r, keyCache.length);
        double[] keyOut = keyCache.clone(), valueOut = valueCache.clone();
        for (int t = 0; t < tokens; t++) {
            if (slots[t] < 0) continue;
            System.arraycopy(key, t * row, keyOut, (int) slots[t] * row, row);
            System.arraycopy(value, t * row, valueOut, (int) slots[t] * row, row);
        }
        write(dir, "kiln.ReshapeAndCache", Map.of(),
                List.of("key", "value", "key_cache", "value_cache", "slot_mapping"),
                List.of(f32(key, tokens, kvHeads, dim), f32(value, tokens, kvHeads, dim),
                        f32(keyCache, blocks, blockSize, kvHeads, dim), f32(valueCache, blocks, blockSize, kvHeads, dim),
                        Tensor.of(slots, tokens)),
                List.of("key_cache", "value_cache"),
                List.of(f32(keyOut, blocks, blockSize, kvHeads, dim), f32(valueOut, blocks, blockSize, kvHeads, dim)));
    }

    private static void paged(Path dir, Random r, int heads, int kvHeads, int dim, int blockSize, Map<String, Object> attributes,
                              double scale, boolean causal, int window, double softcap) throws IOException {
        PagedBatch b = PagedBatch.random(r, 3, heads, kvHeads, dim, blockSize, 14, 1);
        double[] q = floats(b.query()), k = floats(b.keyCache()), v = floats(b.valueCache());
        double[] out = b.reference(q, k, v, scale, causal, window, softcap);
        write(dir, "kiln.PagedAttention", attributes,
                List.of("query", "key_cache", "value_cache", "block_tables", "context_lens", "query_start_loc"),
                List.of(f32(q, b.tokens(), heads, dim), f32(k, b.blocks(), blockSize, kvHeads, dim),
                        f32(v, b.blocks(), blockSize, kvHeads, dim), Tensor.of(b.blockTables(), b.sequences(), b.maxBlocks()),
                        Tensor.of(b.contextLens(), b.sequences()), Tensor.of(b.queryStartLoc(), b.sequences() + 1)),
                List.of("output"), List.of(f32(out, b.tokens(), heads, dim)));
    }

    private static void slidingWindow(Path dir, Random r, int window, int heads, int kvHeads, int dim, long[] positions,
                                      Map<String, Object> attributes, double scale, double softcap) throws IOException {
        int batch = positions.length, row = kvHeads * dim;
        double[] keyRing = new double[batch * window * row], valueRing = new double[keyRing.length];
        Arrays.fill(keyRing, Double.NaN);
        Arrays.fill(valueRing, Double.NaN);
        double[] query = floats(PagedAttentionProperties.random(r, batch * heads * dim)), out = new double[query.length];
        for (int b = 0; b < batch; b++) {
            int len = (int) positions[b] + 1;
            double[] k = floats(PagedAttentionProperties.random(r, len * row)), v = floats(PagedAttentionProperties.random(r, len * row));
            for (int j = 0; j < len; j++) {
                System.arraycopy(k, j * row, keyRing, (b * window + j % window) * row, row);
                System.arraycopy(v, j * row, valueRing, (b * window + j % window) * row, row);
            }
            double[] o = PagedReference.attention(Arrays.copyOfRange(query, b * heads * dim, (b + 1) * heads * dim), heads, dim,
                    k, v, len, kvHeads, new int[] {0}, 1, new int[] {len}, new int[] {0, 1}, scale, true, window, softcap);
            System.arraycopy(o, 0, out, b * heads * dim, heads * dim);
        }
        write(dir, "kiln.SlidingWindowDecode", attributes, List.of("query", "key_ring", "value_ring", "positions"),
                List.of(f32(query, batch, heads, dim), f32(keyRing, batch, window, kvHeads, dim),
                        f32(valueRing, batch, window, kvHeads, dim), Tensor.of(positions, batch)),
                List.of("output"), List.of(f32(out, batch, heads, dim)));
    }

    /** The values rounded to float32, so the reference sees exactly what the case stores. */
    private static double[] floats(double[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) out[i] = (float) v[i];
        return out;
    }

    private static Tensor f32(double[] v, int... shape) {
        float[] f = new float[v.length];
        for (int i = 0; i < v.length; i++) f[i] = (float) v[i];
        return Tensor.of(f, shape);
    }

    private static void write(Path dir, String op, Map<String, Object> attributes, List<String> inputNames, List<Tensor> inputs,
                              List<String> outputNames, List<Tensor> outputs) throws IOException {
        Files.createDirectories(dir);
        List<String> in = new ArrayList<>(), out = new ArrayList<>();
        for (int i = 0; i < inputs.size(); i++) {
            Npy.save(inputs.get(i), dir.resolve("input_" + i + ".npy"));
            in.add("{\"name\": \"" + inputNames.get(i) + "\", \"file\": \"input_" + i + ".npy\"}");
        }
        for (int i = 0; i < outputs.size(); i++) {
            Npy.save(outputs.get(i), dir.resolve("output_" + i + ".npy"));
            out.add("{\"name\": \"" + outputNames.get(i) + "\", \"file\": \"output_" + i + ".npy\"}");
        }
        String attrs = attributes.entrySet().stream().map(e -> "\"" + e.getKey() + "\": " + e.getValue())
                .collect(Collectors.joining(", "));
        String json = "{\n"
                + "  \"source\": \"generated by dev.kiln.npu.kernels.serving.ServingConformanceCasesTest from a double-precision reference\",\n"
                + "  \"op\": \"" + op + "\",\n"
                + "  \"attributes\": {" + attrs + "},\n"
                + "  \"inputs\": [\n    " + String.join(",\n    ", in) + "\n  ],\n"
                + "  \"outputs\": [\n    " + String.join(",\n    ", out) + "\n  ]\n"
                + "}\n";
        Files.writeString(dir.resolve("case.json"), json, StandardCharsets.UTF_8);
    }
}
