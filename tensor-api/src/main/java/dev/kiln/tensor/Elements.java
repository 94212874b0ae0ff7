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
            case INT32 -> s.getAtIndex(ValueLayout.JAVA_INT, index);
            case INT64 -> s.getAtIndex(ValueLayout.JAVA_LONG, index);
            case FLOAT16 -> Float.float16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT, index));
            case BFLOAT16 -> bf16ToFloat(s.getAtIndex(ValueLayout.JAVA_SHORT, index));
            case FLOAT32 -> s.getAtIndex(ValueLayout.JAVA_FLOAT, index);
            case FLOAT64 -> s.getAtIndex(ValueLayout.JAVA_DOUBLE, index);
        };
    }

    /** Reads an integer or bool element exactly (float elements are truncated toward zero). */
    public static long readLong(DType dtype, MemorySegment s, long index) {
        return switch (dtype) {
            case INT32 -> s.getAtIndex(ValueLayout.JAVA_INT, index);
            case INT64 -> s.getAtIndex(ValueLayout.JAVA_LONG, index);
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
            case INT32 -> s.setAtIndex(ValueLayout.JAVA_INT, index, (int) v);
            case INT64 -> s.setAtIndex(ValueLayout.JAVA_LONG, index, (long) v);
            case FLOAT16 -> s.setAtIndex(ValueLayout.JAVA_SHORT, index, Float.floatToFloat16((float) v));
            case BFLOAT16 -> s.setAtIndex(ValueLayout.JAVA_SHORT, index, floatToBf16((float) v));
            case FLOAT32 -> s.setAtIndex(ValueLayout.JAVA_FLOAT, index, (float) v);
            case FLOAT64 -> s.setAtIndex(ValueLayout.JAVA_DOUBLE, index, v);
        }
    }

    /** Writes an integer exactly (to int32: wrapping, as an integer-to-integer cast does; to float types: rounded). */
    public static void writeLong(DType dtype, MemorySegment s, long index, long v) {
        switch (dtype) {
            case INT32 -> s.setAtIndex(ValueLayout.JAVA_INT, index, (int) v);
            case INT64 -> s.setAtIndex(ValueLayout.JAVA_LONG, index, v);
            default -> write(dtype, s, index, v);
        }
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
        if (dtype.isInteger()) return Long.toString(readLong(dtype, t.storage().segment(), t.elementOffset(flat)));
        double v = t.getDouble(flat);
        if (dtype == DType.BOOL) return v != 0 ? "true" : "false";
        return dtype == DType.FLOAT64 ? Double.toString(v) : Float.toString((float) v);
    }
}
