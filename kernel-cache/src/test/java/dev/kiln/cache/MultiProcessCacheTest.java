package dev.kiln.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/** Several JVMs sharing one cache directory at once. */
class MultiProcessCacheTest {
    static final int WORKERS = 4;
    @TempDir Path tmp;

    private List<String> runWorkers(Path dir, int iterations, long cap, boolean noEviction) throws Exception {
        CacheDirectory.open(dir);  // created once up front, as a first Kiln run would
        List<Process> procs = new ArrayList<>();
        for (int w = 0; w < WORKERS; w++) {
            procs.add(CacheTesting.startJava(CacheWorker.class, dir.toString(), Integer.toString(w), Integer.toString(iterations),
                    Long.toString(cap), Boolean.toString(noEviction)));
        }
        List<String> outputs = new ArrayList<>();
        for (Process p : procs) outputs.add(CacheTesting.finish(p, 60));
        return outputs;
    }

    private static Set<Long> putIds(List<String> outputs) {
        Set<Long> ids = new TreeSet<>();
        for (String out : outputs) out.lines().filter(l -> l.startsWith("PUT ")).forEach(l -> ids.add(Long.parseLong(l.substring(4))));
        return ids;
    }

    private static void assertNoTempFilesLeft(Path dir) throws Exception {
        try (var files = Files.walk(dir)) {
            assertEquals(List.of(), files.filter(p -> p.getFileName().toString().startsWith(".tmp-")).toList());
        }
    }

    @Test
    void concurrentProcessesLoseAndCorruptNothing() throws Exception {
        Path dir = tmp.resolve("kiln");
        List<String> outputs = runWorkers(dir, 150, CacheDirectory.DEFAULT_CAP_BYTES, true);
        Set<Long> ids = putIds(outputs);
        assertTrue(ids.size() > CacheWorker.SHARED_KEYS + WORKERS * 50, "ids " + ids.size());

        CacheDirectory cache = CacheDirectory.open(dir);
        CacheDirectory.DirectoryStats stats = cache.stats();
        assertEquals(WORKERS * 150 * 2, stats.diskHits() + stats.diskMisses(), "every worker's two lookups per iteration counted: " + stats);
        assertTrue(stats.diskHits() > 0 && stats.diskMisses() > 0, stats.toString());
        CacheDirectory.VerifyReport report = cache.verify();
        assertEquals(List.of(), report.removed());
        assertEquals(ids.size(), report.checked(), "one entry per key put, none lost, none extra");
        for (long id : ids) {
            assertEquals(Optional.of(CacheTesting.artifact(id, CacheWorker.MAX_BYTES)), cache.get(CacheTesting.key(id)), "key " + id);
        }
        assertEquals(0, cache.corruptEntries());
        assertNoTempFilesLeft(dir);
    }

    @Test
    void concurrentProcessesEvictingUnderASmallCapStayConsistent() throws Exception {
        Path dir = tmp.resolve("kiln");
        long cap = 150_000;
        List<String> outputs = runWorkers(dir, 150, cap, false);
        Set<Long> ids = putIds(outputs);

        CacheDirectory cache = CacheDirectory.open(dir, cap);
        CacheDirectory.VerifyReport report = cache.verify();
        assertEquals(List.of(), report.removed());
        assertTrue(report.checked() < ids.size(), "the cap forced evictions: " + report.checked() + " of " + ids.size());
        for (CacheDirectory.EntryInfo e : cache.list()) {
            long id = Long.parseLong(e.metadata().get("seed"));
            assertTrue(ids.contains(id));
            assertEquals(Optional.of(CacheTesting.artifact(id, CacheWorker.MAX_BYTES)), cache.get(CacheTesting.key(id)));
        }
        // each writer measures the directory at least every 64 of its writes, so the excess over the cap stays bounded
        long maxEntry = EntryCodec.HEADER_BYTES + 2048 + CacheWorker.MAX_BYTES + CacheWorker.MAX_BYTES / 4;
        assertTrue(cache.stats().bytes() <= cap + (long) WORKERS * 64 * maxEntry, cache.stats().toString());
        cache.evictIfOverCap();
        assertTrue(cache.stats().bytes() <= cap, cache.stats().toString());
        assertNoTempFilesLeft(dir);
    }
}
