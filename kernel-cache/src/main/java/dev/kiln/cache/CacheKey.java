package dev.kiln.cache;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.SequencedMap;
import java.util.regex.Pattern;

/**
 * The identity of one compiled artifact: a SHA-256 over everything that decides what the
 * compiler produces. The digest input is a versioned, length-prefixed encoding of the
 * components, so no two different component tuples can encode alike and the key is the
 * same in every JVM, on every platform.
 *
 * @param graphHash       SHA-256 hex of the graph's canonical text ({@code Graph.hash()})
 * @param inputSignature  the input signature the graph was specialised for
 * @param device          the device description (ISA, vector width, core count, ...)
 * @param compilerVersion the version of the compiler that produces the artifact
 * @param options         the compile options, in a canonical text form
 * @param hex             the key itself: 64 lowercase hex digits
 */
public record CacheKey(String graphHash, String inputSignature, String device, String compilerVersion,
                       String options, String hex) {

    /** Bumped whenever the encoding below changes, so old and new keys never collide. */
    static final int KEY_ENCODING_VERSION = 1;
    private static final Pattern SHA256_HEX = Pattern.compile("[0-9a-f]{64}");

    public CacheKey {
        Objects.requireNonNull(graphHash, "graphHash");
        Objects.requireNonNull(inputSignature, "inputSignature");
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(compilerVersion, "compilerVersion");
        Objects.requireNonNull(options, "options");
        requireWellFormed(inputSignature, "inputSignature");
        requireWellFormed(device, "device");
        requireWellFormed(compilerVersion, "compilerVersion");
        requireWellFormed(options, "options");
        if (!SHA256_HEX.matcher(graphHash).matches()) {
            throw new IllegalArgumentException("graphHash must be 64 lowercase hex digits (a SHA-256), got '" + graphHash + "'");
        }
        String expected = digest(graphHash, inputSignature, device, compilerVersion, options);
        if (hex == null) hex = expected;
        else if (!hex.equals(expected)) {
            throw new IllegalArgumentException("key " + hex + " does not match its components (they give " + expected + ")");
        }
    }

    /**
     * Rejects text with unpaired surrogates: UTF-8 would encode them as '?', so two different
     * strings would give one key, and a manifest could not give the text back.
     */
    static void requireWellFormed(String text, String what) {
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < text.length() && Character.isLowSurrogate(text.charAt(i + 1))) i++;
            else if (Character.isSurrogate(c)) {
                throw new IllegalArgumentException(what + " has an unpaired surrogate at index " + i + " and cannot be encoded as UTF-8");
            }
        }
    }

    /** The key of a graph given by its canonical text ({@code Graph.canonicalText()}). */
    public static CacheKey of(String graphCanonicalText, String inputSignature, String device, String compilerVersion, String options) {
        requireWellFormed(graphCanonicalText, "graph text");
        return ofGraphHash(sha256Hex(graphCanonicalText.getBytes(StandardCharsets.UTF_8)), inputSignature, device, compilerVersion, options);
    }

    /** The key of a graph given by its hash ({@code Graph.hash()}, the SHA-256 hex of its canonical text). */
    public static CacheKey ofGraphHash(String graphHash, String inputSignature, String device, String compilerVersion, String options) {
        return new CacheKey(graphHash, inputSignature, device, compilerVersion, options, null);
    }

    /** The readable components in a fixed order, as stored in entry manifests. */
    public SequencedMap<String, String> components() {
        SequencedMap<String, String> m = new LinkedHashMap<>();
        m.put("graph", graphHash);
        m.put("inputs", inputSignature);
        m.put("device", device);
        m.put("compiler", compilerVersion);
        m.put("options", options);
        return m;
    }

    /** Rebuilds a key from {@link #components()}; throws if one is missing. */
    static CacheKey fromComponents(Map<String, String> c) {
        return ofGraphHash(required(c, "graph"), required(c, "inputs"), required(c, "device"), required(c, "compiler"), required(c, "options"));
    }

    private static String required(Map<String, String> c, String name) {
        String v = c.get(name);
        if (v == null) throw new IllegalArgumentException("key component '" + name + "' is missing");
        return v;
    }

    @Override
    public String toString() { return hex; }

    private static String digest(String... components) {
        MessageDigest md = sha256();
        md.update(("kiln-cache-key " + KEY_ENCODING_VERSION + "\n").getBytes(StandardCharsets.US_ASCII));
        for (String c : components) {
            byte[] b = c.getBytes(StandardCharsets.UTF_8);
            md.update(ByteBuffer.allocate(Long.BYTES).putLong(b.length).array());
            md.update(b);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    static String sha256Hex(byte[] data) {
        return HexFormat.of().formatHex(sha256().digest(data));
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required by every Java platform", e);
        }
    }
}
