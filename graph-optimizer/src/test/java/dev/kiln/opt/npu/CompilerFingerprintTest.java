package dev.kiln.opt.npu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class CompilerFingerprintTest {
    @TempDir Path dir;

    @Test
    void theValueIsStableWithinAJvmAndNamesTheCode() {
        assertTrue(CompilerFingerprint.VALUE.matches("[0-9a-f]{24}"), CompilerFingerprint.VALUE);
    }

    @Test
    void aJarIsKnownByItsEntriesNotTheirOrder() throws Exception {
        String ab = fingerprint(jar("ab.jar", "a/A.class", "one", "b/B.class", "two"));
        assertEquals(ab, fingerprint(jar("ba.jar", "b/B.class", "two", "a/A.class", "one")));
        assertNotEquals(ab, fingerprint(jar("changed.jar", "a/A.class", "one", "b/B.class", "twO")), "one changed byte");
        assertNotEquals(ab, fingerprint(jar("renamed.jar", "a/A.class", "one", "b/C.class", "two")), "a renamed entry");
        assertNotEquals(ab, fingerprint(jar("more.jar", "a/A.class", "one", "b/B.class", "two", "c/C.class", "")), "an added entry");
    }

    private Path jar(String name, String... namesAndContents) throws IOException {
        Path jar = dir.resolve(name);
        try (OutputStream out = Files.newOutputStream(jar); ZipOutputStream zip = new ZipOutputStream(out)) {
            zip.putNextEntry(new ZipEntry("a/"));
            zip.closeEntry();
            for (int i = 0; i < namesAndContents.length; i += 2) {
                zip.putNextEntry(new ZipEntry(namesAndContents[i]));
                zip.write(namesAndContents[i + 1].getBytes(StandardCharsets.UTF_8));
                zip.closeEntry();
            }
        }
        return jar;
    }

    private static String fingerprint(Path jar) throws IOException, NoSuchAlgorithmException {
        MessageDigest sha = MessageDigest.getInstance("SHA-256");
        CompilerFingerprint.hashJarDirectory(sha, jar);
        return HexFormat.of().formatHex(sha.digest());
    }
}
