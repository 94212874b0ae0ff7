package dev.kiln.tensor;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Asks Linux to back large DRAM blocks with transparent huge pages.
 *
 * <p>Where transparent huge pages are enabled only on request ({@code madvise}, a common
 * default), a fresh 16 MB block first-touches 4096 small pages, each a fault and a zeroed
 * page: several milliseconds, more than the kernel that fills the block. With 2 MB pages
 * it is 8 faults. Best effort: elsewhere (another OS, no native access, the call failing)
 * blocks stay on small pages and only that cost remains.
 */
final class HugePages {
    /** The huge page size on x86-64 and arm64 Linux; blocks at least this large are advised. */
    static final long SIZE = 2L << 20;
    private static final int MADV_HUGEPAGE = 14;
    private static final Optional<MethodHandle> MADVISE = lookup();

    private HugePages() {}

    private static Optional<MethodHandle> lookup() {
        if (!System.getProperty("os.name", "").startsWith("Linux") || !Boolean.parseBoolean(System.getProperty("kiln.npu.hugePages", "true"))) {
            return Optional.empty();
        }
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("madvise").map(f -> linker.downcallHandle(f,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT)));
        } catch (RuntimeException | LinkageError e) {
            return Optional.empty();
        }
    }

    /** Whether huge-page advice is available here. */
    static boolean available() { return MADVISE.isPresent(); }

    /** Advises huge pages for {@code block} (aligned to {@link #SIZE}); true when the kernel accepted the advice. */
    static boolean advise(MemorySegment block) {
        if (MADVISE.isEmpty() || block.byteSize() < SIZE || block.address() % SIZE != 0) return false;
        try {
            return (int) MADVISE.get().invokeExact(block, block.byteSize(), MADV_HUGEPAGE) == 0;
        } catch (Throwable e) {
            return false;
        }
    }
}
