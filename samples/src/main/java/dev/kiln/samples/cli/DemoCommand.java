package dev.kiln.samples.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.samples.DecoderBlock;
import dev.kiln.tensor.Tensor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;
import java.util.concurrent.Callable;

@Command(name = "demo", mixinStandardHelpOptions = true,
        description = {
                "Runs the W4 decoder block (d_model 512, 8 query heads, 2 KV heads, head dim 64, seq 256, RMSNorm, RoPE,"
                        + " causal GQA attention, SwiGLU MLP hidden 1536, residuals; random weights from a fixed seed).",
                "Prints a JSON line {phase, jvm_to_result_ms, first_result_ms, result_sha256} per phase, then a summary:"
                        + " first_result_ms runs from the first forward call to the output on the host, jvm_to_result_ms"
                        + " from JVM start; result_sha256 hashes the output's float32 bytes (little-endian).",
                "The cold and warm phases (compile with an empty, then a filled kernel cache) arrive with the compiler."})
final class DemoCommand implements Callable<Integer> {

    enum Phase { ALL, EAGER, COLD, WARM }

    static final long SEED = 42;
    private static final String WHY_NOT = "the graph compiler and the persistent kernel cache, which come in later work";

    @Spec
    CommandSpec spec;

    @Option(names = "--phase", paramLabel = "all|eager|cold|warm", defaultValue = "all",
            description = "Which start to demonstrate (default: all, which today runs eager only).")
    Phase phase;

    @Option(names = "--cache-dir", paramLabel = "DIR",
            description = "Kernel cache directory for the cold and warm phases.")
    Path cacheDir;

    @Override
    public Integer call() throws NoSuchAlgorithmException {
        PrintWriter out = spec.commandLine().getOut();
        switch (phase) {
            case COLD, WARM -> {
                out.println(phase.name().toLowerCase(Locale.ROOT) + " phase: not available yet: it needs " + WHY_NOT);
                return 1;
            }
            case EAGER -> eager(out);
            case ALL -> {
                eager(out);
                out.println("cold and warm phases: not available yet: they need " + WHY_NOT);
            }
        }
        out.flush();
        return 0;
    }

    private static void eager(PrintWriter out) throws NoSuchAlgorithmException {
        DecoderBlock.Config cfg = DecoderBlock.Config.w4();
        int seq = 256;
        DecoderBlock block = new DecoderBlock(cfg, SEED);
        Tensor x = Tensor.randn(SEED + 1, 1, seq, cfg.dModel());
        Tensor positions = Tensor.arange(seq);

        long t0 = System.nanoTime();
        float[] y = block.forward(x, positions).toFloatArray();
        double firstResultMs = (System.nanoTime() - t0) / 1e6;
        long jvmToResultMs = System.currentTimeMillis() - ManagementFactory.getRuntimeMXBean().getStartTime();

        String sha = sha256(y);
        ObjectNode json = new ObjectMapper().createObjectNode();
        json.put("phase", "eager");
        json.put("jvm_to_result_ms", jvmToResultMs);
        json.put("first_result_ms", Math.round(firstResultMs * 1000) / 1000.0);
        json.put("result_sha256", sha);
        out.println(json);
        out.printf(Locale.ROOT, "eager: decoder block [1,%d,%d] (%d heads, %d KV heads, head dim %d, SwiGLU %d): first result"
                        + " in %.1f ms, %d ms after JVM start; output sha256 %s...%n",
                seq, cfg.dModel(), cfg.heads(), cfg.kvHeads(), cfg.headDim(), cfg.hidden(), firstResultMs, jvmToResultMs,
                sha.substring(0, 12));
    }

    /** SHA-256 of the values as little-endian float32 bytes. */
    static String sha256(float[] values) throws NoSuchAlgorithmException {
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes.array()));
    }
}
