package dev.kiln.cache;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * Where and how big the kernel cache is.
 *
 * @param directory   the disk tier's directory; empty for a memory-only cache
 * @param diskCapBytes the disk tier's size cap
 * @param memoryCapBytes the memory tier's size cap (0 disables the memory tier)
 */
public record CacheConfig(Optional<Path> directory, long diskCapBytes, long memoryCapBytes) {
    public static final long DEFAULT_MEMORY_CAP_BYTES = 256L << 20;

    public CacheConfig {
        if (diskCapBytes <= 0) throw new IllegalArgumentException("disk cap must be positive, got " + diskCapBytes);
        if (memoryCapBytes < 0) throw new IllegalArgumentException("memory cap must not be negative, got " + memoryCapBytes);
    }

    /** A cache with a disk tier in {@code directory} and the default caps. */
    public static CacheConfig at(Path directory) {
        return new CacheConfig(Optional.of(directory), CacheDirectory.DEFAULT_CAP_BYTES, DEFAULT_MEMORY_CAP_BYTES);
    }

    /** A memory-only cache. */
    public static CacheConfig memoryOnly(long memoryCapBytes) {
        return new CacheConfig(Optional.empty(), CacheDirectory.DEFAULT_CAP_BYTES, memoryCapBytes);
    }

    public CacheConfig withDiskCap(long bytes) { return new CacheConfig(directory, bytes, memoryCapBytes); }
    public CacheConfig withMemoryCap(long bytes) { return new CacheConfig(directory, diskCapBytes, bytes); }

    /** The configuration from this JVM's system properties and environment. */
    public static CacheConfig fromEnvironment() {
        return resolve(System::getProperty, System::getenv);
    }

    /**
     * The configuration from these lookups: the directory is the {@code kiln.cache.dir} property,
     * else {@code KILN_CACHE_DIR}, else {@code $XDG_CACHE_HOME/kiln}, else {@code ~/.cache/kiln};
     * {@code KILN_CACHE=off} (or {@code -Dkiln.cache=off}) disables the disk tier. Caps come from
     * {@code kiln.cache.maxBytes}/{@code KILN_CACHE_MAX_BYTES} and
     * {@code kiln.cache.memoryBytes}/{@code KILN_CACHE_MEMORY_BYTES}, in bytes or with a
     * {@code k}, {@code m} or {@code g} suffix (binary units).
     */
    static CacheConfig resolve(UnaryOperator<String> property, UnaryOperator<String> env) {
        long disk = size(property, env, "kiln.cache.maxBytes", "KILN_CACHE_MAX_BYTES", CacheDirectory.DEFAULT_CAP_BYTES);
        long memory = size(property, env, "kiln.cache.memoryBytes", "KILN_CACHE_MEMORY_BYTES", DEFAULT_MEMORY_CAP_BYTES);
        String mode = firstSet(property.apply("kiln.cache"), env.apply("KILN_CACHE"));
        if (mode != null && mode.trim().equalsIgnoreCase("off")) return new CacheConfig(Optional.empty(), disk, memory);
        return new CacheConfig(Optional.of(directory(property, env)), disk, memory);
    }

    private static Path directory(UnaryOperator<String> property, UnaryOperator<String> env) {
        String explicit = firstSet(property.apply("kiln.cache.dir"), env.apply("KILN_CACHE_DIR"));
        if (explicit != null) return Path.of(explicit);
        String xdg = env.apply("XDG_CACHE_HOME");
        // the XDG spec says a relative value is invalid and must be ignored
        if (xdg != null && !xdg.isBlank() && Path.of(xdg).isAbsolute()) return Path.of(xdg, "kiln");
        return Path.of(property.apply("user.home"), ".cache", "kiln");
    }

    private static String firstSet(String... values) {
        for (String v : values) if (v != null && !v.isBlank()) return v;
        return null;
    }

    private static long size(UnaryOperator<String> property, UnaryOperator<String> env, String prop, String var, long fallback) {
        String v = firstSet(property.apply(prop), env.apply(var));
        return v == null ? fallback : parseSize(v, prop + "/" + var);
    }

    /** Parses {@code 1048576}, {@code 512k}, {@code 64m}, {@code 2g} (also with a trailing {@code b}/{@code ib}). */
    static long parseSize(String text, String what) {
        String t = text.trim().toLowerCase(Locale.ROOT);
        if (t.endsWith("ib")) t = t.substring(0, t.length() - 2);
        else if (t.endsWith("b")) t = t.substring(0, t.length() - 1);
        int shift = 0;
        if (!t.isEmpty()) {
            switch (t.charAt(t.length() - 1)) {
                case 'k' -> shift = 10;
                case 'm' -> shift = 20;
                case 'g' -> shift = 30;
                case 't' -> shift = 40;
                default -> { }
            }
        }
        if (shift != 0) t = t.substring(0, t.length() - 1).trim();
        try {
            long n = Long.parseLong(t);
            if (n < 0 || n > (Long.MAX_VALUE >> shift)) throw new NumberFormatException();
            return n << shift;
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(what + ": '" + text + "' is not a size (use bytes, or a number with k, m, g or t)");
        }
    }
}
