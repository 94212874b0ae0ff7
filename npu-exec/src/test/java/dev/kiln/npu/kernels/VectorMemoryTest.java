package dev.kiln.npu.kernels;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Kernels' segment scratch is native memory, and typing keeps a native segment as it is. */
class VectorMemoryTest {

    @Test
    void scratchIsZeroedAlignedNativeMemory() {
        for (MemorySegment s : new MemorySegment[] {VectorMemory.floats(37), Staging.floatScratch(37)}) {
            assertTrue(s.isNative());
            assertEquals(37 * Float.BYTES, s.byteSize());
            assertEquals(0, s.address() % 64);
            for (int i = 0; i < 37; i++) assertEquals(0f, s.getAtIndex(ValueLayout.JAVA_FLOAT, i));
        }
        assertEquals(Float.BYTES, VectorMemory.floats(0).byteSize(), "an empty scratch still has an address to point at");
    }

    @Test
    void typedReturnsTheSameNativeSegmentAndRefusesHeapMemory() {
        MemorySegment s = Arena.ofAuto().allocate(64).asSlice(8, 16);
        assertSame(s, VectorMemory.typed(s));
        assertThrows(ClassCastException.class, () -> VectorMemory.typed(MemorySegment.ofArray(new float[4])));
    }
}
