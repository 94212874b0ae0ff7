package dev.kiln.cache;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFileAttributes;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * The on-disk tier: one file per key under {@code <root>/entries/<first two hex digits>/},
 * safe to share between threads and processes without locks.
 *
 * <ul>
 *   <li>Writers publish an entry by writing a temp file in the entry's own directory,
 *   forcing it to disk and renaming it into place, so readers never see a partial entry.</li>
 *   <li>Entries are immutable once published; a read touches the file's modification time,
 *   which is the "last used" time that eviction orders by (atime is unreliable under
 *   {@code noatime}/{@code relatime} mounts, and every process sees the same mtime).</li>
 *   <li>When the directory outgrows its cap, the least recently used entries are unlinked
 *   down to 90% of the cap. A process already reading an unlinked file still reads it whole.</li>
 *   <li>Every read checks ownership, permissions, format, sizes and SHA-256 checksums. A bad
 *   entry is reported once, removed and counted; the read is then a miss.</li>
 * </ul>
 *
 * This class is also the API of the {@code kiln cache stats|ls|verify|clear} commands.
 */
public final class CacheDirectory {
    /** The default size cap: 2 GiB. */
    public static final long DEFAULT_CAP_BYTES = 2L << 30;

    /** Made on first use: the first {@link System#getLogger} of a JVM starts the logging framework (13 to 17 ms). */
    private static final class Log {
        static final System.Logger LOG = System.getLogger("dev.kiln.cache");
    }
    private static final String ENTRY_SUFFIX = ".entry";
    private static final String TEMP_PREFIX = ".tmp-";
    private static final Pattern ENTRY_NAME = Pattern.compile("[0-9a-f]{64}\\" + ENTRY_SUFFIX);
    private static final Pattern SHARD_NAME = Pattern.compile("[0-9a-f]{2}");
    /** Temp files older than this belong to a writer that died; younger ones may still be in flight. */
    private static final Duration STALE_TEMP_AGE = Duration.ofHours(1);
    /** Re-measure the directory after this many of our own writes, to notice other processes' writes. */
    private static final int RESCAN_EVERY_PUTS = 64;

    private static final Set<PosixFilePermission> OWNER_ONLY_DIR = PosixFilePermissions.fromString("rwx------");
    private static final Set<PosixFilePermission> OWNER_ONLY_FILE = PosixFilePermissions.fromString("rw-------");

    private final Path root;
    private final Path entries;
    private final long capBytes;
    private final boolean posix;
    private final UserPrincipal owner;
    private final LookupCounts lookups;

    private final AtomicLong hits = new AtomicLong();
    private final AtomicLong misses = new AtomicLong();
    private final AtomicLong evictions = new AtomicLong();
    private final AtomicLong corrupt = new AtomicLong();
    /**
     * Our estimate of the bytes on disk: exact after a scan, then grown by our own writes.
     * The first scan waits for the first put or question about the size: a warm start only
     * reads, and listing a full directory costs milliseconds per thousand entries.
     */
    private final AtomicLong estimatedBytes = new AtomicLong();
    private volatile boolean sized;
    private final AtomicLong putsSinceScan = new AtomicLong();
    /** Files already reported as bad (path, size, mtime), so one that cannot be removed is reported once. */
    private final Set<String> reported = ConcurrentHashMap.newKeySet();

    private CacheDirectory(Path root, long capBytes, boolean posix, UserPrincipal owner) {
        this.root = root;
        this.entries = root.resolve("entries");
        this.capBytes = capBytes;
        this.posix = posix;
        this.owner = owner;
        this.lookups = new LookupCounts(root, fileAttributes(OWNER_ONLY_FILE));
    }

    /** Opens (creating, owner-only, if needed) the cache directory at {@code root} with the default 2 GiB cap. */
    public static CacheDirectory open(Path root) {
        return open(root, DEFAULT_CAP_BYTES);
    }

    /**
     * Opens (creating, owner-only, if needed) the cache directory at {@code root}.
     *
     * @throws CacheException if it cannot be created, is not a directory, is not owned by the
     *                        current user, or is writable by group or others
     */
    public static CacheDirectory open(Path root, long capBytes) {
        if (capBytes <= 0) throw new IllegalArgumentException("cache size cap must be positive, got " + capBytes);
        Path abs = root.toAbsolutePath().normalize();
        boolean posix = abs.getFileSystem().supportedFileAttributeViews().contains("posix");
        UserPrincipal me = currentUser(abs);
        try {
            createOwnerOnlyDirectories(abs, posix);
            checkTrusted(abs, me, posix);
            Path entries = abs.resolve("entries");
            createOwnerOnlyDirectories(entries, posix);
            checkTrusted(entries, me, posix);
        } catch (IOException e) {
            throw new CacheException("cannot use kernel cache directory " + abs + ": " + describe(e), e);
        }
        return new CacheDirectory(abs, capBytes, posix, me);
    }

    public Path root() { return root; }
    public long capBytes() { return capBytes; }

    /** Whether the current process may write here (a read-only directory degrades the cache to memory-only). */
    public boolean isWritable() {
        return Files.isWritable(root) && Files.isWritable(entries);
    }

    // ---- the tier: get and put ----

    /** The artifact stored under {@code key}, after checking it; empty on a miss or a bad entry. */
    public Optional<Artifact> get(CacheKey key) {
        Path file = fileOf(key);
        byte[] bytes;
        try {
            checkEntryTrusted(file);
            bytes = readFully(file);
        } catch (NoSuchFileException e) {
            return miss();
        } catch (UntrustedEntryException e) {
            rejectEntry(file, e.getMessage());
            return miss();
        } catch (IOException e) {
            rejectEntry(file, "unreadable: " + describe(e));
            return miss();
        }
        try {
            Artifact a = EntryCodec.decode(bytes, key.hex());
            touch(file);
            hits.incrementAndGet();
            lookups.record(true);
            return Optional.of(a);
        } catch (EntryCodec.CorruptEntryException e) {
            rejectEntry(file, e.getMessage());
            return miss();
        }
    }

    private Optional<Artifact> miss() {
        misses.incrementAndGet();
        lookups.record(false);
        return Optional.empty();
    }

    /**
     * Stores {@code artifact} under {@code key} atomically, then evicts least recently used
     * entries if the directory outgrew its cap. An artifact larger than the cap is not stored.
     *
     * @throws IOException if the entry cannot be written (full disk, read-only directory, ...)
     */
    public void put(CacheKey key, Artifact artifact) throws IOException {
        size();
        byte[] bytes = EntryCodec.encode(key, artifact, Instant.now());
        if (bytes.length > capBytes) return;
        Path file = fileOf(key);
        Path shard = file.getParent();
        createOwnerOnlyDirectories(shard, posix);
        Path temp = Files.createTempFile(shard, TEMP_PREFIX + key.hex().substring(0, 8) + "-", "", fileAttributes(OWNER_ONLY_FILE));
        try {
            try (FileChannel ch = FileChannel.open(temp, StandardOpenOption.WRITE)) {
                ByteBuffer buf = ByteBuffer.wrap(bytes);
                while (buf.hasRemaining()) ch.write(buf);
                ch.force(true);
            }
            moveAtomically(temp, file);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(temp);
            throw e;
        }
        forceDirectory(shard);
        long estimate = estimatedBytes.addAndGet(bytes.length);
        if (estimate > capBytes || putsSinceScan.incrementAndGet() >= RESCAN_EVERY_PUTS) evictIfOverCap();
    }

    long hits() { return hits.get(); }
    long misses() { return misses.get(); }
    long evictions() { return evictions.get(); }
    long corruptEntries() { return corrupt.get(); }
    long estimatedBytes() {
        size();
        return estimatedBytes.get();
    }

    /** Scans the directory for its size the first time it is needed. */
    private void size() {
        if (sized) return;
        synchronized (this) {
            if (sized) return;
            estimatedBytes.set(scan().totalBytes());
            sized = true;
        }
    }

    // ---- the command-line API ----

    /**
     * What {@code kiln cache stats} shows; {@code diskHits} and {@code diskMisses} are summed
     * over every process that looked entries up here since the directory was made or cleared.
     */
    public record DirectoryStats(Path root, int entries, long bytes, long capBytes, Optional<Instant> leastRecentlyUsed,
                                 Optional<Instant> mostRecentlyUsed, long diskHits, long diskMisses) {
        /** Hits over all lookups; 0 before the first. */
        public double hitRate() { return new LookupCounts.Counts(diskHits, diskMisses).hitRate(); }
    }

    /** One entry as {@code kiln cache ls} shows it; {@code problem} is set when its manifest cannot be read. */
    public record EntryInfo(String key, Path file, long fileBytes, Optional<Instant> created, Instant lastUsed,
                            String kilnVersion, SequencedMap<String, String> components,
                            SequencedMap<String, Long> partSizes, SequencedMap<String, String> metadata,
                            Optional<String> problem) {}

    /** A bad entry found by {@link #verify()}. */
    public record Problem(Path file, String reason) {}

    /** What {@code kiln cache verify} found: entries checked, those intact, and the bad ones it removed. */
    public record VerifyReport(int checked, int valid, List<Problem> removed, long bytesFreed) {}

    /** What {@code kiln cache clear} removed. */
    public record ClearReport(int entriesRemoved, long bytesFreed) {}

    public DirectoryStats stats() {
        Scan s = scan();
        LookupCounts.Counts c = lookups.read();
        return new DirectoryStats(root, s.files().size(), s.totalBytes(), capBytes,
                s.files().stream().map(ScannedFile::lastUsed).min(Comparator.naturalOrder()),
                s.files().stream().map(ScannedFile::lastUsed).max(Comparator.naturalOrder()), c.hits(), c.misses());
    }

    /** Every entry, least recently used first, read from its manifest (parts are not checked; see {@link #verify()}). */
    public List<EntryInfo> list() {
        List<EntryInfo> out = new ArrayList<>();
        for (ScannedFile f : scan().files()) {
            String hex = keyOf(f.path());
            try {
                EntryCodec.Manifest m = readManifest(f.path());
                SequencedMap<String, Long> sizes = new LinkedHashMap<>();
                m.parts().forEach(p -> sizes.put(p.name(), p.size()));
                out.add(new EntryInfo(hex, f.path(), f.bytes(), m.created(), f.lastUsed(), m.kilnVersion(),
                        m.key().components(), sizes, m.metadata(), Optional.empty()));
            } catch (NoSuchFileException e) {
                // evicted or cleared since the scan
            } catch (IOException e) {
                out.add(problemEntry(hex, f, "unreadable: " + describe(e)));
            } catch (EntryCodec.CorruptEntryException e) {
                out.add(problemEntry(hex, f, e.getMessage()));
            }
        }
        return out;
    }

    /** Checks every entry completely (ownership, format, checksums) and removes the bad ones, with stale temp files. */
    public VerifyReport verify() {
        int checked = 0;
        int valid = 0;
        long freed = 0;
        List<Problem> removed = new ArrayList<>();
        for (ScannedFile f : scan().files()) {
            checked++;
            String reason;
            try {
                checkEntryTrusted(f.path());
                EntryCodec.decode(readFully(f.path()), keyOf(f.path()));
                valid++;
                continue;
            } catch (NoSuchFileException e) {
                checked--;
                continue;
            } catch (UntrustedEntryException | EntryCodec.CorruptEntryException e) {
                reason = e.getMessage();
            } catch (IOException e) {
                reason = "unreadable: " + describe(e);
            }
            if (rejectEntry(f.path(), reason)) freed += f.bytes();
            removed.add(new Problem(f.path(), reason));
        }
        freed += removeStaleTemps(STALE_TEMP_AGE);
        return new VerifyReport(checked, valid, List.copyOf(removed), freed);
    }

    /** Removes every entry (and leftover temp files); the directory itself stays. */
    public ClearReport clear() {
        int n = 0;
        long freed = 0;
        for (ScannedFile f : scan().files()) {
            if (deleteQuietly(f.path())) {
                n++;
                freed += f.bytes();
            }
        }
        // young temp files may be a running writer's; removing them would fail its publish
        freed += removeStaleTemps(STALE_TEMP_AGE);
        estimatedBytes.set(scan().totalBytes());
        sized = true;
        lookups.reset();
        return new ClearReport(n, freed);
    }

    // ---- eviction ----

    /** Unlinks least recently used entries until the directory is at most 90% of its cap. */
    synchronized void evictIfOverCap() {
        putsSinceScan.set(0);
        Scan s = scan();
        long total = s.totalBytes();
        if (total > capBytes) {
            long target = capBytes - capBytes / 10;
            for (ScannedFile f : s.files()) {
                if (total <= target) break;
                if (deleteQuietly(f.path())) evictions.incrementAndGet();
                total -= f.bytes();
            }
        }
        estimatedBytes.set(total);
        sized = true;
    }

    private record ScannedFile(Path path, long bytes, Instant lastUsed) {}

    private record Scan(List<ScannedFile> files, long totalBytes) {}

    /** All entry files, least recently used first (ties broken by name, so every process agrees). */
    private Scan scan() {
        List<ScannedFile> files = new ArrayList<>();
        try (DirectoryStream<Path> shards = Files.newDirectoryStream(entries)) {
            for (Path shard : shards) {
                if (!SHARD_NAME.matcher(shard.getFileName().toString()).matches()) continue;
                try (DirectoryStream<Path> names = Files.newDirectoryStream(shard)) {
                    for (Path p : names) {
                        if (!ENTRY_NAME.matcher(p.getFileName().toString()).matches()) continue;
                        try {
                            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                            files.add(new ScannedFile(p, a.size(), a.lastModifiedTime().toInstant()));
                        } catch (NoSuchFileException e) {
                            // evicted by another process while we listed
                        }
                    }
                } catch (NoSuchFileException | java.nio.file.NotDirectoryException e) {
                    // a shard removed or replaced meanwhile holds nothing we can use
                }
            }
        } catch (NoSuchFileException e) {
            return new Scan(List.of(), 0);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot list kernel cache directory " + entries, e);
        }
        files.sort(Comparator.comparing(ScannedFile::lastUsed).thenComparing(f -> f.path().getFileName().toString()));
        return new Scan(files, files.stream().mapToLong(ScannedFile::bytes).sum());
    }

    private long removeStaleTemps(Duration minAge) {
        long freed = 0;
        Instant cutoff = Instant.now().minus(minAge);
        try (DirectoryStream<Path> shards = Files.newDirectoryStream(entries)) {
            for (Path shard : shards) {
                if (!Files.isDirectory(shard, LinkOption.NOFOLLOW_LINKS)) continue;
                try (DirectoryStream<Path> names = Files.newDirectoryStream(shard, TEMP_PREFIX + "*")) {
                    for (Path p : names) {
                        BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
                        if (a.lastModifiedTime().toInstant().isBefore(cutoff) && deleteQuietly(p)) freed += a.size();
                    }
                } catch (IOException e) {
                    // best effort: a temp file that vanished or a shard we cannot read is left to the next run
                }
            }
        } catch (IOException e) {
            return freed;
        }
        return freed;
    }

    // ---- trust and corruption ----

    private static final class UntrustedEntryException extends IOException {
        UntrustedEntryException(String message) { super(message); }
    }

    private void checkEntryTrusted(Path file) throws IOException {
        if (!posix) return;
        PosixFileAttributes a = Files.readAttributes(file, PosixFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
        if (!a.isRegularFile()) throw new UntrustedEntryException("untrusted: not a regular file");
        if (owner != null && !a.owner().equals(owner)) {
            throw new UntrustedEntryException("untrusted: owned by " + a.owner().getName() + ", not by " + owner.getName());
        }
        Set<PosixFilePermission> p = a.permissions();
        if (p.contains(PosixFilePermission.GROUP_WRITE) || p.contains(PosixFilePermission.OTHERS_WRITE)) {
            throw new UntrustedEntryException("untrusted: writable by group or others (" + PosixFilePermissions.toString(p) + ")");
        }
    }

    /** Reports a bad entry (once) and removes it; true if this call removed it. */
    private boolean rejectEntry(Path file, String reason) {
        String identity = file.toString();
        try {
            BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            identity += "|" + a.size() + "|" + a.lastModifiedTime().toMillis() + "|" + a.fileKey();
        } catch (IOException e) {
            // the identity without attributes still suppresses repeats
        }
        boolean firstReport = reported.add(identity);
        boolean removed = deleteQuietly(file);
        if (firstReport) {
            corrupt.incrementAndGet();
            Log.LOG.log(Level.WARNING, "kernel cache entry {0} is bad ({1}); {2}", file, reason,
                    removed ? "removed it; the kernel will be recompiled" : "could not remove it; the kernel will be recompiled");
        }
        return removed;
    }

    private EntryCodec.Manifest readManifest(Path file) throws IOException, EntryCodec.CorruptEntryException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer header = ByteBuffer.allocate((int) Math.min(size, EntryCodec.HEADER_BYTES));
            readInto(ch, header, 0);
            if (size < EntryCodec.HEADER_BYTES) return EntryCodec.readManifest(header.array(), header.position(), size, keyOf(file));
            int manifestLength = header.getInt(9 + 4);
            int prefix = (int) Math.min(size, (long) EntryCodec.HEADER_BYTES + Math.max(0, Math.min(manifestLength, 16 << 20)));
            ByteBuffer buf = ByteBuffer.allocate(prefix);
            readInto(ch, buf, 0);
            return EntryCodec.readManifest(buf.array(), buf.position(), size, keyOf(file));
        }
    }

    private static void readInto(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        while (buf.hasRemaining()) {
            int n = ch.read(buf, position + buf.position());
            if (n < 0) break;
        }
    }

    private static byte[] readFully(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size > Integer.MAX_VALUE - 16) throw new IOException("entry of " + size + " bytes is too large");
            ByteBuffer buf = ByteBuffer.allocate((int) size);
            readInto(ch, buf, 0);
            if (buf.hasRemaining()) throw new IOException("file shrank while being read");
            return buf.array();
        }
    }

    private EntryInfo problemEntry(String hex, ScannedFile f, String problem) {
        return new EntryInfo(hex, f.path(), f.bytes(), Optional.empty(), f.lastUsed(), "", new LinkedHashMap<>(),
                new LinkedHashMap<>(), new LinkedHashMap<>(), Optional.of(problem));
    }

    // ---- files ----

    Path fileOf(CacheKey key) {
        return entries.resolve(key.hex().substring(0, 2)).resolve(key.hex() + ENTRY_SUFFIX);
    }

    private static String keyOf(Path file) {
        String name = file.getFileName().toString();
        return name.substring(0, name.length() - ENTRY_SUFFIX.length());
    }

    private static void touch(Path file) {
        try {
            Files.setLastModifiedTime(file, FileTime.from(Instant.now()));
        } catch (IOException e) {
            // evicted meanwhile, or a read-only directory: the entry just ages as if unused
        }
    }

    private static boolean deleteQuietly(Path p) {
        try {
            return Files.deleteIfExists(p);
        } catch (IOException e) {
            return false;
        }
    }

    private static void moveAtomically(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            throw new IOException("the file system of " + to.getParent() + " cannot rename atomically", e);
        }
    }

    /** Makes the rename durable; not every platform can open a directory, so failure is ignored. */
    private static void forceDirectory(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // the entry is published; only its durability across a power cut is weaker
        }
    }

    private FileAttribute<?>[] fileAttributes(Set<PosixFilePermission> perms) {
        return posix ? new FileAttribute<?>[] {PosixFilePermissions.asFileAttribute(perms)} : new FileAttribute<?>[0];
    }

    private static void createOwnerOnlyDirectories(Path dir, boolean posix) throws IOException {
        if (Files.isDirectory(dir)) return;
        try {
            if (posix) Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(OWNER_ONLY_DIR));
            else Files.createDirectories(dir);
        } catch (FileAlreadyExistsException e) {
            if (!Files.isDirectory(dir)) throw e;
        }
    }

    private static UserPrincipal currentUser(Path dir) {
        try {
            return dir.getFileSystem().getUserPrincipalLookupService().lookupPrincipalByName(System.getProperty("user.name"));
        } catch (IOException | UnsupportedOperationException e) {
            throw new CacheException("cannot tell whether " + dir + " belongs to the current user: user '"
                    + System.getProperty("user.name") + "' is unknown to the file system", e);
        }
    }

    private static void checkTrusted(Path dir, UserPrincipal me, boolean posix) throws IOException {
        if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
            throw new CacheException("kernel cache directory " + dir + " is not a directory (or is a symbolic link)");
        }
        UserPrincipal owner = Files.getOwner(dir, LinkOption.NOFOLLOW_LINKS);
        if (!owner.equals(me)) {
            throw new CacheException("kernel cache directory " + dir + " is owned by " + owner.getName() + ", not by the current user "
                    + me.getName() + "; refusing to load compiled code from it");
        }
        if (posix) {
            Set<PosixFilePermission> p = Files.getFileAttributeView(dir, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS)
                    .readAttributes().permissions();
            if (p.contains(PosixFilePermission.GROUP_WRITE) || p.contains(PosixFilePermission.OTHERS_WRITE)) {
                throw new CacheException("kernel cache directory " + dir + " is writable by group or others ("
                        + PosixFilePermissions.toString(p) + "); refusing to load compiled code from it (chmod 700 it to use it)");
            }
        }
    }

    static String describe(IOException e) {
        String kind = e.getClass().getSimpleName();
        return e.getMessage() == null ? kind : kind + ": " + e.getMessage();
    }
}
