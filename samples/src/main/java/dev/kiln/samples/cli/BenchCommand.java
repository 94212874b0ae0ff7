package dev.kiln.samples.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.samples.bench.BenchResult;
import dev.kiln.samples.bench.CompilerOverheads;
import dev.kiln.samples.bench.Timing;
import dev.kiln.samples.bench.Workloads;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {
                "Runs benchmark workloads (eager, compiled or both for W1, W2, W4 and W5) and prints one JSON line per result: median, min and max time,"
                        + " GB/s or GFLOP/s where the workload defines them, whether Vector API bounds checks were on,"
                        + " and the worker threads.",
                "W0: STREAM copy and triad on 64M floats, peak FP32 FMA rate.  W1: gelu(x*a + b) * sigmoid(x) + x on 4M floats."
                        + "  W2: MLP x[64,1024] @ W1[1024,4096] + b1 -> gelu -> @ W2[4096,1024] + b2."
                        + "  W3: causal attention q, k, v [1,8,1024,64], the FlashAttention kernel against the unfused pattern (eager),"
                        + " with DRAM bytes (the kernel's DMA counters; the pattern's op inputs and outputs) and memory at seq 8192."
                        + "  W4: the LLaMA-style decoder block of kiln demo, batch 1, seq 256."
                        + "  W5: greedy decoding of a LLaMA-style model (8 layers of W4's block, vocab 32000) from a paged KV cache,"
                        + " batch 1 and 8, 16 tokens per sequence after a 256-token prompt; tokens/s."
                        + "  paged: decode of 8 sequences of 2048 tokens, KV in blocks of 16, against the same attention on contiguous KV."})
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "W0|W1|W2|W3|W4|W5|paged|all|dispatch|trace",
            description = "The workload to run, or all of them; dispatch and trace measure the compiler's own overheads.")
    String workload;

    @Option(names = "--mode", paramLabel = "eager|compiled|frozen|both|all", defaultValue = "eager",
            description = "eager (op by op), compiled (Kiln.compile on the NPU backend; W1, W2, W4 and W5), frozen (compiled with"
                    + " frozen weights), both (eager and compiled) or all three, side by side, their calls alternating (so each"
                    + " mode's figure includes the others' cache traffic: for an absolute rate, run one mode alone).")
    String mode;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "15", description = "Measured runs (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "3", description = "Unmeasured warm-up runs, at least (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--warmup-ms", paramLabel = "MS", defaultValue = "5000",
            description = "Warm up for at least this long, then until the JIT has been quiet for a second (at most 30 s in all); "
                    + "0: by run count only (default: ${DEFAULT-VALUE}).")
    long warmupMillis;

    @Option(names = "--no-bounds-checks",
            description = "Run with the Vector API's bounds checks off (the kiln launcher starts the JVM with -D"
                    + Workloads.OOB_CHECK_PROPERTY + "=0 for this).")
    boolean noBoundsChecks;

    @Option(names = "--small", hidden = true, description = "Tiny problem sizes, for smoke tests of the harness only.")
    boolean small;

    @Option(names = "--first-call",
            description = "Also time the first call (Kiln.compile included in compiled mode) of W1 or W2 in a fresh JVM per mode:"
                    + " a child java process with the kernel cache off; first_call_ms in the JSON line, the other figures"
                    + " from the same JVM's later runs.")
    boolean firstCall;

    @Option(names = "--in-this-jvm", hidden = true, description = "With --first-call: measure here (the child process's side).")
    boolean inThisJvm;

    @Option(names = "--jvms", paramLabel = "N", defaultValue = "0",
            description = "Run the measurement in N fresh JVMs, one after another, each line with its \"jvm\" number, then one"
                    + " summary line per result (\"jvms\": N): the median, min and max across the JVMs of median_ms (median_us"
                    + " for dispatch and trace) and of speedup_vs_eager. On a shared machine one JVM's figures vary with the JVM"
                    + " and the hour; 0 (the default): measure in this JVM.")
    int jvms;

    @Override
    public Integer call() {
        // Steady-state figures come after the bench's own warm-up runs: a background warm-up
        // asked for with -Dkiln.warmup=true would only compete with them. First calls keep it.
        if (!firstCall) System.setProperty("kiln.warmup", "false");
        List<Workloads.Id> ids = selected();
        List<Workloads.Mode> modes = switch (mode) {
            case "eager" -> List.of(Workloads.Mode.EAGER);
            case "compiled" -> List.of(Workloads.Mode.COMPILED);
            case "frozen" -> List.of(Workloads.Mode.FROZEN);
            case "both" -> List.of(Workloads.Mode.EAGER, Workloads.Mode.COMPILED);
            case "all" -> List.of(Workloads.Mode.EAGER, Workloads.Mode.COMPILED, Workloads.Mode.FROZEN);
            default -> throw new ParameterException(spec.commandLine(), "unknown mode '" + mode + "': expected eager, compiled, frozen, both or all");
        };
        if (runs < 1) throw new ParameterException(spec.commandLine(), "--runs must be at least 1, got " + runs);
        if (warmup < 0) throw new ParameterException(spec.commandLine(), "--warmup must be at least 0, got " + warmup);
        if (warmupMillis < 0) throw new ParameterException(spec.commandLine(), "--warmup-ms must be at least 0, got " + warmupMillis);
        boolean checksOff = "0".equals(System.getProperty(Workloads.OOB_CHECK_PROPERTY));
        if (noBoundsChecks && !checksOff) {
            // The Vector API reads the property once at start-up: setting it now would change nothing.
            throw new ParameterException(spec.commandLine(), "--no-bounds-checks needs the JVM started with -D"
                    + Workloads.OOB_CHECK_PROPERTY + "=0 (the kiln launcher adds it)");
        }
        if (jvms < 0) throw new ParameterException(spec.commandLine(), "--jvms must be at least 0, got " + jvms);
        if (jvms > 0 && firstCall) {
            throw new ParameterException(spec.commandLine(), "--jvms with --first-call: first calls already run in a fresh JVM each");
        }
        PrintWriter out = spec.commandLine().getOut();
        if (jvms > 0) return acrossJvms(out);
        if (workload.equalsIgnoreCase("dispatch") || workload.equalsIgnoreCase("trace")) {
            CompilerOverheads c = new CompilerOverheads(new Timing(warmup, runs, warmupMillis));
            out.println(workload.equalsIgnoreCase("dispatch") ? c.dispatch() : c.trace());
            out.flush();
            return 0;
        }
        if (firstCall) return firstCalls(ids, modes, out);
        Workloads w = new Workloads(small ? Workloads.Sizes.small() : Workloads.Sizes.standard(), new Timing(warmup, runs, warmupMillis), modes);
        for (Workloads.Id id : ids) {
            for (BenchResult r : w.run(id)) {
                out.println(r.toJson());
                out.flush();
            }
        }
        return 0;
    }

    /** Each workload and mode in a child JVM of its own (unless this is that child), printing its JSON line. */
    private int firstCalls(List<Workloads.Id> selected, List<Workloads.Mode> modes, PrintWriter out) {
        // "all" means all the workloads whose first call is measured.
        List<Workloads.Id> ids = workload.equalsIgnoreCase("all")
                ? selected.stream().filter(Workloads.FIRST_CALL_WORKLOADS::contains).toList() : selected;
        for (Workloads.Id id : ids) {
            if (!Workloads.FIRST_CALL_WORKLOADS.contains(id)) {
                throw new ParameterException(spec.commandLine(), "--first-call measures " + Workloads.FIRST_CALL_WORKLOADS + ", not " + id);
            }
        }
        for (Workloads.Id id : ids) {
            for (Workloads.Mode m : modes) {
                if (inThisJvm) {
                    Workloads w = new Workloads(small ? Workloads.Sizes.small() : Workloads.Sizes.standard(), new Timing(warmup, runs, warmupMillis), List.of(m));
                    for (BenchResult r : w.firstCall(id)) out.println(r.toJson());
                } else {
                    out.println(inChildJvm(id, m));
                }
                out.flush();
            }
        }
        return 0;
    }

    /** Runs this command for one workload and mode in a fresh JVM with the same JVM options, kernel cache off; its JSON line. */
    private String inChildJvm(Workloads.Id id, Workloads.Mode m) {
        // A cold compile: no program or tile loop from an earlier run's cache.
        List<String> lines = runChild(List.of("-Dkiln.cache=off"), List.of(id.name(), "--mode", m.name().toLowerCase(Locale.ROOT),
                "--first-call", "--in-this-jvm"), "the first-call run of " + id + " " + m);
        return lines.getFirst();
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    /** The fields that name a result line (workloads have a name and a mode; the overheads, what they measure). */
    private static final List<String> IDENTITY = List.of("workload", "name", "what", "mode");
    /** The figures whose spread across JVMs a summary line gives. */
    private static final List<String> SPREAD = List.of("median_ms", "median_us", "speedup_vs_eager");

    /**
     * The measurement in {@link #jvms} fresh JVMs, one after another: each JVM's lines as they
     * come (with its number), then a summary line per result.
     */
    private int acrossJvms(PrintWriter out) {
        Map<String, List<ObjectNode>> byResult = new LinkedHashMap<>();
        List<String> args = List.of(workload, "--mode", mode);
        for (int jvm = 1; jvm <= jvms; jvm++) {
            for (String line : runChild(List.of(), args, "bench " + workload + " in JVM " + jvm)) {
                ObjectNode n = readObject(line);
                n.put("jvm", jvm);
                out.println(n);
                out.flush();
                StringBuilder key = new StringBuilder();
                for (String field : IDENTITY) key.append(n.path(field).asText()).append('/');
                byResult.computeIfAbsent(key.toString(), k -> new ArrayList<>()).add(n);
            }
        }
        for (List<ObjectNode> results : byResult.values()) {
            ObjectNode first = results.getFirst(), summary = JSON.createObjectNode();
            for (String field : IDENTITY) if (first.has(field)) summary.set(field, first.get(field));
            summary.put("jvms", results.size());
            for (String field : SPREAD) spread(summary, field, results);
            out.println(summary);
        }
        out.flush();
        return 0;
    }

    /**
     * {@code field}'s median, min and max over the {@code results} that have it as a number, as
     * field_median, field_min and field_max; nothing when none has.
     */
    private static void spread(ObjectNode summary, String field, List<ObjectNode> results) {
        double[] v = results.stream().filter(r -> r.path(field).isNumber()).mapToDouble(r -> r.get(field).doubleValue()).sorted().toArray();
        if (v.length == 0) return;
        // The lower middle for an even count: a median that is one of the measured figures.
        summary.put(field + "_median", v[(v.length - 1) / 2]);
        summary.put(field + "_min", v[0]);
        summary.put(field + "_max", v[v.length - 1]);
    }

    private static ObjectNode readObject(String line) {
        try {
            return (ObjectNode) JSON.readTree(line);
        } catch (IOException | ClassCastException e) {
            throw new IllegalStateException("a child JVM printed a line that is not a JSON object: " + line, e);
        }
    }

    /**
     * Runs {@code kiln bench} with {@code benchArgs} and this command's run options in a fresh JVM
     * with this JVM's options plus {@code jvmOptions}; returns its JSON lines (at least one).
     */
    private List<String> runChild(List<String> jvmOptions, List<String> benchArgs, String what) {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
        cmd.addAll(jvmOptions);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), KilnCli.class.getName(), "bench"));
        cmd.addAll(benchArgs);
        cmd.addAll(List.of("--runs", Integer.toString(runs), "--warmup", Integer.toString(warmup), "--warmup-ms", Long.toString(warmupMillis)));
        if (small) cmd.add("--small");
        if (noBoundsChecks) cmd.add("--no-bounds-checks");
        try {
            Process proc = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            String text = new String(proc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (proc.waitFor() != 0) throw new IllegalStateException(what + " failed:\n" + text);
            List<String> lines = text.lines().filter(l -> l.startsWith("{")).toList();
            if (lines.isEmpty()) throw new IllegalStateException(what + " printed no result:\n" + text);
            return lines;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot start a JVM for " + what, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted during " + what, e);
        }
    }

    private List<Workloads.Id> selected() {
        String w = workload.toUpperCase(Locale.ROOT);
        if (w.equals("DISPATCH") || w.equals("TRACE")) return List.of();
        if (w.equals("ALL")) return Arrays.asList(Workloads.Id.values());
        for (Workloads.Id id : Workloads.Id.values()) if (id.name().equals(w)) return List.of(id);
        if (w.equals("W6")) {
            throw new ParameterException(spec.commandLine(), "W6 (cold and warm start) is what kiln demo measures, in fresh JVMs;"
                    + " kiln bench runs W0, W1, W2, W3, W4, W5, paged, all");
        }
        throw new ParameterException(spec.commandLine(), "unknown workload '" + workload
                + "': expected W0, W1, W2, W3, W4, W5, paged, all, dispatch or trace");
    }
}
