package dev.kiln.npu.kernels;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.KilnTypeException;
import dev.kiln.tensor.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * int8, uint8, int16, uint16, uint32 and uint64: fixed-width arithmetic that wraps, promotion as
 * PyTorch's, and uint64 past 2^63 divided, compared and converted as unsigned. (The random
 * properties of every op run over these dtypes too; these are the cases they rarely draw.)
 */
class SmallIntegerTypesTest {

    private static Tensor of(DType t, long... values) {
        return Tensor.of(values, values.length).to(t);
    }

    @Test
    void arithmeticWrapsToTheTypesWidth() {
        assertArrayEquals(new long[] {-56, -128, 0}, of(DType.INT8, 100, 127, -128).add(of(DType.INT8, 100, 1, -128)).toLongArray());
        assertArrayEquals(new long[] {44, 0, 255}, of(DType.UINT8, 200, 255, 0).add(of(DType.UINT8, 100, 1, 255)).toLongArray());
        assertArrayEquals(new long[] {-32768, 1}, of(DType.INT16, 32767, -32767).add(of(DType.INT16, 1, 32768)).toLongArray());
        assertArrayEquals(new long[] {65535, 1}, of(DType.UINT16, 0, 65535).sub(of(DType.UINT16, 1, 65534)).toLongArray());
        assertArrayEquals(new long[] {0xffff_fffeL}, of(DType.UINT32, 0xffff_ffffL).mul(of(DType.UINT32, 0xffff_ffffL))
                .sub(of(DType.UINT32, 3)).toLongArray());
        assertEquals(DType.INT8, of(DType.INT8, 1).add(of(DType.INT8, 1)).dtype());
    }

    @Test
    void hostArraysOfBytesAndShortsRoundTrip() {
        byte[] bytes = {-128, -1, 0, 127};
        Tensor b = Tensor.of(bytes, 2, 2);
        assertEquals(DType.INT8, b.dtype());
        assertArrayEquals(bytes, b.toByteArray());
        assertArrayEquals(new long[] {128, 255, 0, 127}, b.to(DType.UINT8).toLongArray(), "the bits read unsigned");
        assertArrayEquals(bytes, b.to(DType.UINT8).toByteArray());
        short[] shorts = {Short.MIN_VALUE, -2, 0, Short.MAX_VALUE};
        Tensor s = Tensor.of(shorts, 4);
        assertEquals(DType.INT16, s.dtype());
        assertArrayEquals(shorts, s.toShortArray());
        assertArrayEquals(new long[] {32768, 65534, 0, 32767}, s.to(DType.UINT16).toLongArray());
        assertArrayEquals(new byte[] {0, -2, 0, -1}, s.toByteArray(), "narrowed to the low 8 bits");
    }

    @Test
    void castsWrapBetweenIntegersAndSaturateFromFloats() {
        assertArrayEquals(new long[] {-1, 0, 127}, Tensor.of(new long[] {255, 256, 127}, 3).to(DType.INT8).toLongArray());
        assertArrayEquals(new long[] {255}, of(DType.INT8, -1).to(DType.UINT8).toLongArray());
        assertArrayEquals(new long[] {-1}, of(DType.INT64, -1).to(DType.UINT64).toLongArray(), "uint64 keeps the bits");
        assertEquals(0x1p64, of(DType.INT64, -1).to(DType.UINT64).to(DType.FLOAT64).item(), "2^64 - 1 rounds to 2^64");
        assertEquals((float) 0x1p63, of(DType.INT64, Long.MIN_VALUE).to(DType.UINT64).to(DType.FLOAT32).item());
        assertArrayEquals(new long[] {3, 0}, Tensor.of(new double[] {3.7, -2.5}, 2).to(DType.UINT32).toLongArray());
    }

    @Test
    void promotionFollowsPyTorch() {
        assertEquals(DType.INT16, DType.promote(DType.UINT8, DType.INT8));
        assertEquals(DType.INT16, DType.promote(DType.INT16, DType.UINT8));
        assertEquals(DType.INT32, DType.promote(DType.UINT8, DType.INT32));
        assertEquals(DType.INT64, DType.promote(DType.UINT32, DType.INT32));
        assertEquals(DType.INT32, DType.promote(DType.UINT16, DType.INT16));
        assertEquals(DType.UINT16, DType.promote(DType.UINT16, DType.UINT8));
        assertEquals(DType.UINT32, DType.promote(DType.UINT8, DType.UINT32));
        assertEquals(DType.FLOAT32, DType.promote(DType.UINT64, DType.FLOAT32));
        KilnTypeException e = assertThrows(KilnTypeException.class, () -> DType.promote(DType.UINT64, DType.INT8));
        assertTrue(e.getMessage().contains("uint64") && e.getMessage().contains("int8"), e.getMessage());
        Tensor mixed = of(DType.UINT8, 255, 100).add(of(DType.INT8, -128, 100));
        assertEquals(DType.INT16, mixed.dtype());
        assertArrayEquals(new long[] {127, 200}, mixed.toLongArray());
    }

    @Test
    void uint64PastTwoToThe63DividesAndComparesUnsigned() {
        long big = 0xf000_0000_0000_0000L; // 17293822569102704640
        Tensor x = of(DType.INT64, big, 10).to(DType.UINT64), y = of(DType.UINT64, 16, 3);
        assertArrayEquals(new long[] {Long.divideUnsigned(big, 16), 3}, x.div(y, Tensor.RoundingMode.TRUNC).toLongArray());
        assertArrayEquals(new boolean[] {true, true}, x.gt(y).toBooleanArray());
        assertArrayEquals(new long[] {big, 10}, x.maximum(y).toLongArray());
        assertArrayEquals(new long[] {16, 3}, x.minimum(y).toLongArray());
        assertArrayEquals(new long[] {big, 10}, x.abs().toLongArray(), "abs leaves unsigned values alone");
        assertArrayEquals(new long[] {-1L, 9}, of(DType.UINT64, 0, 10).add(-1L).toLongArray(), "0 + (-1) is 2^64 - 1");
        Tensor allOnes = Tensor.full(-1, DType.INT64, 2).to(DType.UINT64);
        assertArrayEquals(new long[] {Long.divideUnsigned(-1L, 16), Long.divideUnsigned(-1L, 3)},
                allOnes.div(y, Tensor.RoundingMode.TRUNC).toLongArray(), "2^64 - 1 divided unsigned");
        assertArrayEquals(new long[] {big, 10}, x.clamp(4, 1e30).toLongArray());
        assertArrayEquals(new long[] {16, 4}, y.clamp(4, 1e30).toLongArray());
        assertEquals("tensor([17293822569102704640, 10], dtype=uint64, shape=[2])", x.toString());
    }

    @Test
    void uint64PastTwoToThe63OrdersAboveTheRest() {
        long big = 0x8000_0000_0000_0005L, bigger = -1L; // 2^63 + 5 and 2^64 - 1
        Tensor x = of(DType.INT64, 7, big, 3, bigger, 0).to(DType.UINT64);
        assertArrayEquals(new long[] {bigger}, x.max().toLongArray());
        assertArrayEquals(new long[] {0}, x.min().toLongArray());
        assertEquals(3, x.argmax().item());
        assertEquals(4, x.argmin(0, false).item());
        Tensor[] top = x.topk(2);
        assertArrayEquals(new long[] {bigger, big}, top[0].toLongArray());
        assertArrayEquals(new long[] {3, 1}, top[1].toLongArray());
        assertArrayEquals(new long[] {-1L}, Tensor.zeros(DType.UINT64, 0).min().toLongArray(), "min of nothing is the greatest uint64");
        assertEquals(DType.UINT64, x.sum().dtype());
        assertEquals(DType.INT64, of(DType.UINT8, 200, 100).sum().dtype());
        assertEquals(300, of(DType.UINT8, 200, 100).sum().item());
    }

    @Test
    void bitwiseOpsOfEveryWidth() {
        Tensor x = of(DType.INT8, -128, 0b0101, -1), y = of(DType.INT8, 1, 0b0011, 0x0f);
        assertArrayEquals(new long[] {0, 1, 15}, x.bitwiseAnd(y).toLongArray());
        assertArrayEquals(new long[] {-127, 7, -1}, x.bitwiseOr(y).toLongArray());
        assertArrayEquals(new long[] {-127, 6, -16}, x.bitwiseXor(y).toLongArray());
        assertArrayEquals(new long[] {127, -6, 0}, x.bitwiseNot().toLongArray());
        // int8: left shifts wrap to 8 bits; right shifts are arithmetic; 64 or more leaves 0 or the sign.
        assertArrayEquals(new long[] {0, 40, -2}, x.bitwiseLeftShift(of(DType.INT8, 1, 3, 1)).toLongArray());
        assertArrayEquals(new long[] {-64, 2, -1}, x.bitwiseRightShift(of(DType.INT8, 1, 1, 70)).toLongArray());
        assertArrayEquals(new long[] {0, 0, 0}, of(DType.INT64, 1, 5, -1).bitwiseLeftShift(64).toLongArray());
        // uint64 shifts right logically.
        Tensor top = of(DType.INT64, Long.MIN_VALUE, -1).to(DType.UINT64);
        assertArrayEquals(new long[] {1L << 62, -1L >>> 4}, top.bitwiseRightShift(of(DType.UINT64, 1, 4)).toLongArray());
        assertArrayEquals(new long[] {0, 0}, top.bitwiseRightShift(64).toLongArray());
        // Bools: and, or, xor as logic; ~ as logical not (as PyTorch); shifts and floats refused.
        Tensor p = Tensor.of(new boolean[] {true, false}, 2);
        assertArrayEquals(new boolean[] {false, true}, p.bitwiseNot().toBooleanArray());
        assertArrayEquals(new boolean[] {true, true}, p.bitwiseOr(p.bitwiseNot()).toBooleanArray());
        KilnTypeException e = assertThrows(KilnTypeException.class, () -> Tensor.vector(1f).bitwiseAnd(Tensor.vector(1f)));
        assertTrue(e.getMessage().startsWith("bitwise_and: not supported for float32"), e.getMessage());
        assertThrows(KilnTypeException.class, () -> p.bitwiseLeftShift(p));
    }

    @Test
    void clampBoundsSaturateAtTheTypesRange() {
        assertArrayEquals(new long[] {127, 127}, of(DType.INT8, -5, 100).clamp(200, 300).toLongArray());
        assertArrayEquals(new long[] {0, 3}, of(DType.UINT8, 0, 3).clamp(-10, 3.5).toLongArray());
    }

    @Test
    void matmulWrapsAsItsOwnArithmetic() {
        Tensor a = Tensor.of(new long[] {100, 100, 1, 2}, 2, 2).to(DType.INT8);
        Tensor b = Tensor.of(new long[] {2, 0, 1, 1}, 2, 2).to(DType.INT8);
        // [100*2 + 100*1, 100] = [300 -> 44, 100]; [1*2 + 2*1, 2] = [4, 2]
        assertArrayEquals(new long[] {44, 100, 4, 2}, a.matmul(b).toLongArray());
        assertEquals(DType.INT8, a.matmul(b).dtype());
    }
}
