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

    @Test
    void doublesToNarrowIntegersSaturateAtTheirRange() {
        assertEquals(127, Elements.fromDouble(DType.INT8, 300));
        assertEquals(-128, Elements.fromDouble(DType.INT8, Double.NEGATIVE_INFINITY));
        assertEquals(0, Elements.fromDouble(DType.UINT8, -5));
        assertEquals(255, Elements.fromDouble(DType.UINT8, 255.9));
        assertEquals(-32768, Elements.fromDouble(DType.INT16, -1e9));
        assertEquals(0xffff_ffffL, Elements.fromDouble(DType.UINT32, 1e10));
        assertEquals(0, Elements.fromDouble(DType.UINT32, Double.NaN));
    }

    @Test
    void uint64HoldsItsTopHalfAsNegativeLongs() {
        assertEquals(-1L, Elements.fromDouble(DType.UINT64, 1e30), "saturates at 2^64 - 1");
        assertEquals(Long.MIN_VALUE, Elements.fromDouble(DType.UINT64, 0x1p63));
        assertEquals(0xf000_0000_0000_0000L, Elements.fromDouble(DType.UINT64, 0x1.ep63));
        assertEquals(0, Elements.fromDouble(DType.UINT64, -1));
        assertEquals(0x1p64, Elements.toDouble(DType.UINT64, -1L), "2^64 - 1 rounds to 2^64");
        assertEquals(0x1p63, Elements.toDouble(DType.UINT64, Long.MIN_VALUE));
        // 2^63 + 2^10 + 1 lies just above the tie between 2^63 and 2^63 + 2^11: halving it must keep the low bit.
        assertEquals(0x1p63 + 0x1p11, Elements.toDouble(DType.UINT64, Long.MIN_VALUE + (1L << 10) + 1));
        assertEquals(0x1p63, Elements.toDouble(DType.UINT64, Long.MIN_VALUE + (1L << 10)), "the tie goes to even");
        assertEquals(-1.0, Elements.toDouble(DType.INT64, -1L));
    }

    @Test
    void integersWrapToTheirWidth() {
        assertEquals(-56, Elements.wrap(DType.INT8, 200));
        assertEquals(255, Elements.wrap(DType.UINT8, -1));
        assertEquals(-32768, Elements.wrap(DType.INT16, 32768));
        assertEquals(65535, Elements.wrap(DType.UINT16, -1));
        assertEquals(0xffff_fffeL, Elements.wrap(DType.UINT32, -2));
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(8);
            for (DType t : new DType[] {DType.INT8, DType.UINT8, DType.INT16, DType.UINT16, DType.UINT32}) {
                Elements.writeLong(t, s, 0, -2);
                assertEquals(Elements.wrap(t, -2), Elements.readLong(t, s, 0), t.toString());
            }
        }
    }
}
