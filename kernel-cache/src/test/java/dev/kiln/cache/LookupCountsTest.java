package dev.kiln.cache;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

class LookupCountsTest {
    @TempDir Path tmp;

    @Test
    void hitsAndMissesAddUpAcrossOpeningsOfTheDirectoryAndClearResetsThem() {
        Path dir = tmp.resolve("kiln");
        CacheDirectory first = CacheDirectory.open(dir);
        CacheKey present = CacheTesting.key(1), absent = CacheTesting.key(2);
        first.get(present);
        assertPut(first, present);
        first.get(present);
        first.get(present);
        CacheDirectory second = CacheDirectory.open(dir);  // as another process would
        second.get(absent);
        CacheDirectory.DirectoryStats s = second.stats();
        assertEquals(2, s.diskHits());
        assertEquals(2, s.diskMisses());
        assertEquals(0.5, s.hitRate());
        assertEquals(s, first.stats(), "both see the same lifetime counts");

        first.clear();
        assertEquals(0, second.stats().diskHits() + second.stats().diskMisses());
        assertEquals(0, second.stats().hitRate(), "no lookups, no rate");
    }

    @Test
    void aDamagedCountsFileReadsAsZeroAndIsRewrittenByTheNextLookup() throws Exception {
        Path dir = tmp.resolve("kiln");
        CacheDirectory cache = CacheDirectory.open(dir);
        Files.writeString(dir.resolve("lookups"), "garbage\n");
        assertEquals(0, cache.stats().diskMisses());
        cache.get(CacheTesting.key(3));
        assertEquals(1, cache.stats().diskMisses());
    }

    @Test
    void parseRejectsAnythingButItsOwnFormat() {
        assertEquals(new LookupCounts.Counts(3, 4), LookupCounts.parse(LookupCounts.FORMAT + "\nhits 3\nmisses 4\n"));
        for (String bad : new String[] {"", "kiln-cache-lookups 2\nhits 1\nmisses 1\n", LookupCounts.FORMAT + "\nhits -1\nmisses 0\n",
                LookupCounts.FORMAT + "\nmisses 1\nhits 1\n"}) {
            assertThrows(IllegalArgumentException.class, () -> LookupCounts.parse(bad), bad);
        }
    }

    private static void assertPut(CacheDirectory dir, CacheKey key) {
        try {
            dir.put(key, Artifact.of(Map.of("program", new byte[] {1, 2, 3}), Map.of()));
        } catch (java.io.IOException e) {
            throw new AssertionError(e);
        }
    }
}
