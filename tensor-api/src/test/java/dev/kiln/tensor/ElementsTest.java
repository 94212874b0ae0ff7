package dev.kiln.tensor;

import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** Host element writes convert as the cast kernels do. */
class ElementsTest {

    private static int writeInt32(double v) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4);
            Elements.write(DType.INT32, s, 0, v);
            return (int) Elements.readLong(DType.INT32, s, 0);
        }
    }

    @Test
    void doublesToInt32SaturateLikeAFloatToIntCast() {
        assertEquals(Integer.MAX_VALUE, writeInt32(3e9));
        assertEquals(Integer.MIN_VALUE, writeInt32(-3e9));
        assertEquals(Integer.MAX_VALUE, writeInt32(1e20));
        assertEquals(Integer.MIN_VALUE, writeInt32(Double.NEGATIVE_INFINITY));
        assertEquals(0, writeInt32(Double.NaN));
        assertEquals(-2, writeInt32(-2.9));
        assertEquals(2147483647, writeInt32(2147483647.5));
    }

    @Test
    void longsToInt32WrapLikeAnIntegerCast() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4);
            Elements.writeLong(DType.INT32, s, 0, 3_000_000_000L);
            assertEquals(-1294967296, s.get(java.lang.foreign.ValueLayout.JAVA_INT, 0));
        }
    }
}
