package dev.kiln.cache;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.*;

/** Whatever damage an entry file suffers, decoding either returns the exact artifact or fails. */
class EntryCodecProperties {
    @Provide
    Arbitrary<Artifact> artifacts() {
        Arbitrary<String> names = Arbitraries.of("program", "classes/dev/kiln/gen/K0.class", "classes/K$1.class", "meta-data.bin", "a/b/c");
        Arbitrary<byte[]> bytes = Arbitraries.bytes().array(byte[].class).ofMaxSize(300);
        Arbitrary<String> values = texts();
        return Arbitraries.maps(names, bytes).ofMaxSize(4).flatMap(parts ->
                Arbitraries.maps(Arbitraries.strings().alpha().numeric().withChars("._-").ofMinLength(1).ofMaxLength(8), values).ofMaxSize(3)
                        .map(meta -> Artifact.of(new LinkedHashMap<>(parts), meta)));
    }

    @Provide
    Arbitrary<String> texts() {
        // any well-formed text: controls, newlines, backslashes, '=', astral characters
        return Arbitraries.strings().all().ofMaxLength(30).filter(EntryCodecProperties::wellFormed);
    }

    static boolean wellFormed(String s) {
        try {
            CacheKey.requireWellFormed(s, "text");
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    private static CacheKey keyOf(String inputs, String options) {
        return CacheKey.of("kiln-graph 1\n", inputs, "device\nwith newline \\ and backslash", "c1", options);
    }

    @Property(tries = 100)
    void roundTrips(@ForAll("artifacts") Artifact a, @ForAll("texts") String inputs, @ForAll("texts") String options) throws Exception {
        CacheKey k = keyOf(inputs, options);
        byte[] file = EntryCodec.encode(k, a, Instant.parse("2026-01-02T03:04:05.123456Z"));
        assertEquals(a, EntryCodec.decode(file, k.hex()));
        EntryCodec.Manifest m = EntryCodec.readManifest(file, file.length, file.length, k.hex());
        assertEquals(k, m.key());
        assertEquals(k.components(), m.key().components());
        assertEquals(Optional.of(Instant.parse("2026-01-02T03:04:05.123456Z")), m.created());
        assertEquals(a.metadata(), m.metadata());
    }

    @Property(tries = 200)
    void anyFlippedBitIsDetected(@ForAll("artifacts") Artifact a, @ForAll @IntRange(min = 0, max = Integer.MAX_VALUE - 1) int where,
                                 @ForAll @IntRange(min = 0, max = 7) int bit) {
        CacheKey k = keyOf("in", "opt");
        byte[] file = EntryCodec.encode(k, a, Instant.now());
        file[where % file.length] ^= (byte) (1 << bit);
        assertThrows(EntryCodec.CorruptEntryException.class, () -> EntryCodec.decode(file, k.hex()));
    }

    @Property(tries = 200)
    void anyTruncationOrExtensionIsDetected(@ForAll("artifacts") Artifact a, @ForAll @IntRange(min = 0, max = Integer.MAX_VALUE - 1) int cut,
                                            @ForAll boolean extend) {
        CacheKey k = keyOf("in", "opt");
        byte[] file = EntryCodec.encode(k, a, Instant.now());
        byte[] damaged = java.util.Arrays.copyOf(file, extend ? file.length + 1 + cut % 10 : cut % file.length);
        assertThrows(EntryCodec.CorruptEntryException.class, () -> EntryCodec.decode(damaged, k.hex()));
    }

    @Property(tries = 50)
    void anEntryIsOnlyValidUnderItsOwnKey(@ForAll("artifacts") Artifact a) {
        byte[] file = EntryCodec.encode(keyOf("a", "b"), a, Instant.now());
        var e = assertThrows(EntryCodec.CorruptEntryException.class, () -> EntryCodec.decode(file, keyOf("a", "c").hex()));
        assertTrue(e.getMessage().startsWith("holds key " + keyOf("a", "b").hex()), e.getMessage());
    }

    @Property(tries = 20)
    void partOrderIsPreserved(@ForAll @IntRange(min = 1, max = 5) int n) throws Exception {
        Map<String, byte[]> parts = new LinkedHashMap<>();
        for (int i = n; i > 0; i--) parts.put("p" + i, new byte[] {(byte) i});
        Artifact a = Artifact.of(parts, Map.of());
        CacheKey k = keyOf("x", "y");
        assertEquals(java.util.List.copyOf(a.partNames()), java.util.List.copyOf(EntryCodec.decode(EntryCodec.encode(k, a, Instant.now()), k.hex()).partNames()));
    }
}
