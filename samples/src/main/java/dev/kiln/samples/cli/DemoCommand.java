package dev.kiln.samples.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.kiln.samples.bench.Timing;
import dev.kiln.tensor.Npy;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Stream;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {
                "Runs the W4 decoder block (d_model 512, 8 query heads, 2 KV heads, head dim 64, seq 256, RMSNorm, RoPE,"
                        + " causal GQA attention, SwiGLU MLP hidden 1536, residuals; random weights from a fixed seed),"
                        + " each phase in a fresh JVM: eager; cold (Kiln.compile on the NPU backend with an emptied kernel"
                        + " cache); warm (the same with the cache the cold run left).",
                "Prints one JSON line per phase {phase, jvm_to_result_ms, first_result_ms, compile_ms, disk_hits,"
                        + " memory_hits, compiles, result_sha256}, then a summary. jvm_to_result_ms runs from the JVM's"
                        + " start time to the first result on the host; first_result_ms from the first compile (or"
                        + " forward) call; result_sha256 hashes the output's float32 bytes (little-endian).",
                "The cache directory is --cache-dir, else KILN_CACHE_DIR, else a new temporary folder."})
final class DemoCommand implements Callable<Integer> {

    enum Phase { ALL, EAGER, COLD, WARM }

    @Spec
    CommandSpec spec;

    @Option(names = "--phase", paramLabel = "all|eager|cold|warm", defaultValue = "all",
            description = "Which start to run (default: all three, each in a fresh JVM).")
    Phase phase;

    @Option(names = "--cache-dir", paramLabel = "DIR", description = "Kernel cache directory for the cold and warm phases.")
    Path cacheDir;

    @Option(names = "--rounds", paramLabel = "N", defaultValue = "1",
            description = "With all phases: run the three N times, alternating, and summarise their medians (default 1).")
    int rounds;

    @Option(names = "--output", paramLabel = "FILE", hidden = true, description = "Also save the result as .npy.")
    Path output;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        if (rounds < 1) throw new ParameterException(spec.commandLine(), "--rounds must be at least 1, got " + rounds);
        if (rounds > 1 && phase != Phase.ALL) throw new ParameterException(spec.commandLine(), "--rounds needs --phase all");
        Path dir = cacheDirectory();
        switch (phase) {
            case ALL -> {
                return all(out, dir);
            }
            case COLD -> {
                empty(dir);
                DemoPhase.run(out, "cold", dir, output);
            }
            case WARM -> DemoPhase.run(out, "warm", dir, output);
            case EAGER -> DemoPhase.run(out, "eager", dir, output);
        }
        out.flush();
        return 0;
    }

    private Path cacheDirectory() throws IOException {
        if (cacheDir != null) return cacheDir;
        String env = System.getenv("KILN_CACHE_DIR");
        if (env != null && !env.isBlank()) return Path.of(env);
        return phase == Phase.ALL || phase == Phase.COLD ? Files.createTempDirectory("kiln-demo-cache") : null;
    }

    /**
     * Each phase in a fresh JVM, {@code rounds} times over (the phases alternate, so a change
     * in the machine's load falls on all three), then a summary comparing them.
     */
    private int all(PrintWriter out, Path dir) throws IOException, InterruptedException {
        Map<String, List<Double>> millis = new LinkedHashMap<>();
        String coldDigest = null;
        boolean identical = true;
        float[] eager = null, compiled = null;
        for (int r = 0; r < rounds; r++) {
            for (String p : List.of("eager", "cold", "warm")) {
                Path result = Files.createTempFile("kiln-demo-" + p, ".npy");
                if (p.equals("cold")) empty(dir);
                JsonNode json = runChild(out, p, dir, result);
                millis.computeIfAbsent(p, k -> new ArrayList<>()).add(json.get("jvm_to_result_ms").asDouble());
                String digest = json.get("result_sha256").asText();
                if (!p.equals("eager")) {
                    if (coldDigest == null) coldDigest = digest;
                    identical &= coldDigest.equals(digest);
                }
                if (r == 0 && !p.equals("warm")) {
                    float[] values = Npy.load(result).toFloatArray();
                    if (p.equals("eager")) eager = values;
                    else compiled = values;
                }
                Files.deleteIfExists(result);
            }
        }
        double maxDiff = 0;
        for (int i = 0; i < eager.length; i++) maxDiff = Math.max(maxDiff, Math.abs(eager[i] - compiled[i]));
        double eagerMs = stats(millis.get("eager")).medianMs(), coldMs = stats(millis.get("cold")).medianMs(),
                warmMs = stats(millis.get("warm")).medianMs();
        String results = identical ? "bit-identical" : "DIFFER";
        if (rounds == 1) {
            out.printf(Locale.ROOT, "JVM start to first result: eager %.0f ms, cold %.0f ms, warm %.0f ms (warm/cold %.2f, warm - eager %+.0f ms);"
                            + " cold and warm results %s; compiled vs eager max abs difference %.3g%n",
                    eagerMs, coldMs, warmMs, warmMs / coldMs, warmMs - eagerMs, results, maxDiff);
        } else {
            out.printf(Locale.ROOT, "JVM start to first result, median of %d rounds (min to max): eager %s, cold %s, warm %s"
                            + " (warm/cold %.2f, warm - eager %+.0f ms); cold and warm results %s in every round;"
                            + " compiled vs eager max abs difference %.3g%n",
                    rounds, spread(millis.get("eager")), spread(millis.get("cold")), spread(millis.get("warm")),
                    warmMs / coldMs, warmMs - eagerMs, results, maxDiff);
        }
        out.flush();
        return identical ? 0 : 1;
    }

    /**
     * Runs phase {@code p} in a fresh JVM with this JVM's options, echoes its JSON line and
     * returns it. The child starts at {@link DemoPhase}'s main, not the command line's: parsing
     * with picocli took about 100 ms of the phase's JVM start to first result, and it is not
     * Kiln's time.
     */
    private JsonNode runChild(PrintWriter out, String p, Path dir, Path result) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), DemoPhase.class.getName(), p, dir.toString(), result.toString()));
        Process proc = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String text = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (proc.waitFor() != 0) throw new IllegalStateException("the " + p + " phase failed:\n" + text);
        String jsonLine = text.lines().filter(l -> l.startsWith("{")).findFirst()
                .orElseThrow(() -> new IllegalStateException("the " + p + " phase printed no result:\n" + text));
        out.println(jsonLine);
        out.flush();
        return new ObjectMapper().readTree(jsonLine);
    }

    private static Timing.Stats stats(List<Double> values) {
        return Timing.Stats.of(values.stream().mapToDouble(Double::doubleValue).toArray());
    }

    /** "1650 ms (1580 to 1720)". */
    private static String spread(List<Double> values) {
        Timing.Stats s = stats(values);
        return String.format(Locale.ROOT, "%.0f ms (%.0f to %.0f)", s.medianMs(), s.minMs(), s.maxMs());
    }

    /** Empties a cache directory (the cold phase starts from nothing). */
    private static void empty(Path dir) throws IOException {
        if (dir == null || !Files.exists(dir)) return;
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                if (!p.equals(dir)) Files.delete(p);
            }
        }
    }
}
