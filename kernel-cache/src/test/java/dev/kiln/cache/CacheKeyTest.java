package dev.kiln.cache;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;

import static dev.kiln.cache.CacheTesting.hexOf;
import static org.junit.jupiter.api.Assertions.*;

class CacheKeyTest {
    static final String GRAPH = "kiln-graph 1\n%0 = input f32[2,3]\n%1 = exp %0\nreturn %1\n";
    static final String INPUTS = "(f32[2,3])";
    static final String DEVICE = "vnpu x86_64 avx2 256-bit 2 cores";
    static final String COMPILER = "kiln-npu 0.1.0";
    static final String OPTIONS = "fusion=on;unroll=4";

    /** The documented encoding, written out independently of the production code. */
    static String reference(String graphHash, String... rest) throws Exception {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        DataOutputStream out = new DataOutputStream(bytes);
        out.write("kiln-cache-key 1\n".getBytes(StandardCharsets.US_ASCII));
        List<String> all = new java.util.ArrayList<>(List.of(graphHash));
        all.addAll(List.of(rest));
        for (String s : all) {
            byte[] b = s.getBytes(StandardCharsets.UTF_8);
            out.writeLong(b.length);
            out.write(b);
        }
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes.toByteArray()));
    }

    @Test
    void keyIsTheSha256OfTheVersionedLengthPrefixedEncoding() throws Exception {
        CacheKey k = CacheKey.of(GRAPH, INPUTS, DEVICE, COMPILER, OPTIONS);
        assertEquals(hexOf(GRAPH), k.graphHash());
        assertEquals(reference(hexOf(GRAPH), INPUTS, DEVICE, COMPILER, OPTIONS), k.hex());
        assertEquals(64, k.hex().length());
    }

    @Test
    void sameComponentsGiveTheSameKey() {
        CacheKey a = CacheKey.of(GRAPH, INPUTS, DEVICE, COMPILER, OPTIONS);
        CacheKey b = CacheKey.of(new String(GRAPH.toCharArray()), INPUTS, DEVICE, COMPILER, OPTIONS);
        CacheKey c = CacheKey.ofGraphHash(hexOf(GRAPH), INPUTS, DEVICE, COMPILER, OPTIONS);
        assertEquals(a, b);
        assertEquals(a, c);
        assertEquals(a.hex(), c.hex());
        assertEquals(a, CacheKey.fromComponents(a.components()));
    }

    @Test
    void everyComponentChangesTheKey() {
        Set<String> keys = new HashSet<>();
        keys.add(CacheKey.of(GRAPH, INPUTS, DEVICE, COMPILER, OPTIONS).hex());
        keys.add(CacheKey.of(GRAPH + " ", INPUTS, DEVICE, COMPILER, OPTIONS).hex());
        keys.add(CacheKey.of(GRAPH, "(f32[2,4])", DEVICE, COMPILER, OPTIONS).hex());
        keys.add(CacheKey.of(GRAPH, INPUTS, "vnpu x86_64 avx512 512-bit 2 cores", COMPILER, OPTIONS).hex());
        keys.add(CacheKey.of(GRAPH, INPUTS, DEVICE, "kiln-npu 0.1.1", OPTIONS).hex());
        keys.add(CacheKey.of(GRAPH, INPUTS, DEVICE, COMPILER, "fusion=off;unroll=4").hex());
        assertEquals(6, keys.size());
    }

    @Test
    void movingTextBetweenComponentsChangesTheKey() {
        // without length prefixes "ab"+"c" and "a"+"bc" would concatenate alike
        CacheKey a = CacheKey.of(GRAPH, "ab", "c", COMPILER, OPTIONS);
        CacheKey b = CacheKey.of(GRAPH, "a", "bc", COMPILER, OPTIONS);
        CacheKey c = CacheKey.of(GRAPH, "", "abc", COMPILER, OPTIONS);
        assertNotEquals(a.hex(), b.hex());
        assertNotEquals(b.hex(), c.hex());
        assertNotEquals(a.hex(), c.hex());
    }

    @Test
    void componentsAreKeptReadableInOrder() {
        CacheKey k = CacheKey.of(GRAPH, INPUTS, DEVICE, COMPILER, OPTIONS);
        assertEquals(List.of("graph", "inputs", "device", "compiler", "options"), List.copyOf(k.components().keySet()));
        assertEquals(List.of(hexOf(GRAPH), INPUTS, DEVICE, COMPILER, OPTIONS), List.copyOf(k.components().values()));
        assertEquals(k.hex(), k.toString());
    }

    @Test
    void rejectsABadGraphHashAndAKeyThatDoesNotMatchItsComponents() {
        var e = assertThrows(IllegalArgumentException.class, () -> CacheKey.ofGraphHash("ABC", INPUTS, DEVICE, COMPILER, OPTIONS));
        assertTrue(e.getMessage().contains("64 lowercase hex digits"), e.getMessage());
        String other = "0".repeat(64);
        var m = assertThrows(IllegalArgumentException.class, () -> new CacheKey(hexOf(GRAPH), INPUTS, DEVICE, COMPILER, OPTIONS, other));
        assertTrue(m.getMessage().contains("does not match its components"), m.getMessage());
        assertThrows(NullPointerException.class, () -> CacheKey.of(GRAPH, null, DEVICE, COMPILER, OPTIONS));
        // "\ud800" would encode as "?" and collide with it
        var s = assertThrows(IllegalArgumentException.class, () -> CacheKey.of(GRAPH, INPUTS, "x\ud800", COMPILER, OPTIONS));
        assertEquals("device has an unpaired surrogate at index 1 and cannot be encoded as UTF-8", s.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CacheKey.of(GRAPH, INPUTS, DEVICE, COMPILER, "\udc00"));
        assertThrows(IllegalArgumentException.class, () -> Artifact.of(java.util.Map.of(), java.util.Map.of("m", "\ud83d")));
    }

    @Test
    void aChildJvmComputesTheSameKeys() throws Exception {
        String[] args = {GRAPH, INPUTS, "unicode: \u00e9\u4e2d\ud83d\ude00", COMPILER, OPTIONS};
        // Arguments travel as Base64 of their UTF-8: a command line is decoded in the child's locale (ASCII under POSIX).
        String[] encoded = new String[args.length];
        for (int i = 0; i < args.length; i++) encoded[i] = Base64.getEncoder().encodeToString(args[i].getBytes(StandardCharsets.UTF_8));
        String child = CacheTesting.finish(CacheTesting.startJava(KeyPrinter.class, encoded), 60).strip();
        assertEquals(CacheKey.of(args[0], args[1], args[2], args[3], args[4]).hex(), child);
    }

    /** Prints the key of its five arguments, each Base64 of UTF-8; run in a child JVM by the test above. */
    public static final class KeyPrinter {
        public static void main(String[] a) throws IOException {
            String[] s = new String[a.length];
            for (int i = 0; i < a.length; i++) s[i] = new String(Base64.getDecoder().decode(a[i]), StandardCharsets.UTF_8);
            System.out.println(CacheKey.of(s[0], s[1], s[2], s[3], s[4]).hex());
        }
    }
}
