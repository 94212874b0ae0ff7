package dev.kiln.cache;

import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.UnaryOperator;

import static dev.kiln.cache.CacheTesting.artifact;
import static dev.kiln.cache.CacheTesting.key;
import static dev.kiln.cache.CacheTesting.sized;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class CacheDirectoryTest {
    @TempDir Path tmp;
    Path root;

    @BeforeEach
    void setUp() {
        root = tmp.resolve("kiln");
    }

    @Test
    void roundTripsArtifactsAndCreatesAnOwnerOnlyDirectory() throws IOException {
        CacheDirectory dir = CacheDirectory.open(root);
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(root)));
        for (long i = 0; i < 20; i++) dir.put(key(i), artifact(i, 5000));
        for (long i = 0; i < 20; i++) assertEquals(Optional.of(artifact(i, 5000)), dir.get(key(i)));
        assertEquals(Optional.empty(), dir.get(key(99)));
        assertEquals(20, dir.hits());
        assertEquals(1, dir.misses());
        Path file = dir.fileOf(key(3));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file.getParent())));
        Artifact empty = Artifact.of(Map.of(), Map.of());
        dir.put(key(50), empty);
        assertEquals(Optional.of(empty), dir.get(key(50)));
    }

    @Test
    void listShowsReadableManifests() throws IOException {
        CacheDirectory dir = CacheDirectory.open(root);
        Instant before = Instant.now();
        dir.put(key(1), artifact(1, 300));
        List<CacheDirectory.EntryInfo> list = dir.list();
        assertEquals(1, list.size());
        CacheDirectory.EntryInfo e = list.getFirst();
        assertEquals(key(1).hex(), e.key());
        assertEquals(key(1).components(), e.components());
        assertEquals(KilnVersion.VALUE, e.kilnVersion());
        assertFalse(KilnVersion.VALUE.contains("${"), "the version resource must be filtered: " + KilnVersion.VALUE);
        Artifact a = artifact(1, 300);
        assertEquals(List.copyOf(a.partNames()), List.copyOf(e.partSizes().keySet()));
        for (String p : a.partNames()) assertEquals(a.partSize(p), e.partSizes().get(p));
        assertEquals(a.metadata(), e.metadata());
        assertFalse(e.created().orElseThrow().isBefore(before.minusSeconds(1)));
        assertEquals(Files.size(e.file()), e.fileBytes());
        assertEquals(Optional.empty(), e.problem());
        String manifest = new String(Files.readAllBytes(e.file()), StandardCharsets.ISO_8859_1);
        assertTrue(manifest.contains("key.device=cpu avx2 x2\n"), manifest);
        assertTrue(manifest.contains("format=1\n"), manifest);
    }

    @Test
    void evictsLeastRecentlyUsedAndRespectsTheCap() throws Exception {
        long cap = 20_000;
        CacheDirectory dir = CacheDirectory.open(root, cap);
        for (long i = 0; i < 5; i++) {
            dir.put(key(i), sized(i, 3000));
            age(dir, key(i), 100 - i * 10);
        }
        // key 0 is the oldest write but the most recent read
        assertTrue(dir.get(key(0)).isPresent());
        for (long i = 5; i < 40; i++) {
            dir.put(key(i), sized(i, 3000));
            assertTrue(dir.stats().bytes() <= cap, "over cap after put " + i + ": " + dir.stats());
            if (i == 6) {
                assertTrue(dir.get(key(0)).isPresent(), "the recently read entry survives");
                assertEquals(Optional.empty(), dir.get(key(1)), "the least recently used entry goes first");
            }
        }
        assertTrue(dir.evictions() >= 30, "evictions " + dir.evictions());
        assertTrue(dir.get(key(39)).isPresent(), "the newest entry stays");
        assertEquals(dir.stats().bytes(), dir.estimatedBytes());
        // an artifact larger than the whole cap is not stored and evicts nothing
        int entries = dir.stats().entries();
        dir.put(key(100), sized(100, (int) cap + 1));
        assertEquals(Optional.empty(), dir.get(key(100)));
        assertEquals(entries, dir.stats().entries());
    }

    /** Pretends the entry was last used {@code secondsAgo} seconds ago. */
    private static void age(CacheDirectory dir, CacheKey k, long secondsAgo) throws IOException {
        Files.setLastModifiedTime(dir.fileOf(k), FileTime.from(Instant.now().minusSeconds(secondsAgo)));
    }

    // ---- corruption ----

    private void assertRecovers(String expectedProblem, UnaryOperator<byte[]> damage) throws IOException {
        CacheDirectory dir = CacheDirectory.open(root);
        CacheKey k = key(7);
        Artifact a = artifact(7, 4000);
        dir.put(k, a);
        Path file = dir.fileOf(k);
        Files.write(file, damage.apply(Files.readAllBytes(file)));
        try (var warnings = new CacheTesting.Warnings()) {
            assertEquals(Optional.empty(), dir.get(k));
            assertEquals(Optional.empty(), dir.get(k));
            assertEquals(1, warnings.messages.size(), warnings.messages.toString());
            String w = warnings.messages.getFirst();
            assertTrue(w.contains(file.toString()) && w.contains(expectedProblem), w);
        }
        assertFalse(Files.exists(file), "the bad entry is removed");
        assertEquals(1, dir.corruptEntries());
        assertEquals(2, dir.misses());
        dir.put(k, a);
        assertEquals(Optional.of(a), dir.get(k), "a recompiled artifact is cached again");
    }

    private static int manifestLength(byte[] f) { return ByteBuffer.wrap(f).getInt(13); }

    @Test
    void truncatedEntry() throws IOException {
        assertRecovers("truncated", f -> Arrays.copyOf(f, f.length - 1));
    }

    @Test
    void entryTruncatedInsideTheHeader() throws IOException {
        assertRecovers("truncated", f -> Arrays.copyOf(f, 20));
    }

    @Test
    void emptyEntry() throws IOException {
        assertRecovers("truncated", f -> new byte[0]);
    }

    @Test
    void flippedByteInAPart() throws IOException {
        assertRecovers("checksum mismatch in part 'program'", f -> {
            f[f.length - 2000 - 1] ^= 0x10;
            return f;
        });
    }

    @Test
    void flippedByteInTheLastPart() throws IOException {
        assertRecovers("checksum mismatch in part 'classes/", f -> {
            f[f.length - 1] ^= 1;
            return f;
        });
    }

    @Test
    void flippedByteInTheManifest() throws IOException {
        assertRecovers("manifest checksum mismatch", f -> {
            f[EntryCodec.HEADER_BYTES + 3] ^= 0x20;
            return f;
        });
    }

    @Test
    void foreignFormatVersion() throws IOException {
        assertRecovers("foreign format version 2 (this Kiln reads version 1)", f -> {
            ByteBuffer.wrap(f).putInt(9, 2);
            return f;
        });
    }

    @Test
    void badMagic() throws IOException {
        assertRecovers("bad magic", f -> {
            f[0] = 'X';
            return f;
        });
    }

    @Test
    void missingPart() throws IOException {
        // the manifest lists two parts, the file holds only the first
        assertRecovers("truncated", f -> {
            Artifact a = artifact(7, 4000);
            return Arrays.copyOf(f, f.length - a.partSize(a.partNames().getLast()));
        });
    }

    @Test
    void garbageManifestWithAValidChecksum() throws IOException {
        assertRecovers("garbage in manifest", f -> rewriteManifest(f, m -> m.replaceFirst("created=[^\n]*", "created=yesterday")));
    }

    @Test
    void manifestForAnotherKey() throws IOException {
        String other = key(8).hex();
        assertRecovers("holds key " + other, f -> rewriteManifest(f, m -> {
            String out = m.replaceFirst("key=[0-9a-f]{64}", "key=" + other);
            for (var c : key(8).components().entrySet()) out = out.replaceFirst("key\\." + c.getKey() + "=[^\n]*", "key." + c.getKey() + "=" + c.getValue());
            return out;
        }));
    }

    @Test
    void manifestKeyNotMatchingItsComponents() throws IOException {
        assertRecovers("does not match its components", f -> rewriteManifest(f, m -> m.replace("key.options=opt=7", "key.options=opt=8")));
    }

    @Test
    void unknownManifestField() throws IOException {
        assertRecovers("unknown manifest field 'evil'", f -> rewriteManifest(f, m -> m + "evil=1\n"));
    }

    @Test
    void randomGarbageInsteadOfAnEntry() throws IOException {
        assertRecovers("bad magic", f -> {
            new java.util.Random(1).nextBytes(f);
            return f;
        });
    }

    /** Replaces the manifest text and fixes its length and checksum, so only the content is wrong. */
    private static byte[] rewriteManifest(byte[] f, UnaryOperator<String> edit) {
        int len = manifestLength(f);
        String m = new String(f, EntryCodec.HEADER_BYTES, len, StandardCharsets.UTF_8);
        byte[] nm = edit.apply(m).getBytes(StandardCharsets.UTF_8);
        ByteBuffer out = ByteBuffer.allocate(f.length - len + nm.length);
        out.put(f, 0, 13).putInt(nm.length).put(CacheKey.sha256().digest(nm)).put(nm);
        out.put(f, EntryCodec.HEADER_BYTES + len, f.length - EntryCodec.HEADER_BYTES - len);
        return out.array();
    }

    @Test
    void unreadableEntryIsReportedAndRemoved() throws IOException {
        CacheDirectory dir = CacheDirectory.open(root);
        dir.put(key(1), artifact(1, 100));
        Path file = dir.fileOf(key(1));
        Files.delete(file);
        Files.createDirectory(file);  // a directory where the entry should be: reading it fails
        try (var warnings = new CacheTesting.Warnings()) {
            assertEquals(Optional.empty(), dir.get(key(1)));
            assertEquals(1, warnings.messages.size(), warnings.messages.toString());
            assertTrue(warnings.messages.getFirst().contains(file.toString()), warnings.messages.getFirst());
        }
        assertEquals(1, dir.corruptEntries());
    }

    @Test
    void groupWritableEntryIsRefused() throws IOException {
        CacheDirectory dir = CacheDirectory.open(root);
        dir.put(key(1), artifact(1, 100));
        Path file = dir.fileOf(key(1));
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-rw-rw-"));
        try (var warnings = new CacheTesting.Warnings()) {
            assertEquals(Optional.empty(), dir.get(key(1)));
            assertTrue(warnings.messages.getFirst().contains("writable by group or others"), warnings.messages.toString());
        }
        assertEquals(1, dir.corruptEntries());
        assertFalse(Files.exists(file));
    }

    @Test
    void entryOwnedBySomeoneElseIsRefused() throws IOException {
        assumeTrue(CacheTesting.isRoot(), "only root can give a file to another user");
        CacheDirectory dir = CacheDirectory.open(root);
        dir.put(key(1), artifact(1, 100));
        Path file = dir.fileOf(key(1));
        UserPrincipal nobody = file.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody");
        Files.setOwner(file, nobody);
        try (var warnings = new CacheTesting.Warnings()) {
            assertEquals(Optional.empty(), dir.get(key(1)));
            assertTrue(warnings.messages.getFirst().contains("owned by nobody"), warnings.messages.toString());
        }
    }

    @Test
    void refusesADirectoryWritableByOthers() throws IOException {
        Files.createDirectories(root);
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxrwxrwx"));
        var e = assertThrows(CacheException.class, () -> CacheDirectory.open(root));
        assertTrue(e.getMessage().contains(root + " is writable by group or others (rwxrwxrwx)"), e.getMessage());
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxrwx---"));
        assertThrows(CacheException.class, () -> CacheDirectory.open(root));
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxr-xr-x"));
        CacheDirectory.open(root);  // readable by others is allowed; only writing is a threat
    }

    @Test
    void refusesADirectoryOwnedBySomeoneElse() throws IOException {
        assumeTrue(CacheTesting.isRoot(), "only root can give a directory to another user");
        Files.createDirectories(root, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        Files.setOwner(root, root.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName("nobody"));
        var e = assertThrows(CacheException.class, () -> CacheDirectory.open(root));
        assertTrue(e.getMessage().contains("is owned by nobody, not by the current user"), e.getMessage());
    }

    @Test
    void refusesAFileOrSymlinkAsTheDirectory() throws IOException {
        Files.writeString(root, "not a directory");
        var e = assertThrows(CacheException.class, () -> CacheDirectory.open(root));
        assertTrue(e.getMessage().startsWith("cannot use kernel cache directory " + root), e.getMessage());
        Path real = Files.createDirectory(tmp.resolve("real"));
        Path link = Files.createSymbolicLink(tmp.resolve("link"), real);
        var s = assertThrows(CacheException.class, () -> CacheDirectory.open(link));
        assertTrue(s.getMessage().contains("not a directory (or is a symbolic link)"), s.getMessage());
    }

    // ---- the command-line API ----

    @Test
    void statsVerifyAndClear() throws IOException {
        CacheDirectory dir = CacheDirectory.open(root);
        for (long i = 0; i < 6; i++) dir.put(key(i), artifact(i, 1000));
        CacheDirectory.DirectoryStats s = dir.stats();
        assertEquals(6, s.entries());
        long total = 0;
        for (long i = 0; i < 6; i++) total += Files.size(dir.fileOf(key(i)));
        assertEquals(total, s.bytes());
        assertEquals(CacheDirectory.DEFAULT_CAP_BYTES, s.capBytes());
        assertTrue(s.leastRecentlyUsed().orElseThrow().compareTo(s.mostRecentlyUsed().orElseThrow()) <= 0);

        Path bad1 = dir.fileOf(key(2));
        Path bad2 = dir.fileOf(key(4));
        byte[] f = Files.readAllBytes(bad1);
        Files.write(bad1, Arrays.copyOf(f, f.length / 2));
        byte[] g = Files.readAllBytes(bad2);
        g[g.length - 1] ^= 1;
        Files.write(bad2, g);
        // a writer that died long ago left a temp file
        Path stale = Files.writeString(bad1.getParent().resolve(".tmp-deadbeef-123"), "partial");
        Files.setLastModifiedTime(stale, FileTime.from(Instant.now().minusSeconds(7200)));
        Path young = Files.writeString(bad1.getParent().resolve(".tmp-cafebabe-456"), "in flight");

        List<CacheDirectory.EntryInfo> listed = dir.list();
        assertEquals(6, listed.size());
        assertEquals(Optional.of("truncated"), listed.stream().filter(e -> e.key().equals(key(2).hex())).findFirst().orElseThrow()
                .problem().map(p -> p.substring(0, 9)));

        CacheDirectory.VerifyReport r = dir.verify();
        assertEquals(6, r.checked());
        assertEquals(4, r.valid());
        assertEquals(List.of(bad1, bad2).stream().sorted().toList(), r.removed().stream().map(CacheDirectory.Problem::file).sorted().toList());
        assertEquals(f.length / 2 + g.length + "partial".length(), r.bytesFreed());
        assertFalse(Files.exists(stale));
        assertTrue(Files.exists(young), "a young temp file may be a running writer's");
        assertEquals(2, dir.corruptEntries());
        assertEquals(4, dir.stats().entries());
        assertEquals(new CacheDirectory.VerifyReport(4, 4, List.of(), 0), dir.verify());

        long remaining = dir.stats().bytes();
        assertEquals(new CacheDirectory.ClearReport(4, remaining), dir.clear());
        assertEquals(0, dir.stats().entries());
        assertEquals(List.of(), dir.list());
        assertTrue(Files.isDirectory(root));
        assertEquals(Optional.empty(), dir.get(key(0)));
    }

    @Test
    void openMeasuresAnExistingDirectory() throws IOException {
        CacheDirectory first = CacheDirectory.open(root);
        for (long i = 0; i < 3; i++) first.put(key(i), artifact(i, 1000));
        CacheDirectory second = CacheDirectory.open(root);
        assertEquals(first.stats().bytes(), second.estimatedBytes());
        assertEquals(Optional.of(artifact(1, 1000)), second.get(key(1)));
    }

    @Test
    void aPutIntoAnExistingDirectoryCountsWhatWasThereOnceAndItsOwnBytesOnce() throws IOException {
        CacheDirectory first = CacheDirectory.open(root);
        for (long i = 0; i < 3; i++) first.put(key(i), artifact(i, 1000));
        CacheDirectory second = CacheDirectory.open(root);
        assertEquals(Optional.of(artifact(0, 1000)), second.get(key(0)), "a read needs no size");
        second.put(key(3), artifact(3, 1000));
        assertEquals(second.stats().bytes(), second.estimatedBytes());
    }

    @Test
    void rejectsANonPositiveCap() {
        assertThrows(IllegalArgumentException.class, () -> CacheDirectory.open(root, 0));
    }
}
