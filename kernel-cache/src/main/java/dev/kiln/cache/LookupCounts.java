package dev.kiln.cache;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileAttribute;

/**
 * Disk-tier lookups (hits and misses) summed over every process that used a cache
 * directory, so that {@code kiln cache stats} can show the hit rate warm starts get.
 *
 * <p>The counts live in one small text file, {@code <root>/lookups}, read, incremented and
 * republished (temp file and rename) under an exclusive lock on {@code <root>/lookups.lock},
 * so concurrent processes never lose an update and a reader never sees half a file. A
 * lookup happens once per compiled graph per process (later ones hit the memory tier), so
 * the lock is cheap. Counting is best effort: a count that cannot be written costs a
 * statistic, never a kernel.
 */
final class LookupCounts {
    static final String FORMAT = "kiln-cache-lookups 1";

    /** Lifetime disk hits and misses of a directory. */
    record Counts(long hits, long misses) {
        static final Counts NONE = new Counts(0, 0);

        /** Hits over all lookups; 0 when there were none. */
        double hitRate() { return hits + misses == 0 ? 0 : (double) hits / (hits + misses); }
    }

    private final Path file;
    private final Path lock;
    /**
     * The next version of the file, written under the lock and renamed over it: one name serves,
     * since only the lock's holder writes it (a random temporary name seeded a SecureRandom,
     * milliseconds of a warm start's first lookup).
     */
    private final Path next;
    private final FileAttribute<?>[] ownerOnly;

    LookupCounts(Path root, FileAttribute<?>[] ownerOnly) {
        this.file = root.resolve("lookups");
        this.lock = root.resolve("lookups.lock");
        this.next = root.resolve(".tmp-lookups");
        this.ownerOnly = ownerOnly;
    }

    /** Adds one lookup; returns false when the counts could not be updated. */
    boolean record(boolean hit) {
        return update(false, hit ? 1 : 0, hit ? 0 : 1);
    }

    /** Forgets every count, as {@code kiln cache clear} starts the directory afresh. */
    boolean reset() {
        return update(true, 0, 0);
    }

    /** The counts as last published; zero when none were, or the file cannot be read. */
    Counts read() {
        try {
            return parse(Files.readString(file, StandardCharsets.UTF_8));
        } catch (IOException | IllegalArgumentException e) {
            return Counts.NONE;
        }
    }

    // One JVM may hold the file lock only once at a time: threads take turns first.
    private synchronized boolean update(boolean reset, long hits, long misses) {
        try {
            if (!Files.exists(lock)) {
                try {
                    Files.createFile(lock, ownerOnly);
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    // another process made it first
                }
            }
            try (FileChannel ch = FileChannel.open(lock, StandardOpenOption.WRITE); FileLock ignored = ch.lock()) {
                Counts c = reset ? Counts.NONE : read();
                String text = new StringBuilder(FORMAT).append("\nhits ").append(c.hits() + hits)
                        .append("\nmisses ").append(c.misses() + misses).append('\n').toString();
                // Left by a writer that died holding the lock: its partial text is replaced whole.
                Files.deleteIfExists(next);
                try {
                    Files.writeString(Files.createFile(next, ownerOnly), text, StandardCharsets.UTF_8);
                    Files.move(next, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } finally {
                    Files.deleteIfExists(next);
                }
            }
            return true;
        } catch (IOException | RuntimeException e) {
            return false;
        }
    }

    static Counts parse(String text) {
        String[] lines = text.split("\n");
        if (lines.length < 3 || !lines[0].equals(FORMAT) || !lines[1].startsWith("hits ") || !lines[2].startsWith("misses ")) {
            throw new IllegalArgumentException("not a lookups file");
        }
        long hits = Long.parseLong(lines[1].substring(5)), misses = Long.parseLong(lines[2].substring(7));
        if (hits < 0 || misses < 0) throw new IllegalArgumentException("negative count");
        return new Counts(hits, misses);
    }
}
