package dev.kiln.opt.npu;

import dev.kiln.ir.Graph;
import dev.kiln.npu.fused.FusedKernel;
import dev.kiln.ops.Op;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.CodeSource;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;

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
                sha.update(source.getFileName().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                if (Files.isDirectory(source)) {
                    try (Stream<Path> files = Files.walk(source)) {
                        for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
                            sha.update(source.relativize(f).toString().getBytes(java.nio.charset.StandardCharsets.UTF_8));
                            sha.update(Files.readAllBytes(f));
                        }
                    }
                } else {
                    try (InputStream in = Files.newInputStream(source)) {
                        byte[] buf = new byte[1 << 16];
                        for (int n; (n = in.read(buf)) > 0; ) sha.update(buf, 0, n);
                    }
                }
            }
            return HexFormat.of().formatHex(sha.digest(), 0, 12);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot fingerprint the compiler's code", e);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every Java platform", e);
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
