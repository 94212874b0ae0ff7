package dev.kiln.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/** Scalar element access by dtype, for host conversion, printing and slow paths. */
public final class Elements {
    private Elements() {}

    /** Reads the element at {@code index} (in elements, not bytes) as a double. */
    public static double read(DType dtype, MemorySegment s, long index) {
        return switch (dtype) {
            case BOOL -> s.get(ValueLayout.JAVA_BYTE, index) != 0 ? 1 : 0;
            case INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 -> toDouble(dtype, readLong(dtype, s, index));
            case FLOAT16 -> Float.float16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT, index));
            case BFLOAT16 -> bf16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT, index));
            case FLOAT32 -> s.getAtIndex(ValueLayout.JAVA_FLOAT, index);
            case FLOAT64 -> s.getAtIndex(ValueLayout.JAVA_DOUBLE, index);
        };
    }

    /**
     * Reads an integer or bool element exactly: sign- or zero-extended to 64 bits, uint64 as
     * its bits (float elements are truncated toward zero).
     */
    public static long readLong(DType dtype, MemorySegment s, long index) {
        return switch (dtype) {
            case INT8 -> s.get(ValueLayout.JAVA_BYTE, index);
            case UINT8 -> s.get(ValueLayout.JAVA_BYTE, index) & 0xffL;
            case INT16 -> s.getAtIndex(ValueLayout.JAVA_SHORT, index);
            case UINT16 -> s.getAtIndex(ValueLayout.JAVA_SHORT, index) & 0xffffL;
            case INT32 -> s.getAtIndex(ValueLayout.JAVA_INT, index);
            case UINT32 -> s.getAtIndex(ValueLayout.JAVA_INT, index) & 0xffff_ffffL;
            case INT64, UINT64 -> s.getAtIndex(ValueLayout.JAVA_LONG, index);
            default -> (long) read(dtype, s, index);
        };
    }

    /**
     * Writes a double, converting as a cast to {@code dtype} does: to bool non-zero; to integers
     * toward zero, saturating at the type's range, NaN to 0 (Java's narrowing, as the cast kernels store).
     */
    public static void write(DType dtype, MemorySegment s, long index, double v) {
        switch (dtype) {
            case BOOL -> s.set(ValueLayout.JAVA_BYTE, index, (byte) (v != 0 ? 1 : 0));
            case INT8, UINT8, INT16, UINT16, INT32, UINT32, INT64, UINT64 -> writeLong(dtype, s, index, fromDouble(dtype, v));
            case FLOAT16 -> s.setAtIndex(ValueLayout.JAVA_SHORT, index, Float.floatToFloat16((float) v));
            case BFLOAT16 -> s.setAtIndex(ValueLayout.JAVA_SHORT, index, floatToBf16((float) v));
            case FLOAT32 -> s.setAtIndex(ValueLayout.JAVA_FLOAT, index, (float) v);
            case FLOAT64 -> s.setAtIndex(ValueLayout.JAVA_DOUBLE, index, v);
        }
    }

    /**
     * Writes an integer exactly: to the integer types wrapping to their width, as an
     * integer-to-integer cast and fixed-width arithmetic do (uint64 takes the bits); to bool
     * non-zero; to float types rounded ({@code v} signed: convert uint64 values with {@link #toDouble}).
     */
    public static void writeLong(DType dtype, MemorySegment s, long index, long v) {
        switch (dtype) {
            case INT8, UINT8 -> s.set(ValueLayout.JAVA_BYTE, index, (byte) v);
            case INT16, UINT16 -> s.setAtIndex(ValueLayout.JAVA_SHORT, index, (short) v);
            case INT32, UINT32 -> s.setAtIndex(ValueLayout.JAVA_INT, index, (int) v);
            case INT64, UINT64 -> s.setAtIndex(ValueLayout.JAVA_LONG, index, v);
            default -> write(dtype, s, index, v);
        }
    }

    /** An integer of type {@code dtype} (held as {@link #readLong} gives it) as a double: uint64 unsigned, rounded to nearest. */
    public static double toDouble(DType dtype, long v) {
        if (dtype != DType.UINT64 || v >= 0) return v;
        // Halve (keeping the low bit, so the rounding is still correct), convert, double.
        return (double) ((v >>> 1) | (v & 1)) * 2.0;
    }

    /** {@link #toDouble}, rounded once to float. */
    public static float toFloat(DType dtype, long v) {
        if (dtype != DType.UINT64 || v >= 0) return v;
        return (float) ((v >>> 1) | (v & 1)) * 2.0f;
    }

    /** {@code v} wrapped to integer type {@code dtype}'s width, as {@link #readLong} gives it back after {@link #writeLong}. */
    public static long wrap(DType dtype, long v) {
        return switch (dtype) {
            case INT8 -> (byte) v;
            case UINT8 -> v & 0xffL;
            case INT16 -> (short) v;
            case UINT16 -> v & 0xffffL;
            case INT32 -> (int) v;
            case UINT32 -> v & 0xffff_ffffL;
            default -> v;
        };
    }

    /**
     * A long ordered as integer type {@code dtype}'s values are, for {@code v} as {@link #readLong}
     * gives it: uint64 with its top bit flipped (so 2^63 and above sort above the rest), the
     * others as they are. Its own inverse.
     */
    public static long orderKey(DType dtype, long v) {
        return dtype == DType.UINT64 ? v ^ Long.MIN_VALUE : v;
    }

    /** The least value of integer or bool type {@code dtype}, as {@link #readLong} gives it. */
    public static long minValue(DType dtype) {
        return switch (dtype) {
            case INT8 -> Byte.MIN_VALUE;
            case INT16 -> Short.MIN_VALUE;
            case INT32 -> Integer.MIN_VALUE;
            case INT64 -> Long.MIN_VALUE;
            case BOOL, UINT8, UINT16, UINT32, UINT64 -> 0;
            default -> throw new IllegalArgumentException(dtype + " is not an integer type");
        };
    }

    /** The greatest value of integer or bool type {@code dtype}, as {@link #readLong} gives it (uint64's as its bits, -1). */
    public static long maxValue(DType dtype) {
        return switch (dtype) {
            case BOOL -> 1;
            case INT8 -> Byte.MAX_VALUE;
            case UINT8 -> 0xff;
            case INT16 -> Short.MAX_VALUE;
            case UINT16 -> 0xffff;
            case INT32 -> Integer.MAX_VALUE;
            case UINT32 -> 0xffff_ffffL;
            case INT64 -> Long.MAX_VALUE;
            case UINT64 -> -1L;
            default -> throw new IllegalArgumentException(dtype + " is not an integer type");
        };
    }

    /**
     * A double cast to integer type {@code dtype}, as held in a long: toward zero, saturating at
     * the type's range, NaN to 0 (uint64's top half as negative longs).
     */
    public static long fromDouble(DType dtype, double v) {
        return switch (dtype) {
            case INT8, UINT8, INT16, UINT16, UINT32 -> Math.clamp((long) v, minValue(dtype), maxValue(dtype));
            case INT32 -> (int) v;
            case UINT64 -> v >= 0x1p63 ? (v >= 0x1p64 ? -1L : (long) (v - 0x1p63) ^ Long.MIN_VALUE) : Math.max(0, (long) v);
            default -> (long) v;
        };
    }

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    /** Rounds to nearest even, keeping NaN a NaN. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return (short) ((bits >>> 16) | 0x40);
        int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    static void format(Tensor t, StringBuilder sb) {
        int[] dims = t.shape().dims();
        if (dims.length == 0) {
            sb.append(formatValue(t, 0));
            return;
        }
        formatDim(t, dims, 0, 0, sb);
    }

    private static long formatDim(Tensor t, int[] dims, int d, long flat, StringBuilder sb) {
        sb.append('[');
        for (int i = 0; i < dims[d]; i++) {
            if (i > 0) sb.append(", ");
            if (d == dims.length - 1) sb.append(formatValue(t, flat++));
            else flat = formatDim(t, dims, d + 1, flat, sb);
        }
        sb.append(']');
        return flat;
    }

    /** Element {@code flat} of a concrete tensor; integers are read exactly (a double would round int64 past 2^53). */
    private static String formatValue(Tensor t, long flat) {
        DType dtype = t.dtype();
        if (dtype.isInteger()) {
            long v = readLong(dtype, t.storage().segment(), t.elementOffset(flat));
            return dtype == DType.UINT64 ? Long.toUnsignedString(v) : Long.toString(v);
        }
        double v = t.getDouble(flat);
        if (dtype == DType.BOOL) return v != 0 ? "true" : "false";
        return dtype == DType.FLOAT64 ? Double.toString(v) : Float.toString((float) v);
    }
}
