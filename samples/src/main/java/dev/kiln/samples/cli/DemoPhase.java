package dev.kiln.samples.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.Backend;
import dev.kiln.CompileOptions;
import dev.kiln.Kiln;
import dev.kiln.opt.npu.NpuGraphCompiler;
import dev.kiln.samples.DecoderBlock;
import dev.kiln.tensor.Npy;
import dev.kiln.tensor.Tensor;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/**
 * One phase of {@code kiln demo}: the W4 block from JVM start to its first result, printed
 * as a JSON line and a sentence. {@link DemoCommand} runs each phase in a fresh JVM through
 * {@link #main}.
 */
final class DemoPhase {
    static final long SEED = 42;
    private static final int SEQ = 256;

    private DemoPhase() {}

    /** {@code phase cacheDir output}: the phase's name, the kernel cache directory and the .npy file for the result. */
    public static void main(String[] args) throws Exception {
        if (args.length != 3) throw new IllegalArgumentException("usage: DemoPhase eager|cold|warm CACHE_DIR OUTPUT.npy");
        PrintWriter out = new PrintWriter(System.out, false, StandardCharsets.UTF_8);
        run(out, args[0], Path.of(args[1]), Path.of(args[2]));
        out.flush();
    }

    /**
     * Runs phase {@code name} (eager, cold or warm) in this JVM with the kernel cache at
     * {@code dir}; saves the result to {@code output} when not null.
     */
    static void run(PrintWriter out, String name, Path dir, Path output) throws IOException, NoSuchAlgorithmException {
        if (dir != null) System.setProperty("kiln.cache.dir", dir.toString());
        DecoderBlock.Config cfg = DecoderBlock.Config.w4();
        Tensor x = Tensor.randn(SEED + 1, 1, SEQ, cfg.dModel());
        Tensor positions = Tensor.arange(SEQ);

        long t0 = System.nanoTime();
        DecoderBlock block = new DecoderBlock(cfg, SEED);
        if (!name.equals("eager")) block = Kiln.compile(block, CompileOptions.defaults().backend(Backend.NPU));
        Tensor result = block.forward(x, positions);
        float[] y = result.toFloatArray();
        double firstResultMs = (System.nanoTime() - t0) / 1e6;
        long jvmToResultMs = System.currentTimeMillis() - ManagementFactory.getRuntimeMXBean().getStartTime();

        NpuGraphCompiler.Counts c = name.equals("eager") ? new NpuGraphCompiler.Counts(0, 0, 0, 0) : NpuGraphCompiler.counts();
        String sha = sha256(y);
        // Only now, with the result in hand: creating the JSON mapper takes 40 ms of a fresh JVM.
        ObjectNode json = new ObjectMapper().createObjectNode();
        json.put("phase", name);
        json.put("jvm_to_result_ms", jvmToResultMs);
        json.put("first_result_ms", Math.round(firstResultMs * 1000) / 1000.0);
        json.put("compile_ms", Math.round(c.compileMillis() * 1000) / 1000.0);
        json.put("disk_hits", c.diskHits());
        json.put("memory_hits", c.memoryHits());
        json.put("compiles", c.compiles());
        json.put("result_sha256", sha);
        out.println(json);
        out.printf(Locale.ROOT, "%s: decoder block [1,%d,%d] (%d heads, %d KV heads, head dim %d, SwiGLU %d): first result"
                        + " in %.1f ms, %d ms after JVM start; %d compiles, %d disk hits; output sha256 %s...%n",
                name, SEQ, cfg.dModel(), cfg.heads(), cfg.kvHeads(), cfg.headDim(), cfg.hidden(), firstResultMs, jvmToResultMs,
                c.compiles(), c.diskHits(), sha.substring(0, 12));
        if (output != null) Npy.save(result, output);
    }

    /** SHA-256 of the values as little-endian float32 bytes. */
    static String sha256(float[] values) throws NoSuchAlgorithmException {
        ByteBuffer bytes = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asFloatBuffer().put(values);
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes.array()));
    }
}
