package dev.kiln.cache;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Random;

/**
 * A child JVM of {@link MultiProcessCacheTest}: puts and gets many entries in a shared
 * directory, with no memory tier so every get reads the disk, and checks every byte read.
 * Arguments: directory, worker id, iterations, disk cap, whether every own put must stay readable.
 * Prints "PUT id" for each key it stored; exits non-zero on a wrong byte or a lost entry.
 */
public final class CacheWorker {
    static final int SHARED_KEYS = 40;
    static final int MAX_BYTES = 6000;

    public static void main(String[] args) {
        Path dir = Path.of(args[0]);
        int worker = Integer.parseInt(args[1]);
        int iterations = Integer.parseInt(args[2]);
        long cap = Long.parseLong(args[3]);
        boolean noEviction = Boolean.parseBoolean(args[4]);
        KernelCache cache = KernelCache.open(CacheConfig.at(dir).withDiskCap(cap).withMemoryCap(0));
        Random r = new Random(worker * 7919L);
        List<Long> mine = new ArrayList<>();
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < iterations; i++) {
            long id = r.nextBoolean() ? r.nextInt(SHARED_KEYS) : 1_000_000L * (worker + 1) + i;
            cache.put(CacheTesting.key(id), CacheTesting.artifact(id, MAX_BYTES));
            mine.add(id);
            out.append("PUT ").append(id).append('\n');
            check(cache, r.nextInt(SHARED_KEYS), false);
            check(cache, mine.get(r.nextInt(mine.size())), noEviction);
        }
        KernelCache.Stats s = cache.stats();
        if (s.corruptEntries() != 0) fail("saw " + s.corruptEntries() + " corrupt entries: " + s);
        if (!s.diskWritable()) fail("the disk tier degraded: " + s);
        System.out.print(out);
        System.out.println("STATS " + s);
    }

    private static void check(KernelCache cache, long id, boolean mustExist) {
        Optional<Artifact> a = cache.get(CacheTesting.key(id));
        if (a.isPresent() && !a.get().equals(CacheTesting.artifact(id, MAX_BYTES))) fail("wrong bytes for key " + id);
        if (a.isEmpty() && mustExist) fail("lost entry " + id + " that this worker put");
    }

    private static void fail(String message) {
        System.err.println("worker: " + message);
        System.exit(3);
    }
}
