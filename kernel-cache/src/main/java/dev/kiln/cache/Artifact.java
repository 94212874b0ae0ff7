package dev.kiln.cache;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SequencedMap;
import java.util.regex.Pattern;

/**
 * A compiled artifact as the cache sees it: named, opaque byte parts (for example
 * {@code "program"} or {@code "classes/dev/kiln/gen/K0.class"}) plus string metadata.
 * Immutable: the bytes are copied in, and {@link #part} hands out copies.
 */
public final class Artifact {
    /** Part names become manifest entries: relative, slash-separated, no empty or dot segments. */
    private static final Pattern PART_NAME = Pattern.compile("[A-Za-z0-9_$\\-][A-Za-z0-9_$.\\-]*(/[A-Za-z0-9_$\\-][A-Za-z0-9_$.\\-]*)*");
    private static final Pattern METADATA_NAME = Pattern.compile("[A-Za-z0-9_.\\-]+");

    private final SequencedMap<String, byte[]> parts;
    private final SequencedMap<String, String> metadata;
    private final long byteSize;

    private Artifact(SequencedMap<String, byte[]> parts, SequencedMap<String, String> metadata) {
        this.parts = parts;
        this.metadata = metadata;
        long bytes = 0;
        for (byte[] b : parts.values()) bytes += b.length;
        this.byteSize = bytes;
    }

    /** An artifact with these parts (in this order) and metadata; both are copied. */
    public static Artifact of(Map<String, byte[]> parts, Map<String, String> metadata) {
        // Loops rather than lambdas: every warm start reads its artifacts here, in a JVM that has linked no lambda yet.
        SequencedMap<String, byte[]> p = new LinkedHashMap<>();
        for (Map.Entry<String, byte[]> e : parts.entrySet()) {
            checkPartName(e.getKey());
            p.put(e.getKey(), e.getValue().clone());
        }
        SequencedMap<String, String> m = new LinkedHashMap<>();
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            String name = e.getKey();
            if (!METADATA_NAME.matcher(name).matches()) {
                throw new IllegalArgumentException("metadata name '" + name + "' must be letters, digits, '.', '_' or '-'");
            }
            CacheKey.requireWellFormed(e.getValue(), "metadata '" + name + "'");
            m.put(name, e.getValue());
        }
        return new Artifact(p, m);
    }

    static void checkPartName(String name) {
        if (!PART_NAME.matcher(name).matches() || name.contains("..")) {
            throw new IllegalArgumentException("part name '" + name + "' must be a relative path of letters, digits, '_', '$', '-', '.'; no empty segments or '..'");
        }
    }

    /** The part names, in insertion order. */
    public java.util.SequencedSet<String> partNames() { return Collections.unmodifiableSequencedSet(parts.sequencedKeySet()); }

    /** A copy of the named part's bytes. */
    public byte[] part(String name) {
        byte[] b = parts.get(name);
        if (b == null) throw new IllegalArgumentException("artifact has no part '" + name + "'; it has " + parts.keySet());
        return b.clone();
    }

    public int partSize(String name) {
        byte[] b = parts.get(name);
        if (b == null) throw new IllegalArgumentException("artifact has no part '" + name + "'; it has " + parts.keySet());
        return b.length;
    }

    public SequencedMap<String, String> metadata() { return Collections.unmodifiableSequencedMap(metadata); }

    /** Total bytes of all parts. */
    public long byteSize() { return byteSize; }

    /** The stored bytes, without copying, for the entry writer. */
    byte[] partUnsafe(String name) { return parts.get(name); }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof Artifact a) || !metadata.equals(a.metadata) || !parts.sequencedKeySet().equals(a.parts.sequencedKeySet())) return false;
        for (var e : parts.entrySet()) if (!java.util.Arrays.equals(e.getValue(), a.parts.get(e.getKey()))) return false;
        return true;
    }

    @Override
    public int hashCode() {
        int h = metadata.hashCode();
        for (var e : parts.entrySet()) h = 31 * h + e.getKey().hashCode() * 17 + java.util.Arrays.hashCode(e.getValue());
        return h;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Artifact[");
        parts.forEach((n, b) -> sb.append(sb.length() > 9 ? ", " : "").append(n).append(" (").append(b.length).append(" B)"));
        return sb.append(metadata.isEmpty() ? "" : ", metadata " + metadata).append(']').toString();
    }
}
