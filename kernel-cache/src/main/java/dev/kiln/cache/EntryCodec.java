package dev.kiln.cache;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Optional;
import java.util.SequencedMap;

/**
 * The single-file entry format. One file per key, so that publishing is one atomic rename
 * and eviction one unlink: a reader sees either the whole entry or none.
 *
 * <pre>
 *   "KILNCACHE"             9 bytes, magic
 *   format version          int32, big-endian
 *   manifest length         int32
 *   manifest SHA-256        32 bytes
 *   manifest                UTF-8 text, one "name=value" per line (values escaped)
 *   parts                   the part bytes, concatenated in manifest order
 * </pre>
 *
 * The manifest holds the format and Kiln versions, the creation time, the key and its
 * readable components, the metadata, and for each part its name, size and SHA-256.
 */
final class EntryCodec {
    static final int FORMAT_VERSION = 1;
    private static final byte[] MAGIC = "KILNCACHE".getBytes(StandardCharsets.US_ASCII);
    static final int HEADER_BYTES = MAGIC.length + 4 + 4 + 32;
    private static final int MAX_MANIFEST_BYTES = 16 << 20;

    private EntryCodec() {}

    /** A part as the manifest describes it. */
    record PartInfo(String name, long size, String sha256) {}

    /**
     * The parsed manifest of one entry. The creation time is kept as written and parsed only
     * when asked for: the first use of {@code java.time}'s parser costs a fresh JVM 7 ms, on
     * every warm start's first cache hit, and only listings show the time.
     */
    record Manifest(int formatVersion, String kilnVersion, String createdText, CacheKey key,
                    SequencedMap<String, String> metadata, java.util.List<PartInfo> parts) {
        long partBytes() {
            // A loop, not a stream: every warm start reads a manifest, and a fresh JVM spins a stream's classes first.
            long sum = 0;
            for (PartInfo p : parts) sum += p.size();
            return sum;
        }

        /** When the entry was written; empty if the time, of the right shape, is still no instant (a month 13). */
        Optional<Instant> created() {
            try {
                return Optional.of(Instant.parse(createdText));
            } catch (DateTimeParseException e) {
                return Optional.empty();
            }
        }
    }

    /** Why an entry cannot be used; the message says what was wrong. */
    static final class CorruptEntryException extends Exception {
        CorruptEntryException(String message) { super(message); }
    }

    static byte[] encode(CacheKey key, Artifact artifact, Instant created) {
        StringBuilder m = new StringBuilder();
        line(m, "format", Integer.toString(FORMAT_VERSION));
        line(m, "kiln-version", KilnVersion.VALUE);
        line(m, "created", created.toString());
        line(m, "key", key.hex());
        key.components().forEach((n, v) -> line(m, "key." + n, v));
        artifact.metadata().forEach((n, v) -> line(m, "meta." + n, v));
        for (String name : artifact.partNames()) {
            byte[] b = artifact.partUnsafe(name);
            line(m, "part", name + " " + b.length + " " + CacheKey.sha256Hex(b));
        }
        byte[] manifest = m.toString().getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(Math.toIntExact(HEADER_BYTES + manifest.length + artifact.byteSize()));
        out.put(MAGIC).putInt(FORMAT_VERSION).putInt(manifest.length).put(CacheKey.sha256().digest(manifest)).put(manifest);
        for (String name : artifact.partNames()) out.put(artifact.partUnsafe(name));
        return out.array();
    }

    /** Parses and checks the header and manifest; {@code fileBytes} may hold only a prefix of the file. */
    static Manifest readManifest(byte[] fileBytes, int available, long fileSize, String expectedKeyHex) throws CorruptEntryException {
        if (fileSize < HEADER_BYTES || available < HEADER_BYTES) {
            throw new CorruptEntryException("truncated: " + fileSize + " bytes, shorter than the " + HEADER_BYTES + "-byte header");
        }
        ByteBuffer in = ByteBuffer.wrap(fileBytes, 0, available);
        byte[] magic = new byte[MAGIC.length];
        in.get(magic);
        if (!Arrays.equals(magic, MAGIC)) throw new CorruptEntryException("not a Kiln cache entry (bad magic bytes)");
        int format = in.getInt();
        if (format != FORMAT_VERSION) {
            throw new CorruptEntryException("foreign format version " + format + " (this Kiln reads version " + FORMAT_VERSION + ")");
        }
        int manifestLength = in.getInt();
        if (manifestLength < 0 || manifestLength > MAX_MANIFEST_BYTES) {
            throw new CorruptEntryException("implausible manifest length " + manifestLength);
        }
        if (HEADER_BYTES + (long) manifestLength > fileSize || HEADER_BYTES + manifestLength > available) {
            throw new CorruptEntryException("truncated: " + fileSize + " bytes, but the manifest alone needs " + (HEADER_BYTES + (long) manifestLength));
        }
        byte[] manifestSha = new byte[32];
        in.get(manifestSha);
        byte[] manifest = Arrays.copyOfRange(fileBytes, HEADER_BYTES, HEADER_BYTES + manifestLength);
        if (!MessageDigest.isEqual(manifestSha, CacheKey.sha256().digest(manifest))) {
            throw new CorruptEntryException("manifest checksum mismatch");
        }
        Manifest parsed = parse(new String(manifest, StandardCharsets.UTF_8));
        if (!parsed.key().hex().equals(expectedKeyHex)) {
            throw new CorruptEntryException("holds key " + parsed.key().hex() + ", but its file name says " + expectedKeyHex);
        }
        long expectedSize = HEADER_BYTES + (long) manifestLength + parsed.partBytes();
        if (fileSize != expectedSize) {
            throw new CorruptEntryException((fileSize < expectedSize ? "truncated" : "has trailing bytes") + ": " + fileSize
                    + " bytes, the manifest describes " + expectedSize);
        }
        return parsed;
    }

    /** Offset of the first part's bytes. */
    static int partsOffset(byte[] fileBytes) {
        return HEADER_BYTES + ByteBuffer.wrap(fileBytes).getInt(MAGIC.length + 4);
    }

    /** Checks every part against its checksum and returns the artifact. */
    static Artifact decode(byte[] file, String expectedKeyHex) throws CorruptEntryException {
        Manifest m = readManifest(file, file.length, file.length, expectedKeyHex);
        SequencedMap<String, byte[]> parts = new LinkedHashMap<>();
        int at = partsOffset(file);
        for (PartInfo p : m.parts()) {
            byte[] b = Arrays.copyOfRange(file, at, at + (int) p.size());
            at += (int) p.size();
            if (!CacheKey.sha256Hex(b).equals(p.sha256())) {
                throw new CorruptEntryException("checksum mismatch in part '" + p.name() + "'");
            }
            parts.put(p.name(), b);
        }
        return Artifact.of(parts, m.metadata());
    }

    /** Whether {@code s} has the shape {@link Instant#toString} writes: yyyy-MM-ddTHH:mm:ss, an optional fraction, Z. */
    private static boolean hasInstantShape(String s) {
        String shape = "dddd-dd-ddTdd:dd:dd";
        if (s.length() <= shape.length() || s.charAt(s.length() - 1) != 'Z') return false;
        for (int i = 0; i < shape.length(); i++) {
            char want = shape.charAt(i), c = s.charAt(i);
            if (want == 'd' ? c < '0' || c > '9' : c != want) return false;
        }
        String fraction = s.substring(shape.length(), s.length() - 1);
        if (fraction.isEmpty()) return true;
        if (fraction.charAt(0) != '.' || fraction.length() < 2 || fraction.length() > 10) return false;
        for (int i = 1; i < fraction.length(); i++) if (fraction.charAt(i) < '0' || fraction.charAt(i) > '9') return false;
        return true;
    }

    private static Manifest parse(String text) throws CorruptEntryException {
        Integer format = null;
        String kilnVersion = null;
        String created = null;
        String keyHex = null;
        SequencedMap<String, String> components = new LinkedHashMap<>();
        SequencedMap<String, String> metadata = new LinkedHashMap<>();
        java.util.List<PartInfo> parts = new java.util.ArrayList<>();
        try {
            for (String line : text.split("\n", -1)) {
                if (line.isEmpty()) continue;
                int eq = line.indexOf('=');
                if (eq <= 0) throw new CorruptEntryException("manifest line without a name: '" + line + "'");
                String name = line.substring(0, eq);
                String value = unescape(line.substring(eq + 1));
                switch (name) {
                    case "format" -> format = Integer.parseInt(value);
                    case "kiln-version" -> kilnVersion = value;
                    case "created" -> {
                        if (!hasInstantShape(value)) throw new CorruptEntryException("garbage in manifest: created=" + value);
                        created = value;
                    }
                    case "key" -> keyHex = value;
                    case "part" -> parts.add(parsePart(value));
                    default -> {
                        if (name.startsWith("key.")) components.put(name.substring(4), value);
                        else if (name.startsWith("meta.")) metadata.put(name.substring(5), value);
                        else throw new CorruptEntryException("unknown manifest field '" + name + "'");
                    }
                }
            }
            if (format == null || kilnVersion == null || created == null || keyHex == null) {
                throw new CorruptEntryException("manifest lacks format, kiln-version, created or key");
            }
            if (format != FORMAT_VERSION) throw new CorruptEntryException("manifest says format version " + format + ", header says " + FORMAT_VERSION);
            CacheKey key = CacheKey.fromComponents(components);
            if (!key.hex().equals(keyHex)) throw new CorruptEntryException("manifest key " + keyHex + " does not match its components");
            return new Manifest(format, kilnVersion, created, key, metadata, java.util.List.copyOf(parts));
        } catch (NumberFormatException e) {
            throw new CorruptEntryException("garbage in manifest: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new CorruptEntryException("bad manifest: " + e.getMessage());
        }
    }

    private static PartInfo parsePart(String value) throws CorruptEntryException {
        String[] f = value.split(" ");
        if (f.length != 3) throw new CorruptEntryException("bad part line '" + value + "'");
        Artifact.checkPartName(f[0]);
        long size = Long.parseLong(f[1]);
        if (size < 0 || size > Integer.MAX_VALUE) throw new CorruptEntryException("bad part size " + size + " for '" + f[0] + "'");
        HexFormat.of().parseHex(f[2]);
        if (f[2].length() != 64) throw new CorruptEntryException("bad checksum for part '" + f[0] + "'");
        return new PartInfo(f[0], size, f[2]);
    }

    private static void line(StringBuilder m, String name, String value) {
        m.append(name).append('=').append(escape(value)).append('\n');
    }

    private static String escape(String v) {
        return v.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r");
    }

    private static String unescape(String v) throws CorruptEntryException {
        StringBuilder sb = new StringBuilder(v.length());
        for (int i = 0; i < v.length(); i++) {
            char c = v.charAt(i);
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            if (++i == v.length()) throw new CorruptEntryException("manifest value ends in a lone backslash");
            sb.append(switch (v.charAt(i)) {
                case '\\' -> '\\';
                case 'n' -> '\n';
                case 'r' -> '\r';
                default -> throw new CorruptEntryException("unknown escape '\\" + v.charAt(i) + "' in manifest");
            });
        }
        return sb.toString();
    }
}
