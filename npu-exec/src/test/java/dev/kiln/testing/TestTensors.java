package dev.kiln.testing;

import dev.kiln.tensor.DType;
import dev.kiln.tensor.Elements;
import dev.kiln.tensor.Layout;
import dev.kiln.tensor.Shape;
import dev.kiln.tensor.Storage;
import dev.kiln.tensor.Tensor;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Test inputs for op properties: random shapes (with size-1 and empty dimensions),
 * broadcast partners, random data (optionally non-finite) and the same values
 * presented through non-contiguous layouts. Tensors are built by writing storage
 * directly, so building inputs never depends on the kernels under test.
 */
public final class TestTensors {
    private TestTensors() {}

    /** How a tensor's values are laid out in memory. */
    public enum Presentation {
        /** Row-major, offset 0. */
        CONTIGUOUS,
        /** Every other element of a larger buffer along the last dimension. */
        STRIDED,
        /** Stored with dimensions reversed, then permuted back (a transposed view). */
        TRANSPOSED,
        /** A window of a larger buffer, starting past its first elements. */
        OFFSET
    }

    /** Shapes of rank minRank..maxRank with dimensions 0..maxDim, mostly non-empty. */
    public static Arbitrary<int[]> shapes(int minRank, int maxRank, int maxDim) {
        Arbitrary<Integer> dim = Arbitraries.frequencyOf(
                net.jqwik.api.Tuple.of(1, Arbitraries.just(0)),
                net.jqwik.api.Tuple.of(4, Arbitraries.just(1)),
                net.jqwik.api.Tuple.of(15, Arbitraries.integers().between(1, maxDim)));
        return dim.array(int[].class).ofMinSize(minRank).ofMaxSize(maxRank);
    }

    /** A shape that broadcasts with {@code shape}: some dimensions set to 1, some leading ones dropped. */
    public static int[] broadcastPartner(int[] shape, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int drop = shape.length == 0 ? 0 : r.nextInt(shape.length + 1);
        int[] out = Arrays.copyOfRange(shape, drop, shape.length);
        for (int i = 0; i < out.length; i++) if (r.nextInt(3) == 0) out[i] = 1;
        return out;
    }

    /** Normal-ish random values scaled by {@code scale}; with {@code nonFinite}, a few NaN and infinities. */
    public static double[] randomData(long n, long seed, double scale, boolean nonFinite) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] d = new double[Math.toIntExact(n)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (r.nextDouble() * 2 - 1) * scale;
            if (nonFinite && r.nextInt(16) == 0) {
                d[i] = switch (r.nextInt(3)) {
                    case 0 -> Double.NaN;
                    case 1 -> Double.POSITIVE_INFINITY;
                    default -> Double.NEGATIVE_INFINITY;
                };
            }
        }
        return d;
    }

    /** A tensor with these row-major values, converted to {@code dtype} as a cast would. */
    public static Tensor tensor(double[] values, DType dtype, int... shape) {
        return tensor(values, dtype, Presentation.CONTIGUOUS, shape);
    }

    /** A tensor with these row-major values laid out as {@code p} says. */
    public static Tensor tensor(double[] values, DType dtype, Presentation p, int... shape) {
        Shape s = Shape.of(shape);
        if (s.numel() != values.length) throw new IllegalArgumentException(values.length + " values for shape " + s);
        int rank = shape.length;
        long[] strides;
        long offset = 0, extent;
        switch (rank == 0 ? Presentation.CONTIGUOUS : p) {
            case STRIDED -> {
                strides = new long[rank];
                long acc = 2;
                for (int i = rank - 1; i >= 0; i--) { strides[i] = acc; acc *= Math.max(shape[i], 1); }
                extent = acc;
            }
            case TRANSPOSED -> {
                strides = new long[rank];
                long acc = 1;
                for (int i = 0; i < rank; i++) { strides[i] = acc; acc *= Math.max(shape[i], 1); }
                extent = acc;
            }
            case OFFSET -> {
                strides = s.contiguousStrides();
                offset = 3;
                extent = 3 + s.numel() + 5;
            }
            default -> {
                strides = s.contiguousStrides();
                extent = s.numel();
            }
        }
        Storage storage = Storage.allocate(Math.max(extent, 1) * dtype.byteSize());
        // Fill the gaps with garbage so kernels reading outside the view are caught.
        for (long i = 0; i < extent; i++) Elements.write(dtype, storage.segment(), i, dtype.isFloatingPoint() ? 7777.0 : 77);
        Layout layout = new Layout(s, strides, offset);
        Tensor t = Tensor.fromStorage(dtype, layout, storage);
        for (long i = 0; i < values.length; i++) {
            Elements.write(dtype, storage.segment(), t.elementOffset(i), values[(int) i]);
        }
        return t;
    }

    /** {@code r} wrapped to integer type {@code t}'s width (two's complement), as the value it then holds; uint64 unsigned. */
    public static double wrap(DType t, long r) {
        return switch (t) {
            case INT8 -> (byte) r;
            case UINT8 -> r & 0xff;
            case INT16 -> (short) r;
            case UINT16 -> r & 0xffff;
            case INT32 -> (int) r;
            case UINT32 -> r & 0xffff_ffffL;
            case UINT64 -> new java.math.BigInteger(Long.toUnsignedString(r)).doubleValue();
            default -> r;
        };
    }

    /** The least value integer type {@code t} holds. */
    public static double lowest(DType t) {
        return switch (t) {
            case INT8 -> -128;
            case INT16 -> -32768;
            case INT32 -> Integer.MIN_VALUE;
            case INT64 -> Long.MIN_VALUE;
            default -> 0;
        };
    }

    /** The greatest value integer type {@code t} holds (2^64 - 1 for uint64, as the double 2^64). */
    public static double highest(DType t) {
        return switch (t) {
            case BOOL -> 1;
            case INT8 -> 127;
            case UINT8 -> 255;
            case INT16 -> 32767;
            case UINT16 -> 65535;
            case INT32 -> Integer.MAX_VALUE;
            case UINT32 -> 4294967295.0;
            case INT64 -> Long.MAX_VALUE;
            case UINT64 -> 0x1p64;
            default -> throw new IllegalArgumentException(t + " is not an integer type");
        };
    }

    /** The values a tensor of {@code dtype} would hold after storing {@code v} (rounding to float32, half, ...). */
    public static double roundTo(DType dtype, double v) {
        Storage s = Storage.allocate(8);
        Elements.write(dtype, s.segment(), 0, v);
        return Elements.read(dtype, s.segment(), 0);
    }

    /** Reads every element (row-major) without using kernels. */
    public static double[] values(Tensor t) {
        double[] out = new double[Math.toIntExact(t.numel())];
        for (int i = 0; i < out.length; i++) out[i] = t.getDouble(i);
        return out;
    }

    /**
     * Asserts shape and values: |actual - expected| <= atol + rtol |expected|, NaN matching NaN,
     * infinities matching exactly. The message names the first offending index.
     */
    public static void assertClose(String what, Shape expectedShape, double[] expected, Tensor actual, double rtol, double atol) {
        if (!actual.shape().equals(expectedShape)) {
            fail(what + ": shape " + actual.shape() + ", expected " + expectedShape);
        }
        double[] got = values(actual);
        for (int i = 0; i < expected.length; i++) {
            double e = expected[i], a = got[i];
            boolean ok;
            if (Double.isNaN(e)) ok = Double.isNaN(a);
            else if (Double.isInfinite(e)) ok = a == e;
            else ok = Math.abs(a - e) <= atol + rtol * Math.abs(e);
            if (!ok) {
                fail(what + ": element " + i + " of " + expectedShape + " is " + a + ", expected " + e
                        + " (rtol " + rtol + ", atol " + atol + ")");
            }
        }
    }

    /** Flat row-major index to multi-index. */
    public static int[] unravel(long flat, int[] shape) {
        int[] idx = new int[shape.length];
        for (int i = shape.length - 1; i >= 0; i--) {
            idx[i] = (int) (flat % shape[i]);
            flat /= shape[i];
        }
        return idx;
    }

    /** Multi-index to flat row-major index, broadcasting: dimensions of size 1 index 0, missing leading ones are dropped. */
    public static long ravelBroadcast(int[] idx, int[] shape) {
        long flat = 0;
        int lead = idx.length - shape.length;
        for (int i = 0; i < shape.length; i++) {
            int c = shape[i] == 1 ? 0 : idx[lead + i];
            flat = flat * shape[i] + c;
        }
        return flat;
    }
}
