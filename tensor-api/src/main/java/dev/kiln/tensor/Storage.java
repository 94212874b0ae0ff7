package dev.kiln.tensor;

import java.lang.foreign.MemorySegment;

/**
 * Off-heap memory (the virtual NPU's DRAM) holding a tensor's elements. Several
 * tensors (views) may share one storage.
 *
 * <p>Memory comes from the {@link DramPool}: it goes back to the pool once no tensor
 * refers to the storage, and the pool collects garbage when blocks stop coming back,
 * which is what keeps a long loop of eager ops from growing memory without bound.
 * Fresh memory is not zeroed: whoever allocates it writes every element.
 */
public final class Storage {
    /** Alignment of every allocation: one cache line, and a multiple of every vector width. */
    public static final long ALIGNMENT = 64;

    // Assigned once, right after construction: the pool needs the owner to watch for its release.
    private MemorySegment segment;
    /** Bumped by every write into memory that already holds a tensor's values (see {@link #markWritten}). */
    private volatile int version;

    private static final java.util.concurrent.atomic.AtomicLong MADE = new java.util.concurrent.atomic.AtomicLong();
    /** The order storages were made in: a tracer tells tensors made during a call from those that existed before it. */
    private final long serial = MADE.getAndIncrement();

    private Storage() {}

    private Storage(MemorySegment segment) {
        this.segment = segment;
    }

    /** Allocates memory for {@code bytes} bytes, uninitialised: the caller writes every element. */
    public static Storage allocate(long bytes) {
        Storage s = new Storage();
        s.segment = DramPool.INSTANCE.allocate(bytes, s);
        return s;
    }

    /**
     * Wraps memory owned elsewhere; the caller keeps it alive for as long as this storage, and
     * {@linkplain #markWritten marks} every write into it made after a tensor's values are there.
     */
    public static Storage wrap(MemorySegment segment) {
        return new Storage(segment);
    }

    /**
     * The memory. Tensors are values: Kiln's ops write only fresh memory, except the
     * in-place serving ops, which {@link #markWritten mark} what they write. Code that
     * writes through this segment into memory that already holds a tensor's values must
     * call {@link #markWritten} too, or compiled programs may keep using forms of the old
     * values they derived (a matmul's packed weights).
     */
    public MemorySegment segment() { return segment; }

    /**
     * How many times the memory has been written after its tensor was made: a compiled
     * program keeps what it derived from a tensor (packed matmul weights) while its
     * storage and version are the same.
     */
    public int version() { return version; }

    /** Records a write into memory that already held values: see {@link #version}. */
    public void markWritten() {
        synchronized (this) {
            version++;
        }
    }

    public long byteSize() { return segment.byteSize(); }

    /** This storage's place in the order storages were made. */
    public long serial() { return serial; }

    /** The serial the next storage made will get. */
    public static long nextSerial() { return MADE.get(); }
}
