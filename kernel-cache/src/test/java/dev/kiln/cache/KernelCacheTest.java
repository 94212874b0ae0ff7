package dev.kiln.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;

import static dev.kiln.cache.CacheTesting.artifact;
import static dev.kiln.cache.CacheTesting.key;
import static dev.kiln.cache.CacheTesting.sized;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

class KernelCacheTest {
    @TempDir Path tmp;

    @Test
    void memoryThenDiskThenMemoryAgain() {
        Path dir = tmp.resolve("kiln");
        KernelCache first = KernelCache.open(CacheConfig.at(dir));
        first.put(key(1), artifact(1, 2000));
        assertEquals(Optional.of(artifact(1, 2000)), first.get(key(1)));
        assertEquals(Optional.empty(), first.get(key(2)));
        KernelCache.Stats s1 = first.stats();
        assertEquals(1, s1.memoryHits());
        assertEquals(0, s1.diskHits());
        assertEquals(1, s1.misses());
        assertEquals(artifact(1, 2000).byteSize(), s1.memoryBytes());
        assertTrue(s1.diskBytes() > s1.memoryBytes(), "the entry on disk adds a header and manifest");
        assertEquals(Optional.of(dir.toAbsolutePath()), s1.diskDirectory());
        assertTrue(s1.diskWritable());

        // a new process (a new cache) finds it on disk, then keeps it in memory
        KernelCache second = KernelCache.open(CacheConfig.at(dir));
        assertEquals(Optional.of(artifact(1, 2000)), second.get(key(1)));
        assertEquals(Optional.of(artifact(1, 2000)), second.get(key(1)));
        KernelCache.Stats s2 = second.stats();
        assertEquals(1, s2.diskHits());
        assertEquals(1, s2.memoryHits());
        assertEquals(2, s2.hits());
        assertEquals(0, s2.misses());
    }

    @Test
    void aWarmStartsFirstLookupsAreKeptWithoutBuildingTheMemoryTier() {
        Path dir = tmp.resolve("kiln");
        KernelCache writer = KernelCache.open(CacheConfig.at(dir));
        for (long i = 0; i < 6; i++) writer.put(key(i), artifact(i, 500));

        KernelCache warm = KernelCache.open(CacheConfig.at(dir));
        for (long i = 0; i < 2; i++) assertEquals(Optional.of(artifact(i, 500)), warm.get(key(i)), "disk hit " + i);
        assertFalse(warm.memoryTierBuilt(), "two disk hits are staged");
        for (long i = 0; i < 2; i++) assertEquals(Optional.of(artifact(i, 500)), warm.get(key(i)), "memory hit " + i);
        assertEquals(2, warm.memoryHits());
        assertFalse(warm.memoryTierBuilt());

        // The fifth artifact kept builds the tier, with the staged ones in it.
        for (long i = 2; i < 6; i++) warm.get(key(i));
        assertTrue(warm.memoryTierBuilt());
        for (long i = 0; i < 6; i++) assertEquals(Optional.of(artifact(i, 500)), warm.get(key(i)), "memory hit " + i);
        KernelCache.Stats s = warm.stats();
        assertEquals(8, s.memoryHits(), s.toString());
        assertEquals(6, s.diskHits(), s.toString());
        long bytes = 0;
        for (long i = 0; i < 6; i++) bytes += artifact(i, 500).byteSize();
        assertEquals(bytes, s.memoryBytes(), s.toString());

        // Stats build it too, so that its sizes are exact.
        KernelCache other = KernelCache.open(CacheConfig.at(dir));
        other.get(key(0));
        assertFalse(other.memoryTierBuilt());
        assertEquals(artifact(0, 500).byteSize(), other.stats().memoryBytes());
        assertTrue(other.memoryTierBuilt());
    }

    @Test
    void memoryTierIsBoundedByBytes() {
        KernelCache cache = KernelCache.open(CacheConfig.memoryOnly(10_000));
        for (long i = 0; i < 10; i++) {
            cache.put(key(i), sized(i, 3000));
            assertTrue(cache.stats().memoryBytes() <= 10_000, cache.stats().toString());
        }
        KernelCache.Stats s = cache.stats();
        assertEquals(7, s.memoryEvictions(), s.toString());
        assertEquals(9000, s.memoryBytes());
        assertEquals(7, s.evictions());
        int present = 0;
        for (long i = 0; i < 10; i++) present += cache.get(key(i)).isPresent() ? 1 : 0;
        assertEquals(3, present);
        assertEquals(7, cache.stats().misses());
        assertEquals(Optional.empty(), cache.stats().diskDirectory());
        assertFalse(cache.stats().diskWritable());
    }

    @Test
    void corruptDiskEntriesAreCountedAndMiss() throws IOException {
        Path dir = tmp.resolve("kiln");
        KernelCache cache = KernelCache.open(CacheConfig.at(dir).withMemoryCap(0));
        cache.put(key(1), artifact(1, 500));
        Path file = CacheDirectory.open(dir).fileOf(key(1));
        byte[] b = Files.readAllBytes(file);
        b[b.length - 1] ^= 1;
        Files.write(file, b);
        assertEquals(Optional.empty(), cache.get(key(1)));
        assertEquals(Optional.empty(), cache.get(key(1)));
        KernelCache.Stats s = cache.stats();
        assertEquals(1, s.corruptEntries());
        assertEquals(2, s.misses());
        assertEquals(0, s.hits());
    }

    @Test
    void diskEvictionsShowInStats() {
        KernelCache cache = KernelCache.open(CacheConfig.at(tmp.resolve("kiln")).withDiskCap(10_000).withMemoryCap(0));
        for (long i = 0; i < 10; i++) cache.put(key(i), sized(i, 3000));
        KernelCache.Stats s = cache.stats();
        assertTrue(s.diskEvictions() >= 7, s.toString());
        assertTrue(s.diskBytes() <= 10_000, s.toString());
        assertEquals(Optional.of(sized(9, 3000)), cache.get(key(9)));
    }

    @Test
    void anUnsafeDirectoryFallsBackToMemoryWithAWarning() throws IOException {
        Path dir = Files.createDirectory(tmp.resolve("shared"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
        try (var warnings = new CacheTesting.Warnings()) {
            KernelCache cache = KernelCache.open(CacheConfig.at(dir));
            assertEquals(1, warnings.messages.size(), warnings.messages.toString());
            assertTrue(warnings.messages.getFirst().contains("writable by group or others")
                    && warnings.messages.getFirst().contains("memory only"), warnings.messages.getFirst());
            cache.put(key(1), artifact(1, 100));
            assertEquals(Optional.of(artifact(1, 100)), cache.get(key(1)));
            assertEquals(Optional.empty(), cache.stats().diskDirectory());
        }
        try (var entries = Files.list(dir)) {
            assertEquals(0, entries.count(), "nothing is written to a refused directory");
        }
    }

    @Test
    void aFailedWriteDegradesToMemoryWithOneWarning() throws IOException {
        Path dir = tmp.resolve("kiln");
        KernelCache cache = KernelCache.open(CacheConfig.at(dir));
        // works as root too: a file where the entry's shard directory must go makes every write to it fail
        Files.writeString(dir.resolve("entries").resolve(key(1).hex().substring(0, 2)), "in the way");
        try (var warnings = new CacheTesting.Warnings()) {
            cache.put(key(1), artifact(1, 100));
            cache.put(key(2), artifact(2, 100));
            assertEquals(1, warnings.messages.size(), warnings.messages.toString());
            assertTrue(warnings.messages.getFirst().contains("cannot write to " + dir.toAbsolutePath()), warnings.messages.getFirst());
        }
        assertFalse(cache.stats().diskWritable());
        assertEquals(Optional.of(artifact(1, 100)), cache.get(key(1)));
        assertEquals(Optional.of(artifact(2, 100)), cache.get(key(2)));
        assertFalse(Files.exists(CacheDirectory.open(dir).fileOf(key(2))), "after the failure nothing more is written");
    }

    @Test
    void aReadOnlyDirectoryIsReadButNotWritten() throws IOException {
        Path dir = tmp.resolve("kiln");
        KernelCache writer = KernelCache.open(CacheConfig.at(dir));
        writer.put(key(1), artifact(1, 100));
        Files.setPosixFilePermissions(dir.resolve("entries"), PosixFilePermissions.fromString("r-x------"));
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("r-x------"));
        try {
            assumeFalse(Files.isWritable(dir), "running as root: removing write permission does not stop writes");
            try (var warnings = new CacheTesting.Warnings()) {
                KernelCache cache = KernelCache.open(CacheConfig.at(dir));
                assertTrue(warnings.messages.getFirst().contains("is not writable"), warnings.messages.toString());
                assertFalse(cache.stats().diskWritable());
                assertEquals(Optional.of(artifact(1, 100)), cache.get(key(1)));
                assertEquals(1, cache.stats().diskHits());
                cache.put(key(2), artifact(2, 100));
                assertEquals(Optional.of(artifact(2, 100)), cache.get(key(2)));
            }
        } finally {
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            Files.setPosixFilePermissions(dir.resolve("entries"), PosixFilePermissions.fromString("rwx------"));
        }
    }

    @Test
    void offMeansMemoryOnly() {
        CacheConfig off = CacheConfig.resolve(p -> p.equals("user.home") ? tmp.toString() : null, v -> v.equals("KILN_CACHE") ? "off" : null);
        KernelCache cache = KernelCache.open(off);
        cache.put(key(1), artifact(1, 100));
        assertEquals(Optional.of(artifact(1, 100)), cache.get(key(1)));
        assertFalse(Files.exists(tmp.resolve(".cache")));
    }

    @Test
    void rejectsNulls() {
        KernelCache cache = KernelCache.open(CacheConfig.memoryOnly(1000));
        assertThrows(NullPointerException.class, () -> cache.get(null));
        assertThrows(NullPointerException.class, () -> cache.put(key(1), null));
    }
}
