package dev.kiln.tensor;

import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import org.junit.jupiter.api.Test;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/** Host element writes against the cast kernels, exact int64 ranges, and mT's rank rule. */
class HostConversionAndRangeTest {

    @Provide
    Arbitrary<Double> anyDouble() {
        return Arbitraries.oneOf(Arbitraries.doubles().between(-1e10, 1e10), Arbitraries.doubles(),
                Arbitraries.of(Double.NaN, Double.POSITIVE_INFINITY, Double.NEGATIVE_INFINITY, 2147483647.5, -2147483648.9, 3e9, -3e9));
    }

    @Property(tries = 200)
    void hostWritesToInt32AgreeWithTheCastKernel(@ForAll("anyDouble") double v) {
        int kernel = Tensor.of(new double[] {v}, 1).to(DType.INT32).toIntArray()[0];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4);
            Elements.write(DType.INT32, s, 0, v);
            assertEquals(kernel, s.get(ValueLayout.JAVA_INT, 0), "int32 of " + v);
        }
    }

    @Property(tries = 100)
    void hostLongWritesToInt32AgreeWithTheCastKernel(@ForAll long v) {
        int kernel = Tensor.of(new long[] {v}, 1).to(DType.INT32).toIntArray()[0];
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(4);
            Elements.writeLong(DType.INT32, s, 0, v);
            assertEquals(kernel, s.get(ValueLayout.JAVA_INT, 0), "int32 of " + v);
        }
    }

    @Test
    void int64ArangeIsExactPastTwoToTheFiftyThree() {
        long start = (1L << 60) + 1;
        Tensor r = Tensor.arange(start, start + 10, 3);
        assertArrayEquals(new long[] {start, start + 3, start + 6, start + 9}, r.toLongArray());
        assertEquals("tensor([1152921504606846977, 1152921504606846980, 1152921504606846983, 1152921504606846986],"
                + " dtype=int64, shape=[4])", r.toString());
        // Descending, and a length whose bounds' difference does not fit a long.
        assertArrayEquals(new long[] {-start, -start - 7}, Tensor.arange(-start, -start - 8, -7).toLongArray());
        assertArrayEquals(new long[] {Long.MIN_VALUE, -(1L << 62), 0, 1L << 62}, Tensor.arange(Long.MIN_VALUE, Long.MAX_VALUE, 1L << 62).toLongArray());
        assertArrayEquals(new long[] {Long.MAX_VALUE - 2, Long.MAX_VALUE - 1}, Tensor.arange(Long.MAX_VALUE - 2, Long.MAX_VALUE, 1).toLongArray());
        assertEquals(0, Tensor.arange(start, start, 1).numel());
        assertThrows(KilnException.class, () -> Tensor.arange(start, start - 1, 1));
    }

    @Test
    void mTNeedsAMatrix() {
        KilnShapeException e = assertThrows(KilnShapeException.class, () -> Tensor.arange(3).mT());
        assertEquals("mT: tensor.mT is only supported on matrices or batches of matrices. Got 1-D tensor of shape [3]", e.getMessage());
        KilnShapeException scalar = assertThrows(KilnShapeException.class, () -> Tensor.full(1, DType.FLOAT32).mT());
        assertEquals("mT: tensor.mT is only supported on matrices or batches of matrices. Got 0-D tensor of shape []", scalar.getMessage());
        Tensor m = Tensor.arange(6).reshape(2, 3);
        assertArrayEquals(new long[] {0, 3, 1, 4, 2, 5}, m.mT().contiguous().toLongArray());
        assertEquals(Shape.of(4, 3, 2), Tensor.zeros(4, 2, 3).mT().shape());
    }
}
