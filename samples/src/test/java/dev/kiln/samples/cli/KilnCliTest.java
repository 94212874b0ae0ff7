package dev.kiln.samples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.npu.Parallel;
import dev.kiln.samples.conformance.CaseWriter;
import dev.kiln.tensor.DType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

class KilnCliTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private record Result(int exit, String out, String err) {
        List<String> lines() { return out.isEmpty() ? List.of() : List.of(out.split("\n")); }
    }

    private static Result kiln(String... args) {
        CommandLine cl = KilnCli.commandLine();
        StringWriter out = new StringWriter(), err = new StringWriter();
        cl.setOut(new PrintWriter(out, true));
        cl.setErr(new PrintWriter(err, true));
        int exit = cl.execute(args);
        return new Result(exit, out.toString(), err.toString());
    }

    // ---------------------------------------------------------------- general

    @Test
    void versionAndHelp() {
        Result v = kiln("--version");
        assertEquals(0, v.exit());
        assertTrue(v.out().startsWith("kiln 0."), v.out());
        assertTrue(v.out().contains("float lanes"), v.out());
        Result h = kiln("--help");
        assertEquals(0, h.exit());
        for (String command : List.of("demo", "conformance", "bench")) assertTrue(h.out().contains(command), h.out());
    }

    @Test
    void aCommandIsRequired() {
        Result r = kiln();
        assertEquals(2, r.exit());
        assertTrue(r.err().contains("Missing command"), r.err());
    }

    // ---------------------------------------------------------------- bench

    @Test
    void benchSendsW6ToTheDemoAndRejectsUnknownWorkloads() {
        Result w6 = kiln("bench", "w6");
        assertEquals(2, w6.exit());
        assertTrue(w6.err().startsWith("W6 (cold and warm start) is what kiln demo measures"), w6.err());
        assertTrue(w6.out().isEmpty());
        Result unknown = kiln("bench", "W9");
        assertEquals(2, unknown.exit());
        assertTrue(unknown.err().startsWith("unknown workload 'W9': expected W0, W1, W2, W3, W4, W5, paged, all, dispatch or trace"),
                unknown.err());
    }

    @Test
    void benchW5GivesTokensPerSecondForBothBatchesInEachMode() throws IOException {
        Result r = kiln("bench", "w5", "--mode", "both", "--small", "--runs", "2", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, r.exit(), r.err());
        List<JsonNode> lines = r.lines().stream().map(KilnCliTest::readJson).toList();
        assertEquals(List.of("decode_batch1/eager", "decode_batch1/compiled", "decode_batch8/eager", "decode_batch8/compiled"),
                lines.stream().map(n -> n.get("name").asText() + "/" + n.get("mode").asText()).toList(), r.out());
        for (JsonNode n : lines) {
            int batch = n.get("name").asText().endsWith("8") ? 8 : 1;
            // The small sizes decode 4 tokens per sequence.
            // Both figures are printed to four significant digits.
            assertEquals(batch * 4 / (n.get("median_ms").asDouble() / 1000), n.get("tokens_per_s").asDouble(), 1e-3 * n.get("tokens_per_s").asDouble());
        }
        assertTrue(lines.get(1).has("speedup_vs_eager"), r.out());
    }

    @Test
    void benchRunsBothModesSideBySideAndRejectsBadArguments() throws IOException {
        Result both = kiln("bench", "W1", "--mode", "both", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, both.exit(), both.err());
        assertEquals(List.of("eager", "compiled"),
                both.lines().stream().map(l -> readJson(l).get("mode").asText()).toList(), both.out());
        Result all = kiln("bench", "W4", "--mode", "all", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, all.exit(), all.err());
        assertEquals(List.of("eager", "compiled", "frozen"),
                all.lines().stream().map(l -> readJson(l).get("mode").asText()).toList(), all.out());
        Result unknown = kiln("bench", "W1", "--mode", "lazy");
        assertEquals(2, unknown.exit());
        assertTrue(unknown.err().startsWith("unknown mode 'lazy'"), unknown.err());
        assertEquals(2, kiln("bench", "W1", "--runs", "0").exit());
        assertEquals(2, kiln("bench", "W1", "--warmup", "-1").exit());
        assertEquals(2, kiln("bench", "W1", "--warmup-ms", "-1").exit());
        assertEquals(2, kiln("bench", "W1", "--runs", "many").exit());
    }

    @Test
    void benchFirstCallTimesEachModeInAFreshJvm() throws IOException {
        Result r = kiln("bench", "W1", "--mode", "both", "--first-call", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, r.exit(), r.err());
        assertEquals(2, r.lines().size(), r.out());
        for (int i = 0; i < 2; i++) {
            JsonNode j = readJson(r.lines().get(i));
            assertEquals(i == 0 ? "eager" : "compiled", j.get("mode").asText(), j.toString());
            assertTrue(j.get("first_call_ms").isNumber() && j.get("first_call_ms").doubleValue() > 0, j.toString());
            assertTrue(j.get("median_ms").doubleValue() > 0, j.toString());
        }
        assertTrue(readJson(kiln("bench", "W1", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0").lines().get(0)).get("first_call_ms").isNull());
        Result w3 = kiln("bench", "W3", "--first-call", "--warmup-ms", "0");
        assertEquals(2, w3.exit());
        assertTrue(w3.err().startsWith("--first-call measures [W1, W2], not W3"), w3.err());
    }

    @Test
    void benchSideBySideGivesEachCompiledModeItsSpeedupOverEagerRoundByRound() throws IOException {
        Result r = kiln("bench", "W1", "--mode", "all", "--small", "--runs", "3", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, r.exit(), r.err());
        assertEquals(3, r.lines().size(), r.out());
        assertFalse(readJson(r.lines().get(0)).has("speedup_vs_eager"), r.lines().get(0));
        for (String line : r.lines().subList(1, 3)) assertTrue(readJson(line).get("speedup_vs_eager").doubleValue() > 0, line);
        // Alone, a mode has nothing to be compared with.
        assertFalse(readJson(kiln("bench", "W1", "--mode", "compiled", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0")
                .lines().get(0)).has("speedup_vs_eager"));
    }

    @Test
    void benchAcrossJvmsPrintsEachJvmsLinesThenTheirSpread() throws IOException {
        Result r = kiln("bench", "W1", "--mode", "both", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0", "--jvms", "2");
        assertEquals(0, r.exit(), r.err());
        assertEquals(6, r.lines().size(), r.out());
        List<JsonNode> lines = r.lines().stream().map(KilnCliTest::readJson).toList();
        assertEquals(List.of("1 eager", "1 compiled", "2 eager", "2 compiled"),
                lines.subList(0, 4).stream().map(j -> j.get("jvm").asInt() + " " + j.get("mode").asText()).toList());
        for (int s = 4; s < 6; s++) {
            JsonNode summary = lines.get(s);
            String mode = summary.get("mode").asText();
            assertEquals(s == 4 ? "eager" : "compiled", mode, summary.toString());
            assertEquals(2, summary.get("jvms").asInt());
            List<Double> medians = lines.subList(0, 4).stream().filter(j -> j.get("mode").asText().equals(mode))
                    .map(j -> j.get("median_ms").asDouble()).sorted().toList();
            assertEquals(List.of(medians.get(0), medians.get(0), medians.get(1)), List.of(summary.get("median_ms_median").asDouble(),
                    summary.get("median_ms_min").asDouble(), summary.get("median_ms_max").asDouble()), summary.toString());
            assertEquals(mode.equals("compiled"), summary.has("speedup_vs_eager_median"), summary.toString());
        }
        // The overheads name their figure by what they measure, in microseconds.
        Result dispatch = kiln("bench", "dispatch", "--runs", "1", "--warmup", "0", "--warmup-ms", "0", "--jvms", "2");
        assertEquals(0, dispatch.exit(), dispatch.err());
        JsonNode overhead = readJson(dispatch.lines().getLast());
        assertEquals(2, overhead.get("jvms").asInt(), overhead.toString());
        assertTrue(overhead.get("what").isTextual() && overhead.get("median_us_median").doubleValue() > 0, overhead.toString());
        assertEquals(2, kiln("bench", "W1", "--jvms", "-1").exit());
        Result withFirstCall = kiln("bench", "W1", "--first-call", "--jvms", "2");
        assertEquals(2, withFirstCall.exit());
        assertTrue(withFirstCall.err().startsWith("--jvms with --first-call"), withFirstCall.err());
    }

    @Test
    void benchNoBoundsChecksNeedsTheJvmFlag() {
        // Tests run with the checks on, so asking for them off must be refused rather than misreported.
        Result r = kiln("bench", "W0", "--small", "--no-bounds-checks", "--warmup-ms", "0");
        assertEquals(2, r.exit());
        assertTrue(r.err().startsWith("--no-bounds-checks needs the JVM started with"
                + " -Djdk.incubator.vector.VECTOR_ACCESS_OOB_CHECK=0"), r.err());
    }

    @Test
    void benchW1PrintsOneJsonLine() throws IOException {
        Result r = kiln("bench", "W1", "--runs", "1", "--warmup", "0", "--small", "--warmup-ms", "0");
        assertEquals(0, r.exit(), r.err());
        assertEquals(1, r.lines().size(), r.out());
        JsonNode j = assertResultShape(r.lines().get(0), "W1", "pointwise_chain");
        assertTrue(j.get("gbps").isNumber() && j.get("gbps").doubleValue() > 0, j.toString());
        assertTrue(j.get("gflops").isNull(), j.toString());
    }

    @Test
    void benchW0AndW2ReportTheirFigures() throws IOException {
        Result w0 = kiln("bench", "W0", "--runs", "1", "--warmup", "0", "--small", "--warmup-ms", "0");
        assertEquals(0, w0.exit(), w0.err());
        assertEquals(3, w0.lines().size(), w0.out());
        JsonNode copy = assertResultShape(w0.lines().get(0), "W0", "copy");
        JsonNode triad = assertResultShape(w0.lines().get(1), "W0", "triad");
        JsonNode fma = assertResultShape(w0.lines().get(2), "W0", "fma_peak");
        assertTrue(copy.get("gbps").doubleValue() > 0 && copy.get("gflops").isNull());
        assertTrue(triad.get("gbps").doubleValue() > 0 && triad.get("gflops").isNull());
        assertTrue(fma.get("gbps").isNull() && fma.get("gflops").doubleValue() > 0);

        Result w2 = kiln("bench", "W2", "--runs", "2", "--warmup", "0", "--small", "--warmup-ms", "0");
        assertEquals(0, w2.exit(), w2.err());
        JsonNode mlp = assertResultShape(w2.lines().get(0), "W2", "mlp");
        assertTrue(mlp.get("gbps").isNull() && mlp.get("gflops").doubleValue() > 0);
    }

    private static JsonNode assertResultShape(String line, String workload, String name) throws IOException {
        JsonNode j = JSON.readTree(line);
        List<String> fields = new ArrayList<>();
        j.fieldNames().forEachRemaining(fields::add);
        List<String> expected = new ArrayList<>(List.of("workload", "name", "mode", "median_ms", "min_ms", "max_ms", "gbps", "gflops",
                "oob_checks", "threads", "first_call_ms"));
        // The workloads timed side by side (modes alternating) report what could still move their figures.
        if (List.of("W1", "W2", "W4").contains(workload)) {
            expected.addAll(List.of("jit_ms_during_runs", "scalar_pieces_during_runs"));
            assertTrue(j.get("jit_ms_during_runs").asLong() >= 0 && j.get("scalar_pieces_during_runs").asLong() >= 0, line);
        }
        assertEquals(expected, fields);
        assertEquals(workload, j.get("workload").textValue());
        assertEquals(name, j.get("name").textValue());
        assertEquals("eager", j.get("mode").textValue());
        double min = j.get("min_ms").doubleValue(), median = j.get("median_ms").doubleValue(), max = j.get("max_ms").doubleValue();
        assertTrue(0 <= min && min <= median && median <= max, line);
        assertTrue(j.get("oob_checks").booleanValue(), line);
        assertEquals(Parallel.workers(), j.get("threads").intValue());
        return j;
    }

    @Test
    void benchW3ComparesTheAttentionKernelWithTheUnfusedPattern() throws IOException {
        Result r = kiln("bench", "W3", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("attention_kernel", "unfused_pattern", "attention_kernel_seq512"),
                r.lines().stream().map(l -> readJson(l).get("name").asText()).toList());
        for (String l : r.lines()) assertTrue(readJson(l).get("gflops").asDouble() > 0, l);
        // seq 64, 8 heads of 64: the kernel moves q, k, v and the output once (one query block); the pattern moves scores.
        long qkv = 8 * 64 * 64 * 4;
        assertEquals(4 * qkv, readJson(r.lines().get(0)).get("dram_bytes").asLong());
        long scores = 8 * 64 * 64 * 4;
        assertEquals(4 * qkv + 8 * scores + 64 * 64, readJson(r.lines().get(1)).get("dram_bytes").asLong());
        JsonNode longer = readJson(r.lines().get(2));
        assertTrue(longer.get("extra_memory_bytes").asLong() < longer.get("unfused_peak_memory_bytes").asLong(), longer.toString());
    }

    @Test
    void benchPagedComparesPagingWithContiguousKv() throws IOException {
        Result r = kiln("bench", "paged", "--small", "--runs", "1", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("paged_block16", "contiguous_same_kernel", "flash_sdpa_contiguous"),
                r.lines().stream().map(l -> readJson(l).get("name").asText()).toList());
        for (String l : r.lines()) assertTrue(readJson(l).get("gbps").asDouble() > 0, l);
        assertTrue(readJson(r.lines().get(0)).has("overhead_vs_contiguous"), r.lines().get(0));
    }

    @Test
    void benchW4RunsTheDecoderBlockEagerAndCompiled() throws IOException {
        Result r = kiln("bench", "W4", "--small", "--mode", "both", "--runs", "1", "--warmup", "0", "--warmup-ms", "0");
        assertEquals(0, r.exit(), r.err());
        assertEquals(List.of("eager", "compiled"), r.lines().stream().map(l -> readJson(l).get("mode").asText()).toList());
        for (String l : r.lines()) assertTrue(readJson(l).get("median_ms").asDouble() > 0, l);
    }

    @Test
    void benchDispatchAndTracePrintMicrosecondsPerCallAndPerOp() throws IOException {
        for (String w : List.of("dispatch", "trace")) {
            Result r = kiln("bench", w, "--runs", "1", "--warmup", "0", "--warmup-ms", "0");
            assertEquals(0, r.exit(), r.err());
            var json = new com.fasterxml.jackson.databind.ObjectMapper().readTree(r.lines().getFirst());
            assertEquals(w, json.get("workload").asText());
            assertTrue(json.get("median_us").asDouble() > 0, r.out());
        }
    }

    private static JsonNode readJson(String line) {
        try {
            return JSON.readTree(line);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
    }

    // ---------------------------------------------------------------- conformance

    @Test
    void conformanceExitStatusFollowsTheVerdicts() throws IOException {
        var x = CaseWriter.tensor(DType.FLOAT32, new double[] {1, 2, 3, 4, 5, 6}, 2, 3);
        var xt = CaseWriter.tensor(DType.FLOAT32, new double[] {1, 4, 2, 5, 3, 6}, 3, 2);
        CaseWriter.write(dir.resolve("good"), "transpose", "Transpose", Map.of(), List.of(x), List.of(xt));
        Result ok = kiln("conformance", "--mode", "eager", dir.resolve("good").toString());
        assertEquals(0, ok.exit(), ok.out() + ok.err());
        assertEquals(List.of("PASS transpose eager", "1 passed, 0 failed, 0 skipped"), ok.lines());

        CaseWriter.write(dir.resolve("bad"), "transpose_wrong", "Transpose", Map.of(), List.of(x), List.of(x));
        Result bad = kiln("conformance", dir.resolve("good").toString(), dir.resolve("bad").toString());
        assertEquals(1, bad.exit());
        assertEquals(List.of("PASS transpose eager", "PASS transpose compiled",
                "FAIL transpose_wrong eager - shape [3,2], expected [2,3]",
                "FAIL transpose_wrong compiled - shape [3,2], expected [2,3]",
                "2 passed, 2 failed, 0 skipped"), bad.lines());
    }

    @Test
    void conformanceRejectsMissingDirectoriesAndEmptyRuns() throws IOException {
        Result missing = kiln("conformance", dir.resolve("nowhere").toString());
        assertEquals(2, missing.exit());
        assertTrue(missing.err().startsWith("not a directory: "), missing.err());
        Files.createDirectories(dir.resolve("empty"));
        Result empty = kiln("conformance", dir.resolve("empty").toString());
        assertEquals(1, empty.exit());
        assertEquals(List.of("0 passed, 0 failed, 0 skipped"), empty.lines());
        assertTrue(empty.err().contains("no cases"), empty.err());
        assertEquals(2, kiln("conformance", "--mode", "sideways", dir.toString()).exit());
        assertEquals(2, kiln("conformance").exit());
    }

    @Test
    void cacheStatsLsVerifyAndClear() throws IOException {
        Path cacheDir = dir.resolve("kc");
        var cache = dev.kiln.cache.CacheDirectory.open(cacheDir);
        for (int i = 0; i < 3; i++) {
            var key = dev.kiln.cache.CacheKey.of("graph " + i, "[]", "device", "compiler", "options");
            cache.put(key, dev.kiln.cache.Artifact.of(java.util.Map.of("program", new byte[100 + i]), java.util.Map.of()));
            cache.get(key);
        }
        cache.get(dev.kiln.cache.CacheKey.of("graph never stored", "[]", "device", "compiler", "options"));
        String stats = kiln("cache", "stats", "--dir", cacheDir.toString()).out();
        assertTrue(stats.contains(": 3 entries"), stats);
        assertTrue(stats.contains("disk lookups by all processes: 3 hits, 1 misses, hit rate 75.0%"), stats);
        List<String> ls = kiln("cache", "ls", "--dir", cacheDir.toString()).lines();
        assertEquals(3, ls.size(), String.join("\n", ls));
        assertTrue(ls.stream().allMatch(l -> l.contains("  program of graph ") && l.contains(" for []  ")), String.join("\n", ls));
        Path victim = Path.of(ls.getFirst().substring(ls.getFirst().lastIndexOf(' ') + 1));
        byte[] bytes = java.nio.file.Files.readAllBytes(victim);
        bytes[bytes.length - 1] ^= 1;
        java.nio.file.Files.write(victim, bytes);
        Result verify = kiln("cache", "verify", "--dir", cacheDir.toString());
        assertEquals(0, verify.exit(), verify.err());
        assertTrue(verify.out().contains("3 entries checked, 2 valid, 1 removed"), verify.out());
        assertTrue(kiln("cache", "clear", "--dir", cacheDir.toString()).out().startsWith("removed 2 entries"));
        assertTrue(kiln("cache", "stats", "--dir", cacheDir.toString()).out().contains(": 0 entries"));
    }

    // ---------------------------------------------------------------- demo

    @Test
    void demoRunsEagerColdAndWarmInFreshJvmsAndWarmCompilesNothing() throws IOException {
        Result r = kiln("demo", "--cache-dir", dir.resolve("cache").toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        List<String> lines = r.lines();
        assertEquals(4, lines.size(), r.out());
        List<JsonNode> phases = new ArrayList<>();
        for (int i = 0; i < 3; i++) phases.add(JSON.readTree(lines.get(i)));
        List<String> fields = new ArrayList<>();
        phases.get(0).fieldNames().forEachRemaining(fields::add);
        assertEquals(List.of("phase", "jvm_to_result_ms", "first_result_ms", "compile_ms", "disk_hits", "memory_hits",
                "compiles", "result_sha256"), fields);
        assertEquals(List.of("eager", "cold", "warm"), phases.stream().map(j -> j.get("phase").textValue()).toList());
        for (JsonNode j : phases) {
            assertTrue(j.get("first_result_ms").doubleValue() > 0, j.toString());
            assertTrue(j.get("jvm_to_result_ms").longValue() >= j.get("first_result_ms").doubleValue(), j.toString());
            assertTrue(j.get("result_sha256").textValue().matches("[0-9a-f]{64}"), j.toString());
        }
        JsonNode cold = phases.get(1), warm = phases.get(2);
        assertTrue(cold.get("compiles").longValue() >= 1, cold.toString());
        assertEquals(0, cold.get("disk_hits").longValue(), cold.toString());
        assertEquals(0, warm.get("compiles").longValue(), "a warm start compiles nothing: " + warm);
        assertEquals(cold.get("compiles").longValue(), warm.get("disk_hits").longValue(), warm.toString());
        assertEquals(cold.get("result_sha256"), warm.get("result_sha256"), "cold and warm results are bit-identical");
        assertTrue(lines.get(3).startsWith("JVM start to first result: eager "), lines.get(3));
        assertTrue(lines.get(3).contains("cold and warm results bit-identical"), lines.get(3));
        // The cold phase left the program and the module's proxy class, which the warm phase defined from the cache.
        String ls = kiln("cache", "ls", "--dir", dir.resolve("cache").toString()).out();
        assertTrue(ls.contains("proxy class of module dev.kiln.samples.DecoderBlock  "), ls);
        assertTrue(ls.contains("program of graph "), ls);
    }

    @Test
    void demoRoundsAlternateThePhasesAndSummariseMedians() throws IOException {
        Result r = kiln("demo", "--rounds", "2", "--cache-dir", dir.resolve("rounds").toString());
        assertEquals(0, r.exit(), r.out() + r.err());
        List<String> lines = r.lines();
        assertEquals(7, lines.size(), r.out());
        List<String> phases = new ArrayList<>();
        for (int i = 0; i < 6; i++) phases.add(JSON.readTree(lines.get(i)).get("phase").textValue());
        assertEquals(List.of("eager", "cold", "warm", "eager", "cold", "warm"), phases);
        assertEquals(0, JSON.readTree(lines.get(4)).get("disk_hits").longValue(), "every cold phase starts from an empty cache");
        assertTrue(lines.get(6).startsWith("JVM start to first result, median of 2 rounds (min to max): eager "), lines.get(6));
        assertTrue(lines.get(6).contains("cold and warm results bit-identical in every round"), lines.get(6));
        assertEquals(2, kiln("demo", "--rounds", "0").exit());
        assertEquals(2, kiln("demo", "--phase", "eager", "--rounds", "2").exit());
    }

    @Test
    void demoEagerIsDeterministicAndRejectsUnknownPhases() throws IOException {
        Result first = kiln("demo", "--phase", "eager");
        assertEquals(0, first.exit(), first.err());
        assertTrue(first.lines().get(1).startsWith("eager: decoder block [1,256,512]"), first.lines().get(1));
        // A fixed seed gives the same bits every time, whatever the JIT has compiled meanwhile.
        JsonNode a = JSON.readTree(first.lines().get(0)), b = JSON.readTree(kiln("demo", "--phase", "eager").lines().get(0));
        assertEquals(a.get("result_sha256"), b.get("result_sha256"));
        assertEquals(2, kiln("demo", "--phase", "lukewarm").exit());
    }

    @Test
    void resultHashIsOverLittleEndianFloat32Bytes() throws Exception {
        // SHA-256 of the 8 bytes 00 00 80 3f 00 00 00 c0 (1.0f and -2.0f), computed independently.
        assertEquals(sha256Hex(new byte[] {0, 0, (byte) 0x80, 0x3f, 0, 0, 0, (byte) 0xc0}),
                DemoPhase.sha256(new float[] {1f, -2f}));
    }

    private static String sha256Hex(byte[] bytes) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (byte b : java.security.MessageDigest.getInstance("SHA-256").digest(bytes)) sb.append(String.format("%02x", b));
        return sb.toString();
    }
}
