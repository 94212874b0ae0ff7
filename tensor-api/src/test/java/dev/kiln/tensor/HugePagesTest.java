package dev.kiln.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

class HugePagesTest {

    @Test
    void largeAlignedBlocksAreAdvisedOnLinuxAndOthersAreLeftAlone() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment big = arena.allocate(4 * HugePages.SIZE, HugePages.SIZE);
            assertEquals(System.getProperty("os.name").startsWith("Linux"), HugePages.available());
            assertEquals(HugePages.available(), HugePages.advise(big), "madvise accepts a 2 MB-aligned range");
            assertFalse(HugePages.advise(arena.allocate(HugePages.SIZE / 2, 64)), "too small to be worth a huge page");
            assertFalse(HugePages.advise(big.asSlice(64, HugePages.SIZE)), "not aligned to a huge page");
        }
    }

    @Test
    void aLargeTensorLandsOnAHugePageBoundaryAndHoldsItsValues() {
        Tensor t = Tensor.empty(DType.FLOAT32, Shape.of(1 << 20));
        if (HugePages.available()) assertEquals(0, t.storage().segment().address() % HugePages.SIZE);
        MemorySegment s = t.storage().segment();
        for (long i = 0; i < t.numel(); i++) s.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, i);
        for (long i = 0; i < t.numel(); i += 4099) assertEquals(i, s.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i));
    }
}
