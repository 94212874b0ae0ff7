package dev.kiln.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.ref.Reference;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

class DramPoolTest {
    private static final long BLOCK = 4L << 20;

    @Test
    void blocksOfUnreachableOwnersComeBackAfterACollectionTheCallerDidNotWaitFor() throws InterruptedException {
        DramPool pool = new DramPool(1L << 30);
        // 256 MB handed out with nothing to reuse: the pool asks for a collection in the background.
        for (int i = 0; i < 65; i++) {
            MemorySegment s = pool.allocate(BLOCK, new Object());
            assertEquals(BLOCK, s.byteSize());
        }
        assertEquals(65, pool.freshBlocks(), "no block could be reused yet");
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (pool.pooledBytes() == 0 && System.nanoTime() < deadline) Thread.sleep(10);
        assertTrue(pool.pooledBytes() >= BLOCK, "the background collection returned the dropped blocks");
        Object owner = new Object();
        pool.allocate(BLOCK, owner);
        assertEquals(65, pool.freshBlocks(), "the next block is a returned one");
        Reference.reachabilityFence(owner);
    }

    @Test
    void aBlockHeldByALiveOwnerIsNeverHandedOutAgain() {
        DramPool pool = new DramPool(1L << 30);
        Object owner = new Object();
        MemorySegment kept = pool.allocate(BLOCK, owner);
        kept.fill((byte) 7);
        for (int i = 0; i < 80; i++) pool.allocate(BLOCK, new Object()).fill((byte) 1);
        System.gc();
        for (int i = 0; i < 80; i++) pool.allocate(BLOCK, new Object()).fill((byte) 2);
        for (long at = 0; at < BLOCK; at += 4096) assertEquals(7, kept.get(ValueLayout.JAVA_BYTE, at));
        Reference.reachabilityFence(owner);
    }
}
