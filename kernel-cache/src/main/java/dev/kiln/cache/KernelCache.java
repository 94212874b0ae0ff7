package dev.kiln.cache;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.RemovalCause;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The kernel cache: an in-memory tier (Caffeine, bounded by bytes) in front of an on-disk
 * tier ({@link CacheDirectory}). Never fails the caller: a disk problem is logged and the
 * cache carries on in memory, and a bad entry is a miss, so the caller recompiles.
 */
public final class KernelCache {
    /** Made on first use: the first {@link System#getLogger} of a JVM starts the logging framework (13 to 17 ms). */
    private static final class Log {
        static final System.Logger LOG = System.getLogger("dev.kiln.cache");
    }

    /**
     * Artifacts a new cache keeps before it builds its memory tier: Caffeine's first use in a
     * JVM costs 20 to 25 ms (its class initialisation starts the logging framework, then the
     * build), which a warm start would pay before its first result for two lookups (the module
     * proxy and the program). The tier is built by the put past these, or by {@link #stats}.
     */
    private static final int STAGED_ENTRIES = 4;

    private final long memoryCap;
    /** Null until built (see {@link #STAGED_ENTRIES}), or for a cache without a memory tier. */
    private volatile Cache<String, Artifact> memory;
    /** Artifacts kept until the memory tier is built, each at most a {@link #STAGED_ENTRIES}th of its capacity. */
    private final ConcurrentHashMap<String, Artifact> staged = new ConcurrentHashMap<>();
    private final CacheDirectory disk;
    /** Cleared when a write fails (full disk, read-only directory): the disk is then only read. */
    private volatile boolean diskWritable;

    private final AtomicLong memoryHits = new AtomicLong();
    private final AtomicLong memoryEvictions = new AtomicLong();
    /** Misses of a memory-only cache (the disk tier counts its own). */
    private final AtomicLong disklessMisses = new AtomicLong();

    /**
     * Counters since this cache was opened.
     *
     * @param memoryHits      gets answered from memory
     * @param diskHits        gets answered from disk
     * @param misses          gets answered by neither (including bad entries)
     * @param memoryEvictions artifacts dropped from memory for space
     * @param diskEvictions   entries this process unlinked from disk for space
     * @param corruptEntries  bad disk entries found (reported, removed, treated as misses)
     * @param memoryBytes     bytes held in memory
     * @param diskBytes       bytes on disk, as last measured plus this process's writes since
     * @param diskDirectory   the disk tier's directory, empty when memory-only
     * @param diskWritable    false when the disk tier is absent or was degraded after a write failed
     */
    public record Stats(long memoryHits, long diskHits, long misses, long memoryEvictions, long diskEvictions,
                        long corruptEntries, long memoryBytes, long diskBytes, Optional<Path> diskDirectory,
                        boolean diskWritable) {
        public long hits() { return memoryHits + diskHits; }
        public long evictions() { return memoryEvictions + diskEvictions; }
    }

    private KernelCache(CacheConfig config, CacheDirectory disk) {
        this.disk = disk;
        this.diskWritable = disk != null;
        this.memoryCap = config.memoryCapBytes();
    }

    /** The memory tier, built now if it is not yet (with what was staged); null for a cache without one. */
    private synchronized Cache<String, Artifact> memoryTier() {
        if (memory != null || memoryCap == 0) return memory;
        Cache<String, Artifact> built = Caffeine.newBuilder()
                .maximumWeight(memoryCap)
                .weigher((String k, Artifact a) -> (int) Math.min(Integer.MAX_VALUE, a.byteSize()))
                // run listeners and maintenance on the caller's thread, so stats are exact when a call returns
                .executor(Runnable::run)
                .removalListener((String k, Artifact a, RemovalCause cause) -> {
                    if (cause.wasEvicted()) memoryEvictions.incrementAndGet();
                })
                .build();
        built.putAll(staged);
        // Published before the staged copies go: a lookup between the two misses at worst and reads the disk.
        memory = built;
        staged.clear();
        return built;
    }

    /** The artifact kept in memory under {@code hex}, or null. */
    private Artifact inMemory(String hex) {
        Cache<String, Artifact> m = memory;
        return m != null ? m.getIfPresent(hex) : staged.get(hex);
    }

    /** Keeps {@code a} in memory under {@code hex}: staged while the tier is not built and there is room, else in the tier. */
    private void keepInMemory(String hex, Artifact a) {
        if (memoryCap == 0) return;
        Cache<String, Artifact> m = memory;
        if (m == null) {
            synchronized (this) {
                if (memory == null && (staged.containsKey(hex) || staged.size() < STAGED_ENTRIES) && a.byteSize() <= memoryCap / STAGED_ENTRIES) {
                    staged.put(hex, a);
                    return;
                }
            }
            m = memoryTier();
        }
        m.put(hex, a);
    }

    /**
     * Encodes and decodes one small entry in memory (manifest, checksums, parts) without
     * touching any directory, so that in a fresh JVM the first disk hit runs code the JIT has
     * already seen. For warm-up threads; it changes nothing.
     */
    public static void exerciseCodec() {
        CacheKey key = CacheKey.ofGraphHash("0".repeat(64), "[float32[1]]", "device", "compiler", "options");
        Artifact a = Artifact.of(java.util.Map.of("program", new byte[256], "classes", new byte[4096]), java.util.Map.of("graph", "warm-up"));
        try {
            EntryCodec.decode(EntryCodec.encode(key, a, java.time.Instant.EPOCH), key.hex());
        } catch (EntryCodec.CorruptEntryException e) {
            throw new IllegalStateException("the entry codec cannot read what it wrote: " + e.getMessage(), e);
        }
    }

    /**
     * The process's cache, configured by system properties and environment when first asked
     * for; the compiler's programs and the tracer's module proxies share it.
     */
    public static KernelCache shared() { return Shared.INSTANCE; }

    private static final class Shared {
        static final KernelCache INSTANCE = fromEnvironment();
    }

    /** The cache configured by system properties and environment (see {@link CacheConfig#fromEnvironment()}). */
    public static KernelCache fromEnvironment() {
        return open(CacheConfig.fromEnvironment());
    }

    /** A cache with this configuration; a disk directory that cannot be used is logged and left out. */
    public static KernelCache open(CacheConfig config) {
        CacheDirectory disk = null;
        if (config.directory().isPresent()) {
            Path dir = config.directory().get();
            try {
                disk = CacheDirectory.open(dir, config.diskCapBytes());
            } catch (CacheException | java.io.UncheckedIOException e) {
                Log.LOG.log(Level.WARNING, "kernel cache: {0}; caching compiled kernels in memory only", e.getMessage());
            }
        }
        KernelCache cache = new KernelCache(config, disk);
        if (disk != null && !disk.isWritable()) {
            cache.diskWritable = false;
            Log.LOG.log(Level.WARNING, "kernel cache: directory {0} is not writable; reading it, but caching new kernels in memory only", disk.root());
        }
        return cache;
    }

    /** The artifact for {@code key} from memory, else from disk (then kept in memory too); empty if neither has it. */
    public Optional<Artifact> get(CacheKey key) {
        Objects.requireNonNull(key, "key");
        Artifact kept = inMemory(key.hex());
        if (kept != null) {
            memoryHits.incrementAndGet();
            return Optional.of(kept);
        }
        if (disk == null) {
            disklessMisses.incrementAndGet();
            return Optional.empty();
        }
        Optional<Artifact> a = disk.get(key);
        if (a.isPresent()) keepInMemory(key.hex(), a.get());
        return a;
    }

    /** Stores {@code artifact} under {@code key} in memory and on disk. */
    public void put(CacheKey key, Artifact artifact) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(artifact, "artifact");
        keepInMemory(key.hex(), artifact);
        if (!diskWritable) return;
        try {
            disk.put(key, artifact);
        } catch (IOException | RuntimeException e) {
            diskWritable = false;
            Log.LOG.log(Level.WARNING, "kernel cache: cannot write to {0} ({1}); caching new kernels in memory only",
                    disk.root(), e instanceof IOException io ? CacheDirectory.describe(io) : e.toString());
        }
    }

    /** Whether the memory tier has been built (see {@link #STAGED_ENTRIES}). */
    boolean memoryTierBuilt() { return memory != null; }

    /** Memory-tier hits so far: {@link #stats()} without its maintenance and sizes, for a caller telling hits apart. */
    public long memoryHits() { return memoryHits.get(); }

    public Stats stats() {
        Cache<String, Artifact> memory = memoryTier();
        if (memory != null) memory.cleanUp();
        long memoryBytes = memory == null ? 0 : memory.policy().eviction().map(e -> e.weightedSize().orElse(0)).orElse(0L);
        return new Stats(memoryHits.get(), disk == null ? 0 : disk.hits(),
                disklessMisses.get() + (disk == null ? 0 : disk.misses()), memoryEvictions.get(),
                disk == null ? 0 : disk.evictions(), disk == null ? 0 : disk.corruptEntries(), memoryBytes,
                disk == null ? 0 : disk.estimatedBytes(), disk == null ? Optional.empty() : Optional.of(disk.root()), diskWritable);
    }
}
