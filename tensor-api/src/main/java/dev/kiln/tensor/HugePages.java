package dev.kiln.tensor;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Asks Linux to back large DRAM blocks with transparent huge pages.
 *
 * <p>Where transparent huge pages are enabled only on request ({@code madvise}, a common
 * default), a block stays on small pages unless advised. The advice comes after
 * {@code Arena.allocate} has zeroed (and so touched) the block: the kernel does not fault it
 * in as huge pages, but its {@code khugepaged} moves it onto them later. That serves
 * long-running work, whose matmuls stream weights across many pages. Best effort: elsewhere
 * (another OS, no native access, the call failing) blocks stay on small pages.
 *
 * <p>The downcall is built on a thread of its own: building it takes a fresh JVM 35 ms, which
 * the first large allocation of every start used to wait for. The W4 demo's eager phase,
 * eight runs of each alternating, medians: 1174 ms waiting, 1096 ms with no advice at all;
 * then 1141 ms with the downcall built aside, against 1094 with no advice. Blocks allocated
 * before it is ready are advised once it is ({@link DramPool}).
 */
final class HugePages {
    /** The huge page size on x86-64 and arm64 Linux; blocks at least this large are advised. */
    static final long SIZE = 2L << 20;
    private static final int MADV_HUGEPAGE = 14;
    /** madvise, or empty where there is none; done once built. */
    private static final CompletableFuture<Optional<MethodHandle>> MADVISE = new CompletableFuture<>();

    static {
        if (wanted()) {
            Thread.ofPlatform().daemon().name("kiln-huge-pages").start(() -> {
                try {
                    MADVISE.complete(lookup());
                } finally {
                    MADVISE.complete(Optional.empty());
                }
            });
        } else {
            MADVISE.complete(Optional.empty());
        }
    }

    private HugePages() {}

    private static boolean wanted() {
        return System.getProperty("os.name", "").startsWith("Linux") && Boolean.parseBoolean(System.getProperty("kiln.npu.hugePages", "true"));
    }

    private static Optional<MethodHandle> lookup() {
        try {
            Linker linker = Linker.nativeLinker();
            return linker.defaultLookup().find("madvise").map(f -> linker.downcallHandle(f,
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT)));
        } catch (RuntimeException | LinkageError e) {
            return Optional.empty();
        }
    }

    /** Whether huge-page advice can be given now. */
    static boolean ready() { return MADVISE.getNow(Optional.empty()).isPresent(); }

    /** Whether advice may yet become possible: the downcall is still being built. */
    static boolean pending() { return !MADVISE.isDone(); }

    /** Advises huge pages for {@code block} (aligned to {@link #SIZE}); true when the kernel accepted the advice. */
    static boolean advise(MemorySegment block) {
        Optional<MethodHandle> madvise = MADVISE.getNow(Optional.empty());
        if (madvise.isEmpty() || block.byteSize() < SIZE || block.address() % SIZE != 0) return false;
        try {
            return (int) madvise.get().invokeExact(block, block.byteSize(), MADV_HUGEPAGE) == 0;
        } catch (Throwable e) {
            return false;
        }
    }
}
