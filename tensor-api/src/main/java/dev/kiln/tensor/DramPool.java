package dev.kiln.tensor;

import com.sun.management.HotSpotDiagnosticMXBean;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.management.ManagementFactory;
import java.lang.ref.Cleaner;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The virtual NPU's DRAM: off-heap blocks in power-of-two size classes, reused once the
 * tensors holding them are unreachable.
 *
 * <p>Why a pool: a fresh native block costs page faults on first touch and a munmap when
 * freed (about 6 ms for 16 MB here), more than most kernels that fill it. Why explicit
 * collections: the garbage collector does not see off-heap bytes, so in a loop of eager
 * ops the tensors' small heap objects would never prompt a collection and blocks would
 * never come back. After {@link #gcInterval} bytes handed out with no block to reuse, the
 * pool asks for a collection in the background; at its capacity it waits for one, as the
 * JDK's direct buffers do at their limit. Fresh blocks of 2 MB or more are aligned to and
 * advised onto huge pages ({@link HugePages}), which the kernel moves them onto over time.
 *
 * <p>Reused blocks are not zeroed: kernels write every element of their outputs. With the
 * system property {@code kiln.npu.poison=true} (set for Kiln's own tests) every block
 * handed out is filled with a NaN pattern, so a kernel that leaves an element unwritten
 * fails its tests instead of leaking an earlier tensor's data.
 */
final class DramPool {
    private static final int MIN_CLASS = 6; // one cache line
    private static final int CLASSES = 48;
    private static final boolean POISON = Boolean.getBoolean("kiln.npu.poison");
    private static final Cleaner CLEANER = Cleaner.create();

    static final DramPool INSTANCE = new DramPool(capacity());

    private record Block(Arena arena, MemorySegment segment, int sizeClass) {}

    private final java.util.List<ConcurrentLinkedDeque<Block>> free = new java.util.ArrayList<>(CLASSES);
    private final long capacity;
    private final long gcInterval;
    private final AtomicLong inUse = new AtomicLong();
    private final AtomicLong pooled = new AtomicLong();
    private final AtomicLong sinceCollection = new AtomicLong();
    private final AtomicBoolean collecting = new AtomicBoolean();
    private final AtomicLong freshBlocks = new AtomicLong();
    /** Fresh large blocks waiting for huge-page advice ({@link HugePages}). */
    private final ConcurrentLinkedQueue<Block> unadvised = new ConcurrentLinkedQueue<>();

    DramPool(long capacity) {
        for (int i = 0; i < CLASSES; i++) free.add(new ConcurrentLinkedDeque<>());
        this.capacity = capacity;
        this.gcInterval = Math.clamp(capacity / 4, 64L << 20, 256L << 20);
    }

    /** The JVM's direct-memory limit (the heap size unless set), less a margin, or {@code kiln.npu.dramBytes}. */
    private static long capacity() {
        Long configured = Long.getLong("kiln.npu.dramBytes");
        if (configured != null) return configured;
        long limit = Runtime.getRuntime().maxMemory();
        try {
            String v = ManagementFactory.getPlatformMXBean(HotSpotDiagnosticMXBean.class).getVMOption("MaxDirectMemorySize").getValue();
            if (Long.parseLong(v) > 0) limit = Long.parseLong(v);
        } catch (RuntimeException e) {
            // Not HotSpot: fall back to the heap size, the default direct-memory limit.
        }
        return limit / 10 * 9;
    }

    /** A block of at least {@code bytes}, owned by {@code owner}: it returns to the pool once the owner is unreachable. */
    MemorySegment allocate(long bytes, Object owner) {
        int cls = sizeClass(bytes);
        long size = 1L << cls;
        Block b = free.get(cls).poll();
        if (b == null && sinceCollection.get() >= gcInterval) collectInBackground();
        if (b != null) {
            pooled.addAndGet(-size);
        } else {
            if (inUse.get() + pooled.get() + size > capacity) trim(size);
            freshBlocks.incrementAndGet();
            Arena arena = Arena.ofShared();
            boolean large = size >= HugePages.SIZE;
            b = new Block(arena, arena.allocate(size, large ? HugePages.SIZE : Storage.ALIGNMENT), cls);
            if (large) unadvised.add(b);
        }
        if (!unadvised.isEmpty()) adviseWaiting();
        inUse.addAndGet(size);
        sinceCollection.addAndGet(size);
        if (POISON) b.segment().fill((byte) 0xFF);
        Block block = b;
        CLEANER.register(owner, () -> release(block));
        return b.segment().asSlice(0, Math.max(bytes, 1));
    }

    /** Advises the fresh large blocks once the advice is ready (or forgets them, where it never will be). */
    private void adviseWaiting() {
        if (HugePages.pending()) return;
        boolean ready = HugePages.ready();
        for (Block b; (b = unadvised.poll()) != null; ) {
            if (ready && b.arena().scope().isAlive()) HugePages.advise(b.segment());
        }
    }

    private void release(Block b) {
        long size = 1L << b.sizeClass();
        inUse.addAndGet(-size);
        if (inUse.get() + pooled.get() + size > capacity) {
            b.arena().close();
        } else {
            pooled.addAndGet(size);
            free.get(b.sizeClass()).push(b);
        }
    }

    /** Frees pooled blocks (largest classes first) until {@code needed} more bytes fit under the capacity. */
    private void trim(long needed) {
        for (int cls = CLASSES - 1; cls >= 0 && inUse.get() + pooled.get() + needed > capacity; cls--) {
            for (Block b; inUse.get() + pooled.get() + needed > capacity && (b = free.get(cls).poll()) != null; ) {
                pooled.addAndGet(-(1L << cls));
                b.arena().close();
            }
        }
        if (inUse.get() + needed > capacity) collect();
    }

    /**
     * Asks for a collection on a thread of its own, unless one is under way, while this caller
     * goes on with a fresh block; the blocks the collection finds come back for later calls.
     * Waiting for them here (a concurrent cycle, then the cleaner) took 12% of the wall time of
     * W1's compiled calls, each handing out a 16 MB result. Only at the capacity does a caller
     * wait ({@link #trim}).
     */
    private void collectInBackground() {
        sinceCollection.set(0);
        if (!collecting.compareAndSet(false, true)) return;
        Thread t = new Thread(this::collectNow, "kiln-dram-reclaim");
        t.setDaemon(true);
        t.start();
    }

    private void collectNow() {
        try {
            System.gc();
        } finally {
            collecting.set(false);
        }
    }

    /** Blocks allocated from the system so far (not reused from the pool). */
    long freshBlocks() { return freshBlocks.get(); }

    /** Bytes of blocks waiting in the pool for reuse. */
    long pooledBytes() { return pooled.get(); }

    /** Collects garbage and gives the cleaner a moment to hand back the blocks it found. */
    private void collect() {
        sinceCollection.set(0);
        long before = pooled.get();
        System.gc();
        for (int i = 0; i < 5 && pooled.get() == before; i++) {
            try {
                Thread.sleep(1L << i);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static int sizeClass(long bytes) {
        int cls = 64 - Long.numberOfLeadingZeros(Math.max(bytes, 1) - 1);
        return Math.max(cls, MIN_CLASS);
    }
}
