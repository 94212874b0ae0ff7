package dev.kiln.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Off-heap memory (the virtual NPU's DRAM) holding a tensor's elements. Several
 * tensors (views) may share one storage.
 *
 * <p>Each storage owns an automatic arena: its memory is freed once no tensor
 * refers to it. Automatic arenas count against {@code -XX:MaxDirectMemorySize}
 * (by default the heap size) and make the JVM collect before exceeding it, which
 * is what keeps a long loop of eager ops from growing memory without bound.
 */
public final class Storage {
    /** Alignment of every allocation: one cache line, and a multiple of every vector width. */
    public static final long ALIGNMENT = 64;

    private final MemorySegment segment;

    private Storage(MemorySegment segment) {
        this.segment = segment;
    }

    /** Allocates zeroed memory for {@code bytes} bytes. */
    public static Storage allocate(long bytes) {
        return new Storage(Arena.ofAuto().allocate(Math.max(bytes, 1), ALIGNMENT));
    }

    /** Wraps memory owned elsewhere; the caller keeps it alive for as long as this storage. */
    public static Storage wrap(MemorySegment segment) {
        return new Storage(segment);
    }

    public MemorySegment segment() { return segment; }

    public long byteSize() { return segment.byteSize(); }
}
