package dev.kiln.cache;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/** Shared helpers: keys and artifacts derived from seeds, child JVMs, captured warnings. */
final class CacheTesting {
    private CacheTesting() {}

    static String hexOf(String s) {
        try {
            return HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }

    static CacheKey key(long id) {
        return CacheKey.of("kiln-graph 1\n%0 = input f32[" + id + "]\nreturn %0\n", "f32[" + id + "]", "cpu avx2 x2", "test-compiler 1", "opt=" + id);
    }

    /** An artifact whose parts are a pure function of the seed, so any process can check what it reads. */
    static Artifact artifact(long seed, int maxBytes) {
        Random r = new Random(seed * 0x9E3779B97F4A7C15L);
        Map<String, byte[]> parts = new LinkedHashMap<>();
        byte[] program = new byte[r.nextInt(maxBytes + 1)];
        r.nextBytes(program);
        parts.put("program", program);
        byte[] cls = new byte[r.nextInt(Math.max(1, maxBytes / 4))];
        r.nextBytes(cls);
        parts.put("classes/dev/kiln/gen/K" + seed + ".class", cls);
        return Artifact.of(parts, Map.of("seed", Long.toString(seed), "note", "line one\nline two \\ backslash"));
    }

    static Artifact sized(long seed, int bytes) {
        byte[] b = new byte[bytes];
        new Random(seed).nextBytes(b);
        return Artifact.of(Map.of("program", b), Map.of());
    }

    /** Runs {@code main} in a child JVM with this JVM's classpath; returns its stdout, failing on a non-zero exit. */
    static Process startJava(Class<?> main, String... args) throws IOException {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("-Xshare:auto");
        cmd.add("-XX:TieredStopAtLevel=1");
        cmd.add("-cp");
        cmd.add(System.getProperty("java.class.path"));
        cmd.add(main.getName());
        cmd.addAll(List.of(args));
        return new ProcessBuilder(cmd).redirectErrorStream(false).start();
    }

    static String finish(Process p, long timeoutSeconds) throws Exception {
        var out = p.getInputStream().readAllBytes();
        var err = p.getErrorStream().readAllBytes();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("child JVM did not finish in " + timeoutSeconds + " s");
        }
        String stdout = new String(out, StandardCharsets.UTF_8);
        if (p.exitValue() != 0) {
            throw new AssertionError("child JVM exited with " + p.exitValue() + "\nstdout:\n" + stdout + "\nstderr:\n" + new String(err, StandardCharsets.UTF_8));
        }
        return stdout;
    }

    /** Collects warnings logged by the cache (System.Logger goes to java.util.logging). */
    static final class Warnings extends Handler implements AutoCloseable {
        private final Logger logger = Logger.getLogger("dev.kiln.cache");
        final List<String> messages = java.util.Collections.synchronizedList(new ArrayList<>());

        Warnings() {
            logger.addHandler(this);
        }

        @Override
        public void publish(LogRecord record) {
            String msg = record.getMessage();
            Object[] params = record.getParameters();
            messages.add(params == null ? msg : java.text.MessageFormat.format(msg, params));
        }

        @Override
        public void flush() {}

        @Override
        public void close() {
            logger.removeHandler(this);
        }
    }

    static boolean isRoot() {
        try {
            return "root".equals(Files.getOwner(Files.createTempFile("kiln-owner", "")).getName());
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }
}
