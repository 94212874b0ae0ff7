package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.npu.fused.FusedKernel;
import dev.kiln.ops.Op;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * A SHA-256 over the code that decides what a compiled program is and computes: the op
 * registry, the graph IR, the optimiser and lowering, the NPU kernels. It goes into every
 * cache key, so a warm cache never serves a program made by different compiler code, even
 * between two builds that share a version number (snapshots, local changes).
 */
final class CompilerFingerprint {
    static final String VALUE = compute();

    private CompilerFingerprint() {}

    private static String compute() {
        try {
            MessageDigest sha = MessageDigest.getInstance("SHA-256");
            for (Class<?> c : List.of(Op.class, Graph.class, CompilerFingerprint.class, FusedKernel.class)) {
                Path source = location(c);
                sha.update(source.getFileName().toString().getBytes(StandardCharsets.UTF_8));
                if (Files.isDirectory(source)) {
                    try (Stream<Path> files = Files.walk(source)) {
                        for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                            sha.update(source.relativize(f).toString().getBytes(StandardCharsets.UTF_8));
                            sha.update(Files.readAllBytes(f));
                        }
                    }
                } else {
                    hashJarDirectory(sha, source);
                }
            }
            return HexFormat.of().formatHex(sha.digest(), 0, 12);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot fingerprint the compiler's code", e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every Java platform", e);
        }
    }

    /**
     * A jar by its central directory: each entry's name (hash code), size and CRC-32 (of its
     * bytes, which the jar already records). Hashing the bytes themselves, about 750 KB, took a fresh JVM
     * 45 to 50 ms and made C2 compile SHA-256 (60 ms of a compiler thread) during the first
     * call; this reads a few kilobytes. A CRC-32 misses a change with probability 2^-32, and
     * the fingerprint guards against stale builds, not against someone who can rewrite the
     * jars (they run code anyway).
     */
    static void hashJarDirectory(MessageDigest sha, Path jar) throws IOException {
        try (ZipFile zip = new ZipFile(jar.toFile())) {
            // Name order, so that two builds writing the same entries in another order agree; a loop,
            // not a stream, as each lambda costs a fresh JVM a generated class.
            TreeMap<String, ZipEntry> entries = new TreeMap<>();
            for (Enumeration<? extends ZipEntry> all = zip.entries(); all.hasMoreElements(); ) {
                ZipEntry e = all.nextElement();
                if (!e.isDirectory()) entries.put(e.getName(), e);
            }
            // Three ints per entry, hashed in one update: the interpreter's SHA-256 of the names alone took 13 ms.
            ByteBuffer summary = ByteBuffer.allocate(entries.size() * 3 * Integer.BYTES);
            for (ZipEntry e : entries.values()) {
                summary.putInt(e.getName().hashCode()).putInt((int) e.getSize()).putInt((int) e.getCrc());
            }
            sha.update(summary.array());
        }
    }

    private static Path location(Class<?> c) {
        CodeSource cs = c.getProtectionDomain().getCodeSource();
        if (cs == null) throw new IllegalStateException("no code source for " + c.getName());
        try {
            return Path.of(cs.getLocation().toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException("code source of " + c.getName() + " is not a path: " + cs.getLocation(), e);
        }
    }
}
