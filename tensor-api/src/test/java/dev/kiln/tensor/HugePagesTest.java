package dev.kiln.tensor;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

class HugePagesTest {

    @Test
    void theAdviceBecomesReadyOnLinuxAndGoesOnlyToLargeAlignedBlocks() throws InterruptedException {
        awaitSettled();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment big = arena.allocate(4 * HugePages.SIZE, HugePages.SIZE);
            assertEquals(System.getProperty("os.name").startsWith("Linux"), HugePages.ready());
            assertEquals(HugePages.ready(), HugePages.advise(big), "madvise accepts a 2 MB-aligned range");
            assertFalse(HugePages.advise(arena.allocate(HugePages.SIZE / 2, 64)), "too small to be worth a huge page");
            assertFalse(HugePages.advise(big.asSlice(64, HugePages.SIZE)), "not aligned to a huge page");
        }
    }

    /** Whether the pool made it before or after the advice was ready, a large block ends up advised. */
    @Test
    void aLargePoolBlockIsAdvisedOnceTheAdviceIsReady() throws InterruptedException, IOException {
        DramPool pool = new DramPool(1L << 30);
        Object owner = new Object();
        MemorySegment block = pool.allocate(4 * HugePages.SIZE, owner);
        assertEquals(0, block.address() % HugePages.SIZE, "large blocks are aligned to huge pages");
        awaitSettled();
        assumeTrue(HugePages.ready(), "no huge-page advice here");
        try (Arena arena = Arena.ofConfined()) {
            assumeTrue(HugePages.advise(arena.allocate(HugePages.SIZE, HugePages.SIZE)), "this kernel refuses the advice");
        }
        pool.allocate(64, new Object());  // any later allocation advises the blocks that waited
        String flags = vmFlags(block.address()).orElseThrow(() -> new AssertionError("no mapping holds the block"));
        assertTrue((" " + flags + " ").contains(" hg "), "not advised: VmFlags " + flags);
        java.lang.ref.Reference.reachabilityFence(owner);
    }

    @Test
    void aLargeTensorLandsOnAHugePageBoundaryAndHoldsItsValues() {
        Tensor t = Tensor.empty(DType.FLOAT32, Shape.of(1 << 20));
        assertEquals(0, t.storage().segment().address() % HugePages.SIZE);
        MemorySegment s = t.storage().segment();
        for (long i = 0; i < t.numel(); i++) s.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
        for (long i = 0; i < t.numel(); i += 4099) assertEquals(i, s.getAtIndex(ValueLayout.JAVA_FLOAT, i));
    }

    private static void awaitSettled() throws InterruptedException {
        for (int i = 0; i < 1000 && HugePages.pending(); i++) Thread.sleep(10);
        assertFalse(HugePages.pending(), "the advice was not ready after 10 s");
    }

    /** The VmFlags line of the mapping in /proc/self/smaps holding {@code address}, if one does. */
    private static Optional<String> vmFlags(long address) throws IOException {
        boolean inside = false;
        for (String line : Files.readAllLines(Path.of("/proc/self/smaps"))) {
            int dash = line.indexOf('-'), space = line.indexOf(' ');
            if (dash > 0 && space > dash && line.substring(0, dash).matches("[0-9a-f]+")) {
                long from = Long.parseUnsignedLong(line.substring(0, dash), 16), to = Long.parseUnsignedLong(line.substring(dash + 1, space), 16);
                inside = Long.compareUnsigned(from, address) <= 0 && Long.compareUnsigned(address, to) < 0;
            } else if (inside && line.startsWith("VmFlags:")) {
                return Optional.of(line.substring("VmFlags:".length()).strip());
            }
        }
        return Optional.empty();
    }
}
