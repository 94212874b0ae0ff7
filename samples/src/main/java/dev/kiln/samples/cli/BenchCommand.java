package dev.kiln.samples.cli;

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

import java.io.PrintWriter;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = {
                "Runs benchmark workloads (eager, compiled or both for W1 and W2) and prints one JSON line per result: median, min and max time,"
                        + " GB/s or GFLOP/s where the workload defines them, whether Vector API bounds checks were on,"
                        + " and the worker threads.",
                "W0: STREAM copy and triad on 64M floats, peak FP32 FMA rate.  W1: gelu(x*a + b) * sigmoid(x) + x on 4M floats."
                        + "  W2: MLP x[64,1024] @ W1[1024,4096] + b1 -> gelu -> @ W2[4096,1024] + b2."
                        + "  W3: causal attention q, k, v [1,8,1024,64], the FlashAttention kernel against the unfused pattern (eager),"
                        + " with DRAM bytes (the kernel's DMA counters; the pattern's op inputs and outputs) and memory at seq 8192."
                        + "  paged: decode of 8 sequences of 2048 tokens, KV in blocks of 16, against the same attention on contiguous KV."})
final class BenchCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Parameters(index = "0", paramLabel = "W0|W1|W2|W3|paged|all|dispatch|trace",
            description = "The workload to run, or all of them; dispatch and trace measure the compiler's own overheads.")
    String workload;

    @Option(names = "--mode", paramLabel = "eager|compiled|both", defaultValue = "eager",
            description = "eager (op by op), compiled (Kiln.compile on the NPU backend; W1 and W2), or both side by side.")
    String mode;

    @Option(names = "--runs", paramLabel = "N", defaultValue = "5", description = "Measured runs (default: ${DEFAULT-VALUE}).")
    int runs;

    @Option(names = "--warmup", paramLabel = "N", defaultValue = "3", description = "Unmeasured warm-up runs (default: ${DEFAULT-VALUE}).")
    int warmup;

    @Option(names = "--no-bounds-checks",
            description = "Run with the Vector API's bounds checks off (the kiln launcher starts the JVM with -D"
                    + Workloads.OOB_CHECK_PROPERTY + "=0 for this).")
    boolean noBoundsChecks;

    @Option(names = "--small", hidden = true, description = "Tiny problem sizes, for smoke tests of the harness only.")
    boolean small;

    @Override
    public Integer call() {
        List<Workloads.Id> ids = selected();
        List<Workloads.Mode> modes = switch (mode) {
            case "eager" -> List.of(Workloads.Mode.EAGER);
            case "compiled" -> List.of(Workloads.Mode.COMPILED);
            case "both" -> List.of(Workloads.Mode.EAGER, Workloads.Mode.COMPILED);
            default -> throw new ParameterException(spec.commandLine(), "unknown mode '" + mode + "': expected eager, compiled or both");
        };
        if (runs < 1) throw new ParameterException(spec.commandLine(), "--runs must be at least 1, got " + runs);
        if (warmup < 0) throw new ParameterException(spec.commandLine(), "--warmup must be at least 0, got " + warmup);
        boolean checksOff = "0".equals(System.getProperty(Workloads.OOB_CHECK_PROPERTY));
        if (noBoundsChecks && !checksOff) {
            // The Vector API reads the property once at start-up: setting it now would change nothing.
            throw new ParameterException(spec.commandLine(), "--no-bounds-checks needs the JVM started with -D"
                    + Workloads.OOB_CHECK_PROPERTY + "=0 (the kiln launcher adds it)");
        }
        PrintWriter out = spec.commandLine().getOut();
        if (workload.equalsIgnoreCase("dispatch") || workload.equalsIgnoreCase("trace")) {
            CompilerOverheads c = new CompilerOverheads(new Timing(warmup, runs));
            out.println(workload.equalsIgnoreCase("dispatch") ? c.dispatch() : c.trace());
            out.flush();
            return 0;
        }
        Workloads w = new Workloads(small ? Workloads.Sizes.small() : Workloads.Sizes.standard(), new Timing(warmup, runs), modes);
        for (Workloads.Id id : ids) {
            for (BenchResult r : w.run(id)) {
                out.println(r.toJson());
                out.flush();
            }
        }
        return 0;
    }

    private List<Workloads.Id> selected() {
        String w = workload.toUpperCase(Locale.ROOT);
        if (w.equals("DISPATCH") || w.equals("TRACE")) return List.of();
        if (w.equals("ALL")) return Arrays.asList(Workloads.Id.values());
        for (Workloads.Id id : Workloads.Id.values()) if (id.name().equals(w)) return List.of(id);
        if (w.matches("W[4-6]")) {
            throw new ParameterException(spec.commandLine(), "workload " + w + " is not available yet: W4 to W6 (decoder"
                    + " block, decode throughput, cold/warm start) come with the compiler and serving work (kiln demo runs"
                    + " the W4 block and its cold/warm start); available now: W0, W1, W2, W3, paged, all");
        }
        throw new ParameterException(spec.commandLine(), "unknown workload '" + workload + "': expected W0, W1, W2, W3, paged, all, dispatch or trace");
    }
}
